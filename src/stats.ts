/**
 * What `Pool.stats()` reports.
 *
 * @module
 */

/** One worker in {@link PoolStats}. */
export interface WorkerStats {
  /** The worker's id within the pool. */
  id: number;
  /** `"local"` or the host it runs on. */
  host: string;
  /** Its process id (on its host). */
  pid: number;
  /** False while its initializer runs. */
  ready: boolean;
  /** Tasks sent to it and not finished. */
  inFlight: number;
  /** How many tasks it may have in flight now (the adaptive depth, or `qsize`). */
  capacity: number;
  /** Tasks it finished. */
  done: number;
  /** Resident memory it last reported, in bytes (0 until its first report). */
  rssBytes: number;
}

/** What {@link Pool.prototype.stats} returns. */
export interface PoolStats {
  /** Calls that succeeded: `run()` tasks and `map()` items (not chunks). */
  done: number;
  /**
   * Calls that failed (task errors, lost workers, timeouts, aborts); a failed
   * map chunk counts each of its items.
   */
  failed: number;
  /** Times a task was sent again after its worker died. */
  retried: number;
  /** Tasks failed with {@link WorkerLostError}. */
  lost: number;
  /** Workers retired by `maxTasksPerWorker` or `maxMemoryMB`. */
  recycled: number;
  /** Tasks on workers now. */
  inFlight: number;
  /** Tasks waiting for a free worker. */
  queued: number;
  /** {@link Pool.prototype.totalWorkers}. */
  totalWorkers: number;
  /** One entry per connected worker. */
  workers: WorkerStats[];
}
