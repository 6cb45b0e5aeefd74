/**
 * Plain MessagePack for the tests of src/_msgpack.ts: `pack` and `unpack` map
 * plain values (numbers, strings, booleans, null, Uint8Array, arrays, objects,
 * {@link Ext}) straight onto the library's `Writer` and `Reader`, so format
 * boundaries can be checked byte for byte apart from the codec's own types.
 *
 * @module
 */
import { Writer } from "../src/_msgpack.ts";
import { Reader } from "../src/_msgpack_reader.ts";

/** An extension value: a type code (-128..127) and its bytes. */
export class Ext {
  constructor(readonly type: number, readonly data: Uint8Array) {}
}

/** MessagePack of a plain value: see the module doc for the mapping. */
export function pack(value: unknown): Uint8Array {
  const writer = new Writer();
  packValue(writer, value);
  return writer.buf.slice(0, writer.pos);
}

function packValue(w: Writer, value: unknown): void {
  switch (typeof value) {
    case "number":
      return w.number(value);
    case "string":
      return w.string(value);
    case "boolean":
      return w.bool(value);
  }
  if (value === null || value === undefined) return w.nil();
  if (value instanceof Uint8Array) return w.bin(value);
  if (value instanceof Ext) {
    w.extHeader(value.type, value.data.length);
    return w.raw(value.data);
  }
  if (Array.isArray(value)) {
    w.arrayHeader(value.length);
    for (const v of value) packValue(w, v);
    return;
  }
  if (typeof value === "object") {
    const keys = Object.keys(value);
    w.mapHeader(keys.length);
    for (const key of keys) {
      w.string(key);
      packValue(w, (value as Record<string, unknown>)[key]);
    }
    return;
  }
  throw new TypeError(`MessagePack: cannot pack a ${typeof value}`);
}

/** The value of MessagePack `bytes`: see the module doc for the mapping. */
export function unpack(bytes: Uint8Array): unknown {
  const reader = new Reader(bytes);
  const value = unpackValue(reader);
  if (reader.pos !== reader.end) {
    throw new RangeError(
      `MessagePack: ${reader.end - reader.pos} bytes after the value`,
    );
  }
  return value;
}

function unpackValue(r: Reader): unknown {
  const type = r.u8();
  if (type < 0x80) return type;
  if (type >= 0xe0) return type - 0x100;
  if (type < 0x90) return unpackMap(r, type & 0x0f);
  if (type < 0xa0) return unpackArray(r, type & 0x0f);
  if (type < 0xc0) return r.str(type & 0x1f);
  switch (type) {
    case 0xc0:
      return null;
    case 0xc2:
      return false;
    case 0xc3:
      return true;
    case 0xc4:
      return r.bytes(r.u8());
    case 0xc5:
      return r.bytes(r.u16());
    case 0xc6:
      return r.bytes(r.u32());
    case 0xd9:
      return r.str(r.u8());
    case 0xda:
      return r.str(r.u16());
    case 0xdb:
      return r.str(r.u32());
    case 0xdc:
      return unpackArray(r, r.u16());
    case 0xdd:
      return unpackArray(r, r.u32());
    case 0xde:
      return unpackMap(r, r.u16());
    case 0xdf:
      return unpackMap(r, r.u32());
    case 0xc7:
    case 0xc8:
    case 0xc9:
    case 0xd4:
    case 0xd5:
    case 0xd6:
    case 0xd7:
    case 0xd8: {
      const size = r.extSize(type);
      return new Ext(r.extType, r.bytes(size));
    }
    case 0xc1:
      throw new TypeError("MessagePack: 0xc1 is never used");
  }
  return r.number(type);
}

function unpackArray(r: Reader, n: number): unknown[] {
  r.need(n); // every element is at least one byte
  const array = new Array(n);
  for (let i = 0; i < n; i++) array[i] = unpackValue(r);
  return array;
}

function unpackMap(r: Reader, n: number): Record<string, unknown> {
  r.need(2 * n);
  const object: Record<string, unknown> = {};
  for (let i = 0; i < n; i++) {
    const key = String(unpackValue(r));
    Object.defineProperty(object, key, {
      value: unpackValue(r),
      writable: true,
      enumerable: true,
      configurable: true,
    });
  }
  return object;
}
