/**
 * The worker side of the protocol: answer the handshake, then define and run
 * tasks as they arrive. Sync tasks run one after another; async tasks run
 * concurrently; every result goes back as soon as it is ready.
 *
 * @module
 */
import { compileFunction } from "./function_ref.ts";
import { toErrorRecord } from "./errors.ts";
import { proof } from "./auth.ts";
import {
  type ByteChannel,
  FrameWriter,
  type Message,
  Op,
  PROTOCOL_VERSION,
  readFrames,
} from "./protocol.ts";

type Fn = (...args: unknown[]) => unknown;

/** Where a worker connects and how it proves who it is. */
export interface WorkerRuntimeOptions {
  /** The connection to the pool. */
  channel: ByteChannel;
  /** The pool's secret. */
  secret: string;
  /** The id the pool gave this worker. */
  workerId: number;
}

const NOT_DEFINED = /^(\S+) is not defined$/;

function selfContainedHint(error: unknown): unknown {
  if (error instanceof ReferenceError) {
    const match = NOT_DEFINED.exec(error.message);
    if (match) {
      const name = match[1];
      error.message =
        `${name} is not defined in the worker: task functions are sent ` +
        `to workers as source text and must be self-contained. Pass '${name}' as an ` +
        `argument, or load it inside the function with await import(...).`;
    }
  }
  return error;
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return value !== null &&
    (typeof value === "object" || typeof value === "function") &&
    typeof (value as { then?: unknown }).then === "function";
}

async function importFunction(module: string, name: string): Promise<Fn> {
  let namespace: Record<string, unknown>;
  try {
    namespace = await import(module);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new TypeError(
      `Cannot import module ${module} in the worker: ${reason}`,
      { cause: error },
    );
  }
  const fn = namespace[name];
  if (typeof fn !== "function") {
    const exports = Object.keys(namespace).filter((k) =>
      typeof namespace[k] === "function"
    );
    throw new TypeError(
      `Module ${module} has no exported function '${name}'` +
        (exports.length
          ? ` (its exported functions: ${exports.join(", ")})`
          : " (it exports no functions)"),
    );
  }
  return fn as Fn;
}

/**
 * Runs the worker protocol over `channel` until the pool closes it or says
 * exit. Resolves when the worker should end.
 *
 * @throws {ProtocolError} when the pool breaks the protocol.
 */
