import assert from "node:assert/strict";
import { distex, Pool } from "../mod.ts";

const fixture = new URL("./fixtures/signal_task.ts", import.meta.url).href;

Deno.test("distex (typed export): reading distex.signal in the pool's own process throws an error that says where it works", () => {
  assert.throws(
    () => distex.signal,
    /distex\.signal exists only inside a task running on a worker/,
  );
});

Deno.test("distex (typed export): an inline task names the import and gets its own signal, which aborts on timeout", async () => {
  await using pool = new Pool(1);
  const timedOut = await pool.apply(
    () => {
      const signal = distex.signal;
      return new Promise((_, reject) =>
        signal.addEventListener("abort", () => reject(signal.reason))
      );
    },
    [],
    { timeout: 100 },
  ).then(() => "resolved", (error: Error) => error.name);
  assert.equal(timedOut, "TimeoutError");
  // The task saw its signal abort and stopped: the next one has a fresh signal.
  assert.equal(await pool.run(() => distex.signal.aborted), false);
});

Deno.test("distex (typed export): a module task that imports it reads the worker's signal", async () => {
  await using pool = new Pool(1);
  const controller = new AbortController();
  const waiting = pool.apply(
    { module: fixture, name: "waitForAbort" },
    [],
    { signal: controller.signal },
  ).catch((error: Error) => error.message);
  // The waiting task has started once a later task on the one worker answers.
  assert.equal(
    await pool.run({ module: fixture, name: "aborted" }),
    false,
  );
  controller.abort(new Error("enough"));
  assert.equal(await waiting, "enough");
});
