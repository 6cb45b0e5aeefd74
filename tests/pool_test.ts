/**
 * `Pool` over local workers: the contract suite, then what only local
 * workers let a test see (pids, exit codes, signals, the socket directory).
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  Pool,
  PoolClosedError,
  type PoolOptions,
  WorkerLostError,
} from "../mod.ts";
import { contractSuite } from "./_contract.ts";
import { killFirstTime } from "./fixtures/tasks.ts";
import {
  closeNow,
  fileGate,
  flushMicrotasks,
  isGone,
  pollUntil,
  rejection,
  track,
  waitForFile,
  withTimeout,
} from "./_util.ts";

contractSuite("local", () => ({ workers: 2 }));

/** A task that never finishes (its worker is stopped at close). */
const forever = (): Promise<never> => new Promise(() => {});

/** `f(x) = x * 2`. */
const double = (x: number): number => x * 2;

// ---- options ---------------------------------------------------------------

Deno.test("new Pool() throws synchronously for bad options, naming them", () => {
  const cases: [unknown, ErrorConstructor, RegExp][] = [
    [{ workers: -1 }, RangeError, /'workers'.*-1/],
    [-3, RangeError, /'workers'.*-3/],
    [{ workers: 1.5 }, RangeError, /'workers'.*1\.5/],
    [{ workers: "2" }, TypeError, /'workers'.*2/],
    [{ workers: 0 }, RangeError, /at least one worker/],
    [{ workers: 2, qsize: 0 }, RangeError, /'qsize'.*0/],
    [{ workers: 2, qsize: 2.5 }, RangeError, /'qsize'.*2\.5/],
    [{ workers: 2, retries: -1 }, RangeError, /'retries'.*-1/],
    [{ hosts: ["maxi"] }, TypeError, /"maxi".*\/N/],
    [{ hosts: ["ssh://maxi:99999/2"] }, RangeError, /99999/],
    [{ hosts: "maxi/2" }, TypeError, /'hosts'/],
    [{ workers: 1, initArgs: 5 }, TypeError, /'initArgs'/],
    [{ workers: 1, initializer: Math.max }, TypeError, /'max'.*native/],
    [{ workers: 1, permissions: "-A" }, TypeError, /'permissions'/],
    [{ workers: 1, denoArgs: [1] }, TypeError, /'denoArgs'/],
    ["4", TypeError, /worker count or an object/],
  ];
  for (const [options, Class, message] of cases) {
    assert.throws(
      () => new Pool(options as PoolOptions),
      (error: unknown) => {
        assert.equal(
          Object.getPrototypeOf(error),
          Class.prototype,
          `${JSON.stringify(options)} threw ${error}`,
        );
        assert.match((error as Error).message, message);
        return true;
      },
      `new Pool(${JSON.stringify(options)}) should throw`,
    );
  }
});

Deno.test("Pool.apply() rejects bad task options without running", async () => {
  await using pool = new Pool({ workers: 1, lazy: true });
  const timeout = await rejection(
    pool.apply(double, [1], { timeout: -1 }),
  );
  assert.equal(Object.getPrototypeOf(timeout), RangeError.prototype);
  assert.match(timeout.message, /'timeout'.*-1/);
  const retries = await rejection(pool.apply(double, [1], { retries: 0.5 }));
  assert.equal(Object.getPrototypeOf(retries), RangeError.prototype);
  const args = await rejection(
    pool.apply(double, 1 as unknown as [number]),
  );
  assert.equal(Object.getPrototypeOf(args), TypeError.prototype);
  assert.throws(
    () => pool.map(double, [1], { chunkSize: 0 }),
    /'chunkSize'.*0/,
  );
  assert.throws(() => pool.map(double, 5 as unknown as number[]), TypeError);
  assert.throws(
    // @ts-expect-error the types allow star with one source only
    () => pool.map(double, [[1]], [[2]], { star: true }),
    /'star'.*several iterables/,
  );
  const notArgs = await rejection(
    Array.fromAsync(pool.map(double, [1, 2], { star: true })),
  );
  assert.equal(Object.getPrototypeOf(notArgs), TypeError.prototype);
  assert.match(notArgs.message, /'star'.*array of arguments/);
});

