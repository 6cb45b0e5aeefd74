/**
 * The public API's types: `tests/fixtures/types_check.ts` holds typed uses
 * and `@ts-expect-error` lines that must be errors; `deno check` compiles it.
 *
 * @module
 */
import assert from "node:assert/strict";

Deno.test("Pool's types: map/run/transform are typed by their sources, events by name, module references by their type parameters", async () => {
  const fixture = new URL("./fixtures/types_check.ts", import.meta.url);
  const { code, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["check", "--quiet", fixture.pathname],
    stdout: "null",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  assert.equal(code, 0, new TextDecoder().decode(stderr));
});
