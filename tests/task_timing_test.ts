/**
 * TaskTiming without a dispatcher: tasks and workers as plain records, the
 * results' times given by hand. (How the dispatcher gathers a frame's runs:
 * dispatcher_test.ts, "measures a frame of several results".)
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
const F3: FunctionSpec = { id: 3, source: "(x) => x * 2", label: "f3" };

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

Deno.test("TaskTiming: a run of results sets its function's time per item; single results fold into it (the latest count most)", () => {
  const timing = new TaskTiming(4);
  const w = worker(1, 4);
  timing.run(w, F1.id, 3, 8, 5, undefined);
  timing.run(w, F2.id, 2, 8, 2, undefined);
  assert.equal(timing.itemMs(F1.id), 3);
  assert.equal(timing.itemMs(F2.id), 2);
  assert.equal(timing.itemMs(3), undefined);
  timing.one(w, task(F2, 4), 20_000); // 5 ms per item: (2 + 5) / 2
  assert.equal(timing.itemMs(F2.id), 3.5);
  timing.one(w, task(F2), undefined); // not timed by the worker: no change
  assert.equal(timing.itemMs(F2.id), 3.5);
  timing.one(w, task(F3), 1_000); // a first result is taken as it is
  assert.equal(timing.itemMs(F3.id), 1);
});

Deno.test("TaskTiming with a fixed qsize measures time per item but never changes a depth", () => {
  const timing = new TaskTiming(3);
  const w = worker(1, 3);
  timing.attach(w);
  timing.one(w, task(F1, 1, 5), 10);
  timing.run(w, F1.id, 0.01, 0.2, 20, 5);
  assert.equal(w.capacity, 3);
  assert.equal(w.minLatencyMs, Infinity);
  assert.equal(timing.slots(1, undefined, 1), 3);
  assert.equal(timing.itemMs(F1.id), 0.01);
});

Deno.test("TaskTiming: a run of tiny tasks deepens its worker once, by their least round trip and mean work, and the slots grow with it", () => {
  const timing = new TaskTiming(undefined);
  const w = worker(1, timing.initialCapacity);
  timing.attach(w);
  timing.run(w, F1.id, 0.0002, 0.6, 3, 2);
  assert.equal(w.minLatencyMs, 2);
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
  // A single timed result deepens it too, by its own round trip.
  const x = worker(4, MIN_DEPTH);
  timing.one(x, task(F1, 1, 3), 100);
  assert.ok(
    x.minLatencyMs >= 2.9 && x.minLatencyMs < 1000,
    `${x.minLatencyMs}`,
  );
  assert.ok(x.capacity > MIN_DEPTH, `${x.capacity}`);
});

Deno.test("TaskTiming: a run weighs as that many tasks one after the other", () => {
  const timing = new TaskTiming(undefined);
  const w = worker(1, MIN_DEPTH);
  w.minLatencyMs = 1;
  w.workMs = 1;
  timing.run(w, F1.id, 0.1, 0.2, 2, undefined);
  // 1 * 0.9^2 + 0.1 * (1 - 0.9^2), as two results one by one give.
  assert.ok(Math.abs(w.workMs - 0.829) < 1e-12, `${w.workMs}`);
});
