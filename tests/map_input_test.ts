/**
 * What the map engine reads (src/_map_input.ts): source adapters and the size
 * estimate of its byte budget.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  END,
  estimateBytes,
  MapInputs,
  settlesSoon,
  toSource,
} from "../src/_map_input.ts";

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

/** Units of `inputs` until the end (sync sources only). */
function drain(inputs: MapInputs): unknown[] {
  const units: unknown[] = [];
  for (let unit = inputs.next(); unit !== END; unit = inputs.next()) {
    units.push(unit);
  }
  return units;
}

Deno.test("MapInputs reads an array by index as its iterator would: holes, growth, end", () => {
  // deno-lint-ignore no-sparse-arrays
  const holey = [1, , 3];
  assert.deepEqual(drain(new MapInputs([holey], false)), [1, undefined, 3]);
  const growing = [1, 2];
  const inputs = new MapInputs([growing], false);
  assert.equal(inputs.next(), 1);
  growing.push(3); // seen, as an array iterator sees it
  assert.deepEqual(drain(inputs), [2, 3]);
  growing.push(4); // past the end: the iterator stays done
  assert.equal(inputs.next(), END);
  // An array with its own iterator is read through it.
  const odd = [1, 2, 3];
  Object.defineProperty(odd, Symbol.iterator, {
    value: function* () {
      yield 42;
    },
  });
  assert.deepEqual(drain(new MapInputs([odd], false)), [42]);
});

Deno.test("MapInputs zips several sources into argument lists and closes the longer ones", () => {
  let closed = false;
  const long = {
    [Symbol.iterator]: () => ({
      next: () => ({ done: false, value: 0 }),
      return: () => {
        closed = true;
        return { done: true, value: undefined };
      },
    }),
  };
  const inputs = new MapInputs([[1, 2], ["a", "b", "c"], long], false);
  assert.equal(inputs.single, false);
  assert.deepEqual(drain(inputs), [[1, "a", 0], [2, "b", 0]]);
  assert.equal(closed, false);
  inputs.close();
  assert.equal(closed, true);
});

Deno.test("MapInputs with star takes argument lists and names a bad item", () => {
  const inputs = new MapInputs([[[1, 2], [3, 4], 5]], true);
  assert.equal(inputs.single, false);
  assert.deepEqual(inputs.next(), [1, 2]);
  assert.deepEqual(inputs.next(), [3, 4]);
  assert.throws(() => inputs.next(), /item 2 is number/);
  assert.throws(() => new MapInputs([[1], [2]], true), /one iterable/);
  assert.throws(() => new MapInputs([], false), /at least one iterable/);
});

Deno.test("MapInputs reads async sources through promises", async () => {
  async function* letters(): AsyncGenerator<string> {
    yield "a";
    yield "b";
  }
  const inputs = new MapInputs([[1, 2, 3], letters()], false);
  const first = inputs.next();
  assert.ok(first instanceof Promise);
  assert.deepEqual(await first, [1, "a"]);
  assert.deepEqual(await inputs.next(), [2, "b"]);
  assert.equal(await inputs.next(), END);
});

Deno.test("MapInputs.slice() counts numbers as estimateBytes() does, ends at the room among them, and says whether all units are primitives", () => {
  const numbers = Array.from({ length: 10 }, (_, i) => i / 3);
  const inputs = new MapInputs([numbers], false);
  assert.deepEqual(inputs.slice(4, Infinity), numbers.slice(0, 4));
  assert.equal(inputs.sliceBytes, 4 * estimateBytes(0.5));
  assert.equal(inputs.slicePrimitive, true);
  // A room smaller than the numbers' bytes ends the chunk after the number
  // that reaches it.
  assert.deepEqual(inputs.slice(4, 2 * estimateBytes(1)), numbers.slice(4, 6));
  assert.equal(inputs.sliceBytes, 2 * estimateBytes(1));
  assert.equal(inputs.done, false);

  const mixed = [1, 2, { a: "b" }, 3, "xyz", 4];
  const more = new MapInputs([mixed], false);
  assert.deepEqual(more.slice(2, Infinity), [1, 2]);
  assert.equal(more.slicePrimitive, true);
  assert.deepEqual(more.slice(10, Infinity), [{ a: "b" }, 3, "xyz", 4]);
  assert.equal(
    more.sliceBytes,
    estimateBytes({ a: "b" }) + 2 * estimateBytes(3) + estimateBytes("xyz"),
  );
  assert.equal(more.slicePrimitive, false, "an object among them");
});

Deno.test("MapInputs.slice() reads a plain array in bulk as next() would, ending at the byte room", () => {
  // deno-lint-ignore no-sparse-arrays
  const xs = [1, , 3, "x".repeat(100), 5, 6];
  const inputs = new MapInputs([xs], false);
  assert.equal(inputs.bulk, true);
  const first = inputs.slice(3, Infinity);
  assert.deepEqual(first, [1, undefined, 3]);
  assert.ok(1 in first, "a hole reads as undefined");
  assert.equal(inputs.sliceBytes, 3 * estimateBytes(1));
  // The chunk ends after the unit whose bytes reach the room.
  assert.deepEqual(inputs.slice(10, 50), ["x".repeat(100)]);
  assert.equal(inputs.done, false);
  xs.push(7); // seen: the end was not reached yet
  assert.deepEqual(inputs.slice(10, Infinity), [5, 6, 7]);
  assert.equal(inputs.done, true, "fewer than asked for: the end");
  assert.equal(inputs.bulk, false);
  assert.equal(inputs.next(), END);
  // Not for star, zips or other iterables.
  assert.equal(inputs.slicePrimitive, true);
  assert.equal(new MapInputs([[[1]]], true).bulk, false);
  assert.equal(new MapInputs([[1], [2]], false).bulk, false);
  assert.equal(new MapInputs([new Set([1])], false).bulk, false);
});
