/**
 * The remote end of a host: one process per host, started by `ssh`, `srun`,
 * `kubectl exec -i`, a `serve` server or any command that gives a pipe. It
 * reads the pool's secret from stdin, starts N workers, restarts any that
 * die, and stops them all when stdin closes (the pool closed it, or the pool
 * or the link died).
 *
 * Two ways to reach the pool:
 * - `--unix <socket>`: the workers connect to that socket (an `ssh -R`
 *   tunnel back to the pool).
 * - `--stdio`: the supervisor listens on a private UNIX socket of its own, its
 *   workers connect to it, and it relays their connections over its own
 *   stdin/stdout (see `link.ts`).
 *
 * @module
 */
import { forwardStdout } from "./_task_output.ts";
import { signalGroup } from "./_process_group.ts";
import { parseCommandLine } from "./_args.ts";
import { backoffMs } from "./_backoff.ts";
import { makeGuardedTempDir } from "./_signal_cleanup.ts";
import { workerKey } from "./auth.ts";
import {
  decodeControl,
  encodeLinkFrame,
  LinkOp,
  LinkParser,
  LinkWriter,
  PING_MS,
  readSecretLine,
  SILENCE_MS,
  versionMismatchLine,
} from "./link.ts";
import { VERSION } from "./version.ts";

interface Slot {
  id: number;
  child: Deno.ChildProcess | undefined;
  stdin: WritableStreamDefaultWriter<Uint8Array> | undefined;
  failures: number;
  /** The pool asked for this worker to be killed. */
  killed: boolean;
}

const USAGE =
  "usage: cli.ts remote (--unix <socket path> | --stdio) --ids <id,id,...> " +
  "[--pool-version <v>] [--worker-flag=<deno flag> ...]";

/**
 * Runs the supervisor: `--unix <tunnel socket> --ids 1,2,3` or
 * `--stdio --ids 1,2,3`.
 *
 * @param args Command-line arguments.
 * @returns The exit code (3: the pool runs another version).
 */
