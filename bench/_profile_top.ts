/**
 * Summarises V8 `.cpuprofile` files (from `deno run --cpu-prof`): where the
 * busy time went, by area (the pool's `src/` files, msgpackr, Deno's runtime,
 * GC) and by function (self time). Idle time is left out of the shares.
 *
 * ```sh
 * deno run -A bench/_pool_case.ts map-100k-c1 --profile-dir /tmp/prof/workers
 * deno run -A --cpu-prof --cpu-prof-dir=/tmp/prof/pool bench/_pool_case.ts map-100k-c1
 * deno run -A bench/_profile_top.ts [--top 25] /tmp/prof/pool/*.cpuprofile
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** Groups a script URL into an area of the code. */
function area(url: string, name: string): string {
  if (url === "") {
    return name.startsWith("(") ? name : "(native / builtins)";
  }
  if (url.includes("/msgpackr/")) return "msgpackr";
  const src = /\/(src|bench)\/[^/]+$/.exec(url);
  if (src) return src[0].slice(1);
  if (url.endsWith("/worker.ts") || url.endsWith("/mod.ts")) {
    return url.slice(url.lastIndexOf("/") + 1);
  }
  if (url.startsWith("ext:")) {
    return url.slice(
      0,
      url.indexOf("/", 4) > 0 ? url.indexOf("/", 4) : undefined,
    );
  }
  if (url.startsWith("node:")) return "node: polyfills";
  return url;
}

function shortUrl(url: string): string {
  return url.slice(url.lastIndexOf("/") + 1);
}

function summarise(path: string, profile: Profile, top: number): string {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i]!;
    selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  let total = 0;
  let idle = 0;
  const areas = new Map<string, number>();
  const fns = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const frame = byId.get(id)!.callFrame;
    total += us;
    if (frame.functionName === "(idle)") {
      idle += us;
      continue;
    }
    const a = area(frame.url, frame.functionName);
    areas.set(a, (areas.get(a) ?? 0) + us);
    const key = `${frame.functionName || "(anonymous)"} ${
      shortUrl(frame.url)
    }:${frame.lineNumber + 1}`;
    fns.set(key, (fns.get(key) ?? 0) + us);
  }
  const busy = total - idle;
  const pct = (us: number): string =>
    `${(100 * us / busy).toFixed(1).padStart(5)}%`;
  const lines = [
    `${path}: ${(total / 1000).toFixed(0)} ms sampled, ${
      (busy / 1000).toFixed(0)
    } ms busy (${(100 * busy / total).toFixed(0)}%)`,
    "  by area (share of busy time):",
  ];
  for (const [a, us] of [...areas].toSorted((x, y) => y[1] - x[1])) {
    if (us / busy < 0.005) break;
    lines.push(`    ${pct(us)}  ${a}`);
  }
  lines.push("  by function (self time):");
  for (
    const [f, us] of [...fns].toSorted((x, y) => y[1] - x[1]).slice(0, top)
  ) {
    lines.push(`    ${pct(us)}  ${f}`);
  }
  return lines.join("\n");
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    args: Deno.args,
    allowPositionals: true,
    options: { top: { type: "string", default: "25" } },
  });
  if (positionals.length === 0) {
    throw new TypeError("Usage: _profile_top.ts [--top N] <file.cpuprofile>…");
  }
  for (const path of positionals) {
    const profile = JSON.parse(await Deno.readTextFile(path)) as Profile;
    console.log(summarise(path, profile, Number(values.top)));
    console.log();
  }
}

if (import.meta.main) await main();
