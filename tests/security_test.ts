/**
 * Hostile and broken peers on the pool's socket, and the pool's secrets.
 *
 * Raw clients connect to the socket of a live pool (found in its workers'
 * `--unix <path>` argument) and misbehave; authenticated misbehaviour comes
 * from `tests/fixtures/rogue_worker.ts`, run through the `workerUrl` option.
 * In every case the pool must hang up on that peer with a reason (the
 * `rejected` event before authentication, `workerexit` after), keep its other
 * workers, and go on answering `run`.
 *
 * @module
 */
import assert from "node:assert/strict";
import { Pool, type PoolOptions, type WorkerExit } from "../mod.ts";
import { encode } from "../src/_codec.ts";
import { newNonce, proof } from "../src/auth.ts";
import {
  helloMessage,
  type Message,
  Op,
  PROTOCOL_VERSION,
  readFrames,
} from "../src/protocol.ts";
import { LeakCheck } from "./_leaks.ts";
import { concat, frame } from "./_wire.ts";
import {
  closeNow,
  exists,
  nextEvent,
  pollUntil,
  rejection,
  tempDir,
  withTimeout,
} from "./_util.ts";

const leaks = new LeakCheck();
const ROGUE = new URL("./fixtures/rogue_worker.ts", import.meta.url);
const WORKER = new URL("../worker.ts", import.meta.url);

/** `f(x) = x * 2`. */
const double = (x: number): number => x * 2;

/** The pool's socket path, from a worker's command line. */
async function socketPath(pool: Pool): Promise<string> {
  const [args] = await pool.runOnAll(() => Deno.args);
  const at = args!.indexOf("--unix");
  assert.ok(at >= 0, `no --unix in the worker's args ${args}`);
  return args![at + 1]!;
}

/** A message as one frame. */
function message(value: unknown): Uint8Array {
  return frame(encode(value));
}

/** Reads the pool's challenge from a fresh connection; returns its nonce. */
async function readChallenge(conn: Deno.Conn): Promise<Uint8Array> {
  let challenge: Message | undefined;
  await readFrames(conn, (m) => {
    challenge = m;
    return false;
  });
  assert.ok(challenge, "the pool sent no challenge");
  assert.equal(challenge[0], Op.Challenge);
  assert.equal(challenge[1], PROTOCOL_VERSION);
  return challenge[2] as Uint8Array;
}

/** Resolves once the peer has closed `conn` (reads to the end). */
async function hungUp(conn: Deno.Conn): Promise<void> {
  const buffer = new Uint8Array(4096);
  try {
    while ((await conn.read(buffer)) !== null) { /* drain */ }
  } catch (error) {
    if (!(error instanceof Deno.errors.ConnectionReset)) throw error;
  }
}

/**
 * Connects to `path` as a raw client, reads the challenge, lets `act` send
 * something, and waits until the pool hangs up. Resolves with the reason the
 * pool gave in its `rejected` event.
 */
async function misbehave(
  pool: Pool,
  path: string,
  act: (conn: Deno.Conn, nonce: Uint8Array) => Promise<void>,
): Promise<string> {
  const rejected = nextEvent(pool, "rejected");
  using conn = await Deno.connect({ transport: "unix", path });
  const nonce = await readChallenge(conn);
  await act(conn, nonce);
  await withTimeout(hungUp(conn), 20_000, "the pool hanging up");
  return await withTimeout(rejected, 20_000, "the rejected event");
}

/** A Hello with a made-up proof. */
function badHello(workerId: unknown): Uint8Array {
  return message([
    Op.Hello,
    PROTOCOL_VERSION,
    workerId,
    crypto.getRandomValues(new Uint8Array(32)),
    Deno.pid,
  ]);
}

// ---- unauthenticated peers -------------------------------------------------

