/**
 * The typed messages: each builder's frame passes its own check and survives
 * encoding; malformed or misplaced messages are refused with a reason.
 *
 * @module
 */
import assert from "node:assert/strict";
import { decode, encode } from "../src/_codec.ts";
import type { Message } from "../src/framing.ts";
import {
  CALL_OP,
  callMessage,
  callsMessage,
  cancelMessage,
  challengeMessage,
  defineMessage,
  errorMessage,
  helloMessage,
  Op,
  parseChallenge,
  parseHello,
  parsePoolMessage,
  parseWelcome,
  parseWorkerMessage,
  PROTOCOL_VERSION,
  ProtocolError,
  resultMessage,
  resultsMessage,
  statsMessage,
  welcomeMessage,
} from "../src/protocol.ts";

/** What the other side decodes. */
function roundTrip(message: Message): Message {
  return decode(encode(message)) as Message;
}

Deno.test("protocol: every pool message passes parsePoolMessage after a round trip", () => {
  const messages: Message[] = [
    defineMessage(1, { source: "(x) => x" }),
    defineMessage(2, { module: "file:///t.ts", name: "fib" }),
    callMessage("call", 7, 1, [1, 2]),
    callMessage("chunk", 8, 1, [[1], [2]]),
    callMessage("items", 9, 1, [1, 2]),
    callMessage("init", 10, 1, []),
    callsMessage(1, [11, 12, 13], [[1], [2, 3], []]),
    cancelMessage(7),
  ];
  for (const m of messages) {
    assert.deepEqual(parsePoolMessage(roundTrip(m)), m);
  }
});

Deno.test("protocol: every worker message passes parseWorkerMessage after a round trip", () => {
  const messages: Message[] = [
    resultMessage(1, { a: [1] }, 12),
    resultMessage(2, undefined, undefined),
    resultsMessage([4, 5], [{ b: 2 }, undefined], [3, 0]),
    errorMessage(3, { name: "TypeError", message: "no", stack: "" }),
    statsMessage(123456),
  ];
  for (const m of messages) {
    assert.deepEqual(parseWorkerMessage(roundTrip(m)), m);
  }
});

Deno.test("protocol: callMessage() tags each call kind with its own op", () => {
  assert.equal(callMessage("call", 1, 1, [])[0], Op.Call);
  assert.equal(callMessage("chunk", 1, 1, [])[0], Op.Chunk);
  assert.equal(callMessage("items", 1, 1, [])[0], Op.Items);
  assert.equal(callMessage("init", 1, 1, [])[0], Op.Init);
  assert.equal(new Set(Object.values(CALL_OP)).size, 4);
});

Deno.test("protocol: a worker message from the pool side (and back) is refused by type", () => {
  assert.throws(
    () => parseWorkerMessage(defineMessage(1, { source: "() => 1" })),
    (e) =>
      e instanceof ProtocolError &&
      /unexpected message type 3\b/.test(e.message),
  );
  assert.throws(
    () => parsePoolMessage(resultMessage(1, 1, 1)),
    /unexpected message type 21 \(Result\)/,
  );
  assert.throws(() => parsePoolMessage([99]), /unexpected message type 99$/);
});

