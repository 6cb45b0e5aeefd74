/**
 * Remote workers over SSH and over any command that gives a pipe.
 *
 * SSH hosts: one `ssh -R remote.sock:local.sock host …` per host; on the host,
 * `cli.ts remote` starts N workers that share the reverse tunnel. The plain
 * `ssh` binary does the encryption in its own process, off the pool's event
 * loop. When the server refuses stream-local forwarding
 * (`AllowStreamLocalForwarding no`), the launcher falls back to a stdio link:
 * plain `ssh host … remote --stdio`, the supervisor relaying its workers'
 * connections over ssh's stdin/stdout (see `link.ts`).
 *
 * Command hosts (`{ command, workers }`): the command (`srun`,
 * `kubectl exec -i`, `docker exec -i`, …) runs the supervisor with `--stdio`.
 *
 * The secret goes to the remote side over stdin (never on a command line),
 * and stdin stays open as the lifeline: when the pool closes it or dies, the
 * remote supervisor stops its workers and exits.
 *
 * @module
 */
import type { HostSpec } from "./host_spec.ts";
import type { Endpoint, Launch, Launcher, LaunchExit } from "./launcher.ts";
import { HostError } from "./errors.ts";
import { findVersionMismatch } from "./link.ts";
import { childTransport, linkLaunch } from "./stdio_link.ts";
import { VERSION } from "./version.ts";
import { TlsLauncher, type TlsOptions } from "./serve.ts";

/** SSH settings for `ssh://` hosts. */
export interface SshOptions {
  /**
   * Extra arguments for `ssh`, before the pool's own: e.g.
   * `["-F", "ssh_config"]` or `["-i", "key"]`. Options given here win over
   * the pool's defaults.
   */
  args?: string[];
  /**
   * The command that starts the remote side; the pool appends
   * `remote --unix <socket> --ids <ids> --pool-version <v>` (or
   * `remote --stdio …`).
   * @default {"deno run -A jsr:@distex/pool@<this version>/cli"}
   */
  command?: string;
  /**
   * The `ssh` binary.
   * @default {"ssh"}
   */
  binary?: string;
  /**
   * How workers reach the pool: `"forward"`, a reverse UNIX-socket tunnel
   * (`ssh -R`, one connection per worker inside ssh); `"stdio"`, the worker
   * connections relayed over ssh's stdin/stdout (for servers with
   * `AllowStreamLocalForwarding no`); `"auto"` tries the tunnel and falls
   * back to stdio when the server refuses it.
   * @default {"auto"}
   */
  link?: "auto" | "forward" | "stdio";
}

/** The default remote command: this very version of the package. */
export const DEFAULT_REMOTE_COMMAND =
  `deno run -A jsr:@distex/pool@${VERSION}/cli`;

/** The default remote command as separate arguments. */
export const DEFAULT_REMOTE_ARGV: readonly string[] = DEFAULT_REMOTE_COMMAND
  .split(" ");

/** The arguments the pool appends to a remote command for workers `ids`. */
export function _remoteArgs(
  ids: number[],
  link: { unix: string } | "stdio",
): string[] {
  return [
    "remote",
    ...(link === "stdio" ? ["--stdio"] : ["--unix", link.unix]),
    "--ids",
    ids.join(","),
    "--pool-version",
    VERSION,
  ];
}

function shellQuote(text: string): string {
  return /^[A-Za-z0-9_./:@%+=,-]+$/.test(text)
    ? text
    : `'${text.replaceAll("'", `'\\''`)}'`;
}

function randomTag(): string {
  return Array.from(
    crypto.getRandomValues(new Uint8Array(8)),
    (b) => b.toString(16).padStart(2, "0"),
  ).join("");
}

/**
 * The explanation for a remote side of another version (it says so on
 * stderr), or for one too old to know `--pool-version`.
 */
export function _versionProblem(stderr: string[]): string | undefined {
  const mismatch = findVersionMismatch(stderr);
  const install = (v: string) =>
    `install it there with 'deno cache jsr:@distex/pool@${v}/cli' ` +
    `and run it as 'deno run -A jsr:@distex/pool@${v}/cli'`;
  if (mismatch) {
    return `the host runs @distex/pool ${mismatch.remote} and the pool ${mismatch.pool}: ` +
      `both sides need the same version; ${install(mismatch.pool)}`;
  }
  if (/Unknown option '--(pool-version|stdio)'/.test(stderr.join("\n"))) {
    return `the host runs an older @distex/pool than the pool's ${VERSION} ` +
      `(it does not know --pool-version): ${install(VERSION)}`;
  }
  return undefined;
}

