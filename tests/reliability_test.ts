/**
 * Reliability of a `Pool` over local workers: retries under a storm of
 * SIGKILLs, poison tasks, hard timeouts, recycling by task count and by
 * memory, the permission sandbox, close semantics, events and stats().
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  Pool,
  PoolClosedError,
  type WorkerExit,
  WorkerLostError,
} from "../mod.ts";
import { LeakCheck } from "./_leaks.ts";
import {
  exists,
  fileGate,
  isGone,
  nextEvent,
  pollUntil,
  rejection,
  tempDir,
  waitForFile,
  withTimeout,
} from "./_util.ts";

const leaks = new LeakCheck();

/** `f(x) = x * 2`. */
const double = (x: number): number => x * 2;

/** Workers that are connected and ready. */
function readyPids(pool: Pool): number[] {
  return pool.stats().workers.filter((w) => w.ready).map((w) => w.pid);
}

// ---- retries ---------------------------------------------------------------

Deno.test(
  "Pool.map() with retries delivers every result exactly once, in order, while a worker is SIGKILLed every 250 items",
  async () => {
    const tasks = 10_000;
    const size = 4;
    const KILL_EVERY = 250;
    await using pool = await leaks.open({
      workers: size,
      retries: 100,
      poisonThreshold: 100,
    });
    const killed = new Set<number>();
    const killTimes: number[] = [];
    const startTimes: number[] = [];
    pool.addEventListener("workerstart", () => {
      startTimes.push(performance.now());
    });
    // SIGKILLs one worker: a busy one if any (its tasks must be resent),
    // and only while two are up, so the map makes progress even where
    // replacements start slowly (waits for that, bounded).
    async function killOne(): Promise<void> {
      for (;;) {
        let victim: { pid: number } | undefined;
        const up = await pollUntil(() => {
          const live = pool.stats().workers.filter((w) =>
            w.ready && w.pid && !killed.has(w.pid)
          );
          if (live.length < 2) return false;
          const busy = live.filter((w) => w.inFlight > 0);
          const pick = busy.length ? busy : live;
          victim = pick[Math.floor(Math.random() * pick.length)]!;
          return true;
        }, 30_000);
        if (!up || !victim) throw new Error("fewer than 2 workers for 30 s");
        killed.add(victim.pid);
        try {
          Deno.kill(victim.pid, "SIGKILL");
        } catch (error) {
          if (error instanceof Deno.errors.NotFound) continue; // just exited
          throw error;
        }
        killTimes.push(performance.now());
        return;
      }
    }
    // The source kills a worker every KILL_EVERY items before going on, so
    // the faults land during the map however fast or slow the machine is.
    async function* items(): AsyncGenerator<number> {
      for (let i = 0; i < tasks; i++) {
        if (i > 0 && i % KILL_EVERY === 0) await killOne();
        yield i;
      }
    }
    const results = await withTimeout(
      Array.fromAsync(pool.map(
        (i: number) => {
          const end = performance.now() + 0.2;
          while (performance.now() < end) { /* a little work */ }
          return i;
        },
        items(),
        { chunkSize: 1 },
      )),
      120_000,
      "the map under the kill storm",
    );
    const lastKill = killTimes[killTimes.length - 1] ?? performance.now();
    const back = await pollUntil(() => {
      const pids = readyPids(pool);
      return pids.length === size && !pids.some((pid) => killed.has(pid));
    }, 30_000);
    const recoveryMs = performance.now() - lastKill;
    assert.ok(back, `the pool did not get back to ${size} workers`);

    const seen = new Map<number, number>();
    for (const r of results) seen.set(r, (seen.get(r) ?? 0) + 1);
    let lost = 0;
    let duplicated = 0;
    for (let i = 0; i < tasks; i++) {
      const n = seen.get(i) ?? 0;
      if (n === 0) lost++;
      if (n > 1) duplicated += n - 1;
    }
    // Replacement latency: each worker start after a kill answers the
    // oldest kill not yet answered.
    const latencies: number[] = [];
    let k = 0;
    for (const t of startTimes) {
      if (k < killTimes.length && t > killTimes[k]!) {
        latencies.push(t - killTimes[k++]!);
      }
    }
    latencies.sort((a, b) => a - b);
    const stats = pool.stats();
    console.error(
      `kill storm: ${tasks} tasks, ${killTimes.length} workers SIGKILLed, ` +
        `${lost} lost, ${duplicated} duplicated, ${stats.retried} resends; ` +
        `back to ${size} workers ${
          Math.round(recoveryMs)
        } ms after the last kill ` +
        `(replacement median ${
          Math.round(latencies[latencies.length >> 1] ?? 0)
        } ms, max ${Math.round(latencies[latencies.length - 1] ?? 0)} ms)`,
    );
    assert.equal(lost, 0, "results lost");
    assert.equal(duplicated, 0, "results duplicated");
    assert.equal(results.length, tasks);
    assert.ok(results.every((r, i) => r === i), "results out of order");
    assert.equal(killTimes.length, tasks / KILL_EVERY - 1, "kills");
    assert.equal(stats.lost, 0);
    assert.ok(stats.retried > 0, "no task was resent");

    const pids = await pool.runOnAll(() => Deno.pid);
    assert.equal(pids.length, size);
    assert.equal(new Set(pids).size, size);
    for (const pid of killed) {
      assert.ok(!pids.includes(pid));
      assert.ok(await pollUntil(() => isGone(pid), 20_000), `${pid} lives on`);
    }
  },
);

