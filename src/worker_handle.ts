/**
 * The dispatcher's records: a task, and a connected worker with its load and
 * measurements. Plain data: no sockets, no processes.
 *
 * @module
 */
import type { WorkerExit } from "./errors.ts";
import type { FunctionSpec } from "./function_ref.ts";
import type { Message } from "./framing.ts";
import type { CallKind } from "./protocol.ts";
import type { WorkerStats } from "./stats.ts";
import { MIN_DEPTH } from "./depth.ts";

/** Bytes queued on one connection beyond which no further task is sent. */
export const MAX_PENDING_BYTES = 4 * 1024 * 1024;

/** A queued or running task (a plain record: no methods). */
export class Task {
  declare exits: WorkerExit[] | undefined;
  declare worker: WorkerHandle | undefined;
  declare cancelled: boolean;
  declare settled: boolean;
  /** The signal that cancels it, while it is watched (see AbortWatch). */
  declare signal: AbortSignal | undefined;
  declare barriers: Barrier[] | undefined;
  /** performance.now() when the task was sent (adaptive depth only). */
  declare sentAt: number;
  /** Its `timeout` (ms): counted from each send to a worker. */
  declare timeout: number | undefined;
  /** The running timeout, while the task is on a worker. */
  declare timer: ReturnType<typeof setTimeout> | undefined;
  /** Its neighbours among the live tasks (see {@link LiveTasks}). */
  declare livePrev: Task | undefined;
  declare liveNext: Task | undefined;
  /**
   * Passed back to `resolve` / `reject` as their second argument: what a
   * map's shared callbacks know a task by (no promise or closure per task).
   */
  declare tag: unknown;
  /** Items it carries: a map chunk's, or 1. */
  declare readonly items: number;

  /**
   * @param id Its id within the pool.
   * @param spec The function it calls.
   * @param args Its arguments (a map chunk's items).
   * @param kind How the worker runs it.
   * @param resolve Settles its promise with a result (or, for a map's
   * task, receives it with the task's `tag`).
   * @param reject Settles its promise with an error (or receives it).
   * @param retries Sends left after its worker died.
   * @param pinned Set for runOnAll and initializer calls: only the worker it
   * was given to may run it.
   */
  constructor(
    readonly id: number,
    readonly spec: FunctionSpec,
    readonly args: unknown[],
    readonly kind: CallKind,
    readonly resolve: (value: unknown, tag?: unknown) => void,
    readonly reject: (error: unknown, tag?: unknown) => void,
    public retries: number,
    readonly pinned: boolean,
  ) {
    // Set here (the fields are declared only) rather than by field
    // initializers: those would be a function of their own, run (and, in a
    // first map, interpreted and compiled) for every task.
    this.exits = undefined;
    this.worker = undefined;
    this.cancelled = false;
    this.settled = false;
    this.signal = undefined;
    this.barriers = undefined;
    this.sentAt = 0;
    this.timeout = undefined;
    this.timer = undefined;
    this.livePrev = undefined;
    this.liveNext = undefined;
    this.tag = undefined;
    this.items = kind === "chunk" || kind === "items" ? args.length : 1;
  }
}

/**
 * The tasks submitted and not yet settled, as a list through the tasks
 * themselves: adding and removing one costs no allocation and no hashing.
 */
export class LiveTasks {
  #head: Task | undefined = undefined;
  #tail: Task | undefined = undefined;
  /** How many there are. */
  count = 0;

  /** Adds `task` (not yet in the list) at the end. */
  add(task: Task): void {
    const tail = this.#tail;
    task.livePrev = tail;
    if (tail !== undefined) tail.liveNext = task;
    else this.#head = task;
    this.#tail = task;
    this.count++;
  }

  /** Removes `task` (in the list). */
  delete(task: Task): void {
    const { livePrev: prev, liveNext: next } = task;
    if (prev !== undefined) prev.liveNext = next;
    else this.#head = next;
    if (next !== undefined) next.livePrev = prev;
    else this.#tail = prev;
    task.livePrev = task.liveNext = undefined;
    this.count--;
  }

  /** The tasks now, oldest first (a copy: the list may change meanwhile). */
  list(): Task[] {
    const tasks = new Array<Task>(this.count);
    let i = 0;
    for (let t = this.#head; t !== undefined; t = t.liveNext) tasks[i++] = t;
    return tasks;
  }
}

/** Waits for a set of tasks to settle (used by runOnAll). */
export interface Barrier {
  remaining: number;
  done: () => void;
}

/** Where a worker's messages go: a `FrameWriter`, or a fake in tests. */
export interface TaskWriter {
  /** Queues a message; throws `DataCloneError` for what cannot be sent. */
  send(message: Message): void;
  /** Bytes queued and not yet written. */
  readonly pendingBytes: number;
  /** Called after each completed write. */
  onWritten: (() => void) | undefined;
}

/** A connected worker as the dispatcher sees it. */
export class WorkerHandle {
  /** One-call tasks given to this worker in this turn, sent together at its end (CallBatcher's). */
  batch: Task[] | undefined = undefined;
  readonly inflight = new Map<number, Task>();
  readonly defined = new Set<number>();
  load = 0;
  capacity: number;
  /** Initialised and attached to the dispatcher. */
  ready = false;
  lost = false;
  pid = 0;
  /** Moving average of the time tasks take in the worker (ms). */
  workMs = 0;
  /** Shortest send-to-result time seen (ms): round trip plus task. */
  minLatencyMs = Infinity;
  /** Tasks this worker finished. */
  done = 0;
  /** Tasks (other than initializer and runOnAll calls) sent to it. */
  sent = 0;
  /** Resident memory the worker last reported (bytes). */
  rss = 0;
  /** A timed-out task this worker still runs; it gets no new tasks meanwhile. */
  suspect: number | undefined;
  /** Killed by the pool for a hard timeout: its other tasks go elsewhere. */
  hardKilled = false;
  /** Set when the worker is being retired: it gets no new tasks. */
  retiring: string | undefined;

  /**
   * @param id The worker's id within the pool.
   * @param host `"local"` or its host.
   * @param writer Its connection's writer.
   * @param capacity Tasks it may hold at first (`qsize`, or the adaptive start).
   */
  constructor(
    readonly id: number,
    readonly host: string,
    readonly writer: TaskWriter,
    capacity: number = MIN_DEPTH,
  ) {
    this.capacity = capacity;
  }

  /**
   * True while the worker takes no new task whatever its load: retiring,
   * holding a timed-out task, or with too many bytes waiting to be written.
   */
  get blocked(): boolean {
    return this.retiring !== undefined || this.suspect !== undefined ||
      this.writer.pendingBytes > MAX_PENDING_BYTES;
  }

  /**
   * Why it is to be retired for its memory, if its last report passed
   * `limitMB` (the pool option maxMemoryMB).
   */
  overMemory(limitMB: number | undefined): string | undefined {
    if (!limitMB || this.rss <= limitMB * 1024 * 1024) return undefined;
    const mib = Math.round(this.rss / 1048576);
    return `its memory (${mib} MiB) passed maxMemoryMB (${limitMB})`;
  }

  /** Its entry in `Pool.stats()`. */
  stats(): WorkerStats {
    return {
      id: this.id,
      host: this.host,
      pid: this.pid,
      ready: this.ready,
      inFlight: this.load,
      capacity: this.capacity,
      done: this.done,
      rssBytes: this.rss,
    };
  }

  /** Ready, and neither retiring nor holding a timed-out task. */
  get inService(): boolean {
    return this.ready && this.retiring === undefined &&
      this.suspect === undefined;
  }
}
