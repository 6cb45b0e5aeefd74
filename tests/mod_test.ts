/**
 * Pins the public surface: the exact runtime exports of `mod.ts`, the entry
 * points in `deno.json`, and the version.
 *
 * @module
 */
import assert from "node:assert/strict";
import * as mod from "../mod.ts";
import { VERSION } from "../src/version.ts";

const root = new URL("../", import.meta.url);

Deno.test("mod.ts exports exactly the documented values", () => {
  assert.deepEqual(Object.keys(mod).sort(), [
    "HostError",
    "Pool",
    "PoolClosedError",
    "QueueFullError",
    "WorkerLostError",
    "distex",
    "progress",
    "registerType",
    "slurmHosts",
  ]);
});

Deno.test("mod.ts re-exports the documented types", async () => {
  const source = await Deno.readTextFile(new URL("mod.ts", root));
  const types = [...source.matchAll(/export type \{([^}]*)\}/g)]
    .flatMap((m) => m[1]!.split(",").map((name) => name.trim()))
    .filter(Boolean)
    .sort();
  assert.deepEqual(types, [
    "CloseOptions",
    "CommandHost",
    "HostEntry",
    "HostLostDetail",
    "MapOptions",
    "MapOutcome",
    "MapSource",
    "ModuleFunction",
    "PoolEventListener",
    "PoolEventMap",
    "PoolOptions",
    "PoolStats",
    "ProgressOptions",
    "SlurmHostsOptions",
    "SshOptions",
    "TaskContext",
    "TaskFunction",
    "TaskOptions",
    "TlsOptions",
    "TypeCodec",
    "WorkerExit",
    "WorkerStartDetail",
    "WorkerStats",
  ]);
});

Deno.test("deno.json exports the documented entry points and the version", async () => {
  const config = JSON.parse(
    await Deno.readTextFile(new URL("deno.json", root)),
  );
  assert.equal(config.name, "@distex/pool");
  assert.deepEqual(config.exports, {
    ".": "./mod.ts",
    "./worker": "./worker.ts",
    "./cli": "./cli.ts",
  });
  assert.equal(config.version, VERSION);
});
