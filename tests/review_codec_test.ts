/**
 * Review of the codec's fast paths (issue 14): arrays of 8+ numbers cross as
 * one `Ext.Ints`/`Ext.Numbers`, the protocol's own arrays are numbered but
 * not remembered, and a chunk's results array is the library's own. Each
 * case here is one where those assumptions could lose a shared reference or
 * an element, checked through a real worker both ways and against
 * `structuredClone`.
 *
 * @module
 */
import assert from "node:assert/strict";
import { decode, encode } from "../src/_codec.ts";
import { Pool } from "../mod.ts";
import { differ } from "./_differ.ts";

const ints = (n: number, from = 0) =>
  Array.from({ length: n }, (_, i) => i + from);
const floats = (n: number) => Array.from({ length: n }, (_, i) => i + 0.5);

Deno.test("review: shared arrays of numbers keep their identity through a worker, both ways", async () => {
  await using pool = new Pool({ workers: 1 });
  const a = ints(20);
  const f = floats(9);
  // The same array in two fields, as two arguments, and nested in another.
  assert.equal(
    await pool.run((o: { x: number[]; y: number[] }) => o.x === o.y, {
      x: a,
      y: a,
    }),
    true,
  );
  assert.equal(
    await pool.run((x: number[], y: number[]) => x === y, a, a),
    true,
  );
  assert.equal(
    await pool.run((x: number[], o: { z: number[] }) => x === o.z, f, { z: f }),
    true,
  );
  assert.equal(
    await pool.run((o: { z: number[] }, x: number[]) => x === o.z, { z: f }, f),
    true,
  );
  // A star item whose array is also nested in one of its arguments.
  const args: [number[], { also: number[] }] = [a, { also: a }];
  const same = await Array.fromAsync(
    pool.map(
      (x: number[], o: { also: number[] }) => x === o.also,
      [args, args],
      { star: true, chunkSize: 2 },
    ),
  );
  assert.deepEqual(same, [true, true]);
  // Results: the same array twice in one result, a task returning its
  // argument, and a chunk whose tasks return one module-level array.
  const [x, y] = await pool.run(() => {
    const r = Array.from({ length: 12 }, (_, i) => i * 1.5);
    return [r, r];
  });
  assert.equal(x, y);
  assert.deepEqual(x, Array.from({ length: 12 }, (_, i) => i * 1.5));
  const back = await pool.run((o: { x: number[]; y: number[] }) => o, {
    x: a,
    y: a,
  });
  assert.equal(back.x, back.y);
  assert.deepEqual(back.x, a);
  const echoed = await Array.fromAsync(
    pool.map((v: number[]) => [v, v], [a, f, a], { chunkSize: 3 }),
  );
  for (const [p, q] of echoed) assert.equal(p, q);
  assert.deepEqual(echoed.map(([p]) => p), [a, f, a]);
});

Deno.test("review: odd arrays of numbers cross as structuredClone copies them", async () => {
  class MyArray extends Array<number> {}
  const sub = () => {
    const a = new MyArray();
    for (let i = 0; i < 10; i++) a.push(i);
    return a;
  };
  const getter = () => {
    const a = ints(10);
    Object.defineProperty(a, 3, { get: () => 42, enumerable: true });
    return a;
  };
  // A fresh one each time: its getter grows it.
  const growing = () => {
    const a = ints(10);
    Object.defineProperty(a, 3, {
      get() {
        a.push(99);
        return 3;
      },
      enumerable: true,
      configurable: true,
    });
    return a;
  };
  const self = () => {
    const a: unknown[] = ints(10);
    a[5] = a;
    return a;
  };
  const values: [string, () => unknown][] = [
    ["an Array subclass", sub],
    ["a frozen array", () => Object.freeze(ints(10))],
    ["a getter on an index", getter],
    ["typed arrays mixed in", () => [new Float64Array([1.5]), ...ints(10)]],
    ["-0 as the last of 10", () => [...ints(9, 1), -0]],
    ["an int32 edge past 8", () => [...ints(8), 2 ** 31]],
    ["itself among its numbers", self],
    ["a hole past 1024", () => {
      const a = ints(3000);
      delete a[2000];
      return a;
    }],
  ];
  await using pool = new Pool({ workers: 1 });
  for (const [name, make] of values) {
    const want = structuredClone(make());
    const local = decode(encode(make()).slice());
    assert.equal(await differ(local, want), undefined, `${name} (in-process)`);
    const remote = await pool.run((v: unknown) => v, make());
    assert.equal(await differ(remote, want), undefined, `${name} (worker)`);
  }
  // In-process only: the pool reads a call's arguments once before encoding
  // them (the Blob scan), so a getter with side effects runs twice there.
  assert.equal(
    await differ(decode(encode(growing()).slice()), structuredClone(growing())),
    undefined,
  );
});

Deno.test("review: a map of primitives whose other sources or star items hold Blobs still sends the Blobs' bytes", async () => {
  await using pool = new Pool({ workers: 2 });
  const blob = new Blob([new Uint8Array(70_000).fill(7)]);
  const size = async (x: number, b: Blob) =>
    x + (await b.bytes()).reduce((s, v) => s + v, 0);
  const want = [1, 2, 3].map((x) => x + 7 * 70_000);
  assert.deepEqual(
    await Array.fromAsync(pool.map(size, [1, 2, 3], [blob, blob, blob])),
    want,
  );
  assert.deepEqual(
    await Array.fromAsync(
      pool.map(size, [[1, blob], [2, blob], [3, blob]] as [number, Blob][], {
        star: true,
      }),
    ),
    want,
  );
  // Primitives first, then Blobs, in one map with large chunks.
  const items: (number | Blob)[] = [...ints(10), blob, blob];
  assert.deepEqual(
    await Array.fromAsync(
      pool.map(
        async (v: number | Blob) =>
          typeof v === "number" ? v : (await v.bytes())[69_999],
        items,
        { chunkSize: 4 },
      ),
    ),
    [...ints(10), 7, 7],
  );
});
