/**
 * `Pool` with SSH workers on a private loopback sshd: the contract suite over
 * SSH workers and over a mixed local + SSH pool, host spec validation,
 * start-up failures (each a `HostError` within a bound), the secret kept off
 * command lines, run-time loss of a remote worker and of a whole host, and no
 * remote process outliving `close()` or a SIGKILLed pool owner.
 *
 * Remote workers run this checkout: `ssh.command` is
 * `<deno> run -A <checkout>/cli.ts`.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  HostError,
  Pool,
  type PoolOptions,
  type SshOptions,
  type WorkerExit,
  WorkerLostError,
} from "../mod.ts";
import { contractSuite } from "./_contract.ts";
import { killFirstTime } from "./fixtures/tasks.ts";
import {
  skipMessage,
  type SshHost,
  sshPrerequisites,
  startSshHost,
} from "./_ssh_hosts.ts";
import {
  HostTag,
  hostTempDir,
  PoolTag,
  processes,
  processesMentioning,
  processTree,
  recordEvents,
  remoteCommand,
  spawnFixture,
} from "./_ssh_pool.ts";
import {
  exists,
  pollUntil,
  rejection,
  throwsExactly,
  withTimeout,
} from "./_util.ts";

const reason = await sshPrerequisites();
if (reason !== null) skipMessage("SSH pool tests (tests/ssh_test.ts)", reason);
const ignore = reason !== null;

/** Bound for "never hangs": a start-up failure must be reported by then. */
const HOST_ERROR_BOUND_MS = 20_000;

/** ssh_config for the hosts: a cheaper key exchange (~0.1 s per login). */
const FAST = { sshConfig: ["KexAlgorithms curve25519-sha256"] };

const OWNER_FIXTURE = new URL("./fixtures/ssh/pool_owner.ts", import.meta.url);

/**
 * SSH options that reach `host` and run this checkout there; with `tag`, the
 * pool's ssh processes carry it (see `PoolTag`).
 */
function sshOptions(host: SshHost, tag?: PoolTag): SshOptions {
  return {
    args: [...host.sshArgs, ...(tag?.sshArgs ?? [])],
    command: remoteCommand(),
  };
}

/** The `--unix` argument of a remote worker: the remote tunnel socket. */
function socketOf(args: string[]): string {
  const at = args.indexOf("--unix");
  assert.ok(at >= 0, `no --unix in ${args.join(" ")}`);
  return args[at + 1]!;
}

// ---- the contract suite over SSH workers ------------------------------------

if (ignore) {
  Deno.test({ name: "[ssh] contract suite", ignore: true, fn() {} });
  Deno.test({ name: "[local+ssh] contract suite", ignore: true, fn() {} });
} else {
  // One sshd for both suites, started here and stopped by the last
  // suite's cleanup test (by PID, in SshHost.close()).
  const shared = await startSshHost(FAST);
  globalThis.addEventListener("unload", () => {
    // Only if a filter skipped the cleanup test: kill the listener by PID;
    // cleanupStaleHosts() of the next run removes the rest.
    try {
      Deno.kill(shared.pid, "SIGKILL");
    } catch { /* already stopped */ }
  });
  contractSuite("ssh", () => ({
    workers: 0,
    hosts: [shared.hostSpec(2)],
    ssh: sshOptions(shared),
  }));
  contractSuite(
    "local+ssh",
    () => ({
      workers: 1,
      hosts: [shared.hostSpec(2)],
      ssh: sshOptions(shared),
    }),
    () => shared.close(),
  );
}

// ---- host specs ----------------------------------------------------------------

