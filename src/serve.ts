/**
 * Spawning servers: `cli.ts serve` on a host, `tls://host:port/N` in a pool.
 *
 * The pool connects to the server over TLS (the server's certificate is
 * checked against the CA or pinned certificate the pool is given), and both
 * sides prove that they know the shared token (HMAC-SHA256 over the other
 * side's random nonce; the token never crosses the wire). The server then
 * starts a remote supervisor (`cli.ts remote --stdio`) for the pool's N
 * workers, and that TLS connection becomes the supervisor's link: its
 * stdin/stdout are relayed to it byte for byte. So a server host runs exactly
 * what a `{ command }` host runs, and the pool needs no listener of its own.
 * When the connection ends (the pool closed, died or lost the network), the
 * server closes the supervisor's stdin and the workers stop.
 *
 * Here: the pool's launcher (`TlsLauncher`) and the server (its command
 * line, the accept loop, the relay). The handshake between them, both sides,
 * is in `serve_handshake.ts`.
 *
 * @module
 */
import { parseCommandLine } from "./_args.ts";
import { HostError } from "./errors.ts";
import type { HostSpec } from "./host_spec.ts";
import { DEFAULT_SERVE_PORT } from "./host_spec.ts";
import type { Endpoint, Launch, Launcher, LaunchExit } from "./launcher.ts";
import {
  answerPool,
  askServer,
  HANDSHAKE_MS,
  readToken,
  withDeadline,
  writeAll,
} from "./serve_handshake.ts";
import { linkLaunch, type LinkTransport } from "./stdio_link.ts";
import { VERSION } from "./version.ts";

/** Settings for `tls://` (spawning server) hosts. */
export interface TlsOptions {
  /** File holding the shared token (the server's `--token-file`). */
  tokenFile?: string;
  /** The token itself, instead of `tokenFile`. */
  token?: string;
  /**
   * PEM file of the CA that signed the server's certificate, or of the
   * server's own (self-signed) certificate to pin it. Default: the system's
   * root certificates.
   */
  caFile?: string;
}

// ---- the pool's side ---------------------------------------------------

/** Why a connection attempt failed, in words for a HostError. */
function explainConnectError(error: unknown, host: string, ca: string): string {
  const message = error instanceof Error ? error.message : String(error);
  if (error instanceof Deno.errors.ConnectionRefused) {
    return `connection refused (is 'cli.ts serve' running on ${host}?)`;
  }
  if (
    /certificate|UnknownIssuer|NotValidForName|CertNotValid|BadSignature|invalid peer/i
      .test(message)
  ) {
    return `certificate mismatch: the server's TLS certificate is not ${
      ca ? `signed by or equal to the certificate in ${ca}` : "trusted"
    } (${message}); give the server's certificate or its CA as tls.caFile${
      /CaUsedAsEndEntity/.test(message)
        ? " (a pinned self-signed certificate needs basicConstraints CA:FALSE)"
        : ""
    }`;
  }
  if (/timed out/i.test(message)) {
    return `no answer from the server (${message})`;
  }
  return `cannot connect: ${message}`;
}

/** Starts a host's workers through a `cli.ts serve` server. */
export class TlsLauncher implements Launcher {
  /** `host:port`. */
  readonly host: string;
  /** Workers per launch. */
  readonly groupSize: number;
  #hostname: string;
  #port: number;
  #options: TlsOptions;

  /**
   * @param spec A parsed `tls://` host.
   * @param options Token and certificate.
   */
  constructor(spec: HostSpec, options: TlsOptions) {
    this.#hostname = spec.host;
    this.#port = spec.port ?? DEFAULT_SERVE_PORT;
    this.host = `${
      spec.host.includes(":") ? `[${spec.host}]` : spec.host
    }:${this.#port}`;
    this.groupSize = spec.workers;
    this.#options = options;
  }

