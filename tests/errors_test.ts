/**
 * Error classes and the error records that carry task errors over the wire.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  _atItem,
  _callerStack,
  _trimStack,
  _withCallerStack,
  CALLER_SECTION,
  type ErrorRecord,
  fromErrorRecord,
  HostError,
  PoolClosedError,
  toErrorRecord,
  WorkerLostError,
} from "../src/errors.ts";
import { decode, encode } from "../src/_codec.ts";
import { Pool } from "../mod.ts";
import { BUILTIN_ERRORS } from "./_util.ts";

/** An error's record, sent through the codec and rebuilt. */
function roundTrip(error: unknown): Error {
  return fromErrorRecord(decode(encode(toErrorRecord(error))) as ErrorRecord);
}

Deno.test("fromErrorRecord() rebuilds built-in errors as their class", () => {
  for (const Class of BUILTIN_ERRORS) {
    const original = new Class(`a ${Class.name}`);
    const back = roundTrip(original);
    assert.equal(Object.getPrototypeOf(back), Class.prototype);
    assert.equal(back.name, Class.name);
    assert.equal(back.message, `a ${Class.name}`);
    assert.equal(back.stack, original.stack, "the stack is the original one");
  }
});

Deno.test("fromErrorRecord() rebuilds AggregateError with its errors", () => {
  const original = new AggregateError(
    [new TypeError("one"), new AggregateError([new URIError("deep")], "two")],
    "several",
  );
  const back = roundTrip(original);
  assert.ok(back instanceof AggregateError);
  assert.equal(back.message, "several");
  assert.equal(back.errors.length, 2);
  assert.equal(Object.getPrototypeOf(back.errors[0]), TypeError.prototype);
  assert.equal(back.errors[0].message, "one");
  assert.ok(back.errors[1] instanceof AggregateError);
  assert.equal(
    Object.getPrototypeOf(back.errors[1].errors[0]),
    URIError.prototype,
  );
});

Deno.test("fromErrorRecord() keeps the cause chain and code", () => {
  const root = Object.assign(new Error("no such file"), { code: "ENOENT" });
  const middle = new TypeError("cannot load config", { cause: root });
  const top = new RangeError("startup failed", { cause: middle });
  const back = roundTrip(top);
  assert.equal(Object.getPrototypeOf(back), RangeError.prototype);
  const cause = back.cause as Error;
  assert.equal(Object.getPrototypeOf(cause), TypeError.prototype);
  assert.equal(cause.message, "cannot load config");
  const rootBack = cause.cause as Error & { code?: string };
  assert.equal(rootBack.message, "no such file");
  assert.equal(rootBack.code, "ENOENT");
});

Deno.test("toErrorRecord() stops at a cyclic or very deep cause chain", () => {
  const cyclic = new Error("cyclic");
  cyclic.cause = cyclic;
  let depth = 0;
  for (let r: ErrorRecord | undefined = toErrorRecord(cyclic); r; r = r.cause) {
    depth++;
  }
  assert.ok(depth > 1 && depth <= 10, `depth ${depth}`);
  let chain = new Error("0");
  for (let i = 1; i < 50; i++) chain = new Error(String(i), { cause: chain });
  const back = roundTrip(chain);
  assert.equal(back.message, "49");
});

Deno.test("fromErrorRecord() rebuilds other classes as Error with their name", () => {
  class DatabaseError extends Error {
    override name = "DatabaseError";
  }
  const custom = roundTrip(new DatabaseError("no such table"));
  assert.equal(Object.getPrototypeOf(custom), Error.prototype);
  assert.equal(custom.name, "DatabaseError");
  assert.equal(custom.message, "no such table");
  const notFound = roundTrip(new Deno.errors.NotFound("gone"));
  assert.equal(notFound.name, "NotFound");
  const clone = roundTrip(new DOMException("cannot clone", "DataCloneError"));
  assert.equal(clone.name, "DataCloneError");
  assert.equal(clone.message, "cannot clone");
});

Deno.test("fromErrorRecord() keeps names that are Object.prototype keys", () => {
  for (
    const name of [
      "toString",
      "constructor",
      "valueOf",
      "__proto__",
      "hasOwnProperty",
    ]
  ) {
    const back = fromErrorRecord({ name, message: `named ${name}` });
    assert.ok(back instanceof Error, name);
    assert.equal(back.name, name);
    assert.equal(back.message, `named ${name}`);
  }
});

Deno.test("fromErrorRecord() rebuilds TimeoutError and AbortError as DOMException", () => {
  for (const name of ["TimeoutError", "AbortError"]) {
    const back = roundTrip(new DOMException(`a ${name}`, name));
    assert.ok(back instanceof DOMException);
    assert.equal(back.name, name);
    assert.equal(back.message, `a ${name}`);
  }
  const withCause = fromErrorRecord({
    name: "TimeoutError",
    message: "slow",
    cause: { name: "RangeError", message: "why" },
  });
  assert.ok(withCause.cause instanceof RangeError);
});

