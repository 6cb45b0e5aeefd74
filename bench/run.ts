/**
 * `deno task bench`: whole-process benchmarks of the pool against machine
 * limits measured in the same run.
 *
 * Every pool case runs in a fresh process (`bench/_pool_case.ts <case>`) and
 * every limit in a fresh `bench/limits.ts --only <key>` process, so no JIT or
 * heap state leaks from one measurement into the next. A round runs each
 * measurement once, limits interleaved with the pool cases they are compared
 * to; the table shows medians over the rounds, and as the ratio the median of
 * each round's pool figure over the limit measured in that round.
 *
 * ```sh
 * deno task bench [--rounds 3] [--quick] [--json] [--write] [--from FILE]
 * ```
 *
 * - `--rounds N`: rounds (default 3).
 * - `--quick`: a smoke run with a tenth of the counts (the figures are then
 *   not comparable to the targets).
 * - `--json`: print the medians, samples and ratios as JSON instead.
 * - `--write`: also put the tables into `bench/README.md` between
 *   `<!-- bench:start -->` and `<!-- bench:end -->`.
 * - `--from FILE`: measure nothing; render a report saved with `--json`.
 *
 * @module
 */
import { parseArgs } from "node:util";

const POOL_CASE = new URL("./_pool_case.ts", import.meta.url).pathname;
const LIMITS = new URL("./limits.ts", import.meta.url).pathname;
const README = new URL("./README.md", import.meta.url).pathname;
const START_MARKER = "<!-- bench:start -->";
const END_MARKER = "<!-- bench:end -->";

type Unit = "tasks/s" | "msg/s" | "B/s" | "ms";

/** One measurement: a pool case or a limit, each in its own process. */
interface Step {
  /** Key in the samples: the case name or the limit key. */
  key: string;
  kind: "pool" | "limit";
  unit: Unit;
  label: string;
}

const CHUNK_SIZES = [1, 10, 100, 1000] as const;

function poolStep(key: string, unit: Unit, label: string): Step {
  return { key, kind: "pool", unit, label };
}

function limitStep(key: string, unit: Unit, label: string): Step {
  return { key, kind: "limit", unit, label };
}

/** The count names in case names and what they mean in a (quick) run. */
function counts(quick: boolean): { small: string; large: string } {
  return quick
    ? { small: "10k", large: "100k" }
    : { small: "100k", large: "1M" };
}

/** One round, in run order: each limit next to the cases it is compared to. */
function roundSteps(quick: boolean): Step[] {
  const { small, large } = counts(quick);
  const sweep = (n: string, name: string): Step[] =>
    CHUNK_SIZES.map((k) =>
      poolStep(
        `map-${name}-c${k}`,
        "tasks/s",
        `\`map\` x => x + 2, ${n} items, chunkSize ${k}`,
      )
    );
  return [
    limitStep(
      "framed4096PerS",
      "msg/s",
      "framed msgpack echo, 4096 frames/write (batched)",
    ),
    limitStep("framed1PerS", "msg/s", "framed msgpack echo, 1 frame/write"),
    ...sweep(small, "100k"),
    poolStep(
      "map-100k-default",
      "tasks/s",
      `\`map\` x => x + 2, ${small} items, default options`,
    ),
    poolStep(
      "run-100k",
      "tasks/s",
      `\`run\` x => x + 2, ${small} concurrent calls`,
    ),
    ...sweep(large, "1M"),
    poolStep(
      "map-1M-default",
      "tasks/s",
      `\`map\` x => x + 2, ${large} items, default options`,
    ),
    limitStep("rawEchoBytesPerS", "B/s", "raw byte echo, 1 MiB writes"),
    limitStep(
      "big4BytesPerS",
      "B/s",
      "1 MiB msgpack frames echo, 4 in flight",
    ),
    poolStep(
      "bytes-echo",
      "B/s",
      "`map` x => x over 1 MiB Uint8Arrays (out and back)",
    ),
    poolStep(
      "bytes-len",
      "B/s",
      "`map` x => x.length over 1 MiB Uint8Arrays (one way)",
    ),
    poolStep("cpu-1", "tasks/s", "CPU-bound 10 ms tasks, Pool(1)"),
    poolStep("cpu-2", "tasks/s", "CPU-bound 10 ms tasks, Pool(2)"),
    limitStep("bareSpawn4Ms", "ms", "spawn 4 bare deno processes, connected"),
    limitStep(
      "npmSpawn4Ms",
      "ms",
      "spawn 4 deno processes importing msgpackr/pack, connected",
    ),
    poolStep("create-4", "ms", "`await Pool.create(4)`"),
  ];
}

