/**
 * A streaming pipeline: ReadableStream → `pool.map` → file. Records are
 * produced by a stream (here generated; in practice a file, a socket or a
 * queue), transformed on the pool, and written to a JSON-lines file as they
 * arrive, in input order. The pool reads the source only as fast as the
 * workers take items, so memory stays flat however long the stream is.
 *
 * ```sh
 * deno run -A examples/pipeline.ts --records 100000 --out /tmp/digests.jsonl
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";
import { Pool } from "../mod.ts";

interface Record {
  id: number;
  text: string;
}

/** The task (runs in a worker): a SHA-256 digest and a word count per record. */
async function digest(
  record: Record,
): Promise<{ id: number; words: number; sha256: string }> {
  const bytes = new TextEncoder().encode(record.text);
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  const sha256 = Array.from(hash, (b) => b.toString(16).padStart(2, "0"))
    .join("");
  return { id: record.id, words: record.text.split(/\s+/).length, sha256 };
}

/** A stream of `count` records, produced on demand (pull-based). */
function records(count: number): ReadableStream<Record> {
  let id = 0;
  return new ReadableStream<Record>({
    pull(controller): void {
      if (id === count) return controller.close();
      const words = 3 + (id % 17);
      controller.enqueue({
        id,
        text: Array.from({ length: words }, (_, i) => `w${(id * 31 + i) % 97}`)
          .join(" "),
      });
      id++;
    },
  }, { highWaterMark: 0 });
}

/** Runs the example. */
export async function main(args: string[] = Deno.args): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      records: { type: "string", default: "20000" },
      out: { type: "string" },
      workers: { type: "string", default: "2" },
    },
  });
  const count = Number(values.records);
  const out = values.out ??
    await Deno.makeTempFile({ prefix: "distex-pipeline-", suffix: ".jsonl" });

  await using pool = await Pool.create(Number(values.workers));
  console.log(
    `Streaming ${count} records through ${pool.totalWorkers} workers ...`,
  );
  const started = performance.now();
  const file = await Deno.open(out, {
    write: true,
    create: true,
    truncate: true,
  });
  // The whole pipeline: source stream -> pool -> JSON lines -> file.
  await pool.map(digest, records(count), { chunkSize: 64 })
    .pipeThrough(
      new TransformStream({
        transform(result, controller): void {
          controller.enqueue(JSON.stringify(result) + "\n");
        },
      }),
    )
    .pipeThrough(new TextEncoderStream())
    .pipeTo(file.writable); // closes the file when done
  const seconds = (performance.now() - started) / 1000;

  // Check the file: one line per record, in order.
  const lines = (await Deno.readTextFile(out)).trimEnd().split("\n");
  lines.forEach((line, i) => {
    if (JSON.parse(line).id !== i) {
      throw new Error(`line ${i + 1} is out of order`);
    }
  });
  if (lines.length !== count) {
    throw new Error(`expected ${count} lines, found ${lines.length}`);
  }
  console.log(
    `wrote ${lines.length} lines to ${out} in ${
      seconds.toFixed(2)
    } s, in input order`,
  );
  if (values.out === undefined) await Deno.remove(out);
}

if (import.meta.main) await main();
