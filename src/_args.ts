/**
 * The one module that knows how command lines are parsed (`node:util`
 * `parseArgs` today, `@std/cli` once JSR is reachable).
 *
 * @module
 */
import { parseArgs, type ParseArgsConfig } from "node:util";
import { didYouMean } from "./_did_you_mean.ts";

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
    const message = error instanceof Error ? error.message : String(error);
    // "Unknown option '--wokers'. To specify a positional …": name the flag
    // that was meant instead of the positional-argument advice.
    const unknown = /^Unknown option '(--?[^']+)'/.exec(message)?.[1];
    if (unknown !== undefined) {
      const flags = Object.entries(options).flatMap(([name, spec]) =>
        spec.short ? [`--${name}`, `-${spec.short}`] : [`--${name}`]
      );
      const near = didYouMean(unknown, flags.filter((f) => f.startsWith("--")));
      throw new TypeError(
        `Unknown option '${unknown}'${
          near ? ` (did you mean '${near}'?)` : ""
        }; the options are ${flags.join(", ")}`,
      );
    }
    throw new TypeError(message);
  }
}
