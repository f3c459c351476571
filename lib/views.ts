/**
 * lib/views.ts: the read queries of the dashboard, the monitor and the rule: series, snapshots,
 * summaries, tables, health facts.
 */
import { SAO_PAULO_TIME_ZONE } from "./calendar.ts";
import type { Sql } from "./pool.ts";
import type { QuoteGap } from "./gaps.ts";
import type { OfficialRate } from "./official.ts";
import { SOURCE_DAILY, type StoredQuote } from "./quote.ts";

/** The newest stored quote for `pair`, or undefined. */
export async function latestQuote(sql: Sql, pair: string): Promise<StoredQuote | undefined> {
  const [row] = await sql<StoredQuote[]>`
    select pair, ts, bid::text, ask::text, high::text, low::text,
           var_bid::text as "varBid", pct_change::text as "pctChange", source, fetched_at as "fetchedAt"
    from quotes
    where pair = ${pair}
    order by ts desc
    limit 1`;
  return row;
}

/** The pairs that have quotes. */
export async function storedPairs(sql: Sql): Promise<string[]> {
  // A loose index scan: one probe per pair instead of reading every quote.
  const rows = await sql<{ pair: string }[]>`
    with recursive pairs as (
      (select pair from quotes order by pair limit 1)
      union all
      select (select pair from quotes where pair > p.pair order by pair limit 1) from pairs p where p.pair is not null
    )
    select pair from pairs where pair is not null`;
  return rows.map((row) => row.pair);
}

/**
 * A pair's daily series: for each São Paulo day with quotes, the day's last quote (its close).
 * Columnar, oldest first, ready for the rule's maths and for charts.
 */
export interface StoredSeries {
  /** Days since 1970-01-01 (São Paulo calendar), ascending. */
  days: Int32Array;
  /** Each day's close, as a number for the maths. */
  closes: Float64Array;
  /** "YYYY-MM-DD" per day. */
  dates: string[];
  /** The close as stored, exact. */
  closeTexts: string[];
  /** The time of each day's last quote. */
  ats: Date[];
}

/** Where a daily series starts: a São Paulo date, or the newest stored day; then `daysBefore` days earlier. */
export interface SeriesStart {
  /** "YYYY-MM-DD"; a date after the newest stored day counts as that day. Default: the newest stored day. */
  since?: string | null;
  daysBefore?: number;
}

/**
 * The daily series of `pair`, computed in SQL: from the newest quote, each step jumps to the
 * latest quote before the start of that quote's São Paulo day, one index probe per day, so
 * ten years of minute quotes cost a few thousand probes, not a scan of millions of rows.
 * Without `start`, the whole history.
 */
export async function loadDailySeries(sql: Sql, pair: string, start?: SeriesStart): Promise<StoredSeries> {
  const rows = await sql<{ day: number; date: string; at: Date; close: string }[]>`
    with recursive first_day as (
      select case when ${start === undefined} then null
                  else least(coalesce(${start?.since ?? null}::date, 'infinity'),
                             (select (max(ts) at time zone ${SAO_PAULO_TIME_ZONE})::date from quotes where pair = ${pair}))
                       - ${start?.daysBefore ?? 0}::int
             end as day
    ),
    closes as (
      (select ts, bid from quotes where pair = ${pair} order by ts desc limit 1)
      union all
      select previous.ts, previous.bid
      from closes c
      cross join lateral (
        select ts, bid from quotes
        where pair = ${pair} and ts < date_trunc('day', c.ts, ${SAO_PAULO_TIME_ZONE})
        order by ts desc
        limit 1
      ) previous
      where (select day from first_day) is null or (c.ts at time zone ${SAO_PAULO_TIME_ZONE})::date > (select day from first_day)
    )
    select (ts at time zone ${SAO_PAULO_TIME_ZONE})::date - date '1970-01-01' as day,
           to_char(ts at time zone ${SAO_PAULO_TIME_ZONE}, 'YYYY-MM-DD') as date, ts as at, bid::text as close
    from closes
    where (select day from first_day) is null or (ts at time zone ${SAO_PAULO_TIME_ZONE})::date >= (select day from first_day)
    order by ts`;
  return dailySeriesOf(rows);
}

/** The columns of a daily series from its rows, oldest first. */
function dailySeriesOf(rows: readonly { day: number; date: string; at: Date; close: string }[]): StoredSeries {
  const series: StoredSeries = { days: new Int32Array(rows.length), closes: new Float64Array(rows.length), dates: [], closeTexts: [], ats: [] };
  rows.forEach((row, i) => {
    series.days[i] = row.day;
    series.closes[i] = Number(row.close);
    series.dates.push(row.date);
    series.closeTexts.push(row.close);
    series.ats.push(row.at);
  });
  return series;
}

