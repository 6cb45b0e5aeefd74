/**
 * Worker life cycle against hostile or stuck tasks: workers (and whatever
 * their tasks started) die with their owner even while tasks spin, with
 * `close()` and with a hard timeout; the memory cap counts ArrayBuffers and
 * acts while a task runs; a task's stray rejection leaves its worker alone;
 * stderr from workers and hosts reaches the terminal without escape
 * sequences.
 *
 * @module
 */
import assert from "node:assert/strict";
import { type PoolOptions, WorkerLostError } from "../mod.ts";
import { startGrandchild } from "./fixtures/tasks.ts";
import { LeakCheck, socketOf } from "./_leaks.ts";
import {
  alive,
  closeNow,
  exists,
  isGone,
  killAll,
  pollUntil,
  rejection,
  startOwner,
  tempDir,
  withTimeout,
} from "./_util.ts";

const leaks = new LeakCheck();
const OWNER = new URL("./fixtures/spinning_owner.ts", import.meta.url);

// ---- the owner dies ------------------------------------------------------------

for (const signal of ["SIGKILL", "SIGTERM"] as const) {
  Deno.test(
    `Pool workers spinning in sync code, and their children, are gone within 2 s of the owner's ${signal}`,
    async () => {
      const dir = await Deno.makeTempDir({ prefix: "distex-test-" });
      let pids: number[] = [];
      try {
        await using owner = await startOwner<{
          workers: number[];
          grandchildren: number[];
        }>(OWNER, [dir]);
        const { workers, grandchildren } = owner.said;
        pids = [...workers, ...grandchildren];
        assert.equal(workers.length, 2);
        assert.equal(new Set(workers).size, 2);
        assert.deepEqual(await alive(pids), pids, "not all running");
        // Its socket directory outlives a SIGKILL: in the owner's own TMPDIR.
        const socket = socketOf(workers[0]!) ?? "";
        assert.ok(socket.startsWith(`${owner.tmp.path}/`), `socket ${socket}`);

        const status = await owner.end(signal);
        assert.equal(status.signal, signal);
        const killed = performance.now();
        const gone = await pollUntil(
          async () => (await alive(pids)).length === 0,
          2_000,
        );
        const ms = Math.round(performance.now() - killed);
        const left = await alive(pids);
        assert.ok(gone, `still alive 2 s after the owner's ${signal}: ${left}`);
        console.error(`owner ${signal}: workers and children gone in ${ms} ms`);
      } finally {
        await killAll(pids);
        await Deno.remove(dir, { recursive: true });
      }
    },
  );
}

const IDLE_OWNER = new URL("./fixtures/idle_owner.ts", import.meta.url);

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  Deno.test(
    `Pool owner ended by ${signal} removes the socket and its directory and still dies of ${signal}`,
    async () => {
      let workers: number[] = [];
      try {
        await using owner = await startOwner<
          { socket: string; workers: number[] }
        >(IDLE_OWNER);
        const { socket } = owner.said;
        workers = owner.said.workers;
        const dir = socket.slice(0, socket.lastIndexOf("/"));
        assert.ok(dir.startsWith(`${owner.tmp.path}/`), `socket ${socket}`);
        assert.ok((await Deno.lstat(socket)).isSocket);
        const status = await owner.end(signal);
        assert.equal(status.signal, signal, `exit ${JSON.stringify(status)}`);
        assert.equal(status.code, 128 + (signal === "SIGINT" ? 2 : 15));
        assert.equal(await exists(dir), false, `${dir} was left behind`);
        assert.ok(
          await pollUntil(
            async () => (await alive(workers)).length === 0,
            5_000,
          ),
          `workers left: ${await alive(workers)}`,
        );
      } finally {
        await killAll(workers);
      }
    },
  );
}

// ---- grandchildren ---------------------------------------------------------------

/** A host given as a command: the remote supervisor of this checkout, run here. */
const COMMAND_HOST = {
  command: [
    Deno.execPath(),
    "run",
    "-A",
    new URL("../cli.ts", import.meta.url).pathname,
  ],
  workers: 1,
};

/** Local workers, and workers of a remote supervisor (a command host). */
const WORKER_KINDS: [string, PoolOptions][] = [
  ["the workers'", { workers: 2 }],
  ["a remote supervisor's workers'", { workers: 0, hosts: [COMMAND_HOST] }],
];

