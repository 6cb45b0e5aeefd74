/**
 * The dispatcher's queue of tasks waiting for a worker: first in, first out,
 * with a way back to the front for tasks that are sent again, O(1) per task
 * (a moving head, compacted now and then, not `Array.shift`). Plain data.
 *
 * @module
 */

/** What the queue needs of a task. */
export interface Queued {
  /** A settled task (cancelled while it waited) is skipped, not handed out. */
  readonly settled: boolean;
}

/** Tasks waiting for a worker, in order. */
export class TaskQueue<T extends Queued> {
  #items: T[] = [];
  #head = 0;
  /** Callers of {@link drained}, waiting for the queue to empty. */
  #waiters: PromiseWithResolvers<void> | undefined;

  /**
   * Tasks in the queue (settled ones not yet skipped included). Read only:
   * a field rather than a getter, as it is read for every task.
   */
  length = 0;

  /** Adds `task` at the end. */
  push(task: T): void {
    this.#items.push(task);
    this.length++;
  }

  /** Adds `task` at the front (it goes out next). */
  unshift(task: T): void {
    if (this.#head > 0) this.#items[--this.#head] = task;
    else this.#items.unshift(task);
    this.length++;
  }

  /**
   * The task {@link shift} would take next, left in place (settled ones
   * before it are dropped), or undefined if none is left.
   */
  peek(): T | undefined {
    while (this.#head < this.#items.length) {
      const task = this.#items[this.#head]!;
      if (!task.settled) return task;
      this.#drop();
    }
    return undefined;
  }

  /** Takes the first task that is not settled, or undefined if none is left. */
  shift(): T | undefined {
    while (this.#head < this.#items.length) {
      const task = this.#items[this.#head]!;
      this.#drop();
      if (!task.settled) return task;
    }
    return undefined;
  }

  /** Removes the first task. */
  #drop(): void {
    this.#items[this.#head++] = undefined as unknown as T;
    this.length--;
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    if (this.#head === this.#items.length) this.#emptied();
  }

  /** Drops every task (the caller settles them). */
  clear(): void {
    this.#items = [];
    this.#head = 0;
    this.length = 0;
    this.#emptied();
  }

  /** Resolves once the queue is empty. */
  drained(): Promise<void> {
    if (this.length === 0) return Promise.resolve();
    this.#waiters ??= Promise.withResolvers<void>();
    return this.#waiters.promise;
  }

  #emptied(): void {
    const waiters = this.#waiters;
    this.#waiters = undefined;
    waiters?.resolve();
  }
}
