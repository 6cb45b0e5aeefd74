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