for (const [kind, options] of WORKER_KINDS) {
  Deno.test(`Pool.close() ends what ${kind} tasks started`, async () => {
    const pool = await leaks.open(options);
    let grandchildren: number[] = [];
    try {
      grandchildren = (await pool.runOnAll(startGrandchild)).map((s) =>
        s.grandchild
      );
      assert.deepEqual(await alive(grandchildren), grandchildren);
      // A child left running holds the worker's stderr open: close() must
      // not wait for it.
      await withTimeout(pool.close(), 30_000, "close()");
      assert.ok(
        await pollUntil(
          async () => (await alive(grandchildren)).length === 0,
          10_000,
        ),
        `left running after close(): ${await alive(grandchildren)}`,
      );
    } finally {
      await killAll(grandchildren);
      await pool.close();
    }
  });

  Deno.test(
    `Pool's hard timeout kills the stuck worker's children with it (${kind} tasks)`,
    async () => {
      const dir = await Deno.makeTempDir({ prefix: "distex-test-" });
      const pool = await leaks.open({ ...options, killGrace: 100 });
      const file = `${dir}/grandchild`;
      let grandchild = 0;
      try {
        const error = await rejection(pool.apply(
          (file: string) => {
            const child = new Deno.Command("sleep", {
              args: ["300"],
              stdin: "null",
              stdout: "null",
            }).spawn();
            Deno.writeTextFileSync(file, String(child.pid));
            while (true) { /* stuck */ }
          },
          [file],
          { timeout: 2_000 },
        ));
        assert.equal(error.name, "TimeoutError");
        grandchild = Number(await Deno.readTextFile(file));
        assert.ok(grandchild > 0);
        assert.ok(
          await pollUntil(() => isGone(grandchild), 10_000),
          `the stuck task's child ${grandchild} lives on`,
        );
        assert.equal(await pool.run((x: number) => x + 1, 1), 2);
      } finally {
        await pool.close({ wait: false });
        if (grandchild) await killAll([grandchild]);
        await Deno.remove(dir, { recursive: true });
      }
    },
  );
}

// ---- a graceful close ----------------------------------------------------------

Deno.test(
  "Pool.close() lets its workers exit by themselves: their unload listeners run and --cpu-prof writes their profiles",
  async () => {
    await using dir = await tempDir();
    const pool = await leaks.open({
      workers: 2,
      denoArgs: ["--cpu-prof", `--cpu-prof-dir=${dir.path}`],
    });
    let pids: number[] = [];
    try {
      pids = await pool.runOnAll((d: string) => {
        addEventListener("unload", () => {
          Deno.writeTextFileSync(`${d}/unload-${Deno.pid}`, "ran");
        });
        return Deno.pid;
      }, dir.path);
      assert.equal(new Set(pids).size, 2);
      await withTimeout(pool.close(), 30_000, "close()");
      assert.deepEqual(await alive(pids), [], "close() left workers running");
      const names: string[] = [];
      for await (const entry of Deno.readDir(dir.path)) names.push(entry.name);
      for (const pid of pids) {
        assert.ok(
          names.includes(`unload-${pid}`),
          `worker ${pid}'s unload listener did not run: ${names}`,
        );
        assert.ok(
          names.some((n) => n.endsWith(`.${pid}.cpuprofile`)),
          `worker ${pid} wrote no CPU profile: ${names}`,
        );
      }
    } finally {
      await pool.close({ wait: false });
      await killAll(pids);
    }
  },
);

Deno.test(
  "Pool.close() still ends a worker whose event loop a stray timer blocks (it cannot exit by itself)",
  async () => {
    const pool = await leaks.open({ workers: 1 });
    let pid = 0;
    try {
      pid = await pool.run(() => {
        setTimeout(() => {
          while (true) { /* blocks the worker's event loop */ }
        }, 0);
        return Deno.pid;
      });
      await withTimeout(pool.close(), 30_000, "close()");
      assert.equal(await isGone(pid), true, `worker ${pid} outlived close()`);
    } finally {
      await pool.close({ wait: false });
      if (pid) await killAll([pid]);
    }
  },
);

// ---- memory ----------------------------------------------------------------------

Deno.test(
  "Pool with maxMemoryMB ends a worker whose ArrayBuffers pass it while its task runs, naming the limit",
  async () => {
    const pool = await leaks.open({ workers: 1, maxMemoryMB: 200 });
    await using _ = closeNow(pool);
    const before = (await pool.runOnAll(() => Deno.pid))[0]!;
    const started = performance.now();
    const error = await rejection(withTimeout(
      pool.run(() => {
        // 400 MiB outside the JS heap, touched, then a task that never ends:
        // only a check that runs beside the task can stop it.
        const keep: Uint8Array[] = [];
        for (let i = 0; i < 25; i++) {
          keep.push(new Uint8Array(16 << 20).fill(1));
        }
        while (keep.length) { /* hold on to it */ }
      }),
      60_000,
      "the memory-hogging task",
    ));
    console.error(
      `maxMemoryMB: the task failed ${
        Math.round(performance.now() - started)
      } ms after it was sent`,
    );
    assert.ok(error instanceof WorkerLostError, `got ${error}`);
    assert.match(
      error.message,
      /^Task lost: worker \d+ ran out of memory at \d+ MiB resident, which passed maxMemoryMB \(200\)/,
    );
    assert.ok(await pollUntil(() => isGone(before), 5_000));
    const after = await pool.run(() => Deno.pid);
    assert.notEqual(after, before);
  },
);

