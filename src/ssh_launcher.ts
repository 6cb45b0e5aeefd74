/**
 * Remote workers over SSH: one `ssh -R remote.sock:local.sock host …` per
 * host. On the host, `cli.ts remote` starts N workers that share the reverse
 * tunnel. The plain `ssh` binary does the encryption in its own process, off
 * the pool's event loop.
 *
 * The secret goes to the remote side over ssh's stdin (never on a command
 * line), and stdin stays open as the lifeline: when the pool closes it or
 * dies, the remote supervisor stops its workers and exits.
 *
 * @module
 */
import type { HostSpec } from "./host_spec.ts";
import {
  _childLaunch,
  type Endpoint,
  type Launch,
  type Launcher,
  type LaunchExit,
} from "./launcher.ts";
import { HostError } from "./errors.ts";

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
   * `remote --unix <socket> --ids <ids>`.
   * @default {"deno run -A jsr:@distex/pool/cli"}
   */
  command?: string;
  /**
   * The `ssh` binary.
   * @default {"ssh"}
   */
  binary?: string;
}

/** The default remote command. */
export const DEFAULT_REMOTE_COMMAND = "deno run -A jsr:@distex/pool/cli";

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

/** Explains why an ssh launch ended before its workers connected. */
export function _explainSshFailure(
  host: string,
  command: string,
  exit: LaunchExit,
  stderr: string[],
  timeoutMs?: number,
): HostError {
  const text = stderr.join("\n");
  let why: string;
  if (timeoutMs !== undefined) {
    why =
      `workers did not connect within ${timeoutMs} ms (is '${command}' hanging, e.g. downloading?)`;
  } else if (exit.signal) {
    why = `ssh was killed by ${exit.signal} before the workers connected`;
  } else if (/remote port forwarding failed|forwarding failed/i.test(text)) {
    why = "the server refused the reverse UNIX-socket forward " +
      "(sshd needs AllowStreamLocalForwarding yes)";
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
  return new HostError(host, why, text);
}

/** Starts a host's workers through one `ssh` process. */
export class SshLauncher implements Launcher {
  /** The host as written in the spec (with user and port). */
  readonly host: string;
  /** Workers per launch: the spec's N. */
  readonly groupSize: number;
  #spec: HostSpec;
  #options: SshOptions;

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
  }

  /** Spawns `ssh` for the workers `ids`. */
  launch(ids: number[], endpoint: Endpoint): Launch {
    const spec = this.#spec;
    const command = this.#options.command ?? DEFAULT_REMOTE_COMMAND;
    const remoteSocket = `/tmp/distex-${randomTag()}.sock`;
    const remote = `${command} remote --unix ${
      shellQuote(remoteSocket)
    } --ids ${ids.join(",")}`;
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
      "-R",
      `${remoteSocket}:${endpoint.socketPath}`,
      "--",
      spec.user ? `${spec.user}@${spec.host}` : spec.host,
      remote,
    ];
    let child: Deno.ChildProcess;
    try {
      child = new Deno.Command(this.#options.binary ?? "ssh", {
        args,
        stdin: "piped",
        stdout: "inherit",
        stderr: "piped",
      }).spawn();
    } catch (error) {
      throw new HostError(
        this.host,
        `cannot run '${this.#options.binary ?? "ssh"}': ${
          error instanceof Error ? error.message : error
        } (install the OpenSSH client)`,
        "",
        { cause: error },
      );
    }
    return _childLaunch(
      child,
      this.host,
      true,
      endpoint.secret,
      true,
      (exit, tail, timeoutMs) =>
        _explainSshFailure(this.host, command, exit, tail, timeoutMs),
    );
  }
}

/**
 * Creates the launcher for one host spec.
 * @throws {TypeError} for `host/N` specs without `ssh://` (spawning servers
 * are not supported yet).
 */
export function createHostLauncher(
  spec: HostSpec,
  options: SshOptions,
): Launcher {
  if (!spec.ssh) {
    throw new TypeError(
      `Host ${JSON.stringify(spec.spec)}: only ssh:// hosts are supported; ` +
        `write "ssh://${spec.spec}"`,
    );
  }
  return new SshLauncher(spec, options);
}
