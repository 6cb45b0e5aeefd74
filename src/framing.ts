/**
 * Framing: MessagePack values over any {@link ByteChannel} (a `Deno.Conn`, an
 * SSH tunnel, or an in-memory pair in tests), each in a frame prefixed with
 * its length as a 32-bit big-endian integer. Frames sent in the same turn of
 * the event loop go out in one write; large byte arrays travel raw after the
 * MessagePack part. What the frames mean is `protocol.ts`'s business.
 *
 * @module
 */
import { decode, encode } from "./_codec.ts";

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
 * Most a connection's read buffer grows to; a frame larger than this is read
 * into a buffer of its own, of its exact size.
 */
const READ_BUFFER = 256 * 1024;
/**
 * Byte arrays from this size on are not copied into the write buffer: they
 * are written from their own memory, as a segment of their own.
 */
const DIRECT_WRITE = 64 * 1024;
const MAX_KEPT_BUFFER = 64 * 1024 * 1024;
const scratchBlobs: Uint8Array[] = [];
const scratchPaths: number[][] = [];

/** Set in a frame's length word when raw byte arrays follow the payload. */
const BLOB_FLAG = 0x80000000;
/** Byte arrays from this size on travel raw, outside the MessagePack part. */
export const BLOB_THRESHOLD = 16 * 1024;

function isBlob(value: unknown): value is Uint8Array {
  return value instanceof Uint8Array && value.byteLength >= BLOB_THRESHOLD;
}

/**
 * Finds large `Uint8Array`s up to three array levels deep in `message` (task
 * arguments, chunk argument lists, results, chunk results), collects them and
 * their paths, and returns the message with `null` in their places. The
 * caller's arrays are never modified: containers on a path are copied.
 */
export function _extractBlobs(
  message: readonly unknown[],
  blobs: Uint8Array[],
  paths: number[][],
): readonly unknown[] {
  let copy: unknown[] | undefined;
  for (let i = 1; i < message.length; i++) {
    const a = message[i];
    if (isBlob(a)) {
      (copy ??= message.slice())[i] = null;
      blobs.push(a);
      paths.push([i]);
    } else if (Array.isArray(a)) {
      let copyA: unknown[] | undefined;
      for (let j = 0; j < a.length; j++) {
        const b = a[j];
        if (isBlob(b)) {
          (copyA ??= a.slice())[j] = null;
          blobs.push(b);
          paths.push([i, j]);
        } else if (Array.isArray(b)) {
          let copyB: unknown[] | undefined;
          for (let k = 0; k < b.length; k++) {
            if (isBlob(b[k])) {
              (copyB ??= b.slice())[k] = null;
              blobs.push(b[k] as Uint8Array);
              paths.push([i, j, k]);
            }
          }
          if (copyB) (copyA ??= a.slice())[j] = copyB;
        }
      }
      if (copyA) (copy ??= message.slice())[i] = copyA;
    }
  }
  return copy ?? message;
}

/**
 * Decodes a frame with raw byte arrays after its MessagePack part. With
 * `owned`, the frame's memory belongs to this message alone and the arrays are
 * views into it (no copy); otherwise they are copied out.
 */
