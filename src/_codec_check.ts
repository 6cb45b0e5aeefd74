/**
 * What cannot cross to a worker, and the walk that finds it: why a value is
 * refused, and where it sits in a protocol message (`args[0].a.b`), for a
 * `DataCloneError` that tells the user what to send instead. The encoder
 * (`src/_codec_encode.ts`) walks again with {@link check} only once it has
 * met something it refuses; `_readBlobs` (`src/_codec_blobs.ts`) uses the
 * same walk to list the Blobs whose bytes are still unread.
 *
 * @module
 */
import { blobBytes, findUserType, userClasses } from "./_codec_ext.ts";

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

export const TypedArray = Object.getPrototypeOf(Uint8Array) as new () =>
ArrayBufferView;

/** Why `value` (an object) cannot cross, or `undefined` if it can. */
export function refusal(value: object): string | undefined {
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
 * `[op, taskId, value, …]` for results).
 */
function position(
  root: unknown,
  path: readonly (string | number)[],
): string {
  const p = path.map((key) =>
    typeof key === "string" && /^\d+$/.test(key) ? Number(key) : key
  );
  if (!Array.isArray(root) || typeof root[0] !== "number") {
    return `value${formatPath(p)}`;
  }
  const op = root[0];
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
export type Walk = {
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
      position(root, walk.path)
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
export function check(value: unknown, walk: Walk, root: unknown): void {
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
        walk.unreadAt ??= position(root, path);
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

/** What the first of unread `blobs` is, for messages: "File" or "Blob". */
export function unreadKind(blobs: Blob[]): string {
  return blobs[0] instanceof File ? "File" : "Blob";
}
