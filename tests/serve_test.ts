/**
 * Spawning servers (`cli.ts serve`) on network-namespace hosts, reached as
 * `tls://10.213.k.2:port/N`: the contract suite, authentication failures
 * (token, certificate), the server's limits, a server killed mid-map, a pool
 * killed (its workers on the server gone within 2 s), and nothing left
 * behind after close.
 *
 * @module
 */
import assert from "node:assert/strict";
import { HostError, Pool, type PoolOptions, type TlsOptions } from "../mod.ts";
import { contractSuite } from "./_contract.ts";
import {
  type NamespaceHost,
  namespacePrerequisites,
  skipMessage,
  startNamespaceHosts,
} from "./_ssh_hosts.ts";
import { CLI_PATH, recordEvents, spawnFixture } from "./_ssh_pool.ts";
import { isGone, pollUntil, rejection, withTimeout } from "./_util.ts";
import { VERSION } from "../src/version.ts";

let reason = await namespacePrerequisites();
if (reason === null) {
  try {
    const probe = await new Deno.Command("openssl", {
      args: ["version"],
      stdout: "null",
      stderr: "null",
    }).output();
    if (!probe.success) reason = "openssl does not work: install openssl";
  } catch {
    reason = "openssl is missing: install openssl";
  }
}
if (reason !== null) {
  skipMessage("spawning server tests (serve_test.ts)", reason);
}
const ignore = reason !== null;
const BOUND_MS = 30_000;
const OWNER = new URL("./fixtures/ssh/pool_owner.ts", import.meta.url);

/** Keys, certificates and tokens of one test, in a private dir. */
interface Secrets {
  dir: string;
  token: string;
  otherToken: string;
  cert: string;
  key: string;
  otherCert: string;
}

async function openssl(args: string[]): Promise<void> {
  const out = await new Deno.Command("openssl", { args, stdin: "null" })
    .output();
  if (!out.success) {
    throw new Error(
      `openssl ${args[0]}: ${new TextDecoder().decode(out.stderr)}`,
    );
  }
}

async function makeSecrets(address: string): Promise<Secrets> {
  const dir = await Deno.makeTempDir({
    dir: "/var/tmp",
    prefix: "distex-serve-",
  });
  await Deno.chmod(dir, 0o700);
  const hex = () =>
    Array.from(
      crypto.getRandomValues(new Uint8Array(32)),
      (b) => b.toString(16).padStart(2, "0"),
    ).join("");
  await Deno.writeTextFile(`${dir}/token`, hex() + "\n", { mode: 0o600 });
  await Deno.writeTextFile(`${dir}/other-token`, hex() + "\n", { mode: 0o600 });
  for (const name of ["server", "other"]) {
    await openssl([
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-days",
      "2",
      "-subj",
      `/CN=${address}`,
      "-keyout",
      `${dir}/${name}.key`,
      "-out",
      `${dir}/${name}.pem`,
      "-addext",
      `subjectAltName=IP:${address}`,
      "-addext",
      "basicConstraints=critical,CA:FALSE",
    ]);
  }
  return {
    dir,
    token: `${dir}/token`,
    otherToken: `${dir}/other-token`,
    cert: `${dir}/server.pem`,
    key: `${dir}/server.key`,
    otherCert: `${dir}/other.pem`,
  };
}

/** A `cli.ts serve` running inside a namespace host. */
interface Server extends AsyncDisposable {
  pid: number;
  spec(n: number): string;
  kill(): Promise<void>;
  log(): string;
}

