/**
 * Launchers start worker processes that connect back to the pool's socket.
 * A launch may start one worker (local) or a group sharing one process tree
 * (one `ssh` per host); the pool only sees the {@link Launch} handle.
 *
 * @module
 */
import { signalGroup } from "./_process_group.ts";
import { escapeControls } from "./_terminal.ts";
import { forgetWorkerKey, launchKey } from "./auth.ts";
import { forwardStdout, type StdoutSink } from "./_task_output.ts";
import type { ByteChannel } from "./protocol.ts";

/** Where workers connect and what they must prove. */
export interface Endpoint {
  /** The pool's UNIX socket. */
  socketPath: string;
  /** The pool's secret, written to the launched process's stdin. */
  secret: string;
  /**
   * Hands the pool a worker connection the launcher obtained itself (one
   * channel of a relayed link); the pool handshakes it like an accepted
   * socket connection.
   */
  accept(channel: ByteChannel): void;
}

/** How a launched process ended. */
export interface LaunchExit {
  /** Exit code, when it exited. */
  code?: number | undefined;
  /** The signal that ended it, if any. */
  signal?: string | undefined;
}

/** A running launch: one process that hosts one or more workers. */
export interface Launch {
  /** Resolves when the process has exited. Never rejects. */
  readonly exited: Promise<LaunchExit>;
  /** Where its workers run: `"local"` or a host name. */
  readonly host: string;
  /** True when the launch restarts its own dead workers (same ids). */
  readonly respawns: boolean;
  /** The last lines the process wrote to stderr. */
  stderrTail(): string[];
  /** Asks the process to stop: closes its stdin lifeline. */
  stop(): Promise<void>;
  /** Kills the process now. */
  kill(signal?: Deno.Signal): void;
  /**
   * Has worker `id` killed where it runs, for a worker that cannot be stopped
   * by closing its connection (stuck in sync code). Only launches that
   * respawn their workers do this; they start it again.
   */
  killWorker(id: number): void;
  /**
   * The error to report when the process ended before all its workers
   * connected (`timeoutMs` set when the pool gave up waiting).
   */
  failure(exit: LaunchExit, timeoutMs?: number): Error;
  /**
   * Whether the launch's process (and its pipes) keep this program alive:
   * an idle pool unrefs them. Optional: a launch without it always does.
   */
  ref?(on: boolean): void;
}

/** Starts workers somewhere. */
export interface Launcher {
  /** `"local"` or the host name, for messages. */
  readonly host: string;
  /** How many workers one launch starts. */
  readonly groupSize: number;
  /**
   * Starts a process hosting the workers `ids`.
   * @throws {Error} when the process cannot be started at all.
   */
  launch(ids: number[], endpoint: Endpoint): Launch;
}

const STDERR_LINES = 20;

/**
 * Keeps the last lines of a byte stream and optionally forwards everything to
 * this process's stderr. Terminal escape sequences and other control
 * characters are taken out of both (see {@link escapeControls}): the stream
 * comes from task code or another host. Resolves when the stream ends.
 */
export async function _collectTail(
  stream: ReadableStream<Uint8Array>,
  tail: string[],
  forward: boolean,
): Promise<void> {
  const decoder = new TextDecoder();
  const encoder = new TextEncoder();
  let partial = "";
  try {
    for await (const chunk of stream) {
      const text = escapeControls(decoder.decode(chunk, { stream: true }));
      if (forward && text) {
        try {
          Deno.stderr.writeSync(encoder.encode(text));
        } catch { /* our stderr is gone: keep collecting */ }
      }
      partial += text;
      const lines = partial.split("\n");
      partial = lines.pop()!;
      for (const line of lines) {
        if (line.trim()) tail.push(line);
      }
      if (tail.length > STDERR_LINES) {
        tail.splice(0, tail.length - STDERR_LINES);
      }
      if (partial.length > 4096) partial = partial.slice(-4096);
    }
  } catch { /* the process died mid-write */ }
  if (partial.trim()) tail.push(partial);
  if (tail.length > STDERR_LINES) tail.splice(0, tail.length - STDERR_LINES);
  summariseOutOfMemory(tail);
}

/**
 * V8's report of a heap out of memory is a screenful of GC traces and a C
 * stack; it ends the process with SIGTRAP. Replace it by one line that says
 * what happened, with the heap size from the last GC trace.
 */
