/**
 * Task code as users write it: strict mode, output, start-up deadlines,
 * timeouts and what a pool does to the program's life (issue 13).
 *
 * @module
 */
import assert from "node:assert/strict";
import { Pool } from "../mod.ts";
import { rejection, withTimeout } from "./_util.ts";

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

/** Runs `code` (a module that may import `POOL`) in a fresh Deno; its output. */
async function runOwner(
  code: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const modUrl = new URL("../mod.ts", import.meta.url).href;
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "eval",
      "--config",
      new URL("../deno.json", import.meta.url).pathname,
      code.replaceAll("POOL", modUrl),
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return {
    code: out.code,
    stdout: decoder.decode(out.stdout),
    stderr: decoder.decode(out.stderr),
  };
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