Deno.test("new Pool() rejects a bad host spec, naming it", () => {
  const cases: [string, ErrorConstructor, RegExp][] = [
    ["ssh://maxi", TypeError, /"ssh:\/\/maxi".*\/N/],
    ["ssh://maxi/", TypeError, /"ssh:\/\/maxi\/"/],
    ["ssh://maxi/two", TypeError, /"ssh:\/\/maxi\/two"/],
    ["ssh://us er@maxi/2", TypeError, /"ssh:\/\/us er@maxi\/2"/],
    ["ssh://maxi:22:22/2", TypeError, /"ssh:\/\/maxi:22:22\/2"/],
    ["http://maxi/2", TypeError, /"http:\/\/maxi\/2"/],
    ["ssh://maxi/0", RangeError, /"ssh:\/\/maxi\/0".*worker count/],
    ["ssh://maxi:0/2", RangeError, /"ssh:\/\/maxi:0\/2".*port 0/],
    ["ssh://maxi:65536/2", RangeError, /port 65536/],
    // A spawning server (cli.ts serve) needs the pool's tls token option.
    ["maxi/2", TypeError, /"maxi\/2".*spawning server.*tokenFile/],
  ];
  for (const [spec, Class, message] of cases) {
    throwsExactly(
      () => new Pool({ workers: 1, hosts: [spec] }),
      Class,
      message,
      `new Pool({ hosts: [${JSON.stringify(spec)}] })`,
    );
  }
  assert.throws(
    () => new Pool({ hosts: [42 as unknown as string] }),
    TypeError,
  );
});

Deno.test("new Pool() accepts every form of host spec without connecting", async () => {
  for (
    const spec of [
      "ssh://maxi/1",
      "ssh://user@maxi/2",
      "ssh://user@maxi:2222/8",
      "ssh://10.0.0.1:22/3",
      "ssh://[::1]:2222/2",
      "ssh://my-host.example.org/4",
    ]
  ) {
    const pool = new Pool({ hosts: [spec], lazy: true });
    assert.equal(pool.totalWorkers, Number(spec.split("/").pop()));
    await pool.close();
  }
});

// ---- start-up failures ---------------------------------------------------------

/**
 * Starts a pool that must fail: `ready` (and `Pool.create`) reject with a
 * HostError naming `host` within the bound, and `close()` then finishes.
 */
async function expectHostError(
  options: PoolOptions,
  host: string,
  why: RegExp,
  said: RegExp,
): Promise<HostError> {
  const started = performance.now();
  const pool = new Pool(options);
  let error: Error;
  try {
    error = await rejection(
      withTimeout(pool.ready, HOST_ERROR_BOUND_MS, "Pool.ready"),
    );
  } finally {
    await withTimeout(pool.close(), HOST_ERROR_BOUND_MS, "Pool.close()");
  }
  const ms = Math.round(performance.now() - started);
  assert.ok(error instanceof HostError, `expected a HostError, got ${error}`);
  assert.equal(error.name, "HostError");
  assert.equal(error.host, host);
  assert.ok(
    error.message.startsWith(`Host ${host}: `),
    `the message should name the host: ${error.message}`,
  );
  assert.match(error.message, why);
  assert.match(error.stderr, said, "ssh's stderr");
  assert.ok(
    error.message.includes(error.stderr.trim().split("\n").at(-1)!.trim()),
    `the message should quote ssh's stderr: ${error.message}`,
  );
  console.error(`    HostError after ${ms} ms: ${error.message}`);
  // Pool.create() closes the pool and rejects with the same kind of error.
  const again = await rejection(
    withTimeout(Pool.create(options), HOST_ERROR_BOUND_MS, "Pool.create()"),
  );
  assert.ok(again instanceof HostError, `Pool.create(): ${again}`);
  assert.equal(again.host, host);
  return error;
}

Deno.test({
  name: "Pool.ready rejects with a HostError for an unreachable port",
  ignore,
  async fn() {
    // Port 1 on loopback: nothing listens there, ssh gets "Connection refused".
    await using host = await startSshHost(FAST);
    await expectHostError(
      {
        workers: 0,
        hosts: ["ssh://127.0.0.1:1/2"],
        ssh: sshOptions(host),
      },
      "127.0.0.1:1",
      /could not reach/,
      /Connection refused/,
    );
  },
});

