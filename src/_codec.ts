/**
 * The wire's value codec: MessagePack (written by `src/_msgpack.ts`) with
 * extension types of our own for what MessagePack has no format for.
 *
 * Values get structured-clone semantics, checked against `structuredClone`
 * itself (tests/codec_test.ts): what `structuredClone` copies arrives as its
 * clone would, what it refuses fails with a `DataCloneError` naming the type
 * and where it was (`args[0].a.b`). Deliberate differences, all documented in
 * the README:
 * - `URL` crosses (as an equal `URL`); `structuredClone` refuses it.
 * - `SharedArrayBuffer` and `FormData` are refused (memory cannot be shared
 *   between processes; Deno's `structuredClone` turns a `FormData` into `{}`).
 * - A typed array or `DataView` arrives over a buffer of just its own bytes
 *   (`structuredClone` copies the whole underlying buffer).
 * - `Blob`/`File` bytes are read asynchronously ({@link _readBlobs}) before
 *   the value is encoded.
 * - Properties besides the indices are carried for arrays of up to 1,024
 *   elements (a RegExp match's `index`, `input`, `groups`); on longer arrays
 *   they are not looked for (listing them costs more than the encoding)
 *   unless a hole was found somewhere in the value.
 *
 * The wire: nil, booleans, numbers, strings, `Uint8Array` (bin), arrays and
 * plain objects (maps with string keys; class instances as their own
 * enumerable fields) are standard MessagePack. Everything else is an
 * extension type of ours (the `EXT_*` codes below), whose payload is a
 * sequence of MessagePack values: `undefined`, `-0`, bigints, arrays with
 * holes or other properties, Map, Set, Date, RegExp, errors, URL, Blob/File,
 * boxed primitives, typed arrays and DataView, ArrayBuffer, registered user
 * types. Objects are numbered in the order they are first met; a second
 * meeting is written as a reference to that number, and a message with
 * references is wrapped in one extension so that the decoder numbers objects
 * only then. One walk checks and writes: only when it meets something it
 * refuses does {@link check} walk again, for the position in the message.
 *
 * @module
 */
import { Reader, Writer } from "./_msgpack.ts";

/**
 * A `DataCloneError`: `what` could not be cloned for a worker.
 *
 * @param what What failed, e.g. `"A Symbol at args[0].a"`.
 * @param cause The underlying error, if any.
 * @param advice What to do instead, in parentheses after "could not be cloned".
 */
export function _dataCloneError(
  what: string,
  cause?: unknown,
  advice = "",
): DOMException {
  const error = new DOMException(
    `${what} could not be cloned for a worker${advice}: values must be structured-clone data ` +
      `(no functions, symbols, promises, streams or platform objects such as Headers)`,
    "DataCloneError",
  );
  if (cause !== undefined) {
    Object.defineProperty(error, "cause", { value: cause, configurable: true });
  }
  return error;
}

// ---------------------------------------------------------------------------
// User types (registerType)

/** How a registered class crosses: its name on the wire and its two halves. */
type UserType = {
  name: string;
  Class: abstract new (...args: never[]) => unknown;
  encode: (value: never) => unknown;
  decode: (data: unknown) => unknown;
};
const userTypes = new Map<string, UserType>();
const userClasses: UserType[] = [];

function findUserType(value: object): UserType | undefined {
  for (let i = 0; i < userClasses.length; i++) {
    if (value instanceof userClasses[i]!.Class) return userClasses[i];
  }
  return undefined;
}

/** The registered type called `name`: a value of it arrived. */
function userTypeNamed(name: string): UserType {
  const type = userTypes.get(name);
  if (!type) {
    throw new DOMException(
      `A value of type '${name}' arrived, but this process has not registered ` +
        `'${name}' with registerType(): import the module that registers it ` +
        `from your initializer (a { module, name } initializer), so every ` +
        `worker registers it before its first task`,
      "DataCloneError",
    );
  }
  return type;
}

/**
 * Registers a class with the codec under `name`: see `registerType` in
 * `src/register_type.ts` for the public contract.
 */
export function _registerType(
  name: string,
  Class: abstract new (...args: never[]) => unknown,
  encode: (value: never) => unknown,
  decode: (data: unknown) => unknown,
): void {
  const known = userTypes.get(name);
  if (known) {
    if (known.Class === Class) {
      known.encode = encode;
      known.decode = decode;
      return;
    }
    throw new TypeError(
      `registerType(): the name '${name}' is already registered for another class ` +
        `(${
          known.Class.name || "anonymous"
        }); pass { name } to choose a unique one`,
    );
  }
  const type: UserType = { name, Class, encode, decode };
  userTypes.set(name, type);
  userClasses.push(type);
}

