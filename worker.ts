/**
 * The worker process. A pool starts it as
 * `deno run -A worker.ts --unix <socket> --id <n>` and writes its secret as the
 * first line on the worker's stdin; stdin then stays open as a lifeline. The
 * worker connects to the socket, proves it knows the secret, runs tasks, and
 * exits when the connection ends, when the pool says so, or when stdin closes
 * (so workers never outlive their pool).
 *
 * @example Start a worker by hand (a pool normally does this)
 * ```ts ignore
 * import { workerMain } from "@distex/pool/worker";
 * await workerMain(["--unix", "/tmp/distex-x/pool.sock", "--id", "1"]);
 * ```
 *
 * @module
 */
import { runWorker } from "./src/worker_runtime.ts";
import { readSecret, watchLifeline } from "./src/_stdin.ts";

/**
 * Runs one worker: `--unix <path>` (the pool's socket) and `--id <n>`.
 * Resolves when the worker is done; the process should then exit.
 *
 * @param args Command-line arguments.
 * @returns The exit code.
 */
export async function workerMain(args: string[]): Promise<number> {
  // Parsed by hand: node:util costs a worker ~30 ms of start-up.
  let path: string | undefined;
  let workerId = NaN;
  let known = args.length === 4;
  for (let i = 0; i + 1 < args.length; i += 2) {
    if (args[i] === "--unix") path = args[i + 1];
    else if (args[i] === "--id") workerId = Number(args[i + 1]);
    else known = false;
  }
  if (!known || path === undefined || !Number.isInteger(workerId)) {
    console.error("usage: worker.ts --unix <socket path> --id <worker id>");
    return 2;
  }
  const { secret, reader } = await readSecret();
  // The lifeline: when the pool closes stdin (or dies), exit.
  watchLifeline(reader, () => Deno.exit(0));
  let channel: Deno.Conn;
  try {
    channel = await Deno.connect({ transport: "unix", path });
  } catch (error) {
    // A pool that closes before this worker connected removes its socket,
    // then closes our stdin, which ends this process quietly (above). Give
    // that a moment before reporting the failure.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    throw error;
  }
  try {
    await runWorker({ channel, secret, workerId });
  } finally {
    try {
      channel.close();
    } catch { /* already closed */ }
  }
  return 0;
}

if (import.meta.main) {
  let code = 0;
  try {
    code = await workerMain(Deno.args);
  } catch (error) {
    console.error(
      `distex worker: ${error instanceof Error ? error.message : error}`,
    );
    code = 1;
  }
  Deno.exit(code);
}
