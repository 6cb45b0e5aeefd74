/**
 * `Pool` over two network-namespace "machines" (own address, own /tmp, own
 * sshd): a long map runs over both while one host fails mid-map, by a cut
 * link (from the namespace side) or by its sshd and every process on it being
 * killed. With retries the map finishes on the other host with every result
 * exactly once; without, it fails with a `WorkerLostError` naming the host.
 * Either way nothing hangs, `totalWorkers` and the `hostlost` event show the
 * loss, and the pool reconnects the host once it is back. Afterwards, and
 * after a SIGKILLed pool owner, `ip netns pids` shows no worker left.
 *
 * The times to notice a cut link and to get the host back are printed to
 * stderr (no assertions on speed, only bounds against hangs).
 *
 * @module
 */
import assert from "node:assert/strict";
import { HostError, Pool, type WorkerExit, WorkerLostError } from "../mod.ts";
import {
  type NamespaceHost,
  type NamespaceHosts,
  namespacePrerequisites,
  skipMessage,
  startNamespaceHosts,
} from "./_ssh_hosts.ts";
import {
  namespaceCommand,
  processes,
  processTree,
  recordEvents,
  spawnFixture,
} from "./_ssh_pool.ts";
import { pollUntil, rejection, withTimeout } from "./_util.ts";
import { contractSuite, TASKS_FILE } from "./_contract.ts";

const reason = await namespacePrerequisites();
if (reason !== null) {
  skipMessage("namespace host tests (tests/ssh_netns_test.ts)", reason);
}
const ignore = reason !== null;

/** ssh_config for the hosts: a cheaper key exchange (~0.1 s per login). */
const FAST = { sshConfig: ["KexAlgorithms curve25519-sha256"] };

const OWNER_FIXTURE = new URL("./fixtures/ssh/pool_owner.ts", import.meta.url);

/** Items in the long map, and how many results to see before the fault. */
const ITEMS = 600;
const FAULT_AFTER = 40;

/** Bound for anything that must not hang (detection takes ~7 s). */
const BOUND_MS = 30_000;

/** The map's task: a short wait, then the item and the address it ran at. */
async function where(x: number): Promise<[number, string]> {
  await new Promise((resolve) => setTimeout(resolve, 20));
  const address = Deno.networkInterfaces().find((i) =>
    i.address.startsWith("10.213.")
  )?.address;
  return [x, address ?? "?"];
}

/** The namespace address a worker runs at. */
function address(): string {
  return Deno.networkInterfaces().find((i) => i.address.startsWith("10.213."))
    ?.address ?? "?";
}

/** Processes of a host other than its sshd listener: sessions and workers. */
async function leftovers(host: NamespaceHost): Promise<string[]> {
  const list = await processes(await host.pids());
  return list.filter((p) =>
    !/^sshd: .*\[listener\]|^\/usr\/sbin\/sshd -D/.test(p.cmdline)
  )
    .map((p) => `${host.alias}: ${p.pid} ${p.cmdline}`);
}

/** Waits (bounded) until no host runs anything but its sshd listener. */
async function assertNothingLeft(
  net: NamespaceHosts,
  when: string,
): Promise<void> {
  const clean = await pollUntil(async () => {
    for (const host of net.hosts) {
      if ((await leftovers(host)).length > 0) return false;
    }
    return true;
  }, 20_000);
  const left = (await Promise.all(net.hosts.map(leftovers))).flat();
  assert.ok(clean, `left on the hosts ${when}:\n${left.join("\n")}`);
}

/** `promise` within BOUND_MS, else an error with the pool's stats. */
async function bounded<T>(
  pool: Pool,
  promise: Promise<T>,
  what: string,
): Promise<T> {
  try {
    return await withTimeout(promise, BOUND_MS, what);
  } catch (error) {
    throw new Error(
      `${(error as Error).message}; pool: ${JSON.stringify(pool.stats())}`,
    );
  }
}

function ms(from: number, to: number | undefined): string {
  return to === undefined ? "never" : `${Math.round(to - from)} ms`;
}

// ---- the contract suite over two namespace hosts -----------------------------

if (ignore) {
  Deno.test({ name: "[netns] contract suite", ignore: true, fn() {} });
} else {
  // Two "machines" for the whole suite, stopped by its cleanup test (by
  // PID and namespace name, in NamespaceHosts.close()).
  const shared = await startNamespaceHosts(2, FAST);
  const command = await namespaceCommand(shared.dir);
  // The hosts have a /tmp of their own: a checkout there (as in a CI clone)
  // is not theirs to read, so the by-reference tasks go where they see them.
  const tasks = `${shared.dir}/tasks.ts`;
  await Deno.copyFile(new URL(TASKS_FILE), tasks);
  contractSuite(
    "netns",
    () => ({
      workers: 0,
      hosts: shared.hosts.map((host) => host.hostSpec(1)),
      ssh: { args: [...shared.sshArgs], command },
    }),
    () => shared.close(),
    `file://${tasks}`,
  );
}

