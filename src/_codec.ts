/**
 * The one place that knows which MessagePack library is used. Swapping the
 * codec (for example back to `@std/msgpack`) is a change to this file only.
 *
 * @module
 */
import { addExtension, Packr } from "msgpackr/pack";

/** Thrown when a value cannot cross the wire (a function, a symbol, …). */
export function _dataCloneError(what: string, cause?: unknown): DOMException {
  const error = new DOMException(
    `${what} could not be cloned for a worker: values must be structured-clone data ` +
      `(no functions, symbols, class instances with private state, or streams)`,
    "DataCloneError",
  );
  if (cause !== undefined) {
    Object.defineProperty(error, "cause", { value: cause, configurable: true });
  }
  return error;
}

const packr = new Packr({ structuredClone: true, bundleStrings: false });
// msgpackr silently turns functions into `undefined`; refuse them instead.
(packr as unknown as { writeFunction: () => never }).writeFunction = () => {
  throw _dataCloneError("A function");
};

/**
 * What `value` is, when it is an object that structured clone refuses but
 * msgpackr would silently send as `{}`.
 */
function _uncloneable(value: unknown): string | undefined {
  if (value instanceof Promise) {
    return "A Promise (await it and send its value)";
  }
  if (value instanceof WeakMap) return "A WeakMap";
  if (value instanceof WeakSet) return "A WeakSet";
  if (value instanceof WeakRef) return "A WeakRef";
  if (
    value instanceof ReadableStream || value instanceof WritableStream ||
    value instanceof TransformStream
  ) {
    return "A stream (pass its contents, or map over it with Pool.map())";
  }
  const tag = Object.prototype.toString.call(value);
  if (tag === "[object Generator]" || tag === "[object AsyncGenerator]") {
    return "A generator (collect its items into an array first)";
  }
  return undefined;
}

/** Matches the values of {@link _uncloneable} in msgpackr's class lookup. */
class Uncloneable {
  static [Symbol.hasInstance](value: unknown): boolean {
    return _uncloneable(value) !== undefined;
  }
}
addExtension({
  Class: Uncloneable,
  write(value: unknown): never {
    throw _dataCloneError(_uncloneable(value) ?? "A value");
  },
});

/**
 * Encodes a value to MessagePack with structured-clone fidelity.
 * The returned bytes may share a buffer with later calls: copy or write them
 * out before the next call.
 *
 * @throws {DOMException} `DataCloneError` for values that cannot be sent.
 */
export function encode(value: unknown): Uint8Array {
  try {
    return packr.pack(value);
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
