/**
 * The link between a pool and a remote supervisor (`cli.ts remote`): what
 * travels on the supervisor's stdin (and, for stdio links, its stdout). Both
 * sides import this module, so the format is defined once.
 *
 * The first line on the supervisor's stdin is the pool's secret as hex text
 * (never on a command line). After it come binary frames, each
 * `op:u8 channel:u32 length:u32 payload`:
 *
 * - `Control` (pool → supervisor): {@link Control} as JSON: kill a worker,
 *   or stop. Closing stdin also stops the supervisor.
 * - `Open` (supervisor → pool): a worker connected to the supervisor's private
 *   socket; its bytes travel as `Data` frames on that channel number.
 * - `Data` (both ways): bytes of one worker connection.
 * - `Close` (both ways): that connection ended.
 * - `Ping` (both ways, stdio links only): sent every {@link PING_MS}; a side
 *   that hears nothing for {@link SILENCE_MS} gives the link up (a cut
 *   network sends no FIN, and a TLS connection has no keep-alive of its own).
 *
 * With an `ssh -R` tunnel only the secret and `Control` frames are used; on a
 * stdio link (any command that gives a pipe: `srun`, `kubectl exec -i`,
 * `docker exec -i`, plain `ssh`, a `serve` server) the workers' connections
 * are multiplexed over the pipe, one channel per connection.
 *
 * @module
 */

/** Frame types of the link. */
export const LinkOp = {
  Open: 1,
  Data: 2,
  Close: 3,
  Control: 4,
  Ping: 5,
} as const;

/** How often each side of a stdio link says it is alive (ms). */
export const PING_MS = 1_000;
/** Silence after which a side gives a stdio link up (ms). */
export const SILENCE_MS = 8_000;

/** A command from the pool to a supervisor. */
export type Control =
  | { kind: "kill"; id: number }
  | { kind: "stop" };

const HEADER = 9;
/** Largest payload of one link frame; larger writes are split. */
export const MAX_LINK_PAYLOAD = 1 << 20;

/** Encodes one frame. */
export function encodeLinkFrame(
  op: number,
  channel: number,
  payload: Uint8Array = new Uint8Array(0),
): Uint8Array {
  const frame = new Uint8Array(HEADER + payload.length);
  const view = new DataView(frame.buffer);
  view.setUint8(0, op);
  view.setUint32(1, channel);
  view.setUint32(5, payload.length);
  frame.set(payload, HEADER);
  return frame;
}

/** Encodes a control frame. */
export function encodeControl(control: Control): Uint8Array {
  return encodeLinkFrame(
    LinkOp.Control,
    0,
    new TextEncoder().encode(JSON.stringify(control)),
  );
}

/** Decodes a control payload; undefined for anything malformed. */
export function decodeControl(payload: Uint8Array): Control | undefined {
  try {
    const value = JSON.parse(new TextDecoder().decode(payload));
    if (value?.kind === "stop") return { kind: "stop" };
    if (value?.kind === "kill" && Number.isInteger(value.id)) {
      return { kind: "kill", id: value.id };
    }
  } catch { /* malformed */ }
  return undefined;
}

/** Thrown for bytes on a link that are not link frames. */
export class LinkError extends Error {
  /** @param message What was wrong. */
  constructor(message: string) {
    super(message);
    this.name = "LinkError";
  }
}

/**
 * Splits a byte stream into link frames. Payloads handed to `onFrame` are
 * fresh copies, owned by the receiver.
 */
export class LinkParser {
  #buffer = new Uint8Array(64 * 1024);
  #length = 0;
  #onFrame: (op: number, channel: number, payload: Uint8Array) => void;

  /** @param onFrame Called for each complete frame, in order. */
  constructor(
    onFrame: (op: number, channel: number, payload: Uint8Array) => void,
  ) {
    this.#onFrame = onFrame;
  }

