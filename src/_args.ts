/**
 * The one module that knows how command lines are parsed (`node:util`
 * `parseArgs` today, `@std/cli` once JSR is reachable).
 *
 * @module
 */
import { parseArgs, type ParseArgsConfig } from "node:util";

/** Option declarations, as `node:util` `parseArgs` takes them. */
export type OptionSpec = NonNullable<ParseArgsConfig["options"]>;

/** Parsed values: strings, booleans, or arrays of them for `multiple`. */
export type ParsedValues = Record<
  string,
  string | boolean | (string | boolean)[] | undefined
>;

/**
 * Parses `args` strictly against `options`.
 * @throws {TypeError} on an unknown option or a missing value, with a message fit for users.
 */
export function parseCommandLine(
  args: string[],
  options: OptionSpec,
  allowPositionals = false,
): { values: ParsedValues; positionals: string[] } {
  try {
    const { values, positionals } = parseArgs({
      args,
      options,
      strict: true,
      allowPositionals,
    });
    return { values: values as ParsedValues, positionals };
  } catch (error) {
    throw new TypeError(error instanceof Error ? error.message : String(error));
  }
}