type Fault = "cut link" | "killed sshd";

/**
 * The loss scenario: a pool of 2 + 2 workers on hosts a and b, a long map,
 * `fault` on host a after FAULT_AFTER results.
 */
async function hostLoss(fault: Fault, retries: boolean): Promise<void> {
  await using net = await startNamespaceHosts(2, FAST);
  const [a, b] = net.hosts as [NamespaceHost, NamespaceHost];
  await using pool = await withTimeout(
    Pool.create({
      workers: 0,
      hosts: [a.hostSpec(2), b.hostSpec(2)],
      ssh: { args: [...net.sshArgs], command: await namespaceCommand(net.dir) },
      retries: retries ? 2 : 0,
    }),
    BOUND_MS,
    "Pool.create()",
  );
  const lost = recordEvents<{ host: string }>(pool, "hostlost");
  const exits = recordEvents<WorkerExit>(pool, "workerexit");
  const starts = recordEvents<{ workerId: number; host: string }>(
    pool,
    "workerstart",
  );
  const errors = recordEvents<Error>(pool, "error");
  let totalAtLoss = -1;
  const onLost = () => totalAtLoss = pool.totalWorkers;
  pool.addEventListener("hostlost", onLost);
  try {
    assert.equal(pool.totalWorkers, 4);
    const addresses = await pool.runOnAll(address);
    assert.deepEqual(
      addresses.toSorted(),
      [a.address, a.address, b.address, b.address].toSorted(),
    );

    // The long map; the fault strikes after FAULT_AFTER results.
    let faultAt = 0;
    let injected: Promise<void> = Promise.resolve();
    const results: [number, string][] = [];
    const stream = pool.map(
      where,
      Array.from({ length: ITEMS }, (_, i) => i),
      { ordered: fault === "cut link" },
    );
    const consume = (async () => {
      for await (const result of stream) {
        results.push(result);
        if (results.length === FAULT_AFTER) {
          // Not awaited here: the map keeps flowing, so host a has tasks
          // in flight when the fault lands.
          faultAt = performance.now();
          injected = fault === "cut link" ? a.cutLink("ns") : a.killSshd();
          injected.catch(() => {}); // awaited (and thrown) below
        }
      }
    })();
    if (retries) {
      await withTimeout(consume, BOUND_MS + 30_000, "the map");
      const xs = results.map(([x]) => x).toSorted((p, q) => p - q);
      assert.equal(results.length, ITEMS, "every result exactly once");
      assert.deepEqual(xs, Array.from({ length: ITEMS }, (_, i) => i));
      if (fault === "cut link") {
        assert.deepEqual(
          results.map(([x]) => x),
          xs,
          "ordered map keeps input order",
        );
      }
      const seen = new Set(results.map(([, at]) => at));
      assert.ok(seen.has(a.address) && seen.has(b.address), [...seen].join());
    } else {
      const error = await rejection(
        withTimeout(consume, BOUND_MS + 30_000, "the map"),
      );
      assert.ok(error instanceof WorkerLostError, `got ${error}`);
      assert.equal(error.host, a.alias);
      assert.match(error.message, new RegExp(`on ${a.alias}`));
    }
    await injected;
    assert.ok(faultAt > 0, "the fault was injected mid-map");

    // The loss shows in the events and in totalWorkers.
    assert.ok(
      await pollUntil(() => lost.seen.length > 0, BOUND_MS),
      "no hostlost event",
    );
    assert.deepEqual(lost.seen.map((e) => e.detail.host), [a.alias]);
    assert.equal(totalAtLoss, 2, "totalWorkers at hostlost");
    const exitAt = exits.seen.find((e) =>
      e.detail.host === a.alias && e.at >= faultAt
    )?.at;
    assert.ok(exitAt !== undefined, "workerexit events name the lost host");
    assert.ok(
      exits.seen.every((e) => e.detail.host === a.alias),
      "only host a's workers were lost",
    );
    console.error(
      `    ${fault}: noticed after ${
        ms(faultAt, exitAt)
      } (first workerexit), ` +
        `hostlost after ${ms(faultAt, lost.seen[0]!.at)}, ` +
        `map done after ${ms(faultAt, performance.now())}`,
    );
    // While the host is down, reconnect attempts fail with HostErrors that
    // name it, and the rest of the pool goes on.
    assert.ok(
      await pollUntil(() => errors.seen.length > 0, BOUND_MS),
      "no failed reconnect attempt",
    );
    assert.ok(
      errors.seen.every((e) =>
        e.detail.name === "HostError" &&
        (e.detail as Error & { host?: string }).host === a.alias
      ),
      `error events: ${errors.seen.map((e) => e.detail.message).join("\n")}`,
    );
    assert.equal(pool.totalWorkers, 2, "totalWorkers while a is down");
    assert.equal(await bounded(pool, pool.run(address), "run()"), b.address);
    assert.deepEqual(
      await bounded(pool, pool.runOnAll(address), "runOnAll()"),
      [b.address, b.address],
    );

    // The host comes back; the pool reconnects it with backoff.
    const backAt = performance.now();
    if (fault === "cut link") await a.restoreLink();
    else await a.reboot();
    assert.ok(
      await pollUntil(
        () =>
          starts.seen.filter((s) => s.detail.host === a.alias && s.at > faultAt)
            .length >= 2,
        BOUND_MS,
      ),
      "host a did not come back",
    );
    const upAt = starts.seen.filter((s) => s.detail.host === a.alias).at(-1)!
      .at;
    console.error(
      `    ${fault}: host back after ${ms(backAt, upAt)} ` +
        `(${errors.seen.length} failed reconnect attempts while down)`,
    );
    assert.equal(pool.totalWorkers, 4);
    const after = await bounded(pool, pool.runOnAll(address), "runOnAll()");
    assert.deepEqual(
      after.toSorted(),
      [a.address, a.address, b.address, b.address].toSorted(),
    );
    await withTimeout(pool.close(), BOUND_MS, "close()");
    await assertNothingLeft(net, "after close()");
  } finally {
    pool.removeEventListener("hostlost", onLost);
    for (const r of [lost, exits, starts, errors]) r.stop();
    await pool.close({ wait: false });
  }
}

