/**
 * TaskCanceller without a dispatcher or processes: a fake worker whose
 * writer records what is sent, and a host that records what is asked of it.
 *
 * @module
 */
import assert from "node:assert/strict";
import { CallBatcher } from "../src/call_batcher.ts";
import type { FunctionSpec } from "../src/function_ref.ts";
import { cancelMessage, Op } from "../src/protocol.ts";
import {
  type CancelHost,
  TaskCanceller,
  timeoutError,
} from "../src/task_cancel.ts";
import { Task, WorkerHandle } from "../src/worker_handle.ts";
import { FakeWriter } from "./_fake_writer.ts";
import { flushMicrotasks } from "./_util.ts";

const SPEC: FunctionSpec = { id: 1, source: "(x) => x", label: "fn" };

/** What the canceller asked of its host, in order, and gates on the calls. */
function setup(killGrace: number) {
  const asked: string[] = [];
  const failed: [Task, unknown][] = [];
  const stops = Promise.withResolvers<WorkerHandle>();
  const resends = Promise.withResolvers<Task>();
  const fails = Promise.withResolvers<void>();
  const host: CancelHost = {
    fail: (task, error) => {
      task.settled = true; // as the dispatcher's settle does
      asked.push(`fail ${task.id}`);
      failed.push([task, error]);
      fails.resolve();
    },
    resend: (task) => {
      asked.push(`resend ${task.id}`);
      resends.resolve(task);
    },
    fill: (w) => asked.push(`fill ${w.id}`),
    forget: (w) => asked.push(`forget ${w.id}`),
    stopWorker: (w) => {
      asked.push(`stop ${w.id}`);
      stops.resolve(w);
    },
  };
  const unsent: Task[] = [];
  const batcher = new CallBatcher<WorkerHandle>((_w, tasks) =>
    unsent.push(...tasks)
  );
  const canceller = new TaskCanceller(killGrace, batcher, host);
  const writer = new FakeWriter();
  const w = new WorkerHandle(1, "local", writer, 4);
  w.ready = true;
  /** A task on `w`: sent (its frame written) or still in the batch. */
  const onWorker = (id: number, batched = false, timeout?: number) => {
    const task = new Task(id, SPEC, [id], "call", () => {}, () => {}, 0, false);
    task.timeout = timeout;
    task.worker = w;
    w.inflight.set(id, task);
    w.load++;
    if (batched) batcher.add(w, task);
    return task;
  };
  return {
    asked,
    failed,
    canceller,
    writer,
    w,
    onWorker,
    stopped: stops.promise,
    resent: resends.promise,
    failedOnce: fails.promise,
    unsent,
  };
}

