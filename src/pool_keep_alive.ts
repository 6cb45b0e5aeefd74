/**
 * Whether the pool keeps the program alive: while it starts, has work or
 * closes, its socket, connections, worker processes and timers are ref'd;
 * idle, they are not, so a pool that is never closed does not hold the
 * program open. Workers still die with the program (their lifeline is this
 * process).
 *
 * Work the dispatcher does not see is counted here: maps that have sent a
 * task and not ended, and `runOnAll()` calls waiting for workers.
 *
 * @module
 */

/** What the keep-alive switch acts on and asks. */
export interface KeepAliveHooks {
  /** Refs (true) or unrefs the pool's handles. */
  setRef(on: boolean): void;
  /** True when the pool is running and the dispatcher holds no task. */
  idle(): boolean;
}

/** The ref/unref switch of a pool and the work that holds it on. */
export class KeepAlive {
  #hooks: KeepAliveHooks;
  #refd = true;
  #maps = 0;
  #waiting = 0;

  /** @param hooks The pool's handles and its idle test. */
  constructor(hooks: KeepAliveHooks) {
    this.#hooks = hooks;
  }

  /** Maps that have sent a task and not ended: close() waits for them. */
  get maps(): number {
    return this.#maps;
  }

  /** Work is coming (a task, a map, closing): hold the program. */
  hold(): void {
    this.#set(true);
  }

  /** A map sent its first task: it holds the pool until {@link mapEnded}. */
  mapStarted(): void {
    this.#maps++;
  }

  /** A map that had started ended. */
  mapEnded(): void {
    this.#maps--;
    this.check();
  }

  /**
   * Runs `work` (waiting for workers, as `runOnAll()` does) and holds the
   * program meanwhile, as work.
   */
  async during<T>(work: () => Promise<T>): Promise<T> {
    this.#waiting++;
    try {
      return await work();
    } finally {
      this.#waiting--;
      this.check();
    }
  }

  /** Lets go of the program once the pool is ready and has nothing to do. */
  check(): void {
    if (this.#maps === 0 && this.#waiting === 0 && this.#hooks.idle()) {
      this.#set(false);
    }
  }

  #set(on: boolean): void {
    if (this.#refd === on) return;
    this.#refd = on;
    this.#hooks.setRef(on);
  }
}
