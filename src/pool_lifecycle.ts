/**
 * The pool's life cycle, in one object:
 *
 * ```text
 * idle ─start─▶ starting ─ready─▶ running ─close─▶ draining ─▶ stopping ─▶ closed
 *   │              │                 │                 ▲            ▲
 *   │              └──────close──────┴─────────────────┘            │
 *   └──────────────────────close (nothing to wait for)──────────────┘
 *                  starting / running / draining ─fail─▶ failed ─close─▶ stopping
 * ```
 *
 * `ready` settles once: resolved when the first full set of workers is up
 * (later workers are replacements), rejected when the pool fails or closes
 * first. New work is taken while idle, starting or running; workers are
 * started, replaced and given retried tasks while starting, running or
 * draining.
 *
 * @module
 */
import { PoolClosedError } from "./errors.ts";

/** Where the pool is in its life. */
export type Phase =
  | "idle"
  | "starting"
  | "running"
  | "draining"
  | "stopping"
  | "closed"
  | "failed";

/** The phase, the `ready` latch, the fatal error and a change signal. */
export class Lifecycle {
  #phase: Phase = "idle";
  #failure: unknown = undefined;
  #ready = Promise.withResolvers<void>();
  #wasReady = false;
  #changed = Promise.withResolvers<void>();

  constructor() {
    // `ready` may be ignored by the caller; never let it be unhandled.
    this.#ready.promise.catch(() => {});
  }

  /** The current phase. */
  get phase(): Phase {
    return this.#phase;
  }

  /** Resolves when the first full set of workers is up. */
  get ready(): Promise<void> {
    return this.#ready.promise;
  }

  /** True once `ready` resolved: workers that start now are replacements. */
  get wasReady(): boolean {
    return this.#wasReady;
  }

  /** Why the pool failed, if it did. */
  get failure(): unknown {
    return this.#failure;
  }

  /** New work is taken. */
  get accepting(): boolean {
    const p = this.#phase;
    return p === "idle" || p === "starting" || p === "running";
  }

  /** Workers are started and replaced, lost tasks retried. */
  get running(): boolean {
    const p = this.#phase;
    return p === "starting" || p === "running" || p === "draining";
  }

  /**
   * Refuses new work unless the pool takes it.
   * @throws {unknown} the pool's failure, or a {@link PoolClosedError}.
   */
  checkOpen(): void {
    if (this.#failure !== undefined) throw this.#failure;
    if (!this.accepting) {
      throw new PoolClosedError("The pool is closed: no new tasks are taken");
    }
  }

  /** idle → starting. @returns True when this call started the pool. */
  start(): boolean {
    if (this.#phase !== "idle") return false;
    this.#phase = "starting";
    return true;
  }

  /** The first full set of workers is up: resolves `ready`. */
  markReady(): void {
    if (this.#wasReady || !this.running) return;
    this.#wasReady = true;
    if (this.#phase === "starting") this.#phase = "running";
    this.#ready.resolve();
    this.notify();
  }

  /** A graceful close begins: finish the work in flight. */
  drain(): void {
    if (this.accepting) this.#phase = "draining";
    this.notify();
  }

  /** Stop now: the work in flight is failed, workers are stopped. */
  stop(): void {
    if (this.#phase !== "closed") this.#phase = "stopping";
    this.#ready.reject(
      this.#failure ??
        new PoolClosedError("The pool was closed before it was ready"),
    );
    this.notify();
  }

  /** Everything is stopped and removed. */
  closed(): void {
    this.#phase = "closed";
  }

  /**
   * The pool cannot go on.
   * @returns False when it had already failed (or is stopping).
   */
  fail(error: unknown): boolean {
    if (this.#failure !== undefined || !this.running) return false;
    this.#failure = error;
    this.#phase = "failed";
    this.#ready.reject(error);
    this.notify();
    return true;
  }

  /** Resolves at the next {@link notify}. */
  changed(): Promise<void> {
    return this.#changed.promise;
  }

  /** Wakes whoever waits in {@link changed}. */
  notify(): void {
    const changed = this.#changed;
    this.#changed = Promise.withResolvers();
    changed.resolve();
  }
}
