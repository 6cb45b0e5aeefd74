/**
 * The contract suite: every behaviour of the public `Pool` API that holds for
 * any kind of worker (local, SSH, mixed). Each test builds its own pool from
 * the launcher's options, so a suite can be registered once per launcher:
 *
 * ```ts ignore
 * contractSuite("local", () => ({ workers: 2 }));
 * contractSuite("ssh", () => ({ workers: 0, hosts: [spec], ssh }), stopHost);
 * ```
 *
 * Nothing here assumes the workers run on this machine: pids are compared,
 * never signalled, and no file of a worker is read from here.
 *
 * It ports every scenario of Python distex's `tests/pool_test.py`, then adds
 * the contract items of DESIGN.md (value fidelity, error classes, function
 * forms, module references, initializers, concurrency inside a worker).
 *
 * @module
 */
import assert from "node:assert/strict";
import { Pool, type PoolOptions } from "../mod.ts";
import { BUILTIN_ERRORS, flushMicrotasks, rejection, track } from "./_util.ts";

/** Builds the options for one pool of the launcher under test. */
export type OptionsFactory = () => PoolOptions | Promise<PoolOptions>;

/** The module of the by-reference tasks (no imports of its own). */
export const TASKS_FILE = new URL("./fixtures/tasks.ts", import.meta.url).href;

// The data of distex's pool_test.py: x, y, z and their zip.
const REPS = 100;
const X = Array.from({ length: REPS }, (_, i) => i);
const Y = X.map((i) => i * i);
const Z = X.map((i) => i * 2);
const XYZ = X.map((x, i) => [x, Y[i]!, Z[i]!] as [number, number, number]);

/** `f` of pool_test.py. Self-contained, so it can be sent to a worker. */
const f = (x: number): number => x * 2;

/** `g` of pool_test.py. */
const g = (x: number, y: number, z: number): number => x * y - 4 * z;

/** `exc` of pool_test.py (RuntimeError there, Error here). */
const exc = (message: string): never => {
  throw new Error(message);
};

/** `ait` of pool_test.py: yields the items of `it` with a timer turn between. */
async function* ait<T>(it: Iterable<T>): AsyncGenerator<T> {
  for (const x of it) {
    await new Promise((resolve) => setTimeout(resolve, 1));
    yield x;
  }
}

/**
 * Asserts that `error` carries the worker's stack, not a local one: the task's
 * frame (sent as source, so shown as `task source:line:col`) and none of the
 * library's own frames.
 */
function assertRemoteStack(error: Error): void {
  assert.equal(typeof error.stack, "string");
  assert.match(
    error.stack!,
    /\(task source:\d+:\d+\)/,
    `expected the worker's stack, got:\n${error.stack}`,
  );
  const remote = error.stack!.split("--- caller ---")[0]!;
  assert.doesNotMatch(
    remote,
    /compileFunction|worker_runtime|ext:core/,
    `expected no library frames, got:\n${error.stack}`,
  );
  assert.doesNotMatch(
    remote,
    /_contract\.ts/,
    "the stack above the caller section should be the worker's",
  );
}

/**
 * Registers the contract tests for one launcher.
 *
 * @param label Prefix of every test name, e.g. `"local"` → `"[local] …"`.
 * @param options Builds the options of each test's pool (called per test;
 * tests add their own `qsize`, `initializer`, … on top).
 * @param cleanup Runs after the suite, e.g. to stop an sshd.
 * @param tasksModule Where the workers find `tests/fixtures/tasks.ts` (a
 * file URL), for hosts that do not see this checkout's files (default: the
 * file itself).
 */
