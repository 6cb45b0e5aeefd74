/**
 * TaskTiming without a dispatcher: tasks and workers as plain records, the
 * results' times given by hand.
 *
 * @module
 */
import assert from "node:assert/strict";
import { MAX_DEPTH, MIN_DEPTH } from "../src/depth.ts";
import type { FunctionSpec } from "../src/function_ref.ts";
import type { CallKind } from "../src/protocol.ts";
import { TaskTiming } from "../src/task_timing.ts";
import { Task, type TaskWriter, WorkerHandle } from "../src/worker_handle.ts";

const F1: FunctionSpec = { id: 1, source: "(x) => x", label: "f1" };
const F2: FunctionSpec = { id: 2, source: "(x) => -x", label: "f2" };

const writer: TaskWriter = {
  send() {},
  pendingBytes: 0,
  onWritten: undefined,
};

function worker(id: number, capacity: number, ready = true): WorkerHandle {
  const w = new WorkerHandle(id, "local", writer, capacity);
  w.ready = ready;
  return w;
}

/** A task of `spec` with `items` items (a plain call for 1); sent `agoMs` ago if given. */
function task(spec: FunctionSpec, items = 1, agoMs?: number): Task {
  const kind: CallKind = items === 1 ? "call" : "items";
  const args = kind === "call" ? [0] : new Array(items).fill(0);
  const t = new Task(0, spec, args, kind, () => {}, () => {}, 0, false);
  if (agoMs !== undefined) t.sentAt = performance.now() - agoMs;
  return t;
}

Deno.test("TaskTiming.slots(): the expected workers' start depth until one is ready, then the ready workers' depths summed", () => {
  const timing = new TaskTiming(undefined);
  assert.equal(timing.initialCapacity, MIN_DEPTH);
  assert.equal(timing.slots(3, undefined, 0), 3 * MIN_DEPTH);
  const a = worker(1, 5);
  const b = worker(2, 7);
  timing.attach(a);
  assert.equal(timing.slots(3, undefined, 1), 5);
  timing.attach(b);
  assert.equal(timing.slots(3, undefined, 2), 12);
  timing.detach(a);
  assert.equal(timing.slots(3, undefined, 1), 7);
  const never = worker(3, 9, false);
  timing.detach(never);
  assert.equal(
    timing.slots(3, undefined, 1),
    7,
    "a worker never ready never counted",
  );
  assert.equal(new TaskTiming(3).initialCapacity, 3);
});

Deno.test("TaskTiming: a frame's tasks are measured per function, each run in order (one by one, the latest count most)", () => {
  const timing = new TaskTiming(4);
  const w = worker(1, 4);
  timing.start(w);
  timing.add(task(F1), 1000); // 1 ms
  timing.add(task(F1), 3000); // (1 + 3) / 2 = 2
  timing.add(task(F2, 2), 2000); // 1 ms per item
  timing.add(task(F2, 2), 6000); // (1 + 3) / 2 = 2
  timing.add(task(F1), 4000); // (2 + 4) / 2 = 3
  timing.end();
  assert.equal(timing.itemMs(1), 3);
  assert.equal(timing.itemMs(2), 2);
  assert.equal(timing.itemMs(3), undefined);
  // A single result folds in the same way.
  timing.one(w, task(F2, 4), 20_000); // (2 + 5) / 2
  assert.equal(timing.itemMs(2), 3.5);
  timing.one(w, task(F2), undefined); // not timed by the worker: no change
  assert.equal(timing.itemMs(2), 3.5);
});

Deno.test("TaskTiming with a fixed qsize measures time per item but never changes a depth", () => {
  const timing = new TaskTiming(3);
  const w = worker(1, 3);
  timing.attach(w);
  timing.one(w, task(F1, 1, 5), 10);
  timing.start(w);
  for (let i = 0; i < 20; i++) timing.add(task(F1, 1, 5), 10);
  timing.end();
  assert.equal(w.capacity, 3);
  assert.equal(w.minLatencyMs, Infinity);
  assert.equal(timing.slots(1, undefined, 1), 3);
  assert.ok(timing.itemMs(1)! < 0.011, `${timing.itemMs(1)}`);
});

Deno.test("TaskTiming: a frame of tiny tasks deepens its worker once, by their least round trip and mean work, and the slots grow with it", () => {
  const timing = new TaskTiming(undefined);
  const w = worker(1, timing.initialCapacity);
  timing.attach(w);
  timing.start(w);
  timing.add(task(F1, 1, 50), 100);
  timing.add(task(F1, 1, 2), 200);
  timing.add(task(F1), 300); // not timed: its latency does not count
  timing.end();
  assert.ok(w.minLatencyMs >= 1.9 && w.minLatencyMs < 50, `${w.minLatencyMs}`);
  assert.ok(Math.abs(w.workMs - 0.2) < 1e-12, `mean work ${w.workMs}`);
  assert.ok(w.capacity > MIN_DEPTH, `${w.capacity}`);
  assert.equal(timing.slots(1, undefined, 1), w.capacity);
  // A measured tiny function is worth only the slots it can keep busy.
  const more = [worker(2, MAX_DEPTH), worker(3, MAX_DEPTH)];
  for (const m of more) timing.attach(m);
  assert.equal(timing.slots(1, undefined, 3), w.capacity + 2 * MAX_DEPTH);
  assert.equal(timing.slots(1, F1.id, 3), 2 * MAX_DEPTH);
  assert.equal(timing.grain(F1.id) > 1, true, "tiny tasks go in a row");
  assert.equal(timing.grain(F2.id), 1, "an unmeasured function's are spread");
});

Deno.test("TaskTiming: a frame weighs its run as that many tasks one after the other", () => {
  const timing = new TaskTiming(undefined);
  const w = worker(1, MIN_DEPTH);
  w.minLatencyMs = 1;
  w.workMs = 1;
  timing.start(w);
  timing.add(task(F1), 100);
  timing.add(task(F1), 100);
  timing.end();
  // 1 * 0.9^2 + 0.1 * (1 - 0.9^2), as two results one by one give.
  assert.ok(Math.abs(w.workMs - 0.829) < 1e-12, `${w.workMs}`);
});
