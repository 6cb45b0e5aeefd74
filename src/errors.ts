/**
 * Error classes callers catch, and the encoding of task errors for the wire.
 *
 * @module
 */
import { escapeControls } from "./_terminal.ts";
import { encode } from "./_codec.ts";

/** How a worker process ended. */
export interface WorkerExit {
  /** The worker's id within its pool. */
  workerId: number;
  /** Where the worker ran: `"local"` or the host spec's host. */
  host: string;
  /** Exit code, when the process was seen to exit. */
  code?: number | undefined;
  /** The signal that ended the process, when there was one (e.g. `"SIGKILL"`). */
  signal?: string | undefined;
  /** The last lines the worker wrote to stderr. */
  stderr?: string[] | undefined;
  /** Why the pool considers the worker lost (connection closed, …). */
  reason?: string | undefined;
}

/** A worker's own last word that it ran out of memory (launcher.ts, _watchdog.ts). */
const OUT_OF_MEMORY = /^distex(?: worker)?: (ran out of memory .*)$/;

function describeExit(exit: WorkerExit): string {
  const oom = exit.stderr?.findLast((line) => OUT_OF_MEMORY.test(line));
  const how = oom
    ? OUT_OF_MEMORY.exec(oom)![1]
    : exit.signal
    ? `killed by ${exit.signal}`
    : exit.code !== undefined
    ? `exited with code ${exit.code}`
    : exit.reason ?? "lost its connection";
  // Why the pool let it go, when that was more than its connection closing
  // (it broke the protocol, e.g. a result over maxFrameBytes).
  const why = (exit.signal || exit.code !== undefined) && exit.reason &&
      exit.reason !== "its connection closed"
    ? ` after the pool dropped it because ${exit.reason}`
    : "";
  const where = exit.host === "local" ? "" : ` on ${exit.host}`;
  const tail = exit.stderr?.length
    ? `; its last stderr lines:\n  ${escapeControls(exit.stderr.join("\n  "))}`
    : "";
  return `worker ${exit.workerId}${where} ${how}${why}${tail}`;
}

/**
 * A task failed because the worker running it died (exit, signal, out of
 * memory, lost host) before it finished. The pool replaces the worker; pass
 * `retries` to have such tasks sent again elsewhere instead.
 *
 * @example Telling a crash from a task error
 * ```ts
 * import { Pool, WorkerLostError } from "@distex/pool";
 * await using pool = new Pool(1);
 * try {
 *   await pool.run(() => Deno.exit(3));
 * } catch (error) {
 *   if (error instanceof WorkerLostError) console.log(error.exits[0]?.code); // 3
 * }
 * ```
 */
export class WorkerLostError extends Error {
  /** Every worker death this task went through, oldest first. */
  readonly exits: WorkerExit[];

  /**
   * Creates the error from the deaths the task went through.
   *
   * @param exits The deaths, oldest first; the message describes the last.
   * @param options Standard error options.
   */
  constructor(exits: WorkerExit[], options?: ErrorOptions) {
    const last = exits[exits.length - 1];
    const times = exits.length > 1
      ? ` (the task was tried ${exits.length} times; each time its worker died)`
      : "";
    super(
      `Task lost: ${
        last ? describeExit(last) : "its worker died"
      } before the task finished${times}`,
      options,
    );
    this.name = "WorkerLostError";
    this.exits = exits;
  }

  /** The id of the worker that died last. */
  get workerId(): number | undefined {
    return this.exits[this.exits.length - 1]?.workerId;
  }

  /** The host of the worker that died last (`"local"` for local workers). */
  get host(): string | undefined {
    return this.exits[this.exits.length - 1]?.host;
  }

  /** Exit code of the worker that died last, if it exited. */
  get code(): number | undefined {
    return this.exits[this.exits.length - 1]?.code;
  }

  /** Signal that ended the worker that died last, if any. */
  get signal(): string | undefined {
    return this.exits[this.exits.length - 1]?.signal;
  }
}

/**
 * A remote host could not be started or was lost: unreachable, refused key,
 * `deno` missing there, the worker command failing, a refused forward.
 *
 * @example
 * ```ts ignore
 * import { HostError, Pool } from "@distex/pool";
 * try {
 *   await Pool.create({ workers: 0, hosts: ["ssh://nohost/2"] });
 * } catch (error) {
 *   if (error instanceof HostError) console.error(error.host, error.stderr);
 * }
 * ```
 */
export class HostError extends Error {
  /** The host as given in the spec. */
  readonly host: string;
  /** What ssh (or the remote command) printed on stderr. */
  readonly stderr: string;