Deno.test({
  name: "Pool.ready rejects with a HostError when the key is refused",
  ignore,
  async fn() {
    await using host = await startSshHost(FAST);
    // The same client config, but with a key the server does not know.
    await using tmp = await hostTempDir("distex-key-");
    const dir = tmp.path;
    const keygen = await new Deno.Command("ssh-keygen", {
      args: ["-q", "-t", "ed25519", "-N", "", "-f", `${dir}/stranger`],
      stdout: "null",
      stderr: "piped",
    }).output();
    assert.equal(keygen.code, 0, new TextDecoder().decode(keygen.stderr));
    const config = (await Deno.readTextFile(host.configPath)).replace(
      /IdentityFile .*/,
      `IdentityFile ${dir}/stranger`,
    );
    assert.match(config, /stranger/);
    await Deno.writeTextFile(`${dir}/ssh_config`, config);
    await expectHostError(
      {
        workers: 0,
        hosts: [host.hostSpec(2)],
        ssh: { args: ["-F", `${dir}/ssh_config`], command: remoteCommand() },
      },
      host.alias,
      /key was refused/,
      /Permission denied/,
    );
  },
});

Deno.test({
  name: "Pool.ready rejects with a HostError when deno is missing on the host",
  ignore,
  async fn() {
    await using host = await startSshHost(FAST);
    const error = await expectHostError(
      {
        workers: 0,
        hosts: [host.hostSpec(2)],
        ssh: { args: [...host.sshArgs], command: "/nonexistent/deno run -A x" },
      },
      host.alias,
      /'\/nonexistent\/deno' was not found on the host/,
      /No such file or directory|not found/,
    );
    assert.match(error.message, /ssh\.command/);
  },
});

Deno.test({
  name: "Pool.ready rejects with a HostError when the worker command fails",
  ignore,
  async fn() {
    await using host = await startSshHost(FAST);
    await expectHostError(
      {
        workers: 0,
        hosts: [host.hostSpec(2)],
        ssh: { args: [...host.sshArgs], command: "false" },
      },
      host.alias,
      /'false' exited with code 1/,
      /^$/,
    );
    // A command that explains itself on stderr and exits 3 (the pool's
    // arguments land in $1... of the script).
    await expectHostError(
      {
        workers: 1,
        hosts: [host.hostSpec(2)],
        ssh: {
          args: [...host.sshArgs],
          command: "sh -c 'echo broken install: $1 >&2; exit 3' sh",
        },
      },
      host.alias,
      /exited with code 3/,
      /broken install: remote/,
    );
  },
});

Deno.test({
  name:
    "Pool.ready rejects with a HostError when the worker command is not distex",
  ignore,
  async fn() {
    // `deno run -A <a script that exits at once>`: ssh and deno work, but no
    // worker ever connects.
    await using host = await startSshHost(FAST);
    await using tmp = await hostTempDir("distex-cmd-");
    const dir = tmp.path;
    await Deno.writeTextFile(
      `${dir}/exit.ts`,
      `console.error("not a distex cli"); Deno.exit(4);\n`,
    );
    await expectHostError(
      {
        workers: 0,
        hosts: [host.hostSpec(2)],
        ssh: {
          args: [...host.sshArgs],
          command: `${Deno.execPath()} run -A ${dir}/exit.ts`,
        },
      },
      host.alias,
      /exited with code 4/,
      /not a distex cli/,
    );
  },
});

Deno.test({
  name:
    "Pool.ready rejects with a HostError when the server refuses the forward (ssh.link 'forward')",
  ignore,
  async fn() {
    await using host = await startSshHost({
      ...FAST,
      sshdConfig: ["AllowStreamLocalForwarding no"],
    });
    // ssh.link "auto" (the default) would fall back to a stdio link.
    await expectHostError(
      {
        workers: 0,
        hosts: [host.hostSpec(2)],
        ssh: { ...sshOptions(host), link: "forward" },
      },
      host.alias,
      /refused the reverse UNIX-socket forward/,
      /forwarding failed/,
    );
  },
});