// ---------------------------------------------------------------------------
// What cannot cross, and the walk that finds it

/** The tags of objects that cross, as `Object.prototype.toString` gives them. */
const CLONEABLE_TAGS = new Set([
  "[object Object]",
  "[object Array]",
  "[object Map]",
  "[object Set]",
  "[object Date]",
  "[object RegExp]",
  "[object Error]",
  "[object Boolean]",
  "[object Number]",
  "[object String]",
  "[object BigInt]",
  "[object ArrayBuffer]",
  "[object DataView]",
  "[object Blob]",
  "[object File]",
  "[object URL]",
  "[object Arguments]",
]);

const TypedArray = Object.getPrototypeOf(Uint8Array) as new () =>
ArrayBufferView;

/** Why `value` (an object) cannot cross, or `undefined` if it can. */
function refusal(value: object): string | undefined {
  if (value instanceof Promise) {
    return "a Promise (await it and send its value)";
  }
  if (value instanceof WeakMap) return "a WeakMap";
  if (value instanceof WeakSet) return "a WeakSet";
  if (value instanceof WeakRef) return "a WeakRef";
  if (
    value instanceof ReadableStream || value instanceof WritableStream ||
    value instanceof TransformStream
  ) {
    return "a stream (pass its contents, or map over it with Pool.map())";
  }
  if (
    typeof SharedArrayBuffer === "function" &&
    value instanceof SharedArrayBuffer
  ) {
    return "a SharedArrayBuffer (memory cannot be shared with another process; copy it into an ArrayBuffer)";
  }
  if (value instanceof FormData) {
    return "a FormData (send its entries, e.g. [...formData])";
  }
  if (value instanceof Headers) {
    return "a Headers (send Object.fromEntries(headers) or [...headers])";
  }
  if (value instanceof Request || value instanceof Response) {
    return `a ${value.constructor.name} (send its URL, headers and body bytes instead)`;
  }
  if (value instanceof URLSearchParams) {
    return "a URLSearchParams (send its string: params.toString())";
  }
  const tag = Object.prototype.toString.call(value);
  if (value instanceof TypedArray || CLONEABLE_TAGS.has(tag)) {
    if (tag === "[object Symbol]") return "a Symbol object";
    return undefined;
  }
  if (tag === "[object Generator]" || tag === "[object AsyncGenerator]") {
    return "a generator (collect its items into an array first)";
  }
  if (tag === "[object Symbol]") return "a Symbol object";
  // Anything else with a tag of its own is a platform object or a class with
  // a custom Symbol.toStringTag: ask structuredClone, which knows which.
  try {
    structuredClone(value);
    return undefined;
  } catch {
    return `a ${tag.slice(8, -1)}`;
  }
}

/** The name of `value`'s type, for messages. */
function describe(value: unknown): string {
  switch (typeof value) {
    case "function":
      return `a function${
        value.name ? ` '${value.name}'` : ""
      } (functions cannot be sent as values; pass data, or a { module, name } reference as the task)`;
    case "symbol":
      return `the symbol ${String(value)}`;
    default:
      return String(value);
  }
}

/** Formats a path of property keys: `[3, 0, "a", "b"]` → `[3][0].a.b`. */
function formatPath(path: readonly (string | number)[]): string {
  let out = "";
  for (const key of path) {
    out += typeof key === "number" || /^\d+$/.test(key)
      ? `[${key}]`
      : key.startsWith("<")
      ? key
      : /^[A-Za-z_$][\w$]*$/.test(key)
      ? `.${key}`
      : `[${JSON.stringify(key)}]`;
  }
  return out;
}

/**
 * Names a position in a protocol message the way a user sees it: the message
 * layouts are those of src/protocol.ts (`[op, taskId, fnId, args]` for calls,
 * `[op, taskId, value, …]` for results, `[message, paths, lengths]` around
 * frames that carry large byte arrays raw).
 */
