/**
 * The worker fleet without processes: fake launchers whose workers connect
 * over in-memory channels (handed to the real worker server, handshaken,
 * then served by the real dispatcher), and a fake clock for the start,
 * init and teardown timeouts and the backoff.
 *
 * @module
 */
import assert from "node:assert/strict";
import { backoffMs } from "../src/_backoff.ts";
import { Dispatcher } from "../src/dispatcher.ts";
import type { PoolEventMap } from "../src/events.ts";
import type { FunctionSpec } from "../src/function_ref.ts";
import type { PoolOptions } from "../src/options.ts";
import { Lifecycle } from "../src/pool_lifecycle.ts";
import { Op } from "../src/protocol.ts";
import { TEARDOWN_MS, WorkerFleet } from "../src/worker_fleet.ts";
import { type CallHandler, FakeClock, FakeLauncher } from "./_fake_launch.ts";
import {
  exists,
  flushMicrotasks,
  rejection,
  track,
  withTimeout,
} from "./_util.ts";

const INIT: FunctionSpec = { id: 9001, source: "() => {}", label: "init" };
const TEARDOWN: FunctionSpec = { id: 9002, source: "() => {}", label: "bye" };
const TASK: FunctionSpec = { id: 9003, source: "() => 1", label: "task" };

type Detail<K extends keyof PoolEventMap> = PoolEventMap[K]["detail"];

/** The fleet's events, in order, and a way to wait for the nth of a type. */
class Events {
  readonly list: { type: keyof PoolEventMap; detail: unknown }[] = [];
  #wake = Promise.withResolvers<void>();

  push(type: keyof PoolEventMap, detail: unknown): void {
    this.list.push({ type, detail });
    this.#wake.resolve();
    this.#wake = Promise.withResolvers();
  }

  of<K extends keyof PoolEventMap>(type: K): Detail<K>[] {
    return this.list.filter((e) => e.type === type).map((e) =>
      e.detail as Detail<K>
    );
  }

  /** The `n`th `type` event (1-based), once it has come. */
  until<K extends keyof PoolEventMap>(type: K, n: number): Promise<Detail<K>> {
    return withTimeout(
      (async () => {
        while (this.of(type).length < n) await this.#wake.promise;
        return this.of(type)[n - 1]!;
      })(),
      20_000,
      `${type} event #${n}`,
    );
  }
}

interface FleetSetup {
  initializer?: boolean;
  teardown?: boolean;
  options?: PoolOptions;
}

/**
 * A fleet over `launchers` with a real lifecycle and dispatcher, wired as
 * the pool wires them; started.
 */
function startFleet(launchers: FakeLauncher[], setup: FleetSetup = {}) {
  const clock = new FakeClock();
  const life = new Lifecycle();
  const events = new Events();
  const dispatcher = new Dispatcher({
    qsize: 1,
    retries: 3,
    poisonThreshold: 3,
    killGrace: 100,
    maxTasksPerWorker: undefined,
    maxMemoryMB: undefined,
  }, {
    stopWorker: (w) => fleet.stopWorker(w),
    running: () => life.running,
    changed: () => life.notify(),
  });
  const fleet: WorkerFleet = new WorkerFleet({
    options: setup.options ?? {},
    workers: 0,
    specs: [],
    initSpec: setup.initializer ? INIT : undefined,
    teardownSpec: setup.teardown ? TEARDOWN : undefined,
    life,
    dispatcher,
    emit: (type, detail) => events.push(type, detail),
    fail: (error) => {
      if (!life.fail(error)) return;
      dispatcher.failAll(error);
      fleet.killAll();
    },
    ready: () => {},
    launchers,
    clock,
  });
  life.start();
  const started = fleet.start();
  /** Connects every worker of each group's first launch; waits for ready. */
  const up = async () => {
    const launches = await Promise.all(launchers.map((l) => l.launched(1)));
    for (const launch of launches) await launch.connectAll();
    await withTimeout(life.ready, 20_000, "ready");
    return launches;
  };
  /** Closes as the pool does (without waiting for tasks). */
  const close = async () => {
    await started;
    life.stop();
    dispatcher.failAll(new Error("closed"));
    dispatcher.close();
    await fleet.close();
    life.closed();
  };
  return { fleet, life, dispatcher, clock, events, up, close };
}