// ---- creation ----------------------------------------------------------------

Deno.test("Pool.create() resolves once every worker is ready", async () => {
  await using pool = await Pool.create(2);
  assert.equal(pool.totalWorkers, 2);
  const pids = await pool.runOnAll(() => Deno.pid);
  assert.equal(new Set(pids).size, 2);
  assert.ok(!pids.includes(Deno.pid), "workers are separate processes");
  await using other = await Pool.create({ workers: 1 });
  assert.equal(await other.run(double, 21), 42);
});

Deno.test("Pool with lazy: true starts no worker until first use", async () => {
  await using lazy = new Pool({ workers: 2, lazy: true });
  let started = 0;
  lazy.addEventListener("workerstart", () => started++);
  assert.equal(lazy.totalWorkers, 2);
  // An eager pool started at the same time has its workers up by now.
  await using eager = await Pool.create(2);
  assert.equal(eager.totalWorkers, 2);
  assert.equal(started, 0, "the lazy pool started workers before use");
  assert.equal(await lazy.run(double, 4), 8);
  await lazy.ready;
  assert.equal(started, 2);
});

Deno.test("Pool with lazy: true that is never used closes at once", async () => {
  const pool = new Pool({ workers: 2, lazy: true });
  let started = 0;
  pool.addEventListener("workerstart", () => started++);
  await pool.close();
  assert.equal(started, 0);
  assert.ok((await rejection(pool.run(double, 1))) instanceof PoolClosedError);
});

Deno.test("Pool.ready rejects with the initializer's error", async () => {
  await using pool = new Pool({
    workers: 2,
    initializer: (what: string) => {
      throw new RangeError(`cannot initialise ${what}`);
    },
    initArgs: ["the database"],
  });
  const error = await rejection(
    withTimeout(pool.ready, 30_000, "Pool.ready"),
  );
  assert.equal(Object.getPrototypeOf(error), RangeError.prototype);
  assert.equal(error.message, "cannot initialise the database");
  const later = await rejection(pool.run(double, 1));
  assert.equal(later.message, "cannot initialise the database");
});

Deno.test("Pool.create() rejects with the initializer's error", async () => {
  const error = await rejection(withTimeout(
    Pool.create({
      workers: 2,
      initializer: () => {
        throw new TypeError("bad init");
      },
    }),
    30_000,
    "Pool.create()",
  ));
  assert.equal(Object.getPrototypeOf(error), TypeError.prototype);
  assert.equal(error.message, "bad init");
});

Deno.test("Pool.create() rejects when workers cannot start", async () => {
  const error = await rejection(withTimeout(
    Pool.create({ workers: 2, denoArgs: ["--no-such-deno-flag"] }),
    30_000,
    "Pool.create()",
  ));
  assert.match(error.message, /before connecting/);
});

// ---- per-task options --------------------------------------------------------

Deno.test("Pool.apply() with timeout rejects with a TimeoutError", async () => {
  await using pool = await Pool.create({ workers: 1, qsize: 2 });
  const error = await rejection(pool.apply(forever, [], { timeout: 50 }));
  assert.equal(error.name, "TimeoutError");
  assert.equal(await pool.run(double, 2), 4);
});

Deno.test(
  "Pool.apply() with timeout frees the worker's slot when the task ends",
  async () => {
    // A long grace: the worker must not need a kill to get its slot back.
    await using pool = await Pool.create({
      workers: 1,
      qsize: 1,
      killGrace: 60_000,
    });
    await using _stop = closeNow(pool);
    await using gate = await fileGate();
    const before = await pool.runOnAll(() => Deno.pid);
    // The task runs until the test opens the gate, so it ends after its timeout.
    const error = await rejection(pool.apply(
      waitForFile,
      [gate.path, "late"],
      { timeout: 10 },
    ));
    assert.equal(error.name, "TimeoutError");
    await gate.open();
    // Only one slot: the next task runs only if the late one gave it back.
    assert.equal(
      await withTimeout(pool.run(double, 3), 20_000, "the next task"),
      6,
    );
    // The same worker: it finished the late task, so it was not replaced.
    assert.deepEqual(await pool.runOnAll(() => Deno.pid), before);
  },
);

