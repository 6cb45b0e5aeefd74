/**
 * A pool's parts and how they are wired together: the function table, the
 * life cycle, the dispatcher (queue, slots, the task life cycle), the worker
 * fleet (socket, launches, workers) and the keep-alive switch. The facade
 * (`pool.ts`) checks arguments and hands work to these; the helpers of the
 * facade (`pool_call.ts`, `pool_map.ts`, `pool_close.ts`) take them as one
 * object.
 *
 * @module
 */
import { Dispatcher } from "./dispatcher.ts";
import type { PoolEventMap } from "./events.ts";
import {
  type FunctionSpec,
  FunctionTable,
  type TaskFunction,
} from "./function_ref.ts";
import {
  DEFAULTS,
  type PoolOptions,
  type TaskOptions,
  type ValidatedOptions,
} from "./options.ts";
import { KeepAlive } from "./pool_keep_alive.ts";
import { Lifecycle } from "./pool_lifecycle.ts";
import type { CallKind } from "./protocol.ts";
import { WorkerFleet } from "./worker_fleet.ts";

/** A pool's parts, wired together. */
export interface PoolParts {
  /** The pool's options (validated). */
  readonly options: PoolOptions;
  readonly life: Lifecycle;
  readonly functions: FunctionTable;
  readonly dispatcher: Dispatcher;
  readonly fleet: WorkerFleet;
  readonly keepAlive: KeepAlive;
  /** Refuses new work once closing, starts a lazy pool, holds the program. */
  open(): void;
  /** Opens the pool and queues one task. */
  submit(
    spec: FunctionSpec,
    args: unknown[],
    kind: CallKind,
    options: TaskOptions | undefined,
  ): Promise<unknown>;
}

/** What the parts need from the facade. */
export interface PoolHooks {
  /** Dispatches a pool event. */
  emit<K extends keyof PoolEventMap>(
    type: K,
    detail: PoolEventMap[K]["detail"],
  ): void;
  /** Refuses new work once closing, starts a lazy pool, holds the program. */
  open(): void;
}

/**
 * Looks up the pool option `name` (`initializer`, `teardown`) in the
 * function table.
 * @throws {TypeError} naming the option, when it is not a task function.
 */
function lookupOption(
  functions: FunctionTable,
  fn: TaskFunction | undefined,
  name: string,
): FunctionSpec | undefined {
  try {
    return fn === undefined ? undefined : functions.lookup(fn);
  } catch (error) {
    throw new TypeError(
      `Pool option '${name}': ${(error as Error).message}`,
      { cause: error },
    );
  }
}

/** The pool cannot go on: rejects everything with `error`, kills workers. */
export function failPool(parts: PoolParts, error: unknown): void {
  if (!parts.life.fail(error)) return;
  parts.dispatcher.failAll(error);
  parts.fleet.killAll();
}

/**
 * Builds a pool's parts from its validated options.
 *
 * @param validated What `validatePoolOptions()` returned.
 * @param hooks The facade's side.
 * @returns The parts; nothing is started yet.
 * @throws {TypeError} when `initializer` or `teardown` is not a task function.
 */
export function assemble(
  { opts, specs, workers, qsize }: ValidatedOptions,
  hooks: PoolHooks,
): PoolParts {
  const functions = new FunctionTable(opts.base);
  const initSpec = lookupOption(functions, opts.initializer, "initializer");
  const teardownSpec = lookupOption(functions, opts.teardown, "teardown");
  const life = new Lifecycle();
  const keepAlive = new KeepAlive({
    setRef: (on) => fleet.setRef(on),
    idle: () => life.phase === "running" && dispatcher.liveCount === 0,
  });
  const dispatcher: Dispatcher = new Dispatcher({
    qsize,
    retries: opts.retries ?? DEFAULTS.retries,
    poisonThreshold: opts.poisonThreshold ?? DEFAULTS.poisonThreshold,
    killGrace: opts.killGrace ?? DEFAULTS.killGrace,
    maxTasksPerWorker: opts.maxTasksPerWorker,
    maxMemoryMB: opts.maxMemoryMB,
  }, {
    stopWorker: (w) => fleet.stopWorker(w),
    running: () => life.running,
    changed: () => {
      life.notify();
      keepAlive.check();
    },
  });
  const fleet: WorkerFleet = new WorkerFleet({
    options: opts,
    workers,
    specs,
    initSpec,
    teardownSpec,
    life,
    dispatcher,
    emit: hooks.emit,
    fail: (error) => failPool(parts, error),
    ready: () => keepAlive.check(),
  });
  const parts: PoolParts = {
    options: opts,
    life,
    functions,
    dispatcher,
    fleet,
    keepAlive,
    open: hooks.open,
    submit(spec, args, kind, options) {
      hooks.open();
      return dispatcher.submit(spec, args, kind, options);
    },
  };
  return parts;
}
