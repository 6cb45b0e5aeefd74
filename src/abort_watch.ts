/**
 * Cancelling tasks when their `signal` aborts. Tasks sharing a signal (all
 * of a map's) share one listener, added with the first task and removed with
 * the last, so a task costs a set entry, not a listener or a closure. Plain
 * data: what a cancel does is the caller's.
 *
 * @module
 */

/** What the watch needs of a task. */
export interface Watched {
  /** The signal it was added with; set by {@link AbortWatch.add}. */
  signal: AbortSignal | undefined;
}

interface Group<T> {
  tasks: Set<T>;
  onAbort: () => void;
}

/** Tasks by the signal that cancels them. */
export class AbortWatch<T extends Watched> {
  #groups = new Map<AbortSignal, Group<T>>();
  /** The group used last (a map's tasks all share one). */
  #last: Group<T> | undefined;
  #lastSignal: AbortSignal | undefined;
  #cancel: (task: T, reason: unknown) => void;

  /**
   * @param cancel Called for each task still watched when its signal
   * aborts (the task is no longer watched by then).
   */
  constructor(cancel: (task: T, reason: unknown) => void) {
    this.#cancel = cancel;
  }

  /** Signals with a listener (for tests: one per signal, none when idle). */
  get size(): number {
    return this.#groups.size;
  }

  /** Watches `task` until {@link delete}: `signal` aborting cancels it. */
  add(signal: AbortSignal, task: T): void {
    task.signal = signal;
    let group = signal === this.#lastSignal ? this.#last : undefined;
    group ??= this.#groups.get(signal);
    if (group === undefined) {
      const tasks = new Set<T>();
      const onAbort = () => {
        this.#drop(signal, group!);
        for (const t of tasks) {
          t.signal = undefined;
          this.#cancel(t, signal.reason);
        }
      };
      group = { tasks, onAbort };
      this.#groups.set(signal, group);
      signal.addEventListener("abort", onAbort, { once: true });
    }
    group.tasks.add(task);
    this.#last = group;
    this.#lastSignal = signal;
  }

  /** Stops watching `task` (it settled); the last task of a signal removes its listener. */
  delete(task: T): void {
    const signal = task.signal;
    if (signal === undefined) return;
    task.signal = undefined;
    const group = signal === this.#lastSignal
      ? this.#last
      : this.#groups.get(signal);
    if (group === undefined || !group.tasks.delete(task)) return;
    if (group.tasks.size === 0) this.#drop(signal, group);
  }

  #drop(signal: AbortSignal, group: Group<T>): void {
    this.#groups.delete(signal);
    signal.removeEventListener("abort", group.onAbort);
    if (this.#lastSignal === signal) {
      this.#last = undefined;
      this.#lastSignal = undefined;
    }
  }
}
