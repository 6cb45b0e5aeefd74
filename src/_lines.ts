/**
 * One line reader for the whole package: the lines of a byte stream, without
 * their `\n` / `\r\n`, decoded as UTF-8.
 *
 * @module
 */

/**
 * Reads the lines of a byte stream. `next()` waits for a line;
 * `nextBuffered()` returns one only if it is already read, so a caller can
 * take what has arrived without waiting for more. A last line without a
 * final newline is returned too.
 *
 * @example
 * ```ts
 * import { LineReader } from "./_lines.ts";
 * const lines = new LineReader(ReadableStream.from(["a\r\nb", "\nc"])
 *   .pipeThrough(new TextEncoderStream()));
 * const all: string[] = [];
 * for await (const line of lines) all.push(line);
 * console.log(all); // ["a", "b", "c"]
 * ```
 */
export class LineReader implements AsyncIterable<string> {
  #reader: ReadableStreamDefaultReader<Uint8Array>;
  #decoder = new TextDecoder();
  #buffer = "";
  /** Where the unread part of #buffer starts. */
  #at = 0;
  #done = false;

  /** @param stream The bytes; the reader locks it until `cancel()` or its end. */
  constructor(stream: ReadableStream<Uint8Array>) {
    this.#reader = stream.getReader();
  }

  /**
   * The next line, or undefined at the end of the stream (or after
   * `cancel()`).
   * @throws what reading the stream throws.
   */
  async next(): Promise<string | undefined> {
    for (;;) {
      const line = this.nextBuffered();
      if (line !== undefined) return line;
      const rest = this.#buffer.slice(this.#at);
      if (this.#done) {
        this.#buffer = "";
        this.#at = 0;
        return rest === "" ? undefined : rest;
      }
      const { value, done } = await this.#reader.read();
      if (done) this.#done = true;
      this.#buffer = rest +
        (done
          ? this.#decoder.decode()
          : this.#decoder.decode(value, { stream: true }));
      this.#at = 0;
    }
  }

  /** The next line if it has been read already (no waiting), else undefined. */
  nextBuffered(): string | undefined {
    const nl = this.#buffer.indexOf("\n", this.#at);
    if (nl < 0) return undefined;
    const end = nl > this.#at && this.#buffer[nl - 1] === "\r" ? nl - 1 : nl;
    const line = this.#buffer.slice(this.#at, end);
    this.#at = nl + 1;
    return line;
  }

  /** Stops reading: cancels the stream; `next()` then ends. */
  cancel(): void {
    if (this.#done && this.#buffer === "") return;
    this.#done = true;
    this.#buffer = "";
    this.#at = 0;
    this.#reader.cancel().catch(() => {});
  }

  /** The remaining lines; breaking out of the loop cancels the stream. */
  async *[Symbol.asyncIterator](): AsyncGenerator<string> {
    try {
      for (;;) {
        const line = this.nextBuffered() ?? await this.next();
        if (line === undefined) return;
        yield line;
      }
    } finally {
      this.cancel();
    }
  }
}
