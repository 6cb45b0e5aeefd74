/**
 * The options a pool, a task and `close()` take, and their validation (done
 * once, at the facade).
 *
 * @module
 */
import { didYouMean } from "./_did_you_mean.ts";
import type { TaskFunction } from "./function_ref.ts";
import type { MapOptions } from "./map_stream.ts";
import type { SshOptions } from "./ssh_launcher.ts";
import type { TlsOptions } from "./serve.ts";
import { type HostEntry, type HostSpec, parseHostSpec } from "./host_spec.ts";

/**
 * Every default in one place: what an option is when it is not given.
 * (`workers` defaults to one per CPU without hosts; `qsize` to the adaptive
 * depth, see `depth.ts`.)
 */
export const DEFAULTS = {
  retries: 0,
  poisonThreshold: 3,
  killGrace: 1_000,
  startTimeout: 30_000,
  initTimeout: 30_000,
  maxFrameBytes: 1 << 30,
  /** How often workers report their memory use (ms). */
  statsMs: 1_000,
} as const;

/** Options of {@link Pool}. */
export interface PoolOptions {
  /**
   * Local workers to start.
   * @default {navigator.hardwareConcurrency} one per CPU when no `hosts` are given, else 0
   */
  workers?: number | undefined;
  /**
   * Remote hosts: `ssh://[user@]host[:port]/N` (SSH), `tls://host[:port]/N`
   * or `host[:port]/N` (a `cli.ts serve` spawning server), or
   * `{ command: [...], workers: N, name? }` (any command that gives a pipe:
   * `srun`, `kubectl exec -i`, `docker exec -i`, …).
   */
  hosts?: HostEntry[] | undefined;
  /**
   * Most tasks in flight on one worker. By default the pool chooses: deep
   * enough to hide the round trip for tiny tasks, shallow for long ones.
   */
  qsize?: number | undefined;
  /**
   * What tasks' relative specifiers are resolved against: `import("./x.ts")`
   * in task code, `import.meta` there, and `{ module: "./x.ts" }`. By
   * default the module that called the pool method (found from the call's
   * stack, once per function value), or the current directory when the
   * library itself called (the CLI). A URL, or a path relative to the
   * current directory; end a directory with `/`.
   */
  base?: string | URL | undefined;
  /** Runs on every worker (also replacements) before it gets tasks. */
  initializer?: TaskFunction | undefined;
  /**
   * Runs on a worker before it is stopped: when it is retired
   * (`maxTasksPerWorker`, `maxMemoryMB`) and, for each worker, when the pool
   * closes gracefully (`close()`, `await using`); waited for up to 10 s.
   * Not run by `close({ wait: false })`, nor on a worker that died or was
   * killed for a timeout. What it throws is reported as an `error` event.
   */
  teardown?: TaskFunction | undefined;
  /**
   * How long (ms) the initializer may take on one worker. Past it the pool
   * fails (`ready` and {@link Pool.create} reject with a `TimeoutError`
   * naming the worker) and its workers are stopped.
   * @default {30000}
   */
  initTimeout?: number | undefined;
  /**
   * Arguments for `initializer`.
   * @default {[]}
   */
  initArgs?: unknown[] | undefined;
  /**
   * Start workers on first use instead of at once.
   * @default {false}
   */
  lazy?: boolean | undefined;
  /**
   * How many times a task whose worker died is sent again elsewhere.
   * @default {0}
   */
  retries?: number | undefined;
  /** SSH settings for `ssh://` hosts. */
  ssh?: SshOptions | undefined;
  /** Token and certificate for `tls://` (spawning server) hosts. */
  tls?: TlsOptions | undefined;
  /**
   * Deno permission flags for local workers instead of `-A`, e.g.
   * `["--allow-read=/data"]`. The worker can always reach its socket.
   */
  permissions?: string[] | undefined;
  /**
   * Where what tasks write to stdout goes. `"stderr"`: to the owner's
   * stderr, line by line, prefixed with `[worker N]` when stderr is not a
   * terminal; never to the owner's stdout. `"capture"`: each line is
   * dispatched as a `stdout` event (`detail`: `{ workerId, host, line }`)
   * and printed nowhere. Remote workers' stdout always goes to the owner's
   * stderr (through their host's connection), prefixed the same way.
   * @default {"stderr"}
   */
  stdout?: "stderr" | "capture" | undefined;
  /**
   * Environment variables for local workers, on top of the pool's own
   * environment (which they inherit). Remote workers get their host's
   * environment. With `permissions`, a task reads them only with
   * `--allow-env`. Local workers also get a `GLIBC_TUNABLES` with malloc
   * settings that let them reuse the memory of large byte arrays they
   * received (the pool's own `GLIBC_TUNABLES`, where it may read it, comes
   * after them and wins); a `GLIBC_TUNABLES` given here replaces them.
   */
  env?: Record<string, string> | undefined;
  /** Extra `deno run` flags for local workers, e.g. `["--v8-flags=--max-old-space-size=512"]`. */
  denoArgs?: string[] | undefined;
  /**
   * Retire a worker after it finished this many tasks (a fresh one takes its
   * place, initializer first). Bounds leaks in task code.
   */
  maxTasksPerWorker?: number | undefined;
  /**
   * Memory limit per worker in MiB: local workers get it as V8's old-space
   * limit, and a watchdog thread ends a local worker whose resident memory
   * (ArrayBuffers included) passes it, within about 100 ms and also while a
   * task runs (that task fails with a {@link WorkerLostError} naming the
   * limit). Other workers past it are retired after their current tasks.
   */
  maxMemoryMB?: number | undefined;
  /**
   * After a task's `timeout` expires, how long (ms) its worker may keep
   * running it before the worker is killed and replaced, so a sync busy loop
   * cannot hold a slot forever. The other tasks that worker held go to
   * another worker or to its replacement (not counted as retries of theirs).
   * @default {1000}
   */
  killGrace?: number | undefined;
  /**
   * A task during which this many workers died is not retried again, even
   * with retries left: it fails with a {@link WorkerLostError} listing each
   * death (poison-task protection).
   * @default {3}
   */
  poisonThreshold?: number | undefined;
  /**
   * The script local workers run (a URL or path): for custom worker builds,
   * and for tests that need a misbehaving worker. It is started as
   * `deno run <flags> <workerUrl> --unix <socket> --id <n>` (then
   * `--max-memory-mb <n>` with `maxMemoryMB`) with the secret on
   * stdin, like this package's `worker.ts` (the default).
   */
  workerUrl?: string | undefined;
  /**
   * How long (ms) a launch may take until all its workers have connected;
   * then it is killed and counts as failed (for a host: a `HostError`).
   * @default {30000}
   */
  startTimeout?: number | undefined;
  /**
   * Largest frame accepted from a worker, in bytes.
   * @default {1073741824}
   */
  maxFrameBytes?: number | undefined;
  /**
   * The most tasks that may wait for a worker: past it `run()`, `submit()`
   * and `apply()` reject with a {@link QueueFullError} (await
   * `pool.drained()` and submit again). Map tasks count towards it, but a map
   * is bounded by its own budget and never rejected. Unbounded by default.
   * @default {Infinity}
   */
  maxQueue?: number | undefined;
}

