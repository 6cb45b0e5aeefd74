// temporary experiment
const dir = await Deno.makeTempDir();
const path = `${dir}/s.sock`;
const l = Deno.listen({ transport: "unix", path });
const child = new Deno.Command(Deno.execPath(), {
  args: [
    "run",
    "-A",
    "--config",
    "deno.json",
    "bench/_echo_peer.ts",
    "raw",
    path,
  ],
}).spawn();
const conn = await l.accept();
const N = 300_000;
const frame = new Uint8Array(10);
const mode = Deno.args[0];
let received = 0;
const buf = new Uint8Array(1 << 20);
const recv = (async () => {
  while (received < N * 10) {
    const n = await conn.read(buf);
    if (n === null) throw 1;
    received += n;
  }
})();
const t0 = performance.now();
if (mode === "await") {
  for (let i = 0; i < N; i++) await conn.write(frame);
} else if (mode === "nowait") {
  let p;
  for (let i = 0; i < N; i++) {
    p = conn.write(frame);
    if ((i & 255) === 255) await p;
  }
  await p;
} else if (mode === "stream") {
  const w = conn.writable.getWriter();
  for (let i = 0; i < N; i++) {
    if (w.desiredSize! <= 0) await w.ready;
    w.write(frame);
  }
  await w.ready;
  w.releaseLock();
}
const t1 = performance.now();
await recv;
const t2 = performance.now();
console.log(
  mode,
  "send",
  (N / ((t1 - t0) / 1000)).toFixed(0),
  "total",
  (N / ((t2 - t0) / 1000)).toFixed(0),
);
conn.close();
l.close();
await child.status;
await Deno.remove(dir, { recursive: true });
