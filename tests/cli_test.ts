/**
 * The command line, run as a subprocess the way users run it: `map` (order,
 * `--on-error`, exit codes, progress on and off a terminal), `check`, help.
 * Every run starts in `tests/fixtures/`, so module paths are relative to it.
 *
 * @module
 */
import assert from "node:assert/strict";
import { _countItems } from "../src/cli_map.ts";
import { sshPrerequisites, startSshHost } from "./_ssh_hosts.ts";
import { tempDir } from "./_util.ts";

const CLI = new URL("../cli.ts", import.meta.url).pathname;
const FIXTURES = new URL("./fixtures/", import.meta.url).pathname;
const TASKS = "./cli_tasks.ts";
const encoder = new TextEncoder();
const decoder = new TextDecoder();
/** A run that takes longer than this has hung: the test fails. */
const HANG_MS = 60_000;

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

function command(
  args: string[],
  stdin: "piped" | "null",
): Deno.Command {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, ...args],
    cwd: FIXTURES,
    stdin,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  });
}

/** Rejects after `ms`; the timer is cleared by `clear()`. */
function deadline(ms: number, what: string): {
  promise: Promise<never>;
  clear: () => void;
} {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const promise = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${what} took more than ${ms} ms`)),
      ms,
    );
  });
  return { promise, clear: () => clearTimeout(timer) };
}

/**
 * Runs `cli.ts ...args` with `input` on stdin (none when undefined) and
 * returns its exit code and output. The process is killed and awaited if
 * anything goes wrong, or if it runs longer than {@link HANG_MS}.
 */
async function cli(args: string[], input?: string): Promise<Result> {
  const child = command(args, input === undefined ? "null" : "piped").spawn();
  const output = child.output();
  const limit = deadline(HANG_MS, `cli.ts ${args.join(" ")}`);
  try {
    if (input !== undefined) {
      const writer = child.stdin.getWriter();
      try {
        await writer.write(encoder.encode(input));
        await writer.close();
      } catch (error) {
        // The CLI may exit (e.g. a usage error) before reading its input.
        if (!(error instanceof Deno.errors.BrokenPipe)) throw error;
      }
    }
    const { code, stdout, stderr } = await Promise.race([
      output,
      limit.promise,
    ]);
    return {
      code,
      stdout: decoder.decode(stdout),
      stderr: decoder.decode(stderr),
    };
  } finally {
    limit.clear();
    try {
      child.kill("SIGKILL");
    } catch { /* already exited */ }
    await output.catch(() => {});
  }
}

/**
 * Reads `reader` onto `text` until `enough(text)` holds or the stream ends;
 * rejects when `limit` does. Returns the text read so far.
 */
async function readUntil(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  limit: Promise<never>,
  text: string,
  enough: (text: string) => boolean = () => false,
): Promise<string> {
  while (!enough(text)) {
    const { value, done } = await Promise.race([reader.read(), limit]);
    if (done) break;
    text += decoder.decode(value, { stream: true });
  }
  return text;
}

/** The JSON values of the output lines. */
function jsonLines(text: string): unknown[] {
  return text.split("\n").filter(Boolean).map((line) => JSON.parse(line));
}

function numbers(from: number, to: number): string {
  const lines = [];
  for (let i = from; i <= to; i++) lines.push(String(i));
  return lines.join("\n") + "\n";
}

function squares(from: number, to: number, except: number[] = []): number[] {
  const out = [];
  for (let i = from; i <= to; i++) if (!except.includes(i)) out.push(i * i);
  return out;
}

// ---- installed OK, check, help -----------------------------------------------

Deno.test("cli.ts without arguments prints 'distex installed OK'", async () => {
  const { code, stdout } = await cli([]);
  assert.equal(code, 0);
  assert.match(
    stdout,
    /^distex installed OK \(@distex\/pool \S+, Deno \S+\)\n$/,
  );
});

Deno.test("cli.ts check verifies Deno and a worker, then prints 'distex installed OK'", async () => {
  const { code, stdout, stderr } = await cli(["check"]);
  assert.equal(code, 0, stderr);
  assert.match(stdout, /^Deno \S+: ok \(needs >= 2\.0\.0\)$/m);
  assert.match(stdout, /^worker started and answered \(pid \d+, \d+ ms\)$/m);
  assert.match(stdout, /distex installed OK/);
});

Deno.test("cli.ts --help lists the commands with examples", async () => {
  const { code, stdout } = await cli(["--help"]);
  assert.equal(code, 0);
  for (
    const word of [
      "map",
      "check",
      "worker",
      "remote",
      "serve",
      "Examples:",
      "jsr:@distex/pool/cli",
      "deno install -g -A -n distex jsr:@distex/pool/cli",
    ]
  ) {
    assert.ok(stdout.includes(word), `--help lacks '${word}'`);
  }
});

Deno.test("cli.ts <command> --help explains that command with examples", async () => {
  const map = await cli(["map", "--help"]);
  assert.equal(map.code, 0);
  assert.match(map.stdout, /^distex map:/);
  for (
    const flag of [
      "--input",
      "--workers",
      "--host",
      "--chunk-size",
      "--unordered",
      "--retries",
      "--timeout",
      "--on-error",
      "--quiet",
      "Exit status",
      "Examples:",
    ]
  ) {
    assert.ok(map.stdout.includes(flag), `map --help lacks '${flag}'`);
  }
  const check = await cli(["check", "-h"]);
  assert.equal(check.code, 0);
  assert.match(check.stdout, /^distex check:[^]*Example/);
  const worker = await cli(["worker", "--help"]);
  assert.equal(worker.code, 0);
  assert.match(worker.stdout, /^distex worker:/);
});

Deno.test("cli.ts with an unknown command exits 2 with the help", async () => {
  const { code, stderr } = await cli(["frobnicate"]);
  assert.equal(code, 2);
  assert.match(stderr, /unknown command 'frobnicate'[^]*Usage:/);
});

// ---- map: results ----------------------------------------------------------

Deno.test("cli.ts map writes results in input order and exits 0", async () => {
  const { code, stdout, stderr } = await cli(
    ["map", `${TASKS}#square`, "-w", "2", "-q"],
    numbers(1, 50),
  );
  assert.equal(code, 0, stderr);
  assert.deepEqual(jsonLines(stdout), squares(1, 50));
  assert.equal(stderr, "");
});

