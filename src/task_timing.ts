/**
 * What finished tasks measure, and what the dispatcher decides from it: each
 * function's time per item in workers (its chunk sizes, whether its tasks
 * go to one worker in a row), the round trip, each worker's depth (how many
 * tasks it may hold, chosen again as results come in unless `qsize` fixes
 * it) and the sum of the ready workers' depths (the pool's task slots).
 * The arithmetic is in `depth.ts`; this module holds the measured state.
 *
 * A frame of many results is measured as the same results one by one would
 * be, with the depth chosen once per run of one function's tasks (see
 * {@link TaskTiming.run}): frames of many results are those of tiny tasks,
 * whose bookkeeping is what counts.
 *
 * @module
 */
import { adapt, depthFor, ItemTimes } from "./depth.ts";
import type { Task, WorkerHandle } from "./worker_handle.ts";

/** The pool's measurements of its tasks and the workers' depths. */
export class TaskTiming {
  /** A fixed depth per worker, or undefined for the adaptive one. */
  readonly #qsize: number | undefined;
  /** Each function's time per item in workers, and the round trip. */
  #itemMs = new ItemTimes();
  /** The ready workers' depths, summed. */
  #capacity = 0;

  /** @param qsize A fixed depth per worker, or undefined for the adaptive one. */
  constructor(qsize: number | undefined) {
    this.#qsize = qsize;
  }

  /** The depth a new worker starts with. */
  get initialCapacity(): number {
    return this.#qsize ?? depthFor({ workMs: 0, minLatencyMs: Infinity });
  }

  /** `w` now takes tasks: its depth counts in the pool's slots. */
  attach(w: WorkerHandle): void {
    this.#capacity += w.capacity;
  }

  /** `w` is gone: its depth no longer counts (if it counted). */
  detach(w: WorkerHandle): void {
    if (w.ready) this.#capacity -= w.capacity;
  }

  /**
   * Task slots of `ready` ready workers (before any is ready, of `expected`
   * workers); for function `fnId`, only those worth filling with its tasks.
   */
  slots(expected: number, fnId: number | undefined, ready: number): number {
    if (this.#capacity === 0) return this.initialCapacity * expected;
    const useful = this.#itemMs.usefulSlots(fnId, ready);
    return Math.min(this.#capacity, useful);
  }

  /** Measured time per item of function `fnId` in workers (ms), if known. */
  itemMs(fnId: number): number | undefined {
    return this.#itemMs.get(fnId);
  }

  /** How many of function `fnId`'s tasks go to one worker in a row. */
  grain(fnId: number): number {
    return this.#itemMs.grain(fnId);
  }

  /**
   * One task's result came back from `w` on its own: folds its work
   * (`workUs`, if the worker timed it) and its round trip into the
   * measurements.
   */
  one(w: WorkerHandle, task: Task, workUs: number | undefined): void {
    const latencyMs = task.sentAt > 0
      ? performance.now() - task.sentAt
      : undefined;
    const workMs = workUs === undefined ? undefined : workUs / 1000;
    if (workMs !== undefined) {
      this.#itemMs.note(task.spec.id, workMs, task.items);
    }
    this.#adapt(w, latencyMs, workMs, 1);
  }

  /**
   * A run of `tasks` tasks of function `fnId` came back from `w` in one
   * frame: `itemMs` is the function's time per item with theirs folded in
   * one by one (averageItemMs(); the dispatcher does that per task, in
   * locals), `workMs` their work summed, `latencyMs` the least send-to-result
   * time among those timed. `w`'s depth is chosen as for that many tasks one
   * after the other.
   */
  run(
    w: WorkerHandle,
    fnId: number,
    itemMs: number,
    workMs: number,
    tasks: number,
    latencyMs: number | undefined,
  ): void {
    this.#itemMs.set(fnId, itemMs);
    this.#adapt(w, latencyMs, workMs / tasks, tasks);
  }

  /** Chooses `w`'s depth again (see adapt()), unless `qsize` fixes it. */
  #adapt(
    w: WorkerHandle,
    latencyMs: number | undefined,
    workMs: number | undefined,
    tasks: number,
  ): void {
    if (this.#qsize !== undefined) return;
    if (latencyMs !== undefined) this.#itemMs.noteRoundTrip(latencyMs);
    const grown = adapt(w, latencyMs, workMs, tasks);
    if (w.ready) this.#capacity += grown;
  }
}
