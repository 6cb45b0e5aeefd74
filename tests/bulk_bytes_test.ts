/**
 * Bulk bytes through real workers (issue 14): workers reuse the memory of the
 * byte arrays their tasks are done with (a minor collection every few MiB
 * received, glibc settings that keep freed memory), which must never touch
 * an array a task or the caller still holds.
 *
 * @module
 */
import assert from "node:assert/strict";
import { Pool } from "../mod.ts";
import { COLLECTOR_GLOBAL } from "../src/frame_reader.ts";
import { COLLECTOR_FLAG, WORKER_MALLOC_TUNABLES } from "../src/worker_fleet.ts";

const MIB = 1 << 20;

/** `length` bytes of a pattern that differs for each seed. */
function pattern(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = (seed * 2654435761) >>> 0;
  for (let i = 0; i < length; i += 4) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

/** A checksum of every byte (also what the tasks compute, self-contained). */
function checksum(bytes: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) {
    h = Math.imul(h ^ bytes[i]!, 16777619) >>> 0;
  }
  return h;
}

Deno.test("A task that keeps its argument sees its bytes intact after many more large tasks", async () => {
  await using pool = new Pool(1);
  const kept = [pattern(MIB, 1), pattern(3 * MIB + 7, 2)];
  for (const bytes of kept) {
    const length = await pool.run((x: Uint8Array) => {
      const g = globalThis as unknown as { keptArgs?: Uint8Array[] };
      (g.keptArgs ??= []).push(x);
      return x.length;
    }, bytes);
    assert.equal(length, bytes.length);
  }
  // 96 MiB more through the same worker, in runs and in a map: its reader
  // reclaims memory every few MiB meanwhile.
  const items = Array.from({ length: 64 }, (_, i) => pattern(MIB, 100 + i));
  const runs = await Promise.all(
    items.slice(0, 32).map((x) =>
      pool.run((b: Uint8Array) => b[0]! + b[4]!, x)
    ),
  );
  assert.deepEqual(runs, items.slice(0, 32).map((b) => b[0]! + b[4]!));
  let i = 0;
  for await (const first of pool.map((b: Uint8Array) => b[0], items)) {
    assert.equal(first, items[i++]![0]);
  }
  for (const x of items.slice(32)) {
    await pool.run((b: Uint8Array) => b.length, x);
  }
  const sums = await pool.run(() => {
    const g = globalThis as unknown as { keptArgs: Uint8Array[] };
    return g.keptArgs.map((bytes) => {
      let h = 0x811c9dc5;
      for (let i = 0; i < bytes.length; i++) {
        h = Math.imul(h ^ bytes[i]!, 16777619) >>> 0;
      }
      return h;
    });
  });
  assert.deepEqual(sums, kept.map(checksum));
});

Deno.test("Byte arrays the caller keeps from results stay intact while more arrive", async () => {
  await using pool = new Pool(2);
  const items = Array.from({ length: 48 }, (_, i) => pattern(MIB, i));
  const kept: Uint8Array[] = [];
  for await (const y of pool.map((x: Uint8Array) => x, items)) kept.push(y);
  // More traffic both ways, and new arrays made here, after the first ones.
  const more = Array.from({ length: 48 }, (_, i) => pattern(MIB, 1000 + i));
  let n = 0;
  for await (const y of pool.map((x: Uint8Array) => x.slice(), more)) {
    assert.equal(checksum(y), checksum(more[n++]!));
  }
  const fresh = Array.from({ length: 32 }, () => new Uint8Array(MIB).fill(9));
  assert.equal(fresh.length, 32);
  assert.deepEqual(kept.map(checksum), items.map(checksum));
});

