/**
 * Workers never outlive their pool: when the process that owns a pool is
 * killed with SIGKILL (no cleanup code runs), its workers still exit.
 *
 * @module
 */
import assert from "node:assert/strict";
import { socketOf } from "./_leaks.ts";
import {
  childTemp,
  firstLine,
  isGone,
  pollUntil,
  withTimeout,
} from "./_util.ts";

const PARENT = new URL("./fixtures/orphan_parent.ts", import.meta.url);

Deno.test(
  "Pool workers exit when the pool's process is killed with SIGKILL",
  async () => {
    // The owner's socket directory outlives its SIGKILL: it goes in here.
    await using tmp = await childTemp();
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", PARENT.href],
      env: tmp.env,
      stdin: "null",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    let workers: number[] = [];
    let childAlive = true;
    try {
      const line = await withTimeout(
        firstLine(child.stdout),
        60_000,
        "the pool owner's worker pids",
      );
      workers = JSON.parse(line);
      assert.ok(Array.isArray(workers), `not a pid list: ${line}`);
      assert.equal(workers.length, 2);
      assert.equal(new Set(workers).size, 2);
      for (const pid of workers) {
        assert.ok(Number.isInteger(pid) && pid > 0, `bad pid ${pid}`);
        assert.notEqual(pid, child.pid);
        assert.equal(await isGone(pid), false, `worker ${pid} not running`);
      }
      const socket = socketOf(workers[0]!) ?? "";
      assert.ok(socket.startsWith(`${tmp.path}/`), `socket ${socket}`);

      child.kill("SIGKILL");
      const status = await child.status;
      childAlive = false;
      assert.equal(status.signal, "SIGKILL");

      // The workers were the killed process's children: now orphans,
      // reparented. Each must notice and exit (zombies count as gone). The
      // bound only tells a hang from a slow machine; it is no speed claim.
      const gone = await pollUntil(
        async () => (await Promise.all(workers.map(isGone))).every(Boolean),
        20_000,
      );
      const alive = [];
      for (const pid of workers) if (!await isGone(pid)) alive.push(pid);
      assert.ok(
        gone,
        `workers still alive 20 s after the owner died: ${alive}`,
      );
    } finally {
      if (childAlive) {
        try {
          child.kill("SIGKILL");
        } catch { /* already gone */ }
        await child.status;
      }
      for (const pid of workers) {
        if (!await isGone(pid)) {
          try {
            Deno.kill(pid, "SIGKILL");
          } catch { /* exited meanwhile */ }
        }
      }
    }
  },
);
