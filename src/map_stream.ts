/**
 * `Pool.map()`: a pull-based `ReadableStream` over zipped (async) iterables.
 * The source is read only as far as the window of tasks in flight allows, and
 * results are delivered in input order (or as they complete).
 *
 * @module
 */
import type { TaskOptions } from "./options.ts";

/** Options of `Pool.map()`; pass them as the last argument. */
export interface MapOptions {
  /**
   * Items sent to a worker in one task. Larger chunks cut overhead for tiny
   * tasks.
   * @default {1}
   */
  chunkSize?: number;
  /**
   * Deliver results in input order (`true`) or as they complete (`false`).
   * @default {true}
   */
  ordered?: boolean;
  /**
   * Spread each item of a single source into the function's arguments
   * (`starmap`): `[[1, 2], [3, 4]]` calls `fn(1, 2)` and `fn(3, 4)`.
   * @default {false}
   */
  star?: boolean;
  /** Milliseconds for the whole map; then the stream errors with a `TimeoutError`. */
  timeout?: number;
  /** Aborting errors the stream with `signal.reason` and drops work in flight. */
  signal?: AbortSignal;
  /** Resend a task whose worker died up to this many times. */
  retries?: number;
}

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
}

const CHUNK_TARGET_MS = 1;
const MAX_CHUNK = 4096;

type Next = IteratorResult<unknown> | Promise<IteratorResult<unknown>>;

interface Source {
  next(): Next;
  return(): void;
}

interface Entry {
  done: boolean;
  values: unknown[] | undefined;
  error: unknown;
  failed: boolean;
}

function toSource(value: unknown, position: number): Source {
  if (value instanceof ReadableStream) {
    const it = value[Symbol.asyncIterator]();
    return {
      next: () => it.next(),
      return: () => void it.return?.().catch(() => {}),
    };
  }
  if (
    value !== null && typeof value === "object" || typeof value === "string"
  ) {
    const v = value as object;
    if (Symbol.asyncIterator in v) {
      const it = (v as AsyncIterable<unknown>)[Symbol.asyncIterator]();
      return {
        next: () => it.next(),
        return: () => void it.return?.()?.catch?.(() => {}),
      };
    }
    if (Symbol.iterator in Object(v)) {
      const it = (v as Iterable<unknown>)[Symbol.iterator]();
      return {
        next: () => it.next(),
        return: () => void it.return?.(),
      };
    }
  }
  throw new TypeError(
    `Pool.map() argument ${
      position + 2
    } must be an Iterable, AsyncIterable or ` +
      `ReadableStream (or the options object, last), got ${
        value === null ? "null" : typeof value
      }`,
  );
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
  if (timeout !== undefined && !(timeout >= 0 && Number.isFinite(timeout))) {
    throw new RangeError(
      `Pool.map() option 'timeout' must be a finite number of ms >= 0, got ${timeout}`,
    );
  }
  if (retries !== undefined && (!Number.isInteger(retries) || retries < 0)) {
    throw new RangeError(
      `Pool.map() option 'retries' must be an integer >= 0, got ${retries}`,
    );
  }
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
  const single = ctx.sources.length === 1 && !(options.star ?? false);
  const ordered = options.ordered ?? true;
  const star = options.star ?? false;
  if (star && sources.length > 1) {
    throw new TypeError(
      "Pool.map() option 'star' takes one iterable of argument lists, got several iterables",
    );
  }
  const abort = new AbortController();
  const taskOptions: TaskOptions = {
    signal: abort.signal,
    retries: options.retries ?? ctx.retries,
  };
  const entries: Entry[] = [];
  let entryHead = 0;
  const completed: Entry[] = [];
  /** Items submitted and not yet handed to the consumer. */
  let outstanding = 0;
  let sourceDone = false;
  /** The source whose end ended the zip (the others are closed at the end). */
  let endedBy = -1;
  let feeding = false;
  let finished = false;
  let failure: unknown = undefined;
  let failed = false;
  let wake: PromiseWithResolvers<void> | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let index = 0;

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

  /** One zipped item's arguments (a promise for async sources), or undefined at the end. */
  function nextArgsSync():
    | unknown[]
    | undefined
    | Promise<unknown[] | undefined> {
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
  function ended(i: number): undefined {
    if (sources.length > 1) endedBy = i;
    return undefined;
  }

  /**
   * Without a `chunkSize`, items are batched so that a chunk keeps a worker
   * busy for about CHUNK_TARGET_MS: tiny tasks go in large chunks, long tasks
   * one by one (so no worker holds a backlog while another idles).
   */
  function adaptiveChunk(): number {
    const itemMs = ctx.itemMs();
    if (itemMs === undefined) return 1;
    const size = Math.floor(CHUNK_TARGET_MS / Math.max(itemMs, 1e-5));
    return Math.max(1, Math.min(MAX_CHUNK, size));
  }

  /** Items that may be outstanding: two tasks per slot, `chunkSize` each. */
  function window(chunkSize: number): number {
    return Math.max(4, 2 * ctx.slots()) * chunkSize;
  }

  function launch(args: unknown[], kind: CallKind): void {
    const entry: Entry = {
      done: false,
      values: undefined,
      error: undefined,
      failed: false,
    };
    if (ordered) entries.push(entry);
    outstanding += kind === "call" ? 1 : args.length;
    ctx.submit(args, kind, taskOptions).then(
      (value) => {
        entry.values = kind === "call" ? [value] : value as unknown[];
        entry.done = true;
        if (!ordered) completed.push(entry);
        notify();
        feed();
      },
      (error) => {
        entry.error = error;
        entry.failed = true;
        entry.done = true;
        if (!ordered) fail(error);
        else notify();
      },
    );
  }

  /**
   * Reads up to `n` units from the sources: items (`flat`) or zipped argument
   * lists. Marks the source done at its end; undefined if the map finished
   * meanwhile.
   */
  async function take(
    n: number,
    flat: boolean,
  ): Promise<unknown[] | undefined> {
    const chunk: unknown[] = [];
    while (chunk.length < n) {
      let unit: unknown;
      if (flat) {
        let r = sources[0]!.next();
        if (r instanceof Promise) r = await r;
        if (r.done) sourceDone = true;
        unit = r.value;
      } else {
        let args = nextArgsSync();
        if (args instanceof Promise) args = await args;
        if (args === undefined) sourceDone = true;
        unit = args;
      }
      if (finished) return undefined;
      if (sourceDone) break;
      index++;
      chunk.push(unit);
    }
    return chunk;
  }

  async function feed(): Promise<void> {
    if (feeding || sourceDone || finished) return;
    feeding = true;
    try {
      for (;;) {
        const chunkSize = fixedChunk ?? adaptiveChunk();
        if (sourceDone || finished || outstanding >= window(chunkSize)) break;
        if (chunkSize === 1) {
          let args = nextArgsSync();
          if (args instanceof Promise) args = await args;
          if (finished) return;
          if (args === undefined) {
            sourceDone = true;
            break;
          }
          index++;
          launch(args, "call");
        } else {
          // One source, no spreading: send the items themselves (flat).
          const chunk = await take(chunkSize, single);
          if (chunk === undefined) return;
          if (chunk.length) launch(chunk, single ? "items" : "chunk");
        }
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

  return new ReadableStream<R>({
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
    async pull(controller): Promise<void> {
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
            outstanding -= entry.values!.length;
            for (const v of entry.values!) controller.enqueue(v as R);
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
