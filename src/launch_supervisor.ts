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
  startTimer?: ReturnType<typeof setTimeout> | undefined;
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
  /** Connected workers' groups. */
  #members = new Map<number, Group>();
  #timers = new Set<ReturnType<typeof setTimeout>>();
  #pending = new Set<Promise<unknown>>();
  /** Whether launches and timers keep the program alive (see setRef). */
  #refd = true;

  /**
   * @param launchers One per group (a local worker, or a host).
   * @param startTimeout ms until a launch's workers must have connected.
   * @param hooks What to ask of the pool.
   */
  constructor(
    launchers: Launcher[],
    startTimeout: number,
    hooks: SupervisorHooks,
  ) {
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
    this.#members.set(workerId, group);
    group.connected.add(workerId);
    if (group.connected.size >= group.ids.length) {
      clearTimeout(group.startTimer);
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

  #refTimer(timer: ReturnType<typeof setTimeout>): void {
    if (this.#refd) Deno.refTimer(timer as unknown as number);
    else Deno.unrefTimer(timer as unknown as number);
  }

  /** The host of a connected worker. */
  hostOf(workerId: number): string {
    return this.#members.get(workerId)?.launcher.host ?? "local";
  }

  /** A worker is initialised: its group works (and its host is up). */
  ready(workerId: number): void {
    const group = this.#members.get(workerId);
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
    const group = this.#members.get(workerId);
    this.#members.delete(workerId);
    const launch = group?.launch;
    let exit: LaunchExit = {};
    if (launch && !launch.respawns) {
      const timer = Promise.withResolvers<undefined>();
      const id = setTimeout(() => timer.resolve(undefined), 1_000);
      const done = await Promise.race([launch.exited, timer.promise]);
      clearTimeout(id);
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
    const launch = this.#members.get(workerId)?.launch;
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
   * after 2 s, and waits for all of them to exit.
   */
  async stop(): Promise<void> {
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    const launches = this.#groups.map((g) => g.launch).filter((l) =>
      l !== undefined
    );
    await Promise.all(launches.map((l) => l.stop()));
    await Promise.all(launches.map(async (l) => {
      const timer = setTimeout(() => l.kill(), 2_000);
      await l.exited;
      clearTimeout(timer);
    }));
    while (this.#pending.size > 0) {
      await Promise.allSettled([...this.#pending]);
    }
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
    const timer = setTimeout(() => {
      if (group.launch === launch && connected.size < ids.length) {
        timedOut = true;
        launch.kill();
      }
    }, this.#startTimeout);
    group.startTimer = timer;
    this.#track(launch.exited.then((exit) => {
      clearTimeout(timer);
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
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      if (this.#hooks.running() && !group.launch) this.#launch(group);
    }, backoffMs(group.failures));
    this.#timers.add(timer);
    if (!this.#refd) this.#refTimer(timer);
  }
}