/** What the monitor shows of one pair, read in one round trip with every other pair's. */
export interface PairSnapshot {
  pair: string;
  /** The newest quote, or null when the pair has none. */
  latest: { ts: Date; bid: string; ask: string } | null;
  /** The daily closes of the days before the newest quote's, and of its own, oldest first. */
  closes: { day: number; ts: Date; close: string }[];
  /** Alerts firing now. */
  alerts: { kind: string; direction: string | null; startedAt: Date }[];
  /** The newest pipeline run that tried the pair, and how it went for the pair (a run that failed for other pairs only succeeded for this one). */
  lastRun: { id: number; status: string; startedAt: Date; finishedAt: Date | null; failedStep: string | null; error: string | null } | null;
  /** Days missing too far back for a run to fill (quote_gaps), oldest first. */
  gaps?: QuoteGap[];
  /**
   * The newest closing PTAX of the pair (official_rates, sql/009) and the cross-check of its day
   * (cross_check_quote()'s rule, sql/012: bid and divergencePct null when no AwesomeAPI quote matches).
   * Null when the pair has no closing bulletin (BTC-BRL, or no official rates fetched yet).
   */
  official?: SnapshotOfficial | null;
}

/** The newest closing PTAX as the monitor shows it: times as sao_paulo_instant() writes them. */
export interface SnapshotOfficial {
  publishedAt: string;
  buy: string;
  sell: string;
  bid: string | null;
  divergencePct: string | null;
}

/**
 * What readSnapshot() needs of a client: a tagged template that sends one query with its values
 * as parameters. A postgres.js pool is one; so is lib/pg_wire.ts's lean client (the monitor's).
 */
export type QuerySql = <T extends readonly object[]>(strings: TemplateStringsArray, ...values: (string | number | boolean | Date | null)[]) => PromiseLike<T>;

/**
 * Everything the monitor prints, for `pairs` (or every stored pair when null), in ONE query:
 * the newest quote, the closes of the `days` days before it (one index probe per day), the firing
 * alerts and the newest run. Read-only.
 */
export async function readSnapshot(sql: QuerySql, pairs: readonly string[] | null, days: number): Promise<PairSnapshot[]> {
  const window = `${CROSS_CHECK_WINDOW_MINUTES} minutes`;
  const rows = await sql<{ pair: string; latest: unknown; closes: unknown; alerts: unknown; run: unknown; gaps: unknown; official: SnapshotOfficial | null }[]>`
    with recursive stored as (
      (select pair from quotes order by pair limit 1)
      union all
      select (select pair from quotes where pair > s.pair order by pair limit 1) from stored s where s.pair is not null
    ),
    wanted as (
      -- Pairs travel as one text (they hold no comma): no array parameter, so the monitor's
      -- connection can skip fetching array types.
      select pair from unnest(coalesce(string_to_array(${pairs === null ? null : pairs.join(",")}::text, ','),
                                       array(select pair from stored where pair is not null))) as pair
    )
    select w.pair,
      (select json_build_object('ts', ts, 'bid', bid::text, 'ask', ask::text)
         from quotes where pair = w.pair order by ts desc limit 1) as latest,
      (select json_agg(json_build_object('day', c.day, 'ts', c.ts, 'close', c.close) order by c.ts)
         from (
           select distinct on (probe.ts) (probe.ts at time zone ${SAO_PAULO_TIME_ZONE})::date - date '1970-01-01' as day, probe.ts, probe.bid::text as close
           from (select (max(ts) at time zone ${SAO_PAULO_TIME_ZONE})::date as day from quotes where pair = w.pair) newest
           cross join generate_series(0, ${days}::int) as g(n)
           cross join lateral (
             select ts, bid from quotes
             where pair = w.pair and ts < ((newest.day - g.n + 1)::timestamp at time zone ${SAO_PAULO_TIME_ZONE})
             order by ts desc limit 1
           ) probe
           where (probe.ts at time zone ${SAO_PAULO_TIME_ZONE})::date >= newest.day - ${days}::int
         ) c) as closes,
      (select json_agg(json_build_object('kind', kind, 'direction', direction, 'startedAt', started_at) order by started_at)
         from alerts where pair = w.pair and status = 'firing') as alerts,
      -- How the newest run that tried the pair went for it (sql/008): not a run that failed
      -- for other pairs only, nor one that stood aside for another run.
      (select json_build_object('id', id, 'status', r.status, 'startedAt', started_at, 'finishedAt', finished_at,
                                'failedStep', case when r.status = 'failed' then failed_step end,
                                'error', case when r.status = 'failed' then error end)
         from pipeline_runs cross join lateral (select pipeline_run_status_for(status, failed_pairs, failed_pairs_only, w.pair) as status) r
         where w.pair = any(pairs) and pipeline_runs.status <> 'skipped' order by started_at desc limit 1) as run,
      (select json_agg(json_build_object('pair', pair, 'from', from_day, 'to', to_day) order by from_day)
         from quote_gaps where pair = w.pair) as gaps,
      -- The newest closing PTAX and its day's cross-check, by the rule divergenceSeries() uses
      -- (cross_check_quote(), sql/012). A subquery, not a second query: one round trip.
      (select json_build_object('publishedAt', sao_paulo_instant(c.published_at), 'buy', c.buy::text, 'sell', c.sell::text,
                                'bid', m.bid::text, 'divergencePct', round(100 * (m.bid - c.buy) / c.buy, ${DIVERGENCE_SCALE}::int)::text)
         from (select published_at, buy, sell
               from official_rates where pair = w.pair and bulletin = 'closing' order by published_at desc limit 1) c
         left join lateral cross_check_quote(w.pair, c.published_at, ${window}::interval, ${SOURCE_DAILY}) m on true) as official
    from wanted w
    order by w.pair`;
  type Raw<T> = { [K in keyof T]: T[K] extends Date ? string : T[K] extends Date | null ? string | null : T[K] };
  const date = (text: string) => new Date(text);
  return rows.map((row) => {
    const latest = row.latest as Raw<NonNullable<PairSnapshot["latest"]>> | null;
    const run = row.run as Raw<NonNullable<PairSnapshot["lastRun"]>> | null;
    return {
      pair: row.pair,
      latest: latest && { ts: date(latest.ts), bid: latest.bid, ask: latest.ask },
      closes: ((row.closes ?? []) as Raw<PairSnapshot["closes"][number]>[]).map((c) => ({ day: c.day, ts: date(c.ts), close: c.close })),
      alerts: ((row.alerts ?? []) as Raw<PairSnapshot["alerts"][number]>[]).map((a) => ({ kind: a.kind, direction: a.direction, startedAt: date(a.startedAt) })),
      lastRun: run && { ...run, startedAt: date(run.startedAt), finishedAt: run.finishedAt === null ? null : date(run.finishedAt) },
      gaps: (row.gaps ?? []) as QuoteGap[],
      official: row.official ?? null,
    };
  });
}

