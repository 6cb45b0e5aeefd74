/**
 * `Pool.map()` and `Pool.transform()` over the map engine (`map_stream.ts`):
 * the pool's side of a {@link MapContext}. The engine decides chunks and the
 * window; this adapter sends its tasks, lends it the pool's slots and
 * measurements, and keeps a started map's hold on the pool (`close()` waits
 * for it, and its tasks are taken while the pool drains).
 *
 * @module
 */
import { PoolClosedError } from "./errors.ts";
import type { FunctionSpec } from "./function_ref.ts";
import {
  createMapStream,
  type MapContext,
  type MapOptions,
} from "./map_stream.ts";
import { DEFAULTS } from "./options.ts";
import { sendWhenRead } from "./pool_call.ts";
import { _readBlobs } from "./_codec.ts";
import type { PoolParts } from "./pool_parts.ts";

/**
 * What `Pool.map()` reads items from: a sync or async iterable (an array, a
 * generator, a `Set`, a string) or a `ReadableStream`.
 */
export type MapSource<T> = Iterable<T> | AsyncIterable<T> | ReadableStream<T>;

/**
 * Opens the pool for a map's first task.
 * @throws {PoolClosedError} saying that the map was first read too late.
 */
function openForMap(parts: PoolParts): void {
  try {
    parts.open();
  } catch (error) {
    if (!(error instanceof PoolClosedError)) throw error;
    throw new PoolClosedError(
      "The pool was closed before this map was first read: a map " +
        "runs as it is read, so read it before closing its pool (inside " +
        "the pool's `await using` scope), or close the pool after the " +
        "map is done",
      { cause: error },
    );
  }
}

/**
 * The pool's side of one map.
 *
 * @param parts The pool's parts.
 * @param spec The mapped function.
 * @param sources The sources as the caller gave them.
 * @param options The map's options.
 * @returns What the map engine needs.
 */
export function mapContext(
  parts: PoolParts,
  spec: FunctionSpec,
  sources: unknown[],
  options: MapOptions,
): MapContext {
  const { dispatcher, life, keepAlive } = parts;
  /**
   * From its first task to its end, a map holds the pool open: close()
   * waits for it, and its tasks are taken while the pool drains.
   */
  let open = false;
  /** Opens the pool before each of the map's tasks (not while it drains). */
  const admit = (): void => {
    if (open) {
      // The pool is started and held by this map already (KeepAlive lets go
      // only once no map holds it): what remains of parts.open() is the
      // check that the pool takes work, once per task (a call per task
      // costs, above all while the code is cold). Running, it does (a
      // failure ends that phase); draining, this map's tasks are taken.
      const phase = life.phase;
      if (phase !== "running" && phase !== "draining") life.checkOpen();
      return;
    }
    openForMap(parts);
    open = true;
    keepAlive.mapStarted();
    parts.open();
  };
  const submitTo: NonNullable<MapContext["submitTo"]> = (
    args,
    kind,
    taskOptions,
    tag,
    resolve,
    reject,
    primitive,
  ) => {
    const reading = primitive ? undefined : _readBlobs(args);
    if (reading === undefined) {
      admit();
      dispatcher.submitTo(spec, args, kind, taskOptions, tag, resolve, reject);
      return;
    }
    reading.then(() => {
      admit();
      dispatcher.submitTo(spec, args, kind, taskOptions, tag, resolve, reject);
    }).catch((error) => reject(error, tag));
  };
  const send: MapContext["submit"] = (args, kind, taskOptions) => {
    admit();
    return dispatcher.submit(spec, args, kind, taskOptions);
  };
  return {
    submit: (args, kind, taskOptions) =>
      sendWhenRead(args, () => send(args, kind, taskOptions)),
    submitTo,
    ended: () => {
      if (!open) return;
      open = false;
      life.notify();
      keepAlive.mapEnded();
    },
    slots: () => dispatcher.slots(parts.fleet.targetWorkers, spec.id),
    itemMs: () => dispatcher.itemMs(spec.id),
    sources,
    options,
    retries: parts.options.retries ?? DEFAULTS.retries,
  };
}

/**
 * `Pool.map()` after its argument checks: a stream of results.
 *
 * @throws {TypeError} for bad map options or no source.
 */
export function mapOnPool(
  parts: PoolParts,
  spec: FunctionSpec,
  sources: unknown[],
  options: MapOptions,
): ReadableStream<unknown> {
  return createMapStream(mapContext(parts, spec, sources, options));
}

/**
 * `Pool.transform()`: a writable side whose items `map` maps, and the
 * readable side `map` returns.
 *
 * @param map Maps one source with the options.
 * @param options The transform's options.
 * @returns A `{ writable, readable }` pair.
 * @throws {TypeError} when `options` is not an object.
 */
export function transformPair(
  map: (source: ReadableStream<unknown>) => ReadableStream<unknown>,
  options: MapOptions,
): ReadableWritablePair<unknown, unknown> {
  if (options === null || typeof options !== "object") {
    throw new TypeError(
      `Pool.transform() options must be an object, got ${
        options === null ? "null" : typeof options
      }`,
    );
  }
  // The identity stream's buffer holds one item: the map pulls from it only
  // as its budget allows, so the writer waits while the workers are busy.
  const input = new TransformStream<unknown, unknown>(
    undefined,
    { highWaterMark: 1 },
    { highWaterMark: 0 },
  );
  return { writable: input.writable, readable: map(input.readable) };
}
