/**
 * Hosts given as a command that gives a pipe (`{ command, workers }`): the
 * remote supervisor relays its workers' connections over its stdin/stdout.
 * The command here is `ip netns exec <ns> deno run -A cli.ts`, a stand-in for
 * a container runtime (`docker exec -i`, `kubectl exec -i`): the workers run
 * in another network namespace and reach the pool only through the pipe.
 *
 * @module
 */
import assert from "node:assert/strict";
import { HostError, Pool, type PoolOptions, type WorkerExit } from "../mod.ts";
import { contractSuite } from "./_contract.ts";
import {
  namespacePrerequisites,
  skipMessage,
  sshPrerequisites,
  startNamespaceHosts,
  startSshHost,
} from "./_ssh_hosts.ts";
import { CLI_PATH, recordEvents, remoteCommand } from "./_ssh_pool.ts";
import {
  childTemp,
  isGone,
  pollUntil,
  rejection,
  withTimeout,
} from "./_util.ts";
import { VERSION } from "../src/version.ts";

const reason = await namespacePrerequisites();
if (reason !== null) {
  skipMessage("command hosts in a network namespace", reason);
}
const ignore = reason !== null;
const BOUND_MS = 30_000;

/** What `Pool.create(options)` fails with: a HostError. */
async function hostError(options: PoolOptions): Promise<HostError> {
  const error = await rejection(
    withTimeout(Pool.create(options), BOUND_MS, "Pool.create()"),
  );
  assert.ok(error instanceof HostError, `got ${error}`);
  return error;
}

/** `deno run -A cli.ts` of this checkout, run by `prefix`. */
function command(prefix: string[]): string[] {
  return [...prefix, Deno.execPath(), "run", "-A", CLI_PATH];
}

/** The network namespace a worker sees, as its address on the veth. */
function addresses(): string {
  const p = new Deno.Command("ip", { args: ["-4", "-o", "addr"] }).outputSync();
  return new TextDecoder().decode(p.stdout).split("\n").filter((l) =>
    l.includes("inet ") && !l.includes(" lo ")
  ).map((l) => l.split(/\s+/)[3]).join(",");
}

if (ignore) {
  Deno.test({ name: "[command netns] contract suite", ignore, fn() {} });
} else {
  // One namespace for the suite, started here and removed by its cleanup test.
  const net = await startNamespaceHosts(1);
  const ns = net.hosts[0]!.nsName;
  globalThis.addEventListener("unload", () => {
    new Deno.Command("ip", { args: ["netns", "del", ns] }).outputSync();
  });
  contractSuite("command netns", () => ({
    workers: 0,
    hosts: [{
      command: command(["ip", "netns", "exec", ns]),
      workers: 2,
      name: "netns",
    }],
  }), () => net.close());
}

Deno.test({
  name:
    "A command host runs its workers behind the pipe: they see the other network namespace",
  ignore,
  async fn() {
    await using net = await startNamespaceHosts(1);
    const host = net.hosts[0]!;
    await using pool = await withTimeout(
      Pool.create({
        workers: 1,
        hosts: [{
          command: command(["ip", "netns", "exec", host.nsName]),
          workers: 2,
          name: "box",
        }],
      }),
      BOUND_MS,
      "Pool.create()",
    );
    const seen = await pool.runOnAll(addresses);
    assert.equal(seen.filter((a) => a.includes(host.address)).length, 2);
    assert.equal(
      pool.stats().workers.filter((w) => w.host === "box").length,
      2,
    );
  },
});