// ---------------------------------------------------------------------------------------------
// Dashboard queries: the chart at any zoom, the latest quote's card, the tables, the live feed

/** A stored pair and the span of its history. */
export interface PairSummary {
  pair: string;
  first: Date;
  last: Date;
  count: number;
}

/**
 * Brings the hourly and daily rollups (sql/006) up to date with the quotes written since the last
 * call: the readers of quote_hours and quote_days below call it first. Nothing pending costs one
 * index-free probe of an empty table; after a large backfill the first call recomputes the days
 * it touched (seconds for millions of quotes). Returns how many noted spans it took.
 */
export async function refreshRollups(sql: Sql): Promise<number> {
  const [row] = await sql<{ taken: number }[]>`select refresh_quote_rollups() as taken`;
  return row?.taken ?? 0;
}

/** Every stored pair with its first and last quote and how many it has (counted from quote_days, not 3.7 M rows). */
export async function pairSummaries(sql: Sql): Promise<PairSummary[]> {
  await refreshRollups(sql);
  return sql<PairSummary[]>`
    with recursive stored as (
      (select pair from quotes order by pair limit 1)
      union all
      select (select pair from quotes where pair > s.pair order by pair limit 1) from stored s where s.pair is not null
    )
    select s.pair,
      (select ts from quotes where pair = s.pair order by ts limit 1) as first,
      (select ts from quotes where pair = s.pair order by ts desc limit 1) as last,
      (select coalesce(sum(quotes), 0)::int from quote_days where pair = s.pair) as count
    from stored s where s.pair is not null order by s.pair`;
}

/** The first and last quote times of `pair`, or undefined when it has none: two index probes. */
export async function pairSpan(sql: Sql, pair: string): Promise<{ first: Date; last: Date } | undefined> {
  const [row] = await sql<{ first: Date | null; last: Date | null }[]>`
    select (select ts from quotes where pair = ${pair} order by ts limit 1) as first,
           (select ts from quotes where pair = ${pair} order by ts desc limit 1) as last`;
  return row?.first && row.last ? { first: row.first, last: row.last } : undefined;
}

/** A pair's quotes over a range, in at most `points` buckets: columnar, times in Unix seconds. */
export interface QuoteBuckets {
  /** 0: every quote as stored, one per point; else the width of each bucket. */
  bucketSeconds: number;
  /** Where the buckets come from: each quote, or the hourly or daily rollups (sql/006). */
  resolution: "quote" | "hour" | "day";
  /** Each bucket's start (or the quote's time). */
  ts: number[];
  first: number[];
  min: number[];
  max: number[];
  last: number[];
}

const HOUR_SECONDS = 3600;
const DAY_SECONDS = 86_400;

/**
 * `pair`'s bids in [from, to], downsampled in SQL to at most `points` buckets that keep each
 * bucket's first, lowest, highest and last bid, so a spike survives any zoom level. A range
 * that holds no more than `points` quotes comes back whole (bucketSeconds 0). Otherwise the
 * buckets are built from the coarsest source finer than a bucket: the quotes themselves, the
 * hourly rollups (UTC hours) or the daily ones (São Paulo days), so a chart of ten years reads
 * 3,650 rows, not millions. Rollup buckets span whole hours or days: the first and last may
 * reach a little outside the range.
 */
