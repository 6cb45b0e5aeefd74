/**
 * The link format between a pool and a remote supervisor (src/link.ts):
 * frames split anywhere by the pipe, batching, control messages, the secret
 * line.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  decodeControl,
  encodeControl,
  encodeLinkFrame,
  findVersionMismatch,
  LinkError,
  LinkOp,
  LinkParser,
  LinkWriter,
  MAX_LINK_PAYLOAD,
  readSecretLine,
  versionMismatchLine,
} from "../src/link.ts";
import { concat } from "./_wire.ts";

Deno.test("LinkParser reassembles frames split at every byte boundary", () => {
  const payload = new Uint8Array(300).map((_, i) => i & 0xff);
  const stream = concat(
    encodeLinkFrame(LinkOp.Open, 7),
    encodeLinkFrame(LinkOp.Data, 7, payload),
    encodeControl({ kind: "kill", id: 3 }),
    encodeLinkFrame(LinkOp.Close, 7),
  );
  for (const step of [1, 2, 5, 9, 64, stream.length]) {
    const seen: [number, number, number[]][] = [];
    const parser = new LinkParser((op, channel, p) =>
      seen.push([op, channel, [...p]])
    );
    for (let at = 0; at < stream.length; at += step) {
      parser.push(stream.subarray(at, at + step));
    }
    assert.equal(seen.length, 4, `step ${step}`);
    assert.deepEqual(seen[0], [LinkOp.Open, 7, []]);
    assert.deepEqual(seen[1], [LinkOp.Data, 7, [...payload]]);
    assert.equal(seen[2]![0], LinkOp.Control);
    assert.deepEqual(decodeControl(new Uint8Array(seen[2]![2])), {
      kind: "kill",
      id: 3,
    });
    assert.deepEqual(seen[3], [LinkOp.Close, 7, []]);
  }
});

Deno.test("LinkParser refuses unknown frame types and oversized frames", () => {
  const parser = new LinkParser(() => {});
  assert.throws(() => parser.push(encodeLinkFrame(99, 0)), LinkError);
  const big = new Uint8Array(9);
  new DataView(big.buffer).setUint8(0, LinkOp.Data);
  new DataView(big.buffer).setUint32(5, MAX_LINK_PAYLOAD + 1);
  assert.throws(() => new LinkParser(() => {}).push(big), /too large/);
});

Deno.test("decodeControl() accepts kill and stop, and nothing malformed", () => {
  const enc = (v: string) => new TextEncoder().encode(v);
  assert.deepEqual(decodeControl(enc('{"kind":"stop"}')), { kind: "stop" });
  for (const bad of ['{"kind":"kill","id":"3"}', '{"kind":"rm"}', "{", "3"]) {
    assert.equal(decodeControl(enc(bad)), undefined, bad);
  }
});

Deno.test("LinkWriter batches frames of one turn into one write, splits large data, and reports a failed sink", async () => {
  const writes: Uint8Array[] = [];
  const writer = new LinkWriter((bytes) => {
    writes.push(bytes.slice());
    return Promise.resolve();
  });
  await Promise.all([
    writer.send(encodeLinkFrame(LinkOp.Open, 1)),
    writer.send(encodeLinkFrame(LinkOp.Open, 2)),
  ]);
  assert.equal(writes.length, 1, "one write for one turn");
  writes.length = 0;
  await writer.data(1, new Uint8Array(MAX_LINK_PAYLOAD + 10));
  const frames: number[] = [];
  const parser = new LinkParser((_, __, p) => frames.push(p.length));
  for (const w of writes) parser.push(w);
  assert.deepEqual(frames, [MAX_LINK_PAYLOAD, 10]);

  const broken = new LinkWriter(() => Promise.reject(new Error("pipe gone")));
  await assert.rejects(broken.send(new Uint8Array(1)), /pipe gone/);
  await assert.rejects(broken.send(new Uint8Array(1)), /pipe gone/);
});

Deno.test("readSecretLine() returns the secret and the bytes after it, and refuses anything else", async () => {
  const secret = "ab".repeat(32);
  const bytes = concat(
    new TextEncoder().encode(secret + "\n"),
    encodeLinkFrame(LinkOp.Close, 4),
  );
  let at = 0;
  const read = (p: Uint8Array) => {
    if (at >= bytes.length) return Promise.resolve(null);
    const n = Math.min(7, p.length, bytes.length - at);
    p.set(bytes.subarray(at, at + n));
    at += n;
    return Promise.resolve(n);
  };
  const got = await readSecretLine(read);
  assert.equal(got.secret, secret);
  const rest = [...got.rest];
  while (true) {
    const p = new Uint8Array(16);
    const n = await read(p);
    if (n === null) break;
    rest.push(...p.subarray(0, n));
  }
  assert.deepEqual(rest, [...encodeLinkFrame(LinkOp.Close, 4)]);
  const once = (text: string) => {
    let done = false;
    return (p: Uint8Array) => {
      if (done) return Promise.resolve(null);
      done = true;
      const b = new TextEncoder().encode(text);
      p.set(b);
      return Promise.resolve(b.length);
    };
  };
  await assert.rejects(readSecretLine(once("not a secret\n")), /secret/);
  await assert.rejects(readSecretLine(once("abcd")), /secret/);
});

Deno.test("versionMismatchLine() is found again by findVersionMismatch()", () => {
  const line = versionMismatchLine("0.1.0", "0.2.0");
  assert.deepEqual(findVersionMismatch(["noise", line]), {
    remote: "0.1.0",
    pool: "0.2.0",
  });
  assert.equal(findVersionMismatch(["noise"]), undefined);
});
