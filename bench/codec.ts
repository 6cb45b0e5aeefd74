/**
 * Micro-benchmark of the wire codec (src/_codec.ts): encode + decode of a
 * small call message, a 1,000-item chunk of small objects, a 100-number
 * array, a 1 MiB Uint8Array (inside the MessagePack part, and set apart as
 * a raw segment as frames carry it), and the frames of a chunked map of
 * numbers (an Items call, a Results frame of chunks). Warm figures: the cold
 * path is measured whole by `bench/_pool_case.ts cold-*`. With
 * `--against=<module>` it interleaves the runs with another codec module
 * exporting `encode`/`decode` (for example the msgpackr-based one it
 * replaced, or a checkout's `src/_codec.ts`) and prints both medians.
 *
 * Run: `deno run -A bench/codec.ts [--against=./bench/old_codec.ts]`
 *
 * @module
 */
import * as ours from "../src/_codec.ts";

type Codec = {
  encode(value: unknown, segments?: Uint8Array[]): Uint8Array;
  decode(
    bytes: Uint8Array,
    segments?: readonly Uint8Array<ArrayBuffer>[],
  ): unknown;
};

/** A value to round-trip with raw segments (codecs without them ignore the list). */
class Segmented {
  constructor(readonly value: unknown) {}
}

const against = Deno.args.find((a) => a.startsWith("--against="))?.slice(10);
const codecs: [string, Codec][] = [["ours", ours]];
if (against) {
  codecs.push([
    "against",
    await import(new URL(against, `file://${Deno.cwd()}/`).href),
  ]);
}

const bytes = new Uint8Array(1 << 20);
for (let i = 0; i < bytes.length; i++) bytes[i] = i * 31;
const cases: [string, unknown, number][] = [
  ["call [4, id, fn, [args]]", [4, 123456, 3, [1234, "abc"]], 200_000],
  [
    "chunk of 1000 small objects",
    [
      5,
      77,
      3,
      Array.from({ length: 1000 }, (_, i) => [{
        id: i,
        name: `item ${i}`,
        score: i * 0.25,
        ok: i % 2 === 0,
      }]),
    ],
    300,
  ],
  [
    "100-number array",
    [4, 9, 3, [Array.from({ length: 100 }, (_, i) => i % 3 ? i * 1.5 : i)]],
    20_000,
  ],
  ["1 MiB Uint8Array", [4, 9, 3, [bytes]], 300],
  ["1 MiB Uint8Array as a raw segment", new Segmented([4, 9, 3, [bytes]]), 300],
  [
    "Calls frame of 50 one-call tasks",
    [
      10,
      3,
      Array.from({ length: 50 }, (_, i) => 1000 + i),
      Array.from(
        { length: 50 },
        (_, i) => [i],
      ),
    ],
    20_000,
  ],
  [
    "Items frame of 100 int items (Ext.Ints)",
    [8, 77, 3, Array.from({ length: 100 }, (_, i) => 100_000 + i)],
    20_000,
  ],
  [
    "Results frame of 10 chunks of 100 ints",
    [
      24,
      Array.from({ length: 10 }, (_, i) => 1000 + i),
      Array.from(
        { length: 10 },
        (_, i) => Array.from({ length: 100 }, (_, j) => i * 100 + j + 2),
      ),
      Array.from({ length: 10 }, (_, i) => 30 + i),
    ],
    5_000,
  ],
  [
    "Results frame of 50 values",
    [
      24,
      Array.from({ length: 50 }, (_, i) => 1000 + i),
      Array.from(
        { length: 50 },
        (_, i) => i + 2,
      ),
      Array.from({ length: 50 }, (_, i) => 3.25 + i),
    ],
    20_000,
  ],
];

function run(codec: Codec, value: unknown, n: number): number {
  const start = performance.now();
  if (value instanceof Segmented) {
    const segments: Uint8Array<ArrayBuffer>[] = [];
    for (let i = 0; i < n; i++) {
      codec.decode(codec.encode(value.value, segments), segments);
    }
  } else {
    for (let i = 0; i < n; i++) codec.decode(codec.encode(value));
  }
  return (performance.now() - start) / n * 1e6; // ns per round trip
}

const median = (xs: number[]) =>
  xs.slice().sort((a, b) => a - b)[xs.length >> 1]!;
const ROUNDS = 9;
for (const [label, value, n] of cases) {
  const times = codecs.map(() => [] as number[]);
  for (const [, codec] of codecs) run(codec, value, Math.ceil(n / 4)); // warm
  for (let round = 0; round < ROUNDS; round++) {
    codecs.forEach(([, codec], c) => times[c]!.push(run(codec, value, n)));
  }
  const medians = times.map(median);
  const cells = codecs.map(([name], c) =>
    `${name} ${
      medians[c]! >= 10_000
        ? `${(medians[c]! / 1000).toFixed(1)} us`
        : `${medians[c]!.toFixed(0)} ns`
    }`
  );
  const ratio = medians.length > 1
    ? ` (ours/against ${(medians[0]! / medians[1]!).toFixed(2)})`
    : "";
  console.log(`${label}: ${cells.join(", ")}${ratio}`);
}