Deno.test({
  name: "Pool.ready of a mixed pool rejects with the HostError of its bad host",
  ignore,
  async fn() {
    await using host = await startSshHost(FAST);
    const tag = new PoolTag();
    const started = performance.now();
    const pool = new Pool({
      workers: 1,
      hosts: [host.hostSpec(1), "ssh://127.0.0.1:1/1"],
      ssh: sshOptions(host, tag),
    });
    const error = await rejection(
      withTimeout(pool.ready, HOST_ERROR_BOUND_MS, "Pool.ready"),
    );
    await withTimeout(pool.close(), HOST_ERROR_BOUND_MS, "Pool.close()");
    assert.ok(error instanceof HostError, `got ${error}`);
    assert.equal(error.host, "127.0.0.1:1");
    console.error(
      `    HostError after ${Math.round(performance.now() - started)} ms`,
    );
    assert.deepEqual(await tag.ssh(), [], "ssh processes left");
  },
});

// ---- the secret ------------------------------------------------------------------

Deno.test({
  name: "Pool never puts its secret on a command line or in an environment",
  ignore,
  async fn() {
    const tag = new HostTag();
    await using host = await startSshHost({ ...FAST, env: tag.env });
    await using tmp = await hostTempDir("distex-secret-");
    const dir = tmp.path;
    // A remote command that records the first line it gets on stdin (the
    // secret) in a file, then passes stdin on to the real supervisor.
    const seen = `${dir}/seen`;
    const command = `sh -c 'IFS= read -r s; printf "%s\\n" "$s" > ${seen}; ` +
      `{ printf "%s\\n" "$s"; exec cat; } | exec ${remoteCommand()} "$@"' sh`;
    const poolTag = new PoolTag();
    await using pool = await Pool.create({
      workers: 1,
      hosts: [host.hostSpec(2)],
      ssh: { args: [...host.sshArgs, ...poolTag.sshArgs], command },
    });
    const pids = await pool.runOnAll(() => Deno.pid);
    assert.equal(pids.length, 3);
    const secret = (await Deno.readTextFile(seen)).trim();
    assert.match(secret, /^[0-9a-f]{64}$/, "the secret came over stdin");

    const remote = await tag.remote();
    const ssh = await poolTag.sshPids();
    assert.equal(ssh.length, 1, "one ssh process per host");
    const shown = await processes([...remote, ...ssh]);
    const cmdlines = shown.map((p) => p.cmdline);
    assert.ok(
      cmdlines.some((c) => / remote --unix /.test(c)),
      `the remote supervisor is among ${cmdlines.join("\n")}`,
    );
    assert.ok(
      cmdlines.filter((c) => / --unix .* --id \d+/.test(c)).length >= 2,
      "the remote workers are there",
    );
    for (const p of shown) {
      assert.ok(
        !p.cmdline.includes(secret),
        `the secret is on the command line of ${p.pid}: ${p.cmdline}`,
      );
    }
    assert.deepEqual(
      (await processesMentioning(secret)).map((p) => p.cmdline),
      [],
      "no process shows the secret in its command line or environment",
    );
    // Nothing that looks like a secret either (64 hex digits).
    for (const p of shown) {
      assert.doesNotMatch(p.cmdline, /[0-9a-f]{64}/, p.cmdline);
    }
  },
});

