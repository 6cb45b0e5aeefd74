/**
 * The pool's facade: the public methods and their argument checks
 * (`options.ts`); the work goes to the pool's parts (`pool_parts.ts`) through
 * `pool_call.ts`, `pool_map.ts` and `pool_close.ts`.
 *
 * @module
 */
import type { PoolEventListener, PoolEventMap } from "./events.ts";
import type { TaskFunction } from "./function_ref.ts";
import type { MapOptions, MapOutcome } from "./map_stream.ts";
import {
  type CloseOptions,
  type PoolOptions,
  splitMapOptions,
  type TaskOptions,
  validateCloseOptions,
  validatePoolOptions,
  validateTaskOptions,
} from "./options.ts";
import { call, callOnAll } from "./pool_call.ts";
import { closer } from "./pool_close.ts";
import { mapOnPool, type MapSource, transformPair } from "./pool_map.ts";
import { assemble, failPool, type PoolParts } from "./pool_parts.ts";
import type { PoolStats } from "./stats.ts";

/**
 * An async process pool: runs functions on local worker processes and on
 * workers on other machines reached by SSH.
 *
 * The pool is an `EventTarget`: workers starting, exiting and being
 * replaced, hosts lost, start-up errors after `ready`, refused connections and
 * captured task output arrive as `CustomEvent`s whose names and `detail`
 * types {@link PoolEventMap} lists; `addEventListener` is typed by it.
 *
 * @example Squares on two local workers
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
  #parts: PoolParts;
  #close: (force: boolean) => Promise<void>;

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
    this.#parts = assemble(validatePoolOptions(options), {
      emit: (type, detail) =>
        this.dispatchEvent(new CustomEvent(type, { detail })),
      open: () => this.#open(),
    });
    this.#close = closer(this.#parts);
    if (!this.#parts.options.lazy) this.#start();
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
    return this.#parts.life.ready;
  }

  /**
   * The number of workers in the pool: all configured workers, less those on
   * hosts that are currently lost.
   */
  get totalWorkers(): number {
    return this.#parts.fleet.totalWorkers;
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
   * `timeout` counts the task's time on a worker, not its wait in the pool's
   * queue. In the task, `distex.signal` (`distex` from `@distex/pool`; read
   * before its first `await`) is its `AbortSignal`: it aborts when the task
   * is cancelled, so a long task can stop cooperatively. An abort or timeout rejects at once; a
   * queued task is removed, a running one is told to drop its result (sync
   * code in the worker runs to its end).
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
      validateTaskOptions(options);
      if (!Array.isArray(args)) {
        throw new TypeError("Pool.apply() takes its arguments as an array");
      }
      const spec = this.#parts.functions.lookup(fn as TaskFunction);
      return call(this.#parts, spec, args, options) as Promise<Awaited<R>>;
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * `map` with `outcomes: true` in its options: yields one
   * {@link MapOutcome} per item (`{ index, status, value | reason }`), so a
   * failing item does not end the map.
   *
   * @param fn The function or module reference.
   * @param args The sources, then the options with `outcomes: true`.
   * @returns One outcome per item, in input order unless `ordered: false`.
   *
   * @example Go on past failing items
   * ```ts
   * import { Pool } from "@distex/pool";
   * await using pool = new Pool(2);
   * const inverse = (x: number) => {
   *   if (x === 0) throw new RangeError("no inverse of 0");
   *   return 1 / x;
   * };
   * for await (const o of pool.map(inverse, [1, 0, 4], { outcomes: true })) {
   *   console.log(o.index, o.status === "fulfilled" ? o.value : o.reason);
   * } // 0 1, 1 RangeError: no inverse of 0, 2 0.25
   * ```
   */
  map<T, R>(
    fn: TaskFunction<[T], R>,
    source: MapSource<T>,
    options: MapOptions & { outcomes: true },
  ): ReadableStream<MapOutcome<Awaited<R>>>;
  /** `map()` with `outcomes: true` and `star`. */
  map<A extends unknown[], R>(
    fn: TaskFunction<A, R>,
    source: MapSource<A>,
    options: MapOptions & { outcomes: true; star: true },
  ): ReadableStream<MapOutcome<Awaited<R>>>;
  /** `map()` with `outcomes: true` over two sources. */
  map<T1, T2, R>(
    fn: TaskFunction<[T1, T2], R>,
    source1: MapSource<T1>,
    source2: MapSource<T2>,
    options: MapOptions & { outcomes: true },
  ): ReadableStream<MapOutcome<Awaited<R>>>;
  /** `map()` with `outcomes: true` over three sources. */
  map<T1, T2, T3, R>(
    fn: TaskFunction<[T1, T2, T3], R>,
    source1: MapSource<T1>,
    source2: MapSource<T2>,
    source3: MapSource<T3>,
    options: MapOptions & { outcomes: true },
  ): ReadableStream<MapOutcome<Awaited<R>>>;
  /** `map()` with `outcomes: true` over four or more sources (not type checked). */
  // deno-lint-ignore no-explicit-any
  map<R = any>(
    // deno-lint-ignore no-explicit-any
    fn: TaskFunction<any[], R>,
    source1: MapSource<unknown>,
    source2: MapSource<unknown>,
    source3: MapSource<unknown>,
    source4: MapSource<unknown>,
    ...more: (MapSource<unknown> | MapOptions & { outcomes: true })[]
  ): ReadableStream<MapOutcome<Awaited<R>>>;
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
  map<A extends unknown[], R>(
    fn: TaskFunction<A, R>,
    source: MapSource<A>,
    options: MapOptions & { star: true },
  ): ReadableStream<Awaited<R>>;
  /** `map()` over one source: each item is `fn`'s one argument. */
  map<T, R>(
    fn: TaskFunction<[T], R>,
    source: MapSource<T>,
    options?: MapOptions,
  ): ReadableStream<Awaited<R>>;
  /** `map()` over two sources, zipped: `fn(a, b)` per pair. */
  map<T1, T2, R>(
    fn: TaskFunction<[T1, T2], R>,
    source1: MapSource<T1>,
    source2: MapSource<T2>,
    options?: MapOptions,
  ): ReadableStream<Awaited<R>>;
  /** `map()` over three sources, zipped. */
  map<T1, T2, T3, R>(
    fn: TaskFunction<[T1, T2, T3], R>,
    source1: MapSource<T1>,
    source2: MapSource<T2>,
    source3: MapSource<T3>,
    options?: MapOptions,
  ): ReadableStream<Awaited<R>>;
  /** `map()` over four sources, zipped. */
  map<T1, T2, T3, T4, R>(
    fn: TaskFunction<[T1, T2, T3, T4], R>,
    source1: MapSource<T1>,
    source2: MapSource<T2>,
    source3: MapSource<T3>,
    source4: MapSource<T4>,
    options?: MapOptions,
  ): ReadableStream<Awaited<R>>;
  /** `map()` over five or more sources (not type checked past four). */
  map<R>(
    // deno-lint-ignore no-explicit-any
    fn: TaskFunction<any[], R>,
    source1: MapSource<unknown>,
    source2: MapSource<unknown>,
    source3: MapSource<unknown>,
    source4: MapSource<unknown>,
    source5: MapSource<unknown>,
    ...more: (MapSource<unknown> | MapOptions)[]
  ): ReadableStream<Awaited<R>>;
  map(
    fn: TaskFunction,
    ...sources: unknown[]
  ): ReadableStream<unknown> {
    const options = splitMapOptions(sources);
    const spec = this.#parts.functions.lookup(fn);
    return mapOnPool(this.#parts, spec, sources, options);
  }

  /**
   * The stream form of {@link Pool.prototype.map}: a readable/writable pair
   * for `pipeThrough`. Items written to it are mapped on the workers and come
   * out of its readable side (in order unless `ordered: false`), with the
   * same flow control as `map()`: a slow reader stalls the writer.
   *
   * @param fn The function or module reference, called with each item (or,
   * with `star: true`, with each item spread into its arguments).
   * @param options {@link MapOptions}.
   * @returns A `{ writable, readable }` pair.
   *
   * @example Doubling a stream of numbers
   * ```ts
   * import { Pool } from "@distex/pool";
   * await using pool = new Pool(2);
   * const doubled = ReadableStream.from([1, 2, 3])
   *   .pipeThrough(pool.transform((x: number) => x * 2));
   * console.log(await Array.fromAsync(doubled)); // [2, 4, 6]
   * ```
   */
  transform<A extends unknown[], R>(
    fn: TaskFunction<A, R>,
    options: MapOptions & { star: true },
  ): ReadableWritablePair<Awaited<R>, A>;
  /** `transform()` over single items. */
  transform<T, R>(
    fn: TaskFunction<[T], R>,
    options?: MapOptions,
  ): ReadableWritablePair<Awaited<R>, T>;
  transform(
    fn: TaskFunction,
    options: MapOptions = {},
  ): ReadableWritablePair<unknown, unknown> {
    return transformPair((input) => this.map(fn, input, options), options);
  }

  /**
   * Adds a listener for one of the pool's events; `e.detail` is typed by the
   * event's name ({@link PoolEventMap}).
   *
   * @param type The event name: `workerstart`, `workerreplace`, `workerexit`,
   * `hostlost`, `error` or `rejected`.
   * @param listener A function or an object with `handleEvent`.
   * @param options As for `EventTarget.addEventListener`.
   *
   * @example
   * ```ts
   * import { Pool } from "@distex/pool";
   * await using pool = new Pool(1);
   * pool.addEventListener("workerexit", (e) => console.log(e.detail.reason));
   * await pool.run(() => 1);
   * ```
   */
  override addEventListener<K extends keyof PoolEventMap>(
    type: K,
    listener: PoolEventListener<K> | null,
    options?: boolean | AddEventListenerOptions,
  ): void {
    super.addEventListener(type, listener as EventListener, options);
  }

  /**
   * Removes a listener added with {@link Pool.prototype.addEventListener}.
   *
   * @param type The event name.
   * @param listener The listener that was added.
   * @param options As for `EventTarget.removeEventListener`.
   *
   * @example
   * ```ts
   * import { Pool } from "@distex/pool";
   * await using pool = new Pool(1);
   * const onExit = (e: CustomEvent) => console.log(e.detail);
   * pool.addEventListener("workerexit", onExit);
   * pool.removeEventListener("workerexit", onExit);
   * ```
   */
  override removeEventListener<K extends keyof PoolEventMap>(
    type: K,
    listener: PoolEventListener<K> | null,
    options?: boolean | EventListenerOptions,
  ): void {
    super.removeEventListener(type, listener as EventListener, options);
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
    const spec = this.#parts.functions.lookup(fn as TaskFunction);
    return await callOnAll(this.#parts, spec, args) as Awaited<R>[];
  }

  /**
   * Resolves once no task waits for a worker (all are running or done): the
   * moment to submit more when the pool option `maxQueue` bounds the queue.
   *
   * @returns A promise that resolves when the queue is empty.
   *
   * @example Submitting in step with the workers
   * ```ts
   * import { Pool } from "@distex/pool";
   * await using pool = new Pool({ workers: 1, maxQueue: 10 });
   * const results: Promise<number>[] = [];
   * for (let i = 0; i < 100; i++) {
   *   if (pool.stats().queued >= 10) await pool.drained();
   *   results.push(pool.run((x: number) => x * 2, i));
   * }
   * console.log((await Promise.all(results)).length); // 100
   * ```
   */
  drained(): Promise<void> {
    return this.#parts.dispatcher.drained();
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
    return {
      ...this.#parts.dispatcher.stats(),
      totalWorkers: this.totalWorkers,
    };
  }

  /**
   * Stops the pool. By default waits for queued and running tasks, and for
   * maps that have started (been read) until they end or are cancelled: a
   * map keeps its pool's workers to its end (cancel a map you stop reading,
   * or close() waits for it). With `{ wait: false }` rejects them all with a
   * {@link PoolClosedError}. New work is refused as soon as closing starts;
   * a map first read after that fails with a `PoolClosedError` saying so.
   * Safe to call more than once. A pool that is never closed does not keep
   * the program alive while it is idle (nothing queued, running or mapping);
   * its workers end with the program.
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
    try {
      validateCloseOptions(options);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#close(options.wait === false);
  }

  /** Closes the pool (waiting for work in flight); used by `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  // ---- internals -------------------------------------------------------

  /** Refuses new work once closing, starts a lazy pool, holds the program. */
  #open(): void {
    this.#parts.life.checkOpen();
    this.#start();
    this.#parts.keepAlive.hold();
  }

  #start(): void {
    if (!this.#parts.life.start()) return;
    this.#parts.fleet.start().catch((error) => failPool(this.#parts, error));
  }
}
