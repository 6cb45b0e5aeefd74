/**
 * Making text from other processes (worker and remote stderr) safe to print
 * on the user's terminal: escape sequences are removed and other control
 * characters shown as `\xNN`, so a task or a remote host cannot write to the
 * clipboard (OSC 52), retitle the window, move the cursor or hide text.
 *
 * @module
 */

/**
 * Complete escape sequences: CSI (`ESC [ … final`), OSC (`ESC ] … BEL` or
 * `… ESC \`), DCS/SOS/PM/APC strings, two-byte `ESC x`; and their 8-bit
 * forms (CSI U+009B, OSC U+009D, string terminator U+009C).
 */
const SEQUENCE = new RegExp(
  [
    "\\x1b\\[[0-?]*[ -/]*[@-~]",
    "\\x9b[0-?]*[ -/]*[@-~]",
    "(?:\\x1b\\]|\\x9d)[^\\x07\\x1b\\x9c]*(?:\\x07|\\x1b\\\\|\\x9c)",
    "(?:\\x1b[PX^_]|[\\x90\\x98\\x9e\\x9f])[^\\x1b\\x9c]*(?:\\x1b\\\\|\\x9c)",
    "\\x1b[ -Z\\\\-~]",
  ].join("|"),
  "g",
);

/** Control characters other than tab and newline (C0, DEL, C1). */
// deno-lint-ignore no-control-regex
const CONTROL = new RegExp("[\\x00-\\x08\\x0b-\\x1f\\x7f-\\x9f]", "g");

/**
 * `text` without terminal escape sequences, its other control characters
 * (carriage return, backspace, a lone ESC, …) escaped as `\xNN`; tabs and
 * newlines are kept, and CRLF becomes LF.
 *
 * @param text Text from another process.
 * @returns Text that does nothing to a terminal but show itself.
 */
export function escapeControls(text: string): string {
  return text.replaceAll("\r\n", "\n").replace(SEQUENCE, "").replace(
    CONTROL,
    (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`,
  );
}
