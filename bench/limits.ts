/**
 * Machine limits that the pool's benchmarks are compared against: what two
 * Deno processes on this machine can do over a UNIX socket with the pool's
 * framing and codec, and how long bare worker processes take to start.
 *
 * Each function starts its own child processes in a private temp dir, cleans
 * up after itself (children awaited, sockets closed, temp dir removed) and may
 * run in parallel with others — though parallel runs share the CPUs and so
 * lower each other's figures.
 *
 * Run standalone for a table of medians:
 *
 * ```sh
 * deno run -A bench/limits.ts [--rounds 3] [--json] [--only key,key] [--warmup] [--scale 1]
 * ```
 *
 * @module
 */
// msgpackr is no longer a dependency of the library (src/_msgpack.ts is the
// codec); the bench keeps it as a reference point.
// deno-lint-ignore no-import-prefix
import { Packr } from "npm:msgpackr@^2.1.4/pack";
import { parseArgs } from "node:util";

/** Read buffer size; large enough that one read takes many frames. */
const READ_SIZE = 1 << 20;
/** How long a child may take to exit once its socket is closed. */
const EXIT_GRACE_MS = 5_000;

const ECHO_PEER = new URL("./_echo_peer.ts", import.meta.url).pathname;
const SPAWN_BARE = new URL("./_spawn_bare.ts", import.meta.url).pathname;
const SPAWN_NPM = new URL("./_spawn_npm.ts", import.meta.url).pathname;

/** The codec entry and settings the pool uses (see `src/_codec.ts`). */
function newPackr(): Packr {
  return new Packr({ structuredClone: true, bundleStrings: false });
}

function childCommand(script: string, args: string[]): Deno.Command {
  return new Deno.Command(Deno.execPath(), {
    // As the pool starts workers: the import map comes from the deno.json
    // that Deno finds above the script.
    args: ["run", "-A", script, ...args],
    stdin: "null",
    stdout: "null",
    stderr: "inherit",
  });
}

/** Rejects when the child exits before it should (any exit at all). */
async function exitedEarly(
  child: Deno.ChildProcess,
  what: string,
): Promise<never> {
  const status = await child.status;
  throw new Error(
    `${what} exited early with code ${status.code}${
      status.signal ? ` (signal ${status.signal})` : ""
    }`,
  );
}

/** Awaits the child's exit; kills it if it does not exit within the grace. */
async function reap(child: Deno.ChildProcess): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<"late">((resolve) => {
    timer = setTimeout(() => resolve("late"), EXIT_GRACE_MS);
  });
  try {
    if (await Promise.race([child.status, late]) === "late") {
      try {
        child.kill("SIGKILL");
      } catch {
        // exited meanwhile
      }
      await child.status;
    }
  } finally {
    clearTimeout(timer);
  }
}

function closeQuietly(closer: { close(): void } | undefined): void {
  try {
    closer?.close();
  } catch {
    // already closed
  }
}

/** Runs `body` with a connection to a fresh `_echo_peer.ts` in `mode`. */
async function withEchoPeer<T>(
  mode: "framed" | "raw",
  body: (conn: Deno.Conn) => Promise<T>,
): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "distex-limits-" });
  let listener: Deno.Listener | undefined;
  let child: Deno.ChildProcess | undefined;
  let conn: Deno.Conn | undefined;
  try {
    const path = `${dir}/peer.sock`;
    listener = Deno.listen({ transport: "unix", path });
    child = childCommand(ECHO_PEER, [mode, path]).spawn();
    conn = await Promise.race([
      listener.accept(),
      exitedEarly(child, `Echo peer (${mode})`),
    ]);
    return await body(conn);
  } finally {
    closeQuietly(conn);
    closeQuietly(listener);
    if (child) await reap(child);
    await Deno.remove(dir, { recursive: true });
  }
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < bytes.length) {
    offset += await conn.write(bytes.subarray(offset));
  }
}

/**
 * Reads length-prefixed frames: one read of up to {@linkcode READ_SIZE}
 * bytes, then every complete frame in the buffer.
 */
