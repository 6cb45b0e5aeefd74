/**
 * The scale harness's simulated host (`bench/_sim_host.ts`): it must keep
 * speaking the real protocol, or `bench/scale.ts` measures nothing (it once
 * failed every handshake after workers got keys of their own).
 *
 * @module
 */
import assert from "node:assert/strict";
import { Pool } from "../mod.ts";
import { parseSshLine } from "../bench/_sim_host.ts";

const SIM_HOST = new URL("../bench/_sim_host.ts", import.meta.url).pathname;

Deno.test("bench/_sim_host.ts reads the pool's socket and the worker ids from ssh's command line", () => {
  const line = [
    "-T",
    "-R",
    "/tmp/remote.sock:/tmp/d/pool.sock",
    "--",
    "sim1",
    "sh -c 'deno run -A cli remote --unix /tmp/remote.sock --ids 4,5,6 --pool-version 1'",
  ];
  assert.deepEqual(parseSshLine(line), {
    path: "/tmp/d/pool.sock",
    ids: [4, 5, 6],
  });
});

Deno.test("bench/_sim_host.ts serves simulated workers that pass the handshake and run tasks", async () => {
  await using pool = new Pool({
    workers: 0,
    hosts: ["ssh://sim1/3"],
    ssh: { binary: Deno.execPath(), args: ["run", "-A", SIM_HOST] },
    startTimeout: 60_000,
  });
  await pool.ready;
  assert.equal(pool.totalWorkers, 3);
  const results = await Promise.all(
    Array.from({ length: 30 }, (_, i) => pool.run((x: number) => x + 2, i)),
  );
  assert.deepEqual(results, Array.from({ length: 30 }, (_, i) => i + 2));
  const squares: number[] = [];
  for await (const y of pool.map((x: number) => x * x, [1, 2, 3])) {
    squares.push(y);
  }
  assert.deepEqual(squares, [1, 4, 9]);
});
