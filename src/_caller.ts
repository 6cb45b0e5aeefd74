/**
 * The module that called into the pool (`run`, `map`, …), found from a stack
 * captured at the call: the first frame outside this package's own code.
 * Task code sent as source and relative module references are resolved
 * against it, as they would be in the caller's own module.
 *
 * @module
 */

/** This package's root (the directory of mod.ts). */
const ROOT = new URL("../", import.meta.url).href;
const OWN = [
  `${ROOT}src/`,
  `${ROOT}mod.ts`,
  `${ROOT}cli.ts`,
  `${ROOT}worker.ts`,
];
const FRAME_URL = /\(?((?:file|https?):\/\/[^\s()]+?):\d+:\d+\)?$/;

/**
 * The URL of the first module on the current stack that is not part of this
 * package, or undefined (a call from the library itself, e.g. the CLI).
 */
export function callerModule(): string | undefined {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 30;
  const stack = new Error().stack ?? "";
  Error.stackTraceLimit = limit;
  for (const line of stack.split("\n")) {
    const match = FRAME_URL.exec(line.trim());
    if (!match) continue;
    const url = match[1]!;
    if (OWN.some((own) => url.startsWith(own))) continue;
    return url;
  }
  return undefined;
}
