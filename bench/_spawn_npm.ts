// A child for `npmSpawnMs` in bench/limits.ts: imports msgpackr's pure-JS entry
// `msgpackr/pack` (as a worker does through src/_codec.ts) before it connects to
// the UNIX socket given as the first argument and sends one byte.
import { Packr } from "msgpackr/pack";

const packr = new Packr({ structuredClone: true });
const conn = await Deno.connect({
  transport: "unix",
  path: Deno.args[0] ?? "",
});
await conn.write(packr.pack(1).subarray(0, 1));
conn.close();
