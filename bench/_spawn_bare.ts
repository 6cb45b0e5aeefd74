// A bare child for `bareSpawnMs` in bench/limits.ts: no imports on purpose.
// Connects to the UNIX socket given as the first argument and sends one byte.
const conn = await Deno.connect({
  transport: "unix",
  path: Deno.args[0] ?? "",
});
await conn.write(new Uint8Array([1]));
conn.close();
