/**
 * Registering a class of the user's with the codec, so its instances cross
 * the wire as themselves instead of as plain objects.
 *
 * @module
 */
import { _registerType } from "./_codec.ts";

/** How a registered class crosses: see {@link registerType}. */
export interface TypeCodec<T, D = unknown> {
  /**
   * The name the type travels under; it must be the same in the pool and in
   * the workers, and unique among registered types.
   * @default Class.name
   */
  name?: string | undefined;
  /** Turns an instance into structured-clone data (plain objects, arrays, …). */
  encode(value: T): D;
  /** Rebuilds an instance from what {@link TypeCodec.encode} returned. */
  decode(data: D): T;
}

/**
 * Makes instances of `Class` (and its subclasses) cross between the pool and
 * its workers as instances, by the given `encode`/`decode` pair. Without it a
 * class instance arrives as a plain object of its own fields, as
 * `structuredClone` would give it.
 *
 * Workers are separate processes: each one must register the type too, before
 * a value of it reaches it. Register it at the top level of a module, import
 * that module wherever you send or receive the type, and have every worker
 * import it through the pool's `initializer`
 * (`initializer: { module: import.meta.resolve("./types.ts"), name: "ready" }`,
 * a module reference, whose import registers the type before the worker's
 * first task). Values of a type the receiving process has not registered fail
 * with a `DataCloneError` that says so. Use the same copy of this library in
 * the pool and in the workers (the same `jsr:`/file URL), or the registration
 * does not reach the codec the workers use.
 *
 * Registering the same class again under the same name replaces its codec.
 *
 * @param Class The class whose instances are sent.
 * @param codec Its wire name and the two conversions.
 * @throws {TypeError} when the name is taken by another class, or is empty.
 *
 * @example A point type
 * ```ts
 * import { Pool, registerType } from "@distex/pool";
 *
 * class Point {
 *   constructor(readonly x: number, readonly y: number) {}
 *   norm(): number {
 *     return Math.hypot(this.x, this.y);
 *   }
 * }
 * registerType(Point, {
 *   encode: (p) => ({ x: p.x, y: p.y }),
 *   decode: (data) => new Point(data.x, data.y),
 * });
 *
 * // In types.ts, next to the registration: `export function ready() {}`.
 * // Every worker imports types.ts (and so registers Point) before its tasks:
 * // await using pool = new Pool({
 * //   initializer: { module: import.meta.resolve("./types.ts"), name: "ready" },
 * // });
 * // (await pool.run((p: Point) => p.norm(), new Point(3, 4))); // 5
 * ```
 */
export function registerType<T extends object, D = unknown>(
  Class: abstract new (...args: never[]) => T,
  codec: TypeCodec<T, D>,
): void {
  if (typeof Class !== "function") {
    throw new TypeError(
      `registerType() takes a class as its first argument, got ${typeof Class}`,
    );
  }
  if (
    typeof codec?.encode !== "function" || typeof codec?.decode !== "function"
  ) {
    throw new TypeError(
      `registerType(${Class.name}, codec): codec needs encode(value) and decode(data) functions`,
    );
  }
  const name = codec.name ?? Class.name;
  if (typeof name !== "string" || name === "") {
    throw new TypeError(
      "registerType(): an anonymous class needs a name: pass { name }",
    );
  }
  _registerType(
    name,
    Class,
    codec.encode as (value: never) => unknown,
    codec.decode as (data: unknown) => unknown,
  );
}