function summariseOutOfMemory(tail: string[]): void {
  const at = tail.findIndex((l) => /Fatal JavaScript out of memory/.test(l));
  if (at < 0) return;
  let mb: string | undefined;
  for (const line of tail) {
    const gc =
      /(?:Mark-Compact|Scavenge)[^\d]*[\d.]+ \([\d.]+\) -> ([\d.]+) \([\d.]+\) MB/
        .exec(line);
    if (gc) mb = gc[1];
  }
  const start = tail.findIndex((l) => l.includes("<--- Last few GCs --->"));
  tail.splice(
    start >= 0 && start < at ? start : at,
    Infinity,
    `distex: ran out of memory${
      mb ? ` at ${Math.round(Number(mb))} MB` : ""
    } (its JavaScript heap reached V8's limit; raise it with maxMemoryMB or --v8-flags=--max-old-space-size)`,
  );
}

/**
 * Wraps a spawned child as a {@link Launch}. With `group`, the child leads a
 * process group of its own (spawned `detached` or through `setsid`): kills
 * reach the whole group, and whatever is left of the group when the child
 * exits is killed too.
 */
export function _childLaunch(
  child: Deno.ChildProcess,
  host: string,
  respawns: boolean,
  secret: string | Promise<string>,
  forwardStderr: boolean,
  failure: (exit: LaunchExit, tail: string[], timeoutMs?: number) => Error,
  group = false,
): Launch {
  const tail: string[] = [];
  const stderrDone = _collectTail(child.stderr, tail, forwardStderr);
  const stdin = child.stdin.getWriter();
  const sent = Promise.resolve(secret).then((line) =>
    stdin.write(new TextEncoder().encode(line + "\n"))
  ).catch(() => {});
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    stopped ??= sent.then(() => stdin.close()).catch(() => {});
  const exited = child.status.then(async (status) => {
    // What the worker's tasks started and left behind.
    if (group) signalGroup(child, "SIGKILL");
    await stderrDone;
    await stop();
    return {
      code: status.signal ? undefined : status.code,
      signal: status.signal ?? undefined,
    };
  });
  return {
    exited,
    host,
    respawns,
    stderrTail: () => tail.slice(),
    failure: (exit, timeoutMs) => failure(exit, tail.slice(), timeoutMs),
    stop,
    kill(signal: Deno.Signal = "SIGKILL") {
      if (group) signalGroup(child, signal);
      else {
        try {
          child.kill(signal);
        } catch { /* already exited */ }
      }
    },
    ref(on: boolean) {
      if (on) child.ref();
      else child.unref();
    },
    killWorker(id: number) {
      // A line to the remote supervisor, after the secret; stdin stays open.
      if (!respawns || stopped) return;
      sent.then(() => stdin.write(new TextEncoder().encode(`kill ${id}\n`)))
        .catch(() => {});
    },
  };
}

/** Options for local workers. */
export interface LocalLauncherOptions {
  /** Deno permission flags for workers; default `["-A"]`. */
  permissions?: string[] | undefined;
  /** Extra `deno run` flags (e.g. `--v8-flags=...`). */
  denoArgs?: string[] | undefined;
  /**
   * The worker script; default this package's worker (`worker.ts` bundled
   * into one file, `src/_worker_bundle.js`).
   */
  workerUrl?: string | undefined;
  /** Forward worker stderr to ours; default true. */
  forwardStderr?: boolean | undefined;
  /**
   * End a worker whose resident memory passes this many MiB (checked by a
   * thread of its own, also while a task runs).
   */
  maxMemoryMB?: number | undefined;
  /**
   * Where the lines workers write to stdout go; default this process's
   * stderr (never its stdout).
   */
  stdout?: StdoutSink | undefined;
  /** Environment variables for the workers, on top of this process's. */
  env?: Record<string, string> | undefined;
}

/** The kinds of access the socket needs, with their short flags. */
const SOCKET_GRANTS = [
  ["read", "R"],
  ["write", "W"],
  ["net", "N"],
] as const;

/** True when `flags` grant `kind` without a list (`--allow-read`, `-R`). */
function blanket(flags: string[], kind: string, short: string): boolean {
  return flags.some((f) =>
    f === `--allow-${kind}` || (/^-[A-Za-z]+$/.test(f) && f.includes(short))
  );
}

/**
 * The permission flags for a worker: `-A` by default; otherwise the given
 * flags plus read/write access to the pool's socket, which the worker needs
 * to connect. A blanket grant (`--allow-read`, `-R`) stays blanket: the
 * socket's grant is added only to a list or to nothing. Remote imports are
 * refused unless the flags grant some (`--allow-import`, `-I`): a worker
 * loaded from a `file:` URL gets `--no-remote`; one loaded from a remote
 * host (a published package) may import from that host only.
 *
 * @param permissions The user's flags, or undefined for `-A`.
 * @param socketPath The pool's socket.
 * @param workerUrl Where the worker's code is loaded from.
 * @returns The flags for `deno run`.
 */
