/**
 * The worker side of the protocol: answer the handshake, then define and run
 * tasks as they arrive. Sync tasks run one after another; async tasks run
 * concurrently; every result goes back as soon as it is ready. Imports
 * nothing of the pool's side.
 *
 * @module
 */
import {
  compileFunction,
  type Fn,
  importFunction,
  selfContainedHint,
} from "./compile_function.ts";
import { _libraryArrays, _readBlobs } from "./_codec.ts";
import { toErrorRecord } from "./errors.ts";
import {
  type ByteChannel,
  DEFAULT_MAX_FRAME_BYTES,
  FrameWriter,
} from "./framing.ts";
import { readFrames, takeCollector } from "./frame_reader.ts";
import { answerChallenge, welcomeSettings } from "./handshake.ts";
import {
  CHUNK_ITEM,
  errorMessage,
  Op,
  parsePoolMessage,
  type PoolMessage,
  resultMessage,
  resultsMessage,
  statsMessage,
} from "./protocol.ts";

/** Where a worker connects and how it proves who it is. */
export interface WorkerRuntimeOptions {
  /** The connection to the pool. */
  channel: ByteChannel;
  /**
   * This worker's key (as its launcher wrote it to stdin, or imported):
   * derived from the pool's secret and the worker's id.
   */
  secret: string | CryptoKey;
  /** The id the pool gave this worker. */
  workerId: number;
  /**
   * Awaited once the worker has answered the pool's challenge, while the
   * pool checks the answer (the worker has nothing else to do then), and
   * before the worker reads the pool's welcome or any task. If it rejects,
   * the worker ends with that error.
   */
  whileChecked?: (() => Promise<void>) | undefined;
}

/**
 * Calls `tick` every `ms` milliseconds until the returned function is called,
 * without keeping the process alive (like an unref'd `setInterval`). Not a
 * timer: Deno 2.9.6 loads Node-compatibility modules on a program's first
 * timer (~5 ms of a worker's start-up), which only tasks that use timers
 * should pay for (issue 14). `Atomics.waitAsync` with a timeout needs none.
 */
function every(ms: number, tick: () => void): () => void {
  const cell = new Int32Array(new SharedArrayBuffer(4));
  let stopped = false;
  const wait = (): void => {
    const waiting = Atomics.waitAsync(cell, 0, 0, ms);
    if (!waiting.async) return; // the cell changed: stopped
    waiting.value.then(() => {
      if (stopped) return;
      try {
        tick();
      } finally {
        wait();
      }
    });
  };
  wait();
  return () => {
    stopped = true;
    Atomics.store(cell, 0, 1);
    Atomics.notify(cell, 0);
  };
}

/**
 * Tasks' abort signals: `distex.signal`, read by a task as it starts, is
 * that task's; it aborts when the pool cancels the task (its `signal`
 * aborted, its `timeout` passed, its map cancelled). Made only for tasks that
 * ask for one.
 */
const signals = {
  /** The task being started (its synchronous part runs now). */
  current: undefined as number | undefined,
  controllers: new Map<number, AbortController>(),
  /** Aborts task `taskId`'s signal, if it asked for one. */
  abort(taskId: number): void {
    const controller = this.controllers.get(taskId);
    if (!controller) return;
    this.controllers.delete(taskId);
    controller.abort(
      new DOMException("The pool cancelled this task", "AbortError"),
    );
  },
  /** Forgets task `taskId`'s signal (it settled). */
  done(taskId: number): void {
    if (this.controllers.size > 0) this.controllers.delete(taskId);
  },
};

Object.defineProperty(globalThis, "distex", {
  configurable: true,
  value: Object.freeze({
    /** The running task's AbortSignal: read it before the task's first await. */
    get signal(): AbortSignal {
      const taskId = signals.current;
      if (taskId === undefined) {
        throw new Error(
          "distex.signal is the signal of the task that reads it as it starts: " +
            "read it in the task's synchronous part, before its first await " +
            "(const signal = distex.signal;)",
        );
      }
      let controller = signals.controllers.get(taskId);
      if (!controller) {
        controller = new AbortController();
        signals.controllers.set(taskId, controller);
      }
      return controller.signal;
    },
  }),
});

/**
 * Notes on a chunk's error which of its items threw (`chunkItem`, an own
 * field that crosses with the error); the pool turns it into the item's
 * index in the map and removes it.
 */
function markChunkItem(error: unknown, at: number): unknown {
  if (error instanceof Error && Object.isExtensible(error)) {
    try {
      Object.defineProperty(error, CHUNK_ITEM, {
        value: at,
        enumerable: true,
        configurable: true,
        writable: true,
      });
    } catch { /* a frozen or exotic error: no index */ }
  }
  return error;
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return value !== null &&
    (typeof value === "object" || typeof value === "function") &&
    typeof (value as { then?: unknown }).then === "function";
}

