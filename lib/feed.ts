/**
 * lib/feed.ts: the live feed: the channel the writers notify as they commit, what a notice
 * says, and the events a listener reads back from the tables (now, or since a position).
 */
import type postgres from "postgres";
import * as v from "valibot";
import type { Sql } from "./pool.ts";

/**
 * Channel of the notifications the writers send as they commit: new quotes, finished runs and
 * alert transitions, each a JSON ChangeNotice (monitor.ts --watch and the dashboard listen). Its
 * name on the wire stays "quotes", what it carried first, so that a pipeline and a dashboard of
 * different versions still hear each other.
 */
export const FEED_CHANNEL = "quotes";

/**
 * What a notification on FEED_CHANNEL says changed; the listener reads the rest from the tables.
 * A notice without a kind is a quote's, as pipelines before alerts and runs were notified sent them.
 */
export const ChangeNoticeSchema = v.union([
  v.object({ kind: v.literal("quote"), pair: v.string(), ts: v.string() }),
  v.object({ kind: v.literal("run"), id: v.number(), status: v.string() }),
  v.object({ kind: v.literal("alert"), id: v.number(), pair: v.string(), transition: v.picklist(["firing", "resolved"]) }),
  v.pipe(v.object({ pair: v.string(), ts: v.string() }), v.transform((notice) => ({ kind: "quote" as const, ...notice }))),
]);
/** A notification on FEED_CHANNEL, as ChangeNoticeSchema reads it. */
export type ChangeNotice = v.InferOutput<typeof ChangeNoticeSchema>;

/** Sends `notice` on FEED_CHANNEL, delivered when the caller's transaction commits. */
export async function notifyChange(tx: Sql | postgres.TransactionSql, notice: ChangeNotice): Promise<void> {
  await tx`select pg_notify(${FEED_CHANNEL}, ${JSON.stringify(notice)})`;
}

/**
 * The run's ChangeNotice as SQL, for a statement that writes a run and notifies in one go (the
 * notification then commits with the row): `pg_notify(...)` over the columns `id` and `status`
 * of the rows it is selected from.
 */
export function runNotice(sql: Sql): postgres.PendingQuery<postgres.Row[]> {
  return sql`pg_notify(${FEED_CHANNEL}, json_build_object('kind', 'run', 'id', id, 'status', status)::text)`;
}

/** Where a live feed stands: the newest quote time, alert transition time and run end it has told of (ms). */
export interface FeedPosition {
  quote: number;
  alert: number;
  run: number;
}

/** A change, read back from the tables, as a live feed sends it. */
export type FeedEvent =
  | { kind: "quote"; at: number; data: { pair: string; ts: string; bid: string; ask: string } }
  | { kind: "alert"; at: number; data: { id: number; pair: string; alertKind: string; direction: string | null; transition: string; state: string; firedAt: string; resolvedAt: string | null } }
  | { kind: "run"; at: number; data: { id: number; status: string; startedAt: string; finishedAt: string; error: string | null; failedStep: string | null } };

/** A stored quote's columns, as the feed's queries read them. */
interface QuoteRow {
  pair: string;
  ts: Date;
  bid: string;
  ask: string;
}

/** An alert's columns and the transition read, as the feed's queries read them. */
interface AlertRow {
  id: number;
  pair: string;
  kind: string;
  direction: string | null;
  status: string;
  startedAt: Date;
  resolvedAt: Date | null;
}

/** A finished run's columns, as the feed's queries read them. */
interface RunRow {
  id: number;
  status: string;
  startedAt: Date;
  finishedAt: Date;
  error: string | null;
  failedStep: string | null;
}

/** The quote event of a stored quote: one shape whether the feed replays it or hears of it. */
function quoteEvent(q: QuoteRow): FeedEvent {
  return { kind: "quote", at: q.ts.getTime(), data: { pair: q.pair, ts: q.ts.toISOString(), bid: q.bid, ask: q.ask } };
}

/** The alert event of one transition, `at` the instant a run saw it. */
function alertEvent(a: AlertRow, transition: string, at: Date): FeedEvent {
  return {
    kind: "alert",
    at: at.getTime(),
    data: {
      id: a.id, pair: a.pair, alertKind: a.kind, direction: a.direction, transition,
      state: a.status, firedAt: a.startedAt.toISOString(), resolvedAt: a.resolvedAt?.toISOString() ?? null,
    },
  };
}

/** The run event of a finished run. */
function runEvent(r: RunRow): FeedEvent {
  return {
    kind: "run",
    at: r.finishedAt.getTime(),
    data: { id: r.id, status: r.status, startedAt: r.startedAt.toISOString(), finishedAt: r.finishedAt.toISOString(), error: r.error, failedStep: r.failedStep },
  };
}

/** The feed's position now: the newest quote of any pair, the newest alert transition, the newest run end. */
export async function feedPosition(sql: Sql): Promise<FeedPosition> {
  const [row] = await sql<{ quote: number | null; alert: number | null; run: number | null }[]>`
    with recursive stored as (
      (select pair from quotes order by pair limit 1)
      union all
      select (select pair from quotes where pair > s.pair order by pair limit 1) from stored s where s.pair is not null
    )
    select
      (select extract(epoch from max((select ts from quotes where pair = s.pair order by ts desc limit 1))) * 1000
         from stored s where s.pair is not null)::float8 as quote,
      (select extract(epoch from max(greatest(fired_seen_at, resolved_seen_at))) * 1000 from alerts)::float8 as alert,
      (select extract(epoch from max(finished_at)) * 1000 from pipeline_runs
        where started_at > (select max(started_at) from pipeline_runs) - interval '1 day')::float8 as run`;
  return { quote: row?.quote ?? 0, alert: row?.alert ?? 0, run: row?.run ?? 0 };
}

