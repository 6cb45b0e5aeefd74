// A child for `npmSpawnMs` in bench/limits.ts: imports msgpackr's pure-JS entry
// `msgpackr/pack` (as a worker does through src/_codec.ts) before it connects to
// the UNIX socket given as the first argument and sends one byte.
// msgpackr is no longer a dependency of the library (src/_msgpack.ts is the
// codec); the bench keeps it as a reference point.
// deno-lint-ignore no-import-prefix
import { Packr } from "npm:msgpackr@^2.1.4/pack";

const packr = new Packr({ structuredClone: true });
const conn = await Deno.connect({
  transport: "unix",
  path: Deno.args[0] ?? "",
});
await conn.write(packr.pack(1).subarray(0, 1));
conn.close();
