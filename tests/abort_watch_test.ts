/**
 * Cancelling tasks by signal, over plain records.
 *
 * @module
 */
import assert from "node:assert/strict";
import { AbortWatch } from "../src/abort_watch.ts";

interface Item {
  n: number;
  signal: AbortSignal | undefined;
}

function item(n: number): Item {
  return { n, signal: undefined };
}

function setup() {
  const cancelled: [number, unknown][] = [];
  /** The live tasks, as the dispatcher keeps them: settled ones leave. */
  const live = new Set<Item>();
  const watch = new AbortWatch<Item>(
    () => [...live],
    (t, reason) => {
      cancelled.push([t.n, reason]);
      settle(t);
    },
  );
  const settle = (t: Item) => {
    live.delete(t);
    watch.delete(t);
  };
  const add = (signal: AbortSignal, t: Item) => {
    live.add(t);
    watch.add(signal, t);
  };
  return { watch, cancelled, add, settle };
}

Deno.test("AbortWatch cancels every task still watched when their signal aborts, with its reason", () => {
  const { watch, cancelled, add, settle } = setup();
  const one = new AbortController();
  const other = new AbortController();
  const [a, b, c, d] = [item(1), item(2), item(3), item(4)];
  add(one.signal, a);
  add(one.signal, b);
  add(one.signal, c);
  add(other.signal, d);
  assert.equal(watch.size, 2, "one listener per signal");
  settle(b);
  one.abort("stop");
  assert.deepEqual(cancelled, [[1, "stop"], [3, "stop"]]);
  assert.equal(a.signal, undefined);
  assert.equal(d.signal, other.signal, "another signal's task stays");
  assert.equal(watch.size, 1);
  watch.delete(a); // settles after its cancel: nothing happens
  assert.equal(watch.size, 1);
  other.abort("too");
  assert.deepEqual(cancelled.at(-1), [4, "too"]);
  assert.equal(watch.size, 0);
});

Deno.test("AbortWatch removes a signal's listener with its last task", () => {
  const { watch, cancelled, add, settle } = setup();
  const controller = new AbortController();
  let listeners = 0;
  const signal = controller.signal;
  const addListener = signal.addEventListener.bind(signal);
  const removeListener = signal.removeEventListener.bind(signal);
  signal.addEventListener = (...args: Parameters<typeof addListener>) => {
    listeners++;
    addListener(...args);
  };
  signal.removeEventListener = (
    ...args: Parameters<typeof removeListener>
  ) => {
    listeners--;
    removeListener(...args);
  };
  const tasks = [item(1), item(2), item(3)];
  for (const t of tasks) add(signal, t);
  assert.equal(listeners, 1);
  settle(tasks[0]!);
  settle(tasks[1]!);
  assert.equal(listeners, 1);
  settle(tasks[2]!);
  assert.equal(listeners, 0);
  assert.equal(watch.size, 0);
  // A new task of the same signal adds it again.
  add(signal, tasks[0]!);
  assert.equal(listeners, 1);
  controller.abort();
  assert.deepEqual(cancelled.map(([n]) => n), [1]);
  assert.equal(listeners, 0);
});

Deno.test("AbortWatch.watches() is true while a signal has tasks watched, so it has not aborted", () => {
  const { watch, add, settle } = setup();
  const a = new AbortController();
  const b = new AbortController();
  assert.equal(watch.watches(a.signal), false);
  const [one, two, three] = [item(1), item(2), item(3)];
  add(a.signal, one);
  add(b.signal, two);
  add(a.signal, three);
  assert.equal(watch.watches(a.signal), true);
  assert.equal(watch.watches(b.signal), true, "not only the last one used");
  settle(one);
  assert.equal(watch.watches(a.signal), true);
  settle(three);
  assert.equal(watch.watches(a.signal), false, "its last task settled");
  b.abort(new Error("stop"));
  assert.equal(watch.watches(b.signal), false, "aborted");
  assert.equal(watch.size, 0);
});