export async function runWorker(options: WorkerRuntimeOptions): Promise<void> {
  const { channel, secret, workerId } = options;
  const functions = new Map<number, Fn | Promise<Fn>>();
  const sourced = new Set<number>();
  const cancelled = new Set<number>();
  let running = 0;
  let exiting = false;
  let authenticated = false;
  let done = Promise.withResolvers<void>();
  let writeFailed = false;
  let statsTimer: number | undefined;
  const writer = new FrameWriter(channel, () => {
    writeFailed = true;
    done.resolve();
  });

  function finishOne(): void {
    running--;
    if (exiting && running === 0) done.resolve();
  }

  function reply(taskId: number, value: unknown, started: number): void {
    const workUs = Math.round((performance.now() - started) * 1000);
    if (cancelled.delete(taskId)) {
      // Drop the value but still report the end: the pool frees the slot.
      writer.send([Op.Result, taskId, undefined, workUs]);
      return;
    }
    try {
      writer.send([Op.Result, taskId, value, workUs]);
    } catch (error) {
      writer.send([Op.Error, taskId, toErrorRecord(error)]);
    }
  }

  function fail(taskId: number, fnId: number, error: unknown): void {
    if (cancelled.delete(taskId)) {
      writer.send([Op.Result, taskId, undefined]);
      return;
    }
    if (sourced.has(fnId)) selfContainedHint(error);
    writer.send([Op.Error, taskId, toErrorRecord(error)]);
  }

  function settle(
    taskId: number,
    fnId: number,
    value: unknown,
    started: number,
  ): void {
    if (isThenable(value)) {
      running++;
      Promise.resolve(value).then(
        (v) => reply(taskId, v, started),
        (e) => fail(taskId, fnId, e),
      ).finally(finishOne);
    } else {
      reply(taskId, value, started);
    }
  }

  function invoke(
    fn: Fn,
    op: number,
    taskId: number,
    fnId: number,
    args: unknown,
  ): void {
    const started = performance.now();
    try {
      if (op === Op.Call) {
        settle(taskId, fnId, fn(...(args as unknown[])), started);
        return;
      }
      if (op === Op.Init) {
        // An initializer: wait for it, but send back nothing of its value.
        const value = fn(...(args as unknown[]));
        settle(
          taskId,
          fnId,
          isThenable(value)
            ? Promise.resolve(value).then(() => undefined)
            : undefined,
          started,
        );
        return;
      }
      const list = args as unknown[];
      const results = new Array(list.length);
      let async = false;
      if (op === Op.Items) {
        for (let i = 0; i < list.length; i++) {
          const r = fn(list[i]);
          if (isThenable(r)) async = true;
          results[i] = r;
        }
      } else {
        for (let i = 0; i < list.length; i++) {
          const r = fn(...(list[i] as unknown[]));
          if (isThenable(r)) async = true;
          results[i] = r;
        }
      }
      settle(taskId, fnId, async ? Promise.all(results) : results, started);
    } catch (error) {
      fail(taskId, fnId, error);
    }
  }

  function onMessage(message: Message): void {
    const op = message[0];
    if (
      op === Op.Call || op === Op.Chunk || op === Op.Items || op === Op.Init
    ) {
      const taskId = message[1] as number;
      const fnId = message[2] as number;
      const fn = functions.get(fnId);
      if (fn === undefined) {
        fail(taskId, fnId, new Error(`Unknown function id ${fnId}`));
      } else if (typeof fn === "function") {
        invoke(fn, op, taskId, fnId, message[3]);
      } else {
        running++;
        fn.then(
          (f) => invoke(f, op, taskId, fnId, message[3]),
          (e) => fail(taskId, fnId, e),
        ).finally(finishOne);
      }
    } else if (op === Op.Define) {
      const fnId = message[1] as number;
      const source = message[2];
      if (typeof source === "string") {
        sourced.add(fnId);
        try {
          functions.set(fnId, compileFunction(source));
        } catch (error) {
          functions.set(fnId, Promise.reject(error));
        }
      } else {
        functions.set(
          fnId,
          importFunction(String(message[3]), String(message[4])),
        );
      }
      // A definition that fails is reported by each call that uses it.
      (functions.get(fnId) as Promise<Fn>).catch?.(() => {});
    } else if (op === Op.Cancel) {
      cancelled.add(message[1] as number);
    } else if (op === Op.Challenge) {
      if (message[1] !== PROTOCOL_VERSION) {
        throw new Error(
          `Protocol version mismatch: pool speaks ${
            message[1]
          }, worker ${PROTOCOL_VERSION}`,
        );
      }
      proof(secret, message[2] as Uint8Array, workerId).then((answer) =>
        writer.send([Op.Hello, PROTOCOL_VERSION, workerId, answer, Deno.pid])
      );
    } else if (op === Op.Welcome) {
      authenticated = true;
      const statsMs = (message[1] as { statsMs?: unknown } | undefined)
        ?.statsMs;
      if (typeof statsMs === "number" && statsMs > 0) {
        const timer = setInterval(() => {
          const { rss, heapUsed } = Deno.memoryUsage();
          writer.send([Op.Stats, rss, heapUsed]);
        }, statsMs) as unknown as number;
        Deno.unrefTimer(timer);
        statsTimer = timer;
      }
    } else if (op === Op.Exit) {
      exiting = true;
      if (running === 0) done.resolve();
    }
  }

  const reading = readFrames(channel, (m) => {
    if (!authenticated && m[0] !== Op.Challenge && m[0] !== Op.Welcome) {
      throw new Error("The pool sent a task before the handshake finished");
    }
    onMessage(m);
  });
  reading.then(() => done.resolve(), (e) => done.reject(e));
  try {
    await done.promise;
  } finally {
    if (statsTimer !== undefined) clearInterval(statsTimer);
    if (!writeFailed) await writer.drained();
    done = Promise.withResolvers();
  }
}
