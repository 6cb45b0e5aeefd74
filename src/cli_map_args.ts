/**
 * `cli.ts map`: its help text and its command line, parsed into a
 * {@link MapConfig} (no I/O here; the run is in `cli_map.ts`).
 *
 * @module
 */
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { parseCommandLine } from "./_args.ts";
import type { PoolOptions } from "./options.ts";

/** The text of `cli.ts map --help`. */
export const MAP_HELP =
  `distex map: run a function over JSON lines, on a pool of workers

Usage:
  deno run -A jsr:@distex/pool/cli map <module>[#<export>] [options] < in.jsonl > out.jsonl
  deno run -A jsr:@distex/pool/cli map -e '<function>' [options] < in.jsonl > out.jsonl

Install it as a command once, then run 'distex map ...':
  deno install -g -A -n distex jsr:@distex/pool/cli

Each input line is parsed as JSON and passed to the function (with --star, a
JSON array is spread into its arguments; with --raw, the line itself is passed
as a string). Each result is written to stdout as one JSON line (with --raw,
a string result as it is), in input order (as they complete with
--unordered). <module> is a path relative to the current directory, or a URL;
<export> defaults to "default". The function may be async. Blank lines are
skipped (not with --raw).

Options:
  -e, --eval <function>    the function as source text instead of a module,
                           e.g. -e 'x => x * 2' (self-contained: it may use
                           its arguments, globals and await import())
  -i, --input <file>       read lines from <file> instead of stdin
                           (the progress display then shows done/total)
  -w, --workers <n>        local workers (default: one per CPU; none with --host)
      --host <spec>        remote workers: ssh://[user@]host[:port]/<n>
                           (repeatable). The module must be at the same path
                           (or URL) on every host
      --ssh-command <cmd>  how hosts start distex (default: deno run -A
                           jsr:@distex/pool/cli), e.g.
                           --ssh-command "deno run -A /opt/distex/cli.ts"
      --ssh-arg <arg>      an extra argument for ssh (repeatable), e.g.
                           --ssh-arg=-i --ssh-arg="$HOME/.ssh/work_key"
      --qsize <n>          most tasks in flight on one worker (default: chosen
                           by the pool; 1 with --timeout)
  -c, --chunk-size <n>     items per task (default: chosen from measured
                           times, so tiny functions go in large chunks; 1 with
                           --timeout)
  -u, --unordered          write results as they complete, not in input order
      --tag                write {"line":N,"value":<result>} (N: the input
                           line), so results can be matched with --unordered
      --star               spread each input (a JSON array) into the arguments
      --raw                lines in as strings (no JSON), string results out
                           as they are (other results as JSON)
      --retries <n>        resend an item whose worker died (default 0)
  -t, --timeout <ms>       fail an item that runs longer than this (a chunk of
                           n items gets n times as long)
      --on-error <mode>    what a failing item does (default: stop)
                             stop  report it, write the results of the lines
                                   before it, and stop
                             skip  report it, write nothing for it, go on
                             emit  report it, write {"error":{"line":N,
                                   "name":...,"message":...}} in its place
  -q, --quiet              no progress display
      --progress-interval <ms>
                           time between progress updates (default 100 for the
                           bar on a terminal, 5000 for plain lines otherwise)
  -h, --help               this text

Progress goes to stderr: a bar when stderr is a terminal, else a plain line
every few seconds and one at the end. A failing item is reported on stderr as
"line N: <Error>: <message>", N being its line in the input.

Exit status:
    0  every item succeeded
    1  an item failed (any --on-error mode), the run stopped, or the pool
       could not start
    2  usage error: bad option, module or export not found
  130  interrupted (Ctrl-C); the results so far were written

Examples:
  # square.ts: export function square(x: number) { return x * x; }
  seq 1 100 | distex map ./square.ts#square --workers 4
  seq 1 100 | distex map -e 'x => x * x'

  # hash the files named in files.txt, as they finish, going past failures
  distex map ./hash.ts#sha256 --raw -i files.txt --unordered --tag --on-error skip

  # 4 local workers and 8 on each of two SSH hosts
  distex map ./work.ts -i jobs.jsonl -w 4 \\
    --host ssh://maxi/8 --host ssh://me@mini:2222/8 > results.jsonl`;

