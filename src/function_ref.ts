/**
 * Shipping task functions to workers, the pool's side: by source text
 * (function values) or by module reference (`{ module, name }`). Each
 * function is given an id once and defined once per worker; later calls name
 * it by id. The worker's side, rebuilding them, is `compile_function.ts`.
 *
 * @module
 */

/**
 * A function exported by a module the worker imports itself. Its type
 * parameters, if given, type the arguments and the result of `run()`/`map()`.
 *
 * @typeParam A The function's parameter types.
 * @typeParam R Its return type.
 *
 * @example A typed reference
 * ```ts ignore
 * import { type ModuleFunction, Pool } from "@distex/pool";
 * const fib: ModuleFunction<[number], number> = {
 *   module: import.meta.resolve("./tasks.ts"),
 *   name: "fib",
 * };
 * await using pool = new Pool(2);
 * const n: number = await pool.run(fib, 30);
 * ```
 */
// deno-lint-ignore no-explicit-any
export interface ModuleFunction<A extends unknown[] = any[], R = unknown> {
  /** Module specifier: an absolute URL (`file:`, `https:`, `npm:`, `jsr:`) or a path relative to the current directory. */
  module: string;
  /** The export to call. */
  name: string;
  /**
   * Never set at run time: it only carries the function's type, so that
   * `run()` knows the result type of a typed reference.
   */
  readonly signature?: (...args: A) => R;
}

/**
 * What a pool can run: a self-contained function (sent as source text) or a
 * {@link ModuleFunction}.
 */
// deno-lint-ignore no-explicit-any
export type TaskFunction<A extends unknown[] = any[], R = unknown> =
  | ((...args: A) => R)
  | ModuleFunction<A, R>;

/** How a worker gets a function: its id and either source or module export. */
export interface FunctionSpec {
  /** The id calls use. */
  readonly id: number;
  /** Source text, for function values. */
  readonly source?: string;
  /** Module specifier, for module references. */
  readonly module?: string;
  /** Export name, for module references. */
  readonly name?: string;
  /** A label for error messages. */
  readonly label: string;
}

const NATIVE = /\{\s*\[native code\]\s*\}\s*$/;

/** Escapes the characters a file path may hold that a URL reads specially. */
function escapePath(path: string): string {
  return path.replaceAll("%", "%25").replaceAll("#", "%23").replaceAll(
    "?",
    "%3F",
  );
}

function resolveModule(specifier: string): string {
  if (/^(\.{1,2})?\//.test(specifier)) {
    const base = new URL(`file://${escapePath(Deno.cwd())}/`);
    return new URL(escapePath(specifier), base).href;
  }
  return specifier;
}

/** Assigns ids to functions and remembers them. One table per pool. */
export class FunctionTable {
  #byValue = new WeakMap<object, FunctionSpec>();
  #byKey = new Map<string, FunctionSpec>();
  #next = 1;

  /**
   * The spec for `fn`, created on first use.
   * @throws {TypeError} for native or bound functions and for values that are
   * neither functions nor module references.
   */
  lookup(fn: TaskFunction): FunctionSpec {
    const known = this.#byValue.get(fn);
    if (known) return known;
    const spec = this.#create(fn);
    this.#byValue.set(fn, spec);
    return spec;
  }

  #create(fn: unknown): FunctionSpec {
    if (typeof fn === "function") {
      const source = Function.prototype.toString.call(fn);
      if (NATIVE.test(source)) {
        throw new TypeError(
          `Cannot send ${
            fn.name ? `function '${fn.name}'` : "this function"
          } to a worker: it is a native or bound function, which has no source text. ` +
            `Wrap it in an arrow function, e.g. (x) => Math.sqrt(x).`,
        );
      }
      return this.#intern(source, () => ({
        source,
        label: fn.name ? `function '${fn.name}'` : "anonymous function",
      }));
    }
    if (
      fn !== null && typeof fn === "object" &&
      typeof (fn as ModuleFunction).module === "string" &&
      typeof (fn as ModuleFunction).name === "string"
    ) {
      const { module, name } = fn as ModuleFunction;
      if (!module || !name) {
        throw new TypeError(
          `A module reference needs a non-empty 'module' and 'name', got ${
            JSON.stringify({ module, name })
          }`,
        );
      }
      const resolved = resolveModule(module);
      return this.#intern(`${resolved}#${name}`, () => ({
        module: resolved,
        name,
        label: `'${name}' from ${resolved}`,
      }));
    }
    throw new TypeError(
      `A task must be a function or a module reference { module, name }, got ${
        fn === null ? "null" : typeof fn
      }`,
    );
  }

  #intern(
    key: string,
    make: () => Omit<FunctionSpec, "id">,
  ): FunctionSpec {
    let spec = this.#byKey.get(key);
    if (!spec) {
      spec = { id: this.#next++, ...make() };
      this.#byKey.set(key, spec);
    }
    return spec;
  }
}