Deno.test("toErrorRecord() describes thrown values that are not errors", () => {
  const cases: [unknown, string][] = [
    ["plain text", "plain text"],
    [42, "42"],
    [{ code: 7, list: [1] }, '{"code":7,"list":[1]}'],
    [null, "null"],
    [undefined, "undefined"],
    [10n, "10"],
    [Symbol("tag"), "Symbol(tag)"],
  ];
  for (const [value, text] of cases) {
    const record = toErrorRecord(value);
    assert.equal(record.name, "Error");
    assert.equal(record.thrown, text);
    assert.equal(record.message, `Task threw a non-Error value: ${text}`);
    const back = fromErrorRecord(record);
    assert.equal(Object.getPrototypeOf(back), Error.prototype);
    assert.ok(back.message.includes(text));
  }
  const circular: Record<string, unknown> = {};
  circular.self = circular;
  assert.equal(toErrorRecord(circular).thrown, "[object Object]");
});

Deno.test("WorkerLostError describes how the worker ended", () => {
  const exited = new WorkerLostError([{ workerId: 3, host: "local", code: 3 }]);
  assert.ok(exited instanceof Error);
  assert.equal(exited.name, "WorkerLostError");
  assert.equal(
    exited.message,
    "Task lost: worker 3 exited with code 3 before the task finished",
  );
  assert.equal(exited.code, 3);
  assert.equal(exited.signal, undefined);
  assert.equal(exited.workerId, 3);
  assert.equal(exited.host, "local");

  const killed = new WorkerLostError([{
    workerId: 5,
    host: "maxi",
    signal: "SIGKILL",
    stderr: ["out of memory", "aborting"],
  }]);
  assert.match(killed.message, /worker 5 on maxi killed by SIGKILL/);
  assert.match(killed.message, /out of memory\n {2}aborting/);
  assert.equal(killed.signal, "SIGKILL");
  assert.equal(killed.host, "maxi");

  const cut = new WorkerLostError([{
    workerId: 1,
    host: "maxi",
    reason: "its connection closed",
  }]);
  assert.match(cut.message, /worker 1 on maxi its connection closed/);
  assert.match(
    new WorkerLostError([{ workerId: 2, host: "local" }]).message,
    /lost its connection/,
  );
  assert.match(new WorkerLostError([]).message, /its worker died/);
  assert.equal(new WorkerLostError([]).code, undefined);
});

Deno.test("WorkerLostError keeps every death, the last one first in its getters", () => {
  const cause = new Error("underlying");
  const error = new WorkerLostError([
    { workerId: 1, host: "a", code: 1 },
    { workerId: 2, host: "b", signal: "SIGTERM" },
  ], { cause });
  assert.equal(error.exits.length, 2);
  assert.equal(error.workerId, 2);
  assert.equal(error.host, "b");
  assert.equal(error.signal, "SIGTERM");
  assert.equal(error.code, undefined);
  assert.match(error.message, /tried 2 times/);
  assert.equal(error.cause, cause);
});

Deno.test("HostError names the host and quotes ssh's last lines", () => {
  const lines = Array.from({ length: 15 }, (_, i) => `line ${i}`).join("\n");
  const error = new HostError("maxi", "cannot connect", `${lines}\n`);
  assert.ok(error instanceof Error);
  assert.equal(error.name, "HostError");
  assert.equal(error.host, "maxi");
  assert.equal(error.stderr, `${lines}\n`);
  assert.match(
    error.message,
    /^Host maxi: cannot connect\nssh said:\n {2}line 5\n/,
  );
  assert.doesNotMatch(error.message, /line 4\b/);
  assert.match(error.message, /line 14$/);
  assert.equal(new HostError("h", "down").message, "Host h: down");
});

Deno.test("PoolClosedError has its name and a default message", () => {
  const error = new PoolClosedError();
  assert.ok(error instanceof Error);
  assert.equal(error.name, "PoolClosedError");
  assert.equal(error.message, "The pool is closed");
  const cause = new Error("why");
  const custom = new PoolClosedError("closed early", { cause });
  assert.equal(custom.message, "closed early");
  assert.equal(custom.cause, cause);
});

