/**
 * Progress display: a bar redrawn in place on a terminal, plain periodic
 * lines elsewhere. {@link progress} wraps it as a `TransformStream` for code
 * users; the CLI drives a {@link ProgressMeter} directly.
 *
 * @module
 */

/** Options of {@link progress}. */
export interface ProgressOptions {
  /**
   * How many items to expect. With it the display shows done/total, percent
   * and time left; without it, items done, rate and elapsed time.
   */
  total?: number | undefined;
  /**
   * Text in front of the display.
   * @default {"progress"}
   */
  label?: string | undefined;
  /**
   * `"bar"`: one line redrawn in place; `"lines"`: a plain line every
   * `interval`; `"none"`: count only; `"auto"`: a bar when `output` is a
   * terminal, else lines.
   * @default {"auto"}
   */
  mode?: "auto" | "bar" | "lines" | "none" | undefined;
  /**
   * Milliseconds between redraws.
   * @default {100} for a bar, 5000 for lines
   */
  interval?: number | undefined;
  /**
   * Where to draw: `Deno.stderr`, or any object with `writeSync(bytes)` and
   * `isTerminal()`.
   * @default {Deno.stderr}
   */
  output?: {
    /** Writes bytes; returns how many were written. */
    writeSync(data: Uint8Array): number;
    /** Whether the output is a terminal (then a bar is redrawn in place). */
    isTerminal(): boolean;
  } | undefined;
}

/** Where progress is written: `Deno.stderr` or anything with the same two methods. */
export type ProgressOutput = NonNullable<ProgressOptions["output"]>;

/** The numbers a progress line is drawn from. */
export interface ProgressState {
  /** Items finished (successes and failures). */
  done: number;
  /**
   * Items that failed, among `done` (which counts every item processed; the
   * text shows `done - failed` as done).
   */
  failed: number;
  /** Items expected, if known. */
  total: number | undefined;
  /** Milliseconds since the start. */
  elapsedMs: number;
}

const encoder = new TextEncoder();
const BAR_WIDTH = 24;

/** `m:ss`, or `h:mm:ss` from an hour on. */
export function formatDuration(ms: number): string {
  const total = Math.max(0, Math.floor(ms / 1000));
  const s = total % 60;
  const m = Math.floor(total / 60) % 60;
  const h = Math.floor(total / 3600);
  const ss = String(s).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}

function formatRate(perSecond: number): string {
  if (perSecond >= 100) return `${Math.round(perSecond)}/s`;
  if (perSecond >= 10) return `${perSecond.toFixed(1)}/s`;
  return `${perSecond.toFixed(2)}/s`;
}

/**
 * One progress line, without control characters. `bar` gives the compact form
 * for terminals: a bar of `#`/`-` when the total is known, `width` wide.
 *
 * @param state The counts and the elapsed time.
 * @param bar The terminal form, with a bar.
 * @param width Characters of the bar itself.
 * @returns E.g. `5/10 done (50%) · 2.50/s · 0:02 elapsed · 0:02 left`, or with
 * `bar`, `[##########----------]  50% 5/10 · 2.50/s · 0:02, 0:02 left`.
 */
