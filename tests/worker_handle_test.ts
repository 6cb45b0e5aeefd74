/**
 * The dispatcher's records: tasks, the list of live ones, workers.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { FunctionSpec } from "../src/function_ref.ts";
import {
  LiveTasks,
  Task,
  type TaskWriter,
  WorkerHandle,
} from "../src/worker_handle.ts";

const SPEC: FunctionSpec = { id: 1, source: "(x) => x", label: "fn" };
const noop = () => {};

function task(id: number, args: unknown[] = [id]): Task {
  return new Task(id, SPEC, args, "call", noop, noop, 0, false);
}

const writer: TaskWriter = {
  send: noop,
  pendingBytes: 0,
  onWritten: undefined,
};

Deno.test("LiveTasks keeps tasks in the order added; any one can leave", () => {
  const live = new LiveTasks();
  const tasks = [1, 2, 3, 4, 5].map((id) => task(id));
  for (const t of tasks) live.add(t);
  assert.equal(live.count, 5);
  live.delete(tasks[0]!); // the first
  live.delete(tasks[2]!); // one inside
  live.delete(tasks[4]!); // the last
  assert.deepEqual(live.list().map((t) => t.id), [2, 4]);
  assert.equal(live.count, 2);
  live.add(tasks[0]!); // back, at the end
  assert.deepEqual(live.list().map((t) => t.id), [2, 4, 1]);
  for (const t of live.list()) live.delete(t); // deleting while walking a copy
  assert.equal(live.count, 0);
  assert.deepEqual(live.list(), []);
  live.add(tasks[3]!);
  assert.deepEqual(live.list().map((t) => t.id), [4]);
});

Deno.test("Task.items counts a map chunk's items and 1 for a call", () => {
  assert.equal(task(1, [1, 2, 3]).items, 1);
  const chunk = new Task(2, SPEC, [[1], [2]], "chunk", noop, noop, 0, false);
  const items = new Task(3, SPEC, [1, 2, 3], "items", noop, noop, 0, false);
  assert.equal(chunk.items, 2);
  assert.equal(items.items, 3);
});

Deno.test("WorkerHandle.overMemory() says why once its report passes maxMemoryMB", () => {
  const w = new WorkerHandle(1, "local", writer);
  assert.equal(w.overMemory(undefined), undefined);
  w.rss = 64 * 1024 * 1024;
  assert.equal(w.overMemory(64), undefined, "at the limit is not over it");
  w.rss += 1;
  assert.equal(
    w.overMemory(64),
    "its memory (64 MiB) passed maxMemoryMB (64)",
  );
  assert.deepEqual(w.stats(), {
    id: 1,
    host: "local",
    pid: 0,
    ready: false,
    inFlight: 0,
    capacity: 2,
    done: 0,
    rssBytes: 64 * 1024 * 1024 + 1,
  });
});