  /** Connects, authenticates, and relays the link of a new supervisor. */
  launch(ids: number[], endpoint: Endpoint): Launch {
    const host = this.host;
    const tail: string[] = [];
    let problem: HostError | undefined;
    let conn: Deno.TlsConn | undefined;
    let killed = false;
    let refd = true;
    const ended = Promise.withResolvers<LaunchExit>();
    const fail = (why: string, cause?: unknown) => {
      problem ??= new HostError(host, why, tail.join("\n"), { cause });
      tail.push(why);
    };

    const connected = (async () => {
      const ca = this.#options.caFile;
      let token: string;
      let caCerts: string[] | undefined;
      try {
        token = this.#options.token ??
          await readToken(this.#options.tokenFile ?? "");
        caCerts = ca ? [await Deno.readTextFile(ca)] : undefined;
      } catch (error) {
        fail(
          `cannot read the token or certificate file: ${
            error instanceof Error ? error.message : error
          }`,
          error,
        );
        return undefined;
      }
      try {
        conn = await withDeadline(
          Deno.connectTls({
            hostname: this.#hostname,
            port: this.#port,
            ...(caCerts ? { caCerts } : {}),
          }),
          HANDSHAKE_MS,
          "connecting",
        );
        if (killed) throw new Error("stopped");
        if (!refd) conn.unref();
        return await withDeadline(
          askServer(conn, host, token, ids),
          HANDSHAKE_MS,
          "the handshake",
        );
      } catch (error) {
        if (!(error instanceof HostError)) {
          fail(explainConnectError(error, host, ca ?? ""), error);
        } else {
          problem ??= error;
          tail.push(error.message);
        }
        try {
          conn?.close();
        } catch { /* closed */ }
        return undefined;
      }
    })();

    const readable = new ReadableStream<Uint8Array>({
      async start(controller) {
        const rest = await connected;
        if (rest === undefined) {
          controller.close();
          ended.resolve({ code: 1 });
          return;
        }
        if (rest.length) controller.enqueue(rest);
      },
      async pull(controller) {
        const buffer = new Uint8Array(256 * 1024);
        let n: number | null = null;
        try {
          n = await conn!.read(buffer);
        } catch (error) {
          if (!killed) {
            tail.push(
              `the connection to the server broke: ${
                error instanceof Error ? error.message : error
              }`,
            );
          }
        }
        if (n === null) {
          controller.close();
          try {
            conn!.close();
          } catch { /* closed */ }
          ended.resolve(killed ? { signal: "SIGKILL" } : { code: 0 });
          return;
        }
        controller.enqueue(buffer.slice(0, n));
      },
    }, { highWaterMark: 0 });

    const transport: LinkTransport = {
      async write(bytes) {
        if ((await connected) === undefined) throw new Error("not connected");
        await writeAll(conn!, bytes);
      },
      async closeWrite() {
        if ((await connected) === undefined) return;
        try {
          await conn!.closeWrite();
        } catch { /* closed */ }
      },
      readable,
      exited: ended.promise,
      kill() {
        killed = true;
        try {
          conn?.close();
        } catch { /* closed */ }
      },
      stderrTail: () => tail.slice(),
      ref(on) {
        refd = on;
        if (on) conn?.ref();
        else conn?.unref();
      },
    };
    return linkLaunch(transport, host, endpoint, (exit, lines, timeoutMs) => {
      if (problem) return problem;
      if (timeoutMs !== undefined) {
        return new HostError(
          host,
          `workers did not connect within ${timeoutMs} ms (the server started them; see its log)`,
          lines.join("\n"),
        );
      }
      return new HostError(
        host,
        `the server closed the connection before the workers connected${
          exit.code ? ` (code ${exit.code})` : ""
        }; see the server's log`,
        lines.join("\n"),
      );
    });
  }
}

// ---- the server --------------------------------------------------------

/** Help text of `cli.ts serve`. */
export const SERVE_HELP =
  `distex serve: a spawning server for pools (tls://host:port/N in a pool)

Usage:
  deno run -A jsr:@distex/pool@${VERSION}/cli serve --cert-file <cert.pem>
      --key-file <key.pem> --token-file <token> [options]

Options:
  --listen <address>        address to listen on (default 0.0.0.0)
  --port <n>                TCP port (default ${DEFAULT_SERVE_PORT}; 0 picks a free one)
  --max-workers <n>         most workers one pool may start here (default: CPUs)
  --max-pools <n>           most pools served at once (default 4)
  --cert-file <path>        TLS certificate (PEM); pools pin it or its CA
  --key-file <path>         its private key (PEM)
  --token-file <path>       the shared token (first line; 16+ characters);
                            pools prove they know it, and so does the server
  --worker-permissions <flags>
                            Deno permission flags for the workers, e.g.
                            "--allow-read=/data --allow-net" (default -A)

Secrets are read from files, never from the command line. Prints
"distex serve: listening on <address>:<port>" when ready. Each pool gets one
supervisor ('cli.ts remote --stdio') whose link is the pool's TLS connection;
its workers stop when that connection ends.

Example:
  openssl rand -hex 32 > token; chmod 600 token
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \\
    -keyout key.pem -out cert.pem -days 365 -subj /CN=maxi \\
    -addext subjectAltName=DNS:maxi -addext basicConstraints=critical,CA:FALSE
  deno run -A jsr:@distex/pool@${VERSION}/cli serve --cert-file cert.pem \\
    --key-file key.pem --token-file token --max-workers 8`;

function count(value: unknown, name: string, fallback: number, min: number) {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < min) {
    throw new TypeError(`--${name} must be an integer >= ${min}, got ${value}`);
  }
  return n;
}

/** The server's settings, from its command line. */
interface ServeConfig {
  hostname: string;
  port: number;
  maxWorkers: number;
  maxPools: number;
  certFile: string;
  keyFile: string;
  tokenFile: string;
  /** Deno permission flags for the workers. */
  permissions: string[];
}

/**
 * Reads the command line of `cli.ts serve`.
 * @throws {TypeError} for a missing file option or a bad count.
 */
