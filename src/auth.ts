/**
 * The worker handshake: the pool sends a random nonce, the worker answers with
 * an HMAC-SHA256 of it under the pool's secret. The secret itself never
 * crosses the socket and never appears on a command line. Web Crypto only, so
 * workers load no Node compatibility modules at start-up.
 *
 * @module
 */

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** A fresh random secret, as hex text (what workers read from stdin). */
export function newSecret(): string {
  return hex(crypto.getRandomValues(new Uint8Array(32)));
}

/** A fresh random challenge. */
export function newNonce(): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(32));
}

/** The last HMAC key made: a pool checks every worker with the same one. */
let cached: { secret: string; key: Promise<CryptoKey> } | undefined;

/** The worker's answer to a challenge. */
export async function proof(
  secret: string,
  nonce: Uint8Array,
  workerId: number,
): Promise<Uint8Array> {
  if (cached?.secret !== secret) {
    const key = crypto.subtle.importKey(
      "raw",
      new TextEncoder().encode(secret),
      { name: "HMAC", hash: "SHA-256" },
      false,
      ["sign"],
    );
    cached = { secret, key };
  }
  const key = cached.key;
  const suffix = new TextEncoder().encode(`:${workerId}`);
  const data = new Uint8Array(nonce.length + suffix.length);
  data.set(nonce);
  data.set(suffix, nonce.length);
  return new Uint8Array(await crypto.subtle.sign("HMAC", await key, data));
}

/** Checks an answer without an early exit on the first differing byte. */
export async function verifyProof(
  secret: string,
  nonce: Uint8Array,
  workerId: number,
  answer: unknown,
): Promise<boolean> {
  if (!(answer instanceof Uint8Array) || answer.length !== 32) return false;
  const expected = await proof(secret, nonce, workerId);
  let diff = 0;
  for (let i = 0; i < expected.length; i++) diff |= expected[i]! ^ answer[i]!;
  return diff === 0;
}