Deno.test(
  "Pool reports a worker whose JavaScript heap ran out as out of memory at N MB",
  async () => {
    const pool = await leaks.open({
      workers: 1,
      denoArgs: ["--v8-flags=--max-old-space-size=64"],
    });
    await using _ = closeNow(pool);
    const error = await rejection(withTimeout(
      pool.run(() => {
        const keep: number[][] = [];
        for (;;) keep.push(new Array(1 << 16).fill(1.5));
      }),
      60_000,
      "the heap-eating task",
    ));
    assert.ok(error instanceof WorkerLostError, `got ${error}`);
    assert.match(
      error.message,
      /^Task lost: worker \d+ ran out of memory at \d+ MB/,
    );
    assert.doesNotMatch(error.message, /SIGTRAP|C stack trace|Last few GCs/);
    assert.equal(await pool.run((x: number) => x * 2, 5), 10);
  },
);

// ---- stray errors in tasks ---------------------------------------------------------

Deno.test(
  "A task's unhandled rejection or uncaught timer error leaves its worker and other tasks alone",
  async () => {
    const pool = await leaks.open({ workers: 1 });
    await using _ = closeNow(pool);
    const [pid] = await pool.runOnAll(() => Deno.pid);
    const slow = pool.run(() =>
      new Promise((resolve) => setTimeout(() => resolve("slow done"), 300))
    ).catch((error) => error);
    assert.equal(
      await pool.run(() => {
        Promise.reject(new Error("nobody handles this"));
        return "returned";
      }),
      "returned",
    );
    assert.equal(
      await pool.run(() => {
        setTimeout(() => {
          throw new Error("thrown from a timer");
        }, 0);
        return new Promise((resolve) => setTimeout(() => resolve("later"), 50));
      }),
      "later",
    );
    assert.equal(await slow, "slow done");
    assert.equal(await pool.run(() => Deno.pid), pid);
    assert.equal(pool.stats().lost, 0);
  },
);

// ---- stderr ------------------------------------------------------------------------

/** Escape sequences a hostile task or host might print. */
const HOSTILE =
  "\x1b]52;c;cHduZWQ=\x07\x1b]0;pwned\x07\x1b[2J\x1b[1;1Hhostile\rover\x9b2J";

/** True when `text` holds a terminal control character (tab and newline aside). */
function hasControls(text: string): boolean {
  // deno-lint-ignore no-control-regex
  return /[\x00-\x08\x0b-\x1f\x7f-\x9f]/.test(text);
}

Deno.test(
  "Worker and host stderr reach the owner's stderr, events and errors without terminal escape sequences",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "distex-test-" });
    try {
      // A fake `ssh` that prints escape sequences and fails.
      const fakeSsh = `${dir}/ssh`;
      await Deno.writeTextFile(
        fakeSsh,
        `#!/bin/sh\nprintf '${
          HOSTILE.replaceAll("\x1b", "\\033").replaceAll("\x07", "\\007")
            .replaceAll("\r", "\\r").replaceAll("\x9b", "\\302\\233")
        }\\n' >&2\nexit 255\n`,
      );
      await Deno.chmod(fakeSsh, 0o755);
      const script = `${dir}/owner.ts`;
      await Deno.writeTextFile(
        script,
        `import { Pool } from ${
          JSON.stringify(new URL("../mod.ts", import.meta.url).href)
        };
const said = [];
{
  await using pool = await Pool.create(1);
  pool.addEventListener("workerexit", (e) => said.push(e.detail.stderr.join("\\n")));
  await pool.run((s) => { console.error(s); Deno.exit(3); }, ${
          JSON.stringify(HOSTILE)
        })
    .catch((e) => said.push(e.message));
}
await Pool.create({ workers: 0, hosts: ["ssh://fake/1"], ssh: { binary: ${
          JSON.stringify(fakeSsh)
        } } })
  .catch((e) => said.push(e.name + ": " + e.message));
console.log(JSON.stringify(said));
`,
      );
      const { stdout, stderr, code } = await new Deno.Command(
        Deno.execPath(),
        {
          args: [
            "run",
            "-A",
            "--config",
            new URL("../deno.json", import.meta.url).pathname,
            script,
          ],
          stdin: "null",
          stdout: "piped",
          stderr: "piped",
        },
      ).output();
      const out = new TextDecoder().decode(stdout);
      const err = new TextDecoder().decode(stderr);
      assert.equal(code, 0, err);
      const said = JSON.parse(out) as string[];
      assert.equal(said.length, 3, out);
      assert.ok(said.some((s) => /^Task lost/.test(s)), out);
      assert.ok(said.some((s) => /^HostError: /.test(s)), out);
      for (const text of [...said, err]) {
        assert.ok(text.includes("hostile"), `the text itself is lost: ${text}`);
        assert.ok(
          !hasControls(text),
          `control characters in ${JSON.stringify(text)}`,
        );
      }
      // The owner forwarded both the worker's and the host's stderr.
      assert.equal(err.split("hostile").length - 1 >= 2, true, err);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

Deno.test("lifecycle tests leave no worker processes, sockets or temp dirs", async () => {
  await leaks.assertClean();
});
