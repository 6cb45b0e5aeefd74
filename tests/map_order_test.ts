/**
 * The order a map hands its finished tasks over in (src/_map_order.ts),
 * without a pool.
 *
 * @module
 */
import assert from "node:assert/strict";
import { DeliveryOrder, type Entry } from "../src/_map_order.ts";

function entry(index: number): Entry {
  return {
    index,
    count: 1,
    bytes: 0,
    done: false,
    values: undefined,
    error: undefined,
    failed: false,
    units: [index],
    call: true,
  };
}

function finish(order: DeliveryOrder, e: Entry, failed = false): void {
  e.done = true;
  e.failed = failed;
  if (!failed) order.finished(e);
}

Deno.test("DeliveryOrder in input order: a finished task waits for those before it", () => {
  const order = new DeliveryOrder(true);
  const [a, b, c] = [entry(0), entry(1), entry(2)];
  for (const e of [a, b, c]) order.submitted(e);
  finish(order, c);
  finish(order, b);
  assert.equal(order.take(), undefined, "b and c overtook a");
  finish(order, a);
  const seen: number[] = [];
  for (let e = order.take(); e; e = order.take()) seen.push(e.index);
  assert.deepEqual(seen, [0, 1, 2]);
});

Deno.test("DeliveryOrder in input order: a failed task comes up in its turn", () => {
  const order = new DeliveryOrder(true);
  const [a, b] = [entry(0), entry(1)];
  order.submitted(a);
  order.submitted(b);
  finish(order, b, true);
  assert.equal(order.take(), undefined);
  finish(order, a);
  assert.equal(order.take(), a);
  assert.equal(order.take(), b);
  assert.equal(b.failed, true);
  assert.equal(order.take(), undefined);
});

Deno.test("DeliveryOrder as finished: tasks come up in the order they finish", () => {
  const order = new DeliveryOrder(false);
  const [a, b, c] = [entry(0), entry(1), entry(2)];
  for (const e of [a, b, c]) order.submitted(e);
  assert.equal(order.take(), undefined);
  finish(order, c);
  finish(order, a);
  assert.equal(order.take(), c);
  assert.equal(order.take(), a);
  assert.equal(order.take(), undefined);
  finish(order, b);
  assert.equal(order.take(), b);
});

Deno.test("DeliveryOrder stays in order over many tasks (its lists are compacted)", () => {
  for (const ordered of [true, false]) {
    const order = new DeliveryOrder(ordered);
    const inFlight: Entry[] = [];
    let next = 0;
    let delivered = 0;
    for (let round = 0; round < 5000; round++) {
      // Three submitted, two finished (the oldest first), then delivered.
      for (let k = 0; k < 3; k++) {
        const e = entry(next++);
        order.submitted(e);
        inFlight.push(e);
      }
      for (let k = 0; k < 2; k++) finish(order, inFlight.shift()!);
      for (let e = order.take(); e; e = order.take()) {
        assert.equal(e.index, delivered++);
      }
    }
    assert.equal(delivered, 10_000);
  }
});
