/**
 * The adaptive depth: how many tasks a worker holds in flight, chosen from
 * what the pool measures. Enough to cover the round trip with work, and no
 * more: tiny tasks go deep, long ones stay at {@link MIN_DEPTH}, so no worker
 * holds a backlog while another idles. Pure functions over plain numbers.
 *
 * @module
 */

/** The shallowest adaptive depth (and the depth before any measurement). */
export const MIN_DEPTH = 2;
/** The deepest adaptive depth. */
export const MAX_DEPTH = 64;

/** What the pool measures about one worker. */
export interface DepthSample {
  /** Moving average of the time its tasks take in the worker (ms); 0 before the first. */
  workMs: number;
  /** Shortest send-to-result time seen (ms): round trip plus task. */
  minLatencyMs: number;
}

/**
 * Whether the `sent`-th task to a worker has its round trip timed: every
 * 8th, since only the minimum counts.
 */
export function sampled(sent: number): boolean {
  return (sent & 7) === 0;
}

/**
 * The depth for a worker: the round trip over the time per task, rounded up,
 * within [{@link MIN_DEPTH}, {@link MAX_DEPTH}]; {@link MIN_DEPTH} until the
 * round trip is known.
 */
export function depthFor(sample: DepthSample): number {
  if (sample.minLatencyMs === Infinity) return MIN_DEPTH;
  const depth = Math.ceil(sample.minLatencyMs / Math.max(sample.workMs, 1e-3));
  return Math.min(MAX_DEPTH, Math.max(MIN_DEPTH, depth));
}

/** A worker's measurements and the depth chosen from them. */
export interface Adaptive extends DepthSample {
  /** Its depth: the tasks it may hold in flight. */
  capacity: number;
}

/**
 * Folds finished tasks into a worker's measurements (in place) and chooses
 * its depth again: one task, or `tasks` that took `workMs` each on average
 * (results that came in one frame), as that many tasks one after the other
 * would.
 *
 * @param w The worker's measurements and depth, updated.
 * @param latencyMs Send-to-result time of this task (the least of these
 * tasks), if it was timed.
 * @param workMs What the worker says the task took (each, on average), if
 * it said.
 * @param tasks How many tasks.
 * @returns How much its depth grew (negative when it shrank).
 */
export function adapt(
  w: Adaptive,
  latencyMs: number | undefined,
  workMs: number | undefined,
  tasks = 1,
): number {
  // The per-task rule (the shortest round trip; work as a moving average),
  // in place: this runs for every frame of results.
  if (latencyMs !== undefined && latencyMs < w.minLatencyMs) {
    w.minLatencyMs = latencyMs;
  }
  if (w.minLatencyMs === Infinity) return 0;
  const work = workMs ?? w.minLatencyMs;
  if (w.workMs === 0) w.workMs = work;
  else if (tasks === 1) w.workMs = w.workMs * 0.9 + work * 0.1;
  else {
    const keep = 0.9 ** tasks;
    w.workMs = w.workMs * keep + work * (1 - keep);
  }
  const before = w.capacity;
  w.capacity = depthFor(w);
  return w.capacity - before;
}

/**
 * How many tasks in a row go to one worker (in one frame) before the next
 * worker is chosen: as many as take half a round trip of work there, at
 * least 1. Tasks known to be tiny go together, in fewer and larger frames
 * however many workers there are; longer ones, and those of a function not
 * measured yet, are spread one by one.
 *
 * @param itemMs The function's time per item (ms), if measured.
 * @param roundTripMs The shortest send-to-result time seen (ms).
 * @returns The tasks in a row, within [1, {@link MAX_DEPTH}].
 */
export function grainFor(
  itemMs: number | undefined,
  roundTripMs: number,
): number {
  if (itemMs === undefined || !(roundTripMs < Infinity)) return 1;
  const grain = Math.floor(roundTripMs / (2 * Math.max(itemMs, 1e-4)));
  return Math.min(MAX_DEPTH, Math.max(1, grain));
}