  /**
   * Adds bytes read from the link.
   * @throws {LinkError} on a frame with an unknown type or an oversized payload.
   */
  push(chunk: Uint8Array): void {
    if (this.#length + chunk.length > this.#buffer.length) {
      let size = this.#buffer.length * 2;
      while (size < this.#length + chunk.length) size *= 2;
      const grown = new Uint8Array(size);
      grown.set(this.#buffer.subarray(0, this.#length));
      this.#buffer = grown;
    }
    this.#buffer.set(chunk, this.#length);
    this.#length += chunk.length;
    let at = 0;
    const view = new DataView(this.#buffer.buffer);
    while (this.#length - at >= HEADER) {
      const op = view.getUint8(at);
      const channel = view.getUint32(at + 1);
      const size = view.getUint32(at + 5);
      if (op < LinkOp.Open || op > LinkOp.Ping) {
        throw new LinkError(`unknown link frame type ${op}`);
      }
      if (size > MAX_LINK_PAYLOAD) {
        throw new LinkError(`link frame of ${size} bytes is too large`);
      }
      if (this.#length - at < HEADER + size) break;
      const payload = this.#buffer.slice(at + HEADER, at + HEADER + size);
      at += HEADER + size;
      this.#onFrame(op, channel, payload);
    }
    if (at > 0) {
      this.#buffer.copyWithin(0, at, this.#length);
      this.#length -= at;
    }
  }
}

/**
 * Serialises frames onto one byte sink: frames queued in the same turn go
 * out in one write. `send` resolves when its frame has been written.
 */
export class LinkWriter {
  #write: (bytes: Uint8Array) => Promise<void>;
  #queue: Uint8Array[] = [];
  #waiters: (() => void)[] = [];
  #flushing = false;
  #failed: unknown;

  /** @param write Writes all of `bytes` (or rejects). */
  constructor(write: (bytes: Uint8Array) => Promise<void>) {
    this.#write = write;
  }

  /** Queues raw bytes (e.g. the secret line) or a frame. */
  send(bytes: Uint8Array): Promise<void> {
    if (this.#failed !== undefined) return Promise.reject(this.#failed);
    this.#queue.push(bytes);
    const { promise, resolve } = Promise.withResolvers<void>();
    this.#waiters.push(resolve);
    if (!this.#flushing) {
      this.#flushing = true;
      queueMicrotask(() => this.#flush());
    }
    return promise.then(() => {
      if (this.#failed !== undefined) throw this.#failed;
    });
  }

  /** Queues a data frame, split as needed; resolves when written. */
  data(channel: number, bytes: Uint8Array): Promise<void> {
    let last: Promise<void> = Promise.resolve();
    for (let at = 0; at < bytes.length; at += MAX_LINK_PAYLOAD) {
      last = this.send(
        encodeLinkFrame(
          LinkOp.Data,
          channel,
          bytes.subarray(at, at + MAX_LINK_PAYLOAD),
        ),
      );
    }
    return last;
  }

  /** Resolves once everything queued so far is written (or failed). */
  async drained(): Promise<void> {
    if (!this.#flushing) return;
    await this.send(new Uint8Array(0)).catch(() => {});
  }

  async #flush(): Promise<void> {
    while (this.#queue.length > 0) {
      const parts = this.#queue.splice(0);
      const waiters = this.#waiters.splice(0);
      let total = 0;
      for (const p of parts) total += p.length;
      const out = parts.length === 1 ? parts[0]! : new Uint8Array(total);
      if (parts.length > 1) {
        let at = 0;
        for (const p of parts) {
          out.set(p, at);
          at += p.length;
        }
      }
      try {
        if (this.#failed === undefined && out.length > 0) {
          await this.#write(out);
        }
      } catch (error) {
        this.#failed = error ?? new Error("link write failed");
      }
      for (const w of waiters) w();
    }
    this.#flushing = false;
  }
}

/**
 * Reads the first line (the secret) from a byte source, returning it and the
 * bytes read after it.
 * @throws {Error} when the source ends first or the line is not a secret.
 */
export async function readSecretLine(
  read: (p: Uint8Array) => Promise<number | null>,
): Promise<{ secret: string; rest: Uint8Array }> {
  const buffer = new Uint8Array(4096);
  let length = 0;
  for (;;) {
    const end = buffer.subarray(0, length).indexOf(10);
    if (end >= 0) {
      const secret = new TextDecoder().decode(buffer.subarray(0, end)).trim();
      if (!/^[0-9a-f]{32,128}$/.test(secret)) break;
      return { secret, rest: buffer.slice(end + 1, length) };
    }
    if (length === buffer.length) break;
    const n = await read(buffer.subarray(length));
    if (n === null) break;
    length += n;
  }
  throw new Error(
    "expected the pool's secret as the first line on stdin (remote supervisors are started by a Pool)",
  );
}

/** The version line a supervisor prints when it is not the pool's version. */
export function versionMismatchLine(remote: string, pool: string): string {
  return `distex: version mismatch: this host runs @distex/pool ${remote}, the pool ${pool}`;
}

/** Finds a {@link versionMismatchLine} in stderr lines. */
export function findVersionMismatch(
  lines: string[],
): { remote: string; pool: string } | undefined {
  for (const line of lines) {
    const m =
      /version mismatch: this host runs @distex\/pool (\S+), the pool (\S+)/
        .exec(line);
    if (m) return { remote: m[1]!, pool: m[2]! };
  }
  return undefined;
}
