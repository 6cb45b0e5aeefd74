/**
 * The shared line reader (src/_lines.ts) over in-memory streams.
 *
 * @module
 */
import assert from "node:assert/strict";
import { LineReader } from "../src/_lines.ts";

/** A byte stream delivering `chunks` one read at a time. */
function bytes(...chunks: (string | Uint8Array)[]): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  return ReadableStream.from(
    chunks.map((c) => typeof c === "string" ? encoder.encode(c) : c),
  );
}

Deno.test("LineReader splits on \\n and \\r\\n and keeps a last line without newline", async () => {
  const lines = new LineReader(bytes("a\r\nb", "b\n\nc"));
  assert.deepEqual(await Array.fromAsync(lines), ["a", "bb", "", "c"]);
});

Deno.test("LineReader decodes UTF-8 split across reads", async () => {
  const euro = new TextEncoder().encode("€\n"); // 3 bytes, then \n
  const lines = new LineReader(
    bytes(euro.slice(0, 1), euro.slice(1, 2), euro.slice(2)),
  );
  assert.deepEqual(await Array.fromAsync(lines), ["€"]);
});

Deno.test("LineReader.nextBuffered() returns only lines already read", async () => {
  const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
  const writer = writable.getWriter();
  const lines = new LineReader(readable);
  writer.write(new TextEncoder().encode("1\n2\n3"));
  assert.equal(lines.nextBuffered(), undefined, "nothing read yet");
  assert.equal(await lines.next(), "1");
  assert.equal(lines.nextBuffered(), "2");
  assert.equal(lines.nextBuffered(), undefined, "3 has no newline yet");
  writer.write(new TextEncoder().encode("\n"));
  assert.equal(await lines.next(), "3");
  await writer.close();
  assert.equal(await lines.next(), undefined);
});

Deno.test("LineReader.cancel() cancels the stream and ends next()", async () => {
  let cancelled = false;
  const stream = new ReadableStream<Uint8Array>({
    start: (c) => c.enqueue(new TextEncoder().encode("a\nb\n")),
    cancel: () => {
      cancelled = true;
    },
  });
  const lines = new LineReader(stream);
  assert.equal(await lines.next(), "a");
  lines.cancel();
  assert.equal(cancelled, true);
  assert.equal(await lines.next(), undefined);
});

Deno.test("LineReader: breaking out of for await cancels the stream", async () => {
  let cancelled = false;
  const stream = new ReadableStream<Uint8Array>({
    pull: (c) => c.enqueue(new TextEncoder().encode("x\n")),
    cancel: () => {
      cancelled = true;
    },
  });
  for await (const line of new LineReader(stream)) {
    assert.equal(line, "x");
    break;
  }
  assert.equal(cancelled, true);
});
