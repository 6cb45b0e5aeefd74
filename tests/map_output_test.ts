/**
 * The stream of a map's results (src/_map_output.ts) over a fake engine:
 * its fast iterator and its plain stream form must behave alike.
 *
 * @module
 */
import assert from "node:assert/strict";
import { MapOutput, type MapResults } from "../src/_map_output.ts";

interface FakeEngine {
  results: MapResults;
  /** Makes a list of results ready (the next deliver() hands it over). */
  push(values: unknown[]): void;
  /** Ends the map (after what was pushed). */
  end(): void;
  /** Fails the map. */
  fail(error: unknown): void;
  /** Reasons given to cancel(). */
  cancelled: unknown[];
  /** deliver() calls so far. */
  delivers(): number;
}

function engine(): FakeEngine {
  const ready: unknown[][] = [];
  let ended = false;
  let failure: { error: unknown } | undefined;
  let wake: PromiseWithResolvers<void> | undefined;
  let calls = 0;
  const cancelled: unknown[] = [];
  const poke = () => {
    wake?.resolve();
    wake = undefined;
  };
  return {
    results: {
      start() {},
      async deliver(give) {
        calls++;
        for (;;) {
          if (failure) throw failure.error;
          if (ready.length > 0) {
            for (const list of ready.splice(0)) give(list);
            return true;
          }
          if (ended) return false;
          wake ??= Promise.withResolvers();
          await wake.promise;
        }
      },
      cancel(reason) {
        cancelled.push(reason);
      },
    },
    push(values) {
      ready.push(values);
      poke();
    },
    end() {
      ended = true;
      poke();
    },
    fail(error) {
      failure = { error };
      poke();
    },
    cancelled,
    delivers: () => calls,
  };
}

Deno.test("MapOutput: for await yields every list's results in order and locks the stream meanwhile", async () => {
  const fake = engine();
  const output = new MapOutput<number>(fake.results);
  fake.push([1, 2, 3]);
  fake.push([4]);
  const seen: number[] = [];
  for await (const x of output.stream) {
    seen.push(x);
    assert.equal(output.stream.locked, true);
    assert.throws(() => output.stream.getReader(), TypeError);
    if (x === 4) {
      fake.push([5, 6]);
      fake.end();
    }
  }
  assert.deepEqual(seen, [1, 2, 3, 4, 5, 6]);
  assert.equal(output.stream.locked, false);
  // Closed, as a stream read to its end is.
  assert.deepEqual(await output.stream.getReader().read(), {
    done: true,
    value: undefined,
  });
});

Deno.test("MapOutput: results handed to the iterator count as held until yielded", async () => {
  const fake = engine();
  const output = new MapOutput<number>(fake.results);
  fake.push([1, 2, 3]);
  const it = output.stream[Symbol.asyncIterator]();
  assert.equal(output.inQueue(), 0);
  assert.deepEqual(await it.next(), { value: 1, done: false });
  assert.equal(output.inQueue(), 2);
  await it.next();
  await it.next();
  assert.equal(output.inQueue(), 0);
  // Nothing held: the next call asks the engine.
  assert.equal(fake.delivers(), 1);
  const next = it.next();
  fake.end();
  assert.deepEqual(await next, { value: undefined, done: true });
  assert.equal(fake.delivers(), 2);
});

Deno.test("MapOutput: breaking out of for await cancels the map", async () => {
  const fake = engine();
  const output = new MapOutput<number>(fake.results);
  fake.push([1, 2, 3]);
  for await (const x of output.stream) {
    if (x === 2) break;
  }
  assert.equal(fake.cancelled.length, 1);
  assert.equal(output.stream.locked, false);
  assert.equal(output.inQueue(), 0);
});

Deno.test("MapOutput: values({ preventCancel: true }) leaves what was not taken to the next reader", async () => {
  const fake = engine();
  const output = new MapOutput<number>(fake.results);
  fake.push([1, 2, 3]);
  fake.push([4]);
  for await (const x of output.stream.values({ preventCancel: true })) {
    if (x === 1) break;
  }
  assert.deepEqual(fake.cancelled, []);
  assert.equal(output.stream.locked, false);
  // Held results moved to the stream's own queue, and count there.
  assert.equal(output.inQueue(), 3);
  fake.push([5]);
  fake.end();
  assert.deepEqual(await Array.fromAsync(output.stream), [2, 3, 4, 5]);
});

Deno.test("MapOutput: after a plain reader took some, for await goes on from there", async () => {
  const fake = engine();
  const output = new MapOutput<number>(fake.results);
  fake.push([1, 2, 3]);
  const reader = output.stream.getReader();
  assert.deepEqual(await reader.read(), { value: 1, done: false });
  reader.releaseLock();
  assert.equal(output.inQueue(), 2);
  fake.end();
  assert.deepEqual(await Array.fromAsync(output.stream), [2, 3]);
});

Deno.test("MapOutput: a failed map errors the iteration after the results before it, and the stream", async () => {
  const fake = engine();
  const output = new MapOutput<number>(fake.results);
  const boom = new RangeError("boom");
  fake.push([1, 2]);
  const seen: number[] = [];
  await assert.rejects(
    (async () => {
      for await (const x of output.stream) {
        seen.push(x);
        if (x === 2) fake.fail(boom);
      }
    })(),
    (e) => e === boom,
  );
  assert.deepEqual(seen, [1, 2]);
  assert.equal(output.stream.locked, false);
  await assert.rejects(output.stream.getReader().read(), (e) => e === boom);
});

Deno.test("MapOutput: next() calls made at once resolve in order", async () => {
  const fake = engine();
  const output = new MapOutput<number>(fake.results);
  const it = output.stream[Symbol.asyncIterator]();
  const calls = [it.next(), it.next(), it.next(), it.next()];
  fake.push([1]);
  fake.push([2, 3]);
  fake.end();
  assert.deepEqual(await Promise.all(calls), [
    { value: 1, done: false },
    { value: 2, done: false },
    { value: 3, done: false },
    { value: undefined, done: true },
  ]);
});

Deno.test("MapOutput: pipeTo and getReader read it as a plain stream", async () => {
  const fake = engine();
  const output = new MapOutput<number>(fake.results);
  fake.push([1, 2]);
  fake.push([3]);
  fake.end();
  const got: number[] = [];
  await output.stream.pipeTo(
    new WritableStream({ write: (x) => void got.push(x) }),
  );
  assert.deepEqual(got, [1, 2, 3]);
});