Deno.test({
  name:
    "Pool starts one ssh per host with the lifeline and keep-alive options, and one socket per host",
  ignore,
  async fn() {
    await using host = await startSshHost(FAST);
    // Two hosts that are the same machine: each still gets its own tunnel.
    const other = `ssh://${Deno.uid() === 0 ? "root@" : ""}${host.alias}/1`;
    const tag = new PoolTag();
    await using pool = await Pool.create({
      workers: 0,
      hosts: [host.hostSpec(3), other],
      // ssh takes the first value of an option: these win over the pool's.
      ssh: {
        ...sshOptions(host),
        args: [...host.sshArgs, ...tag.sshArgs, "-o", "ServerAliveCountMax=4"],
      },
    });
    const workers = await pool.runOnAll(() => Deno.args);
    assert.equal(workers.length, 4);
    const sockets = new Map<string, number>();
    for (const args of workers) {
      const socket = socketOf(args);
      sockets.set(socket, (sockets.get(socket) ?? 0) + 1);
    }
    assert.deepEqual(
      [...sockets.values()].toSorted(),
      [1, 3],
      "the workers of a host share one tunnel; each host has its own",
    );
    const ssh = await tag.ssh();
    assert.equal(ssh.length, 2, "one ssh process per host");
    for (const info of ssh) {
      const cmdline = info.cmdline;
      const socket = [...sockets.keys()].find((s) => cmdline.includes(s));
      assert.ok(socket, `a tunnel socket in ${cmdline}`);
      for (
        const option of [
          " -T ",
          "BatchMode=yes",
          "ExitOnForwardFailure=yes",
          "ServerAliveInterval=",
          "ServerAliveCountMax=",
          ` -R ${socket}:`,
        ]
      ) {
        assert.ok(cmdline.includes(option), `'${option}' in ${cmdline}`);
      }
      const mine = cmdline.indexOf("ServerAliveCountMax=4");
      assert.ok(mine >= 0, cmdline);
      assert.ok(
        mine < cmdline.indexOf("ServerAliveCountMax=", mine + 1),
        `ssh.args come before the pool's defaults: ${cmdline}`,
      );
    }
  },
});

// ---- run-time loss -----------------------------------------------------------------

Deno.test({
  name:
    "Pool.run() on a remote worker that dies rejects with WorkerLostError naming the host, and the worker is replaced",
  ignore,
  async fn() {
    await using host = await startSshHost(FAST);
    await using tmp = await hostTempDir("distex-lost-");
    const dir = tmp.path;
    await using pool = await Pool.create({
      workers: 0,
      hosts: [host.hostSpec(2)],
      ssh: sshOptions(host),
    });
    const before = await pool.runOnAll(() => Deno.pid);
    const error = await rejection(
      withTimeout(
        pool.run(() => Deno.kill(Deno.pid, "SIGKILL")),
        20_000,
        "run()",
      ),
    );
    assert.ok(error instanceof WorkerLostError, `got ${error}`);
    assert.equal(error.host, host.alias);
    assert.match(error.message, new RegExp(`on ${host.alias}`));
    // The remote supervisor starts it again; the pool waits for it.
    const after = await withTimeout(
      pool.runOnAll(() => Deno.pid),
      20_000,
      "runOnAll()",
    );
    assert.equal(after.length, 2);
    assert.equal(new Set(after).size, 2);
    assert.equal(
      after.filter((pid) => before.includes(pid)).length,
      1,
      `one worker replaced: before ${before}, after ${after}`,
    );
    assert.equal(pool.totalWorkers, 2);
    // With retries, the task runs again on a worker of the host.
    assert.equal(
      await withTimeout(
        pool.apply(killFirstTime, [`${dir}/marker`], { retries: 1 }),
        20_000,
        "apply()",
      ),
      "second attempt",
    );
  },
});