Deno.test("Pool.apply() with signal rejects with its reason at once", async () => {
  await using pool = await Pool.create({ workers: 1, qsize: 1 });
  const runningAbort = new AbortController();
  const running = pool.apply(forever, [], { signal: runningAbort.signal });
  const queuedAbort = new AbortController();
  const queued = pool.apply(double, [1], { signal: queuedAbort.signal });
  const runningState = track(running);
  const queuedState = track(queued);

  const queuedReason = new Error("stop the queued one");
  queuedAbort.abort(queuedReason);
  await flushMicrotasks();
  assert.ok(queuedState.settled, "the queued task did not reject at once");
  assert.equal(await rejection(queued), queuedReason);
  assert.ok(!runningState.settled);

  const runningReason = new Error("stop the running one");
  runningAbort.abort(runningReason);
  await flushMicrotasks();
  assert.ok(runningState.settled, "the running task did not reject at once");
  assert.equal(await rejection(running), runningReason);

  const already = await rejection(
    pool.apply(double, [1], { signal: AbortSignal.abort(queuedReason) }),
  );
  assert.equal(already, queuedReason);
});

Deno.test(
  "Pool.apply() with signal frees the worker's slot when the task ends",
  async () => {
    await using pool = await Pool.create({ workers: 1, qsize: 1 });
    await using _stop = closeNow(pool);
    await using gate = await fileGate();
    const before = await pool.runOnAll(() => Deno.pid);
    const controller = new AbortController();
    // The task runs until the test opens the gate: aborted while running.
    const aborted = rejection(pool.apply(
      waitForFile,
      [gate.path, "late"],
      { signal: controller.signal },
    ));
    assert.ok(
      await pollUntil(() => pool.stats().inFlight === 1, 20_000),
      "the task was not sent",
    );
    controller.abort(new Error("never mind"));
    assert.equal((await aborted).message, "never mind");
    await gate.open();
    // Only one slot: the next task runs only if the aborted one gave it back.
    assert.equal(
      await withTimeout(pool.run(double, 3), 20_000, "the next task"),
      6,
    );
    // The same worker: it was not killed to get the slot back.
    assert.deepEqual(await pool.runOnAll(() => Deno.pid), before);
  },
);

// ---- map ---------------------------------------------------------------------

for (
  const [what, options, bound] of [
    ["one item per task", { chunkSize: 1 }, 64],
    ["chunks of 10", { chunkSize: 10 }, 640],
  ] as const
) {
  Deno.test(
    `Pool.map() reads an unbounded source only as far as needed (${what})`,
    async () => {
      await using pool = await Pool.create({ workers: 2, qsize: 2 });
      let pulled = 0;
      function* naturals(): Generator<number> {
        for (let i = 0;; i++) {
          pulled++;
          yield i;
        }
      }
      const reader = pool.map(double, naturals(), options).getReader();
      const k = 100;
      for (let i = 0; i < k; i++) {
        const { value, done } = await reader.read();
        assert.equal(done, false);
        assert.equal(value, double(i));
      }
      // Give an eager reader every chance to run ahead: round trips to both
      // workers, and more results consumed.
      await pool.runOnAll(() => 0);
      await pool.runOnAll(() => 0);
      assert.ok(pulled <= k + bound, `pulled ${pulled} after reading ${k}`);
      await reader.cancel();
    },
  );
}

Deno.test(
  "Pool.map() cancelled by break calls return() on its sources",
  async () => {
    await using pool = await Pool.create(2);
    let syncFinally = false;
    function* syncSource(): Generator<number> {
      try {
        for (let i = 0;; i++) yield i;
      } finally {
        syncFinally = true;
      }
    }
    const asyncFinally = Promise.withResolvers<void>();
    async function* asyncSource(): AsyncGenerator<number> {
      try {
        for (let i = 0;; i++) {
          await Promise.resolve();
          yield i;
        }
      } finally {
        asyncFinally.resolve();
      }
    }
    const seen: number[] = [];
    for await (
      const v of pool.map(
        (a: number, b: number) => a + b,
        syncSource(),
        asyncSource(),
      )
    ) {
      seen.push(v);
      if (seen.length === 10) break;
    }
    assert.deepEqual(seen, Array.from({ length: 10 }, (_, i) => 2 * i));
    assert.ok(syncFinally, "the sync source's finally did not run");
    await withTimeout(
      asyncFinally.promise,
      10_000,
      "the async source's finally",
    );
    assert.equal(await pool.run(double, 5), 10);
    assert.deepEqual(await Array.fromAsync(pool.map(double, [1, 2])), [2, 4]);
  },
);

