/**
 * The dispatcher's queue over plain records.
 *
 * @module
 */
import assert from "node:assert/strict";
import { TaskQueue } from "../src/task_queue.ts";

interface Item {
  n: number;
  settled: boolean;
}

function item(n: number, settled = false): Item {
  return { n, settled };
}

function drain(queue: TaskQueue<Item>): number[] {
  const out: number[] = [];
  for (let t = queue.shift(); t; t = queue.shift()) out.push(t.n);
  return out;
}

Deno.test("TaskQueue hands tasks out first in, first out; unshift() puts one in front", () => {
  const queue = new TaskQueue<Item>();
  for (let n = 1; n <= 3; n++) queue.push(item(n));
  assert.equal(queue.shift()!.n, 1);
  queue.unshift(item(0));
  queue.unshift(item(-1));
  assert.equal(queue.length, 4);
  assert.deepEqual(drain(queue), [-1, 0, 2, 3]);
  assert.equal(queue.length, 0);
  assert.equal(queue.shift(), undefined);
});

Deno.test("TaskQueue.shift() skips tasks settled while they waited", () => {
  const queue = new TaskQueue<Item>();
  const a = item(1);
  queue.push(a);
  queue.push(item(2));
  queue.push(item(3, true));
  a.settled = true;
  assert.equal(queue.length, 3, "settled ones count until skipped");
  assert.deepEqual(drain(queue), [2]);
  assert.equal(queue.length, 0);
});

Deno.test("TaskQueue keeps its order across compaction of a long queue", () => {
  const queue = new TaskQueue<Item>();
  const out: number[] = [];
  let n = 0;
  for (let round = 0; round < 5; round++) {
    for (let i = 0; i < 3_000; i++) queue.push(item(n++));
    for (let i = 0; i < 2_500; i++) out.push(queue.shift()!.n);
    queue.unshift(item(-round));
    out.push(queue.shift()!.n);
  }
  out.push(...drain(queue));
  const expected: number[] = [];
  let m = 0;
  for (let round = 0; round < 5; round++) {
    for (let i = 0; i < 2_500; i++) expected.push(m++);
    expected.push(-round);
  }
  while (m < n) expected.push(m++);
  assert.deepEqual(out, expected);
});

Deno.test("TaskQueue.drained() resolves when the last task is taken or the queue is cleared", async () => {
  const queue = new TaskQueue<Item>();
  await queue.drained(); // empty: at once
  queue.push(item(1));
  queue.push(item(2));
  let drained = false;
  const waiting = queue.drained().then(() => drained = true);
  queue.shift();
  await Promise.resolve();
  assert.equal(drained, false, "one task still waits");
  queue.shift();
  await waiting;
  queue.push(item(3));
  const again = queue.drained();
  queue.clear();
  await again;
  assert.equal(queue.length, 0);
});

Deno.test("TaskQueue.peek() shows the next task without taking it, dropping settled ones before it", async () => {
  const queue = new TaskQueue<Item>();
  assert.equal(queue.peek(), undefined);
  const [a, b] = [item(1), item(2)];
  queue.push(a);
  queue.push(b);
  assert.equal(queue.peek(), a);
  assert.equal(queue.length, 2, "still there");
  a.settled = true;
  assert.equal(queue.peek(), b);
  assert.equal(queue.length, 1, "the settled one is gone");
  const drained = queue.drained();
  b.settled = true;
  assert.equal(queue.peek(), undefined);
  assert.equal(queue.length, 0);
  await drained;
});
