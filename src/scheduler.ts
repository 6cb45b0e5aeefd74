/**
 * Choosing a worker for the next task, over plain data, tested without
 * processes: {@link pickWorker} states the rule as a scan (the most free
 * slots; equals take turns), and {@link SlotIndex} makes the same choice in
 * O(1) per task, which is what the dispatcher uses, so that the cost of a
 * task does not grow with the number of workers.
 *
 * @module
 */

/** What the scheduler knows about one worker. */
export interface WorkerLoad {
  /** Tasks sent and not yet finished. */
  load: number;
  /** The most tasks this worker may have in flight. */
  capacity: number;
  /**
   * True while the worker may take no task whatever its load (its connection
   * is congested, it is retiring, or it still runs a timed-out task).
   */
  blocked?: boolean;
}

/**
 * Picks the worker with the most free slots (fewest in flight relative to its
 * capacity); ties go to the first one at or after `start`, so equal workers
 * take turns.
 *
 * @param workers The candidates.
 * @param start Where ties start (round-robin cursor).
 * @returns The chosen index, or -1 when every worker is full.
 */
export function pickWorker(
  workers: readonly WorkerLoad[],
  start = 0,
): number {
  const n = workers.length;
  let best = -1;
  let bestFree = 0;
  for (let k = 0; k < n; k++) {
    const i = (start + k) % n;
    const w = workers[i]!;
    if (w.blocked) continue;
    const free = w.capacity - w.load;
    if (free > bestFree) {
      best = i;
      bestFree = free;
    }
  }
  return best;
}

interface SlotNode<W> {
  worker: W;
  free: number;
  prev: SlotNode<W> | undefined;
  next: SlotNode<W> | undefined;
}

interface Bucket<W> {
  head: SlotNode<W> | undefined;
  tail: SlotNode<W> | undefined;
}

/**
 * Workers with free task slots, bucketed by how many slots they have free,
 * so that choosing a worker costs O(1) however many workers there are (plus,
 * rarely, a step down per empty bucket after the fullest workers filled up).
 *
 * It makes the choice that {@link pickWorker} makes by scanning: a worker
 * with the most free slots; among equals, the one that has waited longest
 * since its count last changed, so equal workers take turns.
 */
export class SlotIndex<W> {
  /** `buckets[f]`: the workers with `f` free slots, longest waiting first. */
  #buckets: Bucket<W>[] = [{ head: undefined, tail: undefined }];
  #nodes = new Map<W, SlotNode<W>>();
  /** No bucket above this one holds a worker. */
  #top = 0;

  /** How many workers have a free slot. */
  get size(): number {
    return this.#nodes.size;
  }

  /**
   * Records that `worker` may be given `free` more tasks now; 0 or less
   * (full, or not to be given any) leaves it out of the choice.
   */
  set(worker: W, free: number): void {
    let node = this.#nodes.get(worker);
    if (node !== undefined) {
      if (node.free === free) return;
      this.#unlink(node);
    }
    if (!(free > 0)) {
      if (node !== undefined) this.#nodes.delete(worker);
      return;
    }
    if (node === undefined) {
      node = { worker, free, prev: undefined, next: undefined };
      this.#nodes.set(worker, node);
    }
    node.free = free;
    while (this.#buckets.length <= free) {
      this.#buckets.push({ head: undefined, tail: undefined });
    }
    const bucket = this.#buckets[free]!;
    node.prev = bucket.tail;
    node.next = undefined;
    if (bucket.tail) bucket.tail.next = node;
    else bucket.head = node;
    bucket.tail = node;
    if (free > this.#top) this.#top = free;
  }

  /** Forgets `worker` (it left, or may not be given tasks). */
  delete(worker: W): void {
    this.set(worker, 0);
  }

  /** The free slots recorded for `worker` (0 when it is left out). */
  free(worker: W): number {
    return this.#nodes.get(worker)?.free ?? 0;
  }

  /**
   * The worker with the most free slots (the longest waiting among equals),
   * or undefined when none has one. It stays where it is: record its new
   * count with {@link SlotIndex.set} once it is given a task.
   */
  peek(): W | undefined {
    for (; this.#top > 0; this.#top--) {
      const head = this.#buckets[this.#top]!.head;
      if (head !== undefined) return head.worker;
    }
    return undefined;
  }

  #unlink(node: SlotNode<W>): void {
    const bucket = this.#buckets[node.free]!;
    if (node.prev) node.prev.next = node.next;
    else bucket.head = node.next;
    if (node.next) node.next.prev = node.prev;
    else bucket.tail = node.prev;
    node.prev = node.next = undefined;
  }
}

/**
 * The dispatcher's choice of a worker for each task, in O(1): the worker
 * with the most free slots ({@link SlotIndex}), except that tasks of the
 * same function go to the worker chosen last while their grain lasts (the
 * `grain` callback: tiny tasks go in a row, in one frame, instead of one per
 * worker and frame when there are many workers).
 */
export class WorkerPicker<W> {
  #free = new SlotIndex<W>();
  #slots: (worker: W) => number;
  #grain: (key: number) => number;
  /** The worker chosen last, for tasks of `#lastKey`. */
  #last: W | undefined;
  #lastKey = 0;
  /** Tasks of `#lastKey` that may still go to `#last` in a row. */
  #lastLeft = 0;

  /**
   * @param slots Tasks a worker may be given now (0 or less: none).
   * @param grain Tasks of one key (a function id) that go to one worker in
   * a row (1: none).
   */
  constructor(slots: (worker: W) => number, grain: (key: number) => number) {
    this.#slots = slots;
    this.#grain = grain;
  }

  /** Records what `worker` may be given now (after a change to it). */
  update(worker: W): void {
    this.#free.set(worker, this.#slots(worker));
  }

  /** Leaves `worker` out until its next {@link update}. */
  forget(worker: W): void {
    this.#free.delete(worker);
    if (this.#last === worker) this.#last = undefined;
  }

  /**
   * The worker for a task of `key`, or undefined when none may take one.
   * Record the task with {@link update} once it is given.
   */
  pick(key: number): W | undefined {
    const last = this.#last;
    if (
      last !== undefined && this.#lastKey === key && this.#lastLeft > 0 &&
      this.#slots(last) > 0
    ) {
      this.#lastLeft--;
      return last;
    }
    for (;;) {
      const w = this.#free.peek();
      if (w === undefined || this.#slots(w) > 0) {
        this.#last = w;
        this.#lastKey = key;
        this.#lastLeft = w === undefined ? 0 : this.#grain(key) - 1;
        return w;
      }
      // It changed unseen (say, its connection got congested): drop it.
      this.update(w);
    }
  }
}
