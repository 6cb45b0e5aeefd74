/**
 * The keep-alive switch without a pool: a fake idle test and a log of the
 * ref/unref calls.
 *
 * @module
 */
import assert from "node:assert/strict";
import { KeepAlive } from "../src/pool_keep_alive.ts";

function switchOver(idle: { now: boolean }) {
  const refs: boolean[] = [];
  const keepAlive = new KeepAlive({
    setRef: (on) => refs.push(on),
    idle: () => idle.now,
  });
  return { keepAlive, refs };
}

Deno.test("KeepAlive lets go of the program once the pool is idle, and holds it again for new work", () => {
  const idle = { now: true };
  const { keepAlive, refs } = switchOver(idle);
  keepAlive.hold();
  assert.deepEqual(refs, [], "a new pool holds the program already");
  keepAlive.check();
  keepAlive.check();
  assert.deepEqual(refs, [false], "unref'd once");
  keepAlive.hold();
  keepAlive.hold();
  assert.deepEqual(refs, [false, true], "ref'd once");
});

Deno.test("KeepAlive holds the program while the pool is not idle", () => {
  const idle = { now: false };
  const { keepAlive, refs } = switchOver(idle);
  keepAlive.check();
  assert.deepEqual(refs, []);
  idle.now = true;
  keepAlive.check();
  assert.deepEqual(refs, [false]);
});

Deno.test("KeepAlive holds the program while a started map is open, and lets go when it ends", () => {
  const { keepAlive, refs } = switchOver({ now: true });
  keepAlive.mapStarted();
  keepAlive.mapStarted();
  assert.equal(keepAlive.maps, 2);
  keepAlive.check();
  keepAlive.mapEnded();
  assert.deepEqual(refs, [], "one map is still open");
  keepAlive.mapEnded();
  assert.equal(keepAlive.maps, 0);
  assert.deepEqual(refs, [false], "the last map's end lets go");
});

Deno.test("KeepAlive.during() holds the program while its work waits, and passes its outcome on", async () => {
  const { keepAlive, refs } = switchOver({ now: true });
  const gate = Promise.withResolvers<number>();
  const result = keepAlive.during(() => gate.promise);
  keepAlive.check();
  assert.deepEqual(refs, [], "held while waiting");
  gate.resolve(7);
  assert.equal(await result, 7);
  assert.deepEqual(refs, [false], "let go after it");
  keepAlive.hold();
  const failing = keepAlive.during(() => Promise.reject(new RangeError("no")));
  await assert.rejects(failing, RangeError);
  assert.deepEqual(refs, [false, true, false], "let go after a failure too");
});
