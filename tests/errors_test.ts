/**
 * Error classes and the error records that carry task errors over the wire.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  type ErrorRecord,
  fromErrorRecord,
  HostError,
  PoolClosedError,
  toErrorRecord,
  WorkerLostError,
} from "../src/errors.ts";
import { decode, encode } from "../src/_codec.ts";

/** An error's record, sent through the codec and rebuilt. */
function roundTrip(error: unknown): Error {
  return fromErrorRecord(decode(encode(toErrorRecord(error))) as ErrorRecord);
}

const BUILTINS = [
  Error,
  TypeError,
  RangeError,
  SyntaxError,
  ReferenceError,
  EvalError,
  URIError,
];

Deno.test("fromErrorRecord() rebuilds built-in errors as their class", () => {
  for (const Class of BUILTINS) {
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
