/**
 * How a map's results reach its consumer: the `ReadableStream` that
 * `Pool.map()` returns. Read with `for await` (or `values()`,
 * `Array.fromAsync`) from the start, a fresh stream hands each list of
 * results to its iterator as a whole, without passing every result through
 * the stream's own queue (which costs several promises and objects per
 * result); read any other way (`getReader()`, `pipeTo()`, `tee()`), it is a
 * plain pull-based stream. Either way the stream is locked while read,
 * errors and closes as usual, and results not yet taken count as held for
 * the map's budget.
 *
 * @module
 */

/** What the output reads from the map engine. */
export interface MapResults {
  /** Called once, as the stream is created. */
  start(): void;
  /**
   * Waits until results are ready and hands each list of them to `give`, in
   * delivery order; resolves false once the map has ended instead.
   * Rejects with the map's failure.
   */
  deliver(give: (values: unknown[]) => void): Promise<boolean>;
  /** The consumer cancelled the stream (`reason` as given to `cancel()`). */
  cancel(reason: unknown): void;
}

const streamValues = ReadableStream.prototype.values;
const EMPTY: unknown[] = [];

/** The stream of a map's results, over a {@link MapResults}. */
export class MapOutput<R> {
  /** The stream `Pool.map()` returns. */
  readonly stream: ReadableStream<R>;
  readonly #results: MapResults;
  #controller!: ReadableStreamDefaultController<R>;
  /**
   * How results reach the consumer: not read yet, through the fast iterator,
   * or through the stream's own queue (for good, once read that way).
   */
  #mode: "fresh" | "direct" | "stream" = "fresh";
  #iterator: ResultIterator<R> | undefined;

  constructor(results: MapResults) {
    this.#results = results;
    const stream = new ReadableStream<R>({
      start: (controller) => {
        this.#controller = controller;
        results.start();
      },
      pull: () => this.#pull(),
      cancel: (reason) => results.cancel(reason),
    }, { highWaterMark: 0 });
    const values = (options?: { preventCancel?: boolean }) =>
      this.#values(options);
    for (const key of [Symbol.asyncIterator, "values"]) {
      Object.defineProperty(stream, key, {
        value: values,
        writable: true,
        configurable: true,
      });
    }
    this.stream = stream;
  }

  /** Results handed over and not yet taken by the consumer. */
  inQueue(): number {
    if (this.#mode === "direct") return this.#iterator!.held();
    const size = this.#controller.desiredSize;
    return size === null ? 0 : Math.max(0, -size);
  }

  async #pull(): Promise<void> {
    this.#mode = "stream";
    const controller = this.#controller;
    try {
      const more = await this.#results.deliver((values) => {
        for (let i = 0; i < values.length; i++) {
          controller.enqueue(values[i] as R);
        }
      });
      if (!more) controller.close();
    } catch (error) {
      controller.error(error);
    }
  }

  /**
   * The stream's async iterator: the fast one on a fresh stream, else the
   * stream's own.
   * @throws {TypeError} when the stream is locked.
   */
  #values(options?: { preventCancel?: boolean }): AsyncIterableIterator<R> {
    if (this.#mode !== "fresh") return streamValues.call(this.stream, options);
    const reader = this.stream.getReader(); // locks it, as iterating does
    this.#mode = "direct";
    return this.#iterator = new ResultIterator(
      this.#results,
      this.#controller,
      reader,
      Boolean(options?.preventCancel),
      () => this.#mode = "stream",
    );
  }
}

/**
 * The fast iterator: yields from the lists of results the engine hands
 * over, and asks the engine for more only once they are all yielded.
 */
class ResultIterator<R> implements AsyncIterableIterator<R> {
  /** The list being yielded from, and the place in it. */
  list: unknown[] = EMPTY;
  at = 0;
  /** Lists handed over and not yet reached (from `#first` on). */
  #lists: unknown[][] = [];
  #first = 0;
  /** Results in those lists. */
  #waiting = 0;
  #done = false;
  #ongoing: Promise<IteratorResult<R>> | undefined;
  readonly #results: MapResults;
  readonly #controller: ReadableStreamDefaultController<R>;
  readonly #reader: ReadableStreamDefaultReader<R>;
  readonly #preventCancel: boolean;
  readonly #toStream: () => void;

  constructor(
    results: MapResults,
    controller: ReadableStreamDefaultController<R>,
    reader: ReadableStreamDefaultReader<R>,
    preventCancel: boolean,
    toStream: () => void,
  ) {
    this.#results = results;
    this.#controller = controller;
    this.#reader = reader;
    this.#preventCancel = preventCancel;
    this.#toStream = toStream;
  }

  /** Results handed over and not yet yielded. */
  held(): number {
    return this.list.length - this.at + this.#waiting;
  }

  next(): Promise<IteratorResult<R>> {
    if (this.#ongoing === undefined) {
      if (this.at < this.list.length || this.#nextList()) {
        return Promise.resolve({
          value: this.list[this.at++] as R,
          done: false,
        });
      }
    }
    // One call at a time: a call made while another waits runs after it.
    const step = () => this.#step();
    const ongoing = this.#ongoing;
    const call = ongoing === undefined ? step() : ongoing.then(step, step);
    this.#ongoing = call;
    const clear = () => {
      if (this.#ongoing === call) this.#ongoing = undefined;
    };
    call.then(clear, clear);
    return call;
  }

  #give = (values: unknown[]): void => {
    this.#lists.push(values);
    this.#waiting += values.length;
  };

  /** Moves on to the next list handed over; false if there is none. */
  #nextList(): boolean {
    while (this.#first < this.#lists.length) {
      this.list = this.#lists[this.#first]!;
      this.#lists[this.#first++] = EMPTY;
      this.#waiting -= this.list.length;
      this.at = 0;
      if (this.list.length > 0) return true;
    }
    return false;
  }

  /** The next result, waiting for the engine when none is held. */
  async #step(): Promise<IteratorResult<R>> {
    for (;;) {
      if (this.at < this.list.length) {
        return { value: this.list[this.at++] as R, done: false };
      }
      if (this.#nextList()) continue;
      this.list = EMPTY;
      this.at = this.#lists.length = this.#first = 0;
      if (this.#done) return { value: undefined, done: true };
      try {
        if (!await this.#results.deliver(this.#give)) {
          this.#done = true;
          this.#controller.close();
          this.#reader.releaseLock();
        }
      } catch (error) {
        this.#done = true;
        this.#controller.error(error);
        this.#reader.releaseLock();
        throw error;
      }
    }
  }

  async return(value?: unknown): Promise<IteratorResult<R>> {
    if (this.#ongoing !== undefined) await this.#ongoing.catch(() => {});
    if (!this.#done) {
      this.#done = true;
      if (this.#preventCancel) {
        // What the consumer has not taken stays in the stream for the next
        // reader.
        this.#toStream();
        const controller = this.#controller;
        for (let i = this.at; i < this.list.length; i++) {
          controller.enqueue(this.list[i] as R);
        }
        for (let i = this.#first; i < this.#lists.length; i++) {
          for (const v of this.#lists[i]!) controller.enqueue(v as R);
        }
        this.#drop();
        this.#reader.releaseLock();
      } else {
        this.#drop(); // results not taken are dropped
        const cancelled = this.#reader.cancel(value);
        this.#reader.releaseLock();
        await cancelled;
      }
    }
    return { value: value as R, done: true };
  }

  #drop(): void {
    this.list = EMPTY;
    this.at =
      this.#lists.length =
      this.#first =
      this.#waiting =
        0;
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<R> {
    return this;
  }
}
