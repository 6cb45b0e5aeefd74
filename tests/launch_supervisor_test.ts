/**
 * The launch supervisor without processes: fake launchers whose launches the
 * test ends, and a fake clock for the start timeout, the backoff and the
 * waits of `lost()` and `stop()`.
 *
 * @module
 */
import assert from "node:assert/strict";
import { backoffMs } from "../src/_backoff.ts";
import type { Endpoint, LaunchExit } from "../src/launcher.ts";
import {
  LaunchSupervisor,
  LOST_EXIT_MS,
  STOP_GRACE_MS,
  STOP_KILL_MS,
} from "../src/launch_supervisor.ts";
import { FakeClock, FakeLauncher } from "./_fake_launch.ts";
import { flushMicrotasks, track, withTimeout } from "./_util.ts";

const ENDPOINT: Endpoint = {
  socketPath: "/nonexistent/pool.sock",
  secret: "secret",
  accept: () => {
    throw new Error("no worker connects in these tests");
  },
};

/** A supervisor over `launchers` whose hooks record what it said. */
function supervise(
  launchers: FakeLauncher[],
  { startTimeout = 30_000, retry = true } = {},
) {
  const clock = new FakeClock();
  const said = {
    running: true,
    failures: [] as Error[],
    lost: [] as [string, LaunchExit][],
    changes: 0,
  };
  const supervisor = new LaunchSupervisor(launchers, startTimeout, {
    running: () => said.running,
    failed: (error) => {
      said.failures.push(error as Error);
      return retry;
    },
    hostLost: (host, exit) => said.lost.push([host, exit]),
    changed: () => said.changes++,
  }, clock);
  /** Stops as the pool does: no restarts from here on. */
  const stop = () => {
    said.running = false;
    return supervisor.stop();
  };
  return { supervisor, clock, said, stop };
}

Deno.test("LaunchSupervisor.start() launches every group with fresh worker ids and expects just those", async () => {
  const a = new FakeLauncher();
  const b = new FakeLauncher();
  const host = new FakeLauncher({ host: "h", groupSize: 3 });
  const { supervisor, stop } = supervise([a, b, host]);
  supervisor.start(ENDPOINT);
  assert.deepEqual(
    [a, b, host].map((l) => l.launches.map((x) => x.ids)),
    [[[1]], [[2]], [[3, 4, 5]]],
  );
  assert.equal(supervisor.targetWorkers, 5);
  assert.equal(supervisor.totalWorkers, 5);
  for (const id of [1, 2, 3, 4, 5]) supervisor.claim(id);
  assert.throws(() => supervisor.claim(6), /unexpected worker id 6/);
  assert.throws(() => supervisor.claim(3), /unexpected worker id 3/);
  assert.equal(supervisor.hostOf(4), "h");
  assert.equal(supervisor.hostOf(1), "local");
  await stop();
});

/** A started supervisor of one launch of two workers, startTimeout 500 ms. */
function startTwoOn500() {
  const host = new FakeLauncher({ host: "h", groupSize: 2 });
  const started = supervise([host], { startTimeout: 500 });
  started.supervisor.start(ENDPOINT);
  return { ...started, launch: host.launches[0]! };
}

Deno.test("LaunchSupervisor kills a launch whose workers have not all connected after startTimeout, and reports the timeout", async () => {
  const { supervisor, clock, said, stop, launch } = startTwoOn500();
  supervisor.claim(launch.ids[0]!); // one of two connects
  clock.advance(499);
  assert.deepEqual(launch.kills, [], "killed before its start timeout");
  clock.advance(1);
  assert.deepEqual(launch.kills, ["SIGKILL"]);
  await flushMicrotasks();
  assert.equal(said.failures.length, 1);
  assert.match(said.failures[0]!.message, /after a 500 ms timeout/);
  await stop();
});

Deno.test("LaunchSupervisor clears the start timeout once every worker of a launch connected", async () => {
  const { supervisor, clock, said, stop, launch } = startTwoOn500();
  assert.deepEqual(clock.pending(), [500]);
  for (const id of launch.ids) supervisor.claim(id);
  assert.deepEqual(clock.pending(), []);
  clock.advance(10_000);
  assert.deepEqual(launch.kills, []);
  assert.deepEqual(said.failures, []);
  await stop();
});

