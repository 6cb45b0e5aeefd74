/**
 * Credentials for the worker handshake. The pool has a random secret that no
 * worker ever holds: each worker gets a key of its own, derived from the
 * secret and its id (`HMAC-SHA256(secret, "distex worker key:" + id)`), on
 * its stdin. A remote supervisor, which gets the secret, derives its workers'
 * keys itself. Both sides then prove they know that key: the worker answers
 * the pool's nonce, the pool answers the worker's. A key is worth nothing
 * once its worker has connected (the pool accepts each id once), so a task
 * that digs one out of its worker's memory cannot pose as another worker.
 * Keys never cross the socket and never appear on a command line. Web Crypto
 * only, so workers load no Node compatibility modules at start-up.
 *
 * @module
 */

const encoder = new TextEncoder();

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** A fresh random secret, as hex text. */
export function newSecret(): string {
  return hex(crypto.getRandomValues(new Uint8Array(32)));
}

/** A fresh random challenge. */
export function newNonce(): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(32));
}

/**
 * Imports key material (text, or the bytes of that text) as a
 * non-extractable HMAC-SHA256 key.
 */
export function importKey(
  material: string | Uint8Array<ArrayBuffer>,
): Promise<CryptoKey> {
  return crypto.subtle.importKey(
    "raw",
    typeof material === "string" ? encoder.encode(material) : material,
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign", "verify"],
  );
}

/** The pool's secret as a key: made once per secret. */
let cached: { secret: string; key: Promise<CryptoKey> } | undefined;

/**
 * The key of worker `workerId`, as hex text: what its launcher writes to its
 * stdin. Pool side (and remote supervisors).
 *
 * @param secret The pool's secret.
 * @param workerId The worker's id.
 * @returns 64 hex digits.
 */
export async function workerKey(
  secret: string,
  workerId: number,
): Promise<string> {
  if (cached?.secret !== secret) cached = { secret, key: importKey(secret) };
  const mac = await crypto.subtle.sign(
    "HMAC",
    await cached.key,
    encoder.encode(`distex worker key:${workerId}`),
  );
  return hex(new Uint8Array(mac));
}

/** A worker's key as text (for its stdin) and imported (for its handshake). */
interface WorkerKeys {
  text: Promise<string>;
  key: Promise<CryptoKey>;
}

/** Worker keys, by id, for the pool's current secret. */
let derived: { secret: string; byId: Map<number, WorkerKeys> } | undefined;

function keysOf(secret: string, workerId: number): WorkerKeys {
  if (derived?.secret !== secret) derived = { secret, byId: new Map() };
  let keys = derived.byId.get(workerId);
  if (keys === undefined) {
    const text = workerKey(secret, workerId);
    const key = text.then((hex) => importKey(hex));
    key.catch(() => derived?.byId.delete(workerId));
    keys = { text, key };
    derived.byId.set(workerId, keys);
  }
  return keys;
}

/**
 * The key of worker `workerId` as hex text, for its launcher to write to its
 * stdin: {@link workerKey}, derived once, and imported for
 * {@link workerCryptoKey} meanwhile, so that the pool's side of the
 * handshake finds it ready.
 *
 * @param secret The pool's secret.
 * @param workerId The worker's id.
 * @returns 64 hex digits.
 */
export function launchKey(secret: string, workerId: number): Promise<string> {
  return keysOf(secret, workerId).text;
}

/**
 * The key of worker `workerId` as a CryptoKey, for the pool's side of its
 * handshake: derived and imported once (by {@link launchKey} as its
 * launcher starts it), and forgotten with {@link forgetWorkerKey} once the
 * worker got in (each id gets in once) or its launch ended.
 *
 * @param secret The pool's secret.
 * @param workerId The worker's id.
 */
export function workerCryptoKey(
  secret: string,
  workerId: number,
): Promise<CryptoKey> {
  return keysOf(secret, workerId).key;
}

/** Drops worker `workerId`'s key from {@link workerCryptoKey}'s cache. */
export function forgetWorkerKey(secret: string, workerId: number): void {
  if (derived?.secret === secret) derived.byId.delete(workerId);
}

function signed(role: string, nonce: Uint8Array, workerId: number) {
  const prefix = encoder.encode(`${role}:`);
  const suffix = encoder.encode(`:${workerId}`);
  const data = new Uint8Array(prefix.length + nonce.length + suffix.length);
  data.set(prefix);
  data.set(nonce, prefix.length);
  data.set(suffix, prefix.length + nonce.length);
  return data;
}

async function mac(
  key: CryptoKey | string,
  role: "worker" | "pool",
  nonce: Uint8Array,
  workerId: number,
): Promise<Uint8Array> {
  const k = typeof key === "string" ? await importKey(key) : key;
  return new Uint8Array(
    await crypto.subtle.sign("HMAC", k, signed(role, nonce, workerId)),
  );
}

/**
 * The worker's answer to the pool's challenge `nonce`.
 *
 * @param key The worker's key (as from {@link workerKey}, or imported).
 * @param nonce The pool's nonce.
 * @param workerId The worker's id.
 * @returns The HMAC to send in the Hello.
 */
export function proof(
  key: CryptoKey | string,
  nonce: Uint8Array,
  workerId: number,
): Promise<Uint8Array> {
  return mac(key, "worker", nonce, workerId);
}

/**
 * The pool's answer to the worker's nonce: the worker checks it before it
 * takes any task, so a listener that is not its pool cannot feed it code.
 *
 * @param key The worker's key.
 * @param nonce The worker's nonce (from its Hello).
 * @param workerId The worker's id.
 * @returns The HMAC to send in the Welcome.
 */
export function poolProof(
  key: CryptoKey | string,
  nonce: Uint8Array,
  workerId: number,
): Promise<Uint8Array> {
  return mac(key, "pool", nonce, workerId);
}

/** True when `a` and `b` hold the same bytes (no early exit). */
export function sameBytes(a: Uint8Array, b: unknown): boolean {
  if (!(b instanceof Uint8Array) || a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

/**
 * Pool side: checks a worker's answer against the key derived for the id it
 * claims. Resolves with the pool's own proof for the worker's nonce when the
 * answer is right, and undefined otherwise.
 *
 * @param secret The pool's secret.
 * @param nonce The nonce the pool sent.
 * @param workerId The id the worker claims.
 * @param answer The worker's proof.
 * @param workerNonce The worker's nonce.
 */
export async function verifyProof(
  secret: string,
  nonce: Uint8Array,
  workerId: number,
  answer: unknown,
  workerNonce: Uint8Array,
): Promise<Uint8Array | undefined> {
  if (!(answer instanceof Uint8Array) || answer.length !== 32) return undefined;
  const key = await workerCryptoKey(secret, workerId);
  // Both at once (one wait instead of two); the pool's proof is sent only
  // to a worker whose answer is right.
  const [expected, reply] = await Promise.all([
    proof(key, nonce, workerId),
    poolProof(key, workerNonce, workerId),
  ]);
  if (!sameBytes(expected, answer)) return undefined;
  forgetWorkerKey(secret, workerId);
  return reply;
}