/** Calls of `fnId` that reached a worker, and a gate each of them waits on. */
function gated(launchers: FakeLauncher[], fnId: number) {
  const calls: number[] = [];
  const reached = Promise.withResolvers<number>();
  const gate = Promise.withResolvers<unknown>();
  const onCall: CallHandler = (call) => {
    if (call.fnId !== fnId) return undefined;
    calls.push(call.workerId);
    reached.resolve(call.workerId);
    return gate.promise;
  };
  for (const l of launchers) l.onCall = onCall;
  return { calls, reached: reached.promise, open: gate.resolve };
}

Deno.test("WorkerFleet starts every group, runs the initializer on each worker, and is ready once all are in service", async () => {
  const a = new FakeLauncher();
  const b = new FakeLauncher();
  const host = new FakeLauncher({ host: "h", groupSize: 2, respawns: true });
  const inits: number[] = [];
  for (const l of [a, b, host]) {
    l.onCall = (call) => {
      if (call.op === Op.Init && call.fnId === INIT.id) {
        inits.push(call.workerId);
      }
    };
  }
  const { fleet, life, events, close } = startFleet([a, b, host], {
    initializer: true,
  });
  try {
    await (await a.launched(1)).connect(1);
    await (await b.launched(1)).connect(2);
    const remote = await host.launched(1);
    await remote.connect(3);
    await events.until("workerstart", 3);
    assert.equal(life.wasReady, false, "ready with a worker missing");
    await remote.connect(4);
    await withTimeout(life.ready, 20_000, "ready");
    assert.deepEqual(inits.sort(), [1, 2, 3, 4]);
    assert.deepEqual(
      events.of("workerstart").map((d) => [d.workerId, d.host, d.replacement]),
      [[1, "local", false], [2, "local", false], [3, "h", false], [
        4,
        "h",
        false,
      ]],
    );
    assert.deepEqual(events.of("workerreplace"), []);
    assert.equal(fleet.totalWorkers, 4);
    const workers = await fleet.allInService();
    assert.deepEqual(workers.map((w) => w.host).sort(), [
      "h",
      "h",
      "local",
      "local",
    ]);
  } finally {
    await close();
  }
});

Deno.test("WorkerFleet replaces a worker lost after ready: its task is retried elsewhere, workerexit says how it ended", async () => {
  const a = new FakeLauncher();
  const b = new FakeLauncher();
  const { dispatcher, events, up, close } = startFleet([a, b]);
  try {
    const [first, second] = await up();
    // The task's first worker never answers; the second answers "again".
    const seen: number[] = [];
    const reached = Promise.withResolvers<void>();
    for (const l of [a, b]) {
      l.onCall = (call) => {
        seen.push(call.workerId);
        reached.resolve();
        return seen.length === 1 ? new Promise(() => {}) : "again";
      };
    }
    const result = dispatcher.submit(TASK, [], "call");
    result.catch(() => {}); // awaited below, unless an assertion fails first
    await withTimeout(reached.promise, 20_000, "the task reaching a worker");
    const lostId = seen[0]!;
    const lostLaunch = lostId === 1 ? first! : second!;
    lostLaunch.exit({ code: 7 });
    const exit = await events.until("workerexit", 1);
    assert.deepEqual(exit, {
      workerId: lostId,
      host: "local",
      code: 7,
      signal: undefined,
      stderr: [`stderr of ${lostId}`],
      reason: exit.reason,
    });
    assert.equal(
      await withTimeout(result, 20_000, "the retried task"),
      "again",
    );
    assert.deepEqual(seen, [lostId, 3 - lostId]);

    const launcher = lostId === 1 ? a : b;
    const replacement = await launcher.launched(2);
    assert.deepEqual(replacement.ids, [3]);
    await replacement.connect(3);
    const started = await events.until("workerstart", 3);
    assert.deepEqual(
      [started.workerId, started.replacement],
      [3, true],
    );
    assert.deepEqual(events.of("workerreplace"), [started]);
  } finally {
    await close();
  }
});

