/**
 * Task code as users write it: strict mode, output, start-up deadlines,
 * timeouts and what a pool does to the program's life (issue 13).
 *
 * @module
 */
import assert from "node:assert/strict";
import { Pool } from "../mod.ts";
import { isGone, pollUntil, rejection, withTimeout } from "./_util.ts";

Deno.test("Pool.run() runs tasks as strict-mode code", async () => {
  await using pool = new Pool(1);
  assert.equal(
    await pool.run(function (this: unknown) {
      return typeof this;
    }),
    "undefined",
  );
  const error = await rejection(pool.run(() => {
    // @ts-ignore: an undeclared variable, on purpose
    undeclared = 5;
  }));
  assert.equal(error.name, "ReferenceError");
  assert.match(error.message, /undeclared/);
  // No global was left behind for later tasks on that worker.
  assert.equal(
    await pool.run(() =>
      typeof (globalThis as Record<string, unknown>).undeclared
    ),
    "undefined",
  );
});

Deno.test("Pool.create() rejects when the initializer never settles (initTimeout)", async () => {
  const started = performance.now();
  const error = await withTimeout(
    rejection(Pool.create({
      workers: 1,
      initializer: () => new Promise(() => {}),
      initTimeout: 200,
    })),
    60_000,
    "Pool.create() with a never-settling initializer",
  );
  assert.equal(error.name, "TimeoutError");
  assert.match(error.message, /initializer did not settle within 200 ms/);
  assert.match(error.message, /initTimeout/);
  assert.ok(performance.now() - started < 60_000);
});

Deno.test("Pool option 'initTimeout' is checked", () => {
  assert.throws(() => new Pool({ workers: 1, initTimeout: 0 }), RangeError);
  assert.throws(
    // @ts-expect-error: not a number
    () => new Pool({ workers: 1, initTimeout: "5" }),
    TypeError,
  );
});

Deno.test("Pool.apply(): a task queued behind a hard-timed-out sync task on the one worker succeeds", async () => {
  await using pool = await Pool.create({ workers: 1, killGrace: 200 });
  const stuck = pool.apply(
    () => {
      const end = Date.now() + 4_000;
      while (Date.now() < end) { /* a sync loop: only a kill stops it */ }
    },
    [],
    { timeout: 300 },
  );
  const innocent = pool.apply(
    () => new Promise((resolve) => setTimeout(() => resolve("done"), 50)),
    [],
    { timeout: 1_000 },
  );
  const error = await rejection(stuck);
  assert.equal(error.name, "TimeoutError");
  assert.equal(await innocent, "done");
});

Deno.test("Pool.apply(): timeout counts the task's own run time, not its wait in the queue", async () => {
  await using pool = await Pool.create({ workers: 1, qsize: 1 });
  const first = pool.run(
    () => new Promise((resolve) => setTimeout(() => resolve(1), 600)),
  );
  const second = pool.apply(() => 2, [], { timeout: 200 });
  assert.deepEqual(await Promise.all([first, second]), [1, 2]);
});

/**
 * Runs `code` (a module; `POOL` stands for this package's mod.ts) in a fresh
 * Deno and returns its output; kills it (by pid) if it has not exited after
 * `ms`, and says so in `timedOut`.
 */
async function runOwner(
  code: string,
  ms = 60_000,
): Promise<
  { code: number; stdout: string; stderr: string; timedOut: boolean }
> {
  const modUrl = new URL("../mod.ts", import.meta.url).href;
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "eval",
      "--config",
      new URL("../deno.json", import.meta.url).pathname,
      code.replaceAll("POOL", modUrl),
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      child.kill("SIGKILL");
    } catch { /* exited meanwhile */ }
  }, ms);
  try {
    const out = await child.output();
    const decoder = new TextDecoder();
    return {
      code: out.code,
      stdout: decoder.decode(out.stdout),
      stderr: decoder.decode(out.stderr),
      timedOut,
    };
  } finally {
    clearTimeout(timer);
  }
}

