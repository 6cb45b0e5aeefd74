/**
 * Ending a task before its worker answers: a signal's abort, the pool's
 * failure, or the task's own `timeout`. This module owns what that does to
 * the worker too:
 *
 * - a task not yet written (waiting in the {@link CallBatcher} for the end of
 *   the turn) is never sent;
 * - a task on a worker is cancelled there (a `Cancel` message) and settles
 *   at once;
 * - each timed task has its timer, counted from its send to a worker;
 * - a task that timed out makes its worker *suspect*: it takes no new task
 *   until it answers that one; still busy `killGrace` ms later, it is stopped
 *   (`hardKilled`: the other tasks it held are resent without counting
 *   against their retries, see `Dispatcher.requeueOrFail`);
 * - a task whose time runs out while it waits behind a suspect worker's
 *   stuck task has not had its turn: it is taken back and sent again, its
 *   time counted afresh.
 *
 * The dispatcher keeps the task's life cycle (settling, queueing, filling);
 * this module asks for those through {@link CancelHost}.
 *
 * @module
 */
import type { CallBatcher } from "./call_batcher.ts";
import { cancelMessage } from "./protocol.ts";
import type { Task, WorkerHandle } from "./worker_handle.ts";

/** What {@link TaskCanceller} asks of the dispatcher. */
export interface CancelHost {
  /** Settles `task` with `error` (it may be settled already: a no-op). */
  fail(task: Task, error: unknown): void;
  /** Queues `task` again, first in line (counted as retried). */
  resend(task: Task): void;
  /** Gives `w` tasks from the queue while it has room. */
  fill(w: WorkerHandle): void;
  /** Takes `w` out of the picker's candidates (it is blocked now). */
  forget(w: WorkerHandle): void;
  /** Ends `w`'s process; its loss comes back through the dispatcher. */
  stopWorker(w: WorkerHandle): void;
}

/** The error of a task whose `timeout` (`ms`) expired. */
export function timeoutError(ms: number): DOMException {
  return new DOMException(`Task timed out after ${ms} ms`, "TimeoutError");
}

/** Whether `reason` is a timeout (the task's own, or a signal's). */
function isTimeout(reason: unknown): boolean {
  return reason instanceof DOMException && reason.name === "TimeoutError";
}

/** Cancels tasks, runs their timeouts and stops workers stuck in one. */
export class TaskCanceller {
  #killGrace: number;
  #batcher: CallBatcher<WorkerHandle>;
  #host: CancelHost;
  /** The kill-grace timers of suspect workers. */
  #timers = new Set<ReturnType<typeof setTimeout>>();

  /**
   * @param killGrace ms a worker may go on with a timed-out task before it
   * is stopped.
   * @param batcher The dispatcher's end-of-turn sender (a task still in it
   * is taken out instead of cancelled on the worker).
   * @param host What to ask of the dispatcher.
   */
  constructor(
    killGrace: number,
    batcher: CallBatcher<WorkerHandle>,
    host: CancelHost,
  ) {
    this.#killGrace = killGrace;
    this.#batcher = batcher;
    this.#host = host;
  }

  /** Starts `task`'s timeout: it has just been sent to a worker. */
  arm(task: Task): void {
    clearTimeout(task.timer);
    task.timer = setTimeout(() => this.#expire(task), task.timeout);
  }

  /**
   * Settles `task` with `reason`, cancelling it on its worker if it is on
   * one. A timeout (also a signal's `TimeoutError`) makes the worker
   * suspect.
   */
  cancel(task: Task, reason: unknown): void {
    if (task.settled) return;
    const w = task.worker;
    if (w && w.inflight.get(task.id) === task) {
      task.cancelled = true;
      if (this.#batcher.remove(w, task)) {
        // Still waiting for the end of the turn: never send it.
        w.inflight.delete(task.id);
        w.load--;
        task.worker = undefined;
        this.#host.fail(task, reason);
        if (w.ready && !w.retiring) this.#host.fill(w);
        return;
      }
      try {
        w.writer.send(cancelMessage(task.id));
      } catch { /* connection gone */ }
      if (isTimeout(reason)) this.#suspect(w, task);
    }
    this.#host.fail(task, reason);
  }

  /** Stops the kill-grace timers (the pool is shutting down). */
  close(): void {
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
  }

  /**
   * A task's timeout expired on its worker. A task held up on a worker that
   * is stuck in another task's timeout has not had its turn: it is taken
   * back (the worker is told to drop it) and sent again, its time counted
   * afresh. Any other task fails with a `TimeoutError`.
   */
  #expire(task: Task): void {
    const w = task.worker;
    if (task.settled || !w) return;
    if (w.suspect === undefined || w.suspect === task.id || w.lost) {
      this.cancel(task, timeoutError(task.timeout!));
      return;
    }
    // The worker still holds it until it answers the cancel: keep a
    // cancelled stand-in in its place so that answer is expected.
    w.inflight.set(task.id, { ...task, cancelled: true, worker: w });
    try {
      w.writer.send(cancelMessage(task.id));
    } catch { /* connection gone */ }
    task.worker = undefined;
    task.timer = undefined;
    this.#host.resend(task);
  }

  /**
   * Hard timeout: the worker gets no new tasks until it drops `task`; if it
   * is still busy with it after the grace period, it is stopped and
   * replaced, and the tasks it held are sent elsewhere.
   */
  #suspect(w: WorkerHandle, task: Task): void {
    w.suspect = task.id;
    this.#host.forget(w);
    const grace = this.#killGrace;
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      if (w.suspect === task.id && !w.lost) {
        w.retiring =
          `it was still running a task ${grace} ms after the task's timeout`;
        w.hardKilled = true;
        this.#host.stopWorker(w);
      }
    }, grace);
    this.#timers.add(timer);
  }
}
