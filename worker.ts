/**
 * The worker process. A pool starts it as
 * `deno run -A worker.ts --unix <socket> --id <n>` and writes its key as the
 * first line on the worker's stdin; stdin then stays open as a lifeline. The
 * worker connects to the socket, proves it knows the key, runs tasks, and
 * exits when the connection ends or when the pool says so. A watchdog (a
 * thread, or a `sh` process where it can be one) ends it (and the process
 * group it leads) when stdin closes, even while a task blocks the worker's
 * event loop, so workers never outlive their pool; with `--max-memory-mb <n>`
 * it (then a thread) also ends the worker when its resident memory passes n
 * MiB. With `--lifeline group`, the worker watches no stdin: the leader of
 * its process group (the `sh` a local pool starts it through on Linux) reads
 * the pool's end and kills the group when it closes.
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
import { readKeyLine } from "./src/_stdin.ts";
import { importKey } from "./src/auth.ts";

function describe(error: unknown): string {
  return error instanceof Error ? error.stack ?? error.message : String(error);
}

/**
 * A promise a task left rejected with no handler, or an error thrown from a
 * task's timer callback, would end the whole worker and every task on it.
 * They are reported on stderr (which the pool forwards) instead.
 */
function reportStrayErrors(): void {
  globalThis.addEventListener("unhandledrejection", (event) => {
    event.preventDefault();
    console.error(
      `distex worker: a task left a promise rejection unhandled: ${
        describe(event.reason)
      }`,
    );
  });
  globalThis.addEventListener("error", (event) => {
    event.preventDefault();
    console.error(
      `distex worker: an error escaped a task: ${
        describe(event.error ?? event.message)
      }`,
    );
  });
}

/**
 * Ends what this worker writes to stdout when it exits by its own hand with
 * a code above 128 (followed by the code): the `sh` it runs under with
 * `--lifeline group` reports such a code as it reports a signal (128 + n),
 * and the pool reads this to tell them apart (`forwardStdout` in
 * src/_task_output.ts, which has the same text, and `_exitOfShell` in
 * src/launcher.ts).
 */
const EXIT_MARK = "\u0000distex-exit ";

/**
 * With `--lifeline group`: a worker that exits with a code above 128 (a
 * task's `Deno.exit(137)`, which runs the `unload` event with the code set)
 * writes {@link EXIT_MARK} and the code on stdout, with no newline (it stays
 * the stream's last line), before it ends. Nothing is written for other
 * codes, or when a signal ends it.
 */
function tellExitCode(): void {
  globalThis.addEventListener("unload", () => {
    const code = Deno.exitCode;
    if (!(code > 128)) return;
    try {
      Deno.stdout.writeSync(new TextEncoder().encode(`${EXIT_MARK}${code}`));
    } catch { /* the pool is gone: nobody to tell */ }
  });
}

/**
 * How long a worker that lost its connection before it was in (a failed
 * connect, or a reset or end during its handshake) waits before it reports
 * that. A pool that closes stops listening first (whoever is still in the
 * handshake gets a reset), then closes the lifelines, which ends this
 * process quietly meanwhile; under load the two are hundreds of ms apart.
 */
const LOST_GRACE_MS = 1_000;

/** Whether `error` is the connection's loss rather than a protocol failure. */
function connectionLost(error: unknown): boolean {
  const errors = Deno.errors;
  return error instanceof errors.ConnectionReset ||
    error instanceof errors.ConnectionAborted ||
    error instanceof errors.BrokenPipe ||
    error instanceof errors.UnexpectedEof ||
    error instanceof errors.NotConnected ||
    // handshake.ts: the stream ended before the pool's challenge.
    (error instanceof Error && error.message === "closed during the handshake");
}

/** Waits {@link LOST_GRACE_MS}, then throws `error`. */
async function reportLate(error: unknown): Promise<never> {
  await new Promise((resolve) => setTimeout(resolve, LOST_GRACE_MS));
  throw error;
}

/**
 * Once connected, the worker needs no access to the socket's path: it gives
 * up what the pool granted for it (in a sandbox), so that its tasks can
 * neither remove the socket nor listen on its path in the pool's place. A
 * grant wider than the socket (the user's, covering its directory) is left
 * alone: revoking inside it would revoke all of it.
 */
