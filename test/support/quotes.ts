/** A realistic stored quote (USD-BRL, 2024-08-23, from the daily fixture) for tests to vary. */
import type { StoredQuote as Quote } from "../../lib/quote.ts";

export function sampleQuote(overrides: Partial<Quote> = {}): Quote {
  return {
    pair: "USD-BRL",
    ts: new Date("2024-08-23T17:39:40Z"),
    bid: "5.5037",
    ask: "5.506",
    high: "5.6061",
    low: "5.4716",
    varBid: "-0.0785",
    pctChange: "-1.41",
    source: "test",
    fetchedAt: new Date("2024-08-23T17:40:00Z"),
    ...overrides,
  };
}
