/**
 * The worker server: handed-in channels over memory (as a launcher's relayed
 * link would be), and its socket directory on disk.
 *
 * @module
 */
import assert from "node:assert/strict";
import { newSecret, workerKey } from "../src/auth.ts";
import { FrameWriter, type Message } from "../src/framing.ts";
import { readFrames } from "../src/frame_reader.ts";
import { answerChallenge, welcomeSettings } from "../src/handshake.ts";
import {
  defineMessage,
  Op,
  resultMessage,
  type WorkerMessage,
} from "../src/protocol.ts";
import {
  type Connection,
  WorkerServer,
  type WorkerServerHooks,
} from "../src/worker_server.ts";
import { withTimeout } from "./_util.ts";
import { channelPair, type MemoryChannel } from "./_wire.ts";

/** A server whose hooks record what happened. */
function recordingServer(admit: (id: number) => void = () => {}) {
  const secret = newSecret();
  const messages: WorkerMessage[] = [];
  const connected: Connection[] = [];
  const lost = Promise.withResolvers<string>();
  const rejected = Promise.withResolvers<string>();
  const hooks: WorkerServerHooks = {
    admit: ({ workerId }) => admit(workerId),
    connected: (c) => {
      connected.push(c);
      return (m) => messages.push(m);
    },
    lost: (_c, reason) => lost.resolve(reason),
    rejected: (reason) => rejected.resolve(reason),
  };
  const server = new WorkerServer({
    secret,
    settings: { statsMs: 0, maxFrameBytes: 1 << 30 },
  }, hooks);
  return { server, secret, messages, connected, lost, rejected };
}

/** The worker's end: handshake, then the frames that follow the welcome. */
async function join(
  channel: MemoryChannel,
  secret: string,
  workerId: number,
): Promise<{ writer: FrameWriter; frames: Message[]; ended: Promise<void> }> {
  const writer = new FrameWriter(channel, () => {});
  const expected = await answerChallenge(
    channel,
    writer,
    await workerKey(secret, workerId),
    workerId,
  );
  const frames: Message[] = [];
  const welcomed = Promise.withResolvers<void>();
  const ended = readFrames(channel, (m) => {
    if (m[0] === Op.Welcome) {
      welcomeSettings(m, expected);
      welcomed.resolve();
    } else frames.push(m);
  }).catch(() => {});
  ended.then(() => welcomed.resolve());
  await welcomed.promise;
  return { writer, frames, ended };
}

Deno.test("WorkerServer.accept() handshakes a handed-in channel, then passes its messages on", async () => {
  const { server, secret, messages, connected, lost } = recordingServer();
  const [poolEnd, workerEnd] = channelPair();
  server.accept(poolEnd);
  const worker = await join(workerEnd, secret, 5);
  assert.equal(connected.length, 1);
  assert.equal(connected[0]!.workerId, 5);
  connected[0]!.writer.send(defineMessage(1, { source: "() => 1" }));
  worker.writer.send(resultMessage(1, "hi", 3));
  await worker.writer.drained();
  for (let i = 0; i < 100 && messages.length === 0; i++) {
    await new Promise((r) => setTimeout(r, 5));
  }
  assert.deepEqual(messages, [[Op.Result, 1, "hi", 3]]);
  workerEnd.close();
  assert.equal(
    await withTimeout(lost.promise, 5_000, "lost"),
    "its connection closed",
  );
  await worker.ended;
  assert.deepEqual(worker.frames.map((m) => m[0]), [Op.Define]);
  await server.close();
});

Deno.test("WorkerServer drops a worker that breaks the protocol after the welcome", async () => {
  const { server, secret, lost } = recordingServer();
  const [poolEnd, workerEnd] = channelPair();
  server.accept(poolEnd);
  const worker = await join(workerEnd, secret, 1);
  worker.writer.send(defineMessage(1, { source: "() => 1" }));
  assert.match(
    await withTimeout(lost.promise, 5_000, "lost"),
    /it broke the protocol \(unexpected message type 3 \(Define\)\)/,
  );
  await worker.ended;
  await server.close();
});

Deno.test("WorkerServer rejects a peer the pool refuses, without a welcome", async () => {
  const { server, secret, rejected, connected } = recordingServer((id) => {
    throw new Error(`unexpected worker id ${id}`);
  });
  const [poolEnd, workerEnd] = channelPair();
  server.accept(poolEnd);
  const writer = new FrameWriter(workerEnd, () => {});
  await answerChallenge(workerEnd, writer, await workerKey(secret, 9), 9);
  assert.equal(
    await withTimeout(rejected.promise, 5_000, "rejected"),
    "unexpected worker id 9",
  );
  const after: Message[] = [];
  await readFrames(workerEnd, (m) => {
    after.push(m);
  });
  assert.deepEqual(after, [], "nothing after the Hello");
  assert.equal(connected.length, 0);
  await server.close();
});

Deno.test("WorkerServer.listen() makes a 0700 directory with a 0600 socket; close() removes it", async () => {
  const { server } = recordingServer();
  await server.listen();
  const path = server.socketPath;
  const dir = path.slice(0, path.lastIndexOf("/"));
  assert.equal((await Deno.stat(dir)).mode! & 0o777, 0o700);
  assert.equal((await Deno.lstat(path)).mode! & 0o777, 0o600);
  await server.close();
  await assert.rejects(() => Deno.stat(dir), Deno.errors.NotFound);
});
