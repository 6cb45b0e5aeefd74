/**
 * `pickWorker`: a pure function over worker loads, tested without processes.
 *
 * @module
 */
import assert from "node:assert/strict";
import { pickWorker, type WorkerLoad } from "../src/scheduler.ts";

function loads(...pairs: [number, number][]): WorkerLoad[] {
  return pairs.map(([load, capacity]) => ({ load, capacity }));
}

Deno.test("pickWorker() returns -1 without workers", () => {
  assert.equal(pickWorker([]), -1);
  assert.equal(pickWorker([], 5), -1);
});

Deno.test("pickWorker() returns -1 when every worker is full", () => {
  assert.equal(pickWorker(loads([2, 2], [4, 4], [1, 1])), -1);
  // Over capacity (capacity lowered while tasks were in flight) is full too.
  assert.equal(pickWorker(loads([5, 2], [3, 2])), -1);
});

Deno.test("pickWorker() picks the worker with the most free slots", () => {
  assert.equal(pickWorker(loads([2, 4], [0, 4], [3, 4])), 1);
  assert.equal(pickWorker(loads([1, 2], [1, 8], [0, 2])), 1);
  // Wherever the round-robin cursor is.
  for (let start = 0; start < 6; start++) {
    assert.equal(pickWorker(loads([3, 4], [3, 4], [0, 4]), start), 2);
  }
});

Deno.test("pickWorker() breaks ties at or after the cursor, wrapping", () => {
  const equal = loads([0, 2], [0, 2], [0, 2]);
  assert.equal(pickWorker(equal, 0), 0);
  assert.equal(pickWorker(equal, 1), 1);
  assert.equal(pickWorker(equal, 2), 2);
  assert.equal(pickWorker(equal, 3), 0);
  assert.equal(pickWorker(equal, 4), 1);
  // Ties among the best only: worker 0 has fewer free slots.
  assert.equal(pickWorker(loads([1, 2], [0, 2], [0, 2]), 0), 1);
  assert.equal(pickWorker(loads([0, 2], [1, 2], [0, 2]), 1), 2);
  assert.equal(pickWorker(loads([0, 2], [1, 2], [1, 2]), 1), 0);
});

Deno.test("pickWorker() with the cursor moved on takes equal workers in turn", () => {
  const workers = loads([0, 1], [0, 1], [0, 1]);
  const order: number[] = [];
  let cursor = 0;
  for (let i = 0; i < 3; i++) {
    const index = pickWorker(workers, cursor);
    order.push(index);
    workers[index]!.load++;
    cursor = index + 1;
  }
  assert.deepEqual(order, [0, 1, 2]);
  assert.equal(pickWorker(workers, cursor), -1);
});

Deno.test("pickWorker() skips blocked workers", () => {
  const workers: WorkerLoad[] = [
    { load: 0, capacity: 8, blocked: true },
    { load: 1, capacity: 2 },
  ];
  assert.equal(pickWorker(workers), 1);
  workers[1]!.blocked = true;
  assert.equal(pickWorker(workers), -1);
});

Deno.test("pickWorker() leaves its input unchanged", () => {
  const workers = loads([1, 3], [0, 3]);
  const copy = structuredClone(workers);
  pickWorker(workers, 1);
  assert.deepEqual(workers, copy);
});
