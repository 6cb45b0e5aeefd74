/**
 * `Pool.map()`: a pull-based `ReadableStream` over zipped (async) iterables.
 *
 * This file is the one owner of a map's flow control. It decides how many
 * items go in one task (from the time per item the pool measured and the
 * items' size) and how far the sources are read ahead: only while the tasks
 * in flight need more work *and* the map's budget (items read but not yet
 * taken by the consumer; estimated bytes of arguments and results held for
 * it) has room. A slow consumer therefore stalls the reading, not the memory.
 * Reading the sources into chunks is _map_chunks.ts's; the budget and chunk
 * sizes are _map_flow.ts's; delivery order _map_order.ts's.
 *
 * @module
 */
import { type TaskOptions, validateMapOptions } from "./options.ts";
import { _atItem, PoolClosedError } from "./errors.ts";
import { CHUNK_ITEM } from "./protocol.ts";
import { estimateBytes, MapInputs, settlesSoon } from "./_map_input.ts";
import { ChunkReader } from "./_map_chunks.ts";
import { ChunkSizer, MapBudget, windowItems } from "./_map_flow.ts";
import { DeliveryOrder, type Entry } from "./_map_order.ts";
import { MapOutput } from "./_map_output.ts";

export { settlesSoon };

/** Options of `Pool.map()`; pass them as the last argument. */
export interface MapOptions {
  /**
   * Most items sent to a worker in one task: larger chunks cut overhead for
   * tiny tasks. A chunk also ends once it holds about 1 MiB of arguments, and
   * where the budget (`maxItemsInFlight`, `maxBytesInFlight`) ends. By
   * default the size follows the measured time per item: about 1 ms of work
   * per chunk, at most 4096 items.
   */
  chunkSize?: number | undefined;
  /**
   * Deliver results in input order (`true`) or as they complete (`false`).
   * @default {true}
   */
  ordered?: boolean | undefined;
  /**
   * Spread each item of a single source into the function's arguments
   * (`starmap`): `[[1, 2], [3, 4]]` calls `fn(1, 2)` and `fn(3, 4)`.
   * @default {false}
   */
  star?: boolean | undefined;
  /** Milliseconds for the whole map; then the stream errors with a `TimeoutError`. */
  timeout?: number | undefined;
  /**
   * Milliseconds for each item: an item that runs longer fails with a
   * `TimeoutError` (the stream errors with it, or with `outcomes` that item
   * is rejected). Items then go one per task unless `chunkSize` is given; a
   * chunk of n items gets n times as long.
   */
  itemTimeout?: number | undefined;
  /**
   * Yield a {@link MapOutcome} per item, `{ index, status: "fulfilled",
   * value }` or `{ index, status: "rejected", reason }`, instead of the plain
   * results: a failing item no longer errors the stream. `index` counts
   * items from 0 in input order. The stream still errors for what is not an
   * item's failure: a source that throws, `timeout`, `signal`, a closed
   * pool. A chunk (of several items) that fails is run again one item per
   * task to find which failed, so its other items run twice: give
   * `chunkSize: 1` for functions with side effects.
   * @default {false}
   */
  outcomes?: boolean | undefined;
  /** Aborting errors the stream with `signal.reason` and drops work in flight. */
  signal?: AbortSignal | undefined;
  /** Resend a task whose worker died up to this many times. */
  retries?: number | undefined;
  /**
   * Most items read from the sources and not yet taken by the consumer (in
   * tasks, results waiting for an earlier one, results in the stream's
   * queue); reading pauses at it. Larger lets the map run further ahead of a
   * slow item or consumer; smaller holds less memory for many small items.
   * @default {16384}
   */
  maxItemsInFlight?: number | undefined;
  /**
   * Most bytes of arguments and results (estimated: exact for byte arrays and
   * strings, sampled for arrays and objects) held in this process for the
   * map; reading pauses above it, but one item always goes through, however
   * large. Larger keeps more big items in flight; smaller holds less memory.
   * @default {67108864} (64 MiB)
   */
  maxBytesInFlight?: number | undefined;
}

/**
 * What a map with `outcomes: true` yields for each item: the shape of
 * `Promise.allSettled()`'s results, with the item's index in the input.
 *
 * @example
 * ```ts
 * import type { MapOutcome } from "@distex/pool";
 * import { Pool } from "@distex/pool";
 * await using pool = new Pool(1);
 * const twos = (x: number) => {
 *   if (x === 2) throw new RangeError("no twos");
 *   return x * 10;
 * };
 * const seen: MapOutcome<number>[] = [];
 * for await (const o of pool.map(twos, [1, 2, 3], { outcomes: true })) {
 *   seen.push(o);
 * }
 * console.log(seen.map((o) => o.status)); // fulfilled, rejected, fulfilled
 * ```
 */
