/**
 * The typed view of what a worker gives the task it runs: `distex.signal`.
 *
 * A worker defines a global `distex` (src/worker_runtime.ts). Task code can
 * use that global untyped, or import this module's `distex` for types: an
 * inline task that names the import is sent as source text, so on the worker
 * the name finds the worker's global; a module task that imports it gets this
 * object, which reads the worker's global. In the pool's own process there is
 * no running task, and reading it throws an error that says so.
 *
 * @module
 */

/** What a task can read about itself while it runs on a worker. */
export interface TaskContext {
  /**
   * The running task's `AbortSignal`. It aborts (with an `AbortError`) when
   * the pool cancels the task: its `signal` aborted, its `timeout` passed, its
   * map cancelled or failed. Read it in the task's synchronous part, before
   * its first `await`.
   */
  readonly signal: AbortSignal;
}

/** The worker's own global, when this code runs on a worker. */
function workerGlobal(): TaskContext | undefined {
  const value = (globalThis as { distex?: TaskContext }).distex;
  return value === distex ? undefined : value;
}

/**
 * The running task's context, typed: `distex.signal` is the task's
 * `AbortSignal`. It works inside task functions (inline ones and exported
 * functions of modules) on a worker; in the pool's own process it throws.
 *
 * @example Stop a long task when the pool cancels it
 * ```ts
 * import { distex, Pool } from "@distex/pool";
 *
 * await using pool = new Pool(1);
 * const outcome = await pool.apply(
 *   () => {
 *     const signal = distex.signal; // before the first await
 *     return new Promise((resolve) =>
 *       signal.addEventListener("abort", () => resolve("stopped"))
 *     );
 *   },
 *   [],
 *   { timeout: 100 },
 * ).catch((error) => error.name);
 * console.log(outcome); // TimeoutError
 * ```
 */
export const distex: TaskContext = Object.freeze({
  get signal(): AbortSignal {
    const context = workerGlobal();
    if (context === undefined) {
      throw new Error(
        "distex.signal exists only inside a task running on a worker: read " +
          "it in the task function's synchronous part (const signal = " +
          "distex.signal;), not in the program that owns the pool",
      );
    }
    return context.signal;
  },
});
