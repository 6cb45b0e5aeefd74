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
 * their own memory. This module writes frames ({@link FrameWriter}); reading
 * them is `frame_reader.ts`'s.
 *
 * @module
 */
import { encode, RAW_MIN_BYTES } from "./_codec.ts";

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
/**
 * Raw segments from this size on are written from their own memory (not
 * copied into the write buffer) and read straight into their own buffer.
 */
export const DIRECT = 64 * 1024;
const MAX_KEPT_BUFFER = 64 * 1024 * 1024;

/** Set in a frame's length word when raw segments follow the MessagePack part. */
export const RAW_FLAG = 0x80000000;
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
