/**
 * Both sides of the spawning server's handshake, against each other over a
 * loopback TCP pair (TLS, and a server that cannot prove the token, are
 * `serve_test.ts`'s part): what each side accepts, refuses and says.
 *
 * @module
 */
import assert from "node:assert/strict";
import { HostError } from "../src/errors.ts";
import {
  answerPool,
  askServer,
  type ServerLimits,
} from "../src/serve_handshake.ts";

const TOKEN = "0123456789abcdef0123";

/** A connected loopback pair; the server side poses as a TLS connection. */
async function connPair() {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const accepted = listener.accept();
    const pool = await Deno.connect({
      hostname: "127.0.0.1",
      port: listener.addr.port,
    });
    const server = Object.assign(await accepted, {
      handshake: () => Promise.resolve({}),
    });
    return {
      pool: pool as unknown as Deno.TlsConn,
      server: server as unknown as Deno.TlsConn,
      [Symbol.dispose]() {
        for (const conn of [pool, server]) {
          try {
            conn.close();
          } catch { /* closed */ }
        }
      },
    };
  } finally {
    listener.close();
  }
}

/** Limits with `places` free places; `claimed` counts the places taken. */
function limits(places: number, maxWorkers = 4) {
  const taken = { claimed: 0 };
  const value: ServerLimits = {
    maxWorkers,
    maxPools: places,
    claim: () => {
      if (taken.claimed >= places) return false;
      taken.claimed++;
      return true;
    },
  };
  return { value, taken };
}

Deno.test("askServer() and answerPool() agree on a shared token; the bytes after the answer are the link's", async () => {
  using conns = await connPair();
  const { value, taken } = limits(1);
  const [rest, admitted] = await Promise.all([
    askServer(conns.pool, "maxi:8471", TOKEN, [3, 4]),
    answerPool(conns.server, TOKEN, value).then(async (admitted) => {
      await conns.server.write(new TextEncoder().encode("LINK"));
      return admitted;
    }),
  ]);
  assert.deepEqual(admitted?.ids, [3, 4]);
  assert.equal(admitted?.peer, "127.0.0.1");
  assert.equal(taken.claimed, 1);
  let link = new TextDecoder().decode(rest);
  while (link.length < 4) {
    const buffer = new Uint8Array(16);
    const n = await conns.pool.read(buffer);
    assert.ok(n !== null, "the link's bytes arrive");
    link += new TextDecoder().decode(buffer.subarray(0, n));
  }
  assert.equal(link, "LINK");
});

Deno.test("answerPool() refuses a wrong token, too many workers, no workers and a full server; only a pool it takes claims a place", async () => {
  const cases: [string, number[], number, RegExp][] = [
    ["wrong-token-0123456789", [1], 1, /bad token: the server refused/],
    [TOKEN, [1, 2, 3], 1, /at most 2 workers per pool, the pool asked for 3/],
    [TOKEN, [], 1, /the server refused the pool: malformed request/],
    [TOKEN, [1], 0, /server full: it already serves its maximum of 0 pools/],
  ];
  const errors = console.error;
  console.error = () => {}; // the server's log of refusals
  try {
    for (const [token, ids, places, message] of cases) {
      using conns = await connPair();
      const { value, taken } = limits(places, 2);
      const [asked, answered] = await Promise.allSettled([
        askServer(conns.pool, "maxi:8471", token, ids),
        answerPool(conns.server, TOKEN, value),
      ]);
      assert.equal(asked.status, "rejected", String(message));
      assert.ok(asked.reason instanceof HostError);
      assert.match(asked.reason.message, /maxi:8471/);
      assert.match(asked.reason.message, message);
      assert.deepEqual(answered, { status: "fulfilled", value: undefined });
      assert.equal(taken.claimed, 0, `no place taken: ${message}`);
    }
  } finally {
    console.error = errors;
  }
});