Deno.test("LaunchSupervisor restarts a failing launch after backoffMs(1), (2), … (shared backoff), and from (1) again once it worked", async () => {
  const local = new FakeLauncher();
  const { supervisor, clock, said, stop } = supervise([local]);
  supervisor.start(ENDPOINT);
  const waits: number[] = [];
  for (let n = 1; n <= 7; n++) {
    const launch = await local.launched(n);
    launch.exit({ code: 1 }); // before its worker connected: a failure
    await flushMicrotasks();
    assert.equal(said.failures.length, n);
    const [wait] = clock.pending();
    assert.ok(wait !== undefined, `no restart scheduled after failure ${n}`);
    waits.push(wait);
    clock.advance(wait - 1);
    assert.equal(local.launches.length, n, "restarted before its backoff");
    clock.advance(1);
    assert.equal(local.launches.length, n + 1);
  }
  assert.deepEqual(waits, [1, 2, 3, 4, 5, 6, 7].map(backoffMs));
  assert.deepEqual(waits, [200, 400, 800, 1_600, 3_200, 5_000, 5_000]);

  // The 8th launch works: a worker connects and is ready, then it ends.
  const working = local.launches[7]!;
  const id = working.ids[0]!;
  supervisor.claim(id);
  supervisor.ready(id);
  working.exit({ code: 0 });
  await local.launched(9); // a local worker that worked is started at once
  assert.equal(said.failures.length, 7);
  local.launches[8]!.exit({ code: 1 });
  await flushMicrotasks();
  assert.deepEqual(clock.pending(), [backoffMs(1)]);
  await stop();
});

Deno.test("LaunchSupervisor gives up when the failed hook says so (the pool fails while it starts)", async () => {
  const local = new FakeLauncher();
  const { supervisor, clock, said, stop } = supervise([local], {
    retry: false,
  });
  supervisor.start(ENDPOINT);
  local.launches[0]!.exit({ code: 2 });
  await flushMicrotasks();
  assert.equal(said.failures.length, 1);
  assert.match(said.failures[0]!.message, /"code":2/);
  assert.deepEqual(clock.pending(), []);
  clock.advance(60_000);
  assert.equal(local.launches.length, 1);
  await stop();
});

Deno.test("LaunchSupervisor takes a launcher that throws as a failed start and tries again", async () => {
  const local = new FakeLauncher();
  local.throwNext = new Error("no such program");
  const { supervisor, clock, said, stop } = supervise([local]);
  supervisor.start(ENDPOINT);
  assert.equal(local.launches.length, 0);
  assert.deepEqual(said.failures.map((e) => e.message), ["no such program"]);
  clock.advance(backoffMs(1));
  assert.equal(local.launches.length, 1);
  await stop();
});

Deno.test("LaunchSupervisor: a host that went away is lost (totalWorkers shrinks) and back once a worker of it is ready", async () => {
  const local = new FakeLauncher();
  const host = new FakeLauncher({ host: "h", groupSize: 3 });
  const { supervisor, clock, said, stop } = supervise([local, host]);
  supervisor.start(ENDPOINT);
  const first = host.launches[0]!;
  for (const id of [1, ...first.ids]) supervisor.claim(id);
  supervisor.ready(2);
  assert.equal(supervisor.totalWorkers, 4);

  first.exit({ code: 255 });
  await flushMicrotasks();
  assert.deepEqual(said.lost, [["h", { code: 255 }]]);
  assert.equal(said.changes, 1);
  assert.equal(supervisor.totalWorkers, 1);
  assert.equal(supervisor.targetWorkers, 4);
  assert.deepEqual(clock.pending(), [backoffMs(1)]);

  clock.advance(backoffMs(1));
  const second = await host.launched(2);
  assert.deepEqual(second.ids, [5, 6, 7]);
  for (const id of second.ids) supervisor.claim(id);
  assert.equal(supervisor.totalWorkers, 1, "back before a worker is ready");
  supervisor.ready(6);
  assert.equal(said.changes, 2);
  assert.equal(supervisor.totalWorkers, 4);
  await stop();
});

/** A local worker, claimed, then told lost: its launch and lost()'s promise. */
function lostLocal() {
  const local = new FakeLauncher();
  const { supervisor, clock, stop } = supervise([local]);
  supervisor.start(ENDPOINT);
  const launch = local.launches[0]!;
  supervisor.claim(1);
  return { clock, stop, launch, end: supervisor.lost(1) };
}

Deno.test("LaunchSupervisor.lost() waits for a local process to exit and tells how it ended", async () => {
  const { clock, stop, launch, end } = lostLocal();
  const state = track(end);
  await flushMicrotasks();
  assert.equal(state.settled, false, "did not wait for the exit");
  launch.exit({ code: 3 });
  assert.deepEqual(await end, {
    code: 3,
    host: "local",
    stderr: ["stderr of 1"],
  });
  assert.deepEqual(launch.kills, []);
  assert.equal(clock.pending().includes(LOST_EXIT_MS), false);
  await stop();
});

