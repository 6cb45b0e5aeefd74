/**
 * What the map engine reads (src/_map_input.ts): source adapters and the size
 * estimate of its byte budget.
 *
 * @module
 */
import assert from "node:assert/strict";
import { estimateBytes, settlesSoon, toSource } from "../src/_map_input.ts";

Deno.test("estimateBytes() is exact for bytes and strings, constant for primitives", () => {
  assert.equal(estimateBytes(new Uint8Array(1 << 20)), (1 << 20) + 8);
  assert.equal(estimateBytes(new Float64Array(10)), 80 + 8);
  assert.equal(estimateBytes(new ArrayBuffer(100)), 108);
  assert.equal(estimateBytes("x".repeat(1000)), 1004);
  assert.equal(estimateBytes(42), estimateBytes(true));
  assert.ok(estimateBytes(null) < 16);
});

Deno.test("estimateBytes() samples large arrays and objects within reason", () => {
  const buffers = Array.from({ length: 1000 }, () => new Uint8Array(1000));
  const exact = 1000 * 1008;
  const estimate = estimateBytes(buffers);
  assert.ok(Math.abs(estimate - exact) < exact * 0.01, `${estimate}`);
  const record = Object.fromEntries(
    Array.from({ length: 100 }, (_, i) => [`k${i}`, "v".repeat(100)]),
  );
  const guess = estimateBytes(record);
  assert.ok(guess > 100 * 100 && guess < 100 * 150, `${guess}`);
  // Deep nesting is cut off, not walked.
  let deep: unknown = new Uint8Array(1 << 20);
  for (let i = 0; i < 10; i++) deep = [deep];
  assert.ok(estimateBytes(deep) < 1000);
});

Deno.test("toSource() reads iterables, async iterables and streams; rejects the rest", async () => {
  const sync = toSource([1, 2], 0);
  assert.deepEqual(sync.next(), { done: false, value: 1 });
  const stream = toSource(ReadableStream.from([3]), 0);
  assert.deepEqual(await stream.next(), { done: false, value: 3 });
  stream.return();
  assert.throws(() => toSource(42, 0), /argument 2 must be an Iterable/);
  assert.throws(() => toSource(null, 1), /argument 3 .* got null/);
});

Deno.test("settlesSoon() tells a ready promise from one waiting for a timer", async () => {
  assert.equal(await settlesSoon(Promise.resolve(1)), true);
  async function* lines(): AsyncGenerator<number> {
    yield 1;
  }
  assert.equal(await settlesSoon(lines().next()), true);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const later = new Promise((resolve) => timer = setTimeout(resolve, 10_000));
  assert.equal(await settlesSoon(later), false);
  clearTimeout(timer);
});