async function startServer(
  host: NamespaceHost,
  secrets: Secrets,
  extra: string[] = [],
  port = 0,
): Promise<Server> {
  const child = new Deno.Command("ip", {
    args: [
      "netns",
      "exec",
      host.nsName,
      Deno.execPath(),
      "run",
      "-A",
      CLI_PATH,
      "serve",
      "--listen",
      host.address,
      "--port",
      String(port),
      "--cert-file",
      secrets.cert,
      "--key-file",
      secrets.key,
      "--token-file",
      secrets.token,
      ...extra,
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let log = "";
  const stderr = (async () => {
    for await (
      const chunk of child.stderr.pipeThrough(new TextDecoderStream())
    ) {
      log += chunk;
    }
  })();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let first = "";
  const ready = (async () => {
    while (!first.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) break;
      first += value;
    }
  })();
  const stdout = ready.then(async () => {
    while (!(await reader.read()).done) { /* drain */ }
  });
  let stopped = false;
  const kill = async () => {
    if (!stopped) {
      stopped = true;
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
    }
    await child.status;
    await stdout.catch(() => {});
    await stderr.catch(() => {});
  };
  try {
    await withTimeout(ready, BOUND_MS, "cli.ts serve start-up");
  } catch (error) {
    await kill();
    throw new Error(`${(error as Error).message}; its log:\n${log}`);
  }
  const match = /listening on (\S+):(\d+)/.exec(first);
  if (!match) {
    await kill();
    throw new Error(
      `cli.ts serve printed ${JSON.stringify(first)}; log:\n${log}`,
    );
  }
  const bound = Number(match[2]);
  return {
    pid: child.pid,
    spec: (n) => `tls://${host.address}:${bound}/${n}`,
    kill,
    log: () => log,
    [Symbol.asyncDispose]: kill,
  };
}

function tls(
  secrets: Secrets,
  extra: Partial<Secrets> = {},
): TlsOptions {
  return {
    tokenFile: extra.token ?? secrets.token,
    caFile: extra.cert ?? secrets.cert,
  };
}

/** Who a worker is: its pid and its supervisor's. */
const whoami = () => ({ pid: Deno.pid, ppid: Deno.ppid });

/** A pool of one local worker and two on `server`, with retries. */
function lossPool(server: Server, secrets: Secrets): Promise<Pool> {
  return withTimeout(
    Pool.create({
      workers: 1,
      hosts: [server.spec(2)],
      tls: tls(secrets),
      retries: 3,
    }),
    BOUND_MS,
    "Pool.create()",
  );
}

/** The pool's workers that share a supervisor with another: the server's two. */
async function remoteWorkers(pool: Pool) {
  return (await pool.runOnAll(whoami)).filter((w, _, all) =>
    all.filter((v) => v.ppid === w.ppid).length === 2
  );
}

/** Whether every one of `pids` is gone. */
async function allGone(pids: number[]): Promise<boolean> {
  for (const pid of pids) if (!(await isGone(pid))) return false;
  return true;
}

if (ignore) {
  Deno.test({ name: "[tls] contract suite", ignore, fn() {} });
} else {
  // One namespace host and one server for the suite; stopped by its cleanup.
  const net = await startNamespaceHosts(1);
  const host = net.hosts[0]!;
  const secrets = await makeSecrets(host.address);
  const server = await startServer(host, secrets, ["--max-pools", "8"]);
  globalThis.addEventListener("unload", () => {
    try {
      Deno.kill(server.pid, "SIGKILL");
    } catch { /* stopped */ }
  });
  contractSuite("tls", () => ({
    workers: 0,
    hosts: [server.spec(2)],
    tls: tls(secrets),
  }), async () => {
    await server.kill();
    await net.close();
    await Deno.remove(secrets.dir, { recursive: true });
  });
}

/** Runs `fn` with a fresh namespace host, its secrets and a server. */
async function withServer(
  extra: string[],
  fn: (server: Server, secrets: Secrets, host: NamespaceHost) => Promise<void>,
): Promise<void> {
  await using net = await startNamespaceHosts(1);
  const host = net.hosts[0]!;
  const secrets = await makeSecrets(host.address);
  try {
    await using server = await startServer(host, secrets, extra);
    try {
      await fn(server, secrets, host);
    } catch (error) {
      console.error(`server log:\n${server.log()}`);
      throw error;
    }
  } finally {
    await Deno.remove(secrets.dir, { recursive: true });
  }
}

async function hostError(options: PoolOptions): Promise<HostError> {
  const error = await rejection(
    withTimeout(Pool.create(options), BOUND_MS, "Pool.create()"),
  );
  assert.ok(error instanceof HostError, `got ${error}`);
  return error;
}

Deno.test({
  name:
    "tls:// hosts: wrong token, wrong certificate, refused, server full: each a HostError naming the host",
  ignore,
  async fn() {
    await withServer(
      ["--max-pools", "1", "--max-workers", "2"],
      async (server, secrets, host) => {
        const spec = server.spec(1);
        const name = spec.slice("tls://".length, spec.lastIndexOf("/"));
        const base = { workers: 0, hosts: [spec] };

        let error = await hostError({
          ...base,
          tls: tls(secrets, { token: secrets.otherToken }),
        });
        assert.equal(error.host, name);
        assert.match(error.message, /bad token/);

        error = await hostError({
          ...base,
          tls: tls(secrets, { cert: secrets.otherCert }),
        });
        assert.equal(error.host, name);
        assert.match(error.message, /certificate mismatch/);

        error = await hostError({
          workers: 0,
          hosts: [`tls://${host.address}:1/1`],
          tls: tls(secrets),
        });
        assert.match(error.message, /connection refused/);
        assert.match(error.message, new RegExp(host.address));

        error = await hostError({
          workers: 0,
          hosts: [server.spec(3)],
          tls: tls(secrets),
        });
        assert.match(
          error.message,
          /server full: .*at most 2 workers per pool/,
        );

        // One pool at a time: the second is refused, and served once the
        // first has closed.
        const first = await withTimeout(
          Pool.create({ ...base, tls: tls(secrets) }),
          BOUND_MS,
          "the first pool",
        );
        try {
          error = await hostError({ ...base, tls: tls(secrets) });
          assert.equal(error.host, name);
          assert.match(error.message, /server full: .*maximum of 1 pools/);
        } finally {
          await first.close();
        }
        const again = await withTimeout(
          Pool.create({ ...base, tls: tls(secrets) }),
          BOUND_MS,
          "a pool after the first closed",
        );
        assert.equal((await again.runOnAll(() => 1)).length, 1);
        await again.close();
      },
    );
  },
});

Deno.test({
  name:
    "tls:// host: server killed mid-map: hostlost, retries lose nothing, the pool reconnects when it is back",
  ignore,
  async fn() {
    await withServer([], async (server, secrets, host) => {
      const port = Number(/:(\d+)\//.exec(server.spec(1))![1]);
      await using pool = await lossPool(server, secrets);
      const lost = recordEvents<{ host: string }>(pool, "hostlost");
      const remote = await remoteWorkers(pool);
      assert.equal(remote.length, 2);
      const items = Array.from({ length: 300 }, (_, i) => i);
      const results: number[] = [];
      for await (
        const x of pool.map(async (i: number) => {
          await new Promise((r) => setTimeout(r, 2));
          return i;
        }, items)
      ) {
        results.push(x);
        if (results.length === 40) await server.kill();
      }
      assert.deepEqual(results, items, "every result, once, in order");
      assert.ok(
        await pollUntil(() => lost.seen.length > 0, BOUND_MS),
        "hostlost",
      );
      for (const w of remote) {
        assert.ok(
          await pollUntil(() => isGone(w.pid), BOUND_MS),
          `server-side worker ${w.pid} is gone with its server`,
        );
      }
      // The server comes back on the same port: the pool reconnects.
      await using back = await startServer(host, secrets, [], port);
      assert.ok(
        await pollUntil(() => pool.totalWorkers === 3, BOUND_MS),
        `the pool reconnected; server log:\n${back.log()}`,
      );
      assert.equal((await pool.runOnAll(() => 1)).length, 3);
    });
  },
});

Deno.test({
  name:
    "tls:// host: pool killed with SIGKILL: its workers on the server are gone within 2 s",
  ignore,
  async fn() {
    await withServer([], async (server, secrets) => {
      const { child, first, drained } = await spawnFixture<
        { workers: { pid: number; ppid: number }[] }
      >(
        OWNER,
        [JSON.stringify({
          workers: 0,
          hosts: [server.spec(2)],
          tls: tls(secrets),
        })],
        BOUND_MS,
      );
      const pids = [
        ...first.workers.map((w) => w.pid),
        first.workers[0]!.ppid,
      ];
      child.kill("SIGKILL");
      await child.status;
      await drained;
      const killed = performance.now();
      assert.ok(
        await pollUntil(() => allGone(pids), 10_000),
        "the server-side processes are gone",
      );
      const ms = performance.now() - killed;
      console.error(
        `    server-side workers gone ${Math.round(ms)} ms after the kill`,
      );
      assert.ok(ms <= 2_000, `gone after ${Math.round(ms)} ms`);
    });
  },
});

Deno.test({
  name:
    "tls:// host: Pool.close() leaves no supervisor or worker on the server, which goes on serving",
  ignore,
  async fn() {
    await withServer(["--max-pools", "1"], async (server, secrets) => {
      for (let round = 0; round < 2; round++) {
        const pool = await withTimeout(
          Pool.create({
            workers: 0,
            hosts: [server.spec(2)],
            tls: tls(secrets),
          }),
          BOUND_MS,
          "Pool.create()",
        );
        const workers = await pool.runOnAll(whoami);
        await pool.close();
        const pids = [...workers.map((w) => w.pid), workers[0]!.ppid];
        assert.ok(
          await pollUntil(() => allGone(pids), BOUND_MS),
          `round ${round}: processes left on the server`,
        );
      }
    });
  },
});

Deno.test({
  name:
    "tls:// host whose network is cut mid-map: the link's pings notice, hostlost, nothing lost, its workers stop, it comes back",
  ignore,
  async fn() {
    await withServer([], async (server, secrets, host) => {
      await using pool = await lossPool(server, secrets);
      const lost = recordEvents<{ host: string }>(pool, "hostlost");
      const remote = await remoteWorkers(pool);
      assert.equal(remote.length, 2);
      const items = Array.from({ length: 300 }, (_, i) => i);
      const results: number[] = [];
      let cut: Promise<void> | undefined;
      let cutAt = 0;
      try {
        for await (
          const x of pool.map(async (i: number) => {
            await new Promise((r) => setTimeout(r, 5));
            return i;
          }, items)
        ) {
          results.push(x);
          if (results.length === 40) {
            cutAt = performance.now();
            cut = host.cutLink("ns");
          }
        }
        await cut;
        assert.deepEqual(results, items, "every result, once, in order");
        assert.ok(
          await pollUntil(() => lost.seen.length > 0, BOUND_MS),
          "hostlost",
        );
        console.error(
          `    hostlost ${
            Math.round(lost.seen[0]!.at - cutAt)
          } ms after the cut`,
        );
        for (const w of remote) {
          assert.ok(
            await pollUntil(() => isGone(w.pid), BOUND_MS),
            `server-side worker ${w.pid} stopped without its pool`,
          );
        }
      } finally {
        await host.restoreLink();
      }
      assert.ok(
        await pollUntil(() => pool.totalWorkers === 3, BOUND_MS),
        "the pool reconnected",
      );
      assert.equal((await pool.runOnAll(() => 1)).length, 3);
    });
  },
});

/**
 * A fake spawning server on 127.0.0.1 that greets, reads the pool's request
 * and answers with `reply` (then closes): for the pool's side of the
 * handshake.
 */
async function fakeServer(
  secrets: Secrets,
  reply: Record<string, unknown>,
  fn: (spec: string) => Promise<void>,
): Promise<void> {
  const listener = Deno.listenTls({
    hostname: "127.0.0.1",
    port: 0,
    cert: await Deno.readTextFile(secrets.cert),
    key: await Deno.readTextFile(secrets.key),
  });
  const requests: Record<string, unknown>[] = [];
  const serving = (async () => {
    for await (const conn of listener) {
      try {
        await conn.write(
          new TextEncoder().encode(
            JSON.stringify({ distex: "serve", version: "0.0.9", nonce: "ab" }) +
              "\n",
          ),
        );
        let text = "";
        const buffer = new Uint8Array(4096);
        while (!text.includes("\n")) {
          const n = await conn.read(buffer);
          if (n === null) break;
          text += new TextDecoder().decode(buffer.subarray(0, n));
        }
        requests.push(JSON.parse(text.split("\n")[0]!));
        await conn.write(
          new TextEncoder().encode(JSON.stringify(reply) + "\n"),
        );
      } catch { /* the pool hung up */ }
      conn.close();
    }
  })();
  try {
    await fn(`tls://127.0.0.1:${(listener.addr as Deno.NetAddr).port}/1`);
    assert.ok(requests.length > 0, "the pool sent its request");
    for (const r of requests) {
      assert.equal(r.version, VERSION);
      assert.match(String(r.proof), /^[0-9a-f]{64}$/, "an HMAC, not the token");
      const token = (await Deno.readTextFile(secrets.token)).trim();
      assert.ok(!JSON.stringify(r).includes(token), "the token never travels");
    }
  } finally {
    listener.close();
    await serving;
  }
}

Deno.test({
  name:
    "tls:// host of another version: HostError naming both versions and the install command",
  ignore,
  async fn() {
    const secrets = await makeSecrets("127.0.0.1");
    try {
      await fakeServer(
        secrets,
        { error: "version", version: "0.0.9" },
        async (spec) => {
          const error = await hostError({
            workers: 0,
            hosts: [spec],
            tls: tls(secrets),
          });
          assert.match(error.message, /server runs @distex\/pool 0\.0\.9/);
          assert.match(error.message, new RegExp(`the pool ${VERSION}`));
          assert.match(
            error.message,
            new RegExp(`deno cache jsr:@distex/pool@${VERSION}/cli`),
          );
        },
      );
    } finally {
      await Deno.remove(secrets.dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "tls:// host that cannot prove it knows the token: HostError (the pool authenticates the server too)",
  ignore,
  async fn() {
    const secrets = await makeSecrets("127.0.0.1");
    try {
      await fakeServer(
        secrets,
        { ok: true, proof: "00".repeat(32) },
        async (spec) => {
          const error = await hostError({
            workers: 0,
            hosts: [spec],
            tls: tls(secrets),
          });
          assert.match(
            error.message,
            /server could not prove that it knows the token/,
          );
        },
      );
    } finally {
      await Deno.remove(secrets.dir, { recursive: true });
    }
  },
});

Deno.test("cli.ts serve: a missing file flag or a short token is a clear error, with no secret on the command line", async () => {
  const dir = await Deno.makeTempDir({ prefix: "distex-serve-args-" });
  try {
    const run = async (args: string[]) => {
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", CLI_PATH, "serve", ...args],
        stdin: "null",
      }).output();
      return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
    };
    let r = await run(["--cert-file", `${dir}/c.pem`]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--key-file is required/);
    r = await run(["--token", "abc"]);
    assert.equal(r.code, 2, "a token on the command line is refused");
    await Deno.writeTextFile(`${dir}/token`, "short\n");
    r = await run([
      "--cert-file",
      `${dir}/c.pem`,
      "--key-file",
      `${dir}/k.pem`,
      "--token-file",
      `${dir}/token`,
    ]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /too short/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
