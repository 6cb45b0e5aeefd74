/**
 * Summarises V8 `.cpuprofile` files (from `deno run --cpu-prof`): where the
 * busy time went, by area (the pool's `src/` files, msgpackr, Deno's runtime,
 * GC) and by function (self time). Idle time is left out of the shares.
 *
 * ```sh
 * deno run -A bench/_pool_case.ts map-100k-c1 --profile-dir /tmp/prof/workers
 * deno run -A --cpu-prof --cpu-prof-dir=/tmp/prof/pool bench/_pool_case.ts map-100k-c1
 * deno run -A bench/_profile_top.ts [--top 25] [--window] /tmp/prof/pool/*.cpuprofile
 * ```
 *
 * `--window` keeps only the samples taken while a case was timed: between
 * the pool's calls of `benchWindowStart` and `benchWindowEnd` (markers that
 * `_pool_case.ts` calls around its timed pass when profiling). V8 stamps
 * samples with the machine's monotonic clock, so the window found in the
 * pool's profile also cuts the workers' profiles (give the pool's file
 * first).
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
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** A span of the monotonic clock, in microseconds. */
interface Window {
  from: number;
  to: number;
}

/** Sample times (µs, monotonic) of a profile. */
function sampleTimes(profile: Profile): number[] {
  const times = new Array<number>(profile.samples.length);
  let t = profile.startTime;
  for (let i = 0; i < times.length; i++) {
    t += profile.timeDeltas[i] ?? 0;
    times[i] = t;
  }
  return times;
}

/** The span between the window markers' samples, if the profile has them. */
function findWindow(profile: Profile): Window | undefined {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const times = sampleTimes(profile);
  let from: number | undefined;
  let to: number | undefined;
  // A marker's samples may sit under it in the tree: climb via parents.
  const parent = new Map<number, number>();
  for (const n of profile.nodes as (ProfileNode & { children?: number[] })[]) {
    for (const c of n.children ?? []) parent.set(c, n.id);
  }
  const marker = (id: number): string | undefined => {
    for (
      let at: number | undefined = id;
      at !== undefined;
      at = parent.get(at)
    ) {
      const name = byId.get(at)!.callFrame.functionName;
      if (name === "benchWindowStart" || name === "benchWindowEnd") return name;
    }
    return undefined;
  };
  for (let i = 0; i < times.length; i++) {
    const m = marker(profile.samples[i]!);
    if (m === "benchWindowStart") from = times[i];
    else if (m === "benchWindowEnd" && to === undefined) to = times[i];
  }
  return from !== undefined && to !== undefined && to > from
    ? { from, to }
    : undefined;
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

function summarise(
  path: string,
  profile: Profile,
  top: number,
  window?: Window,
): string {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  const times = sampleTimes(profile);
  for (let i = 0; i < profile.samples.length; i++) {
    if (window && (times[i]! < window.from || times[i]! > window.to)) continue;
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
    `${path}${
      window
        ? ` (window of ${((window.to - window.from) / 1000).toFixed(0)} ms)`
        : ""
    }: ${(total / 1000).toFixed(0)} ms sampled, ${
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
    options: {
      top: { type: "string", default: "25" },
      window: { type: "boolean", default: false },
    },
  });
  if (positionals.length === 0) {
    throw new TypeError(
      "Usage: _profile_top.ts [--top N] [--window] <file.cpuprofile>…",
    );
  }
  let window: Window | undefined;
  for (const path of positionals) {
    const profile = JSON.parse(await Deno.readTextFile(path)) as Profile;
    if (values.window) {
      window = findWindow(profile) ?? window;
      if (!window) {
        throw new Error(
          `${path} has no benchWindowStart/benchWindowEnd samples: give the pool's profile first`,
        );
      }
    }
    console.log(summarise(path, profile, Number(values.top), window));
    console.log();
  }
}

if (import.meta.main) await main();
