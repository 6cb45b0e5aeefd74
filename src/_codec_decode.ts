/**
 * The codec's decoder: MessagePack (`src/_msgpack_reader.ts`) back to values,
 * with the extension types of `src/_codec_ext.ts`. Two caches keep batches of
 * small objects fast: the strings of short map keys, and for maps that keep
 * the same keys a reader made for those keys (one object literal each).
 *
 * @module
 */
import { Reader } from "./_msgpack_reader.ts";
import {
  ERROR_CLASSES,
  Ext,
  LITTLE_ENDIAN,
  RESERVE,
  userTypeNamed,
  VIEW_KINDS,
} from "./_codec_ext.ts";

const EMPTY = new Uint8Array(0);
const reader = new Reader(EMPTY);
let decoding = false;
/** Objects decoded so far, when the message holds `Ext.Ref`s. */
let refs: unknown[] | undefined;

/**
 * Decodes one MessagePack value. The result never aliases `bytes`.
 *
 * @param bytes The MessagePack part.
 * @param segments The raw segments that `encode` set apart, in order: the
 * decoded value holds them themselves (Uint8Arrays as they are, other typed
 * arrays over their buffers), so each should have a buffer of its own.
 * @throws {TypeError} on malformed input, including segments left over.
 */
export function decode(
  bytes: Uint8Array,
  segments?: readonly Uint8Array<ArrayBuffer>[],
): unknown {
  const saved = refs;
  // One reader, unless a registered type's decode decodes again.
  const r = decoding ? new Reader(bytes) : reader;
  if (r === reader) {
    reader.reset(bytes);
    decoding = true;
  }
  if (bytes.length > RESERVE && bytes[0] === 0xc9 && bytes[5] === Ext.Refs) {
    r.pos = RESERVE;
    refs = [];
  } else {
    refs = undefined;
  }
  if (segments !== undefined) r.raws = segments;
  try {
    const value = get(r);
    if (segments !== undefined && r.rawNext !== segments.length) {
      throw new TypeError(
        `Malformed message: ${segments.length - r.rawNext} raw segments unused`,
      );
    }
    return value;
  } finally {
    refs = saved;
    if (r === reader) {
      decoding = false;
      reader.reset(EMPTY);
    }
  }
}

function get(r: Reader): unknown {
  const at = r.pos;
  if (at >= r.end) r.need(1);
  const type = r.buf[at]!;
  r.pos = at + 1;
  if (type < 0x80) return type;
  if ((type === 0xc8 || type === 0xc7) && at + 4 <= r.end) {
    // An ext8/ext16 of numbers (a chunk's items or results): straight there.
    const buf = r.buf;
    const wide = type === 0xc8;
    const ext = buf[wide ? at + 3 : at + 2];
    if (ext === Ext.Ints || ext === Ext.Numbers) {
      const size = wide ? (buf[at + 1]! << 8) | buf[at + 2]! : buf[at + 1]!;
      const start = wide ? at + 4 : at + 3;
      if (start + size <= r.end) {
        r.pos = start;
        const value = getNumbers(r, size, ext === Ext.Ints);
        if (refs) refs.push(value);
        return value;
      }
    }
  }
  if (type >= 0xe0) return type - 0x100;
  if (type < 0x90) return getMap(r, type & 0x0f);
  if (type < 0xa0) return getArray(r, type & 0x0f);
  if (type < 0xc0) return r.str(type & 0x1f);
  switch (type) {
    case 0xc0:
      return null;
    case 0xc2:
      return false;
    case 0xc3:
      return true;
    case 0xc4:
    case 0xc5:
    case 0xc6: {
      const bytes = getBin(r, type);
      if (refs) refs.push(bytes);
      return bytes;
    }
    case 0xd9:
      return r.str(r.u8());
    case 0xda:
      return r.str(r.u16());
    case 0xdb:
      return r.str(r.u32());
    case 0xdc:
      return getArray(r, r.u16());
    case 0xdd:
      return getArray(r, r.u32());
    case 0xde:
      return getMap(r, r.u16());
    case 0xdf:
      return getMap(r, r.u32());
    case 0xc7:
    case 0xc8:
    case 0xc9:
    case 0xd4:
    case 0xd5:
    case 0xd6:
    case 0xd7:
    case 0xd8:
      return getExt(r, type);
    case 0xc1:
      throw new TypeError("Malformed message: 0xc1 is never used");
  }
  return r.number(type);
}

/** The next raw segment (an `Ext.Raw` placeholder was read). */
function takeRaw(r: Reader): Uint8Array<ArrayBuffer> {
  const raw = r.raws?.[r.rawNext];
  if (raw === undefined) {
    throw new TypeError("Malformed message: a raw segment that is not there");
  }
  r.rawNext++;
  return raw;
}

