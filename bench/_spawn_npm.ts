// A child for `npmSpawnMs` in bench/limits.ts: imports msgpackr (as a worker
// does) before it connects to the UNIX socket given as the first argument and
// sends one byte.
import { Packr } from "msgpackr";

const packr = new Packr({ structuredClone: true });
const conn = await Deno.connect({
  transport: "unix",
  path: Deno.args[0] ?? "",
});
await conn.write(packr.pack(1).subarray(0, 1));
conn.close();