Deno.test({
  name:
    "Local workers get their collector, off their tasks' global, and the malloc settings; a GLIBC_TUNABLES of the pool's env replaces those",
  ignore: Deno.build.os !== "linux",
  fn: async () => {
    await using pool = await Pool.create(1);
    const pid = pool.stats().workers[0]!.pid;
    const cmdline = (await Deno.readTextFile(`/proc/${pid}/cmdline`))
      .split("\0");
    assert.ok(cmdline.includes(COLLECTOR_FLAG), cmdline.join(" "));
    // (As the worker has it: glibc rewrites its copy in /proc/pid/environ.)
    const tunables = () => Deno.env.get("GLIBC_TUNABLES");
    const got = await pool.run(tunables);
    // This process's own GLIBC_TUNABLES, if it has one, comes after them.
    assert.ok(got?.startsWith(WORKER_MALLOC_TUNABLES), got);
    // Tasks' global has neither the collector nor V8's usual name for it.
    const seen = await pool.run((name: string) => {
      const g = globalThis as Record<string, unknown>;
      let replaced = true;
      try {
        g[name] = () => {};
      } catch {
        replaced = false;
      }
      const d = Object.getOwnPropertyDescriptor(g, name);
      return [typeof g[name], typeof g.gc, replaced, d?.writable];
    }, COLLECTOR_GLOBAL);
    assert.deepEqual(seen, ["undefined", "undefined", false, false]);

    const own = "glibc.malloc.arena_max=1";
    await using custom = await Pool.create({
      workers: 1,
      env: { GLIBC_TUNABLES: own },
    });
    assert.equal(await custom.run(tunables), own);
  },
});

Deno.test("A task that reaches the worker's collector through a new V8 context can only make its own worker collect garbage: the worker and its other tasks go on", async () => {
  // V8 (--expose-gc-as) puts the collector on every new context's global,
  // where takeCollector() cannot take it away.
  await using pool = new Pool({ workers: 1 });
  const pid = pool.stats().workers[0]?.pid ?? await pool.run(() => Deno.pid);
  const collectAll = async (name: string) => {
    const vm = await import("node:vm");
    const gc = vm.runInNewContext(`globalThis.${name}`);
    const kept = { data: new Uint8Array(1 << 20).fill(5) };
    if (typeof gc === "function") {
      gc();
      gc({ type: "minor" });
      await gc({ type: "major", execution: "async" });
    }
    return [typeof gc, kept.data.reduce((a, b) => a + b, 0)];
  };
  const slow = (n: number) =>
    new Promise<number>((resolve) => setTimeout(() => resolve(n * 2), 20));
  const settled = await Promise.all([
    pool.run(slow, 1),
    pool.run(collectAll, COLLECTOR_GLOBAL),
    pool.run(slow, 2),
    pool.run((b: Uint8Array) => b.length, pattern(4 * MIB, 3)),
  ]);
  assert.deepEqual(settled.slice(0, 1), [2]);
  const [kind, sum] = settled[1] as [string, number];
  assert.ok(kind === "function" || kind === "undefined", kind);
  assert.equal(sum, 5 << 20);
  assert.deepEqual(settled.slice(2), [4, 4 * MIB]);
  // Bulk bytes still come and go intact on the same worker.
  const items = Array.from({ length: 8 }, (_, i) => pattern(MIB, i));
  const back = await Array.fromAsync(pool.map((b: Uint8Array) => b, items));
  assert.deepEqual(back.map(checksum), items.map(checksum));
  assert.equal(await pool.run(() => Deno.pid), pid);
  assert.equal(pool.stats().lost, 0);
});

Deno.test("A call with large byte contents that cannot be sent fails alone; the worker goes on", async () => {
  await using pool = new Pool(1);
  const big = pattern(MIB, 7);
  const fn = (b: Uint8Array, _f?: unknown) => b.length;
  const results = await Promise.allSettled([
    pool.run(fn, big),
    pool.run(fn, big, () => "not data"),
    pool.run(fn, big),
  ]);
  assert.equal(results[0].status, "fulfilled");
  assert.equal(results[2].status, "fulfilled");
  assert.equal(results[1].status, "rejected");
  const reason = (results[1] as PromiseRejectedResult).reason as Error;
  assert.equal(reason.name, "DataCloneError", String(reason));
  assert.equal(await pool.run(fn, big), MIB);
});
