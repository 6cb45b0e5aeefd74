/**
 * Parallel compression of files: every file of a directory is gzipped to
 * `<name>.gz` by a worker, which reads and writes the files itself (only the
 * paths and the sizes cross the socket). Each result is then checked by
 * decompressing it.
 *
 * Run on your own directory (originals are left in place):
 *
 * ```sh
 * deno run -A examples/compress_files.ts --dir ./logs
 * ```
 *
 * Without `--dir`, it makes `--files` sample files of `--size` KiB in a
 * temporary directory, compresses them, and removes the directory.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { gunzipSync } from "node:zlib";
import { Pool } from "../mod.ts";

/** The task (runs in a worker): gzip one file next to itself. */
async function gzipFile(
  path: string,
): Promise<{ path: string; before: number; after: number }> {
  const { gzipSync } = await import("node:zlib");
  const data = await Deno.readFile(path);
  const packed = gzipSync(data, { level: 9 });
  await Deno.writeFile(`${path}.gz`, packed);
  return { path, before: data.length, after: packed.length };
}

/** Writes `count` files of compressible text, `kib` KiB each. */
async function makeSamples(
  dir: string,
  count: number,
  kib: number,
): Promise<void> {
  const words = ["alpha", "beta", "gamma", "delta", "pool", "worker", "deno"];
  for (let i = 0; i < count; i++) {
    const lines: string[] = [];
    let size = 0;
    for (let n = 0; size < kib * 1024; n++) {
      const line = `${i}:${n} ${words[(i * 7 + n) % words.length]} ${
        (n * 2654435761) % 1000
      }\n`;
      lines.push(line);
      size += line.length;
    }
    await Deno.writeTextFile(
      `${dir}/sample-${String(i).padStart(3, "0")}.txt`,
      lines.join("").slice(0, kib * 1024),
    );
  }
}

/** Runs the example. */
export async function main(args: string[] = Deno.args): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      dir: { type: "string" },
      files: { type: "string", default: "40" },
      size: { type: "string", default: "512" },
      workers: { type: "string" },
    },
  });
  const temporary = values.dir === undefined;
  const dir = values.dir ?? await Deno.makeTempDir({ prefix: "distex-gz-" });
  try {
    if (temporary) {
      await makeSamples(dir, Number(values.files), Number(values.size));
    }
    const paths: string[] = [];
    for await (const entry of Deno.readDir(dir)) {
      if (entry.isFile && !entry.name.endsWith(".gz")) {
        paths.push(`${dir}/${entry.name}`);
      }
    }
    paths.sort();
    console.log(`Compressing ${paths.length} files in ${dir} ...`);

    await using pool = await Pool.create(
      values.workers === undefined ? {} : { workers: Number(values.workers) },
    );
    const started = performance.now();
    let before = 0;
    let after = 0;
    // Unordered: report each file as soon as its worker is done.
    for await (const r of pool.map(gzipFile, paths, { ordered: false })) {
      before += r.before;
      after += r.after;
      const back = gunzipSync(await Deno.readFile(`${r.path}.gz`));
      if (back.length !== r.before) throw new Error(`${r.path}.gz is damaged`);
      if (temporary) await Deno.remove(`${r.path}.gz`);
    }
    const seconds = (performance.now() - started) / 1000;
    console.log(
      `compressed ${paths.length} files on ${pool.totalWorkers} workers: ` +
        `${(before / 1024).toFixed(0)} KiB -> ${
          (after / 1024).toFixed(0)
        } KiB ` +
        `(${(before / Math.max(after, 1)).toFixed(1)}x) in ${
          seconds.toFixed(2)
        } s`,
    );
    console.log("all archives checked (gunzip gives back the original size)");
  } finally {
    if (temporary) await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) await main();