Deno.test(
  "Pool.map() stops at the shortest source and closes the others",
  async () => {
    await using pool = await Pool.create(2);
    let generatorClosed = false;
    function* naturals(): Generator<number> {
      try {
        for (let i = 0;; i++) yield i;
      } finally {
        generatorClosed = true;
      }
    }
    const streamCancelled = Promise.withResolvers<void>();
    let n = 0;
    const stream = new ReadableStream<number>({
      pull: (controller) => controller.enqueue(n++),
      cancel: () => streamCancelled.resolve(),
    });
    const sums = await Array.fromAsync(
      pool.map(
        (a: number, b: number, c: number) => a + b + c,
        [10, 20, 30],
        naturals(),
        stream,
      ),
    );
    assert.deepEqual(sums, [10, 22, 34]);
    assert.ok(generatorClosed, "the generator's finally did not run");
    await withTimeout(streamCancelled.promise, 5_000, "the stream's cancel()");
    assert.equal(stream.locked, false, "the stream is still locked");
  },
);

Deno.test("Pool.map() errors with what its source throws", async () => {
  await using pool = await Pool.create(2);
  const broken = new TypeError("the source broke");
  function* source(): Generator<number> {
    yield 1;
    yield 2;
    throw broken;
  }
  const seen: number[] = [];
  const error = await rejection((async () => {
    for await (const v of pool.map(double, source())) seen.push(v);
  })());
  assert.equal(error, broken);
  assert.ok(seen.length <= 2, `results after the failure: ${seen}`);
  async function* asyncSource(): AsyncGenerator<number> {
    yield 1;
    await Promise.resolve();
    throw broken;
  }
  assert.equal(
    await rejection(Array.fromAsync(pool.map(double, asyncSource()))),
    broken,
  );
  assert.equal(await pool.run(double, 8), 16);
});

Deno.test("Pool.map() with timeout errors with a TimeoutError", async () => {
  await using pool = await Pool.create({ workers: 1, qsize: 4 });
  let pulled = 0;
  function* items(): Generator<number> {
    for (let i = 0;; i++) {
      pulled++;
      yield i;
    }
  }
  const error = await rejection(
    Array.fromAsync(pool.map(forever, items(), { timeout: 100 })),
  );
  assert.equal(error.name, "TimeoutError");
  assert.ok(
    pulled < 100,
    `the source was read on after the timeout: ${pulled}`,
  );
});

Deno.test("Pool.map() with signal errors with its reason", async () => {
  await using pool = await Pool.create(2);
  const controller = new AbortController();
  const reader = pool.map(
    async (x: number) => {
      if (x > 0) await new Promise(() => {});
      return x;
    },
    [0, 1, 2, 3],
    { signal: controller.signal },
  ).getReader();
  assert.deepEqual(await reader.read(), { value: 0, done: false });
  const next = reader.read();
  const reason = new Error("enough");
  controller.abort(reason);
  assert.equal(await rejection(next), reason);

  const early = new Error("aborted before the map started");
  const error = await rejection(
    Array.fromAsync(
      pool.map(double, [1, 2], { signal: AbortSignal.abort(early) }),
    ),
  );
  assert.equal(error, early);
});

Deno.test("Pool.map() with ordered: false yields every result", async () => {
  await using pool = await Pool.create(2);
  const xs = Array.from({ length: 60 }, (_, i) => i);
  const out = await Array.fromAsync(pool.map(
    async (x: number) => {
      await new Promise((resolve) => setTimeout(resolve, (x % 7) * 2));
      return x * 10;
    },
    xs,
    { ordered: false },
  ));
  assert.deepEqual(out.toSorted((a, b) => a - b), xs.map((x) => x * 10));
});

// ---- workers dying -----------------------------------------------------------

