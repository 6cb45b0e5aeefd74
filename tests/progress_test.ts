/**
 * `progress()` and the meter behind it (the CLI's display): formatting,
 * terminal and plain-line modes, and the stream passing items through.
 *
 * @module
 */
import assert from "node:assert/strict";
import { Pool, progress } from "../mod.ts";
import {
  formatDuration,
  formatProgress,
  ProgressMeter,
  type ProgressOutput,
} from "../src/progress.ts";

/** An output that records what is written; `wrote` resolves on each write. */
function fakeOutput(terminal: boolean): ProgressOutput & {
  text(): string;
  nextWrite(): Promise<string>;
} {
  const decoder = new TextDecoder();
  let text = "";
  let waiter: PromiseWithResolvers<string> | undefined;
  return {
    writeSync(data: Uint8Array): number {
      const chunk = decoder.decode(data);
      text += chunk;
      const w = waiter;
      waiter = undefined;
      w?.resolve(chunk);
      return data.length;
    },
    isTerminal: () => terminal,
    text: () => text,
    nextWrite(): Promise<string> {
      waiter ??= Promise.withResolvers();
      return waiter.promise;
    },
  };
}

Deno.test("formatDuration() writes m:ss, and h:mm:ss from an hour on", () => {
  assert.equal(formatDuration(0), "0:00");
  assert.equal(formatDuration(61_000), "1:01");
  assert.equal(formatDuration(3_600_000 + 62_000), "1:01:02");
});

Deno.test("formatProgress() shows done/total, percent, rate and time left", () => {
  const state = { done: 5, failed: 0, total: 10, elapsedMs: 2_000 };
  assert.equal(
    formatProgress(state, false),
    "5/10 done (50%) · 2.50/s · 0:02 elapsed · 0:02 left",
  );
  assert.equal(
    formatProgress(state, true, 10),
    "[#####-----]  50% 5/10 · 2.50/s · 0:02, 0:02 left",
  );
  assert.equal(
    formatProgress(state, true, 0),
    " 50% 5/10 · 2.50/s · 0:02, 0:02 left",
  );
});

Deno.test("formatProgress() without a total shows count, rate and elapsed; failures when any", () => {
  const state = { done: 300, failed: 2, total: undefined, elapsedMs: 1_500 };
  assert.equal(
    formatProgress(state, false),
    "298 done · 2 failed · 200/s · 0:01 elapsed",
  );
  assert.equal(
    formatProgress(state, true),
    "298 done · 2 failed · 200/s · 0:01 elapsed",
  );
});

Deno.test("ProgressMeter on a terminal redraws one line in place and ends it with a newline", () => {
  const output = fakeOutput(true);
  let now = 0;
  const meter = new ProgressMeter(
    { total: 4, label: "job", output },
    () => now,
  );
  assert.equal(meter.mode, "bar");
  const first = output.text();
  assert.ok(first.startsWith(`\rjob [${"-".repeat(24)}]   0% 0/4 · `), first);
  assert.ok(first.endsWith("\x1b[K"), first);
  meter.add(2);
  now = 1_000;
  meter.log("line 3: boom");
  meter.add(2);
  now = 2_000;
  meter.stop();
  meter.stop(); // idempotent
  const text = output.text();
  // The report clears the bar, stands on its own line, and the bar returns.
  assert.ok(text.includes("\r\x1b[Kline 3: boom\n\rjob [####"), text);
  assert.ok(text.endsWith("100% 4/4 · 2.00/s · 0:02\x1b[K\n"), text);
  assert.equal(text.split("\n").length, 3);
});

Deno.test("ProgressMeter off a terminal writes plain lines, one at the end", () => {
  const output = fakeOutput(false);
  let now = 0;
  const meter = new ProgressMeter({ output }, () => now);
  assert.equal(meter.mode, "lines");
  assert.equal(output.text(), "");
  meter.add(3);
  meter.add(1, true);
  now = 2_000;
  meter.stop();
  assert.equal(
    output.text(),
    "progress: 3 done · 1 failed · 2.00/s · 0:02 elapsed\n",
  );
  assert.deepEqual(meter.state(), {
    done: 4,
    failed: 1,
    total: undefined,
    elapsedMs: 2_000,
  });
});

Deno.test("ProgressMeter in lines mode writes a line every interval", async () => {
  const output = fakeOutput(false);
  const meter = new ProgressMeter({ output, interval: 5, label: "tick" });
  // The meter's timer is unref'd (it never keeps a process alive): hold the
  // event loop open while the test waits for it.
  const keepAlive = setTimeout(() => {}, 60_000);
  try {
    meter.add(7);
    const line = await output.nextWrite();
    assert.match(line, /^tick: 7 done · .*elapsed\n$/);
  } finally {
    clearTimeout(keepAlive);
    meter.stop();
  }
});

Deno.test("ProgressMeter with mode 'none' counts and writes nothing", () => {
  const output = fakeOutput(true);
  const meter = new ProgressMeter({ output, mode: "none" });
  meter.add(5);
  meter.stop();
  assert.equal(meter.done, 5);
  assert.equal(output.text(), "");
});

Deno.test("progress() throws for bad options", () => {
  assert.throws(() => progress({ total: -1 }), RangeError);
  assert.throws(() => progress({ total: 1.5 }), RangeError);
  assert.throws(() => progress({ interval: 0 }), RangeError);
  assert.throws(
    () => progress({ mode: "fancy" as "bar" }),
    (e: unknown) => e instanceof TypeError && /fancy/.test(e.message),
  );
});

Deno.test("progress() passes items through unchanged and reports the total at the end", async () => {
  const output = fakeOutput(false);
  const items = [1, "two", { three: 3 }, [4]];
  const out = await Array.fromAsync(
    ReadableStream.from(items).pipeThrough(
      progress({ total: items.length, label: "items", output }),
    ),
  );
  assert.deepEqual(out, items);
  assert.match(output.text(), /^items: 4\/4 done \(100%\) · .* elapsed\n$/);
});

Deno.test("progress() ends its display when the reader cancels", async () => {
  const output = fakeOutput(false);
  const stream = ReadableStream.from([1, 2, 3]).pipeThrough(
    progress({ output, interval: 60_000 }),
  );
  const reader = stream.getReader();
  assert.deepEqual(await reader.read(), { value: 1, done: false });
  await reader.cancel();
  // The interval timer was cleared (the sanitizer would see it), and the
  // final line counts what went through.
  assert.match(output.text(), /^progress: 1 done · /);
});

Deno.test("progress() counts the results of Pool.map()", async () => {
  await using pool = new Pool(2);
  const output = fakeOutput(false);
  const inputs = Array.from({ length: 50 }, (_, i) => i);
  const results = await Array.fromAsync(
    pool.map((x: number) => x + 1, inputs).pipeThrough(
      progress({ total: inputs.length, output }),
    ),
  );
  assert.deepEqual(results, inputs.map((x) => x + 1));
  assert.match(output.text(), /^progress: 50\/50 done \(100%\)/);
});

Deno.test("formatProgress() does not count failed items as done", () => {
  const state = { done: 10, failed: 3, total: 20, elapsedMs: 1_000 };
  const text = formatProgress(state, false);
  assert.match(text, /^10\/20 \(50%\) · 7 done · 3 failed · /);
  assert.doesNotMatch(text, /10\/20 done/);
});