Deno.test("LaunchSupervisor.lost() kills a process that has not exited after LOST_EXIT_MS", async () => {
  const { clock, stop, launch, end } = lostLocal();
  await flushMicrotasks();
  clock.advance(LOST_EXIT_MS - 1);
  await flushMicrotasks();
  assert.deepEqual(launch.kills, []);
  clock.advance(1);
  const { code, signal, host } = await end;
  assert.deepEqual(launch.kills, ["SIGKILL"]);
  assert.deepEqual({ code, signal, host }, {
    code: undefined,
    signal: undefined,
    host: "local",
  });
  await stop();
});

/**
 * Worker 1 of a local group is in service, then its process exits and the
 * group starts a replacement; the worker's loss is not told yet (the exit
 * status was seen before the connection's end).
 */
async function replacedBeforeLost() {
  const local = new FakeLauncher();
  const { supervisor, stop } = supervise([local]);
  supervisor.start(ENDPOINT);
  supervisor.claim(1);
  supervisor.ready(1);
  local.launches[0]!.exit({ code: 5 });
  const replacement = await local.launched(2);
  return { supervisor, stop, replacement };
}

Deno.test("LaunchSupervisor.lost() told after the worker's process exited and was replaced: the old launch's end, the replacement left alone", async () => {
  const { supervisor, stop, replacement } = await replacedBeforeLost();
  const end = await withTimeout(supervisor.lost(1), 10_000, "lost(1)");
  assert.deepEqual(end, { code: 5, host: "local", stderr: ["stderr of 1"] });
  assert.deepEqual(replacement.kills, []);
  await stop();
});

Deno.test("LaunchSupervisor.stopWorker() of a worker whose process already ended leaves its group's replacement alone", async () => {
  const { supervisor, stop, replacement } = await replacedBeforeLost();
  assert.equal(supervisor.stopWorker(1, true), true);
  assert.deepEqual(replacement.kills, []);
  assert.deepEqual(replacement.killedWorkers, []);
  await stop();
});

Deno.test("LaunchSupervisor.lost() of a respawning launch's worker expects it back under the same id (while running)", async () => {
  const host = new FakeLauncher({ host: "h", groupSize: 2, respawns: true });
  const { supervisor, said, stop } = supervise([host]);
  supervisor.start(ENDPOINT);
  supervisor.claim(1);
  supervisor.claim(2);
  const end = await supervisor.lost(1); // no wait: the launch lives on
  assert.equal(end.host, "h");
  supervisor.claim(1);
  said.running = false;
  await supervisor.lost(2);
  assert.throws(() => supervisor.claim(2), /unexpected worker id 2/);
  await stop();
});

Deno.test("LaunchSupervisor.stopWorker() kills a local worker's process; a respawning launch's worker is hung up on, killed where it runs when stuck", async () => {
  const local = new FakeLauncher();
  const host = new FakeLauncher({ host: "h", groupSize: 2, respawns: true });
  const { supervisor, stop } = supervise([local, host]);
  supervisor.start(ENDPOINT);
  for (const id of [1, 2, 3]) supervisor.claim(id);
  assert.equal(supervisor.stopWorker(1, false), false);
  assert.deepEqual(local.launches[0]!.kills, ["SIGKILL"]);
  const remote = host.launches[0]!;
  assert.equal(supervisor.stopWorker(2, false), true);
  assert.deepEqual(remote.killedWorkers, []);
  assert.equal(supervisor.stopWorker(3, true), true);
  assert.deepEqual(remote.killedWorkers, [3]);
  assert.deepEqual(remote.kills, []);
  await stop();
});

Deno.test("LaunchSupervisor.stop() closes every lifeline, kills what is left after STOP_KILL_MS and cancels pending restarts", async () => {
  const quick = new FakeLauncher();
  const stubborn = new FakeLauncher({ exitOnStop: false });
  const failing = new FakeLauncher();
  const { supervisor, clock, said } = supervise([quick, stubborn, failing]);
  supervisor.start(ENDPOINT);
  supervisor.claim(1);
  supervisor.claim(2);
  failing.launches[0]!.exit({ code: 1 });
  await flushMicrotasks();
  assert.deepEqual(clock.pending(), [backoffMs(1)]);

  said.running = false;
  const stopped = supervisor.stop();
  const state = track(stopped);
  await flushMicrotasks();
  assert.ok(quick.launches[0]!.stopped && stubborn.launches[0]!.stopped);
  assert.equal(quick.launches[0]!.ended, true);
  assert.equal(state.settled, false, "did not wait for the stubborn launch");
  assert.deepEqual(clock.pending(), [STOP_KILL_MS]);
  clock.advance(STOP_KILL_MS - 1);
  assert.deepEqual(stubborn.launches[0]!.kills, []);
  clock.advance(1);
  assert.deepEqual(stubborn.launches[0]!.kills, ["SIGKILL"]);
  await stopped;
  clock.advance(60_000);
  assert.equal(failing.launches.length, 1, "restarted after stop()");
});