Deno.test("A task's stdout reaches the owner's stderr, prefixed with the worker id, never its stdout", async () => {
  const { code, stdout, stderr } = await runOwner(`
import { Pool } from "POOL";
const pool = new Pool(1);
await pool.run(() => { console.log("said-by-task"); });
await pool.close();
console.log("owner-output");
`);
  assert.equal(code, 0, stderr);
  assert.equal(stdout, "owner-output\n");
  assert.match(stderr, /^\[worker \d+\] said-by-task$/m);
});

Deno.test("Pool option stdout: 'capture' hands each line of a task's stdout to a 'stdout' event", async () => {
  const pool = new Pool({ workers: 1, stdout: "capture" });
  try {
    const seen = Promise.withResolvers<
      { workerId: number; host: string; line: string }
    >();
    pool.addEventListener("stdout", (e) => {
      const detail = e.detail;
      if (detail.line === "captured line") seen.resolve(detail);
    });
    await pool.run(() => console.log("captured line"));
    const detail = await withTimeout(seen.promise, 30_000, "the stdout event");
    assert.equal(detail.host, "local");
    assert.equal(typeof detail.workerId, "number");
  } finally {
    await pool.close();
  }
});

Deno.test("An idle pool that is never closed does not keep the program alive; its workers die with it", async () => {
  const { code, stdout, stderr, timedOut } = await runOwner(`
import { Pool } from "POOL";
new Pool(1); // the README's snippet, as written
const pool = new Pool(2);
console.log(JSON.stringify(await pool.runOnAll(() => Deno.pid)));
`);
  assert.ok(!timedOut, `the program did not exit on its own: ${stderr}`);
  assert.equal(code, 0, stderr);
  const pids = JSON.parse(stdout) as number[];
  assert.equal(pids.length, 2);
  for (const pid of pids) {
    assert.ok(
      await pollUntil(() => isGone(pid), 30_000),
      `worker ${pid} lives on`,
    );
  }
});

Deno.test("Pool.close() while a map is being read waits for the map, which keeps its workers to its end", async () => {
  const pool = new Pool(2);
  try {
    const items = Array.from({ length: 30 }, (_, i) => i);
    const reader = pool.map(
      (x: number) => new Promise<number>((r) => setTimeout(() => r(x * 2), 5)),
      items,
      { chunkSize: 1 },
    ).getReader();
    const got: number[] = [];
    for (let i = 0; i < 3; i++) got.push((await reader.read()).value!);
    const closing = pool.close();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      got.push(value);
    }
    assert.deepEqual(got, items.map((x) => x * 2));
    await closing;
    // New work is refused all the same.
    assert.equal((await rejection(pool.run(() => 1))).name, "PoolClosedError");
  } finally {
    await pool.close({ wait: false });
  }
});

Deno.test("Pool.map() returned out of an `await using` scope unread fails with a PoolClosedError that says why", async () => {
  async function squares(): Promise<ReadableStream<number>> {
    await using pool = new Pool(1);
    return pool.map((x: number) => x * x, [1, 2, 3]);
  }
  const stream = await squares();
  const error = await rejection(Array.fromAsync(stream));
  assert.equal(error.name, "PoolClosedError");
  assert.match(error.message, /closed before this map was first read/);
});

Deno.test("A task's import() and import.meta resolve against the calling module", async () => {
  await using pool = new Pool(1);
  // A literal specifier, relative to this test file (not to the library).
  assert.equal(
    await pool.run(async (x: number) => {
      const { double } = await import("./fixtures/task_helper.ts");
      return double(x);
    }, 21),
    42,
  );
  // A specifier only known at run time.
  assert.equal(
    await pool.run(async (path: string) => {
      const { double } = await import(path);
      return double(2);
    }, "./fixtures/task_helper.ts"),
    4,
  );
  // import.meta is the caller's.
  assert.equal(
    await pool.run(() => import.meta.url),
    import.meta.url,
  );
  assert.equal(
    await pool.run(() => import.meta.resolve("./fixtures/x.ts")),
    new URL("./fixtures/x.ts", import.meta.url).href,
  );
});

