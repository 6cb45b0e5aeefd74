/**
 * The worker's protocol loop (`src/worker_runtime.ts`) against a pool side
 * made of the real handshake and framing over an in-memory channel pair:
 * no sockets, no processes.
 *
 * @module
 */
import assert from "node:assert/strict";
import { newSecret, workerKey } from "../src/auth.ts";
import { verifyWorker, welcome } from "../src/handshake.ts";
import {
  callMessage,
  defineMessage,
  FrameWriter,
  type Message,
  Op,
  readFrames,
} from "../src/protocol.ts";
import { runWorker } from "../src/worker_runtime.ts";
import { channelPair } from "./_wire.ts";

const SETTINGS = { statsMs: 0, maxFrameBytes: 1 << 20 };

/** Lets the other side of the channel run (not a gate: nothing waits on it). */
function aTurn(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

Deno.test("runWorker: whileChecked runs after the worker's answer, and the welcome and the tasks sent meanwhile wait for it", async () => {
  const secret = newSecret();
  const [pool, worker] = channelPair();
  const verifying = verifyWorker(pool, secret);
  const poolWriter = new FrameWriter(pool, () => {});
  const events: string[] = [];
  let calls = 0;
  const running = runWorker({
    channel: worker,
    secret: await workerKey(secret, 3),
    workerId: 3,
    whileChecked: async () => {
      calls++;
      // Resolves only once the pool has the worker's answer: called any
      // earlier, this would wait forever (and the test time out).
      const admission = await verifying;
      events.push(`checked ${admission.workerId}`);
      // The pool lets the worker in and sends a task at once; the worker
      // gets a chance to read them, and must not yet.
      welcome(poolWriter, SETTINGS, admission.proof);
      poolWriter.send(defineMessage(1, { source: "(x) => x * 2" }));
      poolWriter.send(callMessage("call", 10, 1, [21]));
      await poolWriter.drained();
      await aTurn();
      await aTurn();
      events.push("released");
    },
  });
  let answer: Message | undefined;
  await readFrames(pool, (m) => {
    answer = m;
    events.push(`result ${m[0]}`);
    return false;
  });
  pool.close();
  await running;
  assert.equal(calls, 1);
  assert.deepEqual(events, ["checked 3", "released", `result ${Op.Result}`]);
  // [op, taskId, value, workUs]
  assert.deepEqual(answer?.slice(1, 3), [10, 42]);
});

Deno.test("runWorker: a whileChecked that rejects ends the worker with its error", async () => {
  const secret = newSecret();
  const [pool, worker] = channelPair();
  const verifying = verifyWorker(pool, secret);
  const failure = new Error("the watchdog did not start");
  const running = runWorker({
    channel: worker,
    secret: await workerKey(secret, 4),
    workerId: 4,
    whileChecked: () => Promise.reject(failure),
  });
  await assert.rejects(running, (error) => error === failure);
  assert.equal((await verifying).workerId, 4);
  pool.close();
});

Deno.test("runWorker: an idle worker reports its memory every statsMs (without a timer), and stops when the connection ends", async () => {
  const secret = newSecret();
  const [pool, worker] = channelPair();
  const verifying = verifyWorker(pool, secret);
  const poolWriter = new FrameWriter(pool, () => {});
  const running = runWorker({
    channel: worker,
    secret: await workerKey(secret, 5),
    workerId: 5,
  });
  welcome(poolWriter, { ...SETTINGS, statsMs: 5 }, (await verifying).proof);
  // The first report goes out at the first tick, the next after at most
  // STATS_QUIET (10) quiet ticks: two reports prove the tick repeats.
  const reports: number[] = [];
  // The ticks keep no process alive (nor do in-memory channels): this does,
  // as a real worker's socket does.
  const alive = setInterval(() => {}, 1_000);
  try {
    await readFrames(pool, (m) => {
      if (m[0] === Op.Stats) reports.push(m[1] as number);
      return reports.length < 2;
    });
  } finally {
    clearInterval(alive);
  }
  pool.close();
  await running;
  assert.equal(reports.length, 2);
  assert.ok(reports.every((rss) => rss > 0));
});

Deno.test("runWorker: each task of a burst reports its own work time, not the one before it", async () => {
  const secret = newSecret();
  const [pool, worker] = channelPair();
  const verifying = verifyWorker(pool, secret);
  const poolWriter = new FrameWriter(pool, () => {});
  const running = runWorker({
    channel: worker,
    secret: await workerKey(secret, 6),
    workerId: 6,
  });
  welcome(poolWriter, SETTINGS, (await verifying).proof);
  poolWriter.send(defineMessage(1, {
    source: "(ms) => { const end = performance.now() + ms; " +
      "while (performance.now() < end) {} return ms; }",
  }));
  // Sent in one turn: the worker reads and runs them as one burst.
  poolWriter.send(callMessage("call", 1, 1, [0]));
  poolWriter.send(callMessage("call", 2, 1, [50]));
  poolWriter.send(callMessage("items", 3, 1, [0, 0, 0, 0, 0, 0, 0, 0, 0]));
  poolWriter.send(callMessage("call", 4, 1, [0]));
  const work = new Map<number, number>();
  await readFrames(pool, (m) => {
    if (m[0] === Op.Results) {
      const [, ids, , us] = m as unknown as [
        number,
        number[],
        unknown,
        number[],
      ];
      ids.forEach((id, i) => work.set(id, us[i]!));
    } else if (m[0] === Op.Result) {
      work.set(m[1] as number, m[3] as number);
    }
    return work.size < 4;
  });
  pool.close();
  await running;
  assert.ok(work.get(2)! >= 50_000, `the 50 ms task: ${work.get(2)} us`);
  for (const id of [1, 3, 4]) {
    assert.ok(work.get(id)! >= 0, `task ${id}: ${work.get(id)} us`);
    assert.ok(
      work.get(id)! < work.get(2)!,
      `task ${id} (${work.get(id)} us) is not charged the 50 ms task's time`,
    );
  }
});
