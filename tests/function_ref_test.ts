/**
 * Shipping functions: `FunctionTable` ids and `compileFunction` forms.
 *
 * @module
 */
import assert from "node:assert/strict";
import { FunctionTable, type TaskFunction } from "../src/function_ref.ts";
import { compileFunction } from "../src/compile_function.ts";
import { throwsExactly } from "./_util.ts";

Deno.test("FunctionTable.lookup() gives the same spec for the same function", () => {
  const table = new FunctionTable();
  const fn = (x: number) => x + 1;
  const spec = table.lookup(fn);
  assert.equal(table.lookup(fn), spec);
  assert.equal(spec.source, fn.toString());
  assert.equal(spec.module, undefined);
  assert.equal(spec.label, "function 'fn'");
});

Deno.test("FunctionTable.lookup() numbers new functions 1, 2, 3, …", () => {
  const table = new FunctionTable();
  const ids = [
    table.lookup((x: number) => x + 1).id,
    table.lookup((x: number) => x + 2).id,
    table.lookup({ module: "file:///a.ts", name: "f" }).id,
    table.lookup((x: number) => x + 3).id,
  ];
  assert.deepEqual(ids, [1, 2, 3, 4]);
  // A second table starts again: ids belong to one pool.
  assert.equal(new FunctionTable().lookup((x: number) => x * 9).id, 1);
});

Deno.test("FunctionTable.lookup() shares one id between equal sources", () => {
  const table = new FunctionTable();
  const make = () => (x: number) => x * 2; // a new closure each call
  const first = make();
  const second = make();
  assert.notEqual(first, second);
  assert.equal(table.lookup(first).id, table.lookup(second).id);
  assert.notEqual(
    table.lookup(first).id,
    table.lookup((x: number) => x * 3).id,
  );
});

Deno.test("FunctionTable.lookup() refuses native and bound functions", () => {
  const table = new FunctionTable();
  const natives: [unknown, RegExp][] = [
    [Math.max, /function 'max'.*native or bound/],
    [Array.prototype.map, /function 'map'/],
    [((x: number) => x).bind(null), /native or bound/],
    [function named() {}.bind({}), /'bound named'/],
    [parseInt, /'parseInt'/],
  ];
  for (const [fn, message] of natives) {
    const error = throwsExactly(
      () => table.lookup(fn as TaskFunction),
      TypeError,
      message,
    );
    assert.match(error.message, /Wrap it in an arrow function/);
  }
});

Deno.test("FunctionTable.lookup() refuses values that are not tasks", () => {
  const table = new FunctionTable();
  const cases: [unknown, RegExp][] = [
    [42, /got number/],
    [null, /got null/],
    ["x => x", /got string/],
    [{ module: 1, name: "f" }, /got object/],
    [{ module: "file:///a.ts" }, /got object/],
    [{ module: "", name: "f" }, /non-empty 'module' and 'name'/],
    [{ module: "file:///a.ts", name: "" }, /non-empty/],
  ];
  for (const [value, message] of cases) {
    throwsExactly(
      () => table.lookup(value as TaskFunction),
      TypeError,
      message,
      JSON.stringify(value),
    );
  }
});

