/**
 * Host entries for the nodes of a Slurm allocation.
 *
 * @module
 */
import type { CommandHost } from "./host_spec.ts";
import { DEFAULT_REMOTE_ARGV } from "./ssh_launcher.ts";

/** Options of {@link slurmHosts}. */
export interface SlurmHostsOptions {
  /**
   * Workers on each node.
   * @default {Number(SLURM_CPUS_ON_NODE) || 1}
   */
  workersPerNode?: number;
  /**
   * The nodes, in Slurm's compressed form (`node[01-04],gpu7`).
   * @default {Deno.env.get("SLURM_JOB_NODELIST")}
   */
  nodelist?: string;
  /** Extra `srun` arguments, e.g. `["--overlap"]` or `["-p", "debug"]`. */
  srunArgs?: string[];
  /**
   * What srun runs on each node, up to the `cli.ts` entry point.
   * @default {["deno", "run", "-A", "jsr:@distex/pool@<this version>/cli"]}
   */
  command?: string[];
}

/**
 * Builds one `{ command, workers, name }` host per node of a Slurm
 * allocation: `srun -u -N1 -n1 --cpus-per-task=<workers> -w <node> …
 * deno run -A jsr:@distex/pool@<v>/cli`
 * (one srun per node: srun merges the stdout of several tasks, and each link
 * needs its own pipe). The node list is expanded with
 * `scontrol show hostnames`.
 *
 * @param options Workers per node, node list, srun arguments, remote command.
 * @returns The host entries, one per node, for the pool's `hosts` option.
 * @throws {Error} outside an allocation (no `SLURM_JOB_NODELIST` and no
 * `nodelist`), or when `scontrol` fails.
 *
 * @example Inside `salloc -N4` or an `sbatch` script
 * ```ts ignore
 * import { Pool, slurmHosts } from "@distex/pool";
 * const hosts = await slurmHosts({ workersPerNode: 8 });
 * await using pool = await Pool.create({ workers: 0, hosts });
 * console.log(pool.totalWorkers); // 32
 * ```
 */
export async function slurmHosts(
  options: SlurmHostsOptions = {},
): Promise<CommandHost[]> {
  const nodelist = options.nodelist ?? Deno.env.get("SLURM_JOB_NODELIST");
  if (!nodelist) {
    throw new Error(
      "slurmHosts(): not inside a Slurm allocation (SLURM_JOB_NODELIST is not set); " +
        "run under salloc/sbatch, or pass { nodelist }",
    );
  }
  const workers = options.workersPerNode ??
    (Number(Deno.env.get("SLURM_CPUS_ON_NODE")) || 1);
  if (!Number.isSafeInteger(workers) || workers < 1) {
    throw new RangeError(
      `slurmHosts(): workersPerNode must be an integer >= 1, got ${workers}`,
    );
  }
  let output: Deno.CommandOutput;
  try {
    output = await new Deno.Command("scontrol", {
      args: ["show", "hostnames", nodelist],
      stdin: "null",
    }).output();
  } catch (error) {
    throw new Error(
      `slurmHosts(): cannot run scontrol (${
        error instanceof Error ? error.message : error
      }); is Slurm installed here?`,
      { cause: error },
    );
  }
  const text = new TextDecoder();
  if (!output.success) {
    throw new Error(
      `slurmHosts(): 'scontrol show hostnames ${nodelist}' failed: ${
        text.decode(output.stderr).trim()
      }`,
    );
  }
  const nodes = text.decode(output.stdout).split("\n").map((n) => n.trim())
    .filter(Boolean);
  const command = options.command ?? [...DEFAULT_REMOTE_ARGV];
  return nodes.map((node) => ({
    command: [
      "srun",
      // Unbuffered: by default srun passes output on line by line, which
      // holds the binary link.
      "-u",
      "-N1",
      "-n1",
      // The workers are the step's children: give it a CPU for each (with
      // task/cgroup they would otherwise share one).
      `--cpus-per-task=${workers}`,
      "-w",
      node,
      ...(options.srunArgs ?? []),
      ...command,
    ],
    workers,
    name: node,
  }));
}