// A feed that was away longer than this many quotes of a pair (alert transitions, runs) is sent
// the newest ones only: a client that asks from the beginning (Last-Event-ID 0-0-0) must not
// make the server read a table's whole history into memory.
const FEED_REPLAY_QUOTES = 1_000;
const FEED_REPLAY_ALERTS = 1_000;
const FEED_REPLAY_RUNS = 1_000;

/**
 * The first instant after a position: positions are whole milliseconds (event ids), stored times
 * have microseconds, and the event at 12:00:00.123456 was sent as 123 ms; "after 123 ms" must not
 * send it again. As text, cast in SQL: postgres.js would send a timestamptz parameter through Date.
 * A position past the year 9999 (a made-up Last-Event-ID) is the end of that year: nothing after it.
 */
const afterPosition = (ms: number) => new Date(Math.min(Math.floor(ms) + 1, LAST_ISO_MS)).toISOString();
// The last instant toISOString() writes as PostgreSQL reads it (a later year is "+010000-...").
const LAST_ISO_MS = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

/**
 * What was stored after `since`, oldest first within each kind: each pair's quotes newer than
 * since.quote (at most the newest 1,000 per pair), alert transitions a run made after
 * since.alert (the newest 1,000), runs that finished after since.run (the newest 1,000). For a
 * feed that lost its connection.
 */
export async function feedEventsSince(sql: Sql, since: FeedPosition): Promise<FeedEvent[]> {
  const quotes = await sql<QuoteRow[]>`
    with recursive stored as (
      (select pair from quotes order by pair limit 1)
      union all
      select (select pair from quotes where pair > s.pair order by pair limit 1) from stored s where s.pair is not null
    )
    select q.pair, q.ts, q.bid, q.ask
    from stored s
    cross join lateral (
      select pair, ts, bid::text, ask::text from quotes
      where pair = s.pair and ts >= ${afterPosition(since.quote)}::text::timestamptz order by ts desc limit ${FEED_REPLAY_QUOTES}
    ) q
    where s.pair is not null
    order by q.ts, q.pair`;
  const transitions = await sql<(AlertRow & { transition: string; at: Date })[]>`
    select * from (
      select a.id::int, a.pair, a.kind, a.direction, a.status, a.started_at as "startedAt", a.resolved_at as "resolvedAt", t.transition, t.at
      from alerts a
      cross join lateral (values ('firing', a.fired_seen_at), ('resolved', a.resolved_seen_at)) as t(transition, at)
      where t.at >= ${afterPosition(since.alert)}::text::timestamptz
      order by t.at desc, a.id desc limit ${FEED_REPLAY_ALERTS}
    ) newest
    order by at, id`;
  const runs = await sql<RunRow[]>`
    select * from (
      select id::int, status, started_at as "startedAt", finished_at as "finishedAt", error, failed_step as "failedStep"
      from pipeline_runs
      where started_at > ${afterPosition(since.run)}::text::timestamptz - interval '1 day' and finished_at >= ${afterPosition(since.run)}::text::timestamptz
      order by finished_at desc, id desc limit ${FEED_REPLAY_RUNS}
    ) newest
    order by "finishedAt", id`;
  return [...quotes.map(quoteEvent), ...transitions.map((a) => alertEvent(a, a.transition, a.at)), ...runs.map(runEvent)];
}

/**
 * One feed event for a notification: the quote, alert transition or run it names, as stored now.
 * A quote's `ts` is read as PostgreSQL reads text (cast in SQL, not through Date), so a time
 * another program wrote with microseconds (now()) finds its row.
 */
export async function feedEventOf(sql: Sql, notice: ChangeNotice): Promise<FeedEvent | undefined> {
  if (notice.kind === "quote") {
    const [q] = await sql<QuoteRow[]>`
      select pair, ts, bid::text, ask::text from quotes where pair = ${notice.pair} and ts = ${notice.ts}::text::timestamptz`;
    return q && quoteEvent(q);
  }
  if (notice.kind === "alert") {
    const [a] = await sql<(AlertRow & { at: Date | null })[]>`
      select id::int, pair, kind, direction, status, started_at as "startedAt", resolved_at as "resolvedAt",
             case when ${notice.transition} = 'firing' then fired_seen_at else resolved_seen_at end as at
      from alerts where id = ${notice.id}`;
    return a && alertEvent(a, notice.transition, a.at ?? new Date());
  }
  const [r] = await sql<(Omit<RunRow, "finishedAt"> & { finishedAt: Date | null })[]>`
    select id::int, status, started_at as "startedAt", finished_at as "finishedAt", error, failed_step as "failedStep"
    from pipeline_runs where id = ${notice.id}`;
  if (!r?.finishedAt) return undefined;
  return runEvent({ ...r, finishedAt: r.finishedAt });
}
