/**
 * Both sides of the handshake over in-memory channels: no sockets, no
 * processes.
 *
 * @module
 */
import assert from "node:assert/strict";
import { newSecret } from "../src/auth.ts";
import { FrameWriter, type Message, readFrames } from "../src/framing.ts";
import {
  answerChallenge,
  verifyWorker,
  welcome,
  welcomeSettings,
} from "../src/handshake.ts";
import { callMessage, helloMessage, Op } from "../src/protocol.ts";
import { rejection } from "./_util.ts";
import { channelPair } from "./_wire.ts";

Deno.test("handshake: a worker that knows the secret is admitted and welcomed", async () => {
  const secret = newSecret();
  const [pool, worker] = channelPair();
  const workerWriter = new FrameWriter(worker, () => {});
  const [admission] = await Promise.all([
    verifyWorker(pool, secret),
    answerChallenge(worker, workerWriter, secret, 7),
  ]);
  assert.deepEqual(admission, { workerId: 7, pid: Deno.pid });
  welcome(new FrameWriter(pool, () => {}), { statsMs: 250 });
  let settings: unknown;
  await readFrames(worker, (m) => {
    settings = welcomeSettings(m);
    return false;
  });
  assert.deepEqual(settings, { statsMs: 250 });
  pool.close();
});

Deno.test("handshake: a worker with another secret fails authentication", async () => {
  const [pool, worker] = channelPair();
  const verdict = verifyWorker(pool, newSecret());
  await answerChallenge(
    worker,
    new FrameWriter(worker, () => {}),
    newSecret(),
    3,
  );
  assert.match(
    (await rejection(verdict)).message,
    /worker 3 failed authentication/,
  );
  pool.close();
});

Deno.test("handshake: a peer that stays silent is hung up on after the timeout", async () => {
  const [pool, peer] = channelPair();
  const verdict = verifyWorker(pool, newSecret(), 20);
  assert.match((await rejection(verdict)).message, /no handshake within 20 ms/);
  // The pool closed the channel: the peer reads the challenge, then the end.
  const seen: Message[] = [];
  await readFrames(peer, (m) => {
    seen.push(m);
  });
  assert.deepEqual(seen.map((m) => m[0]), [Op.Challenge]);
});

Deno.test("handshake: the pool side reads only one small frame before it verifies", async () => {
  const [pool, peer] = channelPair();
  const verdict = verifyWorker(pool, newSecret());
  await peer.write(new Uint8Array([0, 0, 0x20, 0])); // announces 8 KiB
  assert.match(
    (await rejection(verdict)).message,
    /frame of 8192 bytes exceeds the limit of 4096 bytes/,
  );
  pool.close();
});

Deno.test("handshake: a worker refuses a pool that sends a task before the challenge", async () => {
  const [pool, worker] = channelPair();
  new FrameWriter(pool, () => {}).send(callMessage("call", 1, 1, []));
  const answer = answerChallenge(
    worker,
    new FrameWriter(worker, () => {}),
    newSecret(),
    1,
  );
  assert.match(
    (await rejection(answer)).message,
    /before the handshake finished/,
  );
  assert.throws(
    () => welcomeSettings(helloMessage(1, new Uint8Array(32), 1)),
    /before the handshake finished/,
  );
  pool.close();
});
