/**
 * The pool's workers as a whole: the worker server they connect to and the
 * launch supervisor that starts their processes, joined into
 * {@link WorkerHandle}s for the dispatcher. A worker that connects runs the
 * initializer, then joins the dispatcher (`workerstart`); one that is
 * retired runs the teardown first; one whose connection ends leaves the
 * dispatcher, and once its launch can tell how it ended, its tasks are
 * retried or failed (`workerexit`).
 *
 * @module
 */
import { newSecret } from "./auth.ts";
import type { Dispatcher } from "./dispatcher.ts";
import type { WorkerExit } from "./errors.ts";
import type { PoolEventMap } from "./events.ts";
import type { FunctionSpec } from "./function_ref.ts";
import type { HostSpec } from "./host_spec.ts";
import {
  LaunchSupervisor,
  REAL_TIMERS,
  type Timer,
  type Timers,
} from "./launch_supervisor.ts";
import { type Launcher, LocalLauncher } from "./launcher.ts";
import { COLLECTOR_GLOBAL } from "./frame_reader.ts";
import { DEFAULTS, type PoolOptions } from "./options.ts";
import type { Lifecycle } from "./pool_lifecycle.ts";
import type { WorkerMessage } from "./protocol.ts";
import { createHostLauncher } from "./ssh_launcher.ts";
import { WorkerHandle } from "./worker_handle.ts";
import { type Connection, WorkerServer } from "./worker_server.ts";

/** How long (ms) close() and retiring wait for a worker's teardown. */
export const TEARDOWN_MS = 10_000;

/** What the fleet needs from the pool. */
export interface FleetContext {
  /** The pool's options (validated). */
  options: PoolOptions;
  /** Local workers to start. */
  workers: number;
  /** Remote hosts. */
  specs: HostSpec[];
  /** What each worker runs first, and last, if anything. */
  initSpec: FunctionSpec | undefined;
  teardownSpec: FunctionSpec | undefined;
  life: Lifecycle;
  dispatcher: Dispatcher;
  /** Dispatches a pool event. */
  emit<K extends keyof PoolEventMap>(
    type: K,
    detail: PoolEventMap[K]["detail"],
  ): void;
  /** The pool cannot go on. */
  fail(error: unknown): void;
  /** The first full set of workers is up. */
  ready(): void;
  /**
   * One launcher per launch group, instead of those the options describe
   * (tests launch fake workers over in-memory channels).
   */
  launchers?: Launcher[] | undefined;
  /** The timers to use (a fake clock in tests). @default {REAL_TIMERS} */
  clock?: Timers | undefined;
}

/**
 * glibc malloc settings for local workers (issue 14, bulk bytes). By
 * default glibc gives memory blocks of 128 KiB and more back to the kernel
 * as they are freed (and takes fresh, zero-filled pages for the next one),
 * and trims the heap when more than a few MiB at its top are free: a worker
 * receiving 1 MiB byte arrays took a page fault per 4 KiB of them. With
 * these, blocks under 32 MiB come from the heap and up to 16 MiB of free
 * heap is kept, so the memory of the arrays tasks are done with is reused
 * (the frame reader frees them every few MiB, `RECLAIM_BYTES`).
 */
export const WORKER_MALLOC_TUNABLES =
  "glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=16777216";

/**
 * The `deno run` flag that gives a local worker its garbage collector under
 * a name of its own, which the worker takes off its global before any task
 * runs. A task can still reach it through a new V8 context (`node:vm`),
 * where it can only make its own worker collect garbage.
 */
export const COLLECTOR_FLAG = `--v8-flags=--expose-gc-as=${COLLECTOR_GLOBAL}`;

/**
 * Local workers' environment: the pool's `env` on top of
 * {@link WORKER_MALLOC_TUNABLES}. A `GLIBC_TUNABLES` of the pool's `env`
 * replaces them; one this process has (where it may read it) comes after
 * them, so its settings win.
 */