/** A command-line mistake: reported with a hint to `--help`, exit code 2. */
export class UsageError extends Error {
  /** @param message What is wrong, for the user. */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** What a failing item does. */
export type OnError = "stop" | "skip" | "emit";

/** `map`'s command line, checked. */
export interface MapConfig {
  /** The module (for `--eval`, a `data:` URL of one) and its export. */
  url: string;
  name: string;
  /** How the user gave the function, for messages. */
  label: string;
  /** Whether it came from `--eval`. */
  evaluated: boolean;
  input: string | undefined;
  pool: PoolOptions;
  /** Items per task; undefined: chosen from measured item times. */
  chunkSize: number | undefined;
  ordered: boolean;
  star: boolean;
  raw: boolean;
  tag: boolean;
  timeout: number | undefined;
  onError: OnError;
  quiet: boolean;
  progressInterval: number | undefined;
}

const OPTIONS = {
  eval: { type: "string", short: "e" },
  input: { type: "string", short: "i" },
  workers: { type: "string", short: "w" },
  host: { type: "string", multiple: true },
  "ssh-command": { type: "string" },
  "ssh-arg": { type: "string", multiple: true },
  qsize: { type: "string" },
  "chunk-size": { type: "string", short: "c" },
  unordered: { type: "boolean", short: "u" },
  tag: { type: "boolean" },
  star: { type: "boolean" },
  raw: { type: "boolean" },
  retries: { type: "string" },
  timeout: { type: "string", short: "t" },
  "on-error": { type: "string" },
  quiet: { type: "boolean", short: "q" },
  "progress-interval": { type: "string" },
} as const;

/** Pool option names as the flags that set them, for the pool's messages. */
const FLAGS: Record<string, string> = {
  workers: "--workers",
  hosts: "--host",
  qsize: "--qsize",
  retries: "--retries",
  "ssh.command": "--ssh-command",
  "ssh.args": "--ssh-arg",
};

/**
 * A message of the pool's option checks, with option names as the flags the
 * user typed: "--workers must be ...", not "Pool option 'workers' must be".
 */
export function asFlags(message: string): string {
  const text = message.replace(
    /(?:Pool )?[Oo]ption '([\w.]+)'|'([\w.]+)'/g,
    (match, option?: string, quoted?: string) =>
      FLAGS[option ?? quoted ?? ""] ?? match,
  );
  return /^Bad host spec/.test(text) ? `--host: ${text}` : text;
}

function integer(
  values: Record<string, unknown>,
  key: string,
  min: number,
): number | undefined {
  const raw = values[key];
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (raw === "" || !Number.isInteger(n) || n < min) {
    throw new UsageError(
      `--${key} must be an integer >= ${min}, got '${raw}'`,
    );
  }
  return n;
}

function milliseconds(
  values: Record<string, unknown>,
  key: string,
): number | undefined {
  const raw = values[key];
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (raw === "" || !Number.isFinite(n) || n <= 0) {
    throw new UsageError(
      `--${key} must be a number of milliseconds > 0, got '${raw}'`,
    );
  }
  return n;
}

/**
 * `<module>[#<export>]` to a module URL and export name. A path is relative to
 * the current directory; a URL (`file:`, `https:`, `npm:`, `jsr:`) stays.
 */
function parseTarget(target: string): { url: string; name: string } {
  const hash = target.lastIndexOf("#");
  const module = hash < 0 ? target : target.slice(0, hash);
  const name = hash < 0 ? "default" : target.slice(hash + 1);
  if (!module) throw new UsageError(`no module in '${target}'`);
  if (!name) throw new UsageError(`no export name after '#' in '${target}'`);
  const isUrl = /^[a-z][a-z0-9+.-]+:/i.test(module);
  const url = isUrl ? module : pathToFileURL(resolve(module)).href;
  return { url, name };
}

/**
 * Parses `map`'s arguments.
 * @throws {UsageError} for anything the user must fix.
 */
export function parseMapArgs(args: string[]): MapConfig {
  let parsed;
  try {
    parsed = parseCommandLine(args, OPTIONS, true);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const { values, positionals } = parsed;
  const source = values.eval as string | undefined;
  let target: { url: string; name: string };
  let label: string;
  if (source !== undefined) {
    if (positionals.length > 0) {
      throw new UsageError(
        `--eval gives the function: no module as well, got ${
          positionals.join(" ")
        }`,
      );
    }
    if (source.trim() === "") throw new UsageError("--eval needs a function");
    // A module of its own, compiled by each worker (TypeScript allowed).
    target = {
      url: `data:application/typescript;base64,${
        btoa(
          String.fromCharCode(
            ...new TextEncoder().encode(`export default (${source});\n`),
          ),
        )
      }`,
      name: "default",
    };
    label = `-e '${source}'`;
  } else {
    if (positionals.length === 0) {
      throw new UsageError(
        "missing the function: map <module>[#<export>], or -e '<function>'",
      );
    }
    if (positionals.length > 1) {
      throw new UsageError(
        `one function only, got ${positionals.length} arguments: ${
          positionals.join(" ")
        } (options start with --)`,
      );
    }
    label = positionals[0]!;
    target = parseTarget(label);
  }
  const onError = (values["on-error"] ?? "stop") as string;
  if (onError !== "stop" && onError !== "skip" && onError !== "emit") {
    throw new UsageError(
      `--on-error must be stop, skip or emit, got '${onError}'`,
    );
  }
  if (values.raw && values.star) {
    throw new UsageError(
      "--raw passes each line as one string: it cannot be --star'ed",
    );
  }
  const pool: PoolOptions = {};
  const workers = integer(values, "workers", 0);
  if (workers !== undefined) pool.workers = workers;
  const hosts = (values.host ?? []) as string[];
  if (hosts.length) pool.hosts = hosts;
  const sshCommand = values["ssh-command"] as string | undefined;
  const sshArgs = (values["ssh-arg"] ?? []) as string[];
  if (sshCommand !== undefined || sshArgs.length) {
    pool.ssh = {};
    if (sshCommand !== undefined) pool.ssh.command = sshCommand;
    if (sshArgs.length) pool.ssh.args = sshArgs;
  }
  const retries = integer(values, "retries", 0);
  if (retries !== undefined) pool.retries = retries;
  const timeout = milliseconds(values, "timeout");
  const qsize = integer(values, "qsize", 1);
  // With a deadline per item, each worker takes one item at a time (unless
  // --qsize says otherwise), so an item's time is its own and not that of
  // the items queued before it.
  if (qsize !== undefined) pool.qsize = qsize;
  else if (timeout !== undefined) pool.qsize = 1;
  return {
    ...target,
    label,
    evaluated: source !== undefined,
    input: values.input as string | undefined,
    pool,
    chunkSize: integer(values, "chunk-size", 1),
    ordered: !values.unordered,
    star: values.star === true,
    raw: values.raw === true,
    tag: values.tag === true,
    timeout,
    onError,
    quiet: values.quiet === true,
    progressInterval: milliseconds(values, "progress-interval"),
  };
}
