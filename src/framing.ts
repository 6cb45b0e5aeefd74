/**
 * Framing: MessagePack values over any {@link ByteChannel} (a `Deno.Conn`, an
 * SSH tunnel, or an in-memory pair in tests). What the frames mean is
 * `protocol.ts`'s business.
 *
 * A frame is a 32-bit big-endian word, then a body of as many bytes as its
 * low 31 bits say. Its top bit clear, the body is one MessagePack value. Set,
 * large byte contents travel raw, outside the MessagePack part (no per-byte
 * encoding, no copy into a write buffer, read straight into a buffer of their
 * own): the body is a 32-bit count n, n 32-bit lengths, the MessagePack part
 * (with a placeholder for each, see `encode`), then the n raw segments.
 * Frames sent in the same turn of the event loop go out in one write, but
 * for raw segments of {@link DIRECT} bytes and more, which are written from
 * their own memory.
 *
 * @module
 */
import { decode, encode, RAW_MIN_BYTES } from "./_codec.ts";

/** A bidirectional byte stream; `Deno.Conn` is one. */
export interface ByteChannel {
  /** Reads into `p`; resolves to the byte count, or `null` at end of stream. */
  read(p: Uint8Array): Promise<number | null>;
  /** Writes some of `p`; resolves to the byte count written. */
  write(p: Uint8Array): Promise<number>;
  /** Closes both directions. */
  close(): void;
}

/** A decoded frame before its shape is checked: a tuple tagged with a message type. */
export type Message = readonly [number, ...unknown[]];

/** Default cap on one frame: larger frames close the connection. */
export const DEFAULT_MAX_FRAME_BYTES = 1 << 30;

/** Thrown by {@link readFrames} (and the message parsers) when the peer breaks the protocol. */
export class ProtocolError extends Error {
  /** @param message What the peer did wrong. */
  constructor(message: string) {
    super(message);
    this.name = "ProtocolError";
  }
}

/** Checks that a decoded value has the shape of a {@link Message}. */
export function isMessage(value: unknown): value is Message {
  return Array.isArray(value) && typeof value[0] === "number";
}

/** First size of a connection's write buffers (they grow as needed). */
const INITIAL_BUFFER = 4 * 1024;
/** First size of a connection's read buffer: it grows while reads fill it. */
const FIRST_READ_BUFFER = 16 * 1024;
/**
 * Most a connection's read buffer grows to; a larger frame is read into a
 * buffer of its own, of its exact size (its raw segments each into theirs).
 */
const READ_BUFFER = 256 * 1024;
/**
 * Raw segments from this size on are written from their own memory (not
 * copied into the write buffer) and read straight into their own buffer.
 */
const DIRECT = 64 * 1024;
/**
 * After bytes were read straight into a buffer of their own, the next read
 * asks for no more than this: the next frame's head, and not much of any
 * large contents behind it (which would be copied out of the read buffer).
 */
const LOOKAHEAD = 16 * 1024;
const MAX_KEPT_BUFFER = 64 * 1024 * 1024;

/**
 * A reader given a `reclaim` hook calls it once this many bytes of raw
 * segments were read into new buffers since its last call, before it takes
 * more (see {@link ReadLimits.reclaim}).
 */
export const RECLAIM_BYTES = 2 * 1024 * 1024;

/**
 * The global under which a local worker's V8 exposes its garbage collector
 * (`--expose-gc-as`, set by the pool's worker command line): the worker takes
 * it before any task runs and leaves the global `undefined`. V8 puts it on
 * every new context's global too, so a task can reach it through one
 * (`node:vm`'s `runInNewContext`); all it can do with it is make its own
 * worker collect garbage, which allocating does as well.
 */
export const COLLECTOR_GLOBAL = "__distexCollector";

/** Set in a frame's length word when raw segments follow the MessagePack part. */
const RAW_FLAG = 0x80000000;
/** Byte contents from this size on travel raw, outside the MessagePack part. */
export const BLOB_THRESHOLD: number = RAW_MIN_BYTES;