Deno.test({
  name:
    "A command host killed mid-map: hostlost, the tasks are retried, nothing is lost, the host comes back",
  async fn() {
    // The link directory of the supervisor killed below outlives it: here.
    await using tmp = await childTemp();
    await using pool = await withTimeout(
      Pool.create({
        workers: 1,
        hosts: [{
          command: command(["env", `TMPDIR=${tmp.path}`]),
          workers: 2,
          name: "cmd",
        }],
        retries: 3,
      }),
      BOUND_MS,
      "Pool.create()",
    );
    const lost = recordEvents<{ host: string }>(pool, "hostlost");
    const exits = recordEvents<WorkerExit>(pool, "workerexit");
    const workers = await pool.runOnAll(() => ({
      pid: Deno.pid,
      ppid: Deno.ppid,
    }));
    // The local worker's parent is its lifeline (on Linux), not this
    // process: tell it by the pool's stats.
    const locals = new Set(
      pool.stats().workers.filter((w) => w.host === "local").map((w) => w.pid),
    );
    const local = workers.find((w) => locals.has(w.pid))!.pid;
    const supervisor = workers.find((w) => !locals.has(w.pid))!.ppid;
    assert.ok(
      supervisor && local,
      `a local worker and a supervisor among ${JSON.stringify(workers)}`,
    );
    const items = Array.from({ length: 400 }, (_, i) => i);
    const results: number[] = [];
    for await (
      const x of pool.map(async (i: number) => {
        await new Promise((r) => setTimeout(r, 2));
        return i;
      }, items)
    ) {
      results.push(x);
      if (results.length === 50) Deno.kill(supervisor, "SIGKILL");
    }
    assert.deepEqual(results, items, "every result, once, in order");
    assert.ok(
      await pollUntil(() => lost.seen.length > 0, BOUND_MS),
      "a hostlost event",
    );
    assert.equal(lost.seen[0]!.detail.host, "cmd");
    assert.ok(exits.seen.some((e) => e.detail.host === "cmd"));
    assert.ok(
      await pollUntil(() => pool.stats().workers.length === 3, BOUND_MS),
      "the host reconnected",
    );
    const again = await pool.runOnAll(() => Deno.pid);
    assert.equal(again.length, 3);
    assert.ok(again.includes(local));
    const links = (await tmp.names()).filter((n) =>
      n.startsWith("distex-link-")
    );
    assert.equal(links.length, 2, `the killed and the new relay: ${links}`);
  },
});

Deno.test({
  name:
    "Pool.close() with a command host leaves no supervisor, worker or private socket dir",
  async fn() {
    const pool = await withTimeout(
      Pool.create({
        workers: 0,
        hosts: [{ command: command([]), workers: 2 }],
      }),
      BOUND_MS,
      "Pool.create()",
    );
    let info: { pid: number; ppid: number; socket: string }[] = [];
    try {
      info = await pool.runOnAll(() => {
        const i = Deno.args.indexOf("--unix");
        return { pid: Deno.pid, ppid: Deno.ppid, socket: Deno.args[i + 1]! };
      });
      assert.equal(info.length, 2);
      assert.equal(info[0]!.socket, info[1]!.socket, "one socket per host");
      assert.match(info[0]!.socket, /distex-link-[^/]+\/s\.sock$/);
    } finally {
      await pool.close();
    }
    for (const pid of [...info.map((i) => i.pid), info[0]!.ppid]) {
      assert.ok(await isGone(pid), `process ${pid} is gone after close()`);
    }
    const dir = info[0]!.socket.replace(/\/s\.sock$/, "");
    await assert.rejects(Deno.lstat(dir), Deno.errors.NotFound);
  },
});

Deno.test({
  name:
    "A task that times out on a command-host worker stuck in sync code: the worker is killed there and replaced",
  async fn() {
    await using pool = await withTimeout(
      Pool.create({
        workers: 0,
        hosts: [{ command: command([]), workers: 1 }],
        killGrace: 200,
      }),
      BOUND_MS,
      "Pool.create()",
    );
    const before = await pool.run(() => Deno.pid);
    const error = await rejection(
      pool.apply(
        () => {
          const end = Date.now() + 60_000;
          while (Date.now() < end) { /* stuck */ }
        },
        [],
        { timeout: 100 },
      ),
    );
    assert.equal(error.name, "TimeoutError");
    assert.ok(
      await pollUntil(() => isGone(before), BOUND_MS),
      "the stuck worker was killed",
    );
    const after = await withTimeout(
      pool.run(() => Deno.pid),
      BOUND_MS,
      "a task on the replacement",
    );
    assert.notEqual(after, before);
  },
});

