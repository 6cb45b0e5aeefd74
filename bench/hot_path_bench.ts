/**
 * Micro-benchmarks of the pool's hot path, per task: encode and decode a
 * message, frame it and read it back, pick a worker. Run with
 * `deno bench bench/` (this is the only `*_bench.ts` file there).
 *
 * The round trips go over an in-memory {@linkcode ByteChannel}, so they show
 * the protocol's own cost without a socket or a second process; compare them
 * with the whole-process figures of `deno task bench`.
 *
 * @module
 */
import { decode, encode } from "../src/_codec.ts";
import {
  type ByteChannel,
  FrameWriter,
  type Message,
  Op,
  readFrames,
} from "../src/protocol.ts";
import { pickWorker, SlotIndex, type WorkerLoad } from "../src/scheduler.ts";

/** A tiny task as the pool sends it: `[Op.Call, taskId, fnId, args]`. */
const CALL: Message = [Op.Call, 123_456, 1, [42]];
/** What the worker sends back: `[Op.Result, taskId, value, workUs]`. */
const RESULT: Message = [Op.Result, 123_456, 44, 3];
/** A chunk of 100 tiny calls, as `map` with `chunkSize: 100` sends it. */
const CHUNK: Message = [
  Op.Chunk,
  123_456,
  1,
  Array.from({ length: 100 }, (_, i) => [i]),
];
const CALL_BYTES = encode(CALL).slice();
const RESULT_BYTES = encode(RESULT).slice();
const CHUNK_RESULT_BYTES = encode([
  Op.Result,
  123_456,
  Array.from({ length: 100 }, (_, i) => i + 2),
  30,
]).slice();

Deno.bench("encode Call", { group: "codec", baseline: true }, () => {
  encode(CALL);
});

Deno.bench("decode Call", { group: "codec" }, () => {
  decode(CALL_BYTES);
});

Deno.bench("decode Result", { group: "codec" }, () => {
  decode(RESULT_BYTES);
});

Deno.bench("encode Chunk of 100 calls", { group: "codec" }, () => {
  encode(CHUNK);
});

Deno.bench("decode Result of a 100-call chunk", { group: "codec" }, () => {
  decode(CHUNK_RESULT_BYTES);
});

/**
 * One direction of an in-memory byte pipe. `write` copies (the writer reuses
 * its buffer once a write resolves, as it may with a socket).
 */
class MemoryPipe implements ByteChannel {
  #chunks: Uint8Array[] = [];
  #offset = 0;
  #waiting: PromiseWithResolvers<void> | undefined;

  read(p: Uint8Array): Promise<number | null> {
    if (this.#chunks.length > 0) return Promise.resolve(this.#take(p));
    this.#waiting ??= Promise.withResolvers();
    return this.#waiting.promise.then(() => this.#take(p));
  }

  write(p: Uint8Array): Promise<number> {
    this.#chunks.push(p.slice());
    const waiting = this.#waiting;
    this.#waiting = undefined;
    waiting?.resolve();
    return Promise.resolve(p.length);
  }

  close(): void {}

  #take(p: Uint8Array): number {
    let n = 0;
    while (n < p.length && this.#chunks.length > 0) {
      const chunk = this.#chunks[0]!;
      const count = Math.min(p.length - n, chunk.length - this.#offset);
      p.set(chunk.subarray(this.#offset, this.#offset + count), n);
      n += count;
      this.#offset += count;
      if (this.#offset === chunk.length) {
        this.#chunks.shift();
        this.#offset = 0;
      }
    }
    return n;
  }
}

/** A writer and a reader on one pipe; `send(n)` resolves when n arrived. */
function framedPipe(): (frames: number) => Promise<void> {
  const pipe = new MemoryPipe();
  const writer = new FrameWriter(pipe, (error) => {
    throw error;
  });
  let received = 0;
  let target = 0;
  let arrived: (() => void) | undefined;
  readFrames(pipe, () => {
    if (++received === target) arrived?.();
  });
  return (frames) => {
    const { promise, resolve } = Promise.withResolvers<void>();
    target = received + frames;
    arrived = resolve;
    for (let i = 0; i < frames; i++) writer.send(CALL);
    return promise;
  };
}

const oneByOne = framedPipe();
const batched = framedPipe();

Deno.bench(
  "FrameWriter.send + readFrames, 1 Call frame",
  { group: "frame round trip", baseline: true },
  async () => {
    await oneByOne(1);
  },
);

Deno.bench(
  "FrameWriter.send + readFrames, 64 Call frames in one write",
  { group: "frame round trip" },
  async () => {
    await batched(64);
  },
);

function loads(n: number): WorkerLoad[] {
  // Busy workers, one slot free here and there, as under a steady stream.
  return Array.from({ length: n }, (_, i) => ({
    load: i % 3 === 0 ? 7 : 8,
    capacity: 8,
  }));
}

const TWO = loads(2);
const SIXTY_FOUR = loads(64);
let cursor = 0;

Deno.bench(
  "pickWorker over 2 workers",
  { group: "schedule", baseline: true },
  () => {
    cursor = pickWorker(TWO, cursor + 1);
  },
);

Deno.bench("pickWorker over 64 workers", { group: "schedule" }, () => {
  cursor = pickWorker(SIXTY_FOUR, cursor + 1);
});

const TWO_THOUSAND: WorkerLoad[] = Array.from(
  { length: 2000 },
  (_, i) => ({ load: i % 3, capacity: 4 }),
);

Deno.bench("pickWorker over 2,000 workers", { group: "schedule" }, () => {
  cursor = pickWorker(TWO_THOUSAND, cursor + 1);
});

/** A SlotIndex over `n` workers with 4 slots each, as the dispatcher keeps it. */
function slotIndex(n: number): { index: SlotIndex<number>; free: number[] } {
  const index = new SlotIndex<number>();
  const free = Array.from({ length: n }, () => 4);
  free.forEach((f, w) => index.set(w, f));
  return { index, free };
}

for (const n of [2, 2000]) {
  const { index, free } = slotIndex(n);
  Deno.bench(
    `SlotIndex over ${n.toLocaleString("en-US")} workers (pick, send, result)`,
    { group: "schedule" },
    () => {
      // Pick the freest worker, give it a task, and take one back from it.
      const w = index.peek()!;
      index.set(w, --free[w]!);
      index.set(w, ++free[w]!);
    },
  );
}
