/**
 * Hosts launched by a real Slurm cluster: `{ command: ["srun", "-u", "-n1",
 * …] }` hosts run the contract suite, `slurmHosts()` builds working entries,
 * and `scancel` of the job mid-map behaves like a lost host. CI starts a
 * single-node cluster with `.ci/slurm start` (see
 * shared/notes/slurm-test-cluster.md); without one these tests are skipped
 * loudly.
 *
 * @module
 */
import assert from "node:assert/strict";
import { HostError, Pool, slurmHosts } from "../mod.ts";
import { contractSuite } from "./_contract.ts";
import { skipMessage } from "./_ssh_hosts.ts";
import { CLI_PATH, recordEvents } from "./_ssh_pool.ts";
import {
  childTemp,
  isGone,
  pollUntil,
  rejection,
  withTimeout,
} from "./_util.ts";

const decoder = new TextDecoder();

async function slurmPrerequisites(): Promise<string | null> {
  try {
    const out = await new Deno.Command("sinfo", {
      args: ["-h", "-o", "%t"],
      stdin: "null",
    }).output();
    const states = decoder.decode(out.stdout).trim().split("\n");
    if (!out.success) {
      return `sinfo failed (${
        decoder.decode(out.stderr).trim()
      }): start the test cluster with '.ci/slurm start'`;
    }
    if (!states.some((s) => /^(idle|mix)/.test(s))) {
      return `no idle Slurm node (sinfo: ${states.join(",")})`;
    }
    return null;
  } catch {
    return "Slurm is not installed (apt-get install slurm-wlm munge; then .ci/slurm start)";
  }
}

const reason = await slurmPrerequisites();
if (reason !== null) skipMessage("Slurm tests (tests/slurm_test.ts)", reason);
const ignore = reason !== null;
const BOUND_MS = 60_000;

/** This checkout's cli.ts, run by Deno. */
const DISTEX = [Deno.execPath(), "run", "-A", CLI_PATH];

/**
 * An srun host; with `tmp`, the job's supervisor and workers get it as their
 * TMPDIR, for a test that kills the job.
 */
function srunHost(workers: number, name = "slurm", tmp?: string) {
  const env = tmp === undefined ? [] : [`--export=ALL,TMPDIR=${tmp}`];
  return { command: ["srun", ...env, "-u", "-n1", ...DISTEX], workers, name };
}

if (ignore) {
  Deno.test({ name: "[slurm] contract suite", ignore, fn() {} });
} else {
  contractSuite("slurm", () => ({ workers: 0, hosts: [srunHost(2)] }));
}

Deno.test({
  name:
    "slurmHosts() builds one srun host per node of the allocation, and a pool runs on them",
  ignore,
  async fn() {
    const node = decoder.decode(
      (await new Deno.Command("hostname", { args: ["-s"] }).output()).stdout,
    ).trim();
    const hosts = await slurmHosts({
      nodelist: node,
      workersPerNode: 2,
      command: DISTEX,
    });
    assert.deepEqual(hosts, [{
      command: [
        "srun",
        "-u",
        "-N1",
        "-n1",
        "--cpus-per-task=2",
        "-w",
        node,
        ...DISTEX,
      ],
      workers: 2,
      name: node,
    }]);
    await using pool = await withTimeout(
      Pool.create({ workers: 0, hosts }),
      BOUND_MS,
      "Pool.create()",
    );
    const jobs = await pool.runOnAll(() => Deno.env.get("SLURM_JOB_ID"));
    assert.equal(jobs.length, 2);
    assert.ok(jobs[0] && jobs[0] === jobs[1], `one job: ${jobs}`);
    assert.equal(pool.stats().workers[0]!.host, node);
  },
});

Deno.test("slurmHosts() outside an allocation says so", async () => {
  if (Deno.env.get("SLURM_JOB_NODELIST")) return;
  const error = await rejection(slurmHosts());
  assert.match(error.message, /not inside a Slurm allocation/);
});

Deno.test({
  name:
    "scancel of a Slurm host's job mid-map: hostlost, retries lose nothing, a new job replaces it",
  ignore,
  async fn() {
    // scancel kills the job's supervisor, which cannot remove its link dir:
    // it goes into a dir of this test's, removed at the end.
    await using tmp = await childTemp();
    await using pool = await withTimeout(
      Pool.create({
        workers: 1,
        hosts: [srunHost(2, "slurm", tmp.path)],
        retries: 3,
      }),
      BOUND_MS,
      "Pool.create()",
    );
    const lost = recordEvents<{ host: string }>(pool, "hostlost");
    const seen = await pool.runOnAll(() => ({
      pid: Deno.pid,
      job: Deno.env.get("SLURM_JOB_ID"),
    }));
    const remote = seen.filter((w) => w.job !== undefined);
    assert.equal(remote.length, 2);
    const job = remote[0]!.job!;
    const items = Array.from({ length: 400 }, (_, i) => i);
    const results: number[] = [];
    let cancelled: Promise<Deno.CommandOutput> | undefined;
    for await (
      const x of pool.map(async (i: number) => {
        await new Promise((r) => setTimeout(r, 3));
        return i;
      }, items)
    ) {
      results.push(x);
      if (results.length === 40) {
        cancelled = new Deno.Command("scancel", { args: [job] }).output();
      }
    }
    assert.ok(cancelled, "scancel ran mid-map");
    assert.ok((await cancelled).success, "scancel succeeded");
    assert.deepEqual(results, items, "every result, once, in order");
    assert.ok(
      await pollUntil(() => lost.seen.length > 0, BOUND_MS),
      "hostlost",
    );
    assert.equal(lost.seen[0]!.detail.host, "slurm");
    for (const w of remote) {
      assert.ok(
        await pollUntil(() => isGone(w.pid), BOUND_MS),
        `worker ${w.pid} of the cancelled job is gone`,
      );
    }
    assert.ok(
      await pollUntil(() => pool.totalWorkers === 3, BOUND_MS),
      "the host came back",
    );
    const again = await pool.runOnAll(() => Deno.env.get("SLURM_JOB_ID"));
    const jobs = again.filter((j) => j !== undefined);
    assert.equal(jobs.length, 2);
    assert.ok(jobs.every((j) => j !== job), "a new job");
    assert.ok(
      (await tmp.names()).some((name) => name.startsWith("distex-link-")),
      "the supervisors' link dirs are in the test's TMPDIR",
    );
  },
});

Deno.test({
  name: "An srun host without -u: the HostError on timeout says srun needs -u",
  ignore,
  async fn() {
    // The pool gives up and kills the step: its supervisor cannot remove its
    // link dir, which goes into a dir of this test's.
    await using tmp = await childTemp();
    const error = await rejection(
      withTimeout(
        Pool.create({
          workers: 0,
          hosts: [{
            command: [
              "srun",
              `--export=ALL,TMPDIR=${tmp.path}`,
              "-n1",
              ...DISTEX,
            ],
            workers: 1,
          }],
          startTimeout: 5_000,
        }),
        BOUND_MS,
        "Pool.create()",
      ),
    );
    assert.ok(error instanceof HostError, `got ${error}`);
    assert.match(error.message, /srun needs -u/);
  },
});