Deno.test({
  name:
    "A command host whose command is missing fails Pool.create() with a HostError naming the host",
  async fn() {
    const error = await hostError({
      workers: 0,
      hosts: [{
        command: ["/nonexistent/srun", "x"],
        workers: 1,
        name: "nohost",
      }],
    });
    assert.equal(error.host, "nohost");
    assert.match(error.message, /nohost/);
    assert.match(error.message, /\/nonexistent\/srun/);
  },
});

Deno.test({
  name:
    "A command that exits at once fails Pool.create() with a HostError with its exit code and stderr",
  async fn() {
    const error = await hostError({
      workers: 0,
      hosts: [{
        command: ["sh", "-c", "echo no deno here >&2; exit 127", "sh"],
        workers: 1,
        name: "bare",
      }],
    });
    assert.equal(error.host, "bare");
    assert.match(error.message, /Deno installed/);
  },
});

Deno.test({
  name:
    "A remote side of another version: HostError naming both versions and the install command",
  async fn() {
    // The remote side is told the pool runs 9.9.9.
    const script =
      `args=$(printf '%s ' "$@" | sed 's/--pool-version [^ ]*/--pool-version 9.9.9/'); ` +
      `exec ${Deno.execPath()} run -A ${CLI_PATH} $args`;
    const error = await hostError({
      workers: 0,
      hosts: [{
        command: ["sh", "-c", script, "sh"],
        workers: 1,
        name: "old",
      }],
    });
    assert.equal(error.host, "old");
    assert.match(error.message, new RegExp(`runs @distex/pool ${VERSION}`));
    assert.match(error.message, /the pool 9\.9\.9/);
    assert.match(error.message, /deno cache jsr:@distex\/pool@9\.9\.9\/cli/);
  },
});

// ---- SSH hosts whose sshd refuses stream-local forwarding --------------------

/** An SSH host whose sshd refuses UNIX-socket forwarding. */
function noForwardHost(): ReturnType<typeof startSshHost> {
  return startSshHost({
    sshdConfig: ["AllowStreamLocalForwarding no"],
    sshConfig: ["KexAlgorithms curve25519-sha256"],
  });
}

const sshReason = await sshPrerequisites();
if (sshReason !== null) skipMessage("SSH stdio-link tests", sshReason);

/** The `--unix` argument of this worker: where it connects. */
function socketArg(): string {
  return Deno.args[Deno.args.indexOf("--unix") + 1]!;
}

Deno.test({
  name:
    "An SSH host with AllowStreamLocalForwarding no: the pool detects it and uses a stdio link over plain ssh",
  ignore: sshReason !== null,
  async fn() {
    await using host = await noForwardHost();
    await using pool = await withTimeout(
      Pool.create({
        workers: 0,
        hosts: [host.hostSpec(2)],
        ssh: { args: [...host.sshArgs], command: remoteCommand() },
        retries: 1,
      }),
      BOUND_MS,
      "Pool.create()",
    );
    const sockets = await pool.runOnAll(socketArg);
    assert.equal(sockets.length, 2);
    for (const s of sockets) assert.match(s, /distex-link-[^/]+\/s\.sock$/);
    const squares = await Array.fromAsync(
      pool.map((x: number) => x * x, Array.from({ length: 100 }, (_, i) => i)),
    );
    assert.deepEqual(squares, Array.from({ length: 100 }, (_, i) => i * i));
  },
});

Deno.test({
  name:
    "An SSH host with AllowStreamLocalForwarding no and ssh.link 'forward': HostError says the forward was refused",
  ignore: sshReason !== null,
  async fn() {
    await using host = await noForwardHost();
    const error = await hostError({
      workers: 0,
      hosts: [host.hostSpec(1)],
      ssh: {
        args: [...host.sshArgs],
        command: remoteCommand(),
        link: "forward",
      },
    });
    assert.equal(error.host, host.alias);
    assert.match(error.message, /refused the reverse UNIX-socket forward/);
    assert.match(error.message, /ssh\.link/);
  },
});

