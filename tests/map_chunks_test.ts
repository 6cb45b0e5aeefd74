/**
 * ChunkReader without a pool: sources read into chunks, each chunk recorded
 * instead of submitted.
 *
 * @module
 */
import assert from "node:assert/strict";
import { ChunkReader } from "../src/_map_chunks.ts";
import { MapBudget } from "../src/_map_flow.ts";
import { MapInputs } from "../src/_map_input.ts";

interface Launched {
  units: unknown[];
  bytes: number;
  size: number;
  primitive: boolean;
}

function setup(source: unknown, maxItems = 100, maxBytes?: number) {
  const budget = new MapBudget(maxItems, maxBytes);
  const launched: Launched[] = [];
  const reader = new ChunkReader(
    new MapInputs([source], false),
    budget,
    (units, bytes, size, primitive) =>
      launched.push({ units, bytes, size, primitive }),
  );
  return { budget, launched, reader };
}

function* generate<T>(items: T[]): Generator<T> {
  yield* items;
}

Deno.test("ChunkReader slices a plain array a chunk at a time, each item counted in the budget; the short last chunk ends the sources", () => {
  const { budget, launched, reader } = setup([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  assert.equal(reader.take(4, 100), true);
  assert.equal(reader.take(4, 100), true);
  assert.equal(reader.done, false);
  assert.equal(reader.take(4, 100), true);
  assert.equal(reader.done, true);
  assert.deepEqual(launched.map((l) => l.units), [
    [1, 2, 3, 4],
    [5, 6, 7, 8],
    [9, 10],
  ]);
  assert.ok(launched.every((l) => l.size === 4 && l.primitive));
  assert.equal(budget.read, 10);
  assert.ok(launched[0]!.bytes > 0);
  assert.equal(budget.bytes, launched.reduce((sum, l) => sum + l.bytes, 0));
  // Nothing left: an empty chunk is not launched.
  assert.equal(reader.take(4, 100), true);
  assert.equal(launched.length, 3);
});

Deno.test("ChunkReader: a chunk ends where the budget's items end, with one item at least", () => {
  for (const source of [[1, 2, 3, 4, 5, 6], generate([1, 2, 3, 4, 5, 6])]) {
    const { launched, reader } = setup(source);
    reader.take(10, 3);
    reader.take(10, 0);
    reader.take(10, -5);
    assert.deepEqual(launched.map((l) => l.units), [[1, 2, 3], [4], [5]]);
    assert.equal(reader.done, false);
  }
});

Deno.test("ChunkReader: a chunk ends once it holds the bytes the budget has left, one item always goes", () => {
  const items = [1, 2, 3, 4].map(() => new Uint8Array(1000));
  const { budget, launched, reader } = setup(generate(items), 100, 2500);
  reader.take(10, 100);
  assert.equal(launched[0]!.units.length, 3, "the third reaches 2,500 bytes");
  assert.equal(launched[0]!.primitive, false);
  assert.ok(budget.bytes >= 2500, `${budget.bytes}`);
  reader.take(10, 100); // no bytes left: still one item
  assert.equal(launched[1]!.units.length, 1);
  assert.equal(budget.read, 4);
});

Deno.test("ChunkReader: an async source's read that does not settle at once ends the chunk and starts the next one", async () => {
  const gate = Promise.withResolvers<void>();
  async function* slowAfterTwo() {
    yield 1;
    yield 2;
    await gate.promise;
    yield 3;
    yield 4;
  }
  const { launched, reader } = setup(slowAfterTwo());
  const first = reader.take(10, 100);
  assert.ok(first instanceof Promise);
  assert.equal(await first, true);
  assert.deepEqual(launched.map((l) => l.units), [[1, 2]]);
  assert.equal(reader.done, false);
  gate.resolve();
  assert.equal(await reader.take(10, 100), true);
  assert.deepEqual(launched.map((l) => l.units), [[1, 2], [3, 4]]);
  assert.equal(reader.done, true);
});

Deno.test("ChunkReader.close() while a read is pending: the read is dropped, nothing launched", async () => {
  const gate = Promise.withResolvers<void>();
  async function* slow() {
    await gate.promise;
    yield 1;
  }
  const { budget, launched, reader } = setup(slow());
  const taking = reader.take(10, 100);
  reader.close();
  assert.equal(reader.done, true);
  gate.resolve();
  assert.equal(await taking, false);
  assert.deepEqual(launched, []);
  assert.equal(budget.read, 0, "the item that came in is not counted");
});

Deno.test("ChunkReader.close() closes the sources; a map ended while a chunk was read launches nothing", () => {
  let returned = 0;
  let n = 0;
  const source: Iterable<number> = {
    [Symbol.iterator]: () => ({
      next: () => {
        // The map ends while its source is read (its signal aborted, say).
        if (++n === 3) reader.close();
        return { done: false, value: n };
      },
      return: () => {
        returned++;
        return { done: true, value: undefined };
      },
    }),
  };
  const { launched, reader } = setup(source);
  assert.equal(reader.take(10, 100), false);
  assert.deepEqual(launched, []);
  assert.equal(returned, 1);
  assert.equal(reader.take(10, 100), false);
});
