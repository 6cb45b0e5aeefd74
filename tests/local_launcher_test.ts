/**
 * How LocalLauncher starts a worker process (Linux: read from /proc).
 *
 * @module
 */
import assert from "node:assert/strict";
import { Pool, WorkerLostError } from "../mod.ts";
import { _exitOfShell, _LIFELINE } from "../src/launcher.ts";
import { EXIT_MARK, forwardStdout } from "../src/_task_output.ts";
import { FrameWriter } from "../src/framing.ts";
import { callMessage } from "../src/protocol.ts";
import {
  alive,
  argvOf,
  killAll,
  liveProcesses,
  pollUntil,
  procStat,
  tempDir,
  waitForFile,
  withTimeout,
} from "./_util.ts";

Deno.test({
  name:
    "LocalLauncher: each worker runs in a session and process group of its own, led by the lifeline sh the pool spawned",
  ignore: Deno.build.os !== "linux",
  fn: async () => {
    const pool = await Pool.create(2);
    try {
      const pids = pool.stats().workers.map((w) => w.pid);
      assert.equal(pids.length, 2);
      for (const pid of pids) {
        // Spawned through setsid (when found), which must exec the `sh` in
        // place: a fork would leave the pool watching the wrong process.
        const { ppid: leader } = procStat(pid);
        assert.deepEqual(procStat(pid), {
          ppid: leader,
          pgrp: leader,
          sid: leader,
        });
        assert.deepEqual(procStat(leader), {
          ppid: Deno.pid,
          pgrp: leader,
          sid: leader,
        });
        const sh = argvOf(leader);
        assert.deepEqual(sh.slice(0, 3), ["/bin/sh", "-c", _LIFELINE]);
        const argv = argvOf(pid!);
        assert.equal(argv[0], Deno.execPath());
        // This package's worker, bundled into one file (src/launcher.ts).
        assert.ok(
          argv.some((a) => a.endsWith("/src/_worker_bundle.js")),
          argv.join(" "),
        );
        assert.deepEqual(argv.slice(-3, -1), ["--lifeline", "group"]);
      }
      // Tasks run on them.
      assert.deepEqual(
        await Promise.all([pool.run(() => 1), pool.run(() => 2)]),
        [1, 2],
      );
    } finally {
      await pool.close();
    }
  },
});

Deno.test({
  name:
    "LocalLauncher: a worker script given by URL is the process the pool spawned and leads a session and process group of its own",
  ignore: Deno.build.os !== "linux",
  fn: async () => {
    const workerUrl = new URL("../worker.ts", import.meta.url).href;
    const pool = await Pool.create({ workers: 1, workerUrl });
    try {
      const [pid] = pool.stats().workers.map((w) => w.pid);
      assert.deepEqual(procStat(pid!), { ppid: Deno.pid, pgrp: pid, sid: pid });
      const argv = argvOf(pid!);
      assert.equal(argv[0], Deno.execPath());
      assert.ok(!argv.includes("--lifeline"), argv.join(" "));
      assert.equal(await pool.run(() => 1), 1);
    } finally {
      await pool.close();
    }
  },
});

Deno.test({
  name:
    "LocalLauncher: a pool that may not run setsid spawns its workers detached, each leading a group of its own",
  ignore: Deno.build.os !== "linux",
  fn: async () => {
    const fixture = new URL("./fixtures/setsid_denied.ts", import.meta.url);
    const output = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "--deny-run=/usr/bin/setsid,/bin/setsid",
        fixture.pathname,
      ],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(output.stderr);
    assert.equal(output.code, 0, stderr);
    const report = JSON.parse(new TextDecoder().decode(output.stdout));
    assert.equal(report.setsid, null);
    const { pids, worker } = report;
    assert.deepEqual(pids, [worker.pid]);
    assert.deepEqual(worker, {
      pid: worker.pid,
      pgrp: worker.pid,
      sid: worker.pid,
    });
  },
});

/**
 * Starts `code` (a script) through the lifeline as LocalLauncher starts a
 * worker, with `dir` for its files; the caller writes to `stdin`.
 */
