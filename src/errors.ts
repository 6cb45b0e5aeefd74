/**
 * Error classes callers catch, and the encoding of task errors for the wire.
 *
 * @module
 */

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

function describeExit(exit: WorkerExit): string {
  const how = exit.signal
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
    ? `; its last stderr lines:\n  ${exit.stderr.join("\n  ")}`
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
    const quoted = stderr.trim()
      ? `\nssh said:\n  ${stderr.trim().split("\n").slice(-10).join("\n  ")}`
      : "";
    super(`Host ${host}: ${message}${quoted}`, options);
    this.name = "HostError";
    this.host = host;
    this.stderr = stderr;
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
  code?: string | undefined;
  /** Set when the task threw something that is not an Error. */
  thrown?: string | undefined;
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

/** Turns anything a task threw into an {@link ErrorRecord}. */
export function toErrorRecord(error: unknown, depth = 0): ErrorRecord {
  if (error instanceof Error || error instanceof DOMException) {
    const record: ErrorRecord = {
      name: error.name,
      message: error.message,
      stack: error.stack,
    };
    const code = (error as { code?: unknown }).code;
    if (typeof code === "string") record.code = code;
    if (depth < 8 && error.cause !== undefined) {
      record.cause = toErrorRecord(error.cause, depth + 1);
    }
    if (depth < 8 && error instanceof AggregateError) {
      record.errors = error.errors.map((e) => toErrorRecord(e, depth + 1));
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

/**
 * Rebuilds an error from its record: built-in classes come back as
 * themselves, other classes as `Error` with the remote `name`. The stack is the
 * remote one.
 */
export function fromErrorRecord(record: ErrorRecord): Error {
  const options = record.cause ? { cause: fromErrorRecord(record.cause) } : {};
  let error: Error;
  if (record.name === "AggregateError") {
    error = new AggregateError(
      (record.errors ?? []).map(fromErrorRecord),
      record.message,
      options,
    );
  } else if (Object.hasOwn(BUILTIN, record.name)) {
    const Class = BUILTIN[record.name]!;
    error = new (Class as ErrorConstructor)(record.message, options);
  } else if (record.name === "TimeoutError" || record.name === "AbortError") {
    error = new DOMException(record.message, record.name);
    if (record.cause) {
      Object.defineProperty(error, "cause", { value: options.cause });
    }
  } else {
    error = new Error(record.message, options);
    error.name = record.name;
  }
  if (record.stack !== undefined) {
    Object.defineProperty(error, "stack", {
      value: record.stack,
      writable: true,
      configurable: true,
    });
  }
  if (record.code !== undefined) {
    Object.defineProperty(error, "code", {
      value: record.code,
      writable: true,
      configurable: true,
      enumerable: true,
    });
  }
  return error;
}