export function _position(
  root: unknown,
  path: readonly (string | number)[],
): string {
  let p = path.map((key) =>
    typeof key === "string" && /^\d+$/.test(key) ? Number(key) : key
  );
  let message = root;
  if (
    Array.isArray(root) && Array.isArray(root[0]) && p[0] === 0 &&
    Array.isArray(root[1])
  ) {
    message = root[0];
    p = p.slice(1);
  }
  if (!Array.isArray(message) || typeof message[0] !== "number") {
    return `value${formatPath(p)}`;
  }
  const op = message[0];
  const rest = (n: number) => formatPath(p.slice(n));
  if (op === 4 && p[0] === 3) return `args${rest(1)}`; // Call
  if (op === 9 && p[0] === 3) return `initArgs${rest(1)}`; // Init
  if (op === 8 && p[0] === 3 && p.length >= 2) {
    return `item ${p[1]} of a chunk${rest(2)}`; // Items
  }
  if (op === 5 && p[0] === 3 && p.length >= 2) {
    return `item ${p[1]} of a chunk, args${rest(2)}`; // Chunk
  }
  if (op === 21 && p[0] === 2) return `result${rest(1)}`; // Result
  return `message${formatPath(p)}`;
}

/** Walk state: one per encode. */
type Walk = {
  /** Objects seen, so shared and circular references are walked once. */
  seen: Set<object>;
  /** The path to the value being walked. */
  path: (string | number)[];
  /** Blobs found whose bytes have not been read. */
  unread: Blob[] | undefined;
  /** Where the first of them is. */
  unreadAt?: string | undefined;
};

function fail(walk: Walk, root: unknown, what: string): never {
  // `what` is "a Thing (what to do instead)": the position goes after the
  // thing, the advice after "could not be cloned".
  const open = what.indexOf(" (");
  const thing = open < 0 ? what : what.slice(0, open);
  const advice = open < 0 ? "" : what.slice(open);
  throw _dataCloneError(
    `${thing[0]!.toUpperCase()}${thing.slice(1)} at ${
      _position(root, walk.path)
    }`,
    undefined,
    advice,
  );
}

/**
 * Checks that `value` can cross, throwing a `DataCloneError` that names the
 * first offender and its position. The encoder runs it only once it has met
 * something it refuses, for the message; it also lists unread Blobs.
 */
function check(value: unknown, walk: Walk, root: unknown): void {
  switch (typeof value) {
    case "number":
    case "string":
    case "boolean":
    case "undefined":
    case "bigint":
      return;
    case "symbol":
    case "function":
      fail(walk, root, describe(value));
  }
  if (value === null) return;
  const object = value as object;
  if (walk.seen.has(object)) return;
  walk.seen.add(object);
  const path = walk.path;
  if (Array.isArray(object)) {
    const keys = Object.keys(object);
    for (const key of keys) {
      path.push(key);
      check((object as unknown as Record<string, unknown>)[key], walk, root);
      path.pop();
    }
    return;
  }
  const constructor = (object as { constructor?: unknown }).constructor;
  if (constructor !== Object) {
    if (userClasses.length && findUserType(object)) return;
    if (object instanceof TypedArray) {
      return;
    }
    if (object instanceof Map) {
      let i = 0;
      for (const [k, v] of object) {
        path.push(`<key ${i}>`);
        check(k, walk, root);
        path.pop();
        path.push(`<value ${i++}>`);
        check(v, walk, root);
        path.pop();
      }
      return;
    }
    if (object instanceof Set) {
      let i = 0;
      for (const v of object) {
        path.push(`<entry ${i++}>`);
        check(v, walk, root);
        path.pop();
      }
      return;
    }
    if (object instanceof Blob) {
      if (!blobBytes.has(object)) {
        (walk.unread ??= []).push(object);
        walk.unreadAt ??= _position(root, path);
      }
      return;
    }
    if (object instanceof Error || object instanceof DOMException) {
      if (Object.hasOwn(object, "cause")) {
        path.push("cause");
        check((object as Error).cause, walk, root);
        path.pop();
      }
      return;
    }
    if (
      object instanceof Date || object instanceof RegExp ||
      object instanceof ArrayBuffer || object instanceof DataView ||
      object instanceof URL || object instanceof Boolean ||
      object instanceof Number || object instanceof String
    ) {
      return;
    }
    const why = refusal(object);
    if (why !== undefined) fail(walk, root, why);
    if (Object.prototype.toString.call(object) === "[object BigInt]") return;
  }
  for (const key in object) {
    if (!Object.hasOwn(object, key)) continue;
    path.push(key);
    check((object as Record<string, unknown>)[key], walk, root);
    path.pop();
  }
}