Deno.test({
  name:
    "An SSH host where neither link works: the HostError notes that the forward was refused and the stdio link failed",
  ignore: sshReason !== null,
  async fn() {
    await using host = await noForwardHost();
    const error = await hostError({
      workers: 0,
      hosts: [host.hostSpec(1)],
      ssh: { args: [...host.sshArgs], command: "/nonexistent/deno" },
    });
    assert.match(error.message, /not found/);
    assert.match(error.message, /refused the reverse UNIX-socket forward/);
    assert.match(error.message, /stdio link, which failed too/);
  },
});

// ---- a real container runtime, when one runs here ----------------------------

/** `docker` or `podman` when its daemon answers, and an image with Deno. */
async function containerRuntime(): Promise<
  { runtime: string; image: string } | string
> {
  const image = Deno.env.get("DISTEX_TEST_IMAGE");
  for (const runtime of ["podman", "docker"]) {
    let info: Deno.CommandOutput;
    try {
      info = await new Deno.Command(runtime, {
        args: ["info"],
        stdin: "null",
        stdout: "null",
        stderr: "null",
      }).output();
    } catch {
      continue; // not installed
    }
    if (!info.success) continue;
    if (!image) {
      return `${runtime} runs, but DISTEX_TEST_IMAGE (an image with deno on PATH) is not set`;
    }
    return { runtime, image };
  }
  return "neither podman nor docker runs here (no daemon or not installed)";
}

// Opt-in: a container test needs an image with Deno, which no registry this
// suite may reach provides; set DISTEX_TEST_IMAGE to run it. Without it the
// test is not registered (CI has no container runtime), and says so here.
const container = Deno.env.get("DISTEX_TEST_IMAGE")
  ? await containerRuntime()
  : undefined;
if (container === undefined) {
  console.error(
    "note: the docker/podman command-host test is opt-in (set DISTEX_TEST_IMAGE " +
      "to an image with deno on PATH); the same path runs above over ip netns exec",
  );
} else if (typeof container === "string") {
  skipMessage("docker/podman exec -i command hosts", container);
}

if (container !== undefined) {
  Deno.test({
    name:
      "A command host in a container (docker/podman run -i): workers run there and answer",
    ignore: typeof container === "string",
    async fn() {
      const { runtime, image } = container as {
        runtime: string;
        image: string;
      };
      const checkout = new URL("..", import.meta.url).pathname;
      await using pool = await withTimeout(
        Pool.create({
          workers: 0,
          hosts: [{
            command: [
              runtime,
              "run",
              "-i",
              "--rm",
              "-v",
              `${checkout}:${checkout}:ro`,
              image,
              "deno",
              "run",
              "-A",
              CLI_PATH,
            ],
            workers: 2,
            name: runtime,
          }],
        }),
        120_000,
        "Pool.create()",
      );
      assert.deepEqual(await pool.runOnAll(() => 6 * 7), [42, 42]);
    },
  });
}

Deno.test({
  name:
    "A command host that takes longer than the link's silence limit to start (queued, pulling) still starts",
  async fn() {
    // Like srun waiting for resources: nothing on the pipe for 9 s.
    const slow = `sleep 9; exec ${Deno.execPath()} run -A ${CLI_PATH} "$@"`;
    await using pool = await withTimeout(
      Pool.create({
        workers: 0,
        hosts: [{ command: ["sh", "-c", slow, "sh"], workers: 1 }],
      }),
      BOUND_MS,
      "Pool.create()",
    );
    assert.equal(await pool.run(() => 42), 42);
  },
});

Deno.test({
  name:
    "A task that prints to stdout on a command host does not corrupt the link (worker stdout goes to stderr)",
  async fn() {
    await using pool = await withTimeout(
      Pool.create({
        workers: 0,
        hosts: [{ command: command([]), workers: 1 }],
      }),
      BOUND_MS,
      "Pool.create()",
    );
    const printed = await pool.run(() => {
      // Bytes that look like link frames, and a lot of them.
      console.log("\u0002\u0000\u0000\u0000\u0001" + "x".repeat(2_000));
      return "after";
    });
    assert.equal(printed, "after");
    assert.deepEqual(
      await Array.fromAsync(pool.map((x: number) => x + 1, [1, 2, 3])),
      [2, 3, 4],
    );
  },
});