export async function loadQuoteBuckets(sql: Sql, pair: string, from: Date, to: Date, points: number): Promise<QuoteBuckets> {
  await refreshRollups(sql);
  // Counting the range would read it all: reading one point more than fits says enough.
  const raw = await sql<{ t: number; bid: number }[]>`
    select extract(epoch from ts)::float8 as t, bid::float8 as bid
    from quotes where pair = ${pair} and ts >= ${from} and ts <= ${to}
    order by ts limit ${points + 1}`;
  if (raw.length <= points) {
    const ts = raw.map((row) => row.t);
    const bids = raw.map((row) => row.bid);
    return { bucketSeconds: 0, resolution: "quote", ts, first: bids, min: bids, max: bids, last: bids };
  }
  // Buckets aligned on multiples of their width: a range of n widths touches at most n + 1.
  const perBucket = (to.getTime() - from.getTime()) / 1000 / Math.max(1, points - 1);
  type Row = { t: number; first: number; min: number; max: number; last: number };
  let rows: Row[];
  let bucketSeconds: number;
  let resolution: QuoteBuckets["resolution"];
  if (perBucket >= DAY_SECONDS) {
    const days = Math.ceil(perBucket / DAY_SECONDS);
    bucketSeconds = days * DAY_SECONDS;
    resolution = "day";
    rows = await sql<Row[]>`
      select extract(epoch from ((min(day) - (min(day) - date '1970-01-01') % ${days}::int)::timestamp at time zone ${SAO_PAULO_TIME_ZONE}))::float8 as t,
             ((array_agg(first_bid order by first_ts))[1])::float8 as first, min(min_bid)::float8 as min,
             max(max_bid)::float8 as max, ((array_agg(last_bid order by last_ts desc))[1])::float8 as last
      from quote_days
      where pair = ${pair}
        and day >= (${from}::timestamptz at time zone ${SAO_PAULO_TIME_ZONE})::date
        and day <= (${to}::timestamptz at time zone ${SAO_PAULO_TIME_ZONE})::date
      group by (day - date '1970-01-01') / ${days}::int
      order by 1`;
  } else if (perBucket >= HOUR_SECONDS) {
    bucketSeconds = Math.ceil(perBucket / HOUR_SECONDS) * HOUR_SECONDS;
    resolution = "hour";
    rows = await sql<Row[]>`
      select floor(extract(epoch from hour) / ${bucketSeconds}::int)::float8 * ${bucketSeconds}::int as t,
             ((array_agg(first_bid order by first_ts))[1])::float8 as first, min(min_bid)::float8 as min,
             max(max_bid)::float8 as max, ((array_agg(last_bid order by last_ts desc))[1])::float8 as last
      from quote_hours
      where pair = ${pair} and hour >= date_trunc('hour', ${from}::timestamptz, 'UTC') and hour <= ${to}
      group by 1
      order by 1`;
  } else {
    bucketSeconds = Math.ceil(perBucket);
    resolution = "quote";
    rows = await sql<Row[]>`
      select floor(extract(epoch from ts) / ${bucketSeconds}::int)::float8 * ${bucketSeconds}::int as t,
             ((array_agg(bid order by ts))[1])::float8 as first, min(bid)::float8 as min,
             max(bid)::float8 as max, ((array_agg(bid order by ts desc))[1])::float8 as last
      from quotes
      where pair = ${pair} and ts >= ${from} and ts <= ${to}
      group by 1
      order by 1`;
  }
  return {
    bucketSeconds,
    resolution,
    ts: rows.map((row) => row.t),
    first: rows.map((row) => row.first),
    min: rows.map((row) => row.min),
    max: rows.map((row) => row.max),
    last: rows.map((row) => row.last),
  };
}

/** The daily series read from the daily rollups, plus each day's start (São Paulo midnight) in Unix seconds. */
export interface RollupSeries extends StoredSeries {
  dayStarts: Float64Array;
}

/**
 * `pair`'s whole daily series from quote_days: the same days and closes as loadDailySeries()
 * (each São Paulo day's last bid), one indexed read instead of a probe per day.
 */
export async function loadDailyRollup(sql: Sql, pair: string): Promise<RollupSeries> {
  await refreshRollups(sql);
  const rows = await sql<{ day: number; date: string; at: Date; close: string; start: number }[]>`
    select day - date '1970-01-01' as day, to_char(day, 'YYYY-MM-DD') as date, last_ts as at, last_bid::text as close,
           extract(epoch from day::timestamp at time zone ${SAO_PAULO_TIME_ZONE})::float8 as start
    from quote_days where pair = ${pair} order by day`;
  return { ...dailySeriesOf(rows), dayStarts: Float64Array.from(rows, (row) => row.start) };
}

