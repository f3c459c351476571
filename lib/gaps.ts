/**
 * lib/gaps.ts: days of a pair missing further back than a latest-quote run fills in, recorded
 * by the pipeline and shown by the dashboard and the monitor with the command that fills them.
 */
import type { Sql } from "./pool.ts";

/** Days of a pair missing further back than a latest-quote run fills in (quote_gaps): the person must load them. */
export interface QuoteGap {
  pair: string;
  /** São Paulo dates, YYYY-MM-DD, both included. */
  from: string;
  to: string;
}

/** The command that loads a gap's days. */
export const gapCommand = (gap: QuoteGap) => `bun main_pipeline.ts --pairs ${gap.pair} --from ${gap.from} --to ${gap.to}`;

/** What needs doing about a gap, in one line: the pipeline's stderr, the monitor and the dashboard say it. */
export function describeGap(gap: QuoteGap): string {
  return `${gap.pair} has no quotes from ${gap.from} to ${gap.to}, further back than a run fills in; load them with: ${gapCommand(gap)}`;
}

/** Remembers a gap a run could not fill, until a backfill covers it; a gap found again grows to its newer end. */
export async function recordGap(sql: Sql, gap: QuoteGap): Promise<void> {
  await sql`
    insert into quote_gaps (pair, from_day, to_day) values (${gap.pair}, ${gap.from}, ${gap.to})
    on conflict (pair, from_day) do update set to_day = greatest(quote_gaps.to_day, excluded.to_day)`;
}

/** The gaps of `pairs` still to fill, oldest first per pair. */
export async function listGaps(sql: Sql, pairs: readonly string[]): Promise<QuoteGap[]> {
  if (pairs.length === 0) return [];
  return sql<QuoteGap[]>`
    select pair, from_day::text as "from", to_day::text as "to" from quote_gaps
    where pair in ${sql(pairs)} order by pair, from_day`;
}

/**
 * Forgets what a completed backfill of `pair` over [from, to] covered: the gaps inside it go, and
 * a gap that sticks out on one side keeps only that side. The API was asked for those days; what
 * it has is stored.
 */
export async function clearGaps(sql: Sql, pair: string, from: string, to: string): Promise<void> {
  await sql.begin(async (tx) => {
    await tx`delete from quote_gaps where pair = ${pair} and from_day >= ${from}::date and to_day <= ${to}::date`;
    await tx`
      update quote_gaps set from_day = ${to}::date + 1
      where pair = ${pair} and from_day >= ${from}::date and from_day <= ${to}::date and to_day > ${to}::date`;
    await tx`
      update quote_gaps set to_day = ${from}::date - 1
      where pair = ${pair} and to_day >= ${from}::date and to_day <= ${to}::date and from_day < ${from}::date`;
  });
}
