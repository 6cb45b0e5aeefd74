/**
 * The worker's watchdog in both forms: a `sh` process (the default local
 * worker on Linux) and a thread (with a memory cap). Either ends a worker
 * spinning in sync code, and what its task started, when the pool's owner
 * is killed.
 *
 * @module
 */
import assert from "node:assert/strict";
import { alive, killAll, pollUntil, startOwner } from "./_util.ts";

const OWNER = new URL("./fixtures/spinning_owner.ts", import.meta.url);

/** The pids of `pid`'s children (Linux), each with its command line. */
function childrenOf(pid: number): { pid: number; argv: string[] }[] {
  const text = Deno.readTextFileSync(`/proc/${pid}/task/${pid}/children`);
  return text.split(" ").filter((s) => s !== "").map(Number).map((child) => ({
    pid: child,
    argv: Deno.readTextFileSync(`/proc/${child}/cmdline`).split("\0"),
  }));
}

for (const kind of ["process", "thread"] as const) {
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
        }>(OWNER, kind === "thread" ? [dir, "thread"] : [dir]);
        const { workers, grandchildren } = owner.said;
        pids = [...workers, ...grandchildren];
        assert.deepEqual(await alive(pids), pids, "not all running");
        for (const worker of workers) {
          const lifelines = childrenOf(worker).filter((c) =>
            c.argv[0] === "/bin/sh" && c.argv.includes("-c")
          );
          // Without a memory cap the watchdog is a process; with one, a
          // thread (and no such child).
          assert.equal(lifelines.length, kind === "process" ? 1 : 0);
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
