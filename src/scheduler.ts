/**
 * Choosing a worker for the next task: a pure function over plain numbers.
 *
 * @module
 */

/** What the scheduler knows about one worker. */
export interface WorkerLoad {
  /** Tasks sent and not yet finished. */
  load: number;
  /** The most tasks this worker may have in flight. */
  capacity: number;
  /**
   * True while the worker may take no task whatever its load (its connection
   * is congested, it is retiring, or it still runs a timed-out task).
   */
  blocked?: boolean;
}

/**
 * Picks the worker with the most free slots (fewest in flight relative to its
 * capacity); ties go to the first one at or after `start`, so equal workers
 * take turns.
 *
 * @param workers The candidates.
 * @param start Where ties start (round-robin cursor).
 * @returns The chosen index, or -1 when every worker is full.
 */
export function pickWorker(
  workers: readonly WorkerLoad[],
  start = 0,
): number {
  const n = workers.length;
  let best = -1;
  let bestFree = 0;
  for (let k = 0; k < n; k++) {
    const i = (start + k) % n;
    const w = workers[i]!;
    if (w.blocked) continue;
    const free = w.capacity - w.load;
    if (free > bestFree) {
      best = i;
      bestFree = free;
    }
  }
  return best;
}