/** Byte contents inside an extension: a bin, or a raw segment. */
function getBytes(r: Reader): Uint8Array<ArrayBuffer> {
  const type = r.u8();
  if (type === 0xc7 && r.extSize(type) === 0 && r.extType === Ext.Raw) {
    return takeRaw(r);
  }
  return getBin(r, type);
}

/** The ArrayBuffer of just `bytes`: theirs when it holds nothing else. */
function bufferOf(bytes: Uint8Array<ArrayBuffer>): ArrayBuffer {
  return bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength
    ? bytes.buffer
    : bytes.slice().buffer;
}

function viewOf(
  Kind: new (buffer: ArrayBuffer) => ArrayBufferView,
  bytes: Uint8Array<ArrayBuffer>,
): ArrayBufferView {
  return new Kind(bufferOf(bytes));
}

function getBin(r: Reader, type: number): Uint8Array<ArrayBuffer> {
  switch (type) {
    case 0xc4:
      return r.bytes(r.u8());
    case 0xc5:
      return r.bytes(r.u16());
    case 0xc6:
      return r.bytes(r.u32());
  }
  throw new TypeError("Malformed message: a bin expected");
}

function getArray(r: Reader, n: number): unknown[] {
  r.need(n); // each element takes at least one byte
  const array = new Array(n);
  if (refs) refs.push(array);
  for (let i = 0; i < n; i++) array[i] = get(r);
  return array;
}

/** A map key: short ones through the key cache. */
function readKey(r: Reader): string {
  const type = r.buf[r.pos]!;
  if (type >= 0xa0 && type <= 0xa0 + KEY_MAX) {
    r.pos++;
    return getKey(r, type & 0x1f);
  }
  return String(get(r));
}

// Objects of a batch mostly share their keys. Once a map with the same keys
// (in the same order) has been read SHAPE_AFTER times running, maps of that
// size are read by a function made for those keys: it checks each key's
// bytes and builds the object as one literal (one hidden class, no
// property-by-property growth). A map with other keys falls back midway.
const SHAPE_MAX = 16;
const SHAPE_AFTER = 4;
const SHAPE_READERS = 256;
type ShapeReader = (r: Reader) => Record<string, unknown>;
type Shape = { keys: string[]; seen: number; read: ShapeReader | undefined };
/** By map size: the keys of the last map read the slow way. */
const shapes: (Shape | undefined)[] = new Array(SHAPE_MAX + 1);
/** Readers made, by their keys joined with NUL. */
const shapeReaders = new Map<string, ShapeReader>();
/** False once `new Function` failed (code generation disallowed). */
let codegen = true;
const textEncoder = new TextEncoder();

function getMap(r: Reader, n: number): Record<string, unknown> {
  r.need(n * 2);
  if (!refs && n <= SHAPE_MAX) {
    const read = shapes[n]?.read;
    if (read !== undefined) return read(r);
  }
  return getMapBy(r, n, {}, 0);
}

/** Reads pairs `from` to `n` into `object` (and notes its keys). */
function getMapBy(
  r: Reader,
  n: number,
  object: Record<string, unknown>,
  from: number,
): Record<string, unknown> {
  if (refs) refs.push(object);
  for (let i = from; i < n; i++) {
    const key = readKey(r);
    const value = get(r);
    if (key === "__proto__") own(object, key, value);
    else object[key] = value;
  }
  if (n > 0 && n <= SHAPE_MAX && !refs) noteShape(object, n);
  return object;
}

function noteShape(object: Record<string, unknown>, n: number): void {
  const keys = Object.keys(object);
  if (keys.length !== n) return;
  const shape = shapes[n];
  if (shape === undefined || !sameKeys(shape.keys, keys)) {
    shapes[n] = { keys, seen: 1, read: undefined };
  } else if (++shape.seen >= SHAPE_AFTER && codegen) {
    shape.read = shapeReader(keys);
  }
}

function sameKeys(a: string[], b: string[]): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** A map's pairs after a shape reader met a key it did not expect. */
function shapeMiss(
  r: Reader,
  keys: string[],
  i: number,
  values: unknown[],
): Record<string, unknown> {
  const object: Record<string, unknown> = {};
  for (let j = 0; j < i; j++) object[keys[j]!] = values[j];
  return getMapBy(r, keys.length, object, i);
}