Deno.test(
  "Pool fails a task that kills poisonThreshold workers with WorkerLostError listing each death",
  async () => {
    await using tmp = await tempDir();
    const dir = tmp.path;
    await using pool = await leaks.open({
      workers: 2,
      retries: 10,
      poisonThreshold: 3,
    });
    const exits: WorkerExit[] = [];
    pool.addEventListener("workerexit", (e) => {
      exits.push((e as CustomEvent<WorkerExit>).detail);
    });
    // Attempt n says so on stderr, then exits with code 7 (even n) or is
    // killed by SIGKILL (odd n).
    const poison = (dir: string): never => {
      const n = [...Deno.readDirSync(dir)].length;
      Deno.writeTextFileSync(`${dir}/${n}`, "");
      Deno.stderr.writeSync(
        new TextEncoder().encode(`poison attempt ${n} in ${Deno.pid}\n`),
      );
      if (n % 2 === 0) Deno.exit(7);
      Deno.kill(Deno.pid, "SIGKILL");
      throw new Error("unreachable");
    };
    const error = await rejection(pool.run(poison, dir));
    assert.ok(error instanceof WorkerLostError, `got ${error}`);
    assert.equal(error.exits.length, 3, "poisonThreshold: 3 deaths");
    assert.equal(
      [...Deno.readDirSync(dir)].length,
      3,
      "the task ran again after the threshold, though retries were left",
    );
    const [first, second, third] = error.exits;
    assert.equal(first!.code, 7);
    assert.equal(first!.signal, undefined);
    assert.equal(second!.signal, "SIGKILL");
    assert.equal(second!.code, undefined);
    assert.equal(third!.code, 7);
    error.exits.forEach((exit, n) => {
      assert.equal(exit.host, "local");
      assert.ok(
        exit.stderr?.some((line) => line.includes(`poison attempt ${n} in`)),
        `death ${n} lacks its stderr tail: ${JSON.stringify(exit.stderr)}`,
      );
    });
    assert.equal(new Set(error.exits.map((e) => e.workerId)).size, 3);
    assert.equal(error.code, 7);
    assert.match(error.message, /tried 3 times/);
    assert.match(error.message, /exited with code 7/);
    assert.match(error.message, /poison attempt 2 in/);
    const stats = pool.stats();
    assert.equal(stats.lost, 1);
    assert.equal(stats.retried, 2);
    // The pool goes on with a full set of fresh workers.
    assert.equal(await pool.run(double, 21), 42);
    const pids = await pool.runOnAll(() => Deno.pid);
    assert.equal(new Set(pids).size, 2);
    assert.equal(exits.length, 3);
  },
);

// ---- hard timeouts -----------------------------------------------------------

