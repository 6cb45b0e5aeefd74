/**
 * The end-of-turn sender without a dispatcher: fake workers whose writers
 * record the frames, tasks built by hand.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  type BatchTarget,
  CallBatcher,
  MAX_BATCHED,
} from "../src/call_batcher.ts";
import type { FunctionSpec } from "../src/function_ref.ts";
import { Op } from "../src/protocol.ts";
import { Task } from "../src/worker_handle.ts";
import { FakeWriter } from "./_fake_writer.ts";
import { flushMicrotasks } from "./_util.ts";

class FakeWorker implements BatchTarget {
  batch: Task[] | undefined = undefined;
  lost = false;
  readonly writer = new FakeWriter();
}

const F: FunctionSpec = { id: 1, source: "(x) => x", label: "f" };
const G: FunctionSpec = { id: 2, source: "(x) => -x", label: "g" };
let nextId = 1;

function task(spec: FunctionSpec, args: unknown[]): Task {
  const noop = () => {};
  return new Task(nextId++, spec, args, "call", noop, noop, 0, false);
}

/** Lets the end-of-turn send run. */
function endOfTurn(): Promise<void> {
  return flushMicrotasks();
}

function setup() {
  const unsent: { worker: FakeWorker; tasks: Task[]; errors: unknown[] }[] = [];
  const batcher = new CallBatcher<FakeWorker>((worker, tasks, errors) =>
    unsent.push({ worker, tasks, errors })
  );
  return { batcher, unsent };
}

Deno.test("CallBatcher sends nothing before the end of the turn, then one Calls frame per run of a function", async () => {
  const { batcher, unsent } = setup();
  const w = new FakeWorker();
  const tasks = [task(F, [1]), task(F, [2]), task(G, [3]), task(F, [4])];
  for (const t of tasks) batcher.add(w, t);
  assert.equal(w.writer.sent.length, 0);
  await endOfTurn();
  assert.deepEqual(w.writer.sent.map((m) => m[0]), [
    Op.Calls,
    Op.Call,
    Op.Call,
  ]);
  assert.deepEqual(w.writer.sent[0], [
    Op.Calls,
    F.id,
    [tasks[0]!.id, tasks[1]!.id],
    [[1], [2]],
  ]);
  assert.deepEqual(w.writer.sent[1]!.slice(1), [
    tasks[2]!.id,
    G.id,
    [3],
  ]);
  assert.equal(w.batch, undefined);
  assert.deepEqual(unsent, []);
});

Deno.test("CallBatcher keeps each worker's tasks apart and flushes every worker in one turn", async () => {
  const { batcher } = setup();
  const a = new FakeWorker();
  const b = new FakeWorker();
  const ta = [task(F, [1]), task(F, [2])];
  const tb = [task(F, [3])];
  batcher.add(a, ta[0]!);
  batcher.add(b, tb[0]!);
  batcher.add(a, ta[1]!);
  await endOfTurn();
  assert.deepEqual(a.writer.sent[0]![2], ta.map((t) => t.id));
  assert.equal(b.writer.sent.length, 1);
  assert.equal(b.writer.sent[0]![0], Op.Call);
  // A new turn starts a new batch.
  batcher.add(a, task(F, [5]));
  assert.notEqual(a.batch, undefined);
  await endOfTurn();
  assert.equal(a.writer.sent.length, 2);
});

Deno.test("CallBatcher fails only the call that cannot be sent; the rest of its run still goes", async () => {
  const { batcher, unsent } = setup();
  const w = new FakeWorker();
  const bad = task(F, ["unsendable"]);
  const tasks = [task(F, [1]), bad, task(F, [2])];
  for (const t of tasks) batcher.add(w, t);
  await endOfTurn();
  const ids = w.writer.sent.map((m) => m[1]);
  assert.deepEqual(ids, [tasks[0]!.id, tasks[2]!.id]);
  assert.equal(unsent.length, 1);
  assert.equal(unsent[0]!.worker, w);
  assert.deepEqual(unsent[0]!.tasks, [bad]);
  assert.equal((unsent[0]!.errors[0] as DOMException).name, "DataCloneError");
});

Deno.test("CallBatcher.remove() takes back a task still waiting; it is never sent", async () => {
  const { batcher } = setup();
  const w = new FakeWorker();
  const [a, b] = [task(F, [1]), task(F, [2])];
  batcher.add(w, a);
  batcher.add(w, b);
  assert.equal(batcher.remove(w, a), true);
  assert.equal(batcher.remove(w, a), false, "only once");
  await endOfTurn();
  assert.deepEqual(w.writer.sent.map((m) => m[1]), [b.id]);
  assert.equal(batcher.remove(w, b), false, "already sent");
});

Deno.test("CallBatcher sends nothing to a worker lost before the end of the turn", async () => {
  const { batcher, unsent } = setup();
  const w = new FakeWorker();
  batcher.add(w, task(F, [1]));
  w.lost = true;
  await endOfTurn();
  assert.deepEqual(w.writer.sent, []);
  assert.equal(w.batch, undefined);
  assert.deepEqual(unsent, []);
});

Deno.test("CallBatcher waits for a chain of microtasks that adds one task per step, then sends them in one frame", async () => {
  const { batcher } = setup();
  const w = new FakeWorker();
  const tasks = Array.from({ length: 50 }, (_, i) => task(F, [i]));
  // As a map refills its window: each result's reaction submits one task.
  const { promise: done, resolve } = Promise.withResolvers<void>();
  const step = async (i: number): Promise<void> => {
    batcher.add(w, tasks[i]!);
    await null;
    if (i + 1 < tasks.length) step(i + 1);
    else resolve();
  };
  step(0);
  await done;
  await endOfTurn();
  assert.equal(w.writer.sent.length, 1);
  assert.deepEqual(w.writer.sent[0]![2], tasks.map((t) => t.id));
});

Deno.test("CallBatcher sends without waiting for the end of the chain once MAX_BATCHED tasks wait", async () => {
  const { batcher } = setup();
  const w = new FakeWorker();
  let stop = false;
  let added = 0;
  const step = async (): Promise<void> => {
    batcher.add(w, task(F, [added++]));
    await null;
    if (!stop) step();
  };
  step();
  // Gate: the first frame goes out while the chain still runs.
  while (w.writer.sent.length === 0) await null;
  stop = true;
  assert.ok(
    added >= MAX_BATCHED && added <= MAX_BATCHED + 4,
    `${added} tasks added before the first frame`,
  );
  await endOfTurn();
  const sent = w.writer.sent.flatMap((m) => m[2] as number[]);
  assert.equal(sent.length, added);
});
