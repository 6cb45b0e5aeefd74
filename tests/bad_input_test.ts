/**
 * The bad-input corpus: wrong options, host specs, functions, module
 * references, values, task and map options, initializers and worker setups.
 * Each input must fail with a typed error whose message says what was wrong
 * (and, where it can, what to do instead); afterwards the same pool must
 * still answer `run`.
 *
 * Hostile frames and handshakes on the pool's socket are in
 * `security_test.ts`, which checks the reason the pool gives for each.
 *
 * @module
 */
import assert from "node:assert/strict";
import { Pool, type PoolOptions } from "../mod.ts";
import { LeakCheck } from "./_leaks.ts";
import { tempDir, withTimeout } from "./_util.ts";

const leaks = new LeakCheck();
const TASKS = new URL("./fixtures/tasks.ts", import.meta.url).href;
const MISSING = new URL("./fixtures/no_such_module.ts", import.meta.url).href;

/** `f(x) = x * 2`. */
const double = (x: number): number => x * 2;

/** An error class, or the `name` an error must have (DOMException kinds, remote classes). */
type Expected = (new (...args: never[]) => Error) | string;

/** One row: what is wrong, how to do it, the error it must give. */
type Case = [
  what: string,
  act: (pool: Pool) => unknown,
  expected: Expected,
  message: RegExp,
];

/** Runs `act` and returns what it threw or rejected with (streams are read). */
async function failure(
  what: string,
  act: () => unknown,
): Promise<unknown> {
  try {
    const result = await act();
    if (result instanceof ReadableStream) await Array.fromAsync(result);
    if (result instanceof Pool) await result.close({ wait: false });
  } catch (error) {
    return error;
  }
  assert.fail(`${what}: no error`);
}

function assertError(
  what: string,
  error: unknown,
  expected: Expected,
  message: RegExp,
): void {
  assert.ok(
    error instanceof Error || error instanceof DOMException,
    `${what}: threw ${error}`,
  );
  if (typeof expected === "string") {
    assert.equal(error.name, expected, `${what}: ${error}`);
  } else {
    assert.equal(
      Object.getPrototypeOf(error),
      expected.prototype,
      `${what}: expected ${expected.name}, got ${error}`,
    );
  }
  assert.match(
    error.message,
    message,
    `${what}: got ${error.name}: ${error.message}`,
  );
}

/**
 * Runs every case against one pool, and after each checks that the pool
 * still answers `run`. All mismatches are reported together.
 */
async function corpus(
  options: PoolOptions,
  cases: Case[],
): Promise<void> {
  await using pool = await leaks.open(options);
  const wrong: string[] = [];
  for (const [what, act, expected, message] of cases) {
    try {
      const error = await withTimeout(
        failure(what, () => act(pool)),
        60_000,
        what,
      );
      assertError(what, error, expected, message);
    } catch (error) {
      wrong.push(error instanceof Error ? error.message : String(error));
    }
    assert.equal(
      await withTimeout(pool.run(double, 21), 30_000, `run after ${what}`),
      42,
      `the pool stopped answering after ${what}`,
    );
  }
  assert.deepEqual(wrong, []);
  assert.equal(pool.stats().totalWorkers, options.workers);
}

/** A case for `new Pool(options)`. */
function option(
  options: unknown,
  expected: Expected,
  message: RegExp,
): Case {
  return [
    `new Pool(${
      Deno.inspect(options, { compact: true, breakLength: Infinity })
    })`,
    () => new Pool(options as PoolOptions),
    expected,
    message,
  ];
}

/** A case for `new Pool({ workers: 1, hosts: [spec] })`. */
function host(spec: unknown, expected: Expected, message: RegExp): Case {
  return [
    `host spec ${JSON.stringify(spec)}`,
    () => new Pool({ workers: 1, lazy: true, hosts: [spec as string] }),
    expected,
    message,
  ];
}

