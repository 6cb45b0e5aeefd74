/**
 * The codec's encoder: one walk over a value that checks it and writes it as
 * MessagePack (`src/_msgpack.ts`), with the extension types of
 * `src/_codec_ext.ts` for what MessagePack has no format for. Objects are
 * numbered as they are met; a second meeting is a reference, and a message
 * with references is wrapped in one `Ext.Refs` so that the decoder numbers
 * objects only then. When the walk meets something it refuses, the check of
 * `src/_codec_check.ts` walks again to name it and its position.
 *
 * @module
 */
import { Writer } from "./_msgpack.ts";
import {
  _dataCloneError,
  check,
  refusal,
  unreadKind,
  type Walk,
} from "./_codec_check.ts";
import {
  blobBytes,
  ERROR_CLASSES,
  Ext,
  findUserType,
  LITTLE_ENDIAN,
  NUMBERS_MIN,
  RAW_MIN_BYTES,
  RESERVE,
  userClasses,
  VIEW_KINDS,
} from "./_codec_ext.ts";

/** Arrays up to this length are checked for holes and other properties first. */
const ARRAY_PROPS_CHECKED = 1024;

/**
 * Arrays the library made and filled itself (a chunk's results): no holes
 * and no other properties, so they are not looked at for them.
 */
export const _libraryArrays: WeakSet<unknown[]> = new WeakSet();

/** Thrown inside the walk: a value it refuses ({@link check} says why). */
const REFUSED = { refused: true };
/** Thrown inside the walk: a hole in an unchecked array; walk again. */
const RESTART = { restart: true };

let w = new Writer();
/** Objects written so far, by their number in encounter order. */
let ids = new Map<object, number>();
let nextId = 0;
let usedRefs = false;
/**
 * Arrays up to this depth are the protocol's own (a call's argument list, a
 * chunk's list of them, a list of map items): not checked for other
 * properties, which a task could not see (arguments are spread).
 */
let libraryDepth = 0;
/**
 * {@link libraryDepth} by message type, as laid out in src/protocol.ts:
 * Call and Init `[op, taskId, fnId, args]`, Items `[op, taskId, fnId,
 * [item, …]]`, Chunk `[op, taskId, fnId, [args, …]]`, Calls `[op, fnId,
 * taskIds, [args, …]]`, Results `[op, taskIds, [value, …], workUs]`.
 */
const LIBRARY_DEPTH: Record<number, number> = {
  4: 1,
  5: 2,
  8: 1,
  9: 1,
  10: 2,
  24: 1,
};
/**
 * Message types that carry several tasks or map items (Chunk, Items, Calls,
 * Results): each element of their arrays at depth 1 (a task's argument
 * list, an item, a task's value) is a unit of its own, as is each element
 * of one of {@link _libraryArrays} (a chunk's item results). At each unit
 * the walk forgets the objects it remembered (see {@link unitFrom}), so
 * that every task and every item gets its own copy, as separate frames (or
 * structuredClone per task) would give it; references within a unit are
 * kept. Numbering goes on, so the decoder needs no change.
 */
const SPLIT_OPS: Record<number, true> = {
  5: true,
  8: true,
  10: true,
  24: true,
};
/** 1 when the message's units are the elements of its depth-1 arrays. */
let splitDepth = -1;
/**
 * The number of the current unit's first object: an object remembered
 * with a lower number was met in an earlier unit, so is written again (and
 * renumbered). Cheaper than clearing {@link ids} at every unit.
 */
let unitFrom = 0;
/**
 * Object.prototype has no enumerable properties (as it should); undefined
 * until the message's first plain object asks.
 */
let protoClean: boolean | undefined;
/** After a {@link RESTART}: check every array for holes and properties. */
let checkAllArrays = false;
let busy = false;
/** Where large byte contents go, when the caller asked for raw segments. */
let raws: Uint8Array[] | undefined;

function put(value: unknown, depth: number): void {
  switch (typeof value) {
    case "number":
      if (value === 0 && 1 / value < 0) {
        w.extHeader(Ext.NegZero, 1);
        return w.byte(0);
      }
      return w.number(value);
    case "string":
      return w.string(value);
    case "object":
      if (value === null) return w.nil();
      return putObject(value, depth);
    case "boolean":
      return w.bool(value);
    case "undefined":
      w.extHeader(Ext.Undefined, 1);
      return w.byte(0);
    case "bigint":
      return putBigInt(value);
  }
  throw REFUSED;
}

