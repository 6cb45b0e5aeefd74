/**
 * How LocalLauncher starts a worker process (Linux: read from /proc).
 *
 * @module
 */
import assert from "node:assert/strict";
import { Pool } from "../mod.ts";
import { _exitOfShell, _LIFELINE } from "../src/launcher.ts";
import {
  alive,
  killAll,
  pollUntil,
  tempDir,
  waitForFile,
  withTimeout,
} from "./_util.ts";

/** Fields of /proc/<pid>/stat after the command name. */
function procStat(pid: number): { ppid: number; pgrp: number; sid: number } {
  const text = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const f = text.slice(text.lastIndexOf(")") + 2).split(" ");
  return { ppid: Number(f[1]), pgrp: Number(f[2]), sid: Number(f[3]) };
}

Deno.test({
  name:
    "LocalLauncher: each worker runs in a session and process group of its own, led by the lifeline sh the pool spawned",
  ignore: Deno.build.os !== "linux",
  fn: async () => {
    const pool = await Pool.create(2);
    try {
      const pids = pool.stats().workers.map((w) => w.pid);
      assert.equal(pids.length, 2);
      for (const pid of pids) {
        // Spawned through setsid (when found), which must exec the `sh` in
        // place: a fork would leave the pool watching the wrong process.
        const { ppid: leader } = procStat(pid);
        assert.deepEqual(procStat(pid), {
          ppid: leader,
          pgrp: leader,
          sid: leader,
        });
        assert.deepEqual(procStat(leader), {
          ppid: Deno.pid,
          pgrp: leader,
          sid: leader,
        });
        const sh = Deno.readTextFileSync(`/proc/${leader}/cmdline`).split(
          "\0",
        );
        assert.deepEqual(sh.slice(0, 3), ["/bin/sh", "-c", _LIFELINE]);
        const argv = Deno.readTextFileSync(`/proc/${pid}/cmdline`).split("\0");
        assert.equal(argv[0], Deno.execPath());
        // This package's worker, bundled into one file (src/launcher.ts).
        assert.ok(
          argv.some((a) => a.endsWith("/src/_worker_bundle.js")),
          argv.join(" "),
        );
        assert.deepEqual(argv.slice(-3, -1), ["--lifeline", "group"]);
      }
      // Tasks run on them.
      assert.deepEqual(
        await Promise.all([pool.run(() => 1), pool.run(() => 2)]),
        [1, 2],
      );
    } finally {
      await pool.close();
    }
  },
});

Deno.test({
  name:
    "LocalLauncher: a worker script given by URL is the process the pool spawned and leads a session and process group of its own",
  ignore: Deno.build.os !== "linux",
  fn: async () => {
    const workerUrl = new URL("../worker.ts", import.meta.url).href;
    const pool = await Pool.create({ workers: 1, workerUrl });
    try {
      const [pid] = pool.stats().workers.map((w) => w.pid);
      assert.deepEqual(procStat(pid!), { ppid: Deno.pid, pgrp: pid, sid: pid });
      const argv = Deno.readTextFileSync(`/proc/${pid}/cmdline`).split("\0");
      assert.equal(argv[0], Deno.execPath());
      assert.ok(!argv.includes("--lifeline"), argv.join(" "));
      assert.equal(await pool.run(() => 1), 1);
    } finally {
      await pool.close();
    }
  },
});

Deno.test({
  name:
    "LocalLauncher: a pool that may not run setsid spawns its workers detached, each leading a group of its own",
  ignore: Deno.build.os !== "linux",
  fn: async () => {
    const fixture = new URL("./fixtures/setsid_denied.ts", import.meta.url);
    const output = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "--deny-run=/usr/bin/setsid,/bin/setsid",
        fixture.pathname,
      ],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(output.stderr);
    assert.equal(output.code, 0, stderr);
    const report = JSON.parse(new TextDecoder().decode(output.stdout));
    assert.equal(report.setsid, null);
    const { pids, worker } = report;
    assert.deepEqual(pids, [worker.pid]);
    assert.deepEqual(worker, {
      pid: worker.pid,
      pgrp: worker.pid,
      sid: worker.pid,
    });
  },
});

