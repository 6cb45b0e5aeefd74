/**
 * The pool: a UNIX-socket server that worker processes connect back to, a
 * queue of tasks, and the bookkeeping that hands tasks to workers with free
 * slots and results back to callers.
 *
 * @module
 */
import { newSecret } from "./auth.ts";
import { _readBlobs } from "./_codec.ts";
import {
  _callerStack,
  _withCallerStack,
  fromErrorRecord,
  PoolClosedError,
  type WorkerExit,
  WorkerLostError,
} from "./errors.ts";
import {
  type FunctionSpec,
  FunctionTable,
  type TaskFunction,
} from "./function_ref.ts";
import {
  type Launch,
  type Launcher,
  LocalLauncher,
  type LocalLauncherOptions,
} from "./launcher.ts";
import { createMapStream, type MapOptions } from "./map_stream.ts";
import {
  type ByteChannel,
  DEFAULT_MAX_FRAME_BYTES,
  FrameWriter,
  readFrames,
} from "./framing.ts";
import { verifyWorker, welcome } from "./handshake.ts";
import {
  type CallKind,
  callMessage,
  cancelMessage,
  defineMessage,
  Op,
  parseWorkerMessage,
  type WorkerMessage,
} from "./protocol.ts";
import { pickWorker } from "./scheduler.ts";
import {
  checkTaskOptions,
  type CloseOptions,
  type PoolOptions,
  type TaskOptions,
  validatePoolOptions,
} from "./options.ts";
import type { PoolStats } from "./stats.ts";
import {
  type Barrier,
  type Group,
  type Task,
  WorkerHandle,
} from "./worker_handle.ts";

import { createHostLauncher } from "./ssh_launcher.ts";

type State = "idle" | "starting" | "running" | "closing" | "closed";

const DEFAULT_QSIZE = 2;
const MAX_QSIZE = 64;
/** How often workers report their memory use (ms). */
const STATS_MS = 1_000;

