/**
 * Random values against `structuredClone`: arrays of numbers now cross as
 * packed extensions (int32s or float64s) when they are long enough, and
 * everything else as before, so the edges between the two (length 7 vs 8,
 * int32 limits, `-0`, NaN, holes, extra properties, shared arrays, numbers
 * mixed with other values) are where a codec bug would hide. A seeded
 * generator makes the values; a failure prints its seed and the path of the
 * first difference.
 *
 * @module
 */
import assert from "node:assert/strict";
import { Pool } from "../mod.ts";
import { wire } from "./_codec_wire.ts";
import { differ } from "./_differ.ts";
import { seeded } from "./_util.ts";

/** Numbers at the edges of the encodings. */
const EDGES = [
  0,
  -0,
  1,
  -1,
  127,
  128,
  255,
  256,
  2 ** 31 - 1,
  -(2 ** 31),
  2 ** 31,
  -(2 ** 31) - 1,
  2 ** 32,
  2 ** 53,
  -(2 ** 53),
  2 ** 53 + 2,
  Number.MAX_VALUE,
  Number.MIN_VALUE,
  Number.EPSILON,
  0.1,
  -1.5,
  NaN,
  Infinity,
  -Infinity,
];

function randomNumber(next: () => number): number {
  const roll = next();
  if (roll < 0.3) return EDGES[Math.floor(next() * EDGES.length)]!;
  if (roll < 0.7) return Math.floor(next() * 2000) - 1000;
  if (roll < 0.85) return (next() - 0.5) * 1e6;
  return Math.floor((next() - 0.5) * 2 ** 40);
}

/** Lengths around the packing threshold, and some long ones. */
function randomLength(next: () => number): number {
  const roll = next();
  if (roll < 0.6) return Math.floor(next() * 12);
  if (roll < 0.9) return Math.floor(next() * 64);
  return 200 + Math.floor(next() * 2000);
}

/** A random value: mostly arrays of numbers, with the odd other thing. */
function randomValue(next: () => number, depth = 0): unknown {
  const roll = next();
  if (depth > 2 || roll < 0.1) return randomNumber(next);
  if (roll < 0.15) return next() < 0.5 ? undefined : null;
  if (roll < 0.2) return `s${Math.floor(next() * 100)}`;
  if (roll < 0.23) return BigInt(Math.floor(next() * 1e6));
  const length = randomLength(next);
  const array: unknown[] = [];
  const others = next() < 0.3; // mix other values in, now and then
  for (let i = 0; i < length; i++) {
    array.push(
      others && next() < 0.1
        ? randomValue(next, depth + 1)
        : randomNumber(next),
    );
  }
  const twist = next();
  if (twist < 0.05 && length > 1) {
    delete array[Math.floor(next() * length)]; // a hole
  } else if (twist < 0.1 && length <= 1024) {
    // Longer arrays' other properties are not looked for (README).
    (array as unknown as Record<string, unknown>).extra = 1;
  } else if (twist < 0.13) {
    array.length += 2; // trailing holes
  }
  if (next() < 0.1) return { a: array, b: array }; // shared
  if (next() < 0.1) return [array, array.slice(), new Float64Array(3)];
  return array;
}

/** The first difference, shortened for a message. */
async function differs(a: unknown, b: unknown): Promise<string | undefined> {
  return (await differ(a, b))?.slice(0, 300);
}

Deno.test("codec fuzz: 3,000 random number arrays round-trip as structuredClone does", async () => {
  for (let seed = 1; seed <= 3000; seed++) {
    const value = randomValue(seeded(seed));
    const difference = await differs(await wire(value), structuredClone(value));
    assert.equal(difference, undefined, `seed ${seed}: ${difference}`);
  }
});

Deno.test("codec fuzz: one message of many arrays, each decoded in place", async () => {
  // Many packed arrays in one message share the decoder's scratch: each
  // must keep its own numbers after the next one is read.
  const next = seeded(42);
  const many = Array.from({ length: 300 }, () => randomValue(next));
  const difference = await differs(await wire(many), structuredClone(many));
  assert.equal(difference, undefined, difference);
});

Deno.test("codec fuzz: random arrays through a real pool, both ways", async () => {
  await using pool = new Pool({ workers: 1 });
  const values = Array.from(
    { length: 200 },
    (_, seed) => randomValue(seeded(10_000 + seed)),
  );
  // Identity: each value goes to the worker and comes back.
  let index = 0;
  for await (const back of pool.map((x: unknown) => x, values)) {
    const difference = await differs(back, structuredClone(values[index]));
    assert.equal(difference, undefined, `value ${index}: ${difference}`);
    index++;
  }
  assert.equal(index, values.length);
  // Growing arrays, int32s then float64s, odd lengths: a fresh worker's
  // decoder grows whatever it keeps for them through these sizes.
  // Lengths grow by x2 and by x5 (past any doubling), kinds alternate.
  const lengths = [9, 19, 39, 79, 401, 2007, 10037, 50187, 100375];
  for (const [k, length] of lengths.entries()) {
    const array = Array.from(
      { length },
      (_, i) => k % 3 === 2 ? i + 0.5 : i - 5,
    );
    const back = await pool.run((x: number[]) => x, array);
    const difference = await differs(back, array);
    assert.equal(difference, undefined, `length ${length}: ${difference}`);
  }
  // Made in the worker: arrays of the same random numbers built there.
  const specs = Array.from(
    { length: 50 },
    (_, i): [number, number] => [i * 7, 1 + (i % 40)],
  );
  const made = await Array.fromAsync(
    pool.map(
      (seed: number, length: number) => {
        const out: number[] = [];
        let x = seed;
        for (let i = 0; i < length; i++) {
          x = (x * 1103515245 + 12345) % 2147483648;
          out.push(i % 5 === 0 ? -0 : i % 7 === 0 ? x / 3 : x - 1073741824);
        }
        return out;
      },
      specs,
      { star: true },
    ),
  );
  for (const [k, [seed, length]] of specs.entries()) {
    let x = seed!;
    for (let i = 0; i < length!; i++) {
      x = (x * 1103515245 + 12345) % 2147483648;
      const expected = i % 5 === 0 ? -0 : i % 7 === 0 ? x / 3 : x - 1073741824;
      assert.ok(
        Object.is(made[k]![i], expected),
        `array ${k} item ${i}: ${made[k]![i]} vs ${expected}`,
      );
    }
    assert.equal(made[k]!.length, length);
  }
});
