/**
 * The adaptive depth: pure functions over plain numbers.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  adapt,
  averageItemMs,
  depthFor,
  grainFor,
  ItemTimes,
  MAX_DEPTH,
  MIN_DEPTH,
  POOL_TASKS_PER_MS,
  sampled,
  usefulSlots,
} from "../src/depth.ts";
import type { DepthSample } from "../src/depth.ts";

/**
 * The per-task rule adapt() applies in place, as a pure function: folds one
 * finished task into a worker's sample (the reference adapt() is checked
 * against).
 *
 * @param sample The worker's measurements so far.
 * @param latencyMs Send-to-result time of this task, if it was timed.
 * @param workMs What the worker says the task took, if it said.
 * @returns The new measurements.
 */
function observe(
  sample: DepthSample,
  latencyMs: number | undefined,
  workMs: number | undefined,
): DepthSample {
  const minLatencyMs =
    latencyMs !== undefined && latencyMs < sample.minLatencyMs
      ? latencyMs
      : sample.minLatencyMs;
  if (minLatencyMs === Infinity) return { workMs: sample.workMs, minLatencyMs };
  const work = workMs ?? minLatencyMs;
  return {
    workMs: sample.workMs === 0 ? work : sample.workMs * 0.9 + work * 0.1,
    minLatencyMs,
  };
}

const FRESH = { workMs: 0, minLatencyMs: Infinity };

Deno.test("depthFor() is MIN_DEPTH until a round trip was measured", () => {
  assert.equal(depthFor(FRESH), MIN_DEPTH);
  assert.deepEqual(observe(FRESH, undefined, 5), FRESH);
});

Deno.test("depthFor() covers the round trip with work: tiny tasks go deep, within MAX_DEPTH", () => {
  assert.equal(depthFor({ workMs: 0.1, minLatencyMs: 1 }), 10);
  assert.equal(depthFor({ workMs: 0.3, minLatencyMs: 1 }), 4);
  assert.equal(depthFor({ workMs: 0.0001, minLatencyMs: 1 }), MAX_DEPTH);
});

Deno.test("depthFor() keeps long tasks at MIN_DEPTH", () => {
  assert.equal(depthFor({ workMs: 500, minLatencyMs: 501 }), MIN_DEPTH);
});

Deno.test("observe() keeps the shortest round trip and averages the work", () => {
  let s = observe(FRESH, 4, 1);
  assert.deepEqual(s, { workMs: 1, minLatencyMs: 4 });
  s = observe(s, 9, 2);
  assert.equal(s.minLatencyMs, 4);
  assert.ok(Math.abs(s.workMs - 1.1) < 1e-9);
  s = observe(s, 2, undefined);
  // Without the worker's figure the round trip stands in for the work.
  assert.equal(s.minLatencyMs, 2);
  assert.ok(Math.abs(s.workMs - (1.1 * 0.9 + 2 * 0.1)) < 1e-9);
});

Deno.test("sampled() times every 8th task", () => {
  const picked = Array.from({ length: 24 }, (_, i) => i).filter(sampled);
  assert.deepEqual(picked, [0, 8, 16]);
});

Deno.test("averageItemMs() divides a chunk's time by its items and halves toward the new value", () => {
  assert.equal(averageItemMs(undefined, 8, 4), 2);
  assert.equal(averageItemMs(2, 4, 1), 3);
  assert.equal(averageItemMs(undefined, 3, 0), 3);
});

Deno.test("adapt() updates a worker's measurements in place and returns how its depth changed", () => {
  const w = { workMs: 0, minLatencyMs: Infinity, capacity: MIN_DEPTH };
  assert.equal(adapt(w, undefined, 0.01), 0, "no round trip yet");
  assert.equal(adapt(w, 1, 0.1), 10 - MIN_DEPTH);
  assert.deepEqual(w, { workMs: 0.1, minLatencyMs: 1, capacity: 10 });
  assert.equal(adapt(w, 2, 1.1), 5 - 10);
  assert.equal(w.capacity, 5);
});

