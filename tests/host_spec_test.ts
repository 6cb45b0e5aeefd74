/**
 * Host specs `[ssh://][user@]host[:port]/N`.
 *
 * @module
 */
import assert from "node:assert/strict";
import { type HostSpec, parseHostSpec } from "../src/host_spec.ts";

Deno.test("parseHostSpec() reads every part of a valid spec", () => {
  const cases: [string, Omit<HostSpec, "spec">][] = [
    ["maxi/4", {
      ssh: false,
      user: undefined,
      host: "maxi",
      port: undefined,
      workers: 4,
    }],
    ["ssh://maxi/1", {
      ssh: true,
      user: undefined,
      host: "maxi",
      port: undefined,
      workers: 1,
    }],
    ["ssh://user@maxi:2222/8", {
      ssh: true,
      user: "user",
      host: "maxi",
      port: 2222,
      workers: 8,
    }],
    ["ewald@10.0.0.7:22/16", {
      ssh: false,
      user: "ewald",
      host: "10.0.0.7",
      port: 22,
      workers: 16,
    }],
    ["ssh://[::1]:2200/2", {
      ssh: true,
      user: undefined,
      host: "::1",
      port: 2200,
      workers: 2,
    }],
    ["[fe80::1]/3", {
      ssh: false,
      user: undefined,
      host: "fe80::1",
      port: undefined,
      workers: 3,
    }],
    ["node-01.example.org/100000", {
      ssh: false,
      user: undefined,
      host: "node-01.example.org",
      port: undefined,
      workers: 100_000,
    }],
    ["a_b.c-d@h_1/1", {
      ssh: false,
      user: "a_b.c-d",
      host: "h_1",
      port: undefined,
      workers: 1,
    }],
    ["ssh://maxi:65535/1", {
      ssh: true,
      user: undefined,
      host: "maxi",
      port: 65535,
      workers: 1,
    }],
  ];
  for (const [spec, expected] of cases) {
    assert.deepEqual(parseHostSpec(spec), { spec, ...expected }, spec);
  }
});

Deno.test("parseHostSpec() ignores surrounding whitespace", () => {
  const parsed = parseHostSpec("  ssh://maxi/2\n");
  assert.equal(parsed.host, "maxi");
  assert.equal(parsed.workers, 2);
});

Deno.test("parseHostSpec() refuses malformed specs with a TypeError", () => {
  const cases: [unknown, RegExp][] = [
    ["maxi", /"maxi".*\[ssh:\/\/\]\[user@\]host\[:port\]\/N.*needs '\/N'/],
    ["ssh://maxi", /needs '\/N'/],
    ["", /Bad host spec ""/],
    ["/4", /Bad host spec/],
    ["maxi/", /Bad host spec/],
    ["maxi/-1", /Bad host spec/],
    ["maxi/two", /Bad host spec/],
    ["maxi/2.5", /Bad host spec/],
    ["http://maxi/2", /Bad host spec/],
    ["user@@maxi/2", /Bad host spec/],
    ["ma xi/2", /Bad host spec/],
    ["maxi:port/2", /Bad host spec/],
    ["::1/2", /Bad host spec/],
    ["maxi/2/3", /Bad host spec/],
    ["maxi;rm -rf/2", /Bad host spec/],
    [4, /must be a string.*got number/],
    [null, /must be a string/],
    [{ host: "maxi" }, /must be a string.*got object/],
  ];
  for (const [spec, message] of cases) {
    assert.throws(
      () => parseHostSpec(spec),
      (error: unknown) => {
        assert.equal(
          Object.getPrototypeOf(error),
          TypeError.prototype,
          `${JSON.stringify(spec)} threw ${error}`,
        );
        assert.match((error as Error).message, message);
        return true;
      },
      `${JSON.stringify(spec)} should be refused`,
    );
  }
});

Deno.test("parseHostSpec() refuses counts and ports out of range with a RangeError", () => {
  const cases: [string, RegExp][] = [
    ["maxi/0", /worker count 0/],
    ["maxi/100001", /worker count 100001/],
    ["maxi/99999999999999999999", /worker count/],
    ["maxi:0/2", /port 0 is not in 1\.\.65535/],
    ["maxi:65536/2", /port 65536/],
    ["ssh://u@maxi:99999/2", /port 99999/],
  ];
  for (const [spec, message] of cases) {
    assert.throws(
      () => parseHostSpec(spec),
      (error: unknown) => {
        assert.equal(
          Object.getPrototypeOf(error),
          RangeError.prototype,
          `${spec} threw ${error}`,
        );
        assert.match((error as Error).message, message);
        assert.ok((error as Error).message.includes(JSON.stringify(spec)));
        return true;
      },
      `${spec} should be refused`,
    );
  }
});