/** What the dashboard's card shows of a pair: its newest quote, the previous day's close, and how its runs went. */
export interface LatestFacts {
  ts: Date;
  bid: string;
  ask: string;
  /** The close of the last São Paulo day before the newest quote's, as stored. */
  previousClose: string | null;
  /** The newest finished run that tried the pair, and how it went for the pair (not for the others it tried; a skipped run tried nothing). */
  lastRun: { id: number; status: string; finishedAt: Date; error: string | null; failedStep: string | null } | null;
  /** When the pair's current streak of failed runs began (the first failed run after the last success), if the last one failed. */
  failingSince: Date | null;
  /** Days missing too far back for a run to fill (quote_gaps), oldest first. */
  gaps?: QuoteGap[];
}

// How far back a failing streak is looked for: 500 runs, over a day and a half of a run a minute.
const FAILING_STREAK_RUNS = 500;

/** The card's facts for `pair` in one round trip; undefined when the pair has no quotes. */
export async function latestFacts(sql: Sql, pair: string): Promise<LatestFacts | undefined> {
  const [row] = await sql<{ ts: Date; bid: string; ask: string; previousClose: string | null; lastRun: unknown; failingSince: Date | null; gaps: QuoteGap[] | null }[]>`
    with recent as (
      select id, r.status, started_at, finished_at,
             case when r.status = 'failed' then error end as error, case when r.status = 'failed' then failed_step end as failed_step
      from pipeline_runs cross join lateral (select pipeline_run_status_for(status, failed_pairs, failed_pairs_only, ${pair}) as status) r
      where ${pair} = any(pairs) and pipeline_runs.status not in ('running', 'skipped')
      order by started_at desc limit ${FAILING_STREAK_RUNS}
    )
    select q.ts, q.bid::text as bid, q.ask::text as ask,
      (select p.bid::text from quotes p
        where p.pair = q.pair and p.ts < date_trunc('day', q.ts, ${SAO_PAULO_TIME_ZONE}) order by p.ts desc limit 1) as "previousClose",
      (select json_build_object('id', id, 'status', status, 'finishedAt', finished_at, 'error', error, 'failedStep', failed_step)
         from recent order by started_at desc limit 1) as "lastRun",
      (select min(started_at) from recent
        where (select status from recent order by started_at desc limit 1) = 'failed'
          and started_at > coalesce((select max(started_at) from recent where status = 'succeeded'), '-infinity')) as "failingSince",
      (select json_agg(json_build_object('pair', pair, 'from', from_day, 'to', to_day) order by from_day)
         from quote_gaps where pair = q.pair) as gaps
    from quotes q where q.pair = ${pair} order by q.ts desc limit 1`;
  if (!row) return undefined;
  const run = row.lastRun as { id: number; status: string; finishedAt: string; error: string | null; failedStep: string | null } | null;
  return { ...row, lastRun: run && { ...run, finishedAt: new Date(run.finishedAt) }, gaps: row.gaps ?? [] };
}

/** An alert episode as the dashboard lists it. Decimals as stored; the rule's maths as numbers. */
export interface AlertRow {
  id: number;
  pair: string;
  kind: string;
  direction: string | null;
  state: string;
  firedAt: Date;
  resolvedAt: Date | null;
  lastSeenAt: Date;
  price: string | null;
  average: number | null;
  deviation: number | null;
  peakDeviation: number | null;
  peakAt: Date | null;
  threshold: number | null;
  windowDays: number | null;
  firedSeenAt: Date | null;
  resolvedSeenAt: Date | null;
  /** When a rescan no longer found this delivered episode (it is kept, superseded); null otherwise. */
  supersededAt: Date | null;
}

/**
 * Where a page of alerts ends, as listAlerts() orders them: the last row's start, to the
 * microsecond as stored, and its id. Written `2020-03-09T20:00:00.000000Z_42` in the API.
 */
export interface AlertCursor {
  startedAt: string;
  id: number;
}

/**
 * Alert episodes that overlap [from, to] (all of them without a range), of `pair` or every pair,
 * newest first; with `before`, only those after that cursor in this order (the next page).
 */
export async function listAlerts(
  sql: Sql,
  filter: { pair?: string; from?: Date; to?: Date; before?: AlertCursor; limit: number },
): Promise<(AlertRow & { cursor: string })[]> {
  // The cursor's time goes as text and is cast by the server: a Date would drop its microseconds.
  return sql<(AlertRow & { cursor: string })[]>`
    select id::int, pair, kind, direction, status as state, started_at as "firedAt", resolved_at as "resolvedAt",
           last_seen_at as "lastSeenAt", price::text, average, deviation, peak_deviation as "peakDeviation",
           peak_at as "peakAt", threshold, window_days as "windowDays", fired_seen_at as "firedSeenAt",
           resolved_seen_at as "resolvedSeenAt", superseded_at as "supersededAt",
           to_char(started_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z_"') || id as cursor
    from alerts
    where (${filter.pair ?? null}::text is null or pair = ${filter.pair ?? null})
      and (${filter.to ?? null}::timestamptz is null or started_at <= ${filter.to ?? null})
      and (${filter.from ?? null}::timestamptz is null or coalesce(resolved_at, 'infinity') >= ${filter.from ?? null})
      and (${filter.before?.startedAt ?? null}::text is null
           or (started_at, id) < (${filter.before?.startedAt ?? null}::text::timestamptz, ${filter.before?.id ?? null}::bigint))
    order by started_at desc, id desc
    limit ${filter.limit}`;
}

