/**
 * The dispatcher: tasks in, results out. It owns the queue, the task life
 * cycle (send, settle, barriers for runOnAll, requeue-or-fail when a worker
 * is lost), the workers' slots and the counters. Cancelling a task (abort,
 * timeout) and stopping a worker stuck in one are task_cancel.ts's; what
 * results measure (time per item, workers' depths) is task_timing.ts's.
 * It knows no sockets and no launchers: a worker is a {@link WorkerHandle}
 * with a writer, and what happens to processes is asked of its
 * {@link DispatcherHooks}.
 *
 * @module
 */
import { fromErrorRecord, type WorkerExit, WorkerLostError } from "./errors.ts";
import type { FunctionSpec } from "./function_ref.ts";
import { averageItemMs, sampled } from "./depth.ts";
import type { TaskOptions } from "./options.ts";
import { AbortWatch } from "./abort_watch.ts";
import { CallBatcher } from "./call_batcher.ts";
import { hasDirectBytes } from "./framing.ts";
import {
  type CallKind,
  callMessage,
  defineMessage,
  Op,
  type WorkerMessage,
} from "./protocol.ts";
import { WorkerPicker } from "./scheduler.ts";
import { TaskQueue } from "./task_queue.ts";
import { TaskCanceller } from "./task_cancel.ts";
import { TaskTiming } from "./task_timing.ts";
import type { PoolStats } from "./stats.ts";
import {
  type Barrier,
  LiveTasks,
  Task,
  type WorkerHandle,
} from "./worker_handle.ts";

/** The pool options the dispatcher applies (validated, defaults filled in). */
export interface DispatcherOptions {
  /** A fixed depth per worker, or undefined for the adaptive one. */
  qsize: number | undefined;
  /** Default retries of a task whose worker died. */
  retries: number;
  /** Deaths after which a task is not retried again. */
  poisonThreshold: number;
  /** ms a worker may go on with a timed-out task before it is stopped. */
  killGrace: number;
  /** Retire a worker after this many tasks. */
  maxTasksPerWorker: number | undefined;
  /** Retire a worker whose resident memory passes this (MiB). */
  maxMemoryMB: number | undefined;
}

/** What the dispatcher asks of the pool. */
export interface DispatcherHooks {
  /**
   * Ends a worker's process: it is retired and idle, or stuck in a task that
   * timed out. Its loss is reported back through {@link Dispatcher.detach}.
   */
  stopWorker(worker: WorkerHandle): void;
  /** Whether workers are being replaced (so a lost task may be retried). */
  running(): boolean;
  /** Called when what `runOnAll` and `close` wait for may have changed. */
  changed(): void;
}

/** Counters of {@link PoolStats}. */
type Counters = Pick<
  PoolStats,
  "done" | "failed" | "retried" | "lost" | "recycled"
>;

/**
 * Receives a task's result or error, with the task's tag (see
 * {@link Dispatcher.submitTo}).
 */
export type TaskCallback = (outcome: unknown, tag: unknown) => void;

