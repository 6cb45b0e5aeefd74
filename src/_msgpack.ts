/**
 * A small MessagePack writer (https://msgpack.org/): the formats themselves,
 * no value semantics. `src/_codec_encode.ts` walks values with it and adds
 * its own extension types; the reading half is `src/_msgpack_reader.ts`. The
 * plain mapping of values used to test this layer byte for byte lives in
 * `tests/_msgpack_plain.ts`.
 *
 * Numbers: integers up to 2^53 as the smallest integer format, other numbers
 * as float32 when that is exact, else float64.
 *
 * @module
 */

const encoder = new TextEncoder();
const TWO_32 = 0x1_0000_0000;
const INITIAL = 8192;
/** A buffer larger than this is dropped after use (not kept for reuse). */
const KEEP = 1 << 22;

/**
 * Writes MessagePack into one growing buffer: what is written is `buf` up to
 * `pos`, and the next use of the writer overwrites it.
 */
export class Writer {
  buf: Uint8Array<ArrayBuffer> = new Uint8Array(INITIAL);
  view: DataView<ArrayBuffer> = new DataView(this.buf.buffer);
  pos = 0;

  /** Makes room for `n` more bytes. */
  ensure(n: number): void {
    if (this.pos + n > this.buf.length) this.grow(this.pos + n);
  }

  grow(need: number): void {
    let size = this.buf.length * 2;
    while (size < need) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  /** Starts a new message, leaving `reserve` bytes free before it. */
  reset(reserve = 0): void {
    if (this.buf.length > KEEP) {
      this.buf = new Uint8Array(INITIAL);
      this.view = new DataView(this.buf.buffer);
    }
    this.pos = reserve;
  }

  byte(b: number): void {
    if (this.pos >= this.buf.length) this.grow(this.pos + 1);
    this.buf[this.pos++] = b;
  }

  nil(): void {
    this.byte(0xc0);
  }

  bool(b: boolean): void {
    this.byte(b ? 0xc3 : 0xc2);
  }

  /** A number: the smallest exact integer or float format. */
  number(v: number): void {
    this.ensure(9);
    const buf = this.buf;
    let pos = this.pos;
    if ((v >>> 0) === v) {
      if (v < 0x80) {
        buf[pos++] = v;
      } else if (v < 0x100) {
        buf[pos++] = 0xcc;
        buf[pos++] = v;
      } else if (v < 0x10000) {
        buf[pos++] = 0xcd;
        buf[pos++] = v >>> 8;
        buf[pos++] = v;
      } else {
        buf[pos++] = 0xce;
        this.view.setUint32(pos, v);
        pos += 4;
      }
    } else if ((v | 0) === v) {
      if (v >= -32) {
        buf[pos++] = v & 0xff;
      } else if (v >= -0x80) {
        buf[pos++] = 0xd0;
        buf[pos++] = v & 0xff;
      } else if (v >= -0x8000) {
        buf[pos++] = 0xd1;
        buf[pos++] = (v >> 8) & 0xff;
        buf[pos++] = v & 0xff;
      } else {
        buf[pos++] = 0xd2;
        this.view.setInt32(pos, v);
        pos += 4;
      }
    } else if (Number.isSafeInteger(v) || v === 2 ** 53 || v === -(2 ** 53)) {
      const hi = Math.floor(v / TWO_32);
      buf[pos] = v > 0 ? 0xcf : 0xd3;
      this.view.setUint32(pos + 1, hi >>> 0);
      this.view.setUint32(pos + 5, v - hi * TWO_32);
      pos += 9;
    } else if (Math.fround(v) === v) {
      buf[pos] = 0xca;
      this.view.setFloat32(pos + 1, v);
      pos += 5;
    } else {
      buf[pos] = 0xcb;
      this.view.setFloat64(pos + 1, v);
      pos += 9;
    }
    this.pos = pos;
  }

  /** A float64, whatever its value. */
  float64(v: number): void {
    this.ensure(9);
    this.buf[this.pos] = 0xcb;
    this.view.setFloat64(this.pos + 1, v);
    this.pos += 9;
  }

  /** A str: short ASCII by hand, the rest with `encodeInto`. */
  string(s: string): void {
    const length = s.length;
    if (length < 32) {
      this.ensure(1 + length * 3);
      const buf = this.buf;
      const start = this.pos;
      let pos = start + 1;
      for (let i = 0; i < length; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) {
          pos = start + 1 +
            encoder.encodeInto(s, buf.subarray(start + 1)).written;
          break;
        }
        buf[pos++] = c;
      }
      const size = pos - start - 1;
      if (size < 32) {
        buf[start] = 0xa0 | size;
        this.pos = pos;
        return;
      }
      // Up to 93 bytes of UTF-8: shift by one for a str8 header.
      buf.copyWithin(start + 2, start + 1, pos);
      buf[start] = 0xd9;
      buf[start + 1] = size;
      this.pos = pos + 1;
      return;
    }
    // Reserve the largest header the worst case needs, then move if smaller.
    const max = length * 3;
    const header = max < 0x100 ? 2 : max < 0x10000 ? 3 : 5;
    this.ensure(header + max);
    const start = this.pos;
    const size =
      encoder.encodeInto(s, this.buf.subarray(start + header)).written;
    const need = size < 0x100 ? 2 : size < 0x10000 ? 3 : 5;
    if (need !== header) {
      this.buf.copyWithin(start + need, start + header, start + header + size);
    }
    this.pos = start;
    this.strHeader(size);
    this.pos += size;
  }