function parseServeArgs(args: string[]): ServeConfig {
  const { values } = parseCommandLine(args, {
    listen: { type: "string" },
    port: { type: "string" },
    "max-workers": { type: "string" },
    "max-pools": { type: "string" },
    "cert-file": { type: "string" },
    "key-file": { type: "string" },
    "token-file": { type: "string" },
    "worker-permissions": { type: "string" },
  });
  for (const name of ["cert-file", "key-file", "token-file"]) {
    if (typeof values[name] !== "string") {
      throw new TypeError(`--${name} is required`);
    }
  }
  return {
    hostname: (values.listen as string | undefined) ?? "0.0.0.0",
    port: count(values.port, "port", DEFAULT_SERVE_PORT, 0),
    maxWorkers: count(
      values["max-workers"],
      "max-workers",
      navigator.hardwareConcurrency || 1,
      1,
    ),
    maxPools: count(values["max-pools"], "max-pools", 4, 1),
    certFile: values["cert-file"] as string,
    keyFile: values["key-file"] as string,
    tokenFile: values["token-file"] as string,
    permissions: String(values["worker-permissions"] ?? "").split(/\s+/)
      .filter(Boolean),
  };
}

/**
 * Runs `cli.ts serve` until the process is stopped.
 *
 * @param args Command-line arguments.
 * @param signal Stops the server (tests).
 * @returns The exit code: 2 for usage errors, 1 when it cannot start.
 */
export async function serveMain(
  args: string[],
  signal?: AbortSignal,
): Promise<number> {
  let config: ServeConfig;
  try {
    config = parseServeArgs(args);
  } catch (error) {
    console.error(
      `distex serve: ${
        error instanceof Error ? error.message : error
      }\n\n${SERVE_HELP}`,
    );
    return 2;
  }
  let listener: Deno.TlsListener;
  let token: string;
  try {
    token = await readToken(config.tokenFile);
    listener = Deno.listenTls({
      hostname: config.hostname,
      port: config.port,
      cert: await Deno.readTextFile(config.certFile),
      key: await Deno.readTextFile(config.keyFile),
    });
  } catch (error) {
    console.error(
      `distex serve: cannot start: ${
        error instanceof Error ? error.message : error
      }`,
    );
    return 1;
  }
  const address = listener.addr as Deno.NetAddr;
  console.log(`distex serve: listening on ${address.hostname}:${address.port}`);
  const sessions = new Set<Promise<void>>();
  let pools = 0;
  const onAbort = () => listener.close();
  signal?.addEventListener("abort", onAbort, { once: true });
  try {
    for await (const conn of listener) {
      const session = (async () => {
        let counted = false;
        try {
          const pool = await answerPool(conn, token, {
            maxWorkers: config.maxWorkers,
            maxPools: config.maxPools,
            claim: () => {
              if (pools >= config.maxPools) return false;
              pools++;
              return counted = true;
            },
          });
          if (pool === undefined) return;
          const { ids, peer } = pool;
          console.error(
            `distex serve: ${peer}: starting ${ids.length} workers`,
          );
          await relay(conn, pool.rest, ids, config.permissions);
          console.error(`distex serve: ${peer}: pool gone, workers stopped`);
        } catch (error) {
          console.error(
            `distex serve: connection failed: ${
              error instanceof Error ? error.message : error
            }`,
          );
        } finally {
          if (counted) pools--;
          try {
            conn.close();
          } catch { /* closed */ }
        }
      })();
      sessions.add(session);
      session.finally(() => sessions.delete(session));
    }
  } catch { /* listener closed */ }
  signal?.removeEventListener("abort", onAbort);
  await Promise.all(sessions);
  return 0;
}

/**
 * Starts a supervisor for `ids` and relays `conn` to its stdin/stdout until
 * either side ends; then its stdin closes and it stops its workers.
 */
async function relay(
  conn: Deno.TlsConn,
  rest: Uint8Array,
  ids: number[],
  permissions: string[],
): Promise<void> {
  const cli = new URL("../cli.ts", import.meta.url).href;
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      cli,
      "remote",
      "--stdio",
      "--ids",
      ids.join(","),
      ...permissions.map((p) => `--worker-flag=${p}`),
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const stdin = child.stdin.getWriter();
  const up = (async () => {
    try {
      if (rest.length) await stdin.write(rest);
      const buffer = new Uint8Array(256 * 1024);
      for (;;) {
        const n = await conn.read(buffer);
        if (n === null) break;
        await stdin.write(buffer.slice(0, n));
      }
    } catch { /* either side gone */ }
    // The supervisor's lifeline: it stops its workers and exits.
    await stdin.close().catch(() => {});
  })();
  const down = (async () => {
    try {
      for await (const chunk of child.stdout) await writeAll(conn, chunk);
    } catch { /* the pool is gone */ }
    try {
      conn.close();
    } catch { /* closed */ }
  })();
  await child.status;
  await down;
  try {
    conn.close();
  } catch { /* closed */ }
  await up;
}