export function sandbox(
  permissions: string[] | undefined,
  socketPath: string,
  workerUrl?: string,
): string[] {
  if (permissions === undefined) return ["-A"];
  if (permissions.some((p) => p === "-A" || p === "--allow-all")) {
    return permissions;
  }
  const flags = [...permissions];
  for (const [kind, short] of SOCKET_GRANTS) {
    if (blanket(permissions, kind, short)) continue;
    flags.push(
      kind === "net"
        ? `--allow-net=unix:${socketPath}`
        : `--allow-${kind}=${socketPath}`,
    );
  }
  const imports = permissions.some((p) =>
    p.startsWith("--allow-import") || blanket(permissions, "import", "I")
  );
  if (!imports) {
    const url = workerUrl === undefined ? undefined : new URL(workerUrl);
    if (url && (url.protocol === "https:" || url.protocol === "http:")) {
      const port = url.port || (url.protocol === "https:" ? "443" : "80");
      flags.push(`--allow-import=${url.hostname}:${port}`);
    } else {
      flags.push("--no-remote");
    }
  }
  return flags;
}

/** Where util-linux's `setsid` may be. */
const SETSID_PATHS = ["/usr/bin/setsid", "/bin/setsid"];

let setsidFound: string | null | undefined;

/**
 * The `setsid` program, when this is Linux, it is there and the pool may run
 * it; else null (then workers are spawned `detached`). Spawning is
 * synchronous on the pool's thread, and Deno 2.9.6 takes 3-5 ms to spawn a
 * `detached` process, about 3 times a plain one (measured, 4 at a time).
 * Spawned through `setsid` (which, as its child is no group leader, calls
 * setsid() and execs the worker in place: same pid, no fork), the worker
 * leads a session and group of its own all the same (issue 14).
 */
export function _setsidPath(): string | null {
  if (setsidFound !== undefined) return setsidFound;
  setsidFound = null;
  if (Deno.build.os !== "linux") return null;
  for (const path of SETSID_PATHS) {
    try {
      // Queried first: a permission Deno would prompt for is not asked.
      const may = (d: Deno.PermissionDescriptor) =>
        Deno.permissions.querySync(d).state === "granted";
      if (
        !may({ name: "run", command: path }) ||
        !may({ name: "read", path }) || !Deno.statSync(path).isFile
      ) continue;
      setsidFound = path;
      break;
    } catch { /* not there, or not ours to look at */ }
  }
  return setsidFound;
}

/**
 * The lifeline a local worker is started through, as the leader of its
 * process group (`setsid /bin/sh -c LIFELINE sh <deno> run … worker.ts …
 * --lifeline group`). It takes the worker's key, the first line of its
 * stdin, and hands it to the worker on a pipe of its own; only then does a
 * `sh` of the group (forked, not started anew) read the rest of stdin, and
 * its end (the pool closed it, or died) kills the whole group, the worker
 * too, whatever it is doing. No key, no worker: stdin's end before the key
 * kills the group as well. The leader waits for the worker and exits as it
 * did (a signal that ended it as code 128 + its number, which
 * {@link _exitOfShell} turns back; a worker that exits with a code above 128
 * itself says so on stdout as it exits), and then the pool kills what is
 * left of the group. The worker, started with the group and not spawning a watchdog
 * of its own, is ready sooner (issue 14). The key never appears in an
 * argument or in the environment: `read` and `echo` are built into `sh`.
 */
export const _LIFELINE = `exec 3<&0 </dev/null
{ read -r k <&3 || kill -KILL 0; echo "$k"; unset k
  { while read -r l <&3; do :; done; kill -KILL 0; } >/dev/null 2>&1 &
} | "$@" 3<&- &
wait $! 2>/dev/null`;

/** Linux signals by number (1 to 31), for the status `sh` reports as 128 + n. */
const SIGNALS = (
  "HUP INT QUIT ILL TRAP ABRT BUS FPE KILL USR1 SEGV USR2 PIPE ALRM TERM " +
  "STKFLT CHLD CONT STOP TSTP TTIN TTOU URG XCPU XFSZ VTALRM PROF WINCH IO " +
  "PWR SYS"
).split(" ").map((name) => `SIG${name}` as Deno.Signal);

/**
 * How a worker started through {@link _LIFELINE} ended: `sh` exits with the
 * worker's code, or 128 + n when signal n ended it. A code above 128 is read
 * as a signal unless the worker said it exited with that code (`told`: what
 * it wrote last on stdout as it exited by its own hand, see
 * {@link forwardStdout}). A task that writes that itself and is then killed
 * by the matching signal is reported as exiting with the code.
 */
