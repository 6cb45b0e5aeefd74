/**
 * The MessagePack layer (src/_msgpack.ts): every format at its boundaries,
 * against the bytes the specification gives; then the codec
 * (src/_codec.ts) on seeded random nested values against `structuredClone`,
 * and the decoder's shape readers on maps whose keys change.
 *
 * @module
 */
import assert from "node:assert/strict";
import { Writer } from "../src/_msgpack.ts";
import { Ext, pack, unpack } from "./_msgpack_plain.ts";
import { _libraryArrays, decode, encode } from "../src/_codec.ts";
import { differ } from "./_differ.ts";
import { seeded } from "./_util.ts";

/** The first bytes of `pack(value)`, as hex. */
function head(value: unknown, n = 1): string {
  return [...pack(value).subarray(0, n)]
    .map((b) => b.toString(16).padStart(2, "0")).join(" ");
}

function roundTrip(value: unknown): void {
  assert.deepEqual(unpack(pack(value)), value);
}

Deno.test("msgpack: integers take the smallest format at every boundary", () => {
  const cases: [number, string][] = [
    [0, "00"],
    [127, "7f"],
    [128, "cc"],
    [255, "cc"],
    [256, "cd"],
    [65535, "cd"],
    [65536, "ce"],
    [2 ** 32 - 1, "ce"],
    [2 ** 32, "cf"],
    [2 ** 53, "cf"],
    [-1, "ff"],
    [-32, "e0"],
    [-33, "d0"],
    [-128, "d0"],
    [-129, "d1"],
    [-32768, "d1"],
    [-32769, "d2"],
    [-(2 ** 31), "d2"],
    [-(2 ** 31) - 1, "d3"],
    [-(2 ** 53), "d3"],
  ];
  for (const [value, format] of cases) {
    assert.equal(head(value), format, String(value));
    assert.equal(unpack(pack(value)), value, String(value));
  }
  // The exact bytes of a few (big-endian, two's complement).
  assert.deepEqual([...pack(256)], [0xcd, 0x01, 0x00]);
  assert.deepEqual([...pack(-129)], [0xd1, 0xff, 0x7f]);
  assert.deepEqual([...pack(2 ** 32)], [0xcf, 0, 0, 0, 1, 0, 0, 0, 0]);
  assert.deepEqual(
    [...pack(-(2 ** 31) - 1)],
    [0xd3, 0xff, 0xff, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff],
  );
});

Deno.test("msgpack: floats are float32 when exact, else float64", () => {
  const cases: [number, string][] = [
    [1.5, "ca"],
    [Infinity, "ca"],
    [-Infinity, "ca"],
    [0.1, "cb"],
    [2 ** 53 + 2, "cb"],
    [1e300, "cb"],
    [-(2 ** 60), "ca"], // a power of two: exact in float32
  ];
  for (const [value, format] of cases) {
    assert.equal(head(value), format, String(value));
    assert.equal(unpack(pack(value)), value, String(value));
  }
  assert.equal(head(NaN), "cb");
  assert.ok(Number.isNaN(unpack(pack(NaN))));
  assert.deepEqual([...pack(1.5)], [0xca, 0x3f, 0xc0, 0, 0]);
});

Deno.test("msgpack: nil, booleans, and the reserved byte 0xc1", () => {
  assert.deepEqual([...pack(null)], [0xc0]);
  assert.deepEqual([...pack(false)], [0xc2]);
  assert.deepEqual([...pack(true)], [0xc3]);
  assert.equal(unpack(Uint8Array.of(0xc0)), null);
  assert.throws(() => unpack(Uint8Array.of(0xc1)), TypeError);
});

Deno.test("msgpack: str at every length boundary, ASCII and UTF-8", () => {
  const cases: [number, string][] = [
    [0, "a0"],
    [31, "bf"],
    [32, "d9"],
    [255, "d9"],
    [256, "da"],
    [65535, "da"],
    [65536, "db"],
    [100_000, "db"],
  ];
  for (const [length, format] of cases) {
    const s = "x".repeat(length);
    assert.equal(head(s), format, `${length} chars`);
    assert.equal(unpack(pack(s)), s);
  }
  // Sizes count UTF-8 bytes, not characters: 16 "é" are 32 bytes.
  assert.equal(head("é".repeat(15)), "be");
  assert.equal(head("é".repeat(16)), "d9");
  assert.equal(head("✓".repeat(30)), "d9"); // 30 chars, 90 bytes
  assert.equal(head("é".repeat(128)), "da"); // 256 bytes
  assert.equal(head("✓".repeat(85)), "d9"); // 255 bytes, reserved as str16
  assert.equal(head("✓".repeat(21846)), "db"); // 65538 bytes
  for (
    const s of [
      "héllo ✓",
      "é".repeat(15),
      "é".repeat(16),
      "✓".repeat(85),
      "✓".repeat(86),
      "😀".repeat(20),
      "\u0000\u007f\u0080\u07ff\u0800\uffff",
      "a".repeat(20) + "é",
      "✓".repeat(21846),
    ]
  ) {
    roundTrip(s);
  }
  assert.deepEqual([...pack("abc")], [0xa3, 0x61, 0x62, 0x63]);
});

