/**
 * lib/quote.ts: what a quote is, everywhere: the pair rule (flags, settings, query parameters and
 * what is sent to AwesomeAPI) and the shape of one quote, fetched or stored.
 */
import * as v from "valibot";
import { CotacaoError } from "./errors.ts";

/** Letters or digits, 2 to 12 on each side of one dash: "USD-BRL", "BTC-BRL", "USD-BRLPTAX". */
const PAIR_PATTERN = /^[A-Za-z0-9]{2,12}-[A-Za-z0-9]{2,12}$/;

/** Where a quote came from (QuoteSchema's `source`): AwesomeAPI's latest quote, or a day of its history. */
export const SOURCE_LAST = "awesomeapi:last";
export const SOURCE_DAILY = "awesomeapi:daily";

/** The pair every script watches when none is named. */
export const DEFAULT_PAIR = "USD-BRL";

/** A pair at every boundary: any case in, upper case out, like "USD-BRL". */
export const PairSchema = v.pipe(
  v.string(),
  v.trim(),
  v.check((text) => PAIR_PATTERN.test(text), (issue) => `"${String(issue.input)}" is not a pair like "USD-BRL"`),
  v.toUpperCase(),
);

/** Parses "USD-BRL,eur-brl" (or a list) into validated, trimmed, upper-case, deduplicated pairs; throws USAGE naming a bad one. */
export function parsePairs(input: string | readonly string[]): string[] {
  const items = (typeof input === "string" ? input.split(",") : input).map((item) => item.trim());
  const pairs: string[] = [];
  for (const item of items) {
    if (item === "" && typeof input === "string") continue;
    const parsed = v.safeParse(PairSchema, item);
    if (!parsed.success) {
      throw new CotacaoError(
        "USAGE",
        `Cannot read the pairs: "${item}" is not a pair like "USD-BRL", use letters or digits, 2 to 12 on each side of one dash`,
      );
    }
    if (!pairs.includes(parsed.output)) pairs.push(parsed.output);
  }
  if (pairs.length === 0) {
    throw new CotacaoError("USAGE", `Cannot read the pairs: none given, name at least one like "USD-BRL"`);
  }
  return pairs;
}

const DecimalText = v.pipe(v.string(), v.regex(/^-?\d+(\.\d+)?$/));

/**
 * One quote, as the source gives it and as it is stored: decimals are strings, exactly as the API
 * wrote them, so no digit is lost on the way to PostgreSQL's numeric.
 */
export const QuoteSchema = v.object({
  /** "USD-BRL" */
  pair: PairSchema,
  /** The quote's own timestamp. */
  ts: v.date(),
  bid: DecimalText,
  ask: DecimalText,
  high: v.nullable(DecimalText),
  low: v.nullable(DecimalText),
  varBid: v.nullable(DecimalText),
  pctChange: v.nullable(DecimalText),
  /** Where it came from, e.g. "awesomeapi:last". */
  source: v.string(),
  fetchedAt: v.date(),
});

/** One quote: decimals as strings (see QuoteSchema). */
export type Quote = v.InferOutput<typeof QuoteSchema>;
/** One quote as stored: the same shape as Quote (the name the write path and the queries use). */
export type StoredQuote = Quote;
