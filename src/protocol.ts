/**
 * The messages between a pool and its workers: one labeled tuple type per
 * message (a union discriminated by its first element, the {@link Op} tag),
 * one builder and one shape check per message. Tuples keep frames small and
 * cheap to encode. How the frames travel is `framing.ts`'s business; its
 * names are re-exported here for callers that want the whole wire in one
 * import.
 *
 * @module
 */
import type { ErrorRecord } from "./errors.ts";
import { type Message, ProtocolError } from "./framing.ts";

export {
  BLOB_THRESHOLD,
  type ByteChannel,
  DEFAULT_MAX_FRAME_BYTES,
  FrameWriter,
  isMessage,
  type Message,
  ProtocolError,
} from "./framing.ts";
export { readFrames } from "./frame_reader.ts";

/**
 * Protocol version; both sides must agree. 3: the library's own MessagePack
 * codec (its extension types are not msgpackr's). 4: large byte contents
 * anywhere in a message travel as raw segments (see `framing.ts`). 5: arrays
 * of 8 and more numbers travel as one extension of int32s or float64s
 * (`Ext.Ints`, `Ext.Numbers`).
 */
export const PROTOCOL_VERSION = 5;

/**
 * The own field a worker sets on the error of a chunk (`"chunk"`/`"items"`
 * call) to the position of the item that threw; the map turns it into the
 * item's index in its input.
 */
export const CHUNK_ITEM = "chunkItem";

/** Message tags. Pool → worker below 20, worker → pool from 20. */
export const Op = {
  /** {@link ChallengeMessage}: the first frame on a new connection. */
  Challenge: 1,
  /** {@link WelcomeMessage}: the worker passed the handshake. */
  Welcome: 2,
  /** {@link DefineMessage}: a function, by source or module reference. */
  Define: 3,
  /** {@link CallMessage} of kind `"call"`: resolves to one value. */
  Call: 4,
  /** {@link CallMessage} of kind `"chunk"`: a list of argument lists; resolves to an array. */
  Chunk: 5,
  /** {@link CancelMessage}: the caller gave up; drop the result. */
  Cancel: 6,
  /** {@link CallMessage} of kind `"items"`: calls fn(item) for each; resolves to an array. */
  Items: 8,
  /** {@link CallMessage} of kind `"init"`: its value is not sent back (initializers). */
  Init: 9,
  /** {@link CallsMessage}: several one-call tasks of one function in one frame. */
  Calls: 10,
  /** {@link HelloMessage}: the worker's answer to the challenge. */
  Hello: 20,
  /** {@link ResultMessage}: a task's value. */
  Result: 21,
  /** {@link ErrorMessage}: what a task threw. */
  Error: 22,
  /** {@link StatsMessage}: the worker's memory use, sent periodically. */
  Stats: 23,
  /** {@link ResultsMessage}: several tasks' values in one frame. */
  Results: 24,
} as const;

/**
 * How a worker runs a task: one call, a chunk of argument lists, a chunk of
 * single arguments (each item is the one argument), or an initializer call
 * (awaited, its value not sent back).
 */
export type CallKind = "call" | "chunk" | "items" | "init";

/** The tag for each {@link CallKind}. */
export const CALL_OP = {
  call: Op.Call,
  chunk: Op.Chunk,
  items: Op.Items,
  init: Op.Init,
} as const;

type CallOp = (typeof CALL_OP)[CallKind];

/** What the pool tells a worker that passed the handshake. */
export interface WorkerSettings {
  /** How often (ms) the worker reports its memory use; 0 for never. */
  statsMs: number;
  /** The largest frame either side takes (the pool option `maxFrameBytes`). */
  maxFrameBytes: number;
}

/** Pool → worker: the handshake's question. */
export type ChallengeMessage = readonly [
  op: typeof Op.Challenge,
  version: number,
  nonce: Uint8Array,
];
/** Pool → worker: the handshake passed. */
export type WelcomeMessage = readonly [
  op: typeof Op.Welcome,
  settings: WorkerSettings,
  /** The pool's HMAC of the worker's nonce: it knows the worker's key. */
  proof: Uint8Array,
];
/** Pool → worker: defines function `fnId` by source text or module export. */
export type DefineMessage =
  | readonly [op: typeof Op.Define, fnId: number, source: string]
  | readonly [
    op: typeof Op.Define,
    fnId: number,
    source: null,
    module: string,
    name: string,
  ];
/** Pool → worker: run task `taskId` with function `fnId` (see {@link CallKind}). */
export type CallMessage = readonly [
  op: CallOp,
  taskId: number,
  fnId: number,
  args: unknown[],
];
/**
 * Pool → worker: tasks `taskIds[i]`, each one call of function `fnId` with
 * `argsList[i]` (a burst of `run()` calls in one frame).
 */
