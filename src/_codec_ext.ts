/**
 * The codec's extension types: their codes on the wire, the typed-array
 * kinds, the error classes that cross by name, the bytes of Blobs read ahead
 * of encoding, and the registry of user types (`registerType`). Shared by the
 * encoder (`src/_codec_encode.ts`), the decoder (`src/_codec_decode.ts`) and
 * the check (`src/_codec_check.ts`); `src/_codec.ts` describes the wire.
 *
 * @module
 */

/** Extension type codes. Each payload is a sequence of MessagePack values. */
export const Ext = {
  /** `undefined` (fixext 1). */
  Undefined: 0x00,
  /** `-0` (fixext 1). */
  NegZero: 0x01,
  /** A second reference to an object: its number in encounter order (fixext 4). */
  Ref: 0x02,
  /** Wraps a whole message that holds `Ext.Ref`s. */
  Refs: 0x03,
  /** A bigint: its hex digits (with a leading `-` if negative). */
  BigInt: 0x04,
  /** An array with holes or other properties: length, count, key/value pairs. */
  Sparse: 0x05,
  /** A Map: size, then key and value of each entry. */
  Map: 0x06,
  /** A Set: size, then its values. */
  Set: 0x07,
  /** A Date: its time (float64). */
  Date: 0x08,
  /** A RegExp: source and flags. */
  RegExp: 0x09,
  /** An Error or DOMException: kind, name, message, stack, cause if any. */
  Error: 0x0a,
  /** A URL: its href. */
  Url: 0x0b,
  /** A Blob (type, bytes) or a File (type, bytes, name, lastModified). */
  Blob: 0x0c,
  /** A boxed primitive: the primitive. */
  Boxed: 0x0d,
  /** A typed array or DataView other than Uint8Array: kind, bin. */
  View: 0x0e,
  /** An ArrayBuffer: bin, and maxByteLength if resizable. */
  Buffer: 0x0f,
  /** A registered user type: its name and what its encode gave. */
  User: 0x10,
  /**
   * Byte contents that travel outside the MessagePack part (ext8 of size 0):
   * the next of the raw segments given to `decode` (see `encode`).
   */
  Raw: 0x11,
  /**
   * An array of numbers only (no holes, no other properties): its elements
   * as float64, little-endian, 8 bytes each and nothing else. Every number
   * (`-0`, `NaN`, infinities, integers past 2^53) is exactly a float64, and
   * the bytes are copied natively: cheap even before the JIT has warmed up.
   */
  Numbers: 0x12,
  /**
   * An array of int32 numbers only (no `-0`, no holes, no other
   * properties): its elements as int32, little-endian, 4 bytes each. Read
   * back from an `Int32Array`, they make an array of small integers (V8's
   * fastest kind), as MessagePack integers do.
   */
  Ints: 0x13,
} as const;

/** Arrays of this many numbers and more cross as one `Ext.Numbers` or `Ext.Ints`. */
export const NUMBERS_MIN = 8;

/** Whether this machine stores a float64 little-endian (as `Ext.Numbers` is). */
export const LITTLE_ENDIAN: boolean =
  new Uint8Array(new Float64Array([-0]).buffer)[7] === 0x80;

/** Kinds of `Ext.View`, by their index here. */
export const VIEW_KINDS: (new (buffer: ArrayBuffer) => ArrayBufferView)[] = [
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

/**
 * Byte contents from this size on go to the caller's list of raw segments
 * when `encode` is given one, instead of into the MessagePack part.
 */
export const RAW_MIN_BYTES = 16 * 1024;

/** Bytes left free before a message, for an `Ext.Refs` header. */
export const RESERVE = 6;

// Error values, as structuredClone copies them: the class when its name is a
// built-in one (otherwise Error), message, stack and cause.
export const ERROR_CLASSES: Record<string, ErrorConstructor> = {
  Error,
  EvalError,
  RangeError,
  ReferenceError,
  SyntaxError,
  TypeError,
  URIError,
};

/** Bytes of Blobs read by `_readBlobs` (`src/_codec_blobs.ts`), so encoding stays synchronous. */
export const blobBytes = new WeakMap<Blob, Uint8Array>();

// ---------------------------------------------------------------------------
// User types (registerType)

/** How a registered class crosses: its name on the wire and its two halves. */
export type UserType = {
  name: string;
  Class: abstract new (...args: never[]) => unknown;
  encode: (value: never) => unknown;
  decode: (data: unknown) => unknown;
};
/**
 * The registry is the process's, not this module's: a pool's local worker
 * runs this package bundled into one file (src/_worker_bundle.js), while a
 * task's or an initializer's module registers its types through
 * `@distex/pool` (mod.ts), which loads a second copy of this module. Both
 * copies find the same registry under one global symbol.
 */
const registry = ((globalThis as Record<symbol, unknown>)[
  Symbol.for("@distex/pool registerType")
] ??= { byName: new Map(), classes: [] }) as {
  byName: Map<string, UserType>;
  classes: UserType[];
};
const userTypes = registry.byName;
export const userClasses: UserType[] = registry.classes;

export function findUserType(value: object): UserType | undefined {
  for (let i = 0; i < userClasses.length; i++) {
    if (value instanceof userClasses[i]!.Class) return userClasses[i];
  }
  return undefined;
}

/** The registered type called `name`: a value of it arrived. */
export function userTypeNamed(name: string): UserType {
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
