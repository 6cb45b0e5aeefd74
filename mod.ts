/**
 * `@distex/pool`: an async, distributed process pool for Deno. Functions run
 * on local worker processes and on workers on other machines reached by SSH,
 * and come back as promises and streams.
 *
 * ```ts
 * import { Pool } from "./mod.ts";
 *
 * await using pool = new Pool(2); // two local worker processes
 * console.log(await pool.run((x: number) => x * x, 7)); // 49
 *
 * const results = pool.map(async (n: number) => {
 *   const { createHash } = await import("node:crypto");
 *   return createHash("sha256").update(String(n)).digest("hex").slice(0, 8);
 * }, [1, 2, 3]);
 * for await (const hash of results) console.log(hash);
 * ```
 *
 * Task functions are sent to workers as source text, so they must be
 * self-contained: use arguments, globals and `await import(...)`, not
 * variables of the surrounding scope. Or name an exported function of a
 * module: `pool.run({ module: import.meta.resolve("./tasks.ts"), name: "fib" }, 30)`.
 *
 * @module
 */
export { Pool } from "./src/pool.ts";
export type {
  CloseOptions,
  PoolOptions,
  PoolStats,
  TaskOptions,
  WorkerStats,
} from "./src/pool.ts";
export type { MapOptions } from "./src/map_stream.ts";
export type { ModuleFunction, TaskFunction } from "./src/function_ref.ts";
export type { SshOptions } from "./src/ssh_launcher.ts";
export { HostError, PoolClosedError, WorkerLostError } from "./src/errors.ts";
export type { WorkerExit } from "./src/errors.ts";
export { progress } from "./src/progress.ts";
export type { ProgressOptions } from "./src/progress.ts";