export async function superviseMain(args: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseCommandLine(args, {
      unix: { type: "string" },
      stdio: { type: "boolean" },
      ids: { type: "string" },
      "pool-version": { type: "string" },
      "worker-flag": { type: "string", multiple: true },
    }));
  } catch (error) {
    console.error(`distex remote: ${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  const stdio = values.stdio === true;
  const ids = String(values.ids ?? "").split(",").filter(Boolean).map(Number);
  if (
    (typeof values.unix === "string") === stdio || ids.length === 0 ||
    ids.some((id) => !Number.isInteger(id))
  ) {
    console.error(USAGE);
    return 2;
  }
  const poolVersion = values["pool-version"];
  if (typeof poolVersion === "string" && poolVersion !== VERSION) {
    console.error(versionMismatchLine(VERSION, poolVersion));
    return 3;
  }
  const flags = (values["worker-flag"] as string[] | undefined) ?? [];
  let dir: string | undefined;
  let unguard: (() => void) | undefined;
  let path: string;
  if (stdio) {
    // Ended by SIGTERM (scancel, docker stop) or SIGINT, no finally runs.
    ({ dir, unguard } = makeGuardedTempDir("distex-link-"));
    await Deno.chmod(dir, 0o700);
    path = `${dir}/s.sock`;
  } else {
    path = values.unix as string;
  }
  try {
    return await supervise(path, ids, stdio, flags);
  } finally {
    if (dir) await Deno.remove(dir, { recursive: true }).catch(() => {});
    unguard?.();
  }
}

function workerFlags(flags: string[], path: string): string[] {
  if (flags.length === 0) return ["-A"];
  if (flags.some((f) => f === "-A" || f === "--allow-all")) return flags;
  return [
    ...flags,
    `--allow-read=${path}`,
    `--allow-write=${path}`,
    `--allow-net=unix:${path}`,
  ];
}

async function supervise(
  path: string,
  ids: number[],
  stdio: boolean,
  flags: string[],
): Promise<number> {
  const stdinRead = (p: Uint8Array) => Deno.stdin.read(p);
  const { secret, rest } = await readSecretLine(stdinRead);
  const workerUrl = new URL("../worker.ts", import.meta.url).href;
  // Each worker gets a key of its own, derived from the secret and its id.
  const lines = new Map<number, Uint8Array>();
  for (const id of ids) {
    lines.set(id, new TextEncoder().encode(await workerKey(secret, id) + "\n"));
  }
  let stopping = false;
  const stopped = Promise.withResolvers<void>();
  const slots: Slot[] = ids.map((id) => ({
    id,
    child: undefined,
    stdin: undefined,
    failures: 0,
    killed: false,
  }));
  const stop = () => {
    stopping = true;
    stopped.resolve();
  };

  // The relay (stdio mode): one channel per accepted worker connection.
  const out = new LinkWriter(async (bytes) => {
    let at = 0;
    while (at < bytes.length) at += await Deno.stdout.write(bytes.subarray(at));
  });
  const conns = new Map<number, { conn: Deno.Conn; writing: Promise<void> }>();
  const closeChannel = (channel: number, tell: boolean) => {
    const entry = conns.get(channel);
    if (!entry) return;
    conns.delete(channel);
    try {
      entry.conn.close();
    } catch { /* closed */ }
    if (tell) {
      out.send(encodeLinkFrame(LinkOp.Close, channel)).catch(() => {});
    }
  };

  const parser = new LinkParser((op, channel, payload) => {
    if (op === LinkOp.Control) {
      const control = decodeControl(payload);
      if (control?.kind === "stop") stop();
      else if (control?.kind === "kill") {
        // A worker stuck in sync code never notices that the pool closed its
        // connection, so the pool asks for it to be killed (and restarted).
        const slot = slots.find((s) => s.id === control.id);
        if (slot?.child) {
          // The whole group: what the stuck task started goes too.
          signalGroup(slot.child, "SIGKILL");
          slot.killed = true;
        }
      }
    } else if (op === LinkOp.Data) {
      const entry = conns.get(channel);
      if (!entry) return;
      entry.writing = entry.writing.then(async () => {
        let at = 0;
        while (at < payload.length) {
          at += await entry.conn.write(payload.subarray(at));
        }
      }).catch(() => closeChannel(channel, true));
    } else if (op === LinkOp.Close) {
      const entry = conns.get(channel);
      // Let the bytes already relayed reach the worker first.
      entry?.writing.finally(() => closeChannel(channel, false));
    }
  });
  // On a stdio link, both sides ping; a pool not heard from for
  // SILENCE_MS is gone (a cut network closes nothing).
  let heard = Date.now();
  const pinger = stdio
    ? setInterval(() => {
      if (Date.now() - heard > SILENCE_MS) {
        console.error(
          `distex remote: no word from the pool for ${SILENCE_MS} ms; stopping`,
        );
        stop();
        return;
      }
      out.send(encodeLinkFrame(LinkOp.Ping, 0)).catch(() => {});
    }, PING_MS)
    : undefined;
  (async () => {
    try {
      if (rest.length) parser.push(rest);
      const buffer = new Uint8Array(256 * 1024);
      for (;;) {
        const n = await Deno.stdin.read(buffer);
        if (n === null) break;
        heard = Date.now();
        parser.push(buffer.subarray(0, n));
      }
    } catch (error) {
      console.error(
        `distex remote: bad input on stdin (${
          error instanceof Error ? error.message : error
        }); stopping`,
      );
    }
    stop();
  })();

  let listener: Deno.Listener | undefined;
  let accepting: Promise<void> | undefined;
  if (stdio) {
    listener = Deno.listen({ transport: "unix", path });
    await Deno.chmod(path, 0o600);
    let next = 1;
    accepting = (async () => {
      try {
        for await (const conn of listener!) {
          const channel = next++;
          const entry = { conn, writing: Promise.resolve() };
          conns.set(channel, entry);
          out.send(encodeLinkFrame(LinkOp.Open, channel)).catch(() => {});
          (async () => {
            const buffer = new Uint8Array(256 * 1024);
            try {
              for (;;) {
                const n = await conn.read(buffer);
                if (n === null) break;
                // Waiting for the write is the backpressure.
                await out.data(channel, buffer.subarray(0, n));
              }
            } catch { /* connection or link gone */ }
            closeChannel(channel, true);
          })();
        }
      } catch { /* listener closed */ }
    })();
  }

  const start = (slot: Slot): void => {
    if (stopping) return;
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        ...workerFlags(flags, path),
        workerUrl,
        "--unix",
        path,
        "--id",
        String(slot.id),
      ],
      stdin: "piped",
      // Task output goes to our stderr, which reaches the pool's stderr: on
      // a stdio link our stdout is the link, and the pool's stdout is its
      // owner's data.
      stdout: "piped",
      stderr: "inherit",
      // A process group of its own, as local workers have: killing it (a
      // hard timeout, stop) takes whatever its tasks started along.
      detached: true,
    }).spawn();
    forwardStdout(child.stdout, slot.id);
    slot.child = child;
    const writer = child.stdin.getWriter();
    slot.stdin = writer;
    writer.write(lines.get(slot.id)!).catch(() => {});
    const began = Date.now();
    child.status.then((status) => {
      writer.close().catch(() => {});
      slot.child = undefined;
      signalGroup(child, "SIGKILL"); // what its tasks left behind
      if (stopping) return;
      console.error(
        `distex: worker ${slot.id} ended (${
          status.signal ? `signal ${status.signal}` : `code ${status.code}`
        }); restarting it`,
      );
      // Back off when workers die at once (say, the tunnel is gone), but not
      // after the pool ended one on purpose (it closed the worker's
      // connection: exit code 0; or it asked for a kill).
      const onPurpose = status.code === 0 || slot.killed;
      slot.killed = false;
      slot.failures = !onPurpose && Date.now() - began < 2_000
        ? slot.failures + 1
        : 0;
      const wait = backoffMs(slot.failures);
      setTimeout(() => start(slot), slot.failures ? wait : 0);
    });
  };

  for (const slot of slots) start(slot);
  await stopped.promise;
  clearInterval(pinger);
  const children = slots.map((s) => s.child).filter((c) => c !== undefined);
  // Closing their stdin makes the workers exit on their own.
  for (const slot of slots) slot.stdin?.close().catch(() => {});
  const timer = setTimeout(() => {
    for (const child of children) signalGroup(child, "SIGKILL");
  }, 2_000);
  await Promise.all(children.map((c) => c.status));
  clearTimeout(timer);
  listener?.close();
  await accepting;
  for (const channel of [...conns.keys()]) closeChannel(channel, true);
  await out.drained();
  if (!stdio) await Deno.remove(path).catch(() => {});
  return 0;
}
