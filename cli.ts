/**
 * The `distex` command line.
 *
 * - `deno run -A cli.ts` (no arguments): prints `distex installed OK` and the version.
 * - `cli.ts map <module>#<export>`: maps an exported function over JSON lines
 *   (stdin or `--input`) on a pool and writes JSON lines of results, with a
 *   progress display on stderr.
 * - `cli.ts check`: checks the Deno version, starts a worker and runs a task on it.
 * - `cli.ts worker --unix <socket> --id <n>`: one worker (what launchers run).
 * - `cli.ts remote (--unix <socket> | --stdio) --ids <id,...>`: the remote end
 *   of a host (SSH, a command that gives a pipe, or a spawning server).
 * - `cli.ts serve --cert-file … --key-file … --token-file …`: a spawning
 *   server that pools reach as `tls://host:port/N`.
 * - `cli.ts --help`, `cli.ts <command> --help`.
 *
 * @example Check an installation (also on a remote host, over ssh)
 * ```sh
 * deno run -A jsr:@distex/pool/cli
 * # distex installed OK (@distex/pool 0.1.0, Deno 2.9.6)
 * ```
 *
 * @example Map a function over JSON lines on 4 workers
 * ```sh
 * # square.ts: export function square(x: number) { return x * x; }
 * seq 1 5 | deno run -A jsr:@distex/pool/cli map ./square.ts#square -w 4
 * # 1 4 9 16 25, one per line, in input order
 * ```
 *
 * @module
 */
import { workerMain } from "./worker.ts";
import { VERSION } from "./src/version.ts";
import { Pool } from "./src/pool.ts";
import { superviseMain } from "./src/remote_supervisor.ts";
import { SERVE_HELP, serveMain } from "./src/serve.ts";
import { mapMain } from "./src/cli_map.ts";
import { MAP_HELP } from "./src/cli_map_args.ts";

/** The oldest Deno this package supports. */
const MIN_DENO = [2, 0, 0] as const;

const HELP = `distex ${VERSION}: an async, distributed process pool for Deno

Usage:
  deno run -A cli.ts                 print "distex installed OK" and the version
  deno run -A cli.ts map <module>[#<export>] [options]
                                     run an exported function over JSON lines
                                     (stdin or --input) on a pool of workers;
                                     JSON lines of results go to stdout
  deno run -A cli.ts check           check Deno, start a worker, run a task on it
  deno run -A cli.ts worker --unix <socket> --id <n>
                                     run one worker (pools start these; the
                                     pool's secret is read from stdin)
  deno run -A cli.ts remote (--unix <socket> | --stdio) --ids <id,id,...>
                                     the remote end of a host: runs and
                                     restarts those workers until stdin closes
  deno run -A cli.ts serve --cert-file <pem> --key-file <pem> --token-file <f>
                                     a spawning server: pools start workers
                                     here as tls://host:port/N
  deno run -A cli.ts <command> --help
                                     help on one command
  deno run -A cli.ts --help          this text
  deno run -A cli.ts --version       the version

Examples:
  deno run -A jsr:@distex/pool/cli              # is distex usable here?
  ssh maxi deno run -A jsr:@distex/pool/cli     # ... and on host maxi?
  deno run -A jsr:@distex/pool/cli check        # ... and can it run a task?
  seq 1 100 | deno run -A jsr:@distex/pool/cli map ./square.ts#square -w 4

Install it as a command named distex:
  deno install -g -A -n distex jsr:@distex/pool/cli
  distex map ./square.ts#square < in.jsonl > out.jsonl`;

const CHECK_HELP = `distex check: verify the installation

Usage:
  deno run -A cli.ts check

Checks that this Deno is new enough (>= ${MIN_DENO.join(".")}), starts one
local worker, runs a task on it, and prints "distex installed OK". Exit status
0 when all is well, 1 otherwise (with what went wrong).

Example:
  deno run -A jsr:@distex/pool/cli check
  # Deno ${Deno.version.deno}: ok (needs >= ${MIN_DENO.join(".")})
  # worker started and answered (pid 12345, 150 ms)
  # distex installed OK (@distex/pool ${VERSION}, Deno ${Deno.version.deno})`;

