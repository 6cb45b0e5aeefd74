/**
 * CPU-bound number crunching with a progress display: counts the primes
 * below `--limit` by splitting the range into blocks, sieving each block on a
 * worker, and drawing progress on stderr with `progress()` (a bar on a
 * terminal, plain lines otherwise).
 *
 * ```sh
 * deno run -A examples/crunch_numbers.ts --limit 50000000 --blocks 200
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";
import { Pool, progress } from "../mod.ts";

/** The task (runs in a worker): primes in `[from, to)`, by a segmented sieve. */
function countPrimes(from: number, to: number): number {
  const root = Math.floor(Math.sqrt(to)) + 1;
  const small = new Uint8Array(root + 1); // 1 = composite
  const base: number[] = [];
  for (let i = 2; i <= root; i++) {
    if (small[i]) continue;
    base.push(i);
    for (let j = i * i; j <= root; j += i) small[j] = 1;
  }
  const start = Math.max(from, 2);
  if (start >= to) return 0;
  const block = new Uint8Array(to - start);
  for (const p of base) {
    let first = Math.max(p * p, Math.ceil(start / p) * p);
    for (; first < to; first += p) block[first - start] = 1;
  }
  let count = 0;
  for (let i = 0; i < block.length; i++) if (!block[i]) count++;
  return count;
}

/** Known values of π(n), to check the result. */
const KNOWN: Record<number, number> = {
  1_000: 168,
  100_000: 9_592,
  1_000_000: 78_498,
  10_000_000: 664_579,
  100_000_000: 5_761_455,
};

/** Runs the example. */
export async function main(args: string[] = Deno.args): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      limit: { type: "string", default: "10000000" },
      blocks: { type: "string", default: "100" },
      workers: { type: "string" },
    },
  });
  const limit = Number(values.limit);
  const blocks = Number(values.blocks);
  const step = Math.ceil(limit / blocks);
  const starts = Array.from({ length: blocks }, (_, i) => i * step);
  const ends = starts.map((s) => Math.min(s + step, limit));

  await using pool = await Pool.create(
    values.workers === undefined ? {} : { workers: Number(values.workers) },
  );
  console.log(
    `Counting primes below ${limit} in ${blocks} blocks on ${pool.totalWorkers} workers ...`,
  );
  const started = performance.now();
  let total = 0;
  // Two sources are zipped: countPrimes(starts[i], ends[i]).
  const counts = pool.map(countPrimes, starts, ends)
    .pipeThrough(progress({ total: blocks, label: "blocks" }));
  for await (const count of counts) total += count;
  const seconds = (performance.now() - started) / 1000;
  console.log(`primes below ${limit}: ${total} (${seconds.toFixed(2)} s)`);
  const known = KNOWN[limit];
  if (known !== undefined) {
    if (known !== total) throw new Error(`expected ${known}, got ${total}`);
    console.log(`matches the known value of pi(${limit})`);
  }
}

if (import.meta.main) await main();