/**
 * Tasks per millisecond the pool sends at most: a generous bound of what
 * one pool process does (a few hundred), used to tell how many workers it
 * can keep busy.
 */
export const POOL_TASKS_PER_MS = 2_000;

/**
 * How many task slots are worth filling for a function: those of the
 * workers the pool can keep busy with it (as many as it sends tasks in one
 * task's time), each at the depth that covers the round trip. Tiny tasks
 * need few workers, long ones all: more tasks in flight than that only wait
 * in queues and hold memory.
 *
 * @param itemMs The function's time per item (ms), if measured.
 * @param roundTripMs The shortest send-to-result time seen (ms).
 * @param workers The ready workers.
 * @returns The slots worth filling, at least 2 x {@link MAX_DEPTH};
 * `Infinity` until both times are known.
 */
export function usefulSlots(
  itemMs: number | undefined,
  roundTripMs: number,
  workers: number,
): number {
  if (itemMs === undefined || !(roundTripMs < Infinity)) return Infinity;
  const busy = Math.min(
    workers,
    Math.max(1, Math.ceil(itemMs * POOL_TASKS_PER_MS)),
  );
  const depth = depthFor({ workMs: itemMs, minLatencyMs: roundTripMs });
  return Math.max(2 * MAX_DEPTH, busy * depth);
}

/**
 * The moving average of a function's time per item (what `map` sizes its
 * chunks by): each task halves the way to its own time per item, so the
 * latest tasks count most (a cold first call soon stops mattering).
 *
 * @param old The average so far, if any.
 * @param workMs What one task of `items` items took in the worker.
 * @param items Items in that task (1 for a plain call).
 */
export function averageItemMs(
  old: number | undefined,
  workMs: number,
  items: number,
): number {
  const perItem = workMs / Math.max(1, items);
  return old === undefined ? perItem : (old + perItem) / 2;
}

interface ItemTime {
  fnId: number;
  ms: number | undefined;
}

/**
 * What the pool measured of time: each function's time per item in workers
 * (ms, by function id) and the shortest round trip, and what follows from
 * them ({@link grainFor}, {@link usefulSlots}).
 */
export class ItemTimes {
  #byFn = new Map<number, ItemTime>();
  /** The entry used last: results come in runs of one function. */
  #last: ItemTime | undefined;
  /** The shortest send-to-result time seen on any worker (ms). */
  roundTripMs = Infinity;

  /** The function's time per item (ms), if measured. */
  get(fnId: number): number | undefined {
    return this.#entry(fnId)?.ms;
  }

  /** Notes a task's send-to-result time (ms), if it was timed. */
  noteRoundTrip(latencyMs: number | undefined): void {
    if (latencyMs !== undefined && latencyMs < this.roundTripMs) {
      this.roundTripMs = latencyMs;
    }
  }

  /** {@link grainFor} the function. */
  grain(fnId: number): number {
    return grainFor(this.get(fnId), this.roundTripMs);
  }

  /** {@link usefulSlots} for the function over `workers` workers. */
  usefulSlots(fnId: number | undefined, workers: number): number {
    const ms = fnId === undefined ? undefined : this.get(fnId);
    return usefulSlots(ms, this.roundTripMs, workers);
  }

  /**
   * Folds one finished task of the function into its average (see
   * {@link averageItemMs}).
   */
  note(fnId: number, workMs: number, items: number): void {
    this.set(fnId, averageItemMs(this.get(fnId), workMs, items));
  }

  /**
   * Sets the function's average (what {@link averageItemMs} gave for the
   * tasks that finished, folded in one by one).
   */
  set(fnId: number, ms: number): void {
    let entry = this.#entry(fnId);
    if (entry === undefined) {
      entry = { fnId, ms: undefined };
      this.#byFn.set(fnId, entry);
      this.#last = entry;
    }
    entry.ms = ms;
  }

  #entry(fnId: number): ItemTime | undefined {
    const last = this.#last;
    if (last !== undefined && last.fnId === fnId) return last;
    const entry = this.#byFn.get(fnId);
    if (entry !== undefined) this.#last = entry;
    return entry;
  }
}