// Error values, as structuredClone copies them: the class when its name is a
// built-in one (otherwise Error), message, stack and cause.
const ERROR_CLASSES: Record<string, ErrorConstructor> = {
  Error,
  EvalError,
  RangeError,
  ReferenceError,
  SyntaxError,
  TypeError,
  URIError,
};

// ---------------------------------------------------------------------------
// Blobs: their bytes are read (asynchronously) before a value is encoded

/** Bytes of Blobs read by {@link _readBlobs}, so encoding stays synchronous. */
const blobBytes = new WeakMap<Blob, Uint8Array>();

function unreadKind(blobs: Blob[]): string {
  return blobs[0] instanceof File ? "File" : "Blob";
}

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

// ---------------------------------------------------------------------------
// The encoder: one walk that checks and writes

// Extension type codes. Each payload is a sequence of MessagePack values.
/** `undefined` (fixext 1). */
const EXT_UNDEFINED = 0x00;
/** `-0` (fixext 1). */
const EXT_NEG_ZERO = 0x01;
/** A second reference to an object: its number in encounter order (fixext 4). */
const EXT_REF = 0x02;
/** Wraps a whole message that holds {@link EXT_REF}s. */
const EXT_REFS = 0x03;
/** A bigint: its hex digits (with a leading `-` if negative). */
const EXT_BIGINT = 0x04;
/** An array with holes or other properties: length, count, key/value pairs. */
const EXT_SPARSE = 0x05;
/** A Map: size, then key and value of each entry. */
const EXT_MAP = 0x06;
/** A Set: size, then its values. */
const EXT_SET = 0x07;
/** A Date: its time (float64). */
const EXT_DATE = 0x08;
/** A RegExp: source and flags. */
const EXT_REGEXP = 0x09;
/** An Error or DOMException: kind, name, message, stack, cause if any. */
const EXT_ERROR = 0x0a;
/** A URL: its href. */
const EXT_URL = 0x0b;
/** A Blob (type, bytes) or a File (type, bytes, name, lastModified). */
const EXT_BLOB = 0x0c;
/** A boxed primitive: the primitive. */
const EXT_BOXED = 0x0d;
/** A typed array or DataView other than Uint8Array: kind, bin. */
const EXT_VIEW = 0x0e;
/** An ArrayBuffer: bin, and maxByteLength if resizable. */
const EXT_BUFFER = 0x0f;
/** A registered user type: its name and what its encode gave. */
const EXT_USER = 0x10;

/** Kinds of {@link EXT_VIEW}, by their index here. */
const VIEW_KINDS: (new (buffer: ArrayBuffer) => ArrayBufferView)[] = [
  Int8Array,
  Uint8Array,
  Uint8ClampedArray,
  Int16Array,
  Uint16Array,
  Int32Array,
  Uint32Array,
  Float32Array,
  Float64Array,
  BigInt64Array,
  BigUint64Array,
  DataView,
];
if (typeof Float16Array === "function") VIEW_KINDS.push(Float16Array);

/** Arrays up to this length are checked for holes and other properties first. */
const ARRAY_PROPS_CHECKED = 1024;
/** Bytes left free before a message, for an {@link EXT_REFS} header. */
const RESERVE = 6;

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
/** Object.prototype has no enumerable properties (as it should). */
let protoClean = true;
/** After a {@link RESTART}: check every array for holes and properties. */
let checkAllArrays = false;
let busy = false;

function put(value: unknown, depth: number): void {
  switch (typeof value) {
    case "number":
      if (value === 0 && 1 / value < 0) {
        w.extHeader(EXT_NEG_ZERO, 1);
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
      w.extHeader(EXT_UNDEFINED, 1);
      return w.byte(0);
    case "bigint":
      return putBigInt(value);
  }
  throw REFUSED;
}

function putBigInt(value: bigint): void {
  const at = w.beginExt(EXT_BIGINT);
  w.string(value.toString(16));
  w.endExt(at);
}

function putObject(object: object, depth: number): void {
  const id = ids.get(object);
  if (id !== undefined) {
    usedRefs = true;
    w.extHeader(EXT_REF, 4);
    w.ensure(4);
    w.view.setUint32(w.pos, id);
    w.pos += 4;
    return;
  }
  ids.set(object, nextId++);
  if (Array.isArray(object)) return putArray(object, depth);
  const constructor = object.constructor;
  if (constructor === Object) return putPlain(object, depth);
  putOther(object, constructor, depth);
}

function putArray(array: unknown[], depth: number): void {
  const length = array.length;
  if (
    checkAllArrays || (depth > libraryDepth && length <= ARRAY_PROPS_CHECKED)
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
      return putSparse(array, keys, depth);
    }
  }
  w.arrayHeader(length);
  for (let i = 0; i < length; i++) {
    const v = array[i];
    if (v === undefined && !(i in array)) throw RESTART;
    put(v, depth + 1);
  }
}