Deno.test(
  "Pool.apply() with timeout kills a worker stuck in a sync loop after killGrace; the task queued behind it succeeds",
  async () => {
    await using pool = await leaks.open({
      workers: 1,
      qsize: 2,
      killGrace: 200,
    });
    const [stuckPid] = await pool.runOnAll(() => Deno.pid);
    const order: string[] = [];
    const exited = nextEvent(pool, "workerexit").then((exit) => {
      order.push("workerexit");
      return exit;
    });
    const stuck = pool.apply(
      () => {
        while (true) { /* never yields */ }
      },
      [],
      { timeout: 100 },
    );
    // Sent to the same worker, behind the stuck task (qsize 2).
    const queued = pool.run(double, 21);
    assert.equal(pool.stats().workers[0]!.inFlight, 2);
    const error = await rejection(stuck);
    order.push("timeout");
    assert.equal(error.name, "TimeoutError");
    assert.match(error.message, /timed out after 100 ms/);
    assert.equal(await withTimeout(queued, 30_000, "the queued task"), 42);
    const exit = await withTimeout(exited, 30_000, "the workerexit event");
    assert.deepEqual(order, ["timeout", "workerexit"]);
    assert.equal(exit.signal, "SIGKILL");
    assert.match(exit.reason ?? "", /still running a task 200 ms after/);
    assert.ok(await pollUntil(() => isGone(stuckPid!), 20_000));
    const [pid] = await pool.runOnAll(() => Deno.pid);
    assert.notEqual(pid, stuckPid);
    assert.equal(await pool.run(double, 2), 4);
    const stats = pool.stats();
    assert.equal(stats.lost, 0, "the queued task was not failed");
    assert.equal(stats.totalWorkers, 1);
  },
);

Deno.test(
  "Pool.apply() with timeout keeps a worker whose task ends within killGrace",
  async () => {
    await using pool = await leaks.open({
      workers: 1,
      qsize: 1,
      killGrace: 20_000,
    });
    let exits = 0;
    pool.addEventListener("workerexit", () => exits++);
    await using gate = await fileGate();
    const [before] = await pool.runOnAll(() => Deno.pid);
    // The task runs until the test opens the gate, so it ends after its timeout.
    const error = await rejection(
      pool.apply(waitForFile, [gate.path, "late"], { timeout: 10 }),
    );
    assert.equal(error.name, "TimeoutError");
    await gate.open();
    // One slot: this runs once the late task has ended in the worker.
    assert.equal(await pool.run(() => Deno.pid), before);
    assert.equal(exits, 0);
  },
);

// ---- recycling ---------------------------------------------------------------

Deno.test(
  "Pool with maxTasksPerWorker replaces workers, each initialised before its first task",
  async () => {
    const max = 3;
    await using pool = await leaks.open({
      workers: 2,
      qsize: 2,
      maxTasksPerWorker: max,
      initializer: (tag: string) => {
        const state = globalThis as { __log?: string[] };
        (state.__log ??= []).push(tag);
      },
      initArgs: ["init"],
    });
    let starts = 0;
    pool.addEventListener("workerstart", () => starts++);
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        pool.run((i: number) => {
          const log = (globalThis as { __log?: string[] }).__log ?? [];
          log.push(`task ${i}`);
          return { pid: Deno.pid, log: [...log] };
        }, i)),
    );
    const perPid = new Map<number, number>();
    for (const { pid, log } of results) {
      assert.equal(log[0], "init", `a task ran before the initializer: ${log}`);
      assert.equal(log.filter((l) => l === "init").length, 1);
      perPid.set(pid, (perPid.get(pid) ?? 0) + 1);
    }
    for (const [pid, n] of perPid) {
      assert.ok(n <= max, `worker ${pid} ran ${n} tasks, more than ${max}`);
    }
    assert.ok(perPid.size >= Math.ceil(20 / max), `pids ${[...perPid.keys()]}`);
    // Replacements were initialised too (runOnAll waits for them).
    const logs = await pool.runOnAll(() =>
      (globalThis as { __log?: string[] }).__log?.[0]
    );
    assert.deepEqual(logs, ["init", "init"]);
    const stats = pool.stats();
    assert.ok(stats.recycled >= perPid.size - 2, `recycled ${stats.recycled}`);
    assert.ok(starts >= stats.recycled, `${starts} starts`);
    assert.equal(stats.totalWorkers, 2);
    assert.equal(stats.lost, 0);
  },
);

