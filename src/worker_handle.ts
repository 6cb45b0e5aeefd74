/**
 * The pool's bookkeeping records: a task, a launch group, and a connected
 * worker with its load and measurements.
 *
 * @module
 */
import type { WorkerExit } from "./errors.ts";
import type { FunctionSpec } from "./function_ref.ts";
import type { Launch, Launcher } from "./launcher.ts";
import type { ByteChannel, FrameWriter } from "./framing.ts";
import type { CallKind } from "./protocol.ts";

/** Bytes queued on one connection beyond which no further task is sent. */
export const MAX_PENDING_BYTES = 4 * 1024 * 1024;

/** A queued or running task. */
export interface Task {
  id: number;
  spec: FunctionSpec;
  args: unknown[];
  /** How the worker runs it. */
  kind: CallKind;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
  retries: number;
  exits: WorkerExit[] | undefined;
  worker: WorkerHandle | undefined;
  /** Set for runOnAll and initializer calls: only this worker may run it. */
  pinned: boolean;
  cancelled: boolean;
  settled: boolean;
  cleanup: (() => void) | undefined;
  barriers: Barrier[] | undefined;
  /** performance.now() when the task was sent (adaptive depth only). */
  sentAt: number;
}

/** Waits for a set of tasks to settle (used by runOnAll). */
export interface Barrier {
  remaining: number;
  done: () => void;
}

/** One launcher and its current launch: one local worker, or one host. */
export interface Group {
  launcher: Launcher;
  launch: Launch | undefined;
  ids: number[];
  failures: number;
  down: boolean;
  /** Ids of the current launch that have connected at least once. */
  connected: Set<number>;
}

/** A connected worker as the pool sees it. */
export class WorkerHandle {
  readonly inflight = new Map<number, Task>();
  readonly defined = new Set<number>();
  load = 0;
  capacity: number;
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
  /** Too many bytes wait to be written: send nothing more until they are. */
  get congested(): boolean {
    return this.writer.pendingBytes > MAX_PENDING_BYTES;
  }
  constructor(
    readonly id: number,
    readonly group: Group,
    readonly channel: ByteChannel,
    readonly writer: FrameWriter,
    capacity: number,
  ) {
    this.capacity = capacity;
  }
}
