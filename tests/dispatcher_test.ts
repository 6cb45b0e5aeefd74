/**
 * The dispatcher without processes or sockets: fake workers whose writers
 * record what is sent, and results fed back by hand.
 *
 * @module
 */
import assert from "node:assert/strict";
import { Dispatcher, type DispatcherOptions } from "../src/dispatcher.ts";
import { MAX_DEPTH } from "../src/depth.ts";
import { type WorkerExit, WorkerLostError } from "../src/errors.ts";
import type { FunctionSpec } from "../src/function_ref.ts";
import type { Message } from "../src/framing.ts";
import {
  errorMessage,
  Op,
  resultMessage,
  resultsMessage,
  statsMessage,
} from "../src/protocol.ts";
import { MAX_PENDING_BYTES, WorkerHandle } from "../src/worker_handle.ts";
import { CALL_OPS, FakeWriter } from "./_fake_writer.ts";
import { flushMicrotasks, rejection, track } from "./_util.ts";

/**
 * One-call tasks go out at the end of the turn, together: lets the
 * dispatcher's end-of-turn send run (it waits for a microtask in which no
 * task was added).
 */
function endOfTurn(): Promise<void> {
  return flushMicrotasks();
}

const SPEC: FunctionSpec = { id: 1, source: "(x) => x", label: "fn" };

function setup(options: Partial<DispatcherOptions> = {}) {
  const stopped: WorkerHandle[] = [];
  let running = true;
  const dispatcher = new Dispatcher({
    qsize: 2,
    retries: 0,
    poisonThreshold: 3,
    killGrace: 1_000,
    maxTasksPerWorker: undefined,
    maxMemoryMB: undefined,
    ...options,
  }, {
    stopWorker: (w) => stopped.push(w),
    running: () => running,
    changed: () => {},
  });
  const worker = (id: number, capacity = 2) => {
    const w = new WorkerHandle(id, "local", new FakeWriter(), capacity);
    dispatcher.connect(w);
    dispatcher.attach(w);
    return w;
  };
  return {
    dispatcher,
    stopped,
    worker,
    stop: () => running = false,
  };
}

function writer(w: WorkerHandle): FakeWriter {
  return w.writer as FakeWriter;
}

function exitOf(w: WorkerHandle): WorkerExit {
  return { workerId: w.id, host: "local", code: 1, reason: "test" };
}

/** Runs one task of `spec`, timed: a round trip of at least 1 ms, 0 us of work. */
async function timeOneTask(
  dispatcher: Dispatcher,
  workers: WorkerHandle[],
  spec: FunctionSpec,
): Promise<void> {
  const first = dispatcher.submit(spec, [0], "call");
  await endOfTurn();
  const w = workers.find((w) => w.load === 1)!;
  const sent = performance.now();
  while (performance.now() - sent < 1) { /* the round trip */ }
  dispatcher.onMessage(w, resultMessage(writer(w).calls()[0]!, 0, 0));
  await first;
}

Deno.test("Dispatcher.submit() sends to a worker with a free slot and defines the function once", async () => {
  const { dispatcher, worker } = setup();
  const w = worker(1);
  const a = dispatcher.submit(SPEC, [1], "call");
  const b = dispatcher.submit(SPEC, [2], "call");
  await endOfTurn();
  // Both calls of the turn in one frame, after the definition.
  assert.deepEqual(writer(w).sent.map((m) => m[0]), [Op.Define, Op.Calls]);
  const [first, second] = writer(w).calls();
  dispatcher.onMessage(w, resultMessage(second!, "two", 5));
  dispatcher.onMessage(w, resultMessage(first!, "one", 5));
  assert.deepEqual(await Promise.all([a, b]), ["one", "two"]);
  assert.equal(dispatcher.stats().done, 2);
  assert.equal(w.load, 0);
});