Deno.test({
  name:
    "Pool with retries finishes a map on the other host when a host's link is cut, then reconnects it",
  ignore,
  fn: () => hostLoss("cut link", true),
});

Deno.test({
  name:
    "Pool without retries fails a map with WorkerLostError naming the host whose link is cut",
  ignore,
  fn: () => hostLoss("cut link", false),
});

Deno.test({
  name:
    "Pool with retries finishes a map on the other host when a host's sshd is killed, then reconnects it",
  ignore,
  fn: () => hostLoss("killed sshd", true),
});

Deno.test({
  name:
    "Pool without retries fails a map with WorkerLostError naming the host whose sshd is killed",
  ignore,
  fn: () => hostLoss("killed sshd", false),
});

Deno.test({
  name: "Pool.ready rejects with a HostError naming a host whose link is down",
  ignore,
  async fn() {
    await using net = await startNamespaceHosts(2, FAST);
    const [a, b] = net.hosts as [NamespaceHost, NamespaceHost];
    for (const side of ["ns", "host"] as const) {
      await a.cutLink(side);
      const started = performance.now();
      const pool = new Pool({
        workers: 1,
        hosts: [b.hostSpec(1), a.hostSpec(2)],
        ssh: {
          args: [...net.sshArgs],
          command: await namespaceCommand(net.dir),
        },
      });
      const error = await rejection(
        withTimeout(pool.ready, BOUND_MS, "Pool.ready"),
      );
      await withTimeout(pool.close(), BOUND_MS, "close()");
      assert.ok(error instanceof HostError, `got ${error}`);
      assert.equal(error.host, a.alias);
      assert.match(error.message, /could not reach/);
      assert.match(error.stderr, /No route to host|Invalid argument/);
      console.error(
        `    link down (${side} side): HostError after ${
          ms(started, performance.now())
        }: ${error.stderr.trim()}`,
      );
      await a.restoreLink();
    }
    await assertNothingLeft(net, "after the failed starts");
  },
});

Deno.test({
  name:
    "Pool owner killed with SIGKILL: no worker is left on any namespace host",
  ignore,
  async fn() {
    await using net = await startNamespaceHosts(2, FAST);
    const [a, b] = net.hosts as [NamespaceHost, NamespaceHost];
    const options = {
      workers: 1,
      hosts: [a.hostSpec(2), b.hostSpec(2)],
      ssh: { args: [...net.sshArgs], command: await namespaceCommand(net.dir) },
    };
    const { child, first, drained } = await spawnFixture<{
      workers: { pid: number; ppid: number; args: string[] }[];
    }>(OWNER_FIXTURE, [JSON.stringify(options)], BOUND_MS);
    let killed = false;
    try {
      assert.equal(first.workers.length, 5);
      for (const host of [a, b]) {
        const left = await leftovers(host);
        assert.ok(
          left.filter((l) => / --id \d+/.test(l)).length >= 2,
          `workers on ${host.alias}:\n${left.join("\n")}`,
        );
      }
      const local = (await processTree(child.pid)).map((p) => p.pid)
        .filter((pid) => pid !== child.pid);
      assert.ok(local.length >= 3, "a local worker and two ssh processes");
      child.kill("SIGKILL");
      killed = true;
      await child.status;
      const diedAt = performance.now();
      await assertNothingLeft(net, "after SIGKILL of the pool owner");
      assert.ok(
        await pollUntil(
          async () => (await processes(local)).length === 0,
          BOUND_MS,
        ),
        `local processes left: ${
          (await processes(local)).map((p) => p.cmdline).join("\n")
        }`,
      );
      console.error(
        `    every remote process gone ${
          ms(diedAt, performance.now())
        } after the owner died`,
      );
    } finally {
      if (!killed) {
        child.kill("SIGKILL");
        await child.status;
      }
      await drained;
    }
  },
});
