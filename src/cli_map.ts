/**
 * `cli.ts map`: maps an exported function over JSON lines on a pool, writes
 * the results as JSON lines, and shows progress on stderr.
 *
 * @module
 */
import { resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseCommandLine } from "./_args.ts";
import { Pool } from "./pool.ts";
import type { PoolOptions } from "./options.ts";
import { ProgressMeter, type ProgressOutput } from "./progress.ts";

/** The text of `cli.ts map --help`. */
export const MAP_HELP =
  `distex map: run an exported function over JSON lines, on a pool of workers

Usage:
  deno run -A cli.ts map <module>[#<export>] [options] < input.jsonl > output.jsonl

Each input line is parsed as JSON and passed to the function (with --star, a
JSON array is spread into its arguments). Each result is written to stdout as
one JSON line, in input order (as they complete with --unordered). <module> is
a path relative to the current directory, or a URL; <export> defaults to
"default". The function may be async. Blank lines are skipped.

Options:
  -i, --input <file>       read JSON lines from <file> instead of stdin
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
  -c, --chunk-size <n>     items per task (default: chosen from measured
                           times, so tiny functions go in large chunks; 1 with
                           --timeout)
  -u, --unordered          write results as they complete, not in input order
      --star               spread each input (a JSON array) into the arguments
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
  seq 1 100 | deno run -A cli.ts map ./square.ts#square --workers 4

  # hash the files named in files.jsonl, as they finish, going past failures
  deno run -A cli.ts map ./hash.ts#sha256 -i files.jsonl --unordered --on-error skip

  # 4 local workers and 8 on each of two SSH hosts
  deno run -A cli.ts map ./work.ts -i jobs.jsonl -w 4 \\
    --host ssh://maxi/8 --host ssh://me@mini:2222/8 > results.jsonl`;