export function formatProgress(
  state: ProgressState,
  bar: boolean,
  width: number = BAR_WIDTH,
): string {
  const { done, failed, total, elapsedMs } = state;
  const seconds = elapsedMs / 1000;
  const rate = seconds > 0 ? done / seconds : 0;
  const parts: string[] = [];
  const left = total !== undefined && done < total && rate > 0
    ? formatDuration((total - done) / rate * 1000)
    : undefined;
  const elapsed = formatDuration(elapsedMs);
  if (total !== undefined) {
    const fraction = total > 0 ? Math.min(1, done / total) : 1;
    const percent = `${Math.floor(fraction * 100)}%`;
    if (bar) {
      const filled = Math.round(fraction * width);
      const drawn = width > 0
        ? `[${"#".repeat(filled)}${"-".repeat(width - filled)}] `
        : "";
      parts.push(`${drawn}${percent.padStart(4)} ${done}/${total}`);
    } else if (failed > 0) {
      // Failed items are processed, not done.
      parts.push(`${done}/${total} (${percent})`, `${done - failed} done`);
    } else {
      parts.push(`${done}/${total} done (${percent})`);
    }
  } else {
    parts.push(`${done - failed} done`);
  }
  if (failed > 0) parts.push(`${failed} failed`);
  parts.push(formatRate(rate));
  if (bar && total !== undefined) {
    parts.push(left === undefined ? elapsed : `${elapsed}, ${left} left`);
  } else {
    parts.push(`${elapsed} elapsed`);
    if (left !== undefined) parts.push(`${left} left`);
  }
  return parts.join(" · ");
}

/**
 * Counts items and draws their progress on a terminal (a bar redrawn in
 * place) or as plain lines. Call {@link ProgressMeter.prototype.stop} when
 * done: it draws the final state and clears the timer.
 */
export class ProgressMeter {
  /** Items expected, if known; may be set later (e.g. once a file is counted). */
  total: number | undefined;
  #done = 0;
  #failed = 0;
  #label: string;
  #mode: "bar" | "lines" | "none";
  #output: ProgressOutput;
  #started: number;
  #now: () => number;
  #timer: ReturnType<typeof setInterval> | undefined;
  #stopped = false;
  #drawn = "";