Deno.test("cli.ts map keeps input order when items finish out of order", async () => {
  const delays = [60, 1, 30, 1, 45, 1, 10, 1];
  const { code, stdout, stderr } = await cli(
    ["map", `${TASKS}#after`, "-w", "4", "-q"],
    delays.join("\n") + "\n",
  );
  assert.equal(code, 0, stderr);
  assert.deepEqual(jsonLines(stdout), delays);
});

Deno.test("cli.ts map --unordered writes every result once (as a multiset)", async () => {
  const delays = [40, 1, 20, 1, 30, 5, 1, 1, 10, 2];
  const { code, stdout, stderr } = await cli(
    ["map", `${TASKS}#after`, "-w", "3", "--unordered", "-q"],
    delays.join("\n") + "\n",
  );
  assert.equal(code, 0, stderr);
  const got = jsonLines(stdout) as number[];
  assert.deepEqual(
    got.toSorted((a, b) => a - b),
    delays.toSorted((a, b) => a - b),
  );
});

Deno.test("cli.ts map --chunk-size batches items and keeps their order", async () => {
  const { code, stdout, stderr } = await cli(
    ["map", `${TASKS}#square`, "--chunk-size", "7", "-w", "2", "-q"],
    numbers(1, 30),
  );
  assert.equal(code, 0, stderr);
  assert.deepEqual(jsonLines(stdout), squares(1, 30));
});

