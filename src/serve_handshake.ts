/**
 * The handshake between a pool and a spawning server (`cli.ts serve`), both
 * sides: JSON lines over the TLS connection, before it becomes the link of
 * the pool's remote supervisor.
 *
 * ```text
 * server → pool    { distex: "serve", version, nonce: S }
 * pool   → server  { version, workers, ids, nonce: P, proof: HMAC(token, "pool:" + S) }
 * server → pool    { ok: true, proof: HMAC(token, "server:" + P) }
 *               or { error: "token" | "version" | "workers" | "full" | …, max?, version? }
 * ```
 *
 * Both sides prove that they know the shared token; the token never crosses
 * the wire. Bytes that follow the last line belong to the link.
 *
 * @module
 */
import { importKey, newSecret } from "./auth.ts";
import { HostError } from "./errors.ts";
import { VERSION } from "./version.ts";

/** How long (ms) connecting and each side of the handshake may take. */
export const HANDSHAKE_MS = 10_000;
/** The longest handshake line (bytes). */
const MAX_LINE = 4096;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** HMAC-SHA256 of `role:nonce` under the token, as hex. */
async function tokenProof(
  token: string,
  role: "pool" | "server",
  challenge: string,
): Promise<string> {
  const key = await importKey(token);
  const data = encoder.encode(`${role}:${challenge}`);
  return hex(new Uint8Array(await crypto.subtle.sign("HMAC", key, data)));
}

/** True when `a` is the text `b` (no early exit). */
function sameText(a: unknown, b: string): boolean {
  if (typeof a !== "string" || a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < b.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

/** Reads a token file: its first line, trimmed; at least 16 characters. */
export async function readToken(path: string): Promise<string> {
  const token = (await Deno.readTextFile(path)).split("\n")[0]!.trim();
  if (token.length < 16) {
    throw new Error(
      `the token in ${path} is too short (${token.length} characters; use 16 or more, e.g. 'openssl rand -hex 32 > ${path}')`,
    );
  }
  return token;
}

/** Reads one JSON line from `conn`; returns it and any bytes after it. */
async function readLine(
  conn: Deno.Conn,
  buffered: Uint8Array,
): Promise<{ value: Record<string, unknown>; rest: Uint8Array }> {
  let data = buffered;
  for (;;) {
    const end = data.indexOf(10);
    if (end >= 0) {
      const value = JSON.parse(decoder.decode(data.subarray(0, end)));
      if (typeof value !== "object" || value === null) {
        throw new Error("malformed handshake line");
      }
      return { value, rest: data.slice(end + 1) };
    }
    if (data.length > MAX_LINE) throw new Error("handshake line too long");
    const chunk = new Uint8Array(MAX_LINE);
    const n = await conn.read(chunk);
    if (n === null) throw new Deno.errors.UnexpectedEof("connection closed");
    const grown = new Uint8Array(data.length + n);
    grown.set(data);
    grown.set(chunk.subarray(0, n), data.length);
    data = grown;
  }
}

/** Writes all of `bytes` to `conn`. */
export async function writeAll(
  conn: Deno.Conn,
  bytes: Uint8Array,
): Promise<void> {
  let at = 0;
  while (at < bytes.length) at += await conn.write(bytes.subarray(at));
}

function writeLine(conn: Deno.Conn, value: unknown): Promise<void> {
  return writeAll(conn, encoder.encode(JSON.stringify(value) + "\n"));
}

/**
 * `promise`, or a rejection saying that `what` timed out after `ms`.
 */
export function withDeadline<T>(
  promise: Promise<T>,
  ms: number,
  what: string,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`${what} timed out after ${ms} ms`)),
        ms,
      );
    }),
  ]).finally(() => clearTimeout(timer));
}

// ---- the pool's side ---------------------------------------------------

/** Why the server refused the pool, in words for a HostError. */
function refusal(
  reply: Record<string, unknown>,
  serverVersion: unknown,
  workers: number,
): string {
  const error = String(reply.error);
  const theirs = String(reply.version ?? serverVersion);
  return error === "token"
    ? "bad token: the server refused the pool's token (give the server's token file as tls.tokenFile)"
    : error === "version"
    ? `the server runs @distex/pool ${theirs} and the pool ${VERSION}: both sides need the same version; ` +
      `start the server with 'deno run -A jsr:@distex/pool@${VERSION}/cli serve …' ` +
      `(install with 'deno cache jsr:@distex/pool@${VERSION}/cli')`
    : error === "full"
    ? `server full: it already serves its maximum of ${reply.max} pools`
    : error === "workers"
    ? `server full: it starts at most ${reply.max} workers per pool, the pool asked for ${workers}`
    : `the server refused the pool: ${error}`;
}

