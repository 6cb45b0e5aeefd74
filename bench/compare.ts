/**
 * Compares two sets of `deno task bench --json` reports, measurement by
 * measurement: the before/after table of a change.
 *
 * ```sh
 * deno run -A bench/compare.ts --before a1.json,a2.json,a3.json --after b1.json,b2.json,b3.json
 * ```
 *
 * Run the two checkouts alternately (`--rounds 1 --json` each, A B A B A B)
 * so that load changes hit both alike; each side's samples of a measurement
 * are pooled over its reports and the table shows both medians and their
 * ratio (after over before for rates; before over after for times, so that
 * above 1 is always better), plus the median of the per-pair ratios when the
 * reports pair up.
 *
 * @module
 */
import { parseArgs } from "node:util";

interface Step {
  key: string;
  kind: string;
  label: string;
  unit: string;
  samples: number[];
}

interface Report {
  commit?: string;
  steps: Step[];
}

function median(values: readonly number[]): number {
  const sorted = values.toSorted((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2
    ? sorted[mid]!
    : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function format(value: number, unit: string): string {
  if (unit === "B/s") return `${(value / 1e6).toFixed(0)} MB/s`;
  if (unit === "ms") return `${value.toFixed(0)} ms`;
  return `${Math.round(value).toLocaleString("en-US")} ${unit}`;
}

async function load(list: string): Promise<Report[]> {
  const paths = list.split(",").filter(Boolean);
  if (paths.length === 0) throw new RangeError("give at least one report");
  return await Promise.all(
    paths.map(async (p) => JSON.parse(await Deno.readTextFile(p)) as Report),
  );
}

/** The markdown table comparing `before` with `after`. */
export function compare(before: Report[], after: Report[]): string {
  const lines = [
    `| measurement | before (${before[0]?.commit ?? "?"}) | after (${
      after[0]?.commit ?? "?"
    }) | after vs before | per pair |`,
    "| --- | ---: | ---: | ---: | --- |",
  ];
  const keys = new Map<string, Step>();
  for (const r of [...before, ...after]) {
    for (const s of r.steps) if (!keys.has(s.key)) keys.set(s.key, s);
  }
  for (const [key, step] of keys) {
    const side = (reports: Report[]) =>
      reports.map((r) => r.steps.find((s) => s.key === key)?.samples ?? []);
    const a = side(before);
    const b = side(after);
    const flatA = a.flat();
    const flatB = b.flat();
    if (flatA.length === 0 || flatB.length === 0) continue;
    const better = (x: number, y: number) => step.unit === "ms" ? x / y : y / x;
    const pairs: number[] = [];
    for (let i = 0; i < Math.min(a.length, b.length); i++) {
      if (a[i]!.length && b[i]!.length) {
        pairs.push(better(median(a[i]!), median(b[i]!)));
      }
    }
    lines.push(
      `| ${step.kind === "limit" ? "limit: " : ""}${step.label} | ${
        format(median(flatA), step.unit)
      } | ${format(median(flatB), step.unit)} | ${
        better(median(flatA), median(flatB)).toFixed(2)
      }x | ${pairs.map((p) => p.toFixed(2)).join(", ")} |`,
    );
  }
  return lines.join("\n");
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      before: { type: "string" },
      after: { type: "string" },
    },
  });
  if (values.before === undefined || values.after === undefined) {
    console.error(
      "usage: deno run -A bench/compare.ts --before a.json[,…] --after b.json[,…]",
    );
    Deno.exit(2);
  }
  console.log(compare(await load(values.before), await load(values.after)));
}