export type MapOutcome<R> =
  | { index: number; status: "fulfilled"; value: R }
  | { index: number; status: "rejected"; reason: unknown };

/**
 * How a map task's `args` are applied: `"call"` is one call `fn(...args)`;
 * `"chunk"` is a list of argument lists, one call each; `"items"` is a list of
 * single arguments, one call `fn(item)` each. A chunk resolves to the list of
 * its results.
 */
export type CallKind = "call" | "chunk" | "items";

/**
 * What `createMapStream` needs from the pool. The map engine alone decides
 * chunk sizes and how far to read ahead; the pool only runs tasks.
 */
export interface MapContext {
  /** Queues one task of the given kind. */
  submit(
    args: unknown[],
    kind: CallKind,
    options: TaskOptions,
  ): Promise<unknown>;
  /**
   * Queues one task like {@link submit}, without a promise: its result goes
   * to `resolve(value, tag)`, its error to `reject(error, tag)`. The engine
   * passes the same two callbacks for all of a map's tasks, so a task costs
   * no promise and no closure. They may be called before this returns (a
   * signal already aborted) and from inside the pool's dispatcher, once
   * per task: they must not throw, nor submit again synchronously. Without it, the engine
   * uses `submit`. `primitive` is true when the engine saw that `args` hold
   * primitives only (no object, so no `Blob` to read first).
   */
  submitTo?(
    args: unknown[],
    kind: CallKind,
    options: TaskOptions,
    tag: unknown,
    resolve: (value: unknown, tag: unknown) => void,
    reject: (error: unknown, tag: unknown) => void,
    primitive?: boolean,
  ): void;
  /**
   * Task slots of the ready workers (before any is ready, the expected
   * number): how many tasks the pool runs or holds in workers at once.
   */
  slots(): number;
  /** Measured time per item of this function in workers (ms), if known. */
  itemMs(): number | undefined;
  /** The sources and options as the caller gave them. */
  sources: unknown[];
  options: MapOptions;
  /** The pool's default retries. */
  retries: number;
  /** Called once when the map ends (done, failed or cancelled). */
  ended?: () => void;
}

function fulfilled(index: number, value: unknown): MapOutcome<unknown> {
  return { index, status: "fulfilled", value };
}

function rejected(index: number, reason: unknown): MapOutcome<unknown> {
  return { index, status: "rejected", reason };
}

/**
 * The position in its chunk of the item whose error this is, as the worker
 * noted it (the note is taken off); undefined when it did not.
 */
function chunkItem(error: unknown, count: number): number | undefined {
  if (error === null || typeof error !== "object") return undefined;
  const record = error as Record<string, unknown>;
  const at = record[CHUNK_ITEM];
  if (!Number.isInteger(at) || (at as number) < 0 || (at as number) >= count) {
    return undefined;
  }
  delete record[CHUNK_ITEM];
  return at as number;
}

/**
 * Builds the stream behind `Pool.map()`.
 * @throws {TypeError} for a source that is not iterable.
 * @throws {RangeError} for bad options.
 */
