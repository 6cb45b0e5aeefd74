/**
 * Launch groups: one launcher and its current launch (one local worker, or
 * one host's workers). The supervisor starts them, gives each launch a start
 * timeout, restarts one that ends (with backoff when it keeps failing, and a
 * `hostLost` for a host that was up), knows which worker ids it expects to
 * connect, and stops workers and launches.
 *
 * @module
 */
import { backoffMs } from "./_backoff.ts";
import type { Endpoint, Launch, Launcher, LaunchExit } from "./launcher.ts";

/**
 * The timers the supervisor and the fleet use: the real ones by default, a
 * fake clock in tests (a timer is only ever an opaque number to them).
 */
export interface Timers {
  /** Calls `fn` after `ms`; returns the timer. */
  setTimeout(fn: () => void, ms: number): Timer;
  /** Cancels a timer (undefined or fired: nothing happens). */
  clearTimeout(timer: Timer | undefined): void;
  /** Whether a timer keeps the program alive. */
  ref(timer: Timer, on: boolean): void;
}

/** A timer of {@link Timers}: opaque. */
export type Timer = unknown;

/** The runtime's timers. */
export const REAL_TIMERS: Timers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (timer) => clearTimeout(timer as number),
  ref: (timer, on) =>
    on ? Deno.refTimer(timer as number) : Deno.unrefTimer(timer as number),
};

/** How long (ms) {@link LaunchSupervisor.lost} waits for a process to exit. */
export const LOST_EXIT_MS = 1_000;
/** How long (ms) {@link LaunchSupervisor.stop} waits before it kills. */
export const STOP_KILL_MS = 2_000;
/**
 * How long (ms) {@link LaunchSupervisor.stop} lets workers it told to end
 * exit by themselves before it closes their lifeline (which ends them).
 */
export const STOP_GRACE_MS = 1_000;

/** One launcher and its current launch. */
interface Group {
  launcher: Launcher;
  launch: Launch | undefined;
  ids: number[];
  failures: number;
  down: boolean;
  /** Ids of the current launch that have connected at least once. */
  connected: Set<number>;
  /** The current launch's startTimeout timer, until all its ids connected. */
  startTimer?: Timer;
}

/** How a lost worker's process ended, as far as its launch can tell. */
export interface WorkerEnd extends LaunchExit {
  /** `"local"` or its host. */
  host: string;
  /** Its launch's last stderr lines. */
  stderr: string[] | undefined;
}

/** What the supervisor asks of the pool. */
export interface SupervisorHooks {
  /** Whether workers are being started and replaced. */
  running(): boolean;
  /**
   * A launch failed to start its workers. Return true to try again with
   * backoff, false to give up (the pool fails).
   */
  failed(error: unknown): boolean;
  /** A host that was up went away; it is relaunched with backoff. */
  hostLost(host: string, exit: LaunchExit): void;
  /** `totalWorkers` changed (a host went down or came back). */
  changed(): void;
}

/** Starts, restarts and stops the pool's launches. */
export class LaunchSupervisor {
  #groups: Group[];
  #hooks: SupervisorHooks;
  #startTimeout: number;
  #endpoint: Endpoint | undefined;
  #nextWorkerId = 1;
  /** Ids launched and not yet connected, with their group. */
  #expected = new Map<number, Group>();
  /**
   * Connected workers' groups, with the launch that started each: by the
   * time a worker's loss is told, its group may run a replacement launch.
   */
  #members = new Map<number, { group: Group; launch: Launch | undefined }>();
  /** Restart timers waiting for their backoff. */
  #timers = new Set<Timer>();
  #clock: Timers;
  #pending = new Set<Promise<unknown>>();
  /** Whether launches and timers keep the program alive (see setRef). */
  #refd = true;

