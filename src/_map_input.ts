/**
 * What `Pool.map()` reads: its sources as one kind of iterator, and the cheap
 * size estimate its budget counts items with.
 *
 * @module
 */

type Next = IteratorResult<unknown> | Promise<IteratorResult<unknown>>;

/** A source as the map engine reads it. */
export interface Source {
  next(): Next;
  return(): void;
}

/**
 * Wraps a source of `Pool.map()` (`position`: its place among them).
 * @throws {TypeError} for what is not iterable.
 */
export function toSource(value: unknown, position: number): Source {
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

/** {@link estimateBytes} of a number (and of any other primitive but a string). */
const NUMBER_BYTES = 9;

/** What {@link MapInputs.next} returns at the end of the sources. */
export const END: unique symbol = Symbol("end");

const ARRAY_VALUES = Array.prototype[Symbol.iterator];
const ARRAY_ITERATOR = Object.getPrototypeOf([][Symbol.iterator]());
const ARRAY_NEXT = ARRAY_ITERATOR.next;

/**
 * Whether `value` is an array that iterates as arrays do by default: it is
 * then read by index, which is what its iterator would do, without the
 * iterator's cost per item.
 */
function plainArray(value: unknown): value is readonly unknown[] {
  return Array.isArray(value) && value[Symbol.iterator] === ARRAY_VALUES &&
    ARRAY_ITERATOR.next === ARRAY_NEXT;
}

/**
 * The sources of one `Pool.map()`, zipped: yields units of work, each an
 * item (one source, no `star`) or an argument list.
 */
export class MapInputs {
  /** One source and no `star`: units are the items themselves. */
  readonly single: boolean;
  readonly #sources: Source[];
  readonly #star: boolean;
  /** The one source when it is a plain array, read by index. */
  readonly #array: readonly unknown[] | undefined;
  #at = 0;
  /** Units returned so far (the index of the next one). */
  #count = 0;
  /** Whether the sources ended (a zip ends with its shortest source). */
  #done = false;
  /** The source whose end ended a zip (the others are closed at the end). */
  #endedBy = -1;

  /**
   * @throws {TypeError} for no source, a source that is not iterable, or
   * `star` with several sources.
   */
  constructor(sources: unknown[], star: boolean) {
    if (sources.length === 0) {
      throw new TypeError("Pool.map() needs at least one iterable");
    }
    this.#sources = sources.map(toSource);
    if (star && sources.length > 1) {
      throw new TypeError(
        "Pool.map() option 'star' takes one iterable of argument lists, got several iterables",
      );
    }
    this.#star = star;
    this.single = sources.length === 1 && !star;
    this.#array = sources.length === 1 && plainArray(sources[0])
      ? sources[0]
      : undefined;
    this.bulk = this.#array !== undefined && this.single;
  }

  /**
   * The next unit, `END` at the end of the sources, or a promise of either
   * for async ones. Call it again only once a promise it gave settled.
   * @throws {TypeError} for a `star` item that is not an argument list.
   */
  next(): unknown {
    if (this.#done) return END;
    const array = this.#array;
    if (array !== undefined) {
      if (this.#at < array.length) return this.#unit(array[this.#at++]);
      return this.#ended(0);
    }
    const sources = this.#sources;
    if (sources.length === 1) {
      const r = sources[0]!.next();
      if (r instanceof Promise) {
        return r.then((v) => v.done ? this.#ended(0) : this.#unit(v.value));
      }
      return r.done ? this.#ended(0) : this.#unit(r.value);
    }
    const items = new Array(sources.length);
    for (let i = 0; i < sources.length; i++) {
      const r = sources[i]!.next();
      if (r instanceof Promise) {
        // An async source: finish this unit asynchronously.
        return r.then(async (first) => {
          if (first.done) return this.#ended(i);
          items[i] = first.value;
          for (let j = i + 1; j < sources.length; j++) {
            let rj = sources[j]!.next();
            if (rj instanceof Promise) rj = await rj;
            if (rj.done) return this.#ended(j);
            items[j] = rj.value;
          }
          return this.#unit(items);
        });
      }
      if (r.done) return this.#ended(i);
      items[i] = r.value;
    }
    return this.#unit(items);
  }

  /**
   * Whether {@link MapInputs.slice} reads the next units (read only; a field,
   * not a getter, as it is read for every task).
   */
  bulk: boolean;

  /** Whether the sources ended (read only, as {@link MapInputs.bulk}). */
  done = false;

  /** The sources ended, or are closed. */
  #end(): void {
    this.#done = this.done = true;
    this.bulk = false;
  }

  /** Estimated bytes of the units the last {@link MapInputs.slice} read. */
  sliceBytes = 0;
  /**
   * Whether the units the last {@link MapInputs.slice} read are all
   * primitives (no object among them, so no `Blob` either).
   */
  slicePrimitive = true;

  /**
   * The next units of a plain array source (when {@link MapInputs.bulk}),
   * as one new array: up to `n` of them, ending after the one whose
   * estimated bytes reach `room`. Reading fewer than `n` for want of items
   * ends the sources, as reading to the array's end does.
   */
  slice(n: number, room: number): unknown[] {
    const array = this.#array!;
    const from = this.#at;
    const units = array.slice(from, from + n);
    const length = units.length;
    let i = 0;
    // Numbers (the common case) first, in the smallest loop there is: it
    // runs per item, and cold (in a program's first map) as often as not.
    if (NUMBER_BYTES * length < room) {
      while (i < length && typeof units[i] === "number") i++;
    }
    let bytes = NUMBER_BYTES * i;
    let primitive = true;
    while (i < length) {
      const unit = units[i];
      // A hole reads as undefined, as the array's iterator reads it.
      if (unit === undefined && !(i in units)) units[i] = undefined;
      else if (typeof unit === "object" && unit !== null) primitive = false;
      bytes += estimateBytes(unit);
      i++;
      if (bytes >= room) break;
    }
    if (i < length) units.length = i;
    else if (i < n) this.#end();
    this.#at = from + i;
    this.#count += i;
    this.sliceBytes = bytes;
    this.slicePrimitive = primitive;
    return units;
  }

  #unit(value: unknown): unknown {
    if (this.#star && !Array.isArray(value)) {
      throw new TypeError(
        `Pool.map() with 'star' needs each item to be an array of arguments, item ${this.#count} is ${typeof value}`,
      );
    }
    this.#count++;
    return value;
  }

  /** Source `i` is exhausted: the zip ends there. */
  #ended(i: number): typeof END {
    this.#end();
    if (this.#sources.length > 1) this.#endedBy = i;
    return END;
  }

  /**
   * Closes the sources still open (`return()`): all of them when the map
   * stopped early, the longer ones of a zip that ended with its shortest.
   */
  close(): void {
    if (this.#done && this.#endedBy < 0) return;
    this.#end();
    for (let i = 0; i < this.#sources.length; i++) {
      if (i === this.#endedBy) continue;
      try {
        this.#sources[i]!.return();
      } catch { /* the source's return() threw: nothing to do */ }
    }
    this.#endedBy = -1;
  }
}

/**
 * A cheap estimate of the bytes `value` takes, for the map's budget: exact
 * for byte arrays, blobs and (as UTF-16 units) strings; a constant for
 * primitives; for arrays and objects, a sample of at most 8 members, three
 * levels deep.
 */
export function estimateBytes(value: unknown, depth = 0): number {
  if (typeof value === "string") return value.length + 4;
  if (typeof value !== "object" || value === null) return NUMBER_BYTES;
  if (ArrayBuffer.isView(value)) return value.byteLength + 8;
  if (value instanceof ArrayBuffer) return value.byteLength + 8;
  if (depth >= 3) return 64;
  if (Array.isArray(value)) {
    const n = value.length;
    // (Numbers without a call: a map's results are often lists of them.)
    if (n <= 8) {
      let sum = 4;
      for (let i = 0; i < n; i++) {
        const v = value[i];
        sum += typeof v === "number"
          ? NUMBER_BYTES
          : estimateBytes(v, depth + 1);
      }
      return sum;
    }
    let sum = 0;
    for (let i = 0; i < 8; i++) {
      const v = value[Math.floor(i * n / 8)];
      sum += typeof v === "number" ? NUMBER_BYTES : estimateBytes(v, depth + 1);
    }
    return 4 + Math.round(sum * n / 8);
  }
  if (value instanceof Map || value instanceof Set) return 8 + value.size * 32;
  if (value instanceof Blob) return value.size + 8;
  const keys = Object.keys(value);
  const n = keys.length;
  const step = n > 8 ? n / 8 : 1;
  let sum = 0;
  let seen = 0;
  for (let i = 0; i < n; i += step) {
    const key = keys[Math.floor(i)]!;
    sum += key.length + 2 +
      estimateBytes((value as Record<string, unknown>)[key], depth + 1);
    seen++;
  }
  return 8 + (seen === n ? sum : Math.round(sum * n / seen));
}

/**
 * Whether `promise` settles within a few microtask turns, that is without
 * waiting for I/O or timers.
 */
export async function settlesSoon(promise: Promise<unknown>): Promise<boolean> {
  let settled = false;
  const mark = () => void (settled = true);
  promise.then(mark, mark);
  for (let i = 0; i < 8 && !settled; i++) await undefined;
  return settled;
}
