/**
 * Every program in `examples/` runs, with small sizes, as a subprocess the
 * way a user runs it; its output is checked line by line.
 *
 * @module
 */
import assert from "node:assert/strict";

const EXAMPLES = new URL("../examples/", import.meta.url);
/** An example that takes longer than this has hung: the test fails. */
const HANG_MS = 120_000;

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `examples/<name> ...args`; kills and awaits it on failure or hang. */
async function runExample(name: string, args: string[]): Promise<Result> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL(name, EXAMPLES).pathname, ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  const output = child.output();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const hang = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${name} ran longer than ${HANG_MS} ms`)),
      HANG_MS,
    );
  });
  try {
    const { code, stdout, stderr } = await Promise.race([output, hang]);
    const decoder = new TextDecoder();
    return {
      code,
      stdout: decoder.decode(stdout),
      stderr: decoder.decode(stderr),
    };
  } finally {
    clearTimeout(timer);
    try {
      child.kill("SIGKILL");
    } catch { /* already exited */ }
    await output.catch(() => {});
  }
}

/** Asserts each pattern matches one line of `text`, in order. */
function assertLines(text: string, patterns: RegExp[]): void {
  const lines = text.trimEnd().split("\n");
  assert.equal(lines.length, patterns.length, text);
  patterns.forEach((pattern, i) => assert.match(lines[i]!, pattern, text));
}

Deno.test("examples/demo.ts compresses buffers and checks every result", async () => {
  const { code, stdout, stderr } = await runExample("demo.ts", [
    "--buffers",
    "6",
    "--workers",
    "2",
  ]);
  assert.equal(code, 0, stderr);
  assert.equal(stderr, "");
  assertLines(stdout, [
    /^Compressing 6 x 1 MiB buffers with node:zlib/,
    /^all 6 results checked \(gunzip matches the input\)$/,
    /^compression ratio: \d+\.\d\dx$/,
    /^1 worker : \d+\.\d\d s, \d+\.\d MiB\/s$/,
    /^2 workers: \d+\.\d\d s, \d+\.\d MiB\/s$/,
    /^speed-up: \d+\.\d\dx$/,
  ]);
});

Deno.test("examples/compress_files.ts gzips every file and checks the archives", async () => {
  const { code, stdout, stderr } = await runExample("compress_files.ts", [
    "--files",
    "5",
    "--size",
    "32",
    "--workers",
    "2",
  ]);
  assert.equal(code, 0, stderr);
  assert.equal(stderr, "");
  assertLines(stdout, [
    /^Compressing 5 files in \S+ \.\.\.$/,
    /^compressed 5 files on 2 workers: 160 KiB -> \d+ KiB \(\d+\.\dx\) in \d+\.\d\d s$/,
    /^all archives checked/,
  ]);
});

Deno.test("examples/compress_files.ts --dir compresses a given directory next to the originals", async () => {
  const dir = await Deno.makeTempDir({ prefix: "distex-example-" });
  try {
    await Deno.writeTextFile(`${dir}/a.txt`, "aaaa ".repeat(2000));
    await Deno.writeTextFile(`${dir}/b.txt`, "bbbb ".repeat(3000));
    const { code, stdout, stderr } = await runExample("compress_files.ts", [
      "--dir",
      dir,
      "--workers",
      "2",
    ]);
    assert.equal(code, 0, stderr);
    assert.match(stdout, /^compressed 2 files on 2 workers: 24 KiB -> /m);
    const names = [];
    for await (const entry of Deno.readDir(dir)) names.push(entry.name);
    assert.deepEqual(names.sort(), ["a.txt", "a.txt.gz", "b.txt", "b.txt.gz"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("examples/crunch_numbers.ts counts primes, checks pi(n), shows progress on stderr", async () => {
  const { code, stdout, stderr } = await runExample("crunch_numbers.ts", [
    "--limit",
    "100000",
    "--blocks",
    "16",
    "--workers",
    "2",
  ]);
  assert.equal(code, 0, stderr);
  assertLines(stdout, [
    /^Counting primes below 100000 in 16 blocks on 2 workers \.\.\.$/,
    /^primes below 100000: 9592 \(\d+\.\d\d s\)$/,
    /^matches the known value of pi\(100000\)$/,
  ]);
  // Not a terminal: progress() writes plain lines, the last one complete.
  assert.match(stderr, /^blocks: 16\/16 done \(100%\) · .* elapsed\n$/m);
});

Deno.test("examples/fetch_urls.ts fetches every page of its own server and parses it", async () => {
  const { code, stdout, stderr } = await runExample("fetch_urls.ts", [
    "--pages",
    "40",
    "--delay",
    "1",
  ]);
  assert.equal(code, 0, stderr);
  assert.equal(stderr, "");
  assertLines(stdout, [
    /^Fetching 40 pages from a local server on 2 workers \.\.\.$/,
    /^fetched 40 pages in \d+\.\d\d s \(\d+ pages\/s, 0 failed\)$/,
    /^found 80 links to 40 distinct pages; every title checked$/,
  ]);
});

Deno.test("examples/pipeline.ts streams records through the pool into a file, in order", async () => {
  const dir = await Deno.makeTempDir({ prefix: "distex-example-" });
  try {
    const out = `${dir}/digests.jsonl`;
    const { code, stdout, stderr } = await runExample("pipeline.ts", [
      "--records",
      "500",
      "--out",
      out,
    ]);
    assert.equal(code, 0, stderr);
    assert.equal(stderr, "");
    assertLines(stdout, [
      /^Streaming 500 records through 2 workers \.\.\.$/,
      /^wrote 500 lines to \S+ in \d+\.\d\d s, in input order$/,
    ]);
    const lines = (await Deno.readTextFile(out)).trimEnd().split("\n");
    assert.equal(lines.length, 500);
    const first = JSON.parse(lines[0]!);
    // Record 0 is "w0 w1 w2": three words, and its digest is SHA-256 of that.
    const expected = Array.from(
      new Uint8Array(
        await crypto.subtle.digest(
          "SHA-256",
          new TextEncoder().encode("w0 w1 w2"),
        ),
      ),
      (b) => b.toString(16).padStart(2, "0"),
    ).join("");
    assert.deepEqual(first, { id: 0, words: 3, sha256: expected });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