Deno.test("WorkerFleet fails the pool when a launch fails while it starts (no retry)", async () => {
  const a = new FakeLauncher();
  const { life, clock, close } = startFleet([a]);
  try {
    (await a.launched(1)).exit({ code: 1 });
    const error = await rejection(withTimeout(life.ready, 20_000, "ready"));
    assert.match(error.message, /fake launch of 1 ended \(\{"code":1\}\)/);
    assert.equal(life.phase, "failed");
    assert.deepEqual(clock.pending(), []);
    clock.advance(60_000);
    assert.equal(a.launches.length, 1);
  } finally {
    await close();
  }
});

Deno.test("WorkerFleet fails the pool when its workers do not connect within startTimeout", async () => {
  const host = new FakeLauncher({ host: "h", groupSize: 2 });
  const { life, clock, close } = startFleet([host], {
    options: { startTimeout: 5_000 },
  });
  try {
    const launch = await host.launched(1);
    await launch.connect(1);
    clock.advance(4_999);
    assert.equal(track(life.ready).settled, false);
    clock.advance(1);
    const error = await rejection(withTimeout(life.ready, 20_000, "ready"));
    assert.match(error.message, /after a 5000 ms timeout/);
    assert.deepEqual(launch.kills, ["SIGKILL"]);
  } finally {
    await close();
  }
});

Deno.test("WorkerFleet after ready: failed restarts are error events, retried with backoff until a worker comes back", async () => {
  const a = new FakeLauncher();
  const { life, clock, events, up, close } = startFleet([a]);
  try {
    (await up())[0]!.exit({ code: 9 });
    await events.until("workerexit", 1);
    // It worked: started again at once; this one fails to start.
    (await a.launched(2)).exit({ code: 1 });
    const error = await events.until("error", 1) as Error;
    assert.match(error.message, /fake launch of 2 ended/);
    assert.equal(life.phase, "running");
    assert.deepEqual(clock.pending(), [backoffMs(1)]);
    clock.advance(backoffMs(1) - 1);
    assert.equal(a.launches.length, 2);
    clock.advance(1);
    (await a.launched(3)).exit({ code: 1 });
    await events.until("error", 2);
    assert.deepEqual(clock.pending(), [backoffMs(2)]);
    clock.advance(backoffMs(2));
    await (await a.launched(4)).connect(4);
    const back = await events.until("workerstart", 2);
    assert.deepEqual([back.workerId, back.replacement], [4, true]);
  } finally {
    await close();
  }
});

Deno.test("WorkerFleet: a lost host shrinks totalWorkers and allInService(); it grows back once the host is relaunched", async () => {
  const local = new FakeLauncher();
  const host = new FakeLauncher({ host: "h", groupSize: 2 });
  const { fleet, clock, events, up, close } = startFleet([local, host]);
  try {
    const [, remote] = await up();
    assert.equal(fleet.totalWorkers, 3);

    remote!.exit({ code: 255 });
    const lost = await events.until("hostlost", 1);
    assert.deepEqual(lost, { host: "h", exit: { code: 255 } });
    await events.until("workerexit", 2);
    assert.equal(fleet.totalWorkers, 1);
    assert.equal(fleet.targetWorkers, 3);
    const left = await withTimeout(fleet.allInService(), 20_000, "in service");
    assert.deepEqual(left.map((w) => w.id), [1]);

    clock.advance(backoffMs(1));
    const again = await host.launched(2);
    assert.deepEqual(again.ids, [4, 5]);
    await again.connect(4);
    await events.until("workerstart", 4);
    assert.equal(fleet.totalWorkers, 3);
    const all = fleet.allInService();
    const state = track(all);
    await flushMicrotasks();
    assert.equal(state.settled, false, "all in service with worker 5 missing");
    await again.connect(5);
    const ids = (await withTimeout(all, 20_000, "allInService()")).map((w) =>
      w.id
    );
    assert.deepEqual(ids.sort(), [1, 4, 5]);
  } finally {
    await close();
  }
});

