/**
 * Echo peer for `bench/limits.ts`: connects to the UNIX socket given as the
 * second argument and echoes everything back until the other side closes.
 *
 * - `framed`: decodes every length-prefixed MessagePack frame, re-encodes it
 *   and sends all replies of one read back in one write.
 * - `raw`: writes back the bytes of every read as they are.
 *
 * Usage: `deno run -A bench/_echo_peer.ts framed|raw <socket path>`
 *
 * @module
 */
// msgpackr is no longer a dependency of the library (src/_msgpack.ts is the
// codec); the bench keeps it as a reference point.
// deno-lint-ignore no-import-prefix
import { Packr } from "npm:msgpackr@^2.1.4/pack";

const READ_SIZE = 1 << 20;

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < bytes.length) {
    offset += await conn.write(bytes.subarray(offset));
  }
}

async function echoRaw(conn: Deno.Conn): Promise<void> {
  const buf = new Uint8Array(READ_SIZE);
  for (;;) {
    const n = await conn.read(buf);
    if (n === null) return;
    await writeAll(conn, buf.subarray(0, n));
  }
}

async function echoFramed(conn: Deno.Conn): Promise<void> {
  const packr = new Packr({ structuredClone: true, bundleStrings: false });
  let buf = new Uint8Array(READ_SIZE);
  let view = new DataView(buf.buffer);
  let start = 0;
  let end = 0;
  let out = new Uint8Array(READ_SIZE);
  let outView = new DataView(out.buffer);
  for (;;) {
    if (start === end) {
      start = end = 0;
    } else if (start > 0 && buf.length - end < READ_SIZE / 4) {
      buf.copyWithin(0, start, end);
      end -= start;
      start = 0;
    }
    if (end - start >= 4) {
      const need = 4 + view.getUint32(start);
      if (need > buf.length) {
        const bigger = new Uint8Array(Math.max(need, 2 * buf.length));
        bigger.set(buf.subarray(start, end));
        end -= start;
        start = 0;
        buf = bigger;
        view = new DataView(buf.buffer);
      }
    }
    const n = await conn.read(buf.subarray(end));
    if (n === null) return;
    end += n;
    let outLength = 0;
    while (end - start >= 4) {
      const length = view.getUint32(start);
      if (end - start < 4 + length) break;
      const value = packr.unpack(buf.subarray(start + 4, start + 4 + length));
      start += 4 + length;
      const encoded = packr.pack(value);
      const need = outLength + 4 + encoded.length;
      if (need > out.length) {
        const bigger = new Uint8Array(Math.max(need, 2 * out.length));
        bigger.set(out.subarray(0, outLength));
        out = bigger;
        outView = new DataView(out.buffer);
      }
      outView.setUint32(outLength, encoded.length);
      out.set(encoded, outLength + 4);
      outLength = need;
    }
    if (outLength > 0) await writeAll(conn, out.subarray(0, outLength));
  }
}

async function main(): Promise<void> {
  const [mode, path] = Deno.args;
  if ((mode !== "framed" && mode !== "raw") || path === undefined) {
    throw new TypeError(
      `Usage: _echo_peer.ts framed|raw <socket path> (got ${
        Deno.args.join(" ")
      })`,
    );
  }
  const conn = await Deno.connect({ transport: "unix", path });
  try {
    await (mode === "raw" ? echoRaw(conn) : echoFramed(conn));
  } catch (error) {
    // The bench closing its end mid-write is a normal way to stop.
    if (
      !(error instanceof Deno.errors.BrokenPipe ||
        error instanceof Deno.errors.ConnectionReset)
    ) throw error;
  } finally {
    try {
      conn.close();
    } catch {
      // already closed
    }
  }
}

if (import.meta.main) await main();