Deno.test("Dispatcher.submitTo() hands each task's end to the shared callbacks with its tag: results, errors, aborts, no promise", async () => {
  const { dispatcher, worker } = setup();
  const w = worker(1, 3);
  const ends: unknown[] = [];
  const ok = (value: unknown, tag: unknown) => ends.push(["ok", tag, value]);
  const no = (error: unknown, tag: unknown) =>
    ends.push(["no", tag, (error as Error).message]);
  const controller = new AbortController();
  const options = { signal: controller.signal };
  dispatcher.submitTo(SPEC, [1], "call", options, "a", ok, no);
  dispatcher.submitTo(SPEC, [2], "call", options, "b", ok, no);
  dispatcher.submitTo(SPEC, [3], "call", options, "c", ok, no);
  await endOfTurn();
  const [a, b] = writer(w).calls();
  dispatcher.onMessage(w, resultMessage(b!, "two", 5));
  // Called from inside the dispatcher, not a turn later.
  assert.deepEqual(ends, [["ok", "b", "two"]]);
  dispatcher.onMessage(
    w,
    errorMessage(a!, { name: "Error", message: "bad", stack: "" }),
  );
  assert.deepEqual(ends.at(-1), ["no", "a", "bad"]);
  controller.abort(new Error("stop"));
  assert.deepEqual(ends.at(-1), ["no", "c", "stop"]);
  assert.equal(dispatcher.liveCount, 0);
  // A signal already aborted: refused at once, through the callback.
  dispatcher.submitTo(SPEC, [4], "call", options, "d", ok, no);
  assert.deepEqual(ends.at(-1), ["no", "d", "stop"]);
  assert.equal(ends.length, 4);
  assert.equal(dispatcher.stats().done, 1);
  dispatcher.close();
});

Deno.test("Dispatcher queues beyond the slots and fills a worker as results come back", async () => {
  const { dispatcher, worker } = setup();
  const w = worker(1, 1);
  const results = [1, 2, 3].map((x) => dispatcher.submit(SPEC, [x], "call"));
  await endOfTurn();
  assert.equal(writer(w).calls().length, 1);
  assert.equal(dispatcher.stats().queued, 2);
  for (let i = 0; i < 3; i++) {
    const id = writer(w).calls()[i]!;
    dispatcher.onMessage(w, resultMessage(id, i, 1));
    await endOfTurn();
  }
  assert.deepEqual(await Promise.all(results), [0, 1, 2]);
  assert.equal(dispatcher.stats().queued, 0);
});

Deno.test("Dispatcher.canTake() is the one rule for who gets a task", () => {
  const { dispatcher, worker } = setup();
  const w = worker(1, 1);
  assert.equal(dispatcher.canTake(w), true);
  w.suspect = 9;
  assert.equal(dispatcher.canTake(w), false, "holding a timed-out task");
  w.suspect = undefined;
  w.retiring = "test";
  assert.equal(dispatcher.canTake(w), false, "retiring");
  w.retiring = undefined;
  writer(w).pendingBytes = MAX_PENDING_BYTES + 1;
  assert.equal(dispatcher.canTake(w), false, "congested");
  writer(w).pendingBytes = 0;
  w.load = 1;
  assert.equal(dispatcher.canTake(w), false, "full");
  w.load = 0;
  const fresh = new WorkerHandle(2, "local", new FakeWriter(), 1);
  dispatcher.connect(fresh);
  assert.equal(dispatcher.canTake(fresh), false, "not initialised");
  // And the queue honours it: a blocked worker is skipped.
  w.retiring = "test";
  dispatcher.submit(SPEC, [1], "call");
  assert.equal(writer(w).calls().length, 0);
});

Deno.test("Dispatcher.requeueOrFail() resends a lost worker's tasks with retries left, fails the others", async () => {
  const { dispatcher, worker } = setup();
  const a = worker(1, 4);
  const retried = dispatcher.submit(SPEC, [1], "call", { retries: 1 });
  const lost = dispatcher.submit(SPEC, [2], "call");
  const tasks = dispatcher.detach(a);
  assert.equal(tasks.length, 2);
  const b = worker(2, 4);
  dispatcher.requeueOrFail(a, tasks, exitOf(a), undefined);
  const error = await rejection(lost);
  assert.ok(error instanceof WorkerLostError);
  assert.equal(error.exits[0]!.workerId, 1);
  assert.equal(writer(b).calls().length, 1);
  dispatcher.onMessage(b, resultMessage(writer(b).calls()[0]!, "again", 1));
  assert.equal(await retried, "again");
  const stats = dispatcher.stats();
  assert.deepEqual([stats.retried, stats.lost, stats.done, stats.failed], [
    1,
    1,
    1,
    1,
  ]);
});