function putSparse(array: unknown[], keys: string[], depth: number): void {
  const at = w.beginExt(EXT_SPARSE);
  w.number(array.length);
  w.number(keys.length);
  for (const key of keys) {
    w.string(key);
    put((array as unknown as Record<string, unknown>)[key], depth + 1);
  }
  w.endExt(at);
}

/** Own enumerable string-keyed properties, as structuredClone copies them. */
function putPlain(object: object, depth: number): void {
  const at = w.pos;
  w.byte(0x80);
  let n = 0;
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
      const at = w.beginExt(EXT_USER);
      w.string(type.name);
      put(type.encode(object as never), depth + 1);
      return w.endExt(at);
    }
  }
  if (constructor === Uint8Array) return w.bin(object as Uint8Array);
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
    at = w.beginExt(EXT_MAP);
    w.number(object.size);
    for (const [k, v] of object) {
      put(k, depth + 1);
      put(v, depth + 1);
    }
  } else if (object instanceof Set) {
    at = w.beginExt(EXT_SET);
    w.number(object.size);
    for (const v of object) put(v, depth + 1);
  } else if (object instanceof Date) {
    at = w.beginExt(EXT_DATE);
    w.float64(object.getTime());
  } else if (object instanceof RegExp) {
    at = w.beginExt(EXT_REGEXP);
    w.string(object.source);
    w.string(object.flags);
  } else if (object instanceof Error || object instanceof DOMException) {
    at = w.beginExt(EXT_ERROR);
    putError(object, depth);
  } else if (object instanceof ArrayBuffer) {
    at = w.beginExt(EXT_BUFFER);
    w.bin(new Uint8Array(object));
    if (object.resizable) w.number(object.maxByteLength);
  } else if (object instanceof URL) {
    at = w.beginExt(EXT_URL);
    w.string(object.href);
  } else if (object instanceof Blob) {
    const bytes = blobBytes.get(object);
    if (!bytes) throw REFUSED;
    at = w.beginExt(EXT_BLOB);
    w.string(object.type);
    w.bin(bytes);
    if (object instanceof File) {
      w.string(object.name);
      w.number(object.lastModified);
    }
  } else if (
    object instanceof Boolean || object instanceof Number ||
    object instanceof String
  ) {
    at = w.beginExt(EXT_BOXED);
    put(object.valueOf(), depth + 1);
  } else {
    const tag = Object.prototype.toString.call(object);
    if (tag === "[object BigInt]") {
      at = w.beginExt(EXT_BOXED);
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

function putView(view: ArrayBufferView, kind: number): void {
  const at = w.beginExt(EXT_VIEW);
  w.number(kind);
  w.bin(new Uint8Array(view.buffer, view.byteOffset, view.byteLength));
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
  protoClean = !objectProtoEnumerable();
  for (;;) {
    w.reset(RESERVE);
    try {
      put(value, 0);
      break;
    } catch (error) {
      if (error !== RESTART || checkAllArrays) throw error;
      checkAllArrays = true;
      ids.clear();
      nextId = 0;
      usedRefs = false;
    }
  }
  if (!usedRefs) return w.buf.subarray(RESERVE, w.pos);
  // An ext32 header around the message, in the bytes left free before it.
  w.buf[0] = 0xc9;
  w.view.setUint32(1, w.pos - RESERVE);
  w.buf[5] = EXT_REFS;
  return w.buf.subarray(0, w.pos);
}

/**
 * Encodes a value to MessagePack with structured-clone semantics.
 * The returned bytes may share a buffer with later calls: copy or write them
 * out before the next call.
 *
 * @throws {DOMException} `DataCloneError` for values that cannot be sent,
 * naming the type and its position.
 */
export function encode(value: unknown): Uint8Array {
  if (busy) {
    // Called from inside a walk (a getter or a registered type's encode):
    // on a writer of its own.
    const saved = [w, ids, nextId, usedRefs, checkAllArrays] as const;
    w = new Writer();
    ids = new Map();
    nextId = 0;
    usedRefs = false;
    checkAllArrays = false;
    busy = false;
    try {
      return encode(value).slice();
    } finally {
      [w, ids, nextId, usedRefs, checkAllArrays] = saved;
      busy = true;
    }
  }
  busy = true;
  try {
    return walkValue(value);
  } catch (error) {
    throw cloneError(value, error);
  } finally {
    busy = false;
    checkAllArrays = false;
    ids.clear();
    nextId = 0;
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

// ---------------------------------------------------------------------------
// The decoder

const EMPTY = new Uint8Array(0);
const reader = new Reader(EMPTY);
let decoding = false;
/** Objects decoded so far, when the message holds {@link EXT_REF}s. */
let refs: unknown[] | undefined;

/** Decodes one MessagePack value. The result never aliases `bytes`. */
export function decode(bytes: Uint8Array): unknown {
  const saved = refs;
  // One reader, unless a registered type's decode decodes again.
  const r = decoding ? new Reader(bytes) : reader;
  if (r === reader) {
    reader.reset(bytes);
    decoding = true;
  }
  if (bytes.length > RESERVE && bytes[0] === 0xc9 && bytes[5] === EXT_REFS) {
    r.pos = RESERVE;
    refs = [];
  } else {
    refs = undefined;
  }
  try {
    return get(r);
  } finally {
    refs = saved;
    if (r === reader) {
      decoding = false;
      reader.reset(EMPTY);
    }
  }
}

function get(r: Reader): unknown {
  const type = r.u8();
  if (type < 0x80) return type;
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
    case EXT_UNDEFINED:
      r.pos = end;
      return undefined;
    case EXT_NEG_ZERO:
      r.pos = end;
      return -0;
    case EXT_REF: {
      const id = r.u32();
      if (!refs || id >= refs.length) {
        throw new TypeError("Malformed message: a reference to nothing");
      }
      return refs[id];
    }
    case EXT_BIGINT: {
      const hex = getString(r);
      value = hex[0] === "-"
        ? -BigInt(`0x${hex.slice(1)}`)
        : BigInt(`0x${hex}`);
      break;
    }
    case EXT_SPARSE: {
      const array = new Array(getNumber(r));
      if (refs) refs.push(array);
      const n = getNumber(r);
      for (let i = 0; i < n; i++) own(array, getString(r), get(r));
      value = array;
      break;
    }
    case EXT_MAP: {
      const map = new Map();
      if (refs) refs.push(map);
      const n = getNumber(r);
      for (let i = 0; i < n; i++) map.set(get(r), get(r));
      value = map;
      break;
    }
    case EXT_SET: {
      const set = new Set();
      if (refs) refs.push(set);
      const n = getNumber(r);
      for (let i = 0; i < n; i++) set.add(get(r));
      value = set;
      break;
    }
    case EXT_DATE:
      value = new Date(getNumber(r));
      if (refs) refs.push(value);
      break;
    case EXT_REGEXP:
      value = new RegExp(getString(r), getString(r));
      if (refs) refs.push(value);
      break;
    case EXT_ERROR:
      value = getError(r, end);
      break;
    case EXT_URL:
      value = new URL(getString(r));
      if (refs) refs.push(value);
      break;
    case EXT_BLOB: {
      const type = getString(r);
      const bytes = getBin(r, r.u8());
      value = r.pos < end
        ? new File([bytes], getString(r), { type, lastModified: getNumber(r) })
        : new Blob([bytes], { type });
      if (refs) refs.push(value);
      break;
    }
    case EXT_BOXED:
      value = Object(get(r));
      if (refs) refs.push(value);
      break;
    case EXT_VIEW: {
      const Kind = VIEW_KINDS[getNumber(r)];
      if (!Kind) throw new TypeError("Malformed message: unknown view kind");
      value = new Kind(getBin(r, r.u8()).buffer);
      if (refs) refs.push(value);
      break;
    }
    case EXT_BUFFER: {
      const bytes = getBin(r, r.u8());
      if (r.pos < end) {
        const buffer = new ArrayBuffer(bytes.byteLength, {
          maxByteLength: getNumber(r),
        });
        new Uint8Array(buffer).set(bytes);
        value = buffer;
      } else {
        value = bytes.buffer;
      }
      if (refs) refs.push(value);
      break;
    }
    case EXT_USER: {
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
