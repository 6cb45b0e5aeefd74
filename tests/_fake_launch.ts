/**
 * Fakes for driving the launch supervisor and the worker fleet without
 * processes: a clock whose timers fire only when the test advances it, and
 * launchers whose launches end, crash or connect their workers (over
 * in-memory channels) when the test says so.
 *
 * @module
 */
import { workerKey } from "../src/auth.ts";
import { FrameWriter } from "../src/framing.ts";
import { readFrames } from "../src/frame_reader.ts";
import { answerChallenge, welcomeSettings } from "../src/handshake.ts";
import type { Timer, Timers } from "../src/launch_supervisor.ts";
import type {
  Endpoint,
  Launch,
  Launcher,
  LaunchExit,
} from "../src/launcher.ts";
import { Op, resultMessage } from "../src/protocol.ts";
import { channelPair, type MemoryChannel } from "./_wire.ts";

interface FakeTimer {
  at: number;
  ms: number;
  fn: () => void;
  refd: boolean;
}

/** Timers that fire only in {@link FakeClock.advance}, in time order. */
export class FakeClock implements Timers {
  /** The fake time (ms since the clock was made). */
  now = 0;
  #timers = new Map<number, FakeTimer>();
  #next = 1;

  setTimeout(fn: () => void, ms: number): Timer {
    const id = this.#next++;
    this.#timers.set(id, { at: this.now + ms, ms, fn, refd: true });
    return id;
  }

  clearTimeout(timer: Timer | undefined): void {
    this.#timers.delete(timer as number);
  }

  ref(timer: Timer, on: boolean): void {
    const t = this.#timers.get(timer as number);
    if (t) t.refd = on;
  }