function putBigInt(value: bigint): void {
  const at = w.beginExt(Ext.BigInt);
  w.string(value.toString(16));
  w.endExt(at);
}

function putObject(object: object, depth: number): void {
  if (Array.isArray(object)) {
    // The protocol's own arrays (the message, a call's argument list, a
    // chunk's lists) and a chunk's results: nothing in the message can
    // refer to them again (a task sees its arguments spread; results arrays
    // are the worker's own), so they are numbered, as the decoder numbers
    // every object, but not remembered.
    if (depth <= libraryDepth && libraryDepth !== 0) {
      nextId++;
      return putArray(object, depth, false);
    }
    if (_libraryArrays.has(object)) {
      nextId++;
      return putArray(object, depth, true);
    }
  }
  const id = ids.get(object);
  if (id !== undefined && id >= unitFrom) {
    usedRefs = true;
    w.extHeader(Ext.Ref, 4);
    w.ensure(4);
    w.view.setUint32(w.pos, id);
    w.pos += 4;
    return;
  }
  ids.set(object, nextId++);
  if (Array.isArray(object)) return putArray(object, depth, false);
  const constructor = object.constructor;
  if (constructor === Object) return putPlain(object, depth);
  putOther(object, constructor, depth);
}

/** `own`: one of {@link _libraryArrays}, with nothing to look for. */
function putArray(array: unknown[], depth: number, own: boolean): void {
  const length = array.length;
  // Each element a unit of its own (see SPLIT_OPS).
  const split = own || depth === splitDepth;
  if (
    !own &&
    (checkAllArrays || (depth > libraryDepth && length <= ARRAY_PROPS_CHECKED))
  ) {
    // Holes and other properties (structuredClone copies them; a RegExp
    // match has `index`, `input` and `groups`). Listing the keys of a long
    // array costs more than encoding it, so only short ones are checked
    // unless a hole was found.
    const keys = Object.keys(array);
    if (
      keys.length !== length ||
      (length > 0 && keys[length - 1] !== String(length - 1))
    ) {
      return putSparse(array, keys, depth, split);
    }
  }
  let from = 0;
  if (length >= NUMBERS_MIN && LITTLE_ENDIAN) {
    const stop = putNumbers(array, length);
    if (stop < 0) return;
    // Not all numbers: what the scan read is written from where it is kept
    // (each element is read once, as structuredClone reads it).
    w.arrayHeader(length);
    const ints = scanInts;
    const floats = scanFloats;
    const value = stopValue;
    stopValue = undefined;
    for (let i = 0; i < stop; i++) {
      if (i < floatsFrom) w.number(ints[i]!);
      else put(floats[i]!, depth + 1);
    }
    if (value === undefined && !(stop in array)) throw RESTART;
    if (split) unitFrom = nextId;
    put(value, depth + 1);
    from = stop + 1;
  } else {
    w.arrayHeader(length);
  }
  if (split) return putUnits(array, from, length, depth);
  for (let i = from; i < length; i++) {
    const v = array[i];
    if (v === undefined && !(i in array)) throw RESTART;
    put(v, depth + 1);
  }
}

/**
 * The elements of `array` from `from`, each a unit of its own (see
 * {@link SPLIT_OPS}): nothing to forget while nothing was remembered.
 */
function putUnits(
  array: unknown[],
  from: number,
  length: number,
  depth: number,
): void {
  for (let i = from; i < length; i++) {
    const v = array[i];
    if (v === undefined && !(i in array)) throw RESTART;
    if (ids.size !== 0) unitFrom = nextId;
    put(v, depth + 1);
  }
}

/** Most numbers the scratches of {@link putNumbers} keep (768 KiB). */
const NUMBERS_KEPT = 1 << 16;
let int32s = new Int32Array(256);
let float64s = new Float64Array(256);
/**
 * Where {@link putNumbers} stopped, when it did: the element it read there
 * (no number), the arrays holding the numbers before it (int32s up to
 * `floatsFrom`, float64s from there).
 */
let stopValue: unknown;
let scanInts: Int32Array = int32s;
let scanFloats: Float64Array = float64s;
let floatsFrom = 0;