/** A reader for maps with `keys`, or `undefined` if there cannot be one. */
function shapeReader(keys: string[]): ShapeReader | undefined {
  const id = keys.join("\0");
  const known = shapeReaders.get(id);
  if (known !== undefined || shapeReaders.size >= SHAPE_READERS) return known;
  const lines = ["const buf = r.buf;", "let p = r.pos;"];
  const values: string[] = [];
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]!;
    // Index-like keys are listed out of order; __proto__ in a literal sets
    // the prototype: neither is read by a shape reader.
    if (key === "__proto__" || /^(0|[1-9]\d*)$/.test(key)) return undefined;
    const bytes = textEncoder.encode(key);
    if (bytes.length > 31) return undefined;
    const test = [`buf[p] === ${0xa0 | bytes.length}`];
    bytes.forEach((b, j) => test.push(`buf[p + ${j + 1}] === ${b}`));
    lines.push(
      `if (!(${test.join(" && ")})) return miss(r, keys, ${i}, [${values}]);`,
      `r.pos = p + ${bytes.length + 1};`,
      `const v${i} = get(r);`,
      "p = r.pos;",
    );
    values.push(`v${i}`);
  }
  const fields = keys.map((key, i) => `${JSON.stringify(key)}: v${i}`);
  lines.push(`return { ${fields.join(", ")} };`);
  let read: ShapeReader;
  try {
    read = new Function(
      "get",
      "miss",
      "keys",
      `return function readShape(r) {\n${lines.join("\n")}\n};`,
    )(get, shapeMiss, keys);
  } catch {
    codegen = false;
    return undefined;
  }
  shapeReaders.set(id, read);
  return read;
}

// Map keys repeat: a cache of the strings of short ones (one instance per
// key, so stores with it stay fast), indexed by a hash of their bytes.
const KEY_SLOTS = 4096;
const KEY_MAX = 16;
const keyStrings: string[] = new Array(KEY_SLOTS).fill("");
const keyBytes = new Uint8Array(KEY_SLOTS * KEY_MAX);
const keyLengths = new Uint8Array(KEY_SLOTS);

/** A map key of `size` (at most 16) bytes. */
function getKey(r: Reader, size: number): string {
  const buf = r.buf;
  const start = r.pos;
  if (start + size > r.end) r.need(size);
  let hash = size;
  for (let i = start; i < start + size; i++) {
    hash = (Math.imul(hash, 31) + buf[i]!) | 0;
  }
  const slot = (hash ^ (hash >>> 13)) & (KEY_SLOTS - 1);
  const at = slot * KEY_MAX;
  if (keyLengths[slot] === size) {
    let i = 0;
    while (i < size && keyBytes[at + i] === buf[start + i]) i++;
    if (i === size) {
      r.pos = start + size;
      return keyStrings[slot]!;
    }
  }
  const key = r.str(size);
  keyStrings[slot] = key;
  keyLengths[slot] = size;
  keyBytes.set(buf.subarray(start, start + size), at);
  return key;
}

/** Sets an own data property, whatever its name (`__proto__` included). */
function own(target: object, key: string, value: unknown): void {
  Object.defineProperty(target, key, {
    value,
    writable: true,
    enumerable: true,
    configurable: true,
  });
}

function getString(r: Reader): string {
  const value = get(r);
  if (typeof value !== "string") {
    throw new TypeError("Malformed message: a string expected");
  }
  return value;
}

function getNumber(r: Reader): number {
  const value = get(r);
  if (typeof value !== "number") {
    throw new TypeError("Malformed message: a number expected");
  }
  return value;
}

function getExt(r: Reader, type: number): unknown {
  const size = r.extSize(type);
  const ext = r.extType;
  const end = r.pos + size;
  let value: unknown;
  switch (ext) {
    case Ext.Undefined:
      r.pos = end;
      return undefined;
    case Ext.NegZero:
      r.pos = end;
      return -0;
    case Ext.Ref: {
      const id = r.u32();
      if (!refs || id >= refs.length) {
        throw new TypeError("Malformed message: a reference to nothing");
      }
      return refs[id];
    }
    case Ext.BigInt: {
      const hex = getString(r);
      value = hex[0] === "-"
        ? -BigInt(`0x${hex.slice(1)}`)
        : BigInt(`0x${hex}`);
      break;
    }
    case Ext.Sparse: {
      const array = new Array(getNumber(r));
      if (refs) refs.push(array);
      const n = getNumber(r);
      for (let i = 0; i < n; i++) own(array, getString(r), get(r));
      value = array;
      break;
    }
    case Ext.Map: {
      const map = new Map();
      if (refs) refs.push(map);
      const n = getNumber(r);
      for (let i = 0; i < n; i++) map.set(get(r), get(r));
      value = map;
      break;
    }
    case Ext.Set: {
      const set = new Set();
      if (refs) refs.push(set);
      const n = getNumber(r);
      for (let i = 0; i < n; i++) set.add(get(r));
      value = set;
      break;
    }
    case Ext.Date:
      value = new Date(getNumber(r));
      if (refs) refs.push(value);
      break;
    case Ext.RegExp:
      value = new RegExp(getString(r), getString(r));
      if (refs) refs.push(value);
      break;
    case Ext.Error:
      value = getError(r, end);
      break;
    case Ext.Url:
      value = new URL(getString(r));
      if (refs) refs.push(value);
      break;
    case Ext.Blob: {
      const type = getString(r);
      const bytes = getBytes(r);
      value = r.pos < end
        ? new File([bytes], getString(r), { type, lastModified: getNumber(r) })
        : new Blob([bytes], { type });
      if (refs) refs.push(value);
      break;
    }
    case Ext.Boxed:
      value = Object(get(r));
      if (refs) refs.push(value);
      break;
    case Ext.View: {
      const Kind = VIEW_KINDS[getNumber(r)];
      if (!Kind) throw new TypeError("Malformed message: unknown view kind");
      value = viewOf(Kind, getBytes(r));
      if (refs) refs.push(value);
      break;
    }
    case Ext.Buffer: {
      const bytes = getBytes(r);
      if (r.pos < end) {
        const buffer = new ArrayBuffer(bytes.byteLength, {
          maxByteLength: getNumber(r),
        });
        new Uint8Array(buffer).set(bytes);
        value = buffer;
      } else {
        value = bufferOf(bytes);
      }
      if (refs) refs.push(value);
      break;
    }
    case Ext.Raw:
      value = takeRaw(r);
      if (refs) refs.push(value);
      break;
    case Ext.Numbers:
    case Ext.Ints:
      value = getNumbers(r, size, ext === Ext.Ints);
      if (refs) refs.push(value);
      break;
    case Ext.User: {
      const at = refs ? refs.push(undefined) - 1 : -1;
      const type = userTypeNamed(getString(r));
      value = type.decode(get(r));
      if (refs) refs[at] = value;
      break;
    }
    default:
      throw new TypeError(
        `Malformed message: unknown extension type ${ext}`,
      );
  }
  if (r.pos !== end) {
    throw new TypeError(`Malformed message: extension ${ext} of wrong size`);
  }
  return value;
}

