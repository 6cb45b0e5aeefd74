/**
 * Small helpers shared by the test files.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { Pool, PoolEventMap } from "../mod.ts";
import { LineReader } from "../src/_lines.ts";

/** The error `promise` rejects with; fails the test when it resolves. */
export async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof Error, `expected an Error, got ${error}`);
    return error;
  }
  assert.fail("expected the promise to reject, but it resolved");
}

/**
 * `promise`, or a rejection naming `what` if it has not settled after `ms`.
 * Turns a hang into a failing test; the timer is always cleared.
 */
export async function withTimeout<T>(
  promise: Promise<T>,
  ms: number,
  what: string,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${what} did not settle within ${ms} ms`)),
      ms,
    );
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Tracks whether a promise has settled (without leaving it unhandled). */
export function track(promise: Promise<unknown>): { settled: boolean } {
  const state = { settled: false };
  promise.then(
    () => state.settled = true,
    () => state.settled = true,
  );
  return state;
}

/** Lets every queued microtask (and their follow-ups) run. */
export async function flushMicrotasks(rounds = 10): Promise<void> {
  for (let i = 0; i < rounds; i++) await Promise.resolve();
}

/**
 * True when no live process has this pid: /proc has no entry, or the
 * process is a zombie (dead, only waiting to be reaped).
 */
export async function isGone(pid: number): Promise<boolean> {
  let stat: string;
  try {
    stat = await Deno.readTextFile(`/proc/${pid}/stat`);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return true;
    throw error;
  }
  // The state follows the command name, which is in parentheses.
  return stat.slice(stat.lastIndexOf(")") + 2)[0] === "Z";
}

/**
 * Polls `condition` every 20 ms until it holds or `ms` pass; returns whether
 * it held. For waiting on other processes, not for ordering events.
 */
export async function pollUntil(
  condition: () => boolean | Promise<boolean>,
  ms: number,
): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await condition()) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * For `await using`: closes `pool` without waiting for its tasks, so a test
 * that fails with tasks stuck in the pool ends instead of hanging in close().
 */
export function closeNow(
  pool: { close(options: { wait: boolean }): Promise<void> },
): AsyncDisposable {
  return { [Symbol.asyncDispose]: () => pool.close({ wait: false }) };
}

/** Whether `path` exists (a dangling symlink counts). */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

/**
 * A task for a worker process: resolves to `value` once `path` exists,
 * looking every 10 ms. The other half of {@linkcode fileGate}; it is
 * self-contained, so it can be sent to a worker.
 */
export async function waitForFile<T>(path: string, value: T): Promise<T> {
  for (;;) {
    try {
      await Deno.lstat(path);
      return value;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }
}

/** A gate between a test and a task in another process; see {@linkcode fileGate}. */
export interface FileGate extends AsyncDisposable {
  /** The file a task waits for, e.g. with {@linkcode waitForFile}. */
  readonly path: string;
  /** Opens the gate: creates the file. */
  open(): Promise<void>;
}

/**
 * A gate for a task that runs in a worker process: the task waits until the
 * test calls `open()` (`pool.apply(waitForFile, [gate.path, "late"])`), so
 * "the task is still running" holds for as long as the test needs, on any
 * machine. Disposing removes the gate's temp dir.
 */
export async function fileGate(): Promise<FileGate> {
  const dir = await Deno.makeTempDir({ prefix: "distex-gate-" });
  const path = `${dir}/open`;
  return {
    path,
    open: () => Deno.writeTextFile(path, ""),
    [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }),
  };
}

/**
 * The detail of the next `type` event of `pool` that `accept` accepts (the
 * listener is removed once it has one).
 */
export function nextEvent<K extends keyof PoolEventMap>(
  pool: Pool,
  type: K,
  accept: (detail: PoolEventMap[K]["detail"]) => boolean = () => true,
): Promise<PoolEventMap[K]["detail"]> {
  const { promise, resolve } = Promise.withResolvers<
    PoolEventMap[K]["detail"]
  >();
  const listener = (event: PoolEventMap[K]) => {
    if (!accept(event.detail)) return;
    pool.removeEventListener(type, listener);
    resolve(event.detail);
  };
  pool.addEventListener(type, listener);
  return promise;
}

/** The first line of `stream` ("" when it ends without one); the rest is cancelled. */
export async function firstLine(
  stream: ReadableStream<Uint8Array>,
): Promise<string> {
  const lines = new LineReader(stream);
  try {
    return (await lines.next()) ?? "";
  } finally {
    await lines.cancel();
  }
}

/** A temp dir that a child process uses as its TMPDIR; see {@linkcode childTemp}. */
export interface ChildTemp extends AsyncDisposable {
  /** The directory. */
  readonly path: string;
  /** `{ TMPDIR: path }`, for the child's `env`. */
  readonly env: { TMPDIR: string };
  /** The names of what is in the directory now. */
  names(): Promise<string[]>;
}

/**
 * A temp dir for a child process that a test may kill with SIGKILL (a pool
 * owner, a remote supervisor): start the child with `env: tmp.env`, so the
 * temp dirs it and its workers make (a pool's socket directory, a relay's
 * link directory) land in here, where no cleanup of theirs can run after a
 * SIGKILL. Disposing removes the directory with all of it.
 */
export async function childTemp(): Promise<ChildTemp> {
  const dir = await tempDir();
  return {
    ...dir,
    env: { TMPDIR: dir.path },
    names: async () =>
      (await Array.fromAsync(Deno.readDir(dir.path))).map((e) => e.name)
        .sort(),
  };
}

/** A fresh temp dir for a test; disposing removes it with all it holds. */
export async function tempDir(
  prefix = "distex-test-",
): Promise<{ readonly path: string } & AsyncDisposable> {
  const path = await Deno.makeTempDir({ prefix });
  return {
    path,
    [Symbol.asyncDispose]: () => Deno.remove(path, { recursive: true }),
  };
}

/** The pids of `pids` still running (zombies count as gone). */
export async function alive(pids: number[]): Promise<number[]> {
  const left: number[] = [];
  for (const pid of pids) if (!await isGone(pid)) left.push(pid);
  return left;
}

/** Fields of a process's /proc/<pid>/stat (Linux). */
export interface ProcStat {
  ppid: number;
  pgrp: number;
  sid: number;
}

/** /proc/<pid>/stat after the command's name: state, then the fields. */
function readStat(pid: number): ProcStat & { state: string } {
  const text = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const f = text.slice(text.lastIndexOf(")") + 2).split(" ");
  return {
    state: f[0]!,
    ppid: Number(f[1]),
    pgrp: Number(f[2]),
    sid: Number(f[3]),
  };
}

/** The parent, process group and session of `pid` (Linux). */
export function procStat(pid: number): ProcStat {
  const { ppid, pgrp, sid } = readStat(pid);
  return { ppid, pgrp, sid };
}

/** The command line `pid` runs (Linux). */
export function argvOf(pid: number): string[] {
  return Deno.readTextFileSync(`/proc/${pid}/cmdline`).split("\0");
}

/** The pids of the processes, zombies aside, whose stat matches (Linux). */
export function liveProcesses(where: (stat: ProcStat) => boolean): number[] {
  const pids: number[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    const pid = Number(entry.name);
    if (!Number.isInteger(pid)) continue;
    try {
      const stat = readStat(pid);
      if (stat.state !== "Z" && where(stat)) pids.push(pid);
    } catch { /* exited meanwhile */ }
  }
  return pids;
}

/** SIGKILLs every pid of `pids` still running (test clean-up). */
export async function killAll(pids: number[]): Promise<void> {
  for (const pid of await alive(pids)) {
    try {
      Deno.kill(pid, "SIGKILL");
    } catch { /* exited meanwhile */ }
  }
}

/** A pool owner run by a test; see {@linkcode startOwner}. */
export interface Owner<T> extends AsyncDisposable {
  readonly child: Deno.ChildProcess;
  /** Its TMPDIR: where its pool's socket directory is. */
  readonly tmp: ChildTemp;
  /** The first line it printed, parsed as JSON. */
  readonly said: T;
  /** Sends it `signal` and waits for it to exit. */
  end(signal: Deno.Signal): Promise<Deno.CommandStatus>;
}

/**
 * Runs `deno run -A <fixture> <args>` (a pool owner the test may kill) with
 * a TMPDIR of its own ({@linkcode childTemp}), and waits for the first line
 * it prints. Disposing kills it if it still runs, then removes its TMPDIR.
 */
export async function startOwner<T>(
  fixture: URL,
  args: string[] = [],
): Promise<Owner<T>> {
  const tmp = await childTemp();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", fixture.href, ...args],
    env: tmp.env,
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  let exited = false;
  const end = async (signal: Deno.Signal) => {
    if (!exited) {
      try {
        child.kill(signal);
      } catch { /* exited meanwhile */ }
    }
    const status = await child.status;
    exited = true;
    return status;
  };
  const dispose = async () => {
    if (!exited) await end("SIGKILL");
    await tmp[Symbol.asyncDispose]();
  };
  try {
    const line = await withTimeout(
      firstLine(child.stdout),
      60_000,
      `the first line of ${fixture.pathname}`,
    );
    return {
      child,
      tmp,
      said: JSON.parse(line) as T,
      end,
      [Symbol.asyncDispose]: dispose,
    };
  } catch (error) {
    await dispose();
    throw error;
  }
}

/** JavaScript's built-in error classes (the ones errors keep across the wire). */
export const BUILTIN_ERRORS: (new (message?: string) => Error)[] = [
  Error,
  TypeError,
  RangeError,
  SyntaxError,
  ReferenceError,
  EvalError,
  URIError,
];

/**
 * Asserts that `fn` throws an error of exactly `Class` (not a subclass) whose
 * message matches `message`, and returns it. `what` names the call.
 */
export function throwsExactly(
  fn: () => unknown,
  Class: new (message?: string) => Error,
  message: RegExp,
  what = "the call",
): Error {
  try {
    fn();
  } catch (error) {
    assert.equal(
      Object.getPrototypeOf(error),
      Class.prototype,
      `${what} threw ${error}, not a ${Class.name}`,
    );
    assert.match((error as Error).message, message, what);
    return error as Error;
  }
  assert.fail(`${what} should throw`);
}

/**
 * A small seeded generator (mulberry32): the same seed gives the same values
 * on every run, so a random test that fails can be replayed by its seed.
 */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