  /** The header of a str of `size` bytes (fixstr, str8, str16, str32). */
  strHeader(size: number): void {
    this.ensure(5);
    const buf = this.buf;
    if (size < 32) {
      buf[this.pos++] = 0xa0 | size;
    } else if (size < 0x100) {
      buf[this.pos++] = 0xd9;
      buf[this.pos++] = size;
    } else if (size < 0x10000) {
      buf[this.pos++] = 0xda;
      buf[this.pos++] = size >>> 8;
      buf[this.pos++] = size;
    } else {
      buf[this.pos++] = 0xdb;
      this.view.setUint32(this.pos, size);
      this.pos += 4;
    }
  }

  /** A bin of `bytes` (bin8, bin16, bin32). */
  bin(bytes: Uint8Array): void {
    const size = bytes.length;
    this.ensure(5 + size);
    const buf = this.buf;
    if (size < 0x100) {
      buf[this.pos++] = 0xc4;
      buf[this.pos++] = size;
    } else if (size < 0x10000) {
      buf[this.pos++] = 0xc5;
      buf[this.pos++] = size >>> 8;
      buf[this.pos++] = size;
    } else {
      buf[this.pos++] = 0xc6;
      this.view.setUint32(this.pos, size);
      this.pos += 4;
    }
    buf.set(bytes, this.pos);
    this.pos += size;
  }

  /** Raw bytes, no header. */
  raw(bytes: Uint8Array): void {
    this.ensure(bytes.length);
    this.buf.set(bytes, this.pos);
    this.pos += bytes.length;
  }

  /** The header of an array of `n` elements (fixarray, array16, array32). */
  arrayHeader(n: number): void {
    this.ensure(5);
    if (n < 16) {
      this.buf[this.pos++] = 0x90 | n;
    } else if (n < 0x10000) {
      this.buf[this.pos++] = 0xdc;
      this.buf[this.pos++] = n >>> 8;
      this.buf[this.pos++] = n;
    } else {
      this.buf[this.pos++] = 0xdd;
      this.view.setUint32(this.pos, n);
      this.pos += 4;
    }
  }

  /** The header of a map of `n` pairs (fixmap, map16, map32). */
  mapHeader(n: number): void {
    this.ensure(5);
    if (n < 16) {
      this.buf[this.pos++] = 0x80 | n;
    } else if (n < 0x10000) {
      this.buf[this.pos++] = 0xde;
      this.buf[this.pos++] = n >>> 8;
      this.buf[this.pos++] = n;
    } else {
      this.buf[this.pos++] = 0xdf;
      this.view.setUint32(this.pos, n);
      this.pos += 4;
    }
  }

  /**
   * Fixes the map header written as one byte at `at` (a fixmap placeholder)
   * for `n` pairs, moving what follows when it needs more bytes.
   */
  patchMapHeader(at: number, n: number): void {
    if (n < 16) {
      this.buf[at] = 0x80 | n;
      return;
    }
    const extra = n < 0x10000 ? 2 : 4;
    this.ensure(extra);
    this.buf.copyWithin(at + 1 + extra, at + 1, this.pos);
    this.pos += extra;
    if (extra === 2) {
      this.buf[at] = 0xde;
      this.buf[at + 1] = n >>> 8;
      this.buf[at + 2] = n;
    } else {
      this.buf[at] = 0xdf;
      this.view.setUint32(at + 1, n);
    }
  }

  /** The header of an ext of `size` bytes (fixext 1-16, ext8/16/32). */
  extHeader(type: number, size: number): void {
    this.ensure(6);
    const buf = this.buf;
    switch (size) {
      case 1:
        buf[this.pos++] = 0xd4;
        break;
      case 2:
        buf[this.pos++] = 0xd5;
        break;
      case 4:
        buf[this.pos++] = 0xd6;
        break;
      case 8:
        buf[this.pos++] = 0xd7;
        break;
      case 16:
        buf[this.pos++] = 0xd8;
        break;
      default:
        if (size < 0x100) {
          buf[this.pos++] = 0xc7;
          buf[this.pos++] = size;
        } else if (size < 0x10000) {
          buf[this.pos++] = 0xc8;
          buf[this.pos++] = size >>> 8;
          buf[this.pos++] = size;
        } else {
          buf[this.pos++] = 0xc9;
          this.view.setUint32(this.pos, size);
          this.pos += 4;
        }
    }
    buf[this.pos++] = type & 0xff;
  }

  /**
   * Starts an ext32 whose size is not known yet: returns where its size goes,
   * for {@link Writer.endExt} once its contents are written.
   */
  beginExt(type: number): number {
    this.ensure(6);
    this.buf[this.pos] = 0xc9;
    this.buf[this.pos + 5] = type & 0xff;
    this.pos += 6;
    return this.pos - 5;
  }

  /** Ends an ext begun with {@link Writer.beginExt}. */
  endExt(at: number): void {
    this.view.setUint32(at, this.pos - at - 5);
  }
}
