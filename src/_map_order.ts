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
  #finished: (Entry | undefined)[] = [];
  #first = 0;

  constructor(ordered: boolean) {
    this.#ordered = ordered;
  }

  /** A task was submitted: in input order, it takes its place in line. */
  submitted(entry: Entry): void {
    if (this.#ordered) this.#line.push(entry);
  }

  /**
   * A task finished with its results (not for one that failed); only the
   * order "as they finish" needs to be told.
   */
  finished(entry: Entry): void {
    if (!this.#ordered) this.#finished.push(entry);
  }

  /**
   * The task to hand over next, taken out, if its turn has come: in input
   * order the first in line once done (failed or not), else the first
   * finished. (One call per task: it runs for every task of a map.)
   */
  take(): Entry | undefined {
    const ordered = this.#ordered;
    const list = ordered ? this.#line : this.#finished;
    let at = ordered ? this.#head : this.#first;
    const entry = list[at];
    if (entry === undefined || !entry.done) return undefined;
    list[at++] = undefined;
    if (at === list.length) {
      list.length = 0;
      at = 0;
    } else if (at > 1024 && at * 2 > list.length) {
      // Compacted now and then, not shifted each time.
      list.splice(0, at);
      at = 0;
    }
    if (ordered) this.#head = at;
    else this.#first = at;
    return entry;
  }
}