/** Per-task options, for {@link Pool.prototype.apply}. */
export interface TaskOptions {
  /** Aborting rejects the task with `signal.reason` and drops its result. */
  signal?: AbortSignal | undefined;
  /**
   * Milliseconds the task may run on a worker before it rejects with a
   * `TimeoutError`. Counted from when it is handed to a worker (each time, if
   * it is sent again), not while it waits in the pool's queue; a task held up
   * behind another task's timeout is sent elsewhere instead of failing. For
   * a deadline that includes the queue, pass `signal: AbortSignal.timeout(ms)`.
   */
  timeout?: number | undefined;
  /** How many times to resend the task if its worker dies. */
  retries?: number | undefined;
}

/** Options of {@link Pool.prototype.close}. */
export interface CloseOptions {
  /**
   * `true`: finish queued and running tasks first. `false`: reject them with
   * a {@link PoolClosedError} and stop the workers now.
   * @default {true}
   */
  wait?: boolean | undefined;
}

// ---- validation: one message style for every option ------------------------

/** Who takes the options, as messages name it. */
type Where = "Pool" | "Pool.apply()" | "Pool.map()" | "Pool.close()";

/** Every option name of each kind (a missing or extra name fails to compile). */
const NAMES = {
  Pool: names<PoolOptions>({
    workers: 1,
    hosts: 1,
    qsize: 1,
    base: 1,
    initializer: 1,
    initArgs: 1,
    initTimeout: 1,
    teardown: 1,
    lazy: 1,
    retries: 1,
    ssh: 1,
    tls: 1,
    permissions: 1,
    denoArgs: 1,
    env: 1,
    stdout: 1,
    maxTasksPerWorker: 1,
    maxMemoryMB: 1,
    killGrace: 1,
    poisonThreshold: 1,
    workerUrl: 1,
    maxFrameBytes: 1,
    startTimeout: 1,
    maxQueue: 1,
  }),
  "Pool.apply()": names<TaskOptions>({ signal: 1, timeout: 1, retries: 1 }),
  "Pool.map()": names<MapOptions>({
    chunkSize: 1,
    ordered: 1,
    star: 1,
    timeout: 1,
    signal: 1,
    retries: 1,
    maxItemsInFlight: 1,
    maxBytesInFlight: 1,
    itemTimeout: 1,
    outcomes: 1,
  }),
  "Pool.close()": names<CloseOptions>({ wait: 1 }),
};