export function createMapStream<R>(ctx: MapContext): ReadableStream<R> {
  const { options } = ctx;
  validateMapOptions(options);
  const inputs = new MapInputs(ctx.sources, options.star ?? false);
  const ordered = options.ordered ?? true;
  const single = inputs.single;
  const budget = new MapBudget(
    options.maxItemsInFlight,
    options.maxBytesInFlight,
  );
  const sizer = new ChunkSizer(
    options.chunkSize,
    options.itemTimeout !== undefined,
    budget.maxItems,
  );
  const adaptive = sizer.adaptive;
  /** The least chunk worth waiting for room for (see feed()). */
  const minChunk = Math.max(1, Math.floor(budget.maxItems / 4));
  const outcomes = options.outcomes ?? false;
  const itemTimeout = options.itemTimeout;
  const abort = new AbortController();
  const taskOptions: TaskOptions = {
    signal: abort.signal,
    retries: options.retries ?? ctx.retries,
  };
  const order = new DeliveryOrder(ordered);
  /** A failed task taken from the order, for the next deliver() call. */
  let held: Entry | undefined;
  /** Items submitted and not yet handed to the stream (the work window). */
  let outstanding = 0;
  /** Reads the sources one chunk at a time; `done` once they ended. */
  const reader = new ChunkReader(inputs, budget, launch);
  let feeding = false;
  let feedQueued = false;
  const submitTo = ctx.submitTo?.bind(ctx);
  let finished = false;
  let failure: unknown = undefined;
  let failed = false;
  let wake: PromiseWithResolvers<void> | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;

  function notify(): void {
    const w = wake;
    wake = undefined;
    w?.resolve();
  }

  function finish(): void {
    if (finished) return;
    finished = true;
    if (timer !== undefined) clearTimeout(timer);
    options.signal?.removeEventListener("abort", onAbort);
    reader.close();
    ctx.ended?.();
  }

  function fail(error: unknown): void {
    if (failed || finished) return;
    failed = true;
    failure = error;
    abort.abort(error);
    finish();
    notify();
  }

  function onAbort(): void {
    fail(options.signal!.reason);
  }

  /** Results handed to the consumer and not yet taken. */
  function inQueue(): number {
    return output.inQueue();
  }

  function launch(
    units: unknown[],
    argBytes: number,
    size: number,
    primitive: boolean,
  ): void {
    const count = units.length;
    const call = size === 1;
    const entry: Entry = {
      index: budget.read - count,
      count,
      bytes: argBytes,
      done: false,
      values: undefined,
      error: undefined,
      failed: false,
      units,
      call,
    };
    order.submitted(entry);
    outstanding += count;
    if (adaptive) sizer.noteArgs(argBytes, count);
    const kind: CallKind = call ? "call" : single ? "items" : "chunk";
    const args = kind !== "call" || single ? units : units[0] as unknown[];
    const options = itemTimeout === undefined ? taskOptions : optionsFor(count);
    if (submitTo !== undefined) {
      submitTo(args, kind, options, entry, onValue, onError, primitive);
    } else {
      ctx.submit(args, kind, options).then(
        (value) => onValue(value, entry),
        (error) => onError(error, entry),
      );
    }
  }

  /**
   * A task's result (the pool's callback, shared by all of the map's tasks:
   * it may run inside the dispatcher, so the next tasks are submitted later
   * in this turn, see settle()).
   */
  function onValue(value: unknown, tag: unknown): void {
    const entry = tag as Entry;
    let values: unknown[];
    if (entry.call) {
      // The task's one unit is done with: its array holds the result.
      values = entry.units!;
      values[0] = value;
    } else values = value as unknown[];
    entry.units = undefined;
    if (outcomes) {
      for (let i = 0; i < entry.count; i++) {
        values[i] = fulfilled(entry.index + i, values[i]);
      }
    }
    settle(entry, values);
  }

  /** A task's error (the pool's callback, like onValue). */
  function onError(error: unknown, tag: unknown): void {
    const entry = tag as Entry;
    const count = entry.count;
    const units = entry.units!;
    entry.units = undefined;
    if (!outcomes || error instanceof PoolClosedError || finished) {
      budget.bytes -= entry.bytes;
      entry.bytes = 0;
      // Which item failed: the only one, or the one the worker named.
      const at = count === 1 ? 0 : chunkItem(error, count);
      entry.error = error instanceof PoolClosedError || at === undefined
        ? error
        : _atItem(error, entry.index + at);
      entry.failed = true;
      entry.done = true;
      if (!ordered) queueMicrotask(() => fail(error));
      else notify();
    } else if (count === 1) {
      settle(entry, [rejected(entry.index, error)]);
    } else {
      queueMicrotask(() => retryAlone(entry, units));
    }
  }

  /** A task's options: the map's, with the timeout of its `count` items. */
  function optionsFor(count: number): TaskOptions {
    return itemTimeout === undefined
      ? taskOptions
      : { ...taskOptions, timeout: itemTimeout * count };
  }

  /** An entry's results are in: it now holds their bytes instead of the arguments'. */
  function settle(entry: Entry, values: unknown[]): void {
    const resultBytes = estimateBytes(values);
    if (adaptive) sizer.noteResults(resultBytes, entry.count);
    budget.bytes += resultBytes - entry.bytes;
    entry.bytes = resultBytes;
    entry.values = values;
    entry.done = true;
    // In input order, the entry is in line already.
    if (!ordered) order.finished(entry);
    // (Guarded here: this runs for every task, and a call costs even when
    // it does nothing, above all while the code is cold.)
    if (wake !== undefined) notify();
    if (!feedQueued) feedSoon();
  }

  /**
   * feed() once the current callbacks are done: a result may come in inside
   * the dispatcher, which must not be re-entered; the tasks submitted then
   * still go out in this turn's frame.
   */
  function feedSoon(): void {
    feedQueued = true;
    queueMicrotask(feedLater);
  }

  function feedLater(): void {
    feedQueued = false;
    feed();
  }

  /**
   * A chunk failed with `outcomes`: runs each of its items again alone, so
   * each gets its own outcome.
   */
  function retryAlone(entry: Entry, units: unknown[]): void {
    const values = new Array<unknown>(units.length);
    let left = units.length;
    const one = (i: number, outcome: unknown) => {
      values[i] = outcome;
      if (--left === 0 && !finished) settle(entry, values);
    };
    for (let i = 0; i < units.length; i++) {
      const args = single ? [units[i]] : units[i] as unknown[];
      ctx.submit(args, "call", optionsFor(1)).then(
        (value) => one(i, fulfilled(entry.index + i, value)),
        (error) => {
          if (error instanceof PoolClosedError) fail(error);
          else one(i, rejected(entry.index + i, error));
        },
      );
    }
  }

  /** Submits chunks while the window and the budget allow. */
  function feed(): void {
    if (feeding || reader.done || finished) return;
    feeding = true;
    let pending: Promise<void> | undefined;
    try {
      pending = fill();
    } catch (error) {
      fail(error);
    }
    if (pending === undefined) fed();
    else {
      pending.then(fed, (error) => {
        fail(error);
        fed();
      });
    }
  }

  function fed(): void {
    feeding = false;
    notify();
  }

  /**
   * feed()'s loop: synchronous while the sources are; a promise once it
   * waits for an async one.
   */
  function fill(): Promise<void> | undefined {
    // The pool's measurements do not change while this loop runs (results
    // come in later turns), nor does what the consumer took: asked once per
    // run, not per task. The chunk size changes only with what adaptive
    // chunks measure.
    const itemMs = ctx.itemMs();
    const slots = ctx.slots();
    const taken = budget.taken(inQueue());
    let size = sizer.size(itemMs);
    let window = windowItems(slots, size);
    for (;;) {
      if (reader.done || finished) return undefined;
      if (outstanding >= window) return undefined;
      const left = budget.maxItems - (budget.read - taken);
      // Wait for room for a sizable chunk: taking each item as the consumer
      // frees it would send chunks of one. (Once the consumer has taken
      // all, the whole budget is free: this always ends.)
      if (left < Math.min(size, minChunk) || budget.bytes >= budget.maxBytes) {
        return undefined;
      }
      const ok = reader.take(size, left);
      if (ok instanceof Promise) {
        return ok.then((more) => more ? fill() : undefined);
      }
      if (!ok) return undefined;
      if (adaptive) {
        size = sizer.size(itemMs);
        window = windowItems(slots, size);
      }
    }
  }

  const output = new MapOutput<R>({
    start(): void {
      if (options.signal?.aborted) {
        fail(options.signal.reason);
        return;
      }
      options.signal?.addEventListener("abort", onAbort, { once: true });
      if (options.timeout !== undefined) {
        const ms = options.timeout;
        timer = setTimeout(
          () =>
            fail(
              new DOMException(
                `Pool.map() timed out after ${ms} ms`,
                "TimeoutError",
              ),
            ),
          ms,
        );
      }
    },
    async deliver(give: (values: unknown[]) => void): Promise<boolean> {
      feed();
      for (;;) {
        if (failed) throw failure;
        let entry = held ?? order.take();
        held = undefined;
        if (entry?.failed) {
          fail(entry.error);
          continue;
        }
        if (entry) {
          // Hand over every result that is ready, not just one entry's.
          do {
            outstanding -= entry.count;
            give(entry.values!);
            budget.handOver(entry.count, entry.bytes);
            entry.values = undefined;
            entry = order.take();
          } while (entry && !entry.failed);
          // A failed one fails the map at the next call, after these.
          held = entry;
          feed();
          return true;
        }
        if (reader.done && !feeding && outstanding === 0) {
          finish();
          return false;
        }
        wake ??= Promise.withResolvers();
        await wake.promise;
      }
    },
    cancel(reason): void {
      fail(
        reason ?? new DOMException("Pool.map() was cancelled", "AbortError"),
      );
    },
  });
  return output.stream;
}