Deno.test(
  "Pool hangs up on unauthenticated peers that misbehave, says why, evaluates nothing and goes on",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "distex-test-" });
    const marker = `${dir}/evaluated`;
    const define = message([
      Op.Define,
      1,
      `() => Deno.writeTextFileSync(${JSON.stringify(marker)}, "")`,
    ]);
    const call = message([Op.Call, 1, 1, []]);
    try {
      await using pool = await leaks.open({ workers: 2 });
      const path = await socketPath(pool);
      const pids = await pool.runOnAll(() => Deno.pid);
      const cases: [
        string,
        (conn: Deno.Conn, nonce: Uint8Array) => Promise<unknown>,
        RegExp,
      ][] = [
        [
          "garbage bytes",
          (c) => c.write(new TextEncoder().encode("GET / HTTP/1.1\r\n\r\n")),
          /frame of \d+ bytes exceeds the limit of 4096 bytes/,
        ],
        [
          "an oversized length prefix",
          (c) => c.write(new Uint8Array([0x7f, 0xff, 0xff, 0xff])),
          /frame of 2147483647 bytes exceeds the limit of 4096 bytes/,
        ],
        [
          "an oversized raw-bytes frame",
          (c) => c.write(new Uint8Array([0xff, 0xff, 0xff, 0xff, 0])),
          /exceeds the limit of 4096 bytes/,
        ],
        [
          "a truncated frame, then end of stream",
          async (c) => {
            await c.write(new Uint8Array([0, 0, 0, 100, 1, 2, 3]));
            await c.closeWrite();
          },
          /ended inside a frame \(7 bytes of it received\)/,
        ],
        [
          "undecodable bytes in a frame",
          (c) => c.write(frame(new Uint8Array([0xc1, 0xc1]))),
          /undecodable frame/,
        ],
        [
          "a value that is not a message",
          (c) => c.write(message({ hello: "pool" })),
          /not a protocol message/,
        ],
        [
          "a task instead of a Hello",
          (c) => c.write(concat(define, call)),
          /bad handshake: expected a Hello \(message type 20\), got message type 3/,
        ],
        [
          "a Hello with a wrong proof",
          (c) => c.write(badHello(12345)),
          /worker 12345 failed authentication/,
        ],
        [
          "a Hello with a wrong proof claiming a connected worker's id",
          (c) => c.write(concat(badHello(1), define, call)),
          /worker 1 failed authentication/,
        ],
        [
          "a Hello for another protocol version",
          (c) => c.write(message([Op.Hello, 99, 1, new Uint8Array(32), 1])),
          new RegExp(
            `protocol version 99, the pool ${PROTOCOL_VERSION} \\(use the same @distex/pool version`,
          ),
        ],
        [
          "a Hello whose worker id is not a number",
          (c) => c.write(message([Op.Hello, PROTOCOL_VERSION, "1", null, 1])),
          /bad worker id in the handshake: expected a number, got string/,
        ],
        [
          "a proof made with another secret",
          async (c) => {
            const fake = await proof("0".repeat(64), new Uint8Array(32), 1);
            await c.write(
              message([Op.Hello, PROTOCOL_VERSION, 1, fake, Deno.pid]),
            );
          },
          /worker 1 failed authentication/,
        ],
        [
          "an end of stream right after the challenge",
          (c) => c.closeWrite(),
          /closed during the handshake/,
        ],
      ];
      for (const [what, act, reason] of cases) {
        const said = await misbehave(pool, path, async (conn, nonce) => {
          await act(conn, nonce);
        });
        assert.match(said, reason, what);
        assert.equal(await pool.run(double, 21), 42, `after ${what}`);
        assert.deepEqual(
          await pool.runOnAll(() => Deno.pid),
          pids,
          `the workers changed after ${what}`,
        );
      }
      assert.equal(await exists(marker), false, "a peer's task was evaluated");
      const stats = pool.stats();
      assert.equal(stats.lost, 0);
      assert.equal(stats.workers.length, 2);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

Deno.test(
  "Pool hangs up on a peer that sends nothing within the handshake time",
  async () => {
    await using pool = await leaks.open({ workers: 1 });
    const path = await socketPath(pool);
    const rejected = nextEvent(pool, "rejected");
    using silent = await Deno.connect({ transport: "unix", path });
    await readChallenge(silent);
    await withTimeout(hungUp(silent), 30_000, "the pool hanging up");
    assert.match(
      await withTimeout(rejected, 30_000, "the rejected event"),
      /no handshake within 10000 ms/,
    );
    assert.equal(await pool.run(double, 4), 8);
  },
);

// ---- peers that know the secret -----------------------------------------------

/**
 * A pool of rogue_worker.ts workers that write the keys they got (their own)
 * to files; `keys` maps worker id to key.
 */
async function openRecorded(
  dir: string,
  extra: PoolOptions = {},
): Promise<{ pool: Pool; keys: Map<number, string> }> {
  const url = new URL(ROGUE);
  url.searchParams.set("secret", `${dir}/key`);
  const pool = await leaks.open({
    workers: 2,
    workerUrl: url.href,
    ...extra,
  });
  const keys = new Map<number, string>();
  for (const { id } of pool.stats().workers) {
    const key = (await Deno.readTextFile(`${dir}/key-${id}`)).trim();
    assert.match(key, /^[0-9a-f]{64}$/);
    keys.set(id, key);
  }
  assert.equal(keys.size, 2);
  assert.notEqual(keys.get(1), keys.get(2), "two workers got the same key");
  return { pool, keys };
}

/** A Hello for `workerId` answering `nonce` with `key`. */
async function hello(
  key: string,
  nonce: Uint8Array,
  workerId: number,
): Promise<Uint8Array> {
  const answer = await proof(key, nonce, workerId);
  return message(helloMessage(workerId, answer, Deno.pid, newNonce()));
}

Deno.test(
  "Pool accepts a worker's key for its own id only, and each id once",
  async () => {
    await using tmp = await tempDir();
    const dir = tmp.path;
    const { pool, keys } = await openRecorded(dir);
    await using _pool = pool;
    const path = await socketPath(pool);
    const before = pool.stats().workers.map((w) => [w.id, w.pid]);
    const key1 = keys.get(1)!;
    const cases: [string, number, RegExp][] = [
      [key1, 1, /unexpected worker id 1\b/], // connected already
      [key1, 2, /worker 2 failed authentication/], // another's id
      [key1, 3, /worker 3 failed authentication/], // the next id
      [keys.get(2)!, 2, /unexpected worker id 2\b/],
    ];
    for (const [key, workerId, reason] of cases) {
      const said = await misbehave(pool, path, async (conn, nonce) => {
        await conn.write(await hello(key, nonce, workerId));
      });
      assert.match(said, reason, `id ${workerId}`);
    }
    assert.deepEqual(
      pool.stats().workers.map((w) => [w.id, w.pid]),
      before,
      "an impostor displaced a worker",
    );
    // Worker 1 leaves; its id is not taken again, even with its key.
    const exited = nextEvent(pool, "workerexit");
    await rejection(pool.apply(() => Deno.exit(3), [], {}));
    await withTimeout(exited, 30_000, "the worker's exit");
    await pool.runOnAll(() => Deno.pid);
    const gone = before.find(([id]) =>
      !pool.stats().workers.some((w) => w.id === id)
    )![0]!;
    const said = await misbehave(pool, path, async (conn, nonce) => {
      await conn.write(await hello(keys.get(gone)!, nonce, gone));
    });
    assert.match(said, new RegExp(`unexpected worker id ${gone}\\b`));
    assert.equal(await pool.run(double, 5), 10);
  },
);

for (
  const [how, reason] of [
    ["unknown-result", /result for unknown task 999999/],
    ["garbage", /undecodable frame/],
    ["oversized", /exceeds the limit of 1048576 bytes/],
    ["not-a-message", /not a protocol message/],
    ["define", /unexpected message type 3\b/],
    ["hello-again", /unexpected message type 20\b/],
  ] as const
) {
  Deno.test(
    `Pool drops an authenticated worker that breaks the protocol (${how}) and replaces it`,
    async () => {
      const dir = await Deno.makeTempDir({ prefix: "distex-test-" });
      const marker = `${dir}/evaluated`;
      try {
        const url = new URL(ROGUE);
        url.searchParams.set("rogue", how);
        url.searchParams.set("victim", "1");
        url.searchParams.set("marker", marker);
        await using pool = leaks.watch(
          new Pool({ workers: 2, workerUrl: url.href, maxFrameBytes: 1 << 20 }),
        );
        const exits: WorkerExit[] = [];
        const dropped = Promise.withResolvers<WorkerExit>();
        pool.addEventListener("workerexit", (e) => {
          const exit = (e as CustomEvent<WorkerExit>).detail;
          exits.push(exit);
          if (exit.workerId === 1) dropped.resolve(exit);
        });
        await pool.ready;
        const exit = await withTimeout(dropped.promise, 30_000, "workerexit");
        assert.match(exit.reason ?? "", /broke the protocol/);
        assert.match(exit.reason ?? "", reason);
        assert.equal(exit.host, "local");
        // Worker 1 was replaced; worker 2 never left.
        const pids = await pool.runOnAll(() => Deno.pid);
        assert.equal(pids.length, 2);
        const ids = pool.stats().workers.map((w) => w.id).sort();
        assert.equal(ids.length, 2);
        assert.equal(ids[0], 2);
        assert.ok(ids[1]! > 2, `worker ids ${ids}`);
        assert.equal(await pool.run(double, 6), 12);
        assert.deepEqual(exits.map((e) => e.workerId), [1]);
        assert.equal(await exists(marker), false, "the pool evaluated a frame");
        assert.equal(pool.stats().lost, 0);
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  );
}

Deno.test(
  "Pool hangs up at once on connections beyond 256 waiting for the handshake, and still takes workers",
  async () => {
    const pool = await leaks.open({ workers: 1 });
    await using _ = closeNow(pool);
    const path = await socketPath(pool);
    const silent: Deno.Conn[] = [];
    try {
      for (let i = 0; i < 256; i++) {
        const conn = await Deno.connect({ transport: "unix", path });
        silent.push(conn);
        await readChallenge(conn);
      }
      const extra = await Deno.connect({ transport: "unix", path });
      silent.push(extra);
      // No challenge: the end, long before the 10 s handshake limit.
      const buffer = new Uint8Array(64);
      const read = await withTimeout(extra.read(buffer), 5_000, "hang-up")
        .catch((error) =>
          error instanceof Deno.errors.ConnectionReset
            ? null
            : Promise.reject(error)
        );
      assert.equal(read, null, "the 257th connection was challenged");
      for (const conn of silent.splice(0)) conn.close();
      await rejection(pool.run(() => Deno.exit(1)));
      assert.equal(await pool.run(double, 4), 8);
    } finally {
      for (const conn of silent) conn.close();
    }
  },
);

Deno.test(
  "Pool's accept loop survives running out of file descriptors (EMFILE) and takes workers again",
  async () => {
    const limit = 96;
    const owner = new Deno.Command("prlimit", {
      args: [
        `--nofile=${limit}:${limit}`,
        Deno.execPath(),
        "run",
        "-A",
        new URL("./fixtures/fd_owner.ts", import.meta.url).href,
      ],
      stdin: "piped",
      stdout: "piped",
      stderr: "null",
    }).spawn();
    const stdin = owner.stdin.getWriter();
    const lines = owner.stdout.pipeThrough(new TextDecoderStream())
      .getReader();
    let text = "";
    const line = async (): Promise<string> => {
      while (!text.includes("\n")) {
        const { value, done } = await lines.read();
        if (done) throw new Error(`the owner ended; it said: ${text}`);
        text += value;
      }
      const at = text.indexOf("\n");
      const first = text.slice(0, at);
      text = text.slice(at + 1);
      return first;
    };
    const conns: Deno.Conn[] = [];
    try {
      const path = await withTimeout(line(), 60_000, "the owner's socket");
      // Connect until the owner has no descriptor left to accept with.
      const fds = () => [...Deno.readDirSync(`/proc/${owner.pid}/fd`)].length;
      for (let i = 0; i < 2 * limit && fds() < limit; i++) {
        conns.push(
          await withTimeout(
            Deno.connect({ transport: "unix", path }),
            10_000,
            "a connection",
          ),
        );
      }
      assert.ok(
        await pollUntil(() => fds() >= limit - 1, 10_000),
        `the owner has ${fds()} descriptors, not ${limit}`,
      );
      for (const conn of conns.splice(0)) conn.close();
      await stdin.write(new TextEncoder().encode("go\n"));
      assert.equal(await withTimeout(line(), 60_000, "the replacement"), "42");
      assert.equal((await owner.status).code, 0);
    } finally {
      for (const conn of conns) conn.close();
      try {
        owner.kill("SIGKILL");
      } catch { /* gone */ }
      await owner.status;
      await stdin.close().catch(() => {});
      await lines.cancel().catch(() => {});
    }
  },
);

// ---- the worker's side ----------------------------------------------------------

/**
 * A worker process whose "pool" is a listener the test plays: the worker has
 * been given a secret and has connected. `touch` is a task that creates
 * `marker` (so a test can tell whether the worker ran it). Disposing kills
 * the worker and removes the directory.
 */
async function workerOfFakePool() {
  const dir = await Deno.makeTempDir({ prefix: "distex-test-" });
  const path = `${dir}/fake.sock`;
  const marker = `${dir}/evaluated`;
  const listener = Deno.listen({ transport: "unix", path });
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", WORKER.href, "--unix", path, "--id", "1"],
    stdin: "piped",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const stdin = child.stdin.getWriter();
  const stderr = new Response(child.stderr).text();
  let conn: Deno.UnixConn | undefined;
  const dispose = async () => {
    try {
      conn?.close();
    } catch { /* the worker hung up */ }
    listener.close();
    try {
      child.kill("SIGKILL");
    } catch { /* already exited */ }
    await child.status;
    await stdin.close().catch(() => {});
    await stderr;
    await Deno.remove(dir, { recursive: true });
  };
  try {
    await stdin.write(new TextEncoder().encode("ab".repeat(32) + "\n"));
    conn = await withTimeout(listener.accept(), 30_000, "the worker");
  } catch (error) {
    await dispose();
    throw error;
  }
  return {
    conn,
    child,
    marker,
    stderr,
    touch: [
      message([
        Op.Define,
        1,
        `() => Deno.writeTextFileSync(${JSON.stringify(marker)}, "")`,
      ]),
      message([Op.Call, 1, 1, []]),
    ],
    [Symbol.asyncDispose]: dispose,
  };
}

Deno.test(
  "A worker runs nothing its pool sends before the handshake is done",
  async () => {
    await using worker = await workerOfFakePool();
    // A fake pool skips the challenge and sends a task at once.
    await worker.conn.write(concat(...worker.touch));
    await withTimeout(hungUp(worker.conn), 30_000, "the worker hanging up");
    const status = await withTimeout(
      worker.child.status,
      30_000,
      "the worker's exit",
    );
    assert.equal(status.code, 1);
    assert.match(await worker.stderr, /before the handshake finished/);
    assert.equal(await exists(worker.marker), false, "the worker ran the task");
  },
);

// ---- files and secrets -------------------------------------------------------

Deno.test("Pool's socket directory is 0700 and its socket 0600", async () => {
  await using pool = await leaks.open({ workers: 1 });
  const path = await socketPath(pool);
  const dir = path.slice(0, path.lastIndexOf("/"));
  const dirStat = await Deno.lstat(dir);
  assert.ok(dirStat.isDirectory);
  assert.equal(dirStat.mode! & 0o777, 0o700);
  assert.equal(dirStat.uid, Deno.uid());
  const sockStat = await Deno.lstat(path);
  assert.ok(sockStat.isSocket, "not a socket");
  assert.equal(sockStat.mode! & 0o777, 0o600);
  assert.equal(sockStat.uid, Deno.uid());
  // Nothing else lives there.
  const entries = [];
  for await (const e of Deno.readDir(dir)) entries.push(e.name);
  assert.deepEqual(entries, ["pool.sock"]);
});

/** Pids of every process below `root`, from /proc. */
function descendants(root: number): number[] {
  const parents = new Map<number, number>();
  for (const entry of Deno.readDirSync("/proc")) {
    const pid = Number(entry.name);
    if (!Number.isInteger(pid)) continue;
    try {
      const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      parents.set(pid, ppid);
    } catch { /* exited meanwhile */ }
  }
  const below: number[] = [];
  for (const pid of parents.keys()) {
    for (
      let p = parents.get(pid);
      p !== undefined && p > 1;
      p = parents.get(p)
    ) {
      if (p === root) {
        below.push(pid);
        break;
      }
    }
  }
  return below;
}

Deno.test(
  "Pool's worker keys are in no command line, environment, error message or event",
  async () => {
    await using tmp = await tempDir();
    const dir = tmp.path;
    const { pool, keys } = await openRecorded(dir, { killGrace: 100 });
    const secrets = [...keys.values()];
    const has = (text: string) => secrets.some((key) => text.includes(key));
    await using _pool = pool;
    const said: string[] = [];
    for (
      const type of [
        "rejected",
        "workerexit",
        "workerstart",
        "error",
      ] as const
    ) {
      pool.addEventListener(type, (e) => {
        said.push(JSON.stringify((e as CustomEvent).detail));
      });
    }
    const workers = pool.stats().workers.map((w) => w.pid);
    const below = descendants(Deno.pid);
    for (const pid of workers) assert.ok(below.includes(pid), `${pid}`);
    let checked = 0;
    for (const pid of [Deno.pid, ...below]) {
      for (const file of ["cmdline", "environ"]) {
        let text: string;
        try {
          text = await Deno.readTextFile(`/proc/${pid}/${file}`);
        } catch {
          continue; // exited meanwhile
        }
        checked++;
        assert.ok(
          !has(text),
          `the secret is in ${pid}'s ${file}`,
        );
      }
    }
    assert.ok(checked >= 2 * (workers.length + 1));
    const ps = await new Deno.Command("ps", {
      args: ["-eo", "pid,args", "ww"],
      stdout: "piped",
      stderr: "null",
    }).output().catch(() => undefined);
    if (ps) {
      assert.ok(!has(new TextDecoder().decode(ps.stdout)));
    }

    // Errors of every kind, and the events around them.
    const path = await socketPath(pool);
    said.push(
      await misbehave(pool, path, async (conn) => {
        await conn.write(badHello(1));
      }),
    );
    const errors = [
      await rejection(pool.run(() => Deno.exit(3))),
      await rejection(pool.apply(
        () => {
          while (true) { /* stuck */ }
        },
        [],
        { timeout: 50 },
      )),
      await rejection(pool.run(() => {
        throw new Error("task error");
      })),
      await rejection(pool.run(() => Symbol("x"))),
      await rejection(
        pool.run({ module: "file:///nonexistent.ts", name: "f" }),
      ),
    ];
    // The stuck worker is killed and replaced.
    await pool.runOnAll(() => Deno.pid);
    for (const error of errors) {
      for (
        const text of [error.message, error.stack ?? "", Deno.inspect(error)]
      ) {
        assert.ok(!has(text), `a key is in: ${text}`);
      }
    }
    assert.ok(said.length >= 3, `events: ${said}`);
    for (const text of said) assert.ok(!has(text), text);
    const views = [
      Deno.inspect(pool, { depth: 10, showHidden: true }),
      JSON.stringify(pool.stats()),
      JSON.stringify(pool),
    ];
    for (const text of views) assert.ok(!has(text), text);
  },
);

// ---- what a sandboxed task can steal ---------------------------------------------

/** A pool of two workers whose tasks may read `dir` and nothing else. */
function readOnlyPool(dir: string): Promise<Pool> {
  return leaks.open({ workers: 2, permissions: [`--allow-read=${dir}`] });
}

Deno.test(
  "A sandboxed task that digs key material out of a heap snapshot cannot connect as any worker",
  async () => {
    await using tmp = await tempDir();
    await using pool = await readOnlyPool(tmp.path);
    const path = await socketPath(pool).catch(() => undefined);
    // socketPath() reads the worker's args; the sandbox denies nothing there.
    assert.ok(path);
    const found = await pool.run(async () => {
      const v8 = await import("node:v8");
      const decoder = new TextDecoder();
      let text = "";
      for await (const chunk of v8.getHeapSnapshot()) {
        text += typeof chunk === "string" ? chunk : decoder.decode(chunk);
      }
      return [...new Set(text.match(/[0-9a-f]{32,128}/g) ?? [])];
    });
    assert.ok(Array.isArray(found));
    const ids = pool.stats().workers.map((w) => w.id);
    const next = Math.max(...ids) + 1;
    // Every candidate, as a key of each worker id in use or about to be.
    for (const candidate of found) {
      for (const workerId of [...ids, next, next + 1]) {
        const said = await misbehave(pool, path, async (conn, nonce) => {
          await conn.write(await hello(candidate, nonce, workerId));
        });
        assert.match(
          said,
          new RegExp(`worker ${workerId} failed authentication`),
          `a string from the task's heap passed as worker ${workerId}'s key`,
        );
      }
    }
    assert.equal(await pool.run(double, 3), 6);
    assert.equal(pool.stats().lost, 0);
  },
);

Deno.test(
  "A sandboxed task can neither remove the pool's socket nor listen on its path",
  async () => {
    await using tmp = await tempDir();
    await using pool = await readOnlyPool(tmp.path);
    const path = await socketPath(pool);
    const tries = await pool.run(async (path: string) => {
      const said: string[] = [];
      try {
        Deno.removeSync(path);
        said.push("removed");
      } catch (error) {
        said.push(`remove: ${(error as Error).name}`);
      }
      try {
        Deno.listen({ transport: "unix", path: `${path}.squat` }).close();
        said.push("listened");
      } catch (error) {
        said.push(`listen: ${(error as Error).name}`);
      }
      try {
        (await Deno.connect({ transport: "unix", path })).close();
        said.push("connected");
      } catch (error) {
        said.push(`connect: ${(error as Error).name}`);
      }
      return said;
    }, path);
    assert.deepEqual(tries, [
      "remove: NotCapable",
      "listen: NotCapable",
      "connect: NotCapable",
    ]);
    assert.ok(await exists(path), "the socket is gone");
    // Replacements still connect.
    await rejection(pool.run(() => Deno.exit(1)));
    assert.equal((await pool.runOnAll(() => Deno.pid)).length, 2);
  },
);

for (const how of ["removes", "squats on"] as const) {
  Deno.test(
    `Pool goes on when a task with write access ${how} its socket: replacements still connect`,
    async () => {
      const pool = await leaks.open({
        workers: 2,
        // A grant wide enough to reach the socket: the worker cannot give
        // it up without giving up all of it.
        permissions: ["--allow-read", "--allow-write", "--allow-net"],
      });
      await using _ = closeNow(pool);
      const path = await socketPath(pool);
      const made = (s: Deno.FileInfo) => `${s.ino}:${s.ctime?.getTime()}`;
      const before = made(await Deno.lstat(path));
      await pool.run(
        (path: string, squat: boolean) => {
          Deno.removeSync(path);
          if (squat) {
            // Listen in the pool's place, for a while after the task returns.
            const listener = Deno.listen({ transport: "unix", path });
            setTimeout(() => listener.close(), 5_000);
          }
        },
        path,
        how === "squats on",
      );
      // The worker whose task did it goes; its replacement must get in.
      await rejection(pool.run(() => Deno.exit(1)));
      await rejection(pool.run(() => Deno.exit(1)));
      const pids = await withTimeout(
        pool.runOnAll(() => Deno.pid),
        60_000,
        "replacement workers",
      );
      assert.equal(pids.length, 2);
      const stat = await Deno.lstat(path);
      assert.ok(stat.isSocket);
      assert.notEqual(made(stat), before, "the socket was not made again");
      assert.equal(await pool.run(double, 21), 42);
    },
  );
}

Deno.test(
  "A worker refuses a listener that does not prove it knows the worker's key, and runs none of its tasks",
  async () => {
    await using worker = await workerOfFakePool();
    const { conn } = worker;
    // A squatter: it challenges, takes the Hello, and welcomes with a
    // made-up proof, then sends a task.
    await conn.write(message([Op.Challenge, PROTOCOL_VERSION, newNonce()]));
    let hi: Message | undefined;
    await readFrames(conn, (m) => {
      hi = m;
      return false;
    });
    assert.equal(hi?.[0], Op.Hello);
    await conn.write(concat(
      message([
        Op.Welcome,
        { statsMs: 0, maxFrameBytes: 1 << 30 },
        new Uint8Array(32),
      ]),
      ...worker.touch,
    ));
    await withTimeout(hungUp(conn), 30_000, "the worker hanging up");
    const status = await withTimeout(worker.child.status, 30_000, "its exit");
    assert.equal(status.code, 1);
    assert.match(await worker.stderr, /not this worker's pool/);
    assert.equal(await exists(worker.marker), false, "the worker ran the task");
  },
);

// ---- the sandbox ----------------------------------------------------------------

Deno.test(
  "Pool with permissions refuses a task's remote imports unless the user grants them",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "distex-test-" });
    // A module server of our own, for the granted case.
    const requests: string[] = [];
    await using server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen: () => {} },
      (request) => {
        requests.push(request.url);
        return new Response("export const answer = 42;", {
          headers: { "content-type": "text/javascript" },
        });
      },
    );
    const origin = `127.0.0.1:${server.addr.port}`;
    try {
      {
        await using pool = await leaks.open({
          workers: 1,
          permissions: [`--allow-read=${dir}`],
        });
        // esm.sh is on Deno's default import allow-list: the import must
        // be refused before any download is tried. Guard first, so that a
        // regression fails here instead of sending traffic off this machine.
        for (const { pid } of pool.stats().workers) {
          const cmdline = await Deno.readTextFile(`/proc/${pid}/cmdline`);
          assert.ok(
            cmdline.split("\0").includes("--no-remote"),
            `worker ${pid} runs without --no-remote: ${cmdline}`,
          );
        }
        const error = await rejection(
          // The specifier is built at run time: a literal one would be
          // fetched by `deno test` itself while it loads this file.
          pool.run(
            (host: string) => import(`https://${host}/x?leak=CONFIDENTIAL`),
            "esm.sh",
          ),
        );
        assert.match(
          error.message,
          /--no-remote is specified|Requires import access/,
          `the import was tried: ${error.message}`,
        );
        const jsr = await rejection(
          pool.run((name: string) => import(`jsr:${name}`), "@std/assert"),
        );
        assert.match(jsr.message, /--no-remote is specified|import access/);
        assert.equal(await pool.run(double, 2), 4);
      }
      {
        await using pool = await leaks.open({
          workers: 1,
          permissions: [`--allow-import=${origin}`, `--allow-net=${origin}`],
          // The module is not to be recorded in the project's lock file.
          denoArgs: ["--no-lock"],
        });
        const answer = await pool.run(
          async (url: string) => (await import(url)).answer,
          // A fresh URL each run: Deno caches remote modules by URL, and a
          // port can come round again.
          `http://${origin}/mod.js?run=${crypto.randomUUID()}`,
        );
        assert.equal(answer, 42);
        assert.equal(requests.length, 1);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

Deno.test(
  "Pool with a blanket permission grant keeps it blanket (the socket's grant does not narrow it)",
  async () => {
    await using tmp = await tempDir();
    const dir = tmp.path;
    await Deno.writeTextFile(`${dir}/file.txt`, "readable");
    for (const permissions of [["--allow-read"], ["-R"], ["-RW"]]) {
      await using pool = await leaks.open({ workers: 1, permissions });
      assert.equal(
        await pool.run(
          (path: string) => Deno.readTextFile(path),
          `${dir}/file.txt`,
        ),
        "readable",
        `${permissions}`,
      );
      // Still a sandbox: what was not granted stays denied.
      const error = await rejection(pool.run(() => Deno.env.get("HOME")));
      assert.equal(error.name, "NotCapable", `${permissions}: ${error}`);
    }
  },
);

Deno.test("security tests leave no worker processes, sockets or temp dirs", async () => {
  await leaks.assertClean();
});
