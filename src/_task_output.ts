/**
 * Where a worker's stdout goes: never to the owner's stdout (that is the
 * owner's data: JSON lines of `cli.ts map`, a pipeline's output), but line by
 * line to the owner's stderr, or to a callback (`stdout: "capture"`).
 *
 * @module
 */
import { escapeControls } from "./_terminal.ts";

/** Receives one line (without its newline) a worker wrote to its stdout. */
export type StdoutSink = (workerId: number, line: string) => void;

const encoder = new TextEncoder();

/**
 * The default sink: the line on this process's stderr, control characters
 * escaped, and prefixed with `[worker N]` when stderr is not a terminal (a
 * log file then tells who said what).
 */
export function stdoutToStderr(workerId: number, line: string): void {
  let prefix = "";
  try {
    if (!Deno.stderr.isTerminal()) prefix = `[worker ${workerId}] `;
  } catch { /* no stderr to ask */ }
  try {
    Deno.stderr.writeSync(encoder.encode(`${prefix}${line}\n`));
  } catch { /* our stderr is gone */ }
}

/**
 * What a local worker writes last on its stdout, followed by its exit code,
 * when it exits by its own hand with a code above 128 (worker.ts, which has
 * the same text): taken out of its output and returned by
 * {@link forwardStdout}.
 */
export const EXIT_MARK = "\u0000distex-exit ";

/**
 * Reads `stream` (a worker's stdout) to its end and hands each line, control
 * characters escaped, to `sink`. Never rejects.
 *
 * @param stream The worker's stdout.
 * @param workerId The worker's id, passed to `sink`.
 * @param sink Where lines go; default {@link stdoutToStderr}.
 * @returns When the stream has ended: the exit code the worker wrote after
 * {@link EXIT_MARK} at the stream's end, if it did.
 */
export async function forwardStdout(
  stream: ReadableStream<Uint8Array>,
  workerId: number,
  sink: StdoutSink = stdoutToStderr,
): Promise<number | undefined> {
  const decoder = new TextDecoder();
  let partial = "";
  const emit = (line: string) => {
    try {
      sink(workerId, escapeControls(line));
    } catch { /* a throwing listener must not stop the forwarding */ }
  };
  try {
    for await (const chunk of stream) {
      partial += decoder.decode(chunk, { stream: true });
      const lines = partial.split("\n");
      partial = lines.pop()!;
      for (const line of lines) emit(line);
      // A task that never writes a newline still shows up, in pieces.
      if (partial.length > 65536) {
        emit(partial);
        partial = "";
      }
    }
  } catch { /* the process died mid-write */ }
  partial += decoder.decode();
  let told: number | undefined;
  const mark = partial.lastIndexOf(EXIT_MARK);
  if (mark >= 0 && /^\d{3}$/.test(partial.slice(mark + EXIT_MARK.length))) {
    told = Number(partial.slice(mark + EXIT_MARK.length));
    partial = partial.slice(0, mark);
  }
  if (partial) emit(partial);
  return told;
}