/** The pids of group `pgrp`'s processes that are not zombies. */
function liveMembersOf(pgrp: number): number[] {
  const pids: number[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    const pid = Number(entry.name);
    if (!Number.isInteger(pid)) continue;
    try {
      const text = Deno.readTextFileSync(`/proc/${pid}/stat`);
      const f = text.slice(text.lastIndexOf(")") + 2).split(" ");
      if (Number(f[2]) === pgrp && f[0] !== "Z") pids.push(pid);
    } catch { /* exited meanwhile */ }
  }
  return pids;
}

/**
 * Starts `code` (a script) through the lifeline as LocalLauncher starts a
 * worker, with `dir` for its files; the caller writes to `stdin`.
 */
async function throughLifeline(dir: string, code: string) {
  const script = `${dir}/child.ts`;
  await Deno.writeTextFile(script, code);
  const child = new Deno.Command("setsid", {
    args: [
      "/bin/sh",
      "-c",
      _LIFELINE,
      "distex-worker",
      Deno.execPath(),
      "run",
      "-A",
      script,
      dir,
    ],
    stdin: "piped",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  return child;
}

/** Reads the key from stdin, records it and its pid, then does `then`. */
const KEYED_CHILD = (then: string) => `
const dir = Deno.args[0];
const buf = new Uint8Array(200);
let text = "";
while (!text.includes("\\n")) {
  const n = Deno.stdin.readSync(buf);
  if (n === null) break;
  text += new TextDecoder().decode(buf.subarray(0, n));
}
Deno.writeTextFileSync(dir + "/key", text);
Deno.writeTextFileSync(dir + "/pid", String(Deno.pid));
${then}
`;

Deno.test({
  name:
    "LocalLauncher's lifeline hands the worker its key on stdin and exits as the worker did (a signal as 128 + n, read back by _exitOfShell)",
  ignore: Deno.build.os !== "linux",
  fn: async () => {
    for (
      const [then, exit] of [
        ["Deno.exit(3);", { code: 3 }],
        ['Deno.kill(Deno.pid, "SIGTERM");', { signal: "SIGTERM" }],
      ] as const
    ) {
      await using dir = await tempDir();
      const child = await throughLifeline(dir.path, KEYED_CHILD(then));
      const writer = child.stdin.getWriter();
      await writer.write(new TextEncoder().encode("00ff".repeat(16) + "\n"));
      const status = await withTimeout(child.status, 30_000, "the worker");
      await writer.close().catch(() => {});
      await child.stderr.cancel();
      // The key, and nothing after it; stdin stays the pool's.
      assert.equal(
        await Deno.readTextFile(`${dir.path}/key`),
        "00ff".repeat(16) + "\n",
      );
      assert.deepEqual(
        _exitOfShell({
          code: status.signal ? undefined : status.code,
          signal: status.signal ?? undefined,
        }),
        { code: undefined, signal: undefined, ...exit },
      );
    }
  },
});

Deno.test({
  name:
    "LocalLauncher's lifeline kills the worker's whole group when the pool's end of stdin closes, with or without the key",
  ignore: Deno.build.os !== "linux",
  fn: async () => {
    for (const key of [true, false]) {
      await using dir = await tempDir();
      // With its key, the worker spins; without, it waits for it.
      const child = await throughLifeline(
        dir.path,
        KEYED_CHILD("while (true) { /* spins */ }"),
      );
      let pids: number[] = [];
      try {
        const writer = child.stdin.getWriter();
        if (key) {
          await writer.write(new TextEncoder().encode("ab".repeat(32) + "\n"));
          const file = `${dir.path}/pid`;
          await withTimeout(waitForFile(file, 0), 30_000, "the worker");
          pids = [Number(await Deno.readTextFile(file))];
        }
        pids.push(child.pid);
        await writer.close();
        const status = await withTimeout(child.status, 30_000, "the group");
        assert.equal(status.signal, "SIGKILL");
        assert.ok(
          await pollUntil(async () => (await alive(pids)).length === 0, 20_000),
          `left running: ${await alive(pids)}`,
        );
        // Nobody else of the group is left either (zombies aside).
        assert.ok(
          await pollUntil(() => liveMembersOf(child.pid).length === 0, 20_000),
          `left of the group: ${liveMembersOf(child.pid)}`,
        );
      } finally {
        await killAll(pids);
        try {
          Deno.kill(-child.pid, "SIGKILL");
        } catch { /* gone */ }
        await child.stderr.cancel().catch(() => {});
        await child.status;
      }
    }
  },
});
