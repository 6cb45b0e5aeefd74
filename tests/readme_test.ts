/**
 * The README's snippets. Plain `ts` code blocks run as doc tests (`deno task
 * test` passes README.md to `deno test --doc`); `ts ignore` blocks, which need
 * remote hosts (SSH, Slurm, a spawning server), are type-checked here, and
 * what they do is run by the contract suites over those hosts
 * (ssh_test, command_host_test, serve_test, slurm_test). A block importing
 * `jsr:@distex/pool` spans several files (it says which) and is mirrored by a
 * test instead (registerType: codec_test).
 *
 * @module
 */
import assert from "node:assert/strict";

const root = new URL("../", import.meta.url);

/** The `ts` code blocks of the README, with their attributes and line numbers. */
async function snippets(): Promise<
  { attrs: string; line: number; code: string }[]
> {
  const text = await Deno.readTextFile(new URL("README.md", root));
  const out = [];
  for (const m of text.matchAll(/^( *)```ts([^\n]*)\n(.*?)^\1```$/gms)) {
    const line = text.slice(0, m.index).split("\n").length;
    const indent = m[1]!.length;
    const code = m[3]!.split("\n").map((l) => l.slice(indent)).join("\n");
    out.push({ attrs: m[2]!.trim(), line, code });
  }
  return out;
}

Deno.test("README: every ts snippet runs as a doc test or is type-checked", async () => {
  const blocks = await snippets();
  assert.ok(blocks.length >= 10, `only ${blocks.length} ts blocks found`);
  const other = blocks.filter((b) => b.attrs !== "" && b.attrs !== "ignore");
  assert.deepEqual(other, [], "blocks with attributes this test does not know");
});

Deno.test("README: the ts ignore snippets (remote hosts) type-check", async () => {
  const blocks = (await snippets()).filter((b) =>
    b.attrs === "ignore" && !b.code.includes('"jsr:@distex/pool"')
  );
  assert.ok(blocks.length >= 3, `only ${blocks.length} ignore blocks found`);
  const files: string[] = [];
  try {
    for (const block of blocks) {
      assert.match(
        block.code,
        /^import .* from "@distex\/pool";$/m,
        `README line ${block.line}: a snippet must import what it uses`,
      );
      const file = await Deno.makeTempFile({
        dir: new URL(".", root).pathname,
        prefix: `.readme_${block.line}_`,
        suffix: ".ts",
      });
      files.push(file);
      await Deno.writeTextFile(file, block.code + "\nexport {};\n");
    }
    const { code, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["check", "--quiet", ...files],
      cwd: new URL(".", root).pathname,
      stdout: "null",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).output();
    assert.equal(code, 0, new TextDecoder().decode(stderr));
  } finally {
    for (const file of files) await Deno.remove(file).catch(() => {});
  }
});