async function throughLifeline(dir: string, code: string) {
  const script = `${dir}/child.ts`;
  await Deno.writeTextFile(script, code);
  const child = new Deno.Command("setsid", {
    args: [
      "/bin/sh",
      "-c",
      _LIFELINE,
      "distex-worker",
      Deno.execPath(),
      "run",
      "-A",
      script,
      dir,
    ],
    stdin: "piped",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  return child;
}

/** Reads the key from stdin, records it and its pid, then does `then`. */
const KEYED_CHILD = (then: string) => `
const dir = Deno.args[0];
const buf = new Uint8Array(200);
let text = "";
while (!text.includes("\\n")) {
  const n = Deno.stdin.readSync(buf);
  if (n === null) break;
  text += new TextDecoder().decode(buf.subarray(0, n));
}
Deno.writeTextFileSync(dir + "/key", text);
Deno.writeTextFileSync(dir + "/pid", String(Deno.pid));
${then}
`;

Deno.test({
  name:
    "LocalLauncher's lifeline hands the worker its key on stdin and exits as the worker did (a signal as 128 + n, read back by _exitOfShell)",
  ignore: Deno.build.os !== "linux",
  fn: async () => {
    for (
      const [then, exit] of [
        ["Deno.exit(3);", { code: 3 }],
        ['Deno.kill(Deno.pid, "SIGTERM");', { signal: "SIGTERM" }],
      ] as const
    ) {
      await using dir = await tempDir();
      const child = await throughLifeline(dir.path, KEYED_CHILD(then));
      const writer = child.stdin.getWriter();
      await writer.write(new TextEncoder().encode("00ff".repeat(16) + "\n"));
      const status = await withTimeout(child.status, 30_000, "the worker");
      await writer.close().catch(() => {});
      await child.stderr.cancel();
      // The key, and nothing after it; stdin stays the pool's.
      assert.equal(
        await Deno.readTextFile(`${dir.path}/key`),
        "00ff".repeat(16) + "\n",
      );
      assert.deepEqual(
        _exitOfShell({
          code: status.signal ? undefined : status.code,
          signal: status.signal ?? undefined,
        }),
        { code: undefined, signal: undefined, ...exit },
      );
    }
  },
});

Deno.test({
  name:
    "LocalLauncher's lifeline kills the worker's whole group when the pool's end of stdin closes, with or without the key",
  ignore: Deno.build.os !== "linux",
  fn: async () => {
    for (const key of [true, false]) {
      await using dir = await tempDir();
      // With its key, the worker spins; without, it waits for it.
      const child = await throughLifeline(
        dir.path,
        KEYED_CHILD("while (true) { /* spins */ }"),
      );
      let pids: number[] = [];
      try {
        const writer = child.stdin.getWriter();
        if (key) {
          await writer.write(new TextEncoder().encode("ab".repeat(32) + "\n"));
          const file = `${dir.path}/pid`;
          await withTimeout(waitForFile(file, 0), 30_000, "the worker");
          pids = [Number(await Deno.readTextFile(file))];
        }
        pids.push(child.pid);
        await writer.close();
        const status = await withTimeout(child.status, 30_000, "the group");
        assert.equal(status.signal, "SIGKILL");
        assert.ok(
          await pollUntil(async () => (await alive(pids)).length === 0, 20_000),
          `left running: ${await alive(pids)}`,
        );
        // Nobody else of the group is left either (zombies aside).
        assert.ok(
          await pollUntil(
            () => liveProcesses((s) => s.pgrp === child.pid).length === 0,
            20_000,
          ),
          `left of the group: ${liveProcesses((s) => s.pgrp === child.pid)}`,
        );
      } finally {
        await killAll(pids);
        try {
          Deno.kill(-child.pid, "SIGKILL");
        } catch { /* gone */ }
        await child.stderr.cancel().catch(() => {});
        await child.status;
      }
    }
  },
});

Deno.test({
  name:
    "A local worker that exits with a code above 128 is reported with its code, not as killed by a signal; a signal still as a signal",
  ignore: Deno.build.os !== "linux",
  fn: async () => {
    await using pool = new Pool({ workers: 1, stdout: "capture" });
    const lines: string[] = [];
    pool.addEventListener("stdout", (e) => lines.push(e.detail.line));
    const exitOf = async (fn: () => unknown) => {
      const error = await pool.run(fn).then(() => undefined, (e) => e);
      assert.ok(error instanceof WorkerLostError, String(error));
      const { code, signal } = error.exits[error.exits.length - 1]!;
      return { code, signal };
    };
    // (At 7055169 as it is here; through the lifeline's sh, whose `wait`
    // gives 128 + n for signal n, it read as SIGKILL.)
    assert.deepEqual(await exitOf(() => Deno.exit(137)), {
      code: 137,
      signal: undefined,
    });
    // A line left open on stdout: the worker's word on its code follows it.
    assert.deepEqual(
      await exitOf(() => {
        Deno.stdout.writeSync(new TextEncoder().encode("no newline"));
        Deno.exitCode = 143;
        Deno.exit();
      }),
      { code: 143, signal: undefined },
    );
    assert.deepEqual(lines, ["no newline"]);
    assert.deepEqual(await exitOf(() => Deno.kill(Deno.pid, "SIGKILL")), {
      code: undefined,
      signal: "SIGKILL",
    });
    assert.equal(await pool.run(() => 7), 7);
  },
});

Deno.test("_exitOfShell reads a code above 128 as a signal unless the worker told that very code; forwardStdout takes the worker's word out of its output", async () => {
  assert.deepEqual(_exitOfShell({ code: 137 }, 137), { code: 137 });
  assert.deepEqual(_exitOfShell({ code: 137 }), {
    code: undefined,
    signal: "SIGKILL",
  });
  assert.deepEqual(_exitOfShell({ code: 137 }, 130), {
    code: undefined,
    signal: "SIGKILL",
  });
  assert.deepEqual(_exitOfShell({ code: 3 }), { code: 3 });
  const read = async (...chunks: string[]) => {
    const lines: string[] = [];
    const told = await forwardStdout(
      ReadableStream.from(chunks.map((c) => new TextEncoder().encode(c))),
      1,
      (_id, line) => lines.push(line),
    );
    return { lines, told };
  };
  assert.deepEqual(await read("a\nb", `c${EXIT_MARK}1`, "37"), {
    lines: ["a", "bc"],
    told: 137,
  });
  assert.deepEqual(await read("a\n", `${EXIT_MARK}200`), {
    lines: ["a"],
    told: 200,
  });
  // Not at the end, or not a code: output like any other.
  const { lines, told } = await read(`${EXIT_MARK}137\nx`, `${EXIT_MARK}1x`);
  assert.equal(told, undefined);
  assert.equal(lines.length, 2);
});

/**
 * Spawns this package's worker (`worker.ts`) through the lifeline as a pool
 * does, to connect to `path`, and writes its key.
 */
async function workerThroughLifeline(path: string): Promise<{
  child: Deno.ChildProcess;
  stdin: WritableStreamDefaultWriter<Uint8Array>;
  stderr: Promise<string>;
}> {
  const child = new Deno.Command("setsid", {
    args: [
      "/bin/sh",
      "-c",
      _LIFELINE,
      "distex-worker",
      Deno.execPath(),
      "run",
      "-A",
      new URL("../worker.ts", import.meta.url).pathname,
      "--unix",
      path,
      "--id",
      "1",
      "--lifeline",
      "group",
    ],
    stdin: "piped",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const stdin = child.stdin.getWriter();
  const stderr = new Response(child.stderr).text();
  await stdin.write(new TextEncoder().encode(`${"ab".repeat(32)}\n`));
  return { child, stdin, stderr };
}

/** Ends what {@link workerThroughLifeline} started; resolves its stderr. */
async function endLifeline(
  started: Awaited<ReturnType<typeof workerThroughLifeline>>,
): Promise<{ status: Deno.CommandStatus; said: string }> {
  await started.stdin.close().catch(() => {});
  const timer = setTimeout(() => killAll([started.child.pid]), 20_000);
  const status = await started.child.status;
  clearTimeout(timer);
  return { status, said: await started.stderr };
}

Deno.test({
  name:
    "A worker in its handshake when the pool closes ends quietly (no 'Connection reset by peer' on the owner's stderr); a listener that breaks the protocol is still reported",
  ignore: Deno.build.os !== "linux",
  fn: async () => {
    await using dir = await tempDir();
    const path = `${dir.path}/s`;
    // As a closing pool does: it stops listening (a worker connected but
    // not yet accepted gets a reset), then closes the lifelines. Under load
    // the two are hundreds of ms apart: seen as a stray error line after
    // `await using pool = new Pool(8)` in 4 of 8 loaded runs.
    let listener = Deno.listen({ transport: "unix", path });
    let started = await workerThroughLifeline(path);
    let ended;
    try {
      // Connected, not accepted: a second entry with the socket's path.
      const pending = () =>
        Deno.readTextFileSync("/proc/net/unix").split("\n")
          .filter((l) => l.endsWith(` ${path}`)).length >= 2;
      assert.ok(await pollUntil(pending, 30_000), "the worker never connected");
      listener.close();
      // The pool's gap between the two (not a gate: the worker must stay
      // quiet through it, or it said something and ended).
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        started.stderr,
        new Promise((resolve) => timer = setTimeout(resolve, 300)),
      ]);
      clearTimeout(timer);
    } finally {
      try {
        listener.close();
      } catch { /* closed above */ }
      ended = await endLifeline(started);
    }
    assert.equal(ended.said, "");
    // Its lifeline's SIGKILL ended it, and the worker said nothing.
    assert.equal(ended.status.signal, "SIGKILL");

    // A listener that is no pool (a task before the challenge): reported at
    // once, as the worker's own exit, with the lifeline still open.
    const other = `${dir.path}/t`;
    listener = Deno.listen({ transport: "unix", path: other });
    started = await workerThroughLifeline(other);
    let conn: Deno.Conn | undefined;
    try {
      conn = await listener.accept();
      new FrameWriter(conn, () => {}).send(callMessage("call", 1, 1, []));
      const timer = setTimeout(() => killAll([started.child.pid]), 30_000);
      await started.child.status;
      clearTimeout(timer);
    } finally {
      conn?.close();
      listener.close();
      ended = await endLifeline(started);
    }
    assert.match(ended.said, /before the handshake finished/);
    assert.equal(ended.status.code, 1);
  },
});
