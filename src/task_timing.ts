/**
 * What finished tasks measure, and what the dispatcher decides from it: each
 * function's time per item in workers (its chunk sizes, whether its tasks
 * go to one worker in a row), the round trip, each worker's depth (how many
 * tasks it may hold, chosen again as results come in unless `qsize` fixes
 * it) and the sum of the ready workers' depths (the pool's task slots).
 * The arithmetic is in `depth.ts`; this module holds the measured state.
 *
 * A frame of many results is measured as the same results one by one would
 * be (see {@link TaskTiming.add}), with the depth chosen once per run of one
 * function's tasks: frames of many results are those of tiny tasks, whose
 * bookkeeping is what counts.
 *
 * @module
 */
import { adapt, averageItemMs, depthFor, ItemTimes } from "./depth.ts";
import type { Task, WorkerHandle } from "./worker_handle.ts";

/** The pool's measurements of its tasks and the workers' depths. */
export class TaskTiming {
  /** A fixed depth per worker, or undefined for the adaptive one. */
  readonly #qsize: number | undefined;
  /** Each function's time per item in workers, and the round trip. */
  #itemMs = new ItemTimes();
  /** The ready workers' depths, summed. */
  #capacity = 0;
  // The run of one function's tasks being measured in a frame (see add()).
  // Numbers only, "none" as NaN / Infinity: a field that also held
  // undefined would box each new value, an allocation per task.
  #w: WorkerHandle | undefined = undefined;
  #fnId = 0;
  #tasks = 0;
  #workMs = 0;
  /** The run's function's time per item so far (NaN: none yet). */
  #runItemMs = NaN;
  /** The least send-to-result time among the run's timed tasks (ms). */
  #latencyMs = Infinity;
  #now = 0;

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

  /** A frame of results from `w` begins: then {@link add} each, {@link end}. */
  start(w: WorkerHandle): void {
    this.#w = w;
    this.#fnId = 0;
    this.#tasks = 0;
    this.#workMs = 0;
    this.#runItemMs = NaN;
    this.#latencyMs = Infinity;
    this.#now = 0;
  }

  /**
   * One task of the frame, its work `workUs`: folded into its function's
   * time per item (averageItemMs(), one by one: the latest count most);
   * the depth is chosen as a run of one function's tasks ends.
   */
  add(task: Task, workUs: number): void {
    const fnId = task.spec.id;
    if (fnId !== this.#fnId) {
      if (this.#tasks > 0) this.#endRun();
      this.#fnId = fnId;
      this.#tasks = 0;
      this.#workMs = 0;
      this.#runItemMs = this.#itemMs.get(fnId) ?? NaN;
      this.#latencyMs = Infinity;
    }
    const workMs = workUs / 1000;
    const old = this.#runItemMs;
    this.#tasks++;
    this.#workMs += workMs;
    this.#runItemMs = averageItemMs(
      old >= 0 ? old : undefined,
      workMs,
      task.items,
    );
    if (task.sentAt > 0) {
      if (this.#now === 0) this.#now = performance.now();
      const ms = this.#now - task.sentAt;
      if (ms < this.#latencyMs) this.#latencyMs = ms;
    }
  }

  /** The frame begun by {@link start} ends. */
  end(): void {
    if (this.#tasks > 0) this.#endRun();
    this.#w = undefined;
  }

  /**
   * A run of tasks of one function in a frame ends: its new time per item,
   * and `w`'s depth chosen as for that many tasks one after the other
   * (their mean work, the least send-to-result time among those timed).
   */
  #endRun(): void {
    const tasks = this.#tasks;
    const latencyMs = this.#latencyMs < Infinity ? this.#latencyMs : undefined;
    this.#itemMs.set(this.#fnId, this.#runItemMs);
    this.#adapt(this.#w!, latencyMs, this.#workMs / tasks, tasks);
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
