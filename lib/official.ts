/**
 * lib/official.ts: what an official rate is: one bulletin of Banco Central do Brasil's PTAX, as
 * the client (lib/bcb.ts) reads it and the write path stores it (`official_rates`). AwesomeAPI's
 * quotes and these are never mixed in one table.
 */
import * as v from "valibot";
import { PairSchema } from "./quote.ts";

/** The currencies PTAX publishes against BRL. */
export const PTAX_CURRENCIES = ["USD", "EUR", "GBP", "JPY", "CHF", "CAD", "AUD", "DKK", "NOK", "SEK"] as const;

/** The bulletins of a day: the opening one, three intermediate ones, and the closing PTAX. */
export const BULLETINS = ["opening", "intermediate", "closing"] as const;
export type Bulletin = (typeof BULLETINS)[number];

/** A rate's digits exactly as BCB wrote them (never through a float). */
const RateText = v.pipe(v.string(), v.regex(/^\d+(\.\d+)?$/));

/**
 * An instant written with its offset and every fractional digit BCB gave (1 to 6), e.g.
 * "2020-08-28T13:09:27.123456-03:00": sent to PostgreSQL as text, so no microsecond is lost
 * on the way to timestamptz (a Date keeps milliseconds only).
 */
const InstantText = v.pipe(v.string(), v.regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?[+-]\d{2}:\d{2}$/));

/** One PTAX bulletin for one pair. */
export const OfficialRateSchema = v.object({
  /** "USD-BRL": the currency against BRL. */
  pair: PairSchema,
  /** When BCB published it (its `dataHoraCotacao`, Brasília wall-clock time, with the offset then in force). */
  publishedAt: InstantText,
  bulletin: v.picklist(BULLETINS),
  /** cotacaoCompra */
  buy: RateText,
  /** cotacaoVenda */
  sell: RateText,
});

/** One PTAX bulletin for one pair (see OfficialRateSchema). */
export type OfficialRate = v.InferOutput<typeof OfficialRateSchema>;

/** The pair PTAX covers for `pair`, or undefined (BTC-BRL, USD-EUR...). */
export function ptaxCurrencyOf(pair: string): (typeof PTAX_CURRENCIES)[number] | undefined {
  const [base, quote] = pair.split("-");
  if (quote !== "BRL") return undefined;
  return PTAX_CURRENCIES.find((currency) => currency === base);
}
