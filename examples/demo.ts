/**
 * The README's main job: compress 200 buffers of 1 MiB each with `node:zlib`
 * on a pool of local workers, check every result, and print the throughput
 * and the speed-up over a single worker.
 *
 * Run: `deno task demo` (or `deno run -A examples/demo.ts --buffers 200`).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { gunzipSync } from "node:zlib";
import { Pool } from "../mod.ts";

const WORDS =
  ("lorem ipsum dolor sit amet consectetur adipiscing elit sed do " +
    "eiusmod tempor incididunt ut labore et dolore magna aliqua pool worker " +
    "process deno socket frame stream promise").split(" ");

const ENCODED = WORDS.flatMap((w) => [
  new TextEncoder().encode(w + " "),
  new TextEncoder().encode(w + ".\n"),
]);

/** Makes `size` bytes of compressible text from a seeded generator. */
function makeBuffer(seed: number, size: number): Uint8Array {
  const out = new Uint8Array(size);
  let x = seed * 2654435761 >>> 0 || 1;
  let at = 0;
  while (at < size) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    const word = ENCODED[x % ENCODED.length]!;
    out.set(word.subarray(0, size - at), at);
    at += word.length;
  }
  return out;
}

/** The task: runs in a worker, so it imports what it needs itself. */
async function compress(data: Uint8Array): Promise<Uint8Array> {
  const { gzipSync } = await import("node:zlib");
  return new Uint8Array(gzipSync(data, { level: 6 }));
}

async function timeRun(
  workers: number,
  inputs: Uint8Array[],
): Promise<{ seconds: number; outputs: Uint8Array[] }> {
  await using pool = await Pool.create(workers);
  await pool.runOnAll(() => import("node:zlib").then(() => true)); // warm up
  const started = performance.now();
  const outputs = await Array.fromAsync(pool.map(compress, inputs));
  return { seconds: (performance.now() - started) / 1000, outputs };
}

/** Runs the demo. */
export async function main(args: string[] = Deno.args): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      buffers: { type: "string", default: "200" },
      workers: { type: "string" },
    },
  });
  const count = Number(values.buffers);
  const workers = Number(values.workers ?? navigator.hardwareConcurrency ?? 2);
  const size = 1 << 20;
  const inputs = Array.from(
    { length: count },
    (_, i) => makeBuffer(i + 1, size),
  );
  const mib = (count * size) / (1 << 20);
  console.log(
    `Compressing ${count} x 1 MiB buffers with node:zlib (gzip level 6)...`,
  );

  const one = await timeRun(1, inputs);
  const many = await timeRun(workers, inputs);

  let compressed = 0;
  for (let i = 0; i < count; i++) {
    const out = many.outputs[i]!;
    compressed += out.length;
    const back = gunzipSync(out);
    if (back.length !== size || !back.every((b, j) => b === inputs[i]![j])) {
      throw new Error(`Buffer ${i} did not round-trip`);
    }
    if (one.outputs[i]!.length !== out.length) {
      throw new Error(
        `Buffer ${i}: 1-worker and ${workers}-worker results differ`,
      );
    }
  }
  const rate = (s: number) => `${(mib / s).toFixed(1)} MiB/s`;
  console.log(`all ${count} results checked (gunzip matches the input)`);
  console.log(`compression ratio: ${(count * size / compressed).toFixed(2)}x`);
  console.log(`1 worker : ${one.seconds.toFixed(2)} s, ${rate(one.seconds)}`);
  console.log(
    `${workers} workers: ${many.seconds.toFixed(2)} s, ${rate(many.seconds)}`,
  );
  console.log(`speed-up: ${(one.seconds / many.seconds).toFixed(2)}x`);
}

if (import.meta.main) await main();
