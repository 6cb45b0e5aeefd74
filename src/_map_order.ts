/**
 * The order in which a map hands its finished tasks over: input order
 * (`ordered: true`, a finished task waits for those before it) or as they
 * finish.
 *
 * @module
 */

/** One task of a map, from its submission until its results are handed over. */
export interface Entry {
  /** Index of its first item. */
  index: number;
  /** Items in the task. */
  count: number;
  /** Estimated bytes of its arguments while in flight, then of its results. */
  bytes: number;
  /** Finished: its results (or its error) are in. */
  done: boolean;
  values: unknown[] | undefined;
  error: unknown;
  failed: boolean;
  /**
   * Its units while in flight (sent again one by one if it fails with
   * `outcomes`); dropped once it ends, so results waiting for the consumer
   * do not hold their arguments too.
   */
  units: unknown[] | undefined;
  /** Sent as one call (chunk size 1) rather than a chunk. */
  call: boolean;
}

/** The tasks of one map in the order they are handed over. */
export class DeliveryOrder {
  readonly #ordered: boolean;
  /** Ordered: every task in flight or waiting its turn, from `#head` on. */
  #line: (Entry | undefined)[] = [];
  #head = 0;
  /** Unordered: finished tasks, from `#first` on. */
  #finished: Entry[] = [];
  #first = 0;

  constructor(ordered: boolean) {
    this.#ordered = ordered;
  }

  /** A task was submitted: in input order, it takes its place in line. */
  submitted(entry: Entry): void {
    if (this.#ordered) this.#line.push(entry);
  }

  /** A task finished with its results (not for one that failed). */
  finished(entry: Entry): void {
    if (!this.#ordered) this.#finished.push(entry);
  }

  /**
   * The task to hand over next, if its turn has come: in input order the
   * first in line once done (failed or not), else the first finished.
   */
  peek(): Entry | undefined {
    if (!this.#ordered) return this.#finished[this.#first];
    const head = this.#line[this.#head];
    return head?.done ? head : undefined;
  }

  /** Drops the task peek() gave; compacts the list now and then. */
  shift(): void {
    if (this.#ordered) this.#head = drop(this.#line, this.#head);
    else this.#first = drop(this.#finished, this.#first);
  }
}

/** Clears `list[at]`; returns the new start, after compacting if worth it. */
function drop(list: (Entry | undefined)[], at: number): number {
  list[at++] = undefined;
  if (at > 1024 && at * 2 > list.length) {
    list.splice(0, at);
    return 0;
  }
  if (at === list.length) {
    list.length = 0;
    return 0;
  }
  return at;
}