function workerEnv(
  env: Record<string, string> | undefined,
): Record<string, string> {
  if (env?.GLIBC_TUNABLES !== undefined) return env;
  let inherited: string | undefined;
  const variable = "GLIBC_TUNABLES";
  if (
    Deno.permissions.querySync({ name: "env", variable }).state === "granted"
  ) {
    inherited = Deno.env.get(variable);
  }
  return {
    ...env,
    GLIBC_TUNABLES: inherited
      ? `${WORKER_MALLOC_TUNABLES}:${inherited}`
      : WORKER_MALLOC_TUNABLES,
  };
}

/** One launcher per launch group: each local worker, each host. */
function launchersFor(ctx: FleetContext): Launcher[] {
  const opts = ctx.options;
  const local = new LocalLauncher({
    workerUrl: opts.workerUrl,
    permissions: opts.permissions,
    maxMemoryMB: opts.maxMemoryMB,
    env: workerEnv(opts.env),
    stdout: opts.stdout === "capture"
      ? (workerId, line) =>
        ctx.emit("stdout", { workerId, host: "local", line })
      : undefined,
    denoArgs: [
      ...(opts.maxMemoryMB
        ? [`--v8-flags=--max-old-space-size=${opts.maxMemoryMB}`]
        : []),
      COLLECTOR_FLAG,
      ...(opts.denoArgs ?? []),
    ],
  });
  const launchers: Launcher[] = Array(ctx.workers).fill(local);
  for (const spec of ctx.specs) {
    launchers.push(createHostLauncher(spec, opts.ssh ?? {}, opts.tls));
  }
  return launchers;
}

/** Starts, admits, initialises, replaces and stops the pool's workers. */
export class WorkerFleet {
  #ctx: FleetContext;
  #clock: Timers;
  #server: WorkerServer;
  #supervisor: LaunchSupervisor;
  /** Connected workers by id, with their connections. */
  #workers = new Map<
    number,
    { handle: WorkerHandle; connection: Connection }
  >();
  /** Workers whose teardown has been started (it runs once per worker). */
  #tornDown = new WeakSet<WorkerHandle>();
  #booting: Promise<void> | undefined;
  /** Reports of lost workers still being made (awaited by close). */
  #pending = new Set<Promise<void>>();