Deno.test("fromErrorRecord() keeps a thrown error's own cloneable fields", () => {
  class ValidationError extends Error {
    override name = "ValidationError";
    field = "email";
    code = 42;
    details = { limits: new Map([["max", 3]]) };
    callback = () => 1;
  }
  const back = roundTrip(new ValidationError("bad input")) as
    & Error
    & Record<string, unknown>;
  assert.equal(back.name, "ValidationError");
  assert.equal(back.field, "email");
  assert.equal(back.code, 42);
  assert.deepEqual(back.details, { limits: new Map([["max", 3]]) });
  assert.equal(back.callback, undefined, "a function field cannot cross");
  assert.deepEqual(
    toErrorRecord(new ValidationError("x")).dropped,
    ["callback"],
  );
  assert.deepEqual(Object.keys(back), ["field", "code", "details"]);
});

Deno.test("fromErrorRecord() rebuilds Deno.errors classes as themselves", async () => {
  const notFound = roundTrip(new Deno.errors.NotFound("gone"));
  assert.ok(notFound instanceof Deno.errors.NotFound);
  assert.equal(notFound.name, "NotFound");
  assert.equal(notFound.message, "gone");
  const fsError = await Deno.readTextFile("/no/such/file/here").catch((e) => e);
  const back = roundTrip(fsError) as Error & { code?: string };
  assert.ok(back instanceof Deno.errors.NotFound);
  assert.equal(back.code, "ENOENT");
  const denied = roundTrip(
    new Deno.errors.PermissionDenied("no", { cause: 1 }),
  );
  assert.ok(denied instanceof Deno.errors.PermissionDenied);
  assert.equal(denied.cause, 1);
  // A class of the user's that is only named like one stays an Error.
  class NotFound extends Error {
    override name = "NotFound";
  }
  const mine = roundTrip(new NotFound("mine"));
  assert.ok(!(mine instanceof Deno.errors.NotFound));
  assert.equal(mine.name, "NotFound");
});

Deno.test("fromErrorRecord() rebuilds any DOMException by name", () => {
  for (const name of ["DataCloneError", "NotFoundError", "InvalidStateError"]) {
    const back = roundTrip(new DOMException(`a ${name}`, name));
    assert.ok(back instanceof DOMException, name);
    assert.equal(back.name, name);
    assert.equal(back.message, `a ${name}`);
    assert.equal(
      (back as DOMException).code,
      new DOMException("", name).code,
    );
  }
});

const LIB = new URL("../", import.meta.url).href;

Deno.test("_trimStack() drops library frames and names task source", () => {
  const stack = [
    "TypeError: boom",
    `    at square (eval at compileFunction (${LIB}src/function_ref.ts:145:16), <anonymous>:3:11)`,
    `    at helper (file:///home/me/app/tasks.ts:10:5)`,
    `    at invoke (${LIB}src/worker_runtime.ts:150:20)`,
    `    at onMessage (${LIB}src/worker_runtime.ts:210:7)`,
    `    at readFrames (${LIB}src/protocol.ts:399:11)`,
    "    at eventLoopTick (ext:core/01_core.js:179:7)",
    `    at async main (${LIB}worker.ts:30:3)`,
  ].join("\n");
  assert.equal(
    _trimStack(stack),
    [
      "TypeError: boom",
      "    at square (task source:3:11)",
      "    at helper (file:///home/me/app/tasks.ts:10:5)",
    ].join("\n"),
  );
  // A user's file that merely contains "src/" in its path is kept.
  const user = "Error: x\n    at f (file:///home/me/src/app.ts:1:1)";
  assert.equal(_trimStack(user), user);
});

Deno.test("_withCallerStack() appends the caller's frames under a caller line", () => {
  function submitLikeAPool(): ReturnType<typeof _callerStack> {
    return _callerStack(submitLikeAPool);
  }
  const caller = submitLikeAPool(); // this line is the caller
  const error = new RangeError("remote");
  define(error, "stack", "RangeError: remote\n    at task (task source:1:1)");
  _withCallerStack(error, caller);
  const [remote, local] = error.stack!.split(`\n${CALLER_SECTION}\n`);
  assert.equal(remote, "RangeError: remote\n    at task (task source:1:1)");
  assert.match(local!.split("\n")[0]!, /errors_test\.ts:\d+:\d+\)?$/);
  assert.doesNotMatch(local!, /submitLikeAPool/);
  // Once only.
  _withCallerStack(error, caller);
  assert.equal(error.stack!.split(CALLER_SECTION).length, 2);
  // Not an Error: unchanged.
  assert.equal(_withCallerStack("text", caller), "text");
});

function define(error: Error, key: string, value: unknown): void {
  Object.defineProperty(error, key, {
    value,
    writable: true,
    configurable: true,
  });
}