Deno.test("bad options and host specs throw at once, naming what is wrong", async () => {
  await corpus({ workers: 1 }, [
    option(
      { workers: NaN },
      RangeError,
      /Pool option 'workers' must be an integer >= 0, got NaN/,
    ),
    option(
      { workers: 2.5 },
      RangeError,
      /'workers' must be an integer >= 0, got 2\.5/,
    ),
    option({ workers: 1, qsize: Infinity }, RangeError, /'qsize'.*Infinity/),
    option(
      { workers: 1, retries: "2" },
      TypeError,
      /'retries' must be an integer/,
    ),
    option(
      { workers: 1, killGrace: -1 },
      RangeError,
      /'killGrace' must be a finite number of milliseconds >= 0, got -1/,
    ),
    option(
      { workers: 1, maxTasksPerWorker: 0 },
      RangeError,
      /'maxTasksPerWorker' must be an integer >= 1, got 0/,
    ),
    option(
      { workers: 1, maxMemoryMB: 8 },
      RangeError,
      /'maxMemoryMB' must be an integer >= 16, got 8/,
    ),
    option(
      { workers: 1, poisonThreshold: 0 },
      RangeError,
      /'poisonThreshold' must be an integer >= 1/,
    ),
    option(
      { workers: 1, maxFrameBytes: 10 },
      RangeError,
      /'maxFrameBytes' must be an integer >= 1024/,
    ),
    option(
      { workers: 1, workerUrl: 5 },
      TypeError,
      /'workerUrl' must be a string/,
    ),
    option(
      { workers: 1, lazy: "yes" },
      TypeError,
      /'lazy' must be true or false, got "yes"/,
    ),
    option(
      { workers: 1, ssh: "ssh -p 22" },
      TypeError,
      /'ssh' must be an object like \{ command, args \}/,
    ),
    option(
      { worker: 4 },
      TypeError,
      /Unknown Pool option 'worker' \(did you mean 'workers'\?\)/,
    ),
    option(
      { workers: 1, maxMemory: 64 },
      TypeError,
      /Unknown Pool option 'maxMemory' \(did you mean 'maxMemoryMB'\?\)/,
    ),
    option(
      { workers: 1, initializer: 42 },
      TypeError,
      /Pool option 'initializer': A task must be a function or a module reference/,
    ),
    option(
      { workers: 1, initializer: console.log },
      TypeError,
      /'initializer'.*'log'.*native or bound function.*Wrap it in an arrow function/,
    ),
    option(
      { workers: 1, initArgs: "x" },
      TypeError,
      /'initArgs' must be an array/,
    ),
    option(
      { workers: 1, initArgs: [1] },
      TypeError,
      /'initArgs' is given without 'initializer'/,
    ),
    option(
      { workers: 1, permissions: [1] },
      TypeError,
      /'permissions' must be an array of strings/,
    ),
    option(
      { workers: 0, hosts: [] },
      RangeError,
      /at least one worker: set 'workers' to 1 or more, or give 'hosts'/,
    ),
    option(true, TypeError, /worker count or an object, got boolean/),
    host(
      42,
      TypeError,
      /host must be a string like "ssh:\/\/user@host:22\/4" or an object like \{ command: \[\.\.\.\], workers: 4 \}, got number/,
    ),
    host(
      "",
      TypeError,
      /Bad host spec "": expected ssh:\/\/\[user@\]host\[:port\]\/N, tls:\/\/host\[:port\]\/N, host\[:port\]\/N or \{ command: \[\.\.\.\], workers: N \} \(it needs '\/N' at the end/,
    ),
    host("maxi/0", RangeError, /"maxi\/0": worker count 0 must be 1 or more/),
    host("ssh://maxi:0/2", RangeError, /port 0 is not in 1\.\.65535/),
    host(
      "http://maxi/2",
      TypeError,
      /Bad host spec "http:\/\/maxi\/2": expected ssh:\/\//,
    ),
    host("ssh://maxi/2/3", TypeError, /Bad host spec "ssh:\/\/maxi\/2\/3"/),
    host(
      "ssh://us er@maxi/2",
      TypeError,
      /Bad host spec "ssh:\/\/us er@maxi\/2"/,
    ),
  ]);
});

Deno.test("bad functions and module references fail the call with what to do instead", async () => {
  await using tmp = await tempDir();
  const dir = tmp.path;
  const throwing = `${dir}/throws_at_load.ts`;
  await Deno.writeTextFile(throwing, 'throw new Error("boom at load");\n');
  const broken = `${dir}/syntax_error.ts`;
  await Deno.writeTextFile(broken, "export const = ;\n");
  const defaultOnly = `${dir}/default_only.ts`;
  await Deno.writeTextFile(defaultOnly, "export default function f() {}\n");
  const k = 3;
  await corpus({ workers: 2 }, [
    [
      "null as the function",
      (p) => p.run(null as never),
      TypeError,
      /A task must be a function or a module reference \{ module, name \}, got null/,
    ],
    [
      "a number as the function",
      (p) => p.run(42 as never),
      TypeError,
      /got number/,
    ],
    [
      "source text as the function",
      (p) => p.run("(x) => x" as never),
      TypeError,
      /got string/,
    ],
    [
      "a bound function",
      (p) => p.run(double.bind(null), 1),
      TypeError,
      /native or bound function, which has no source text\. Wrap it in an arrow function/,
    ],
    [
      "a native function",
      (p) => p.run(Math.sqrt, 4),
      TypeError,
      /function 'sqrt'.*native/,
    ],
    [
      "a class",
      (p) => p.run(class Job {} as never),
      TypeError,
      /Class constructor Job cannot be invoked without 'new'/,
    ],
    [
      "a closure over a local variable",
      (p) => p.run((x: number) => x * k, 1),
      ReferenceError,
      /k is not defined in the worker: task functions are sent to workers as source text and must be self-contained\. Pass 'k' as an argument/,
    ],
    [
      "a generator function",
      (p) =>
        p.run(function* () {
          yield 1;
        }),
      "DataCloneError",
      /A generator at result could not be cloned for a worker \(collect its items into an array first\)/,
    ],
    [
      "runOnAll() with a number",
      (p) => p.runOnAll(42 as never),
      TypeError,
      /A task must be a function/,
    ],
    [
      "a module reference without a module",
      (p) => p.run({ module: "", name: "fib" }),
      TypeError,
      /needs a non-empty 'module' and 'name'/,
    ],
    [
      "a module reference without a name",
      (p) => p.run({ module: TASKS } as never),
      TypeError,
      /module reference \{ module, name \}, got object/,
    ],
    [
      "a module that does not exist",
      (p) => p.run({ module: MISSING, name: "fib" }),
      TypeError,
      /Cannot import module file:\/\/\/.*no_such_module\.ts in the worker: Module not found/,
    ],
    [
      "a relative module path that does not exist",
      (p) => p.run({ module: "./no/such/module.ts", name: "f" }),
      TypeError,
      new RegExp(
        `Cannot import module ${
          new URL("./no/such/module.ts", import.meta.url).href
        }`.replaceAll(".", "\\."),
      ),
    ],
    [
      "a module that throws when loaded",
      (p) => p.run({ module: throwing, name: "f" }),
      TypeError,
      /Cannot import module .*throws_at_load\.ts in the worker: .*boom at load/,
    ],
    [
      "a module with a syntax error",
      (p) => p.run({ module: broken, name: "f" }),
      TypeError,
      /Cannot import module .*syntax_error\.ts in the worker/,
    ],
    [
      "an export that does not exist",
      (p) => p.run({ module: TASKS, name: "fibonacci" }),
      TypeError,
      /has no exported function 'fibonacci' \(its exported functions: addLater, fib, g\b/,
    ],
    [
      "an export that is not a function",
      (p) => p.run({ module: TASKS, name: "notAFunction" }),
      TypeError,
      /no exported function 'notAFunction'/,
    ],
    [
      "a named export of a module with only a default export",
      (p) => p.run({ module: defaultOnly, name: "f" }),
      TypeError,
      /no exported function 'f' \(its exported functions: default\)/,
    ],
    [
      "a module URL with an unsupported scheme",
      (p) => p.run({ module: "ftp://example.invalid/x.ts", name: "f" }),
      TypeError,
      /Unsupported scheme "ftp"/,
    ],
  ]);
});

Deno.test("bad values, task options and map inputs fail with what to send instead", async () => {
  const echo = (x: unknown): unknown => x;
  await corpus({ workers: 2, maxFrameBytes: 1 << 20 }, [
    [
      "a function argument",
      (p) => p.run(echo, () => 1),
      "DataCloneError",
      /A function at args\[0\] could not be cloned for a worker/,
    ],
    [
      "a symbol argument",
      (p) => p.run(echo, Symbol("s")),
      "DataCloneError",
      /symbol.*could not be cloned/,
    ],
    [
      "a Promise argument",
      (p) => p.run(echo, Promise.resolve(1)),
      "DataCloneError",
      /A Promise at args\[0\] could not be cloned for a worker \(await it and send its value\)/,
    ],
    [
      "a WeakMap argument",
      (p) => p.run(echo, new WeakMap()),
      "DataCloneError",
      /A WeakMap at args\[0\] could not be cloned/,
    ],
    [
      "a ReadableStream argument",
      (p) => p.run(echo, new ReadableStream()),
      "DataCloneError",
      /A stream at args\[0\] could not be cloned for a worker \(pass its contents, or map over it with Pool\.map\(\)\)/,
    ],
    [
      "a function returned",
      (p) => p.run(() => () => 1),
      "DataCloneError",
      /A function at result could not be cloned/,
    ],
    [
      "a symbol returned",
      (p) => p.run(() => Symbol("x")),
      "DataCloneError",
      /could not be cloned/,
    ],
    [
      "a non-Error thrown",
      (p) =>
        p.run(() => {
          throw { code: 42 };
        }),
      Error,
      /Task threw a non-Error value: \{"code":42\}/,
    ],
    [
      "undefined thrown",
      (p) =>
        p.run(() => {
          throw undefined;
        }),
      Error,
      /Task threw a non-Error value: undefined/,
    ],
    [
      "a result over maxFrameBytes",
      (p) => p.run(() => "x".repeat(2 << 20)),
      RangeError,
      /A value of \d+ bytes \(encoded\) is over the frame limit of 1048576 bytes \(the pool option maxFrameBytes\)/,
    ],
    [
      "apply() arguments not in an array",
      (p) => p.apply(double, 5 as never),
      TypeError,
      /Pool\.apply\(\) takes its arguments as an array/,
    ],
    [
      "timeout: NaN",
      (p) => p.apply(double, [1], { timeout: NaN }),
      RangeError,
      /Pool\.apply\(\) option 'timeout' must be a finite number of milliseconds >= 0, got NaN/,
    ],
    [
      "timeout: Infinity",
      (p) => p.apply(double, [1], { timeout: Infinity }),
      RangeError,
      /got Infinity/,
    ],
    [
      "retries: -1",
      (p) => p.apply(double, [1], { retries: -1 }),
      RangeError,
      /'retries' must be an integer >= 0, got -1/,
    ],
    [
      "a signal that is no AbortSignal",
      (p) => p.apply(double, [1], { signal: {} as AbortSignal }),
      TypeError,
      /'signal' must be an AbortSignal/,
    ],
    [
      "task options that are a string",
      (p) => p.apply(double, [1], "fast" as never),
      TypeError,
      /Pool\.apply\(\) options must be an object, got "fast"/,
    ],
    [
      "apply() with a misspelt option",
      (p) => p.apply(double, [1], { timout: 5 } as never),
      TypeError,
      /Unknown Pool\.apply\(\) option 'timout' \(did you mean 'timeout'\?\); the options are signal, timeout, retries/,
    ],
    [
      "map() with a misspelt option",
      (p) => p.map(double, [1], { chunksize: 10 } as never),
      TypeError,
      /Unknown Pool\.map\(\) option 'chunksize' \(did you mean 'chunkSize'\?\)/,
    ],
    [
      'map() with ordered: "no"',
      (p) => p.map(double, [1], { ordered: "no" } as never),
      TypeError,
      /Pool\.map\(\) option 'ordered' must be true or false, got "no"/,
    ],
    [
      "map() without an iterable",
      // @ts-expect-error the types require a source too
      (p) => p.map(double),
      TypeError,
      /Pool\.map\(\) needs at least one iterable/,
    ],
    [
      "map() over a number",
      (p) => p.map(double, 5 as never),
      TypeError,
      /argument 2 must be an Iterable, AsyncIterable or ReadableStream .*got number/,
    ],
    [
      "map() with star over non-arrays",
      (p) => p.map(double, [1, 2], { star: true }),
      TypeError,
      /'star' needs each item to be an array of arguments, item 0 is number/,
    ],
    [
      "map() with star over several iterables",
      // @ts-expect-error the types allow star with one source only
      (p) => p.map(double, [[1]], [[2]], { star: true }),
      TypeError,
      /'star' takes one iterable/,
    ],
    [
      "map() with chunkSize: 1.5",
      (p) => p.map(double, [1], { chunkSize: 1.5 }),
      RangeError,
      /'chunkSize' must be an integer >= 1, got 1\.5/,
    ],
    [
      "map() with timeout: -5",
      (p) => p.map(double, [1], { timeout: -5 }),
      RangeError,
      /Pool\.map\(\) option 'timeout' must be a finite number of milliseconds >= 0, got -5/,
    ],
    [
      "map() with an uncloneable item",
      (p) => p.map(echo, [1, new WeakSet()]),
      "DataCloneError",
      /A WeakSet at (args\[0\]|item \d+ of a chunk) could not be cloned/,
    ],
    [
      "map() over a source that throws",
      (p) =>
        p.map(
          double,
          (function* () {
            yield 1;
            throw new RangeError("source broke at 2");
          })(),
        ),
      RangeError,
      /source broke at 2/,
    ],
  ]);
});

/** A case for a pool that cannot start: `Pool.create(options)` rejects. */
function unstartable(
  what: string,
  options: PoolOptions,
  expected: Expected,
  message: RegExp,
): Case {
  return [what, () => leaks.open(options), expected, message];
}

Deno.test("bad initializers and worker setups fail Pool.create() with the cause", async () => {
  const k = "closure";
  await corpus({ workers: 1 }, [
    unstartable(
      "an initializer from a missing module",
      { workers: 1, initializer: { module: MISSING, name: "setup" } },
      TypeError,
      /Cannot import module .*no_such_module\.ts in the worker: Module not found/,
    ),
    unstartable(
      "an initializer using a closure variable",
      { workers: 1, initializer: () => k.length },
      ReferenceError,
      /k is not defined in the worker: task functions are sent to workers as source text/,
    ),
    unstartable(
      "an initializer that rejects with its own error class",
      {
        workers: 1,
        initializer: async () => {
          class ConfigError extends Error {
            override name = "ConfigError";
          }
          await Promise.resolve();
          throw new ConfigError("DATABASE_URL is not set");
        },
      },
      "ConfigError",
      /DATABASE_URL is not set/,
    ),
    unstartable(
      "a workerUrl that does not exist",
      { workers: 1, workerUrl: MISSING },
      Error,
      /Local worker \d+ exited with code 1 before connecting to the pool\. Its stderr:[\s\S]*Module not found/,
    ),
    unstartable(
      "a misspelt permission flag",
      { workers: 1, permissions: ["--allow-reed=/tmp"] },
      Error,
      /Local worker \d+ exited with code \d+ before connecting to the pool\. Its stderr:[\s\S]*--allow-reed/,
    ),
  ]);
});

Deno.test("bad-input tests leave no worker processes, sockets or temp dirs", async () => {
  await leaks.assertClean();
});