  /** @param ctx The pool's options and parts. */
  constructor(ctx: FleetContext) {
    this.#ctx = ctx;
    this.#clock = ctx.clock ?? REAL_TIMERS;
    const { life, options } = ctx;
    this.#server = new WorkerServer({
      secret: newSecret(),
      maxFrameBytes: options.maxFrameBytes,
      settings: {
        statsMs: DEFAULTS.statsMs,
        maxFrameBytes: options.maxFrameBytes ?? DEFAULTS.maxFrameBytes,
      },
    }, {
      admit: ({ workerId }) => {
        if (!life.running) throw new Error("the pool is closing");
        this.#supervisor.claim(workerId);
      },
      connected: (connection) => this.#connected(connection),
      lost: (connection, reason) => this.#lost(connection, reason),
      rejected: (reason) => {
        if (life.running) ctx.emit("rejected", reason);
      },
    });
    this.#supervisor = new LaunchSupervisor(
      ctx.launchers ?? launchersFor(ctx),
      options.startTimeout ?? DEFAULTS.startTimeout,
      {
        running: () => life.running,
        failed: (error) => {
          // Still starting: fail fast instead of retrying forever.
          if (!life.wasReady) {
            ctx.fail(error);
            return false;
          }
          ctx.emit("error", error);
          return true;
        },
        hostLost: (host, exit) => ctx.emit("hostlost", { host, exit }),
        changed: () => life.notify(),
      },
      this.#clock,
    );
  }

  /** Workers asked for, all hosts up. */
  get targetWorkers(): number {
    return this.#supervisor.targetWorkers;
  }

  /** Workers of the hosts that are not lost. */
  get totalWorkers(): number {
    return this.#supervisor.totalWorkers;
  }

  /**
   * Opens the socket, then launches every group.
   * @throws {Error} when the socket cannot be opened.
   */
  start(): Promise<void> {
    this.#booting = (async () => {
      const server = this.#server;
      await server.listen();
      if (!this.#ctx.life.running) return;
      this.#supervisor.start({
        socketPath: server.socketPath,
        secret: server.secret,
        accept: (channel) => server.accept(channel),
      });
    })();
    return this.#booting;
  }

  /** Whether the socket, connections, processes and timers hold the program. */
  setRef(on: boolean): void {
    this.#server.setRef(on);
    this.#supervisor.setRef(on);
  }

  /**
   * Waits until every worker of the hosts that are up is in service (the
   * pool replaces lost ones meanwhile).
   * @returns Those workers.
   * @throws {unknown} when the pool closes or fails meanwhile.
   */
  async allInService(): Promise<WorkerHandle[]> {
    const { life, dispatcher } = this.#ctx;
    for (;;) {
      life.checkOpen();
      const workers = dispatcher.inService();
      if (workers.length >= this.totalWorkers) return workers;
      await life.changed();
    }
  }

  /**
   * Ends a worker's process, after its teardown: a local one is killed (its
   * group starts a new one); a remote one has its connection closed (it
   * exits and the host's supervisor starts it again).
   */
  stopWorker(w: WorkerHandle): void {
    if (this.#ctx.teardownSpec && !w.hardKilled && !w.lost) {
      if (!this.#tornDown.has(w)) {
        // Its teardown first; its answer brings the worker back here.
        this.teardown(w).finally(() => {
          if (!w.lost) this.stopWorker(w);
        });
        return;
      }
    }
    if (this.#supervisor.stopWorker(w.id, w.hardKilled)) {
      this.#workers.get(w.id)?.connection.close();
    }
  }

  /**
   * Runs the pool option `teardown` on `w` (every connected worker when
   * `w` is undefined), once per worker; settles when it has, after
   * TEARDOWN_MS at most, never rejects (a failing teardown is reported as
   * an `error` event).
   */
  teardown(w?: WorkerHandle): Promise<void> {
    if (w === undefined) {
      return Promise.all(
        [...this.#workers.values()].map(({ handle }) => this.teardown(handle)),
      ).then(() => {});
    }
    const spec = this.#ctx.teardownSpec;
    if (!spec || this.#tornDown.has(w) || w.lost || w.hardKilled) {
      return Promise.resolve();
    }
    this.#tornDown.add(w);
    let timer: Timer;
    const late = new Promise<void>((resolve) => {
      timer = this.#clock.setTimeout(resolve, TEARDOWN_MS);
    });
    const done = this.#ctx.dispatcher.runPinned(w, spec, [], "call").then(
      () => {},
      (error) => {
        if (!w.lost) this.#ctx.emit("error", error);
      },
    );
    return Promise.race([done, late]).finally(() =>
      this.#clock.clearTimeout(timer)
    );
  }

  /** Kills every launch now (the pool failed). */
  killAll(): void {
    this.#supervisor.killAll();
  }

  /**
   * Stops accepting, stops the launches (workers end on their closed
   * lifeline), hangs up on what is left and removes the socket. With
   * `graceful`, local workers are first told to end (the pool ends its side
   * of their connections) and given a moment to exit by themselves, as
   * `Deno.exit()`: their `unload` handlers run and `--cpu-prof` profiles are
   * written, which the lifeline's SIGKILL would prevent.
   */
  async close(graceful = false): Promise<void> {
    await this.#booting?.catch(() => {});
    await this.#server.stopListening();
    // Workers end on the closed lifeline and close their connections
    // themselves; hanging up first would look like a protocol error, and a
    // remote supervisor would restart workers that lost it before its stdin.
    await this.#supervisor.stop(
      graceful ? (ids) => this.#farewell(ids) : undefined,
    );
    await this.#server.close();
    while (this.#pending.size > 0) {
      await Promise.allSettled([...this.#pending]);
    }
  }

  /**
   * Ends the pool's side of the connections of workers `ids` (each exits
   * by itself when it reads that end); false unless all of them are
   * connected and not stuck in a task.
   */
  #farewell(ids: number[]): boolean {
    const entries = ids.map((id) => this.#workers.get(id));
    if (entries.some((e) => !e || e.handle.lost || e.handle.hardKilled)) {
      return false;
    }
    for (const e of entries) e!.connection.end();
    return true;
  }

  /** A worker passed the handshake: initialise it, then give it tasks. */
  #connected(connection: Connection): (message: WorkerMessage) => void {
    const { workerId } = connection;
    const { dispatcher, initSpec } = this.#ctx;
    const handle = new WorkerHandle(
      workerId,
      this.#supervisor.hostOf(workerId),
      connection.writer,
      dispatcher.initialCapacity,
    );
    handle.pid = connection.pid;
    this.#workers.set(workerId, { handle, connection });
    dispatcher.connect(handle);
    if (initSpec) {
      const { initArgs = [], initTimeout = DEFAULTS.initTimeout } =
        this.#ctx.options;
      const timer = this.#clock.setTimeout(() => {
        if (handle.lost || !this.#ctx.life.running) return;
        this.#ctx.fail(
          new DOMException(
            `The initializer did not settle within ${initTimeout} ms on ` +
              `worker ${workerId} (${handle.host}): make it settle, or raise ` +
              `the pool option initTimeout`,
            "TimeoutError",
          ),
        );
      }, initTimeout);
      dispatcher.runPinned(handle, initSpec, initArgs, "init").finally(() =>
        this.#clock.clearTimeout(timer)
      ).then(
        () => this.#activate(handle),
        (error) => {
          if (!handle.lost) this.#ctx.fail(error);
        },
      );
    } else {
      this.#activate(handle);
    }
    return (message) => dispatcher.onMessage(handle, message);
  }

  #activate(handle: WorkerHandle): void {
    const { life, dispatcher } = this.#ctx;
    if (handle.lost || !life.running) return;
    const replacement = life.wasReady;
    this.#supervisor.ready(handle.id);
    dispatcher.attach(handle);
    // Ready once as many workers are up at the same time as were asked for
    // (a worker lost while the pool starts does not count).
    if (
      !replacement &&
      dispatcher.inService().length >= this.#supervisor.targetWorkers
    ) {
      life.markReady();
      this.#ctx.ready();
    }
    const detail = {
      workerId: handle.id,
      host: handle.host,
      pid: handle.pid,
      replacement,
    };
    this.#ctx.emit("workerstart", detail);
    if (replacement) this.#ctx.emit("workerreplace", detail);
    life.notify();
  }

  #lost(connection: Connection, reason: string): void {
    const entry = this.#workers.get(connection.workerId);
    if (!entry) return;
    this.#workers.delete(connection.workerId);
    const w = entry.handle;
    const { dispatcher, life } = this.#ctx;
    const tasks = dispatcher.detach(w);
    const report = (async () => {
      // Give the process a moment to exit so the error can say how it ended.
      const end = await this.#supervisor.lost(w.id);
      const exit: WorkerExit = {
        workerId: w.id,
        host: end.host,
        code: end.code,
        signal: end.signal,
        stderr: end.stderr,
        reason: w.retiring ? `retired: ${w.retiring}` : reason,
      };
      dispatcher.requeueOrFail(w, tasks, exit, life.failure);
      this.#ctx.emit("workerexit", exit);
    })();
    this.#pending.add(report);
    report.finally(() => this.#pending.delete(report));
  }
}