export type CallsMessage = readonly [
  op: typeof Op.Calls,
  fnId: number,
  taskIds: number[],
  argsList: unknown[][],
];
/** Pool → worker: drop task `taskId`'s result (it still reports its end). */
export type CancelMessage = readonly [op: typeof Op.Cancel, taskId: number];
/** Worker → pool: the handshake's answer. */
export type HelloMessage = readonly [
  op: typeof Op.Hello,
  version: number,
  workerId: number,
  proof: Uint8Array,
  pid: number,
  /** The worker's own challenge to the pool. */
  nonce: Uint8Array,
];
/** Worker → pool: task `taskId` returned `value` after `workUs` µs of work. */
export type ResultMessage = readonly [
  op: typeof Op.Result,
  taskId: number,
  value: unknown,
  workUs?: number | undefined,
];
/** Worker → pool: tasks `taskIds[i]` returned `values[i]` after `workUs[i]` µs. */
export type ResultsMessage = readonly [
  op: typeof Op.Results,
  taskIds: number[],
  values: unknown[],
  workUs: number[],
];
/** Worker → pool: task `taskId` threw. */
export type ErrorMessage = readonly [
  op: typeof Op.Error,
  taskId: number,
  error: ErrorRecord,
];
/** Worker → pool: its resident memory. */
export type StatsMessage = readonly [op: typeof Op.Stats, rssBytes: number];

/** Every message a pool sends once the handshake is done. */
export type PoolMessage =
  | DefineMessage
  | CallMessage
  | CallsMessage
  | CancelMessage;
/** Every message a worker sends once the handshake is done. */
export type WorkerMessage =
  | ResultMessage
  | ResultsMessage
  | ErrorMessage
  | StatsMessage;

// ---- builders: one per message -------------------------------------------

/** Builds a {@link ChallengeMessage}. */
export function challengeMessage(nonce: Uint8Array): ChallengeMessage {
  return [Op.Challenge, PROTOCOL_VERSION, nonce];
}
/** Builds a {@link WelcomeMessage}. */
export function welcomeMessage(
  settings: WorkerSettings,
  proof: Uint8Array,
): WelcomeMessage {
  return [Op.Welcome, settings, proof];
}
/** Builds a {@link DefineMessage} from a function's spec. */
export function defineMessage(
  fnId: number,
  fn: { source?: string | undefined; module?: string; name?: string },
): DefineMessage {
  return fn.source !== undefined
    ? [Op.Define, fnId, fn.source]
    : [Op.Define, fnId, null, fn.module ?? "", fn.name ?? ""];
}
/** Builds a {@link CallMessage} of the given kind. */
export function callMessage(
  kind: CallKind,
  taskId: number,
  fnId: number,
  args: unknown[],
): CallMessage {
  return [CALL_OP[kind], taskId, fnId, args];
}
/** Builds a {@link CallsMessage}. */
export function callsMessage(
  fnId: number,
  taskIds: number[],
  argsList: unknown[][],
): CallsMessage {
  return [Op.Calls, fnId, taskIds, argsList];
}
/** Builds a {@link CancelMessage}. */
export function cancelMessage(taskId: number): CancelMessage {
  return [Op.Cancel, taskId];
}
/** Builds a {@link HelloMessage}. */
export function helloMessage(
  workerId: number,
  proof: Uint8Array,
  pid: number,
  nonce: Uint8Array,
): HelloMessage {
  return [Op.Hello, PROTOCOL_VERSION, workerId, proof, pid, nonce];
}
/** Builds a {@link ResultMessage}. */
export function resultMessage(
  taskId: number,
  value: unknown,
  workUs: number | undefined,
): ResultMessage {
  return [Op.Result, taskId, value, workUs];
}
/** Builds a {@link ResultsMessage}. */
export function resultsMessage(
  taskIds: number[],
  values: unknown[],
  workUs: number[],
): ResultsMessage {
  return [Op.Results, taskIds, values, workUs];
}
/** Builds an {@link ErrorMessage}. */
export function errorMessage(taskId: number, error: ErrorRecord): ErrorMessage {
  return [Op.Error, taskId, error];
}
/** Builds a {@link StatsMessage}. */
export function statsMessage(rssBytes: number): StatsMessage {
  return [Op.Stats, rssBytes];
}

// ---- guards: one per message ---------------------------------------------

function isId(value: unknown): value is number {
  return typeof value === "number" && Number.isInteger(value) && value >= 0;
}

/** A list of ids: one loop, no call per element (cheap while cold). */
function isIds(value: unknown): value is number[] {
  if (!Array.isArray(value)) return false;
  for (let i = 0; i < value.length; i++) {
    const v = value[i];
    if (typeof v !== "number" || !(v >= 0) || v % 1 !== 0) {
      return false;
    }
  }
  return true;
}

/** A list of numbers: one loop, no call per element. */
function isNumbers(value: unknown): value is number[] {
  if (!Array.isArray(value)) return false;
  for (let i = 0; i < value.length; i++) {
    if (typeof value[i] !== "number") return false;
  }
  return true;
}

const isCall = (m: Message): boolean =>
  m.length === 4 && isId(m[1]) && isId(m[2]) && Array.isArray(m[3]);

