/**
 * The reading half of our MessagePack layer (https://msgpack.org/): reads
 * formats from a byte array, no value semantics. `src/_codec_decode.ts` turns
 * them into values; the writing half is `src/_msgpack.ts`.
 *
 * @module
 */

const decoder = new TextDecoder("utf-8", { ignoreBOM: true });
const TWO_32 = 0x1_0000_0000;

/** Reads MessagePack from a byte array, from `pos` on. */
export class Reader {
  buf: Uint8Array;
  #view: DataView | undefined;
  pos = 0;
  end: number;
  /**
   * Byte arrays that travel beside the input (raw segments), for the codec's
   * placeholders, and the index of the next one.
   */
  raws: readonly Uint8Array<ArrayBuffer>[] | undefined = undefined;
  rawNext = 0;

  constructor(bytes: Uint8Array) {
    this.buf = bytes;
    this.end = bytes.length;
  }

  /** Starts reading `bytes` (a reader can be reused). */
  reset(bytes: Uint8Array): void {
    this.buf = bytes;
    this.#view = undefined;
    this.pos = 0;
    this.end = bytes.length;
    this.raws = undefined;
    this.rawNext = 0;
  }

  /** A DataView of the input, made when first needed. */
  get view(): DataView {
    return this.#view ??= new DataView(
      this.buf.buffer,
      this.buf.byteOffset,
      this.buf.byteLength,
    );
  }

  /** Throws unless `n` more bytes are there. */
  need(n: number): void {
    if (this.pos + n > this.end) {
      throw new RangeError(
        `MessagePack data ends early (at byte ${this.pos}, ${n} more needed)`,
      );
    }
  }

  u8(): number {
    if (this.pos >= this.end) this.need(1);
    return this.buf[this.pos++]!;
  }
  u16(): number {
    this.need(2);
    const buf = this.buf;
    const v = (buf[this.pos]! << 8) | buf[this.pos + 1]!;
    this.pos += 2;
    return v;
  }
  u32(): number {
    this.need(4);
    const buf = this.buf;
    const p = this.pos;
    this.pos = p + 4;
    return ((buf[p]! << 24) | (buf[p + 1]! << 16) | (buf[p + 2]! << 8) |
      buf[p + 3]!) >>> 0;
  }

  /** `size` UTF-8 bytes as a string: short ASCII by hand. */
  str(size: number): string {
    const start = this.pos;
    const end = start + size;
    if (end > this.end) this.need(size);
    this.pos = end;
    const buf = this.buf;
    if (size < 16) {
      if (size === 0) return "";
      let ascii = true;
      for (let i = start; i < end; i++) {
        if (buf[i]! >= 0x80) {
          ascii = false;
          break;
        }
      }
      if (ascii) {
        // Explicit arguments: much faster than apply() or concatenation
        // (`deno run -A bench/codec.ts`: apply() on a subarray took the call
        // message from 227 to 337 ns and the 1,000-object chunk from 283 to
        // 343 us; a loop was 2x slower for short strings). Keep the switch.
        switch (size) {
          case 1:
            return String.fromCharCode(
              buf[start]!,
            );
          case 2:
            return String.fromCharCode(
              buf[start]!,
              buf[start + 1]!,
            );
          case 3:
            return String.fromCharCode(
              buf[start]!,
              buf[start + 1]!,
              buf[start + 2]!,
            );
          case 4:
            return String.fromCharCode(
              buf[start]!,
              buf[start + 1]!,
              buf[start + 2]!,
              buf[start + 3]!,
            );
          case 5:
            return String.fromCharCode(
              buf[start]!,
              buf[start + 1]!,
              buf[start + 2]!,
              buf[start + 3]!,
              buf[start + 4]!,
            );
          case 6:
            return String.fromCharCode(
              buf[start]!,
              buf[start + 1]!,
              buf[start + 2]!,
              buf[start + 3]!,
              buf[start + 4]!,
              buf[start + 5]!,
            );
          case 7:
            return String.fromCharCode(
              buf[start]!,
              buf[start + 1]!,
              buf[start + 2]!,
              buf[start + 3]!,
              buf[start + 4]!,
              buf[start + 5]!,
              buf[start + 6]!,
            );
          case 8:
            return String.fromCharCode(
              buf[start]!,
              buf[start + 1]!,
              buf[start + 2]!,
              buf[start + 3]!,
              buf[start + 4]!,
              buf[start + 5]!,
              buf[start + 6]!,
              buf[start + 7]!,
            );
          case 9:
            return String.fromCharCode(
              buf[start]!,
              buf[start + 1]!,
              buf[start + 2]!,
              buf[start + 3]!,
              buf[start + 4]!,
              buf[start + 5]!,
              buf[start + 6]!,
              buf[start + 7]!,
              buf[start + 8]!,
            );
          case 10:
            return String.fromCharCode(
              buf[start]!,
              buf[start + 1]!,
              buf[start + 2]!,
              buf[start + 3]!,
              buf[start + 4]!,
              buf[start + 5]!,
              buf[start + 6]!,
              buf[start + 7]!,
              buf[start + 8]!,
              buf[start + 9]!,
            );
          case 11:
            return String.fromCharCode(
              buf[start]!,
              buf[start + 1]!,
              buf[start + 2]!,
              buf[start + 3]!,
              buf[start + 4]!,
              buf[start + 5]!,
              buf[start + 6]!,
              buf[start + 7]!,
              buf[start + 8]!,
              buf[start + 9]!,
              buf[start + 10]!,
            );
          case 12:
            return String.fromCharCode(
              buf[start]!,
              buf[start + 1]!,
              buf[start + 2]!,
              buf[start + 3]!,
              buf[start + 4]!,
              buf[start + 5]!,
              buf[start + 6]!,
              buf[start + 7]!,
              buf[start + 8]!,
              buf[start + 9]!,
              buf[start + 10]!,
              buf[start + 11]!,
            );
          case 13:
            return String.fromCharCode(
              buf[start]!,
              buf[start + 1]!,
              buf[start + 2]!,
              buf[start + 3]!,
              buf[start + 4]!,
              buf[start + 5]!,
              buf[start + 6]!,
              buf[start + 7]!,
              buf[start + 8]!,
              buf[start + 9]!,
              buf[start + 10]!,
              buf[start + 11]!,
              buf[start + 12]!,
            );
          case 14:
            return String.fromCharCode(
              buf[start]!,
              buf[start + 1]!,
              buf[start + 2]!,
              buf[start + 3]!,
              buf[start + 4]!,
              buf[start + 5]!,
              buf[start + 6]!,
              buf[start + 7]!,
              buf[start + 8]!,
              buf[start + 9]!,
              buf[start + 10]!,
              buf[start + 11]!,
              buf[start + 12]!,
              buf[start + 13]!,
            );
          case 15:
            return String.fromCharCode(
              buf[start]!,
              buf[start + 1]!,
              buf[start + 2]!,
              buf[start + 3]!,
              buf[start + 4]!,
              buf[start + 5]!,
              buf[start + 6]!,
              buf[start + 7]!,
              buf[start + 8]!,
              buf[start + 9]!,
              buf[start + 10]!,
              buf[start + 11]!,
              buf[start + 12]!,
              buf[start + 13]!,
              buf[start + 14]!,
            );
        }
      }
    }
    return decoder.decode(buf.subarray(start, end));
  }

  /** `size` bytes, copied out (never a view into the input). */
  bytes(size: number): Uint8Array<ArrayBuffer> {
    this.need(size);
    const start = this.pos;
    this.pos += size;
    return this.buf.slice(start, start + size);
  }

  /** The header of a number at `type` (0xcc-0xd3, 0xca, 0xcb). */
  number(type: number): number {
    let v: number;
    switch (type) {
      case 0xca:
        this.need(4);
        v = this.view.getFloat32(this.pos);
        this.pos += 4;
        return v;
      case 0xcb:
        this.need(8);
        v = this.view.getFloat64(this.pos);
        this.pos += 8;
        return v;
      case 0xcc:
        return this.u8();
      case 0xcd:
        return this.u16();
      case 0xce:
        return this.u32();
      case 0xcf:
        this.need(8);
        v = this.view.getUint32(this.pos) * TWO_32 +
          this.view.getUint32(this.pos + 4);
        this.pos += 8;
        return v;
      case 0xd0:
        return (this.u8() << 24) >> 24;
      case 0xd1:
        this.need(2);
        v = this.view.getInt16(this.pos);
        this.pos += 2;
        return v;
      case 0xd2:
        this.need(4);
        v = this.view.getInt32(this.pos);
        this.pos += 4;
        return v;
      case 0xd3:
        this.need(8);
        v = this.view.getInt32(this.pos) * TWO_32 +
          this.view.getUint32(this.pos + 4);
        this.pos += 8;
        return v;
    }
    throw new TypeError(`MessagePack: 0x${type.toString(16)} is not a number`);
  }

  /**
   * The header of an ext at `type` (0xd4-0xd8, 0xc7-0xc9): sets
   * {@link Reader.extType} and returns the size of its data.
   */
  extSize(type: number): number {
    let size: number;
    switch (type) {
      case 0xd4:
        size = 1;
        break;
      case 0xd5:
        size = 2;
        break;
      case 0xd6:
        size = 4;
        break;
      case 0xd7:
        size = 8;
        break;
      case 0xd8:
        size = 16;
        break;
      case 0xc7:
        size = this.u8();
        break;
      case 0xc8:
        size = this.u16();
        break;
      default:
        size = this.u32();
    }
    this.need(1 + size);
    this.extType = (this.buf[this.pos++]! << 24) >> 24;
    return size;
  }
  /** The type code of the ext header read last. */
  extType = 0;
}
