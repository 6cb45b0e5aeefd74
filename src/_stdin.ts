/**
 * Reading a worker's key from stdin, and watching stdin as a lifeline.
 *
 * @module
 */

/**
 * Reads the first line of stdin (this worker's key, as hex digits), reading
 * no further, so that the rest of stdin is left to whoever watches it next
 * (the worker's watchdog thread). Returns the digits as bytes, never as a
 * string, so that the caller can wipe them once the key is imported.
 * @throws {Error} when the first line is not a key.
 */
export function readKeyLine(): Uint8Array<ArrayBuffer> {
  const line = new Uint8Array(129);
  const byte = new Uint8Array(1);
  let length = 0;
  let valid = true;
  // One byte at a time: the key is short, and nothing after it is taken.
  // Synchronous reads: the worker has nothing to do until its key is there,
  // and 65 asynchronous reads cost its start-up 1.5-4 ms (issue 14).
  for (;;) {
    const n = Deno.stdin.readSync(byte);
    if (n === null || byte[0] === 0x0a) break;
    const c = byte[0]!;
    if (length === line.length) valid = false;
    else if ((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66)) {
      line[length++] = c;
    } else if (c !== 0x0d && c !== 0x20) valid = false;
  }
  byte.fill(0);
  if (!valid || length < 32) {
    line.fill(0);
    throw new Error(
      "expected the worker's key as the first line on stdin (workers are started by a Pool)",
    );
  }
  const key = line.slice(0, length);
  line.fill(0);
  return key;
}

/**
 * Calls `onClose` once stdin reaches its end (the pool closed it or died),
 * draining what else arrives (for stand-in workers in tests and benchmarks:
 * a real worker's lifeline is its watchdog).
 */
export function watchLifeline(onClose: () => void): void {
  (async () => {
    const buffer = new Uint8Array(256);
    try {
      while ((await Deno.stdin.read(buffer)) !== null) { /* drain */ }
    } catch { /* stdin broke: same as closed */ }
    onClose();
  })();
}
