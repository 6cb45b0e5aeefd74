/**
 * Framing over in-memory byte channels: no sockets, no processes.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  BLOB_THRESHOLD,
  type ByteChannel,
  FrameWriter,
  hasDirectBytes,
  isMessage,
  type Message,
  ProtocolError,
} from "../src/framing.ts";
import {
  COLLECTOR_GLOBAL,
  readFrames,
  RECLAIM_BYTES,
  takeCollector,
} from "../src/frame_reader.ts";
import { Op } from "../src/protocol.ts";
import { encode } from "../src/_codec.ts";
import {
  channelPair,
  concat,
  frame,
  type PairOptions,
  rawChannel,
} from "./_wire.ts";
import { flushMicrotasks } from "./_util.ts";

/** Reads every message until the end of the stream. */
async function readAll(
  channel: ByteChannel,
  limits?: { maxFrameBytes: number },
): Promise<Message[]> {
  const out: Message[] = [];
  await readFrames(channel, (m) => {
    out.push(m);
  }, limits);
  return out;
}

/**
 * Writes `messages` through a FrameWriter to one end of a channel pair and
 * closes that end.
 *
 * @returns The other end, to read them from.
 */
async function written(
  messages: Message[],
  options?: PairOptions,
): Promise<ByteChannel> {
  const [a, b] = channelPair(options);
  const writer = new FrameWriter(a, (e) => assert.fail(`write failed: ${e}`));
  for (const m of messages) writer.send(m);
  await writer.drained();
  a.close();
  return b;
}