/** The raw segments of the message being sent (reused: most have none). */
const scratchRaws: Uint8Array[] = [];
let scratchInUse = false;

/** Writes `word` big-endian at `at`; returns where it ends. */
function putWord(buffer: Uint8Array, at: number, word: number): number {
  buffer[at] = word >>> 24;
  buffer[at + 1] = (word >>> 16) & 0xff;
  buffer[at + 2] = (word >>> 8) & 0xff;
  buffer[at + 3] = word & 0xff;
  return at + 4;
}

function getWord(buffer: Uint8Array, at: number): number {
  return ((buffer[at]! << 24) | (buffer[at + 1]! << 16) |
    (buffer[at + 2]! << 8) | buffer[at + 3]!) >>> 0;
}

/**
 * Whether values (a task's arguments) hold a byte array that travels as a raw
 * segment written from its own memory: worth a frame of its own, whose
 * bytes the writer counts at once (see `FrameWriter.pendingBytes`). Looks
 * at the values themselves only, not inside them.
 */
export function hasDirectBytes(values: readonly unknown[]): boolean {
  for (let i = 0; i < values.length; i++) {
    const value = values[i];
    if (
      typeof value === "object" && value !== null &&
      (ArrayBuffer.isView(value) || value instanceof ArrayBuffer) &&
      value.byteLength >= DIRECT
    ) return true;
  }
  return false;
}

/**
 * Takes the collector a worker's V8 exposes as {@link COLLECTOR_GLOBAL},
 * if it does, and leaves that global `undefined` (it cannot be deleted), so
 * tasks do not find it on their global (a new V8 context still has one, see
 * {@link COLLECTOR_GLOBAL}). Returns a minor (young-generation) collection,
 * or undefined where there is no collector (the pool, remote workers).
 */
export function takeCollector(): (() => void) | undefined {
  const global = globalThis as Record<string, unknown>;
  const gc = global[COLLECTOR_GLOBAL];
  if (typeof gc !== "function") return undefined;
  try {
    Object.defineProperty(global, COLLECTOR_GLOBAL, {
      value: undefined,
      writable: false,
    });
  } catch {
    return undefined; // it stays a plain global: leave it unused
  }
  const options = { type: "minor" };
  return () => void gc(options);
}

/** Decodes a frame's MessagePack part: a {@link ProtocolError} if it cannot. */
function decodeBody(
  body: Uint8Array,
  raws?: Uint8Array<ArrayBuffer>[],
): Message {
  let message: unknown;
  try {
    message = decode(body, raws);
  } catch (error) {
    throw undecodable(error);
  }
  return checked(message);
}

function undecodable(error: unknown): ProtocolError {
  return error instanceof ProtocolError ? error : new ProtocolError(
    `undecodable frame: ${error instanceof Error ? error.message : error}`,
  );
}

function checked(message: unknown): Message {
  if (!isMessage(message)) {
    throw new ProtocolError("frame is not a protocol message");
  }
  return message;
}

/** Where a raw frame's MessagePack part is in its body, and its segments' lengths. */
type RawLayout = { start: number; end: number; lengths: number[] };

/**
 * The layout of a raw frame's body of `size` bytes, read from its head (the
 * count and the lengths, at `at` in `buffer`).
 */
function rawLayout(
  buffer: Uint8Array,
  at: number,
  size: number,
): RawLayout {
  const count = getWord(buffer, at);
  const start = 4 + 4 * count;
  let left = size - start;
  if (left < 0) throw new ProtocolError("malformed raw-bytes frame");
  const lengths = new Array<number>(count);
  for (let i = 0; i < count; i++) {
    const length = getWord(buffer, at + 4 + 4 * i);
    left -= length;
    lengths[i] = length;
  }
  if (left < 0) throw new ProtocolError("malformed raw-bytes frame");
  return { start, end: start + left, lengths };
}

/**
 * Batches frames and writes them to a channel. `send` encodes at once (so an
 * unsendable value throws to its caller) and the bytes go out together with
 * every other frame queued in the same turn.
 */