function revokeSocketAccess(path: string): void {
  const dir = path.slice(0, path.lastIndexOf("/")) || "/";
  const sibling = `${dir}/.distex-probe`;
  const permissions = Deno.permissions;
  const granted = (d: Deno.PermissionDescriptor) =>
    permissions.querySync(d).state === "granted";
  for (const name of ["read", "write"] as const) {
    if (granted({ name, path }) && !granted({ name, path: dir })) {
      permissions.revokeSync({ name, path });
    }
  }
  const net = { name: "net", host: `unix:${path}` } as const;
  if (granted(net) && !granted({ name: "net", host: `unix:${sibling}` })) {
    permissions.revokeSync(net);
  }
}

/**
 * Runs one worker: `--unix <path>` (the pool's socket), `--id <n>` and
 * optionally `--max-memory-mb <n>` and `--lifeline group` (its group's
 * leader watches the lifeline; the default, `self`, has it watched here).
 * Resolves when the worker is done; the process should then exit.
 *
 * @param args Command-line arguments.
 * @returns The exit code.
 */
export async function workerMain(args: string[]): Promise<number> {
  // Parsed by hand: node:util costs a worker ~30 ms of start-up.
  let path: string | undefined;
  let workerId = NaN;
  let maxMemoryMB = 0;
  let lifeline = "self";
  let known = args.length % 2 === 0;
  for (let i = 0; i + 1 < args.length; i += 2) {
    if (args[i] === "--unix") path = args[i + 1];
    else if (args[i] === "--id") workerId = Number(args[i + 1]);
    else if (args[i] === "--max-memory-mb") maxMemoryMB = Number(args[i + 1]);
    else if (args[i] === "--lifeline") lifeline = args[i + 1]!;
    else known = false;
  }
  if (
    !known || path === undefined || !Number.isInteger(workerId) ||
    !(maxMemoryMB >= 0) || (lifeline !== "self" && lifeline !== "group")
  ) {
    console.error(
      "usage: worker.ts --unix <socket path> --id <worker id> [--max-memory-mb <n>] [--lifeline self|group]",
    );
    return 2;
  }
  // Connecting and creating the watchdog come first: a watchdog thread's
  // creation blocks this thread (~12 ms), while the pool accepts the
  // connection, sends its challenge and writes this worker's key.
  const connecting = Deno.connect({ transport: "unix", path });
  connecting.catch(() => {}); // awaited below
  // With `--lifeline group`, the leader of this process's group (the `sh`
  // its launcher started it through) watches the pool's end of stdin and
  // kills the group; this process only gets its key on stdin, and loads no
  // watchdog unless it has memory to watch.
  const watchdog = lifeline === "group" && !maxMemoryMB
    ? undefined
    : (await import("./src/_watchdog.ts")).createWatchdog({
      maxMemoryMB,
      watchStdin: lifeline === "self",
    });
  // This worker's own key (never the pool's secret), kept only as a
  // non-extractable CryptoKey: the text is wiped once imported.
  const material = readKeyLine();
  const key = await importKey(material);
  material.fill(0);
  // The lifeline, from now on read by the watchdog: when the pool
  // closes stdin (or dies), the process ends, whatever a task is doing.
  const watching = watchdog?.start();
  reportStrayErrors();
  if (lifeline === "group") tellExitCode();
  let channel: Deno.Conn;
  try {
    channel = await connecting;
  } catch (error) {
    // A pool that closes before this worker connected removes its socket,
    // then closes our stdin, which ends this process quietly (above). Give
    // that a moment before reporting the failure.
    return await reportLate(error);
  }
  let lost: unknown;
  try {
    revokeSocketAccess(path);
    // Before the handshake: a worker whose watchdog cannot start fails
    // before the pool counts it in.
    await watching;
    await runWorker({
      channel,
      secret: key,
      workerId,
    });
  } catch (error) {
    // A lost connection (a reset or an end) waits as a failed connect does:
    // in the handshake it is most likely the pool closing (it stopped
    // listening), whose lifeline's kill then ends this process quietly;
    // after it, the pool hung up. A protocol error (a listener that does
    // not know this worker's key) is reported at once.
    if (!connectionLost(error)) throw error;
    lost = error;
  } finally {
    try {
      channel.close();
    } catch { /* already closed */ }
  }
  if (lost !== undefined) return await reportLate(lost);
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
