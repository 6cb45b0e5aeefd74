/**
 * `cli.ts map`: maps a function over the lines of stdin (or a file) with
 * `Pool.map()` and writes the results as JSON lines, with progress on
 * stderr. Flow control, chunking and per-item outcomes are the library's;
 * this file reads lines, writes results and reports failures by input line.
 * The command line is parsed in `cli_map_args.ts`.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { LineReader } from "./_lines.ts";
import {
  asFlags,
  type MapConfig,
  parseMapArgs,
  UsageError,
} from "./cli_map_args.ts";
import { type MapOutcome, settlesSoon } from "./map_stream.ts";
import { Pool } from "./pool.ts";
import { ProgressMeter, type ProgressOutput } from "./progress.ts";

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

/** Why an item failed, as reported and emitted. */
interface Failure {
  name: string;
  message: string;
}

const encoder = new TextEncoder();

/** Loads the module in a worker and says what the export is. */
const probeExport = async (url: string, name: string): Promise<string> => {
  const mod = await import(url);
  return name in mod ? typeof mod[name] : "missing";
};

/**
 * Counts the lines of a file that are not blank (for done/total); undefined
 * when `stopped()` cut the count short (a partial count is no total).
 */
export async function _countItems(
  path: string,
  raw: boolean,
  stopped: () => boolean,
): Promise<number | undefined> {
  using file = await Deno.open(path);
  const buffer = new Uint8Array(1 << 16);
  let count = 0;
  let content = false;
  let last = 10;
  for (;;) {
    if (stopped()) return undefined;
    const n = await file.read(buffer);
    if (n === null) break;
    for (let i = 0; i < n; i++) {
      const b = buffer[i]!;
      if (b === 10) {
        if (content || raw) count++;
        content = false;
      } else if (b !== 32 && b !== 9 && b !== 13) {
        content = true;
      }
      last = b;
    }
  }
  return content || (raw && last !== 10) ? count + 1 : count;
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

  /** Writes what is buffered; false when stdout is closed (e.g. `| head`). */
  async flush(): Promise<boolean> {
    if (this.#size === 0) return true;
    const text = this.#parts.join("");
    this.#parts = [];
    this.#size = 0;
    try {
      await this.#writer.write(encoder.encode(text));
      return true;
    } catch (error) {
      if (!(error instanceof Deno.errors.BrokenPipe)) throw error;
      return false;
    }
  }

  release(): void {
    this.#writer.releaseLock();
  }
}

function describe(error: unknown): Failure {
  if (error instanceof Error || error instanceof DOMException) {
    return { name: error.name, message: error.message };
  }
  return { name: "Error", message: `threw a non-Error value: ${error}` };
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, " | ");
}

/**
 * The input as map items: each line parsed (or, with `--raw`, as it is),
 * blank lines skipped. It records each item's input line by its map index,
 * and keeps lines that fail before reaching a worker (not JSON, `--star`
 * without an array) for the writer, in input order.
 */
class Items implements AsyncIterable<unknown> {
  /** Input line of each item in flight, by map index. */
  lineOf = new Map<number, number>();
  /** Lines that failed on reading, oldest first. */
  early: { line: number; failure: Failure }[] = [];
  /** Lines read so far. */
  lineNo = 0;
  /** What reading the input threw, if it did. */
  readError: unknown = undefined;
  #lines: LineReader;
  #config: MapConfig;
  #index = 0;

  constructor(lines: LineReader, config: MapConfig) {
    this.#lines = lines;
    this.#config = config;
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<unknown> {
    const { raw, star } = this.#config;
    for (;;) {
      let text: string | undefined;
      try {
        text = this.#lines.nextBuffered() ?? await this.#lines.next();
      } catch (error) {
        this.readError = error;
        throw error;
      }
      if (text === undefined) return;
      const line = ++this.lineNo;
      let value: unknown = text;
      if (!raw) {
        if (text.trim() === "") continue;
        try {
          value = JSON.parse(text);
        } catch (error) {
          this.early.push({
            line,
            failure: {
              name: "SyntaxError",
              message: `not JSON: ${(error as Error).message}`,
            },
          });
          continue;
        }
        if (star && !Array.isArray(value)) {
          this.early.push({
            line,
            failure: {
              name: "TypeError",
              message:
                `--star needs a JSON array of arguments on each line, got ${
                  value === null ? "null" : typeof value
                }`,
            },
          });
          continue;
        }
      }
      this.lineOf.set(this.#index++, line);
      yield value;
    }
  }
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
      say("distex map: reading lines from the terminal (end with Ctrl-D)");
    }
  }
  const lines = new LineReader(input);
  let pool: Pool;
  try {
    pool = new Pool(config.pool);
  } catch (error) {
    lines.cancel();
    throw new UsageError(asFlags((error as Error).message));
  }
  try {
    try {
      await pool.ready;
    } catch (error) {
      say(`distex map: cannot start the pool: ${(error as Error).message}`);
      return 1;
    }
    const what = config.evaluated ? config.label : config.url;
    let kind: string;
    try {
      kind = await pool.run(probeExport, config.url, config.name);
    } catch (error) {
      throw new UsageError(
        `cannot load ${what}: ${oneLine((error as Error).message)}`,
      );
    }
    if (kind !== "function") {
      throw new UsageError(
        kind === "missing"
          ? `${what} has no export named '${config.name}'`
          : config.evaluated
          ? `${what} is a ${kind}, not a function`
          : `export '${config.name}' of ${what} is a ${kind}, not a function`,
      );
    }
    return await run(config, io, pool, lines);
  } finally {
    lines.cancel();
    await pool.close({ wait: false });
  }
}

