/**
 * monitor.ts: "what is the dollar now, and is anything wrong?" in a blink. Read-only: it never
 * migrates or writes.
 */
import * as v from "valibot";
import { EXIT, PairSchema, connect, describeError, readFlags, usageError, latestQuote, loadDatabaseConfig, type StoredQuote as Quote, type Sql } from "./database.ts";

const DEFAULT_PAIR = "USD-BRL";

const USAGE = `Usage: bun monitor.ts [--pair USD-BRL] [--help]

Prints the newest stored quote of a pair and its age. Read-only.

Exit codes: 0 a quote is stored, 1 failure or no quote stored, 2 bad usage.`;

/** One line for a terminal: pair, bid, ask, the quote's time (UTC) and its age. */
export function formatQuote(quote: Quote, now: Date = new Date()): string {
  const ageMinutes = Math.max(0, Math.round((now.getTime() - quote.ts.getTime()) / 60_000));
  return `${quote.pair} bid ${quote.bid} ask ${quote.ask} at ${quote.ts.toISOString()} (${ageMinutes} min ago)`;
}

async function main(args: string[]): Promise<number> {
  let pair = DEFAULT_PAIR;
  try {
    const values = readFlags(args, { pair: { type: "string" }, help: { type: "boolean", short: "h" } }, "monitor.ts");
    if (values.help) {
      console.log(USAGE);
      return 0;
    }
    const parsed = v.safeParse(PairSchema, values.pair ?? DEFAULT_PAIR);
    if (!parsed.success) throw usageError(`--pair must look like USD-BRL, got "${values.pair}"`, "monitor.ts");
    pair = parsed.output;
  } catch (error) {
    const { line, exitCode } = describeError(error, "read the arguments");
    console.error(line);
    return exitCode;
  }
  let sql: Sql | undefined;
  try {
    sql = await connect(loadDatabaseConfig(process.env), { max: 1 });
    const quote = await latestQuote(sql, pair);
    if (!quote) {
      console.error(`No quote stored for ${pair}: run bun main_pipeline.ts --pairs ${pair}`);
      return 1;
    }
    console.log(formatQuote(quote));
    return 0;
  } catch (error) {
    const { line, exitCode } = describeError(error, "read the newest quote");
    console.error(line);
    return exitCode === EXIT.usage ? EXIT.usage : EXIT.failure;
  } finally {
    await sql?.end({ timeout: 5 });
  }
}

if (import.meta.main) {
  process.exitCode = await main(Bun.argv.slice(2));
}
