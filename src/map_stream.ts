/**
 * `Pool.map()`: a pull-based `ReadableStream` over zipped (async) iterables.
 *
 * This file is the one owner of a map's flow control. It decides how many
 * items go in one task (from the time per item the pool measured and the
 * items' size) and how far the sources are read ahead: only while the tasks
 * in flight need more work *and* the map's budget (items read but not yet
 * taken by the consumer; estimated bytes of arguments and results held for
 * it) has room. A slow consumer therefore stalls the reading, not the memory.
 *
 * @module
 */
import type { TaskOptions } from "./options.ts";
import { _atItem, PoolClosedError } from "./errors.ts";
import { CHUNK_ITEM } from "./protocol.ts";
import { estimateBytes, settlesSoon, toSource } from "./_map_input.ts";

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

/** Adaptive chunks keep a worker busy for about this long (ms). */
const CHUNK_TARGET_MS = 1;
/** Most items in an adaptive chunk. */
const MAX_CHUNK = 4096;
/** A chunk ends once its arguments reach this many bytes (estimated). */
const CHUNK_BYTES = 1 << 20;
/** The budget of a map by default. */
const DEFAULT_MAX_ITEMS = 16384;
const DEFAULT_MAX_BYTES = 64 << 20;
/** What `nextUnit()` returns at the end of the sources. */
const END = Symbol("end");

/** One task of a map, from its submission until its results are handed over. */
interface Entry {
  /** Index of its first item. */
  index: number;
  /** Items in the task. */
  count: number;
  /** Estimated bytes of its arguments while in flight, then of its results. */
  bytes: number;
  done: boolean;
  values: unknown[] | undefined;
  error: unknown;
  failed: boolean;
}

function fulfilled(index: number, value: unknown): MapOutcome<unknown> {
  return { index, status: "fulfilled", value };
}

function rejected(index: number, reason: unknown): MapOutcome<unknown> {
  return { index, status: "rejected", reason };
}

/** A moving average that starts at the first sample. */
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

function average(old: number, sample: number): number {
  return old === 0 ? sample : old * 0.75 + sample * 0.25;
}

/** A budget option: an integer >= 1 (or Infinity). */
function checkLimit(name: string, value: unknown): void {
  if (value === undefined) return;
  if (typeof value !== "number") {
    throw new TypeError(
      `Pool.map() option '${name}' must be a number, got ${typeof value}`,
    );
  }
  if (!(value >= 1) || !(Number.isInteger(value) || value === Infinity)) {
    throw new RangeError(
      `Pool.map() option '${name}' must be an integer >= 1 (or Infinity), got ${value}`,
    );
  }
}

function checkOptions(options: MapOptions): void {
  const { chunkSize, timeout, retries } = options;
  if (
    chunkSize !== undefined &&
    (!Number.isInteger(chunkSize) || chunkSize < 1)
  ) {
    throw new RangeError(
      `Pool.map() option 'chunkSize' must be an integer >= 1, got ${chunkSize}`,
    );
  }
  for (
    const [name, ms] of [["timeout", timeout], [
      "itemTimeout",
      options.itemTimeout,
    ]] as const
  ) {
    if (ms !== undefined && !(ms >= 0 && Number.isFinite(ms))) {
      throw new RangeError(
        `Pool.map() option '${name}' must be a finite number of ms >= 0, got ${ms}`,
      );
    }
  }
  if (retries !== undefined && (!Number.isInteger(retries) || retries < 0)) {
    throw new RangeError(
      `Pool.map() option 'retries' must be an integer >= 0, got ${retries}`,
    );
  }
  checkLimit("maxItemsInFlight", options.maxItemsInFlight);
  checkLimit("maxBytesInFlight", options.maxBytesInFlight);
  if (
    options.signal !== undefined && !(options.signal instanceof AbortSignal)
  ) {
    throw new TypeError("Pool.map() option 'signal' must be an AbortSignal");
  }
}

/**
 * Builds the stream behind `Pool.map()`.
 * @throws {TypeError} for a source that is not iterable.
 * @throws {RangeError} for bad options.
 */