/** Explains why an ssh launch ended before its workers connected. */
export function _explainSshFailure(
  host: string,
  command: string,
  exit: LaunchExit,
  stderr: string[],
  timeoutMs?: number,
  note = "",
): HostError {
  const text = stderr.join("\n");
  let why: string;
  const version = _versionProblem(stderr);
  if (timeoutMs !== undefined) {
    why =
      `workers did not connect within ${timeoutMs} ms (is '${command}' hanging, e.g. downloading?)`;
  } else if (version) {
    why = version;
  } else if (exit.signal) {
    why = `ssh was killed by ${exit.signal} before the workers connected`;
  } else if (/remote port forwarding failed|forwarding failed/i.test(text)) {
    why = "the server refused the reverse UNIX-socket forward " +
      "(sshd needs AllowStreamLocalForwarding yes, or set ssh.link to 'stdio')";
  } else if (/Permission denied|Too many authentication failures/i.test(text)) {
    why = "ssh could not log in: the key was refused " +
      "(set up key-based login for this user, or pass ssh.args like ['-i', key])";
  } else if (
    /Could not resolve|Connection refused|timed out|No route to host|Network is unreachable|Invalid argument|Connection closed|Connection reset/i
      .test(text)
  ) {
    why = "ssh could not reach the host";
  } else if (
    exit.code === 127 ||
    /command not found|: No such file or directory$/im.test(text)
  ) {
    why = `'${command.split(" ")[0]}' was not found on the host ` +
      "(install Deno there, or set ssh.command to its absolute path)";
  } else if (exit.code === 255) {
    why = "ssh failed (exit code 255)";
  } else {
    why = `the remote command '${command}' exited with code ${exit.code}`;
  }
  return new HostError(host, why + note, text);
}

/** Explains why a command host ended before its workers connected. */
export function _explainCommandFailure(
  host: string,
  command: string[],
  exit: LaunchExit,
  stderr: string[],
  timeoutMs?: number,
): HostError {
  const text = stderr.join("\n");
  const line = command.join(" ");
  let why: string;
  const version = _versionProblem(stderr);
  if (timeoutMs !== undefined) {
    why =
      `workers did not connect within ${timeoutMs} ms (is '${line}' hanging, e.g. waiting for resources or downloading?)`;
    if (
      /(^|\/)srun$/.test(command[0]!) &&
      !command.some((a) => a === "-u" || a === "--unbuffered")
    ) {
      why += "; srun needs -u (--unbuffered): by default it passes output " +
        "on line by line, which holds the link";
    }
  } else if (version) {
    why = version;
  } else if (exit.signal) {
    why = `'${
      command[0]
    }' was killed by ${exit.signal} before the workers connected`;
  } else if (
    exit.code === 127 ||
    /command not found|executable file not found|: No such file or directory$/im
      .test(text)
  ) {
    why = `the command '${line}' could not start the remote side ` +
      "(is Deno installed where it runs? give its absolute path in the command)";
  } else {
    why =
      `the command '${line}' exited with code ${exit.code} before its workers connected`;
  }
  return new HostError(host, why, text);
}

function spawn(
  host: string,
  binary: string,
  args: string[],
  stdio: boolean,
): Deno.ChildProcess {
  try {
    return new Deno.Command(binary, {
      args,
      stdin: "piped",
      stdout: stdio ? "piped" : "inherit",
      stderr: "piped",
    }).spawn();
  } catch (error) {
    throw new HostError(
      host,
      `cannot run '${binary}': ${
        error instanceof Error ? error.message : error
      }${binary === "ssh" ? " (install the OpenSSH client)" : ""}`,
      "",
      { cause: error },
    );
  }
}

/** Starts a host's workers through one `ssh` process. */
export class SshLauncher implements Launcher {
  /** The host as written in the spec (with user and port). */
  readonly host: string;
  /** Workers per launch: the spec's N. */
  readonly groupSize: number;
  #spec: HostSpec;
  #options: SshOptions;
  /** The link that worked (or was asked for); undefined until known. */
  #link: "forward" | "stdio" | undefined;

  /**
   * @param spec The parsed host spec.
   * @param options SSH settings.
   */
  constructor(spec: HostSpec, options: SshOptions) {
    this.#spec = spec;
    this.#options = options;
    this.groupSize = spec.workers;
    this.host = `${spec.user ? `${spec.user}@` : ""}${spec.host}${
      spec.port ? `:${spec.port}` : ""
    }`;
    const link = options.link ?? "auto";
    this.#link = link === "auto" ? undefined : link;
  }