Deno.test("msgpack: bin at every length boundary", () => {
  const cases: [number, string][] = [
    [0, "c4"],
    [255, "c4"],
    [256, "c5"],
    [65535, "c5"],
    [65536, "c6"],
  ];
  for (const [length, format] of cases) {
    const bytes = Uint8Array.from({ length }, (_, i) => i * 7);
    assert.equal(head(bytes), format, `${length} bytes`);
    assert.deepEqual(unpack(pack(bytes)), bytes);
  }
  assert.deepEqual([...pack(Uint8Array.of(9, 8))], [0xc4, 2, 9, 8]);
});

Deno.test("msgpack: arrays and maps at every size boundary", () => {
  const cases: [number, string, string][] = [
    [0, "90", "80"],
    [15, "9f", "8f"],
    [16, "dc", "de"],
    [65535, "dc", "de"],
    [65536, "dd", "df"],
  ];
  for (const [n, arrayFormat, mapFormat] of cases) {
    const array = Array.from({ length: n }, (_, i) => i & 0x7f);
    assert.equal(head(array), arrayFormat, `array of ${n}`);
    roundTrip(array);
    const map = Object.fromEntries(array.map((_, i) => [`k${i}`, i & 1]));
    assert.equal(head(map), mapFormat, `map of ${n}`);
    roundTrip(map);
  }
  assert.deepEqual(
    [...pack([1, "a", null, true])],
    [0x94, 0x01, 0xa1, 0x61, 0xc0, 0xc3],
  );
  assert.deepEqual([...pack({ a: 1 })], [0x81, 0xa1, 0x61, 0x01]);
});

Deno.test("msgpack: ext at every size (fixext 1-16, ext8/16/32)", () => {
  const cases: [number, string][] = [
    [1, "d4"],
    [2, "d5"],
    [4, "d6"],
    [8, "d7"],
    [16, "d8"],
    [0, "c7"],
    [3, "c7"],
    [255, "c7"],
    [256, "c8"],
    [65535, "c8"],
    [65536, "c9"],
  ];
  for (const [size, format] of cases) {
    const ext = new Ext(-1, Uint8Array.from({ length: size }, (_, i) => i));
    assert.equal(head(ext), format, `ext of ${size}`);
    const back = unpack(pack(ext)) as Ext;
    assert.ok(back instanceof Ext);
    assert.equal(back.type, -1);
    assert.deepEqual(back.data, ext.data);
  }
  assert.deepEqual([...pack(new Ext(5, Uint8Array.of(7)))], [0xd4, 5, 7]);
  assert.deepEqual(
    [...pack(new Ext(127, Uint8Array.of(1, 2, 3)))],
    [0xc7, 3, 127, 1, 2, 3],
  );
});

Deno.test("msgpack: a map header patched after its pairs (16 and 65,536 keys)", () => {
  for (const n of [15, 16, 65535, 65536]) {
    const w = new Writer();
    const at = w.pos;
    w.byte(0x80);
    for (let i = 0; i < n; i++) {
      w.string(`k${i}`);
      w.number(i);
    }
    w.patchMapHeader(at, n);
    const back = unpack(w.buf.slice(0, w.pos)) as Record<string, number>;
    assert.equal(Object.keys(back).length, n);
    assert.equal(back[`k${n - 1}`], n - 1);
  }
});

Deno.test("msgpack: truncated or trailing input throws, never reads past the end", () => {
  const bytes = pack({ list: [1, "two", Uint8Array.of(3)], n: 2 ** 40 });
  for (let cut = 0; cut < bytes.length; cut++) {
    assert.throws(() => unpack(bytes.subarray(0, cut)), RangeError, `${cut}`);
  }
  assert.throws(() => unpack(Uint8Array.of(0x01, 0x02)), RangeError);
  // A claimed length far beyond the input.
  assert.throws(() => unpack(Uint8Array.of(0xdd, 0xff, 0xff, 0xff, 0xff)));
  assert.throws(() => unpack(Uint8Array.of(0xc6, 0x7f, 0xff, 0xff, 0xff)));
});