/** A command-line mistake: reported with a hint to `--help`, exit code 2. */
export class UsageError extends Error {
  /** @param message What is wrong, for the user. */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

type OnError = "stop" | "skip" | "emit";

interface MapConfig {
  url: string;
  name: string;
  label: string;
  input: string | undefined;
  pool: PoolOptions;
  /** Items per task; undefined: chosen from measured item times. */
  chunkSize: number | undefined;
  ordered: boolean;
  star: boolean;
  timeout: number | undefined;
  onError: OnError;
  quiet: boolean;
  progressInterval: number | undefined;
}

/** Where `map` reads and writes; the process's streams by default. */
export interface MapIo {
  /** Input, when no `--input` file is given. */
  stdin: ReadableStream<Uint8Array>;
  /** Results. */
  stdout: WritableStream<Uint8Array>;
  /** Progress and error reports. */
  stderr: ProgressOutput;
  /** Whether stdin is a terminal (then a hint is printed). */
  stdinIsTerminal: boolean;
}

const OPTIONS = {
  input: { type: "string", short: "i" },
  workers: { type: "string", short: "w" },
  host: { type: "string", multiple: true },
  "ssh-command": { type: "string" },
  "ssh-arg": { type: "string", multiple: true },
  "chunk-size": { type: "string", short: "c" },
  unordered: { type: "boolean", short: "u" },
  star: { type: "boolean" },
  retries: { type: "string" },
  timeout: { type: "string", short: "t" },
  "on-error": { type: "string" },
  quiet: { type: "boolean", short: "q" },
  "progress-interval": { type: "string" },
} as const;

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
  if (positionals.length === 0) {
    throw new UsageError("missing the function: map <module>[#<export>]");
  }
  if (positionals.length > 1) {
    throw new UsageError(
      `one function only, got ${positionals.length} arguments: ${
        positionals.join(" ")
      } (options start with --)`,
    );
  }
  const target = positionals[0]!;
  const { url, name } = parseTarget(target);
  const onError = (values["on-error"] ?? "stop") as string;
  if (onError !== "stop" && onError !== "skip" && onError !== "emit") {
    throw new UsageError(
      `--on-error must be stop, skip or emit, got '${onError}'`,
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
  // With a deadline per item, each worker takes one item at a time, so an
  // item's time is its own and not that of the items queued before it.
  if (timeout !== undefined) pool.qsize = 1;
  return {
    url,
    name,
    label: target,
    input: values.input as string | undefined,
    pool,
    chunkSize: integer(values, "chunk-size", 1),
    ordered: !values.unordered,
    star: values.star === true,
    timeout,
    onError,
    quiet: values.quiet === true,
    progressInterval: milliseconds(values, "progress-interval"),
  };
}

// ---- what runs in the workers (sent as source text: self-contained) --------

/** Loads the module and says what the export is. */
const probeExport = async (url: string, name: string): Promise<string> => {
  const mod = await import(url);
  return name in mod ? typeof mod[name] : "missing";
};

/**
 * Runs the export on each item of a chunk (async ones concurrently); failures
 * are per item. Returns the outcomes and the milliseconds the chunk took.
 */
const runChunk = async (
  url: string,
  name: string,
  star: boolean,
  items: unknown[],
): Promise<[[boolean, unknown][], number]> => {
  const fn = (await import(url))[name];
  const started = performance.now();
  const outcomes = await Promise.all(items.map(async (item): Promise<
    [boolean, unknown]
  > => {
    try {
      if (star && !Array.isArray(item)) {
        throw new TypeError(
          `--star needs a JSON array of arguments on each line, got ${
            item === null ? "null" : typeof item
          }`,
        );
      }
      return [true, await (star ? fn(...(item as unknown[])) : fn(item))];
    } catch (error) {
      return [
        false,
        error instanceof Error
          ? { name: error.name, message: error.message }
          : { name: "Error", message: `threw a non-Error value: ${error}` },
      ];
    }
  }));
  return [outcomes, performance.now() - started];
};

// ---- the run ---------------------------------------------------------------

interface Failure {
  name: string;
  message: string;
}

interface Item {
  line: number;
  value: unknown;
  /** Set for a line that is not JSON: it is not sent. */
  failure: Failure | undefined;
}

interface Chunk {
  seq: number;
  items: Item[];
  results: ([true, unknown] | [false, Failure])[] | undefined;
  controller: AbortController;
}

const encoder = new TextEncoder();
/** Automatic chunks keep a worker busy for about this long (ms). */
const CHUNK_TARGET_MS = 2;
const MAX_CHUNK = 1024;

/** Yields the lines of a byte stream (without `\n` / `\r\n`); cancel() stops it. */
class LineReader {
  #reader: ReadableStreamDefaultReader<Uint8Array>;
  #decoder = new TextDecoder();
  #buffer = "";
  /** Where the unread part of #buffer starts. */
  #at = 0;
  #done = false;

  constructor(stream: ReadableStream<Uint8Array>) {
    this.#reader = stream.getReader();
  }

  async next(): Promise<string | undefined> {
    for (;;) {
      const line = this.nextBuffered();
      if (line !== undefined) return line;
      const rest = this.#buffer.slice(this.#at);
      if (this.#done) {
        this.#buffer = "";
        this.#at = 0;
        return rest === "" ? undefined : rest;
      }
      const { value, done } = await this.#reader.read();
      if (done) this.#done = true;
      this.#buffer = rest +
        (done ? this.#decoder.decode() : this.#decoder.decode(value, {
          stream: true,
        }));
      this.#at = 0;
    }
  }

  /** The next line if it is already read (no waiting), else undefined. */
  nextBuffered(): string | undefined {
    const nl = this.#buffer.indexOf("\n", this.#at);
    if (nl < 0) return undefined;
    const end = nl > this.#at && this.#buffer[nl - 1] === "\r" ? nl - 1 : nl;
    const line = this.#buffer.slice(this.#at, end);
    this.#at = nl + 1;
    return line;
  }

  cancel(): void {
    this.#done = true;
    this.#reader.cancel().catch(() => {});
  }
}

/** Counts the lines of a file that are not blank (for done/total). */
async function countItems(
  path: string,
  stopped: () => boolean,
): Promise<number> {
  using file = await Deno.open(path);
  const buffer = new Uint8Array(1 << 16);
  let count = 0;
  let content = false;
  for (;;) {
    if (stopped()) return count;
    const n = await file.read(buffer);
    if (n === null) break;
    for (let i = 0; i < n; i++) {
      const b = buffer[i]!;
      if (b === 10) {
        if (content) count++;
        content = false;
      } else if (b !== 32 && b !== 9 && b !== 13) {
        content = true;
      }
    }
  }
  return content ? count + 1 : count;
}

/** Batches output lines into few writes. */
class OutputBuffer {
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  #parts: string[] = [];
  #size = 0;

  constructor(stream: WritableStream<Uint8Array>) {
    this.#writer = stream.getWriter();
  }

  push(line: string): void {
    this.#parts.push(line, "\n");
    this.#size += line.length + 1;
  }

  get full(): boolean {
    return this.#size >= 1 << 16;
  }