Deno.test("FunctionTable.lookup() resolves module references once", () => {
  const table = new FunctionTable();
  // Relative paths are relative to the calling module: this file.
  const cwd = new URL("./", import.meta.url);
  const relative = table.lookup({ module: "./tasks/fib.ts", name: "fib" });
  assert.equal(relative.module, new URL("./tasks/fib.ts", cwd).href);
  assert.equal(relative.name, "fib");
  assert.equal(relative.source, undefined);
  assert.match(relative.label, /'fib' from file:\/\//);
  // The same module and export, written another way: the same id.
  const absolute = table.lookup({ module: relative.module!, name: "fib" });
  assert.equal(absolute.id, relative.id);
  const parent = table.lookup({ module: "../x.ts", name: "f" });
  assert.equal(parent.module, new URL("../x.ts", cwd).href);
  const rooted = table.lookup({ module: "/srv/tasks.ts", name: "f" });
  assert.equal(rooted.module, "file:///srv/tasks.ts");
  // Other export of the same module: a new id.
  const other = table.lookup({ module: "./tasks/fib.ts", name: "fast" });
  assert.notEqual(other.id, relative.id);
  // Registry and remote specifiers pass through untouched.
  for (
    const module of ["npm:left-pad@1", "jsr:@std/path", "https://x.test/m.ts"]
  ) {
    assert.equal(table.lookup({ module, name: "f" }).module, module);
  }
  // The option base instead of the caller; a path is relative to the cwd.
  const based = new FunctionTable("lib/");
  assert.equal(
    based.lookup({ module: "./m.ts", name: "f" }).module,
    new URL("lib/m.ts", `file://${Deno.cwd()}/`).href,
  );
  // A bare name goes through this process's import map (deno.json maps the
  // package's own name to mod.ts).
  assert.equal(
    table.lookup({ module: "@distex/pool", name: "Pool" }).module,
    new URL("../mod.ts", import.meta.url).href,
  );
});

Deno.test("compileFunction() rebuilds every function form", async () => {
  const methods = {
    plain(x: number) {
      return x + 1;
    },
    async asyncMethod(x: number) {
      await Promise.resolve();
      return x + 2;
    },
    *generator(n: number) {
      for (let i = 0; i < n; i++) yield i;
    },
    "quoted-name"(x: number) {
      return x + 3;
    },
    get(x: number) {
      return x + 4;
    },
    async(x: number) {
      return x + 5;
    },
  };
  function declared(x: number): number {
    return x * 10;
  }
  async function asyncDeclared(x: number): Promise<number> {
    await Promise.resolve();
    return x * 20;
  }
  function* gen(): Generator<number> {
    yield 1;
    yield 2;
  }
  const arrow = (x: number) => x - 1;
  const asyncArrow = async (x: number) => await Promise.resolve(x - 2);
  const oneParam = (x: number) => x * x;
  const anonymous = function (x: number) {
    return -x;
  };
  type Fn = (...args: unknown[]) => unknown;
  const compile = (fn: unknown) => compileFunction(String(fn)) as Fn;
  assert.equal(compile(methods.plain)(1), 2);
  assert.equal(await compile(methods.asyncMethod)(1), 3);
  assert.deepEqual([...(compile(methods.generator)(3) as Iterable<number>)], [
    0,
    1,
    2,
  ]);
  assert.equal(compile(methods["quoted-name"])(1), 4);
  assert.equal(compile(methods.get)(1), 5);
  assert.equal(compile(methods.async)(1), 6);
  assert.equal(compile(declared)(2), 20);
  assert.equal(await compile(asyncDeclared)(2), 40);
  assert.deepEqual([...(compile(gen)() as Iterable<number>)], [1, 2]);
  assert.equal(compile(arrow)(5), 4);
  assert.equal(await compile(asyncArrow)(5), 3);
  assert.equal(compile(oneParam)(7), 49);
  assert.equal(compile(anonymous)(7), -7);
  assert.equal(compileFunction("x => x + 100")(1), 101);
  // A trailing line comment does not swallow the closing parenthesis.
  assert.equal(compileFunction("(x) => x // the identity")(8), 8);
  const Class = compileFunction(
    "class Point { constructor(x) { this.x = x; } }",
  );
  assert.equal(typeof Class, "function");
});

Deno.test("compileFunction() evaluates in the global scope", () => {
  // `source` and `indirectEval` are locals of compileFunction itself.
  assert.equal(compileFunction("() => typeof source")(), "undefined");
  assert.equal(compileFunction("() => typeof indirectEval")(), "undefined");
  assert.equal(compileFunction("() => typeof Deno")(), "object");
  const local = 5;
  assert.equal(local, 5);
  assert.throws(() => compileFunction("() => local")(), ReferenceError);
});

Deno.test("compileFunction() refuses source that is not a function", () => {
  for (const source of ["1 + 1", "return 5", "", "{ a: 1 }", "=> x", "class"]) {
    assert.throws(
      () => compileFunction(source),
      SyntaxError,
      JSON.stringify(source),
    );
  }
});