/**
 * Writes `array` as one `Ext.Ints` (all int32, no `-0`) or `Ext.Numbers` if
 * its elements are all numbers, and returns -1. Tight loops and native
 * copies, so cheap even while the code is still cold. Otherwise writes
 * nothing and returns the index of the first element that is no number (a
 * hole or anything else): see {@link stopValue}.
 */
function putNumbers(array: unknown[], length: number): number {
  let v = array[0];
  if (typeof v !== "number") return stopAt(0, v, int32s, float64s, 0);
  let ints = int32s;
  if (ints.length < length) {
    ints = new Int32Array(Math.max(length, ints.length * 2));
    if (ints.length <= NUMBERS_KEPT) int32s = ints;
  }
  let i = 0;
  for (;;) {
    const n = v as number;
    if ((n | 0) !== n || (n === 0 && 1 / n < 0)) break;
    ints[i] = n;
    if (++i === length) {
      const size = length * 4;
      w.extHeader(Ext.Ints, size);
      w.raw(new Uint8Array(ints.buffer, 0, size));
      return -1;
    }
    v = array[i];
    if (typeof v !== "number") return stopAt(i, v, ints, float64s, i);
  }
  // The number at i is no int32: float64s from here on.
  const from = i;
  let floats = float64s;
  if (floats.length < length) {
    floats = new Float64Array(Math.max(length, floats.length * 2));
    if (floats.length <= NUMBERS_KEPT) float64s = floats;
  }
  floats.set(ints.subarray(0, i));
  floats[i] = v as number;
  for (i++; i < length; i++) {
    v = array[i];
    if (typeof v !== "number") return stopAt(i, v, ints, floats, from);
    floats[i] = v;
  }
  const size = length * 8;
  w.extHeader(Ext.Numbers, size);
  w.raw(new Uint8Array(floats.buffer, 0, size));
  return -1;
}

/**
 * Notes where {@link putNumbers} stopped (set last, so that an encode
 * inside a getter it called cannot change them) and returns `at`.
 */
function stopAt(
  at: number,
  value: unknown,
  ints: Int32Array,
  floats: Float64Array,
  from: number,
): number {
  stopValue = value;
  scanInts = ints;
  scanFloats = floats;
  floatsFrom = from;
  return at;
}

function putSparse(
  array: unknown[],
  keys: string[],
  depth: number,
  split: boolean,
): void {
  const at = w.beginExt(Ext.Sparse);
  w.number(array.length);
  w.number(keys.length);
  for (const key of keys) {
    w.string(key);
    if (split) unitFrom = nextId;
    put((array as unknown as Record<string, unknown>)[key], depth + 1);
  }
  w.endExt(at);
}

/** Own enumerable string-keyed properties, as structuredClone copies them. */
function putPlain(object: object, depth: number): void {
  const at = w.pos;
  w.byte(0x80);
  let n = 0;
  // Looked at once per message, when it first holds a plain object.
  protoClean ??= !objectProtoEnumerable();
  if (protoClean && Object.getPrototypeOf(object) === Object.prototype) {
    // Nothing inherited to skip.
    for (const key in object) {
      w.string(key);
      put((object as Record<string, unknown>)[key], depth + 1);
      n++;
    }
    return w.patchMapHeader(at, n);
  }
  for (const key in object) {
    if (!Object.hasOwn(object, key)) continue;
    w.string(key);
    put((object as Record<string, unknown>)[key], depth + 1);
    n++;
  }
  w.patchMapHeader(at, n);
}

/** Whether someone gave Object.prototype an enumerable property. */
function objectProtoEnumerable(): boolean {
  for (const _ in Object.prototype) return true;
  return false;
}

