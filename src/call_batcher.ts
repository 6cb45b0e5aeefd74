/**
 * The end-of-turn sender of one-call tasks: the `run()` calls and the
 * chunk-1 map items a worker is given in one turn of the event loop go out
 * together at its end, a run of calls of the same function as one `Calls`
 * frame. Each task keeps its own life cycle (id, cancel, timeout, retries);
 * only the frame is shared. Plain data: a worker is anything with a writer.
 *
 * @module
 */
import { callMessage, callsMessage } from "./protocol.ts";
import type { Task, TaskWriter } from "./worker_handle.ts";

/** What the batcher needs of a worker. */
export interface BatchTarget {
  /** The tasks waiting for the end of the turn (the batcher's own field). */
  batch: Task[] | undefined;
  /** Where its frames go. */
  readonly writer: TaskWriter;
  /** Its connection is gone: its waiting tasks were taken back elsewhere. */
  readonly lost: boolean;
}

/**
 * Called once per worker with the tasks of its batch that could not be sent
 * (each with its error, a `DataCloneError` say); they were not written.
 */
export type UnsentHandler<W> = (
  worker: W,
  tasks: Task[],
  errors: unknown[],
) => void;

/** Collects one-call tasks per worker and sends them at the end of the turn. */
export class CallBatcher<W extends BatchTarget> {
  /** Workers with a batch, in the order they got their first task. */
  #waiting: W[] = [];
  #unsent: UnsentHandler<W>;
  #flush = (): void => this.flush();

  /** @param unsent What to do with tasks that could not be sent. */
  constructor(unsent: UnsentHandler<W>) {
    this.#unsent = unsent;
  }

  /** Queues `task` for `worker`, to be sent at the end of this turn. */
  add(worker: W, task: Task): void {
    let batch = worker.batch;
    if (batch === undefined) {
      batch = worker.batch = [];
      if (this.#waiting.push(worker) === 1) queueMicrotask(this.#flush);
    }
    batch.push(task);
  }

  /**
   * Takes `task` out of `worker`'s batch if it is still waiting there.
   * @returns Whether it was (and so will never be sent).
   */
  remove(worker: W, task: Task): boolean {
    const batch = worker.batch;
    if (batch === undefined) return false;
    const at = batch.lastIndexOf(task);
    if (at < 0) return false;
    batch.splice(at, 1);
    return true;
  }

  /**
   * Sends every waiting batch now: runs of the same function as one frame,
   * a run that cannot be encoded call by call, so only the call at fault
   * fails. Runs by itself at the end of the turn.
   */
  flush(): void {
    const workers = this.#waiting;
    this.#waiting = [];
    for (const w of workers) {
      const tasks = w.batch!;
      w.batch = undefined;
      // A lost worker's tasks were taken back (and maybe sent elsewhere).
      if (w.lost) continue;
      let failed: Task[] | undefined;
      let errors: unknown[] | undefined;
      for (let i = 0; i < tasks.length;) {
        const fnId = tasks[i]!.spec.id;
        let j = i + 1;
        while (j < tasks.length && tasks[j]!.spec.id === fnId) j++;
        if (j - i > 1) {
          const ids = new Array<number>(j - i);
          const argsList = new Array<unknown[]>(j - i);
          for (let k = i; k < j; k++) {
            ids[k - i] = tasks[k]!.id;
            argsList[k - i] = tasks[k]!.args;
          }
          try {
            w.writer.send(callsMessage(fnId, ids, argsList));
            i = j;
            continue;
          } catch {
            // One cannot be sent: each on its own, to fail just that one.
          }
        }
        for (let k = i; k < j; k++) {
          const task = tasks[k]!;
          try {
            w.writer.send(callMessage("call", task.id, fnId, task.args));
          } catch (error) {
            (failed ??= []).push(task);
            (errors ??= []).push(error);
          }
        }
        i = j;
      }
      if (failed) this.#unsent(w, failed, errors!);
    }
  }
}
