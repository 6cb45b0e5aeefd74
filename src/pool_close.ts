/**
 * How a pool closes, in order. A graceful close drains: new work is refused,
 * the work in flight (queued and running tasks, maps that have started)
 * finishes while workers that die are still replaced and their tasks
 * retried, then each worker runs the pool's `teardown`. A forced close (or
 * one that finds nothing started) fails the work in flight at once. Either
 * way the dispatcher stops, the fleet's processes exit and its socket goes.
 *
 * @module
 */
import type { Dispatcher } from "./dispatcher.ts";
import { PoolClosedError } from "./errors.ts";
import type { KeepAlive } from "./pool_keep_alive.ts";
import type { Lifecycle } from "./pool_lifecycle.ts";
import type { WorkerFleet } from "./worker_fleet.ts";

/** The parts of a pool that closing touches. */
export interface ClosingParts {
  life: Lifecycle;
  dispatcher: Dispatcher;
  fleet: WorkerFleet;
  keepAlive: KeepAlive;
}

/** Stops now: fails every task in flight with a {@link PoolClosedError}. */
export function stopWork({ life, dispatcher }: ClosingParts): void {
  life.stop();
  dispatcher.failAll(
    new PoolClosedError("The pool was closed before the task finished"),
  );
}

/** True while tasks or started maps are in flight. */
function busy({ dispatcher, keepAlive }: ClosingParts): boolean {
  return dispatcher.liveCount > 0 || keepAlive.maps > 0;
}

/**
 * Closes a pool: drains it first unless `immediate`, then stops the
 * dispatcher and the fleet. Holds the program until the workers have exited.
 *
 * @param parts The pool's parts.
 * @param immediate Fail the work in flight instead of waiting for it.
 * @returns When every worker process has exited and the socket is removed.
 */
async function closePool(
  parts: ClosingParts,
  immediate: boolean,
): Promise<void> {
  const { life, dispatcher, fleet } = parts;
  // Closing is work: it holds the program until the workers have exited.
  parts.keepAlive.hold();
  if (immediate) {
    stopWork(parts);
  } else {
    life.drain();
    // Tasks queued while the workers start need them up to finish.
    if (!life.wasReady && busy(parts)) await life.ready.catch(() => {});
    // Meanwhile the pool still replaces workers that die and retries
    // their tasks, or a queue left without workers would never drain.
    while (busy(parts) && life.phase === "draining") await life.changed();
    if (life.phase === "draining") await fleet.teardown();
    life.stop();
  }
  dispatcher.close();
  // A graceful close lets workers exit by themselves (unload handlers,
  // profiles); a forced one ends them at once.
  await fleet.close(!immediate);
  life.closed();
}

/**
 * A pool's `close()`: the first call starts closing (at once when `force`d
 * or nothing was started), later calls share it; a forced call while a
 * graceful close waits fails the work in flight.
 *
 * @param parts The pool's parts.
 * @returns `close(force)`, which resolves once the pool is closed.
 */
export function closer(parts: ClosingParts): (force: boolean) => Promise<void> {
  let closing: Promise<void> | undefined;
  return (force) => {
    if (closing) {
      if (force) stopWork(parts);
      return closing;
    }
    const immediate = force || parts.life.phase === "idle";
    return closing = closePool(parts, immediate);
  };
}