Deno.test("Dispatcher fails a task after poisonThreshold deaths, retries left or not", async () => {
  const { dispatcher, worker } = setup({ poisonThreshold: 2 });
  const result = dispatcher.submit(SPEC, [1], "call", { retries: 10 });
  for (let id = 1; id <= 2; id++) {
    const w = worker(id);
    const tasks = dispatcher.detach(w);
    dispatcher.requeueOrFail(w, tasks, exitOf(w), undefined);
  }
  const error = await rejection(result);
  assert.ok(error instanceof WorkerLostError);
  assert.deepEqual(error.exits.map((e) => e.workerId), [1, 2]);
});

Deno.test("Dispatcher does not retry when the pool no longer replaces workers", async () => {
  const { dispatcher, worker, stop } = setup();
  const w = worker(1);
  const result = dispatcher.submit(SPEC, [1], "call", { retries: 3 });
  stop();
  dispatcher.requeueOrFail(w, dispatcher.detach(w), exitOf(w), undefined);
  assert.ok((await rejection(result)) instanceof WorkerLostError);
});

Deno.test("Dispatcher: a task's timeout rejects it, cancels it on the worker and stops the worker after killGrace", async () => {
  const { dispatcher, worker, stopped } = setup({ killGrace: 0 });
  const w = worker(1);
  const other = worker(2);
  const result = dispatcher.submit(SPEC, [1], "call", { timeout: 0 });
  const error = await rejection(result);
  assert.equal(error.name, "TimeoutError");
  assert.equal(writer(w).sent.at(-1)![0], Op.Cancel);
  assert.equal(w.suspect, writer(w).calls()[0]);
  // No new task for the suspect worker meanwhile.
  dispatcher.submit(SPEC, [2], "call");
  await endOfTurn();
  assert.equal(writer(w).calls().length, 1);
  assert.equal(writer(other).calls().length, 1);
  for (let i = 0; i < 100 && stopped.length === 0; i++) {
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.deepEqual(stopped, [w]);
  assert.equal(w.hardKilled, true);
  dispatcher.close();
});

Deno.test("Dispatcher: a worker that ends its timed-out task goes back into service", async () => {
  const { dispatcher, worker, stopped } = setup({ killGrace: 60_000 });
  const w = worker(1);
  const result = dispatcher.submit(SPEC, [1], "call", { timeout: 0 });
  await rejection(result);
  dispatcher.onMessage(w, resultMessage(writer(w).calls()[0]!, undefined, 1));
  assert.equal(w.suspect, undefined);
  assert.equal(dispatcher.canTake(w), true);
  dispatcher.close();
  assert.equal(stopped.length, 0);
});

Deno.test("Dispatcher: an abort signal rejects queued and running tasks with its reason", async () => {
  const { dispatcher, worker } = setup();
  const w = worker(1, 1);
  const controller = new AbortController();
  const options = { signal: controller.signal };
  const running = dispatcher.submit(SPEC, [1], "call", options);
  const queued = dispatcher.submit(SPEC, [2], "call", options);
  const reason = new Error("stop");
  controller.abort(reason);
  assert.equal(await rejection(running), reason);
  assert.equal(await rejection(queued), reason);
  // Aborted before the end of the turn: the call is never sent.
  assert.deepEqual(writer(w).calls(), []);
  assert.equal(w.load, 0);
  assert.equal(dispatcher.liveCount, 0);
  // Aborted once sent: the worker is told to drop it.
  const controller2 = new AbortController();
  const sent = dispatcher.submit(SPEC, [4], "call", {
    signal: controller2.signal,
  });
  await endOfTurn();
  controller2.abort(reason);
  assert.equal(await rejection(sent), reason);
  assert.equal(writer(w).sent.at(-1)![0], Op.Cancel);
  // An aborted signal is refused at once.
  assert.equal(
    await rejection(dispatcher.submit(SPEC, [3], "call", options)),
    reason,
  );
  dispatcher.close();
});

Deno.test("Dispatcher.settledBefore() waits for the tasks live when called, not later ones", async () => {
  const { dispatcher, worker } = setup();
  const w = worker(1, 4);
  dispatcher.submit(SPEC, [1], "call");
  const barrier = track(dispatcher.settledBefore());
  dispatcher.submit(SPEC, [2], "call");
  await endOfTurn();
  const [first, second] = writer(w).calls();
  dispatcher.onMessage(w, resultMessage(second!, 2, 1));
  await Promise.resolve();
  assert.equal(barrier.settled, false);
  dispatcher.onMessage(w, resultMessage(first!, 1, 1));
  await dispatcher.settledBefore();
  await Promise.resolve();
  assert.equal(barrier.settled, true);
});

Deno.test("Dispatcher retires a worker after maxTasksPerWorker and stops it once idle", async () => {
  const { dispatcher, worker, stopped } = setup({ maxTasksPerWorker: 2 });
  const w = worker(1, 4);
  for (let i = 0; i < 3; i++) dispatcher.submit(SPEC, [i], "call");
  await endOfTurn();
  assert.equal(writer(w).calls().length, 2);
  assert.match(w.retiring ?? "", /maxTasksPerWorker \(2\)/);
  const [a, b] = writer(w).calls();
  dispatcher.onMessage(w, resultMessage(a!, 1, 1));
  assert.equal(stopped.length, 0);
  dispatcher.onMessage(w, resultMessage(b!, 2, 1));
  assert.deepEqual(stopped, [w]);
  assert.equal(dispatcher.stats().recycled, 1);
});

Deno.test("Dispatcher retires a worker whose reported memory passes maxMemoryMB", () => {
  const { dispatcher, worker, stopped } = setup({ maxMemoryMB: 16 });
  const w = worker(1);
  dispatcher.onMessage(w, statsMessage(8 << 20));
  assert.equal(w.retiring, undefined);
  dispatcher.onMessage(w, statsMessage(32 << 20));
  assert.match(w.retiring ?? "", /passed maxMemoryMB \(16\)/);
  assert.deepEqual(stopped, [w]);
});

Deno.test("Dispatcher settles a task with its worker's error, and a task that cannot be sent with DataCloneError", async () => {
  const { dispatcher, worker } = setup();
  const w = worker(1);
  const failing = dispatcher.submit(SPEC, [1], "call");
  await endOfTurn();
  dispatcher.onMessage(
    w,
    errorMessage(writer(w).calls()[0]!, {
      name: "RangeError",
      message: "no",
      stack: "",
    }),
  );
  const error = await rejection(failing);
  assert.ok(error instanceof RangeError);
  assert.equal(
    (await rejection(dispatcher.submit(SPEC, ["unsendable"], "call"))).name,
    "DataCloneError",
  );
  assert.equal(w.load, 0);
  assert.throws(
    () => dispatcher.onMessage(w, resultMessage(999, 1, 1)),
    /result for unknown task 999/,
  );
});

Deno.test("Dispatcher measures time per item and, with no qsize, deepens a worker with tiny tasks", async () => {
  const { dispatcher, worker } = setup({ qsize: undefined });
  const w = worker(1, dispatcher.initialCapacity);
  assert.equal(w.capacity, 2);
  for (let i = 0; i < 40; i++) {
    const result = dispatcher.submit(SPEC, [1, 2, 3, 4], "items");
    const id = writer(w).calls().at(-1)!;
    await new Promise((r) => setTimeout(r, 1));
    dispatcher.onMessage(w, resultMessage(id, [1, 2, 3, 4], 4));
    await result;
  }
  assert.equal(dispatcher.itemMs(SPEC.id), 0.001);
  assert.ok(w.capacity > 2, `capacity ${w.capacity}`);
  assert.equal(dispatcher.slots(5), w.capacity);
});

Deno.test("Dispatcher measures a frame of several results as the same results one by one", async () => {
  const measured = async (together: boolean) => {
    const { dispatcher, worker } = setup({ qsize: undefined });
    const w = worker(1, 64);
    const results = [1, 2, 3, 4, 5, 6].map((x) =>
      dispatcher.submit(SPEC, [x, x], "items")
    );
    const ids = writer(w).calls();
    assert.equal(ids.length, 6);
    const values = ids.map(() => [0, 0]);
    // The first (cold) task took longest: one by one, the latest count most.
    const workUs = [400, 30, 20, 30, 20, 30];
    if (together) dispatcher.onMessage(w, resultsMessage(ids, values, workUs));
    else {
      ids.forEach((id, i) =>
        dispatcher.onMessage(w, resultMessage(id, values[i], workUs[i]))
      );
    }
    assert.equal((await Promise.all(results)).length, 6);
    return {
      itemMs: dispatcher.itemMs(SPEC.id)!,
      workMs: w.workMs,
      done: dispatcher.stats().done,
    };
  };
  const a = await measured(false);
  const b = await measured(true);
  assert.equal(b.done, 12);
  assert.equal(a.done, 12);
  assert.equal(b.itemMs, a.itemMs, "the time per item exactly as one by one");
  assert.ok(b.itemMs < 0.02, `${b.itemMs}: the cold first task hardly counts`);
  // The depth's average of work per task takes the frame as tasks of its
  // mean work each (here the first measurement: it is set to the mean).
  assert.ok(Math.abs(b.workMs - 0.53 / 6) < 1e-12, `${b.workMs}`);
});

Deno.test("Dispatcher.failAll() rejects queued and running tasks", async () => {
  const { dispatcher, worker } = setup();
  const w = worker(1, 1);
  const running = dispatcher.submit(SPEC, [1], "call");
  const queued = dispatcher.submit(SPEC, [2], "call");
  await endOfTurn();
  const reason = new Error("closed");
  dispatcher.failAll(reason);
  assert.equal(await rejection(running), reason);
  assert.equal(await rejection(queued), reason);
  assert.equal(dispatcher.stats().queued, 0);
  assert.equal(writer(w).sent.at(-1)![0], Op.Cancel);
});

Deno.test("Dispatcher gives each task to a worker with the most free slots, equal ones in turn", () => {
  const { dispatcher, worker } = setup({ qsize: undefined });
  const a = worker(1, 1);
  const b = worker(2, 3);
  const c = worker(3, 3);
  const order: number[] = [];
  for (let i = 0; i < 7; i++) {
    const before = [a, b, c].map((w) => w.load);
    track(dispatcher.submit(SPEC, [i], "call"));
    order.push([a, b, c].findIndex((w, k) => w.load > before[k]!) + 1);
  }
  // b and c (3 free) take turns until they are down to a's 1 free slot.
  assert.deepEqual(order, [2, 3, 2, 3, 1, 2, 3]);
  assert.equal(dispatcher.stats().queued, 0);
  dispatcher.failAll(new Error("end of test"));
});

Deno.test("Dispatcher does not look at every worker for every task", async () => {
  const { dispatcher } = setup({ qsize: 2 });
  let reads = 0;
  const workers: WorkerHandle[] = [];
  for (let id = 1; id <= 500; id++) {
    // Counts how often the dispatcher reads a worker's load or capacity.
    const w = new Proxy(new WorkerHandle(id, "local", new FakeWriter(), 2), {
      get(target, key, receiver) {
        if (key === "load" || key === "capacity") reads++;
        return Reflect.get(target, key, receiver);
      },
    });
    dispatcher.connect(w);
    dispatcher.attach(w);
    workers.push(w);
  }
  reads = 0;
  const tasks: Promise<unknown>[] = [];
  for (let i = 0; i < 1_000; i++) {
    tasks.push(dispatcher.submit(SPEC, [i], "call"));
  }
  for (const w of workers) assert.equal(w.load, 2, `worker ${w.id}`);
  // A scan of all 500 workers per task would read them 1,000,000 times.
  assert.ok(reads < 20 * 1_000, `${reads} reads for 1,000 tasks`);
  // And as results come back, each freed slot is found without a scan.
  reads = 0;
  const more = dispatcher.submit(SPEC, ["queued"], "call");
  const w = workers[317]!;
  await endOfTurn();
  const id = writer(w).calls()[0]!;
  dispatcher.onMessage(w, resultMessage(id, "done", 1));
  await endOfTurn();
  assert.equal(writer(w).calls().length, 3, "the queued task went to it");
  assert.ok(reads < 100, `${reads} reads for one result`);
  dispatcher.failAll(new Error("end of test"));
  await Promise.allSettled([...tasks, more]);
});

Deno.test("Dispatcher sends the run() calls a worker gets in one turn as one frame; each task settles on its own", async () => {
  const { dispatcher, worker } = setup({ qsize: 8 });
  const w = worker(1, 8);
  const other: FunctionSpec = { id: 2, source: "(x) => -x", label: "neg" };
  const a = [1, 2, 3].map((x) => dispatcher.submit(SPEC, [x], "call"));
  const b = dispatcher.submit(other, [4], "call");
  const c = dispatcher.submit(SPEC, ["unsendable"], "call");
  const d = dispatcher.submit(SPEC, [5], "call");
  assert.deepEqual(writer(w).calls(), [], "nothing before the end of the turn");
  await endOfTurn();
  const frames = writer(w).sent.filter((m) => m[0] !== Op.Define);
  // Runs of the same function share a frame; one that cannot be sent fails
  // alone, and the rest of its run still goes.
  assert.deepEqual(frames.map((m) => m[0]), [Op.Calls, Op.Call, Op.Call]);
  assert.deepEqual(frames[0]![3], [[1], [2], [3]]);
  assert.equal((await rejection(c)).name, "DataCloneError");
  assert.equal(w.load, 5);
  const ids = writer(w).calls();
  assert.equal(ids.length, 5);
  dispatcher.onMessage(
    w,
    resultsMessage(ids, ["x1", "x2", "x3", "y4", "x5"], [1, 1, 1, 1, 1]),
  );
  assert.deepEqual(await Promise.all([...a, b, d]), [
    "x1",
    "x2",
    "x3",
    "y4",
    "x5",
  ]);
  assert.equal(w.load, 0);
  assert.equal(dispatcher.stats().done, 5);
});

Deno.test("Dispatcher: a lost worker's unsent calls go elsewhere, not to it", async () => {
  const { dispatcher, worker } = setup({ retries: 1 });
  const w = worker(1, 2);
  const tasks = [1, 2].map((x) => dispatcher.submit(SPEC, [x], "call"));
  // The connection drops before the end of the turn.
  const held = dispatcher.detach(w);
  assert.equal(held.length, 2);
  const v = worker(2, 2);
  dispatcher.requeueOrFail(w, held, exitOf(w), undefined);
  await endOfTurn();
  assert.deepEqual(writer(w).calls(), []);
  const ids = writer(v).calls();
  assert.equal(ids.length, 2);
  dispatcher.onMessage(v, resultsMessage(ids, [10, 20], [1, 1]));
  assert.deepEqual(await Promise.all(tasks), [10, 20]);
});

Deno.test("Dispatcher sends a measured tiny function's tasks to one worker in a row, an unmeasured one's spread", async () => {
  const { dispatcher, worker } = setup({ qsize: undefined });
  const workers = [1, 2, 3, 4].map((id) => worker(id, 64));
  const tiny = SPEC;
  const other: FunctionSpec = { id: 2, source: "(x) => -x", label: "neg" };
  await timeOneTask(dispatcher, workers, tiny);
  const before = workers.map((w) => writer(w).calls().length);
  const burst = (spec: FunctionSpec) =>
    Array.from({ length: 8 }, (_, i) => dispatcher.submit(spec, [i], "call"));
  const tasks = [...burst(tiny)];
  await endOfTurn();
  const got = workers.map((w, i) => writer(w).calls().length - before[i]!);
  assert.deepEqual(got.toSorted(), [0, 0, 0, 8], "one worker, one frame");
  tasks.push(...burst(other));
  await endOfTurn();
  const spread = workers.map((w, i) =>
    writer(w).calls().length - before[i]! - got[i]!
  );
  // Not measured: spread over the workers with the most free slots (the
  // three that got none of the burst), one by one.
  assert.deepEqual(
    spread.toSorted(),
    [0, 2, 3, 3],
    `not measured: spread (${spread})`,
  );
  dispatcher.failAll(new Error("end of test"));
  await Promise.allSettled(tasks);
});

Deno.test("Dispatcher.slots() for a measured tiny function counts only the slots worth filling", async () => {
  const { dispatcher, worker } = setup({ qsize: undefined });
  const workers = Array.from({ length: 200 }, (_, i) => worker(i + 1, 64));
  assert.equal(dispatcher.slots(0), 200 * 64);
  assert.equal(dispatcher.slots(0, SPEC.id), 200 * 64, "not measured yet");
  await timeOneTask(dispatcher, workers, SPEC);
  // The pool feeds a couple of workers' worth of tiny tasks at most.
  assert.equal(dispatcher.slots(0, SPEC.id), 2 * MAX_DEPTH);
  assert.equal(dispatcher.slots(0), 200 * 64, "other uses: every slot");
});

Deno.test("Dispatcher sends a call with large byte contents at once, in a frame of its own: the pending-bytes cap spreads a burst over the workers", async () => {
  /** Counts the byte arrays of what is sent as pending, as a FrameWriter does. */
  class CountingWriter extends FakeWriter {
    override send(message: Message): void {
      super.send(message);
      const args = message[0] === Op.Calls
        ? (message[3] as unknown[][]).flat()
        : CALL_OPS.has(message[0])
        ? message[3] as unknown[]
        : [];
      for (const a of args) {
        if (a instanceof Uint8Array) this.pendingBytes += a.byteLength;
      }
    }
  }
  const { dispatcher } = setup();
  const workers = [1, 2].map((id) => {
    const w = new WorkerHandle(id, "local", new CountingWriter(), MAX_DEPTH);
    dispatcher.connect(w);
    dispatcher.attach(w);
    return w;
  });
  const mib = 1 << 20;
  const tasks = Array.from(
    { length: 20 },
    (_, i) => dispatcher.submit(SPEC, [new Uint8Array(mib).fill(i)], "call"),
  );
  // A small call of the same turn still waits for the end of it.
  const small = dispatcher.submit(SPEC, [1], "call");
  const most = Math.floor(MAX_PENDING_BYTES / mib) + 1;
  for (const w of workers) {
    const frames = writer(w).sent.filter((m) => m[0] !== Op.Define);
    assert.ok(frames.length > 0, `worker ${w.id} got none of the burst`);
    assert.ok(frames.length <= most, `worker ${w.id} got ${frames.length}`);
    assert.ok(frames.every((m) => m[0] === Op.Call), "one call per frame");
  }
  await endOfTurn();
  // The rest wait in the queue until the writers drain.
  const sent = () => workers.flatMap((w) => writer(w).calls());
  assert.ok(sent().length < 21, `${sent().length} sent at once`);
  // Each write done and each result in: the rest follow.
  const inflight = () => workers.reduce((n, w) => n + w.inflight.size, 0);
  for (let round = 0; round < 100 && inflight() > 0; round++) {
    for (const w of workers) {
      for (const id of writer(w).calls()) {
        if (w.inflight.has(id)) {
          dispatcher.onMessage(w, resultMessage(id, id, 0));
        }
      }
      writer(w).pendingBytes = 0;
      w.writer.onWritten!();
    }
    await endOfTurn();
  }
  assert.equal(sent().length, 21);
  assert.equal((await Promise.all(tasks)).length, 20);
  assert.equal(typeof await small, "number");
});