Deno.test("A module reference's relative path resolves against the calling module, or the pool option base", async () => {
  await using pool = new Pool(1);
  assert.equal(
    await pool.run(
      { module: "./fixtures/task_helper.ts", name: "double" },
      5,
    ),
    10,
  );
  await using based = new Pool({
    workers: 1,
    base: new URL("./fixtures/", import.meta.url),
  });
  assert.equal(
    await based.run({ module: "./task_helper.ts", name: "double" }, 6),
    12,
  );
  assert.equal(
    await based.run(async () => (await import("./task_helper.ts")).double(7)),
    14,
  );
});

Deno.test("Pool option env sets environment variables of local workers", async () => {
  await using pool = new Pool({
    workers: 1,
    env: { DISTEX_TEST_GREETING: "hello" },
  });
  assert.equal(
    await pool.run(() => Deno.env.get("DISTEX_TEST_GREETING")),
    "hello",
  );
  assert.throws(
    // @ts-expect-error: values must be strings
    () => new Pool({ workers: 1, env: { A: 1 } }),
    TypeError,
  );
});

Deno.test("distex.signal: a task reads its AbortSignal, which aborts when the task is cancelled or times out", async () => {
  await using pool = new Pool(1);
  const controller = new AbortController();
  const running = pool.apply(
    () => {
      const signal =
        (globalThis as unknown as { distex: { signal: AbortSignal } })
          .distex.signal;
      return new Promise((resolve) => {
        signal.addEventListener("abort", () => resolve("stopped"));
      });
    },
    [],
    { signal: controller.signal },
  );
  // The task is running once a later task on the same worker has run.
  await pool.run(() => 0);
  controller.abort(new Error("enough"));
  assert.equal((await rejection(running)).message, "enough");
  // The task saw the abort and stopped: the worker is free and answers.
  const saw = await pool.run(() => {
    const signal =
      (globalThis as unknown as { distex: { signal: AbortSignal } })
        .distex.signal;
    return signal.aborted;
  });
  assert.equal(saw, false);
  const timedOut = await rejection(pool.apply(
    () => {
      const signal =
        (globalThis as unknown as { distex: { signal: AbortSignal } })
          .distex.signal;
      return new Promise((_, reject) =>
        signal.addEventListener("abort", () => reject(signal.reason))
      );
    },
    [],
    { timeout: 100 },
  ));
  assert.equal(timedOut.name, "TimeoutError");
  assert.ok(await pollUntil(() => pool.stats().inFlight === 0, 30_000));
});

Deno.test("Pool option teardown runs on a worker when it is retired and on each worker when the pool closes", async () => {
  const dir = await Deno.makeTempDir();
  const teardown = () =>
    Deno.writeTextFile(
      `${Deno.env.get("DISTEX_TEARDOWN_DIR")}/${Deno.pid}`,
      "bye",
    );
  const tornDown = (pid: number) =>
    Deno.stat(`${dir}/${pid}`).then(() => true, () => false);
  try {
    const retiring = new Pool({
      workers: 1,
      maxTasksPerWorker: 1,
      env: { DISTEX_TEARDOWN_DIR: dir },
      teardown,
    });
    try {
      const first = await retiring.run(() => Deno.pid);
      // Retired after its one task: torn down before it is stopped.
      assert.ok(
        await pollUntil(() => tornDown(first), 30_000),
        "no teardown on the retired worker",
      );
    } finally {
      await retiring.close();
    }
    const pool = new Pool({
      workers: 2,
      env: { DISTEX_TEARDOWN_DIR: dir },
      teardown,
    });
    let pids: number[] = [];
    try {
      pids = await pool.runOnAll(() => Deno.pid);
    } finally {
      await pool.close();
    }
    assert.equal(pids.length, 2);
    for (const pid of pids) {
      assert.ok(await tornDown(pid), `not torn down: ${pid}`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli.ts map: what tasks print goes to stderr; stdout holds only the JSON lines", async () => {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL("../cli.ts", import.meta.url).pathname,
      "map",
      "-w",
      "1",
      "-e",
      "(x) => { console.log('noise from the task'); return x * 2; }",
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode("1\n2\n3\n"));
  await writer.close();
  const out = await child.output();
  const stdout = new TextDecoder().decode(out.stdout);
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, stderr);
  assert.equal(stdout, "2\n4\n6\n");
  assert.match(stderr, /noise from the task/);
});
