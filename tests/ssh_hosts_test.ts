// Self-test of the SSH test-host helpers in tests/_ssh_hosts.ts.
import assert from "node:assert/strict";
import {
  cleanupStaleHosts,
  denoPath,
  namespacePrerequisites,
  skipMessage,
  sshPrerequisites,
  startNamespaceHosts,
  startSshHost,
} from "./_ssh_hosts.ts";
import { exists, isGone, pollUntil } from "./_util.ts";
import { LineReader } from "../src/_lines.ts";

const sshReason = await sshPrerequisites();
if (sshReason !== null) skipMessage("startSshHost() tests", sshReason);
const nsReason = await namespacePrerequisites();
if (nsReason !== null) skipMessage("startNamespaceHosts() tests", nsReason);

const decoder = new TextDecoder();

/** Single-quotes a string for sh. */
function quote(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

/** True when `pid` exists and is not a zombie. */
async function isAlive(pid: number): Promise<boolean> {
  return !(await isGone(pid));
}

async function netnsNames(): Promise<string[]> {
  const out = await new Deno.Command("ip", { args: ["netns", "list"] })
    .output();
  return decoder.decode(out.stdout).split("\n").map((l) => l.split(" ")[0]!)
    .filter((n) => n !== "");
}

/** A UNIX-socket echo server in a private temp dir under /var/tmp. */
async function startEchoServer(): Promise<
  AsyncDisposable & { path: string; connections: () => number }
> {
  const dir = await Deno.makeTempDir({
    dir: "/var/tmp",
    prefix: "distex-echo-",
  });
  const path = `${dir}/local.sock`;
  const listener = Deno.listen({ transport: "unix", path });
  const conns = new Set<Deno.Conn>();
  const handlers: Promise<void>[] = [];
  let accepted = 0;
  const loop = (async () => {
    for await (const conn of listener) {
      accepted++;
      conns.add(conn);
      handlers.push((async () => {
        const buf = new Uint8Array(4096);
        try {
          for (let n; (n = await conn.read(buf)) !== null;) {
            await conn.write(buf.subarray(0, n));
          }
        } catch {
          // peer gone
        }
        conns.delete(conn);
        try {
          conn.close();
        } catch {
          // already closed
        }
      })());
    }
  })();
  return {
    path,
    connections: () => accepted,
    async [Symbol.asyncDispose]() {
      listener.close();
      await loop;
      for (const conn of conns) conn.close();
      await Promise.all(handlers);
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/**
 * Deno one-liner for the remote side: opens `clients` connections to the
 * UNIX socket, sends "ping-<i>" on each, prints what comes back.
 */
function tunnelClient(socketPath: string, clients: number): string {
  const code = `
    const path = ${JSON.stringify(socketPath)};
    const replies = await Promise.all(Array.from({ length: ${clients} }, async (_, i) => {
      const conn = await Deno.connect({ transport: "unix", path });
      const msg = "ping-" + i;
      await conn.write(new TextEncoder().encode(msg));
      const buf = new Uint8Array(64);
      let got = "";
      while (got.length < msg.length) {
        const n = await conn.read(buf);
        if (n === null) break;
        got += new TextDecoder().decode(buf.subarray(0, n));
      }
      conn.close();
      return got;
    }));
    console.log(replies.join(" "));`;
  return `${quote(denoPath())} eval ${quote(code)}`;
}

/**
 * Starts a long-lived ssh session running `echo $$; exec sleep 300` and
 * waits for the first line, so the remote process is known to exist.
 */
async function startSession(sshArgs: readonly string[], alias: string) {
  const child = new Deno.Command("ssh", {
    args: [...sshArgs, "-T", alias, "echo $$; exec sleep 300"],
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const lines = new LineReader(child.stdout);
  const remotePid = Number((await lines.next() ?? "").trim());
  return {
    remotePid,
    /** Drains stdout and returns the ssh exit code. */
    async finished(): Promise<number> {
      while (await lines.next() !== undefined) { /* drain */ }
      return (await child.status).code;
    },
  };
}

Deno.test({
  name: "startSshHost() runs commands over ssh",
  ignore: sshReason !== null,
  async fn() {
    const started = performance.now();
    await using host = await startSshHost();
    console.log(`sshd ready in ${(performance.now() - started).toFixed(0)} ms`);
    assert.equal(host.sshArgs[0], "-F");
    assert.equal(host.sshArgs[1], host.configPath);
    assert.equal(host.hostSpec(3), `ssh://${host.alias}/3`);
    assert.match(host.dir, /^\/var\/tmp\//);
    assert.equal((await Deno.stat(host.dir)).mode! & 0o777, 0o700);
    assert.deepEqual(await host.exec("echo ok"), {
      code: 0,
      stdout: "ok\n",
      stderr: "",
    });
    assert.equal((await host.exec("exit 3")).code, 3);
    assert.equal(
      (await host.exec("cat", { stdin: "via stdin" })).stdout,
      "via stdin",
    );
    const t = performance.now();
    await host.exec("true");
    console.log(`one ssh command: ${(performance.now() - t).toFixed(0)} ms`);
  },
});

Deno.test({
  name: "startSshHost() serves a reverse UNIX-socket tunnel (ssh -R)",
  ignore: sshReason !== null,
  async fn() {
    await using host = await startSshHost();
    await using server = await startEchoServer();
    const remote = `${host.dir}/remote.sock`;
    const result = await host.exec(tunnelClient(remote, 3), {
      sshArgs: ["-R", `${remote}:${server.path}`],
    });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, "ping-0 ping-1 ping-2\n");
    assert.equal(server.connections(), 3);
  },
});

Deno.test({
  name:
    "SshHost.close() stops sshd, kills what the host started, removes its dir",
  ignore: sshReason !== null,
  async fn() {
    const host = await startSshHost();
    // Detached from the session (new session, parent exits): reparented away from sshd.
    const detached = await host.exec(
      "setsid sleep 300 </dev/null >/dev/null 2>&1 & echo $!",
    );
    const orphanPid = Number(detached.stdout.trim());
    const session = await startSession(host.sshArgs, host.alias);
    assert.ok(await isAlive(orphanPid));
    assert.ok(await isAlive(session.remotePid));
    assert.ok(await isAlive(host.pid));

    await host.close();
    assert.equal(await isAlive(host.pid), false, "sshd still alive");
    assert.equal(
      await isAlive(orphanPid),
      false,
      "detached process still alive",
    );
    assert.equal(
      await isAlive(session.remotePid),
      false,
      "session process still alive",
    );
    assert.equal(await exists(host.dir), false, "temp dir left behind");
    assert.equal(await session.finished(), 255);
    await host.close(); // idempotent
    await host[Symbol.asyncDispose]();
  },
});

Deno.test({
  name:
    "SshHost.kill() refuses new logins, keeps sessions; close() still cleans up",
  ignore: sshReason !== null,
  async fn() {
    const host = await startSshHost();
    const session = await startSession(host.sshArgs, host.alias);
    await host.kill();
    assert.equal(await isAlive(host.pid), false);
    assert.equal((await host.exec("true")).code, 255);
    assert.ok(
      await isAlive(session.remotePid),
      "open session should survive the listener",
    );

    await host.close();
    assert.equal(
      await isAlive(session.remotePid),
      false,
      "orphaned session still alive",
    );
    assert.equal(await session.finished(), 255);
    assert.equal(await exists(host.dir), false);
  },
});

Deno.test({
  name: "startNamespaceHosts() rejects a bad count",
  async fn() {
    await assert.rejects(() => startNamespaceHosts(0), RangeError);
    await assert.rejects(() => startNamespaceHosts(1.5), RangeError);
  },
});

Deno.test({
  name:
    "startNamespaceHosts() gives each host its own address, /tmp and tunnel",
  ignore: nsReason !== null,
  async fn() {
    const started = performance.now();
    await using net = await startNamespaceHosts(2);
    console.log(
      `2 namespace hosts ready in ${
        (performance.now() - started).toFixed(0)
      } ms`,
    );
    const [a, b] = net.hosts;
    assert.ok(a !== undefined && b !== undefined);
    assert.notEqual(a.address, b.address);
    assert.match(a.address, /^10\.213\.\d+\.2$/);
    assert.equal(a.hostSpec(2), `ssh://${a.alias}/2`);
    assert.deepEqual(net.sshArgs, ["-F", net.configPath]);
    assert.ok((await a.pids()).length > 0);

    for (const host of [a, b]) {
      const r = await host.exec("echo $SSH_CONNECTION");
      assert.equal(r.code, 0, r.stderr);
      assert.match(
        r.stdout,
        new RegExp(` ${host.address.replaceAll(".", "\\.")} 22\n$`),
      );
    }

    const file = `/tmp/distex-probe-${crypto.randomUUID()}`;
    assert.equal(
      (await a.exec(`echo hi > ${file} && cat ${file}`)).stdout,
      "hi\n",
    );
    assert.equal((await b.exec(`test -e ${file}`)).code, 1, "b sees a's /tmp");
    assert.equal(await exists(file), false, "the test machine sees a's /tmp");

    // The same remote socket path on both hosts at once: no collision.
    await using server = await startEchoServer();
    const results = await Promise.all(
      [a, b].map((host) =>
        host.exec(tunnelClient("/tmp/remote.sock", 2), {
          sshArgs: ["-R", `/tmp/remote.sock:${server.path}`],
        })
      ),
    );
    for (const r of results) {
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, "ping-0 ping-1\n");
    }
  },
});

Deno.test({
  name:
    "NamespaceHost.cutLink() makes a new ssh fail fast; restoreLink() heals it",
  ignore: nsReason !== null,
  async fn() {
    await using net = await startNamespaceHosts(1);
    const host = net.hosts[0]!;

    // "Fast" means the kernel refuses the connection (the reason below), not
    // ssh's ConnectTimeout: timings are only printed, as the machine is shared.
    await host.cutLink(); // namespace side: ARP fails, "No route to host"
    let t = performance.now();
    const ns = await host.exec("true");
    const nsMs = performance.now() - t;
    assert.equal(ns.code, 255);
    assert.match(ns.stderr, /No route to host/);
    await host.restoreLink();
    assert.equal((await host.exec("echo ok")).stdout, "ok\n");

    await host.cutLink("host"); // test-machine side: blackhole route, immediate
    t = performance.now();
    const hs = await host.exec("true");
    const hostMs = performance.now() - t;
    assert.equal(hs.code, 255);
    assert.match(
      hs.stderr,
      /Invalid argument/,
      "refused by the blackhole route",
    );
    await host.restoreLink();
    assert.equal((await host.exec("echo ok")).stdout, "ok\n");
    console.log(
      `new ssh failed after ${
        nsMs.toFixed(0)
      } ms (ns side down: ${ns.stderr.trim()}), ` +
        `${hostMs.toFixed(0)} ms (host side down: ${hs.stderr.trim()})`,
    );
  },
});

Deno.test({
  name:
    "NamespaceHost.killSshd() kills the host; reboot() and close() clean up",
  ignore: nsReason !== null,
  async fn() {
    const net = await startNamespaceHosts(1);
    const host = net.hosts[0]!;
    assert.equal((await host.exec("touch /tmp/before-crash")).code, 0);
    const session = await startSession(net.sshArgs, host.alias);

    await host.killSshd();
    assert.deepEqual(await host.pids(), []);
    // Out of the namespace already, it may still be exiting: not yet a zombie.
    assert.ok(
      await pollUntil(async () => !(await isAlive(session.remotePid)), 10_000),
      `the session's remote process ${session.remotePid} lives on`,
    );
    assert.equal(await session.finished(), 255);
    assert.equal((await host.exec("true")).code, 255);

    await host.reboot();
    assert.equal(
      (await host.exec("test -e /tmp/before-crash")).code,
      1,
      "/tmp survived reboot",
    );
    const pids = await host.pids();
    assert.ok(pids.length > 0);

    await net.close();
    for (const pid of pids) {
      assert.equal(await isAlive(pid), false, `pid ${pid} alive`);
    }
    assert.equal(
      (await netnsNames()).includes(host.nsName),
      false,
      "netns left behind",
    );
    const link = await new Deno.Command("ip", {
      args: ["link", "show", host.hostVeth],
    })
      .output();
    assert.notEqual(link.code, 0, "veth left behind");
    assert.equal(await exists(net.dir), false, "temp dir left behind");
    // The guard route is shared by every namespace host on this machine
    // (other test files, other test runs): it must go once none is left.
    // Another process may add it just before creating its namespace, so
    // poll until it is gone or some namespace host exists again.
    const routeGone = async () =>
      decoder.decode(
        (await new Deno.Command("ip", {
          args: ["route", "show", "10.213.0.0/16"],
        }).output()).stdout,
      ).trim() === "";
    assert.ok(
      await pollUntil(
        async () =>
          await routeGone() ||
          (await netnsNames()).some((n) => n.startsWith("distex-ns")),
        20_000,
      ),
      "guard route left behind with no namespace host",
    );
    await net.close(); // idempotent
  },
});

Deno.test({
  name: "cleanupStaleHosts() removes what a killed test process left behind",
  ignore: sshReason !== null,
  async fn() {
    const args = [
      "run",
      "-A",
      new URL("./fixtures/ssh/crashing_owner.ts", import.meta.url).pathname,
    ];
    if (nsReason === null) args.push("--netns");
    const child = new Deno.Command(denoPath(), {
      args,
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const lines = new LineReader(child.stdout);
    const text = await lines.next() ?? "";
    child.kill("SIGKILL"); // the "crash": nothing gets closed
    await child.stdin.close().catch(() => {});
    while (await lines.next() !== undefined) { /* drain */ }
    await child.status;
    const left: {
      sshdPid: number;
      detachedPid: number;
      dirs: string[];
      nsNames: string[];
      nsPids: number[];
    } = JSON.parse(text);
    assert.ok(await isAlive(left.sshdPid), "fixture's sshd should outlive it");

    // Another test process starting right now may clean up first: check effects.
    await cleanupStaleHosts();
    for (const dir of left.dirs) {
      assert.equal(await exists(dir), false, `${dir} left behind`);
    }
    for (const pid of [left.sshdPid, left.detachedPid, ...left.nsPids]) {
      assert.equal(await isAlive(pid), false, `pid ${pid} alive`);
    }
    const names = await netnsNames();
    for (const name of left.nsNames) {
      assert.equal(names.includes(name), false, `${name} left behind`);
    }
  },
});
