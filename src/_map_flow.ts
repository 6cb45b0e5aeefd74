/**
 * A map's flow control, as plain arithmetic: how much it may read ahead (its
 * budget in items and bytes) and how many items go in one task (the chunk
 * sizer). `map_stream.ts` drives both; neither knows about tasks, workers or
 * streams, so they are tested without a pool.
 *
 * @module
 */

/** Adaptive chunks keep a worker busy for about this long (ms). */
export const CHUNK_TARGET_MS = 1;
/** Most items in an adaptive chunk. */
export const MAX_CHUNK = 4096;
/** A chunk ends once its arguments reach this many bytes (estimated). */
export const CHUNK_BYTES = 1 << 20;
/** The budget of a map by default: items, and bytes. */
export const DEFAULT_MAX_ITEMS = 16384;
/** See {@link DEFAULT_MAX_ITEMS}. */
export const DEFAULT_MAX_BYTES = 64 << 20;

/**
 * The budget of one map: what it holds between reading an item from its
 * sources and the consumer taking the item's result. Items count from the
 * read to the take; bytes (estimated) are those of the items read, of the
 * arguments of tasks in flight and of results not yet taken.
 */
export class MapBudget {
  /** Most items read and not yet taken. */
  readonly maxItems: number;
  /** Most bytes held; one item always goes through, however large. */
  readonly maxBytes: number;
  /** Items read from the sources: the index of the next one. */
  read = 0;
  /** Estimated bytes held now. */
  bytes = 0;
  /** Items handed to the stream (taken, or still in its queue). */
  #handed = 0;
  /**
   * Results handed to the stream and perhaps still in its queue, as pairs
   * (value of `#handed` after them, their bytes); dropped once taken.
   */
  #queued: number[] = [];
  #head = 0;

  constructor(maxItems = DEFAULT_MAX_ITEMS, maxBytes = DEFAULT_MAX_BYTES) {
    this.maxItems = maxItems;
    this.maxBytes = maxBytes;
  }

  /** `count` results, holding `bytes`, went into the stream's queue. */
  handOver(count: number, bytes: number): void {
    this.#handed += count;
    this.#queued.push(this.#handed, bytes);
  }

  /**
   * Items the consumer has taken, given how many are still in the stream's
   * queue; releases the bytes of the results taken.
   */
  taken(inQueue: number): number {
    const count = this.#handed - inQueue;
    const queued = this.#queued;
    while (this.#head < queued.length && queued[this.#head]! <= count) {
      this.bytes -= queued[this.#head + 1]!;
      this.#head += 2;
    }
    if (this.#head > 2048 && this.#head * 2 > queued.length) {
      queued.splice(0, this.#head);
      this.#head = 0;
    }
    return count;
  }

  /** Items that may still be read (0 or less: none). */
  itemsLeft(inQueue: number): number {
    return this.maxItems - (this.read - this.taken(inQueue));
  }

  /** Whether another item may be read. */
  hasRoom(inQueue: number): boolean {
    return this.itemsLeft(inQueue) > 0 && this.bytes < this.maxBytes;
  }
}

/** A moving average that starts at the first sample. */
function average(old: number, sample: number): number {
  return old === 0 ? sample : old * 0.75 + sample * 0.25;
}

/**
 * How many items go in a map's next task. A fixed `chunkSize` decides it;
 * else one item per task while the time per item is unknown (or with an
 * `itemTimeout`), then a chunk keeps a worker busy for about CHUNK_TARGET_MS
 * (tiny tasks go in large chunks, long ones one by one, so no worker holds a
 * backlog while another idles), holds about CHUNK_BYTES of arguments or
 * results at most, and a quarter of the item budget at most (so several
 * chunks are in flight).
 */
export class ChunkSizer {
  /**
   * Whether {@link size} follows what is measured (no fixed `chunkSize`,
   * no `itemTimeout`); only then are the byte notes needed.
   */
  readonly adaptive: boolean;
  readonly #fixed: number | undefined;
  readonly #oneByOne: boolean;
  readonly #maxItems: number;
  /** Moving averages of estimated bytes per item, of arguments and results. */
  #argItemBytes = 0;
  #resultItemBytes = 0;

  /**
   * @param fixed The map's `chunkSize`, if given.
   * @param oneByOne Adaptive chunks are single items (an `itemTimeout`).
   * @param maxItems The map's item budget.
   */
  constructor(fixed: number | undefined, oneByOne: boolean, maxItems: number) {
    this.#fixed = fixed;
    this.#oneByOne = oneByOne;
    this.#maxItems = maxItems;
    this.adaptive = fixed === undefined && !oneByOne;
  }

  /** A task of `count` items carried `bytes` of arguments. */
  noteArgs(bytes: number, count: number): void {
    this.#argItemBytes = average(this.#argItemBytes, bytes / count);
  }

  /** A task of `count` items returned `bytes` of results. */
  noteResults(bytes: number, count: number): void {
    this.#resultItemBytes = average(this.#resultItemBytes, bytes / count);
  }

  /** Items for the next task, given the measured time per item (ms). */
  size(itemMs: number | undefined): number {
    if (this.#fixed !== undefined) return this.#fixed;
    if (this.#oneByOne || itemMs === undefined) return 1;
    const byTime = Math.floor(CHUNK_TARGET_MS / Math.max(itemMs, 1e-5));
    const itemBytes = Math.max(this.#argItemBytes, this.#resultItemBytes, 1);
    const byBytes = Math.floor(CHUNK_BYTES / itemBytes);
    return Math.max(
      1,
      Math.min(MAX_CHUNK, byTime, byBytes, Math.floor(this.#maxItems / 4)),
    );
  }
}

/**
 * Items a map may have submitted and not yet handed over, for chunks of
 * `size` items on a pool of `slots` task slots: two tasks a slot.
 */
export function windowItems(slots: number, size: number): number {
  return Math.max(4, 2 * slots) * size;
}
