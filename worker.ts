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
import { parseCommandLine } from "./src/_args.ts";

/**
 * Reads the first line of `stream` (the secret) and returns it with a reader
 * positioned after it.
 */
async function readSecret(
  reader: ReadableStreamDefaultReader<Uint8Array>,
): Promise<string> {
  const decoder = new TextDecoder();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) break;
    text += decoder.decode(value, { stream: true });
    if (text.length > 4096) break;
  }
  const secret = text.split("\n")[0]!.trim();
  if (!/^[0-9a-f]{32,128}$/.test(secret)) {
    throw new Error(
      "distex worker: expected the pool's secret as the first line on stdin",
    );
  }
  return secret;
}

/**
 * Runs one worker: `--unix <path>` (the pool's socket) and `--id <n>`.
 * Resolves when the worker is done; the process should then exit.
 *
 * @param args Command-line arguments.
 * @returns The exit code.
 */
export async function workerMain(args: string[]): Promise<number> {
  const { values } = parseCommandLine(args, {
    unix: { type: "string" },
    id: { type: "string" },
  });
  const path = values.unix;
  const workerId = Number(values.id);
  if (typeof path !== "string" || !Number.isInteger(workerId)) {
    console.error("usage: worker.ts --unix <socket path> --id <worker id>");
    return 2;
  }
  const reader = Deno.stdin.readable.getReader();
  const secret = await readSecret(reader);
  // The lifeline: when the pool closes stdin (or dies), exit.
  (async () => {
    try {
      while (!(await reader.read()).done) { /* ignore */ }
    } catch { /* stdin broke: same as closed */ }
    Deno.exit(0);
  })();
  const channel = await Deno.connect({ transport: "unix", path });
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
