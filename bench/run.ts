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
 * Python distex (erdewit/distex) runs in the same rounds when it is found:
 * every `cold-*`, `ready-*` and `curve-*` case runs once in a fresh Python
 * process (`bench/_distex_case.py`) and once in a fresh Deno process, back
 * to back (which goes first alternates by round), and the table shows the
 * median of the per-round ratios. It is found when `distex_proc` is on PATH
 * and a Python (`$DISTEX_PYTHON`, else the interpreter named on
 * `distex_proc`'s `#!` line, else `python3`) imports `distex`, with
 * `$DISTEX_PYTHONPATH` added to its `PYTHONPATH`. When it is not found the
 * run says so loudly and the distex columns stay empty: distex is never
 * required (CI does not run benchmarks).
 *
 * ```sh
 * deno task bench [--rounds 3] [--quick] [--json] [--write] [--from FILE]
 *                 [--only targets,distex,curve,scale]
 * ```
 *
 * - `--rounds N`: rounds (default 3).
 * - `--only LIST`: sections to run: `targets` (the pool against machine
 *   limits), `distex` (side by side with Python distex), `curve` (the
 *   cold-vs-warm curve, first to fifth map), `scale` (`bench/scale.ts`: 2 to
 *   2,000 simulated workers and 2 and 64 local ones, its own interleaved
 *   rounds, after the others). Default: all four.
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
import { type ScaleResult, scaleTable } from "./scale.ts";

const POOL_CASE = new URL("./_pool_case.ts", import.meta.url).pathname;
const LIMITS = new URL("./limits.ts", import.meta.url).pathname;
const README = new URL("./README.md", import.meta.url).pathname;
const START_MARKER = "<!-- bench:start -->";
const END_MARKER = "<!-- bench:end -->";

type Unit = "tasks/s" | "msg/s" | "B/s" | "ms";

const DISTEX_CASE = new URL("./_distex_case.py", import.meta.url).pathname;
const SCALE = new URL("./scale.ts", import.meta.url).pathname;

/**
 * One measurement: a pool case, a limit, or a Python distex case, each in
 * its own process.
 */
interface Step {
  /** Key in the samples: the case name or the limit key (`distex:` first). */
  key: string;
  kind: "pool" | "limit" | "distex";
  unit: Unit;
  label: string;
}

/** The sections of a run (`--only`). */
type Section = "targets" | "distex" | "curve" | "scale";
const SECTIONS: readonly Section[] = ["targets", "distex", "curve", "scale"];

/** How to run Python distex, or why it cannot run. */
type Distex =
  | { found: true; python: string; env: Record<string, string> }
  | { found: false; why: string };

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

function distexStep(key: string, unit: Unit, label: string): Step {
  return { key: `distex:${key}`, kind: "distex", unit, label };
}

/**
 * The cases run side by side with Python distex: the pool's case and
 * distex's of the same name, in the same units.
 */
function pairs(quick: boolean): { key: string; unit: Unit; label: string }[] {
  const { small, large } = counts(quick);
  const bytes = quick ? 40 : 200;
  return [
    {
      key: "cold-map-100k-c1",
      unit: "tasks/s",
      label: `first map, ${small} tiny tasks, chunkSize 1`,
    },
    {
      key: "cold-run-100k",
      unit: "tasks/s",
      label: `first ${small} concurrent run() (distex: gather(run_async))`,
    },
    {
      key: "cold-map-100k-c100",
      unit: "tasks/s",
      label: `first map, ${small} tiny tasks, chunkSize 100`,
    },
    {
      key: "cold-map-1M-c100",
      unit: "tasks/s",
      label: `first map, ${large} tiny tasks, chunkSize 100`,
    },
    {
      key: "cold-bytes-len",
      unit: "B/s",
      label: `first map, ${bytes} x 1 MiB → length`,
    },
    { key: "ready-4", unit: "ms", label: "Pool(4) until ready" },
    { key: "ready-32", unit: "ms", label: "Pool(32) until ready" },
  ];
}

/** The distex section of a round: each pair back to back. */
function distexSteps(quick: boolean, round: number, distex: Distex): Step[] {
  const steps: Step[] = [];
  for (const p of pairs(quick)) {
    const pool = poolStep(p.key, p.unit, `${p.label} (@distex/pool)`);
    const py = distexStep(p.key, p.unit, `${p.label} (Python distex)`);
    if (!distex.found) steps.push(pool);
    else if (round % 2 === 1) steps.push(py, pool);
    else steps.push(pool, py);
    if (p.key === "cold-map-100k-c100") {
      // The default options have no distex twin: compared with its chunk 100.
      steps.push(
        poolStep(
          "cold-map-100k-default",
          "tasks/s",
          `first map, ${
            counts(quick).small
          } tiny tasks, default options (@distex/pool)`,
        ),
        poolStep(
          "floor-100k-c100",
          "tasks/s",
          `${
            counts(quick).small
          } items, chunks of 100 mapped in a fresh process, no pool (floor)`,
        ),
      );
    }
    if (p.key === "cold-bytes-len") {
      steps.push(limitStep("rawEchoBytesPerS", "B/s", RAW_ECHO_LABEL));
    }
  }
  return steps;
}

/** The cold-vs-warm curve: five maps in one process, pool and distex. */
function curveSteps(quick: boolean, round: number, distex: Distex): Step[] {
  const n = counts(quick).small;
  const pool = [
    poolStep(
      "curve-100k-c100",
      "ms",
      `five ${n} maps, chunkSize 100, first map (@distex/pool)`,
    ),
    poolStep(
      "curve-100k-default",
      "ms",
      `five ${n} maps, default options, first map (@distex/pool)`,
    ),
  ];
  if (!distex.found) return pool;
  const py = distexStep(
    "curve-100k-c100",
    "ms",
    `five ${n} maps, chunkSize 100, first map (Python distex)`,
  );
  return round % 2 === 1 ? [py, ...pool] : [...pool, py];
}

const RAW_ECHO_LABEL = "raw byte echo, 1 MiB writes";

/** One round, in run order; a step that two sections share runs once. */
function roundSteps(
  quick: boolean,
  sections: readonly Section[],
  round: number,
  distex: Distex,
): Step[] {
  const steps: Step[] = [];
  if (sections.includes("targets")) steps.push(...targetSteps(quick));
  if (sections.includes("distex")) {
    steps.push(...distexSteps(quick, round, distex));
  }
  if (sections.includes("curve")) {
    steps.push(...curveSteps(quick, round, distex));
  }
  const seen = new Set<string>();
  return steps.filter((s) => !seen.has(s.key) && seen.add(s.key));
}

/** The targets section: each limit next to the cases it is compared to. */
function targetSteps(quick: boolean): Step[] {
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
    limitStep("rawEchoBytesPerS", "B/s", RAW_ECHO_LABEL),
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

async function runChild(
  command: string,
  args: string[],
  env?: Record<string, string>,
): Promise<string> {
  const output = await new Deno.Command(command, {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
    ...(env ? { env } : {}),
  }).output();
  const stdout = new TextDecoder().decode(output.stdout);
  if (!output.success) {
    throw new Error(
      `${command} ${
        args.join(" ")
      } exited with code ${output.code}; stdout:\n${stdout}`,
    );
  }
  return stdout;
}

/** A figure and, for pool and distex cases, what else the case reported. */
interface Sample {
  value: number;
  detail?: Record<string, unknown>;
}

/** Parses the JSON line a case prints last (a worker may print before it). */
function caseResult(key: string, stdout: string): Sample {
  const line = stdout.trimEnd().split("\n").pop() ?? "";
  const result = JSON.parse(line) as {
    case: string;
    value: number;
    detail: Record<string, unknown>;
  };
  if (result.case !== key || typeof result.value !== "number") {
    throw new Error(`Unexpected result from ${key}: ${line}`);
  }
  return { value: result.value, detail: result.detail };
}

/** Runs one step in a fresh process and returns its figure. */
async function measure(
  step: Step,
  quick: boolean,
  distex: Distex,
): Promise<Sample> {
  const quickArg = quick ? ["--quick"] : [];
  if (step.kind === "pool") {
    const stdout = await runChild(Deno.execPath(), [
      "run",
      "-A",
      POOL_CASE,
      step.key,
      ...quickArg,
    ]);
    return caseResult(step.key, stdout);
  }
  if (step.kind === "distex") {
    if (!distex.found) throw new Error(`distex not found: ${distex.why}`);
    const key = step.key.slice("distex:".length);
    const stdout = await runChild(
      distex.python,
      [DISTEX_CASE, key, ...quickArg],
      distex.env,
    );
    return caseResult(key, stdout);
  }
  const spawn = step.unit === "ms";
  const stdout = await runChild(Deno.execPath(), [
    "run",
    "-A",
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

/** Where `name` is on PATH, or undefined. */
async function which(name: string): Promise<string | undefined> {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    if (dir === "") continue;
    const path = `${dir}/${name}`;
    try {
      const info = await Deno.stat(path);
      if (info.isFile && ((info.mode ?? 0o111) & 0o111) !== 0) return path;
    } catch {
      // not there
    }
  }
  return undefined;
}

/**
 * Looks for Python distex: `distex_proc` on PATH (distex starts its workers
 * with it) and a Python that imports `distex`.
 */
async function findDistex(): Promise<Distex> {
  const proc = await which("distex_proc");
  if (proc === undefined) {
    return {
      found: false,
      why: "no distex_proc on PATH (distex starts its workers with it)",
    };
  }
  const candidates: string[] = [];
  const fromEnv = Deno.env.get("DISTEX_PYTHON");
  if (fromEnv) candidates.push(fromEnv);
  try {
    const first = (await Deno.readTextFile(proc)).split("\n", 1)[0] ?? "";
    const shebang = /^#!\s*(\S+)(?:\s+(\S+))?/.exec(first);
    if (shebang) {
      // `#!/usr/bin/env python3` names the interpreter second.
      const interpreter = shebang[1]!.endsWith("/env")
        ? shebang[2]
        : shebang[1];
      if (interpreter && /python/.test(interpreter)) {
        candidates.push(interpreter);
      }
    }
  } catch {
    // not readable: try python3
  }
  candidates.push("python3");
  const extra = Deno.env.get("DISTEX_PYTHONPATH");
  const env: Record<string, string> = {};
  if (extra) {
    const current = Deno.env.get("PYTHONPATH");
    env.PYTHONPATH = current ? `${extra}:${current}` : extra;
  }
  const tried: string[] = [];
  for (const python of candidates) {
    try {
      const out = await new Deno.Command(python, {
        args: ["-c", "import distex, eventkit; print(distex.__version__)"],
        stdin: "null",
        stdout: "piped",
        stderr: "null",
        env,
      }).output();
      if (out.success) return { found: true, python, env };
      tried.push(`${python} cannot import distex`);
    } catch {
      tried.push(`${python} not found`);
    }
  }
  return { found: false, why: tried.join("; ") };
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

/**
 * A row of the distex table: how many times faster the pool is than Python
 * distex (rates: pool / distex; times: distex / pool), or than a limit.
 */
interface VersusRow {
  label: string;
  /** Median of the pool's samples. */
  pool: number;
  /** Median of the other side's samples; undefined when not measured. */
  other: number | undefined;
  unit: Unit;
  /** What the pool is compared with. */
  otherLabel: string;
  /** Median of `roundRatios` (higher is better for the pool). */
  ratio: number | undefined;
  roundRatios: number[];
  /** `ratio >= target`, when there is one. */
  target?: number;
  met?: boolean;
  /**
   * CPU time of the pool process's main thread in the timed pass (ms,
   * medians), both sides, and the median per-round ratio other / pool:
   * what the pool itself spent, far less moved by other users' load than
   * wall time.
   */
  cpu?: { pool: number; other: number; ratio: number };
}

/** The cold-vs-warm curve: milliseconds of the 1st to 5th map. */
interface CurveRow {
  label: string;
  /** Median over rounds of each map's milliseconds. */
  mapsMs: number[];
  /** Median over rounds of each map's pool-process CPU milliseconds. */
  cpuMs: number[];
  /** Every round's five figures. */
  rounds: number[][];
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
  sections: Section[];
  /** Whether Python distex ran, and with which interpreter. */
  distex: { found: boolean; why?: string; python?: string; version?: string };
  rows: Row[];
  versus: VersusRow[];
  curve: CurveRow[];
  /** The scale harness's own rounds (`bench/scale.ts --json`), if run. */
  scale?: { loadStart: number[]; loadEnd: number[]; results: ScaleResult[][] };
  steps: {
    key: string;
    kind: Step["kind"];
    label: string;
    unit: Unit;
    samples: number[];
    /** What each pool or distex case reported besides its figure, per round. */
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

/** The rows of the distex table, from what was measured. */
function buildVersus(
  samples: Map<string, number[]>,
  units: Map<string, Unit>,
  details: Map<string, Record<string, unknown>[]>,
  quick: boolean,
): VersusRow[] {
  const cpuOf = (key: string): number[] | undefined => {
    const list = details.get(key)?.map((d) => d.cpuMs);
    return list && list.length > 0 && list.every((c) => typeof c === "number")
      ? list as number[]
      : undefined;
  };
  const rows: VersusRow[] = [];
  const add = (
    label: string,
    poolKey: string,
    otherKey: string,
    otherLabel: string,
    target?: number,
  ): void => {
    const pool = samples.get(poolKey);
    if (!pool) return;
    const unit = units.get(poolKey)!;
    const other = samples.get(otherKey);
    const roundRatios = other
      ? pool.map((v, r) => unit === "ms" ? other[r]! / v : v / other[r]!)
      : [];
    const ratio = other ? median(roundRatios) : undefined;
    const poolCpu = cpuOf(poolKey);
    const otherCpu = cpuOf(otherKey);
    const cpu = poolCpu && otherCpu && poolCpu.length === otherCpu.length
      ? {
        pool: median(poolCpu),
        other: median(otherCpu),
        ratio: median(poolCpu.map((c, r) => otherCpu[r]! / c)),
      }
      : undefined;
    rows.push({
      ...(cpu ? { cpu } : {}),
      label,
      pool: median(pool),
      other: other ? median(other) : undefined,
      unit,
      otherLabel,
      ratio,
      roundRatios,
      ...(target === undefined ? {} : {
        target,
        ...(ratio === undefined ? {} : { met: ratio >= target }),
      }),
    });
  };
  const p = pairs(quick);
  const targets: Record<string, number> = {
    "cold-map-100k-c1": 8,
    "cold-run-100k": 8,
    "cold-map-100k-c100": 2,
    "cold-bytes-len": 1.5,
  };
  for (const { key, label } of p) {
    add(label, key, `distex:${key}`, "Python distex", targets[key]);
    if (key === "cold-map-100k-c100") {
      add(
        `first map, ${counts(quick).small} tiny tasks, default options`,
        "cold-map-100k-default",
        "distex:cold-map-100k-c100",
        "Python distex, chunksize 100",
        2,
      );
      add(
        `first map, ${counts(quick).small} tiny tasks, chunkSize 100`,
        key,
        "floor-100k-c100",
        "no pool, same loop in a fresh process (floor)",
      );
    }
    if (key === "cold-bytes-len") {
      add(label, key, "rawEchoBytesPerS", "raw byte echo", 0.6);
    }
  }
  return rows;
}

/** The curve rows: per map index, the median over rounds. */
function buildCurve(
  steps: Step[],
  details: Map<string, Record<string, unknown>[]>,
): CurveRow[] {
  const rows: CurveRow[] = [];
  for (const step of steps) {
    if (!step.key.includes("curve-")) continue;
    const list = details.get(step.key) ?? [];
    const rounds = list.map((d) => (d.mapsMs as number[] | undefined) ?? [])
      .filter((m) => m.length === 5);
    if (rounds.length === 0) continue;
    const cpu = list.map((d) => (d.cpuMs as number[] | undefined) ?? [])
      .filter((m) => m.length === 5);
    rows.push({
      label: step.label.replace(/, first map/, ""),
      mapsMs: [0, 1, 2, 3, 4].map((i) => median(rounds.map((m) => m[i]!))),
      cpuMs: cpu.length === 0
        ? []
        : [0, 1, 2, 3, 4].map((i) => median(cpu.map((m) => m[i]!))),
      rounds,
    });
  }
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
  if (report.sections.includes("distex")) {
    lines.push("");
    lines.push(
      report.distex.found
        ? `Python distex ${
          report.distex.version ?? ""
        } (${report.distex.python}) ran in the same rounds.`
        : `**Python distex was NOT found (${report.distex.why}): its columns are empty.**`,
    );
  }
  if (report.versus.length > 0) {
    lines.push("");
    lines.push(
      "| case (fresh pool, one timed pass) | @distex/pool | compared with | ratio | target | met? | ratio per round | pool-process CPU: ours, theirs (ratio) |",
    );
    lines.push("| --- | ---: | --- | ---: | ---: | :---: | --- | --- |");
    for (const row of report.versus) {
      const percent = row.target !== undefined && row.target < 1;
      const show = (r: number): string =>
        percent ? `${(r * 100).toFixed(0)}%` : `${r.toFixed(2)}x`;
      const target = row.target === undefined
        ? "—"
        : percent
        ? `>= ${(row.target * 100).toFixed(0)}%`
        : `>= ${row.target}x`;
      lines.push(
        `| ${row.label} | ${format(row.pool, row.unit)} | ${row.otherLabel}: ${
          row.other === undefined ? "not measured" : format(row.other, row.unit)
        } | ${row.ratio === undefined ? "—" : show(row.ratio)} | ${target} | ${
          row.met === undefined ? "—" : row.met ? "yes" : "**no**"
        } | ${row.roundRatios.map(show).join(", ")} | ${
          row.cpu
            ? `${row.cpu.pool.toFixed(0)} ms, ${row.cpu.other.toFixed(0)} ms (${
              row.cpu.ratio.toFixed(2)
            }x)`
            : "—"
        } |`,
      );
    }
    lines.push("");
    lines.push(
      "Ratio: how many times faster @distex/pool is (rates: pool / other; " +
        "times: other / pool), the median of the per-round ratios. " +
        "Pool-process CPU: the main thread's CPU time during the timed pass " +
        "(the workers' is not counted), medians, and the median per-round " +
        "ratio of theirs to ours; other users' load moves it far less than " +
        "wall time.",
    );
  }
  if (report.curve.length > 0) {
    lines.push("");
    lines.push(
      "Cold vs warm: milliseconds of the 1st to 5th map in one process (median over rounds):",
    );
    lines.push("");
    lines.push(
      "| maps on one fresh Pool(2): wall ms (pool-process CPU ms) | 1st | 2nd | 3rd | 4th | 5th |",
    );
    lines.push("| --- | ---: | ---: | ---: | ---: | ---: |");
    for (const row of report.curve) {
      lines.push(
        `| ${row.label} | ${
          row.mapsMs.map((m, i) =>
            `${m.toFixed(0)}${
              row.cpuMs[i] === undefined ? "" : ` (${row.cpuMs[i]!.toFixed(0)})`
            }`
          ).join(" | ")
        } |`,
      );
    }
  }
  if (report.rows.length > 0) {
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
  }
  if (report.scale !== undefined) {
    const load = (l: number[]): string => l.map((x) => x.toFixed(1)).join(" ");
    lines.push("");
    lines.push(
      `Scale (\`bench/scale.ts\`, medians of ${report.scale.results.length} ` +
        `rounds of its own; load average ${load(report.scale.loadStart)} at ` +
        `its start, ${load(report.scale.loadEnd)} at its end):`,
    );
    lines.push("");
    lines.push(scaleTable(report.scale.results));
  }
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

function loudNotFound(distex: Distex): void {
  if (distex.found) return;
  console.error(
    `\n${"!".repeat(72)}\n!! bench: Python distex NOT FOUND: ${distex.why}.\n` +
      "!! The distex columns stay empty. See bench/README.md (Python distex)\n" +
      `!! to install it.\n${"!".repeat(72)}\n`,
  );
}

/** Runs the rounds and returns the report. */
async function runRounds(
  rounds: number,
  quick: boolean,
  sections: Section[],
): Promise<Report> {
  const distex: Distex = sections.some((s) => s !== "targets")
    ? await findDistex()
    : { found: false, why: "not asked for" };
  if (sections.includes("distex")) loudNotFound(distex);
  const samples = new Map<string, number[]>();
  const details = new Map<string, Record<string, unknown>[]>();
  const order: Step[] = [];
  const t0 = performance.now();
  const loadStart = Deno.loadavg();
  // Fill Deno's module caches once, so no round pays for transpiling.
  console.error("bench: priming caches");
  await measure(poolStep("create-4", "ms", ""), true, distex);
  await measure(limitStep("bareSpawn4Ms", "ms", ""), true, distex);
  if (distex.found) {
    await measure(distexStep("ready-4", "ms", ""), true, distex);
  }
  for (let round = 1; round <= rounds; round++) {
    for (const step of roundSteps(quick, sections, round, distex)) {
      if (!samples.has(step.key)) {
        order.push(step);
        samples.set(step.key, []);
        details.set(step.key, []);
      }
      const { value, detail } = await measure(step, quick, distex);
      samples.get(step.key)!.push(value);
      if (detail) details.get(step.key)!.push(detail);
      console.error(
        `bench: round ${round}/${rounds} ${step.key}: ${
          format(value, step.unit)
        }`,
      );
    }
  }
  const version = distex.found
    ? details.get("distex:ready-4")?.[0]?.distex ??
      details.values().find((d) => d[0]?.distex)?.[0]?.distex
    : undefined;
  const report: Report = {
    date: new Date().toISOString().slice(0, 16).replace("T", " ") + " UTC",
    ...await gitCommit(),
    deno: Deno.version.deno,
    cpus: navigator.hardwareConcurrency,
    rounds,
    quick,
    seconds: (performance.now() - t0) / 1000,
    loadavg: { start: loadStart, end: Deno.loadavg() },
    sections,
    distex: distex.found
      ? {
        found: true,
        python: distex.python,
        ...(typeof version === "string" ? { version } : {}),
      }
      : { found: false, why: distex.why },
    rows: [],
    versus: [],
    curve: [],
    steps: order.map((s) => ({
      key: s.key,
      label: s.label,
      unit: s.unit,
      kind: s.kind,
      samples: samples.get(s.key)!,
      ...(s.kind !== "limit" ? { details: details.get(s.key)! } : {}),
    })),
  };
  if (sections.includes("scale")) report.scale = await runScale(rounds, quick);
  if (sections.includes("distex")) loudNotFound(distex);
  return withRows(report);
}

/** Runs the scale harness in a process of its own and returns its report. */
async function runScale(
  rounds: number,
  quick: boolean,
): Promise<NonNullable<Report["scale"]>> {
  console.error("bench: scale harness (bench/scale.ts)");
  const args = ["run", "-A", SCALE, "--json", "--rounds", String(rounds)];
  if (quick) {
    args.push("--workers", "2,20,200", "--local", "2", "--tasks", "2000");
  }
  const out = await new Deno.Command(Deno.execPath(), {
    args,
    stdout: "piped",
    stderr: "inherit",
  }).output();
  const text = new TextDecoder().decode(out.stdout).trim();
  if (!out.success) {
    throw new Error(`bench/scale.ts failed (exit ${out.code}): ${text}`);
  }
  return JSON.parse(text.slice(text.lastIndexOf("\n") + 1));
}

/** Fills in the rows of a report from its samples. */
function withRows(report: Report): Report {
  const samples = new Map(report.steps.map((s) => [s.key, s.samples]));
  const units = new Map(report.steps.map((s) => [s.key, s.unit]));
  const details = new Map(report.steps.map((s) => [s.key, s.details ?? []]));
  const steps: Step[] = report.steps.map((s) => ({
    key: s.key,
    kind: s.kind,
    unit: s.unit,
    label: s.label,
  }));
  const sections = report.sections ?? ["targets"];
  return {
    ...report,
    sections,
    distex: report.distex ?? { found: false, why: "not asked for" },
    rows: sections.includes("targets")
      ? buildRows(samples, steps, report.quick)
      : [],
    versus: sections.includes("distex")
      ? buildVersus(samples, units, details, report.quick)
      : [],
    curve: buildCurve(steps, details),
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
  return withRows(JSON.parse(await Deno.readTextFile(path)) as Report);
}

function parseSections(list: string): Section[] {
  const sections = list.split(",").map((s) => s.trim()).filter(Boolean);
  for (const s of sections) {
    if (!(SECTIONS as readonly string[]).includes(s)) {
      throw new RangeError(
        `--only takes a comma-separated list of ${
          SECTIONS.join(", ")
        }; got ${s}`,
      );
    }
  }
  if (sections.length === 0) throw new RangeError("--only is empty");
  return sections as Section[];
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
      only: { type: "string", default: SECTIONS.join(",") },
    },
  });
  const rounds = Number(values.rounds);
  if (!Number.isSafeInteger(rounds) || rounds < 1) {
    throw new RangeError(
      `--rounds must be a positive integer, got ${values.rounds}`,
    );
  }
  const report = values.from === undefined
    ? await runRounds(rounds, values.quick, parseSections(values.only))
    : await loadReport(values.from);
  const table = markdown(report);
  if (values.json) console.log(JSON.stringify(report, null, 2));
  else console.log(table);
  if (values.write) await writeReadme(table);
}

if (import.meta.main) await main();