async function assertReplaced(
  pool: Pool,
  before: number[],
): Promise<void> {
  const after = await pool.runOnAll(() => Deno.pid);
  assert.equal(after.length, pool.totalWorkers);
  assert.equal(new Set(after).size, pool.totalWorkers, `pids ${after}`);
  const dead = before.filter((pid) => !after.includes(pid));
  assert.equal(dead.length, 1, `before ${before}, after ${after}`);
  assert.ok(await isGone(dead[0]!), `worker ${dead[0]} is still alive`);
  assert.equal(await pool.run(double, 7), 14);
}

Deno.test(
  "Pool.run() rejects with WorkerLostError (code 3) when the worker exits",
  async () => {
    await using pool = await Pool.create(2);
    const before = await pool.runOnAll(() => Deno.pid);
    const error = await rejection(pool.run(() => Deno.exit(3)));
    assert.ok(error instanceof WorkerLostError, `got ${error}`);
    assert.equal(error.name, "WorkerLostError");
    assert.equal(error.code, 3);
    assert.equal(error.signal, undefined);
    assert.equal(error.host, "local");
    assert.equal(error.exits.length, 1);
    assert.match(error.message, /exited with code 3/);
    await assertReplaced(pool, before);
  },
);

Deno.test(
  "Pool.run() rejects with WorkerLostError (SIGKILL) when the worker is killed",
  async () => {
    await using pool = await Pool.create(2);
    const before = await pool.runOnAll(() => Deno.pid);
    const error = await rejection(
      pool.run(() => Deno.kill(Deno.pid, "SIGKILL")),
    );
    assert.ok(error instanceof WorkerLostError, `got ${error}`);
    assert.equal(error.signal, "SIGKILL");
    assert.equal(error.code, undefined);
    assert.match(error.message, /SIGKILL/);
    await assertReplaced(pool, before);
  },
);

Deno.test(
  "Pool fails every task in flight on a worker that dies",
  async () => {
    await using pool = await Pool.create({ workers: 1, qsize: 4 });
    const hung = [pool.run(forever), pool.run(forever), pool.run(forever)];
    const killer = pool.run(() => Deno.exit(9));
    for (const task of [...hung, killer]) {
      const error = await rejection(task);
      assert.ok(error instanceof WorkerLostError, `got ${error}`);
      assert.equal(error.code, 9);
    }
    assert.equal(await pool.run(double, 1), 2);
  },
);