Deno.test("adapt() takes several tasks of one frame as that many tasks one by one", () => {
  const one = { workMs: 0.2, minLatencyMs: 2, capacity: MIN_DEPTH };
  const many = { ...one };
  for (let i = 0; i < 5; i++) adapt(one, i === 2 ? 0.5 : undefined, 0.01);
  adapt(many, 0.5, 0.01, 5);
  assert.ok(many.workMs < 0.2 * 0.9 ** 4, "more than one step");
  assert.ok(Math.abs(one.workMs - many.workMs) < 1e-12, `${many.workMs}`);
  assert.equal(many.minLatencyMs, 0.5);
  assert.equal(many.capacity, one.capacity);
});

Deno.test("ItemTimes.set() sets what note() folds in one task at a time", () => {
  const times = new ItemTimes();
  times.note(1, 8, 4);
  assert.equal(times.get(1), 2);
  times.set(1, 0.5);
  times.note(1, 1.5, 1);
  assert.equal(times.get(1), 1);
  times.set(2, 3);
  assert.equal(times.get(2), 3);
  assert.equal(times.get(1), 1);
});

Deno.test("grainFor() puts half a round trip of tiny tasks in a row; unmeasured or long ones go one by one", () => {
  assert.equal(grainFor(undefined, 1), 1, "function not measured yet");
  assert.equal(grainFor(0.01, Infinity), 1, "no round trip yet");
  assert.equal(grainFor(0.01, 1), 50);
  assert.equal(grainFor(0.3, 1), 1);
  assert.equal(grainFor(5, 1), 1);
  assert.equal(grainFor(0, 1), MAX_DEPTH);
});

Deno.test("adapt() measures as observe() and depthFor() do", () => {
  let sample = { workMs: 0, minLatencyMs: Infinity };
  const w = { ...sample, capacity: MIN_DEPTH };
  const steps: [number | undefined, number | undefined][] = [
    [undefined, 3],
    [5, 0.5],
    [2, undefined],
    [undefined, 0.01],
    [9, 40],
  ];
  for (const [latency, work] of steps) {
    sample = observe(sample, latency, work);
    adapt(w, latency, work);
    assert.deepEqual(w, { ...sample, capacity: depthFor(sample) });
  }
});

Deno.test("ItemTimes keeps a moving average per function", () => {
  const times = new ItemTimes();
  assert.equal(times.get(1), undefined);
  times.note(1, 8, 4);
  times.note(2, 10, 1);
  assert.equal(times.get(1), 2);
  times.note(1, 4, 1);
  assert.equal(times.get(1), 3);
  assert.equal(times.get(2), 10);
  assert.equal(times.get(3), undefined);
});

Deno.test("usefulSlots() fills only the workers the pool can keep busy: few for tiny tasks, all for long ones", () => {
  assert.equal(usefulSlots(undefined, 1, 2000), Infinity, "not measured");
  assert.equal(usefulSlots(0.001, Infinity, 2000), Infinity, "no round trip");
  // Tiny tasks: a couple of workers at full depth are all the pool can feed.
  assert.equal(usefulSlots(0.0001, 0.5, 2000), 2 * MAX_DEPTH);
  assert.equal(usefulSlots(0, 0.5, 2000), 2 * MAX_DEPTH);
  // 1 ms tasks: the pool sends POOL_TASKS_PER_MS of them in one's time.
  assert.equal(usefulSlots(1, 0.5, 5000), POOL_TASKS_PER_MS * MIN_DEPTH);
  // Long tasks: every worker, each at its depth.
  assert.equal(usefulSlots(100, 0.5, 2000), 2000 * MIN_DEPTH);
  assert.equal(usefulSlots(100, 0.5, 3), 2 * MAX_DEPTH, "never below");
});

Deno.test("ItemTimes keeps the shortest round trip and derives grain and useful slots from it", () => {
  const times = new ItemTimes();
  times.note(1, 0.001, 1);
  assert.equal(times.grain(1), 1, "no round trip yet");
  assert.equal(times.usefulSlots(1, 2000), Infinity);
  times.noteRoundTrip(undefined);
  times.noteRoundTrip(2);
  times.noteRoundTrip(1);
  times.noteRoundTrip(3);
  assert.equal(times.roundTripMs, 1);
  assert.equal(times.grain(1), grainFor(0.001, 1));
  assert.equal(times.usefulSlots(1, 2000), usefulSlots(0.001, 1, 2000));
  assert.equal(times.usefulSlots(undefined, 2000), Infinity);
});
