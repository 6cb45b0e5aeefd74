/**
 * The wait before starting something again that failed `failures` times in
 * a row (ms): 200, 400, 800, … up to 5 s. Shared by the pool's launch
 * supervisor and the remote supervisor.
 *
 * @module
 */

/** Milliseconds to wait after `failures` failures in a row. */
export function backoffMs(failures: number): number {
  return Math.min(100 * 2 ** failures, 5_000);
}
