/**
 * Reading a map's sources into chunks, one task's units at a time, within
 * the map's budget. A chunk ends at its size, where the budget's items end,
 * once it holds about {@link CHUNK_BYTES} (or the bytes the budget has left),
 * and early at a read of an async source that does not settle at once: slow
 * input is not held back to fill a chunk; that read is *carried* and starts
 * the next chunk. A plain array is sliced a whole chunk at a time.
 *
 * Each item read counts in the budget (`read`, `bytes`) as it is read; the
 * map engine (map_stream.ts) decides when to read a chunk and of what size,
 * and submits it (the `launch` it gives).
 *
 * @module
 */
import {
  END,
  estimateBytes,
  type MapInputs,
  settlesSoon,
} from "./_map_input.ts";
import { CHUNK_BYTES, type MapBudget } from "./_map_flow.ts";

/**
 * Submits a chunk read: its `units`, their estimated `bytes`, the chunk
 * size asked for, and whether its units are all primitives.
 */
export type Launch = (
  units: unknown[],
  bytes: number,
  size: number,
  primitive: boolean,
) => void;

/** A chunk being read: its units, their bytes, and where it must end. */
interface Chunk {
  units: unknown[];
  bytes: number;
  /** Most units: the chunk size, or the items the budget has left. */
  limit: number;
  /** Bytes at which it ends (it holds one unit at least). */
  room: number;
  /** Its units are all primitives (see MapContext.submitTo). */
  primitive: boolean;
}

/** Reads a map's sources one chunk at a time (see the module doc). */
export class ChunkReader {
  /**
   * Nothing more to read: the sources ended, or the map did (read only; a
   * field, not a getter, as it is read for every chunk and result).
   */
  done = false;
  /** The map ended: a read that comes in now is dropped. */
  #closed = false;
  /** A source read that had not settled when its chunk was sent. */
  #carried: Promise<unknown> | undefined = undefined;
  readonly #inputs: MapInputs;
  readonly #budget: MapBudget;
  readonly #launch: Launch;

  /**
   * @param inputs The map's sources.
   * @param budget The map's budget: counts each item read.
   * @param launch Submits each chunk read (not called for an empty one).
   */
  constructor(inputs: MapInputs, budget: MapBudget, launch: Launch) {
    this.#inputs = inputs;
    this.#budget = budget;
    this.#launch = launch;
  }

  /**
   * Reads up to `size` units (fewer where `left`, the budget's items, ends)
   * and launches them as one chunk. Only the first is waited for. False if
   * the map ended meanwhile; a promise only when an async source had to be
   * waited for.
   */
  take(size: number, left: number): boolean | Promise<boolean> {
    const budget = this.#budget;
    const chunk: Chunk = {
      units: [],
      bytes: 0,
      // The budget left (it only grows while the chunk is read).
      limit: Math.min(size, Math.max(1, left)),
      room: Math.min(CHUNK_BYTES, budget.maxBytes - budget.bytes),
      primitive: true,
    };
    const pending = this.#read(chunk);
    if (pending !== undefined) return this.#readAsync(chunk, pending, size);
    if (this.#closed) return false;
    if (chunk.units.length) {
      this.#launch(chunk.units, chunk.bytes, size, chunk.primitive);
    }
    return true;
  }

  /**
   * The map ended: closes the sources still open; nothing more is read or
   * launched.
   */
  close(): void {
    this.#closed = true;
    this.done = true;
    this.#inputs.close();
  }

  /**
   * Reads units into `chunk` while they come at once; returns the read to
   * wait for when one does not, else undefined.
   */
  #read(chunk: Chunk): Promise<unknown> | undefined {
    const inputs = this.#inputs;
    if (
      chunk.units.length === 0 && this.#carried === undefined && inputs.bulk
    ) {
      // A plain array: the whole chunk at once.
      const units = inputs.slice(chunk.limit, chunk.room);
      chunk.units = units;
      chunk.bytes = inputs.sliceBytes;
      chunk.primitive = inputs.slicePrimitive;
      this.#budget.read += units.length;
      this.#budget.bytes += chunk.bytes;
      if (inputs.done) this.done = true;
      return undefined;
    }
    const units = chunk.units;
    while (
      units.length < chunk.limit &&
      (units.length === 0 || chunk.bytes < chunk.room)
    ) {
      const unit = this.#carried ?? inputs.next();
      this.#carried = undefined;
      if (unit instanceof Promise) return unit;
      if (unit === END) {
        this.done = true;
        break;
      }
      this.#add(chunk, unit);
    }
    return undefined;
  }

  async #readAsync(
    chunk: Chunk,
    pending: Promise<unknown>,
    size: number,
  ): Promise<boolean> {
    for (let unit: Promise<unknown> | undefined = pending; unit;) {
      if (chunk.units.length > 0 && !await settlesSoon(unit)) {
        this.#carried = unit;
        break;
      }
      const value = await unit;
      if (this.#closed) return false;
      if (value === END) {
        this.done = true;
        break;
      }
      this.#add(chunk, value);
      unit = this.#read(chunk);
    }
    if (this.#closed) return false;
    if (chunk.units.length) {
      this.#launch(chunk.units, chunk.bytes, size, chunk.primitive);
    }
    return true;
  }

  #add(chunk: Chunk, unit: unknown): void {
    const budget = this.#budget;
    budget.read++;
    const b = estimateBytes(unit);
    if (typeof unit === "object" && unit !== null) chunk.primitive = false;
    chunk.bytes += b;
    budget.bytes += b;
    chunk.units.push(unit);
  }
}