/** How many alert episodes listAlerts() would list for `filter` without a limit or cursor. */
export async function countAlerts(sql: Sql, filter: { pair?: string; from?: Date; to?: Date }): Promise<number> {
  const [row] = await sql<{ n: number }[]>`
    select count(*)::int as n from alerts
    where (${filter.pair ?? null}::text is null or pair = ${filter.pair ?? null})
      and (${filter.to ?? null}::timestamptz is null or started_at <= ${filter.to ?? null})
      and (${filter.from ?? null}::timestamptz is null or coalesce(resolved_at, 'infinity') >= ${filter.from ?? null})`;
  return row?.n ?? 0;
}

/** A pipeline run as the dashboard lists it. */
export interface RunRow {
  id: number;
  startedAt: Date;
  finishedAt: Date | null;
  status: string;
  pairs: string[];
  rowsFetched: number;
  rowsInserted: number;
  rowsUpdated: number;
  rowsUnchanged: number;
  error: string | null;
  failedStep: string | null;
  failedPairs: string[];
  warnings: string[];
}

/** The newest `limit` pipeline runs, newest first. */
export async function listRuns(sql: Sql, limit: number): Promise<RunRow[]> {
  return sql<RunRow[]>`
    select id::int, started_at as "startedAt", finished_at as "finishedAt", status, pairs,
           rows_fetched as "rowsFetched", rows_inserted as "rowsInserted", rows_updated as "rowsUpdated",
           rows_unchanged as "rowsUnchanged", error, failed_step as "failedStep", failed_pairs as "failedPairs", warnings
    from pipeline_runs order by started_at desc, id desc limit ${limit}`;
}

/** One CSV export row: the time as ISO 8601 UTC, decimals exactly as stored. */
export interface ExportRow {
  ts: string;
  bid: string;
  ask: string;
  high: string | null;
  low: string | null;
}

/**
 * `pair`'s quotes in [from, to] at full resolution, oldest first, `batch` rows at a time: memory
 * stays flat however long the range. Each batch is a query of its own that starts after the last
 * row of the one before (keyset, on the primary key), not a cursor: between batches no connection
 * is held, so a client that reads slowly, stalls or hangs up mid-stream keeps none of the pool
 * (a cursor stayed open, its backend waiting, for every cancelled download). Stop iterating at
 * any point; nothing is left to close.
 */
export async function* exportQuotes(sql: Sql, pair: string, from: Date, to: Date, batch = 5_000): AsyncGenerator<ExportRow[]> {
  // "quotes.ts", not the output column "ts" (text): ordered by the primary key, each batch reads
  // its rows off the index instead of sorting the whole rest of the range.
  // The last row's ts as PostgreSQL's own text (microseconds and offset): passed back as text,
  // since postgres.js would send a timestamptz parameter through Date and drop the microseconds.
  let after = "-infinity";
  for (;;) {
    const rows = await sql<(ExportRow & { key: string })[]>`
      select ts::text as key, to_char(ts at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as ts, bid::text as bid, ask::text as ask,
             high::text as high, low::text as low
      from quotes where pair = ${pair} and ts >= ${from} and ts <= ${to} and ts > ${after}::text::timestamptz
      order by quotes.ts limit ${batch}`;
    if (rows.length === 0) return;
    after = rows[rows.length - 1]!.key;
    yield rows.map(({ ts, bid, ask, high, low }) => ({ ts, bid, ask, high, low }));
    if (rows.length < batch) return;
  }
}

/**
 * What /healthz and /metrics report: each pair's newest quote, firing alerts and how the newest
 * finished run that tried it went for it; the newest run that tried anything; how many runs
 * stood aside for another's lock.
 */
export interface HealthFacts {
  pairs: { pair: string; newest: Date; bid: string; ask: string; firing: { kind: string; count: number }[] }[];
  /**
   * How the newest finished run that tried each pair went for it, for every stored pair and
   * every pair of the newest run (one with no quotes yet, like an unknown XXX-BRL, too).
   */
  pairRuns: { pair: string; id: number; status: string }[];
  lastRun: { id: number; status: string; startedAt: Date; finishedAt: Date | null } | null;
  skippedRuns: number;
}

