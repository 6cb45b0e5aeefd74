/**
 * Bounding what callers may queue: the pool option `maxQueue`,
 * `QueueFullError` and `Pool.drained()`.
 *
 * @module
 */
import assert from "node:assert/strict";
import { Pool, QueueFullError } from "../mod.ts";
import { fileGate, waitForFile } from "./_util.ts";

Deno.test("Pool with maxQueue rejects run() past the limit with QueueFullError and queues nothing", async () => {
  await using gate = await fileGate();
  await using pool = await Pool.create({ workers: 1, qsize: 1, maxQueue: 2 });
  const running = pool.run(waitForFile, gate.path, 0); // on the worker
  const queued = [
    pool.run(waitForFile, gate.path, 1),
    pool.run(waitForFile, gate.path, 2),
  ];
  assert.equal(pool.stats().queued, 2);
  const refused = await pool.run(() => 1).catch((e) => e);
  assert.ok(refused instanceof QueueFullError, String(refused));
  assert.equal(refused.maxQueue, 2);
  assert.match(refused.message, /maxQueue: 2.*drained\(\)/);
  assert.equal(pool.stats().queued, 2, "the refused task was queued");
  await assert.rejects(pool.submit(() => 1), QueueFullError);
  await assert.rejects(pool.apply(() => 1, []), QueueFullError);
  // A map is bounded by its own budget and is never refused.
  const mapped = Array.fromAsync(pool.map((x: number) => x, [1, 2, 3]));
  let isDrained = false;
  const drained = pool.drained().then(() => isDrained = true);
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(isDrained, false, "drained() resolved while tasks wait");
  await gate.open();
  await drained;
  assert.deepEqual(await mapped, [1, 2, 3]);
  assert.deepEqual(await Promise.all([running, ...queued]), [0, 1, 2]);
  assert.equal(await pool.run(() => 7), 7);
});

Deno.test("Pool.drained() resolves at once when nothing waits, and paces a producer", async () => {
  await using pool = new Pool({ workers: 2, maxQueue: 8 });
  await pool.drained();
  const results: Promise<number>[] = [];
  for (let i = 0; i < 500; i++) {
    if (pool.stats().queued >= 8) await pool.drained();
    results.push(pool.run((x: number) => x + 1, i));
  }
  const values = await Promise.all(results);
  assert.deepEqual(values, Array.from({ length: 500 }, (_, i) => i + 1));
});

Deno.test("Pool option maxQueue is validated", () => {
  assert.throws(() => new Pool({ lazy: true, maxQueue: 0 }), RangeError);
  assert.throws(() => new Pool({ lazy: true, maxQueue: 1.5 }), RangeError);
  assert.throws(
    // deno-lint-ignore no-explicit-any
    () => new Pool({ lazy: true, maxQueue: "9" as any }),
    TypeError,
  );
  const unbounded = new Pool({ lazy: true, maxQueue: Infinity });
  return unbounded.close();
});
