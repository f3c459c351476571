/**
 * The benchmarks' flags: read strictly, checked with valibot, bad ones one USAGE line. A helper
 * for bench/*.ts only (the scripts at the top level have their own loaders).
 */
import * as v from "valibot";
import { readFlags, usageError } from "../database.ts";

/**
 * Reads `--name value` flags (each with its default) and `--help`; returns the options `schema`
 * makes of them, or undefined when --help was asked for (then `usage` is printed).
 */
export function readBenchOptions<S extends v.GenericSchema>(
  args: string[],
  defaults: Record<string, string>,
  schema: S,
  usage: string,
  script: string,
): v.InferOutput<S> | undefined {
  const flags = Object.fromEntries(Object.entries(defaults).map(([name, value]) => [name, { type: "string" as const, default: value }]));
  const { help, ...values } = readFlags(args, { ...flags, help: { type: "boolean", short: "h" } }, script);
  if (help) {
    console.log(usage);
    return undefined;
  }
  const parsed = v.safeParse(schema, values);
  if (!parsed.success) throw usageError(`Cannot run the benchmark: ${parsed.issues[0].message}, got "${String(parsed.issues[0].input)}"`, script);
  return parsed.output;
}
