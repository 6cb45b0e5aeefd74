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

/**
 * A cheap estimate of the bytes `value` takes, for the map's budget: exact
 * for byte arrays, blobs and (as UTF-16 units) strings; a constant for
 * primitives; for arrays and objects, a sample of at most 8 members, three
 * levels deep.
 */
export function estimateBytes(value: unknown, depth = 0): number {
  if (typeof value === "string") return value.length + 4;
  if (typeof value !== "object" || value === null) return 9;
  if (ArrayBuffer.isView(value)) return value.byteLength + 8;
  if (value instanceof ArrayBuffer) return value.byteLength + 8;
  if (depth >= 3) return 64;
  if (Array.isArray(value)) {
    const n = value.length;
    if (n <= 8) {
      let sum = 4;
      for (let i = 0; i < n; i++) sum += estimateBytes(value[i], depth + 1);
      return sum;
    }
    let sum = 0;
    for (let i = 0; i < 8; i++) {
      sum += estimateBytes(value[Math.floor(i * n / 8)], depth + 1);
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