function putOther(object: object, constructor: unknown, depth: number): void {
  if (userClasses.length) {
    const type = findUserType(object);
    if (type) {
      const at = w.beginExt(Ext.User);
      w.string(type.name);
      put(type.encode(object as never), depth + 1);
      return w.endExt(at);
    }
  }
  if (constructor === Uint8Array) return putBytes(object as Uint8Array);
  if (ArrayBuffer.isView(object)) {
    const kind = object instanceof DataView
      ? 11
      : VIEW_KINDS.indexOf(object.constructor as never);
    if (kind < 0) {
      // A subclass: the nearest built-in kind.
      for (let k = 0; k < VIEW_KINDS.length; k++) {
        if (object instanceof VIEW_KINDS[k]!) return putView(object, k);
      }
      throw REFUSED;
    }
    return putView(object, kind);
  }
  let at: number;
  if (object instanceof Map) {
    at = w.beginExt(Ext.Map);
    w.number(object.size);
    for (const [k, v] of object) {
      put(k, depth + 1);
      put(v, depth + 1);
    }
  } else if (object instanceof Set) {
    at = w.beginExt(Ext.Set);
    w.number(object.size);
    for (const v of object) put(v, depth + 1);
  } else if (object instanceof Date) {
    at = w.beginExt(Ext.Date);
    w.float64(object.getTime());
  } else if (object instanceof RegExp) {
    at = w.beginExt(Ext.RegExp);
    w.string(object.source);
    w.string(object.flags);
  } else if (object instanceof Error || object instanceof DOMException) {
    at = w.beginExt(Ext.Error);
    putError(object, depth);
  } else if (object instanceof ArrayBuffer) {
    at = w.beginExt(Ext.Buffer);
    putBytes(new Uint8Array(object));
    if (object.resizable) w.number(object.maxByteLength);
  } else if (object instanceof URL) {
    at = w.beginExt(Ext.Url);
    w.string(object.href);
  } else if (object instanceof Blob) {
    const bytes = blobBytes.get(object);
    if (!bytes) throw REFUSED;
    at = w.beginExt(Ext.Blob);
    w.string(object.type);
    putBytes(bytes);
    if (object instanceof File) {
      w.string(object.name);
      w.number(object.lastModified);
    }
  } else if (
    object instanceof Boolean || object instanceof Number ||
    object instanceof String
  ) {
    at = w.beginExt(Ext.Boxed);
    put(object.valueOf(), depth + 1);
  } else {
    const tag = Object.prototype.toString.call(object);
    if (tag === "[object BigInt]") {
      at = w.beginExt(Ext.Boxed);
      putBigInt((object as { valueOf(): bigint }).valueOf());
    } else if (
      tag === "[object Object]" || tag === "[object Arguments]" ||
      refusal(object) === undefined
    ) {
      // A class instance (or a platform object structuredClone copies as
      // plain): its own enumerable properties, never toJSON.
      return putPlain(object, depth);
    } else {
      throw REFUSED;
    }
  }
  w.endExt(at);
}

/** Byte contents: a bin, or a raw segment of their own when large. */
function putBytes(bytes: Uint8Array): void {
  if (raws === undefined || bytes.byteLength < RAW_MIN_BYTES) {
    return w.bin(bytes);
  }
  raws.push(bytes);
  w.extHeader(Ext.Raw, 0);
}

function putView(view: ArrayBufferView, kind: number): void {
  const at = w.beginExt(Ext.View);
  w.number(kind);
  putBytes(new Uint8Array(view.buffer, view.byteOffset, view.byteLength));
  w.endExt(at);
}

function putError(error: Error | DOMException, depth: number): void {
  // As structuredClone copies them: the class when its name is a built-in
  // one (otherwise Error), message, stack and cause.
  const isDom = error instanceof DOMException;
  const name = String(error.name);
  const stack = typeof error.stack === "string" ? error.stack : undefined;
  const message = Object.hasOwn(error, "message") || isDom
    ? String(error.message)
    : undefined;
  w.number(isDom ? 1 : 0);
  w.string(isDom || Object.hasOwn(ERROR_CLASSES, name) ? name : "Error");
  if (message === undefined) w.nil();
  else w.string(message);
  if (stack === undefined) w.nil();
  else w.string(stack);
  if (!isDom && Object.hasOwn(error, "cause")) {
    put((error as Error).cause, depth + 1);
  }
}

/** One walk over `value`: a {@link RESTART} walks again checking all arrays. */
function walkValue(value: unknown): Uint8Array {
  const op = Array.isArray(value) ? value[0] : undefined;
  libraryDepth = (typeof op === "number" && LIBRARY_DEPTH[op]) || 0;
  splitDepth = typeof op === "number" && SPLIT_OPS[op] ? 1 : -1;
  protoClean = undefined;
  for (;;) {
    w.reset(RESERVE);
    if (raws !== undefined && raws.length !== 0) raws.length = 0;
    try {
      put(value, 0);
      break;
    } catch (error) {
      if (error !== RESTART || checkAllArrays) throw error;
      checkAllArrays = true;
      ids.clear();
      nextId = 0;
      unitFrom = 0;
      usedRefs = false;
    }
  }
  if (!usedRefs) return w.buf.subarray(RESERVE, w.pos);
  // An ext32 header around the message, in the bytes left free before it.
  w.buf[0] = 0xc9;
  w.view.setUint32(1, w.pos - RESERVE);
  w.buf[5] = Ext.Refs;
  return w.buf.subarray(0, w.pos);
}

