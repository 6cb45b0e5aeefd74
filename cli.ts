/**
 * The `distex` command line.
 *
 * - `deno run -A cli.ts` (no arguments): prints `distex installed OK` and the version.
 * - `cli.ts check`: starts a worker and runs a task on it.
 * - `cli.ts worker --unix <socket> --id <n>`: one worker (what launchers run).
 * - `cli.ts --help`, `cli.ts <command> --help`.
 *
 * @example Check an installation (also on a remote host, over ssh)
 * ```sh
 * deno run -A jsr:@distex/pool/cli
 * # distex installed OK (@distex/pool 0.1.0, Deno 2.9.6)
 * ```
 *
 * @module
 */
import { workerMain } from "./worker.ts";
import { VERSION } from "./src/version.ts";
import { Pool } from "./src/pool.ts";
import { superviseMain } from "./src/remote_supervisor.ts";

const HELP = `distex ${VERSION}: an async, distributed process pool for Deno

Usage:
  deno run -A cli.ts                 print "distex installed OK" and the version
  deno run -A cli.ts check           start a worker, run a task on it, report
  deno run -A cli.ts worker --unix <socket> --id <n>
                                     run one worker (pools start these; the
                                     pool's secret is read from stdin)
  deno run -A cli.ts remote --unix <socket> --ids <id,id,...>
                                     the remote end of an SSH host: runs and
                                     restarts those workers until stdin closes
  deno run -A cli.ts --help          this text

Examples:
  deno run -A jsr:@distex/pool/cli              # is distex usable here?
  ssh maxi deno run -A jsr:@distex/pool/cli     # ... and on host maxi?
`;

function installedLine(): string {
  return `distex installed OK (@distex/pool ${VERSION}, Deno ${Deno.version.deno})`;
}

async function check(): Promise<number> {
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
 * @returns The process exit code: 0 success, 1 failure, 2 usage error.
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
    console.log(HELP);
    return 0;
  }
  switch (command) {
    case "check":
      return await check();
    case "worker":
      return await workerMain(rest);
    case "remote":
      return await superviseMain(rest);
    default:
      console.error(`distex: unknown command '${command}'\n\n${HELP}`);
      return 2;
  }
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