export function _exitOfShell(exit: LaunchExit, told?: number): LaunchExit {
  const signal = exit.code !== undefined && exit.code > 128 &&
      exit.code !== told
    ? SIGNALS[exit.code - 129]
    : undefined;
  return signal ? { code: undefined, signal } : exit;
}

let shellAllowed: boolean | undefined;

/** Whether the pool may run `/bin/sh` (asked once, never prompting). */
function _shellAllowed(): boolean {
  if (shellAllowed !== undefined) return shellAllowed;
  try {
    shellAllowed = Deno.permissions.querySync({
          name: "run",
          command: "/bin/sh",
        }).state === "granted" && Deno.statSync("/bin/sh").isFile;
  } catch {
    shellAllowed = false;
  }
  return shellAllowed;
}

/**
 * This package's worker as local workers run it: `worker.ts` and the modules
 * it imports bundled into one file (`deno task bundle-worker`). Started
 * with the workers' `--v8-flags`, `worker.ts`'s ~19 modules cost a worker
 * ~9 ms more CPU than a script with no imports; the bundle costs about what
 * such a script does (Deno 2.9.6, issue 14: `Pool.create(4)` 1.62x -> 1.40x
 * of 4 bare spawns). It behaves as `worker.ts` does;
 * tests/worker_bundle_test.ts keeps it fresh.
 */
const WORKER_BUNDLE = new URL("./_worker_bundle.js", import.meta.url).href;

/** Starts local workers as `deno run worker.ts` child processes. */
export class LocalLauncher implements Launcher {
  /** Always `"local"`. */
  readonly host = "local";
  /** One worker per process. */
  readonly groupSize = 1;
  #options: LocalLauncherOptions;

  /** @param options Permissions, flags, worker script. */
  constructor(options: LocalLauncherOptions = {}) {
    this.#options = options;
  }

  /** Spawns one worker process for `ids[0]`. */
  launch(ids: number[], endpoint: Endpoint): Launch {
    const workerUrl = this.#options.workerUrl ?? WORKER_BUNDLE;
    const maxMemoryMB = this.#options.maxMemoryMB;
    const setsid = _setsidPath();
    // The group's leader watches the lifeline where it can (Linux, setsid
    // and /bin/sh), for this package's worker: a worker script of the
    // user's may not take `--lifeline group`.
    const shell = setsid !== null && this.#options.workerUrl === undefined &&
      _shellAllowed();
    const child = new Deno.Command(setsid ?? Deno.execPath(), {
      args: [
        ...(shell ? ["/bin/sh", "-c", _LIFELINE, "distex-worker"] : []),
        ...(setsid ? [Deno.execPath()] : []),
        "run",
        ...sandbox(this.#options.permissions, endpoint.socketPath, workerUrl),
        ...(this.#options.denoArgs ?? []),
        workerUrl,
        "--unix",
        endpoint.socketPath,
        "--id",
        String(ids[0]),
        ...(maxMemoryMB ? ["--max-memory-mb", String(maxMemoryMB)] : []),
        ...(shell ? ["--lifeline", "group"] : []),
      ],
      ...(this.#options.env ? { env: this.#options.env } : {}),
      stdin: "piped",
      // Task output must not mix into the owner's stdout (its data).
      stdout: "piped",
      stderr: "piped",
      // A process group of its own (a new session): killing the group ends
      // what its tasks started too, and a terminal's Ctrl-C reaches only the
      // pool's owner, whose exit the worker then follows.
      detached: setsid === null,
    }).spawn();
    const stdoutDone = forwardStdout(
      child.stdout,
      ids[0]!,
      this.#options.stdout,
    );
    const launch = _childLaunch(
      child,
      "local",
      false,
      // Its own key: the pool's secret stays with the pool. Imported
      // meanwhile for the pool's side of its handshake.
      launchKey(endpoint.secret, ids[0]!),
      this.#options.forwardStderr ?? true,
      (exit, tail, timeoutMs) => {
        const how = timeoutMs !== undefined
          ? `did not connect to the pool within ${timeoutMs} ms`
          : exit.signal
          ? `was killed by ${exit.signal} before connecting to the pool`
          : `exited with code ${exit.code} before connecting to the pool`;
        const said = tail.length ? `. Its stderr:\n  ${tail.join("\n  ")}` : "";
        return new Error(`Local worker ${ids[0]} ${how}${said}`);
      },
      true,
    );
    const exited = launch.exited.then(async (exit) => {
      forgetWorkerKey(endpoint.secret, ids[0]!); // if it never got in
      const told = await stdoutDone;
      return shell ? _exitOfShell(exit, told) : exit;
    });
    return { ...launch, exited };
  }
}
