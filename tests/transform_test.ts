/**
 * `Pool.transform()`: the `pipeThrough` form of `map()`.
 *
 * @module
 */
import assert from "node:assert/strict";
import { Pool } from "../mod.ts";

Deno.test("Pool.transform() maps a piped stream in order", async () => {
  await using pool = new Pool(2);
  const input = ReadableStream.from(Array.from({ length: 50 }, (_, i) => i));
  const out = await Array.fromAsync(
    input.pipeThrough(
      pool.transform(async (x: number) => {
        // later items finish first: order must come from the pool, not timing
        await new Promise((r) => setTimeout(r, (50 - x) % 7));
        return x * 2;
      }),
    ),
  );
  assert.deepEqual(out, Array.from({ length: 50 }, (_, i) => i * 2));
});

Deno.test("Pool.transform() with star spreads each item into the arguments", async () => {
  await using pool = new Pool(1);
  const out = await Array.fromAsync(
    ReadableStream.from([[1, 2], [3, 4]] as [number, number][]).pipeThrough(
      pool.transform((a: number, b: number) => a * b, { star: true }),
    ),
  );
  assert.deepEqual(out, [2, 12]);
});

Deno.test("Pool.transform() holds back the writer while the workers are busy", async () => {
  await using pool = new Pool(1);
  const pair = pool.transform((x: number) => x, { maxItemsInFlight: 4 });
  const writer = pair.writable.getWriter();
  let accepted = 0;
  const writing = (async () => {
    for (let i = 0; i < 1_000; i++) {
      await writer.write(i);
      accepted++;
    }
    await writer.close();
  })();
  // Nobody reads: the writer must stall after a handful of items.
  const reader = pair.readable.getReader();
  const first = await reader.read();
  assert.equal(first.value, 0);
  for (let i = 0; i < 20 && accepted < 1_000; i++) {
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.ok(accepted < 100, `writer was not held back: ${accepted} accepted`);
  // Reading everything lets the writer finish.
  let n = 1;
  while (!(await reader.read()).done) n++;
  await writing;
  assert.equal(n, 1_000);
});

Deno.test("Pool.transform() errors on a task failure and rejects bad options", async () => {
  await using pool = new Pool(1);
  assert.throws(
    // deno-lint-ignore no-explicit-any
    () => pool.transform((x: number) => x, 5 as any),
    TypeError,
  );
  const out = ReadableStream.from([1, 2, 3]).pipeThrough(
    pool.transform((x: number) => {
      if (x === 2) throw new RangeError("two");
      return x;
    }),
  );
  await assert.rejects(Array.fromAsync(out), RangeError);
});