function names<T>(all: Record<keyof T, 1>): readonly string[] {
  return Object.keys(all);
}

function show(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "bigint") return `${value}n`;
  if (value === null || typeof value !== "object") return String(value);
  return Array.isArray(value) ? "an array" : "an object";
}

function invalid(
  where: Where,
  name: string,
  must: string,
  value: unknown,
): string {
  return `${where} option '${name}' must be ${must}, got ${show(value)}`;
}

/** Refuses a non-object and unknown option names, suggesting the right one. */
function checkObject(where: Where, options: unknown): void {
  if (
    typeof options !== "object" || options === null || Array.isArray(options)
  ) {
    throw new TypeError(
      `${where} options must be an object, got ${show(options)}`,
    );
  }
  const known = NAMES[where];
  for (const key of Object.keys(options)) {
    if (known.includes(key)) continue;
    const near = didYouMean(key, known);
    throw new TypeError(
      `Unknown ${where} option '${key}'${
        near ? ` (did you mean '${near}'?)` : ""
      }; the options are ${known.join(", ")}`,
    );
  }
}

/**
 * An optional integer option at least `min` (`Infinity` allowed with
 * `infinite`).
 */
function checkInteger(
  where: Where,
  name: string,
  value: unknown,
  min: number,
  infinite = false,
): number | undefined {
  if (value === undefined) return undefined;
  const must = `an integer >= ${min}${infinite ? " (or Infinity)" : ""}`;
  if (typeof value !== "number") {
    throw new TypeError(invalid(where, name, must, value));
  }
  if (
    !(Number.isInteger(value) || (infinite && value === Infinity)) ||
    value < min
  ) {
    throw new RangeError(invalid(where, name, must, value));
  }
  return value;
}

function checkMs(where: Where, name: string, value: unknown): void {
  if (value === undefined) return;
  const must = "a finite number of milliseconds >= 0";
  if (typeof value !== "number") {
    throw new TypeError(invalid(where, name, must, value));
  }
  if (!(value >= 0) || !Number.isFinite(value)) {
    throw new RangeError(invalid(where, name, must, value));
  }
}

function checkBoolean(where: Where, name: string, value: unknown): void {
  if (value !== undefined && typeof value !== "boolean") {
    throw new TypeError(invalid(where, name, "true or false", value));
  }
}

function checkSignal(where: Where, value: unknown): void {
  if (value !== undefined && !(value instanceof AbortSignal)) {
    throw new TypeError(invalid(where, "signal", "an AbortSignal", value));
  }
}

function checkStrings(where: Where, name: string, value: unknown): void {
  if (
    value !== undefined &&
    (!Array.isArray(value) || value.some((v) => typeof v !== "string"))
  ) {
    throw new TypeError(invalid(where, name, "an array of strings", value));
  }
}

/**
 * Checks the options of `Pool.apply()`.
 * @throws {TypeError} for unknown names and values of the wrong type.
 * @throws {RangeError} for values out of range.
 */
export function validateTaskOptions(options: unknown): void {
  if (options === undefined) return;
  const where = "Pool.apply()";
  checkObject(where, options);
  const { timeout, retries, signal } = options as TaskOptions;
  checkMs(where, "timeout", timeout);
  checkInteger(where, "retries", retries, 0);
  checkSignal(where, signal);
}