/** The facts /healthz and /metrics need, in one round trip. */
export async function healthFacts(sql: Sql): Promise<HealthFacts> {
  const [row] = await sql<{ pairs: unknown; run: unknown; pairRuns: HealthFacts["pairRuns"]; skipped: number }[]>`
    with recursive stored as (
      (select pair from quotes order by pair limit 1)
      union all
      select (select pair from quotes where pair > s.pair order by pair limit 1) from stored s where s.pair is not null
    )
    select
      (select coalesce(json_agg(json_build_object(
          'pair', s.pair,
          'newest', q.ts, 'bid', q.bid::text, 'ask', q.ask::text,
          'firing', (select coalesce(json_agg(json_build_object('kind', f.kind, 'count', f.n)), '[]')
                       from (select kind, count(*)::int as n from alerts where pair = s.pair and status = 'firing' group by kind) f)
        ) order by s.pair), '[]')
         from stored s cross join lateral (select ts, bid, ask from quotes where pair = s.pair order by ts desc limit 1) q
         where s.pair is not null) as pairs,
      (select json_build_object('id', id, 'status', status, 'startedAt', started_at, 'finishedAt', finished_at)
         from pipeline_runs where status <> 'skipped' order by started_at desc limit 1) as run,
      -- As the card and the monitor see it (sql/008): how the run went for this pair.
      (select coalesce(json_agg(json_build_object('pair', t.pair, 'id', r.id, 'status', r.status) order by t.pair), '[]')
         from (select pair from stored where pair is not null
               union
               select unnest(pairs) from (select pairs from pipeline_runs where status not in ('running', 'skipped')
                                          order by started_at desc limit 1) newest) t(pair)
         cross join lateral (
           select id, pipeline_run_status_for(status, failed_pairs, failed_pairs_only, t.pair) as status
           from pipeline_runs where t.pair = any(pairs) and status not in ('running', 'skipped')
           order by started_at desc limit 1) r) as "pairRuns",
      (select count(*)::int from pipeline_runs where status = 'skipped') as skipped`;
  const pairs = (row?.pairs ?? []) as (Omit<HealthFacts["pairs"][number], "newest"> & { newest: string })[];
  const run = (row?.run ?? null) as { id: number; status: string; startedAt: string; finishedAt: string | null } | null;
  return {
    pairs: pairs.map((p) => ({ ...p, newest: new Date(p.newest) })),
    lastRun: run && { ...run, startedAt: new Date(run.startedAt), finishedAt: run.finishedAt === null ? null : new Date(run.finishedAt) },
    pairRuns: row?.pairRuns ?? [],
    skippedRuns: row?.skipped ?? 0,
  };
}

/** The newest stored timestamp of each pair that has quotes. */
export async function newestStored(sql: Sql, pairs: readonly string[]): Promise<Map<string, Date>> {
  const rows = await sql<{ pair: string; ts: Date }[]>`
    select p.pair, newest.ts
    from unnest(${[...pairs]}::text[]) as p(pair)
    cross join lateral (select max(ts) as ts from quotes q where q.pair = p.pair) as newest
    where newest.ts is not null`;
  return new Map(rows.map((row) => [row.pair, row.ts]));
}

// ---------------------------------------------------------------------------------------------
// Official rates (PTAX, sql/009) and the cross-check against AwesomeAPI

/**
 * `Quote.source` of AwesomeAPI's daily quotes (ingest.ts's SOURCE_DAILY; a lib/ file cannot
 * import it): the cross-check's fallback when no quote is near the closing PTAX.
 */

/** How far from the closing PTAX an AwesomeAPI quote may be to be compared with it. */
export const CROSS_CHECK_WINDOW_MINUTES = 30;

/** Decimal places of a divergence, in percent: round(100 × (bid − buy) / buy, 6). */
export const DIVERGENCE_SCALE = 6;

/** A day's closing PTAX. Times as sao_paulo_instant() writes them (São Paulo time, microseconds, offset). */
export interface OfficialClose {
  /** The São Paulo date of the bulletin: its business day, "YYYY-MM-DD". */
  day: string;
  publishedAt: string;
  buy: string;
  sell: string;
}

/** One business day of the cross-check: the closing PTAX, the AwesomeAPI quote it is compared with, and how far apart. */
export interface DivergencePoint extends OfficialClose {
  /** The AwesomeAPI quote's time (sao_paulo_instant()) and bid, as stored. */
  quoteAt: string;
  bid: string;
  /**
   * How the quote was chosen: "nearest" to the closing PTAX, within CROSS_CHECK_WINDOW_MINUTES;
   * or, with none that near, the day's stored daily quote ("daily").
   */
  match: "nearest" | "daily";
  /** (bid − buy) / buy in percent, computed in numeric and rounded half away from zero to DIVERGENCE_SCALE places: "1.500000", "-0.120000". */
  divergencePct: string;
}

/** The São Paulo days [from, to] of a pair's official rates, as bounds on published_at (null: unbounded). */
interface DayRange {
  from: string | null;
  to: string | null;
}

/**
 * Each São Paulo day's closing PTAX for `pair` in [from, to] (São Paulo dates, inclusive; null for
 * no bound), oldest first. A day without a closing bulletin (a weekend, a holiday, a day whose
 * closing has not been published yet) has no row; should BCB ever publish two, the later counts.
 */
export async function officialCloses(sql: Sql, pair: string, from: string | null, to: string | null): Promise<OfficialClose[]> {
  return sql<OfficialClose[]>`
    select to_char(day, 'YYYY-MM-DD') as day, sao_paulo_instant(published_at) as "publishedAt", buy::text, sell::text
    from (${closingBulletins(sql, pair, { from, to })}) c
    order by c.day`;
}

