/**
 * One pool benchmark in a fresh process, for `bench/run.ts`: starts a pool,
 * warms it up, times one run of the case and prints one JSON line
 * (`{"case": …, "value": …, …}`) as its last line on stdout.
 *
 * ```sh
 * deno run -A bench/_pool_case.ts <case> [--quick] [--profile-dir DIR]
 * ```
 *
 * Cases (`--quick` divides the counts by 10 and the 1 MiB items by 5):
 *
 * - `map-100k-c<K>`, `map-1M-c<K>`: `pool.map(x => x + 2, n items,
 *   { chunkSize: K })` on `new Pool(2)`; `map-100k-default`,
 *   `map-1M-default` pass no options. Tasks per second.
 * - `run-100k`: 100k concurrent `pool.run(x => x + 2, i)`. Tasks per second.
 * - `cpu-1`, `cpu-2`: `pool.map` of 400 tasks that each spin 10 ms on
 *   `performance.now()`, on `new Pool(1)` and `new Pool(2)`. Tasks per second.
 * - `bytes-echo`: 200 distinct 1 MiB `Uint8Array`s through
 *   `pool.map(x => x)`; each payload byte goes out and back and is counted
 *   once, as `rawEchoRate` counts. Bytes per second.
 * - `bytes-len`: the same items through `pool.map(x => x.length)`: the bytes
 *   go one way. Bytes per second.
 * - `create-4`: `await Pool.create(4)` (after one untimed create and close).
 *   Milliseconds.
 *
 * Cold cases, the same as `bench/_distex_case.py` runs for Python distex:
 * a fresh pool, one timed pass, nothing warmed up (the pool is ready first):
 *
 * - `cold-map-100k-c1`, `cold-map-100k-c100`, `cold-map-100k-default`,
 *   `cold-map-1M-c100`: the first `pool.map(x => x + 2, …)` on a fresh
 *   `new Pool(2)`. Tasks per second.
 * - `cold-run-100k`: the first 100k concurrent `pool.run`. Tasks per second.
 * - `cold-bytes-len`: the first `map(x => x.length)` over 200 x 1 MiB.
 *   Bytes per second.
 * - `floor-100k-c100`: no pool: the same items, chunks of 100 mapped in
 *   this fresh process and consumed by the same `for await` loop through a
 *   minimal async iterator; the floor a first map cannot beat. Tasks per
 *   second.
 * - `ready-4`, `ready-32`: `new Pool(n)` until `ready`, the first pool of
 *   the process. Milliseconds.
 * - `curve-100k-c100`, `curve-100k-default`: five successive 100k maps on
 *   one fresh pool; the value is the first map's milliseconds and
 *   `detail.mapsMs` holds all five (the cold-vs-warm curve).
 *
 * The cold and curve cases also report `detail.cpuMs`: CPU time of the
 * process's main thread (where the pool runs) during the timed pass(es),
 * which other users' load moves far less than wall time.
 *
 * Before the timed pass, an untimed warm-up pass of the same size and options
 * runs a function of different source text, so the pool and the workers are
 * warm (JIT tiers, grown buffers, adaptive depth) but the pool has not yet
 * measured the timed function (the default `map` starts from scratch). The
 * first pass in a fresh process is often half as fast as the second; its
 * rate is kept as `detail.warmupPerS` (`warmupBytesPerS`). The CPU-bound
 * cases warm up with 10 shorter tasks per worker.
 *
 * `--profile-dir DIR` starts the workers with `--cpu-prof` writing into DIR
 * (profile the pool process itself with `deno run --cpu-prof`).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { type MapOptions, Pool, type PoolOptions } from "../mod.ts";
import {
  benchWindowEnd,
  benchWindowStart,
  mainThreadCpuMs,
} from "./_measure.ts";

/** What a case prints. */
export interface CaseResult {
  /** The case name, as given. */
  case: string;
  /** The figure: a rate per second, or milliseconds. */
  value: number;
  /** Unit of `value`. */
  unit: "tasks/s" | "B/s" | "ms";
  /** Units timed (tasks or bytes). */
  count: number;
  /** Milliseconds timed. */
  ms: number;
  /** Anything else worth keeping (counts, chunk size). */
  detail: Record<string, unknown>;
}

