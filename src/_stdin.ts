/**
 * Reading the pool's secret from stdin, and watching stdin as a lifeline.
 *
 * @module
 */

/**
 * Reads the first line of stdin (the pool's secret) and returns it with the
 * reader, positioned after that line, for {@link watchLifeline}.
 * @throws {Error} when the first line is not a secret.
 */
export async function readSecret(): Promise<
  { secret: string; reader: ReadableStreamDefaultReader<Uint8Array> }
> {
  const reader = Deno.stdin.readable.getReader();
  const decoder = new TextDecoder();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) break;
    text += decoder.decode(value, { stream: true });
    if (text.length > 4096) break;
  }
  const secret = text.split("\n")[0]!.trim();
  if (!/^[0-9a-f]{32,128}$/.test(secret)) {
    throw new Error(
      "expected the pool's secret as the first line on stdin (workers are started by a Pool)",
    );
  }
  return { secret, reader };
}

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
 * Calls `onClose` once stdin reaches its end (the pool closed it or died).
 * With `onLine`, each further line on stdin is passed to it (the pool's
 * commands to a remote supervisor); otherwise stdin is just drained.
 */
export function watchLifeline(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  onClose: () => void,
  onLine?: (line: string) => void,
): void {
  (async () => {
    const decoder = new TextDecoder();
    let text = "";
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        if (!onLine) continue;
        text += decoder.decode(value, { stream: true });
        for (let at = text.indexOf("\n"); at >= 0; at = text.indexOf("\n")) {
          const line = text.slice(0, at).trim();
          text = text.slice(at + 1);
          if (line) onLine(line);
        }
        if (text.length > 4096) text = "";
      }
    } catch { /* stdin broke: same as closed */ }
    onClose();
  })();
}