async function runChild(args: string[]): Promise<string> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).output();
  const stdout = new TextDecoder().decode(output.stdout);
  if (!output.success) {
    throw new Error(
      `deno run ${
        args.join(" ")
      } exited with code ${output.code}; stdout:\n${stdout}`,
    );
  }
  return stdout;
}

/** A figure and, for pool cases, what else the case reported. */
interface Sample {
  value: number;
  detail?: Record<string, unknown>;
}

/** Runs one step in a fresh process and returns its figure. */
async function measure(step: Step, quick: boolean): Promise<Sample> {
  if (step.kind === "pool") {
    const stdout = await runChild([
      POOL_CASE,
      step.key,
      ...(quick ? ["--quick"] : []),
    ]);
    // The result is the last line; a worker could have printed before it.
    const line = stdout.trimEnd().split("\n").pop() ?? "";
    const result = JSON.parse(line) as {
      case: string;
      value: number;
      detail: Record<string, unknown>;
    };
    if (result.case !== step.key || typeof result.value !== "number") {
      throw new Error(`Unexpected result from ${step.key}: ${line}`);
    }
    return { value: result.value, detail: result.detail };
  }
  const spawn = step.unit === "ms";
  const stdout = await runChild([
    LIMITS,
    "--only",
    step.key,
    "--rounds",
    "1",
    "--json",
    ...(spawn ? ["--warmup"] : []),
    ...(quick ? ["--scale", "0.1"] : []),
  ]);
  const value = (JSON.parse(stdout) as Record<string, number>)[step.key];
  if (typeof value !== "number") {
    throw new Error(`Unexpected result from limit ${step.key}: ${stdout}`);
  }
  return { value };
}

