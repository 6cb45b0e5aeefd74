/**
 * The map engine's own cost per item, without a pool: `createMapStream` over
 * a fake context whose tasks answer on the next macrotask, read with
 * `for await` as a program would. Prints, per case, the median CPU time of a
 * warm map of 100k items and the ratio to a baseline measured in the same
 * run: the same results yielded by a bare async iterator in lists, which is
 * what any `for await` consumer pays anyway.
 *
 * ```sh
 * deno run -A bench/map_engine.ts [--items 100000] [--maps 20]
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";
import { createMapStream, type MapOptions } from "../src/map_stream.ts";

/** CPU time of this thread (ms); falls back to wall time off Linux. */
function cpuMs(): number {
  try {
    return Number(
      Deno.readTextFileSync("/proc/thread-self/schedstat").split(" ")[0],
    ) /
      1e6;
  } catch {
    return performance.now();
  }
}

/** Runs `fn` after the current macrotask, batching the calls of one turn. */
function laterQueue(): { later: (fn: () => void) => void; close: () => void } {
  const channel = new MessageChannel();
  let pending: (() => void)[] = [];
  channel.port1.onmessage = () => {
    const run = pending;
    pending = [];
    for (const fn of run) fn();
  };
  return {
    later(fn) {
      if (pending.push(fn) === 1) channel.port2.postMessage(0);
    },
    close: () => channel.port1.close(),
  };
}

/** One map of `items` through the engine; returns the sum of results. */
async function engineMap(
  items: number[],
  options: MapOptions,
  later: (fn: () => void) => void,
): Promise<number> {
  const stream = createMapStream<number>({
    submit: (args, kind) =>
      new Promise((resolve) =>
        later(() =>
          resolve(
            kind === "call"
              ? (args[0] as number) + 2
              : (args as number[]).map((x) => x + 2),
          )
        )
      ),
    slots: () => 4,
    // Adaptive chunks of a tiny function: 1 ms / 0.3 µs, capped at 4096.
    itemMs: () => 0.0003,
    sources: [items],
    options,
    retries: 0,
  });
  let sum = 0;
  for await (const y of stream) sum += y;
  return sum;
}

/**
 * The baseline: the same results computed in lists of 4096 on the next
 * macrotask and yielded through `for await` by the leanest iterator (a
 * resolved promise per result).
 */
async function bareMap(
  items: number[],
  later: (fn: () => void) => void,
): Promise<number> {
  let list: number[] = [];
  let at = 0;
  let from = 0;
  const refill = (): Promise<IteratorResult<number>> =>
    new Promise((resolve) =>
      later(() => {
        if (from >= items.length) {
          resolve({ value: undefined, done: true });
          return;
        }
        list = items.slice(from, from += 4096).map((x) => x + 2);
        at = 1;
        resolve({ value: list[0]!, done: false });
      })
    );
  const iterator: AsyncIterableIterator<number> = {
    next: () =>
      at < list.length
        ? Promise.resolve({ value: list[at++]!, done: false })
        : refill(),
    [Symbol.asyncIterator]: () => iterator,
  };
  let sum = 0;
  for await (const y of iterator) sum += y;
  return sum;
}

function median(xs: number[]): number {
  const sorted = xs.toSorted((a, b) => a - b);
  return sorted[sorted.length >> 1]!;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      items: { type: "string", default: "100000" },
      maps: { type: "string", default: "20" },
    },
  });
  const n = Number(values.items);
  const maps = Number(values.maps);
  const items = Array.from({ length: n }, (_, i) => i);
  const expected = n * (n - 1) / 2 + 2 * n;
  const { later, close } = laterQueue();
  const cases: [string, () => Promise<number>][] = [
    ["bare for await (baseline)", () => bareMap(items, later)],
    ["map, default options", () => engineMap(items, {}, later)],
    ["map, chunkSize 100", () => engineMap(items, { chunkSize: 100 }, later)],
    ["map, chunkSize 1", () => engineMap(items, { chunkSize: 1 }, later)],
  ];
  const times = new Map<string, number[]>(cases.map(([name]) => [name, []]));
  // Interleaved rounds; the first half warms up.
  for (let round = 0; round < maps; round++) {
    for (const [name, run] of cases) {
      const c0 = cpuMs();
      const sum = await run();
      const ms = cpuMs() - c0;
      if (sum !== expected) throw new Error(`${name}: sum ${sum}`);
      if (round >= maps / 2) times.get(name)!.push(ms);
    }
  }
  close();
  const base = median(times.get(cases[0]![0])!);
  for (const [name] of cases) {
    const ms = median(times.get(name)!);
    console.log(
      `${name.padEnd(28)} ${ms.toFixed(1).padStart(6)} ms CPU per ${n} items ` +
        `(${(ms * 1e6 / n).toFixed(0).padStart(4)} ns/item, ` +
        `${(ms / base).toFixed(2)}x baseline)`,
    );
  }
}

if (import.meta.main) await main();