Deno.test(
  "Pool with retries: 1 sends a task again when its worker dies",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "distex-test-" });
    try {
      await using pool = await Pool.create({ workers: 2, retries: 1 });
      assert.equal(
        await pool.run(killFirstTime, `${dir}/pool-option`),
        "second attempt",
      );
      const pids = await pool.runOnAll(() => Deno.pid);
      assert.equal(new Set(pids).size, 2);
      // Killing the worker every time exhausts the retries.
      const error = await rejection(
        pool.run(() => Deno.kill(Deno.pid, "SIGKILL")),
      );
      assert.ok(error instanceof WorkerLostError);
      assert.equal(error.exits.length, 2);
      assert.match(error.message, /tried 2 times/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

Deno.test(
  "Pool.apply() and Pool.map() take retries per call",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "distex-test-" });
    try {
      await using pool = await Pool.create(2);
      const lost = await rejection(
        pool.run(killFirstTime, `${dir}/no-retries`),
      );
      assert.ok(lost instanceof WorkerLostError);
      assert.equal(
        await pool.apply(killFirstTime, [`${dir}/apply`], { retries: 1 }),
        "second attempt",
      );
      assert.deepEqual(
        await Array.fromAsync(
          pool.map(killFirstTime, [`${dir}/map`], { retries: 1 }),
        ),
        ["second attempt"],
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

// ---- closing -------------------------------------------------------------------

Deno.test("Pool.close() waits for running and queued tasks", async () => {
  const pool = await Pool.create({ workers: 1, qsize: 1 });
  const order: string[] = [];
  const slow = pool.run(async () => {
    await new Promise((resolve) => setTimeout(resolve, 50));
    return "slow";
  }).then((v) => (order.push(v), v));
  const queued = pool.run(double, 4).then((v) => (order.push(`${v}`), v));
  const closing = pool.close();
  const refused = await rejection(pool.run(double, 1));
  assert.ok(refused instanceof PoolClosedError);
  await closing;
  order.push("closed");
  assert.deepEqual(order, ["slow", "8", "closed"]);
  assert.equal(await slow, "slow");
  assert.equal(await queued, 8);
});

Deno.test(
  "Pool.close() with wait: false rejects running and queued tasks",
  async () => {
    const pool = await Pool.create({ workers: 1, qsize: 1 });
    const running = rejection(pool.run(forever));
    const queued = rejection(pool.run(double, 1));
    await withTimeout(pool.close({ wait: false }), 20_000, "close()");
    assert.ok((await running) instanceof PoolClosedError);
    assert.ok((await queued) instanceof PoolClosedError);
  },
);

Deno.test(
  "Pool.close() while a graceful close waits can switch to wait: false",
  async () => {
    const pool = await Pool.create({ workers: 1, qsize: 1 });
    const running = rejection(pool.run(forever));
    const graceful = pool.close();
    const forced = pool.close({ wait: false });
    await withTimeout(Promise.all([graceful, forced]), 20_000, "close()");
    assert.ok((await running) instanceof PoolClosedError);
  },
);

Deno.test("Pool refuses work after close() with PoolClosedError", async () => {
  const pool = await Pool.create(1);
  await pool.close();
  for (
    const attempt of [
      pool.run(double, 1),
      pool.submit(double, 1),
      pool.apply(double, [1]),
      pool.runOnAll(() => 1),
      Array.fromAsync(pool.map(double, [1, 2])),
    ]
  ) {
    const error = await rejection(attempt);
    assert.ok(error instanceof PoolClosedError, `got ${error}`);
    assert.equal(error.name, "PoolClosedError");
  }
});

Deno.test("Pool.close() may be called more than once", async () => {
  const pool = await Pool.create(1);
  const first = pool.close();
  const second = pool.close();
  await Promise.all([first, second]);
  await pool.close();
  await pool[Symbol.asyncDispose]();
  assert.ok((await rejection(pool.run(double, 1))) instanceof PoolClosedError);
});

Deno.test(
  "Pool.close() ends every worker process and removes the socket directory",
  async () => {
    const pool = await Pool.create(2);
    const info = await pool.runOnAll(() => ({
      pid: Deno.pid,
      args: Deno.args,
    }));
    const args = info[0]!.args;
    const socket = args[args.indexOf("--unix") + 1]!;
    const dir = socket.slice(0, socket.lastIndexOf("/"));
    const stat = await Deno.stat(dir);
    assert.ok(stat.isDirectory);
    assert.equal(stat.mode! & 0o777, 0o700, "the socket dir is private");
    for (const { pid } of info) assert.equal(await isGone(pid), false);
    await pool.close();
    for (const { pid } of info) {
      assert.ok(await isGone(pid), `worker ${pid} outlived close()`);
    }
    await assert.rejects(Deno.stat(dir), Deno.errors.NotFound);
  },
);

Deno.test(
  "Pool.close() finishes queued work even when a worker dies meanwhile",
  async () => {
    const pool = await Pool.create({ workers: 1, qsize: 1 });
    await using _stop = closeNow(pool);
    const lost = rejection(pool.run(() => Deno.exit(4)));
    const queued = pool.run(double, 21);
    await withTimeout(pool.close(), 30_000, "close()");
    assert.ok((await lost) instanceof WorkerLostError);
    assert.equal(await queued, 42);
  },
);

Deno.test("Pool.create() rejects when a worker does not connect within startTimeout", async () => {
  // A worker script that runs but never connects back.
  const silent = "data:application/javascript," +
    encodeURIComponent("setInterval(() => {}, 1000);");
  const started = performance.now();
  await assert.rejects(
    Pool.create({ workers: 1, startTimeout: 300, workerUrl: silent }),
    (error: Error) => {
      assert.match(error.message, /did not connect to the pool within 300 ms/);
      return true;
    },
  );
  // Bounded: the pool gave up instead of waiting forever.
  assert.ok(performance.now() - started < 20_000);
});

Deno.test("Pool has no public underscore methods (nothing internal in its docs)", () => {
  const names = Object.getOwnPropertyNames(Pool.prototype);
  assert.deepEqual(names.filter((n) => n.startsWith("_")), []);
  assert.ok(names.includes("run") && names.includes("map"));
});

Deno.test("Pool: an argument or result over maxFrameBytes fails its task with a RangeError; the worker lives on", async () => {
  await using pool = await Pool.create({
    workers: 1,
    maxFrameBytes: 1 << 20,
    retries: 2,
  });
  const exits: unknown[] = [];
  pool.addEventListener("workerexit", (e) => exits.push(e.detail));
  const [pid] = pool.stats().workers.map((w) => w.pid);
  await assert.rejects(
    pool.run((b: Uint8Array) => b.length, new Uint8Array(2 << 20)),
    (e: unknown) =>
      e instanceof RangeError &&
      /over the frame limit of 1048576/.test(e.message),
  );
  await assert.rejects(
    pool.run(() => new Uint8Array(2 << 20)),
    (e: unknown) =>
      e instanceof RangeError &&
      /over the frame limit of 1048576/.test(e.message),
  );
  await assert.rejects(
    pool.run(() => "y".repeat(2 << 20)),
    RangeError,
  );
  // Under the limit still works, on the same worker process.
  assert.equal(
    await pool.run((b: Uint8Array) => b.length, new Uint8Array(1000)),
    1000,
  );
  assert.equal(await pool.run(() => Deno.pid), pid);
  assert.deepEqual(exits, []);
  assert.equal(pool.stats().lost, 0);
});

Deno.test("Pool.run() in a burst: calls share frames, each settles, fails, times out or aborts on its own", async () => {
  await using pool = await Pool.create({ workers: 2, qsize: 64 });
  const controller = new AbortController();
  const reason = new Error("aborted on purpose");
  const burst: Promise<unknown>[] = [];
  for (let i = 0; i < 300; i++) {
    if (i === 7) {
      burst.push(pool.run((x: number) => {
        if (x === 7) throw new RangeError("seven");
        return x;
      }, i));
    } else if (i === 11) {
      burst.push(pool.apply(forever, [], { timeout: 1 }));
    } else if (i === 13) {
      burst.push(
        pool.apply((x: number) => x, [i], { signal: controller.signal }),
      );
    } else {
      burst.push(pool.run((x: number) => x * 3, i));
    }
  }
  controller.abort(reason);
  const settled = await Promise.allSettled(burst);
  for (let i = 0; i < 300; i++) {
    const s = settled[i]!;
    if (i === 7) {
      assert.equal(s.status, "rejected");
      assert.ok((s as PromiseRejectedResult).reason instanceof RangeError);
    } else if (i === 11) {
      assert.equal((s as PromiseRejectedResult).reason.name, "TimeoutError");
    } else if (i === 13) {
      assert.equal((s as PromiseRejectedResult).reason, reason);
    } else {
      assert.deepEqual(s, { status: "fulfilled", value: i * 3 }, `task ${i}`);
    }
  }
  // The pool goes on (the timed-out task's worker is replaced).
  assert.equal(await pool.run((x: number) => x + 1, 1), 2);
});

Deno.test("Pool.run() in a burst: frames that would pass maxFrameBytes together go one task at a time", async () => {
  await using pool = await Pool.create({
    workers: 1,
    qsize: 32,
    maxFrameBytes: 1 << 20,
  });
  // 20 arguments and 20 results of 200 KiB: 4 MiB in one frame, over the
  // limit; each on its own is under it.
  const tasks = Array.from(
    { length: 20 },
    (_, i) =>
      pool.run(
        (b: Uint8Array) => new Uint8Array(b.length).fill(b[0]! + 1),
        new Uint8Array(200 << 10).fill(i),
      ),
  );
  const results = await Promise.all(tasks);
  results.forEach((r, i) => {
    assert.equal(r.length, 200 << 10);
    assert.equal(r[r.length - 1], i + 1);
  });
  assert.equal(pool.stats().lost, 0);
});

Deno.test("Pool.close() rejects a misspelt option and leaves the pool open", async () => {
  await using pool = new Pool({ workers: 1, lazy: true });
  const error = await rejection(pool.close({ wiat: false } as never));
  assert.match(error.message, /did you mean 'wait'/);
  assert.equal(await pool.run(() => 7), 7);
});