  /**
   * Starts the clock (and the redraw timer, unless the mode is `"none"`).
   *
   * @param options What to expect and where to draw.
   * @param now The clock, for tests.
   * @throws {RangeError} for a negative `total` or `interval`.
   * @throws {TypeError} for an unknown `mode`.
   */
  constructor(
    options: ProgressOptions = {},
    now: () => number = () => performance.now(),
  ) {
    const { total, interval } = options;
    if (total !== undefined && !(Number.isInteger(total) && total >= 0)) {
      throw new RangeError(
        `progress() option 'total' must be an integer >= 0, got ${total}`,
      );
    }
    if (
      interval !== undefined && !(Number.isFinite(interval) && interval > 0)
    ) {
      throw new RangeError(
        `progress() option 'interval' must be a number of ms > 0, got ${interval}`,
      );
    }
    const mode = options.mode ?? "auto";
    if (!["auto", "bar", "lines", "none"].includes(mode)) {
      throw new TypeError(
        `progress() option 'mode' must be "auto", "bar", "lines" or "none", got ${
          JSON.stringify(mode)
        }`,
      );
    }
    this.#output = options.output ?? Deno.stderr;
    this.#mode = mode === "auto"
      ? (this.#output.isTerminal() ? "bar" : "lines")
      : mode;
    this.total = total;
    this.#label = options.label ?? "progress";
    this.#now = now;
    this.#started = now();
    if (this.#mode === "none") return;
    const timer = setInterval(
      () => this.#tick(),
      interval ?? (this.#mode === "bar" ? 100 : 5000),
    );
    // A meter never keeps the process alive by itself.
    Deno.unrefTimer(timer);
    this.#timer = timer;
    if (this.#mode === "bar") this.#drawBar();
  }

  /** Items finished so far (successes and failures). */
  get done(): number {
    return this.#done;
  }

  /** Items that failed so far. */
  get failed(): number {
    return this.#failed;
  }

  /** The display mode chosen (`"auto"` resolved). */
  get mode(): "bar" | "lines" | "none" {
    return this.#mode;
  }

  /** The current counts. */
  state(): ProgressState {
    return {
      done: this.#done,
      failed: this.#failed,
      total: this.total,
      elapsedMs: this.#now() - this.#started,
    };
  }

  /**
   * Counts finished items.
   * @param count How many.
   * @param failed Whether they failed.
   */
  add(count = 1, failed = false): void {
    this.#done += count;
    if (failed) this.#failed += count;
  }

  /**
   * Writes a line of text (e.g. an error report) without garbling the bar:
   * the bar is cleared, the text written, and the bar drawn again below it.
   * @param text The text; a newline is added.
   */
  log(text: string): void {
    if (this.#mode === "bar" && !this.#stopped && this.#drawn) {
      this.#write(`\r\x1b[K${text}\n`);
      this.#drawn = "";
      this.#drawBar();
    } else {
      this.#write(`${text}\n`);
    }
  }

  /**
   * Draws the final state (a bar ends with a newline; lines mode writes one
   * last line) and stops the timer. Safe to call more than once.
   */
  stop(): void {
    if (this.#stopped) return;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    if (this.#mode === "bar") {
      this.#drawBar(true);
      this.#write("\n");
    } else if (this.#mode === "lines") {
      this.#writeLine();
    }
    this.#stopped = true;
  }

  #tick(): void {
    if (this.#mode === "bar") this.#drawBar();
    else this.#writeLine();
  }

  #drawBar(force = false): void {
    const width = columns(this.#output);
    const state = this.state();
    let line = `${this.#label} ${formatProgress(state, true)}`;
    if (line.length >= width && state.total !== undefined) {
      // A narrow terminal: shrink the bar, then drop it.
      const bar = Math.max(0, BAR_WIDTH - (line.length - width + 1));
      line = `${this.#label} ${
        formatProgress(state, true, bar >= 5 ? bar : 0)
      }`;
    }
    const fitted = line.length >= width ? line.slice(0, width - 1) : line;
    if (!force && fitted === this.#drawn) return;
    this.#drawn = fitted;
    this.#write(`\r${fitted}\x1b[K`);
  }

  #writeLine(): void {
    this.#write(`${this.#label}: ${formatProgress(this.state(), false)}\n`);
  }

  #write(text: string): void {
    const bytes = encoder.encode(text);
    try {
      let at = 0;
      while (at < bytes.length) {
        at += this.#output.writeSync(bytes.subarray(at));
      }
    } catch {
      // The output went away (closed pipe): progress is best effort.
    }
  }
}

function columns(output: ProgressOutput): number {
  if (output === Deno.stderr) {
    try {
      return Deno.consoleSize().columns || 80;
    } catch {
      return 80;
    }
  }
  return 80;
}

/**
 * A `TransformStream` that passes items through unchanged, counts them, and
 * draws progress on stderr: a bar redrawn in place when stderr is a terminal,
 * a plain line every few seconds otherwise. Pipe a `pool.map(...)` through it.
 * The display ends with a final line when the stream ends or is cancelled.
 *
 * @typeParam T The items.
 * @param options `total` (for done/total and time left), `label`, `mode`,
 * `interval`, `output`.
 * @returns The counting stream.
 * @throws {RangeError} for a negative `total` or `interval`.
 * @throws {TypeError} for an unknown `mode`.
 *
 * @example Progress of a map
 * ```ts
 * import { Pool, progress } from "@distex/pool";
 *
 * await using pool = new Pool(2);
 * const inputs = Array.from({ length: 20 }, (_, i) => i);
 * const squares = pool.map((x: number) => x * x, inputs)
 *   .pipeThrough(progress({ total: inputs.length, label: "squares" }));
 * const results = await Array.fromAsync(squares); // stderr: squares: 20/20 done (100%) · …
 * console.log(results.length); // 20
 * ```
 */
export function progress<T>(options: ProgressOptions = {}): TransformStream<
  T,
  T
> {
  const meter = new ProgressMeter(options);
  return new TransformStream<T, T>({
    transform(item, controller): void {
      meter.add();
      controller.enqueue(item);
    },
    flush(): void {
      meter.stop();
    },
    cancel(): void {
      meter.stop();
    },
  });
}