Deno.test("LaunchSupervisor.stop(farewell) lets told local launches exit by themselves for up to STOP_GRACE_MS before it closes their lifelines", async () => {
  const polite = new FakeLauncher({ exitOnStop: false });
  const deaf = new FakeLauncher({ exitOnStop: true });
  const untold = new FakeLauncher({ exitOnStop: true });
  const remote = new FakeLauncher({ host: "h", groupSize: 2, respawns: true });
  const { supervisor, clock, said } = supervise([polite, deaf, untold, remote]);
  supervisor.start(ENDPOINT);
  const told: number[][] = [];
  said.running = false;
  const stopped = supervisor.stop((ids) => {
    told.push(ids);
    return ids[0] !== untold.launches[0]!.ids[0];
  });
  const state = track(stopped);
  await flushMicrotasks();
  // Told: the local launches, not the one that restarts its own workers.
  assert.deepEqual(told, [[1], [2], [3]]);
  // The untold local launch and the remote one are stopped at once; the
  // told ones are left to end by themselves.
  assert.equal(untold.launches[0]!.stopped, true);
  assert.equal(remote.launches[0]!.stopped, true);
  assert.equal(polite.launches[0]!.stopped, false);
  assert.equal(deaf.launches[0]!.stopped, false);
  polite.launches[0]!.exit({ code: 0 });
  await flushMicrotasks();
  assert.equal(polite.launches[0]!.ended, true);
  assert.deepEqual(polite.launches[0]!.kills, []);
  clock.advance(STOP_GRACE_MS - 1);
  await flushMicrotasks();
  assert.equal(deaf.launches[0]!.stopped, false);
  clock.advance(1);
  await flushMicrotasks();
  // Its grace is over: its lifeline closes (which ends it).
  assert.equal(deaf.launches[0]!.stopped, true);
  assert.equal(deaf.launches[0]!.ended, true);
  assert.deepEqual(deaf.launches[0]!.kills, []);
  await stopped;
  assert.equal(state.settled, true);
});

Deno.test("LaunchSupervisor.stop(farewell) kills a told launch that outlives its lifeline STOP_KILL_MS after stop() began", async () => {
  const stubborn = new FakeLauncher({ exitOnStop: false });
  const { supervisor, clock, said } = supervise([stubborn]);
  supervisor.start(ENDPOINT);
  said.running = false;
  const stopped = supervisor.stop(() => true);
  await flushMicrotasks();
  clock.advance(STOP_GRACE_MS);
  await flushMicrotasks();
  assert.equal(stubborn.launches[0]!.stopped, true);
  assert.deepEqual(stubborn.launches[0]!.kills, []);
  clock.advance(STOP_KILL_MS - STOP_GRACE_MS - 1);
  assert.deepEqual(stubborn.launches[0]!.kills, []);
  clock.advance(1);
  assert.deepEqual(stubborn.launches[0]!.kills, ["SIGKILL"]);
  await stopped;
});

Deno.test("LaunchSupervisor.setRef() refs launches and restart timers, also those made while off", async () => {
  const local = new FakeLauncher();
  const { supervisor, clock, stop } = supervise([local]);
  supervisor.start(ENDPOINT);
  const first = local.launches[0]!;
  supervisor.setRef(false);
  supervisor.setRef(false); // no change, no call
  supervisor.setRef(true);
  assert.deepEqual(first.refs, [false, true]);
  first.exit({ code: 1 });
  await flushMicrotasks();
  assert.deepEqual(clock.refs(), [true]);
  supervisor.setRef(false);
  assert.deepEqual(
    clock.refs(),
    [false],
    "the restart timer holds the program",
  );
  clock.advance(backoffMs(1));
  assert.deepEqual(local.launches[1]!.refs, [false]);
  await stop();
});

Deno.test("LaunchSupervisor.killAll() kills every launch", async () => {
  const launchers = [new FakeLauncher(), new FakeLauncher({ host: "h" })];
  const { supervisor, said, stop } = supervise(launchers);
  supervisor.start(ENDPOINT);
  said.running = false;
  supervisor.killAll();
  for (const l of launchers) {
    assert.deepEqual(l.launches[0]!.kills, ["SIGKILL"]);
  }
  await stop();
});
