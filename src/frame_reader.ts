/**
 * Reading frames (the format is described in `framing.ts`): a connection's
 * read buffer, large raw segments read straight into buffers of their own, and
 * the reclaim hook a worker uses to get the memory of dead byte arrays back
 * (its private minor collector, {@link takeCollector}).
 *
 * @module
 */
import { decode } from "./_codec.ts";
import {
  type ByteChannel,
  DEFAULT_MAX_FRAME_BYTES,
  DIRECT,
  isMessage,
  type Message,
  ProtocolError,
  RAW_FLAG,
} from "./framing.ts";

/** First size of a connection's read buffer: it grows while reads fill it. */
const FIRST_READ_BUFFER = 16 * 1024;
/**
 * Most a connection's read buffer grows to; a larger frame is read into a
 * buffer of its own, of its exact size (its raw segments each into theirs).
 */
const READ_BUFFER = 256 * 1024;
/**
 * After bytes were read straight into a buffer of their own, the next read
 * asks for no more than this: the next frame's head, and not much of any
 * large contents behind it (which would be copied out of the read buffer).
 */
const LOOKAHEAD = 16 * 1024;
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

function getWord(buffer: Uint8Array, at: number): number {
  return ((buffer[at]! << 24) | (buffer[at + 1]! << 16) |
    (buffer[at + 2]! << 8) | buffer[at + 3]!) >>> 0;
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
