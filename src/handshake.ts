/**
 * The handshake, both sides. The pool sends a {@link ChallengeMessage} with a
 * fresh nonce; the worker answers with a {@link HelloMessage} holding its id
 * and an HMAC of the nonce under the pool's secret (`auth.ts`); the pool
 * checks it and sends a {@link WelcomeMessage}. Neither side sends anything
 * else before that, so each reads exactly one small frame per step.
 *
 * @module
 */
import { newNonce, proof, verifyProof } from "./auth.ts";
import { type ByteChannel, FrameWriter, readFrames } from "./framing.ts";
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
    const [, , workerId, answer, pid] = parseHello(await readOne(channel));
    if (!(await verifyProof(secret, nonce, workerId, answer))) {
      throw new Error(`worker ${workerId} failed authentication`);
    }
    if (timedOut) throw new Error("timed out");
    return { workerId, pid };
  } catch (error) {
    if (timedOut) throw new Error(`no handshake within ${timeoutMs} ms`);
    throw error;
  } finally {
    clearTimeout(timer);
  }
}

/** Pool side: lets a verified worker in; tasks may follow on `writer`. */
export function welcome(writer: FrameWriter, settings: WorkerSettings): void {
  writer.send(welcomeMessage(settings));
}

/**
 * Worker side: answers the pool's challenge on `channel`, then reads the
 * welcome: the first frame of `frames` after the Hello must be it.
 *
 * @throws {ProtocolError} when the pool sends anything before the challenge
 * or speaks another protocol version.
 */
export async function answerChallenge(
  channel: ByteChannel,
  writer: FrameWriter,
  secret: string,
  workerId: number,
): Promise<void> {
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
    helloMessage(workerId, await proof(secret, nonce, workerId), Deno.pid),
  );
}

/**
 * Worker side: the settings in the pool's welcome, the first message after
 * the Hello.
 *
 * @throws {ProtocolError} for any other message.
 */
export function welcomeSettings(message: Message): WorkerSettings {
  if (message[0] !== Op.Welcome) {
    throw new ProtocolError(
      `The pool sent message type ${message[0]} before the handshake finished`,
    );
  }
  return parseWelcome(message)[1];
}