/** Queues tasks, hands them to workers with free slots, settles them. */
export class Dispatcher {
  #options: DispatcherOptions;
  #hooks: DispatcherHooks;
  /** Connected workers by id (ready or initialising). */
  #connected = new Map<number, WorkerHandle>();
  /** Ready workers: the scheduler's candidates. */
  #ready: WorkerHandle[] = [];
  #queue = new TaskQueue<Task>();
  /** Tasks submitted and not yet settled. */
  #live = new LiveTasks();
  #nextTaskId = 1;
  /**
   * Chooses a worker for each task in O(1), not by a scan of every worker:
   * by free slots, tiny tasks of a function in a row.
   */
  #picker = new WorkerPicker<WorkerHandle>(
    (w) => this.canTake(w) ? w.capacity - w.load : 0,
    (fnId) => this.#timing.grain(fnId),
  );
  /** Times per item, workers' depths and the slots they sum to. */
  #timing: TaskTiming;
  /** Sends one-call tasks at the end of the turn, several in a frame. */
  #batcher = new CallBatcher<WorkerHandle>((w, tasks, errors) => {
    for (let i = 0; i < tasks.length; i++) {
      const task = tasks[i]!;
      if (w.inflight.get(task.id) === task) {
        w.inflight.delete(task.id);
        w.load--;
      }
      this.#settle(task, undefined, errors[i]);
    }
    if (!w.retiring) this.#fill(w);
  });
  /** Cancels tasks (abort, timeout), stops workers stuck in one. */
  #canceller: TaskCanceller;
  /** Cancels tasks whose signal aborts (one listener per signal). */
  #aborts = new AbortWatch<Task>(
    () => this.#live.list(),
    (task, reason) => this.#canceller.cancel(task, reason),
  );
  #counters: Counters = {
    done: 0,
    failed: 0,
    retried: 0,
    lost: 0,
    recycled: 0,
  };

  /**
   * @param options What to apply (see {@link DispatcherOptions}).
   * @param hooks What to ask of the pool.
   */
  constructor(options: DispatcherOptions, hooks: DispatcherHooks) {
    this.#options = options;
    this.#hooks = hooks;
    this.#timing = new TaskTiming(options.qsize);
    this.#canceller = new TaskCanceller(options.killGrace, this.#batcher, {
      fail: (task, error) => this.#settle(task, undefined, error),
      resend: (task) => {
        this.#counters.retried++;
        this.#enqueue(task, true);
      },
      fill: (w) => this.#fill(w),
      forget: (w) => this.#picker.forget(w),
      stopWorker: (w) => hooks.stopWorker(w),
    });
  }

  /** The depth a new worker starts with. */
  get initialCapacity(): number {
    return this.#timing.initialCapacity;
  }

  /** Tasks submitted and not yet settled. */
  get liveCount(): number {
    return this.#live.count;
  }

  /** Ready workers that take tasks (not retiring, not holding a timed-out task). */
  inService(): WorkerHandle[] {
    return this.#ready.filter((w) => w.inService);
  }

  /**
   * Task slots of the ready workers (before any is ready, of `expected`
   * workers); for function `fnId`, only those worth filling with its tasks.
   */
  slots(expected: number, fnId?: number): number {
    return this.#timing.slots(expected, fnId, this.#ready.length);
  }

  /** Measured time per item of function `fnId` in workers (ms), if known. */
  itemMs(fnId: number): number | undefined {
    return this.#timing.itemMs(fnId);
  }

  /** The one rule for who gets a task: ready, not blocked, a free slot. */
  canTake(w: WorkerHandle): boolean {
    return w.ready && !w.blocked && w.load < w.capacity;
  }

  // ---- workers -----------------------------------------------------------

  /** A worker connected (it may still run its initializer). */
  connect(w: WorkerHandle): void {
    this.#connected.set(w.id, w);
    w.writer.onWritten = () => this.#fill(w);
  }

  /** A connected worker is initialised: it takes tasks from now on. */
  attach(w: WorkerHandle): void {
    w.ready = true;
    this.#ready.push(w);
    this.#timing.attach(w);
    this.#fill(w);
  }

  /**
   * A worker's connection is gone: it takes nothing more. Returns the tasks
   * it held, for {@link requeueOrFail} once the pool knows how it ended.
   */
  detach(w: WorkerHandle): Task[] {
    this.#timing.detach(w);
    this.#picker.forget(w);
    w.lost = true;
    w.ready = false;
    this.#connected.delete(w.id);
    const at = this.#ready.indexOf(w);
    if (at >= 0) this.#ready.splice(at, 1);
    const tasks = [...w.inflight.values()];
    w.inflight.clear();
    w.load = 0;
    return tasks;
  }

  /**
   * Sends the tasks of a lost worker elsewhere while they have retries left
   * (and the pool replaces workers); fails the others with a
   * {@link WorkerLostError} (or `fatal`, when the pool itself failed).
   */
  requeueOrFail(
    w: WorkerHandle,
    tasks: Task[],
    exit: WorkerExit,
    fatal: unknown,
  ): void {
    const running = this.#hooks.running();
    for (const task of tasks) {
      if (task.settled || task.cancelled) continue;
      task.worker = undefined;
      clearTimeout(task.timer); // counted again from its next send
      if (w.hardKilled && running) {
        // Held up behind a task that timed out: not its fault, resend.
        this.#counters.retried++;
        this.#enqueue(task, true);
        continue;
      }
      (task.exits ??= []).push(exit);
      const poisoned = task.exits.length >= this.#options.poisonThreshold;
      if (!task.pinned && task.retries > 0 && !poisoned && running) {
        task.retries--;
        this.#counters.retried++;
        this.#enqueue(task, true);
      } else {
        this.#counters.lost++;
        this.#settle(task, undefined, fatal ?? new WorkerLostError(task.exits));
      }
    }
    this.#dispatch();
    this.#hooks.changed();
  }

  /** Takes `w` out of scheduling; it is stopped once its tasks are done. */
  retire(w: WorkerHandle, why: string): void {
    w.retiring = why;
    this.#picker.forget(w);
    this.#counters.recycled++;
    if (w.load === 0) this.#hooks.stopWorker(w);
  }

  /**
   * Handles what a worker sent: a result, an error or its memory use.
   * @throws {Error} for a result of a task it does not hold (the caller drops
   * the worker).
   */
  onMessage(w: WorkerHandle, message: WorkerMessage): void {
    if (message[0] === Op.Stats) {
      w.rss = message[1];
      const over = w.retiring
        ? undefined
        : w.overMemory(this.#options.maxMemoryMB);
      if (over !== undefined) this.retire(w, over);
      return;
    }
    if (message[0] === Op.Results) {
      this.#finishAll(w, message[1], message[2], message[3]);
    } else if (message[0] === Op.Result) {
      const task = this.#takeBack(w, message[1]);
      this.#timing.one(w, task, message[3]);
      if (!task.cancelled) this.#settle(task, message[2], undefined);
    } else {
      const task = this.#takeBack(w, message[1]);
      this.#timing.one(w, task, undefined);
      if (!task.cancelled) {
        this.#settle(task, undefined, fromErrorRecord(message[2]));
      }
    }
    if (w.retiring) {
      if (w.load === 0) this.#hooks.stopWorker(w);
    } else {
      this.#fill(w);
    }
  }

  /**
   * Task `taskId` ended on `w`: takes it back from the worker.
   * @throws {Error} when `w` does not hold it.
   */
  #takeBack(w: WorkerHandle, taskId: number): Task {
    const task = w.inflight.get(taskId);
    if (!task) throw new Error(`result for unknown task ${taskId}`);
    w.inflight.delete(taskId);
    w.load--;
    if (w.suspect === taskId) {
      // It finished the timed-out task after all: back into service (see
      // TaskCanceller).
      w.suspect = undefined;
    }
    w.done++;
    return task;
  }

  /**
   * The results of several tasks, from one frame: each task is settled and
   * folded into its function's time per item (averageItemMs(), one by one:
   * the latest count most), and the worker's depth is chosen once per run
   * of one function's tasks (TaskTiming.run()), not per task: frames of many
   * results are those of tiny tasks, whose bookkeeping is what counts (so a
   * run is gathered here, in locals, with no call per task).
   */
  #finishAll(
    w: WorkerHandle,
    ids: number[],
    values: unknown[],
    workUs: number[],
  ): void {
    const timing = this.#timing;
    let fnId = 0;
    let tasks = 0;
    let work = 0;
    let itemMs: number | undefined;
    let latency: number | undefined;
    let now = 0;
    for (let i = 0; i < ids.length; i++) {
      const task = this.#takeBack(w, ids[i]!);
      if (task.spec.id !== fnId) {
        if (tasks > 0) timing.run(w, fnId, itemMs!, work, tasks, latency);
        fnId = task.spec.id;
        tasks = work = 0;
        itemMs = timing.itemMs(fnId);
        latency = undefined;
      }
      const workMs = workUs[i]! / 1000;
      tasks++;
      work += workMs;
      itemMs = averageItemMs(itemMs, workMs, task.items);
      if (task.sentAt > 0) {
        if (now === 0) now = performance.now();
        const ms = now - task.sentAt;
        if (latency === undefined || ms < latency) latency = ms;
      }
      if (!task.cancelled) this.#settle(task, values[i], undefined);
    }
    if (tasks > 0) timing.run(w, fnId, itemMs!, work, tasks, latency);
  }

  // ---- tasks -------------------------------------------------------------

  /** The one place a task is made; it is live until settled. */
  #newTask(
    spec: FunctionSpec,
    args: unknown[],
    kind: CallKind,
    resolve: TaskCallback,
    reject: TaskCallback,
    retries: number,
    pinned: boolean,
  ): Task {
    const id = this.#nextTaskId++;
    const task = new Task(
      id,
      spec,
      args,
      kind,
      resolve,
      reject,
      retries,
      pinned,
    );
    this.#live.add(task);
    return task;
  }

  /**
   * Queues a task for any worker. Options are trusted (checked at the facade).
   * @returns Its result; rejects with what it threw, a `TimeoutError`, the
   * signal's reason, or a {@link WorkerLostError}.
   */
  submit(
    spec: FunctionSpec,
    args: unknown[],
    kind: CallKind,
    options?: TaskOptions,
  ): Promise<unknown> {
    const { promise, resolve, reject } = Promise.withResolvers<unknown>();
    this.submitTo(spec, args, kind, options, undefined, resolve, reject);
    return promise;
  }

  /**
   * {@link submit} without a promise: the task's end is handed to
   * `resolve(value, tag)` or `reject(error, tag)`, called synchronously from
   * the dispatcher (also from this call, for a signal already aborted). A
   * map's tasks share its two callbacks and carry their own `tag`, so a task
   * costs no promise and no closure. The callbacks must not throw.
   */
  submitTo(
    spec: FunctionSpec,
    args: unknown[],
    kind: CallKind,
    options: TaskOptions | undefined,
    tag: unknown,
    resolve: TaskCallback,
    reject: TaskCallback,
  ): void {
    const signal = options?.signal;
    // A signal watched already has not aborted (aborting ends its watch at
    // once): asked only of a new one, not for each of a map's tasks.
    if (
      signal !== undefined && !this.#aborts.watches(signal) && signal.aborted
    ) {
      reject(signal.reason, tag);
      return;
    }
    const retries = options?.retries ?? this.#options.retries;
    const task = this.#newTask(
      spec,
      args,
      kind,
      resolve,
      reject,
      retries,
      false,
    );
    task.tag = tag;
    if (signal) this.#aborts.add(signal, task);
    // Armed when the task is sent to a worker (see #send): the pool's queue
    // time does not count.
    task.timeout = options?.timeout;
    this.#enqueue(task);
  }

  /** Runs a task on worker `w` only (initializers, runOnAll); never retried. */
  runPinned(
    w: WorkerHandle,
    spec: FunctionSpec,
    args: unknown[],
    kind: "call" | "init",
  ): Promise<unknown> {
    const { promise, resolve, reject } = Promise.withResolvers<unknown>();
    this.#send(w, this.#newTask(spec, args, kind, resolve, reject, 0, true));
    return promise;
  }

  /** Resolves when every task live now has settled. */
  settledBefore(): Promise<void> {
    if (this.#live.count === 0) return Promise.resolve();
    const { promise, resolve } = Promise.withResolvers<void>();
    const barrier: Barrier = { remaining: this.#live.count, done: resolve };
    for (const task of this.#live.list()) (task.barriers ??= []).push(barrier);
    return promise;
  }

  /** Rejects every live task with `reason` and empties the queue. */
  failAll(reason: unknown): void {
    for (const task of this.#live.list()) {
      if (task.worker && !task.settled) this.#canceller.cancel(task, reason);
      else this.#settle(task, undefined, reason);
    }
    this.#queue.clear();
  }

  /** Stops the kill-grace timers (the pool is shutting down). */
  close(): void {
    this.#canceller.close();
  }

  /** Counters, load and one entry per connected worker. */
  stats(): Omit<PoolStats, "totalWorkers"> {
    let inFlight = 0;
    for (const w of this.#connected.values()) inFlight += w.load;
    return {
      ...this.#counters,
      inFlight,
      queued: this.#queue.length,
      workers: [...this.#connected.values()].map((w) => w.stats()),
    };
  }

  #enqueue(task: Task, front = false): void {
    if (this.#queue.length === 0) {
      // Fast path: nothing waits; send straight to a worker with room.
      const w = this.#picker.pick(task.spec.id);
      if (w !== undefined) {
        this.#send(w, task);
        return;
      }
    }
    if (front) this.#queue.unshift(task);
    else this.#queue.push(task);
  }

  /** Tasks waiting for a worker (queued, not yet sent). */
  get waiting(): number {
    return this.#queue.length;
  }

  /** Resolves once no task waits for a worker. */
  drained(): Promise<void> {
    return this.#queue.drained();
  }

  #dispatch(): void {
    for (;;) {
      const next = this.#queue.peek();
      if (next === undefined) return;
      const w = this.#picker.pick(next.spec.id);
      if (w === undefined) return;
      this.#send(w, this.#queue.shift()!);
    }
  }

  #fill(w: WorkerHandle): void {
    while (this.canTake(w)) {
      const task = this.#queue.shift();
      if (!task) break;
      this.#send(w, task, false);
    }
    this.#picker.update(w);
  }

  /**
   * Sends `task` to `w`. `update`: tell the picker of `w`'s new load (false
   * when the caller does once it has sent a run of tasks to `w`).
   */
  #send(w: WorkerHandle, task: Task, update = true): void {
    const spec = task.spec;
    try {
      if (!w.defined.has(spec.id)) {
        w.writer.send(defineMessage(spec.id, spec));
        w.defined.add(spec.id);
      }
      if (task.kind === "call" && !task.pinned && !hasDirectBytes(task.args)) {
        // One-call tasks go out together at the end of the turn, several in
        // a frame (a burst of run() calls); each keeps its own life cycle.
        // One with large byte contents goes now, in a frame of its own: its
        // bytes count in the writer's pendingBytes at once (a batch would
        // hide them, and a worker would get a 64 MiB frame while the other
        // idles), and the worker runs it as soon as it is in.
        this.#batcher.add(w, task);
      } else {
        w.writer.send(callMessage(task.kind, task.id, spec.id, task.args));
      }
    } catch (error) {
      this.#settle(task, undefined, error);
      return;
    }
    task.worker = w;
    w.inflight.set(task.id, task);
    w.load++;
    if (update && w.ready) this.#picker.update(w);
    if (task.pinned) return;
    if (task.timeout !== undefined) this.#canceller.arm(task);
    if (this.#options.qsize === undefined && sampled(w.sent)) {
      task.sentAt = performance.now();
    }
    const max = this.#options.maxTasksPerWorker;
    if (++w.sent >= (max ?? Infinity) && !w.retiring) {
      // Its last task is on its way: send it no more, stop it when it is done.
      this.retire(w, `it finished maxTasksPerWorker (${max}) tasks`);
    }
  }

  #settle(task: Task, value: unknown, error: unknown): void {
    if (task.settled) return;
    task.settled = true;
    if (!task.pinned) {
      // Counted in items; initializer and runOnAll calls are not counted.
      if (error === undefined) this.#counters.done += task.items;
      else this.#counters.failed += task.items;
    }
    if (task.signal !== undefined) this.#aborts.delete(task);
    if (task.timer !== undefined) clearTimeout(task.timer);
    this.#live.delete(task);
    if (task.barriers) {
      for (const b of task.barriers) if (--b.remaining === 0) b.done();
    }
    if (error === undefined) task.resolve(value, task.tag);
    else task.reject(error, task.tag);
    if (this.#live.count === 0) this.#hooks.changed();
  }
}