const WORKER_HELP = `distex worker: one worker process (pools start these)

Usage:
  deno run -A cli.ts worker --unix <socket> --id <n>

Connects to the pool's UNIX socket, reads the pool's secret from the first
line of stdin, authenticates, and runs tasks until the pool lets it go or
stdin closes. Not meant to be run by hand.`;

const REMOTE_HELP =
  `distex remote: the remote end of a host (the pool's ssh, srun, kubectl exec
-i, docker exec -i or a spawning server runs it)

Usage:
  deno run -A cli.ts remote (--unix <socket> | --stdio) --ids <id,id,...>
      [--pool-version <v>] [--worker-flag=<deno flag> ...]

Reads the pool's secret from stdin, starts one worker per id, restarts any
that die, and stops them all when stdin closes. With --unix the workers
connect to <socket> (an ssh -R tunnel); with --stdio they connect to a private
socket of this process, which relays them over its stdin/stdout. Exits with
code 3 when --pool-version is not its own version. Not meant to be run by
hand.`;

const COMMAND_HELP: Record<string, string> = {
  map: MAP_HELP,
  check: CHECK_HELP,
  worker: WORKER_HELP,
  remote: REMOTE_HELP,
  serve: SERVE_HELP,
};

function installedLine(): string {
  return `distex installed OK (@distex/pool ${VERSION}, Deno ${Deno.version.deno})`;
}

function denoIsRecent(version: string): boolean {
  const parts = version.split(/[.-]/).slice(0, 3).map(Number);
  for (let i = 0; i < 3; i++) {
    const have = parts[i] ?? 0;
    if (have !== MIN_DENO[i]) return have > MIN_DENO[i]!;
  }
  return true;
}

async function check(): Promise<number> {
  const deno = Deno.version.deno;
  const needs = `needs >= ${MIN_DENO.join(".")}`;
  if (!denoIsRecent(deno)) {
    console.error(
      `distex check failed: Deno ${deno} is too old (${needs}); ` +
        `upgrade with 'deno upgrade' or 'npm install -g deno@2'`,
    );
    return 1;
  }
  console.log(`Deno ${deno}: ok (${needs})`);
  const started = performance.now();
  const pool = new Pool({ workers: 1 });
  try {
    await pool.ready;
    const pid = await pool.run(() => Deno.pid);
    const ms = Math.round(performance.now() - started);
    console.log(`worker started and answered (pid ${pid}, ${ms} ms)`);
    console.log(installedLine());
    return 0;
  } catch (error) {
    console.error(
      `distex check failed: ${error instanceof Error ? error.message : error}`,
    );
    return 1;
  } finally {
    await pool.close({ wait: false });
  }
}

/**
 * Runs the command line.
 *
 * @param args The arguments (without the script).
 * @returns The process exit code: 0 success, 1 failure (for `map`: an item
 * failed, or the run stopped), 2 usage error.
 */
export async function main(args: string[]): Promise<number> {
  const [command, ...rest] = args;
  if (command === undefined) {
    console.log(installedLine());
    return 0;
  }
  if (command === "--help" || command === "-h" || command === "help") {
    console.log(HELP);
    return 0;
  }
  if (command === "--version" || command === "-V") {
    console.log(VERSION);
    return 0;
  }
  if (rest.includes("--help") || rest.includes("-h")) {
    const help = COMMAND_HELP[command];
    if (help === undefined) return unknownCommand(command);
    console.log(help);
    return 0;
  }
  switch (command) {
    case "map":
      return await mapMain(rest);
    case "check":
      if (rest.length) {
        console.error(
          `distex check: takes no arguments, got ${
            rest.join(" ")
          }\n\n${CHECK_HELP}`,
        );
        return 2;
      }
      return await check();
    case "worker":
      return await workerMain(rest);
    case "remote":
      return await superviseMain(rest);
    case "serve":
      return await serveMain(rest);
    default:
      return unknownCommand(command);
  }
}

function unknownCommand(command: string): number {
  console.error(`distex: unknown command '${command}'\n\n${HELP}`);
  return 2;
}

if (import.meta.main) {
  let code: number;
  try {
    code = await main(Deno.args);
  } catch (error) {
    console.error(`distex: ${error instanceof Error ? error.message : error}`);
    code = error instanceof TypeError ? 2 : 1;
  }
  Deno.exit(code);
}
