/**
 * In-memory byte channels and raw frames, for tests of the wire (framing,
 * handshake, dispatcher) without sockets or processes.
 *
 * @module
 */
import type { ByteChannel } from "../src/framing.ts";

/** One direction of an in-memory connection. */
export class Pipe {
  #chunks: Uint8Array[] = [];
  #ended = false;
  #wake: PromiseWithResolvers<void> | undefined;

  push(bytes: Uint8Array): void {
    if (this.#ended) throw new Error("write after end");
    this.#chunks.push(bytes.slice());
    this.#notify();
  }

  end(): void {
    this.#ended = true;
    this.#notify();
  }

  async read(p: Uint8Array, maxRead: number): Promise<number | null> {
    while (this.#chunks.length === 0) {
      if (this.#ended) return null;
      this.#wake ??= Promise.withResolvers();
      await this.#wake.promise;
    }
    const head = this.#chunks[0]!;
    const n = Math.min(p.length, head.length, maxRead);
    p.set(head.subarray(0, n));
    if (n === head.length) this.#chunks.shift();
    else this.#chunks[0] = head.subarray(n);
    return n;
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.resolve();
  }
}

/** A ByteChannel end that counts its writes. */
export interface MemoryChannel extends ByteChannel {
  writes: number;
}

export interface PairOptions {
  /** Most bytes one read returns. */
  maxRead?: number;
  /** Most bytes one write takes (a partial write). */
  maxWrite?: number;
}

/** Two connected in-memory channel ends. */
export function channelPair(
  options: PairOptions = {},
): [MemoryChannel, MemoryChannel] {
  const ab = new Pipe();
  const ba = new Pipe();
  const end = (inbound: Pipe, outbound: Pipe): MemoryChannel => {
    const channel: MemoryChannel = {
      writes: 0,
      read: (p) => inbound.read(p, options.maxRead ?? Infinity),
      write: (p) => {
        channel.writes++;
        const n = Math.min(p.length, options.maxWrite ?? Infinity);
        outbound.push(p.subarray(0, n));
        return Promise.resolve(n);
      },
      close: () => {
        outbound.end();
        inbound.end();
      },
    };
    return channel;
  };
  return [end(ba, ab), end(ab, ba)];
}

/** A channel that yields `bytes` (in reads of at most `maxRead`), then EOF. */
export function rawChannel(bytes: Uint8Array, maxRead = Infinity): ByteChannel {
  const pipe = new Pipe();
  pipe.push(bytes);
  pipe.end();
  return {
    read: (p) => pipe.read(p, maxRead),
    write: () => Promise.reject(new Error("read-only")),
    close: () => {},
  };
}

/** The bytes of `parts`, one after the other. */
export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** A 4-byte big-endian length prefix followed by `payload`. */
export function frame(
  payload: Uint8Array,
  declared = payload.length,
): Uint8Array {
  const out = new Uint8Array(4 + payload.length);
  new DataView(out.buffer).setUint32(0, declared);
  out.set(payload, 4);
  return out;
}
