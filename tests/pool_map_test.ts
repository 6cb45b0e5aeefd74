/**
 * The pool's side of a map (`mapContext()`) and `transformPair()`, without
 * processes: fake parts (`_pool_parts_fake.ts`) log what a map asks.
 *
 * @module
 */
import assert from "node:assert/strict";
import { PoolClosedError } from "../src/errors.ts";
import type { FunctionSpec } from "../src/function_ref.ts";
import { DEFAULTS } from "../src/options.ts";
import { mapContext, transformPair } from "../src/pool_map.ts";
import { fakeParts } from "./_pool_parts_fake.ts";

const spec: FunctionSpec = { id: 5, source: "(x) => x", label: "(x) => x" };
/** submitTo()'s error callback where none is expected. */
const no = (error: unknown): never => {
  throw error;
};

Deno.test("mapContext() opens the pool at a map's first task and holds it until the map ends", async () => {
  const { parts, log } = fakeParts();
  const ctx = mapContext(parts, spec, [[1, 2]], {});
  assert.equal(parts.keepAlive.maps, 0, "a map not read holds nothing");
  assert.deepEqual(await ctx.submit([1], "call", {}), [1]);
  assert.deepEqual(await ctx.submit([[2, 3]], "items", {}), [[2, 3]]);
  assert.equal(parts.keepAlive.maps, 1, "counted once");
  assert.deepEqual(log, [
    "open",
    "open",
    "submit call [1]",
    "submit items [[2,3]]",
  ], "opened once: a started map holds the pool");
  ctx.ended!();
  ctx.ended!();
  assert.equal(parts.keepAlive.maps, 0, "uncounted once");
});

Deno.test("mapContext().submitTo() opens the pool like submit() and hands each result to the callbacks with its task's tag", () => {
  const { parts, log } = fakeParts();
  const ctx = mapContext(parts, spec, [[1, 2]], {});
  const late = mapContext(parts, spec, [[1, 2]], {});
  const got: unknown[] = [];
  const ok = (value: unknown, tag: unknown) => got.push([tag, value]);
  ctx.submitTo!([1], "call", {}, "a", ok, no);
  ctx.submitTo!([[2, 3]], "items", {}, "b", ok, no);
  assert.deepEqual(got, [["a", [1]], ["b", [[2, 3]]]]);
  assert.equal(parts.keepAlive.maps, 1, "counted once");
  assert.deepEqual(log, [
    "open",
    "open",
    "submitTo call [1]",
    "submitTo items [[2,3]]",
  ], "opened once: a started map holds the pool");
  parts.life.drain();
  log.length = 0;
  ctx.submitTo!([4], "call", {}, "c", ok, no);
  assert.deepEqual(log, ["submitTo call [4]"], "straight to the dispatcher");
  assert.throws(
    () => late.submitTo!([1], "call", {}, "d", ok, no),
    (error: unknown) =>
      error instanceof PoolClosedError &&
      /closed before this map was first read/.test(error.message),
  );
  ctx.ended!();
  assert.equal(parts.keepAlive.maps, 0, "uncounted once");
});

Deno.test("mapContext(): a started map's next task is refused once the pool failed, with the pool's failure", () => {
  const { parts, log } = fakeParts();
  const ctx = mapContext(parts, spec, [[1, 2]], {});
  const ok = () => {};
  ctx.submitTo!([1], "call", {}, "a", ok, no);
  ctx.submitTo!([2], "call", {}, "b", ok, no);
  const failure = new Error("the pool failed");
  assert.equal(parts.life.fail(failure), true);
  log.length = 0;
  assert.throws(() => ctx.submitTo!([3], "call", {}, "c", ok, no), failure);
  assert.throws(() => ctx.submit([4], "call", {}), failure);
  assert.deepEqual(log, [], "nothing reached the dispatcher");
  ctx.ended!();
});

