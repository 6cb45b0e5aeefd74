/**
 * Option validation: one message style for pool, task, map and close
 * options, and "did you mean" for every misspelt name.
 *
 * @module
 */
import assert from "node:assert/strict";
import { didYouMean } from "../src/_did_you_mean.ts";
import {
  DEFAULTS,
  validateCloseOptions,
  validateMapOptions,
  validatePoolOptions,
  validateTaskOptions,
} from "../src/options.ts";

Deno.test("didYouMean() finds a name that differs in case, length or a typo", () => {
  const names = ["chunkSize", "timeout", "maxMemoryMB", "workers", "retries"];
  assert.equal(didYouMean("chunksize", names), "chunkSize");
  assert.equal(didYouMean("timout", names), "timeout");
  assert.equal(didYouMean("maxMemory", names), "maxMemoryMB");
  assert.equal(didYouMean("worker", names), "workers");
  assert.equal(didYouMean("retires", names), "retries");
  assert.equal(didYouMean("colour", names), undefined);
});

Deno.test("validateTaskOptions() rejects unknown names with a suggestion", () => {
  assert.throws(
    () => validateTaskOptions({ timout: 5 }),
    (e) =>
      e instanceof TypeError &&
      e.message ===
        "Unknown Pool.apply() option 'timout' (did you mean 'timeout'?); the options are signal, timeout, retries",
  );
  validateTaskOptions(undefined);
  validateTaskOptions({
    timeout: 5,
    retries: 1,
    signal: new AbortController().signal,
  });
});

Deno.test("validateMapOptions() rejects unknown names and bad values in the common style", () => {
  assert.throws(
    () => validateMapOptions({ chunksize: 10 }),
    /^TypeError: Unknown Pool\.map\(\) option 'chunksize' \(did you mean 'chunkSize'\?\)/,
  );
  assert.throws(
    () => validateMapOptions({ chunkSize: 0 }),
    (e) =>
      e instanceof RangeError &&
      e.message ===
        "Pool.map() option 'chunkSize' must be an integer >= 1, got 0",
  );
  assert.throws(
    () => validateMapOptions({ star: 1 }),
    /^TypeError: Pool\.map\(\) option 'star' must be true or false, got 1$/,
  );
  assert.throws(
    () => validateMapOptions({ maxItemsInFlight: 0.5 }),
    /must be an integer >= 1 \(or Infinity\), got 0\.5/,
  );
  validateMapOptions({
    maxBytesInFlight: Infinity,
    ordered: false,
    timeout: 0,
  });
});

Deno.test("validateCloseOptions() rejects unknown names and a non-boolean wait", () => {
  assert.throws(
    () => validateCloseOptions({ wiat: false }),
    /Unknown Pool\.close\(\) option 'wiat' \(did you mean 'wait'\?\)/,
  );
  assert.throws(
    () => validateCloseOptions({ wait: "no" }),
    /Pool\.close\(\) option 'wait' must be true or false, got "no"/,
  );
  validateCloseOptions({ wait: false });
});

Deno.test("validatePoolOptions() uses the same style and a typo distance for names", () => {
  assert.throws(
    () => validatePoolOptions({ workers: 1, statTimeout: 5 } as never),
    /Unknown Pool option 'statTimeout' \(did you mean 'startTimeout'\?\)/,
  );
  assert.throws(
    () => validatePoolOptions({ workers: -1 }),
    (e) =>
      e instanceof RangeError &&
      e.message === "Pool option 'workers' must be an integer >= 0, got -1",
  );
  assert.throws(
    () => validatePoolOptions({ workers: 1, killGrace: "1s" } as never),
    /^TypeError: Pool option 'killGrace' must be a finite number of milliseconds >= 0, got "1s"$/,
  );
  assert.equal(validatePoolOptions(3).workers, 3);
});

Deno.test("DEFAULTS holds the documented defaults", () => {
  assert.deepEqual(
    { ...DEFAULTS },
    {
      retries: 0,
      poisonThreshold: 3,
      killGrace: 1_000,
      startTimeout: 30_000,
      initTimeout: 30_000,
      maxFrameBytes: 1 << 30,
      statsMs: 1_000,
    },
  );
});