/**
 * Checks the options of `Pool.map()` (the map engine's own, see
 * `map_stream.ts`).
 * @throws {TypeError} for unknown names and values of the wrong type.
 * @throws {RangeError} for values out of range.
 */
export function validateMapOptions(options: unknown): void {
  const where = "Pool.map()";
  checkObject(where, options);
  const o = options as MapOptions;
  checkInteger(where, "chunkSize", o.chunkSize, 1);
  checkBoolean(where, "ordered", o.ordered);
  checkBoolean(where, "star", o.star);
  checkMs(where, "timeout", o.timeout);
  checkMs(where, "itemTimeout", o.itemTimeout);
  checkBoolean(where, "outcomes", o.outcomes);
  checkSignal(where, o.signal);
  checkInteger(where, "retries", o.retries, 0);
  checkInteger(where, "maxItemsInFlight", o.maxItemsInFlight, 1, true);
  checkInteger(where, "maxBytesInFlight", o.maxBytesInFlight, 1, true);
}

/**
 * Takes `Pool.map()`'s options off the end of its arguments, if the last one
 * is an options object (the one argument that is not iterable), and checks
 * them.
 * @param sources The arguments after the function; the options are removed.
 * @returns The options (`{}` when none were given).
 * @throws {TypeError} for unknown names and values of the wrong type.
 * @throws {RangeError} for values out of range.
 */
export function splitMapOptions(sources: unknown[]): MapOptions {
  const last = sources[sources.length - 1];
  if (
    last === null || typeof last !== "object" || Symbol.iterator in last ||
    Symbol.asyncIterator in last || last instanceof ReadableStream
  ) {
    return {};
  }
  sources.pop();
  validateMapOptions(last);
  return last as MapOptions;
}

/**
 * Checks the options of `Pool.close()`.
 * @throws {TypeError} for unknown names and values of the wrong type.
 */
export function validateCloseOptions(options: unknown): void {
  if (options === undefined) return;
  checkObject("Pool.close()", options);
  checkBoolean("Pool.close()", "wait", (options as CloseOptions).wait);
}

/** Pool options after validation, with what the pool derives from them. */
export interface ValidatedOptions {
  /** The options object (the caller's, or `{ workers: n }`). */
  opts: PoolOptions;
  /** The parsed host specs. */
  specs: HostSpec[];
  /** Local workers to start. */
  workers: number;
  /** The fixed queue depth, or undefined for the adaptive one. */
  qsize: number | undefined;
}

/**
 * Checks everything about the pool's options that can be checked without
 * starting anything.
 * @throws {TypeError} for options of the wrong type, unknown names, bad host specs.
 * @throws {RangeError} for counts out of range.
 */