Deno.test(
  "Pool with maxMemoryMB sets V8's heap limit and ends a worker whose memory passes it while its task runs",
  async () => {
    await using pool = await leaks.open({ workers: 1, maxMemoryMB: 100 });
    const cmdline = await pool.run(() =>
      Deno.readTextFileSync("/proc/self/cmdline").split("\0")
    );
    assert.ok(
      cmdline.includes("--v8-flags=--max-old-space-size=100"),
      `worker command line: ${cmdline.join(" ")}`,
    );
    const exited = nextEvent(pool, "workerexit");
    const [pid] = await pool.runOnAll(() => Deno.pid);
    // 160 MiB outside the JS heap, touched, and kept alive in globalThis: the
    // worker is ended while the task runs, not after it.
    const error = await rejection(pool.run(() => {
      const bytes = new Uint8Array(160 * 1024 * 1024).fill(1);
      (globalThis as { __hog?: Uint8Array }).__hog = bytes;
      while (bytes.length) { /* hold on to it */ }
    }));
    assert.ok(error instanceof WorkerLostError, `got ${error}`);
    assert.match(error.message, /passed maxMemoryMB \(100\)/);
    const exit = await withTimeout(
      exited,
      30_000,
      "the worker's exit",
    );
    assert.match(exit.stderr?.join("\n") ?? "", /passed maxMemoryMB \(100\)/);
    const hog = { pid: pid! };
    assert.ok(await pollUntil(() => isGone(hog.pid), 20_000));
    const fresh = await pool.run(() => ({
      pid: Deno.pid,
      hog: (globalThis as { __hog?: Uint8Array }).__hog === undefined
        ? "gone"
        : "kept",
    }));
    assert.notEqual(fresh.pid, hog.pid);
    assert.equal(fresh.hog, "gone");
    assert.equal(pool.stats().lost, 1);
  },
);

Deno.test(
  "Pool with maxMemoryMB fails a task that outgrows the heap limit with WorkerLostError and goes on",
  async () => {
    await using pool = await leaks.open({ workers: 1, maxMemoryMB: 64 });
    const error = await rejection(withTimeout(
      pool.run(() => {
        const keep: number[][] = [];
        for (;;) keep.push(new Array(1 << 20).fill(1.5));
      }),
      60_000,
      "the heap-eating task",
    ));
    assert.ok(error instanceof WorkerLostError, `got ${error}`);
    assert.ok(
      error.signal !== undefined || (error.code ?? 0) !== 0,
      `exit ${JSON.stringify(error.exits)}`,
    );
    assert.match(
      error.exits[0]!.stderr?.join("\n") ?? "",
      /heap limit|out of memory|Last few GCs/i,
    );
    assert.equal(await pool.run(double, 5), 10);
  },
);

// ---- permissions ---------------------------------------------------------------

