/**
 * The codec's round trip as the wire makes it, for the codec tests.
 *
 * @module
 */
import { _readBlobs, decode, encode } from "../src/_codec.ts";

/** Encodes and decodes `value` as the wire does (Blob bytes read first). */
export async function wire(value: unknown): Promise<unknown> {
  // Values always travel inside a message tuple, as in the protocol.
  const message = [0, value];
  await _readBlobs(message);
  return (decode(encode(message).slice()) as unknown[])[1];
}
