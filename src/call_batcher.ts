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

/**
 * Tasks waiting beyond which a batch goes out without waiting for the rest
 * of the turn.
 */
export const MAX_BATCHED = 2048;

/**
 * Collects one-call tasks per worker and sends them at the end of the turn:
 * once a microtask passed in which no task was added, so a chain of
 * promise reactions that submits one task per step (a map refilling its
 * window as results come in) still goes out in one frame and one write.
 */
export class CallBatcher<W extends BatchTarget> {
  /** Workers with a batch, in the order they got their first task. */
  #waiting: W[] = [];
  /** A look at the batches is queued as a microtask. */
  #scheduled = false;
  /** Tasks added since that look was queued. */
  #added = 0;
  /** Tasks waiting in all batches. */
  #batched = 0;
  #unsent: UnsentHandler<W>;
  #tick = (): void => {
    if (this.#added > 0 && this.#batched < MAX_BATCHED) {
      // Still being added to: look again after the microtasks queued now.
      this.#added = 0;
      queueMicrotask(this.#tick);
      return;
    }
    this.#scheduled = false;
    this.flush();
  };

  /** @param unsent What to do with tasks that could not be sent. */
  constructor(unsent: UnsentHandler<W>) {
    this.#unsent = unsent;
  }

  /** Queues `task` for `worker`, to be sent at the end of this turn. */
  add(worker: W, task: Task): void {
    let batch = worker.batch;
    if (batch === undefined) {
      batch = worker.batch = [];
      this.#waiting.push(worker);
    }
    batch.push(task);
    this.#batched++;
    this.#added++;
    if (!this.#scheduled) {
      this.#scheduled = true;
      queueMicrotask(this.#tick);
    }
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
    this.#batched--;
    return true;
  }

  /**
   * Sends every waiting batch now: runs of the same function as one frame,
   * a run that cannot be encoded call by call, so only the call at fault
   * fails. Runs by itself at the end of the turn (or once MAX_BATCHED
   * tasks wait).
   */
  flush(): void {
    const workers = this.#waiting;
    this.#waiting = [];
    this.#added = 0;
    this.#batched = 0;
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