Deno.test(
  "Pool with permissions grants workers only those (NotCapable otherwise) and they still run tasks",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "distex-test-" });
    // A listener the worker is denied to reach: if it got through, this
    // listener's first connection would be the worker's, not ours.
    using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    try {
      await Deno.writeTextFile(`${dir}/granted.txt`, "granted");
      await using pool = await leaks.open({
        workers: 1,
        permissions: [`--allow-read=${dir}`],
      });
      const [pid] = pool.stats().workers.map((w) => w.pid);
      const args = (await Deno.readTextFile(`/proc/${pid}/cmdline`)).split(
        "\0",
      );
      assert.ok(!args.includes("-A"), `worker runs with -A: ${args}`);
      assert.ok(args.includes(`--allow-read=${dir}`), `${args}`);

      assert.equal(
        await pool.run(
          (d: string) => Deno.readTextFile(`${d}/granted.txt`),
          dir,
        ),
        "granted",
      );
      const port = listener.addr.port;
      // Each attempt is handled at once (rejection()), awaited in turn below.
      const denied: [string, Promise<Error>][] = [
        ["read elsewhere", () => Deno.readTextFile("/etc/hostname")],
        ["write", (d: string) => Deno.writeTextFile(`${d}/x`, "x")],
        [
          "net",
          (_: string, port: number) =>
            Deno.connect({ hostname: "127.0.0.1", port }),
        ],
        [
          "fetch",
          (_: string, port: number) => fetch(`http://127.0.0.1:${port}/`),
        ],
        ["env", () => Deno.env.get("HOME")],
        ["run", () => new Deno.Command("true").output()],
      ].map(([what, fn]) => [
        what as string,
        rejection(pool.run(fn as (d: string, p: number) => unknown, dir, port)),
      ]);
      for (const [what, attempt] of denied) {
        const error = await attempt;
        assert.equal(error.name, "NotCapable", `${what}: ${error}`);
        assert.match(error.message, /Requires \w+ access/, what);
      }
      assert.equal(
        await pool.run(double, 8),
        16,
        "the worker still runs tasks",
      );
      assert.equal(pool.stats().lost, 0);
      const [samePid] = await pool.runOnAll(() => Deno.pid);
      assert.equal(samePid, pid, "the worker was not replaced");

      using probe = await Deno.connect({ hostname: "127.0.0.1", port });
      await probe.write(new Uint8Array([42]));
      using first = await listener.accept();
      const byte = new Uint8Array(1);
      assert.equal(await first.read(byte), 1);
      assert.equal(byte[0], 42, "the listener's first connection was not ours");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

// ---- closing -------------------------------------------------------------------

Deno.test(
  "Pool.close({ wait: true }) finishes running and queued tasks, then ends every worker",
  async () => {
    const pool = await leaks.open({ workers: 2, qsize: 1 });
    const pids = await pool.runOnAll(() => Deno.pid);
    const tasks = Array.from(
      { length: 8 },
      (_, i) =>
        pool.run(async (i: number) => {
          await new Promise((r) => setTimeout(r, 20));
          return i * 10;
        }, i),
    );
    assert.ok(pool.stats().queued > 0, "nothing was queued");
    const closing = pool.close({ wait: true });
    const refused = await rejection(pool.run(double, 1));
    assert.ok(refused instanceof PoolClosedError);
    assert.match(refused.message, /closed/);
    await withTimeout(closing, 30_000, "close()");
    assert.deepEqual(await Promise.all(tasks), [0, 10, 20, 30, 40, 50, 60, 70]);
    for (const pid of pids) assert.ok(await isGone(pid), `${pid} lives on`);
    await pool.close();
    await pool.close({ wait: false });
  },
);

Deno.test(
  "Pool.close({ wait: false }) fails queued and running tasks at once, even with a worker stuck in a sync loop",
  async () => {
    await using tmp = await tempDir();
    const dir = tmp.path;
    const pool = await leaks.open({ workers: 1, qsize: 1 });
    const [pid] = await pool.runOnAll(() => Deno.pid);
    const running = rejection(pool.run((path: string) => {
      Deno.writeTextFileSync(path, "");
      while (true) { /* never yields */ }
    }, `${dir}/stuck`));
    const queued = [
      rejection(pool.run(double, 1)),
      rejection(pool.run(double, 2)),
    ];
    assert.equal(pool.stats().queued, 2);
    assert.ok(
      await pollUntil(() => exists(`${dir}/stuck`), 20_000),
      "the stuck task never started",
    );
    const closing = pool.close({ wait: false });
    for (const error of [await running, ...(await Promise.all(queued))]) {
      assert.ok(error instanceof PoolClosedError, `got ${error}`);
      assert.match(error.message, /closed before the task finished/);
    }
    const refused = await rejection(pool.submit(double, 3));
    assert.ok(refused instanceof PoolClosedError);
    await withTimeout(closing, 30_000, "close({ wait: false })");
    assert.ok(await isGone(pid!), "the stuck worker outlived close()");
    await pool.close({ wait: false });
    await pool.close();
  },
);

// ---- events and stats ------------------------------------------------------

Deno.test(
  "Pool dispatches workerstart and workerexit events and counts tasks in stats()",
  async () => {
    await using pool = leaks.watch(new Pool({ workers: 2 }));
    const started: { workerId: number; host: string }[] = [];
    pool.addEventListener("workerstart", (e) => {
      started.push(
        (e as CustomEvent<{ workerId: number; host: string }>).detail,
      );
    });
    await pool.ready;
    assert.deepEqual(
      started.map((s) => s.host),
      ["local", "local"],
    );
    assert.deepEqual(started.map((s) => s.workerId).sort(), [1, 2]);
    const pids = await pool.runOnAll(() => Deno.pid);
    let stats = pool.stats();
    assert.deepEqual(
      stats.workers.map((w) => w.pid).sort(),
      [...pids].sort(),
    );
    for (const w of stats.workers) {
      assert.equal(w.host, "local");
      assert.equal(w.ready, true);
      assert.ok(w.capacity >= 1);
    }

    assert.equal(await pool.run(double, 1), 2);
    await rejection(pool.run(() => {
      throw new Error("task error");
    }));
    stats = pool.stats();
    // runOnAll and initializer calls are not counted as tasks.
    assert.equal(stats.done, 1);
    assert.equal(stats.failed, 1);
    assert.equal(stats.inFlight, 0);
    assert.equal(stats.queued, 0);
    assert.equal(stats.totalWorkers, 2);

    // Kill one worker from outside: workerexit, then a replacement starts.
    const victim = stats.workers[0]!;
    const exited = nextEvent(pool, "workerexit");
    const replaced = nextEvent(
      pool,
      "workerstart",
    );
    const replacement = nextEvent(
      pool,
      "workerreplace",
    );
    Deno.kill(victim.pid, "SIGKILL");
    const exit = await withTimeout(exited, 30_000, "workerexit");
    assert.equal(exit.workerId, victim.id);
    assert.equal(exit.host, "local");
    assert.equal(exit.signal, "SIGKILL");
    assert.equal(typeof exit.reason, "string");
    const fresh = await withTimeout(replaced, 30_000, "the replacement");
    assert.ok(fresh.workerId > 2, `replacement id ${fresh.workerId}`);
    assert.equal(fresh.host, "local");
    const replaceEvent = await withTimeout(
      replacement,
      30_000,
      "workerreplace",
    );
    assert.equal(replaceEvent.workerId, fresh.workerId);
    assert.equal(replaceEvent.replacement, true);

    // Workers report their memory use on their own.
    assert.ok(
      await pollUntil(
        () => pool.stats().workers.every((w) => w.rssBytes > 0),
        20_000,
      ),
      "no memory reports",
    );
    stats = pool.stats();
    assert.equal(stats.workers.length, 2);
    assert.ok(!stats.workers.some((w) => w.pid === victim.pid));
    assert.equal(stats.lost, 0);
  },
);

Deno.test(
  "Pool.stats() counts queued, in-flight, retried and lost tasks",
  async () => {
    await using tmp = await tempDir();
    const dir = tmp.path;
    await using pool = await leaks.open({ workers: 1, qsize: 1 });
    // Blocks in the worker until the test creates the file.
    const gate = pool.apply(waitForFile, [`${dir}/go`, "released"]);
    const queued = [pool.run(double, 1), pool.run(double, 2)];
    let stats = pool.stats();
    assert.equal(stats.inFlight, 1);
    assert.equal(stats.queued, 2);
    await Deno.writeTextFile(`${dir}/go`, "");
    assert.equal(await gate, "released");
    assert.deepEqual(await Promise.all(queued), [2, 4]);
    stats = pool.stats();
    assert.equal(stats.inFlight, 0);
    assert.equal(stats.queued, 0);
    assert.equal(stats.done, 3);

    const lost = await rejection(pool.apply(
      () => Deno.kill(Deno.pid, "SIGKILL"),
      [],
      { retries: 1 },
    ));
    assert.ok(lost instanceof WorkerLostError);
    stats = pool.stats();
    assert.equal(stats.retried, 1);
    assert.equal(stats.lost, 1);
    assert.equal(stats.failed, 1);
  },
);

Deno.test("reliability tests leave no worker processes, sockets or temp dirs", async () => {
  await leaks.assertClean();
});
