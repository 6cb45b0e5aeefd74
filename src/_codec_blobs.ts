/**
 * Blobs in values: a `Blob`'s bytes can only be read asynchronously, so
 * {@link _readBlobs} reads those of every `Blob`/`File` in a task's arguments
 * or result before the (synchronous) encoder runs, and keeps them in
 * `blobBytes` (`src/_codec_ext.ts`). A cheap scan first tells values that
 * cannot hold one, so plain data pays one pass at most.
 *
 * @module
 */
import { check, type Walk } from "./_codec_check.ts";
import { blobBytes } from "./_codec_ext.ts";

/** Objects {@link mayHoldBlob} visits before it gives up (and says yes). */
const BLOB_SCAN_BUDGET = 4096;
let scanBudget = 0;

/**
 * Whether `value` may hold a Blob: `false` only for plain objects, arrays,
 * primitives and the common built-ins, found within a visit budget (shared
 * or circular references end there too).
 */
function mayHoldBlob(value: unknown): boolean {
  if (typeof value !== "object" || value === null) return false;
  if (--scanBudget < 0) return true;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const v = value[i];
      if (typeof v === "object" && v !== null && mayHoldBlob(v)) return true;
    }
    return false;
  }
  const constructor = value.constructor;
  if (constructor === Object) {
    for (const key in value) {
      if (mayHoldBlob((value as Record<string, unknown>)[key])) return true;
    }
    return false;
  }
  if (constructor === Map) {
    for (const [k, v] of value as Map<unknown, unknown>) {
      if (mayHoldBlob(k) || mayHoldBlob(v)) return true;
    }
    return false;
  }
  if (constructor === Set) {
    for (const v of value as Set<unknown>) if (mayHoldBlob(v)) return true;
    return false;
  }
  return !(ArrayBuffer.isView(value) || constructor === Date);
}

/**
 * Reads the bytes of every `Blob`/`File` in `value` so that {@link encode}
 * can send them. Returns `undefined` (no await needed) when there is none
 * left to read, or when `value` cannot cross at all ({@link encode} says why).
 * Cheap for values without Blobs: one pass over plain data.
 */
export function _readBlobs(value: unknown): Promise<void> | undefined {
  scanBudget = BLOB_SCAN_BUDGET;
  try {
    if (!mayHoldBlob(value)) return undefined;
  } catch {
    return undefined; // a throwing getter: encode() reports it
  }
  const walk: Walk = { seen: new Set(), path: [], unread: undefined };
  try {
    check(value, walk, value);
  } catch {
    return undefined;
  }
  const unread = walk.unread;
  if (!unread) return undefined;
  return Promise.all(unread.map(async (blob) => {
    blobBytes.set(blob, await blob.bytes());
  })).then(() => {});
}