export function contractSuite(
  label: string,
  options: OptionsFactory,
  cleanup?: () => void | Promise<void>,
  tasksModule: string = TASKS_FILE,
): void {
  const TASKS = tasksModule;
  async function open(extra: PoolOptions = {}): Promise<Pool> {
    return new Pool({ ...(await options()), ...extra });
  }

  function test(name: string, fn: () => Promise<void>): void {
    Deno.test(`[${label}] ${name}`, fn);
  }

  // ---- the scenarios of distex's tests/pool_test.py --------------------

  test("Pool.run() runs an async function and awaits it", async () => {
    await using pool = await open();
    const add = async (a: number, b: number): Promise<number> => {
      await new Promise((resolve) => setTimeout(resolve, 1));
      return a + b;
    };
    assert.equal(await pool.run(add, 3, 5), 8);
  });

  test("Pool.run() handles many concurrent calls", async () => {
    await using pool = await open();
    const actual = await Promise.all(
      X.map((x, i) => pool.run(g, x, Y[i]!, Z[i]!)),
    );
    assert.deepEqual(actual, X.map((x, i) => g(x, Y[i]!, Z[i]!)));
  });

  test("Pool.run() rejects with the task's exception", async () => {
    await using pool = await open();
    const error = await rejection(pool.run(exc, "Deliberately thrown"));
    assert.equal(error.constructor, Error);
    assert.equal(error.message, "Deliberately thrown");
    assertRemoteStack(error);
  });

  test(
    "Pool.runOnAll() runs once on every worker while other tasks run",
    async () => {
      await using pool = await open();
      await pool.ready;
      const n = pool.totalWorkers;
      const items = [...X.slice(0, n + 1), ...X.slice(0, n + 1)];
      const mapped = Array.fromAsync(pool.map(f, items));
      const runs = Promise.all(items.map((x) => pool.run(f, x)));
      const pids = await pool.runOnAll(() => Deno.pid);
      assert.equal(pids.length, n);
      assert.equal(new Set(pids).size, n, `pids: ${pids}`);
      assert.deepEqual(await mapped, items.map(f));
      assert.deepEqual(await runs, items.map(f));
    },
  );

  test("Pool.submit() resolves with the result", async () => {
    await using pool = await open();
    const future = pool.submit(g, 10, 9, 8);
    assert.ok(future instanceof Promise);
    assert.equal(await future, g(10, 9, 8));
  });

  test("Pool.submit() rejects with the task's exception", async () => {
    await using pool = await open();
    const error = await rejection(pool.submit(exc, "Okay then"));
    assert.equal(error.constructor, Error);
    assert.equal(error.message, "Okay then");
  });

  test("Pool.map() keeps input order", async () => {
    await using pool = await open();
    assert.deepEqual(await Array.fromAsync(pool.map(f, X)), X.map(f));
  });

  test("Pool.map() keeps input order when items finish out of order", async () => {
    await using pool = await open();
    // Item i sleeps (n - i) ms: later items finish first, so a stream that
    // yielded results as they came would be reversed.
    const n = 24;
    const xs = Array.from({ length: n }, (_, i) => i);
    const late = async (i: number, n: number) => {
      await new Promise((resolve) => setTimeout(resolve, (n - i) * 3));
      return i;
    };
    const out = await Array.fromAsync(
      pool.map(late, xs, xs.map(() => n), { chunkSize: 1 }),
    );
    assert.deepEqual(out, xs);
    const unordered = await Array.fromAsync(
      pool.map(late, xs, xs.map(() => n), { chunkSize: 1, ordered: false }),
    );
    assert.notDeepEqual(unordered, xs, "the items did finish out of order");
    assert.deepEqual(unordered.toSorted((a, b) => a - b), xs);
  });

  test("Pool.map() zips three iterables in order", async () => {
    await using pool = await open();
    assert.deepEqual(
      await Array.fromAsync(pool.map(g, X, Y, Z)),
      XYZ.map(([x, y, z]) => g(x, y, z)),
    );
  });

  test("Pool.map() with star spreads each item into the arguments", async () => {
    await using pool = await open();
    assert.deepEqual(
      await Array.fromAsync(pool.map(g, XYZ, { star: true })),
      XYZ.map(([x, y, z]) => g(x, y, z)),
    );
  });

  test("Pool.map() with chunkSize keeps input order", async () => {
    await using pool = await open();
    assert.deepEqual(
      await Array.fromAsync(pool.map(f, X, { chunkSize: 7 })),
      X.map(f),
    );
  });

  test("Pool.map() with chunkSize zips three iterables", async () => {
    await using pool = await open();
    assert.deepEqual(
      await Array.fromAsync(pool.map(g, X, Y, Z, { chunkSize: 10 })),
      XYZ.map(([x, y, z]) => g(x, y, z)),
    );
  });

  test("Pool.map() streams results to for await", async () => {
    await using pool = await open();
    const actual: number[] = [];
    for await (const v of pool.map(g, X, Y, Z)) actual.push(v);
    assert.deepEqual(actual, XYZ.map(([x, y, z]) => g(x, y, z)));
  });

  test("Pool.map() with star streams results to for await", async () => {
    await using pool = await open();
    const actual: number[] = [];
    for await (const v of pool.map(g, XYZ, { star: true })) actual.push(v);
    assert.deepEqual(actual, XYZ.map(([x, y, z]) => g(x, y, z)));
  });

  test("Pool.map() with star reads an async iterator", async () => {
    await using pool = await open();
    const actual: number[] = [];
    for await (const v of pool.map(g, ait(XYZ), { star: true })) {
      actual.push(v);
    }
    assert.deepEqual(actual, XYZ.map(([x, y, z]) => g(x, y, z)));
  });

  test("Pool.map() zips async and sync iterables", async () => {
    await using pool = await open();
    assert.deepEqual(
      await Array.fromAsync(pool.map(g, ait(X), ait(Y), Z)),
      XYZ.map(([x, y, z]) => g(x, y, z)),
    );
  });

  test(
    "Pool.map() with chunkSize zips async, sync and stream sources",
    async () => {
      await using pool = await open();
      const actual: number[] = [];
      const zs = ReadableStream.from(Z);
      for await (const v of pool.map(g, ait(X), Y, zs, { chunkSize: 10 })) {
        actual.push(v);
      }
      assert.deepEqual(actual, XYZ.map(([x, y, z]) => g(x, y, z)));
    },
  );

  test(
    "Pool works as an executor: submit, then close() waits for the futures",
    async () => {
      await using pool = await open();
      const futures = XYZ.map(([x, y, z]) => pool.submit(g, x, y, z));
      let settled = 0;
      for (const future of futures) future.then(() => settled++);
      await pool.close();
      assert.equal(settled, futures.length);
      assert.deepEqual(
        await Promise.all(futures),
        XYZ.map(([x, y, z]) => g(x, y, z)),
      );
    },
  );

  // ---- further contract items -------------------------------------------

  test("Pool.apply() takes the arguments as an array", async () => {
    await using pool = await open();
    assert.equal(await pool.apply(g, [1, 2, 3]), g(1, 2, 3));
  });

  test("Pool.map() over an empty iterable ends at once", async () => {
    await using pool = await open();
    assert.deepEqual(await Array.fromAsync(pool.map(f, [])), []);
  });

  test("Pool.map() errors the stream with the task's exception", async () => {
    await using pool = await open();
    const error = await rejection(
      Array.fromAsync(pool.map((x: number) => {
        if (x === 5) throw new RangeError(`bad item ${x}`);
        return x;
      }, X)),
    );
    assert.equal(error.constructor, RangeError);
    // A map of one item per task says which item failed.
    assert.match(error.message, /^bad item 5( \(map item 5\))?$/);
  });

  test("Pool.runOnAll() gives one result per worker", async () => {
    await using pool = await open();
    const results = await pool.runOnAll((x: number) => x + 1, 41);
    assert.equal(results.length, pool.totalWorkers);
    assert.ok(results.every((r) => r === 42), `results: ${results}`);
  });

  test("Pool.run() round-trips values with structured-clone fidelity", async () => {
    await using pool = await open();
    const values: [string, unknown][] = [
      ["undefined", undefined],
      ["null", null],
      ["NaN", NaN],
      ["string", "héllo ✓ \u{1F600}"],
      ["Map", new Map<unknown, unknown>([[1, "a"], ["k", { b: [2] }]])],
      ["Set", new Set([1, "a", 3n])],
      ["Date", new Date(Date.UTC(2020, 1, 29, 12, 30))],
      ["small BigInt", 42n],
      ["huge BigInt", 2n ** 200n + 7n],
      ["negative huge BigInt", -(3n ** 99n)],
      ["Uint8Array", new Uint8Array([0, 1, 254, 255])],
      ["empty Uint8Array", new Uint8Array(0)],
      ["Float64Array", new Float64Array([1.5, -0.25, Infinity])],
      ["Int32Array", new Int32Array([-1, 2 ** 31 - 1])],
      ["BigInt64Array", new BigInt64Array([-1n, 2n ** 62n])],
      ["object with undefined", { a: undefined, b: null }],
      ["array with holes of undefined", [undefined, 1, undefined]],
      ["nested", {
        list: [new Map([["set", new Set([new Date(0)])]])],
        bytes: { inner: new Uint8Array([9]) },
        deep: { a: { b: { c: { d: [1, [2, [3, [4n]]]] } } } },
      }],
    ];
    for (const [what, value] of values) {
      const back = await pool.run((v: unknown) => v, value);
      assert.deepEqual(back, value, `${what} did not round-trip`);
      if (value instanceof Uint8Array) {
        assert.equal(
          Object.getPrototypeOf(back),
          Uint8Array.prototype,
          `${what} came back as ${Object.prototype.toString.call(back)}`,
        );
      }
    }
  });

  test("Pool.run() and Pool.map() carry large byte arrays intact", async () => {
    await using pool = await open();
    const bytes = (n: number, seed: number) =>
      Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 255);
    const big = bytes(100_000, 1);
    const view = bytes(300_000, 2).subarray(1_000, 201_000);
    const args: [Uint8Array, Uint8Array[], { inner: Uint8Array }] = [
      big,
      [view, bytes(20_000, 3)],
      { inner: bytes(50_000, 4) },
    ];
    const back = await pool.run(
      (a: Uint8Array, list: Uint8Array[], o: { inner: Uint8Array }) => ({
        sizes: [a.length, list[0]!.length, list[1]!.length, o.inner.length],
        echoed: [a, list, [o.inner]],
      }),
      ...args,
    );
    assert.deepEqual(back.sizes, [100_000, 200_000, 20_000, 50_000]);
    assert.deepEqual(back.echoed, [args[0], args[1], [args[2].inner]]);
    for (const value of [back.echoed[0], (back.echoed[1] as Uint8Array[])[0]]) {
      assert.equal(Object.getPrototypeOf(value), Uint8Array.prototype);
    }
    // The caller's arrays are untouched.
    assert.equal(args[1][0], view);
    const chunks = await Array.fromAsync(
      pool.map((b: Uint8Array) => b.reduce((s, x) => s + x, 0), [
        big,
        view,
        big,
      ], {
        chunkSize: 2,
      }),
    );
    const sum = (b: Uint8Array) => b.reduce((s, x) => s + x, 0);
    assert.deepEqual(chunks, [sum(big), sum(view), sum(big)]);
    const made = await Array.fromAsync(
      pool.map((n: number) => new Uint8Array(n).fill(9), [70_000, 10], {
        chunkSize: 2,
      }),
    );
    assert.deepEqual(made, [
      new Uint8Array(70_000).fill(9),
      new Uint8Array(10).fill(9),
    ]);
  });

  test("Pool.run() brings back values built in the worker", async () => {
    await using pool = await open();
    const back = await pool.run(() => ({
      map: new Map([["a", 1]]),
      set: new Set(["x"]),
      date: new Date(86_400_000),
      big: 2n ** 100n,
      bytes: new TextEncoder().encode("hi"),
      nothing: undefined,
    }));
    assert.deepEqual(back, {
      map: new Map([["a", 1]]),
      set: new Set(["x"]),
      date: new Date(86_400_000),
      big: 2n ** 100n,
      bytes: new Uint8Array([104, 105]),
      nothing: undefined,
    });
    assert.equal(Object.getPrototypeOf(back.bytes), Uint8Array.prototype);
  });

  test("Pool.run() keeps circular references", async () => {
    await using pool = await open();
    type Node = { name: string; self?: Node; list: Node[] };
    const node: Node = { name: "root", list: [] };
    node.self = node;
    node.list.push(node);
    const back = await pool.run((n: Node) => n, node);
    assert.equal(back.name, "root");
    assert.equal(back.self, back);
    assert.equal(back.list[0], back);
    const built = await pool.run(() => {
      const a: { b?: unknown } = {};
      const b = { a };
      a.b = b;
      return a;
    });
    assert.equal((built.b as { a: unknown }).a, built);
  });

  test(
    "Pool.run() rejects with the same built-in error class, message and remote stack",
    async () => {
      await using pool = await open();
      for (const Class of BUILTIN_ERRORS) {
        const error = await rejection(
          pool.run(
            (name: string, message: string) => {
              const C = (globalThis as unknown as Record<
                string,
                ErrorConstructor
              >)[name]!;
              throw new C(message);
            },
            Class.name,
            `thrown as ${Class.name}`,
          ),
        );
        assert.equal(Object.getPrototypeOf(error), Class.prototype);
        assert.equal(error.name, Class.name);
        assert.equal(error.message, `thrown as ${Class.name}`);
        assertRemoteStack(error);
      }
    },
  );

  test("Pool.run() rejects with an AggregateError and its errors", async () => {
    await using pool = await open();
    const error = await rejection(pool.run(() => {
      throw new AggregateError(
        [new TypeError("first"), new RangeError("second")],
        "both failed",
      );
    }));
    assert.ok(error instanceof AggregateError);
    assert.equal(error.message, "both failed");
    assert.equal(error.errors.length, 2);
    assert.equal(Object.getPrototypeOf(error.errors[0]), TypeError.prototype);
    assert.equal(error.errors[0].message, "first");
    assert.equal(Object.getPrototypeOf(error.errors[1]), RangeError.prototype);
    assertRemoteStack(error);
  });

  test("Pool.run() keeps an error's cause", async () => {
    await using pool = await open();
    const error = await rejection(pool.run(() => {
      throw new Error("outer", { cause: new TypeError("inner") });
    }));
    assert.equal(error.message, "outer");
    assert.ok(error.cause instanceof TypeError);
    assert.equal(error.cause.message, "inner");
  });

  test(
    "Pool.run() rejects a custom error class as Error with the remote name",
    async () => {
      await using pool = await open();
      const error = await rejection(pool.run(() => {
        class DatabaseError extends Error {
          constructor(message: string) {
            super(message);
            this.name = "DatabaseError";
          }
        }
        throw new DatabaseError("no such table");
      }));
      assert.equal(Object.getPrototypeOf(error), Error.prototype);
      assert.equal(error.name, "DatabaseError");
      assert.equal(error.message, "no such table");
      assertRemoteStack(error);
      // A name that is also a key of Object.prototype is just a name.
      const odd = await rejection(pool.run(() => {
        const e = new Error("odd name");
        e.name = "constructor";
        throw e;
      }));
      assert.equal(Object.getPrototypeOf(odd), Error.prototype);
      assert.equal(odd.name, "constructor");
      assert.equal(odd.message, "odd name");
      assert.equal(
        await pool.run(() => "the worker is fine"),
        "the worker is fine",
      );
    },
  );

  test(
    "Pool.run() turns a thrown non-Error into an Error naming the value",
    async () => {
      await using pool = await open();
      const fromString = await rejection(pool.run(() => {
        throw "plain string 1234";
      }));
      assert.equal(Object.getPrototypeOf(fromString), Error.prototype);
      assert.match(fromString.message, /plain string 1234/);
      const fromObject = await rejection(pool.run(() => {
        throw { code: 4711 };
      }));
      assert.match(fromObject.message, /4711/);
      const fromNumber = await rejection(pool.run(() => {
        throw 987654;
      }));
      assert.match(fromNumber.message, /987654/);
    },
  );

  test(
    "Pool.run() of a closure over a caller variable names it and says why",
    async () => {
      await using pool = await open();
      const callerOnlyValue = 41;
      const error = await rejection(pool.run(() => callerOnlyValue + 1));
      assert.equal(Object.getPrototypeOf(error), ReferenceError.prototype);
      assert.match(error.message, /callerOnlyValue/);
      assert.match(error.message, /self-contained/);
    },
  );

  test(
    "Pool.run() runs method shorthand, function declarations and async functions",
    async () => {
      await using pool = await open();
      function declared(x: number): number {
        return x * 3;
      }
      async function asyncDeclared(x: number): Promise<number> {
        await Promise.resolve();
        return x * 4;
      }
      const methods = {
        m(x: number): number {
          return x + 1;
        },
        async am(x: number): Promise<number> {
          await Promise.resolve();
          return x + 2;
        },
      };
      assert.equal(await pool.run(methods.m, 1), 2);
      assert.equal(await pool.run(methods.am, 1), 3);
      assert.equal(await pool.run(declared, 2), 6);
      assert.equal(await pool.run(asyncDeclared, 2), 8);
      assert.equal(
        await pool.run(async (x: number) => await Promise.resolve(x), 5),
        5,
      );
      assert.equal(
        await pool.run(function (x: number) {
          return x - 1;
        }, 5),
        4,
      );
    },
  );

  test(
    "Pool.run() refuses native and bound functions with a TypeError",
    async () => {
      await using pool = await open();
      // Refused before anything is sent: the promise is already rejected.
      const refused = pool.run(Math.max, 1, 2);
      const state = track(refused);
      await flushMicrotasks();
      assert.ok(state.settled, "the native function was not refused at once");
      const native = await rejection(refused);
      assert.equal(Object.getPrototypeOf(native), TypeError.prototype);
      assert.match(native.message, /native or bound/);
      assert.match(native.message, /'max'/);
      const bound = await rejection(
        pool.run(((x: number) => x).bind(null), 1),
      );
      assert.equal(Object.getPrototypeOf(bound), TypeError.prototype);
      assert.match(bound.message, /native or bound/);
      const notAFunction = await rejection(
        pool.run(42 as unknown as () => number),
      );
      assert.equal(Object.getPrototypeOf(notAFunction), TypeError.prototype);
      assert.equal(await pool.run(() => "still works"), "still works");
    },
  );

  test(
    "Pool.run() rejects a function or symbol argument with DataCloneError and goes on",
    async () => {
      await using pool = await open();
      const fnArg = await rejection(
        pool.run((v: unknown) => typeof v, () => 1),
      );
      assert.equal(fnArg.name, "DataCloneError");
      const symbolArg = await rejection(
        pool.run((v: unknown) => typeof v, Symbol("s")),
      );
      assert.equal(symbolArg.name, "DataCloneError");
      const nested = await rejection(
        pool.run((v: unknown) => typeof v, { deep: [{ fn: () => 1 }] }),
      );
      assert.equal(nested.name, "DataCloneError");
      assert.equal(await pool.run((x: number) => x + 1, 1), 2);
      assert.deepEqual(await Array.fromAsync(pool.map(f, [1, 2, 3])), [
        2,
        4,
        6,
      ]);
    },
  );

  test(
    "Pool.run() rejects a result that cannot be sent back with DataCloneError",
    async () => {
      await using pool = await open();
      const error = await rejection(pool.run(() => () => 1));
      assert.equal(error.name, "DataCloneError");
      const symbol = await rejection(pool.run(() => Symbol("s")));
      assert.equal(symbol.name, "DataCloneError");
      assert.equal(await pool.run(() => "next"), "next");
    },
  );

  test("Pool.run() runs an exported function by module reference", async () => {
    await using pool = await open();
    assert.equal(await pool.run({ module: TASKS, name: "fib" }, 20), 6765);
    assert.equal(
      await pool.run({ module: TASKS, name: "addLater" }, 2, 3),
      5,
    );
    assert.deepEqual(
      await Array.fromAsync(
        pool.map({ module: TASKS, name: "g" }, X, Y, Z, { chunkSize: 9 }),
      ),
      XYZ.map(([x, y, z]) => g(x, y, z)),
    );
  });

  test(
    "Pool.run() of a missing module rejects with a TypeError naming it",
    async () => {
      await using pool = await open();
      const missing = new URL("./fixtures/no_such_module.ts", import.meta.url)
        .href;
      const error = await rejection(
        pool.run({ module: missing, name: "fib" }, 1),
      );
      assert.equal(Object.getPrototypeOf(error), TypeError.prototype);
      assert.match(error.message, /no_such_module\.ts/);
      assert.equal(await pool.run({ module: TASKS, name: "fib" }, 10), 55);
    },
  );

  test(
    "Pool.run() of a missing export rejects with a TypeError naming it",
    async () => {
      await using pool = await open();
      const missing = await rejection(
        pool.run({ module: TASKS, name: "noSuchExport" }, 1),
      );
      assert.equal(Object.getPrototypeOf(missing), TypeError.prototype);
      assert.match(missing.message, /'noSuchExport'/);
      assert.match(missing.message, /tasks\.ts/);
      const notFunction = await rejection(
        pool.run({ module: TASKS, name: "notAFunction" }, 1),
      );
      assert.equal(Object.getPrototypeOf(notFunction), TypeError.prototype);
      assert.match(notFunction.message, /'notAFunction'/);
    },
  );

  test(
    "Pool initializer runs with initArgs on every worker before its tasks",
    async () => {
      await using pool = await open({
        initializer: (value: number, label: string) => {
          const state = globalThis as unknown as Record<string, unknown>;
          state.__distexInit = {
            value,
            label,
            runs: 1 + Number(state.__runs ?? 0),
          };
          state.__runs = 1 + Number(state.__runs ?? 0);
        },
        initArgs: [42, "ready"],
      });
      // Sent before any worker is ready: each must still see the initializer's work.
      const early = await Promise.all(
        X.slice(0, 20).map(() =>
          pool.run(() =>
            (globalThis as unknown as Record<string, unknown>).__distexInit
          )
        ),
      );
      const expected = { value: 42, label: "ready", runs: 1 };
      for (const seen of early) assert.deepEqual(seen, expected);
      const all = await pool.runOnAll(() =>
        (globalThis as unknown as Record<string, unknown>).__distexInit
      );
      assert.equal(all.length, pool.totalWorkers);
      for (const seen of all) assert.deepEqual(seen, expected);
    },
  );

  test("Pool initializer may be a module reference", async () => {
    await using pool = await open({
      initializer: { module: TASKS, name: "setGlobal" },
      initArgs: ["__distexModuleInit", { from: "module" }],
    });
    const seen = await pool.runOnAll(() =>
      (globalThis as unknown as Record<string, unknown>).__distexModuleInit
    );
    assert.equal(seen.length, pool.totalWorkers);
    for (const value of seen) assert.deepEqual(value, { from: "module" });
  });

  test(
    "Pool runs async tasks concurrently inside a worker up to qsize",
    async () => {
      const perWorker = 4;
      await using pool = await open({ qsize: perWorker });
      await pool.ready;
      const total = pool.totalWorkers * perWorker;
      // Each task counts itself in its worker, then waits until `perWorker`
      // tasks have started there. They can only all finish if every task of
      // a worker was running at the same time; the timeout makes it fail.
      const tasks = Array.from(
        { length: total },
        () =>
          pool.run(async (target: number) => {
            const state = globalThis as unknown as {
              __gate?: { started: number; open: PromiseWithResolvers<void> };
            };
            const gate = state.__gate ??= {
              started: 0,
              open: Promise.withResolvers<void>(),
            };
            gate.started++;
            if (gate.started === target) gate.open.resolve();
            let timer: ReturnType<typeof setTimeout> | undefined;
            const outcome = await Promise.race([
              gate.open.promise.then(() => "released"),
              new Promise<string>((resolve) => {
                timer = setTimeout(() => resolve("timed out"), 20_000);
              }),
            ]);
            clearTimeout(timer);
            return { pid: Deno.pid, outcome, started: gate.started };
          }, perWorker),
      );
      const results = await Promise.all(tasks);
      const perPid = new Map<number, number>();
      for (const r of results) {
        assert.equal(r.outcome, "released");
        assert.equal(r.started, perWorker, "high-water mark of one worker");
        perPid.set(r.pid, (perPid.get(r.pid) ?? 0) + 1);
      }
      assert.equal(perPid.size, pool.totalWorkers);
      for (const count of perPid.values()) assert.equal(count, perWorker);
    },
  );

  if (cleanup) {
    Deno.test(`[${label}] contract suite cleanup finishes`, async () => {
      await assert.doesNotReject(async () => await cleanup());
    });
  }
}
