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
import { Pool } from "../mod.ts";

interface Call {
  args: unknown[];
  kind: CallKind;
  options: TaskOptions;
  /** What the engine said of the args (submitTo only). */
  primitive?: boolean | undefined;
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

interface Fake {
  ctx: MapContext;
  calls: Call[];
}

/**
 * A fake pool for one map. Its tasks end through `submitTo`'s callbacks, as
 * the pool's do; with `promises`, the context has only `submit` (the
 * engine's fallback).
 */
function fake(
  sources: unknown[],
  options: MapOptions = {},
  { slots = 2, itemMs, promises = false }: {
    slots?: number;
    itemMs?: number;
    promises?: boolean;
  } = {},
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
  if (!promises) {
    ctx.submitTo = (args, kind, taskOptions, tag, ok, no, primitive) => {
      // A task ends once, as the dispatcher's do (and a promise does).
      let ended = false;
      calls.push({
        args,
        kind,
        options: taskOptions,
        primitive,
        resolve: (value) => {
          if (!ended) ok(value, tag);
          ended = true;
        },
        reject: (error) => {
          if (!ended) no(error, tag);
          ended = true;
        },
      });
    };
  }
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

Deno.test("createMapStream() over a context without submitTo (promises) maps, orders and errors the same", async () => {
  const { ctx, calls } = fake([[1, 2, 3, 4]], { outcomes: true }, {
    slots: 4,
    promises: true,
  });
  const out = Array.fromAsync(createMapStream(ctx));
  await flush();
  assert.equal(calls.length, 4);
  const boom = new RangeError("no threes");
  answer(calls[3]!);
  calls[2]!.reject(boom);
  answer(calls[1]!);
  answer(calls[0]!);
  assert.deepEqual(await out, [
    { index: 0, status: "fulfilled", value: 10 },
    { index: 1, status: "fulfilled", value: 20 },
    { index: 2, status: "rejected", reason: boom },
    { index: 3, status: "fulfilled", value: 40 },
  ]);
});

Deno.test("createMapStream() submits nothing from inside the pool's callbacks (the dispatcher is not re-entered)", async () => {
  const { ctx, calls } = fake([Array.from({ length: 50 }, (_, i) => i)]);
  const submitTo = ctx.submitTo!;
  let inCallback = false;
  let reentered = 0;
  ctx.submitTo = (...args) => {
    if (inCallback) reentered++;
    submitTo(...args);
  };
  let slots = 2;
  ctx.slots = () => slots;
  const out = Array.fromAsync(createMapStream<number>(ctx));
  let answered = 0;
  while (answered < 50) {
    await flush();
    const batch = calls.splice(0);
    assert.ok(batch.length > 0, `stalled after ${answered} results`);
    // The pool grows meanwhile (workers ready, depth adapted): the window
    // has room as the results come in.
    slots += 2;
    // As the dispatcher does: a frame of results, settled in one go.
    inCallback = true;
    for (const call of batch) answer(call);
    inCallback = false;
    answered += batch.length;
  }
  assert.deepEqual(await out, Array.from({ length: 50 }, (_, i) => i * 10));
  assert.equal(reentered, 0, "a task was submitted inside a callback");
});

Deno.test("createMapStream() takes a task that fails at once (inside submitTo) like any other", async () => {
  const { ctx } = fake([[1, 2, 3]], { outcomes: true });
  const boom = new TypeError("refused");
  ctx.submitTo = (args, _kind, _options, tag, ok, no) => {
    if ((args as number[])[0] === 2) no(boom, tag);
    else ok(compute(args), tag);
  };
  assert.deepEqual(await Array.fromAsync(createMapStream(ctx)), [
    { index: 0, status: "fulfilled", value: 10 },
    { index: 1, status: "rejected", reason: boom },
    { index: 2, status: "fulfilled", value: 30 },
  ]);
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

Deno.test("createMapStream() tells submitTo which tasks hold primitives only (no Blob to look for)", async () => {
  const values = [1, "a", null, undefined, true, { x: 1 }, 2];
  function* generated(): Generator<unknown> {
    yield* values;
  }
  // A plain array (read in bulk) and a generator (read item by item).
  for (const source of [values, generated()]) {
    const { ctx, calls } = fake([source], { chunkSize: 3 });
    const out = Array.fromAsync(createMapStream<unknown>(ctx));
    await flush();
    assert.deepEqual(calls.map((c) => [c.args, c.primitive]), [
      [[1, "a", null], true],
      [[undefined, true, { x: 1 }], false],
      [[2], true],
    ]);
    for (const call of calls) call.resolve(call.args);
    assert.deepEqual(await out, values);
  }
  // Argument lists are arrays: never primitive.
  const zip = fake([[1, 2], [3, 4]], { chunkSize: 2 });
  const zipped = Array.fromAsync(createMapStream<unknown>(zip.ctx));
  await flush();
  assert.deepEqual(zip.calls.map((c) => c.primitive), [false]);
  zip.calls[0]!.resolve([0, 0]);
  await zipped;
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

Deno.test("createMapStream() errors with what an async source throws", async () => {
  async function* source(): AsyncGenerator<number> {
    yield 1;
    await new Promise((resolve) => setTimeout(resolve, 1));
    yield 2;
    throw new RangeError("async source broke");
  }
  const { ctx, calls } = fake([source()], { chunkSize: 4 });
  const out = assert.rejects(
    Array.fromAsync(createMapStream<number>(ctx)),
    (e) => e instanceof RangeError && e.message === "async source broke",
  );
  for (let i = 0; i < 20; i++) {
    await flush();
    for (const call of calls.splice(0)) answer(call);
  }
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
  for (const name of ["maxItemsInFlight", "maxBytesInFlight"] as const) {
    for (const bad of [0, -1, 1.5, NaN]) {
      assert.throws(
        () => createMapStream(fake([[1]], { [name]: bad }).ctx),
        (e) => e instanceof RangeError && e.message.includes(name),
      );
    }
    assert.throws(
      () =>
        createMapStream(
          fake([[1]], { [name]: "100" as unknown as number }).ctx,
        ),
      (e) => e instanceof TypeError && e.message.includes(name),
    );
  }
});

// ---- the budget, on a real pool -----------------------------------------------

/** Round trips to every worker until `read()` stops changing (3 in a row). */
async function quiesce(pool: Pool, read: () => number): Promise<void> {
  let last = -1;
  let same = 0;
  for (let round = 0; round < 200 && same < 3; round++) {
    await pool.runOnAll(() => 0);
    const now = read();
    same = now === last ? same + 1 : 0;
    last = now;
  }
}

for (
  const [what, options, budget, ready] of [
    ["the default budget, before the pool is ready", {}, 16384, false],
    [
      "maxItemsInFlight: 1000, ready pool",
      { maxItemsInFlight: 1000 },
      1000,
      true,
    ],
  ] as const
) {
  Deno.test(
    `Pool.map() over an unbounded source reads at most its item budget ahead (${what})`,
    async () => {
      await using pool = ready ? await Pool.create(2) : new Pool(2);
      let pulled = 0;
      function* naturals(): Generator<number> {
        for (let i = 0;; i++) {
          pulled++;
          yield i;
        }
      }
      const reader = pool.map((x: number) => x * 2, naturals(), options)
        .getReader();
      for (let i = 0; i < 200; i++) {
        assert.deepEqual(await reader.read(), { done: false, value: i * 2 });
      }
      await quiesce(pool, () => pulled);
      assert.ok(
        pulled <= 200 + budget,
        `pulled ${pulled} items after reading 200 (budget ${budget})`,
      );
      await reader.cancel();
      const atCancel = pulled;
      await quiesce(pool, () => pulled);
      assert.equal(pulled, atCancel, "items were pulled after cancel()");
    },
  );
}

Deno.test("Pool.map() holds at most maxBytesInFlight of arguments and results", async () => {
  await using pool = await Pool.create(2);
  const size = 100_000;
  let pulled = 0;
  function* buffers(): Generator<Uint8Array> {
    for (;;) {
      pulled++;
      yield new Uint8Array(size);
    }
  }
  const reader = pool.map((b: Uint8Array) => b, buffers(), {
    maxBytesInFlight: 2_000_000,
  }).getReader();
  for (let i = 0; i < 10; i++) {
    const { value } = await reader.read();
    assert.equal(value?.length, size);
  }
  await quiesce(pool, () => pulled);
  // 2 MB of 100 kB items is 20; one more always gets through.
  assert.ok(pulled <= 10 + 21, `pulled ${pulled} after reading 10`);
  await reader.cancel();
});

Deno.test("Pool.map() sends 1 MiB buffers one per task however fast the function", async () => {
  const kinds: CallKind[] = [];
  const lengths: number[] = [];
  const { ctx, calls } = fake(
    [Array.from({ length: 40 }, () => new Uint8Array(1 << 20))],
    {},
    { itemMs: 0.00001 },
  );
  const out = Array.fromAsync(createMapStream<number>(ctx));
  for (let settled = 0; settled < 40;) {
    await flush();
    for (const call of calls.splice(0)) {
      kinds.push(call.kind);
      lengths.push(call.args.length);
      call.resolve(call.kind === "call" ? 1 : call.args.map(() => 1));
      settled += call.kind === "call" ? 1 : call.args.length;
    }
  }
  assert.equal((await out).length, 40);
  assert.deepEqual(new Set(lengths), new Set([1]), `chunk sizes ${lengths}`);
});

/**
 * Runs tests/fixtures/map_memory.ts in a child process and returns what it
 * printed; the child is killed if it outlives `ms`.
 */
async function childMap(args: number[], ms = 120_000): Promise<{
  count: number;
  inOrder: boolean;
  peakRssMB: number;
  hwmMB: number;
}> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL("./fixtures/map_memory.ts", import.meta.url).pathname,
      ...args.map(String),
    ],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
  }, ms);
  try {
    const { code, stdout, stderr } = await child.output();
    const text = new TextDecoder().decode(stdout).trim();
    assert.equal(
      code,
      0,
      `child failed (${code}): ${new TextDecoder().decode(stderr)}`,
    );
    return JSON.parse(text.split("\n").at(-1)!);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The pool process starts at about 50 MB; the default budget holds 64 MiB of
 * arguments, and buffers sent but not yet collected add about as much again
 * (measured: 210-260 MB). Before the budget these cases peaked at 395-820 MB.
 */
const PEAK_MB = 320;

for (
  const [what, args] of [
    ["2,000 x 1 MiB, fast consumer", [2000, 1 << 20, 0, 0]],
    ["2,000 x 1 MiB, consumer sleeping 5 ms per result", [2000, 1 << 20, 5, 1]],
    ["10,000 x 100 kB, slow consumer", [10_000, 100_000, 5, 20]],
  ] as const
) {
  Deno.test(`Pool.map() of ${what} stays under ${PEAK_MB} MB in the pool process`, async () => {
    const result = await childMap([...args]);
    assert.equal(result.count, args[0]);
    assert.equal(result.inOrder, true, "results out of order");
    assert.ok(
      result.hwmMB < PEAK_MB,
      `peak RSS ${result.hwmMB.toFixed(0)} MB (sampled ${
        result.peakRssMB.toFixed(0)
      } MB)`,
    );
  });
}

// ---- per-item outcomes and timeouts ---------------------------------------------

Deno.test("createMapStream() with outcomes yields a rejected outcome for a failing item and goes on", async () => {
  const { ctx, calls } = fake([[1, 2, 3]], { outcomes: true });
  const out = Array.fromAsync(createMapStream(ctx));
  await flush();
  const boom = new RangeError("no twos");
  answer(calls[0]!);
  calls[1]!.reject(boom);
  answer(calls[2]!);
  assert.deepEqual(await out, [
    { index: 0, status: "fulfilled", value: 10 },
    { index: 1, status: "rejected", reason: boom },
    { index: 2, status: "fulfilled", value: 30 },
  ]);
});

Deno.test("createMapStream() with outcomes runs a failed chunk's items one by one", async () => {
  const { ctx, calls } = fake([[1, 2, 3, 4, 5]], {
    outcomes: true,
    chunkSize: 3,
  });
  const out = Array.fromAsync(createMapStream(ctx));
  await flush();
  assert.deepEqual(calls.map((c) => c.args), [[1, 2, 3], [4, 5]]);
  const boom = new Error("item 2 failed");
  calls[0]!.reject(boom);
  answer(calls[1]!);
  await flush();
  // The three items of the failed chunk, each alone.
  const again = calls.slice(2);
  assert.deepEqual(again.map((c) => [c.kind, c.args]), [
    ["call", [1]],
    ["call", [2]],
    ["call", [3]],
  ]);
  answer(again[0]!);
  again[1]!.reject(boom);
  answer(again[2]!);
  assert.deepEqual(await out, [
    { index: 0, status: "fulfilled", value: 10 },
    { index: 1, status: "rejected", reason: boom },
    { index: 2, status: "fulfilled", value: 30 },
    { index: 3, status: "fulfilled", value: 40 },
    { index: 4, status: "fulfilled", value: 50 },
  ]);
});

Deno.test("createMapStream() with itemTimeout gives each task its items' share", async () => {
  const single = fake([[1, 2]], { itemTimeout: 50 }, { itemMs: 0.0001 });
  const a = Array.fromAsync(createMapStream(single.ctx));
  await flush();
  // Items go one per task by default, each with the item's timeout.
  assert.deepEqual(
    single.calls.map((c) => [c.kind, c.options.timeout]),
    [["call", 50], ["call", 50]],
  );
  for (const call of single.calls) answer(call);
  await a;
  const chunked = fake([[1, 2, 3]], { itemTimeout: 50, chunkSize: 3 });
  const b = Array.fromAsync(createMapStream(chunked.ctx));
  await flush();
  assert.deepEqual(chunked.calls.map((c) => c.options.timeout), [150]);
  for (const call of chunked.calls) answer(call);
  await b;
});

function failOnSevens(x: number): number {
  if (x % 7 === 0) throw new RangeError(`${x} is a multiple of 7`);
  return x * 2;
}

Deno.test("Pool.map() errors with the failing item's index", async () => {
  await using pool = await Pool.create(2);
  const error = await Array.fromAsync(
    pool.map(failOnSevens, [1, 2, 3, 4, 5, 6, 7, 8], { chunkSize: 1 }),
  ).then(() => assert.fail("the map did not fail"), (e) => e);
  assert.ok(error instanceof RangeError);
  assert.equal(error.message, "7 is a multiple of 7 (map item 6)");
  assert.equal((error as { itemIndex?: number }).itemIndex, 6);
});

Deno.test("Pool.map() errors with the failing item's index inside a chunk too (sync, async, zipped)", async () => {
  await using pool = await Pool.create(2);
  const xs = Array.from({ length: 30 }, (_, i) => i + 30); // 35 is item 5
  for (
    const [label, stream] of [
      ["sync", pool.map(failOnSevens, xs, { chunkSize: 10 })],
      [
        "async",
        pool.map(
          async (x: number) => {
            await Promise.resolve();
            if (x % 7 === 0) throw new RangeError(`${x} is a multiple of 7`);
            return x;
          },
          xs,
          { chunkSize: 10 },
        ),
      ],
      [
        "zipped",
        pool.map(
          (x: number, y: number) => {
            if ((x + y) % 7 === 0) {
              throw new RangeError(`${x + y} is a multiple of 7`);
            }
            return x + y;
          },
          xs,
          xs.map(() => 0),
          { chunkSize: 10 },
        ),
      ],
    ] as const
  ) {
    const error = await Array.fromAsync(stream as ReadableStream<unknown>)
      .then(() => assert.fail(`${label}: the map did not fail`), (e) => e);
    assert.ok(error instanceof RangeError, `${label}: ${error}`);
    assert.equal(error.message, "35 is a multiple of 7 (map item 5)", label);
    assert.equal((error as { itemIndex?: number }).itemIndex, 5, label);
    assert.equal(
      Object.hasOwn(error, "chunkItem"),
      false,
      `${label}: the worker's note is left on the error`,
    );
  }
});

Deno.test("Pool.map() with outcomes gives every item its own outcome, also in automatic chunks", async () => {
  await using pool = await Pool.create(2);
  const n = 5_000;
  const xs = Array.from({ length: n }, (_, i) => i + 1);
  // Twice: the second run is chunked (the pool has measured the function).
  for (let round = 0; round < 2; round++) {
    let i = 0;
    for await (const o of pool.map(failOnSevens, xs, { outcomes: true })) {
      assert.equal(o.index, i);
      const x = i + 1;
      if (x % 7 === 0) {
        assert.equal(o.status, "rejected");
        assert.ok(o.status === "rejected" && o.reason instanceof RangeError);
      } else {
        assert.deepEqual(o, { index: i, status: "fulfilled", value: x * 2 });
      }
      i++;
    }
    assert.equal(i, n);
  }
});

Deno.test("Pool.map() with outcomes and ordered: false yields each index once", async () => {
  await using pool = await Pool.create(2);
  const seen = new Set<number>();
  let rejected = 0;
  for await (
    const o of pool.map(
      failOnSevens,
      Array.from({ length: 700 }, (_, i) => i),
      {
        outcomes: true,
        ordered: false,
      },
    )
  ) {
    assert.ok(!seen.has(o.index), `index ${o.index} twice`);
    seen.add(o.index);
    if (o.status === "rejected") rejected++;
  }
  assert.equal(seen.size, 700);
  assert.equal(rejected, 100);
});

Deno.test("Pool.map() with itemTimeout fails the item that runs too long", async () => {
  await using pool = await Pool.create({ workers: 2, qsize: 1 });
  const wait = (ms: number) =>
    new Promise<number>((resolve) => setTimeout(() => resolve(ms), ms));
  const outcomes = await Array.fromAsync(
    pool.map(wait, [1, 60_000, 2], { itemTimeout: 2_000, outcomes: true }),
  );
  assert.deepEqual(outcomes.map((o) => o.status), [
    "fulfilled",
    "rejected",
    "fulfilled",
  ]);
  const late = outcomes[1]!;
  assert.ok(late.status === "rejected");
  assert.equal((late.reason as Error).name, "TimeoutError");
  // Without outcomes, the stream errors with the TimeoutError.
  await assert.rejects(
    Array.fromAsync(pool.map(wait, [1, 60_000], { itemTimeout: 500 })),
    (e: Error) => e.name === "TimeoutError",
  );
});

// ---- chunks and the fast iterator ---------------------------------------------

/** A context whose tasks each finish on a timer, answering 0 per item. */
function autoAnswer(
  sources: unknown[],
  options: MapOptions = {},
  itemMs?: number,
): { ctx: MapContext; sizes: number[] } {
  const sizes: number[] = [];
  const ctx: MapContext = {
    submit(args, kind) {
      sizes.push(kind === "call" ? 1 : args.length);
      return new Promise((resolve) =>
        setTimeout(() => resolve(kind === "call" ? 0 : args.map(() => 0)), 0)
      );
    },
    slots: () => 2,
    itemMs: () => itemMs,
    sources,
    options,
    retries: 0,
  };
  return { ctx, sizes };
}

Deno.test("createMapStream() sends whole adaptive chunks while the consumer frees its budget item by item", async () => {
  const n = 40_000;
  for (
    const source of [
      counted(n).source,
      Array.from({ length: n }, () => 1),
    ]
  ) {
    const { ctx, sizes } = autoAnswer([source], {}, 0.0001);
    let count = 0;
    for await (const _ of createMapStream(ctx)) count++;
    assert.equal(count, n);
    // Chunks of 4096 (a quarter of the default budget), but for the last.
    // Taking each item as soon as the consumer took one sent one-item tasks
    // between the full ones (4096, 1, 4095, 1, …; thousands in a 100k map).
    const small = sizes.slice(0, -1).filter((size) => size < 4096);
    assert.deepEqual(small, [], `chunk sizes ${sizes}`);
  }
});

Deno.test("createMapStream() read by for await: a break cancels the map and closes its source", async () => {
  const { source, pulled, closed } = counted();
  const { ctx, calls } = fake([source], { chunkSize: 1 });
  const stream = createMapStream<number>(ctx);
  const answering = setInterval(() => {
    for (const call of calls) {
      if (call.options.signal?.aborted !== true) answer(call);
    }
  }, 1);
  try {
    const seen: number[] = [];
    for await (const y of stream) {
      seen.push(y);
      if (seen.length === 5) break;
    }
    assert.deepEqual(seen, [0, 10, 20, 30, 40]);
  } finally {
    clearInterval(answering);
  }
  assert.equal(closed(), true);
  assert.equal(stream.locked, false);
  const read = pulled();
  await flush();
  assert.equal(pulled(), read, "read after the break");
  assert.ok(calls.some((call) => call.options.signal?.aborted));
});

Deno.test("createMapStream() read by for await holds at most its item budget ahead of what was taken", async () => {
  const { source, pulled, closed } = counted();
  const { ctx } = autoAnswer([source], {
    maxItemsInFlight: 25,
    chunkSize: 10,
  });
  const iterator = createMapStream<number>(ctx)[Symbol.asyncIterator]();
  let taken = 0;
  for (const upTo of [30, 250, 251]) {
    while (taken < upTo) {
      const { done } = await iterator.next();
      assert.equal(done, false);
      taken++;
    }
    // Let every task in flight finish: reading may only refill the budget.
    for (let i = 0; i < 10; i++) await flush();
    assert.ok(
      pulled() <= taken + 25,
      `pulled ${pulled()} items with ${taken} taken (budget 25)`,
    );
    assert.ok(pulled() > taken, "nothing read ahead");
  }
  await iterator.return!();
  assert.equal(closed(), true);
});