/**
 * Runs a chunk: `fn(item)` for each item (`single`), or `fn(...args)` for
 * each argument list. The results, or a promise of them when some result
 * was a thenable. One small loop with no closure or promise per item, so it
 * runs fast while still cold (issue 14). Its result array is marked for the
 * encoder as the library's own (no holes or other properties to look for).
 *
 * @throws the error of the item that threw, marked with its position.
 */
function runChunk(
  fn: Fn,
  single: boolean,
  args: unknown[],
): unknown[] | Promise<unknown[]> {
  const n = args.length;
  const results = new Array(n);
  let async = false;
  let i = 0;
  try {
    if (single) {
      for (; i < n; i++) {
        const r = fn(args[i]);
        results[i] = r;
        if (
          typeof r === "object" ? r !== null : typeof r === "function"
        ) async ||= typeof (r as { then?: unknown }).then === "function";
      }
    } else {
      for (; i < n; i++) {
        const r = fn(...(args[i] as unknown[]));
        results[i] = r;
        if (
          typeof r === "object" ? r !== null : typeof r === "function"
        ) async ||= typeof (r as { then?: unknown }).then === "function";
      }
    }
  } catch (error) {
    throw markChunkItem(error, i);
  }
  if (!async) {
    _libraryArrays.add(results);
    return results;
  }
  for (let at = 0; at < n; at++) {
    results[at] = Promise.resolve(results[at]).catch((error) => {
      throw markChunkItem(error, at);
    });
  }
  return Promise.all(results).then((values) => {
    _libraryArrays.add(values);
    return values;
  });
}

/**
 * The worker's garbage collector, where the pool's command line exposed it:
 * taken off the global before any task runs (a task can reach it only
 * through a new V8 context, to collect its own worker's garbage; see
 * `COLLECTOR_GLOBAL`). The frame reader runs a
 * minor collection every few MiB of byte arrays received, so their memory is
 * reused at once (issue 14: bulk bytes).
 */
const collect = takeCollector();

/** A change of resident memory (bytes) that is reported at once. */
const STATS_STEP = 4 * 1024 * 1024;
/** Intervals after which an unchanged figure is reported all the same. */
const STATS_QUIET = 10;

/**
 * Runs the worker protocol over `channel` until the pool closes it.
 * Resolves when the worker should end.
 *
 * @throws {ProtocolError} when the pool breaks the protocol.
 */