Deno.test("WorkerFleet.stopWorker() of a retired worker runs its teardown first, then ends its process; a new one starts", async () => {
  const a = new FakeLauncher();
  const teardown = gated([a], TEARDOWN.id);
  const { fleet, dispatcher, events, up, close } = startFleet([a], {
    teardown: true,
  });
  try {
    const launch = (await up())[0]!;
    const [w] = await fleet.allInService();
    dispatcher.retire(w!, "maxTasksPerWorker (1)");
    assert.equal(await withTimeout(teardown.reached, 20_000, "teardown"), 1);
    assert.deepEqual(launch.kills, [], "stopped before its teardown ended");
    teardown.open(undefined);
    const exit = await events.until("workerexit", 1);
    assert.deepEqual(launch.kills, ["SIGKILL"]);
    assert.equal(exit.reason, "retired: maxTasksPerWorker (1)");
    assert.deepEqual(teardown.calls, [1], "teardown ran more than once");
    await (await a.launched(2)).connect(2);
    await events.until("workerreplace", 1);
  } finally {
    await close();
  }
});

Deno.test("WorkerFleet gives a teardown that does not settle TEARDOWN_MS, then stops the worker", async () => {
  const a = new FakeLauncher();
  const teardown = gated([a], TEARDOWN.id);
  const { fleet, clock, events, up, close } = startFleet([a], {
    teardown: true,
  });
  try {
    const launch = (await up())[0]!;
    const [w] = await fleet.allInService();
    fleet.stopWorker(w!);
    await withTimeout(teardown.reached, 20_000, "teardown");
    clock.advance(TEARDOWN_MS - 1);
    await flushMicrotasks();
    assert.deepEqual(launch.kills, []);
    clock.advance(1);
    await events.until("workerexit", 1);
    assert.deepEqual(launch.kills, ["SIGKILL"]);
  } finally {
    await close();
  }
});

Deno.test("WorkerFleet fails the pool when the initializer does not settle within initTimeout", async () => {
  const a = new FakeLauncher();
  const init = gated([a], INIT.id);
  const { life, clock, close } = startFleet([a], {
    initializer: true,
    options: { initTimeout: 3_000 },
  });
  try {
    await (await a.launched(1)).connect(1);
    await withTimeout(init.reached, 20_000, "the initializer call");
    clock.advance(2_999);
    assert.equal(track(life.ready).settled, false);
    clock.advance(1);
    const error = await rejection(withTimeout(life.ready, 20_000, "ready"));
    assert.equal(error.name, "TimeoutError");
    assert.match(error.message, /within 3000 ms on worker 1 .*initTimeout/);
  } finally {
    await close();
  }
});

Deno.test("WorkerFleet: a respawning launch's worker is hung up on to stop it (killed where it runs when stuck), and comes back under its id", async () => {
  const host = new FakeLauncher({ host: "h", groupSize: 2, respawns: true });
  const { fleet, events, up, close } = startFleet([host]);
  try {
    const launch = (await up())[0]!;
    const one = launch.workers.get(1);
    const w1 = (await fleet.allInService()).find((w) => w.id === 1)!;
    fleet.stopWorker(w1);
    await withTimeout(one!.ended, 20_000, "worker 1's connection to end");
    const exit = await events.until("workerexit", 1);
    assert.equal(exit.workerId, 1);
    assert.deepEqual(launch.kills, []);
    await launch.connect(1); // its host's supervisor started it again
    const back = await events.until("workerstart", 3);
    assert.deepEqual([back.workerId, back.replacement], [1, true]);

    const w2 = (await fleet.allInService()).find((w) => w.id === 2)!;
    w2.hardKilled = true; // stuck in sync code
    fleet.stopWorker(w2);
    assert.deepEqual(launch.killedWorkers, [2]);
  } finally {
    await close();
  }
});

Deno.test("WorkerFleet.setRef() and close(): reaches the launches; close() stops them and removes the socket", async () => {
  const a = new FakeLauncher();
  const { fleet, up, close } = startFleet([a]);
  let closed = false;
  try {
    const launch = (await up())[0]!;
    fleet.setRef(false);
    fleet.setRef(true); // before awaiting: unref'd, nothing holds this test
    assert.deepEqual(launch.refs, [false, true]);
    const socket = launch.endpoint.socketPath;
    assert.equal(await exists(socket), true);
    await close();
    closed = true;
    assert.equal(launch.stopped, true);
    assert.equal(launch.ended, true);
    assert.equal(await exists(socket.slice(0, socket.lastIndexOf("/"))), false);
  } finally {
    if (!closed) await close();
  }
});