Deno.test("cli.ts map --star spreads arrays into arguments; the default export is used without #", async () => {
  const star = await cli(
    ["map", `${TASKS}#add`, "--star", "-w", "1", "-q"],
    "[1, 2]\n[10, 20]\n",
  );
  assert.equal(star.code, 0, star.stderr);
  assert.deepEqual(jsonLines(star.stdout), [3, 30]);
  const wrap = await cli(["map", TASKS, "-w", "1", "-q"], '"a"\n{"b":1}\n');
  assert.equal(wrap.code, 0, wrap.stderr);
  assert.deepEqual(jsonLines(wrap.stdout), [{ got: "a" }, { got: { b: 1 } }]);
});

Deno.test("_countItems() counts a file's items; cut short, it gives no total rather than a partial count", async () => {
  await using tmp = await tempDir("distex-cli-");
  const file = `${tmp.path}/in.jsonl`;
  await Deno.writeTextFile(file, "1\n\n2\r\n   \n3");
  assert.equal(await _countItems(file, false, () => false), 3);
  // The run ended before the count did ("3/2 done (100%)" was shown).
  assert.equal(await _countItems(file, false, () => true), undefined);
});

Deno.test("cli.ts map --input reads a file and skips blank lines", async () => {
  const dir = await Deno.makeTempDir({ prefix: "distex-cli-" });
  try {
    const file = `${dir}/in.jsonl`;
    await Deno.writeTextFile(file, "1\n\n2\r\n   \n3");
    const { code, stdout, stderr } = await cli(
      ["map", `${TASKS}#square`, "--input", file, "-w", "1"],
    );
    assert.equal(code, 0, stderr);
    assert.deepEqual(jsonLines(stdout), [1, 4, 9]);
    // Off a terminal: a plain line at the end, with done/total for a file.
    assert.match(stderr, /^distex map: 3\/3 done \(100%\) · .* elapsed\n$/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli.ts map does not hold items back to fill a chunk while input is slow", async () => {
  const child = command(
    ["map", `${TASKS}#square`, "-w", "1", "--chunk-size", "50", "-q"],
    "piped",
  ).spawn();
  const stderr = new Response(child.stderr).text();
  const reader = child.stdout.getReader();
  const writer = child.stdin.getWriter();
  const limit = deadline(HANG_MS, "cli.ts map with slow input");
  let stdout = "";
  try {
    // 10 items, with stdin left open: all 10 results must come out now.
    await writer.write(encoder.encode(numbers(1, 10)));
    stdout = await readUntil(
      reader,
      limit.promise,
      stdout,
      (text) => jsonLines(text).length >= 10,
    );
    assert.deepEqual(jsonLines(stdout), squares(1, 10));
    await writer.write(encoder.encode("11\n"));
    await writer.close();
    stdout = await readUntil(reader, limit.promise, stdout);
    const status = await Promise.race([child.status, limit.promise]);
    assert.equal(status.code, 0, await stderr);
    assert.deepEqual(jsonLines(stdout), squares(1, 11));
  } finally {
    limit.clear();
    try {
      child.kill("SIGKILL");
    } catch { /* already exited */ }
    await writer.close().catch(() => {});
    await reader.cancel().catch(() => {});
    await stderr.catch(() => {});
    await child.status;
  }
});

Deno.test("cli.ts map batches tiny items on its own and keeps their order", async () => {
  const { code, stdout, stderr } = await cli(
    ["map", `${TASKS}#square`, "-w", "2", "-q"],
    numbers(1, 20_000),
  );
  assert.equal(code, 0, stderr);
  assert.deepEqual(jsonLines(stdout), squares(1, 20_000));
});

// ---- map: failures -----------------------------------------------------------

Deno.test("cli.ts map --on-error stop (the default) writes the results before the failing line and exits 1", async () => {
  const { code, stdout, stderr } = await cli(
    ["map", `${TASKS}#failOnSevens`, "-w", "2", "-q"],
    numbers(1, 40),
  );
  assert.equal(code, 1);
  assert.deepEqual(jsonLines(stdout), squares(1, 6));
  assert.match(stderr, /line 7: RangeError: 7 is a multiple of 7/);
  assert.match(stderr, /stopped at line 7/);
  assert.doesNotMatch(stderr, /line 14/);
});

Deno.test("cli.ts map --on-error skip reports each failing line, writes the rest, exits 1", async () => {
  const { code, stdout, stderr } = await cli(
    ["map", `${TASKS}#failOnSevens`, "--on-error", "skip", "-w", "2", "-q"],
    numbers(1, 20),
  );
  assert.equal(code, 1);
  assert.deepEqual(jsonLines(stdout), squares(1, 20, [7, 14]));
  assert.match(stderr, /line 7: RangeError: 7 is a multiple of 7/);
  assert.match(stderr, /line 14: RangeError: 14 is a multiple of 7/);
});

Deno.test("cli.ts map --on-error emit writes an error object in the failing line's place, exits 1", async () => {
  const { code, stdout, stderr } = await cli(
    ["map", `${TASKS}#failOnSevens`, "--on-error", "emit", "-w", "2", "-q"],
    numbers(5, 8),
  );
  assert.equal(code, 1);
  assert.deepEqual(jsonLines(stdout), [
    25,
    36,
    {
      error: {
        line: 3,
        name: "RangeError",
        message: "7 is a multiple of 7",
      },
    },
    64,
  ]);
  assert.match(stderr, /line 3: RangeError/);
});

Deno.test("cli.ts map counts blank lines in line numbers and reports lines that are not JSON", async () => {
  const { code, stdout, stderr } = await cli(
    ["map", `${TASKS}#square`, "--on-error", "skip", "-w", "1", "-q"],
    "2\n\n{oops\n3\n",
  );
  assert.equal(code, 1);
  assert.deepEqual(jsonLines(stdout), [4, 9]);
  assert.match(stderr, /line 3: SyntaxError: not JSON/);
});

Deno.test("cli.ts map reports a failing item inside a chunk by its own line", async () => {
  const { code, stdout, stderr } = await cli(
    [
      "map",
      `${TASKS}#failOnSevens`,
      "-c",
      "4",
      "--on-error",
      "skip",
      "-w",
      "2",
      "-q",
    ],
    numbers(1, 10),
  );
  assert.equal(code, 1);
  assert.deepEqual(jsonLines(stdout), squares(1, 10, [7]));
  assert.match(stderr, /line 7: RangeError/);
  assert.equal(stderr.match(/line \d+:/g)?.length, 1);
});

Deno.test("cli.ts map reports a result JSON cannot hold", async () => {
  const { code, stdout, stderr } = await cli(
    ["map", `${TASKS}#big`, "--on-error", "emit", "-w", "1", "-q"],
    "1\n",
  );
  assert.equal(code, 1);
  const [line] = jsonLines(stdout) as { error: { message: string } }[];
  assert.match(line!.error.message, /not JSON/);
  assert.match(stderr, /line 1: TypeError: the result is not JSON/);
});

Deno.test("cli.ts map --timeout fails the item that runs too long, by line", async () => {
  const { code, stdout, stderr } = await cli(
    [
      "map",
      `${TASKS}#hangOn`,
      "--timeout",
      "300",
      "--on-error",
      "skip",
      "-w",
      "2",
      "-q",
    ],
    '"a"\n"hang"\n"b"\n',
  );
  assert.equal(code, 1);
  assert.deepEqual(jsonLines(stdout), ["a", "b"]);
  assert.match(stderr, /line 2: TimeoutError: .*300 ms/);
});

Deno.test("cli.ts map --retries resends an item whose worker died", async () => {
  const dir = await Deno.makeTempDir({ prefix: "distex-cli-" });
  try {
    const input = JSON.stringify(`${dir}/marker`) + "\n";
    const lost = await cli(
      ["map", `${TASKS}#dieOnce`, "-w", "1", "-q"],
      input,
    );
    assert.equal(lost.code, 1);
    assert.match(lost.stderr, /line 1: WorkerLostError: .*exited with code 3/);
    await Deno.remove(`${dir}/marker`);
    const retried = await cli(
      ["map", `${TASKS}#dieOnce`, "-w", "1", "--retries", "1", "-q"],
      input,
    );
    assert.equal(retried.code, 0, retried.stderr);
    assert.deepEqual(jsonLines(retried.stdout), ["survived"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli.ts map -e runs an inline function (TypeScript too)", async () => {
  const js = await cli(["map", "-e", "x => x * 2", "-w", "1", "-q"], "1\n2\n");
  assert.equal(js.code, 0, js.stderr);
  assert.deepEqual(jsonLines(js.stdout), [2, 4]);
  const ts = await cli(
    ["map", "--eval", "(s: string): number => s.length", "-w", "1", "-q"],
    '"abc"\n',
  );
  assert.equal(ts.code, 0, ts.stderr);
  assert.deepEqual(jsonLines(ts.stdout), [3]);
  const bad = await cli(["map", "-e", "x =>", "-w", "1", "-q"], "1\n");
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /cannot load -e 'x =>': SyntaxError/);
  const notFn = await cli(["map", "-e", "42", "-w", "1", "-q"], "1\n");
  assert.equal(notFn.code, 2);
  assert.match(notFn.stderr, /-e '42' is a number, not a function/);
});

Deno.test("cli.ts map --raw passes lines as strings and writes string results as they are", async () => {
  const { code, stdout, stderr } = await cli(
    ["map", "-e", "s => s.toUpperCase()", "--raw", "-w", "1", "-q"],
    'a b\n{"not": "json"}\n\nlast',
  );
  assert.equal(code, 0, stderr);
  assert.equal(stdout, 'A B\n{"NOT": "JSON"}\n\nLAST\n');
  const lengths = await cli(
    ["map", "-e", "s => s.length", "--raw", "-w", "1", "-q"],
    "abc\n\nxy\n",
  );
  assert.equal(lengths.code, 0, lengths.stderr);
  assert.deepEqual(jsonLines(lengths.stdout), [3, 0, 2]);
});

Deno.test("cli.ts map --tag writes each result with its input line, also --unordered", async () => {
  const delays = [40, 1, 20, 1, 30];
  for (const order of [[], ["--unordered"]]) {
    const { code, stdout, stderr } = await cli(
      ["map", `${TASKS}#after`, "--tag", ...order, "-w", "3", "-q"],
      delays.join("\n\n") + "\n",
    );
    assert.equal(code, 0, stderr);
    const got = jsonLines(stdout) as { line: number; value: number }[];
    // Blank lines count: the items are on lines 1, 3, 5, 7, 9.
    const expected = delays.map((value, i) => ({ line: 2 * i + 1, value }));
    if (order.length) got.sort((a, b) => a.line - b.line);
    assert.deepEqual(got, expected);
  }
});

Deno.test("cli.ts map --qsize caps the items in flight on one worker", async () => {
  const input = "30\n".repeat(12);
  const one = await cli(
    ["map", `${TASKS}#concurrency`, "--qsize", "1", "-w", "1", "-q"],
    input,
  );
  assert.equal(one.code, 0, one.stderr);
  assert.deepEqual(new Set(jsonLines(one.stdout)), new Set([1]));
  const four = await cli(
    ["map", `${TASKS}#concurrency`, "--qsize", "4", "-w", "1", "-q"],
    input,
  );
  assert.equal(four.code, 0, four.stderr);
  const most = Math.max(...jsonLines(four.stdout) as number[]);
  assert.ok(most > 1 && most <= 4, `at most ${most} at once`);
});

Deno.test("cli.ts map --on-error stop stops at a line that is not JSON; --star needs arrays", async () => {
  const stop = await cli(
    ["map", `${TASKS}#square`, "-w", "1", "-q"],
    "1\n2\n{oops\n4\n",
  );
  assert.equal(stop.code, 1);
  assert.deepEqual(jsonLines(stop.stdout), [1, 4]);
  assert.match(stop.stderr, /line 3: SyntaxError: not JSON/);
  assert.match(stop.stderr, /stopped at line 3/);
  const star = await cli(
    ["map", `${TASKS}#add`, "--star", "--on-error", "emit", "-w", "1", "-q"],
    "[1, 2]\n5\n[3, 4]\n",
  );
  assert.equal(star.code, 1);
  assert.deepEqual(jsonLines(star.stdout), [
    3,
    {
      error: {
        line: 2,
        name: "TypeError",
        message:
          "--star needs a JSON array of arguments on each line, got number",
      },
    },
    7,
  ]);
});

Deno.test("cli.ts map names pool options as the flags that set them", async () => {
  const none = await cli(["map", `${TASKS}#square`, "-w", "0", "-q"], "1\n");
  assert.equal(none.code, 2);
  assert.match(none.stderr, /set --workers to 1 or more, or give --host/);
  const host = await cli(
    ["map", `${TASKS}#square`, "--host", "nowhere", "-q"],
    "1\n",
  );
  assert.equal(host.code, 2);
  assert.match(host.stderr, /--host: Bad host spec "nowhere"/);
});

// ---- map: usage errors -------------------------------------------------------

Deno.test("cli.ts map exits 2 for usage errors, saying what is wrong", async () => {
  const cases: [string[], RegExp][] = [
    [["map"], /missing the function/],
    [["map", `${TASKS}#square`, "--bogus"], /--bogus/],
    [
      ["map", `${TASKS}#square`, "--wokers", "2"],
      /Unknown option '--wokers' \(did you mean '--workers'\?\)/,
    ],
    [
      ["map", `${TASKS}#square`, "--on-error", "ignore"],
      /--on-error must be stop, skip or emit/,
    ],
    [
      ["map", `${TASKS}#square`, "--workers", "two"],
      /--workers must be an integer/,
    ],
    [
      ["map", `${TASKS}#square`, "--timeout=0"],
      /--timeout must be a number/,
    ],
    [["map", "./no_such_file.ts#f"], /no such module file: .*no_such_file\.ts/],
    [["map", `${TASKS}#nope`], /has no export named 'nope'/],
    [["map", `${TASKS}#answer`], /'answer' .* is a number, not a function/],
    [
      ["map", `${TASKS}#square`, "--input", "/no/such/input.jsonl"],
      /cannot read --input/,
    ],
  ];
  for (const [args, message] of cases) {
    const { code, stdout, stderr } = await cli(args, "1\n");
    assert.equal(code, 2, `${args.join(" ")}: ${stderr}`);
    assert.match(stderr, message, args.join(" "));
    assert.match(stderr, /map --help/);
    assert.equal(stdout, "");
  }
});

// ---- map: progress -----------------------------------------------------------

Deno.test("cli.ts map off a terminal writes plain progress lines while it runs", async () => {
  const child = command(
    ["map", `${TASKS}#square`, "-w", "1", "--progress-interval", "20"],
    "piped",
  ).spawn();
  const stdout = new Response(child.stdout).text();
  const stderrReader = child.stderr.getReader();
  const limit = deadline(HANG_MS, "cli.ts map with progress lines");
  let stderr = "";
  const writer = child.stdin.getWriter();
  try {
    await writer.write(encoder.encode("1\n2\n"));
    // stdin stays open: the run waits for more input, and progress lines
    // keep coming. Read them until one counts both items.
    stderr = await readUntil(
      stderrReader,
      limit.promise,
      stderr,
      (text) => /^distex map: 2 done · .* elapsed$/m.test(text),
    );
    assert.match(stderr, /^distex map: 2 done · .* elapsed$/m);
    await writer.write(encoder.encode("3\n"));
    await writer.close();
    stderr = await readUntil(stderrReader, limit.promise, stderr);
    const status = await Promise.race([child.status, limit.promise]);
    assert.equal(status.code, 0, stderr);
    assert.deepEqual(jsonLines(await stdout), [1, 4, 9]);
    // Every progress line is a plain line: no carriage returns, no escapes.
    assert.ok(!stderr.includes("\r") && !stderr.includes("\x1b"), stderr);
    assert.match(stderr, /distex map: 3 done · .* elapsed\n$/);
  } finally {
    limit.clear();
    try {
      child.kill("SIGKILL");
    } catch { /* already exited */ }
    await writer.close().catch(() => {});
    await stderrReader.cancel().catch(() => {});
    await stdout.catch(() => {});
    await child.status;
  }
});

const hasScript = new Deno.Command("sh", {
  args: ["-c", "command -v script"],
  stdout: "null",
  stderr: "null",
}).outputSync().success;

Deno.test({
  name: "cli.ts map on a terminal draws a progress bar in place",
  ignore: !hasScript,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "distex-cli-" });
    try {
      await Deno.writeTextFile(`${dir}/in.jsonl`, "30\n".repeat(12));
      const quote = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;
      const shell = [
        quote(Deno.execPath()),
        "run -A",
        quote(CLI),
        `map ${TASKS}#after -w 3 --progress-interval 10`,
        `--input ${quote(`${dir}/in.jsonl`)}`,
        `> ${quote(`${dir}/out.jsonl`)}`,
      ].join(" ");
      // `script` runs the command on a pseudo-terminal: stderr is a TTY.
      const { code, stdout, stderr } = await (async () => {
        const child = new Deno.Command("script", {
          args: ["-qfec", shell, "/dev/null"],
          cwd: FIXTURES,
          stdin: "null",
          stdout: "piped",
          stderr: "piped",
          env: { NO_COLOR: "1" },
        }).spawn();
        const output = child.output();
        const limit = deadline(HANG_MS, "cli.ts map under script");
        try {
          const r = await Promise.race([output, limit.promise]);
          return {
            code: r.code,
            stdout: decoder.decode(r.stdout),
            stderr: decoder.decode(r.stderr),
          };
        } finally {
          limit.clear();
          try {
            child.kill("SIGKILL");
          } catch { /* exited */ }
          await output.catch(() => {});
        }
      })();
      assert.equal(code, 0, stdout + stderr);
      const screen = stdout;
      // The bar: redrawn with carriage returns and erase-to-end-of-line.
      assert.match(screen, /\rdistex map \[#*-*\] +\d+% \d+\/12/);
      assert.match(screen, /\rdistex map \[#{24}\] 100% 12\/12 · /);
      assert.ok(screen.includes("\x1b[K"), JSON.stringify(screen));
      // All frames on one line: the bar only ends with the run.
      assert.equal(
        screen.trimEnd().split(/\r?\n/).length,
        1,
        JSON.stringify(screen),
      );
      const results = jsonLines(await Deno.readTextFile(`${dir}/out.jsonl`));
      assert.deepEqual(results, Array(12).fill(30));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

// ---- map: SSH hosts ------------------------------------------------------------

const sshMissing = await sshPrerequisites();

Deno.test({
  name: "cli.ts map --host runs the items on workers of an SSH host",
  ignore: sshMissing !== null,
  async fn() {
    await using host = await startSshHost();
    const { code, stdout, stderr } = await cli(
      [
        "map",
        `${TASKS}#square`,
        "--workers",
        "0",
        "--host",
        host.hostSpec(2),
        ...host.sshArgs.map((arg) => `--ssh-arg=${arg}`),
        "--ssh-command",
        `${Deno.execPath()} run -A ${CLI}`,
        "-q",
      ],
      numbers(1, 20),
    );
    assert.equal(code, 0, stderr);
    assert.deepEqual(jsonLines(stdout), squares(1, 20));
  },
});
