/**
 * The scale harness: what the pool itself costs per worker, from 2 to 2,000
 * workers, with simulated workers that answer at once.
 *
 * A simulated host (`bench/_sim_host.ts`) is one process holding up to 500
 * worker connections, each run by the real worker runtime, started by the
 * pool as if it were `ssh` (`ssh.binary` is `deno`). So the pool runs its
 * real code (SSH launcher, handshake, scheduler, protocol) against workers
 * that speak the real wire protocol, and what is measured is the pool.
 *
 * ```sh
 * deno run -A bench/scale.ts [--rounds 3] [--workers 2,20,200,2000] [--local 2,64] [--tasks 20000] [--json]
 * ```
 *
 * To profile one pass of one case (the pool process):
 * `deno run -A --cpu-prof --cpu-prof-dir=DIR bench/scale.ts --case sim:2000
 * --profile-pass map`, then `deno run -A bench/_profile_top.ts --window
 * DIR/*.cpuprofile`.
 *
 * Each case runs in a fresh process (`--case sim:N` or `--case local:N`);
 * a round runs every case once, interleaved; the table shows medians over
 * the rounds. Per case:
 *
 * - **ready**: `new Pool(...)` until `ready` (all connected, handshaken).
 * - **RSS per connection**: the pool process's RSS after `ready` minus its
 *   RSS before the pool was created, divided by the workers.
 * - **per-task cost**: `tasks` concurrent `pool.run(x => x + 2, i)` and one
 *   `pool.map(x => x + 2, tasks items, { chunkSize: 1 })`, after one untimed
 *   pass of each with the same function (so every worker has it defined);
 *   reported as the pool process's main-thread CPU time per
 *   task (`/proc/self/schedstat`, nanoseconds) and as wall time per task.
 *   The workers answer at once, so the CPU figure is the pool's own cost.
 *   The target: flat within 1.5x from 2 to 2,000 workers.
 *
 * `local:N` does the same with N real local workers (`new Pool(N)`): on two
 * CPUs, 64 of them are oversubscribed on purpose.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { Pool, type PoolOptions } from "../mod.ts";
import {
  benchWindowEnd,
  benchWindowStart,
  mainThreadCpuMs,
} from "./_measure.ts";

const SIM_HOST = new URL("./_sim_host.ts", import.meta.url).pathname;
const SELF = new URL(import.meta.url).pathname;
/** Most connections one simulated host holds. */
const PER_HOST = 500;

/** What one case reports. */
export interface ScaleResult {
  case: string;
  workers: number;
  readyMs: number;
  rssBeforeBytes: number;
  rssReadyBytes: number;
  rssPerWorkerBytes: number;
  tasks: number;
  runCpuNsPerTask: number;
  runWallNsPerTask: number;
  mapCpuNsPerTask: number;
  mapWallNsPerTask: number;
  rssAfterBytes: number;
}

/** CPU time of this process's main thread, in nanoseconds. */
function mainThreadCpuNs(): number {
  return mainThreadCpuMs() * 1e6;
}

function poolOptions(kind: string, workers: number): PoolOptions {
  if (kind === "local") return { workers };
  const hosts: string[] = [];
  const groups = Math.ceil(workers / PER_HOST);
  let left = workers;
  for (let g = 0; g < groups; g++) {
    const n = Math.ceil(left / (groups - g));
    hosts.push(`ssh://sim${g + 1}/${n}`);
    left -= n;
  }
  return {
    workers: 0,
    hosts,
    ssh: { binary: Deno.execPath(), args: ["run", "-A", SIM_HOST] },
    startTimeout: 120_000,
  };
}

async function runCase(
  name: string,
  tasks: number,
  profilePass?: string,
): Promise<ScaleResult> {
  const match = /^(sim|local):(\d+)$/.exec(name);
  if (!match) throw new TypeError(`Unknown case ${name}`);
  const kind = match[1]!;
  const workers = Number(match[2]);
  const fn = (x: number): number => x + 2;
  const items = Array.from({ length: tasks }, (_, i) => i);
  const expect = (f: number): number => tasks * (tasks - 1) / 2 + f * tasks;
  // Touch what the timed part uses before the baseline RSS.
  const rssBefore = Deno.memoryUsage().rss;
  const t0 = performance.now();
  await using pool = new Pool(poolOptions(kind, workers));
  await pool.ready;
  const readyMs = performance.now() - t0;
  const rssReady = Deno.memoryUsage().rss;
  if (pool.totalWorkers !== workers) {
    throw new Error(`${pool.totalWorkers} workers, expected ${workers}`);
  }
  const runAll = async (f: (x: number) => number): Promise<number> => {
    const promises = new Array<Promise<number>>(tasks);
    for (let i = 0; i < tasks; i++) promises[i] = pool.run(f, i);
    let sum = 0;
    for (const y of await Promise.all(promises)) sum += y;
    return sum;
  };
  const mapAll = async (f: (x: number) => number): Promise<number> => {
    let sum = 0;
    for await (const y of pool.map(f, items, { chunkSize: 1 })) sum += y;
    return sum;
  };
  const timed = async (
    body: () => Promise<number>,
    want: number,
    pass?: string,
  ): Promise<{ cpu: number; wall: number }> => {
    if (pass !== undefined && pass === profilePass) benchWindowStart();
    const c0 = mainThreadCpuNs();
    const w0 = performance.now();
    const sum = await body();
    const wall = (performance.now() - w0) * 1e6 / tasks;
    const cpu = (mainThreadCpuNs() - c0) / tasks;
    if (pass !== undefined && pass === profilePass) benchWindowEnd();
    if (sum !== want) throw new Error(`Sum is wrong: ${sum}`);
    return { cpu, wall };
  };
  // The untimed passes use the same function: every worker has its
  // definition before the timed pass (a fixed cost per worker, not per task).
  await timed(() => runAll(fn), expect(2));
  const run = await timed(() => runAll(fn), expect(2), "run");
  await timed(() => mapAll(fn), expect(2));
  const map = await timed(() => mapAll(fn), expect(2), "map");
  return {
    case: name,
    workers,
    readyMs,
    rssBeforeBytes: rssBefore,
    rssReadyBytes: rssReady,
    rssPerWorkerBytes: (rssReady - rssBefore) / workers,
    tasks,
    runCpuNsPerTask: run.cpu,
    runWallNsPerTask: run.wall,
    mapCpuNsPerTask: map.cpu,
    mapWallNsPerTask: map.wall,
    rssAfterBytes: Deno.memoryUsage().rss,
  };
}