function decodeBlobFrame(frame: Uint8Array, owned: boolean): unknown {
  if (frame.length < 4) throw new ProtocolError("blob frame too short");
  const n = ((frame[0]! << 24) | (frame[1]! << 16) | (frame[2]! << 8) |
    frame[3]!) >>> 0;
  if (4 + n > frame.length) {
    throw new ProtocolError("blob frame header overruns");
  }
  const wrapper = decode(frame.subarray(4, 4 + n));
  if (
    !Array.isArray(wrapper) || !Array.isArray(wrapper[0]) ||
    !Array.isArray(wrapper[1]) || !Array.isArray(wrapper[2]) ||
    wrapper[1].length !== wrapper[2].length
  ) {
    throw new ProtocolError("malformed blob frame");
  }
  const [message, paths, lengths] = wrapper as [
    unknown[],
    unknown[],
    unknown[],
  ];
  let at = 4 + n;
  for (let b = 0; b < paths.length; b++) {
    const path = paths[b];
    const length = lengths[b];
    if (
      !Array.isArray(path) || path.length < 1 || path.length > 3 ||
      typeof length !== "number" || length < 0 || at + length > frame.length
    ) {
      throw new ProtocolError("malformed blob frame");
    }
    let container: unknown = message;
    for (let d = 0; d < path.length - 1; d++) {
      container = (container as unknown[])[path[d] as number];
      if (!Array.isArray(container)) {
        throw new ProtocolError("malformed blob frame");
      }
    }
    (container as unknown[])[path[path.length - 1] as number] = owned
      ? frame.subarray(at, at + length)
      : frame.slice(at, at + length);
    at += length;
  }
  if (at !== frame.length) throw new ProtocolError("malformed blob frame");
  return message;
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
   * Encodes `message` into a frame and queues it.
   * @throws {DOMException} `DataCloneError` when the message cannot be encoded.
   */
  send(message: Message): void {
    if (this.#failed !== undefined) return;
    // Scratch lists, reused: most messages carry no blob (send is sync).
    const blobs = scratchBlobs;
    const paths = scratchPaths;
    const holed = _extractBlobs(message, blobs, paths);
    if (blobs.length === 0) {
      const payload = encode(message);
      const size = payload.length;
      if (size > this.maxFrameBytes) this.#tooLarge(size);
      this.#reserve(size + 4);
      const at = this.#header(size);
      this.#buffer.set(payload, at);
      this.#length = at + size;
    } else {
      // Large byte arrays travel raw after the MessagePack part, no
      // per-byte encoding. Those from DIRECT_WRITE on are not copied at all:
      // they are written from their own memory, between the sealed part of
      // the buffer before them and what follows.
      const found = blobs.splice(0);
      const where = paths.splice(0);
      const lengths = found.map((b) => b.byteLength);
      const payload = encode([holed, where, lengths]);
      let size = 4 + payload.length;
      let copied = 0;
      for (const length of lengths) {
        size += length;
        if (length < DIRECT_WRITE) copied += length;
      }
      if (size > this.maxFrameBytes || size > 0x7fffffff) {
        blobs.length = 0; // nothing of it stays in the scratch lists
        paths.length = 0;
        this.#tooLarge(size);
      }
      this.#reserve(8 + payload.length + copied);
      let at = this.#header(size | BLOB_FLAG);
      const buffer = this.#buffer;
      buffer[at++] = payload.length >>> 24;
      buffer[at++] = (payload.length >>> 16) & 0xff;
      buffer[at++] = (payload.length >>> 8) & 0xff;
      buffer[at++] = payload.length & 0xff;
      buffer.set(payload, at);
      at += payload.length;
      for (const blob of found) {
        if (blob.byteLength < DIRECT_WRITE) {
          buffer.set(blob, at);
          at += blob.byteLength;
        } else {
          if (at > this.#sealed) {
            this.#segments.push(buffer.subarray(this.#sealed, at));
            this.#segmentBytes += at - this.#sealed;
          }
          this.#segments.push(blob);
          this.#segmentBytes += blob.byteLength;
          this.#sealed = at;
        }
      }
      this.#length = at;
    }
    if (!this.#flushing) {
      this.#flushing = true;
      queueMicrotask(() => this.#flush());
    }
  }

  #header(word: number): number {
    const buffer = this.#buffer;
    let at = this.#length;
    buffer[at++] = word >>> 24;
    buffer[at++] = (word >>> 16) & 0xff;
    buffer[at++] = (word >>> 8) & 0xff;
    buffer[at++] = word & 0xff;
    return at;
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
        for (const segment of segments) await this.#writeAll(segment);
        if (length > from) await this.#writeAll(out.subarray(from, length));
        this.#spare = out;
        this.onWritten?.();
      }
    } catch (error) {
      this.#failed = error ?? new Error("write failed");
      this.#length = this.#sealed = this.#segmentBytes = 0;
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

/**
 * Reads frames from `channel` until it ends, calling `onMessage` with each
 * decoded message in order. Resolves at a clean end of stream.
 *
 * @param channel Where to read from.
 * @param onMessage Called synchronously for every message; may return `false`
 * to stop reading (the channel is left open).
 * @param limits `maxFrameBytes`: frames larger than this are refused. Read at
 * every frame, so a caller may raise it once a peer is trusted.
 * @throws {ProtocolError} on an oversized or truncated frame, or a payload that
 * is not a message.
 */
export async function readFrames(
  channel: ByteChannel,
  onMessage: (message: Message) => boolean | void,
  limits: { maxFrameBytes: number } = {
    maxFrameBytes: DEFAULT_MAX_FRAME_BYTES,
  },
): Promise<void> {
  /** The connection's own buffer; it grows while reads fill it. */
  let regular = new Uint8Array(FIRST_READ_BUFFER);
  /** `regular`, or a big frame's own buffer while that frame arrives. */
  let buffer = regular;
  let start = 0;
  let end = 0;
  let filled = false;
  for (;;) {
    if (end === buffer.length || (filled && buffer.length < READ_BUFFER)) {
      // Full (a partial frame at the start) or reads keep filling it: grow;
      // otherwise move the partial frame to the front.
      if (start > 0 && end === buffer.length && !filled) {
        buffer.copyWithin(0, start, end);
      } else {
        const grown = new Uint8Array(
          Math.max(buffer.length * 2, Math.min(READ_BUFFER, end - start)),
        );
        grown.set(buffer.subarray(start, end));
        buffer = regular = grown;
      }
      end -= start;
      start = 0;
    }
    const room = buffer.length - end;
    const n = await channel.read(buffer.subarray(end));
    if (n === null) {
      if (end > start) {
        throw new ProtocolError(
          `connection ended inside a frame (${
            end - start
          } bytes of it received)`,
        );
      }
      return;
    }
    filled = n === room && buffer === regular;
    end += n;
    while (end - start >= 4) {
      const word = ((buffer[start]! << 24) | (buffer[start + 1]! << 16) |
        (buffer[start + 2]! << 8) | buffer[start + 3]!) >>> 0;
      const size = word & 0x7fffffff;
      if (size > limits.maxFrameBytes) {
        throw new ProtocolError(
          `frame of ${size} bytes exceeds the limit of ${limits.maxFrameBytes} bytes`,
        );
      }
      if (end - start - 4 < size) {
        if (size + 4 > buffer.length) {
          // A frame larger than the buffer. One larger than READ_BUFFER gets
          // a buffer of its own, of its exact size, read into once; a
          // smaller one grows the connection's buffer.
          const own = size + 4 > READ_BUFFER;
          const grown = new Uint8Array(
            own
              ? size + 4
              : Math.min(READ_BUFFER, Math.max(size + 4, buffer.length * 2)),
          );
          grown.set(buffer.subarray(start, end));
          end -= start;
          start = 0;
          buffer = grown;
          if (!own) regular = grown;
          filled = false;
        }
        break;
      }
      let message: unknown;
      // A big frame in a buffer of its own: a blob frame's arrays are handed
      // out as views of it (no copy), and reading goes on in `regular`.
      const owned = buffer !== regular;
      try {
        const frame = buffer.subarray(start + 4, start + 4 + size);
        message = word & BLOB_FLAG
          ? decodeBlobFrame(frame, owned)
          : decode(frame);
      } catch (error) {
        if (error instanceof ProtocolError) throw error;
        throw new ProtocolError(
          `undecodable frame: ${
            error instanceof Error ? error.message : error
          }`,
        );
      }
      start += 4 + size;
      if (owned) {
        // The own buffer ends with the frame: nothing of the next is in it.
        buffer = regular;
        start = end = 0;
      }
      if (!isMessage(message)) {
        throw new ProtocolError("frame is not a protocol message");
      }
      if (onMessage(message) === false) return;
    }
    if (start === end) start = end = 0;
  }
}
