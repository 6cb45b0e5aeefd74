/**
 * Host entries: `ssh://[user@]host[:port]/N`, `tls://host[:port]/N`,
 * `host[:port]/N` and `{ command, workers, name? }`.
 *
 * @module
 */
import assert from "node:assert/strict";
import { type HostSpec, parseHostSpec } from "../src/host_spec.ts";
import { throwsExactly } from "./_util.ts";

Deno.test("parseHostSpec() reads every part of a valid spec", () => {
  const ssh = (
    user: string | undefined,
    host: string,
    port: number | undefined,
    workers: number,
  ) => ({
    kind: "ssh" as const,
    ssh: true,
    user,
    host,
    port,
    workers,
    command: undefined,
  });
  const tls = (host: string, port: number, workers: number) => ({
    kind: "tls" as const,
    ssh: false,
    user: undefined,
    host,
    port,
    workers,
    command: undefined,
  });
  const cases: [string, Omit<HostSpec, "spec">][] = [
    ["maxi/4", tls("maxi", 8899, 4)],
    ["ssh://maxi/1", ssh(undefined, "maxi", undefined, 1)],
    ["ssh://user@maxi:2222/8", ssh("user", "maxi", 2222, 8)],
    ["10.0.0.7:22/16", tls("10.0.0.7", 22, 16)],
    ["tls://10.0.0.7:9000/16", tls("10.0.0.7", 9000, 16)],
    ["tls://maxi/2", tls("maxi", 8899, 2)],
    ["ssh://[::1]:2200/2", ssh(undefined, "::1", 2200, 2)],
    ["[fe80::1]/3", tls("fe80::1", 8899, 3)],
    ["node-01.example.org/100000", tls("node-01.example.org", 8899, 100_000)],
    ["ssh://a_b.c-d@h_1/1", ssh("a_b.c-d", "h_1", undefined, 1)],
    ["ssh://maxi:65535/1", ssh(undefined, "maxi", 65535, 1)],
  ];
  for (const [spec, expected] of cases) {
    assert.deepEqual(parseHostSpec(spec), { spec, ...expected }, spec);
  }
});

Deno.test("parseHostSpec() reads a command host", () => {
  const command = ["srun", "-n1", "deno", "run", "-A", "jsr:@distex/pool/cli"];
  assert.deepEqual(parseHostSpec({ command, workers: 3, name: "node1" }), {
    spec: "node1",
    kind: "command",
    ssh: false,
    user: undefined,
    host: "node1",
    port: undefined,
    workers: 3,
    command,
  });
  const unnamed = parseHostSpec({ command: ["a", "b"], workers: 1 });
  assert.equal(unnamed.host, "a b", "the command line names it by default");
});

Deno.test("parseHostSpec() refuses bad command hosts, naming the problem", () => {
  const cases: [unknown, ErrorConstructor, RegExp][] = [
    [
      { command: [], workers: 1 },
      TypeError,
      /'command' must be a non-empty array/,
    ],
    [{ command: "srun deno", workers: 1 }, TypeError, /'command' must be/],
    [{ command: ["srun", 3], workers: 1 }, TypeError, /'command' must be/],
    [{ command: ["srun"] }, TypeError, /'workers' must be a number/],
    [{ command: ["srun"], workers: 0 }, RangeError, /worker count 0/],
    [{ command: ["srun"], workers: 1.5 }, RangeError, /worker count 1\.5/],
    [{ command: ["srun"], workers: 1, name: "" }, TypeError, /'name'/],
    [
      { command: ["srun"], workers: 1, cmd: 1 },
      TypeError,
      /unknown property 'cmd'/,
    ],
  ];
  for (const [entry, kind, message] of cases) {
    assert.throws(() => parseHostSpec(entry), kind, undefined);
    assert.throws(() => parseHostSpec(entry), message);
  }
});

Deno.test("parseHostSpec() ignores surrounding whitespace", () => {
  const parsed = parseHostSpec("  ssh://maxi/2\n");
  assert.equal(parsed.host, "maxi");
  assert.equal(parsed.workers, 2);
});

Deno.test("parseHostSpec() refuses malformed specs with a TypeError", () => {
  const cases: [unknown, RegExp][] = [
    [
      "maxi",
      /"maxi".*ssh:\/\/\[user@\]host\[:port\]\/N.*tls:\/\/.*needs '\/N'/,
    ],
    [
      "ewald@10.0.0.7:22/16",
      /takes no user.*"ssh:\/\/ewald@10\.0\.0\.7:22\/16"/,
    ],
    ["tls://u@maxi/2", /takes no user/],
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
    [4, /must be a string.*or an object.*got number/],
    [null, /must be a string.*got null/],
    [["maxi/2"], /must be a string.*got array/],
    [{ host: "maxi" }, /unknown property 'host'/],
  ];
  for (const [spec, message] of cases) {
    throwsExactly(
      () => parseHostSpec(spec),
      TypeError,
      message,
      JSON.stringify(spec),
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
    const error = throwsExactly(
      () => parseHostSpec(spec),
      RangeError,
      message,
      spec,
    );
    assert.ok(error.message.includes(JSON.stringify(spec)));
  }
});
