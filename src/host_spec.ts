/**
 * Host entries of a pool's `hosts` option:
 * - `ssh://[user@]host[:port]/N`: N workers over SSH;
 * - `tls://host[:port]/N` or `host[:port]/N`: N workers started by a
 *   `cli.ts serve` spawning server (port 8899 unless given);
 * - `{ command: string[], workers: N, name? }`: N workers behind any command
 *   that gives the remote supervisor a stdin/stdout pipe (`srun`,
 *   `kubectl exec -i`, `docker exec -i`, plain `ssh`, …).
 *
 * @module
 */

/** A host given as a command that gives a pipe (see {@link parseHostSpec}). */
export interface CommandHost {
  /**
   * The command line, as separate arguments, that runs the remote side up to
   * the `cli.ts` entry point, e.g.
   * `["srun", "-n1", "deno", "run", "-A", "jsr:@distex/pool@0.1.0/cli"]`. The
   * pool appends `remote --stdio --ids <ids> --pool-version <v>`.
   */
  command: string[];
  /** Number of workers to start there. */
  workers: number;
  /** A name for messages and events; default the command line. */
  name?: string | undefined;
}

/** A pool's `hosts` entry: a spec string or a {@link CommandHost}. */
export type HostEntry = string | CommandHost;

/** A parsed host entry. */
export interface HostSpec {
  /** The spec as given (for a command host, its name). */
  spec: string;
  /** What reaches the host. */
  kind: "ssh" | "tls" | "command";
  /** True for `ssh://` hosts. */
  ssh: boolean;
  /** Login user, if given (ssh only). */
  user?: string | undefined;
  /** Host name or address (IPv6 without brackets); a command host's name. */
  host: string;
  /** Port, if given (8899 for spawning servers when not). */
  port?: number | undefined;
  /** Number of workers to start there. */
  workers: number;
  /** A command host's command line. */
  command?: string[] | undefined;
}

/** The port of a `cli.ts serve` server when a spec names none. */
export const DEFAULT_SERVE_PORT = 8899;

const SPEC =
  /^(ssh:\/\/|tls:\/\/)?(?:([A-Za-z0-9._-]+)@)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(?::(\d+))?\/(\d+)$/;

const FORMS =
  "ssh://[user@]host[:port]/N, tls://host[:port]/N, host[:port]/N " +
  "or { command: [...], workers: N }";

function checkWorkers(raw: unknown, what: string): number {
  const workers = Number(raw);
  if (!Number.isSafeInteger(workers) || workers < 1 || workers > 100_000) {
    throw new RangeError(
      `Bad host spec ${what}: worker count ${String(raw)} must be 1 or more`,
    );
  }
  return workers;
}

function parseCommandHost(entry: Record<string, unknown>): HostSpec {
  const what = JSON.stringify(entry);
  for (const key of Object.keys(entry)) {
    if (!["command", "workers", "name"].includes(key)) {
      throw new TypeError(
        `Bad host ${what}: unknown property '${key}' (a command host has command, workers and name)`,
      );
    }
  }
  const command = entry.command;
  if (
    !Array.isArray(command) || command.length === 0 ||
    command.some((a) => typeof a !== "string") || !command[0]
  ) {
    throw new TypeError(
      `Bad host ${what}: 'command' must be a non-empty array of strings, ` +
        `e.g. ["srun", "-n1", "deno", "run", "-A", "jsr:@distex/pool/cli"]`,
    );
  }
  if (typeof entry.workers !== "number") {
    throw new TypeError(
      `Bad host ${what}: 'workers' must be a number, got ${typeof entry
        .workers}`,
    );
  }
  const workers = checkWorkers(entry.workers, what);
  if (
    entry.name !== undefined &&
    (typeof entry.name !== "string" || !entry.name.trim())
  ) {
    throw new TypeError(`Bad host ${what}: 'name' must be a non-empty string`);
  }
  const name = (entry.name as string | undefined) ?? command.join(" ");
  return {
    spec: name,
    kind: "command",
    ssh: false,
    user: undefined,
    host: name,
    port: undefined,
    workers,
    command: [...command],
  };
}

/**
 * Parses and validates a host entry.
 *
 * @param spec For example `"ssh://user@maxi:2222/8"`, `"tls://maxi:8899/4"`
 * or `{ command: ["srun", "-n1", "deno", "run", "-A", "jsr:@distex/pool/cli"], workers: 2 }`.
 * @throws {TypeError} when the entry has none of the forms above.
 * @throws {RangeError} when the port or worker count is out of range.
 */
export function parseHostSpec(spec: unknown): HostSpec {
  if (spec !== null && typeof spec === "object" && !Array.isArray(spec)) {
    return parseCommandHost(spec as Record<string, unknown>);
  }
  if (typeof spec !== "string") {
    throw new TypeError(
      `A host must be a string like "ssh://user@host:22/4" or an object like ` +
        `{ command: [...], workers: 4 }, got ${
          spec === null ? "null" : Array.isArray(spec) ? "array" : typeof spec
        }`,
    );
  }
  const match = SPEC.exec(spec.trim());
  if (!match) {
    const hint = /\/\d+$/.test(spec)
      ? ""
      : " (it needs '/N' at the end: the number of workers on that host)";
    throw new TypeError(
      `Bad host spec ${JSON.stringify(spec)}: expected ${FORMS}${hint}`,
    );
  }
  const [, scheme, user, rawHost, rawPort, rawWorkers] = match;
  const port = rawPort === undefined ? undefined : Number(rawPort);
  if (port !== undefined && (port < 1 || port > 65535)) {
    throw new RangeError(
      `Bad host spec ${JSON.stringify(spec)}: port ${port} is not in 1..65535`,
    );
  }
  const workers = checkWorkers(rawWorkers, JSON.stringify(spec));
  const ssh = scheme === "ssh://";
  if (!ssh && user !== undefined) {
    throw new TypeError(
      `Bad host spec ${
        JSON.stringify(spec)
      }: a spawning server (cli.ts serve) takes no user; for SSH write "ssh://${spec.trim()}"`,
    );
  }
  const host = rawHost!.startsWith("[") ? rawHost!.slice(1, -1) : rawHost!;
  return {
    spec,
    kind: ssh ? "ssh" : "tls",
    ssh,
    user,
    host,
    port: ssh ? port : port ?? DEFAULT_SERVE_PORT,
    workers,
    command: undefined,
  };
}
