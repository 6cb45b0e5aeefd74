/**
 * The close sequence without processes: fake parts (`_pool_parts_fake.ts`)
 * log what closing asks of the dispatcher and the fleet, in order.
 *
 * @module
 */
import assert from "node:assert/strict";
import { closer } from "../src/pool_close.ts";
import { fakeParts } from "./_pool_parts_fake.ts";
import { flushMicrotasks, track } from "./_util.ts";

/** Fake parts of a pool that is up. */
function runningParts() {
  const fake = fakeParts();
  fake.parts.life.start();
  fake.parts.life.markReady();
  return fake;
}

Deno.test("closer() drains: waits for tasks and started maps, then tears down, stops and closes", async () => {
  const { parts, log, live } = runningParts();
  live.count = 1;
  parts.keepAlive.mapStarted();
  const closed = parts.keepAlive.during(() => closer(parts)(false));
  const state = track(closed);
  await flushMicrotasks();
  assert.equal(parts.life.phase, "draining");
  assert.deepEqual(log, [], "nothing stops while a task is in flight");
  live.count = 0;
  parts.life.notify();
  await flushMicrotasks();
  assert.ok(!state.settled, "a started map still holds the close");
  parts.keepAlive.mapEnded();
  parts.life.notify();
  await closed;
  assert.deepEqual(log, ["teardown", "dispatcher.close", "fleet.close"]);
  assert.equal(parts.life.phase, "closed");
});

Deno.test("closer() with force fails the work in flight at once, without teardown", async () => {
  const { parts, log, live } = runningParts();
  live.count = 2;
  await closer(parts)(true);
  assert.deepEqual(log, [
    "failAll PoolClosedError",
    "dispatcher.close",
    "fleet.close",
  ]);
  assert.equal(parts.life.phase, "closed");
});

Deno.test("closer(): a forced call while a graceful close waits fails the work; both calls share one close", async () => {
  const { parts, log, live } = runningParts();
  live.count = 1;
  const close = closer(parts);
  const graceful = close(false);
  await flushMicrotasks();
  assert.deepEqual(log, []);
  const forced = close(true);
  assert.equal(forced, graceful);
  await forced;
  assert.deepEqual(log, [
    "failAll PoolClosedError",
    "dispatcher.close",
    "fleet.close",
  ], "no teardown once forced");
  assert.equal(close(false), graceful, "later calls get the same close");
});

Deno.test("closer() of a pool that never started closes at once", async () => {
  const { parts, log } = fakeParts();
  await closer(parts)(false);
  assert.deepEqual(log, [
    "failAll PoolClosedError",
    "dispatcher.close",
    "fleet.close",
  ]);
  await assert.rejects(parts.life.ready, { name: "PoolClosedError" });
});

Deno.test("closer() holds the program until the pool is closed", async () => {
  const { parts, log } = runningParts();
  parts.keepAlive.check();
  assert.deepEqual(log, ["ref false"], "an idle pool lets go");
  await closer(parts)(false);
  assert.deepEqual(log, [
    "ref false",
    "ref true",
    "teardown",
    "dispatcher.close",
    "fleet.close",
  ]);
});