const MIB = 1 << 20;

/** How long each CPU-bound task spins (ms), as written in `spin` below. */
const CPU_TASK_MS = 10;

interface Context {
  quick: boolean;
  /** Marks the start (`true`) or end of a timed pass when profiling. */
  mark: (start: boolean) => void;
  poolOptions: (workers: number) => PoolOptions;
}

type CaseFn = (name: string, ctx: Context) => Promise<CaseResult>;

/** A case's result as a rate: `count` units in `ms` milliseconds. */
function rate(
  name: string,
  count: number,
  ms: number,
  unit: "tasks/s" | "B/s",
  detail: Record<string, unknown>,
): CaseResult {
  return { case: name, value: count / (ms / 1000), unit, count, ms, detail };
}

function numbers(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

function fail(message: string): never {
  throw new Error(message);
}

/** Consumes `pool.map(fn, items, options)` and returns the sum of results. */
async function sumOfMap(
  pool: Pool,
  fn: (x: number) => number,
  items: number[],
  options: MapOptions,
): Promise<number> {
  let sum = 0;
  for await (const y of pool.map(fn, items, options)) sum += y;
  return sum;
}

async function tinyMap(name: string, ctx: Context): Promise<CaseResult> {
  const match = /^map-(100k|1M)-(c(\d+)|default)$/.exec(name) ??
    fail(`Unknown case ${name}`);
  const full = match[1] === "1M" ? 1_000_000 : 100_000;
  const n = ctx.quick ? full / 10 : full;
  const chunkSize = match[3] === undefined ? undefined : Number(match[3]);
  const options: MapOptions = chunkSize === undefined ? {} : { chunkSize };
  const items = numbers(n);
  await using pool = new Pool(ctx.poolOptions(2));
  await pool.ready;
  const w0 = performance.now();
  const warm = await sumOfMap(pool, (x: number) => x + 3, items, options);
  const warmMs = performance.now() - w0;
  if (warm !== n * (n - 1) / 2 + 3 * n) fail(`Warm-up sum is wrong: ${warm}`);
  const t0 = performance.now();
  const sum = await sumOfMap(pool, (x: number) => x + 2, items, options);
  const ms = performance.now() - t0;
  if (sum !== n * (n - 1) / 2 + 2 * n) fail(`Sum is wrong: ${sum}`);
  return rate(name, n, ms, "tasks/s", {
    chunkSize: chunkSize ?? "default",
    workers: 2,
    warmupPerS: n / (warmMs / 1000),
  });
}

async function tinyRun(name: string, ctx: Context): Promise<CaseResult> {
  const n = ctx.quick ? 10_000 : 100_000;
  await using pool = new Pool(ctx.poolOptions(2));
  await pool.ready;
  const runAll = async (fn: (x: number) => number, count: number) => {
    const promises = new Array<Promise<number>>(count);
    for (let i = 0; i < count; i++) promises[i] = pool.run(fn, i);
    let sum = 0;
    for (const y of await Promise.all(promises)) sum += y;
    return sum;
  };
  const w0 = performance.now();
  const warm = await runAll((x: number) => x + 3, n);
  const warmMs = performance.now() - w0;
  if (warm !== n * (n - 1) / 2 + 3 * n) fail(`Warm-up sum is wrong: ${warm}`);
  const t0 = performance.now();
  const sum = await runAll((x: number) => x + 2, n);
  const ms = performance.now() - t0;
  if (sum !== n * (n - 1) / 2 + 2 * n) fail(`Sum is wrong: ${sum}`);
  return rate(name, n, ms, "tasks/s", {
    concurrent: n,
    workers: 2,
    warmupPerS: n / (warmMs / 1000),
  });
}

async function cpuBound(name: string, ctx: Context): Promise<CaseResult> {
  const workers = name === "cpu-1" ? 1 : name === "cpu-2" ? 2 : 0;
  if (workers === 0) fail(`Unknown case ${name}`);
  const n = ctx.quick ? 80 : 400;
  // Task functions are self-contained: the spin time is in the source text.
  // Each returns how long it took (wall time, ms), to tell time lost inside
  // tasks (the worker descheduled) from time lost between them.
  const spin = (_i: number): number => {
    const start = performance.now();
    const end = start + 10;
    let now = start;
    while (now < end) now = performance.now();
    return now - start;
  };
  const warmSpin = (_i: number): number => {
    const start = performance.now();
    const end = start + 5;
    let now = start;
    while (now < end) now = performance.now();
    return now - start;
  };
  const items = numbers(n);
  await using pool = new Pool(ctx.poolOptions(workers));
  await pool.ready;
  await sumOfMap(pool, warmSpin, items.slice(0, 10 * workers), {});
  const t0 = performance.now();
  const taskMs = await sumOfMap(pool, spin, items, {});
  const ms = performance.now() - t0;
  if (!(taskMs >= n * CPU_TASK_MS)) fail(`Tasks took ${taskMs} ms in all`);
  return rate(name, n, ms, "tasks/s", {
    workers,
    taskMs: CPU_TASK_MS,
    idealTasksPerS: workers * 1000 / CPU_TASK_MS,
    // Mean wall time inside a task: above 10 ms when it was descheduled.
    meanTaskMs: taskMs / n,
    // Share of the workers' wall time spent inside tasks.
    busy: taskMs / (workers * ms),
  });
}

async function bigBytes(name: string, ctx: Context): Promise<CaseResult> {
  const echo = name === "bytes-echo";
  if (!echo && name !== "bytes-len") fail(`Unknown case ${name}`);
  const n = ctx.quick ? 40 : 200;
  const items = Array.from({ length: n }, (_, i) => {
    const bytes = new Uint8Array(MIB);
    bytes.fill(i & 0xff);
    return bytes;
  });
  await using pool = new Pool(ctx.poolOptions(2));
  await pool.ready;
  const fn = echo
    ? (x: Uint8Array): Uint8Array | number => x
    : (x: Uint8Array): Uint8Array | number => x.length;
  const warmFn = echo
    ? (b: Uint8Array): Uint8Array | number => b
    : (b: Uint8Array): Uint8Array | number => b.byteLength;
  const pass = async (
    f: (x: Uint8Array) => Uint8Array | number,
    list: Uint8Array[],
  ): Promise<number> => {
    let bytes = 0;
    let i = 0;
    for await (const y of pool.map(f, list)) {
      if (echo) {
        if (
          !(y instanceof Uint8Array) || y.length !== MIB ||
          y[MIB - 1] !== (i & 0xff)
        ) fail(`Item ${i} came back wrong`);
        bytes += y.length;
      } else {
        if (y !== MIB) fail(`Item ${i} reported length ${y}`);
        bytes += y;
      }
      i++;
    }
    return bytes;
  };
  const w0 = performance.now();
  await pass(warmFn, items);
  const warmMs = performance.now() - w0;
  const t0 = performance.now();
  const bytes = await pass(fn, items);
  const ms = performance.now() - t0;
  if (bytes !== n * MIB) fail(`Counted ${bytes} bytes`);
  return rate(name, bytes, ms, "B/s", {
    items: n,
    itemBytes: MIB,
    direction: echo ? "both" : "one",
    warmupBytesPerS: bytes / (warmMs / 1000),
  });
}

async function create(name: string, ctx: Context): Promise<CaseResult> {
  if (name !== "create-4") fail(`Unknown case ${name}`);
  const warm = await Pool.create(ctx.poolOptions(4));
  await warm.close();
  const t0 = performance.now();
  const pool = await Pool.create(ctx.poolOptions(4));
  const ms = performance.now() - t0;
  await pool.close();
  return {
    case: name,
    value: ms,
    unit: "ms",
    count: 4,
    ms,
    detail: { workers: 4 },
  };
}

async function coldMap(name: string, ctx: Context): Promise<CaseResult> {
  const match = /^cold-map-(100k|1M)-(c(\d+)|default)$/.exec(name) ??
    fail(`Unknown case ${name}`);
  const full = match[1] === "1M" ? 1_000_000 : 100_000;
  const n = ctx.quick ? full / 10 : full;
  const chunkSize = match[3] === undefined ? undefined : Number(match[3]);
  const options: MapOptions = chunkSize === undefined ? {} : { chunkSize };
  const items = numbers(n);
  await using pool = new Pool(ctx.poolOptions(2));
  await pool.ready;
  ctx.mark(true);
  const c0 = mainThreadCpuMs();
  const t0 = performance.now();
  const sum = await sumOfMap(pool, (x: number) => x + 2, items, options);
  const ms = performance.now() - t0;
  const cpuMs = mainThreadCpuMs() - c0;
  ctx.mark(false);
  if (sum !== n * (n - 1) / 2 + 2 * n) fail(`Sum is wrong: ${sum}`);
  return rate(name, n, ms, "tasks/s", {
    chunkSize: chunkSize ?? "default",
    workers: 2,
    cpuMs,
  });
}

/**
 * The floor under `cold-map-100k-c100`: what a fresh process pays for the
 * same consumer loop with no pool at all. The items are cut into chunks of
 * 100 (`slice`), the function runs in this process (`map`), and the results
 * reach the same `for await … sum += y` loop through a minimal hand-written
 * async iterator: no workers, no I/O, no codec. The pool cannot beat this
 * figure on a first map; it tells how much of a first map is the cold
 * consumer pattern itself.
 */
async function floorMap(name: string, ctx: Context): Promise<CaseResult> {
  if (name !== "floor-100k-c100") fail(`Unknown case ${name}`);
  const n = ctx.quick ? 10_000 : 100_000;
  const items = numbers(n);
  const fn = (x: number) => x + 2;
  const inProcess = (): AsyncIterableIterator<number> => {
    let list: number[] = [];
    let at = 0;
    let next = 0;
    return {
      [Symbol.asyncIterator]() {
        return this;
      },
      next(): Promise<IteratorResult<number>> {
        if (at === list.length) {
          if (next >= n) {
            return Promise.resolve({ value: undefined, done: true });
          }
          list = items.slice(next, next + 100).map(fn);
          next += 100;
          at = 0;
        }
        return Promise.resolve({ value: list[at++]!, done: false });
      },
    };
  };
  const c0 = mainThreadCpuMs();
  const t0 = performance.now();
  let sum = 0;
  for await (const y of inProcess()) sum += y;
  const ms = performance.now() - t0;
  const cpuMs = mainThreadCpuMs() - c0;
  if (sum !== n * (n - 1) / 2 + 2 * n) fail(`Sum is wrong: ${sum}`);
  return rate(name, n, ms, "tasks/s", { chunkSize: 100, workers: 0, cpuMs });
}

async function coldRun(name: string, ctx: Context): Promise<CaseResult> {
  const n = ctx.quick ? 10_000 : 100_000;
  await using pool = new Pool(ctx.poolOptions(2));
  await pool.ready;
  ctx.mark(true);
  const c0 = mainThreadCpuMs();
  const t0 = performance.now();
  const promises = new Array<Promise<number>>(n);
  const fn = (x: number) => x + 2;
  for (let i = 0; i < n; i++) promises[i] = pool.run(fn, i);
  let sum = 0;
  for (const y of await Promise.all(promises)) sum += y;
  const ms = performance.now() - t0;
  const cpuMs = mainThreadCpuMs() - c0;
  ctx.mark(false);
  if (sum !== n * (n - 1) / 2 + 2 * n) fail(`Sum is wrong: ${sum}`);
  return rate(name, n, ms, "tasks/s", { concurrent: n, workers: 2, cpuMs });
}

async function coldBytes(name: string, ctx: Context): Promise<CaseResult> {
  if (name !== "cold-bytes-len") fail(`Unknown case ${name}`);
  const n = ctx.quick ? 40 : 200;
  const items = Array.from({ length: n }, (_, i) => {
    const bytes = new Uint8Array(MIB);
    bytes.fill(i & 0xff);
    return bytes;
  });
  await using pool = new Pool(ctx.poolOptions(2));
  await pool.ready;
  ctx.mark(true);
  const c0 = mainThreadCpuMs();
  const t0 = performance.now();
  let bytes = 0;
  for await (const y of pool.map((x: Uint8Array) => x.length, items)) {
    bytes += y;
  }
  const ms = performance.now() - t0;
  const cpuMs = mainThreadCpuMs() - c0;
  ctx.mark(false);
  if (bytes !== n * MIB) fail(`Counted ${bytes} bytes`);
  return rate(name, bytes, ms, "B/s", {
    items: n,
    itemBytes: MIB,
    direction: "one",
    cpuMs,
  });
}

async function ready(name: string, ctx: Context): Promise<CaseResult> {
  const workers = Number(/^ready-(\d+)$/.exec(name)?.[1] ?? NaN);
  if (!Number.isInteger(workers)) fail(`Unknown case ${name}`);
  const t0 = performance.now();
  await using pool = new Pool(ctx.poolOptions(workers));
  await pool.ready;
  const ms = performance.now() - t0;
  return {
    case: name,
    value: ms,
    unit: "ms",
    count: workers,
    ms,
    detail: { workers },
  };
}

async function curve(name: string, ctx: Context): Promise<CaseResult> {
  const match = /^curve-100k-(c(\d+)|default)$/.exec(name) ??
    fail(`Unknown case ${name}`);
  const n = ctx.quick ? 10_000 : 100_000;
  const chunkSize = match[2] === undefined ? undefined : Number(match[2]);
  const options: MapOptions = chunkSize === undefined ? {} : { chunkSize };
  const items = numbers(n);
  await using pool = new Pool(ctx.poolOptions(2));
  await pool.ready;
  const mapsMs: number[] = [];
  const cpuMs: number[] = [];
  for (let k = 0; k < 5; k++) {
    const c0 = mainThreadCpuMs();
    const t0 = performance.now();
    const sum = await sumOfMap(pool, (x: number) => x + 2, items, options);
    mapsMs.push(performance.now() - t0);
    cpuMs.push(mainThreadCpuMs() - c0);
    if (sum !== n * (n - 1) / 2 + 2 * n) fail(`Sum is wrong: ${sum}`);
  }
  return {
    case: name,
    value: mapsMs[0]!,
    unit: "ms",
    count: n,
    ms: mapsMs[0]!,
    detail: { chunkSize: chunkSize ?? "default", mapsMs, cpuMs },
  };
}

function caseFn(name: string): CaseFn {
  if (name.startsWith("cold-map-")) return coldMap;
  if (name === "cold-run-100k") return coldRun;
  if (name.startsWith("floor-")) return floorMap;
  if (name === "cold-bytes-len") return coldBytes;
  if (name.startsWith("ready-")) return ready;
  if (name.startsWith("curve-")) return curve;
  if (name.startsWith("map-")) return tinyMap;
  if (name === "run-100k") return tinyRun;
  if (name.startsWith("cpu-")) return cpuBound;
  if (name.startsWith("bytes-")) return bigBytes;
  if (name.startsWith("create-")) return create;
  return fail(`Unknown case ${name}`);
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    args: Deno.args,
    allowPositionals: true,
    options: {
      quick: { type: "boolean", default: false },
      "profile-dir": { type: "string" },
    },
  });
  const name = positionals[0] ??
    fail("Usage: _pool_case.ts <case> [--quick] [--profile-dir DIR]");
  const profileDir = values["profile-dir"];
  const denoArgs = profileDir === undefined
    ? undefined
    : ["--cpu-prof", `--cpu-prof-dir=${profileDir}`];
  const ctx: Context = {
    quick: values.quick,
    mark: profileDir === undefined
      ? () => {}
      : (start) => start ? benchWindowStart() : benchWindowEnd(),
    poolOptions: (workers) =>
      denoArgs === undefined ? { workers } : { workers, denoArgs },
  };
  const result = await caseFn(name)(name, ctx);
  console.log(JSON.stringify(result));
}

if (import.meta.main) await main();