Deno.test({
  name:
    "Pool reconnects a host whose remote side died: hostlost, totalWorkers drops, then recovers",
  ignore,
  async fn() {
    await using host = await startSshHost(FAST);
    await using pool = await Pool.create({
      workers: 1,
      hosts: [host.hostSpec(2)],
      ssh: sshOptions(host),
    });
    assert.equal(pool.totalWorkers, 3);
    const remote = await pool.runOnAll(() => ({
      pid: Deno.pid,
      ppid: Deno.ppid,
      remote: !Deno.args.some((a) => a.endsWith("/pool.sock")),
    }));
    const supervisor = remote.find((w) => w.remote)?.ppid;
    assert.ok(supervisor, `a remote worker among ${JSON.stringify(remote)}`);

    const lost = recordEvents<{ host: string }>(pool, "hostlost");
    const exits = recordEvents<WorkerExit>(pool, "workerexit");
    const starts = recordEvents<{ workerId: number; host: string }>(
      pool,
      "workerstart",
    );
    let totalAtLoss = -1;
    pool.addEventListener("hostlost", () => totalAtLoss = pool.totalWorkers);
    try {
      // One task pinned to each worker: on the remote ones it never ends.
      const pinned = pool.runOnAll(() =>
        Deno.args.some((a) => a.endsWith("/pool.sock"))
          ? "local"
          : new Promise<never>(() => {})
      ).catch((e) => e);
      assert.ok(
        await pollUntil(() => pool.stats().inFlight >= 2, 20_000),
        "the pinned tasks were not sent",
      );
      const killedAt = performance.now();
      Deno.kill(supervisor, "SIGKILL");
      assert.ok(
        await pollUntil(() => lost.seen.length > 0, 20_000),
        "no hostlost event",
      );
      assert.equal(lost.seen[0]!.detail.host, host.alias);
      assert.equal(totalAtLoss, 1, "only the local worker counts while down");
      const failed = await withTimeout(pinned, 20_000, "runOnAll()");
      assert.ok(failed instanceof WorkerLostError, `got ${failed}`);
      assert.equal(failed.host, host.alias);
      assert.ok(
        exits.seen.some((e) => e.detail.host === host.alias),
        "workerexit events name the host",
      );
      // The host comes back on its own (the pool relaunches ssh).
      assert.ok(
        await pollUntil(
          () =>
            starts.seen.filter((s) =>
              s.detail.host === host.alias && s.at > killedAt
            ).length >= 2,
          30_000,
        ),
        "the host's workers did not come back",
      );
      assert.equal(pool.totalWorkers, 3);
      console.error(
        `    remote side killed: hostlost after ${
          Math.round(lost.seen[0]!.at - killedAt)
        } ms, both workers back after ${
          Math.round(
            starts.seen.filter((s) => s.detail.host === host.alias).at(-1)!
              .at - killedAt,
          )
        } ms`,
      );
      const pids = await withTimeout(
        pool.runOnAll(() => Deno.pid),
        20_000,
        "runOnAll()",
      );
      assert.equal(pids.length, 3);
      assert.equal(new Set(pids).size, 3);
    } finally {
      lost.stop();
      exits.stop();
      starts.stop();
      await pool.close({ wait: false });
    }
  },
});

