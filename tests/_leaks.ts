/**
 * Leak checks for test files: remember every worker process and socket
 * directory a pool had, and assert at the end of the file that none is left.
 *
 * ```ts ignore
 * const leaks = new LeakCheck();
 * Deno.test("…", async () => {
 *   await using pool = leaks.watch(new Pool(2));
 * });
 * Deno.test("… leaves no processes, sockets or temp dirs", () => leaks.assertClean());
 * ```
 *
 * Files run in parallel share one process, so "every child of this process"
 * would include other files' workers; only what the watched pools reported is
 * checked.
 *
 * @module
 */
import assert from "node:assert/strict";
import { Pool, type PoolOptions } from "../mod.ts";
import { isGone, pollUntil } from "./_util.ts";

/** The `--unix <path>` argument of a process, read from /proc. */
export function socketOf(pid: number): string | undefined {
  let args: string[];
  try {
    args = Deno.readTextFileSync(`/proc/${pid}/cmdline`).split("\0");
  } catch {
    return undefined; // already gone
  }
  const at = args.indexOf("--unix");
  return at >= 0 ? args[at + 1] : undefined;
}

/** Collects the worker pids and socket directories of watched pools. */
export class LeakCheck {
  /** Worker pids seen, with the pool's socket directory. */
  readonly pids = new Set<number>();
  /** Socket directories seen. */
  readonly dirs = new Set<string>();

  /**
   * Records `pool`'s workers each time one starts (also replacements).
   *
   * @param pool The pool to watch.
   * @returns `pool`, for `await using pool = leaks.watch(new Pool(…))`.
   */
  watch<P extends Pool>(pool: P): P {
    pool.addEventListener("workerstart", () => this.note(pool));
    return pool;
  }

  /**
   * Creates a watched pool and waits until it is ready; closes it again if it
   * cannot start.
   *
   * @param options The pool's options.
   * @returns The ready pool.
   */
  async open(options: PoolOptions): Promise<Pool> {
    const pool = this.watch(new Pool(options));
    try {
      await pool.ready;
    } catch (error) {
      await pool.close({ wait: false });
      throw error;
    }
    this.note(pool);
    return pool;
  }

  /** Records the workers `pool` has now. */
  note(pool: Pool): void {
    for (const { pid } of pool.stats().workers) {
      if (!pid || this.pids.has(pid)) continue;
      this.pids.add(pid);
      const socket = socketOf(pid);
      if (socket) this.dirs.add(socket.slice(0, socket.lastIndexOf("/")));
    }
  }

  /**
   * Asserts that every recorded worker has exited (waiting up to `ms` for
   * stragglers) and every recorded socket directory is gone.
   */
  async assertClean(ms = 20_000): Promise<void> {
    assert.ok(this.pids.size > 0, "the leak check watched no worker at all");
    const alive: number[] = [];
    for (const pid of this.pids) {
      if (!(await pollUntil(() => isGone(pid), ms))) alive.push(pid);
    }
    assert.deepEqual(alive, [], `worker processes left running: ${alive}`);
    const left: string[] = [];
    for (const dir of this.dirs) {
      try {
        await Deno.lstat(dir);
        left.push(dir);
      } catch (error) {
        if (!(error instanceof Deno.errors.NotFound)) throw error;
      }
    }
    assert.deepEqual(left, [], `socket directories left behind: ${left}`);
  }
}
