/**
 * The one place that knows which MessagePack library is used. Swapping the
 * codec (for example back to `@std/msgpack`) is a change to this file only.
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
 *   they are not looked for (listing them costs more than the encoding).
 *
 * @module
 */
import { addExtension, Packr } from "msgpackr/pack";

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

// Extension type codes (msgpackr's own use 0x00, 0x42, 0x62, 0x65, 0x69,
// 0x70, 0x72, 0x73, 0x74, 0x78 and 0xff).
const EXT_NEG_ZERO = 0x50;
const EXT_ARRAY = 0x51;
const EXT_BOXED = 0x52;
const EXT_ERROR = 0x53;
const EXT_URL = 0x54;
const EXT_BLOB = 0x55;
const EXT_BUFFER = 0x56;
const EXT_PLAIN = 0x57;
const EXT_OBJECT = 0x58;
const EXT_USER = 0x5f;

const packr = new Packr({ structuredClone: true, bundleStrings: false });

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

function readUserType(data: unknown): unknown {
  const [name, payload] = data as [string, unknown];
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
  return type.decode(payload);
}

// Every process reads the user-type extension, registered or not, so that an
// unknown type fails with a message that says what to do.
addExtension({ type: EXT_USER, read: readUserType } as never);

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
  addExtension({
    Class: Class as unknown as new () => unknown,
    type: EXT_USER,
    write: (value: unknown): unknown => [
      type.name,
      type.encode(value as never),
    ],
    read: readUserType,
  });
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
  /** Set when the value needs rewriting before msgpackr sees it. */
  rewrite: boolean;
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
 * first offender and its position, and notes whether it needs rewriting
 * (`-0`, array holes or extra array properties).
 */
function check(value: unknown, walk: Walk, root: unknown): void {
  switch (typeof value) {
    case "number":
      if (value === 0 && 1 / value < 0) walk.rewrite = true;
      return;
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
    if (keys.length !== object.length) walk.rewrite = true;
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
    if (key === "__proto__") walk.rewrite = true; // msgpackr renames it
    path.push(key);
    check((object as Record<string, unknown>)[key], walk, root);
    path.pop();
  }
}

/** {@link quick} found a -0 or an unusual array: rewrite before packing. */
const REWRITE = 1;
/** {@link quick} cannot vouch for the value: run the full {@link check}. */
const SLOW = 2;
/** {@link quick} ran out of its visit budget: run it again with a set. */
const OVER = 4;
/** What makes {@link quick} stop at once. */
const STOP = SLOW | OVER;
/** Objects {@link quick} visits before it needs a set of seen objects. */
const QUICK_BUDGET = 4096;
let budget = 0;
/** Nesting {@link quick} follows before it needs a set (cycles end there). */
const QUICK_DEPTH = 64;
/** Objects seen, in {@link quick}'s second run (larger values). */
let quickSeen: Set<object> | undefined;
/** Arrays up to this length are checked for non-index properties. */
const ARRAY_PROPS_CHECKED = 1024;

/**
 * The hot path's check: plain objects, arrays, primitives and the common
 * built-ins, without paths. Small values are walked without a set of seen
 * objects (the visit budget bounds the walk on shared or circular
 * references: {@link OVER}); larger ones with {@link quickSeen}. Anything
 * else returns {@link SLOW}: {@link check} knows it.
 */
function quick(value: unknown, depth = 0): number {
  if (typeof value !== "object") {
    if (typeof value === "number") {
      return value === 0 && 1 / value < 0 ? REWRITE : 0;
    }
    return typeof value === "symbol" || typeof value === "function" ? SLOW : 0;
  }
  if (value === null) return 0;
  if (quickSeen) {
    if (quickSeen.has(value)) return 0;
    quickSeen.add(value);
  } else if (--budget < 0 || depth > QUICK_DEPTH) return OVER;
  let flags = 0;
  if (Array.isArray(value)) {
    const length = value.length;
    for (let i = 0; i < length; i++) {
      const v = value[i];
      switch (typeof v) {
        case "number":
          if (v === 0 && 1 / v < 0) flags |= REWRITE;
          continue;
        case "string":
        case "boolean":
        case "bigint":
          continue;
        case "undefined":
          if (!(i in value)) flags |= REWRITE;
          continue;
      }
      flags |= quick(v, depth + 1);
      if (flags & STOP) return flags;
    }
    // Properties besides the indices (structuredClone copies them; a RegExp
    // match has `index`, `input` and `groups`). Listing the keys of a long
    // array costs more than encoding it, so only short ones are checked.
    if (
      depth > 0 && length <= ARRAY_PROPS_CHECKED &&
      Object.keys(value).length !== length
    ) {
      flags |= REWRITE;
    }
    return flags;
  }
  const constructor = value.constructor;
  if (constructor === Object) {
    for (const key in value) {
      if (key === "__proto__") flags |= REWRITE; // msgpackr renames it
      flags |= quick((value as Record<string, unknown>)[key], depth + 1);
      if (flags & STOP) return flags;
    }
    return flags;
  }
  if (constructor === Map) {
    for (const [k, v] of value as Map<unknown, unknown>) {
      flags |= quick(k, depth + 1) | quick(v, depth + 1);
      if (flags & STOP) return flags;
    }
    return flags;
  }
  if (constructor === Set) {
    for (const v of value as Set<unknown>) {
      flags |= quick(v, depth + 1);
      if (flags & STOP) return flags;
    }
    return flags;
  }
  if (
    constructor === Uint8Array || constructor === Date ||
    constructor === Float64Array || constructor === Int32Array ||
    constructor === Uint32Array || constructor === Float32Array ||
    constructor === Int8Array || constructor === Int16Array ||
    constructor === Uint16Array || constructor === Uint8ClampedArray ||
    constructor === BigInt64Array || constructor === BigUint64Array ||
    constructor === DataView
  ) {
    return 0;
  }
  return SLOW;
}

