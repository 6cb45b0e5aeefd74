/**
 * The map engine over a fake MapContext: no pool, no processes. Each task the
 * engine submits waits until the test settles it, so completion order, read
 * ahead and cancellation are driven by the test.
 */
import assert from "node:assert/strict";
import {
  type CallKind,
  createMapStream,
  type MapContext,
  type MapOptions,
} from "../src/map_stream.ts";
import type { TaskOptions } from "../src/options.ts";

interface Call {
  args: unknown[];
  kind: CallKind;
  options: TaskOptions;
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

interface Fake {
  ctx: MapContext;
  calls: Call[];
}

function fake(
  sources: unknown[],
  options: MapOptions = {},
  { slots = 2, itemMs }: { slots?: number; itemMs?: number } = {},
): Fake {
  const calls: Call[] = [];
  const ctx: MapContext = {
    submit(args, kind, taskOptions) {
      const { promise, resolve, reject } = Promise.withResolvers<unknown>();
      calls.push({ args, kind, options: taskOptions, resolve, reject });
      return promise;
    },
    slots: () => slots,
    itemMs: () => itemMs,
    sources,
    options,
    retries: 0,
  };
  return { ctx, calls };
}

/** What the fake worker computes: ten times the sum of a call's arguments. */
function compute(args: unknown[]): number {
  return (args as number[]).reduce((a, b) => a + b, 0) * 10;
}

/** Settles `call` as a worker would: one result, or one per item of a chunk. */
function answer(call: Call): void {
  if (call.kind === "call") call.resolve(compute(call.args));
  else if (call.kind === "chunk") {
    call.resolve(call.args.map((a) => compute(a as unknown[])));
  } else call.resolve(call.args.map((x) => compute([x])));
}

/** Lets every pending promise job and timer callback of the engine run. */
async function flush(): Promise<void> {
  for (let i = 0; i < 5; i++) {
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
}

/** A sync source that counts how many items were pulled and whether it was closed. */
function counted(limit = Infinity): {
  source: Iterable<number>;
  pulled: () => number;
  closed: () => boolean;
} {
  let pulled = 0;
  let closed = false;
  const source = {
    [Symbol.iterator](): Iterator<number> {
      return {
        next: () =>
          pulled < limit
            ? { done: false, value: pulled++ }
            : { done: true, value: undefined },
        return: () => {
          closed = true;
          return { done: true, value: undefined };
        },
      };
    },
  };
  return { source, pulled: () => pulled, closed: () => closed };
}

Deno.test("createMapStream() keeps input order when tasks finish out of order", async () => {
  const { ctx, calls } = fake([[1, 2, 3, 4, 5, 6]], {}, { slots: 3 });
  const out = Array.fromAsync(createMapStream<number>(ctx));
  await flush();
  assert.equal(calls.length, 6);
  // Finish last to first: nothing may be delivered before the first.
  for (const call of calls.toReversed()) answer(call);
  assert.deepEqual(await out, [10, 20, 30, 40, 50, 60]);
});

Deno.test("createMapStream() holds later results until the first one is done", async () => {
  const { ctx, calls } = fake([[1, 2, 3]]);
  const reader = createMapStream<number>(ctx).getReader();
  const first = reader.read();
  await flush();
  answer(calls[2]!);
  answer(calls[1]!);
  let delivered = false;
  first.then(() => delivered = true);
  await flush();
  assert.equal(delivered, false, "a later result overtook the first");
  answer(calls[0]!);
  assert.deepEqual(await first, { done: false, value: 10 });
  assert.deepEqual(await reader.read(), { done: false, value: 20 });
  assert.deepEqual(await reader.read(), { done: false, value: 30 });
  assert.deepEqual(await reader.read(), { done: true, value: undefined });
});

Deno.test("createMapStream() with ordered: false yields results as they finish", async () => {
  const { ctx, calls } = fake([[1, 2, 3]], { ordered: false });
  const reader = createMapStream<number>(ctx).getReader();
  const first = reader.read();
  await flush();
  answer(calls[2]!);
  assert.deepEqual(await first, { done: false, value: 30 });
  answer(calls[0]!);
  assert.deepEqual(await reader.read(), { done: false, value: 10 });
  answer(calls[1]!);
  assert.deepEqual(await reader.read(), { done: false, value: 20 });
  assert.deepEqual(await reader.read(), { done: true, value: undefined });
});

Deno.test("createMapStream() reads nothing before the consumer asks", async () => {
  const { source, pulled } = counted();
  const { ctx, calls } = fake([source]);
  const stream = createMapStream<number>(ctx);
  await flush();
  assert.equal(pulled(), 0);
  assert.equal(calls.length, 0);
  await stream.cancel();
});

Deno.test("createMapStream() reads an unbounded source only as far as its window", async () => {
  const { source, pulled, closed } = counted();
  const { ctx, calls } = fake([source], { chunkSize: 1 }, { slots: 3 });
  const reader = createMapStream<number>(ctx).getReader();
  const first = reader.read();
  await flush();
  const window = pulled();
  assert.ok(window >= 1, "nothing was read");
  assert.ok(window <= 64, `read ${window} items ahead with 3 slots`);
  assert.equal(calls.length, window, "every item read was submitted");
  // No task finished: nothing more is read however long we wait.
  await flush();
  assert.equal(pulled(), window);
  // One result handed over makes room for one more item.
  answer(calls[0]!);
  assert.deepEqual(await first, { done: false, value: 0 });
  await flush();
  assert.equal(pulled(), window + 1);
  await reader.cancel();
  assert.equal(closed(), true);
  await flush();
  assert.equal(pulled(), window + 1, "read after cancel()");
});

Deno.test("createMapStream() chunks: items for one source, argument lists for several", async () => {
  const one = fake([[1, 2, 3, 4, 5]], { chunkSize: 2 });
  const out = Array.fromAsync(createMapStream<number>(one.ctx));
  await flush();
  assert.deepEqual(one.calls.map((c) => [c.kind, c.args]), [
    ["items", [1, 2]],
    ["items", [3, 4]],
    ["items", [5]],
  ]);
  for (const call of one.calls) answer(call);
  assert.deepEqual(await out, [10, 20, 30, 40, 50]);

  const two = fake([[1, 2, 3], [10, 20, 30]], { chunkSize: 2 });
  const zipped = Array.fromAsync(createMapStream<number>(two.ctx));
  await flush();
  assert.deepEqual(two.calls.map((c) => [c.kind, c.args]), [
    ["chunk", [[1, 10], [2, 20]]],
    ["chunk", [[3, 30]]],
  ]);
  for (const call of two.calls) answer(call);
  assert.deepEqual(await zipped, [110, 220, 330]);

  const star = fake([[[1, 2], [3, 4]]], { star: true });
  const starred = Array.fromAsync(createMapStream<number>(star.ctx));
  await flush();
  assert.deepEqual(star.calls.map((c) => [c.kind, c.args]), [
    ["call", [1, 2]],
    ["call", [3, 4]],
  ]);
  for (const call of star.calls) answer(call);
  assert.deepEqual(await starred, [30, 70]);
});

Deno.test("createMapStream() sizes chunks from the measured time per item", async () => {
  const { source } = counted(100_000);
  const { ctx, calls } = fake([source], {}, { itemMs: 0.0001 });
  const reader = createMapStream<number>(ctx).getReader();
  const first = reader.read();
  await flush();
  assert.ok(calls.length > 0);
  for (const call of calls) {
    assert.equal(call.kind, "items");
    assert.ok(call.args.length > 1, "tiny tasks were not chunked");
  }
  answer(calls[0]!);
  await first;
  await reader.cancel();
});

Deno.test("createMapStream() cancel() reaches return() of every source", async () => {
  const log: string[] = [];
  const sync = counted();
  async function* asyncSource(): AsyncGenerator<number> {
    try {
      for (let i = 0;; i++) yield i;
    } finally {
      log.push("async closed");
    }
  }
  let streamCancelled = false;
  let n = 0;
  const stream = new ReadableStream<number>({
    pull: (c) => c.enqueue(n++),
    cancel: () => {
      streamCancelled = true;
    },
  });
  const { ctx, calls } = fake([sync.source, asyncSource(), stream]);
  const reader = createMapStream<number>(ctx).getReader();
  const first = reader.read();
  await flush();
  assert.ok(calls.length > 0);
  answer(calls[0]!);
  assert.deepEqual(await first, { done: false, value: 0 });
  await reader.cancel();
  await flush();
  assert.equal(sync.closed(), true, "sync source not closed");
  assert.deepEqual(log, ["async closed"]);
  assert.equal(streamCancelled, true, "ReadableStream source not cancelled");
  // The tasks in flight were told to stop.
  for (const call of calls) assert.equal(call.options.signal?.aborted, true);
});

Deno.test("createMapStream() closes the longer sources when the shortest ends", async () => {
  const long = counted();
  const { ctx, calls } = fake([[1, 2], long.source]);
  const out = Array.fromAsync(createMapStream<number>(ctx));
  await flush();
  for (const call of calls) answer(call);
  assert.deepEqual(await out, [10, 30]);
  assert.equal(long.closed(), true);
});

Deno.test("createMapStream() errors with a task's error and stops reading", async () => {
  const { source, pulled, closed } = counted();
  const { ctx, calls } = fake([source], { chunkSize: 1 });
  const reader = createMapStream<number>(ctx).getReader();
  const first = reader.read();
  await flush();
  const boom = new Error("boom");
  calls[0]!.reject(boom);
  await assert.rejects(first, (e) => e === boom);
  assert.equal(closed(), true);
  const read = pulled();
  await flush();
  assert.equal(pulled(), read);
  for (const call of calls) assert.equal(call.options.signal?.aborted, true);
});

Deno.test("createMapStream() errors in order: results before a failed item come first", async () => {
  const { ctx, calls } = fake([[1, 2, 3]]);
  const reader = createMapStream<number>(ctx).getReader();
  const first = reader.read();
  await flush();
  const boom = new Error("item 2 failed");
  calls[1]!.reject(boom);
  answer(calls[0]!);
  assert.deepEqual(await first, { done: false, value: 10 });
  await assert.rejects(reader.read(), (e) => e === boom);
});

Deno.test("createMapStream() errors with what its source throws", async () => {
  function* source(): Generator<number> {
    yield 1;
    throw new RangeError("source broke");
  }
  const { ctx, calls } = fake([source()]);
  const out = assert.rejects(
    Array.fromAsync(createMapStream<number>(ctx)),
    RangeError,
  );
  await flush();
  for (const call of calls) answer(call);
  await out;
});

Deno.test("createMapStream() rejects bad sources and options synchronously", () => {
  assert.throws(() => createMapStream(fake([]).ctx), TypeError);
  assert.throws(() => createMapStream(fake([42]).ctx), TypeError);
  assert.throws(
    () => createMapStream(fake([[1]], { chunkSize: 0 }).ctx),
    RangeError,
  );
  assert.throws(
    () => createMapStream(fake([[1]], { timeout: -1 }).ctx),
    RangeError,
  );
});
