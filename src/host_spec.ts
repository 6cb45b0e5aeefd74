/**
 * Host specs: `[ssh://][user@]host[:port]/N`.
 *
 * @module
 */

/** A parsed host spec. */
export interface HostSpec {
  /** The spec as given. */
  spec: string;
  /** True for `ssh://` hosts; false for spawning servers. */
  ssh: boolean;
  /** Login user, if given. */
  user?: string | undefined;
  /** Host name or address (IPv6 without brackets). */
  host: string;
  /** Port, if given. */
  port?: number | undefined;
  /** Number of workers to start there. */
  workers: number;
}

const SPEC =
  /^(ssh:\/\/)?(?:([A-Za-z0-9._-]+)@)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(?::(\d+))?\/(\d+)$/;

/**
 * Parses and validates a host spec.
 *
 * @param spec For example `"ssh://user@maxi:2222/8"`.
 * @throws {TypeError} when the spec does not have the form
 * `[ssh://][user@]host[:port]/N`.
 * @throws {RangeError} when the port or worker count is out of range.
 */
export function parseHostSpec(spec: unknown): HostSpec {
  if (typeof spec !== "string") {
    throw new TypeError(
      `A host spec must be a string like "ssh://user@host:22/4", got ${typeof spec}`,
    );
  }
  const match = SPEC.exec(spec.trim());
  if (!match) {
    const hint = /\/\d+$/.test(spec)
      ? ""
      : " (it needs '/N' at the end: the number of workers on that host)";
    throw new TypeError(
      `Bad host spec ${
        JSON.stringify(spec)
      }: expected [ssh://][user@]host[:port]/N${hint}`,
    );
  }
  const [, ssh, user, rawHost, rawPort, rawWorkers] = match;
  const port = rawPort === undefined ? undefined : Number(rawPort);
  if (port !== undefined && (port < 1 || port > 65535)) {
    throw new RangeError(
      `Bad host spec ${JSON.stringify(spec)}: port ${port} is not in 1..65535`,
    );
  }
  const workers = Number(rawWorkers);
  if (!Number.isSafeInteger(workers) || workers < 1 || workers > 100_000) {
    throw new RangeError(
      `Bad host spec ${
        JSON.stringify(spec)
      }: worker count ${rawWorkers} must be 1 or more`,
    );
  }
  const host = rawHost!.startsWith("[") ? rawHost!.slice(1, -1) : rawHost!;
  return { spec, ssh: ssh !== undefined, user, host, port, workers };
}