export function createMapStream<R>(ctx: MapContext): ReadableStream<R> {
  const { options } = ctx;
  checkOptions(options);
  if (ctx.sources.length === 0) {
    throw new TypeError("Pool.map() needs at least one iterable");
  }
  const sources = ctx.sources.map(toSource);
  const fixedChunk = options.chunkSize;
  const ordered = options.ordered ?? true;
  const star = options.star ?? false;
  if (star && sources.length > 1) {
    throw new TypeError(
      "Pool.map() option 'star' takes one iterable of argument lists, got several iterables",
    );
  }
  /** One source, no spreading: tasks carry the items themselves. */
  const single = sources.length === 1 && !star;
  const maxItems = options.maxItemsInFlight ?? DEFAULT_MAX_ITEMS;
  const maxBytes = options.maxBytesInFlight ?? DEFAULT_MAX_BYTES;
  const outcomes = options.outcomes ?? false;
  const itemTimeout = options.itemTimeout;
  const abort = new AbortController();
  const taskOptions: TaskOptions = {
    signal: abort.signal,
    retries: options.retries ?? ctx.retries,
  };
  let controller!: ReadableStreamDefaultController<R>;
  const entries: Entry[] = [];
  let entryHead = 0;
  const completed: Entry[] = [];
  /** Items submitted and not yet handed to the stream (the work window). */
  let outstanding = 0;
  /** Items read from the sources: the index of the next one. */
  let index = 0;
  /** Items handed to the stream. */
  let handed = 0;
  /**
   * Estimated bytes held for this map: items read, arguments of tasks in
   * flight, results not yet taken by the consumer.
   */
  let bytes = 0;
  /**
   * Results handed to the stream and perhaps still in its queue, as pairs
   * (value of `handed` after them, their bytes); dropped once taken.
   */
  const queued: number[] = [];
  let queuedHead = 0;
  /** Moving averages of estimated bytes per item, of arguments and results. */
  let argItemBytes = 0;
  let resultItemBytes = 0;
  /** A source read that had not settled when its chunk was sent. */
  let carried: Promise<unknown> | undefined;
  let sourceDone = false;
  /** The source whose end ended the zip (the others are closed at the end). */
  let endedBy = -1;
  let feeding = false;
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

  function closeSources(): void {
    for (let i = 0; i < sources.length; i++) {
      if (i === endedBy) continue;
      try {
        sources[i]!.return();
      } catch { /* the source's return() threw: nothing to do */ }
    }
  }

  function finish(): void {
    if (finished) return;
    finished = true;
    if (timer !== undefined) clearTimeout(timer);
    options.signal?.removeEventListener("abort", onAbort);
    // Sources still open: all of them when cancelled or failed, the longer
    // ones of a zip that ended with its shortest source.
    if (!sourceDone || endedBy >= 0) closeSources();
    sourceDone = true;
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

  /**
   * Items the consumer has taken: those handed to the stream minus those
   * still in its queue. Releases the bytes of results taken.
   */
  function taken(): number {
    const size = controller.desiredSize;
    const count = handed - (size === null ? 0 : Math.max(0, -size));
    while (queuedHead < queued.length && queued[queuedHead]! <= count) {
      bytes -= queued[queuedHead + 1]!;
      queuedHead += 2;
    }
    if (queuedHead > 2048 && queuedHead * 2 > queued.length) {
      queued.splice(0, queuedHead);
      queuedHead = 0;
    }
    return count;
  }

  /** Whether the budget allows reading another item. */
  function hasRoom(): boolean {
    return index - taken() < maxItems && bytes < maxBytes;
  }

  function toArgs(items: unknown[]): unknown[] {
    if (star) {
      const item = items[0];
      if (!Array.isArray(item)) {
        throw new TypeError(
          `Pool.map() with 'star' needs each item to be an array of arguments, item ${index} is ${typeof item}`,
        );
      }
      return item;
    }
    return items;
  }

  /**
   * The next unit of work: an item (one plain source) or an argument list,
   * `END` at the end of the sources, or a promise of either for async ones.
   */
  function nextUnit(): unknown {
    if (single) {
      const r = sources[0]!.next();
      if (r instanceof Promise) {
        return r.then((v) => v.done ? END : v.value);
      }
      return r.done ? END : r.value;
    }
    const items = new Array(sources.length);
    for (let i = 0; i < sources.length; i++) {
      const r = sources[i]!.next();
      if (r instanceof Promise) {
        // An async source: finish this item asynchronously.
        return r.then(async (first) => {
          if (first.done) return ended(i);
          items[i] = first.value;
          for (let j = i + 1; j < sources.length; j++) {
            let rj = sources[j]!.next();
            if (rj instanceof Promise) rj = await rj;
            if (rj.done) return ended(j);
            items[j] = rj.value;
          }
          return toArgs(items);
        });
      }
      if (r.done) return ended(i);
      items[i] = r.value;
    }
    return toArgs(items);
  }

  /** Source `i` is exhausted: the zip ends there. */
  function ended(i: number): typeof END {
    if (sources.length > 1) endedBy = i;
    return END;
  }

  /**
   * Items for the next task. A `chunkSize` fixes it; else a chunk keeps a
   * worker busy for about CHUNK_TARGET_MS (tiny tasks go in large chunks, long
   * ones one by one, so no worker holds a backlog while another idles),
   * holds about CHUNK_BYTES of arguments or results at most, and a quarter
   * of the item budget at most (so several chunks are in flight).
   */
  function chunkSize(): number {
    if (fixedChunk !== undefined) return fixedChunk;
    if (itemTimeout !== undefined) return 1;
    const itemMs = ctx.itemMs();
    if (itemMs === undefined) return 1;
    const byTime = Math.floor(CHUNK_TARGET_MS / Math.max(itemMs, 1e-5));
    const itemBytes = Math.max(argItemBytes, resultItemBytes, 1);
    const byBytes = Math.floor(CHUNK_BYTES / itemBytes);
    return Math.max(
      1,
      Math.min(MAX_CHUNK, byTime, byBytes, Math.floor(maxItems / 4)),
    );
  }

  /** Items that may be submitted and not yet handed over: two tasks a slot. */
  function window(size: number): number {
    return Math.max(4, 2 * ctx.slots()) * size;
  }

  function launch(units: unknown[], argBytes: number, size: number): void {
    const count = units.length;
    const entry: Entry = {
      index: index - count,
      count,
      bytes: argBytes,
      done: false,
      values: undefined,
      error: undefined,
      failed: false,
    };
    if (ordered) entries.push(entry);
    outstanding += count;
    argItemBytes = average(argItemBytes, argBytes / count);
    const kind: CallKind = size === 1 ? "call" : single ? "items" : "chunk";
    const args = kind !== "call" || single ? units : units[0] as unknown[];
    submit(args, kind, count).then(
      (value) => {
        const values = kind === "call" ? [value] : value as unknown[];
        if (outcomes) {
          for (let i = 0; i < count; i++) {
            values[i] = fulfilled(entry.index + i, values[i]);
          }
        }
        settle(entry, values);
      },
      (error) => {
        if (!outcomes || error instanceof PoolClosedError || finished) {
          bytes -= entry.bytes;
          entry.bytes = 0;
          // Which item failed: the only one, or the one the worker named.
          const at = count === 1 ? 0 : chunkItem(error, count);
          entry.error = error instanceof PoolClosedError || at === undefined
            ? error
            : _atItem(error, entry.index + at);
          entry.failed = true;
          entry.done = true;
          if (!ordered) fail(error);
          else notify();
        } else if (count === 1) {
          settle(entry, [rejected(entry.index, error)]);
        } else {
          retryAlone(entry, units, kind);
        }
      },
    );
  }

  function submit(
    args: unknown[],
    kind: CallKind,
    count: number,
  ): Promise<unknown> {
    return ctx.submit(
      args,
      kind,
      itemTimeout === undefined
        ? taskOptions
        : { ...taskOptions, timeout: itemTimeout * count },
    );
  }

  /** An entry's results are in: it now holds their bytes instead of the arguments'. */
  function settle(entry: Entry, values: unknown[]): void {
    const resultBytes = estimateBytes(values);
    resultItemBytes = average(resultItemBytes, resultBytes / entry.count);
    bytes += resultBytes - entry.bytes;
    entry.bytes = resultBytes;
    entry.values = values;
    entry.done = true;
    if (!ordered) completed.push(entry);
    notify();
    feed();
  }

  /**
   * A chunk failed with `outcomes`: runs each of its items again alone, so
   * each gets its own outcome.
   */
  function retryAlone(entry: Entry, units: unknown[], kind: CallKind): void {
    const values = new Array<unknown>(units.length);
    let left = units.length;
    const one = (i: number, outcome: unknown) => {
      values[i] = outcome;
      if (--left === 0 && !finished) settle(entry, values);
    };
    for (let i = 0; i < units.length; i++) {
      const args = kind === "items" ? [units[i]] : units[i] as unknown[];
      submit(args, "call", 1).then(
        (value) => one(i, fulfilled(entry.index + i, value)),
        (error) => {
          if (error instanceof PoolClosedError) fail(error);
          else one(i, rejected(entry.index + i, error));
        },
      );
    }
  }

  /**
   * Reads up to `size` units and submits them as one task. Only the first is
   * waited for: a chunk ends early at a read of an async source that does not
   * settle at once (slow input is not held back to fill a chunk; that read
   * starts the next chunk), at CHUNK_BYTES, and where the budget ends.
   * False if the map finished meanwhile.
   */
  async function take(size: number): Promise<boolean> {
    const units: unknown[] = [];
    let chunkBytes = 0;
    // The budget left (it only grows while the chunk is read).
    const items = maxItems - (index - taken());
    const room = Math.min(CHUNK_BYTES, maxBytes - bytes);
    while (units.length < size) {
      if (units.length > 0 && (units.length >= items || chunkBytes >= room)) {
        break;
      }
      let unit = carried ?? nextUnit();
      carried = undefined;
      if (unit instanceof Promise) {
        if (units.length > 0 && !await settlesSoon(unit)) {
          carried = unit;
          break;
        }
        unit = await unit;
      }
      if (finished) return false;
      if (unit === END) {
        sourceDone = true;
        break;
      }
      index++;
      const b = estimateBytes(unit);
      chunkBytes += b;
      bytes += b;
      units.push(unit);
    }
    if (units.length) launch(units, chunkBytes, size);
    return true;
  }

  async function feed(): Promise<void> {
    if (feeding || sourceDone || finished) return;
    feeding = true;
    try {
      for (;;) {
        const size = chunkSize();
        if (
          sourceDone || finished || outstanding >= window(size) || !hasRoom()
        ) break;
        if (!await take(size)) return;
      }
    } catch (error) {
      fail(error);
    } finally {
      feeding = false;
      notify();
    }
  }

  /** The next finished entry in delivery order, if any (not a failed one). */
  function nextReady(): Entry | undefined {
    if (!ordered) return completed.shift();
    const head = entries[entryHead];
    if (!head?.done || head.failed) return undefined;
    takeHead();
    return head;
  }

  /** Drops the delivered head entry; compacts the list now and then. */
  function takeHead(): void {
    entries[entryHead++] = undefined as unknown as Entry;
    if (entryHead > 1024 && entryHead * 2 > entries.length) {
      entries.splice(0, entryHead);
      entryHead = 0;
    }
  }

  /** Hands an entry's results to the stream. */
  function handOver(entry: Entry): void {
    outstanding -= entry.count;
    const values = entry.values!;
    for (let i = 0; i < values.length; i++) controller.enqueue(values[i] as R);
    handed += values.length;
    queued.push(handed, entry.bytes);
  }

  return new ReadableStream<R>({
    start(c): void {
      controller = c;
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
    async pull(): Promise<void> {
      feed();
      for (;;) {
        if (failed) {
          controller.error(failure);
          return;
        }
        let entry: Entry | undefined;
        if (ordered) {
          const head = entries[entryHead];
          if (head?.done) {
            takeHead();
            if (head.failed) {
              fail(head.error);
              continue;
            }
            entry = head;
          }
        } else {
          entry = completed.shift();
        }
        if (entry) {
          // Hand over every result that is ready, not just one entry's.
          do {
            handOver(entry);
            entry = nextReady();
          } while (entry);
          feed();
          return;
        }
        if (sourceDone && !feeding && outstanding === 0) {
          finish();
          controller.close();
          return;
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
  }, { highWaterMark: 0 });
}