Deno.test({
  name:
    "Pool whose ssh process is killed relaunches the host, and the old session's remote processes exit",
  ignore,
  async fn() {
    const tag = new HostTag();
    await using host = await startSshHost({ ...FAST, env: tag.env });
    const poolTag = new PoolTag();
    await using pool = await Pool.create({
      workers: 1,
      hosts: [host.hostSpec(2)],
      ssh: sshOptions(host, poolTag),
    });
    const before = await tag.remote();
    assert.ok(before.length >= 3, `remote processes: ${before}`);
    const sshPids = await poolTag.sshPids();
    assert.equal(sshPids.length, 1, "the host's ssh process");
    const ssh = sshPids[0]!;
    const lost = recordEvents<{ host: string }>(pool, "hostlost");
    const starts = recordEvents<{ workerId: number; host: string }>(
      pool,
      "workerstart",
    );
    try {
      const killedAt = performance.now();
      Deno.kill(ssh, "SIGKILL");
      assert.ok(
        await pollUntil(() => lost.seen.length > 0, 20_000),
        "no hostlost event",
      );
      assert.equal(lost.seen[0]!.detail.host, host.alias);
      // Both the tunnel and the lifeline of the old session are gone: its
      // supervisor and workers exit on their own.
      assert.ok(
        await pollUntil(
          async () =>
            (await processes(before)).filter((p) =>
              / remote --unix | --id \d+/.test(p.cmdline)
            ).length === 0,
          20_000,
        ),
        `old remote processes left: ${
          (await processes(before)).map((p) => p.cmdline).join("\n")
        }`,
      );
      assert.ok(
        await pollUntil(
          () =>
            starts.seen.filter((s) =>
              s.detail.host === host.alias && s.at > killedAt
            ).length >= 2,
          20_000,
        ),
        "the host did not come back",
      );
      console.error(
        `    ssh killed: hostlost after ${
          Math.round(lost.seen[0]!.at - killedAt)
        } ms, host back after ${
          Math.round(starts.seen.at(-1)!.at - killedAt)
        } ms`,
      );
      assert.equal(pool.totalWorkers, 3);
      assert.equal((await pool.runOnAll(() => Deno.pid)).length, 3);
    } finally {
      lost.stop();
      starts.stop();
    }
  },
});

Deno.test({
  name:
    "Pool.apply() with timeout on a remote worker stuck in sync code kills and replaces that worker",
  ignore,
  async fn() {
    await using host = await startSshHost(FAST);
    await using pool = await Pool.create({
      workers: 0,
      hosts: [host.hostSpec(2)],
      ssh: sshOptions(host),
      killGrace: 200,
    });
    const before = await pool.runOnAll(() => Deno.pid);
    const error = await rejection(
      pool.apply(
        () => {
          for (;;) { /* never yields: only a kill ends it */ }
        },
        [],
        { timeout: 200 },
      ),
    );
    assert.equal(error.name, "TimeoutError");
    // The host's supervisor kills the stuck worker and starts it again.
    const after = await withTimeout(
      pool.runOnAll(() => Deno.pid),
      20_000,
      "runOnAll() after a hard timeout",
    );
    assert.equal(after.length, 2);
    assert.equal(
      after.filter((pid) => before.includes(pid)).length,
      1,
      `one worker replaced: before ${before}, after ${after}`,
    );
    const stuck = before.find((pid) => !after.includes(pid))!;
    assert.deepEqual(await processes([stuck]), [], "the stuck worker is gone");
  },
});

// ---- nothing outlives the pool --------------------------------------------------

Deno.test({
  name:
    "Pool.close() leaves no remote process, no ssh and no remote socket; sockets are unique per pool",
  ignore,
  async fn() {
    const tag = new HostTag();
    await using host = await startSshHost({ ...FAST, env: tag.env });
    const tagA = new PoolTag();
    const tagB = new PoolTag();
    const options = (poolTag: PoolTag) => ({
      workers: 1,
      hosts: [host.hostSpec(2)],
      ssh: sshOptions(host, poolTag),
    });
    const [a, b] = await Promise.all([
      Pool.create(options(tagA)),
      Pool.create(options(tagB)),
    ]);
    try {
      const remoteArgs = async (pool: Pool) =>
        (await pool.runOnAll(() => Deno.args)).filter((args) =>
          !socketOf(args).endsWith("/pool.sock")
        );
      const [argsA, argsB] = await Promise.all([
        remoteArgs(a),
        remoteArgs(b),
      ]);
      assert.equal(argsA.length, 2);
      assert.equal(argsB.length, 2);
      const socketA = socketOf(argsA[0]!);
      const socketB = socketOf(argsB[0]!);
      assert.notEqual(socketA, socketB, "each pool has its own remote socket");
      assert.ok(await exists(socketA));
      assert.ok(await exists(socketB));
      const remote = await tag.remote();
      assert.ok(remote.length >= 6, `remote processes: ${remote}`);
      assert.equal((await tagA.ssh()).length, 1, "pool a's ssh process");
      assert.equal((await tagB.ssh()).length, 1, "pool b's ssh process");
      await withTimeout(a.close(), 20_000, "close()");
      assert.deepEqual(await tagA.ssh(), [], "ssh processes of a left");
      // The other pool's workers and ssh are untouched.
      assert.equal((await b.runOnAll(() => Deno.pid)).length, 3);
      assert.equal((await tagB.ssh()).length, 1, "pool b's ssh process");
      assert.equal(await exists(socketA), false, "remote socket removed");
      await withTimeout(b.close(), 20_000, "close()");
      const leftover = await tag.remote();
      assert.deepEqual(
        (await processes(leftover)).map((p) => p.cmdline),
        [],
        "remote processes left after close()",
      );
      assert.deepEqual(await tagB.ssh(), [], "ssh processes of b left");
      assert.equal(await exists(socketB), false, "remote socket removed");
    } finally {
      await a.close({ wait: false });
      await b.close({ wait: false });
    }
  },
});