  /**
   * Creates the error for `host`, quoting what ssh printed.
   *
   * @param host The host that failed.
   * @param message What went wrong and what to do about it.
   * @param stderr ssh's stderr, quoted in the message.
   * @param options Standard error options.
   */
  constructor(
    host: string,
    message: string,
    stderr = "",
    options?: ErrorOptions,
  ) {
    const text = escapeControls(stderr).trim();
    const quoted = text
      ? `\nssh said:\n  ${text.split("\n").slice(-10).join("\n  ")}`
      : "";
    super(`Host ${host}: ${message}${quoted}`, options);
    this.name = "HostError";
    this.host = host;
    this.stderr = stderr;
  }
}

/**
 * Thrown by `run()`, `submit()` and `apply()` when as many tasks wait for a
 * worker as the pool option `maxQueue` allows. Nothing was queued: wait for
 * room with `pool.drained()` and submit again.
 *
 * @example A full queue refuses more
 * ```ts
 * import { Pool, QueueFullError } from "@distex/pool";
 * await using pool = new Pool({ workers: 1, qsize: 1, maxQueue: 1 });
 * await pool.ready;
 * const slow = () => new Promise((r) => setTimeout(r, 100));
 * const busy = [pool.run(slow), pool.run(slow)]; // one runs, one waits
 * const refused = await pool.run(slow).catch((e) => e);
 * console.log(refused instanceof QueueFullError); // true
 * await Promise.all(busy);
 * ```
 */
export class QueueFullError extends Error {
  /** The `maxQueue` that was reached. */
  readonly maxQueue: number;
  /**
   * Creates the error.
   *
   * @param maxQueue The pool's `maxQueue`.
   */
  constructor(maxQueue: number) {
    super(
      `The pool's queue is full (maxQueue: ${maxQueue} tasks wait for a ` +
        `worker): await pool.drained() and submit again, or raise maxQueue`,
    );
    this.name = "QueueFullError";
    this.maxQueue = maxQueue;
  }
}

/** Thrown by calls on a pool that is closing or closed. */
export class PoolClosedError extends Error {
  /**
   * Creates the error.
   *
   * @param message What was refused or cut short.
   * @param options Standard error options.
   */
  constructor(message = "The pool is closed", options?: ErrorOptions) {
    super(message, options);
    this.name = "PoolClosedError";
  }
}

/** A task error as it travels: enough to rebuild it on the other side. */
export type ErrorRecord = {
  name: string;
  message: string;
  stack?: string | undefined;
  cause?: ErrorRecord | undefined;
  errors?: ErrorRecord[] | undefined;
  /** A `code` field (kept for records from older workers; now in `fields`). */
  code?: string | undefined;
  /** Set when the task threw something that is not an Error. */
  thrown?: string | undefined;
  /**
   * The family of the class: `"deno"` for `Deno.errors.*`, `"dom"` for a
   * `DOMException`; absent for the built-ins and everything else.
   */
  kind?: "deno" | "dom" | undefined;
  /** The error's own enumerable fields that can be cloned (`code`, …). */
  fields?: Record<string, unknown> | undefined;
  /** Names of own enumerable fields left out because they cannot be cloned. */
  dropped?: string[] | undefined;
  /** A `cause` that is not an error, as its cloned value (then no `cause`). */
  causeValue?: unknown;
};

const BUILTIN: Record<string, new (message?: string) => Error> = {
  Error,
  TypeError,
  RangeError,
  SyntaxError,
  ReferenceError,
  EvalError,
  URIError,
};

/** Fields an error record carries by name rather than in `fields`. */
const OWN_KEYS = new Set(["name", "message", "stack", "cause", "errors"]);

function describeThrown(value: unknown): string {
  if (typeof value === "string") return value;
  try {
    const json = JSON.stringify(value);
    if (json !== undefined) return json;
  } catch {
    // not JSON: fall through
  }
  return String(value);
}

/** This package's directory (…/src/ → …/), whose frames are trimmed. */
const LIBRARY = new URL("../", import.meta.url).href;
const LIBRARY_FRAME = new RegExp(
  `\\(?${
    escapeRegExp(LIBRARY)
  }(src/[\\w.]+|worker\\.ts|cli\\.ts|mod\\.ts):\\d+:\\d+\\)?$`,
);
/** A frame of task code compiled from source by the library (eval). */
const EVAL_FRAME = new RegExp(
  `\\(eval at [^(]*\\(${
    escapeRegExp(LIBRARY)
  }[^)]*\\), <anonymous>:(\\d+):(\\d+)\\)`,
);

