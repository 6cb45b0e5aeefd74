/**
 * `Pool.stats()`: what the counters count.
 *
 * @module
 */
import assert from "node:assert/strict";
import { Pool } from "../mod.ts";

Deno.test("Pool.stats() counts map items, not chunks", async () => {
  await using pool = new Pool(2);
  const n = 10_000;
  let sum = 0;
  for await (
    const y of pool.map(
      (x: number) => x,
      Array.from({ length: n }, (_, i) => i),
      {
        chunkSize: 100,
      },
    )
  ) sum += y;
  assert.equal(sum, (n * (n - 1)) / 2);
  await pool.run(() => 1);
  const stats = pool.stats();
  assert.equal(stats.done, n + 1);
  assert.equal(stats.failed, 0);
});

Deno.test("Pool.stats() counts each item of a failed chunk as failed", async () => {
  await using pool = new Pool(1);
  const stream = pool.map(
    (x: number) => {
      if (x === 5) throw new Error("five");
      return x;
    },
    Array.from({ length: 10 }, (_, i) => i),
    { chunkSize: 10 },
  );
  await assert.rejects(Array.fromAsync(stream), /five/);
  assert.equal(pool.stats().failed, 10);
  assert.equal(pool.stats().done, 0);
});