  /** The delays (ms) of the timers not yet fired or cleared, oldest first. */
  pending(): number[] {
    return [...this.#timers.values()].map((t) => t.ms);
  }

  /** Whether each pending timer keeps the program alive, oldest first. */
  refs(): boolean[] {
    return [...this.#timers.values()].map((t) => t.refd);
  }

  /** Moves time on by `ms`, firing the timers due meanwhile in order. */
  advance(ms: number): void {
    const end = this.now + ms;
    for (;;) {
      let due: [number, FakeTimer] | undefined;
      for (const entry of this.#timers) {
        if (entry[1].at <= end && (!due || entry[1].at < due[1].at)) {
          due = entry;
        }
      }
      if (!due) break;
      this.#timers.delete(due[0]);
      this.now = due[1].at;
      due[1].fn();
    }
    this.now = end;
  }
}

/** What a fake worker answers to a call: its value, or a promise of it. */
export type CallHandler = (
  call: { workerId: number; op: number; fnId: number; args: unknown[] },
) => unknown;

/** The worker's end of a fake worker connection. */
export interface FakeWorker {
  readonly id: number;
  /** Resolves when the pool welcomed it. */
  readonly welcomed: Promise<void>;
  /** Resolves when its connection has ended. */
  readonly ended: Promise<void>;
  /** Hangs up (the worker "exits" without its launch ending). */
  close(): void;
}

/**
 * Runs a worker's side of a connection on `channel`: the handshake, then an
 * answer (from `onCall`) to every call; definitions are taken silently.
 */
function runWorker(
  channel: MemoryChannel,
  secret: string,
  id: number,
  onCall: CallHandler,
): FakeWorker {
  const welcomed = Promise.withResolvers<void>();
  const writer = new FrameWriter(channel, () => {});
  const answer = (op: number, taskId: number, fnId: number, args: unknown[]) =>
    Promise.resolve(onCall({ workerId: id, op, fnId, args })).then(
      (value) => writer.send(resultMessage(taskId, value, 1)),
      () => {},
    );
  const ended = (async () => {
    try {
      const expected = await answerChallenge(
        channel,
        writer,
        await workerKey(secret, id),
        id,
      );
      await readFrames(channel, (m) => {
        const op = m[0] as number;
        if (op === Op.Welcome) {
          welcomeSettings(m, expected);
          welcomed.resolve();
        } else if (op === Op.Call || op === Op.Init) {
          const [, taskId, fnId, args] = m as [number, number, number, []];
          answer(op, taskId, fnId, args);
        } else if (op === Op.Calls) {
          const [, fnId, taskIds, argsList] = m as [
            number,
            number,
            number[],
            unknown[][],
          ];
          taskIds.forEach((taskId, i) =>
            answer(Op.Call, taskId, fnId, argsList[i]!)
          );
        }
      });
    } catch { /* the connection ended */ }
    welcomed.reject(new Error(`worker ${id} was not welcomed`));
  })();
  welcomed.promise.catch(() => {});
  return {
    id,
    welcomed: welcomed.promise,
    ended,
    close: () => channel.close(),
  };
}

/** A launch that ends when the test (or the supervisor) says so. */
export class FakeLaunch implements Launch {
  readonly host: string;
  readonly respawns: boolean;
  /** The worker ids it was launched with. */
  readonly ids: number[];
  readonly endpoint: Endpoint;
  /** Whether its lifeline was closed ({@link stop}). */
  stopped = false;
  /** Signals it was killed with. */
  readonly kills: string[] = [];
  /** Workers it was asked to kill where they run. */
  readonly killedWorkers: number[] = [];
  /** Every `ref()` call's argument, in order. */
  readonly refs: boolean[] = [];
  /** Its connected workers, by id. */
  readonly workers = new Map<number, FakeWorker>();
  #exit = Promise.withResolvers<LaunchExit>();
  #ended = false;
  #exitOnStop: boolean;
  #onCall: CallHandler;

  constructor(
    launcher: FakeLauncher,
    ids: number[],
    endpoint: Endpoint,
  ) {
    this.host = launcher.host;
    this.respawns = launcher.respawns;
    this.ids = ids;
    this.endpoint = endpoint;
    this.#exitOnStop = launcher.exitOnStop;
    this.#onCall = (call) => launcher.onCall(call);
  }

  get exited(): Promise<LaunchExit> {
    return this.#exit.promise;
  }

  /** Whether it has exited. */
  get ended(): boolean {
    return this.#ended;
  }

  stderrTail(): string[] {
    return [`stderr of ${this.ids}`];
  }

  stop(): Promise<void> {
    this.stopped = true;
    if (this.#exitOnStop) this.exit({ code: 0 });
    return Promise.resolve();
  }

  kill(signal: Deno.Signal = "SIGKILL"): void {
    this.kills.push(signal);
    this.exit({ signal });
  }

  killWorker(id: number): void {
    this.killedWorkers.push(id);
  }

  failure(exit: LaunchExit, timeoutMs?: number): Error {
    return new Error(
      `fake launch of ${this.ids} ended (${JSON.stringify(exit)})` +
        (timeoutMs === undefined ? "" : ` after a ${timeoutMs} ms timeout`),
    );
  }

  ref(on: boolean): void {
    this.refs.push(on);
  }

  /**
   * Connects worker `id` to the pool (once per call: a respawning launch's
   * worker may connect again after it was lost).
   * @returns The worker, once the pool welcomed it.
   */
  async connect(id: number): Promise<FakeWorker> {
    const [poolEnd, workerEnd] = channelPair();
    const worker = runWorker(workerEnd, this.endpoint.secret, id, this.#onCall);
    this.workers.set(id, worker);
    this.endpoint.accept(poolEnd);
    await worker.welcomed;
    return worker;
  }

  /** Connects all its workers. */
  async connectAll(): Promise<FakeWorker[]> {
    return await Promise.all(this.ids.map((id) => this.connect(id)));
  }

  /** The process exits with `exit`, its workers' connections with it. */
  exit(exit: LaunchExit): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#exit.resolve(exit);
    for (const worker of this.workers.values()) worker.close();
  }
}

/** How a {@link FakeLauncher}'s launches behave. */
export interface FakeLauncherOptions {
  /** `"local"` or a host name. @default {"local"} */
  host?: string;
  /** Workers per launch. @default {1} */
  groupSize?: number;
  /** Its launches restart their own workers (a host's supervisor). */
  respawns?: boolean;
  /** Its launches exit when their lifeline is closed. @default {true} */
  exitOnStop?: boolean;
}

/** A launcher of {@link FakeLaunch}es that the test drives. */
export class FakeLauncher implements Launcher {
  readonly host: string;
  readonly groupSize: number;
  readonly respawns: boolean;
  readonly exitOnStop: boolean;
  /** Every launch made, in order. */
  readonly launches: FakeLaunch[] = [];
  /** Thrown by the next `launch()` instead of launching, if set. */
  throwNext: Error | undefined;
  /** What its workers answer to calls (default: undefined at once). */
  onCall: CallHandler = () => undefined;
  #waiters: { count: number; resolve: (l: FakeLaunch) => void }[] = [];

  constructor(options: FakeLauncherOptions = {}) {
    this.host = options.host ?? "local";
    this.groupSize = options.groupSize ?? 1;
    this.respawns = options.respawns ?? false;
    this.exitOnStop = options.exitOnStop ?? true;
  }

  launch(ids: number[], endpoint: Endpoint): Launch {
    const error = this.throwNext;
    if (error) {
      this.throwNext = undefined;
      throw error;
    }
    const launch = new FakeLaunch(this, ids, endpoint);
    this.launches.push(launch);
    this.#waiters = this.#waiters.filter((w) => {
      if (this.launches.length < w.count) return true;
      w.resolve(this.launches[w.count - 1]!);
      return false;
    });
    return launch;
  }

  /** Resolves with its `n`th launch (1-based) once it has been made. */
  launched(n: number): Promise<FakeLaunch> {
    const made = this.launches[n - 1];
    if (made) return Promise.resolve(made);
    const { promise, resolve } = Promise.withResolvers<FakeLaunch>();
    this.#waiters.push({ count: n, resolve });
    return promise;
  }
}
