/**
 * The events a {@link Pool} fires, with the type of each one's `detail`.
 *
 * @module
 */
import type { WorkerExit } from "./errors.ts";

/** `detail` of `workerstart` and `workerreplace`. */
export interface WorkerStartDetail {
  /** The worker's id within the pool. */
  workerId: number;
  /** `"local"` or the host it runs on. */
  host: string;
  /** Its process id (on its host). */
  pid: number;
  /** True for a worker started after the pool was ready, in place of one that exited. */
  replacement: boolean;
}

/** `detail` of `hostlost`. */
export interface HostLostDetail {
  /** The host whose link ended. */
  host: string;
  /** How the link's process (`ssh`, the launcher command) ended. */
  exit: {
    /** Its exit code, when it exited. */
    code?: number | undefined;
    /** The signal that ended it, if any. */
    signal?: string | undefined;
  };
}

/**
 * Each event a pool fires, by name. Listeners added with
 * `pool.addEventListener(name, listener)` get the matching event type, so
 * `e.detail` is typed and a misspelt name is a type error.
 *
 * @example
 * ```ts
 * import { Pool } from "@distex/pool";
 * await using pool = new Pool(1);
 * pool.addEventListener("workerstart", (e) => console.log(e.detail.pid > 0)); // true
 * await pool.ready;
 * ```
 */
export interface PoolEventMap {
  /** A worker connected and is initialised. */
  workerstart: CustomEvent<WorkerStartDetail>;
  /** A worker took the place of one that exited (after its `workerstart`). */
  workerreplace: CustomEvent<WorkerStartDetail>;
  /** A worker was lost or retired. */
  workerexit: CustomEvent<WorkerExit>;
  /** A remote host's link ended; its workers leave `totalWorkers` until it is back. */
  hostlost: CustomEvent<HostLostDetail>;
  /** A worker or host could not be (re)started after the pool was ready; the pool keeps trying. */
  error: CustomEvent<unknown>;
  /** A connection to the pool's socket failed the handshake; `detail` is the reason. */
  rejected: CustomEvent<string>;
  /**
   * With the pool option `stdout: "capture"`: a line a local worker's task
   * wrote to stdout (without its newline, control characters escaped).
   */
  stdout: CustomEvent<{ workerId: number; host: string; line: string }>;
}

/** A listener for the pool event `K`. */
export type PoolEventListener<K extends keyof PoolEventMap> =
  | ((event: PoolEventMap[K]) => void)
  | { handleEvent(event: PoolEventMap[K]): void };