  async flush(): Promise<void> {
    if (this.#size === 0) return;
    const text = this.#parts.join("");
    this.#parts = [];
    this.#size = 0;
    await this.#writer.write(encoder.encode(text));
  }

  release(): void {
    this.#writer.releaseLock();
  }
}

function describe(error: unknown): Failure {
  if (error instanceof Error || error instanceof DOMException) {
    return { name: error.name, message: error.message };
  }
  return { name: "Error", message: String(error) };
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, " | ");
}

/**
 * Runs `map` with parsed arguments.
 * @returns The exit code: 0 all succeeded, 1 failures or stopped, 2 usage error.
 */
async function runMap(config: MapConfig, io: MapIo): Promise<number> {
  const say = (text: string) => {
    try {
      io.stderr.writeSync(encoder.encode(`${text}\n`));
    } catch { /* stderr gone */ }
  };
  if (config.url.startsWith("file:")) {
    try {
      const info = await Deno.stat(fileURLToPath(config.url));
      if (!info.isFile) throw new Deno.errors.NotFound();
    } catch {
      throw new UsageError(
        `no such module file: ${
          fileURLToPath(config.url)
        } (from '${config.label}')`,
      );
    }
  }
  let input: ReadableStream<Uint8Array>;
  if (config.input !== undefined) {
    try {
      input = (await Deno.open(config.input)).readable;
    } catch (error) {
      throw new UsageError(
        `cannot read --input ${config.input}: ${(error as Error).message}`,
      );
    }
  } else {
    input = io.stdin;
    if (io.stdinIsTerminal && !config.quiet) {
      say("distex map: reading JSON lines from the terminal (end with Ctrl-D)");
    }
  }
  const lines = new LineReader(input);
  let pool: Pool;
  try {
    pool = new Pool(config.pool);
  } catch (error) {
    lines.cancel();
    throw new UsageError((error as Error).message);
  }
  try {
    try {
      await pool.ready;
    } catch (error) {
      say(`distex map: cannot start the pool: ${(error as Error).message}`);
      return 1;
    }
    let kind: string;
    try {
      kind = await pool.run(probeExport, config.url, config.name);
    } catch (error) {
      throw new UsageError(
        `cannot load ${config.url}: ${(error as Error).message}`,
      );
    }
    if (kind !== "function") {
      throw new UsageError(
        kind === "missing"
          ? `${config.url} has no export named '${config.name}'`
          : `export '${config.name}' of ${config.url} is a ${kind}, not a function`,
      );
    }
    return await new MapRun(config, io, pool, lines).run();
  } finally {
    lines.cancel();
    await pool.close({ wait: false });
  }
}

/** One run of `map`: feeds chunks to the pool and writes results. */
class MapRun {
  #config: MapConfig;
  #io: MapIo;
  #pool: Pool;
  #lines: LineReader;
  #meter: ProgressMeter;
  #out: OutputBuffer;
  /** Chunks submitted and not yet written, by sequence number. */
  #chunks = new Map<number, Chunk>();
  /** Finished chunks waiting to be written (unordered mode). */
  #finished: Chunk[] = [];
  #nextSeq = 0;
  #head = 0;
  #lineNo = 0;
  #inPool = 0;
  #inputDone = false;
  #feeding = true;
  /** No more input is read (a failure under `stop`, an interrupt, a closed stdout). */
  #halt = false;
  /** Nothing more is written. */
  #stopped = false;
  #failures = 0;
  /** Moving average of the time per item in the workers (ms). */
  #itemMs: number | undefined;
  /** The chunk size last used. */
  #chunk = 1;
  #interrupted = false;
  #readError: unknown = undefined;
  #changed = Promise.withResolvers<void>();

