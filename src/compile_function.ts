/**
 * Task functions, the worker's side: rebuilt from source text or imported
 * from a module (the pool's side is `function_ref.ts`). Imports nothing.
 *
 * @module
 */

/** A task function as a worker calls it. */
export type Fn = (...args: unknown[]) => unknown;

const NOT_DEFINED = /^(\S+) is not defined$/;

/**
 * Explains a `ReferenceError` from a function sent as source: it used a
 * variable of its caller's scope. Returns the same error, message rewritten.
 */
export function selfContainedHint(error: unknown): unknown {
  if (error instanceof ReferenceError) {
    const match = NOT_DEFINED.exec(error.message);
    if (match) {
      const name = match[1];
      error.message =
        `${name} is not defined in the worker: task functions are sent ` +
        `to workers as source text and must be self-contained. Pass '${name}' as an ` +
        `argument (a value), load it inside the function with await import(...) ` +
        `(a function or module), or declare it with let/const if the task ` +
        `assigns to it (tasks run as strict-mode code).`;
    }
  }
  return error;
}

/**
 * Imports export `name` of `module` in the worker.
 * @throws {TypeError} when the module cannot be imported or has no such function.
 */
export async function importFunction(
  module: string,
  name: string,
): Promise<Fn> {
  let namespace: Record<string, unknown>;
  try {
    namespace = await import(module);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new TypeError(
      `Cannot import module ${module} in the worker: ${reason}`,
      { cause: error },
    );
  }
  const fn = namespace[name];
  if (typeof fn !== "function") {
    const exports = Object.keys(namespace).filter((k) =>
      typeof namespace[k] === "function"
    );
    throw new TypeError(
      `Module ${module} has no exported function '${name}'` +
        (exports.length
          ? ` (its exported functions: ${exports.join(", ")})`
          : " (it exports no functions)"),
    );
  }
  return fn as Fn;
}

/**
 * Rebuilds a function from its source text in the global scope (used by
 * workers), as strict-mode code: `this` is `undefined` in a plain call and
 * assigning to an undeclared name throws a `ReferenceError` instead of
 * creating a global. Arrows, `function`s, classes' and objects' method
 * shorthand all work.
 * @throws {SyntaxError} when the source is not a function.
 */
export function compileFunction(
  source: string,
): (...args: unknown[]) => unknown {
  const indirectEval = eval;
  let first: unknown;
  try {
    const fn = indirectEval(`"use strict";(${source}\n)`);
    if (typeof fn === "function") return fn;
  } catch (error) {
    first = error;
  }
  try {
    const holder = indirectEval(`"use strict";({${source}\n})`);
    const descriptor = Object.values(
      Object.getOwnPropertyDescriptors(holder),
    )[0];
    const fn = descriptor?.value;
    if (typeof fn === "function") return fn;
  } catch {
    // report the first error: it is about the more common form
  }
  if (first instanceof Error) throw first;
  throw new SyntaxError(`Not a function: ${source.slice(0, 80)}`);
}
