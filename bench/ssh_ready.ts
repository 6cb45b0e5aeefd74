/**
 * Time from `new Pool` to `ready` for 1 local worker + 2 SSH hosts × 2
 * workers, against two baselines measured in the same run: a pool of 1
 * local worker, and one `ssh <host> true` (login, no tunnel, no Deno).
 *
 * The hosts are two network-namespace machines when this runs as root with
 * iproute2 (each its own sshd and /tmp), else two loopback sshds. Both are
 * started and stopped here (see `tests/_ssh_hosts.ts`).
 *
 * ```sh
 * deno run -A bench/ssh_ready.ts [--rounds 5] [--loopback]
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";
import { Pool } from "../mod.ts";
import {
  namespacePrerequisites,
  sshPrerequisites,
  startNamespaceHosts,
  startSshHost,
} from "../tests/_ssh_hosts.ts";

const CLI = new URL("../cli.ts", import.meta.url).pathname;

interface Hosts extends AsyncDisposable {
  kind: string;
  specs: (n: number) => string[];
  sshArgs: string[];
  /** `ssh <first host> true`. */
  probe: () => Promise<void>;
}

async function startHosts(loopback: boolean): Promise<Hosts> {
  if (!loopback && (await namespacePrerequisites()) === null) {
    const net = await startNamespaceHosts(2);
    const first = net.hosts[0]!;
    return {
      kind: "2 namespace hosts",
      specs: (n) => net.hosts.map((h) => h.hostSpec(n)),
      sshArgs: [...net.sshArgs],
      probe: async () => {
        const r = await first.exec("true");
        if (r.code !== 0) throw new Error(`ssh true failed: ${r.stderr}`);
      },
      [Symbol.asyncDispose]: () => net.close(),
    };
  }
  const reason = await sshPrerequisites();
  if (reason !== null) throw new Error(`Cannot run: ${reason}`);
  // Both hosts in one ssh_config: the second sshd's config is merged in.
  const one = await startSshHost();
  const two = await startSshHost();
  return {
    kind: "2 loopback sshds",
    specs: (n) => [one.hostSpec(n), two.hostSpec(n)],
    // ssh reads only one -F; each host gets its own config via Host blocks.
    sshArgs: ["-F", await mergedConfig(one.configPath, two.configPath)],
    probe: async () => {
      const r = await one.exec("true");
      if (r.code !== 0) throw new Error(`ssh true failed: ${r.stderr}`);
    },
    [Symbol.asyncDispose]: async () => {
      await Promise.all([one.close(), two.close()]);
    },
  };
}

/**
 * One config for two loopback hosts: the first file, then the second file's
 * own `Host <alias>` block plus its IdentityFile (each sshd has its own keys;
 * IdentityFile adds to the list, the other settings come from `Host *`).
 */
async function mergedConfig(first: string, second: string): Promise<string> {
  const a = await Deno.readTextFile(first);
  const b = await Deno.readTextFile(second);
  const identity = /IdentityFile (.*)/.exec(b)![1]!;
  const hostBlock = b.slice(b.lastIndexOf("\nHost ") + 1).trimEnd();
  const path = first.replace(/ssh_config$/, "ssh_config_both");
  await Deno.writeTextFile(
    path,
    `${a.trimEnd()}\n${hostBlock}\n  IdentityFile ${identity}\n`,
  );
  return path;
}

async function timeReady(
  options: ConstructorParameters<typeof Pool>[0],
): Promise<number> {
  const started = performance.now();
  const pool = new Pool(options);
  try {
    await pool.ready;
    return performance.now() - started;
  } finally {
    await pool.close();
  }
}

async function time(fn: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await fn();
  return performance.now() - started;
}

function median(values: number[]): number {
  const sorted = values.toSorted((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2
    ? sorted[mid]!
    : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function row(label: string, values: number[], baseline?: number): string {
  const m = median(values);
  const ratio = baseline ? ` ${(m / baseline).toFixed(1).padStart(5)}x` : "";
  return `${label.padEnd(44)} ${m.toFixed(0).padStart(6)} ms${ratio}  ` +
    `(min ${Math.min(...values).toFixed(0)}, max ${
      Math.max(...values).toFixed(0)
    })`;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      rounds: { type: "string", default: "5" },
      loopback: { type: "boolean", default: false },
    },
  });
  const rounds = Number(values.rounds);
  await using hosts = await startHosts(values.loopback ?? false);
  const ssh = {
    args: hosts.sshArgs,
    command: `${Deno.execPath()} run -A ${CLI}`,
  };
  const sshTrue: number[] = [];
  const local: number[] = [];
  const mixed: number[] = [];
  // One warm-up of each, then alternate so drift hits all alike.
  await hosts.probe();
  await timeReady({ workers: 1, hosts: hosts.specs(2), ssh });
  for (let i = 0; i < rounds; i++) {
    sshTrue.push(await time(hosts.probe));
    local.push(await timeReady({ workers: 1 }));
    mixed.push(await timeReady({ workers: 1, hosts: hosts.specs(2), ssh }));
  }
  const base = median(sshTrue);
  console.log(
    `new Pool -> ready, ${hosts.kind}, ${rounds} rounds, ${navigator.hardwareConcurrency} CPUs (median, ratio to ssh true)`,
  );
  console.log(row("ssh <host> true (baseline)", sshTrue, base));
  console.log(row("1 local worker", local, base));
  console.log(row("1 local + 2 SSH hosts x 2 workers", mixed, base));
}

if (import.meta.main) await main();
