/**
 * The benchmarks' flags: read strictly, checked with valibot, a bad one one USAGE line. A helper
 * for bench/*.ts only (the scripts at the top level have their own loaders).
 */
import * as v from "valibot";
import { readFlags } from "../lib/cli.ts";
import { EXIT, describeError, usageError } from "../lib/errors.ts";

/**
 * Reads `--name value` flags (each with its default) and `--help`; returns the options `schema`
 * makes of them, or the exit code to end with: 0 after printing `usage` for --help, 2 after one
 * line on stderr for a bad flag.
 */
export function readBenchOptions<S extends v.GenericSchema>(
  args: string[],
  defaults: Record<string, string>,
  schema: S,
  usage: string,
  script: string,
): v.InferOutput<S> | number {
  try {
    const flags = Object.fromEntries(Object.entries(defaults).map(([name, value]) => [name, { type: "string" as const, default: value }]));
    const { help, ...values } = readFlags(args, { ...flags, help: { type: "boolean", short: "h" } }, script);
    if (help) {
      console.log(usage);
      return EXIT.ok;
    }
    const parsed = v.safeParse(schema, values);
    if (!parsed.success) throw usageError(`Cannot run the benchmark: ${parsed.issues[0].message}, got "${String(parsed.issues[0].input)}"`, script);
    return parsed.output;
  } catch (error) {
    const { line, exitCode } = describeError(error, "read the arguments");
    console.error(line);
    return exitCode;
  }
}