/**
 * Every bulletin of `pair` whose business day is in [from, to] (São Paulo dates, inclusive; null
 * for no bound), oldest first, as OfficialRates: publishedAt as sao_paulo_instant() writes it (six
 * fractional digits), rates as stored.
 */
export async function officialRates(sql: Sql, pair: string, from: string | null, to: string | null): Promise<OfficialRate[]> {
  return sql<OfficialRate[]>`
    select pair, sao_paulo_instant(published_at) as "publishedAt", bulletin, buy::text, sell::text
    from official_rates
    where pair = ${pair}
      and published_at >= coalesce(${from}::date::timestamp at time zone ${SAO_PAULO_TIME_ZONE}, '-infinity')
      and published_at < coalesce((${to}::date + 1)::timestamp at time zone ${SAO_PAULO_TIME_ZONE}, 'infinity')
    order by published_at`;
}

/** The closing bulletin of each São Paulo day in range: (day, published_at, buy, sell). */
function closingBulletins(sql: Sql, pair: string, range: DayRange) {
  return sql`
    select distinct on (day) day, published_at, buy, sell
    from official_rates
    cross join lateral (select (published_at at time zone ${SAO_PAULO_TIME_ZONE})::date as day) d
    where pair = ${pair} and bulletin = 'closing'
      and published_at >= coalesce(${range.from}::date::timestamp at time zone ${SAO_PAULO_TIME_ZONE}, '-infinity')
      and published_at < coalesce((${range.to}::date + 1)::timestamp at time zone ${SAO_PAULO_TIME_ZONE}, 'infinity')
    order by day, published_at desc`;
}

/**
 * The cross-check of `pair` over the São Paulo days [from, to] (inclusive; null for no bound),
 * oldest first: for every day D with a closing PTAX (officialCloses()) and an AwesomeAPI quote to
 * compare it with, the divergence of that quote's bid from the closing buy rate. The quote is the
 * one nearest to the closing PTAX's time, at most CROSS_CHECK_WINDOW_MINUTES before or after it
 * (on a tie, the earlier); with none that near, the latest "awesomeapi:daily" quote of D's São
 * Paulo day; with neither, D has no row (the rule is cross_check_quote(), sql/012, which the
 * monitor's query uses too). All in numeric: no digit goes through a float.
 */
export async function divergenceSeries(sql: Sql, pair: string, from: string | null, to: string | null): Promise<DivergencePoint[]> {
  const window = `${CROSS_CHECK_WINDOW_MINUTES} minutes`;
  return sql<DivergencePoint[]>`
    select to_char(c.day, 'YYYY-MM-DD') as day, sao_paulo_instant(c.published_at) as "publishedAt",
           c.buy::text, c.sell::text, sao_paulo_instant(m.ts) as "quoteAt", m.bid::text, m.match,
           round(100 * (m.bid - c.buy) / c.buy, ${DIVERGENCE_SCALE}::int)::text as "divergencePct"
    from (${closingBulletins(sql, pair, { from, to })}) c
    cross join lateral cross_check_quote(${pair}, c.published_at, ${window}::interval, ${SOURCE_DAILY}) m
    order by c.day`;
}

/** A pair's newest official bulletin, and the newest day of the cross-check (at most ten days before it). */
export interface NewestOfficial {
  bulletin: OfficialRate;
  /** The cross-check of the newest day with a closing PTAX and a matching quote, or null. */
  divergence: DivergencePoint | null;
}

/** What the card and /metrics show of the official source for `pair`, or undefined when it has no official rate. */
export async function newestOfficial(sql: Sql, pair: string): Promise<NewestOfficial | undefined> {
  const [bulletin] = await sql<OfficialRate[]>`
    select pair, sao_paulo_instant(published_at) as "publishedAt", bulletin, buy::text, sell::text
    from official_rates where pair = ${pair} order by published_at desc limit 1`;
  if (!bulletin) return undefined;
  const day = bulletin.publishedAt.slice(0, 10);
  const since = new Date(Date.parse(`${day}T00:00:00Z`) - 10 * 86_400_000).toISOString().slice(0, 10);
  const points = await divergenceSeries(sql, pair, since, day);
  return { bulletin, divergence: points.at(-1) ?? null };
}

/** One official bulletin as a CSV export row: the time as exportQuotes() writes it (ISO 8601 UTC, milliseconds). */
export interface OfficialExportRow {
  ts: string;
  bulletin: string;
  buy: string;
  sell: string;
}

/** `pair`'s bulletins in [from, to], oldest first: at most five a business day, read at once. */
export async function exportOfficial(sql: Sql, pair: string, from: Date, to: Date): Promise<OfficialExportRow[]> {
  return sql<OfficialExportRow[]>`
    select to_char(published_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as ts, bulletin, buy::text as buy, sell::text as sell
    from official_rates where pair = ${pair} and published_at >= ${from} and published_at <= ${to}
    order by published_at`;
}