/**
 * {@link quick} on `value`: a second time with a set if the first ran over.
 * The root, a protocol message tuple built by the library, is not checked for
 * non-index properties (values are always inside one).
 */
function quickCheck(value: unknown): number {
  budget = QUICK_BUDGET;
  const flags = quick(value);
  if (!(flags & OVER) || flags & SLOW) return flags;
  quickSeen = new Set();
  try {
    return quick(value);
  } finally {
    quickSeen = undefined;
  }
}

// ---------------------------------------------------------------------------
// Rewriting: -0 and arrays msgpack would change (holes, extra properties)

class NegZero {}
/** An array with holes or non-index properties: its length and own entries. */
/** An object with an own `__proto__` key: its keys and values. */
class ObjectShape {
  constructor(readonly keys: string[], readonly values: unknown[]) {}
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

class ArrayShape {
  constructor(
    readonly length: number,
    readonly keys: string[],
    readonly values: unknown[],
  ) {}
}

/** A copy of `value` with -0 and unusual arrays replaced by markers. */
function rewrite(value: unknown, copies: Map<object, unknown>): unknown {
  if (typeof value === "number") {
    return value === 0 && 1 / value < 0 ? new NegZero() : value;
  }
  if (typeof value !== "object" || value === null) return value;
  const known = copies.get(value);
  if (known !== undefined) return known;
  if (Array.isArray(value)) {
    const keys = Object.keys(value);
    if (keys.length === value.length && keys.every((k, i) => k === String(i))) {
      const copy: unknown[] = [];
      copies.set(value, copy);
      for (let i = 0; i < value.length; i++) {
        copy.push(rewrite(value[i], copies));
      }
      return copy;
    }
    const values: unknown[] = [];
    const shape = new ArrayShape(value.length, keys, values);
    copies.set(value, shape);
    for (const key of keys) {
      values.push(
        rewrite((value as unknown as Record<string, unknown>)[key], copies),
      );
    }
    return shape;
  }
  const constructor = (value as { constructor?: unknown }).constructor;
  if (value instanceof Map) {
    const copy = new Map();
    copies.set(value, copy);
    for (const [k, v] of value) {
      copy.set(rewrite(k, copies), rewrite(v, copies));
    }
    return copy;
  }
  if (value instanceof Set) {
    const copy = new Set();
    copies.set(value, copy);
    for (const v of value) copy.add(rewrite(v, copies));
    return copy;
  }
  if (value instanceof Error || value instanceof DOMException) {
    const snapshot = errorSnapshot(value);
    copies.set(value, snapshot);
    if (snapshot.length > 5) snapshot[5] = rewrite(snapshot[5], copies);
    return new ErrorCopy(snapshot);
  }
  if (
    constructor === Object || constructor === undefined ||
    isClassInstance(value)
  ) {
    if (Object.hasOwn(value, "__proto__")) {
      const keys = Object.keys(value);
      const values: unknown[] = [];
      const shape = new ObjectShape(keys, values);
      copies.set(value, shape);
      for (const key of keys) {
        values.push(rewrite((value as Record<string, unknown>)[key], copies));
      }
      return shape;
    }
    const copy: Record<string, unknown> = {};
    copies.set(value, copy);
    for (const key in value) {
      if (Object.hasOwn(value, key)) {
        copy[key] = rewrite((value as Record<string, unknown>)[key], copies);
      }
    }
    return copy;
  }
  return value;
}

// ---------------------------------------------------------------------------
// Extensions for what msgpackr does not carry as structuredClone does

// Registered first, so every more specific extension below (and every user
// type) is tried before it: msgpackr tries the latest registration first.
/** A class instance (or a platform object structuredClone copies as plain). */
function isClassInstance(value: object): boolean {
  if (value instanceof Map) return value.constructor !== Map;
  const proto = Object.getPrototypeOf(value);
  return proto !== null && proto !== Object.prototype &&
    !Array.isArray(value) &&
    Object.prototype.toString.call(value) === "[object Object]";
}
class ClassInstance {
  static [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === "object" && value !== null &&
      isClassInstance(value);
  }
}
addExtension({
  Class: ClassInstance as unknown as new () => unknown,
  type: EXT_PLAIN,
  // Own enumerable properties, as structuredClone copies them (never toJSON).
  write: (value: Record<string, unknown>): unknown => {
    if (value instanceof Map) return new Map(value);
    const copy: Record<string, unknown> = {};
    for (const key in value) {
      if (Object.hasOwn(value, key)) copy[key] = value[key];
    }
    return copy;
  },
  read: (copy: unknown): unknown => copy,
});

addExtension({
  Class: NegZero,
  type: EXT_NEG_ZERO,
  write: (): unknown => null,
  read: (): number => -0,
});

addExtension({
  Class: ObjectShape,
  type: EXT_OBJECT,
  write: (shape: ObjectShape): unknown => [shape.keys, shape.values],
  read: ([keys, values]: [string[], unknown[]]): object => {
    const object = {};
    for (let i = 0; i < keys.length; i++) own(object, keys[i]!, values[i]);
    return object;
  },
});

addExtension({
  Class: ArrayShape,
  type: EXT_ARRAY,
  write: (
    shape: ArrayShape,
  ): unknown => [shape.length, shape.keys, shape.values],
  read: (data: [number, string[], unknown[]]): unknown[] => {
    const [length, keys, values] = data;
    const array = new Array(length);
    for (let i = 0; i < keys.length; i++) own(array, keys[i]!, values[i]);
    return array;
  },
});

/** Boxed primitives: `new Boolean(false)`, `new String("s")`, `Object(1n)`, … */
class Boxed {
  static [Symbol.hasInstance](value: unknown): boolean {
    return value instanceof Boolean || value instanceof Number ||
      value instanceof String ||
      (typeof value === "object" && value !== null &&
        Object.prototype.toString.call(value) === "[object BigInt]");
  }
}
addExtension({
  Class: Boxed as unknown as new () => unknown,
  type: EXT_BOXED,
  write: (value: object): unknown => {
    const primitive = (value as { valueOf(): unknown }).valueOf();
    // -0 inside new Number(-0) is kept as its sign.
    return typeof primitive === "number" && primitive === 0 && 1 / primitive < 0
      ? ["-0"]
      : [primitive];
  },
  read: ([primitive]: [unknown]): unknown =>
    primitive === "-0" ? Object(-0) : Object(primitive),
});

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

/** `[kind, name, message, stack, hasCause, cause?]`; kind 0 Error, 1 DOMException. */
type ErrorSnapshot = unknown[];

function errorSnapshot(error: Error | DOMException): ErrorSnapshot {
  const isDom = error instanceof DOMException;
  const name = String(error.name);
  const stack = typeof error.stack === "string" ? error.stack : undefined;
  const message = Object.hasOwn(error, "message") || isDom
    ? String(error.message)
    : undefined;
  const snapshot: ErrorSnapshot = [
    isDom ? 1 : 0,
    isDom || Object.hasOwn(ERROR_CLASSES, name) ? name : "Error",
    message,
    stack,
  ];
  if (!isDom && Object.hasOwn(error, "cause")) snapshot.push(true, error.cause);
  return snapshot;
}

class ErrorCopy {
  constructor(readonly snapshot: ErrorSnapshot) {}
}
class ErrorLike {
  static [Symbol.hasInstance](value: unknown): boolean {
    return value instanceof Error || value instanceof DOMException ||
      value instanceof ErrorCopy;
  }
}
addExtension({
  Class: ErrorLike as unknown as new () => unknown,
  type: EXT_ERROR,
  write: (value: Error | ErrorCopy): unknown =>
    value instanceof ErrorCopy ? value.snapshot : errorSnapshot(value),
  read: (data: ErrorSnapshot): Error => {
    const [kind, name, message, stack] = data as [
      number,
      string,
      string | undefined,
      string | undefined,
    ];
    let error: Error;
    if (kind === 1) {
      error = new DOMException(message ?? "", name);
    } else {
      const Class = Object.hasOwn(ERROR_CLASSES, name)
        ? ERROR_CLASSES[name]!
        : Error;
      error = data.length > 4
        ? new Class(message, { cause: data[5] })
        : new Class(message);
      if (message === undefined) delete (error as { message?: string }).message;
    }
    Object.defineProperty(error, "stack", {
      value: stack,
      writable: true,
      configurable: true,
    });
    return error;
  },
});

addExtension({
  Class: URL,
  type: EXT_URL,
  write: (url: URL): unknown => url.href,
  read: (href: string): URL => new URL(href),
});

function unreadKind(blobs: Blob[]): string {
  return blobs[0] instanceof File ? "File" : "Blob";
}

/** Bytes of Blobs read by {@link _readBlobs}, so encoding stays synchronous. */
const blobBytes = new WeakMap<Blob, Uint8Array>();

addExtension({
  Class: Blob,
  type: EXT_BLOB,
  write: (blob: Blob): unknown => {
    const bytes = blobBytes.get(blob);
    if (!bytes) {
      throw _dataCloneError(
        `A ${unreadKind([blob])}`,
        undefined,
        " (its bytes are read before sending only for task arguments and " +
          "results; elsewhere send `await blob.bytes()` instead)",
      );
    }
    return blob instanceof File
      ? [blob.type, bytes, blob.name, blob.lastModified]
      : [blob.type, bytes];
  },
  read: (data: [string, Uint8Array<ArrayBuffer>, string?, number?]): Blob => {
    const [type, bytes, name, lastModified] = data;
    return name === undefined
      ? new Blob([bytes], { type })
      : new File([bytes], name, { type, lastModified: lastModified! });
  },
});

/**
 * Reads the bytes of every `Blob`/`File` in `value` so that {@link encode}
 * can send them. Returns `undefined` (no await needed) when there is none
 * left to read, or when `value` cannot cross at all ({@link encode} says why).
 * Cheap for values without Blobs: one pass of the hot-path check.
 */
export function _readBlobs(value: unknown): Promise<void> | undefined {
  if (!(quickCheck(value) & SLOW)) return undefined;
  const walk: Walk = {
    seen: new Set(),
    path: [],
    rewrite: false,
    unread: undefined,
  };
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

// Float16Array (unknown to msgpackr) and resizable ArrayBuffers.
class ExtraBuffer {
  static [Symbol.hasInstance](value: unknown): boolean {
    return (typeof Float16Array === "function" &&
      value instanceof Float16Array) ||
      (value instanceof ArrayBuffer && value.resizable);
  }
}
addExtension({
  Class: ExtraBuffer as unknown as new () => unknown,
  type: EXT_BUFFER,
  write: (value: ArrayBuffer | Float16Array): unknown =>
    value instanceof ArrayBuffer
      ? [0, new Uint8Array(value.slice(0)), value.maxByteLength]
      : [1, new Uint8Array(value.buffer, value.byteOffset, value.byteLength)],
  read: (data: [number, Uint8Array, number?]): unknown => {
    const [kind, bytes, max] = data;
    if (kind === 0) {
      const buffer = new ArrayBuffer(bytes.byteLength, { maxByteLength: max! });
      new Uint8Array(buffer).set(bytes);
      return buffer;
    }
    return new Float16Array(bytes.slice().buffer);
  },
});

// ---------------------------------------------------------------------------

/**
 * Encodes a value to MessagePack with structured-clone semantics.
 * The returned bytes may share a buffer with later calls: copy or write them
 * out before the next call.
 *
 * @throws {DOMException} `DataCloneError` for values that cannot be sent,
 * naming the type and its position.
 */
export function encode(value: unknown): Uint8Array {
  let rewriting: number;
  try {
    rewriting = quickCheck(value);
  } catch (error) {
    // Nesting deeper than the stack allows.
    throw _dataCloneError(`A value (${error})`, error);
  }
  if (rewriting & SLOW) {
    const walk: Walk = {
      seen: new Set(),
      path: [],
      rewrite: false,
      unread: undefined,
    };
    check(value, walk, value);
    if (walk.unread) {
      throw _dataCloneError(
        `A ${unreadKind(walk.unread)} at ${walk.unreadAt}`,
        undefined,
        " (task arguments and results are read before sending; elsewhere " +
          "send `await blob.bytes()` instead)",
      );
    }
    rewriting = walk.rewrite ? REWRITE : 0;
  }
  try {
    return packr.pack(rewriting ? rewrite(value, new Map()) : value);
  } catch (error) {
    if (error instanceof DOMException && error.name === "DataCloneError") {
      throw error;
    }
    const message = error instanceof Error ? error.message : String(error);
    throw _dataCloneError(`A value (${message})`, error);
  }
}

/** Decodes one MessagePack value. The result never aliases `bytes`. */
export function decode(bytes: Uint8Array): unknown {
  return packr.unpack(bytes);
}