export async function runWorker(options: WorkerRuntimeOptions): Promise<void> {
  const { channel, secret, workerId } = options;
  const functions = new Map<number, Fn | Promise<Fn>>();
  const sourced = new Set<number>();
  const cancelled = new Set<number>();
  let welcomed = false;
  let done = Promise.withResolvers<void>();
  let writeFailed = false;
  let stopStats: (() => void) | undefined;
  const writer = new FrameWriter(channel, () => {
    writeFailed = true;
    done.resolve();
  });

  // The values of one turn go back in one frame (a burst of calls).
  let batchIds: number[] = [];
  let batchValues: unknown[] = [];
  let batchWork: number[] = [];
  let batchQueued = false;
  /**
   * While a burst of tasks runs (until its results are flushed): when the
   * last task that ended synchronously ended, which is when the next one
   * starts; -1 otherwise. One clock read per task instead of two
   * (`performance.now()` is not cheap while cold, issue 14).
   */
  let burstNow = -1;

  function flushResults(): void {
    batchQueued = false;
    burstNow = -1;
    const ids = batchIds;
    const values = batchValues;
    const work = batchWork;
    batchIds = [];
    batchValues = [];
    batchWork = [];
    if (ids.length > 1) {
      try {
        writer.send(resultsMessage(ids, values, work));
        return;
      } catch {
        // One of them cannot be sent: each on its own, to tell which.
      }
    }
    for (let i = 0; i < ids.length; i++) {
      sendResult(ids[i]!, values[i], work[i]!);
    }
  }

  /** Queues task `taskId`'s value; returns the time it ended. */
  function reply(taskId: number, value: unknown, started: number): number {
    signals.done(taskId);
    const now = performance.now();
    const workUs = Math.round((now - started) * 1000);
    if (cancelled.delete(taskId)) {
      // Drop the value but still report the end: the pool frees the slot.
      value = undefined;
    }
    batchIds.push(taskId);
    batchValues.push(value);
    batchWork.push(workUs);
    if (!batchQueued) {
      batchQueued = true;
      queueMicrotask(flushResults);
    }
    return now;
  }

  function sendResult(taskId: number, value: unknown, workUs: number): void {
    try {
      writer.send(resultMessage(taskId, value, workUs));
    } catch (error) {
      const reading = _readBlobs(value); // Blob bytes: read, then send
      if (reading) {
        return void reading.then(
          () => sendResult(taskId, value, workUs),
          (e) => writer.send(errorMessage(taskId, toErrorRecord(e))),
        );
      }
      writer.send(errorMessage(taskId, toErrorRecord(error)));
    }
  }

  function fail(taskId: number, fnId: number, error: unknown): void {
    signals.done(taskId);
    burstNow = -1;
    if (cancelled.delete(taskId)) {
      writer.send(resultMessage(taskId, undefined, undefined));
      return;
    }
    if (sourced.has(fnId)) selfContainedHint(error);
    writer.send(errorMessage(taskId, toErrorRecord(error)));
  }

  function settle(
    taskId: number,
    fnId: number,
    value: unknown,
    started: number,
  ): void {
    if (isThenable(value)) {
      Promise.resolve(value).then(
        (v) => reply(taskId, v, started),
        (e) => fail(taskId, fnId, e),
      );
    } else {
      burstNow = reply(taskId, value, started);
    }
  }

  function invoke(
    fn: Fn,
    op: number,
    taskId: number,
    fnId: number,
    args: unknown[],
  ): void {
    const started = burstNow >= 0 ? burstNow : performance.now();
    signals.current = taskId;
    try {
      if (op === Op.Call) {
        settle(taskId, fnId, fn(...args), started);
      } else if (op === Op.Init) {
        // An initializer: wait for it, but send back nothing of its value.
        const value = fn(...args);
        settle(
          taskId,
          fnId,
          isThenable(value)
            ? Promise.resolve(value).then(() => undefined)
            : undefined,
          started,
        );
      } else {
        settle(taskId, fnId, runChunk(fn, op === Op.Items, args), started);
      }
    } catch (error) {
      fail(taskId, fnId, error);
    } finally {
      signals.current = undefined;
    }
  }

  function define(fnId: number, load: () => Fn | Promise<Fn>): void {
    let fn: Fn | Promise<Fn>;
    try {
      fn = load();
    } catch (error) {
      fn = Promise.reject(error);
    }
    // A definition that fails is reported by each call that uses it.
    if (fn instanceof Promise) fn.catch(() => {});
    functions.set(fnId, fn);
  }

  function onMessage(m: PoolMessage): void {
    switch (m[0]) {
      case Op.Cancel:
        cancelled.add(m[1]);
        signals.abort(m[1]);
        return;
      case Op.Calls: {
        const [, fnId, taskIds, argsList] = m;
        for (let i = 0; i < taskIds.length; i++) {
          call(Op.Call, taskIds[i]!, fnId, argsList[i]!);
        }
        return;
      }
      case Op.Define:
        if (m[2] !== null) {
          const source = m[2];
          sourced.add(m[1]);
          define(m[1], () => compileFunction(source));
        } else {
          define(m[1], () => importFunction(m[3], m[4]));
        }
        return;
      default:
        call(m[0], m[1], m[2], m[3]);
    }
  }

  function call(
    op: number,
    taskId: number,
    fnId: number,
    args: unknown[],
  ): void {
    const fn = functions.get(fnId);
    if (fn === undefined) {
      fail(taskId, fnId, new Error(`Unknown function id ${fnId}`));
    } else if (typeof fn === "function") {
      invoke(fn, op, taskId, fnId, args);
    } else {
      fn.then(
        (f) => invoke(f, op, taskId, fnId, args),
        (e) => fail(taskId, fnId, e),
      );
    }
  }

  function startStats(statsMs: number): void {
    if (!(statsMs > 0)) return;
    // A figure that moved less than STATS_STEP since the last report goes
    // out only every STATS_QUIET reports: with thousands of workers, a
    // report from each every second is most of what an idle pool costs.
    let reported = -Infinity;
    let quiet = 0;
    stopStats = every(statsMs, () => {
      const rss = Deno.memoryUsage().rss;
      if (Math.abs(rss - reported) < STATS_STEP && ++quiet < STATS_QUIET) {
        return;
      }
      quiet = 0;
      reported = rss;
      writer.send(statsMessage(rss));
    });
  }

  try {
    const expected = await answerChallenge(channel, writer, secret, workerId);
    await options.whileChecked?.();
    const limits = {
      maxFrameBytes: DEFAULT_MAX_FRAME_BYTES,
      // Not while results' byte arrays are still being written: the
      // collection would keep them alive (and promote them, for a costly
      // full collection later) instead of freeing anything.
      reclaim: collect &&
        (() => writer.heldRawBytes === 0 && (collect(), true)),
    };
    const reading = readFrames(channel, (m) => {
      if (!welcomed) {
        const settings = welcomeSettings(m, expected);
        // One limit both ways: a result over it fails its task (RangeError
        // from send) instead of the connection.
        writer.maxFrameBytes = limits.maxFrameBytes = settings.maxFrameBytes;
        startStats(settings.statsMs);
        welcomed = true;
        return;
      }
      onMessage(parsePoolMessage(m));
    }, limits);
    reading.then(() => done.resolve(), (e) => done.reject(e));
    await done.promise;
  } finally {
    stopStats?.();
    if (!writeFailed) await writer.drained();
    done = Promise.withResolvers();
  }
}
