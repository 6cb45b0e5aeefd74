/**
 * Cancelling tasks when their `signal` aborts. Tasks sharing a signal (all
 * of a map's) share one listener, added with the first task and removed with
 * the last. A task costs a count, not a listener, a closure or a set entry:
 * the tasks of a signal that aborts are found among the live ones then (an
 * abort is rare; a task is not). Plain data: what a cancel does is the
 * caller's.
 *
 * @module
 */

/** What the watch needs of a task. */
export interface Watched {
  /** The signal it was added with; set by {@link AbortWatch.add}. */
  signal: AbortSignal | undefined;
}

interface Group {
  /** Tasks watched for this signal. */
  count: number;
  onAbort: () => void;
}

/** Tasks by the signal that cancels them. */
export class AbortWatch<T extends Watched> {
  #groups = new Map<AbortSignal, Group>();
  /** The group used last (a map's tasks all share one). */
  #last: Group | undefined;
  #lastSignal: AbortSignal | undefined;
  #live: () => Iterable<T>;
  #cancel: (task: T, reason: unknown) => void;

  /**
   * @param live The tasks that may be watched now (a snapshot: cancelling
   * one may change the live tasks).
   * @param cancel Called for each task still watched when its signal
   * aborts (the task is no longer watched by then).
   */
  constructor(
    live: () => Iterable<T>,
    cancel: (task: T, reason: unknown) => void,
  ) {
    this.#live = live;
    this.#cancel = cancel;
  }

  /** Signals with a listener (one per signal, none when idle). */
  get size(): number {
    return this.#groups.size;
  }

  /**
   * Whether tasks of `signal` are watched now; if so, it has not aborted
   * (its abort ends the watch before anything else sees it).
   */
  watches(signal: AbortSignal): boolean {
    return signal === this.#lastSignal || this.#groups.has(signal);
  }

  /** Watches `task` until {@link delete}: `signal` aborting cancels it. */
  add(signal: AbortSignal, task: T): void {
    task.signal = signal;
    let group = signal === this.#lastSignal ? this.#last : undefined;
    group ??= this.#groups.get(signal);
    if (group === undefined) {
      const onAbort = () => {
        this.#drop(signal, group!);
        for (const t of this.#live()) {
          if (t.signal !== signal) continue;
          t.signal = undefined;
          this.#cancel(t, signal.reason);
        }
      };
      group = { count: 0, onAbort };
      this.#groups.set(signal, group);
      signal.addEventListener("abort", onAbort, { once: true });
    }
    group.count++;
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
    if (group !== undefined && --group.count === 0) this.#drop(signal, group);
  }

  #drop(signal: AbortSignal, group: Group): void {
    if (this.#groups.get(signal) !== group) return;
    this.#groups.delete(signal);
    signal.removeEventListener("abort", group.onAbort);
    if (this.#lastSignal === signal) {
      this.#last = undefined;
      this.#lastSignal = undefined;
    }
  }
}