export class FrameWriter {
  #channel: ByteChannel;
  #buffer = new Uint8Array(INITIAL_BUFFER);
  #spare: Uint8Array<ArrayBuffer> | undefined;
  #length = 0;
  /** `#buffer` up to here is already queued in `#segments`. */
  #sealed = 0;
  /** Pieces to write before what is in `#buffer`: sealed parts and blobs. */
  #segments: Uint8Array[] = [];
  #segmentBytes = 0;
  /** Bytes of the large raw segments among `#segments`. */
  #rawQueued = 0;
  /** Bytes of the large raw segments of the write under way. */
  #rawWriting = 0;
  #flushing = false;
  #failed: unknown = undefined;
  #onError: (error: unknown) => void;
  #idle: PromiseWithResolvers<void> | undefined;
  /** Called after each completed write; lets a sender refill. */
  onWritten: (() => void) | undefined;
  /**
   * The largest frame the peer takes: a bigger message is refused by `send`
   * (a `RangeError`), so the peer never sees it and the connection lives on.
   */
  maxFrameBytes: number = DEFAULT_MAX_FRAME_BYTES;

  /**
   * @param channel Where the frames go.
   * @param onError Called once if a write fails (the peer is gone).
   */
  constructor(channel: ByteChannel, onError: (error: unknown) => void) {
    this.#channel = channel;
    this.#onError = onError;
  }

