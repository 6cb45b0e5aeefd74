/**
 * Both sides of the handshake over in-memory channels: no sockets, no
 * processes.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  forgetWorkerKey,
  launchKey,
  newNonce,
  newSecret,
  poolProof,
  proof,
  verifyProof,
  workerCryptoKey,
  workerKey,
} from "../src/auth.ts";
import { FrameWriter, type Message } from "../src/framing.ts";
import { readFrames } from "../src/frame_reader.ts";
import {
  answerChallenge,
  verifyWorker,
  welcome,
  welcomeSettings,
} from "../src/handshake.ts";
import { callMessage, helloMessage, Op } from "../src/protocol.ts";
import { rejection } from "./_util.ts";
import { channelPair } from "./_wire.ts";

Deno.test("handshake: a worker that knows its key is admitted and welcomed, and checks the pool's answer", async () => {
  const secret = newSecret();
  const [pool, worker] = channelPair();
  const workerWriter = new FrameWriter(worker, () => {});
  const [admission, expected] = await Promise.all([
    verifyWorker(pool, secret),
    answerChallenge(worker, workerWriter, await workerKey(secret, 7), 7),
  ]);
  assert.equal(admission.workerId, 7);
  assert.equal(admission.pid, Deno.pid);
  assert.deepEqual(admission.proof, expected);
  welcome(new FrameWriter(pool, () => {}), {
    statsMs: 250,
    maxFrameBytes: 1 << 30,
  }, admission.proof);
  let settings: unknown;
  await readFrames(worker, (m) => {
    settings = welcomeSettings(m, expected);
    return false;
  });
  assert.deepEqual(settings, { statsMs: 250, maxFrameBytes: 1 << 30 });
  pool.close();
});

Deno.test("handshake: a worker's key is its own: the pool's secret, or another id's key, fails", async () => {
  const secret = newSecret();
  for (
    const [key, id] of [[secret, 1], [await workerKey(secret, 2), 1]] as const
  ) {
    const [pool, worker] = channelPair();
    // Handled from the start: the pool may refuse before the worker's side
    // of the exchange returns (a rejection left alone that long fails the
    // test module as unhandled).
    const refused = rejection(verifyWorker(pool, secret));
    await answerChallenge(worker, new FrameWriter(worker, () => {}), key, id);
    assert.match(
      (await refused).message,
      new RegExp(`worker ${id} failed authentication`),
    );
    pool.close();
  }
});

Deno.test("handshake: a worker refuses a welcome that does not prove the pool knows its key", async () => {
  const secret = newSecret();
  const [pool, worker] = channelPair();
  const verdict = verifyWorker(pool, secret);
  const mine = await answerChallenge(
    worker,
    new FrameWriter(worker, () => {}),
    await workerKey(secret, 4),
    4,
  );
  await verdict;
  // A squatter, which does not know the key, answers with made-up bytes.
  welcome(new FrameWriter(pool, () => {}), {
    statsMs: 0,
    maxFrameBytes: 1 << 30,
  }, new Uint8Array(32));
  await readFrames(worker, (m) => {
    assert.throws(() => welcomeSettings(m, mine), /not this worker's pool/);
    return false;
  });
  pool.close();
});

Deno.test("handshake: a worker with another secret fails authentication", async () => {
  const [pool, worker] = channelPair();
  const refused = rejection(verifyWorker(pool, newSecret())); // handled at once
  await answerChallenge(
    worker,
    new FrameWriter(worker, () => {}),
    newSecret(),
    3,
  );
  assert.match(
    (await refused).message,
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
  const refused = rejection(verifyWorker(pool, newSecret())); // handled at once
  await peer.write(new Uint8Array([0, 0, 0x20, 0])); // announces 8 KiB
  assert.match(
    (await refused).message,
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
    () =>
      welcomeSettings(
        helloMessage(1, new Uint8Array(32), 1, new Uint8Array(32)),
        new Uint8Array(32),
      ),
    /before the handshake finished/,
  );
  pool.close();
});

Deno.test("handshake: the pool derives a worker's key once for its stdin and its handshake, and forgets it once the worker got in", async () => {
  const secret = newSecret();
  const text = launchKey(secret, 3);
  assert.equal(await text, await workerKey(secret, 3));
  assert.equal(launchKey(secret, 3), text, "derived again");
  const key = workerCryptoKey(secret, 3);
  assert.equal(workerCryptoKey(secret, 3), key, "imported again");
  // A wrong answer leaves it for the real worker.
  const nonce = newNonce();
  const workerNonce = newNonce();
  assert.equal(
    await verifyProof(secret, nonce, 3, new Uint8Array(32), workerNonce),
    undefined,
  );
  assert.equal(workerCryptoKey(secret, 3), key);
  const answer = await proof(await text, nonce, 3);
  const reply = await verifyProof(secret, nonce, 3, answer, workerNonce);
  assert.deepEqual(reply, await poolProof(await text, workerNonce, 3));
  // Each id gets in once: its key is not kept.
  assert.notEqual(workerCryptoKey(secret, 3), key);
  // Another pool's secret has keys of its own.
  assert.notEqual(await launchKey(newSecret(), 3), await text);
  forgetWorkerKey(secret, 3);
});
