/**
 * Task code as users write it: strict mode, output, start-up deadlines,
 * timeouts and what a pool does to the program's life (issue 13).
 *
 * @module
 */
import assert from "node:assert/strict";
import { Pool } from "../mod.ts";
import { rejection } from "./_util.ts";

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