/**
 * Everything a walk keeps in this module's state: an encode called from
 * inside a walk (a getter, a registered type's encode) saves it all and
 * puts it back, so that the outer walk goes on as it was. A new piece of
 * walk state belongs here (the type makes both functions list it).
 */
type WalkState = {
  w: Writer;
  ids: Map<object, number>;
  nextId: number;
  usedRefs: boolean;
  libraryDepth: number;
  splitDepth: number;
  unitFrom: number;
  protoClean: boolean | undefined;
  checkAllArrays: boolean;
  raws: Uint8Array[] | undefined;
  int32s: typeof int32s;
  float64s: typeof float64s;
  stopValue: unknown;
  scanInts: typeof scanInts;
  scanFloats: typeof scanFloats;
  floatsFrom: number;
};

function saveWalk(): WalkState {
  return {
    w,
    ids,
    nextId,
    usedRefs,
    libraryDepth,
    splitDepth,
    unitFrom,
    protoClean,
    checkAllArrays,
    raws,
    int32s,
    float64s,
    stopValue,
    scanInts,
    scanFloats,
    floatsFrom,
  };
}

function restoreWalk(s: WalkState): void {
  ({
    w,
    ids,
    nextId,
    usedRefs,
    libraryDepth,
    splitDepth,
    unitFrom,
    protoClean,
    checkAllArrays,
    raws,
    int32s,
    float64s,
    stopValue,
    scanInts,
    scanFloats,
    floatsFrom,
  } = s);
}

/**
 * Encodes a value to MessagePack with structured-clone semantics.
 * The returned bytes may share a buffer with later calls: copy or write them
 * out before the next call.
 *
 * @param value What to encode.
 * @param segments If given, byte contents of `RAW_MIN_BYTES` and more (of
 * `Uint8Array`s, other typed arrays, `ArrayBuffer`s, Blobs) are not copied
 * into the MessagePack part: they are appended here, in the order `decode`
 * wants them back, and the part holds a placeholder for each. Emptied first.
 * @throws {DOMException} `DataCloneError` for values that cannot be sent,
 * naming the type and its position (`segments` is then left empty).
 */
export function encode(value: unknown, segments?: Uint8Array[]): Uint8Array {
  if (busy) {
    // Called from inside a walk (a getter or a registered type's encode):
    // on a writer of its own.
    const saved = saveWalk();
    w = new Writer();
    ids = new Map();
    nextId = 0;
    usedRefs = false;
    libraryDepth = 0;
    splitDepth = -1;
    unitFrom = 0;
    protoClean = undefined;
    checkAllArrays = false;
    raws = undefined;
    int32s = new Int32Array(0);
    float64s = new Float64Array(0);
    busy = false;
    try {
      return encode(value, segments).slice();
    } finally {
      restoreWalk(saved);
      busy = true;
    }
  }
  busy = true;
  raws = segments;
  try {
    return walkValue(value);
  } catch (error) {
    if (segments !== undefined) segments.length = 0;
    throw cloneError(value, error);
  } finally {
    raws = undefined;
    busy = false;
    checkAllArrays = false;
    if (ids.size !== 0) ids.clear();
    nextId = 0;
    unitFrom = 0;
    usedRefs = false;
  }
}

/** The `DataCloneError` for what made the walk over `value` throw. */
function cloneError(value: unknown, error: unknown): unknown {
  if (error === REFUSED) {
    const walk: Walk = { seen: new Set(), path: [], unread: undefined };
    check(value, walk, value); // throws, naming the type and where it was
    if (walk.unread) {
      return _dataCloneError(
        `A ${unreadKind(walk.unread)} at ${walk.unreadAt}`,
        undefined,
        " (task arguments and results are read before sending; elsewhere " +
          "send `await blob.bytes()` instead)",
      );
    }
    return _dataCloneError("A value");
  }
  if (error instanceof DOMException && error.name === "DataCloneError") {
    return error;
  }
  // A throwing getter or registered encode, or nesting deeper than the
  // stack allows.
  const message = error instanceof Error ? error.message : String(error);
  return _dataCloneError(`A value (${message})`, error);
}