Deno.test({
  name:
    "Pool owner killed with SIGKILL: no remote process, ssh or remote socket is left",
  ignore,
  async fn() {
    const tag = new HostTag();
    await using host = await startSshHost({ ...FAST, env: tag.env });
    const poolTag = new PoolTag();
    const options: PoolOptions = {
      workers: 1,
      hosts: [host.hostSpec(2)],
      ssh: sshOptions(host, poolTag),
    };
    const { child, first, drained, tmp } = await spawnFixture<{
      pid: number;
      workers: { pid: number; ppid: number; args: string[] }[];
    }>(OWNER_FIXTURE, [JSON.stringify(options)], 30_000);
    let killed = false;
    try {
      assert.equal(first.workers.length, 3);
      // The owner's socket directory, which its SIGKILL leaves behind, is in
      // the fixture's own TMPDIR (removed once it has exited).
      const mine = (await Array.fromAsync(Deno.readDir(tmp))).map((e) =>
        e.name
      );
      assert.ok(mine.some((n) => /^distex-[0-9a-f]+$/.test(n)), `${mine}`);
      const remote = await tag.remote();
      assert.ok(remote.length >= 3, `remote processes: ${remote}`);
      const local = (await processTree(child.pid)).map((p) => p.pid);
      assert.equal((await poolTag.ssh()).length, 1, "the owner's ssh process");
      const sockets = first.workers.map((w) => socketOf(w.args));
      const everything = new Set([
        ...local,
        ...remote,
        ...first.workers.flatMap((w) => [w.pid, w.ppid]),
      ]);
      everything.delete(child.pid);
      everything.delete(Deno.pid);
      child.kill("SIGKILL");
      killed = true;
      await child.status;
      const started = performance.now();
      const clean = await pollUntil(
        async () =>
          (await processes(everything)).length === 0 &&
          (await tag.remote()).length === 0 &&
          (await poolTag.ssh()).length === 0,
        20_000,
      );
      const left = await processes([
        ...everything,
        ...(await tag.remote()),
        ...(await poolTag.sshPids()),
      ]);
      assert.ok(
        clean,
        `left after SIGKILL of the owner:\n${
          left.map((p) => `${p.pid} ${p.cmdline}`).join("\n")
        }`,
      );
      console.error(
        `    all gone ${
          Math.round(performance.now() - started)
        } ms after the owner died`,
      );
      for (const socket of sockets) {
        if (socket.endsWith("/pool.sock")) continue;
        assert.ok(
          await pollUntil(async () => !(await exists(socket)), 20_000),
          `remote socket ${socket} left`,
        );
      }
    } finally {
      if (!killed) {
        child.kill("SIGKILL");
        await child.status;
      }
      await drained;
    }
    assert.equal(await exists(tmp), false, `${tmp} left behind`);
  },
});
