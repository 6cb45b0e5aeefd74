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
  const watch = new AbortWatch<Item>((t, reason) =>
    cancelled.push([t.n, reason])
  );
  return { watch, cancelled };
}

Deno.test("AbortWatch cancels every task still watched when their signal aborts, with its reason", () => {
  const { watch, cancelled } = setup();
  const one = new AbortController();
  const other = new AbortController();
  const [a, b, c, d] = [item(1), item(2), item(3), item(4)];
  watch.add(one.signal, a);
  watch.add(one.signal, b);
  watch.add(one.signal, c);
  watch.add(other.signal, d);
  assert.equal(watch.size, 2, "one listener per signal");
  watch.delete(b); // settled
  one.abort("stop");
  assert.deepEqual(cancelled, [[1, "stop"], [3, "stop"]]);
  assert.equal(a.signal, undefined);
  assert.equal(watch.size, 1);
  watch.delete(a); // settles after its cancel: nothing happens
  assert.equal(watch.size, 1);
});

Deno.test("AbortWatch removes a signal's listener with its last task", () => {
  const { watch, cancelled } = setup();
  const controller = new AbortController();
  let listeners = 0;
  const signal = controller.signal;
  const add = signal.addEventListener.bind(signal);
  const remove = signal.removeEventListener.bind(signal);
  signal.addEventListener = (...args: Parameters<typeof add>) => {
    listeners++;
    add(...args);
  };
  signal.removeEventListener = (...args: Parameters<typeof remove>) => {
    listeners--;
    remove(...args);
  };
  const tasks = [item(1), item(2), item(3)];
  for (const t of tasks) watch.add(signal, t);
  assert.equal(listeners, 1);
  watch.delete(tasks[0]!);
  watch.delete(tasks[1]!);
  assert.equal(listeners, 1);
  watch.delete(tasks[2]!);
  assert.equal(listeners, 0);
  assert.equal(watch.size, 0);
  controller.abort();
  assert.deepEqual(cancelled, []);
});