/** Aligned room for the numbers of an `Ext.Numbers` or `Ext.Ints`, and views of it. */
let scratch = new ArrayBuffer(2048);
let scratchBytes = new Uint8Array(scratch);
let scratchInts = new Int32Array(scratch);
let scratchFloats = new Float64Array(scratch);
/** Most bytes {@link scratch} keeps. */
const SCRATCH_KEPT = 1 << 19;

/**
 * An `Ext.Numbers` (float64s) or `Ext.Ints` (int32s) of `size` bytes at
 * `r.pos`: a plain array of numbers. A native copy to aligned memory, then
 * one tight loop.
 */
function getNumbers(r: Reader, size: number, ints: boolean): number[] {
  const width = ints ? 4 : 8;
  if (size % width !== 0) {
    throw new TypeError(
      `Malformed message: Ext.${ints ? "Ints" : "Numbers"} of a wrong size`,
    );
  }
  const n = size / width;
  const start = r.pos;
  r.pos = start + size;
  const array = new Array<number>(n);
  if (!LITTLE_ENDIAN) {
    const view = r.view;
    for (let i = 0; i < n; i++) {
      array[i] = ints
        ? view.getInt32(start + i * 4, true)
        : view.getFloat64(start + i * 8, true);
    }
    return array;
  }
  let bytes = scratchBytes;
  let i32 = scratchInts;
  let f64 = scratchFloats;
  if (scratch.byteLength < size) {
    // A whole number of float64s (an odd count of int32s is not).
    const grown = Math.max(size, scratch.byteLength * 2);
    const buffer = new ArrayBuffer(grown + (-grown & 7));
    bytes = new Uint8Array(buffer);
    i32 = new Int32Array(buffer);
    f64 = new Float64Array(buffer);
    if (buffer.byteLength <= SCRATCH_KEPT) {
      scratch = buffer;
      scratchBytes = bytes;
      scratchInts = i32;
      scratchFloats = f64;
    }
  }
  bytes.set(r.buf.subarray(start, start + size));
  if (ints) {
    for (let i = 0; i < n; i++) array[i] = i32[i]!;
  } else {
    for (let i = 0; i < n; i++) array[i] = f64[i]!;
  }
  return array;
}

function getError(r: Reader, end: number): Error {
  const kind = getNumber(r);
  const name = getString(r);
  const message = get(r) as string | null;
  const stack = get(r) as string | null;
  let error: Error;
  if (kind === 1) {
    error = new DOMException(message ?? "", name);
  } else {
    const Class = Object.hasOwn(ERROR_CLASSES, name)
      ? ERROR_CLASSES[name]!
      : Error;
    error = new Class(message ?? undefined);
    if (message === null) delete (error as { message?: string }).message;
  }
  Object.defineProperty(error, "stack", {
    value: stack ?? undefined,
    writable: true,
    configurable: true,
  });
  if (refs) refs.push(error);
  if (r.pos < end) {
    Object.defineProperty(error, "cause", {
      value: get(r),
      writable: true,
      configurable: true,
    });
  }
  return error;
}