Deno.test("protocol: malformed messages are refused by name", () => {
  const bad: [Message, RegExp, (m: Message) => unknown][] = [
    [[Op.Call, "1", 1, []], /malformed Call/, parsePoolMessage],
    [[Op.Call, 1, 1, "not a list"], /malformed Call/, parsePoolMessage],
    [[Op.Define, 1, 42], /malformed Define/, parsePoolMessage],
    [[Op.Define, 1, null, "m"], /malformed Define/, parsePoolMessage],
    [[Op.Cancel], /malformed Cancel/, parsePoolMessage],
    [[Op.Calls, 1, [1, 2], [[1]]], /malformed Calls/, parsePoolMessage],
    [[Op.Calls, 1, [1, "2"], [[1], [2]]], /malformed Calls/, parsePoolMessage],
    [[Op.Calls, 1, [1], [7]], /malformed Calls/, parsePoolMessage],
    [
      [Op.Results, [1, 2], [1], [1, 1]],
      /malformed Results/,
      parseWorkerMessage,
    ],
    [[Op.Results, [1], [1], ["1"]], /malformed Results/, parseWorkerMessage],
    ...[-1, 1.5, Infinity, NaN, "1", null].map((id): [
      Message,
      RegExp,
      (m: Message) => unknown,
    ] => [
      [Op.Results, [0, id], [1, 2], [3, 4]],
      /malformed Results/,
      parseWorkerMessage,
    ]),
    [
      [Op.Results, [1, 2], [1, 2], [3, undefined]],
      /malformed Results/,
      parseWorkerMessage,
    ],
    [
      [Op.Calls, 1, [1, Infinity], [[1], [2]]],
      /malformed Calls/,
      parsePoolMessage,
    ],
    // The calls of a map, on the parser's short path.
    ...[Op.Items, Op.Chunk, Op.Call].flatMap((op) =>
      [-1, 1.5, Infinity, NaN, "1", null].flatMap((bad): [
        Message,
        RegExp,
        (m: Message) => unknown,
      ][] => [
        [[op, bad, 1, [1]], /malformed (Items|Chunk|Call)/, parsePoolMessage],
        [[op, 1, bad, [1]], /malformed (Items|Chunk|Call)/, parsePoolMessage],
      ])
    ),
    [[Op.Items, 1, 1, { length: 1 }], /malformed Items/, parsePoolMessage],
    [[Op.Items, 1, 1, [1], 5], /malformed Items/, parsePoolMessage],
    [[Op.Result, -1, 1], /malformed Result/, parseWorkerMessage],
    [[Op.Result, 1, 1, "fast"], /malformed Result/, parseWorkerMessage],
    [[Op.Error, 1, "boom"], /malformed Error/, parseWorkerMessage],
    [[Op.Stats, "big"], /malformed Stats/, parseWorkerMessage],
    [[Op.Challenge, 1, "nonce"], /malformed Challenge/, parseChallenge],
    [[Op.Welcome, {}], /malformed Welcome/, parseWelcome],
  ];
  for (const [m, reason, parse] of bad) {
    assert.throws(() => parse(m), reason, JSON.stringify(m));
  }
});

Deno.test("protocol: parseHello() names what is wrong with a Hello", () => {
  const proof = new Uint8Array(32);
  const nonce = new Uint8Array(32).fill(7);
  assert.deepEqual(parseHello(helloMessage(4, proof, 99, nonce)), [
    Op.Hello,
    PROTOCOL_VERSION,
    4,
    proof,
    99,
    nonce,
  ]);
  assert.throws(
    () => parseHello(challengeMessage(proof)),
    /expected a Hello \(message type 20\), got message type 1/,
  );
  assert.throws(
    () => parseHello([Op.Hello, 99, 1, proof, 1]),
    new RegExp(`protocol version 99, the pool ${PROTOCOL_VERSION}`),
  );
  assert.throws(
    () => parseHello([Op.Hello, PROTOCOL_VERSION, "1", proof, 1]),
    /bad worker id in the handshake: expected a number, got string/,
  );
  // A proof of the wrong type is kept as an empty one: it fails verification.
  assert.equal(
    parseHello([Op.Hello, PROTOCOL_VERSION, 1, "x", 1])[3].length,
    0,
  );
});

Deno.test("protocol: the welcome carries the worker settings", () => {
  const proof = new Uint8Array(32).fill(3);
  const welcome = parseWelcome(
    roundTrip(welcomeMessage({ statsMs: 5, maxFrameBytes: 1 << 30 }, proof)),
  );
  assert.deepEqual(welcome[1], { statsMs: 5, maxFrameBytes: 1 << 30 });
  assert.deepEqual(welcome[2], proof);
});