Deno.test("codec: malformed input throws an error, never hangs or crashes", () => {
  const bytes = encode([4, 1, 2, [{ a: new Map([[1, new Set([-0])]]) }]])
    .slice();
  for (let cut = 0; cut < bytes.length; cut++) {
    assert.throws(() => decode(bytes.subarray(0, cut)), `cut at ${cut}`);
  }
  const random = seeded(7);
  for (let i = 0; i < 500; i++) {
    const noise = Uint8Array.from(
      { length: 1 + Math.floor(random() * 40) },
      () => Math.floor(random() * 256),
    );
    try {
      decode(noise);
    } catch (error) {
      assert.ok(error instanceof Error || error instanceof DOMException);
    }
  }
});

Deno.test("codec: decode() never aliases its input", () => {
  const bytes = encode([
    0,
    "a string",
    Uint8Array.of(1, 2),
    new Float64Array([1.5]),
  ])
    .slice();
  const value = decode(bytes) as [number, string, Uint8Array, Float64Array];
  bytes.fill(0);
  assert.equal(value[1], "a string");
  assert.deepEqual([...value[2]], [1, 2]);
  assert.deepEqual([...value[3]], [1.5]);
});

const EDGE_NUMBERS = [
  0,
  -0,
  1,
  -1,
  31,
  -32,
  -33,
  127,
  128,
  255,
  256,
  65535,
  65536,
  2 ** 31 - 1,
  -(2 ** 31),
  2 ** 32 - 1,
  2 ** 32,
  2 ** 53,
  -(2 ** 53),
  Number.MAX_VALUE,
  Number.MIN_VALUE,
  0.1,
  1.5,
  NaN,
  Infinity,
  -Infinity,
];
const KEYS = [
  "a",
  "b",
  "id",
  "name",
  "0",
  "12",
  "__proto__",
  "ключ",
  "k".repeat(40),
];

