/**
 * The remote supervisor as a process of its own (`cli.ts remote`), for what
 * the pool-level tests of hosts do not reach: how it ends on a signal.
 *
 * @module
 */
import assert from "node:assert/strict";
import { childTemp, pollUntil, withTimeout } from "./_util.ts";

const CLI = new URL("../cli.ts", import.meta.url).pathname;

for (const signal of ["SIGTERM", "SIGINT"] as const) {
  Deno.test(`cli.ts remote --stdio ended by ${signal} removes its link directory and dies of ${signal}`, async () => {
    await using tmp = await childTemp();
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", CLI, "remote", "--stdio", "--ids", "1"],
      env: tmp.env,
      stdin: "piped", // it waits for the pool's secret: none comes
      stdout: "null",
      stderr: "null",
    }).spawn();
    let exited = false;
    try {
      const link = () =>
        tmp.names().then((names) =>
          names.some((n) => n.startsWith("distex-link-"))
        );
      assert.ok(await pollUntil(link, 30_000), "no link directory was made");
      child.kill(signal);
      const status = await withTimeout(child.status, 30_000, "the exit");
      exited = true;
      assert.equal(status.signal, signal, `exit ${JSON.stringify(status)}`);
      assert.deepEqual(await tmp.names(), [], "left in its TMPDIR");
    } finally {
      if (!exited) {
        try {
          child.kill("SIGKILL");
        } catch { /* gone */ }
        await child.status;
      }
      await child.stdin.close().catch(() => {});
    }
  });
}
