/**
 * The worker's lifeline: a local worker on Linux is started through a `sh`
 * that leads its process group and watches the pool's end of its stdin
 * (with a memory cap, the worker also runs a thread that watches its
 * memory). It ends a worker spinning in sync code, and what its task
 * started, when the pool's owner is killed.
 *
 * @module
 */
import assert from "node:assert/strict";
import { _LIFELINE } from "../src/launcher.ts";
import {
  alive,
  argvOf,
  killAll,
  pollUntil,
  procStat,
  startOwner,
} from "./_util.ts";

const OWNER = new URL("./fixtures/spinning_owner.ts", import.meta.url);

/** The pids of `pid`'s children (Linux), each with its command line. */
function childrenOf(pid: number): { pid: number; argv: string[] }[] {
  const text = Deno.readTextFileSync(`/proc/${pid}/task/${pid}/children`);
  return text.split(" ").filter((s) => s !== "").map(Number).map((child) => ({
    pid: child,
    argv: argvOf(child),
  }));
}

/** The processes of process group `pgrp` (Linux), each with its command line. */
function groupOf(pgrp: number): { pid: number; argv: string[] }[] {
  const members: { pid: number; argv: string[] }[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    const pid = Number(entry.name);
    if (!Number.isInteger(pid)) continue;
    try {
      if (procStat(pid).pgrp !== pgrp) continue;
      const argv = argvOf(pid);
      members.push({ pid, argv });
    } catch { /* exited meanwhile */ }
  }
  return members;
}

/**
 * How the pool's owner starts its workers: the default local worker (its
 * group's `sh` leader watches the lifeline), with a memory cap (the same,
 * and a thread in the worker watches memory), or a worker script given by
 * URL (it runs a `sh` child of its own that watches its stdin).
 */
const KINDS = ["group", "thread", "self"] as const;

for (const kind of KINDS) {
  Deno.test({
    name:
      `watchdog (${kind}): a spinning worker and its task's child are gone after the owner's SIGKILL`,
    ignore: Deno.build.os !== "linux",
    fn: async () => {
      const dir = await Deno.makeTempDir({ prefix: "distex-test-" });
      let pids: number[] = [];
      try {
        await using owner = await startOwner<{
          workers: number[];
          grandchildren: number[];
        }>(OWNER, kind === "group" ? [dir] : [dir, kind]);
        const { workers, grandchildren } = owner.said;
        pids = [...workers, ...grandchildren];
        assert.deepEqual(await alive(pids), pids, "not all running");
        for (const worker of workers) {
          const own = childrenOf(worker).filter((c) =>
            c.argv[0] === "/bin/sh" && c.argv.includes("-c")
          );
          const { ppid, pgrp } = procStat(worker);
          if (kind === "self") {
            // Its own `sh` child watches stdin; it leads its group.
            assert.equal(own.length, 1, JSON.stringify(own));
            assert.equal(pgrp, worker);
            continue;
          }
          // No lifeline child of its own: the `sh` that leads its group (its
          // parent) started it, and a `sh` of that group reads the pool's
          // end of its stdin.
          assert.deepEqual(own, []);
          assert.equal(pgrp, ppid, "its parent leads its group");
          const leader = argvOf(ppid);
          assert.deepEqual(leader.slice(0, 3), ["/bin/sh", "-c", _LIFELINE]);
          const lifelines = groupOf(pgrp).filter((c) =>
            c.pid !== ppid && c.argv[0] === "/bin/sh"
          );
          assert.equal(lifelines.length, 1, JSON.stringify(lifelines));
          pids.push(ppid, lifelines[0]!.pid);
        }
        const status = await owner.end("SIGKILL");
        assert.equal(status.signal, "SIGKILL");
        // The bound only tells a hang from a slow machine.
        const gone = await pollUntil(
          async () => (await alive(pids)).length === 0,
          20_000,
        );
        assert.ok(gone, `left running: ${await alive(pids)}`);
      } finally {
        await killAll(pids);
        await Deno.remove(dir, { recursive: true });
      }
    },
  });
}