class FrameReader {
  #conn: Deno.Conn;
  #buf = new Uint8Array(READ_SIZE);
  #view = new DataView(this.#buf.buffer);
  #start = 0;
  #end = 0;

  constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }

  /**
   * Reads once and calls `onFrame` for each complete frame.
   * Returns false at end of stream.
   */
  async read(onFrame: (frame: Uint8Array) => void): Promise<boolean> {
    this.#makeRoom();
    const n = await this.#conn.read(this.#buf.subarray(this.#end));
    if (n === null) return false;
    this.#end += n;
    while (this.#end - this.#start >= 4) {
      const length = this.#view.getUint32(this.#start);
      const frameEnd = this.#start + 4 + length;
      if (frameEnd > this.#end) break;
      onFrame(this.#buf.subarray(this.#start + 4, frameEnd));
      this.#start = frameEnd;
    }
    return true;
  }

  #makeRoom(): void {
    if (this.#start === this.#end) {
      this.#start = this.#end = 0;
    } else if (
      this.#start > 0 && this.#buf.length - this.#end < READ_SIZE / 4
    ) {
      this.#buf.copyWithin(0, this.#start, this.#end);
      this.#end -= this.#start;
      this.#start = 0;
    }
    if (this.#end - this.#start < 4) return;
    const need = 4 + this.#view.getUint32(this.#start);
    if (need <= this.#buf.length) return;
    const bigger = new Uint8Array(Math.max(need, 2 * this.#buf.length));
    bigger.set(this.#buf.subarray(this.#start, this.#end));
    this.#end -= this.#start;
    this.#start = 0;
    this.#buf = bigger;
    this.#view = new DataView(bigger.buffer);
  }
}

/** Appends length-prefixed MessagePack frames to one reusable buffer. */
class FrameWriter {
  #packr = newPackr();
  #buf = new Uint8Array(64 * 1024);
  #view = new DataView(this.#buf.buffer);
  length = 0;

  add(value: unknown): void {
    const encoded = this.#packr.pack(value);
    const need = this.length + 4 + encoded.length;
    if (need > this.#buf.length) {
      const bigger = new Uint8Array(Math.max(need, 2 * this.#buf.length));
      bigger.set(this.#buf.subarray(0, this.length));
      this.#buf = bigger;
      this.#view = new DataView(bigger.buffer);
    }
    this.#view.setUint32(this.length, encoded.length);
    this.#buf.set(encoded, this.length + 4);
    this.length = need;
  }

  /** The frames added since the last call; valid until the next `add`. */
  take(): Uint8Array {
    const frames = this.#buf.subarray(0, this.length);
    this.length = 0;
    return frames;
  }
}

interface EchoPlan {
  messages: number;
  framesPerWrite: number;
  inFlight: number;
  make(i: number): unknown;
  /** Checks one reply; returns a number that is summed for a checksum. */
  check(reply: unknown): number;
  /** The checksum expected over all replies. */
  expected: number;
  /** Replies to wait for before the clock starts. */
  warmup: number;
}

/** A timed stretch of a run: how many units it covered and how long. */
interface Timed {
  count: number;
  ms: number;
}

function perSecond(timed: Timed): number {
  return timed.count / (timed.ms / 1000);
}

/**
 * Sends `plan.messages` frames through a framed echo peer, `framesPerWrite`
 * per write, at most `inFlight` unanswered; times the replies from the read
 * that reached `plan.warmup` replies to the last one.
 */
function framedEcho(plan: EchoPlan): Promise<Timed> {
  return withEchoPeer("framed", async (conn) => {
    const packr = newPackr();
    const reader = new FrameReader(conn);
    const writer = new FrameWriter();
    let sent = 0;
    let received = 0;
    let checksum = 0;
    let wake: (() => void) | undefined;
    let failed = false;
    let t0 = performance.now();
    let countedFrom = 0;

    const receive = async (): Promise<void> => {
      const onFrame = (frame: Uint8Array): void => {
        checksum += plan.check(packr.unpack(frame));
        received++;
      };
      while (received < plan.messages) {
        if (!await reader.read(onFrame)) {
          throw new Error(
            `Echo peer closed the socket after ${received} of ${plan.messages} replies`,
          );
        }
        if (countedFrom === 0 && received >= plan.warmup && plan.warmup > 0) {
          t0 = performance.now();
          countedFrom = received;
        }
        if (wake) {
          const resume = wake;
          wake = undefined;
          resume();
        }
      }
    };

    const send = async (): Promise<void> => {
      while (sent < plan.messages) {
        const n = Math.min(plan.framesPerWrite, plan.messages - sent);
        while (sent + n - received > plan.inFlight) {
          if (failed) return;
          const { promise, resolve } = Promise.withResolvers<void>();
          wake = resolve;
          await promise;
        }
        for (let i = sent; i < sent + n; i++) writer.add(plan.make(i));
        await writeAll(conn, writer.take());
        sent += n;
      }
    };

    t0 = performance.now();
    const receiving = receive();
    // If the receiver fails, do not leave the sender waiting forever.
    receiving.catch(() => {
      failed = true;
      wake?.();
    });
    await Promise.all([send(), receiving]);
    const ms = performance.now() - t0;
    if (checksum !== plan.expected) {
      throw new Error(
        `Echo checksum mismatch: got ${checksum}, expected ${plan.expected}`,
      );
    }
    return { count: plan.messages - countedFrom, ms };
  });
}

function checkPositiveInt(name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new RangeError(`${name} must be a positive integer, got ${value}`);
  }
}

/** The warm-up count: `warmup` if valid, else a tenth of `total`. */
function checkWarmup(warmup: number | undefined, total: number): number {
  const value = warmup ?? Math.floor(total / 10);
  if (!Number.isSafeInteger(value) || value < 0 || value >= total) {
    throw new RangeError(
      `warmup must be an integer from 0 to ${total - 1}, got ${value}`,
    );
  }
  return value;
}

/** Options of {@linkcode framedEchoRate}. */
export interface FramedEchoOptions {
  /** How many messages make the round trip. */
  messages: number;
  /** How many frames go out in one write. */
  framesPerWrite: number;
  /**
   * Most messages sent and not yet answered.
   * @default {Math.max(4096, 2 * framesPerWrite)}
   */
  inFlight?: number;
  /**
   * Replies before the clock starts (JIT and heap warm-up). Must be less
   * than `messages`.
   * @default {Math.floor(messages / 10)}
   */
  warmup?: number;
}

/**
 * Pipelined round trips of small task-like MessagePack messages
 * (`[2, id, 1, [id]]`) through a second Deno process over a UNIX socket. The
 * peer decodes and re-encodes every frame and sends the replies to one read
 * back in one write; this side encodes, frames, decodes and counts.
 *
 * @param opts How many messages, how many frames per write, and the window.
 * @returns Round trips per second.
 * @throws {RangeError} If a count is not a positive integer.
 * @throws {Error} If the peer fails or a reply is wrong.
 *
 * @example Sixteen frames per write
 * ```ts ignore
 * const perSecond = await framedEchoRate({ messages: 200_000, framesPerWrite: 16 });
 * ```
 */
export async function framedEchoRate(
  opts: FramedEchoOptions,
): Promise<number> {
  const { messages, framesPerWrite } = opts;
  const inFlight = opts.inFlight ?? Math.max(4096, 2 * framesPerWrite);
  checkPositiveInt("messages", messages);
  checkPositiveInt("framesPerWrite", framesPerWrite);
  checkPositiveInt("inFlight", inFlight);
  const timed = await framedEcho({
    messages,
    framesPerWrite,
    warmup: checkWarmup(opts.warmup, messages),
    inFlight: Math.max(inFlight, framesPerWrite),
    make: (i) => [2, i, 1, [i]],
    check: (reply) => (reply as [number, number, number, [number]])[3][0],
    expected: (messages - 1) * messages / 2,
  });
  return perSecond(timed);
}

/** Options of {@linkcode pingPongRate}. */
export interface PingPongOptions {
  /** How many messages make the round trip, one at a time. */
  messages: number;
  /**
   * Replies before the clock starts.
   * @default {Math.floor(messages / 10)}
   */
  warmup?: number;
}

/**
 * Round trips of one small framed MessagePack message at a time: the next is
 * sent only once the reply to the last has been decoded. This is the latency
 * floor of one task on an idle worker.
 *
 * @param opts How many messages.
 * @returns Round trips per second.
 * @throws {RangeError} If `messages` is not a positive integer.
 * @throws {Error} If the peer fails or a reply is wrong.
 *
 * @example
 * ```ts ignore
 * const perSecond = await pingPongRate({ messages: 10_000 });
 * ```
 */
export function pingPongRate(opts: PingPongOptions): Promise<number> {
  return framedEchoRate({ ...opts, framesPerWrite: 1, inFlight: 1 });
}

/** Options of {@linkcode rawEchoRate}. */
export interface RawEchoOptions {
  /** How many bytes make the round trip. */
  bytes: number;
  /** Bytes per write (and at least the read buffer size on both sides). */
  chunk: number;
  /**
   * Bytes echoed before the clock starts.
   * @default {Math.floor(bytes / 10)}
   */
  warmup?: number;
}

/**
 * Raw byte echo over a UNIX socket between two Deno processes: this side
 * writes `chunk` bytes per write while it reads the echo concurrently; the
 * peer writes back whatever each read gave it. No framing, no codec.
 *
 * @param opts How many bytes in all, and the write size.
 * @returns Bytes per second (counted once, not per direction).
 * @throws {RangeError} If a size is not a positive integer.
 * @throws {Error} If the peer fails.
 *
 * @example 1 MiB writes
 * ```ts ignore
 * const bytesPerSecond = await rawEchoRate({ bytes: 1 << 30, chunk: 1 << 20 });
 * ```
 */
export async function rawEchoRate(opts: RawEchoOptions): Promise<number> {
  const { bytes, chunk } = opts;
  checkPositiveInt("bytes", bytes);
  checkPositiveInt("chunk", chunk);
  const warmup = checkWarmup(opts.warmup, bytes);
  const timed = await withEchoPeer("raw", async (conn): Promise<Timed> => {
    let t0 = performance.now();
    let countedFrom = 0;
    const out = new Uint8Array(chunk).fill(0x5a);
    const buf = new Uint8Array(Math.max(chunk, READ_SIZE));
    const send = async (): Promise<void> => {
      for (let sent = 0; sent < bytes; sent += chunk) {
        await writeAll(conn, out.subarray(0, Math.min(chunk, bytes - sent)));
      }
    };
    const receive = async (): Promise<void> => {
      let received = 0;
      while (received < bytes) {
        const n = await conn.read(buf);
        if (n === null) {
          throw new Error(
            `Echo peer closed the socket after ${received} of ${bytes} bytes`,
          );
        }
        received += n;
        if (countedFrom === 0 && received >= warmup && warmup > 0) {
          t0 = performance.now();
          countedFrom = received;
        }
      }
    };
    t0 = performance.now();
    await Promise.all([send(), receive()]);
    return { count: bytes - countedFrom, ms: performance.now() - t0 };
  });
  return perSecond(timed);
}

/** Options of {@linkcode framedBigEchoRate}. */
export interface FramedBigEchoOptions {
  /** How many messages make the round trip. */
  messages: number;
  /** Bytes in each message's `Uint8Array`. */
  size: number;
  /** Most messages sent and not yet answered. */
  inFlight: number;
  /**
   * Replies before the clock starts (heap warm-up matters here).
   * @default {Math.floor(messages / 10)}
   */
  warmup?: number;
}

/**
 * Round trips of large `Uint8Array` messages (MessagePack with the pool's
 * codec, one frame per write) through a peer that decodes and re-encodes
 * each, `inFlight` at a time.
 *
 * @param opts How many messages, how big, and how many in flight.
 * @returns Payload bytes per second (`messages * size / seconds`).
 * @throws {RangeError} If a count or size is not a positive integer.
 * @throws {Error} If the peer fails or a reply is wrong.
 *
 * @example 1 MiB payloads, four in flight
 * ```ts ignore
 * const bytesPerSecond = await framedBigEchoRate({ messages: 500, size: 1 << 20, inFlight: 4 });
 * ```
 */
export async function framedBigEchoRate(
  opts: FramedBigEchoOptions,
): Promise<number> {
  const { messages, size, inFlight } = opts;
  checkPositiveInt("messages", messages);
  checkPositiveInt("size", size);
  checkPositiveInt("inFlight", inFlight);
  const payload = new Uint8Array(size);
  for (let i = 0; i < size; i++) payload[i] = i & 0xff;
  const timed = await framedEcho({
    messages,
    framesPerWrite: 1,
    inFlight,
    warmup: checkWarmup(opts.warmup, messages),
    make: () => payload,
    check: (reply) => {
      if (!(reply instanceof Uint8Array) || reply.length !== size) {
        throw new Error(`Echo reply is not a Uint8Array of ${size} bytes`);
      }
      return reply[size - 1]!;
    },
    expected: messages * ((size - 1) & 0xff),
  });
  return perSecond(timed) * size;
}

/**
 * Starts `workers` children of `script` at once and returns the ms from the
 * first spawn until each has connected back and sent one byte.
 */
async function spawnMs(script: string, workers: number): Promise<number> {
  checkPositiveInt("workers", workers);
  const dir = await Deno.makeTempDir({ prefix: "distex-limits-" });
  const conns: Deno.Conn[] = [];
  const children: Deno.ChildProcess[] = [];
  let listener: Deno.Listener | undefined;
  try {
    const path = `${dir}/spawn.sock`;
    listener = Deno.listen({ transport: "unix", path });
    const command = childCommand(script, [path]);
    const t0 = performance.now();
    for (let i = 0; i < workers; i++) children.push(command.spawn());
    // A child that fails exits non-zero; one that exits 0 has sent its byte.
    const failed = Promise.race(children.map(async (child) => {
      const status = await child.status;
      if (!status.success) await exitedEarly(child, "Spawned child");
      return new Promise<never>(() => {});
    }));
    const bytes: Promise<void>[] = [];
    for (let i = 0; i < workers; i++) {
      const conn = await Promise.race([listener.accept(), failed]);
      conns.push(conn);
      const byte = (async (): Promise<void> => {
        if (await conn.read(new Uint8Array(1)) !== 1) {
          throw new Error("Spawned child closed its socket without a byte");
        }
      })();
      byte.catch(() => {}); // reported by the Promise.all below
      bytes.push(byte);
    }
    await Promise.race([Promise.all(bytes), failed]);
    return performance.now() - t0;
  } finally {
    for (const conn of conns) closeQuietly(conn);
    closeQuietly(listener);
    await Promise.all(children.map(reap));
    await Deno.remove(dir, { recursive: true });
  }
}

/** Options of {@linkcode bareSpawnMs} and {@linkcode npmSpawnMs}. */
export interface SpawnOptions {
  /** How many processes start at once. */
  workers: number;
}

/**
 * Start-up floor of local workers: ms from the first spawn until `workers`
 * bare `deno run` processes (a script with no imports) have each connected
 * back to a UNIX socket and sent one byte.
 *
 * @param opts How many processes start at once.
 * @returns Milliseconds until all are connected.
 * @throws {RangeError} If `workers` is not a positive integer.
 * @throws {Error} If a child fails.
 *
 * @example
 * ```ts ignore
 * const ms = await bareSpawnMs({ workers: 4 });
 * ```
 */
export function bareSpawnMs(opts: SpawnOptions): Promise<number> {
  return spawnMs(SPAWN_BARE, opts.workers);
}

/**
 * Like {@linkcode bareSpawnMs}, but each child imports `msgpackr/pack` (the
 * pure-JS entry that `src/_codec.ts` uses, no `node:` modules; resolved
 * through the project's import map, as in a worker) before it connects.
 *
 * @param opts How many processes start at once.
 * @returns Milliseconds until all are connected.
 * @throws {RangeError} If `workers` is not a positive integer.
 * @throws {Error} If a child fails.
 *
 * @example
 * ```ts ignore
 * const ms = await npmSpawnMs({ workers: 4 });
 * ```
 */
export function npmSpawnMs(opts: SpawnOptions): Promise<number> {
  return spawnMs(SPAWN_NPM, opts.workers);
}

/** One limit that {@linkcode measureLimits} measures. */
export interface LimitCase {
  /** Key in the result object, unit included (`…PerS`, `…BytesPerS`, `…Ms`). */
  key: string;
  /** Human-readable description. */
  label: string;
  /** Unit of the value. */
  unit: "msg/s" | "B/s" | "ms";
  /**
   * Runs the measurement once; `scale` (default 1) multiplies the message or
   * byte count, for quick smoke runs.
   */
  run(scale?: number): Promise<number>;
}

const MIB = 1 << 20;

/** `count * scale`, rounded, at least 10 (so a warm-up tenth remains). */
function scaled(count: number, scale: number): number {
  return Math.max(10, Math.round(count * scale));
}

/** The limits `bench/limits.ts` measures by default, in run order. */
export const LIMIT_CASES: readonly LimitCase[] = [
  {
    key: "pingPongPerS",
    label: "ping-pong, 1 small message in flight",
    unit: "msg/s",
    run: (s = 1) => pingPongRate({ messages: scaled(20_000, s) }),
  },
  {
    key: "framed1PerS",
    label: "pipelined small messages, 1 frame/write",
    unit: "msg/s",
    run: (s = 1) =>
      framedEchoRate({ messages: scaled(300_000, s), framesPerWrite: 1 }),
  },
  {
    key: "framed16PerS",
    label: "pipelined small messages, 16 frames/write",
    unit: "msg/s",
    run: (s = 1) =>
      framedEchoRate({ messages: scaled(1_000_000, s), framesPerWrite: 16 }),
  },
  {
    key: "framed4096PerS",
    label: "pipelined small messages, 4096 frames/write",
    unit: "msg/s",
    run: (s = 1) =>
      framedEchoRate({ messages: scaled(1_000_000, s), framesPerWrite: 4096 }),
  },
  {
    key: "rawEchoBytesPerS",
    label: "raw byte echo, 1 MiB writes",
    unit: "B/s",
    run: (s = 1) => rawEchoRate({ bytes: scaled(2048, s) * MIB, chunk: MIB }),
  },
  {
    key: "big1BytesPerS",
    label: "1 MiB msgpack frames, 1 in flight",
    unit: "B/s",
    run: (s = 1) =>
      framedBigEchoRate({ messages: scaled(400, s), size: MIB, inFlight: 1 }),
  },
  {
    key: "big4BytesPerS",
    label: "1 MiB msgpack frames, 4 in flight",
    unit: "B/s",
    run: (s = 1) =>
      framedBigEchoRate({ messages: scaled(600, s), size: MIB, inFlight: 4 }),
  },
  {
    key: "bareSpawn4Ms",
    label: "spawn 4 bare workers until connected",
    unit: "ms",
    run: () => bareSpawnMs({ workers: 4 }),
  },
  {
    key: "bareSpawn8Ms",
    label: "spawn 8 bare workers until connected",
    unit: "ms",
    run: () => bareSpawnMs({ workers: 8 }),
  },
  {
    key: "npmSpawn4Ms",
    label: "spawn 4 workers importing msgpackr/pack until connected",
    unit: "ms",
    run: () => npmSpawnMs({ workers: 4 }),
  },
  {
    key: "npmSpawn8Ms",
    label: "spawn 8 workers importing msgpackr/pack until connected",
    unit: "ms",
    run: () => npmSpawnMs({ workers: 8 }),
  },
];

function median(values: number[]): number {
  const sorted = values.toSorted((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1
    ? sorted[mid]!
    : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Options of {@linkcode measureLimits}. */
export interface MeasureLimitsOptions {
  /**
   * How many times each case runs; rounds are interleaved (every case once,
   * then again), so a noisy moment does not hit one case only.
   * @default {3}
   */
  rounds?: number;
  /** Which cases to run. @default {LIMIT_CASES} */
  cases?: readonly LimitCase[];
  /**
   * Multiplies each case's message or byte count (quick smoke runs).
   * @default {1}
   */
  scale?: number;
}

/**
 * Runs every case `rounds` times, interleaved, one at a time.
 *
 * @param opts Rounds and cases.
 * @returns For each case key, every sample in run order.
 * @throws {RangeError} If `rounds` is not a positive integer.
 *
 * @example
 * ```ts ignore
 * const samples = await measureLimits({ rounds: 3 });
 * ```
 */
export async function measureLimits(
  opts: MeasureLimitsOptions = {},
): Promise<Record<string, number[]>> {
  const rounds = opts.rounds ?? 3;
  const cases = opts.cases ?? LIMIT_CASES;
  checkPositiveInt("rounds", rounds);
  const samples: Record<string, number[]> = {};
  for (const c of cases) samples[c.key] = [];
  for (let round = 0; round < rounds; round++) {
    for (const c of cases) samples[c.key]!.push(await c.run(opts.scale));
  }
  return samples;
}

/**
 * The median of each case's samples.
 *
 * @param samples What {@linkcode measureLimits} returned.
 * @returns For each case key, the median.
 */
export function medians(
  samples: Record<string, number[]>,
): Record<string, number> {
  return Object.fromEntries(
    Object.entries(samples).map(([key, values]) => [key, median(values)]),
  );
}

function formatValue(value: number, unit: LimitCase["unit"]): string {
  switch (unit) {
    case "msg/s":
      return `${Math.round(value).toLocaleString("en-US")} msg/s`;
    case "B/s":
      return `${(value / 1e6).toFixed(0)} MB/s`;
    case "ms":
      return `${value.toFixed(1)} ms`;
  }
}

/**
 * Prints a markdown table of medians, or with `--json` a JSON object of them.
 * `--only key,key` runs only those cases; `--warmup` runs each selected case
 * once, untimed, before the rounds (for the spawn cases, whose single timed
 * run has no warm-up of its own); `--scale 0.1` shrinks the counts.
 */
async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      rounds: { type: "string", default: "3" },
      json: { type: "boolean", default: false },
      only: { type: "string" },
      warmup: { type: "boolean", default: false },
      scale: { type: "string", default: "1" },
    },
  });
  const rounds = Number(values.rounds);
  const scale = Number(values.scale);
  if (!(scale > 0)) throw new RangeError(`--scale must be > 0, got ${scale}`);
  let cases = LIMIT_CASES;
  if (values.only !== undefined) {
    const keys = values.only.split(",");
    const unknown = keys.filter((k) => !LIMIT_CASES.some((c) => c.key === k));
    if (unknown.length > 0) {
      throw new RangeError(
        `Unknown limit case ${unknown.join(", ")}; known: ${
          LIMIT_CASES.map((c) => c.key).join(", ")
        }`,
      );
    }
    cases = LIMIT_CASES.filter((c) => keys.includes(c.key));
  }
  if (values.warmup) { for (const c of cases) await c.run(); }
  const samples = await measureLimits({ rounds, cases });
  const result = medians(samples);
  if (values.json) {
    console.log(JSON.stringify(result, null, 2));
    return;
  }
  console.log(`Machine limits, median of ${rounds} interleaved rounds\n`);
  console.log("| limit | median | samples |");
  console.log("| --- | ---: | --- |");
  for (const c of cases) {
    const all = samples[c.key]!.map((v) => formatValue(v, c.unit)).join(", ");
    console.log(
      `| ${c.label} | ${formatValue(result[c.key]!, c.unit)} | ${all} |`,
    );
  }
}

if (import.meta.main) await main();
