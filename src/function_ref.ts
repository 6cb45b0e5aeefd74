/**
 * Shipping task functions to workers, the pool's side: by source text
 * (function values) or by module reference (`{ module, name }`). Each
 * function is given an id once and defined once per worker; later calls name
 * it by id. The worker's side, rebuilding them, is `compile_function.ts`.
 *
 * @module
 */
import { callerModule } from "./_caller.ts";

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
  /**
   * Module specifier: an absolute URL (`file:`, `https:`, `npm:`, `jsr:`),
   * a path relative to the calling module (the pool option `base` instead,
   * if set), or a bare name of the caller's import map (deno.json
   * `imports`), resolved in the pool's process.
   */
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
/** Source that uses `import(...)` or `import.meta`. */
const USES_IMPORT = /\bimport\s*(?:\(|\.\s*meta\b)/;
/** `import("literal")` with a plain string literal. */
const LITERAL_IMPORT = /\bimport\s*\(\s*(["'])([^"'`$\\\n]+)\1\s*(?=[,)])/g;
/** A function's source that is method shorthand (`name(a) { … }`). */
const FUNCTION_FORM =
  /^(?:async\s+)?(?:function\b|\(|[\w$]+\s*=>|class\b)|^async\s+[\w$]+\s*=>/;

/** Escapes the characters a file path may hold that a URL reads specially. */
function escapePath(path: string): string {
  return path.replaceAll("%", "%25").replaceAll("#", "%23").replaceAll(
    "?",
    "%3F",
  );
}

/** The current directory as a base URL (when no caller module is known). */
function cwdBase(): string {
  return new URL(`file://${escapePath(Deno.cwd())}/`).href;
}

/**
 * Resolves `specifier` as the module `base` would: a relative path against
 * `base`, a bare name through the import map (deno.json `imports`) of this
 * process; URLs and `npm:`/`jsr:` specifiers stay as they are.
 */
export function _resolveSpecifier(specifier: string, base: string): string {
  if (/^(\.{1,2})?\//.test(specifier)) {
    return new URL(escapePath(specifier), base).href;
  }
  if (/^[a-z][a-z0-9+.-]*:/i.test(specifier)) return specifier;
  return _importMap().resolve(specifier) ?? specifier; // else: the worker may know it
}

/** An import map's `imports`, with the URL its relative targets are against. */
interface ImportMap {
  resolve(specifier: string): string | undefined;
}

let importMap: ImportMap | undefined;

/**
 * The `imports` of the owner's deno.json (or deno.jsonc, or the file its
 * `importMap` names), found from the current directory upwards, read once.
 * Bare names are resolved through it in the pool's process, so workers get
 * URLs (`npm:`, `jsr:`, `https:`, `file:`) whatever config they start with.
 */
export function _importMap(): ImportMap {
  if (importMap) return importMap;
  let imports: Record<string, string> = {};
  let base = cwdBase();
  try {
    for (let dir = Deno.cwd();; dir = dir.replace(/\/[^/]*$/, "") || "/") {
      const found = ["deno.json", "deno.jsonc"].map((n) => `${dir}/${n}`)
        .find((path) => {
          try {
            return Deno.statSync(path).isFile;
          } catch {
            return false;
          }
        });
      if (found) {
        let config = parseJsonc(Deno.readTextFileSync(found));
        base = new URL(`file://${escapePath(found)}`).href;
        if (typeof config.importMap === "string") {
          const mapUrl = new URL(escapePath(config.importMap), base);
          config = parseJsonc(Deno.readTextFileSync(mapUrl));
          base = mapUrl.href;
        }
        if (config.imports && typeof config.imports === "object") {
          imports = config.imports as Record<string, string>;
        }
        break;
      }
      if (dir === "/") break;
    }
  } catch { /* no readable config: no map */ }
  const target = (value: string) =>
    /^\.{0,2}\//.test(value) ? new URL(escapePath(value), base).href : value;
  importMap = {
    resolve(specifier) {
      const exact = imports[specifier];
      if (typeof exact === "string") return target(exact);
      let best = "";
      for (const key of Object.keys(imports)) {
        if (
          key.endsWith("/") && specifier.startsWith(key) &&
          key.length > best.length
        ) best = key;
      }
      if (best) return target(imports[best]!) + specifier.slice(best.length);
      // "name/sub" under an exact "name" mapping to a registry package.
      const slash = specifier.indexOf(
        "/",
        specifier.startsWith("@") ? specifier.indexOf("/") + 1 : 0,
      );
      if (slash > 0) {
        const head = imports[specifier.slice(0, slash)];
        if (typeof head === "string" && /^(npm|jsr):/.test(head)) {
          return head + specifier.slice(slash);
        }
      }
      return undefined;
    },
  };
  return importMap;
}

/** JSON with comments (deno.jsonc); naive about comment markers in strings. */
function parseJsonc(text: string): Record<string, unknown> {
  try {
    return JSON.parse(text);
  } catch {
    return JSON.parse(
      text.replace(
        /("(?:[^"\\]|\\.)*")|\/\/[^\n]*|\/\*[\s\S]*?\*\//g,
        (_m, str) => str ?? "",
      )
        .replace(/,(\s*[}\]])/g, "$1"),
    );
  }
}

/**
 * Makes a task's `import(...)` and `import.meta` mean what they mean in the
 * module that called the pool (`base`): literal specifiers are resolved now
 * (relative paths against `base`, bare names through this process's import
 * map); other `import(x)` calls go through a resolver against `base`, and
 * `import.meta` becomes the caller's (`url`, `resolve`, `main: false`).
 */
export function _withCallerImports(source: string, base: string): string {
  let text = source.replace(
    LITERAL_IMPORT,
    (_, quote: string, specifier: string) =>
      `import(${quote}${_resolveSpecifier(specifier, base)}${quote}`,
  );
  if (!/\bimport\s*\(\s*[^"'\s]|\bimport\s*\.\s*meta\b/.test(text)) {
    return text;
  }
  text = text.replace(/\bimport\s*\.\s*meta\b/g, "__distex_meta")
    .replace(/\bimport\s*\(/g, "__distex_import(");
  const body = FUNCTION_FORM.test(text.trimStart())
    ? `(${text}\n)`
    : `Object.values(Object.getOwnPropertyDescriptors({${text}\n}))[0].value`;
  const url = JSON.stringify(base);
  return `((__distex_import, __distex_meta) => ${body})(` +
    `(s, o) => import(/^\\.{0,2}\\//.test(s) ? new URL(s, ${url}).href : s, o), ` +
    `{ url: ${url}, main: false, resolve: (s) => ` +
    `/^\\.{0,2}\\//.test(s) ? new URL(s, ${url}).href : s })`;
}

/** Assigns ids to functions and remembers them. One table per pool. */
export class FunctionTable {
  #byValue = new WeakMap<object, FunctionSpec>();
  #byKey = new Map<string, FunctionSpec>();
  #next = 1;
  #base: string | undefined;

  /**
   * @param base What relative specifiers are resolved against instead of
   * the calling module (the pool option `base`).
   */
  constructor(base?: string | URL) {
    if (base !== undefined) {
      const href = base instanceof URL ? base.href : base;
      this.#base = /^[a-z][a-z0-9+.-]*:/i.test(href)
        ? href
        : new URL(escapePath(href), cwdBase()).href;
    }
  }

  /** The base for specifiers: the option, the caller, or the current directory. */
  #baseNow(): string {
    return this.#base ?? callerModule() ?? cwdBase();
  }

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
      const shipped = USES_IMPORT.test(source)
        ? _withCallerImports(source, this.#baseNow())
        : source;
      return this.#intern(shipped, () => ({
        source: shipped,
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
      // The caller's stack is captured only for a relative path.
      const resolved = /^[a-z][a-z0-9+.-]*:/i.test(module)
        ? module
        : _resolveSpecifier(
          module,
          /^(\.{1,2})?\//.test(module) ? this.#baseNow() : "",
        );
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