  /**
   * @param launchers One per group (a local worker, or a host).
   * @param startTimeout ms until a launch's workers must have connected.
   * @param hooks What to ask of the pool.
   * @param clock Its timers (a fake clock in tests).
   */
  constructor(
    launchers: Launcher[],
    startTimeout: number,
    hooks: SupervisorHooks,
    clock: Timers = REAL_TIMERS,
  ) {
    this.#clock = clock;
    this.#groups = launchers.map((launcher) => ({
      launcher,
      launch: undefined,
      ids: [],
      failures: 0,
      down: false,
      connected: new Set(),
    }));
    this.#startTimeout = startTimeout;
    this.#hooks = hooks;
  }

  /** Workers asked for, all hosts up. */
  get targetWorkers(): number {
    let n = 0;
    for (const g of this.#groups) n += g.launcher.groupSize;
    return n;
  }

  /** Workers of the groups that are not down. */
  get totalWorkers(): number {
    let n = 0;
    for (const g of this.#groups) if (!g.down) n += g.launcher.groupSize;
    return n;
  }

  /** Launches every group; workers connect to `endpoint`. */
  start(endpoint: Endpoint): void {
    this.#endpoint = endpoint;
    for (const group of this.#groups) this.#launch(group);
  }

  /**
   * A worker passed the handshake: takes it off the expected list.
   * @throws {Error} for an id that is not expected (or already connected).
   */
  claim(workerId: number): void {
    const group = this.#expected.get(workerId);
    if (!group || this.#members.has(workerId)) {
      throw new Error(`unexpected worker id ${workerId}`);
    }
    this.#expected.delete(workerId);
    this.#members.set(workerId, { group, launch: group.launch });
    group.connected.add(workerId);
    if (group.connected.size >= group.ids.length) {
      this.#clock.clearTimeout(group.startTimer);
      group.startTimer = undefined;
    }
  }

  /**
   * Whether the launches (their processes and pipes) and the restart timers
   * keep this program alive. An idle pool turns it off, so a pool that is
   * never closed does not hold the program; its workers still end with it
   * (their lifeline is this process).
   */
  setRef(on: boolean): void {
    if (this.#refd === on) return;
    this.#refd = on;
    for (const group of this.#groups) group.launch?.ref?.(on);
    for (const timer of this.#timers) this.#refTimer(timer);
  }

  #refTimer(timer: Timer): void {
    this.#clock.ref(timer, this.#refd);
  }

  /** The host of a connected worker. */
  hostOf(workerId: number): string {
    return this.#members.get(workerId)?.group.launcher.host ?? "local";
  }

  /** A worker is initialised: its group works (and its host is up). */
  ready(workerId: number): void {
    const group = this.#members.get(workerId)?.group;
    if (!group) return;
    group.failures = 0;
    if (group.down) {
      group.down = false;
      this.#hooks.changed();
    }
  }

  /**
   * A worker's connection ended: waits (up to a second) for a local process
   * to exit so its end can be told, and expects a respawning launch's
   * worker back under the same id.
   */
  async lost(workerId: number): Promise<WorkerEnd> {
    const member = this.#members.get(workerId);
    this.#members.delete(workerId);
    const group = member?.group;
    const launch = member?.launch;
    let exit: LaunchExit = {};
    if (launch && !launch.respawns) {
      const done = await this.#within(launch.exited, LOST_EXIT_MS);
      if (done) exit = done;
      else launch.kill();
    }
    if (
      group && launch?.respawns && group.launch === launch &&
      this.#hooks.running()
    ) {
      // The host's supervisor starts this worker again under the same id.
      this.#expected.set(workerId, group);
    }
    return {
      ...exit,
      host: group?.launcher.host ?? "local",
      stderr: launch?.stderrTail(),
    };
  }

  /**
   * Ends worker `workerId`'s process if it has one of its own (a local
   * worker is killed; its group starts a new one).
   * @returns True when the caller must hang up instead (the worker shares a
   * respawning launch, which starts it again when it exits).
   */
  stopWorker(workerId: number, stuck: boolean): boolean {
    const member = this.#members.get(workerId);
    // Its launch, unless it has ended (its group may run a replacement).
    const launch = member?.group.launch === member?.launch
      ? member?.launch
      : undefined;
    if (launch && !launch.respawns) {
      launch.kill();
      return false;
    }
    // Stuck in sync code, it would never see its connection close.
    if (stuck) launch?.killWorker(workerId);
    return true;
  }

  /** Kills every launch now (the pool failed). */
  killAll(): void {
    for (const group of this.#groups) group.launch?.kill();
  }

  /**
   * Stops every launch (closes its lifeline), kills what is still running
   * {@link STOP_KILL_MS} after this call, and waits for all of them to exit.
   * With `farewell`, a launch that does not respawn its workers is first
   * given up to {@link STOP_GRACE_MS} to exit by itself once `farewell` has
   * told its workers to end (it returns false when it could not tell them
   * all): a worker that exits by itself runs its `unload` handlers and
   * writes its `--cpu-prof` profile, which the lifeline's SIGKILL prevents.
   *
   * @param farewell Tells workers `ids` to end; false when it cannot.
   */
  async stop(farewell?: (ids: number[]) => boolean): Promise<void> {
    for (const timer of this.#timers) this.#clock.clearTimeout(timer);
    this.#timers.clear();
    const groups = this.#groups.filter((g) => g.launch !== undefined);
    await Promise.all(groups.map(async ({ launch, ids }) => {
      const l = launch!;
      const kill = this.#clock.setTimeout(() => l.kill(), STOP_KILL_MS);
      if (!l.respawns && farewell?.(ids)) {
        await this.#within(l.exited, STOP_GRACE_MS);
      }
      await l.stop();
      await l.exited;
      this.#clock.clearTimeout(kill);
    }));
    while (this.#pending.size > 0) {
      await Promise.allSettled([...this.#pending]);
    }
  }

  /** `promise`'s value, or undefined if `ms` pass first (on its clock). */
  async #within<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
    let timer: Timer;
    const late = new Promise<undefined>((resolve) => {
      timer = this.#clock.setTimeout(() => resolve(undefined), ms);
    });
    const first = await Promise.race([promise, late]);
    this.#clock.clearTimeout(timer!);
    return first;
  }

  #track(promise: Promise<unknown>): void {
    this.#pending.add(promise);
    promise.finally(() => this.#pending.delete(promise));
  }

  #launch(group: Group): void {
    const ids: number[] = [];
    for (let i = 0; i < group.launcher.groupSize; i++) {
      ids.push(this.#nextWorkerId++);
    }
    group.ids = ids;
    group.connected = new Set();
    let launch: Launch;
    try {
      launch = group.launcher.launch(ids, this.#endpoint!);
    } catch (error) {
      this.#failed(group, error);
      return;
    }
    group.launch = launch;
    if (!this.#refd) launch.ref?.(false);
    const connected = group.connected;
    for (const id of ids) this.#expected.set(id, group);
    let timedOut = false;
    const timer = this.#clock.setTimeout(() => {
      if (group.launch === launch && connected.size < ids.length) {
        timedOut = true;
        launch.kill();
      }
    }, this.#startTimeout);
    group.startTimer = timer;
    this.#track(launch.exited.then((exit) => {
      this.#clock.clearTimeout(timer);
      if (group.launch === launch) group.launch = undefined;
      for (const id of ids) {
        if (this.#expected.get(id) === group) this.#expected.delete(id);
      }
      if (!this.#hooks.running()) return;
      if (connected.size < ids.length) {
        // Some workers never connected: a start-up failure.
        this.#failed(
          group,
          launch.failure(exit, timedOut ? this.#startTimeout : undefined),
        );
        return;
      }
      // It worked and went away: start it again (a lost host after a pause).
      if (group.launcher.host !== "local") {
        group.down = true;
        this.#hooks.hostLost(group.launcher.host, exit);
        this.#hooks.changed();
        this.#relaunch(group);
      } else {
        this.#launch(group);
      }
    }));
  }

  #failed(group: Group, error: unknown): void {
    if (!this.#hooks.failed(error)) return;
    if (group.launcher.host !== "local" && !group.down) {
      group.down = true;
      this.#hooks.changed();
    }
    this.#relaunch(group);
  }

  #relaunch(group: Group): void {
    group.failures++;
    const timer = this.#clock.setTimeout(() => {
      this.#timers.delete(timer);
      if (this.#hooks.running() && !group.launch) this.#launch(group);
    }, backoffMs(group.failures));
    this.#timers.add(timer);
    if (!this.#refd) this.#refTimer(timer);
  }
}