Deno.test("_atItem() says which map item failed", () => {
  const error = _atItem(new TypeError("bad value"), 7) as TypeError & {
    itemIndex?: number;
  };
  assert.ok(error instanceof TypeError);
  assert.equal(error.message, "bad value (map item 7)");
  assert.equal(error.itemIndex, 7);
  assert.match(error.stack!, /^TypeError: bad value \(map item 7\)\n/);
  _atItem(error, 8);
  assert.equal(error.itemIndex, 7, "marked once");
  const dom = _atItem(new DOMException("slow", "TimeoutError"), 2);
  assert.equal(dom.message, "slow (map item 2)");
});

Deno.test("Pool: a task's error arrives with its class, fields and a trimmed stack", async () => {
  await using pool = new Pool(1);
  const custom = await pool.run(() => {
    class QuotaError extends Error {
      override name = "QuotaError";
      code = 42;
      field = "size";
    }
    throw new QuotaError("over quota", { cause: new RangeError("5 > 4") });
  }).catch((e) => e);
  assert.equal(custom.name, "QuotaError");
  assert.equal(custom.message, "over quota");
  assert.equal(custom.code, 42);
  assert.equal(custom.field, "size");
  assert.ok(custom.cause instanceof RangeError);
  assert.doesNotMatch(custom.stack, /compileFunction|worker_runtime|src\//);
  assert.match(custom.stack, /task source:\d+:\d+/);
  const notFound = await pool.run(() => Deno.readTextFile("/no/such/file"))
    .catch((e) => e);
  assert.ok(notFound instanceof Deno.errors.NotFound, String(notFound));
  assert.equal((notFound as { code?: string }).code, "ENOENT");
  const aggregate = await pool.run(() => {
    throw new AggregateError([new TypeError("a"), new URIError("b")], "both");
  }).catch((e) => e);
  assert.ok(aggregate instanceof AggregateError);
  assert.ok(aggregate.errors[1] instanceof URIError);
});

Deno.test("Pool: an Error returned as a value arrives as structuredClone copies it", async () => {
  await using pool = new Pool(1);
  const [error, original] = await pool.run(() => {
    const e = new TypeError("as a value", { cause: -0 });
    return [e, e.stack];
  }) as [TypeError, string];
  assert.equal(Object.getPrototypeOf(error), TypeError.prototype);
  assert.equal(error.message, "as a value");
  assert.equal(error.stack, original, "the remote stack, not the decoder's");
  assert.ok(Object.is(error.cause, -0));
});

Deno.test("Pool.run(): a task's error shows the caller's line under '--- caller ---'", async () => {
  await using pool = new Pool(1);
  async function callerOfRun(): Promise<unknown> {
    return await pool.run(function failing() {
      throw new RangeError("thrown in the worker");
    });
  }
  const error = await callerOfRun().catch((e) => e) as RangeError;
  assert.ok(error instanceof RangeError);
  const [remote, caller] = error.stack!.split(`\n${CALLER_SECTION}\n`);
  assert.match(
    remote!,
    /^RangeError: thrown in the worker\n\s+at failing \(task source:\d+:\d+\)/,
  );
  assert.ok(caller, `no caller section in:\n${error.stack}`);
  assert.match(caller!, /at async callerOfRun \(.*errors_test\.ts:\d+:\d+\)/);
  assert.doesNotMatch(caller!, /src\/pool\.ts/, "library frames trimmed");
});

Deno.test("fromErrorRecord() keeps a cause that is not an Error as the value it was", () => {
  const back = roundTrip(
    new Error("with data", { cause: { code: 7, list: [1, 2] } }),
  );
  assert.deepEqual(back.cause, { code: 7, list: [1, 2] });
  const text = roundTrip(new TypeError("with text", { cause: "why" }));
  assert.equal(text.cause, "why");
  // A cause that cannot be cloned is described instead.
  const fn = roundTrip(new Error("with a function", { cause: () => 1 }));
  assert.ok(fn.cause instanceof Error);
  assert.match((fn.cause as Error).message, /non-Error value/);
});

Deno.test("toErrorRecord() never throws, even for hostile errors", () => {
  const hostile = new Error("x");
  Object.defineProperty(hostile, "message", {
    get() {
      throw new Error("no message for you");
    },
  });
  Object.defineProperty(hostile, "field", {
    enumerable: true,
    get() {
      throw new Error("no field either");
    },
  });
  Object.defineProperty(hostile, "name", {
    get() {
      throw new Error("nameless");
    },
  });
  const record = toErrorRecord(hostile);
  assert.equal(typeof record.name, "string");
  assert.equal(typeof record.message, "string");
  assert.deepEqual(record.dropped, ["field"]);
  const back = fromErrorRecord(record);
  assert.ok(back instanceof Error);
  const proxy = new Proxy(new Error("p"), {
    get() {
      throw new Error("trap");
    },
  });
  assert.equal(typeof toErrorRecord(proxy).message, "string");
});
