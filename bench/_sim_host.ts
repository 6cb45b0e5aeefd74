/**
 * A simulated host for the scale harness (`bench/scale.ts`): one process that
 * holds hundreds of worker connections, each run by the real worker runtime
 * (`src/worker_runtime.ts`, the code `worker.ts` runs), so it speaks the wire
 * protocol exactly as real workers do and follows every change to it. Tasks
 * like `x => x + 2` answer at once: what is left to measure is the pool.
 *
 * The pool starts it in place of `ssh` (`ssh.binary` is `deno`, `ssh.args`
 * are `run -A bench/_sim_host.ts`), so it gets ssh's command line: it takes
 * the pool's socket from `-R remote:local` and the worker ids from the remote
 * command's `--ids a,b,c`, reads the secret from stdin and derives each
 * worker's key from it as the remote side does, connects once per id, and
 * exits when stdin closes (the pool's lifeline).
 *
 * @module
 */
import { workerKey } from "../src/auth.ts";
import { runWorker } from "../src/worker_runtime.ts";
import { watchLifeline } from "../src/_stdin.ts";
import { readSecretLine } from "../src/link.ts";

function fail(message: string): never {
  console.error(`_sim_host.ts: ${message}`);
  Deno.exit(2);
}

/** The pool's socket and the worker ids, from ssh's command line. */
export function parseSshLine(args: string[]): { path: string; ids: number[] } {
  const r = args.indexOf("-R");
  const forward = r >= 0 ? args[r + 1] : undefined;
  // `remote.sock:local.sock`: the pool's socket is after the first colon.
  const path = forward?.slice(forward.indexOf(":") + 1);
  const remote = args[args.length - 1] ?? "";
  const ids = /--ids (\S+)/.exec(remote)?.[1]?.split(",").map(Number) ?? [];
  if (!path || ids.length === 0 || ids.some((id) => !Number.isInteger(id))) {
    fail(`cannot find -R and --ids in: ${args.join(" ")}`);
  }
  return { path, ids };
}

/**
 * Connects to the pool's socket. A full listen backlog (thousands of
 * workers connecting at once) fails a connect with `WouldBlock`: retry, as
 * a real worker's supervisor restarts it (only sooner).
 */
async function connect(path: string): Promise<Deno.Conn> {
  for (let attempt = 0;; attempt++) {
    try {
      return await Deno.connect({ transport: "unix", path });
    } catch (error) {
      if (!(error instanceof Deno.errors.WouldBlock) || attempt >= 200) {
        throw error;
      }
      retries++;
      await new Promise((resolve) =>
        setTimeout(resolve, 5 + 10 * Math.random())
      );
    }
  }
}

/** Connects that found the pool's listen backlog full, or were hung up on. */
let retries = 0;

async function main(): Promise<void> {
  const { path, ids } = parseSshLine(Deno.args);
  const { secret } = await readSecretLine((p) => Deno.stdin.read(p));
  watchLifeline(() => Deno.exit(0));
  const debug = Deno.env.get("SIM_DEBUG") !== undefined;
  const serve = async (
    first: Deno.Conn,
    workerId: number,
  ): Promise<void> => {
    // Each worker holds its own key, derived as a remote supervisor does.
    const key = await workerKey(secret, workerId);
    let channel = first;
    for (let attempt = 0;; attempt++) {
      try {
        await runWorker({ channel, secret: key, workerId });
        return;
      } catch (error) {
        // The pool hangs up on connections beyond the ones it handshakes
        // at once: start again, as a supervisor restarts its worker.
        const refused = error instanceof Error &&
          error.message === "closed during the handshake";
        if (!refused || attempt >= 50) {
          if (debug) console.error(`sim worker ${workerId} failed: ${error}`);
          throw error;
        }
        retries++;
      } finally {
        try {
          channel.close();
        } catch { /* closed */ }
      }
      await new Promise((resolve) =>
        setTimeout(resolve, 20 + 80 * Math.random())
      );
      channel = await connect(path);
    }
  };
  // Connect in waves, each wave connected before the next: a burst of
  // hundreds of connects from one process stalls.
  const running: Promise<void>[] = [];
  for (let i = 0; i < ids.length; i += 32) {
    const wave = ids.slice(i, i + 32);
    const channels = await Promise.all(wave.map(() => connect(path)));
    channels.forEach((c, k) => running.push(serve(c, wave[k]!)));
    if (debug) {
      console.error(
        `sim ${ids[0]}: ${i + wave.length} connected, ${retries} retries`,
      );
    }
  }
  const results = await Promise.allSettled(running);
  const failed = results.filter((r) => r.status === "rejected");
  if (failed.length > 0) {
    fail(
      `${failed.length} connections failed: ${
        (failed[0] as PromiseRejectedResult).reason
      }`,
    );
  }
  Deno.exit(0);
}

if (import.meta.main) await main();
