/**
 * The bundled worker (`src/_worker_bundle.js`, made by `deno task
 * bundle-worker`): fresh, self-contained, and what local workers run.
 *
 * @module
 */
import assert from "node:assert/strict";
import { Pool, registerType } from "../mod.ts";
import {
  BUNDLE,
  bundleSources,
  recordedDigests,
  ROOT,
  sourceDigests,
  staleSources,
} from "../tools/bundle_worker.ts";
import { argvOf } from "./_util.ts";

const BUNDLE_URL = new URL(BUNDLE, ROOT);

Deno.test("src/_worker_bundle.js was built from the current worker.ts and the modules it imports", async () => {
  const recorded = recordedDigests(await Deno.readTextFile(BUNDLE_URL));
  assert.ok(recorded.size > 0, `${BUNDLE}'s header names no sources`);
  const current = await sourceDigests(await bundleSources());
  assert.ok(current.has("worker.ts") && current.has("src/worker_runtime.ts"));
  const stale = staleSources(recorded, current);
  assert.deepEqual(
    stale,
    [],
    `${BUNDLE} is stale: run \`deno task bundle-worker\` and commit it ` +
      `(local workers run the bundle, not these files):\n  ${
        stale.join("\n  ")
      }`,
  );
});

Deno.test("staleSources() names a changed, a new and a gone source", () => {
  const recorded = new Map([["a.ts", "1"], ["b.ts", "2"], ["c.ts", "3"]]);
  assert.deepEqual(staleSources(recorded, new Map(recorded)), []);
  const current = new Map([["a.ts", "1"], ["b.ts", "9"], ["d.ts", "4"]]);
  assert.deepEqual(staleSources(recorded, current), [
    "b.ts (changed since)",
    "d.ts (not in the bundle)",
    "c.ts (no longer imported)",
  ]);
});

Deno.test("recordedDigests() reads the source lines of the bundle's header only", () => {
  const digest = "ab".repeat(32);
  const text = [
    "// @ts-nocheck",
    `// source worker.ts sha256:${digest}`,
    `// source src/x.ts sha256:${"cd".repeat(32)}`,
    "var x = 1;",
    `// source src/late.ts sha256:${digest}`,
  ].join("\n");
  assert.deepEqual(
    [...recordedDigests(text)],
    [["worker.ts", digest], ["src/x.ts", "cd".repeat(32)]],
  );
});

Deno.test("src/_worker_bundle.js imports no other module", async () => {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", BUNDLE],
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(output.success, new TextDecoder().decode(output.stderr));
  const info = JSON.parse(new TextDecoder().decode(output.stdout)) as {
    modules: { specifier: string }[];
  };
  assert.deepEqual(info.modules.map((m) => m.specifier), [BUNDLE_URL.href]);
});

Deno.test({
  name:
    "Pool: local workers run the bundled worker, also in a sandbox that grants no read access",
  ignore: Deno.build.os !== "linux",
  fn: async () => {
    const pool = await Pool.create({ workers: 1, permissions: [] });
    try {
      const [pid] = pool.stats().workers.map((w) => w.pid);
      const argv = argvOf(pid!);
      assert.ok(argv.includes(BUNDLE_URL.href), argv.join(" "));
      assert.ok(
        !argv.some((a) => a.startsWith("--allow-read=" + ROOT.pathname)),
      );
      assert.equal(await pool.run((x: number) => x + 1, 1), 2);
      // The sandbox is as narrow as before: the package's files stay closed.
      assert.equal(
        await pool.run(async (path: string) => {
          try {
            await Deno.readTextFile(path);
            return "read";
          } catch (error) {
            return (error as Error).name;
          }
        }, new URL("worker.ts", ROOT).pathname),
        "NotCapable",
      );
    } finally {
      await pool.close();
    }
  },
});

Deno.test("registerType(): a second copy of the codec (as in the worker bundle) knows the types registered through mod.ts", async () => {
  // A local worker's codec is the bundle's copy; a task's module registers
  // its types through @distex/pool, another copy (module identity differs).
  const url = new URL("../src/_codec_ext.ts?second-copy", import.meta.url);
  const copy = await import(url.href) as typeof import("../src/_codec_ext.ts");
  class Copied {}
  registerType(Copied, {
    name: "worker_bundle_test.Copied",
    encode: () => 0,
    decode: () => new Copied(),
  });
  assert.equal(copy.userTypeNamed("worker_bundle_test.Copied").Class, Copied);
  assert.equal(
    copy.findUserType(new Copied())?.name,
    "worker_bundle_test.Copied",
  );
});
