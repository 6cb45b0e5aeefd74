/**
 * The worker handshake: the pool sends a random nonce, the worker answers with
 * an HMAC of it under the pool's secret. The secret itself never crosses the
 * socket and never appears on a command line.
 *
 * @module
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";

/** A fresh random secret, as hex text (what workers read from stdin). */
export function newSecret(): string {
  return randomBytes(32).toString("hex");
}

/** A fresh random challenge. */
export function newNonce(): Uint8Array {
  return new Uint8Array(randomBytes(32));
}

/** The worker's answer to a challenge. */
export function proof(
  secret: string,
  nonce: Uint8Array,
  workerId: number,
): Uint8Array {
  return new Uint8Array(
    createHmac("sha256", secret).update(nonce).update(`:${workerId}`).digest(),
  );
}

/** Checks an answer in constant time. */
export function verifyProof(
  secret: string,
  nonce: Uint8Array,
  workerId: number,
  answer: unknown,
): boolean {
  if (!(answer instanceof Uint8Array) || answer.length !== 32) return false;
  return timingSafeEqual(proof(secret, nonce, workerId), answer);
}
