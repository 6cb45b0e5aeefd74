/**
 * Launchers start worker processes that connect back to the pool's socket.
 * A launch may start one worker (local) or a group sharing one process tree
 * (one `ssh` per host); the pool only sees the {@link Launch} handle.
 *
 * @module
 */
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
 * this process's stderr. Resolves when the stream ends.
 */
export async function _collectTail(
  stream: ReadableStream<Uint8Array>,
  tail: string[],
  forward: boolean,
): Promise<void> {
  const decoder = new TextDecoder();
  let partial = "";
  try {
    for await (const chunk of stream) {
      if (forward) {
        try {
          Deno.stderr.writeSync(chunk);
        } catch { /* our stderr is gone: keep collecting */ }
      }
      partial += decoder.decode(chunk, { stream: true });
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
}

/** Wraps a spawned child as a {@link Launch}. */
export function _childLaunch(
  child: Deno.ChildProcess,
  host: string,
  respawns: boolean,
  secret: string,
  forwardStderr: boolean,
  failure: (exit: LaunchExit, tail: string[], timeoutMs?: number) => Error,
): Launch {
  const tail: string[] = [];
  const stderrDone = _collectTail(child.stderr, tail, forwardStderr);
  const stdin = child.stdin.getWriter();
  const sent = stdin.write(new TextEncoder().encode(secret + "\n")).catch(
    () => {},
  );
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    stopped ??= sent.then(() => stdin.close()).catch(() => {});
  const exited = child.status.then(async (status) => {
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
      try {
        child.kill(signal);
      } catch { /* already exited */ }
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
  /** The worker script; default this package's `worker.ts`. */
  workerUrl?: string | undefined;
  /** Forward worker stderr to ours; default true. */
  forwardStderr?: boolean | undefined;
}

/**
 * The permission flags for a worker: `-A` by default; otherwise the given
 * flags plus read/write access to the pool's socket, which the worker needs
 * to connect.
 */
export function sandbox(
  permissions: string[] | undefined,
  socketPath: string,
): string[] {
  if (permissions === undefined) return ["-A"];
  if (permissions.some((p) => p === "-A" || p === "--allow-all")) {
    return permissions;
  }
  return [
    ...permissions,
    `--allow-read=${socketPath}`,
    `--allow-write=${socketPath}`,
    `--allow-net=unix:${socketPath}`,
  ];
}

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
    const workerUrl = this.#options.workerUrl ??
      new URL("../worker.ts", import.meta.url).href;
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        ...sandbox(this.#options.permissions, endpoint.socketPath),
        ...(this.#options.denoArgs ?? []),
        workerUrl,
        "--unix",
        endpoint.socketPath,
        "--id",
        String(ids[0]),
      ],
      stdin: "piped",
      stdout: "inherit",
      stderr: "piped",
    }).spawn();
    return _childLaunch(
      child,
      "local",
      false,
      endpoint.secret,
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
    );
  }
}