  #tooLarge(size: number): never {
    const limit = Math.min(this.maxFrameBytes, 0x7fffffff);
    throw new RangeError(
      `A value of ${size} bytes (encoded) is over the frame limit of ` +
        `${limit} bytes (the pool option maxFrameBytes): send it in ` +
        `smaller parts, or raise maxFrameBytes`,
    );
  }

  /** Bytes queued and not yet handed to the channel. */
  get pendingBytes(): number {
    return this.#length - this.#sealed + this.#segmentBytes;
  }

  /**
   * Bytes of the large byte arrays (written from their own memory) that
   * are queued or being written: arrays the writer still holds.
   */
  get heldRawBytes(): number {
    return this.#rawQueued + this.#rawWriting;
  }

  /**
   * Encodes `message` into a frame and queues it.
   * @throws {DOMException} `DataCloneError` when the message cannot be encoded.
   */
  send(message: Message): void {
    if (this.#failed !== undefined) return;
    // The scratch list, unless a getter inside this encode sends too.
    const raws = scratchInUse ? [] : scratchRaws;
    scratchInUse = raws === scratchRaws || scratchInUse;
    try {
      this.#queue(encode(message, raws), raws);
    } finally {
      if (raws.length !== 0) raws.length = 0;
      if (raws === scratchRaws) scratchInUse = false;
    }
    if (!this.#flushing) {
      this.#flushing = true;
      queueMicrotask(() => this.#flush());
    }
  }

  /** Queues a frame of `payload` and the raw segments `encode` set apart. */
  #queue(payload: Uint8Array, raws: Uint8Array[]): void {
    if (raws.length === 0) {
      const size = payload.length;
      if (size > this.maxFrameBytes) this.#tooLarge(size);
      this.#reserve(size + 4);
      const at = putWord(this.#buffer, this.#length, size);
      this.#buffer.set(payload, at);
      this.#length = at + size;
      return;
    }
    const count = raws.length;
    let size = 4 + 4 * count + payload.length;
    let copied = 0;
    for (let i = 0; i < count; i++) {
      const length = raws[i]!.byteLength;
      size += length;
      if (length < DIRECT) copied += length;
    }
    if (size > this.maxFrameBytes || size > 0x7fffffff) this.#tooLarge(size);
    this.#reserve(8 + 4 * count + payload.length + copied);
    const buffer = this.#buffer;
    let at = putWord(buffer, this.#length, size | RAW_FLAG);
    at = putWord(buffer, at, count);
    for (let i = 0; i < count; i++) {
      at = putWord(buffer, at, raws[i]!.byteLength);
    }
    buffer.set(payload, at);
    at += payload.length;
    for (let i = 0; i < count; i++) {
      const raw = raws[i]!;
      if (raw.byteLength < DIRECT) {
        buffer.set(raw, at);
        at += raw.byteLength;
        continue;
      }
      // Written from its own memory, between the part of the buffer before
      // it (sealed: queued as a segment) and what follows.
      if (at > this.#sealed) {
        this.#segments.push(buffer.subarray(this.#sealed, at));
        this.#segmentBytes += at - this.#sealed;
      }
      this.#segments.push(raw);
      this.#segmentBytes += raw.byteLength;
      this.#rawQueued += raw.byteLength;
      this.#sealed = at;
    }
    this.#length = at;
  }

  /** Resolves when everything queued so far has been written (or failed). */
  drained(): Promise<void> {
    if (!this.#flushing) return Promise.resolve();
    this.#idle ??= Promise.withResolvers();
    return this.#idle.promise;
  }

  #reserve(extra: number): void {
    const needed = this.#length + extra;
    if (needed <= this.#buffer.length) return;
    // Sealed bytes stay where they are (a segment views them): move only
    // the rest.
    const keep = this.#length - this.#sealed;
    let size = this.#buffer.length * 2;
    while (size < keep + extra) size *= 2;
    const grown = new Uint8Array(size);
    grown.set(this.#buffer.subarray(this.#sealed, this.#length));
    this.#buffer = grown;
    this.#length = keep;
    this.#sealed = 0;
  }

  async #writeAll(bytes: Uint8Array): Promise<void> {
    let written = 0;
    while (written < bytes.length) {
      written += await this.#channel.write(bytes.subarray(written));
    }
  }

  async #flush(): Promise<void> {
    try {
      while (this.#length > this.#sealed || this.#segments.length > 0) {
        const out = this.#buffer;
        const from = this.#sealed;
        const length = this.#length;
        const segments = this.#segments;
        // Frames queued while this write runs go into the other buffer.
        // Buffers are reused (allocating large ones is slow here), but one
        // grown past MAX_KEPT_BUFFER by a huge message is let go.
        const spare = this.#spare;
        this.#buffer = spare !== undefined && spare.length <= MAX_KEPT_BUFFER
          ? spare
          : new Uint8Array(INITIAL_BUFFER);
        this.#spare = undefined;
        this.#length = this.#sealed = 0;
        this.#segments = [];
        this.#segmentBytes = 0;
        this.#rawWriting = this.#rawQueued;
        this.#rawQueued = 0;
        for (const segment of segments) await this.#writeAll(segment);
        if (length > from) await this.#writeAll(out.subarray(from, length));
        this.#rawWriting = 0;
        this.#spare = out;
        this.onWritten?.();
      }
    } catch (error) {
      this.#failed = error ?? new Error("write failed");
      this.#length = this.#sealed = this.#segmentBytes = 0;
      this.#rawQueued = this.#rawWriting = 0;
      this.#segments = [];
      this.#onError(error);
    } finally {
      this.#flushing = false;
      const idle = this.#idle;
      this.#idle = undefined;
      idle?.resolve();
    }
  }
}

/** What {@link readFrames} takes and does beyond decoding. */
export interface ReadLimits {
  /**
   * Frames larger than this are refused. Read at every frame, so a caller
   * may raise it once a peer is trusted.
   */
  maxFrameBytes: number;
  /**
   * Called before a raw frame's segments are read into new buffers, once
   * {@link RECLAIM_BYTES} were read into new buffers since its last call. A
   * worker runs a minor garbage collection here: the byte arrays of the
   * tasks that ran since (and that no task keeps) are freed, and the next
   * ones get their memory back instead of fresh pages from the kernel,
   * which V8 would otherwise hand back only after tens of MiB. Returns
   * whether it collected: if not, the reader asks again before the next raw
   * frame.
   */
  reclaim?: (() => boolean) | undefined;
}

/**
 * Reads frames from `channel` until it ends, calling `onMessage` with each
 * decoded message in order. Resolves at a clean end of stream.
 *
 * @param channel Where to read from.
 * @param onMessage Called synchronously for every message; may return `false`
 * to stop reading (the channel is left open).
 * @param limits `maxFrameBytes`: frames larger than this are refused;
 * `reclaim`, see {@link ReadLimits}.
 * @throws {ProtocolError} on an oversized or truncated frame, or a payload that
 * is not a message.
 */
export function readFrames(
  channel: ByteChannel,
  onMessage: (message: Message) => boolean | void,
  limits: ReadLimits = {
    maxFrameBytes: DEFAULT_MAX_FRAME_BYTES,
  },
): Promise<void> {
  return new FrameReader(channel).run(onMessage, limits);
}

/**
 * The reading side of one connection. Frames up to {@link READ_BUFFER} are
 * decoded where they are in the connection's buffer, every complete one of a
 * read in one go; a larger frame is read into a buffer of its own, and its
 * raw segments (if any) each into one of their exact size.
 */
class FrameReader {
  #channel: ByteChannel;
  /** The connection's buffer; it grows while reads fill it. */
  #buffer = new Uint8Array(FIRST_READ_BUFFER);
  /** Where the first byte not yet taken is. */
  #start = 0;
  /** Where the bytes read end. */
  #end = 0;
  /** The last read filled the buffer: it grows before the next. */
  #grow = false;
  /** Most bytes the next read asks for. */
  #cap = Infinity;
  /** Bytes of raw segments read into new buffers since the last reclaim. */
  #fresh = 0;
  #reclaim: (() => boolean) | undefined;

  constructor(channel: ByteChannel) {
    this.#channel = channel;
  }

  async run(
    onMessage: (message: Message) => boolean | void,
    limits: ReadLimits,
  ): Promise<void> {
    this.#reclaim = limits.reclaim;
    for (;;) {
      // Every complete frame in the buffer, with no await in between.
      let need = 4;
      let large = -1;
      while (this.#end - this.#start >= 4) {
        const buffer = this.#buffer;
        const start = this.#start;
        const word = getWord(buffer, start);
        const size = word & 0x7fffffff;
        if (size > limits.maxFrameBytes) {
          throw new ProtocolError(
            `frame of ${size} bytes exceeds the limit of ${limits.maxFrameBytes} bytes`,
          );
        }
        if (size + 4 > READ_BUFFER) {
          large = word;
          break;
        }
        if (this.#end - start - 4 < size) {
          need = size + 4;
          break;
        }
        const at = start + 4;
        this.#start = at + size;
        let message: unknown;
        try {
          message = word & RAW_FLAG
            ? this.#rawInPlace(at, size)
            : decode(buffer.subarray(at, at + size));
        } catch (error) {
          throw undecodable(error);
        }
        if (onMessage(checked(message)) === false) return;
      }
      if (large !== -1) {
        this.#start += 4;
        const message = await this.#large(large, large & 0x7fffffff);
        if (onMessage(message) === false) return;
      } else if (!(await this.#read(need))) {
        if (this.#end > this.#start) this.#endedInside();
        return;
      }
    }
  }

  #endedInside(): never {
    throw new ProtocolError(
      `connection ended inside a frame (${
        this.#end - this.#start
      } bytes of it received)`,
    );
  }

  /**
   * Reads once into the buffer, first making room for `need` bytes from
   * `#start` (at most {@link READ_BUFFER}). False at the end of the stream.
   */
  async #read(need: number): Promise<boolean> {
    if (this.#start === this.#end) this.#start = this.#end = 0;
    if (
      this.#grow || this.#end === this.#buffer.length ||
      this.#buffer.length - this.#start < need
    ) {
      this.#makeRoom(need);
    }
    const room = this.#buffer.length - this.#end;
    const ask = Math.min(room, this.#cap);
    this.#cap = Infinity;
    const n = await this.#channel.read(
      this.#buffer.subarray(this.#end, this.#end + ask),
    );
    if (n === null) return false;
    this.#grow = n === room && this.#buffer.length < READ_BUFFER;
    this.#end += n;
    return true;
  }

  /** Grows the buffer (or moves what it holds to its front) for `need` bytes. */
  #makeRoom(need: number): void {
    const buffer = this.#buffer;
    const kept = this.#end - this.#start;
    let size = buffer.length;
    if (this.#grow) size = Math.min(READ_BUFFER, size * 2);
    while (size < need) size *= 2;
    if (size !== buffer.length) {
      const grown = new Uint8Array(size);
      grown.set(buffer.subarray(this.#start, this.#end));
      this.#buffer = grown;
    } else {
      buffer.copyWithin(0, this.#start, this.#end);
    }
    this.#start = 0;
    this.#end = kept;
    this.#grow = false;
  }

  /** Reads until `n` bytes from `#start` are in the buffer. */
  async #ensure(n: number): Promise<void> {
    while (this.#end - this.#start < n) {
      if (!(await this.#read(n))) this.#endedInside();
    }
  }

  /**
   * Fills `target` with the next bytes: those in the buffer first, then
   * straight from the channel (or through the buffer for a small rest).
   */
  async #readInto(target: Uint8Array): Promise<void> {
    let at = Math.min(this.#end - this.#start, target.length);
    target.set(this.#buffer.subarray(this.#start, this.#start + at));
    this.#start += at;
    while (at < target.length) {
      const left = target.length - at;
      if (left < DIRECT) {
        // A small rest: one read through the buffer brings what follows too.
        await this.#ensure(1);
        const n = Math.min(this.#end - this.#start, left);
        target.set(this.#buffer.subarray(this.#start, this.#start + n), at);
        this.#start += n;
        at += n;
        continue;
      }
      const n = await this.#channel.read(target.subarray(at));
      if (n === null) this.#endedInside();
      at += n;
      this.#cap = LOOKAHEAD;
    }
  }

  /**
   * Calls the reclaim hook once the raw bytes read into new buffers since
   * its last call (counting the frame about to be read) reach
   * {@link RECLAIM_BYTES}: what the tasks before this frame no longer hold
   * is freed before this frame's buffers are made.
   */
  #reclaimSoon(): void {
    if (this.#fresh < RECLAIM_BYTES || this.#reclaim === undefined) return;
    if (this.#reclaim()) this.#fresh = 0;
  }

  /** A raw frame whose body is in the buffer, at `at`: segments copied out. */
  #rawInPlace(at: number, size: number): unknown {
    const buffer = this.#buffer;
    if (size < 4) throw new ProtocolError("malformed raw-bytes frame");
    const { start, end, lengths } = rawLayout(buffer, at, size);
    this.#fresh += size - end;
    this.#reclaimSoon();
    const raws = new Array<Uint8Array<ArrayBuffer>>(lengths.length);
    let from = at + end;
    for (let i = 0; i < lengths.length; i++) {
      raws[i] = buffer.slice(from, from + lengths[i]!);
      from += lengths[i]!;
    }
    return decode(buffer.subarray(at + start, at + end), raws);
  }

  /** A frame larger than the buffer; `#start` is at its body. */
  async #large(word: number, size: number): Promise<Message> {
    if (!(word & RAW_FLAG)) {
      this.#fresh += size;
      this.#reclaimSoon();
      const body = new Uint8Array(size);
      await this.#readInto(body);
      return decodeBody(body);
    }
    await this.#ensure(4);
    const count = getWord(this.#buffer, this.#start);
    if (4 + 4 * count > Math.min(size, READ_BUFFER)) {
      throw new ProtocolError("malformed raw-bytes frame");
    }
    await this.#ensure(4 + 4 * count);
    const { start, end, lengths } = rawLayout(this.#buffer, this.#start, size);
    this.#fresh += size - end;
    this.#reclaimSoon();
    this.#start += start;
    const part = new Uint8Array(end - start);
    await this.#readInto(part);
    const raws = new Array<Uint8Array<ArrayBuffer>>(lengths.length);
    for (let i = 0; i < lengths.length; i++) {
      await this.#readInto(raws[i] = new Uint8Array(lengths[i]!));
    }
    return decodeBody(part, raws);
  }
}