/** The run: the map's outcomes to stdout, failures to stderr. */
async function run(
  config: MapConfig,
  io: MapIo,
  pool: Pool,
  lines: LineReader,
): Promise<number> {
  const meter = new ProgressMeter({
    label: "distex map",
    mode: config.quiet ? "none" : "auto",
    interval: config.progressInterval,
    output: io.stderr,
  });
  const out = new OutputBuffer(io.stdout);
  const items = new Items(lines, config);
  const { onError, tag, raw } = config;
  let failures = 0;
  let stopped = false;
  /** The map ran through its input: the count of it is worth finishing. */
  let ranToEnd = false;
  let interrupted = false;
  const results = pool.map({ module: config.url, name: config.name }, items, {
    outcomes: true,
    ordered: config.ordered,
    star: config.star,
    ...(config.chunkSize === undefined ? {} : { chunkSize: config.chunkSize }),
    ...(config.timeout === undefined ? {} : { itemTimeout: config.timeout }),
  });
  const reader = results.getReader();
  const stop = () => {
    stopped = true;
    reader.cancel().catch(() => {});
  };
  const onInterrupt = () => {
    interrupted = true;
    stop();
  };
  let counting: Promise<void> | undefined;
  if (config.input !== undefined && meter.mode !== "none") {
    counting = _countItems(
      config.input,
      raw,
      () => stopped && !ranToEnd,
    ).then(
      (n) => {
        if (n !== undefined) meter.total = n;
      },
      () => {},
    );
  }
  let signals = false;
  try {
    Deno.addSignalListener("SIGINT", onInterrupt);
    signals = true;
  } catch { /* no signals here (e.g. not allowed): Ctrl-C kills the run */ }

  /** One item's result or failure; false when the run must stop. */
  const write = (
    line: number,
    ok: boolean,
    value: unknown,
  ): boolean => {
    let text: string | undefined;
    if (ok) {
      try {
        const json = raw && typeof value === "string" && !tag
          ? value
          : JSON.stringify(value) ?? "null";
        text = tag ? `{"line":${line},"value":${json}}` : json;
      } catch (error) {
        ok = false;
        value = {
          name: "TypeError",
          message: `the result is not JSON: ${(error as Error).message}`,
        };
      }
    }
    if (ok) {
      out.push(text!);
      meter.add();
      return true;
    }
    const failure = value as Failure;
    failures++;
    meter.add(1, true);
    meter.log(
      `distex map: line ${line}: ${failure.name}: ${oneLine(failure.message)}`,
    );
    if (onError === "emit") {
      out.push(JSON.stringify({ error: { line, ...failure } }));
    } else if (onError === "stop") {
      meter.log(
        `distex map: stopped at line ${line} (--on-error stop); ` +
          `the results of the lines before it were written`,
      );
      return false;
    }
    return true;
  };

  /** Writes the early failures before `line` (all with Infinity). */
  const writeEarly = (line: number): boolean => {
    const { early } = items;
    while (early.length > 0 && early[0]!.line < line) {
      const { line: at, failure } = early.shift()!;
      if (!write(at, false, failure)) return false;
    }
    return true;
  };

  let failedRun: unknown = undefined;
  try {
    for (;;) {
      const next = reader.read();
      // Flush while no result is at hand, so output follows slow input.
      if (!await settlesSoon(next) && !await out.flush()) break;
      const { value, done } = await next;
      if (done) {
        ranToEnd = true;
        if (!stopped) writeEarly(Infinity);
        break;
      }
      const outcome = value as MapOutcome<unknown>;
      const line = items.lineOf.get(outcome.index)!;
      items.lineOf.delete(outcome.index);
      // Unordered: lines that failed on reading go out at once.
      if (!writeEarly(config.ordered ? line : Infinity)) break;
      const ok = outcome.status === "fulfilled";
      if (!write(line, ok, ok ? outcome.value : describe(outcome.reason))) {
        break;
      }
      if (out.full && !await out.flush()) break;
    }
  } catch (error) {
    failedRun = error;
  } finally {
    stop();
    // Whatever was produced is written, also after an interrupt.
    await out.flush().catch(() => false);
    lines.cancel();
    await counting;
    if (signals) Deno.removeSignalListener("SIGINT", onInterrupt);
    meter.stop();
    out.release();
  }
  if (interrupted) {
    io.stderr.writeSync(encoder.encode("distex map: interrupted\n"));
    return 130;
  }
  if (failedRun !== undefined) {
    if (items.readError !== undefined) {
      meter.log(
        `distex map: reading the input failed after line ${items.lineNo}: ${
          describe(items.readError).message
        }`,
      );
    } else {
      const { name, message } = describe(failedRun);
      meter.log(`distex map: the run failed: ${name}: ${oneLine(message)}`);
    }
    return 1;
  }
  return failures > 0 ? 1 : 0;
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
