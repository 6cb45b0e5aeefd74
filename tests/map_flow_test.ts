/**
 * A map's flow control (src/_map_flow.ts) as plain arithmetic: the budget
 * and the chunk sizer, without a pool or a stream.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  CHUNK_BYTES,
  ChunkSizer,
  DEFAULT_MAX_BYTES,
  DEFAULT_MAX_ITEMS,
  MapBudget,
  MAX_CHUNK,
  windowItems,
} from "../src/_map_flow.ts";

Deno.test("MapBudget counts items from their read to their take", () => {
  const budget = new MapBudget(10, 1000);
  assert.equal(budget.itemsLeft(0), 10);
  budget.read += 6;
  assert.equal(budget.itemsLeft(0), 4);
  // Results of 4 items go into the stream's queue: nothing taken yet.
  budget.handOver(4, 0);
  assert.equal(budget.itemsLeft(4), 4);
  // The consumer takes 3 of them (1 still queued).
  assert.equal(budget.taken(1), 3);
  assert.equal(budget.itemsLeft(1), 7);
  budget.read += 7;
  assert.equal(budget.itemsLeft(1), 0);
  assert.equal(budget.hasRoom(1), false);
});

Deno.test("MapBudget releases a result's bytes only once the consumer took it", () => {
  const budget = new MapBudget(100, 1000);
  budget.read = 3;
  budget.bytes = 900; // held for 3 results
  budget.handOver(1, 300);
  budget.handOver(2, 600);
  assert.equal(budget.hasRoom(3), true);
  budget.bytes += 100; // one more item read
  assert.equal(budget.hasRoom(3), false, "at maxBytes");
  budget.taken(2); // the first result (300 bytes) was taken
  assert.equal(budget.bytes, 700);
  assert.equal(budget.hasRoom(2), true);
  budget.taken(1); // part of the second hand-over: not released yet
  assert.equal(budget.bytes, 700);
  budget.taken(0);
  assert.equal(budget.bytes, 100);
});

Deno.test("MapBudget stays exact over many hand-overs (its list is compacted)", () => {
  const budget = new MapBudget(Infinity, Infinity);
  let held = 0;
  for (let i = 1; i <= 10_000; i++) {
    budget.read++;
    budget.bytes += i;
    held += i;
    budget.handOver(1, i);
    if (i % 3 === 0) {
      // Every third round the consumer catches up but for one result.
      budget.taken(1);
      held = i; // only the last result's bytes are held
      assert.equal(budget.bytes, held);
    }
  }
  budget.taken(0);
  assert.equal(budget.bytes, 0);
});

Deno.test("MapBudget defaults to 16k items and 64 MiB", () => {
  const budget = new MapBudget(undefined, undefined);
  assert.equal(budget.maxItems, DEFAULT_MAX_ITEMS);
  assert.equal(budget.maxBytes, DEFAULT_MAX_BYTES);
  assert.equal(DEFAULT_MAX_ITEMS, 16384);
  assert.equal(DEFAULT_MAX_BYTES, 64 << 20);
});

Deno.test("ChunkSizer: a fixed chunkSize wins; else single items until the time per item is known", () => {
  assert.equal(new ChunkSizer(7, false, 1000).size(undefined), 7);
  assert.equal(new ChunkSizer(7, true, 1000).size(0.00001), 7);
  assert.equal(new ChunkSizer(undefined, false, 1000).size(undefined), 1);
  // With an itemTimeout, items go one per task.
  assert.equal(new ChunkSizer(undefined, true, 1000).size(0.00001), 1);
});

Deno.test("ChunkSizer sizes adaptive chunks by time, bytes and budget", () => {
  const sizer = new ChunkSizer(undefined, false, DEFAULT_MAX_ITEMS);
  assert.equal(sizer.size(0.01), 100, "1 ms of work at 10 µs an item");
  assert.equal(sizer.size(5), 1, "long items go one by one");
  assert.equal(sizer.size(0), MAX_CHUNK, "at most MAX_CHUNK");
  // Large arguments: a chunk holds about CHUNK_BYTES.
  sizer.noteArgs(10 * (CHUNK_BYTES / 16), 10);
  assert.equal(sizer.size(0.00001), 16);
  // Large results count too.
  const results = new ChunkSizer(undefined, false, DEFAULT_MAX_ITEMS);
  results.noteResults(CHUNK_BYTES * 4, 2);
  assert.equal(results.size(0.00001), 1);
  // A small item budget: a quarter of it, so several chunks are in flight.
  assert.equal(new ChunkSizer(undefined, false, 100).size(0), 25);
});

Deno.test("windowItems() is two tasks a slot, at least four tasks", () => {
  assert.equal(windowItems(8, 10), 160);
  assert.equal(windowItems(1, 10), 40);
  assert.equal(windowItems(0, 1), 4);
});