function escapeRegExp(text: string): string {
  return text.replace(/[\\^$.*+?()[\]{}|/]/g, "\\$&");
}

/**
 * Removes the library's own frames (its `src/`, `worker.ts`, the runtime's
 * event-loop frames under them) from a stack, and shows task code compiled
 * from source as `(task source:line:column)` instead of
 * `eval at compileFunction (…)`.
 *
 * @param stack A stack as V8 formats it.
 * @returns The stack without library frames.
 */
export function _trimStack(stack: string): string {
  const lines = stack.split("\n");
  const kept: string[] = [];
  for (const line of lines) {
    if (!/^\s+at /.test(line)) {
      kept.push(line);
      continue;
    }
    if (EVAL_FRAME.test(line)) {
      kept.push(line.replace(EVAL_FRAME, "(task source:$1:$2)"));
      continue;
    }
    if (LIBRARY_FRAME.test(line)) continue;
    // Deno's event-loop plumbing, reached only through the library.
    if (/\(?ext:core\/[\w.]+:\d+:\d+\)?$/.test(line)) continue;
    kept.push(line);
  }
  return kept.join("\n");
}

/** Whether `value` can cross the wire (structured-clone data). */
function cloneable(value: unknown): boolean {
  try {
    encode(value);
    return true;
  } catch {
    return false;
  }
}

/**
 * Turns anything a task threw into an {@link ErrorRecord}: name, message,
 * the stack without library frames, cause, the errors of an
 * `AggregateError`, and the error's own enumerable fields that can be cloned.
 */
export function toErrorRecord(error: unknown, depth = 0): ErrorRecord {
  try {
    return errorRecord(error, depth);
  } catch (failure) {
    // A getter or a proxy that throws: say so rather than lose the task.
    return {
      name: "Error",
      message: `Task threw an error that could not be read (${
        read(() => String(failure), "?")
      })`,
    };
  }
}

/** `get()`, or `otherwise` if it throws. */
function read<T>(get: () => T, otherwise: T): T {
  try {
    return get();
  } catch {
    return otherwise;
  }
}

function errorRecord(error: unknown, depth: number): ErrorRecord {
  if (error instanceof Error || error instanceof DOMException) {
    const stack = read(() => error.stack, undefined);
    const record: ErrorRecord = {
      name: read(() => String(error.name), "Error"),
      message: read(
        () => String(error.message),
        "(its message could not be read)",
      ),
      stack: typeof stack === "string" ? _trimStack(stack) : undefined,
    };
    if (error instanceof DOMException) {
      record.kind = "dom";
    } else if (denoErrorClass(record.name)) {
      if (error instanceof denoErrorClass(record.name)!) record.kind = "deno";
    }
    for (const key of Object.keys(error)) {
      if (OWN_KEYS.has(key)) continue;
      const value = read(
        () => (error as unknown as Record<string, unknown>)[key],
        cloneable, // a function: never cloneable, so it is dropped
      );
      if (cloneable(value)) (record.fields ??= {})[key] = value;
      else (record.dropped ??= []).push(key);
    }
    const cause = read(() => error.cause, undefined);
    if (
      cause !== undefined && !(cause instanceof Error) &&
      !(cause instanceof DOMException) && cloneable(cause)
    ) {
      record.causeValue = cause;
    } else if (depth < 8 && cause !== undefined) {
      record.cause = toErrorRecord(cause, depth + 1);
    }
    if (depth < 8 && error instanceof AggregateError) {
      const errors = read(() => [...error.errors], []);
      record.errors = errors.map((e) => toErrorRecord(e, depth + 1));
    }
    return record;
  }
  const text = describeThrown(error);
  return {
    name: "Error",
    message: `Task threw a non-Error value: ${text}`,
    thrown: text,
  };
}

/** The `Deno.errors` class named `name`, if there is one. */
function denoErrorClass(name: string): ErrorConstructor | undefined {
  const errors = (globalThis as { Deno?: { errors?: object } }).Deno?.errors;
  if (!errors || !Object.hasOwn(errors, name)) return undefined;
  const Class = (errors as Record<string, unknown>)[name];
  return typeof Class === "function" ? Class as ErrorConstructor : undefined;
}

function define(error: object, key: string, value: unknown): void {
  Object.defineProperty(error, key, {
    value,
    writable: true,
    configurable: true,
    enumerable: false,
  });
}

