/**
 * The wire's value codec: MessagePack (written by `src/_msgpack.ts`) with
 * extension types of our own for what MessagePack has no format for.
 *
 * Values get structured-clone semantics, checked against `structuredClone`
 * itself (tests/codec_test.ts): what `structuredClone` copies arrives as its
 * clone would, what it refuses fails with a `DataCloneError` naming the type
 * and where it was (`args[0].a.b`). Deliberate differences, all documented in
 * the README:
 * - `URL` crosses (as an equal `URL`); `structuredClone` refuses it.
 * - `SharedArrayBuffer` and `FormData` are refused (memory cannot be shared
 *   between processes; Deno's `structuredClone` turns a `FormData` into `{}`).
 * - A typed array or `DataView` arrives over a buffer of just its own bytes
 *   (`structuredClone` copies the whole underlying buffer).
 * - `Blob`/`File` bytes are read asynchronously (`_readBlobs`) before
 *   the value is encoded.
 * - Properties besides the indices are carried for arrays of up to 1,024
 *   elements (a RegExp match's `index`, `input`, `groups`); on longer arrays
 *   they are not looked for (listing them costs more than the encoding)
 *   unless a hole was found somewhere in the value.
 *
 * The wire: nil, booleans, numbers, strings, `Uint8Array` (bin), arrays and
 * plain objects (maps with string keys; class instances as their own
 * enumerable fields) are standard MessagePack, but for arrays of 8 and more
 * numbers only (no holes, no other properties), which are one extension of
 * int32s (`Ext.Ints`, when all are int32 and none is `-0`) or of float64s
 * (`Ext.Numbers`): exact for every number, and written and read by a tight
 * loop and a native copy, cheap while the code is still cold (issue 14).
 * Arrays the protocol makes (the message, argument lists, a chunk's results)
 * are numbered like every object but never remembered, as nothing can refer
 * to them again. Everything else is an
 * extension type of ours (the `Ext` codes of `src/_codec_ext.ts`), whose
 * payload is a sequence of MessagePack values: `undefined`, `-0`, bigints,
 * arrays with holes or other properties, Map, Set, Date, RegExp, errors, URL,
 * Blob/File, boxed primitives, typed arrays and DataView, ArrayBuffer,
 * registered user types. Objects are numbered in the order they are first
 * met; a second meeting is written as a reference to that number, and a
 * message with references is wrapped in one extension so that the decoder
 * numbers objects only then. One walk checks and writes: only when it meets
 * something it refuses does the check walk again, for the position in the
 * message.
 *
 * The parts, each in its own module:
 * - `src/_codec_encode.ts`: the encoder ({@link encode}), one walk;
 * - `src/_codec_decode.ts`: the decoder ({@link decode}) and its caches;
 * - `src/_codec_ext.ts`: the extension codes and the registry of user types;
 * - `src/_codec_check.ts`: what is refused and where it was, for the errors;
 * - `src/_codec_blobs.ts`: reading Blob bytes ahead of encoding.
 *
 * @module
 */
export { _libraryArrays, encode } from "./_codec_encode.ts";
export { decode } from "./_codec_decode.ts";
export { _readBlobs } from "./_codec_blobs.ts";
export { _registerType, RAW_MIN_BYTES } from "./_codec_ext.ts";
