/**
 * Review of the lifeline start-up (`_LIFELINE`, src/launcher.ts): the `sh`
 * that leads a local worker's group reads the worker's key from stdin and
 * pipes it to the worker. The key must never be in any process's argv or
 * environment, and the group must die when stdin ends, before or after the
 * key was written.
 *
 * @module
 */
import assert from "node:assert/strict";
import { _exitOfShell, _LIFELINE } from "../src/launcher.ts";
import { Pool, WorkerLostError } from "../mod.ts";
import { alive, killAll, liveProcesses, pollUntil, tempDir } from "./_util.ts";

const LINUX = Deno.build.os === "linux";
const decoder = new TextDecoder();

/** Pids of the live processes in session `sid`. */
function session(sid: number): number[] {
  return liveProcesses((s) => s.sid === sid);
}

/** The signal that ended the lifeline's `sh`, as the pool reads it. */
function signalOf(status: Deno.CommandStatus): string | undefined {
  return status.signal ??
    _exitOfShell({ code: status.code, signal: undefined }).signal;
}

/**
 * Spawns `setsid /bin/sh -c _LIFELINE` around a stand-in worker (an `sh`
 * that writes the line it reads to `keyFile`, then sleeps), as the pool does.
 */
function spawnLifeline(keyFile: string): Deno.ChildProcess {
  return new Deno.Command("setsid", {
    args: [
      "/bin/sh",
      "-c",
      _LIFELINE,
      "distex-worker",
      "/bin/sh",
      "-c",
      'read -r k; printf %s "$k" > "$1.tmp"; mv "$1.tmp" "$1"; exec sleep 60',
      "stand-in",
      keyFile,
    ],
    stdin: "piped",
    stdout: "null",
    stderr: "null",
  }).spawn();
}

Deno.test({
  name:
    "review: the lifeline hands the key to the worker without it ever being in argv or environ, and its end kills the group",
  ignore: !LINUX,
  fn: async () => {
    await using dir = await tempDir();
    const keyFile = `${dir.path}/key`;
    const key = `review-key-${crypto.randomUUID()}`;
    const child = spawnLifeline(keyFile);
    const writer = child.stdin.getWriter();
    let pids: number[] = [];
    try {
      await writer.write(new TextEncoder().encode(`${key}\n`));
      assert.ok(
        await pollUntil(async () => {
          try {
            return (await Deno.readTextFile(keyFile)) === key;
          } catch {
            return false;
          }
        }, 20_000),
        "the stand-in worker never got its key",
      );
      // The leader, the forked sh still reading stdin, the worker (sleep).
      pids = session(child.pid);
      assert.ok(pids.length >= 3, `session ${child.pid}: ${pids}`);
      for (const pid of pids) {
        for (const what of ["cmdline", "environ"]) {
          let text = "";
          try {
            text = decoder.decode(Deno.readFileSync(`/proc/${pid}/${what}`));
          } catch { /* gone meanwhile */ }
          assert.ok(!text.includes(key), `key in /proc/${pid}/${what}`);
        }
      }
      // The pool's end (stdin closed) kills the whole group.
      await writer.close();
      const status = await child.status;
      assert.equal(signalOf(status), "SIGKILL");
      assert.ok(
        await pollUntil(async () => (await alive(pids)).length === 0, 20_000),
        `still alive: ${await alive(pids)}`,
      );
    } finally {
      await killAll([...pids, child.pid]);
      await writer.close().catch(() => {});
      await child.status;
    }
  },
});

Deno.test({
  name:
    "review: a lifeline whose stdin ends before the key was written kills its group and the worker never starts reading one",
  ignore: !LINUX,
  fn: async () => {
    await using dir = await tempDir();
    const keyFile = `${dir.path}/key`;
    const child = spawnLifeline(keyFile);
    try {
      await child.stdin.close();
      const status = await child.status;
      assert.equal(status.success, false);
      assert.equal(signalOf(status), "SIGKILL");
      assert.ok(
        await pollUntil(() => session(child.pid).length === 0, 20_000),
        `left in its session: ${session(child.pid)}`,
      );
      // The stand-in never got a key to write.
      assert.equal(
        await Deno.stat(keyFile).then(() => true, () => false),
        false,
      );
    } finally {
      await killAll([...session(child.pid), child.pid]);
      await child.status;
    }
  },
});

Deno.test({
  name:
    "review: a local worker started through its lifeline reports how it ended: a signal as a signal, an exit code as a code",
  ignore: !LINUX,
  fn: async () => {
    await using pool = new Pool({ workers: 1 });
    const exitOf = async (fn: () => unknown) => {
      const error = await pool.run(fn).then(() => undefined, (e) => e);
      assert.ok(error instanceof WorkerLostError, String(error));
      const { code, signal } = error.exits[error.exits.length - 1]!;
      return { code, signal };
    };
    assert.deepEqual(await exitOf(() => Deno.kill(Deno.pid, "SIGKILL")), {
      code: undefined,
      signal: "SIGKILL",
    });
    assert.deepEqual(await exitOf(() => Deno.kill(Deno.pid, "SIGTERM")), {
      code: undefined,
      signal: "SIGTERM",
    });
    assert.deepEqual(await exitOf(() => Deno.exit(3)), {
      code: 3,
      signal: undefined,
    });
    // The pool goes on with a fresh worker.
    assert.equal(await pool.run(() => 7), 7);
  },
});
