/**
 * The pool's life cycle object: phases, the ready latch, the fatal error.
 *
 * @module
 */
import assert from "node:assert/strict";
import { PoolClosedError } from "../src/errors.ts";
import { Lifecycle } from "../src/pool_lifecycle.ts";
import { rejection, track } from "./_util.ts";

Deno.test("Lifecycle goes idle → starting → running → draining → stopping → closed", async () => {
  const life = new Lifecycle();
  assert.equal(life.phase, "idle");
  assert.ok(life.accepting && !life.running);
  assert.equal(life.start(), true);
  assert.equal(life.start(), false, "starts once");
  assert.ok(life.accepting && life.running);
  life.markReady();
  await life.ready;
  assert.equal(life.phase, "running");
  assert.equal(life.wasReady, true);
  life.drain();
  assert.equal(life.phase, "draining");
  assert.ok(
    !life.accepting && life.running,
    "drains: replaces, takes nothing new",
  );
  assert.throws(() => life.checkOpen(), PoolClosedError);
  life.stop();
  assert.ok(!life.accepting && !life.running);
  life.closed();
  assert.equal(life.phase, "closed");
});

Deno.test("Lifecycle: closing before ready rejects ready with PoolClosedError", async () => {
  const life = new Lifecycle();
  life.start();
  life.stop();
  const error = await rejection(life.ready);
  assert.ok(error instanceof PoolClosedError);
  life.markReady();
  assert.equal(life.wasReady, false, "no ready after stop");
});

Deno.test("Lifecycle: draining from starting still becomes ready (queued work needs workers)", async () => {
  const life = new Lifecycle();
  life.start();
  life.drain();
  assert.equal(life.running, true);
  life.markReady();
  await life.ready;
  assert.equal(life.phase, "draining");
});

Deno.test("Lifecycle.fail() rejects ready and refuses work with the failure, once", async () => {
  const life = new Lifecycle();
  life.start();
  const cause = new Error("no socket");
  assert.equal(life.fail(cause), true);
  assert.equal(life.fail(new Error("again")), false);
  assert.equal(await rejection(life.ready), cause);
  assert.throws(() => life.checkOpen(), (e) => e === cause);
  assert.equal(life.running, false, "a failed pool starts no workers");
  assert.equal(new Lifecycle().fail(cause), false, "an idle pool cannot fail");
});

Deno.test("Lifecycle.changed() resolves at the next notify()", async () => {
  const life = new Lifecycle();
  const changed = track(life.changed());
  await Promise.resolve();
  assert.equal(changed.settled, false);
  life.notify();
  await Promise.resolve();
  assert.equal(changed.settled, true);
});