  /** Spawns `ssh` for the workers `ids`. */
  launch(ids: number[], endpoint: Endpoint): Launch {
    if (this.#link !== undefined) {
      return this.#launch(ids, endpoint, this.#link, "");
    }
    // Auto: try the tunnel; if the server refuses it, use a stdio link.
    let current = this.#launch(ids, endpoint, "forward", "");
    let stopped = false;
    let refd = true;
    const exited = current.exited.then((exit) => {
      const refused = /remote port forwarding failed/i.test(
        current.stderrTail().join("\n"),
      );
      if (!refused || stopped) {
        if (!refused && this.#link === undefined) this.#link = "forward";
        return exit;
      }
      this.#link = "stdio";
      try {
        current = this.#launch(
          ids,
          endpoint,
          "stdio",
          " (the server refused the reverse UNIX-socket forward, " +
            "so the pool used a stdio link, which failed too)",
        );
        current.ref?.(refd);
      } catch (error) {
        const failed = error;
        return Promise.reject(failed);
      }
      return current.exited;
    });
    return {
      exited: exited.catch(() => ({ code: 255 })),
      host: this.host,
      respawns: true,
      stderrTail: () => current.stderrTail(),
      failure: (exit, timeoutMs) => current.failure(exit, timeoutMs),
      stop: () => {
        stopped = true;
        return current.stop();
      },
      kill: (signal) => {
        stopped = true;
        current.kill(signal);
      },
      killWorker: (id) => current.killWorker(id),
      ref: (on) => {
        refd = on;
        current.ref?.(on);
      },
    };
  }

  #launch(
    ids: number[],
    endpoint: Endpoint,
    link: "forward" | "stdio",
    note: string,
  ): Launch {
    const spec = this.#spec;
    const command = this.#options.command ?? DEFAULT_REMOTE_COMMAND;
    const remoteSocket = `/tmp/distex-${randomTag()}.sock`;
    let remote = [
      command,
      ..._remoteArgs(ids, link === "stdio" ? "stdio" : { unix: remoteSocket })
        .map(shellQuote),
    ].join(" ");
    if (link === "forward") {
      // sshd makes the forwarded socket and never removes it: remove it
      // after the remote side ends, however it ends (a command that is not
      // distex, a version mismatch, a killed supervisor). Through `sh -c`, so
      // it holds whatever the login shell is.
      remote = `sh -c ${
        shellQuote(
          `${remote}; s=$?; rm -f ${shellQuote(remoteSocket)}; exit $s`,
        )
      }`;
    }
    const args = [
      ...(this.#options.args ?? []),
      "-T",
      "-o",
      "BatchMode=yes",
      "-o",
      "ExitOnForwardFailure=yes",
      "-o",
      "ServerAliveInterval=2",
      "-o",
      "ServerAliveCountMax=3",
      "-o",
      "ConnectTimeout=10",
      ...(spec.port ? ["-p", String(spec.port)] : []),
      ...(link === "forward"
        ? ["-R", `${remoteSocket}:${endpoint.socketPath}`]
        : []),
      "--",
      spec.user ? `${spec.user}@${spec.host}` : spec.host,
      remote,
    ];
    const binary = this.#options.binary ?? "ssh";
    const child = spawn(this.host, binary, args, link === "stdio");
    return linkLaunch(
      childTransport(child, link === "stdio"),
      this.host,
      endpoint,
      (exit, tail, timeoutMs) =>
        _explainSshFailure(this.host, command, exit, tail, timeoutMs, note),
    );
  }
}

/**
 * Starts a host's workers through any command that gives the remote
 * supervisor a stdin/stdout pipe (`srun`, `kubectl exec -i`, …).
 */
export class CommandLauncher implements Launcher {
  /** The host's name (for messages and events). */
  readonly host: string;
  /** Workers per launch. */
  readonly groupSize: number;
  #command: string[];

  /** @param spec A parsed command host. */
  constructor(spec: HostSpec) {
    this.host = spec.host;
    this.groupSize = spec.workers;
    this.#command = spec.command!;
  }

  /** Runs the command for the workers `ids`. */
  launch(ids: number[], endpoint: Endpoint): Launch {
    const [binary, ...rest] = this.#command;
    const child = spawn(this.host, binary!, [
      ...rest,
      ..._remoteArgs(ids, "stdio"),
    ], true);
    return linkLaunch(
      childTransport(child, true),
      this.host,
      endpoint,
      (exit, tail, timeoutMs) =>
        _explainCommandFailure(
          this.host,
          this.#command,
          exit,
          tail,
          timeoutMs,
        ),
    );
  }
}

/**
 * Creates the launcher for one host entry.
 */
export function createHostLauncher(
  spec: HostSpec,
  ssh: SshOptions,
  tls: TlsOptions = {},
): Launcher {
  if (spec.kind === "command") return new CommandLauncher(spec);
  if (spec.kind === "tls") return new TlsLauncher(spec, tls);
  return new SshLauncher(spec, ssh);
}