/**
 * The pool's side: asks the server on `conn` for the workers `ids`.
 *
 * @param conn A TLS connection to the server.
 * @param host `host:port`, for errors.
 * @param token The shared token.
 * @param ids The ids of the workers to start.
 * @returns The bytes that followed the server's answer (the link's first).
 * @throws {HostError} when the server refuses, or cannot prove the token.
 */
export async function askServer(
  conn: Deno.TlsConn,
  host: string,
  token: string,
  ids: number[],
): Promise<Uint8Array> {
  const hello = await readLine(conn, new Uint8Array(0));
  if (hello.value.distex !== "serve") {
    throw new HostError(host, "the server is not a distex spawning server");
  }
  const ours = newSecret();
  await writeLine(conn, {
    version: VERSION,
    workers: ids.length,
    ids,
    nonce: ours,
    proof: await tokenProof(token, "pool", String(hello.value.nonce)),
  });
  const answer = await readLine(conn, hello.rest);
  const reply = answer.value;
  if (reply.ok !== true) {
    throw new HostError(
      host,
      refusal(reply, hello.value.version, ids.length),
    );
  }
  if (!sameText(reply.proof, await tokenProof(token, "server", ours))) {
    throw new HostError(
      host,
      "bad token: the server could not prove that it knows the token (is it the server you meant?)",
    );
  }
  return answer.rest;
}

// ---- the server's side -------------------------------------------------

/** What a server lets one pool have. */
export interface ServerLimits {
  /** Most workers one pool may start. */
  maxWorkers: number;
  /** Most pools served at once. */
  maxPools: number;
  /** Takes one of the `maxPools` places; false when all are taken. */
  claim(): boolean;
}

/** A pool the server took. */
export interface AdmittedPool {
  /** The ids of the workers to start. */
  ids: number[];
  /** Bytes that followed the pool's request (the link's first). */
  rest: Uint8Array;
  /** The pool's address, for the log. */
  peer: string;
}

/**
 * The server's side: the TLS handshake, then the pool's request, checked
 * against the token and `limits`. A refused pool is told why (and the log
 * says so where the pool is not to blame).
 *
 * @param conn A connection the server accepted.
 * @param token The shared token.
 * @param limits Workers per pool, and the pools' places.
 * @returns The admitted pool (its place claimed), or undefined when refused.
 * @throws {Error} when the connection fails or a side times out.
 */
export async function answerPool(
  conn: Deno.TlsConn,
  token: string,
  limits: ServerLimits,
): Promise<AdmittedPool | undefined> {
  await withDeadline(conn.handshake(), HANDSHAKE_MS, "the TLS handshake");
  const ours = newSecret();
  await writeLine(conn, { distex: "serve", version: VERSION, nonce: ours });
  const { value: hello, rest } = await withDeadline(
    readLine(conn, new Uint8Array(0)),
    HANDSHAKE_MS,
    "the handshake",
  );
  const peer = (conn.remoteAddr as Deno.NetAddr).hostname;
  if (!sameText(hello.proof, await tokenProof(token, "pool", ours))) {
    console.error(`distex serve: ${peer}: bad token`);
    await writeLine(conn, { error: "token" });
    return undefined;
  }
  const ids = hello.ids;
  if (
    !Array.isArray(ids) || ids.length === 0 ||
    ids.some((id) => !Number.isSafeInteger(id))
  ) {
    await writeLine(conn, { error: "malformed request" });
    return undefined;
  }
  if (hello.version !== VERSION) {
    console.error(
      `distex serve: ${peer}: pool version ${hello.version}, ours ${VERSION}`,
    );
    await writeLine(conn, { error: "version", version: VERSION });
    return undefined;
  }
  if (ids.length > limits.maxWorkers) {
    await writeLine(conn, { error: "workers", max: limits.maxWorkers });
    return undefined;
  }
  if (!limits.claim()) {
    console.error(`distex serve: ${peer}: refused, server full`);
    await writeLine(conn, { error: "full", max: limits.maxPools });
    return undefined;
  }
  await writeLine(conn, {
    ok: true,
    proof: await tokenProof(token, "server", String(hello.nonce)),
  });
  return { ids, rest, peer };
}