/** One shape check per message tag (the tag itself is already known). */
const GUARDS: Record<number, (m: Message) => boolean> = {
  [Op.Challenge]: (m) =>
    m.length === 3 && typeof m[1] === "number" && m[2] instanceof Uint8Array,
  [Op.Welcome]: (m) =>
    m.length === 3 && typeof m[1] === "object" && m[1] !== null &&
    typeof (m[1] as WorkerSettings).statsMs === "number" &&
    typeof (m[1] as WorkerSettings).maxFrameBytes === "number" &&
    m[2] instanceof Uint8Array,
  [Op.Define]: (m) =>
    isId(m[1]) &&
    (m.length === 3
      ? typeof m[2] === "string"
      : m.length === 5 && m[2] === null && typeof m[3] === "string" &&
        typeof m[4] === "string"),
  [Op.Call]: isCall,
  [Op.Chunk]: isCall,
  [Op.Items]: isCall,
  [Op.Init]: isCall,
  [Op.Calls]: (m) =>
    m.length === 4 && isId(m[1]) && isIds(m[2]) && Array.isArray(m[3]) &&
    m[2].length === m[3].length && m[3].every(Array.isArray),
  [Op.Cancel]: (m) => m.length === 2 && isId(m[1]),
  [Op.Result]: (m) =>
    (m.length === 3 || m.length === 4) && isId(m[1]) &&
    (m[3] === undefined || typeof m[3] === "number"),
  [Op.Error]: (m) =>
    m.length === 3 && isId(m[1]) && typeof m[2] === "object" && m[2] !== null,
  [Op.Stats]: (m) => m.length >= 2 && typeof m[1] === "number",
  [Op.Results]: (m) =>
    m.length === 4 && isIds(m[1]) && Array.isArray(m[2]) &&
    isNumbers(m[3]) && m[1].length === m[2].length &&
    m[1].length === m[3].length,
};

const NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(Op).map(([name, op]) => [op, name]),
);

function check<T extends Message>(m: Message, ops: readonly number[]): T {
  const op = m[0];
  if (!ops.includes(op)) {
    throw new ProtocolError(
      `unexpected message type ${op}${NAMES[op] ? ` (${NAMES[op]})` : ""}`,
    );
  }
  if (!GUARDS[op]!(m)) {
    throw new ProtocolError(`malformed ${NAMES[op]} message`);
  }
  return m as T;
}

const POOL_OPS = [
  Op.Define,
  Op.Call,
  Op.Calls,
  Op.Chunk,
  Op.Items,
  Op.Init,
  Op.Cancel,
];
const WORKER_OPS = [Op.Result, Op.Results, Op.Error, Op.Stats];

/**
 * Checks a frame against the messages a pool sends after the handshake.
 * @throws {ProtocolError} for any other tag or a malformed message.
 */
export function parsePoolMessage(m: Message): PoolMessage {
  return check(m, POOL_OPS);
}
/**
 * Checks a frame against the messages a worker sends after the handshake.
 * @throws {ProtocolError} for any other tag or a malformed message.
 */
export function parseWorkerMessage(m: Message): WorkerMessage {
  return check(m, WORKER_OPS);
}
/**
 * Checks a frame is a {@link ChallengeMessage}.
 * @throws {ProtocolError} otherwise.
 */
export function parseChallenge(m: Message): ChallengeMessage {
  return check(m, [Op.Challenge]);
}
/**
 * Checks a frame is a {@link WelcomeMessage}.
 * @throws {ProtocolError} otherwise.
 */
export function parseWelcome(m: Message): WelcomeMessage {
  return check(m, [Op.Welcome]);
}
/**
 * Checks a frame is a {@link HelloMessage} of this protocol version with a
 * numeric worker id (each failure named for the pool's `rejected` event). A
 * proof that is no byte array becomes an empty one (it then fails
 * verification); a missing pid becomes 0.
 * @throws {ProtocolError} otherwise.
 */
export function parseHello(m: Message): HelloMessage {
  const [op, version, workerId, proof, pid, nonce] = m;
  if (op !== Op.Hello) {
    throw new ProtocolError(
      `bad handshake: expected a Hello (message type ${Op.Hello}), got message type ${op}`,
    );
  }
  if (version !== PROTOCOL_VERSION) {
    throw new ProtocolError(
      `bad handshake: the worker speaks protocol version ${
        String(version)
      }, the pool ${PROTOCOL_VERSION} (use the same @distex/pool version on both sides)`,
    );
  }
  if (typeof workerId !== "number") {
    throw new ProtocolError(
      `bad worker id in the handshake: expected a number, got ${typeof workerId}`,
    );
  }
  return [
    Op.Hello,
    version,
    workerId,
    proof instanceof Uint8Array ? proof : new Uint8Array(0),
    typeof pid === "number" ? pid : 0,
    nonce instanceof Uint8Array ? nonce : new Uint8Array(0),
  ];
}