/**
 * Rebuilds an error from its record: built-in classes, `Deno.errors.*` and
 * `DOMException`s come back as themselves (`instanceof` works), others as
 * `Error` with the remote `name`; own fields are restored, the stack is the
 * remote one.
 */
export function fromErrorRecord(record: ErrorRecord): Error {
  const options = record.cause
    ? { cause: fromErrorRecord(record.cause) }
    : "causeValue" in record
    ? { cause: record.causeValue }
    : {};
  let error: Error;
  const DenoClass = record.kind === "deno"
    ? denoErrorClass(record.name)
    : undefined;
  if (record.name === "AggregateError") {
    error = new AggregateError(
      (record.errors ?? []).map(fromErrorRecord),
      record.message,
      options,
    );
  } else if (DenoClass) {
    error = new DenoClass(record.message, options);
  } else if (Object.hasOwn(BUILTIN, record.name) && record.kind !== "dom") {
    const Class = BUILTIN[record.name]!;
    error = new (Class as ErrorConstructor)(record.message, options);
  } else if (
    record.kind === "dom" || record.name === "TimeoutError" ||
    record.name === "AbortError"
  ) {
    error = new DOMException(record.message, record.name);
    if ("cause" in options) define(error, "cause", options.cause);
  } else {
    error = new Error(record.message, options);
    define(error, "name", record.name);
  }
  // Without a remote stack, the stack made here would show only the pool's
  // own frames: show the error's head alone.
  define(error, "stack", record.stack ?? `${record.name}: ${record.message}`);
  const fields = record.fields ??
    (record.code !== undefined ? { code: record.code } : undefined);
  if (fields) {
    for (const key of Object.keys(fields)) {
      if (OWN_KEYS.has(key)) continue;
      Object.defineProperty(error, key, {
        value: fields[key],
        writable: true,
        configurable: true,
        enumerable: true,
      });
    }
  }
  return error;
}

/** A stack captured where the caller submitted a task: see {@link _callerStack}. */
export type CallerStack = { readonly stack?: string };

/**
 * Captures the caller's stack (cheaply: V8 formats it only if a task fails).
 * Call it in the public method the user called, so the frames above it are
 * the user's.
 *
 * @param above The function whose frame and callees are left out.
 * @returns An object whose `stack` is formatted on first use.
 */
export function _callerStack(
  above: (...args: never[]) => unknown,
): CallerStack {
  const holder: { stack?: string } = {};
  Error.captureStackTrace(holder, above);
  return holder;
}

/** The line between the remote stack and the caller's. */
export const CALLER_SECTION = "    --- caller ---";

/**
 * Appends the caller's frames (from {@link _callerStack}) to `error.stack`
 * under a `--- caller ---` line, so a task error shows both where it was
 * thrown in the worker and which `pool.run(...)` line sent the task.
 *
 * @param error The error to extend; left as is when it has a caller section.
 * @param caller What {@link _callerStack} captured at submit time.
 * @returns `error`.
 */
export function _withCallerStack<E>(error: E, caller: CallerStack): E {
  if (!(error instanceof Error || error instanceof DOMException)) return error;
  const own = typeof error.stack === "string"
    ? error.stack
    : `${error.name}: ${error.message}`;
  if (own.includes(`\n${CALLER_SECTION}\n`)) return error;
  const frames = _trimStack(caller.stack ?? "").split("\n").filter((line) =>
    /^\s+at /.test(line)
  );
  if (frames.length === 0) return error;
  define(error, "stack", `${own}\n${CALLER_SECTION}\n${frames.join("\n")}`);
  return error;
}

/**
 * Marks `error` as the failure of item `index` of a map: sets its `itemIndex`
 * field and says so at the end of its message (and its stack's first line).
 *
 * @param error The error a map item failed with.
 * @param index The item's position in the map's input (from 0).
 * @returns `error`.
 */
export function _atItem<E>(error: E, index: number): E {
  if (!(error instanceof Error || error instanceof DOMException)) return error;
  if ((error as { itemIndex?: unknown }).itemIndex !== undefined) return error;
  const note = ` (map item ${index})`;
  const oldHead = `${error.name}: ${error.message}`;
  const stack = error.stack; // V8 formats it on first read: read it first.
  define(error, "message", `${error.message}${note}`);
  Object.defineProperty(error, "itemIndex", {
    value: index,
    writable: true,
    configurable: true,
    enumerable: true,
  });
  if (typeof stack === "string" && stack.startsWith(oldHead)) {
    define(error, "stack", `${oldHead}${note}${stack.slice(oldHead.length)}`);
  }
  return error;
}
