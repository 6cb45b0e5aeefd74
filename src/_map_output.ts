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
  /** Lists handed to the fast iterator and not yet reached, from #next on. */
  #lists: unknown[][] = [];
  #next = 0;
  /** The list the fast iterator yields from, and its place in it. */
  #list: unknown[] = EMPTY;
  #at = 0;
  /** Results handed to the fast iterator and not yet yielded. */
  #held = 0;

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
    if (this.#mode === "direct") return this.#held;
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

  #give = (values: unknown[]): void => {
    this.#lists.push(values);
    this.#held += values.length;
  };

  /**
   * The stream's async iterator: the fast one on a fresh stream, else the
   * stream's own.
   * @throws {TypeError} when the stream is locked.
   */
  #values(options?: { preventCancel?: boolean }): AsyncIterableIterator<R> {
    if (this.#mode !== "fresh") return streamValues.call(this.stream, options);
    const reader = this.stream.getReader(); // locks it, as iterating does
    this.#mode = "direct";
    const preventCancel = Boolean(options?.preventCancel);
    let done = false;
    let ongoing: Promise<IteratorResult<R>> | undefined;
    const controller = this.#controller;

    /** The next result, waiting for the engine when none is held. */
    const step = async (): Promise<IteratorResult<R>> => {
      for (;;) {
        if (this.#at < this.#list.length) return this.#yield();
        if (this.#next < this.#lists.length) {
          this.#list = this.#lists[this.#next]!;
          this.#lists[this.#next++] = EMPTY;
          this.#at = 0;
          continue;
        }
        this.#lists.length = this.#next = 0;
        if (done) return { value: undefined, done: true };
        try {
          if (!await this.#results.deliver(this.#give)) {
            done = true;
            controller.close();
            reader.releaseLock();
          }
        } catch (error) {
          done = true;
          controller.error(error);
          reader.releaseLock();
          throw error;
        }
      }
    };

    const iterator: AsyncIterableIterator<R> = {
      next: (): Promise<IteratorResult<R>> => {
        if (ongoing === undefined && this.#at < this.#list.length) {
          return Promise.resolve(this.#yield());
        }
        // One call at a time: a call made while another waits runs after it.
        const call = ongoing === undefined ? step() : ongoing.then(step, step);
        ongoing = call;
        const clear = () => {
          if (ongoing === call) ongoing = undefined;
        };
        call.then(clear, clear);
        return call;
      },
      return: async (value?: unknown): Promise<IteratorResult<R>> => {
        if (ongoing !== undefined) await ongoing.catch(() => {});
        if (!done) {
          done = true;
          if (preventCancel) {
            // What the consumer has not taken stays in the stream for the
            // next reader.
            this.#mode = "stream";
            while (this.#at < this.#list.length) {
              controller.enqueue(this.#yield().value);
            }
            for (let i = this.#next; i < this.#lists.length; i++) {
              for (const v of this.#lists[i]!) controller.enqueue(v as R);
            }
            this.#lists.length = this.#next = this.#held = 0;
            reader.releaseLock();
          } else {
            this.#list = EMPTY; // results not taken are dropped
            this.#lists.length = this.#next = this.#held = 0;
            const cancelled = reader.cancel(value);
            reader.releaseLock();
            await cancelled;
          }
        }
        return { value: value as R, done: true };
      },
      [Symbol.asyncIterator]() {
        return iterator;
      },
    };
    return iterator;
  }

  /** Takes the next result of the current list. */
  #yield(): IteratorYieldResult<R> {
    const value = this.#list[this.#at] as R;
    this.#list[this.#at++] = undefined;
    this.#held--;
    return { value, done: false };
  }
}