async function measure(name: string, tasks: number): Promise<ScaleResult> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", SELF, "--case", name, "--tasks", String(tasks)],
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    throw new Error(`scale case ${name} failed (code ${out.code}):\n${text}`);
  }
  return JSON.parse(text.trimEnd().split("\n").pop()!) as ScaleResult;
}

function median(values: number[]): number {
  const s = values.toSorted((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** The table of medians, as markdown. */
export function scaleTable(results: ScaleResult[][]): string {
  const names = [...new Set(results.flat().map((r) => r.case))];
  const lines = [
    "| workers | ready | pool RSS per connection | run(): pool CPU per task | run(): tasks/s | map chunk 1: pool CPU per task | map: tasks/s | pool CPU per task vs the fewest workers (run, map) |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
  ];
  const base = new Map<string, ScaleResult[]>();
  for (const name of names) {
    base.set(name, results.flat().filter((r) => r.case === name));
  }
  const first = (kind: string): string | undefined =>
    names.find((n) => n.startsWith(kind));
  for (const name of names) {
    const rs = base.get(name)!;
    const med = (k: keyof ScaleResult): number =>
      median(rs.map((r) => r[k] as number));
    const ref = base.get(first(name.split(":")[0]!)!)!;
    const refMed = (k: keyof ScaleResult): number =>
      median(ref.map((r) => r[k] as number));
    const us = (ns: number): string => `${(ns / 1000).toFixed(2)} us`;
    const rate = (ns: number): string =>
      `${Math.round(1e9 / ns).toLocaleString("en-US")}`;
    lines.push(
      `| ${name.replace("sim:", "simulated ").replace("local:", "local ")} | ${
        med("readyMs").toFixed(0)
      } ms | ${(med("rssPerWorkerBytes") / 1024).toFixed(0)} KiB | ${
        us(med("runCpuNsPerTask"))
      } | ${rate(med("runWallNsPerTask"))} | ${us(med("mapCpuNsPerTask"))} | ${
        rate(med("mapWallNsPerTask"))
      } | ${
        (med("runCpuNsPerTask") / refMed("runCpuNsPerTask")).toFixed(2)
      }x, ${
        (med("mapCpuNsPerTask") / refMed("mapCpuNsPerTask")).toFixed(2)
      }x |`,
    );
  }
  return lines.join("\n");
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      case: { type: "string" },
      rounds: { type: "string", default: "3" },
      workers: { type: "string", default: "2,20,200,2000" },
      local: { type: "string", default: "2,64" },
      tasks: { type: "string", default: "20000" },
      json: { type: "boolean", default: false },
      "profile-pass": { type: "string" },
    },
  });
  const tasks = Number(values.tasks);
  if (values.case !== undefined) {
    console.log(
      JSON.stringify(await runCase(values.case, tasks, values["profile-pass"])),
    );
    return;
  }
  const list = (s: string): number[] =>
    s.split(",").filter(Boolean).map(Number);
  const cases = [
    ...list(values.workers).map((n) => `sim:${n}`),
    ...list(values.local).map((n) => `local:${n}`),
  ];
  const results: ScaleResult[][] = [];
  const loadStart = Deno.loadavg();
  for (let round = 1; round <= Number(values.rounds); round++) {
    const row: ScaleResult[] = [];
    for (const name of cases) {
      const r = await measure(name, tasks);
      console.error(
        `scale: round ${round} ${name}: ready ${r.readyMs.toFixed(0)} ms, ` +
          `${(r.rssPerWorkerBytes / 1024).toFixed(0)} KiB/conn, run ${
            (r.runCpuNsPerTask / 1000).toFixed(2)
          } us CPU/task, map ${(r.mapCpuNsPerTask / 1000).toFixed(2)} us`,
      );
      row.push(r);
    }
    results.push(row);
  }
  if (values.json) {
    console.log(
      JSON.stringify({ loadStart, loadEnd: Deno.loadavg(), results }),
    );
  } else {
    console.log(
      `load average ${
        loadStart.map((x) => x.toFixed(1)).join(" ")
      } at the start, ${
        Deno.loadavg().map((x) => x.toFixed(1)).join(" ")
      } at the end; ${tasks} tasks per pass; medians of ${results.length} rounds\n`,
    );
    console.log(scaleTable(results));
  }
}

if (import.meta.main) await main();