export function validatePoolOptions(
  options: number | PoolOptions | undefined,
): ValidatedOptions {
  const opts: PoolOptions = typeof options === "number"
    ? { workers: options }
    : options ?? {};
  if (typeof opts !== "object" || opts === null || Array.isArray(opts)) {
    throw new TypeError(
      `Pool options must be a worker count or an object, got ${typeof options}`,
    );
  }
  const where = "Pool";
  checkObject(where, opts);
  checkBoolean(where, "lazy", opts.lazy);
  if (
    opts.ssh !== undefined &&
    (typeof opts.ssh !== "object" || opts.ssh === null ||
      Array.isArray(opts.ssh))
  ) {
    throw new TypeError(
      "Pool option 'ssh' must be an object like { command, args }",
    );
  }
  const hosts = opts.hosts ?? [];
  if (!Array.isArray(hosts)) {
    throw new TypeError("Pool option 'hosts' must be an array of host specs");
  }
  const specs = hosts.map(parseHostSpec);
  checkTlsOptions(opts.tls, specs);
  const workers = checkInteger(where, "workers", opts.workers, 0) ??
    (specs.length ? 0 : navigator.hardwareConcurrency || 1);
  const qsize = checkInteger(where, "qsize", opts.qsize, 1);
  checkInteger(where, "retries", opts.retries, 0);
  checkInteger(where, "maxFrameBytes", opts.maxFrameBytes, 1024);
  checkInteger(where, "maxTasksPerWorker", opts.maxTasksPerWorker, 1);
  checkInteger(where, "maxMemoryMB", opts.maxMemoryMB, 16);
  checkMs(where, "killGrace", opts.killGrace);
  checkInteger(where, "poisonThreshold", opts.poisonThreshold, 1);
  checkInteger(where, "startTimeout", opts.startTimeout, 1);
  checkInteger(where, "initTimeout", opts.initTimeout, 1);
  checkInteger(where, "maxQueue", opts.maxQueue, 1, true);
  if (
    opts.stdout !== undefined && opts.stdout !== "stderr" &&
    opts.stdout !== "capture"
  ) {
    throw new TypeError(
      invalid(where, "stdout", '"stderr" or "capture"', opts.stdout),
    );
  }
  if (
    opts.env !== undefined &&
    (typeof opts.env !== "object" || opts.env === null ||
      Array.isArray(opts.env) ||
      Object.values(opts.env).some((v) => typeof v !== "string"))
  ) {
    throw new TypeError(
      invalid(
        where,
        "env",
        "an object of strings, e.g. { TZ: 'UTC' }",
        opts.env,
      ),
    );
  }
  if (
    opts.base !== undefined && typeof opts.base !== "string" &&
    !(opts.base instanceof URL)
  ) {
    throw new TypeError(invalid(where, "base", "a URL or a string", opts.base));
  }
  if (opts.initArgs !== undefined && !Array.isArray(opts.initArgs)) {
    throw new TypeError(invalid(where, "initArgs", "an array", opts.initArgs));
  }
  if (opts.initArgs !== undefined && opts.initializer === undefined) {
    throw new TypeError(
      `${where} option 'initArgs' is given without 'initializer': they are ` +
        `the initializer's arguments (add an initializer, or drop initArgs)`,
    );
  }
  checkStrings(where, "permissions", opts.permissions);
  checkStrings(where, "denoArgs", opts.denoArgs);
  if (opts.workerUrl !== undefined && typeof opts.workerUrl !== "string") {
    throw new TypeError(
      invalid(where, "workerUrl", "a string", opts.workerUrl),
    );
  }
  const ssh = opts.ssh;
  if (
    ssh?.args !== undefined &&
    (!Array.isArray(ssh.args) || ssh.args.some((a) => typeof a !== "string"))
  ) {
    throw new TypeError("Pool option 'ssh.args' must be an array of strings");
  }
  if (
    ssh?.command !== undefined &&
    (typeof ssh.command !== "string" || !ssh.command.trim())
  ) {
    throw new TypeError(
      "Pool option 'ssh.command' must be a non-empty command line string",
    );
  }
  if (
    ssh?.link !== undefined && !["auto", "forward", "stdio"].includes(ssh.link)
  ) {
    throw new TypeError(
      `Pool option 'ssh.link' must be "auto", "forward" or "stdio", got ${
        JSON.stringify(ssh.link)
      }`,
    );
  }
  if (workers + specs.reduce((n, s) => n + s.workers, 0) === 0) {
    throw new RangeError(
      "A pool needs at least one worker: set 'workers' to 1 or more, or give 'hosts'",
    );
  }
  return { opts, specs, workers, qsize };
}

function checkTlsOptions(tls: unknown, specs: HostSpec[]): void {
  if (tls !== undefined) {
    if (typeof tls !== "object" || tls === null || Array.isArray(tls)) {
      throw new TypeError(
        "Pool option 'tls' must be an object like { tokenFile, caFile }",
      );
    }
    for (const [key, value] of Object.entries(tls)) {
      if (!["token", "tokenFile", "caFile"].includes(key)) {
        throw new TypeError(
          `Pool option 'tls' has an unknown property '${key}' (known: token, tokenFile, caFile)`,
        );
      }
      if (typeof value !== "string" || !value) {
        throw new TypeError(
          `Pool option 'tls.${key}' must be a non-empty string`,
        );
      }
    }
  }
  const t = tls as TlsOptions | undefined;
  const server = specs.find((s) => s.kind === "tls");
  if (server && t?.token === undefined && t?.tokenFile === undefined) {
    throw new TypeError(
      `Host ${
        JSON.stringify(server.spec)
      } is a spawning server (cli.ts serve): give its token with the pool option ` +
        "tls: { tokenFile: '/path/to/token', caFile: '/path/to/cert.pem' }",
    );
  }
}