/** Resolves after a timer due after `ms` (timers run in order of their due time). */
function after(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

Deno.test("TaskCanceller.cancel() of a task still waiting for the end of the turn: never sent, its slot freed, the worker filled", async () => {
  const { asked, failed, canceller, writer, w, onWorker, unsent } = setup(
    60_000,
  );
  const task = onWorker(7, true);
  const reason = new Error("aborted");
  canceller.cancel(task, reason);
  assert.deepEqual(asked, ["fail 7", "fill 1"]);
  assert.equal(failed[0]![1], reason);
  assert.equal(task.cancelled, true);
  assert.equal(task.worker, undefined);
  assert.equal(w.inflight.size, 0);
  assert.equal(w.load, 0);
  await flushMicrotasks();
  assert.deepEqual(writer.sent, [], "no frame for it at the end of the turn");
  assert.deepEqual(unsent, []);
  canceller.close();
});

Deno.test("TaskCanceller.cancel() of a task on its worker tells the worker and settles it; only a timeout makes the worker suspect", () => {
  const { asked, failed, canceller, writer, w, onWorker } = setup(60_000);
  const aborted = onWorker(3);
  canceller.cancel(aborted, new Error("aborted"));
  assert.deepEqual(writer.sent, [cancelMessage(3)]);
  assert.deepEqual(asked, ["fail 3"]);
  assert.equal(aborted.cancelled, true);
  assert.equal(w.inflight.get(3), aborted, "held until the worker answers");
  assert.equal(w.suspect, undefined);

  // A signal's TimeoutError (AbortSignal.timeout()) counts as a timeout.
  const timedOut = onWorker(4);
  const reason = new DOMException("signal timed out", "TimeoutError");
  canceller.cancel(timedOut, reason);
  assert.deepEqual(writer.sent, [cancelMessage(3), cancelMessage(4)]);
  assert.deepEqual(asked, ["fail 3", "forget 1", "fail 4"]);
  assert.equal(failed[1]![1], reason);
  assert.equal(w.suspect, 4);
  assert.equal(w.blocked, true);

  canceller.cancel(timedOut, new Error("again"));
  assert.equal(failed.length, 2, "a settled task is not cancelled twice");
  assert.equal(writer.sent.length, 2);
  canceller.close();
});

Deno.test("TaskCanceller: a worker still busy with its timed-out task killGrace ms later is stopped", async () => {
  const { canceller, w, onWorker, stopped } = setup(5);
  canceller.cancel(onWorker(9), timeoutError(20));
  assert.equal(await stopped, w);
  assert.equal(w.hardKilled, true);
  assert.match(w.retiring!, /still running a task 5 ms after/);
});

Deno.test("TaskCanceller: a suspect worker that answers within killGrace, or is lost, is not stopped; close() drops the grace timers", async () => {
  const answers = setup(5);
  answers.canceller.cancel(answers.onWorker(1), timeoutError(1));
  answers.w.suspect = undefined; // as the dispatcher does when it answers
  const lost = setup(5);
  lost.canceller.cancel(lost.onWorker(1), timeoutError(1));
  lost.w.lost = true;
  const closed = setup(5);
  closed.canceller.cancel(closed.onWorker(1), timeoutError(1));
  closed.canceller.close();
  await after(30); // due after the grace timers: they ran (or were cleared)
  for (const { asked, w } of [answers, lost, closed]) {
    assert.ok(!asked.includes("stop 1"), asked.join());
    assert.equal(w.hardKilled, false);
    assert.equal(w.retiring, undefined);
  }
});

Deno.test("TaskCanceller.arm(): a task's timeout fails it with a TimeoutError and cancels it on its worker", async () => {
  const { failed, canceller, writer, w, onWorker, failedOnce } = setup(60_000);
  const task = onWorker(5, false, 1);
  canceller.arm(task);
  assert.notEqual(task.timer, undefined);
  await failedOnce;
  const error = failed[0]![1] as DOMException;
  assert.equal(error.name, "TimeoutError");
  assert.equal(error.message, "Task timed out after 1 ms");
  assert.deepEqual(writer.sent, [[Op.Cancel, 5]]);
  assert.equal(w.suspect, 5);
  canceller.close();
});

Deno.test("TaskCanceller.arm(): a task timed out behind a suspect worker's stuck task is taken back and resent, not failed", async () => {
  const { asked, canceller, writer, w, onWorker, resent } = setup(60_000);
  const stuck = onWorker(1);
  canceller.cancel(stuck, timeoutError(1));
  const behind = onWorker(2, false, 1);
  canceller.arm(behind);
  assert.equal(await resent, behind);
  assert.deepEqual(asked, ["forget 1", "fail 1", "resend 2"]);
  assert.deepEqual(writer.sent, [cancelMessage(1), cancelMessage(2)]);
  assert.equal(behind.settled, false);
  assert.equal(behind.cancelled, false);
  assert.equal(behind.worker, undefined);
  assert.equal(behind.timer, undefined, "counted afresh from its next send");
  // The worker answers the cancel for a stand-in, not for the resent task.
  const standIn = w.inflight.get(2)!;
  assert.notEqual(standIn, behind);
  assert.equal(standIn.cancelled, true);
  assert.equal(standIn.id, 2);
  canceller.close();
});

Deno.test("TaskCanceller.arm() again restarts the count: one timer per task", async () => {
  const { failed, canceller, onWorker, failedOnce } = setup(60_000);
  const task = onWorker(6, false, 1);
  canceller.arm(task);
  task.timeout = 30;
  canceller.arm(task); // sent again: the first count must not run out
  await after(10); // due after the first timer
  assert.equal(failed.length, 0, "the first timer was cleared");
  await failedOnce;
  assert.equal((failed[0]![1] as Error).message, "Task timed out after 30 ms");
  canceller.close();
});
