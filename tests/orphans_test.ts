/**
 * Workers never outlive their pool: when the process that owns a pool is
 * killed with SIGKILL (no cleanup code runs), its workers still exit.
 *
 * @module
 */
import assert from "node:assert/strict";
import { socketOf } from "./_leaks.ts";
import { alive, isGone, killAll, pollUntil, startOwner } from "./_util.ts";

const PARENT = new URL("./fixtures/orphan_parent.ts", import.meta.url);

Deno.test(
  "Pool workers exit when the pool's process is killed with SIGKILL",
  async () => {
    await using owner = await startOwner<number[]>(PARENT);
    const workers = owner.said;
    try {
      assert.ok(Array.isArray(workers), `not a pid list: ${workers}`);
      assert.equal(workers.length, 2);
      assert.equal(new Set(workers).size, 2);
      for (const pid of workers) {
        assert.ok(Number.isInteger(pid) && pid > 0, `bad pid ${pid}`);
        assert.notEqual(pid, owner.child.pid);
        assert.equal(await isGone(pid), false, `worker ${pid} not running`);
      }
      // Its socket directory outlives the SIGKILL: in the owner's own TMPDIR.
      const socket = socketOf(workers[0]!) ?? "";
      assert.ok(socket.startsWith(`${owner.tmp.path}/`), `socket ${socket}`);

      const status = await owner.end("SIGKILL");
      assert.equal(status.signal, "SIGKILL");

      // The workers were the killed process's children: now orphans,
      // reparented. Each must notice and exit (zombies count as gone). The
      // bound only tells a hang from a slow machine; it is no speed claim.
      const gone = await pollUntil(
        async () => (await alive(workers)).length === 0,
        20_000,
      );
      assert.ok(
        gone,
        `workers still alive 20 s after the owner died: ${await alive(
          workers,
        )}`,
      );
    } finally {
      await killAll(workers);
    }
  },
);