function median(values: readonly number[]): number {
  const sorted = values.toSorted((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1
    ? sorted[mid]!
    : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function format(value: number, unit: Unit): string {
  switch (unit) {
    case "tasks/s":
    case "msg/s":
      return `${Math.round(value).toLocaleString("en-US")} ${unit}`;
    case "B/s":
      return `${(value / 1e6).toFixed(0)} MB/s`;
    case "ms":
      return `${value.toFixed(0)} ms`;
  }
}

/** A row of the main table: a pool figure against a limit and a target. */
interface Row {
  label: string;
  pool: number;
  poolUnit: Unit;
  limit: number;
  limitUnit: Unit;
  limitLabel: string;
  /**
   * The median of `roundRatios`: each round's pool figure over the limit
   * measured in the same round, so a load change between rounds cancels.
   */
  ratio: number;
  /** Ratio per round (pool sample / limit sample of the same round). */
  roundRatios: number[];
  /** `pool / limit`, the ratio of the two medians. */
  ratioOfMedians: number;
  /** `>= x` or `<= x`. */
  target: { op: ">=" | "<="; value: number };
  met: boolean;
}

interface Report {
  date: string;
  /** `git rev-parse --short HEAD` of the checkout measured, if known. */
  commit?: string;
  deno: string;
  cpus: number;
  rounds: number;
  quick: boolean;
  seconds: number;
  loadavg: { start: number[]; end: number[] };
  rows: Row[];
  steps: {
    key: string;
    kind: Step["kind"];
    label: string;
    unit: Unit;
    samples: number[];
    /** What each pool case reported besides its figure, per round. */
    details?: Record<string, unknown>[];
  }[];
}

function buildRows(
  samples: Map<string, number[]>,
  steps: Step[],
  quick: boolean,
): Row[] {
  const step = (key: string): Step => steps.find((s) => s.key === key)!;
  const med = (key: string): number => median(samples.get(key)!);
  const { small, large } = counts(quick);
  const rows: Row[] = [];
  const add = (
    label: string,
    poolKey: string,
    limit: {
      keys: string[];
      label: string;
    },
    target: Row["target"],
  ): void => {
    const pool = med(poolKey);
    let limitValue: number;
    let limitLabel = limit.label;
    let perRound: number[];
    if (limit.keys.length === 1) {
      limitValue = med(limit.keys[0]!);
      perRound = samples.get(limit.keys[0]!)!;
    } else {
      // The best of several by median, e.g. the best hand-tuned chunkSize;
      // each round compares with that one's sample of the round (not with
      // the round's best, which would favour whichever was lucky).
      let best = limit.keys[0]!;
      for (const k of limit.keys) if (med(k) > med(best)) best = k;
      limitValue = med(best);
      limitLabel = `${limit.label} (${step(best).label.split(", ").pop()})`;
      perRound = samples.get(best)!;
    }
    const roundRatios = samples.get(poolKey)!.map((v, r) => v / perRound[r]!);
    const ratio = median(roundRatios);
    const met = target.op === ">="
      ? ratio >= target.value
      : ratio <= target.value;
    rows.push({
      label,
      pool,
      poolUnit: step(poolKey).unit,
      limit: limitValue,
      limitUnit: step(limit.keys[0]!).unit,
      limitLabel,
      ratio,
      roundRatios,
      ratioOfMedians: pool / limitValue,
      target,
      met,
    });
  };
  const batched = {
    keys: ["framed4096PerS"],
    label: "framed echo, 4096 frames/write",
  };
  add(`tiny \`map\`, chunkSize 1, ${small}`, "map-100k-c1", batched, {
    op: ">=",
    value: 0.2,
  });
  add(`tiny \`run\` x${small} concurrent`, "run-100k", batched, {
    op: ">=",
    value: 0.2,
  });
  add(`tiny \`map\`, chunkSize 100, ${large}`, "map-1M-c100", batched, {
    op: ">=",
    value: 2,
  });
  for (const [n, name] of [[small, "100k"], [large, "1M"]] as const) {
    add(`tiny \`map\`, default chunking, ${n}`, `map-${name}-default`, {
      keys: CHUNK_SIZES.map((k) => `map-${name}-c${k}`),
      label: `best of chunkSize ${CHUNK_SIZES.join("/")}`,
    }, { op: ">=", value: 0.8 });
  }
  add(
    `CPU-bound ${quick ? 80 : 400} x 10 ms, Pool(2)`,
    "cpu-2",
    { keys: ["cpu-1"], label: "Pool(1)" },
    { op: ">=", value: 1.9 },
  );
  const raw = { keys: ["rawEchoBytesPerS"], label: "raw byte echo" };
  add("1 MiB items, `map(x => x)`", "bytes-echo", raw, {
    op: ">=",
    value: 0.6,
  });
  add("1 MiB items, `map(x => x.length)`", "bytes-len", raw, {
    op: ">=",
    value: 0.6,
  });
  add(
    "`await Pool.create(4)`",
    "create-4",
    { keys: ["bareSpawn4Ms"], label: "spawn 4 bare processes" },
    { op: "<=", value: 1.5 },
  );
  return rows;
}

function markdown(report: Report): string {
  const lines: string[] = [];
  const load = (l: number[]): string => l.map((x) => x.toFixed(1)).join(" ");
  lines.push(
    `Run ${report.date}${
      report.commit ? ` at ${report.commit}` : ""
    }: Deno ${report.deno}, ${report.cpus} CPUs, ` +
      `median of ${report.rounds} rounds${
        report.quick ? " (--quick: small counts, not comparable)" : ""
      }, ${report.seconds.toFixed(0)} s; load average ${
        load(report.loadavg.start)
      } at the start, ${load(report.loadavg.end)} at the end.`,
  );
  lines.push("");
  lines.push(
    "| case | pool (median) | limit (median, same run) | ratio | target | met? | ratio per round |",
  );
  lines.push("| --- | ---: | --- | ---: | ---: | :---: | --- |");
  for (const row of report.rows) {
    const percent = row.target.op === ">=" && row.target.value < 1;
    const show = (r: number): string =>
      percent ? `${(r * 100).toFixed(1)}%` : `${r.toFixed(2)}x`;
    const target = percent
      ? `${row.target.op} ${(row.target.value * 100).toFixed(0)}%`
      : `${row.target.op} ${row.target.value}x`;
    lines.push(
      `| ${row.label} | ${
        format(row.pool, row.poolUnit)
      } | ${row.limitLabel}: ${format(row.limit, row.limitUnit)} | ${
        show(row.ratio)
      } | ${target} | ${row.met ? "yes" : "**no**"} | ${
        row.roundRatios.map(show).join(", ")
      } |`,
    );
  }
  lines.push("");
  lines.push(
    "Ratio: the median over rounds of the pool's figure divided by the limit " +
      "measured in the same round (for `Pool.create(4)`, its time divided by " +
      "the spawn time: lower is better).",
  );
  lines.push("");
  lines.push("Every measurement, in run order within a round:");
  lines.push("");
  lines.push("| measurement | median | samples (round 1, 2, …) |");
  lines.push("| --- | ---: | --- |");
  for (const s of report.steps) {
    lines.push(
      `| ${s.kind === "limit" ? "limit: " : ""}${s.label} | ${
        format(median(s.samples), s.unit)
      } | ${s.samples.map((v) => format(v, s.unit)).join(", ")} |`,
    );
  }
  return lines.join("\n");
}

/** Puts `table` between the markers in README.md and formats the file. */
async function writeReadme(table: string): Promise<void> {
  const text = await Deno.readTextFile(README);
  const start = text.indexOf(START_MARKER);
  const end = text.indexOf(END_MARKER);
  if (start < 0 || end < start) {
    throw new Error(
      `${README} has no ${START_MARKER} … ${END_MARKER} section to write into`,
    );
  }
  await Deno.writeTextFile(
    README,
    `${text.slice(0, start + START_MARKER.length)}\n\n${table}\n\n${
      text.slice(end)
    }`,
  );
  // Keep `deno fmt --check` clean: it aligns markdown tables.
  await new Deno.Command(Deno.execPath(), {
    args: ["fmt", "--quiet", README],
    stdout: "null",
    stderr: "inherit",
  }).output();
}

/** Runs the rounds and returns the report. */
async function runRounds(rounds: number, quick: boolean): Promise<Report> {
  const steps = roundSteps(quick);
  const samples = new Map(steps.map((s) => [s.key, [] as number[]]));
  const details = new Map(
    steps.map((s) => [s.key, [] as Record<string, unknown>[]]),
  );
  const t0 = performance.now();
  const loadStart = Deno.loadavg();
  // Fill Deno's module caches once, so no round pays for transpiling.
  console.error("bench: priming caches");
  await measure(poolStep("create-4", "ms", ""), true);
  await measure(limitStep("bareSpawn4Ms", "ms", ""), true);
  for (let round = 1; round <= rounds; round++) {
    for (const step of steps) {
      const { value, detail } = await measure(step, quick);
      samples.get(step.key)!.push(value);
      if (detail) details.get(step.key)!.push(detail);
      console.error(
        `bench: round ${round}/${rounds} ${step.key}: ${
          format(value, step.unit)
        }`,
      );
    }
  }
  return {
    date: new Date().toISOString().slice(0, 16).replace("T", " ") + " UTC",
    ...await gitCommit(),
    deno: Deno.version.deno,
    cpus: navigator.hardwareConcurrency,
    rounds,
    quick,
    seconds: (performance.now() - t0) / 1000,
    loadavg: { start: loadStart, end: Deno.loadavg() },
    rows: buildRows(samples, steps, quick),
    steps: steps.map((s) => ({
      key: s.key,
      label: s.label,
      unit: s.unit,
      kind: s.kind,
      samples: samples.get(s.key)!,
      ...(s.kind === "pool" ? { details: details.get(s.key)! } : {}),
    })),
  };
}

/** The short commit of this checkout (with `+` if it has changes), or nothing. */
async function gitCommit(): Promise<{ commit?: string }> {
  const git = async (...args: string[]): Promise<string | undefined> => {
    try {
      const out = await new Deno.Command("git", {
        args,
        cwd: new URL(".", import.meta.url).pathname,
        stdout: "piped",
        stderr: "null",
      }).output();
      return out.success
        ? new TextDecoder().decode(out.stdout).trim()
        : undefined;
    } catch {
      return undefined; // no git
    }
  };
  const head = await git("rev-parse", "--short", "HEAD");
  if (head === undefined) return {};
  const dirty = await git("status", "--porcelain", "--", "..");
  return { commit: dirty ? `${head}+` : head };
}

/** Rebuilds the rows of a report saved with `--json` (for `--from`). */
async function loadReport(path: string): Promise<Report> {
  const saved = JSON.parse(await Deno.readTextFile(path)) as Report;
  const steps = roundSteps(saved.quick);
  const samples = new Map(saved.steps.map((s) => [s.key, s.samples]));
  return { ...saved, rows: buildRows(samples, steps, saved.quick) };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      rounds: { type: "string", default: "3" },
      quick: { type: "boolean", default: false },
      json: { type: "boolean", default: false },
      write: { type: "boolean", default: false },
      from: { type: "string" },
    },
  });
  const rounds = Number(values.rounds);
  if (!Number.isSafeInteger(rounds) || rounds < 1) {
    throw new RangeError(
      `--rounds must be a positive integer, got ${values.rounds}`,
    );
  }
  const report = values.from === undefined
    ? await runRounds(rounds, values.quick)
    : await loadReport(values.from);
  const table = markdown(report);
  if (values.json) console.log(JSON.stringify(report, null, 2));
  else console.log(table);
  if (values.write) await writeReadme(table);
}

if (import.meta.main) await main();