/** Deterministic pseudo-random bytes. */
function noise(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed >>> 0;
  for (let i = 0; i < length; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

function sampleMessages(count: number): Message[] {
  const messages: Message[] = [];
  for (let i = 0; i < count; i++) {
    switch (i % 5) {
      case 0:
        messages.push([Op.Call, i, 7, [i, `item ${i}`, undefined]]);
        break;
      case 1:
        messages.push([Op.Result, i, new Map([[i, new Set([i])]]), 12]);
        break;
      case 2:
        messages.push([Op.Result, i, new Uint8Array([i & 255, 1, 2])]);
        break;
      case 3:
        messages.push([Op.Error, i, {
          name: "TypeError",
          message: "x".repeat(i % 300),
        }]);
        break;
      default:
        messages.push([Op.Chunk, i, 3, [[2n ** 70n], [new Date(i)]]]);
    }
  }
  return messages;
}

Deno.test("FrameWriter and readFrames carry many messages in order", async () => {
  const [a, b] = channelPair();
  const writer = new FrameWriter(a, (e) => assert.fail(`write failed: ${e}`));
  const messages = sampleMessages(2_000);
  const reading = readAll(b);
  for (let i = 0; i < messages.length; i++) {
    writer.send(messages[i]!);
    if (i % 97 === 0) await Promise.resolve(); // spread over several turns
  }
  await writer.drained();
  a.close();
  assert.deepEqual(await reading, messages);
});

Deno.test("FrameWriter sends the frames of one turn in one write", async () => {
  const [a, b] = channelPair();
  const writer = new FrameWriter(a, (e) => assert.fail(`write failed: ${e}`));
  for (let i = 0; i < 100; i++) writer.send([Op.Call, i, 1, [i]]);
  assert.equal(a.writes, 0, "nothing is written synchronously");
  await writer.drained();
  assert.equal(a.writes, 1);
  a.close();
  assert.equal((await readAll(b)).length, 100);
});

Deno.test("readFrames reassembles frames read one byte at a time", async () => {
  const messages = sampleMessages(60);
  const b = await written(messages, { maxRead: 1 });
  assert.deepEqual(await readAll(b), messages);
});

Deno.test("FrameWriter finishes partial writes", async () => {
  const [a, b] = channelPair({ maxWrite: 3 });
  const writer = new FrameWriter(a, (e) => assert.fail(`write failed: ${e}`));
  const messages = sampleMessages(40);
  for (const m of messages) writer.send(m);
  await writer.drained();
  assert.ok(a.writes > 40, `only ${a.writes} writes of at most 3 bytes`);
  a.close();
  assert.deepEqual(await readAll(b), messages);
});

Deno.test("readFrames handles a frame larger than its buffer", async () => {
  const big = "y".repeat(3 * 1024 * 1024);
  const b = await written([[Op.Result, 1, big], [Op.Result, 2, "after"]], {
    maxRead: 100_000,
  });
  assert.deepEqual(await readAll(b), [[Op.Result, 1, big], [
    Op.Result,
    2,
    "after",
  ]]);
});

Deno.test("large Uint8Arrays travel raw and arrive as Uint8Array", async () => {
  const blob = (seed: number) => noise(BLOB_THRESHOLD + seed, seed);
  const top = blob(1);
  const inArgs = blob(2);
  const inChunk = blob(3);
  const args = [inArgs, "small", new Uint8Array([1, 2])];
  const chunkArgs = [[inChunk, 1], [blob(4)]];
  const messages: Message[] = [
    [Op.Result, 1, top, 5],
    [Op.Call, 2, 9, args],
    [Op.Chunk, 3, 9, chunkArgs],
    [Op.Result, 4, { nested: blob(5) }],
  ];
  const received = await readAll(await written(messages, { maxRead: 4096 }));
  assert.deepEqual(received, messages);
  assert.equal(Object.getPrototypeOf(received[0]![2]), Uint8Array.prototype);
  // The caller's arrays are left as they were.
  assert.equal(args[0], inArgs);
  assert.equal(chunkArgs[0]![0], inChunk);
});

Deno.test("readFrames refuses an oversized frame with ProtocolError", async () => {
  const [a, b] = channelPair();
  const writer = new FrameWriter(a, () => {});
  writer.send([Op.Result, 1, "z".repeat(1_000)]);
  await writer.drained();
  a.close();
  await assert.rejects(
    readAll(b, { maxFrameBytes: 100 }),
    (error: unknown) => {
      assert.ok(error instanceof ProtocolError);
      assert.equal(error.name, "ProtocolError");
      assert.match(error.message, /exceeds the limit of 100 bytes/);
      return true;
    },
  );
  // The length word alone decides: no need to wait for the body.
  const declaredHuge = frame(new Uint8Array(8), 0x7fff_fff0);
  await assert.rejects(readAll(rawChannel(declaredHuge)), ProtocolError);
});

Deno.test("readFrames reads its limit at every frame", async () => {
  const [a, b] = channelPair();
  const writer = new FrameWriter(a, () => {});
  writer.send([Op.Hello, 1]);
  writer.send([Op.Result, 1, "z".repeat(5_000)]);
  await writer.drained();
  a.close();
  const limits = { maxFrameBytes: 64 };
  const seen: Message[] = [];
  await readFrames(b, (m) => {
    seen.push(m);
    limits.maxFrameBytes = 1 << 20; // the peer is trusted now
  }, limits);
  assert.equal(seen.length, 2);
});

Deno.test("readFrames refuses a frame cut off by the end of stream", async () => {
  const whole = frame(encode([Op.Result, 1, "complete"]));
  const cut = whole.subarray(0, whole.length - 3);
  await assert.rejects(
    readAll(rawChannel(cut)),
    (error: unknown) => {
      assert.ok(error instanceof ProtocolError);
      assert.match(error.message, /ended inside a frame/);
      return true;
    },
  );
  // Cut inside the length word, and read a byte at a time.
  await assert.rejects(
    readAll(rawChannel(whole.subarray(0, 2), 1)),
    ProtocolError,
  );
  // A complete frame followed by a cut one: the first is still delivered.
  const seen: Message[] = [];
  const both = new Uint8Array([...whole, ...cut]);
  await assert.rejects(
    readFrames(rawChannel(both, 5), (m) => {
      seen.push(m);
    }),
    ProtocolError,
  );
  assert.deepEqual(seen, [[Op.Result, 1, "complete"]]);
});

Deno.test("readFrames refuses garbage with ProtocolError", async () => {
  // 0xc1 is the one byte MessagePack never uses.
  const undecodable = frame(new Uint8Array([0xc1, 0xc1, 0xc1]));
  await assert.rejects(readAll(rawChannel(undecodable)), (error: unknown) => {
    assert.ok(error instanceof ProtocolError);
    assert.match(error.message, /undecodable/);
    return true;
  });
  // Well-formed MessagePack that is not a message.
  for (const value of [5, "text", ["no op"], { 0: 1 }, [], null]) {
    await assert.rejects(
      readAll(rawChannel(frame(encode(value)))),
      (error: unknown) => {
        assert.ok(error instanceof ProtocolError, `${value}: ${error}`);
        assert.match(error.message, /not a protocol message/);
        return true;
      },
    );
  }
  // A truncated MessagePack body inside a complete frame.
  const partial = encode([Op.Result, 1, "abcdef"]).subarray(0, 4);
  await assert.rejects(readAll(rawChannel(frame(partial))), ProtocolError);
  // Random bytes, whatever their length words say.
  for (let seed = 1; seed <= 50; seed++) {
    await assert.rejects(
      readAll(rawChannel(noise(64 + seed, seed), 7), {
        maxFrameBytes: 1 << 20,
      }),
      ProtocolError,
      `seed ${seed}`,
    );
  }
});

/** A raw-bytes frame's body: count, lengths, MessagePack part, segments. */
function rawBody(
  part: Uint8Array,
  lengths: number[],
  segments: Uint8Array[] = [],
): Uint8Array {
  const head = new Uint8Array(4 + 4 * lengths.length);
  const view = new DataView(head.buffer);
  view.setUint32(0, lengths.length);
  lengths.forEach((length, i) => view.setUint32(4 + 4 * i, length));
  return concat(head, part, ...segments);
}

Deno.test("readFrames refuses a malformed raw-bytes frame", async () => {
  const raw = (body: Uint8Array) => frame(body, body.length | 0x8000_0000);
  // A placeholder for a segment (encode() given a list to put it in).
  const placeholder = encode([Op.Result, 1, new Uint8Array(BLOB_THRESHOLD)], [])
    .slice();
  const bad: [string, Uint8Array][] = [
    ["too short for its count", raw(new Uint8Array([0, 0]))],
    ["a count over what the frame holds", raw(new Uint8Array([0, 0, 1, 0]))],
    [
      "lengths over what the frame holds",
      raw(rawBody(encode([Op.Result, 1]), [1_000])),
    ],
    [
      "a segment no placeholder takes",
      raw(rawBody(encode([Op.Result, 1]), [3], [new Uint8Array(3)])),
    ],
    [
      "a placeholder with no segment",
      raw(rawBody(placeholder, [])),
    ],
    [
      // Larger than the read buffer: read piece by piece.
      "a large frame whose count is over what the frame holds",
      raw(
        concat(new Uint8Array([0xff, 0xff, 0xff, 0xff]), noise(300_000, 1)),
      ),
    ],
  ];
  for (const [what, bytes] of bad) {
    await assert.rejects(
      readAll(rawChannel(bytes, 4096)),
      ProtocolError,
      what,
    );
  }
});

Deno.test("readFrames stops when onMessage returns false", async () => {
  const [a, b] = channelPair();
  const writer = new FrameWriter(a, () => {});
  writer.send([Op.Hello, 1]);
  writer.send([Op.Result, 2, "left for the next reader"]);
  await writer.drained();
  const first: Message[] = [];
  await readFrames(b, (m) => {
    first.push(m);
    return false;
  });
  assert.deepEqual(first, [[Op.Hello, 1]]);
  a.close();
});

Deno.test("readFrames resolves at a clean end of stream", async () => {
  assert.deepEqual(await readAll(rawChannel(new Uint8Array(0))), []);
  const [a, b] = channelPair();
  a.close();
  assert.deepEqual(await readAll(b), []);
});

Deno.test("FrameWriter.send() throws DataCloneError and keeps working", async () => {
  const [a, b] = channelPair();
  const writer = new FrameWriter(a, (e) => assert.fail(`write failed: ${e}`));
  writer.send([Op.Result, 1, "before"]);
  for (const bad of [() => 1, Symbol("s"), { deep: [() => 2] }]) {
    assert.throws(
      () => writer.send([Op.Result, 2, bad]),
      (error: unknown) => {
        assert.ok(error instanceof DOMException);
        assert.equal(error.name, "DataCloneError");
        return true;
      },
    );
  }
  writer.send([Op.Result, 3, "after"]);
  await writer.drained();
  a.close();
  assert.deepEqual(await readAll(b), [[Op.Result, 1, "before"], [
    Op.Result,
    3,
    "after",
  ]]);
});

Deno.test("FrameWriter reports a failed write once, then drops frames", async () => {
  let writes = 0;
  const broken: ByteChannel = {
    read: () => Promise.resolve(null),
    write: () => {
      writes++;
      return Promise.reject(new Error("broken pipe"));
    },
    close: () => {},
  };
  const errors: unknown[] = [];
  const writer = new FrameWriter(broken, (e) => errors.push(e));
  writer.send([Op.Result, 1, "lost"]);
  await writer.drained();
  writer.send([Op.Result, 2, "dropped"]);
  await writer.drained();
  assert.equal(errors.length, 1);
  assert.match(String(errors[0]), /broken pipe/);
  assert.equal(writes, 1);
  assert.equal(writer.pendingBytes, 0);
});

Deno.test("isMessage() accepts arrays that start with an op number", () => {
  assert.equal(isMessage([Op.Cancel, 1]), true);
  assert.equal(isMessage([Op.Call, 1, 2, []]), true);
  for (const value of [[], ["4"], { 0: 4, length: 1 }, null, 4, "4"]) {
    assert.equal(isMessage(value), false, JSON.stringify(value));
  }
});

/** A channel that keeps every array handed to write(), as it was given. */
function recordingChannel(): ByteChannel & { written: Uint8Array[] } {
  const written: Uint8Array[] = [];
  return {
    written,
    read: () => Promise.resolve(null),
    write: (p) => {
      written.push(p);
      return Promise.resolve(p.length);
    },
    close: () => {},
  };
}

Deno.test("FrameWriter writes a large Uint8Array from its own memory, not a copy", async () => {
  const channel = recordingChannel();
  const writer = new FrameWriter(channel, (e) => assert.fail(`${e}`));
  const big = noise(300 * 1024, 7);
  const small = noise(BLOB_THRESHOLD + 5, 8); // below the direct size: copied
  const messages: Message[] = [
    [Op.Result, 1, "before"],
    [Op.Call, 2, 9, [big, small, "x"]],
    [Op.Result, 3, "after"],
  ];
  for (const m of messages) writer.send(m);
  assert.ok(
    writer.pendingBytes > big.byteLength,
    `pendingBytes ${writer.pendingBytes} counts the queued array`,
  );
  await writer.drained();
  assert.equal(writer.pendingBytes, 0);
  assert.ok(
    channel.written.some((p) =>
      p.buffer === big.buffer && p.byteOffset === big.byteOffset &&
      p.byteLength === big.byteLength
    ),
    "the large array itself was handed to write()",
  );
  assert.ok(
    !channel.written.some((p) => p.buffer === small.buffer),
    "a smaller blob is copied into the frame buffer",
  );
  // The bytes on the wire are the frames, in order.
  const received = await readAll(rawChannel(concat(...channel.written), 5000));
  assert.deepEqual(received, messages);
});

Deno.test("FrameWriter keeps frames in order around several large arrays and partial writes", async () => {
  const [a, b] = channelPair({ maxWrite: 70_000, maxRead: 50_000 });
  const writer = new FrameWriter(a, (e) => assert.fail(`write failed: ${e}`));
  const messages: Message[] = [];
  for (let i = 0; i < 12; i++) {
    messages.push([Op.Result, i, i % 3 === 0 ? noise(100_000 + i, i) : i]);
    if (i % 4 === 0) {
      messages.push([Op.Chunk, 100 + i, 2, [[noise(70_000, i)], [
        noise(65_536, i + 1),
      ]]]);
    }
  }
  const reading = readAll(b);
  for (let i = 0; i < messages.length; i++) {
    writer.send(messages[i]!);
    if (i % 5 === 0) await Promise.resolve();
  }
  await writer.drained();
  a.close();
  assert.deepEqual(await reading, messages);
});

Deno.test("readFrames starts with a small buffer and grows it while reads fill it", async () => {
  const messages = sampleMessages(3_000);
  const b = await written(messages);
  const sizes: number[] = [];
  const recording: ByteChannel = {
    read: (p) => {
      sizes.push(p.length);
      return b.read(p);
    },
    write: (p) => b.write(p),
    close: () => b.close(),
  };
  assert.deepEqual(await readAll(recording), messages);
  assert.ok(sizes[0]! <= 16 * 1024, `first read asks for ${sizes[0]} bytes`);
  assert.ok(
    Math.max(...sizes) > 64 * 1024,
    `reads grew to ${Math.max(...sizes)} bytes`,
  );
});

Deno.test("readFrames reads large byte arrays straight into buffers of their own size", async () => {
  const first = noise(1 << 20, 3);
  const second = noise((1 << 20) + 5, 4);
  const b = await written([
    [Op.Result, 1, "small first"],
    [Op.Result, 2, first],
    [Op.Result, 3, { after: second }],
    [Op.Result, 4, "small after"],
  ], { maxRead: 64 * 1024 });
  const reads: { buffer: ArrayBufferLike; n: number }[] = [];
  const recording: ByteChannel = {
    read: async (p) => {
      const n = await b.read(p);
      reads.push({ buffer: p.buffer, n: n ?? 0 });
      return n;
    },
    write: (p) => b.write(p),
    close: () => b.close(),
  };
  const received = await readAll(recording);
  assert.deepEqual(received, [
    [Op.Result, 1, "small first"],
    [Op.Result, 2, first],
    [Op.Result, 3, { after: second }],
    [Op.Result, 4, "small after"],
  ]);
  const arrived = [
    received[1]![2] as Uint8Array,
    (received[2]![2] as { after: Uint8Array }).after,
  ];
  for (const [i, bytes] of arrived.entries()) {
    // A buffer of its own, of its size, as structuredClone gives it.
    assert.equal(bytes.byteOffset, 0);
    assert.equal(bytes.buffer.byteLength, bytes.byteLength, `array ${i}`);
  }
  // The second array is read into its own buffer, not copied out of the
  // connection's: the read after the first one asked for a little only.
  const direct = reads.filter((r) => r.buffer === arrived[1]!.buffer)
    .reduce((sum, r) => sum + r.n, 0);
  assert.ok(
    direct >= second.byteLength - 16 * 1024,
    `${direct} of ${second.byteLength} bytes read in place`,
  );
});

Deno.test("FrameWriter writes large byte contents at any depth from their own memory", async () => {
  const channel = recordingChannel();
  const writer = new FrameWriter(channel, (e) => assert.fail(`${e}`));
  const inObject = noise(100_000, 1);
  const inMap = noise(70_000, 2);
  const floats = new Float64Array(noise(80_000, 3).buffer);
  const message: Message = [Op.Result, 1, {
    deep: { list: [[[inObject]]] },
    map: new Map([["k", inMap]]),
    floats,
    again: inObject,
  }];
  writer.send(message);
  await writer.drained();
  for (const [what, bytes] of [["object", inObject], ["map", inMap]] as const) {
    assert.ok(
      channel.written.some((p) =>
        p.buffer === bytes.buffer && p.byteLength === bytes.byteLength
      ),
      `the array in the ${what} was handed to write() itself`,
    );
  }
  assert.ok(
    channel.written.some((p) => p.buffer === floats.buffer),
    "the typed array's bytes were written from its own memory",
  );
  assert.ok(
    channel.written.reduce((n, p) => n + p.length, 0) < 260_000,
    "the shared array went once",
  );
  const [received] = await readAll(
    rawChannel(concat(...channel.written), 5000),
  );
  assert.deepEqual(received, message);
  const value = received![2] as { deep: unknown; again: Uint8Array };
  assert.equal(
    (value.deep as { list: Uint8Array[][][] }).list[0]![0]![0],
    value.again,
    "a shared array arrives shared",
  );
});

Deno.test("FrameWriter.send refuses a message over the peer's limit with a RangeError and sends nothing of it", async () => {
  const [a, b] = channelPair();
  const writer = new FrameWriter(a, (e) => assert.fail(`write failed: ${e}`));
  writer.maxFrameBytes = 64 * 1024;
  const reading = readAll(b, { maxFrameBytes: 64 * 1024 });
  writer.send([Op.Cancel, 1]);
  for (
    const big of [
      "x".repeat(100_000), // inside the MessagePack part
      new Uint8Array(100_000), // a raw blob beside it
      new Uint8Array(BLOB_THRESHOLD + 1), // a small blob, copied
    ]
  ) {
    const limit = big instanceof Uint8Array && big.length < 64 * 1024
      ? undefined
      : 64 * 1024;
    if (limit === undefined) {
      writer.send([Op.Cancel, 2, big] as unknown as Message); // fits
      continue;
    }
    assert.throws(
      () => writer.send([Op.Cancel, 3, big] as unknown as Message),
      (e: unknown) =>
        e instanceof RangeError && /over the frame limit of 65536 bytes/.test(
          e.message,
        ) && /maxFrameBytes/.test(e.message),
    );
  }
  writer.send([Op.Cancel, 4]);
  await writer.drained();
  a.close();
  const got = await reading; // the reader saw no oversized frame
  assert.deepEqual(got.map((m) => m[1]), [1, 2, 4]);
});

Deno.test("readFrames calls reclaim every RECLAIM_BYTES of byte contents, before reading more, and what came before stays intact", async () => {
  const mib = 1 << 20;
  const sent: Message[] = [];
  // Large frames (read into buffers of their own), frames read in place
  // (100 KiB arrays, copied out of the connection's buffer), a large frame
  // with no raw part, and small ones, which count for nothing.
  for (let i = 0; i < 6; i++) sent.push([Op.Result, i, noise(mib, i)]);
  for (let i = 6; i < 6 + 40; i++) {
    sent.push([Op.Result, i, noise(100 * 1024, i)]);
  }
  sent.push([Op.Result, 46, "x".repeat(3 * mib)]);
  for (let i = 47; i < 1000; i++) sent.push([Op.Result, i, `small ${i}`]);
  const b = await written(sent, { maxRead: 64 * 1024 });
  const received: Message[] = [];
  const reclaimedAt: number[] = [];
  await readFrames(b, (m) => {
    received.push(m);
  }, {
    maxFrameBytes: 1 << 30,
    reclaim: () => {
      reclaimedAt.push(received.length);
      return true;
    },
  });
  // Every array arrived whole, and is still intact after all that followed.
  assert.deepEqual(received, sent);
  const per = RECLAIM_BYTES / mib;
  // 1 MiB frames: the reclaim before every `per`-th one's buffers are made.
  const large = reclaimedAt.filter((at) => at < 6);
  assert.deepEqual(
    large,
    Array.from({ length: Math.floor(6 / per) }, (_, i) => (i + 1) * per - 1),
  );
  // 4 MiB of 100 KiB arrays, then 3 MiB of string: about 3 more; the
  // small frames bring none.
  const later = reclaimedAt.filter((at) => at >= 6);
  assert.ok(
    later.length >= 2 && later.length <= 4,
    `reclaims after the large frames: ${later}`,
  );
  assert.ok(later.every((at) => at <= 47), `reclaimed at ${later}`);
});

Deno.test("readFrames without reclaim reads byte contents all the same", async () => {
  const sent: Message[] = [];
  for (let i = 0; i < 5; i++) sent.push([Op.Result, i, noise(1 << 20, i)]);
  const b = await written(sent, { maxRead: 64 * 1024 });
  assert.deepEqual(await readAll(b), sent);
});

Deno.test("hasDirectBytes() finds byte contents large enough for a frame of their own, at the top level only", () => {
  const big = 64 * 1024;
  assert.equal(hasDirectBytes([new Uint8Array(big)]), true);
  assert.equal(hasDirectBytes([1, "a", new Float64Array(big / 8)]), true);
  assert.equal(hasDirectBytes([new ArrayBuffer(big)]), true);
  assert.equal(hasDirectBytes([new DataView(new ArrayBuffer(big))]), true);
  assert.equal(hasDirectBytes([new Uint8Array(big - 1)]), false);
  assert.equal(hasDirectBytes([]), false);
  assert.equal(hasDirectBytes([null, undefined, 5, "x".repeat(big)]), false);
  assert.equal(hasDirectBytes([{ inside: new Uint8Array(big) }]), false);
});

Deno.test("takeCollector() takes the exposed collector, runs it as a minor collection and leaves the global undefined", () => {
  const global = globalThis as Record<string, unknown>;
  assert.equal(takeCollector(), undefined, "none exposed");
  const calls: unknown[] = [];
  global[COLLECTOR_GLOBAL] = (options: unknown) => calls.push(options);
  try {
    const collect = takeCollector();
    assert.equal(typeof collect, "function");
    assert.equal(global[COLLECTOR_GLOBAL], undefined);
    // A task cannot put it back (or anything else) under that name.
    assert.throws(() => {
      "use strict";
      global[COLLECTOR_GLOBAL] = () => {};
    }, TypeError);
    collect!();
    collect!();
    assert.deepEqual(calls, [{ type: "minor" }, { type: "minor" }]);
    assert.equal(takeCollector(), undefined, "taken once");
  } finally {
    delete global[COLLECTOR_GLOBAL];
  }
});

Deno.test("readFrames asks reclaim again before the next raw frame when it did not collect", async () => {
  const sent: Message[] = [];
  for (let i = 0; i < 8; i++) sent.push([Op.Result, i, noise(1 << 20, i)]);
  const b = await written(sent, { maxRead: 64 * 1024 });
  const received: Message[] = [];
  const asked: number[] = [];
  const collected: number[] = [];
  await readFrames(b, (m) => {
    received.push(m);
  }, {
    maxFrameBytes: 1 << 30,
    reclaim: () => {
      asked.push(received.length);
      // Declines twice (as a worker still writing large results does).
      if (asked.length <= 2) return false;
      collected.push(received.length);
      return true;
    },
  });
  assert.deepEqual(received, sent);
  const per = RECLAIM_BYTES / (1 << 20);
  assert.deepEqual(asked.slice(0, 3), [per - 1, per, per + 1]);
  assert.deepEqual(collected[0], per + 1);
  if (collected.length > 1) assert.equal(collected[1], per + 1 + per);
});

Deno.test("FrameWriter.heldRawBytes counts the large byte arrays queued or being written, until written", async () => {
  const gate = Promise.withResolvers<void>();
  const written: number[] = [];
  const channel: ByteChannel = {
    read: () => Promise.resolve(null),
    write: async (p) => {
      await gate.promise;
      written.push(p.length);
      return p.length;
    },
    close: () => {},
  };
  const writer = new FrameWriter(channel, (e) => assert.fail(`${e}`));
  writer.send([Op.Result, 1, "small"]);
  writer.send([Op.Result, 2, new Uint8Array(BLOB_THRESHOLD)]);
  assert.equal(writer.heldRawBytes, 0, "copied into the write buffer");
  const big = new Uint8Array(1 << 20);
  writer.send([Op.Result, 3, big]);
  writer.send([Op.Result, 4, { again: big }]);
  assert.equal(writer.heldRawBytes, 2 << 20);
  await flushMicrotasks();
  // Handed to the channel, not yet written: still held.
  assert.equal(writer.pendingBytes, 0);
  assert.equal(writer.heldRawBytes, 2 << 20);
  gate.resolve();
  await writer.drained();
  assert.equal(writer.heldRawBytes, 0);
  assert.ok(written.reduce((x, y) => x + y, 0) > 2 << 20);
});