function timeoutError(what: string, ms: number): DOMException {
  return new DOMException(`${what} timed out after ${ms} ms`, "TimeoutError");
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Appends the caller's frames to a task's error. Run as a rejection handler:
 * V8's async stack there shows the code that awaited the task.
 */
function withCallerStack(error: unknown): never {
  throw _withCallerStack(error, _callerStack(withCallerStack));
}

/**
 * An async process pool: runs functions on local worker processes and on
 * workers on other machines reached by SSH.
 *
 * The pool is an `EventTarget`. Its events are `CustomEvent`s:
 * - `workerstart`: a worker connected and is initialised; `detail` is
 *   `{ workerId, host, pid, replacement }` (`replacement` is true for workers
 *   started after the pool was ready, in place of one that exited).
 * - `workerreplace`: the same, for a worker that takes the place of one that
 *   exited (fired after its `workerstart`).
 * - `workerexit`: a worker was lost or retired; `detail` is a
 *   {@link WorkerExit} (code, signal, host, last stderr lines, reason).
 * - `hostlost`: an SSH host's connection ended; `detail` is `{ host, exit }`.
 *   Its workers leave `totalWorkers` until the pool reconnects (with backoff).
 * - `error`: a worker or host could not be (re)started after the pool was
 *   ready; `detail` is the error. The pool keeps trying.
 * - `rejected`: a connection to the pool's socket failed the handshake and was
 *   closed; `detail` is the reason.
 *
 * @example Squares on four local workers
 * ```ts
 * import { Pool } from "@distex/pool";
 * await using pool = new Pool(2);
 * console.log(await pool.run((x: number) => x * x, 7)); // 49
 * for await (const y of pool.map((x: number) => x + 1, [1, 2, 3])) {
 *   console.log(y); // 2, 3, 4
 * }
 * ```
 */
export class Pool extends EventTarget implements AsyncDisposable {
  #options: PoolOptions;
  #state: State = "idle";
  #groups: Group[] = [];
  #functions = new FunctionTable();
  #secret = newSecret();
  #dir: string | undefined;
  #socketPath: string | undefined;
  #listener: Deno.Listener | undefined;
  #accepting: Promise<void> | undefined;
  /** Connected workers by id (ready or initialising). */
  #handles = new Map<number, WorkerHandle>();
  /** Ready workers, the scheduler's candidates. */
  #workers: WorkerHandle[] = [];
  /** Ids launched and not yet connected, with their group. */
  #expected = new Map<number, Group>();
  #queue: Task[] = [];
  #queueHead = 0;
  #live = new Set<Task>();
  #nextTaskId = 1;
  #nextWorkerId = 1;
  #cursor = 0;
  #fatal: unknown = undefined;
  #ready: PromiseWithResolvers<void> = Promise.withResolvers();
  /** True once the first full set of workers was up (later ones replace). */
  #wasReady = false;
  #initialTarget = 0;
  #started = false;
  #closing: Promise<void> | undefined;
  #changed: PromiseWithResolvers<void> = Promise.withResolvers();
  #pending = new Set<Promise<unknown>>();
  #initSpec: FunctionSpec | undefined;
  #connections = new Set<ByteChannel>();
  #qsize: number;
  #adaptive: boolean;
  /** Moving average of each function's time per item in workers (ms). */
  #itemMs = new Map<number, number>();
  #booting: Promise<void> | undefined;
  /** A graceful close() is waiting for the tasks in flight. */
  #draining = false;
  #startTimeout = 30_000;
  #timers = new Set<ReturnType<typeof setTimeout>>();
  #watched = new Map<
    AbortSignal,
    { tasks: Set<Task>; onAbort: () => void }
  >();
  #stats = { done: 0, failed: 0, retried: 0, lost: 0, recycled: 0 };

  /**
   * Creates a pool and starts its workers (unless `lazy`). Await
   * {@link Pool.prototype.ready} (or use {@link Pool.create}) to wait until
   * all are connected.
   *
   * @param options A worker count, or {@link PoolOptions}.
   * @throws {TypeError} for options of the wrong type, unknown option names or a
   * malformed host spec.
   * @throws {RangeError} for counts out of range (e.g. `workers: -1`, `qsize: 0`).
   */
  constructor(options?: number | PoolOptions) {
    super();
    const { opts, specs, workers, qsize } = validatePoolOptions(options);
    this.#adaptive = qsize === undefined;
    this.#qsize = qsize ?? DEFAULT_QSIZE;
    this.#startTimeout = opts.startTimeout ?? this.#startTimeout;
    if (opts.initializer !== undefined) {
      try {
        this.#initSpec = this.#functions.lookup(opts.initializer);
      } catch (error) {
        throw new TypeError(
          `Pool option 'initializer': ${
            error instanceof Error ? error.message : error
          }`,
          { cause: error },
        );
      }
    }
    this.#options = opts;
    const local: LocalLauncherOptions = {
      workerUrl: opts.workerUrl,
      permissions: opts.permissions,
      denoArgs: opts.maxMemoryMB
        ? [
          `--v8-flags=--max-old-space-size=${opts.maxMemoryMB}`,
          ...(opts.denoArgs ?? []),
        ]
        : opts.denoArgs,
    };
    const localLauncher = new LocalLauncher(local);
    for (let i = 0; i < workers; i++) this.#addGroup(localLauncher);
    for (const spec of specs) {
      this.#addGroup(createHostLauncher(spec, opts.ssh ?? {}, opts.tls));
    }
    this.#initialTarget = this.#groups.reduce(
      (n, g) => n + g.launcher.groupSize,
      0,
    );
    // `ready` may be ignored by the caller; never let it be unhandled.
    this.#ready.promise.catch(() => {});
    if (!opts.lazy) this.#start();
  }

  /**
   * Creates a pool and waits until all its workers are ready.
   *
   * @param options A worker count, or {@link PoolOptions}.
   * @returns The ready pool.
   * @throws {Error} what the initializer threw, or why workers could not start
   * (the pool is closed again before this rejects).
   *
   * @example
   * ```ts
   * import { Pool } from "@distex/pool";
   * await using pool = await Pool.create(2);
   * console.log(pool.totalWorkers); // 2
   * ```
   */
  static async create(options?: number | PoolOptions): Promise<Pool> {
    const pool = new Pool(options);
    try {
      await pool.ready;
    } catch (error) {
      await pool.close({ wait: false });
      throw error;
    }
    return pool;
  }

  /**
   * Resolves when every worker is connected and initialised; rejects with what
   * the initializer threw, or why workers could not start.
   * For a `lazy` pool, reading `ready` starts the workers.
   */
  get ready(): Promise<void> {
    this.#start();
    return this.#ready.promise;
  }

  /**
   * The number of workers in the pool: all configured workers, less those on
   * hosts that are currently lost.
   */
  get totalWorkers(): number {
    let n = 0;
    for (const g of this.#groups) if (!g.down) n += g.launcher.groupSize;
    return n;
  }

  /**
   * Runs `fn(...args)` on a worker.
   *
   * @param fn A self-contained function (sent as source) or `{ module, name }`.
   * @param args Arguments; structured-clone data.
   * @returns What `fn` returned (awaited).
   * @throws {Error} what `fn` threw, as the same built-in class with the remote stack
   * and, under `--- caller ---`, the frames of the code that awaited it.
   * @throws {WorkerLostError} when the worker died while running it.
   * @throws {DOMException} `DataCloneError` when an argument or the result cannot be sent.
   *
   * @example
   * ```ts
   * import { Pool } from "@distex/pool";
   * await using pool = new Pool(1);
   * console.log(await pool.run((a: number, b: number) => a + b, 1, 2)); // 3
   * ```
   */
  run<A extends unknown[], R>(
    fn: ((...args: A) => R) | TaskFunction<A, R>,
    ...args: A
  ): Promise<Awaited<R>> {
    return this.apply(fn, args);
  }

  /**
   * Executor-style submit, like Python's `concurrent.futures`: the same as
   * {@link Pool.prototype.run}.
   *
   * @param fn The function or module reference.
   * @param args Its arguments.
   * @returns A promise of the result.
   *
   * @example
   * ```ts
   * import { Pool } from "@distex/pool";
   * await using pool = new Pool(1);
   * const futures = [1, 2, 3].map((x) => pool.submit((y: number) => y * 2, x));
   * console.log(await Promise.all(futures)); // [2, 4, 6]
   * ```
   */
  submit<A extends unknown[], R>(
    fn: ((...args: A) => R) | TaskFunction<A, R>,
    ...args: A
  ): Promise<Awaited<R>> {
    return this.apply(fn, args);
  }

  /**
   * Runs `fn(...args)` with per-task options: `signal`, `timeout`, `retries`.
   * An abort or timeout rejects at once; a queued task is removed, a running
   * one is told to drop its result (sync code in the worker runs to its end).
   *
   * @param fn The function or module reference.
   * @param args Its arguments, as an array.
   * @param options Signal, timeout (ms) and retries for this task.
   * @returns A promise of the result.
   * @throws {DOMException} `TimeoutError` when `timeout` expires.
   *
   * @example A task with a deadline
   * ```ts
   * import { Pool } from "@distex/pool";
   * await using pool = new Pool(1);
   * const slow = () => new Promise((r) => setTimeout(r, 10_000));
   * await pool.apply(slow, [], { timeout: 50 }).catch((e) => console.log(e.name)); // TimeoutError
   * ```
   */
  apply<A extends unknown[], R>(
    fn: ((...args: A) => R) | TaskFunction<A, R>,
    args: A,
    options?: TaskOptions,
  ): Promise<Awaited<R>> {
    try {
      checkTaskOptions(options);
      if (!Array.isArray(args)) {
        throw new TypeError("Pool.apply() takes its arguments as an array");
      }
      const spec = this.#functions.lookup(fn as TaskFunction);
      const reading = _readBlobs(args); // Blob bytes, read before sending
      return (reading
        ? reading.then(() => this._submit(spec, args, "call", options))
        : this._submit(spec, args, "call", options)).catch(
          withCallerStack,
        ) as Promise<Awaited<R>>;
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Maps `fn` over one or more (async) iterables or streams, zipped, and
   * returns the results as a `ReadableStream` (async-iterable). The source is
   * read only as far as free slots need; cancelling the stream stops reading
   * and drops the work in flight.
   *
   * @param fn The function or module reference.
   * @param sources Iterables, async iterables or `ReadableStream`s; an options
   * object ({@link MapOptions}) may come last.
   * @returns The results, in input order unless `ordered: false`.
   *
   * @example
   * ```ts
   * import { Pool } from "@distex/pool";
   * await using pool = new Pool(2);
   * const sums = await Array.fromAsync(
   *   pool.map((a: number, b: number) => a + b, [1, 2, 3], [10, 20, 30]),
   * );
   * console.log(sums); // [11, 22, 33]
   * ```
   */
  // deno-lint-ignore no-explicit-any
  map<R = any>(
    // deno-lint-ignore no-explicit-any
    fn: TaskFunction<any[], R>,
    ...sources: unknown[]
  ): ReadableStream<Awaited<R>> {
    let options: MapOptions = {};
    const last = sources[sources.length - 1];
    if (
      last !== null && typeof last === "object" &&
      !(Symbol.iterator in last) && !(Symbol.asyncIterator in last) &&
      !(last instanceof ReadableStream)
    ) {
      options = last as MapOptions;
      sources = sources.slice(0, -1);
    }
    const spec = this.#functions.lookup(fn);
    return createMapStream<Awaited<R>>({
      submit: (args, kind, taskOptions) => {
        const reading = _readBlobs(args); // Blob bytes, read before sending
        return reading
          ? reading.then(() => this._submit(spec, args, kind, taskOptions))
          : this._submit(spec, args, kind, taskOptions);
      },
      slots: () => this.#slots(),
      itemMs: () => this.#itemMs.get(spec.id),
      sources,
      options,
      retries: this.#options.retries ?? 0,
    });
  }

  /**
   * Runs `fn(...args)` once on every worker, after the work in flight when it
   * was called has finished and replacement workers have connected.
   *
   * @param fn The function or module reference.
   * @param args Its arguments.
   * @returns One result per worker.
   *
   * @example
   * ```ts
   * import { Pool } from "@distex/pool";
   * await using pool = new Pool(2);
   * const pids = await pool.runOnAll(() => Deno.pid);
   * console.log(new Set(pids).size); // 2
   * ```
   */
  async runOnAll<A extends unknown[], R>(
    fn: ((...args: A) => R) | TaskFunction<A, R>,
    ...args: A
  ): Promise<Awaited<R>[]> {
    const spec = this.#functions.lookup(fn as TaskFunction);
    this.#checkOpen();
    this.#start();
    await this.#ready.promise;
    await this.#settledBefore();
    for (;;) {
      this.#checkOpen();
      if (this.#workers.length >= this.totalWorkers) break;
      await this.#changed.promise;
    }
    return await Promise.all(
      this.#workers.map((w) =>
        this.#runPinned(w, spec, args) as Promise<Awaited<R>>
      ),
    );
  }

  /**
   * A snapshot of what the pool has done and is doing.
   *
   * @returns Counters since the pool started, and one entry per connected worker.
   *
   * @example
   * ```ts
   * import { Pool } from "@distex/pool";
   * await using pool = new Pool(1);
   * await pool.run(() => 1);
   * console.log(pool.stats().done); // 1
   * ```
   */
  stats(): PoolStats {
    let inFlight = 0;
    for (const w of this.#handles.values()) inFlight += w.load;
    return {
      ...this.#stats,
      inFlight,
      queued: this.#queue.length - this.#queueHead,
      totalWorkers: this.totalWorkers,
      workers: [...this.#handles.values()].map((w) => ({
        id: w.id,
        host: w.group.launcher.host,
        pid: w.pid,
        ready: w.ready,
        inFlight: w.load,
        capacity: w.capacity,
        done: w.done,
        rssBytes: w.rss,
      })),
    };
  }

  /**
   * Stops the pool. By default waits for queued and running tasks; with
   * `{ wait: false }` rejects them with a {@link PoolClosedError}. New work is
   * refused as soon as closing starts. Safe to call more than once.
   *
   * @param options `wait`: drain first (default) or stop now.
   * @returns When every worker process has exited and the socket is removed.
   *
   * @example
   * ```ts
   * import { Pool } from "@distex/pool";
   * const pool = new Pool(1);
   * const result = pool.run(() => 1);
   * await pool.close(); // waits for `result`
   * console.log(await result); // 1
   * ```
   */
  close(options: CloseOptions = {}): Promise<void> {
    if (this.#closing) {
      if (options.wait === false) {
        this.#draining = false;
        this.#failAll();
      }
      return this.#closing;
    }
    const previous = this.#state;
    this.#closing = (async () => {
      if (options.wait === false || previous === "idle") {
        this.#state = "closing";
        this.#notify();
        this.#failAll();
      } else {
        // Tasks queued while the workers start need them up to finish.
        if (previous === "starting" && this.#live.size > 0) {
          await this.#ready.promise.catch(() => {});
        }
        this.#state = "closing";
        this.#notify();
        await this.#drain();
      }
      await this.#shutdown();
      this.#state = "closed";
    })();
    return this.#closing;
  }

  /** Closes the pool (waiting for work in flight); used by `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  // ---- internals -------------------------------------------------------

  #addGroup(launcher: Launcher): void {
    this.#groups.push({
      launcher,
      launch: undefined,
      ids: [],
      failures: 0,
      down: false,
      connected: new Set(),
    });
  }

  #checkOpen(): void {
    if (this.#fatal !== undefined) throw this.#fatal;
    if (
      this.#closing !== undefined || this.#state === "closing" ||
      this.#state === "closed"
    ) {
      throw new PoolClosedError("The pool is closed: no new tasks are taken");
    }
  }

  #notify(): void {
    const changed = this.#changed;
    this.#changed = Promise.withResolvers();
    changed.resolve();
  }

  #slots(): number {
    let capacity = 0;
    for (const w of this.#workers) capacity += w.capacity;
    return capacity || this.#qsize * this.#initialTarget;
  }

  #track(promise: Promise<unknown>): void {
    this.#pending.add(promise);
    promise.finally(() => this.#pending.delete(promise));
  }

  #start(): void {
    if (this.#started || this.#state !== "idle") return;
    this.#started = true;
    this.#state = "starting";
    this.#booting = this.#boot();
    this.#track(this.#booting);
  }

  async #boot(): Promise<void> {
    try {
      this.#dir = await Deno.makeTempDir({ prefix: "distex-" });
      await Deno.chmod(this.#dir, 0o700);
      this.#socketPath = `${this.#dir}/pool.sock`;
      this.#listener = Deno.listen({
        transport: "unix",
        path: this.#socketPath,
      });
      await Deno.chmod(this.#socketPath, 0o600);
    } catch (error) {
      this.#die(
        new Error(
          `Cannot start the pool's socket server: ${
            error instanceof Error ? error.message : error
          }`,
          { cause: error },
        ),
      );
      return;
    }
    if (this.#state !== "starting") return;
    this.#accepting = this.#acceptLoop(this.#listener);
    for (const group of this.#groups) this.#launch(group);
  }

  async #acceptLoop(listener: Deno.Listener): Promise<void> {
    try {
      for await (const conn of listener) {
        this.#track(this.#serve(conn));
      }
    } catch {
      // listener closed
    }
  }

  #launch(group: Group): void {
    const ids: number[] = [];
    for (let i = 0; i < group.launcher.groupSize; i++) {
      ids.push(this.#nextWorkerId++);
    }
    group.ids = ids;
    group.connected = new Set();
    let launch: Launch;
    try {
      launch = group.launcher.launch(ids, {
        socketPath: this.#socketPath!,
        secret: this.#secret,
        accept: (channel) => this.#track(this.#serve(channel)),
      });
    } catch (error) {
      this.#launchFailed(group, error);
      return;
    }
    group.launch = launch;
    const connected = group.connected;
    for (const id of ids) this.#expected.set(id, group);
    let timedOut = false;
    const timer = setTimeout(() => {
      if (group.launch === launch && connected.size < ids.length) {
        timedOut = true;
        launch.kill();
      }
    }, this.#startTimeout);
    this.#track(launch.exited.then((exit) => {
      clearTimeout(timer);
      if (group.launch === launch) group.launch = undefined;
      for (const id of ids) {
        if (this.#expected.get(id) === group) this.#expected.delete(id);
      }
      if (!this.#isRunning()) return;
      if (connected.size < ids.length) {
        // Some workers never connected: a start-up failure.
        this.#launchFailed(
          group,
          launch.failure(exit, timedOut ? this.#startTimeout : undefined),
        );
        return;
      }
      // It worked and went away: start it again (a lost host after a pause).
      if (group.launcher.host !== "local") {
        group.down = true;
        this.dispatchEvent(
          new CustomEvent("hostlost", {
            detail: { host: group.launcher.host, exit },
          }),
        );
        this.#notify();
        this.#relaunch(group);
      } else {
        this.#launch(group);
      }
    }));
  }

  #relaunch(group: Group): void {
    group.failures++;
    const wait = Math.min(100 * 2 ** group.failures, 5_000);
    this.#track(
      delay(wait).then(() => {
        if (this.#isRunning() && !group.launch) this.#launch(group);
      }),
    );
  }

  /** Workers are started, replaced and given retried tasks. */
  #isRunning(): boolean {
    return this.#state === "starting" || this.#state === "running" ||
      this.#draining;
  }

  #launchFailed(group: Group, error: unknown): void {
    if (!this.#wasReady) {
      // Still starting: fail fast instead of retrying forever.
      this.#die(error);
      return;
    }
    this.dispatchEvent(new CustomEvent("error", { detail: error }));
    if (group.launcher.host !== "local" && !group.down) {
      group.down = true;
      this.#notify();
    }
    this.#relaunch(group);
  }

  /** The pool cannot go on: reject everything with `error` and stop workers. */
  #die(error: unknown): void {
    if (this.#fatal !== undefined) return;
    this.#fatal = error;
    this.#ready.reject(error);
    this.#failAll(error);
    for (const group of this.#groups) group.launch?.kill();
    this.#notify();
  }

  async #serve(conn: ByteChannel): Promise<void> {
    this.#connections.add(conn);
    let handle: WorkerHandle | undefined;
    let failure: unknown;
    try {
      const { workerId, pid } = await verifyWorker(conn, this.#secret);
      handle = this.#admit(conn, workerId, pid);
      const h = handle;
      await readFrames(
        conn,
        (message) => this.#onMessage(h, parseWorkerMessage(message)),
        {
          maxFrameBytes: this.#options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES,
        },
      );
    } catch (error) {
      failure = error;
    } finally {
      this.#closeConn(conn);
    }
    if (handle) {
      this.#lose(
        handle,
        failure === undefined
          ? "its connection closed"
          : `it broke the protocol (${
            failure instanceof Error ? failure.message : failure
          })`,
      );
    } else if (failure !== undefined && this.#isRunning()) {
      this.dispatchEvent(
        new CustomEvent("rejected", {
          detail: failure instanceof Error ? failure.message : String(failure),
        }),
      );
    }
  }

  #closeConn(conn: ByteChannel): void {
    if (!this.#connections.delete(conn)) return;
    try {
      conn.close();
    } catch { /* already closed */ }
  }

  /** A worker passed the handshake: welcome it if the pool expects it. */
  #admit(conn: ByteChannel, workerId: number, pid: number): WorkerHandle {
    const group = this.#expected.get(workerId);
    if (!group || this.#handles.has(workerId)) {
      throw new Error(`unexpected worker id ${workerId}`);
    }
    if (!this.#isRunning()) throw new Error("the pool is closing");
    this.#expected.delete(workerId);
    group.connected.add(workerId);
    const handle = new WorkerHandle(
      workerId,
      group,
      conn,
      new FrameWriter(conn, () => this.#closeConn(conn)),
      this.#qsize,
    );
    handle.pid = pid;
    handle.writer.onWritten = () => {
      if (handle.ready) this.#fill(handle);
    };
    this.#handles.set(workerId, handle);
    welcome(handle.writer, { statsMs: STATS_MS });
    if (this.#initSpec) {
      const init = this.#runPinned(
        handle,
        this.#initSpec,
        this.#options.initArgs ?? [],
        true,
      );
      init.then(
        () => this.#activate(handle),
        (error) => {
          if (!handle.lost) this.#die(error);
        },
      );
    } else {
      this.#activate(handle);
    }
    return handle;
  }

  #activate(handle: WorkerHandle): void {
    if (handle.lost || !this.#isRunning()) return;
    handle.ready = true;
    handle.group.failures = 0;
    handle.group.down = false;
    this.#workers.push(handle);
    const replacement = this.#wasReady;
    // Ready once as many workers are up at the same time as were asked for
    // (a worker lost while the pool starts does not count).
    if (!replacement && this.#workers.length >= this.#initialTarget) {
      this.#wasReady = true;
      if (this.#state === "starting") this.#state = "running";
      this.#ready.resolve();
    }
    const detail = {
      workerId: handle.id,
      host: handle.group.launcher.host,
      pid: handle.pid,
      replacement,
    };
    this.dispatchEvent(new CustomEvent("workerstart", { detail }));
    if (replacement) {
      this.dispatchEvent(new CustomEvent("workerreplace", { detail }));
    }
    this.#notify();
    this.#fill(handle);
  }

  #onMessage(w: WorkerHandle, message: WorkerMessage): void {
    if (message[0] === Op.Stats) {
      w.rss = message[1];
      const limit = this.#options.maxMemoryMB;
      if (limit && w.rss > limit * 1024 * 1024 && !w.retiring) {
        this.#retire(
          w,
          `its memory (${
            Math.round(w.rss / 1048576)
          } MiB) passed maxMemoryMB (${limit})`,
        );
      }
      return;
    }
    const taskId = message[1];
    const task = w.inflight.get(taskId);
    if (!task) throw new Error(`result for unknown task ${taskId}`);
    w.inflight.delete(taskId);
    w.load--;
    if (w.suspect === taskId) {
      // It finished the timed-out task after all: back into service.
      w.suspect = undefined;
      if (w.ready && !w.retiring && !w.lost) this.#workers.push(w);
    }
    this.#measure(w, task, message[0] === Op.Result ? message[3] : undefined);
    w.done++;
    if (!task.cancelled) {
      if (message[0] === Op.Result) {
        this.#settle(task, message[2], undefined);
      } else {
        this.#settle(task, undefined, fromErrorRecord(message[2]));
      }
    }
    if (w.retiring) {
      if (w.load === 0) this.#stopWorker(w);
    } else if (w.ready) {
      this.#fill(w);
    }
  }

  /** Takes `w` out of scheduling; it stops once its tasks are done. */
  #retire(w: WorkerHandle, why: string): void {
    w.retiring = why;
    const at = this.#workers.indexOf(w);
    if (at >= 0) this.#workers.splice(at, 1);
    this.#stats.recycled++;
    if (w.load === 0) this.#stopWorker(w);
  }

  /**
   * Ends a worker's process: a local one is killed (its group starts a new
   * one); a remote one has its connection closed (it exits and the host's
   * supervisor starts it again).
   */
  #stopWorker(w: WorkerHandle): void {
    const launch = w.group.launch;
    if (launch && !launch.respawns) launch.kill();
    else {
      // Stuck in sync code, it would never see its connection close.
      if (w.hardKilled) launch?.killWorker(w.id);
      this.#closeConn(w.channel);
    }
  }

  // ---- tasks -----------------------------------------------------------

  /** @internal Queues a task; used by `apply` and `map`. */
  _submit(
    spec: FunctionSpec,
    args: unknown[],
    kind: CallKind,
    options?: TaskOptions,
  ): Promise<unknown> {
    this.#checkOpen();
    this.#start();
    const signal = options?.signal;
    if (signal?.aborted) return Promise.reject(signal.reason);
    const { promise, resolve, reject } = Promise.withResolvers<unknown>();
    const task: Task = {
      id: this.#nextTaskId++,
      spec,
      args,
      kind,
      resolve,
      reject,
      retries: options?.retries ?? this.#options.retries ?? 0,
      exits: undefined,
      worker: undefined,
      pinned: false,
      cancelled: false,
      settled: false,
      cleanup: undefined,
      barriers: undefined,
      sentAt: 0,
    };
    const timeout = options?.timeout;
    if (signal) this.#watch(signal, task);
    if (timeout !== undefined) {
      const timer = setTimeout(
        () => this.#cancel(task, timeoutError("Task", timeout)),
        timeout,
      );
      const unwatch = task.cleanup;
      task.cleanup = () => {
        unwatch?.();
        clearTimeout(timer);
      };
    }
    this.#live.add(task);
    this.#enqueue(task);
    return promise;
  }

  /**
   * Cancels `task` when `signal` aborts. Tasks sharing a signal (a map's)
   * share one listener, added with the first and removed with the last.
   */
  #watch(signal: AbortSignal, task: Task): void {
    let watched = this.#watched.get(signal);
    if (!watched) {
      const tasks = new Set<Task>();
      const onAbort = () => {
        this.#watched.delete(signal);
        for (const t of tasks) this.#cancel(t, signal.reason);
      };
      watched = { tasks, onAbort };
      this.#watched.set(signal, watched);
      signal.addEventListener("abort", onAbort, { once: true });
    }
    const entry = watched;
    entry.tasks.add(task);
    task.cleanup = () => {
      entry.tasks.delete(task);
      if (entry.tasks.size === 0 && this.#watched.get(signal) === entry) {
        this.#watched.delete(signal);
        signal.removeEventListener("abort", entry.onAbort);
      }
    };
  }

  #enqueue(task: Task, front = false): void {
    if (this.#queueHead === this.#queue.length) {
      // Fast path: nothing waits; send straight to a worker with room.
      const index = pickWorker(this.#workers, this.#cursor);
      if (index >= 0) {
        this.#cursor = index + 1;
        this.#send(this.#workers[index]!, task);
        return;
      }
    }
    if (front) {
      if (this.#queueHead > 0) this.#queue[--this.#queueHead] = task;
      else this.#queue.unshift(task);
    } else {
      this.#queue.push(task);
    }
  }

  #dequeue(): Task | undefined {
    while (this.#queueHead < this.#queue.length) {
      const task = this.#queue[this.#queueHead]!;
      this.#queue[this.#queueHead++] = undefined as unknown as Task;
      if (this.#queueHead > 1024 && this.#queueHead * 2 > this.#queue.length) {
        this.#queue = this.#queue.slice(this.#queueHead);
        this.#queueHead = 0;
      }
      if (!task.settled) return task;
    }
    return undefined;
  }

  #dispatch(): void {
    while (this.#queueHead < this.#queue.length) {
      const index = pickWorker(this.#workers, this.#cursor);
      if (index < 0) return;
      this.#cursor = index + 1;
      const task = this.#dequeue();
      if (!task) return;
      this.#send(this.#workers[index]!, task);
    }
  }

  #fill(w: WorkerHandle): void {
    while (
      w.load < w.capacity && !w.congested && !w.retiring &&
      w.suspect === undefined
    ) {
      const task = this.#dequeue();
      if (!task) return;
      this.#send(w, task);
    }
  }

  #send(w: WorkerHandle, task: Task): void {
    const spec = task.spec;
    try {
      if (!w.defined.has(spec.id)) {
        w.writer.send(defineMessage(spec.id, spec));
        w.defined.add(spec.id);
      }
      w.writer.send(callMessage(task.kind, task.id, spec.id, task.args));
    } catch (error) {
      this.#settle(task, undefined, error);
      return;
    }
    task.worker = w;
    w.inflight.set(task.id, task);
    w.load++;
    if (task.pinned) return;
    // The round trip is sampled (every 8th task): the minimum is what counts.
    if (this.#adaptive && (w.sent & 7) === 0) task.sentAt = performance.now();
    const max = this.#options.maxTasksPerWorker;
    if (++w.sent >= (max ?? Infinity) && !w.retiring) {
      // Its last task is on its way: send it no more, stop it when it is done.
      this.#retire(w, `it finished maxTasksPerWorker (${max}) tasks`);
    }
  }

  /**
   * The adaptive depth: enough tasks in flight to cover the round trip with
   * work, and no more. The worker reports how long each task ran; the round
   * trip is the shortest send-to-result time seen. Long tasks stay at 2, so
   * no worker holds a backlog while another idles.
   */
  #measure(w: WorkerHandle, task: Task, workUs: number | undefined): void {
    if (typeof workUs === "number") {
      const items = task.kind === "chunk" || task.kind === "items"
        ? Math.max(1, task.args.length)
        : 1;
      const perItem = workUs / 1000 / items;
      const id = task.spec.id;
      const old = this.#itemMs.get(id);
      this.#itemMs.set(
        id,
        old === undefined ? perItem : (old + perItem) / 2,
      );
    }
    if (!this.#adaptive) return;
    if (task.sentAt > 0) {
      const latency = performance.now() - task.sentAt;
      if (latency < w.minLatencyMs) w.minLatencyMs = latency;
    }
    if (w.minLatencyMs === Infinity) return;
    const work = typeof workUs === "number" ? workUs / 1000 : w.minLatencyMs;
    w.workMs = w.workMs === 0 ? work : w.workMs * 0.9 + work * 0.1;
    const depth = Math.ceil(w.minLatencyMs / Math.max(w.workMs, 1e-3));
    w.capacity = Math.min(MAX_QSIZE, Math.max(DEFAULT_QSIZE, depth));
  }

  #runPinned(
    w: WorkerHandle,
    spec: FunctionSpec,
    args: unknown[],
    init = false,
  ): Promise<unknown> {
    const { promise, resolve, reject } = Promise.withResolvers<unknown>();
    const task: Task = {
      id: this.#nextTaskId++,
      spec,
      args,
      kind: init ? "init" : "call",
      resolve,
      reject,
      retries: 0,
      exits: undefined,
      worker: undefined,
      pinned: true,
      cancelled: false,
      settled: false,
      cleanup: undefined,
      barriers: undefined,
      sentAt: 0,
    };
    this.#live.add(task);
    this.#send(w, task);
    return promise;
  }

  #settle(task: Task, value: unknown, error: unknown): void {
    if (task.settled) return;
    task.settled = true;
    if (task.pinned) {
      // initializer and runOnAll calls are not counted as tasks
    } else if (error === undefined) this.#stats.done++;
    else this.#stats.failed++;
    task.cleanup?.();
    this.#live.delete(task);
    if (task.barriers) {
      for (const b of task.barriers) if (--b.remaining === 0) b.done();
    }
    if (error === undefined) task.resolve(value);
    else task.reject(error);
    if (this.#live.size === 0) this.#notify();
  }

  #cancel(task: Task, reason: unknown): void {
    if (task.settled) return;
    const w = task.worker;
    if (w && w.inflight.get(task.id) === task) {
      task.cancelled = true;
      try {
        w.writer.send(cancelMessage(task.id));
      } catch { /* connection gone */ }
      if (reason instanceof DOMException && reason.name === "TimeoutError") {
        // Hard timeout: the worker gets no new tasks until it drops this one;
        // if it is still busy with it after the grace period, it is killed
        // and replaced, and the tasks it held are sent elsewhere.
        const at = this.#workers.indexOf(w);
        if (at >= 0) this.#workers.splice(at, 1);
        w.suspect = task.id;
        const grace = this.#options.killGrace ?? 1_000;
        const timer = setTimeout(() => {
          this.#timers.delete(timer);
          if (w.suspect === task.id && !w.lost) {
            w.retiring =
              `it was still running a task ${grace} ms after the task's timeout`;
            w.hardKilled = true;
            this.#stopWorker(w);
          }
        }, grace);
        this.#timers.add(timer);
      }
    }
    this.#settle(task, undefined, reason);
  }

  /** Resolves when every task live now has settled. */
  #settledBefore(): Promise<void> {
    if (this.#live.size === 0) return Promise.resolve();
    const { promise, resolve } = Promise.withResolvers<void>();
    const barrier: Barrier = { remaining: this.#live.size, done: resolve };
    for (const task of this.#live) (task.barriers ??= []).push(barrier);
    return promise;
  }

  /**
   * Waits until no task is live. Meanwhile the pool still replaces workers
   * that die and retries their tasks, or a queue left without workers would
   * never drain.
   */
  async #drain(): Promise<void> {
    this.#draining = true;
    try {
      while (
        this.#live.size > 0 && this.#fatal === undefined && this.#draining
      ) {
        await this.#changed.promise;
      }
    } finally {
      this.#draining = false;
    }
  }

  #failAll(error?: unknown): void {
    const reason = error ??
      new PoolClosedError("The pool was closed before the task finished");
    for (const task of [...this.#live]) {
      if (task.worker && !task.settled) {
        this.#cancel(task, reason);
      } else {
        this.#settle(task, undefined, reason);
      }
    }
    this.#queue = [];
    this.#queueHead = 0;
  }

  #lose(w: WorkerHandle, reason: string): void {
    if (w.lost) return;
    w.lost = true;
    w.ready = false;
    this.#handles.delete(w.id);
    const at = this.#workers.indexOf(w);
    if (at >= 0) this.#workers.splice(at, 1);
    const tasks = [...w.inflight.values()];
    w.inflight.clear();
    w.load = 0;
    const group = w.group;
    const launch = group.launch;
    this.#track((async () => {
      // Give the process a moment to exit so the error can say how it ended.
      let exit: { code?: number | undefined; signal?: string | undefined } = {};
      if (launch && !launch.respawns) {
        const timer = Promise.withResolvers<undefined>();
        const id = setTimeout(() => timer.resolve(undefined), 1_000);
        const done = await Promise.race([launch.exited, timer.promise]);
        clearTimeout(id);
        if (done) exit = done;
        else launch.kill();
      }
      const info: WorkerExit = {
        workerId: w.id,
        host: group.launcher.host,
        code: exit.code,
        signal: exit.signal,
        stderr: launch?.stderrTail(),
        reason: w.retiring ? `retired: ${w.retiring}` : reason,
      };
      if (this.#state === "closed") return;
      for (const task of tasks) {
        if (task.settled || task.cancelled) continue;
        task.worker = undefined;
        if (w.hardKilled && this.#isRunning()) {
          // Held up behind a task that timed out: not its fault, resend.
          this.#stats.retried++;
          this.#enqueue(task, true);
          continue;
        }
        (task.exits ??= []).push(info);
        const poisoned =
          task.exits.length >= (this.#options.poisonThreshold ?? 3);
        if (
          !task.pinned && task.retries > 0 && !poisoned && this.#isRunning()
        ) {
          task.retries--;
          this.#stats.retried++;
          this.#enqueue(task, true);
        } else {
          this.#stats.lost++;
          this.#settle(
            task,
            undefined,
            this.#fatal ?? new WorkerLostError(task.exits),
          );
        }
      }
      this.dispatchEvent(new CustomEvent("workerexit", { detail: info }));
      this.#dispatch();
      this.#notify();
      if (launch?.respawns && group.launch === launch && this.#isRunning()) {
        // The host's supervisor starts this worker again under the same id.
        this.#expected.set(w.id, group);
      }
    })());
  }

  async #shutdown(): Promise<void> {
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    this.#ready.reject(
      this.#fatal ??
        new PoolClosedError("The pool was closed before it was ready"),
    );
    await this.#booting;
    this.#listener?.close();
    await this.#accepting;
    const launches = this.#groups.map((g) => g.launch).filter((l) =>
      l !== undefined
    );
    await Promise.all(launches.map((l) => l.stop()));
    // Workers end on the closed lifeline and close their connections
    // themselves; closing those first would look like a protocol error, and a
    // remote supervisor would restart workers that lost it before its stdin.
    await Promise.all(launches.map(async (l) => {
      const timer = setTimeout(() => l.kill(), 2_000);
      await l.exited;
      clearTimeout(timer);
    }));
    for (const conn of [...this.#connections]) this.#closeConn(conn);
    while (this.#pending.size > 0) {
      await Promise.allSettled([...this.#pending]);
    }
    if (this.#dir) {
      await Deno.remove(this.#dir, { recursive: true }).catch(() => {});
    }
  }
}