Deno.test("mapContext().submitTo() reads Blobs among the arguments first, and does not look for them where the engine saw primitives only", async () => {
  const { parts } = fakeParts();
  // A dispatcher that does not look at the arguments either.
  let submitted = 0;
  Object.assign(parts.dispatcher, {
    submitTo(
      _spec: unknown,
      _args: unknown[],
      _kind: unknown,
      _options: unknown,
      tag: unknown,
      resolve: (value: unknown, tag: unknown) => void,
    ) {
      submitted++;
      resolve(undefined, tag);
    },
  });
  const ctx = mapContext(parts, spec, [[1, 2]], {});
  const got: unknown[] = [];
  const ok = (_value: unknown, tag: unknown) => got.push(tag);
  // Counts the reads of its elements.
  let reads = 0;
  const watched = (items: unknown[]) =>
    new Proxy(items, {
      get(target, key, receiver) {
        if (typeof key === "string" && /^\d+$/.test(key)) reads++;
        return Reflect.get(target, key, receiver);
      },
    });
  ctx.submitTo!(watched([1, 2, 3]), "items", {}, "flat", ok, no, true);
  assert.equal(reads, 0, "not looked at: the engine saw primitives only");
  assert.deepEqual(got, ["flat"]);
  ctx.submitTo!(watched([1, 2, 3]), "items", {}, "looked", ok, no);
  assert.ok(reads >= 3, "looked at for Blobs");
  assert.deepEqual(got, ["flat", "looked"]);
  ctx.submitTo!([new Blob(["x"])], "items", {}, "blob", ok, no);
  assert.deepEqual(got, ["flat", "looked"], "sent once its Blob is read");
  const deadline = Date.now() + 10_000;
  while (got.length < 3 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  assert.deepEqual(got, ["flat", "looked", "blob"]);
  assert.equal(submitted, 3);
  ctx.ended!();
});

Deno.test("mapContext(): a started map's tasks are taken while the pool drains; a map first read then fails saying why", async () => {
  const { parts, log } = fakeParts();
  const started = mapContext(parts, spec, [[1, 2]], {});
  const late = mapContext(parts, spec, [[1, 2]], {});
  await started.submit([1], "call", {});
  parts.life.drain();
  log.length = 0;
  assert.deepEqual(await started.submit([2], "call", {}), [2]);
  assert.deepEqual(log, ["submit call [2]"], "straight to the dispatcher");
  assert.throws(
    () => late.submit([1], "call", {}),
    (error: unknown) =>
      error instanceof PoolClosedError &&
      /closed before this map was first read/.test(error.message) &&
      error.cause instanceof PoolClosedError,
  );
  late.ended!();
  assert.equal(
    parts.keepAlive.maps,
    1,
    "a map that never started ends without uncounting",
  );
});

Deno.test("mapContext() lends the engine the pool's slots, this function's time per item and the retries", () => {
  const { parts } = fakeParts({ targetWorkers: 4 });
  const ctx = mapContext(parts, spec, [[1]], { ordered: false });
  assert.equal(ctx.slots(), 8, "slots for the target workers");
  assert.equal(ctx.itemMs(), 0.5, "measured for spec.id");
  assert.equal(ctx.retries, DEFAULTS.retries);
  assert.deepEqual(ctx.options, { ordered: false });
  assert.equal(
    mapContext(fakeParts({ retries: 3 }).parts, spec, [], {}).retries,
    3,
  );
});

Deno.test("transformPair() maps what is written through a one-item buffer, and rejects options that are not an object", async () => {
  const sources: ReadableStream<unknown>[] = [];
  const pair = transformPair((source) => {
    sources.push(source);
    return source.pipeThrough(
      new TransformStream({ transform: (x, c) => c.enqueue(`<${x}>`) }),
    );
  }, {});
  assert.equal(sources.length, 1);
  const written = ReadableStream.from(["a", "b"]).pipeTo(pair.writable);
  assert.deepEqual(await Array.fromAsync(pair.readable), ["<a>", "<b>"]);
  await written;
  for (const bad of [null, 5]) {
    assert.throws(
      () => transformPair(() => new ReadableStream(), bad as never),
      /Pool\.transform\(\) options must be an object, got (null|number)/,
    );
  }
});
