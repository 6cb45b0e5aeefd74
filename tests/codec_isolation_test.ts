/**
 * Each task, each map item and each task's value is its own structured
 * clone, whatever frame carried it: the encoder forgets the objects it
 * remembered at each task/item boundary of a protocol message, while
 * references within one task's arguments (or one item, or one value) are
 * kept. And an encode nested in a walk (a getter that sends something)
 * leaves the outer walk's state alone.
 *
 * @module
 */
import assert from "node:assert/strict";
import { _libraryArrays, decode, encode } from "../src/_codec.ts";
import { Pool } from "../mod.ts";

const roundTrip = <T>(message: unknown): T => decode(encode(message)) as T;

Deno.test("review finding: an encode nested in a walk (a getter) leaves the outer message's protocol depth alone", () => {
  // A getter that sends something itself (a Calls frame, protocol depth 2)
  // while a Call (depth 1) is being encoded: the outer walk must still
  // remember its arguments at depth 2, or a shared argument arrives twice.
  const a = [1, 2, 3];
  const nested = {
    get g() {
      encode([10, 1, [2], [[3]]]);
      return 0;
    },
  };
  const message = roundTrip<[number, number, number, unknown[]]>(
    [4, 1, 7, [nested, a, a]],
  );
  assert.equal(message[3][1], message[3][2]);
});

Deno.test("codec: an encode nested in a Calls frame's walk leaves its task boundaries alone", () => {
  // The getter's own message is a single Call (no task boundaries): the
  // outer Calls frame still gives each task its own copy afterwards.
  const o = { n: 0 };
  const nested = {
    get g() {
      encode([4, 1, 2, [[o, o]]]);
      return 0;
    },
  };
  const [, , , argsList] = roundTrip<[number, number, number[], unknown[][]]>(
    [10, 1, [1, 2], [[nested, o, o], [o]]],
  );
  assert.equal(argsList[0]![1], argsList[0]![2]);
  assert.notEqual(argsList[0]![1], argsList[1]![0]);
  assert.deepEqual(argsList[1]![0], { n: 0 });
});

Deno.test("codec: each task of a Calls or Chunk frame and each item of an Items frame gets its own objects; within one they stay shared", () => {
  const o = { n: 0 };
  const list = [o, o];
  for (const op of [10, 5]) {
    const message = op === 10
      ? [10, 1, [1, 2, 3], [[o, o], [o], [list]]]
      : [5, 1, 2, [[o, o], [o], [list]]];
    const argsList = roundTrip<unknown[][]>(message)[3] as unknown[][];
    const [first, second, third] = argsList as [
      unknown[],
      unknown[],
      [unknown[]],
    ];
    assert.equal(first[0], first[1], `op ${op}: shared within a task`);
    assert.notEqual(first[0], second[0], `op ${op}: one copy per task`);
    assert.equal(third[0][0], third[0][1], `op ${op}: shared in an array`);
    assert.notEqual(third[0][0], first[0], `op ${op}: one copy per task`);
  }
  const items = roundTrip<unknown[]>([8, 1, 2, [o, o, [o, o], o]])[3] as [
    object,
    object,
    object[],
    object,
  ];
  assert.notEqual(items[0], items[1]);
  assert.notEqual(items[1], items[3]);
  assert.equal(items[2][0], items[2][1]);
  assert.notEqual(items[2][0], items[0]);
  // Circular values still come back circular, in each task.
  const ring: { self?: unknown } = {};
  ring.self = ring;
  const rings = roundTrip<unknown[]>([8, 1, 2, [ring, ring]])[3] as [
    { self: unknown },
    { self: unknown },
  ];
  assert.equal(rings[0].self, rings[0]);
  assert.equal(rings[1].self, rings[1]);
  assert.notEqual(rings[0], rings[1]);
});

Deno.test("codec: each value of a Results frame and each item result of a chunk is its own copy", () => {
  const g = { n: 1 };
  const chunk = [g, g, [g, g]];
  _libraryArrays.add(chunk);
  const [, , values] = roundTrip<[number, number[], unknown[]]>(
    [24, [1, 2, 3], [g, g, chunk], 5],
  );
  const [a, b, c] = values as [object, object, [object, object, object[]]];
  assert.notEqual(a, b);
  assert.notEqual(c[0], c[1]);
  assert.notEqual(c[0], a);
  assert.equal(c[2][0], c[2][1]);
  // A single Result holding a chunk's results: one copy per item as well.
  const single = roundTrip<[number, number, object[]]>([21, 1, chunk, 5]);
  assert.notEqual(single[2][0], single[2][1]);
});

Deno.test("review finding (pre-existing): tasks sent in one frame do not share their argument objects", async () => {
  // Each task's arguments are its own structured clone: a task that mutates
  // its argument must not change another task's, whatever frames carried
  // them (a burst of run() calls goes in one Calls frame).
  await using pool = new Pool({ workers: 1 });
  const counter = { n: 0 };
  const bump = (o: { n: number }) => ++o.n;
  const results = await Promise.all([
    pool.run(bump, counter),
    pool.run(bump, counter),
    pool.run(bump, counter),
  ]);
  assert.deepEqual(results, [1, 1, 1]);
  const chunked = await Array.fromAsync(
    pool.map(bump, [counter, counter, counter], { chunkSize: 1 }),
  );
  assert.deepEqual(chunked, [1, 1, 1]);
});

Deno.test("pool: the same object in several items of one chunk is one copy per item; shared within one task's arguments stays shared", async () => {
  await using pool = new Pool({ workers: 1 });
  const o = { n: 0 };
  const bump = (x: { n: number }) => ++x.n;
  for (const chunkSize of [3, 2]) {
    assert.deepEqual(
      await Array.fromAsync(pool.map(bump, [o, o, o], { chunkSize })),
      [1, 1, 1],
      `chunkSize ${chunkSize}`,
    );
  }
  assert.equal(await pool.run((a: object, b: object) => a === b, o, o), true);
  assert.deepEqual(
    await Array.fromAsync(
      pool.map(([a, b]: object[]) => a === b, [[o, o], [o, o]], {
        chunkSize: 2,
      }),
    ),
    [true, true],
  );
  assert.equal(o.n, 0);
});

Deno.test("pool: two tasks (or two items of a chunk) returning one worker global come back as two objects", async () => {
  await using pool = new Pool({ workers: 1 });
  const global = () => {
    const g = globalThis as { isolationGlobal?: { n: number } };
    return g.isolationGlobal ??= { n: 1 };
  };
  const [a, b] = await Promise.all([pool.run(global), pool.run(global)]);
  assert.deepEqual(a, { n: 1 });
  assert.notEqual(a, b);
  const items = await Array.fromAsync(
    pool.map(
      (_: number) => {
        const g = globalThis as { isolationGlobal?: { n: number } };
        return g.isolationGlobal ??= { n: 1 };
      },
      [1, 2, 3],
      { chunkSize: 3 },
    ),
  );
  assert.deepEqual(items, [{ n: 1 }, { n: 1 }, { n: 1 }]);
  assert.notEqual(items[0], items[1]);
  assert.notEqual(items[1], items[2]);
});