  constructor(config: MapConfig, io: MapIo, pool: Pool, lines: LineReader) {
    this.#config = config;
    this.#io = io;
    this.#pool = pool;
    this.#lines = lines;
    this.#meter = new ProgressMeter({
      label: "distex map",
      mode: config.quiet ? "none" : "auto",
      interval: config.progressInterval,
      output: io.stderr,
    });
    this.#out = new OutputBuffer(io.stdout);
  }

  async run(): Promise<number> {
    const onInterrupt = () => {
      this.#interrupted = true;
      this.#stopAll();
    };
    let counting: Promise<void> | undefined;
    if (this.#config.input !== undefined && this.#meter.mode !== "none") {
      counting = countItems(this.#config.input, () => this.#stopped).then(
        (n) => void (this.#meter.total = n),
        () => {},
      );
    }
    let signals = false;
    try {
      Deno.addSignalListener("SIGINT", onInterrupt);
      signals = true;
    } catch { /* no signals here (e.g. not allowed): Ctrl-C kills the run */ }
    const feeding = this.#feed();
    try {
      await this.#consume();
    } finally {
      // Whatever was produced is written, also after an interrupt.
      await this.#flush().catch(() => {});
      this.#halt = true;
      this.#notify();
      this.#lines.cancel();
      await feeding;
      await counting;
      if (signals) Deno.removeSignalListener("SIGINT", onInterrupt);
      this.#meter.stop();
      this.#out.release();
    }
    if (this.#interrupted) {
      this.#io.stderr.writeSync(encoder.encode("distex map: interrupted\n"));
      return 130;
    }
    if (this.#readError !== undefined) {
      this.#report(
        `distex map: reading the input failed after line ${this.#lineNo}: ${
          describe(this.#readError).message
        }`,
      );
      return 1;
    }
    return this.#failures > 0 ? 1 : 0;
  }

  #notify(): void {
    const changed = this.#changed;
    this.#changed = Promise.withResolvers();
    changed.resolve();
  }

  /**
   * Tasks in the pool at once: with a deadline per item, one per worker (an
   * item's time is then its own, not that of items queued before it); else
   * enough to keep every worker busy.
   */
  #poolWindow(): number {
    const workers = Math.max(1, this.#pool.totalWorkers);
    if (this.#config.timeout !== undefined) return workers;
    return Math.max(8, workers * Math.max(4, Math.ceil(32 / this.#chunk)));
  }

  /**
   * Items for the next task: `--chunk-size` if given; one item with
   * `--timeout`; else as many as keep a worker busy for about CHUNK_TARGET_MS
   * (tiny functions go in large chunks, slow ones one by one).
   */
  #chunkSize(): number {
    const { chunkSize, timeout } = this.#config;
    if (chunkSize !== undefined) return chunkSize;
    if (timeout !== undefined || this.#itemMs === undefined) return 1;
    const size = Math.floor(CHUNK_TARGET_MS / Math.max(this.#itemMs, 1e-4));
    return Math.max(1, Math.min(MAX_CHUNK, size));
  }

  /**
   * Reads up to the chunk size of items: waits for the first, then takes only
   * lines already read, so slow input (a terminal, `tail -f`) is never held
   * back to fill a chunk.
   */
  async #readChunk(): Promise<Item[]> {
    const items: Item[] = [];
    const size = this.#chunkSize();
    this.#chunk = size;
    while (items.length < size) {
      const line = items.length === 0
        ? await this.#lines.next()
        : this.#lines.nextBuffered();
      if (line === undefined && items.length > 0) break;
      if (line === undefined || this.#halt) {
        this.#inputDone = true;
        break;
      }
      const lineNo = ++this.#lineNo;
      if (line.trim() === "") continue;
      try {
        items.push({
          line: lineNo,
          value: JSON.parse(line),
          failure: undefined,
        });
      } catch (error) {
        items.push({
          line: lineNo,
          value: undefined,
          failure: {
            name: "SyntaxError",
            message: `not JSON: ${(error as Error).message}`,
          },
        });
      }
    }
    return items;
  }

  async #feed(): Promise<void> {
    try {
      while (!this.#halt && !this.#inputDone) {
        const changed = this.#changed.promise;
        if (
          this.#inPool >= this.#poolWindow() ||
          this.#chunks.size >= this.#poolWindow() * 4 + 64
        ) {
          await changed;
          continue;
        }
        const items = await this.#readChunk();
        if (this.#halt) break;
        if (items.length) this.#submit(items);
      }
    } catch (error) {
      this.#readError = error;
      this.#halt = true;
    } finally {
      this.#feeding = false;
      this.#notify();
    }
  }

  #submit(items: Item[]): void {
    const chunk: Chunk = {
      seq: this.#nextSeq++,
      items,
      results: undefined,
      controller: new AbortController(),
    };
    this.#chunks.set(chunk.seq, chunk);
    this.#inPool++;
    const values = items.filter((i) => !i.failure).map((i) => i.value);
    const { timeout, url, name, star } = this.#config;
    const done: Promise<[[boolean, unknown][], number]> = values.length === 0
      ? Promise.resolve([[], 0])
      : this.#pool.apply(runChunk, [url, name, star, values], {
        signal: chunk.controller.signal,
        timeout: timeout === undefined ? undefined : timeout * values.length,
      });
    done.then(
      ([results, ms]) => {
        if (values.length) {
          const perItem = ms / values.length;
          this.#itemMs = this.#itemMs === undefined
            ? perItem
            : this.#itemMs * 0.8 + perItem * 0.2;
        }
        this.#complete(chunk, results, undefined);
      },
      (error) => this.#complete(chunk, undefined, describe(error)),
    );
  }

  #complete(
    chunk: Chunk,
    results: [boolean, unknown][] | undefined,
    error: Failure | undefined,
  ): void {
    this.#inPool--;
    let at = 0;
    chunk.results = chunk.items.map((item) => {
      if (item.failure) return [false, item.failure];
      if (error) return [false, error];
      const [ok, value] = results![at++]!;
      return ok ? [true, value] : [false, value as Failure];
    });
    if (
      this.#config.onError === "stop" && chunk.results.some(([ok]) => !ok)
    ) {
      // Read no more input; drop work after this chunk (in order mode, the
      // chunks before it still finish and are written).
      this.#halt = true;
      for (const other of this.#chunks.values()) {
        if (!this.#config.ordered || other.seq > chunk.seq) {
          if (other !== chunk) other.controller.abort();
        }
      }
    }
    if (!this.#config.ordered) this.#finished.push(chunk);
    this.#notify();
  }

  /** Aborts everything in flight and stops writing. */
  #stopAll(): void {
    this.#halt = true;
    this.#stopped = true;
    for (const chunk of this.#chunks.values()) chunk.controller.abort();
    this.#notify();
  }

  #report(text: string): void {
    this.#meter.log(text);
  }

  async #consume(): Promise<void> {
    for (;;) {
      const changed = this.#changed.promise;
      for (;;) {
        if (this.#stopped) return;
        let chunk: Chunk | undefined;
        if (this.#config.ordered) {
          const head = this.#chunks.get(this.#head);
          if (head?.results) {
            chunk = head;
            this.#head++;
          }
        } else {
          chunk = this.#finished.shift();
        }
        if (!chunk) break;
        this.#chunks.delete(chunk.seq);
        this.#notify();
        if (!await this.#write(chunk)) {
          this.#stopAll();
          return;
        }
      }
      if (!this.#feeding && this.#chunks.size === 0) {
        await this.#flush();
        return;
      }
      if (!await this.#flush()) {
        this.#stopAll();
        return;
      }
      await changed;
    }
  }

  /** Writes a chunk's results; false when the run must stop. */
  async #write(chunk: Chunk): Promise<boolean> {
    for (let i = 0; i < chunk.items.length; i++) {
      const { line } = chunk.items[i]!;
      let [ok, value] = chunk.results![i]!;
      let json: string | undefined;
      if (ok) {
        try {
          json = JSON.stringify(value) ?? "null";
        } catch (error) {
          ok = false;
          value = {
            name: "TypeError",
            message: `the result is not JSON: ${(error as Error).message}`,
          };
        }
      }
      if (ok) {
        this.#out.push(json!);
        this.#meter.add();
      } else {
        const failure = value as Failure;
        this.#failures++;
        this.#meter.add(1, true);
        this.#report(
          `distex map: line ${line}: ${failure.name}: ${
            oneLine(failure.message)
          }`,
        );
        if (this.#config.onError === "emit") {
          this.#out.push(JSON.stringify({ error: { line, ...failure } }));
        } else if (this.#config.onError === "stop") {
          await this.#flush();
          this.#report(
            `distex map: stopped at line ${line} (--on-error stop); ` +
              `the results of the lines before it were written`,
          );
          return false;
        }
      }
      if (this.#out.full && !await this.#flush()) return false;
    }
    return true;
  }

  /** Flushes output; false when stdout is closed (e.g. `| head`). */
  async #flush(): Promise<boolean> {
    try {
      await this.#out.flush();
      return true;
    } catch (error) {
      if (!(error instanceof Deno.errors.BrokenPipe)) throw error;
      return false;
    }
  }
}

/**
 * `cli.ts map ...`.
 *
 * @param args The arguments after `map`.
 * @param io The streams; the process's own by default.
 * @returns The exit code: 0 success, 1 item failures or a stopped run, 2 usage error.
 */
export async function mapMain(
  args: string[],
  io: MapIo = {
    stdin: Deno.stdin.readable,
    stdout: Deno.stdout.writable,
    stderr: Deno.stderr,
    stdinIsTerminal: Deno.stdin.isTerminal(),
  },
): Promise<number> {
  try {
    return await runMap(parseMapArgs(args), io);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    io.stderr.writeSync(
      encoder.encode(
        `distex map: ${error.message}\nRun 'cli.ts map --help' for usage.\n`,
      ),
    );
    return 2;
  }
}
