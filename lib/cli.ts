/**
 * lib/cli.ts: what every script's command line is made of: strict flags (readFlags), `--version`,
 * durations as people write them ("90s", "2h"), and printing an explained error where it belongs.
 */
import type { ParseArgsOptionsConfig, parseArgs } from "node:util";
import * as v from "valibot";
// A static import: inlined by `bun build --compile`, and ~0.1 ms at start-up (no file read at run time).
import { version as PACKAGE_VERSION } from "../package.json" with { type: "json" };
import { CotacaoError, EXIT, usageError } from "./errors.ts";

/** What `--version` prints: the script's name and cotacao's version from package.json, e.g. "monitor.ts 0.1.0". */
export function versionLine(script: string): string {
  return `${script} ${PACKAGE_VERSION}`;
}

/**
 * `--version` or `-V` on any script's command line: not a failure but an answer, so its exit code
 * is 0 and its line goes to stdout (see printDescribed()). readFlags() throws it as soon as it
 * reads the flag, before any other check, as `--help` would be honoured.
 */
export function versionRequest(script: string): CotacaoError {
  return new CotacaoError("VERSION", versionLine(script), { exitCode: EXIT.ok });
}

/** Prints describeError()'s line where it belongs (stdout for an answer such as --version, stderr for a failure); returns its exit code. */
export function printDescribed({ line, exitCode }: { line: string; exitCode: number }): number {
  (exitCode === EXIT.ok ? console.log : console.error)(line);
  return exitCode;
}

/** What readFlags() returns for `options`: node:util's parseArgs values, strict. */
export type Flags<O extends ParseArgsOptionsConfig> = ReturnType<typeof parseArgs<{ options: O; strict: true; allowPositionals: false }>>["values"];

/**
 * node:util's parseArgs, strict and without positionals, with its errors as one USAGE line: it
 * accepts and rejects what parseArgs does, and returns the same values (test/lib/cli.test.ts
 * holds the two equal). Our own because importing node:util costs every run of a script ~8 ms
 * (bench/monitor.ts), as much as the monitor's query. Every script also answers `--version` and
 * `-V` (unless it declares a `version` option of its own) by throwing versionRequest().
 */
export function readFlags<const O extends ParseArgsOptionsConfig>(args: string[], options: O, script: string): Flags<O> {
  const fail = (message: string) => usageError(`Cannot read the arguments: ${message}`, script);
  const values: Record<string, string | boolean | (string | boolean)[]> = Object.create(null);
  const longName = (short: string) => Object.keys(options).find((name) => options[name]?.short === short) ?? short;
  const isString = (name: string) => Object.hasOwn(options, name) && options[name]!.type === "string";
  const take = (name: string, rawName: string, value: string | undefined, inline: boolean) => {
    const option = Object.hasOwn(options, name) ? options[name] : undefined;
    if (!option) throw fail(`Unknown option '${rawName}'`);
    if (option.type === "boolean" && value !== undefined) throw fail(`Option '${rawName}' does not take an argument`);
    if (option.type === "string" && value === undefined) throw fail(`Option '${rawName} <value>' argument missing`);
    if (option.type === "string" && !inline && value!.length > 1 && value!.startsWith("-")) throw fail(`Option '${rawName}' argument is ambiguous`);
    const given = value ?? true;
    values[name] = option.multiple ? [...((values[name] as (string | boolean)[] | undefined) ?? []), given] : given;
  };
  const queue = [...args];
  const ownsVersion = Object.hasOwn(options, "version") || Object.values(options).some((option) => option.short === "V");
  if (!ownsVersion && queue.some((arg) => arg === "--version" || arg === "-V")) throw versionRequest(script);
  while (queue.length > 0) {
    const arg = queue.shift()!;
    const short = arg.startsWith("-") && arg[1] !== "-" ? longName(arg.slice(1, 2)) : "";
    if (arg === "--") {
      if (queue.length > 0) throw fail(`Unexpected argument '${queue[0]}'. This command does not take positional arguments`);
    } else if (arg.startsWith("--")) {
      const equals = arg.indexOf("=");
      const name = equals === -1 ? arg.slice(2) : arg.slice(2, equals);
      const rawName = `--${name}`;
      if (equals !== -1) take(name, rawName, arg.slice(equals + 1), true);
      else take(name, rawName, isString(name) ? queue.shift() : undefined, false);
    } else if (arg.length === 2 && short) {
      take(short, arg, isString(short) ? queue.shift() : undefined, false);
    } else if (arg.length > 2 && short) {
      // -w3 is -w with the value 3; -hx is -h -x; -hw3 is -h -w3.
      if (isString(short)) take(short, arg.slice(0, 2), arg.slice(2), true);
      else queue.unshift(arg.slice(0, 2), `-${arg.slice(2)}`);
    } else {
      throw fail(`Unexpected argument '${arg}'. This command does not take positional arguments`);
    }
  }
  for (const [name, option] of Object.entries(options)) {
    if (option.default !== undefined && !(name in values)) values[name] = option.default;
  }
  return values as Flags<O>;
}