/** A random value of at most `depth` more levels, sharing from `pool`. */
function randomValue(
  random: () => number,
  depth: number,
  pool: object[],
): unknown {
  const pick = <T>(list: readonly T[]): T =>
    list[Math.floor(random() * list.length)]!;
  const r = random();
  if (depth <= 0 || r < 0.45) {
    switch (Math.floor(random() * 9)) {
      case 0:
        return pick(EDGE_NUMBERS);
      case 1:
        return (random() - 0.5) * 10 ** Math.floor(random() * 20);
      case 2:
        return Math.floor((random() - 0.5) * 2 ** Math.floor(random() * 54));
      case 3: {
        const length = pick([0, 1, 15, 31, 32, 33, 255, 256, 300]);
        const alphabet = random() < 0.5 ? "abc xyz" : "aé✓😀\u0000";
        return Array.from({ length }, () => pick([...alphabet])).join("");
      }
      case 4:
        return pick([true, false, null, undefined]);
      case 5:
        return BigInt(Math.floor((random() - 0.5) * 1e15)) **
          BigInt(1 + Math.floor(random() * 5));
      case 6:
        return new Date(Math.floor(random() * 2e12));
      case 7:
        return Uint8Array.from(
          { length: Math.floor(random() * 300) },
          () => Math.floor(random() * 256),
        );
      default:
        return new Float64Array([random(), -0, NaN]);
    }
  }
  if (pool.length > 0 && random() < 0.1) return pick(pool);
  const n = Math.floor(random() * (random() < 0.1 ? 40 : 5));
  const kind = Math.floor(random() * 5);
  let made: object;
  if (kind === 0 || kind === 1) {
    const array: unknown[] = [];
    for (let i = 0; i < n; i++) {
      array.push(randomValue(random, depth - 1, pool));
    }
    if (kind === 1 && n > 1) delete array[Math.floor(random() * n)]; // a hole
    made = array;
  } else if (kind === 2) {
    const object: Record<string, unknown> = {};
    for (let i = 0; i < n; i++) {
      Object.defineProperty(object, pick(KEYS), {
        value: randomValue(random, depth - 1, pool),
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
    made = object;
  } else if (kind === 3) {
    const map = new Map<unknown, unknown>();
    for (let i = 0; i < n; i++) {
      map.set(
        randomValue(random, depth - 1, pool),
        randomValue(random, depth - 1, pool),
      );
    }
    made = map;
  } else {
    const set = new Set<unknown>();
    for (let i = 0; i < n; i++) set.add(randomValue(random, depth - 1, pool));
    made = set;
  }
  pool.push(made);
  return made;
}

Deno.test("codec: 400 seeded random nested values cross as structuredClone copies them", async () => {
  const random = seeded(20261130);
  for (let i = 0; i < 400; i++) {
    const value = randomValue(random, 4, []);
    const back = (decode(encode([0, value]).slice()) as unknown[])[1];
    const difference = await differ(structuredClone(value), back);
    assert.equal(difference, undefined, `value ${i}: ${Deno.inspect(value)}`);
  }
});

Deno.test("codec: maps whose keys change after a run of one shape decode right", async () => {
  // Runs long enough for the decoder to make a reader for the shape, then
  // objects of the same size with other keys, the same keys in another
  // order, an own __proto__, index-like and long keys, and fewer/more keys.
  const same = Array.from({ length: 10 }, (_, i) => ({ id: i, name: `n${i}` }));
  const values: unknown[] = [
    [...same, { id: 1, other: 2 }, { other: 1, id: 2 }, { name: "x", id: 3 }],
    [...same, JSON.parse('{"id": 1, "__proto__": {"x": 1}}')],
    [...same, { 0: "a", 1: "b" }, { ["k".repeat(40)]: 1, id: 2 }],
    [...same, { id: 1 }, { id: 1, name: "x", extra: true }, ...same],
    Array.from({ length: 20 }, (_, i) => ({ 1: i, 0: -i })),
    Array.from({ length: 20 }, (_, i) => ({ id: i, list: [{ id: i }] })),
    [...same, { id: 1, name: new Map([["nested", { id: 0, name: "m" }]]) }],
  ];
  for (const value of values) {
    for (let pass = 0; pass < 3; pass++) {
      const back = (decode(encode([0, value]).slice()) as unknown[])[1];
      assert.equal(
        await differ(structuredClone(value), back),
        undefined,
        Deno.inspect(value),
      );
    }
  }
});

Deno.test("codec: importing and using it needs no permissions (no --allow-env)", async () => {
  const codec = import.meta.resolve("../src/_codec.ts");
  const script = `
    import { decode, encode } from ${JSON.stringify(codec)};
    const back = decode(encode([1, new Map([["k", -0]]), 2n ** 70n]).slice());
    console.log(Object.is(back[1].get("k"), -0) && back[2] === 2n ** 70n);
  `;
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-prompt", "--no-config", "-"],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = output.stdin.getWriter();
  await writer.write(new TextEncoder().encode(script));
  await writer.close();
  const { code, stdout, stderr } = await output.output();
  const err = new TextDecoder().decode(stderr);
  assert.equal(code, 0, err);
  assert.equal(new TextDecoder().decode(stdout).trim(), "true");
  assert.doesNotMatch(err, /NotCapable|--allow-env|Warning/);
});

Deno.test("codec: enumerable properties on Object.prototype are not sent as own fields", () => {
  const proto = Object.prototype as Record<string, unknown>;
  Object.defineProperty(proto, "codecTestPolluted", {
    value: 1,
    enumerable: true,
    configurable: true,
    writable: true,
  });
  try {
    const back = (decode(encode([0, { own: 1 }]).slice()) as unknown[])[1];
    assert.deepEqual(Object.keys(back as object), ["own"]);
  } finally {
    delete proto.codecTestPolluted;
  }
});

Deno.test("codec: a call's own argument list is not checked, values in it are", async () => {
  const sparse = [1, , 3];
  const extra = Object.assign([1], { extra: "x" });
  const back = decode(encode([4, 1, 2, [sparse, extra]]).slice()) as unknown[];
  const args = back[3] as unknown[][];
  assert.equal(await differ(structuredClone(sparse), args[0]), undefined);
  assert.equal(await differ(structuredClone(extra), args[1]), undefined);
  // A hole in the argument list itself still arrives as a hole.
  const holed = decode(encode([4, 1, 2, [1, , 3]]).slice()) as unknown[][];
  assert.ok(!(1 in holed[3]!));
});

Deno.test("codec: values in a Calls or Results frame keep holes and array properties", async () => {
  const extra = Object.assign([1, , 3], { extra: "x" });
  const calls = decode(encode([10, 1, [7, 8], [[extra], [2]]]).slice()) as [
    number,
    number,
    number[],
    unknown[][],
  ];
  assert.equal(
    await differ(structuredClone(extra), calls[3][0]![0]),
    undefined,
  );
  const results = decode(encode([24, [7, 8], [extra, 1], [5, 6]]).slice()) as [
    number,
    number[],
    unknown[],
    number[],
  ];
  assert.equal(await differ(structuredClone(extra), results[2][0]), undefined);
});

Deno.test("codec: shared and circular values inside protocol frames keep their identity within each task's arguments or value", () => {
  const leaf = { x: 1 };
  const call = decode(encode([4, 1, 2, [leaf, [leaf, leaf]]]).slice()) as [
    number,
    number,
    number,
    [{ x: number }, { x: number }[]],
  ];
  const [first, pair] = call[3];
  assert.deepEqual(first, { x: 1 });
  assert.equal(pair[0], first);
  assert.equal(pair[1], first);
  // A star chunk's argument list may be the caller's own (circular) array.
  const own: unknown[] = [1];
  own.push(own);
  const chunk = decode(encode([5, 1, 2, [own, [own, leaf, leaf]]]).slice()) as [
    number,
    number,
    number,
    unknown[][],
  ];
  const [a, b] = chunk[3] as [unknown[], unknown[]];
  assert.equal(a[0], 1);
  assert.equal((a[1] as unknown[])[1], a[1]);
  assert.equal((b[0] as unknown[])[1], b[0]);
  assert.equal(b[1], b[2]);
  // Values of several tasks in one Results frame: each task's value is its
  // own copy (as separate frames would give), sharing within it is kept.
  const shared = { s: [1, 2, 3, 4, 5, 6, 7, 8, 9] };
  const results = decode(
    encode([24, [7, 8, 9], [shared, [shared.s, shared], 3], [1, 2, 3]])
      .slice(),
  ) as [number, number[], unknown[], number[]];
  const [one, two] = results[2] as [typeof shared, [number[], typeof shared]];
  assert.deepEqual(one, shared);
  assert.notEqual(two[0], one.s);
  assert.notEqual(two[1], one);
  assert.equal(two[1].s, two[0]);
  assert.deepEqual(results[1], [7, 8, 9]);
  assert.deepEqual(results[3], [1, 2, 3]);
  // A chunk's results (the worker's own array) before other values: each
  // item's result and each value its own copy.
  const chunkResults = [shared, 2, 3];
  _libraryArrays.add(chunkResults);
  const mixed = decode(
    encode([24, [1, 2, 3], [chunkResults, shared, [shared, shared]], [1, 2, 3]])
      .slice(),
  ) as [number, number[], unknown[], number[]];
  const [theirs, alone, inList] = mixed[2] as [unknown[], unknown, unknown[]];
  assert.deepEqual(theirs, [shared, 2, 3]);
  assert.deepEqual(alone, shared);
  assert.notEqual(theirs[0], alone);
  assert.notEqual(inList[0], alone);
  assert.equal(inList[0], inList[1]);
});

Deno.test("codec: an array of numbers whose element getter encodes numbers itself crosses intact", () => {
  const inner = Array.from({ length: 20 }, (_, i) => 1000 + i);
  let nested: unknown;
  const outer = Array.from({ length: 20 }, (_, i) => i);
  Object.defineProperty(outer, 5, {
    enumerable: true,
    get() {
      nested = decode(encode([0, inner]).slice());
      return 5;
    },
  });
  const back = decode(encode([0, outer]).slice()) as [number, number[]];
  assert.deepEqual(back[1], Array.from({ length: 20 }, (_, i) => i));
  assert.deepEqual((nested as [number, number[]])[1], inner);
});

Deno.test("codec: each element of a long array is read once, whatever it holds", () => {
  const layouts: [string, unknown[]][] = [
    ["int32s", [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]],
    ["a float midway", [1, 2, 3, 4, 5, 6.5, 7, 8, 9, 10, 11, 12]],
    ["-0 midway, a string last", [1, 2, 3, -0, 5, 6, 7, 8, 9, 10, 11, "x"]],
    ["a string last", [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, "x"]],
    ["a float, then an object", [1, 2, 0.5, 4, 5, { o: 1 }, 7, 8, 9, 10]],
    ["a string first", ["x", 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]],
  ];
  for (const [label, values] of layouts) {
    const reads = new Array<number>(values.length).fill(0);
    const array: unknown[] = [];
    values.forEach((value, i) => {
      Object.defineProperty(array, i, {
        enumerable: true,
        configurable: true,
        get() {
          reads[i]!++;
          return value;
        },
      });
    });
    const back = decode(encode([0, array]).slice()) as [number, unknown[]];
    assert.deepEqual(reads, values.map(() => 1), label);
    assert.deepEqual(back[1], values, label);
    values.forEach((value, i) =>
      assert.ok(Object.is(back[1][i], value) || typeof value === "object")
    );
  }
});
