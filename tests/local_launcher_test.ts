/**
 * How LocalLauncher starts a worker process (Linux: read from /proc).
 *
 * @module
 */
import assert from "node:assert/strict";
import { Pool } from "../mod.ts";

/** Fields of /proc/<pid>/stat after the command name. */
function procStat(pid: number): { ppid: number; pgrp: number; sid: number } {
  const text = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const f = text.slice(text.lastIndexOf(")") + 2).split(" ");
  return { ppid: Number(f[1]), pgrp: Number(f[2]), sid: Number(f[3]) };
}

Deno.test({
  name:
    "LocalLauncher: each worker is the process the pool spawned and leads a session and process group of its own",
  ignore: Deno.build.os !== "linux",
  fn: async () => {
    const pool = await Pool.create(2);
    try {
      const pids = pool.stats().workers.map((w) => w.pid);
      assert.equal(pids.length, 2);
      for (const pid of pids) {
        // Spawned through setsid (when found), which must exec the worker
        // in place: a fork would leave the pool watching the wrong process.
        assert.deepEqual(procStat(pid), {
          ppid: Deno.pid,
          pgrp: pid,
          sid: pid,
        });
        const argv = Deno.readTextFileSync(`/proc/${pid}/cmdline`).split("\0");
        assert.equal(argv[0], Deno.execPath());
        assert.ok(argv.some((a) => a.endsWith("/worker.ts")), argv.join(" "));
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