const DURATION_UNITS_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Parses "60s", "5m", "2h", "1d", "250ms" or plain seconds into milliseconds; undefined if unreadable. */
export function parseDuration(text: string): number | undefined {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(text.trim());
  if (!match) return undefined;
  return Math.round(Number(match[1]) * (DURATION_UNITS_MS[match[2] ?? "s"] ?? 1000));
}

/** "90s", "2h", "30d": a bound as people write it. */
export function formatDuration(ms: number): string {
  if (ms === 0) return "0s";
  // Days from two on: "24h" reads better than "1d".
  if (ms >= 2 * 86_400_000 && ms % 86_400_000 === 0) return `${ms / 86_400_000}d`;
  for (const [unit, size] of [["h", 3_600_000], ["m", 60_000], ["s", 1000]] as const) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

/** Round durations an example can be, shortest first. */
const EXAMPLE_DURATIONS_MS = [250, 500, 1000, 5000, 10_000, 30_000, 60_000, 300_000, 600_000, 1_800_000, 3_600_000, 7_200_000, 21_600_000, 86_400_000, 7 * 86_400_000];

/**
 * A duration to show as an example of what `[min, max]` accepts: `preferred` when it lies inside,
 * else the round duration inside nearest the bounds' middle (geometric: the range spans orders
 * of magnitude), else `min`. An example outside the range ("like 90m" for 100ms to 5m) would
 * teach a value the same message refuses.
 */
export function durationExample([min, max]: readonly [number, number], preferred?: string): string {
  const inside = (ms: number | undefined) => ms !== undefined && ms >= min && ms <= max;
  if (preferred !== undefined && inside(parseDuration(preferred))) return preferred;
  const middle = Math.log(Math.max(min, 1)) / 2 + Math.log(Math.max(max, 1)) / 2;
  const distance = (ms: number) => Math.abs(Math.log(ms) - middle);
  const round = EXAMPLE_DURATIONS_MS.filter(inside).sort((a, b) => distance(a) - distance(b))[0];
  return formatDuration(round ?? min);
}

/**
 * A duration setting: unset or empty means `fallbackMs`; otherwise a duration within `bounds`.
 * The message names the bounds and an example inside them (durationExample()), never only the
 * bad value.
 */
export function durationSetting(fallbackMs: number, [min, max]: readonly [number, number], example: string) {
  return v.pipe(
    v.optional(v.string(), ""),
    v.trim(),
    v.check(
      (text) => {
        const ms = text === "" ? fallbackMs : (parseDuration(text) ?? Number.NaN);
        return ms >= min && ms <= max;
      },
      (issue) => `must be a duration from ${formatDuration(min)} to ${formatDuration(max)}, like ${durationExample([min, max], example)}, got "${String(issue.input)}"`,
    ),
    v.transform((text) => (text === "" ? fallbackMs : (parseDuration(text) as number))),
  );
}
