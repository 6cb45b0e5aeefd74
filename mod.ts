/**
 * `@distex/pool`: an async, distributed process pool for Deno. Functions run
 * on local worker processes and on workers on other machines reached by SSH,
 * and come back as promises and streams.
 *
 * @example A complete program
 * ```ts
 * import { Pool, progress } from "@distex/pool";
 *
 * // Two local worker processes (new Pool() starts one per CPU). `await using`
 * // closes the pool, and stops its workers, when the scope ends.
 * await using pool = await Pool.create(2);
 *
 * // One call: the function is sent to a worker and its result comes back.
 * console.log(await pool.run((x: number) => x * x, 7)); // 49
 *
 * // Many calls: a stream of results in input order, with progress on stderr.
 * const inputs = Array.from({ length: 100 }, (_, i) => i);
 * const hashes = pool.map(async (n: number) => {
 *   const { createHash } = await import("node:crypto");
 *   return createHash("sha256").update(String(n)).digest("hex").slice(0, 8);
 * }, inputs).pipeThrough(progress({ total: inputs.length, label: "hashing" }));
 * const all = await Array.fromAsync(hashes);
 * console.log(all.length); // 100
 *
 * // Errors thrown in a worker arrive as the same class, with the worker's stack.
 * try {
 *   await pool.run((text: string) => JSON.parse(text), "{oops");
 * } catch (error) {
 *   console.log(error instanceof SyntaxError); // true
 * }
 *
 * // A deadline for one task; a signal would cancel it the same way.
 * const nap = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
 * await pool.apply(nap, [5_000], { timeout: 50 })
 *   .catch((error) => console.log(error.name)); // TimeoutError
 * ```
 *
 * Task functions are sent to workers as source text, so they must be
 * self-contained: use arguments, globals and `await import(...)`, not
 * variables of the surrounding scope. Or name an exported function of a
 * module: `pool.run({ module: import.meta.resolve("./tasks.ts"), name: "fib" }, 30)`.
 *
 * Remote machines join with `new Pool({ workers: 4, hosts: ["ssh://me@maxi/8"] })`:
 * one `ssh` connection per host, workers there connect back through it. Hosts
 * can also be spawning servers (`tls://maxi/8`, started with `cli.ts serve`)
 * or any command that gives a pipe (`{ command: ["srun", ...], workers: 8 }`;
 * {@link slurmHosts} builds them for a Slurm allocation).
 * The command line (`deno run -A jsr:@distex/pool/cli map ./tasks.ts#fib < in.jsonl`)
 * maps an exported function over JSON lines; see the `./cli` entry.
 *
 * @module
 */
export { Pool } from "./src/pool.ts";
export type { MapSource } from "./src/pool_map.ts";
export type {
  HostLostDetail,
  PoolEventListener,
  PoolEventMap,
  WorkerStartDetail,
} from "./src/events.ts";
export type { CloseOptions, PoolOptions, TaskOptions } from "./src/options.ts";
export type { PoolStats, WorkerStats } from "./src/stats.ts";
export type { MapOptions, MapOutcome } from "./src/map_stream.ts";
export type { ModuleFunction, TaskFunction } from "./src/function_ref.ts";
export type { SshOptions } from "./src/ssh_launcher.ts";
export type { TlsOptions } from "./src/serve.ts";
export type { CommandHost, HostEntry } from "./src/host_spec.ts";
export { slurmHosts } from "./src/slurm.ts";
export type { SlurmHostsOptions } from "./src/slurm.ts";
export {
  HostError,
  PoolClosedError,
  QueueFullError,
  WorkerLostError,
} from "./src/errors.ts";
export type { WorkerExit } from "./src/errors.ts";
export { progress } from "./src/progress.ts";
export { distex } from "./src/task_context.ts";
export type { TaskContext } from "./src/task_context.ts";
export { registerType } from "./src/register_type.ts";
export type { TypeCodec } from "./src/register_type.ts";
export type { ProgressOptions } from "./src/progress.ts";
