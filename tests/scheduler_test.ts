/**
 * `pickWorker`: a pure function over worker loads, tested without processes.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  pickWorker,
  SlotIndex,
  type WorkerLoad,
  WorkerPicker,
} from "../src/scheduler.ts";

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

Deno.test("SlotIndex.peek() is undefined until a worker has a free slot", () => {
  const index = new SlotIndex<string>();
  assert.equal(index.peek(), undefined);
  index.set("a", 0);
  index.set("b", -1);
  assert.equal(index.peek(), undefined);
  assert.equal(index.size, 0);
  index.set("a", 1);
  assert.equal(index.peek(), "a");
  index.delete("a");
  assert.equal(index.peek(), undefined);
});

Deno.test("SlotIndex.peek() picks a worker with the most free slots", () => {
  const index = new SlotIndex<string>();
  index.set("a", 2);
  index.set("b", 4);
  index.set("c", 1);
  assert.equal(index.peek(), "b");
  index.set("b", 1);
  assert.equal(index.peek(), "a");
  index.set("a", 0);
  assert.equal(index.free("a"), 0);
  // b and c both have 1: c has waited longer since its count changed.
  assert.equal(index.peek(), "c");
});

Deno.test("SlotIndex takes equal workers in turn", () => {
  const index = new SlotIndex<string>();
  const free = new Map([["a", 2], ["b", 2], ["c", 2]]);
  for (const [w, f] of free) index.set(w, f);
  const order: string[] = [];
  for (let k = 0; k < 6; k++) {
    const w = index.peek()!;
    order.push(w);
    free.set(w, free.get(w)! - 1);
    index.set(w, free.get(w)!);
  }
  assert.deepEqual(order, ["a", "b", "c", "a", "b", "c"]);
  assert.equal(index.peek(), undefined);
});

Deno.test("SlotIndex chooses as pickWorker() does over random loads", () => {
  // Deterministic pseudo-random sequence of sends, results and blocks.
  let x = 12345;
  const rand = (n: number): number => {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    return x % n;
  };
  const workers: WorkerLoad[] = Array.from(
    { length: 37 },
    (_, i) => ({ load: 0, capacity: 1 + (i % 5) }),
  );
  const index = new SlotIndex<number>();
  const record = (i: number): void => {
    const w = workers[i]!;
    index.set(i, w.blocked ? 0 : w.capacity - w.load);
  };
  workers.forEach((_, i) => record(i));
  for (let step = 0; step < 20_000; step++) {
    const op = rand(10);
    if (op < 5) {
      const picked = index.peek();
      const scanned = pickWorker(workers);
      if (scanned < 0) {
        assert.equal(picked, undefined, `step ${step}`);
        continue;
      }
      const freeOf = (i: number): number =>
        workers[i]!.capacity - workers[i]!.load;
      assert.notEqual(picked, undefined, `step ${step}`);
      assert.equal(freeOf(picked!), freeOf(scanned), `step ${step}`);
      assert.ok(!workers[picked!]!.blocked);
      workers[picked!]!.load++;
      record(picked!);
    } else if (op < 9) {
      const i = rand(workers.length);
      if (workers[i]!.load > 0) workers[i]!.load--;
      record(i);
    } else {
      const i = rand(workers.length);
      const w = workers[i]!;
      if (rand(2) === 0) w.blocked = !w.blocked;
      else w.capacity = 1 + rand(8); // adaptive depth changes capacity
      record(i);
    }
  }
});

/** Picks `n` tasks of `key`, each given at once (its load recorded). */
function give(
  picker: WorkerPicker<WorkerLoad & { id: number }>,
  key: number,
  n: number,
): number[] {
  const ids: number[] = [];
  for (let i = 0; i < n; i++) {
    const w = picker.pick(key);
    if (w === undefined) break;
    w.load++;
    picker.update(w);
    ids.push(w.id);
  }
  return ids;
}

function pickerOver(count: number, capacity: number, grains: number[]) {
  const workers = Array.from(
    { length: count },
    (_, i) => ({ id: i + 1, load: 0, capacity }),
  );
  const picker = new WorkerPicker<WorkerLoad & { id: number }>(
    (w) => w.capacity - w.load,
    (key) => grains[key] ?? 1,
  );
  for (const w of workers) picker.update(w);
  return { workers, picker };
}

Deno.test("WorkerPicker with a grain of 1 spreads tasks by free slots, equal workers in turn", () => {
  const { picker } = pickerOver(3, 4, []);
  assert.deepEqual(give(picker, 0, 7), [1, 2, 3, 1, 2, 3, 1]);
});

Deno.test("WorkerPicker gives a key's tasks to one worker in a row while its grain lasts", () => {
  const { picker, workers } = pickerOver(4, 8, [1, 3]);
  // Key 1 goes three in a row, then the next worker with the most free slots.
  assert.deepEqual(give(picker, 1, 7), [1, 1, 1, 2, 2, 2, 3]);
  // Another key starts a run of its own (grain 1: spread).
  assert.deepEqual(give(picker, 0, 2), [4, 3]);
  // No more than a worker's free slots, grain or not.
  workers[3]!.load = 7;
  picker.update(workers[3]!);
  const big = pickerOver(2, 2, [0, 64]);
  assert.deepEqual(give(big.picker, 1, 5), [1, 1, 2, 2]);
});

Deno.test("WorkerPicker.forget() leaves a worker out, even within its grain", () => {
  const { picker, workers } = pickerOver(2, 8, [0, 10]);
  assert.deepEqual(give(picker, 1, 2), [1, 1]);
  picker.forget(workers[0]!);
  assert.deepEqual(give(picker, 1, 2), [2, 2]);
  // A worker that cannot take any more (its slots went to 0 unseen) is
  // passed over too.
  workers[1]!.capacity = workers[1]!.load;
  assert.deepEqual(give(picker, 1, 1), []);
});
