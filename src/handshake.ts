/**
 * The handshake, both sides, and mutual. The pool sends a
 * {@link ChallengeMessage} with a fresh nonce; the worker answers with a
 * {@link HelloMessage} holding its id, an HMAC of the nonce under its own key
 * (derived from the pool's secret and its id, `auth.ts`) and a nonce of its
 * own; the pool checks the answer and sends a {@link WelcomeMessage} with its
 * HMAC of the worker's nonce, which the worker checks before it takes any
 * task (so a listener squatting on the socket's path cannot feed it code).
 * Neither side sends anything else before that, so each reads exactly one
 * small frame per step.
 *
 * @module
 */
import {
  importKey,
  newNonce,
  poolProof,
  proof,
  sameBytes,
  verifyProof,
} from "./auth.ts";
import { type ByteChannel, FrameWriter } from "./framing.ts";
import { readFrames } from "./frame_reader.ts";
import {
  challengeMessage,
  helloMessage,
  type Message,
  Op,
  parseHello,
  parseWelcome,
  PROTOCOL_VERSION,
  ProtocolError,
  welcomeMessage,
  type WorkerSettings,
} from "./protocol.ts";

/** How long a new connection may take to answer the challenge (ms). */
export const HANDSHAKE_MS = 10_000;
/** The largest frame either side accepts during the handshake. */
export const HANDSHAKE_MAX_FRAME = 4096;

/** Reads one frame (the peer sends nothing else until it is answered). */
async function readOne(channel: ByteChannel): Promise<Message> {
  let message: Message | undefined;
  await readFrames(channel, (m) => {
    message = m;
    return false;
  }, { maxFrameBytes: HANDSHAKE_MAX_FRAME });
  if (!message) throw new Error("closed during the handshake");
  return message;
}

/** Who a verified worker says it is. */
export interface Admission {
  /** The id the pool gave it when it was launched. */
  workerId: number;
  /** Its process id on its host (0 if it did not say). */
  pid: number;
  /** The pool's answer to the worker's nonce, for the welcome. */
  proof: Uint8Array;
}

/**
 * Pool side: challenges a fresh connection and checks the answer. Within
 * `timeoutMs` the worker must prove it knows `secret`; otherwise the channel
 * is closed and this rejects. The caller then decides whether it expected
 * that worker id, and {@link welcome}s it.
 *
 * @throws {Error} why the peer failed (for the pool's `rejected` event).
 */
export async function verifyWorker(
  channel: ByteChannel,
  secret: string,
  timeoutMs: number = HANDSHAKE_MS,
): Promise<Admission> {
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      channel.close();
    } catch { /* already closed */ }
  }, timeoutMs);
  try {
    const nonce = newNonce();
    const writer = new FrameWriter(channel, () => {});
    writer.send(challengeMessage(nonce));
    const [, , workerId, answer, pid, workerNonce] = parseHello(
      await readOne(channel),
    );
    const reply = await verifyProof(
      secret,
      nonce,
      workerId,
      answer,
      workerNonce,
    );
    if (!reply) throw new Error(`worker ${workerId} failed authentication`);
    if (workerNonce.length < 16) {
      throw new Error(`worker ${workerId} sent no nonce of its own`);
    }
    if (timedOut) throw new Error("timed out");
    return { workerId, pid, proof: reply };
  } catch (error) {
    if (timedOut) throw new Error(`no handshake within ${timeoutMs} ms`);
    throw error;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Pool side: lets a verified worker in, with the pool's proof from its
 * {@link Admission}; tasks may follow on `writer`.
 */
export function welcome(
  writer: FrameWriter,
  settings: WorkerSettings,
  proof: Uint8Array,
): void {
  writer.send(welcomeMessage(settings, proof));
}

/**
 * Worker side: answers the pool's challenge on `channel` with this worker's
 * key (hex text as its launcher gave it, or imported), and sends a nonce of
 * its own. Resolves with the answer the pool must give in its welcome (for
 * {@link welcomeSettings}). The key is not kept.
 *
 * @throws {ProtocolError} when the pool sends anything before the challenge
 * or speaks another protocol version.
 */
export async function answerChallenge(
  channel: ByteChannel,
  writer: FrameWriter,
  key: string | CryptoKey,
  workerId: number,
): Promise<Uint8Array> {
  // The answer this worker expects in the welcome, worked out while the
  // challenge is on its way.
  const k = typeof key === "string" ? importKey(key) : Promise.resolve(key);
  const mine = newNonce();
  const expected = k.then((k) => poolProof(k, mine, workerId));
  expected.catch(() => {}); // awaited below, unless the challenge is wrong
  const message = await readOne(channel);
  if (message[0] !== Op.Challenge) {
    throw new ProtocolError(
      `The pool sent message type ${message[0]} before the handshake finished`,
    );
  }
  const [, version, nonce] = message;
  if (version !== PROTOCOL_VERSION) {
    throw new ProtocolError(
      `Protocol version mismatch: pool speaks ${
        String(version)
      }, worker ${PROTOCOL_VERSION}`,
    );
  }
  if (!(nonce instanceof Uint8Array)) {
    throw new ProtocolError("malformed Challenge message");
  }
  writer.send(
    helloMessage(
      workerId,
      await proof(await k, nonce, workerId),
      Deno.pid,
      mine,
    ),
  );
  return await expected;
}

/**
 * Worker side: the settings in the pool's welcome, the first message after
 * the Hello, once it holds the answer `expected` (from
 * {@link answerChallenge}).
 *
 * @throws {ProtocolError} for any other message, or a welcome without the
 * right answer (the listener is not this worker's pool).
 */
export function welcomeSettings(
  message: Message,
  expected: Uint8Array,
): WorkerSettings {
  if (message[0] !== Op.Welcome) {
    throw new ProtocolError(
      `The pool sent message type ${message[0]} before the handshake finished`,
    );
  }
  const [, settings, answer] = parseWelcome(message);
  if (!sameBytes(expected, answer)) {
    throw new ProtocolError(
      "The listener on the socket did not prove it knows this worker's key: it is not this worker's pool",
    );
  }
  return settings;
}
