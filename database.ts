/**
 * database.ts: cotacao's write path and its database CLI: quotes saved in batches (and backfill
 * progress), pipeline runs and the lock that keeps two runs apart. Connections, the embedded
 * server, migrations, backups, the read queries and the live feed live in lib/ (see README's map).
 *
 * CLI: `bun database.ts status|start|stop|migrate|url|dump|restore` (see `--help`).
 */
import type postgres from "postgres";
import * as v from "valibot";
import { type BackupResult, dumpDatabase, dumpToFile, restoreFromFile } from "./lib/backup.ts";
import { versionLine } from "./lib/cli.ts";
import { connect, type DatabaseConfig, DEFAULT_DATA_DIR, loadDatabaseConfig, maskUrl } from "./lib/connect.ts";
import type { Sql } from "./lib/pool.ts";
import {
  embeddedUrl,
  isInitialised,
  isProcessAlive,
  readPostmasterPid,
  runningEmbeddedServer,
  startEmbeddedServer,
  stopEmbeddedServer,
} from "./lib/embedded_server.ts";
import { CotacaoError, DatabaseError, describeError, usageError } from "./lib/errors.ts";
import { notifyChange, runNotice } from "./lib/feed.ts";
import { migrate, migrationStatus } from "./lib/migrations.ts";
import { type OfficialRate, OfficialRateSchema } from "./lib/official.ts";
import { relativeToProject } from "./lib/project.ts";
import type { StoredQuote } from "./lib/quote.ts";


// Loaded on first use: the monitor's path needs none of these (node:fs only to find the embedded
// server), and under Bun each costs a short-lived process milliseconds at start-up, node:fs 3-9
// (bench/monitor.ts).
const fs = () => process.getBuiltinModule("node:fs");
const stream = () => process.getBuiltinModule("node:stream");
const streamPromises = () => process.getBuiltinModule("node:stream/promises");

// Lines of COPY text sent to the server per write.
const COPY_LINES_PER_WRITE = 5_000;

// ---------------------------------------------------------------------------------------------
// Queries

/** What `saveQuotes()` did with a batch. */
export interface SaveCounts {
  inserted: number;
  updated: number;
  unchanged: number;
}

/** A backfill's range for one pair, and the last day it has now stored completely. */
export interface BackfillStep {
  pair: string;
  /** YYYY-MM-DD, inclusive */
  from: string;
  to: string;
  doneThrough: string;
}

export interface SaveOptions {
  /** Record backfill progress in the same transaction as the quotes. */
  progress?: BackfillStep;
  /** `NOTIFY quotes` with each pair's newest timestamp in the batch, delivered on commit. */
  notify?: boolean;
  /**
   * false: the commit does not wait for the disk. For batches that can be fetched again, like a
   * backfill's: a crash may lose the last moments of work, together with the progress recorded
   * with it, never one without the other.
   */
  durable?: boolean;
}

/**
 * Stores a batch in one transaction, idempotent on (pair, ts): new rows are inserted, rows
 * whose values changed are updated (the replaced values go to quote_revisions), identical ones
 * are left alone. Within a batch the last quote for a (pair, ts) wins. Decimals travel as text
 * and are cast to numeric by the server, so no digit is lost.
 */
export async function saveQuotes(sql: Sql, quotes: readonly StoredQuote[], options: SaveOptions = {}): Promise<SaveCounts> {
  const counts: SaveCounts = { inserted: 0, updated: 0, unchanged: 0 };
  if (quotes.length === 0 && !options.progress) return counts;
  await sql.begin(async (tx) => {
    if (options.durable === false) await tx`set local synchronous_commit = off`;
    if (quotes.length > 0) Object.assign(counts, await upsertQuotes(tx, quotes));
    if (options.progress) await recordBackfillProgress(tx, options.progress);
    if (options.notify) await notifyNewest(tx, quotes);
  });
  return counts;
}

/**
 * COPY text format: tab-separated, \N for null; backslash, tab and line breaks escaped. Our
 * values are decimals, pairs and ISO times, but `source` is free text.
 */
function copyField(value: string | null): string {
  if (value === null) return "\\N";
  return /[\\\t\n\r]/.test(value)
    ? value.replace(/\\/g, "\\\\").replace(/\t/g, "\\t").replace(/\n/g, "\\n").replace(/\r/g, "\\r")
    : value;
}

const QUOTE_COLUMNS = "pair, ts, bid, ask, high, low, var_bid, pct_change, source, fetched_at";

/** The batch as COPY text, a few thousand lines per piece; `numbered` prefixes each line with its index. */
function* copyLines(quotes: readonly StoredQuote[], numbered: boolean): Generator<string> {
  // A batch is usually fetched at one moment: format that moment once.
  let fetchedAtMs = Number.NaN;
  let fetchedAt = "";
  let buffer = "";
  for (const [n, q] of quotes.entries()) {
    if (q.fetchedAt.getTime() !== fetchedAtMs) {
      fetchedAtMs = q.fetchedAt.getTime();
      fetchedAt = q.fetchedAt.toISOString();
    }
    buffer += `${numbered ? `${n}\t` : ""}${copyField(q.pair)}\t${q.ts.toISOString()}\t${copyField(q.bid)}\t${copyField(q.ask)}\t${copyField(q.high)}\t${copyField(q.low)}\t${copyField(q.varBid)}\t${copyField(q.pctChange)}\t${copyField(q.source)}\t${fetchedAt}\n`;
    if (n % COPY_LINES_PER_WRITE === COPY_LINES_PER_WRITE - 1) {
      yield buffer;
      buffer = "";
    }
  }
  if (buffer) yield buffer;
}

/** Whether any stored quote of the batch's pairs falls within the batch's time span for that pair. */
async function overlapsStored(tx: postgres.TransactionSql, quotes: readonly StoredQuote[]): Promise<boolean> {
  const spans = new Map<string, { first: Date; last: Date }>();
  for (const { pair, ts } of quotes) {
    const span = spans.get(pair);
    if (!span) spans.set(pair, { first: ts, last: ts });
    else if (ts < span.first) span.first = ts;
    else if (ts > span.last) span.last = ts;
  }
  const entries = [...spans.entries()];
  const [row] = await tx<{ overlaps: boolean }[]>`
    select exists (
      select 1
      from unnest(
        ${entries.map(([pair]) => pair)}::text[],
        ${entries.map(([, span]) => span.first.toISOString())}::timestamptz[],
        ${entries.map(([, span]) => span.last.toISOString())}::timestamptz[]
      ) as s(pair, first, last)
      where exists (select 1 from quotes q where q.pair = s.pair and q.ts between s.first and s.last)
    ) as overlaps`;
  return row?.overlaps ?? true;
}

/**
 * A batch that touches no stored (pair, ts), as every backfill chunk of new history does, is
 * copied straight into quotes: the fastest way in. Otherwise, or if a row turns out to collide
 * after all (a duplicate in the batch, a concurrent writer), it is merged.
 */
async function upsertQuotes(tx: postgres.TransactionSql, quotes: readonly StoredQuote[]): Promise<SaveCounts> {
  if (!(await overlapsStored(tx, quotes)) && (await copyUnlessCollides(tx, "quotes", QUOTE_COLUMNS, copyLines(quotes, false)))) {
    return { inserted: quotes.length, updated: 0, unchanged: 0 };
  }
  return mergeQuotes(tx, quotes);
}

/**
 * COPYs numbered `lines` into the session-private staging table `table` (created with
 * `definition` on first use), emptied first, for a merge statement to read. Temporary tables live
 * in the session's own buffers and write no WAL; "on commit delete rows" empties one at every
 * commit, so each session creates it once.
 */
async function stage(tx: postgres.TransactionSql, table: string, definition: string, columns: string, lines: Iterable<string>): Promise<void> {
  // unsafe: `definition` and `columns` are this file's constants; no input reaches them.
  await tx`create temp table if not exists ${tx(table)} (${tx.unsafe(definition)}) on commit delete rows`;
  await tx`truncate ${tx(table)}`;
  const copy = await tx`copy ${tx(table)} (n, ${tx.unsafe(columns)}) from stdin`.writable();
  await streamPromises().pipeline(stream().Readable.from(lines), copy);
}

/**
 * COPYs `lines` straight into `table` in a savepoint; false when a row collided after all (a
 * duplicate in the batch, a concurrent writer), with nothing of it kept, for the caller to merge.
 */
async function copyUnlessCollides(tx: postgres.TransactionSql, table: string, columns: string, lines: Iterable<string>): Promise<boolean> {
  return tx
    .savepoint(async (savepoint) => {
      // unsafe: `columns` is one of this file's constant column lists; no input reaches it.
      const copy = await savepoint`copy ${savepoint(table)} (${savepoint.unsafe(columns)}) from stdin`.writable();
      await streamPromises().pipeline(stream().Readable.from(lines), copy);
      return true;
    })
    .catch((error: { code?: string }) => {
      if (error.code === "23505") return false; // unique_violation: merge instead
      throw error;
    });
}

/**
 * The batch goes into a session-private staging table with COPY, then one statement merges it
 * into quotes. Numeric parsing happens in the server, from the text as received.
 */
async function mergeQuotes(tx: postgres.TransactionSql, quotes: readonly StoredQuote[]): Promise<SaveCounts> {
  await stage(
    tx,
    "incoming_quotes",
    `n integer, pair text, ts timestamptz, bid numeric, ask numeric, high numeric, low numeric,
     var_bid numeric, pct_change numeric, source text, fetched_at timestamptz`,
    QUOTE_COLUMNS,
    copyLines(quotes, true),
  );
  // Every part of one statement sees quotes as it was before the statement. "inserted" adds the
  // new keys; "changed" looks only at the others, updates those whose values differ and returns
  // their old values (through the "old" alias) for quote_revisions. No row is touched twice.
  // unsafe: QUOTE_COLUMNS is this file's constant column list; no input reaches it.
  const [result] = await tx<{ inserted: number; updated: number; received: number }[]>`
    with received as (
      select distinct on (pair, ts) ${tx.unsafe(QUOTE_COLUMNS)}
      from incoming_quotes
      order by pair, ts, n desc
    ),
    inserted as (
      insert into quotes (${tx.unsafe(QUOTE_COLUMNS)})
      select * from received
      on conflict (pair, ts) do nothing
      returning pair, ts
    ),
    changed as (
      update quotes q
      set bid = r.bid, ask = r.ask, high = r.high, low = r.low, var_bid = r.var_bid,
          pct_change = r.pct_change, source = r.source, fetched_at = r.fetched_at
      from received r, quotes old
      where (q.pair, q.ts) = (r.pair, r.ts) and (old.pair, old.ts) = (r.pair, r.ts)
        and not exists (select 1 from inserted i where (i.pair, i.ts) = (r.pair, r.ts))
        and (old.bid, old.ask, old.high, old.low, old.var_bid, old.pct_change)
          is distinct from (r.bid, r.ask, r.high, r.low, r.var_bid, r.pct_change)
      returning old.pair, old.ts, old.bid, old.ask, old.high, old.low, old.var_bid, old.pct_change,
                old.source, old.fetched_at
    ),
    revised as (
      insert into quote_revisions (${tx.unsafe(QUOTE_COLUMNS)})
      select * from changed
    )
    select
      (select count(*) from received)::int as received,
      (select count(*) from inserted)::int as inserted,
      (select count(*) from changed)::int as updated`;
  const inserted = result?.inserted ?? 0;
  const updated = result?.updated ?? 0;
  return { inserted, updated, unchanged: (result?.received ?? 0) - inserted - updated };
}

/** Where each source's backfills keep their progress: AwesomeAPI's quotes, or BCB's official rates (sql/009). */
const PROGRESS_TABLES = { awesomeapi: "backfill_progress", bcb: "official_backfill_progress" } as const;
/** The source a backfill loads: "awesomeapi" (quotes) or "bcb" (official rates). */
export type BackfillSource = keyof typeof PROGRESS_TABLES;

async function recordBackfillProgress(tx: postgres.TransactionSql, step: BackfillStep, source: BackfillSource = "awesomeapi"): Promise<void> {
  const table = PROGRESS_TABLES[source];
  await tx`
    insert into ${tx(table)} as progress (pair, range_from, range_to, done_through)
    values (${step.pair}, ${step.from}, ${step.to}, ${step.doneThrough})
    on conflict (pair, range_from, range_to) do update
      set done_through = greatest(progress.done_through, excluded.done_through), updated_at = now()`;
}

/** The last day a backfill of `pair` over [from, to] stored completely, or null if it never ran. */
export async function backfillDoneThrough(sql: Sql, pair: string, from: string, to: string, source: BackfillSource = "awesomeapi"): Promise<string | null> {
  const [row] = await sql<{ doneThrough: string }[]>`
    select done_through::text as "doneThrough" from ${sql(PROGRESS_TABLES[source])}
    where pair = ${pair} and range_from = ${from} and range_to = ${to}`;
  return row?.doneThrough ?? null;
}

/**
 * Forgets a finished backfill's progress, so that the same range runs again from its start:
 * progress exists to resume an interrupted run, not to make a completed one a no-op.
 */
export async function resetBackfillProgress(sql: Sql, pair: string, from: string, to: string, source: BackfillSource = "awesomeapi"): Promise<void> {
  await sql`delete from ${sql(PROGRESS_TABLES[source])} where pair = ${pair} and range_from = ${from} and range_to = ${to}`;
}
async function notifyNewest(tx: postgres.TransactionSql, quotes: readonly StoredQuote[]): Promise<void> {
  const newest = new Map<string, number>();
  for (const quote of quotes) {
    const ms = quote.ts.getTime();
    if (!(ms <= (newest.get(quote.pair) ?? Number.NEGATIVE_INFINITY))) newest.set(quote.pair, ms);
  }
  for (const [pair, ms] of newest) await notifyChange(tx, { kind: "quote", pair, ts: new Date(ms).toISOString() });
}

// ---------------------------------------------------------------------------------------------
// Official rates (PTAX): the same write path as quotes', into their own tables (sql/009)

const OFFICIAL_COLUMNS = "pair, published_at, bulletin, buy, sell";

/** Rejects a batch with a row that is not an OfficialRate, naming it, before anything is written. */
function checkOfficialRates(rates: readonly OfficialRate[]): void {
  for (const [n, rate] of rates.entries()) {
    const result = v.safeParse(OfficialRateSchema, rate);
    if (result.success) continue;
    const issue = result.issues[0];
    const field = issue.path?.map((item) => String(item.key)).join(".") ?? "the row";
    throw new CotacaoError(
      "INVALID_RATE",
      `Cannot store the official rates: row ${n + 1} (${String(rate?.pair)} ${String(rate?.publishedAt)}) has a bad ${field}: ${issue.message}; nothing was stored, fix or drop that row`,
    );
  }
}

/** The batch as COPY text (see copyLines()); publishedAt goes as written, so its microseconds reach timestamptz. */
function* officialCopyLines(rates: readonly OfficialRate[], numbered: boolean): Generator<string> {
  let buffer = "";
  for (const [n, r] of rates.entries()) {
    buffer += `${numbered ? `${n}\t` : ""}${copyField(r.pair)}\t${copyField(r.publishedAt)}\t${copyField(r.bulletin)}\t${copyField(r.buy)}\t${copyField(r.sell)}\n`;
    if (n % COPY_LINES_PER_WRITE === COPY_LINES_PER_WRITE - 1) {
      yield buffer;
      buffer = "";
    }
  }
  if (buffer) yield buffer;
}

/**
 * Whether any stored bulletin of the batch's pairs falls within the batch's time span for that
 * pair. The span is read from the text to the millisecond, widened by one: a stored row just
 * outside it at most sends the batch through the merge, which is always right.
 */
async function officialOverlapsStored(tx: postgres.TransactionSql, rates: readonly OfficialRate[]): Promise<boolean> {
  const spans = new Map<string, { first: number; last: number }>();
  for (const { pair, publishedAt } of rates) {
    const ms = Date.parse(publishedAt);
    // A time JavaScript cannot read ("2024-13-01..."): the merge lets the server say what is wrong.
    if (Number.isNaN(ms)) return true;
    const span = spans.get(pair);
    if (!span) spans.set(pair, { first: ms, last: ms });
    else if (ms < span.first) span.first = ms;
    else if (ms > span.last) span.last = ms;
  }
  const entries = [...spans.entries()];
  const [row] = await tx<{ overlaps: boolean }[]>`
    select exists (
      select 1
      from unnest(
        ${entries.map(([pair]) => pair)}::text[],
        ${entries.map(([, span]) => new Date(span.first).toISOString())}::timestamptz[],
        ${entries.map(([, span]) => new Date(span.last + 1).toISOString())}::timestamptz[]
      ) as s(pair, first, last)
      where exists (select 1 from official_rates o where o.pair = s.pair and o.published_at between s.first and s.last)
    ) as overlaps`;
  return row?.overlaps ?? true;
}

/** What saveOfficialRates() does beside the rates, as SaveOptions says for quotes. */
export interface OfficialSaveOptions {
  /** Record an official backfill's progress (official_backfill_progress) in the same transaction as the rates. */
  progress?: BackfillStep;
  /** false: the commit does not wait for the disk (a backfill's batches, which can be fetched again; see SaveOptions). */
  durable?: boolean;
}

/**
 * Stores PTAX bulletins in one transaction, exactly once per (pair, published_at), as
 * saveQuotes() stores quotes: new ones are inserted, one whose kind or rates changed is updated
 * (the replaced values go to official_rate_revisions), identical ones are left alone, so running
 * it again adds nothing. Within a batch the last bulletin for a (pair, published_at) wins. Rates
 * and times travel as text and are cast by the server: every digit and microsecond is kept. A
 * row that is not an OfficialRate, or that the table refuses, fails the whole batch: nothing of
 * it is stored (nor its progress).
 */
export async function saveOfficialRates(sql: Sql, rates: readonly OfficialRate[], options: OfficialSaveOptions = {}): Promise<SaveCounts> {
  checkOfficialRates(rates);
  const counts: SaveCounts = { inserted: 0, updated: 0, unchanged: 0 };
  if (rates.length === 0 && !options.progress) return counts;
  await sql.begin(async (tx) => {
    if (options.durable === false) await tx`set local synchronous_commit = off`;
    if (rates.length > 0) Object.assign(counts, await upsertOfficialRates(tx, rates));
    if (options.progress) await recordBackfillProgress(tx, options.progress, "bcb");
  });
  return counts;
}

/**
 * A batch of new history (a backfill's year) is copied straight in, as upsertQuotes() does;
 * anything that collides after all goes through the merge.
 */
async function upsertOfficialRates(tx: postgres.TransactionSql, rates: readonly OfficialRate[]): Promise<SaveCounts> {
  if (!(await officialOverlapsStored(tx, rates)) && (await copyUnlessCollides(tx, "official_rates", OFFICIAL_COLUMNS, officialCopyLines(rates, false)))) {
    return { inserted: rates.length, updated: 0, unchanged: 0 };
  }
  return mergeOfficialRates(tx, rates);
}

/** The batch into a session-private staging table with COPY, then one statement merges it (see mergeQuotes()). */
async function mergeOfficialRates(tx: postgres.TransactionSql, rates: readonly OfficialRate[]): Promise<SaveCounts> {
  await stage(
    tx,
    "incoming_official_rates",
    "n integer, pair text, published_at timestamptz, bulletin text, buy numeric, sell numeric",
    OFFICIAL_COLUMNS,
    officialCopyLines(rates, true),
  );
  // As in mergeQuotes(): every part sees official_rates as it was before the statement, no row
  // is touched twice, and "changed" returns the old values (through "old") for the revisions.
  const [result] = await tx<{ inserted: number; updated: number; received: number }[]>`
    with received as (
      select distinct on (pair, published_at) ${tx.unsafe(OFFICIAL_COLUMNS)}
      from incoming_official_rates
      order by pair, published_at, n desc
    ),
    inserted as (
      insert into official_rates (${tx.unsafe(OFFICIAL_COLUMNS)})
      select * from received
      on conflict (pair, published_at) do nothing
      returning pair, published_at
    ),
    changed as (
      update official_rates o
      set bulletin = r.bulletin, buy = r.buy, sell = r.sell, fetched_at = now()
      from received r, official_rates old
      where (o.pair, o.published_at) = (r.pair, r.published_at) and (old.pair, old.published_at) = (r.pair, r.published_at)
        and not exists (select 1 from inserted i where (i.pair, i.published_at) = (r.pair, r.published_at))
        and (old.bulletin, old.buy, old.sell) is distinct from (r.bulletin, r.buy, r.sell)
      returning old.pair, old.published_at, old.bulletin, old.buy, old.sell, old.fetched_at
    ),
    revised as (
      insert into official_rate_revisions (${tx.unsafe(OFFICIAL_COLUMNS)}, fetched_at)
      select * from changed
    )
    select
      (select count(*) from received)::int as received,
      (select count(*) from inserted)::int as inserted,
      (select count(*) from changed)::int as updated`;
  const inserted = result?.inserted ?? 0;
  const updated = result?.updated ?? 0;
  return { inserted, updated, unchanged: (result?.received ?? 0) - inserted - updated };
}

// ---------------------------------------------------------------------------------------------
// Pipeline runs

/** What a finished run did, for its pipeline_runs row. */
export interface RunOutcome {
  status: "succeeded" | "failed";
  fetched: number;
  inserted: number;
  updated: number;
  unchanged?: number;
  error?: string;
  /** The step that failed; the counts say what was stored before (or despite) it. */
  failedStep?: RunStep;
  /** Pairs whose fetch failed while the others were stored. */
  failedPairs?: readonly string[];
  /** The run failed for failedPairs only, and succeeded for the other pairs it tried. */
  failedPairsOnly?: boolean;
  warnings?: readonly string[];
  /** The sources that failed: "awesomeapi", "bcb" (sql/010). */
  failedSources?: readonly string[];
  /** What the run did with BCB's official bulletins (official_rates), beside the quotes' counts above. */
  official?: SaveCounts & { fetched: number };
}

/** The steps of a run, as pipeline_runs.failed_step names them. */
export type RunStep = "start" | "fetch" | "store" | "analyse" | "deliver";

/** Records the start of a pipeline run; returns its id. */
export async function startRun(sql: Sql, pairs: readonly string[]): Promise<number> {
  const rows = await sql<{ id: number }[]>`insert into pipeline_runs (pairs) values (${[...pairs]}) returning id::int`;
  return rows[0]!.id; // insert ... returning yields exactly one row
}

/** Records a run that failed before it could start (e.g. the migrations failed). */
export async function recordFailedRun(sql: Sql, pairs: readonly string[], error: string): Promise<number> {
  // The notification goes out with the row, in the same statement (and so the same commit).
  const rows = await sql<{ id: number }[]>`
    with recorded as (
      insert into pipeline_runs (pairs, status, finished_at, error, failed_step)
      values (${[...pairs]}, 'failed', now(), ${error}, 'start') returning id::int, status
    )
    select id, ${runNotice(sql)} from recorded`;
  return rows[0]!.id; // insert ... returning yields exactly one row
}

/**
 * Records a run that stood aside: it waited for the pipeline lock past its timeout, tried no
 * pair, and failed nothing ('skipped'; `reason` says why).
 */
export async function recordSkippedRun(sql: Sql, pairs: readonly string[], reason: string): Promise<number> {
  const rows = await sql<{ id: number }[]>`
    with recorded as (
      insert into pipeline_runs (pairs, status, finished_at, error)
      values (${[...pairs]}, 'skipped', now(), ${reason}) returning id::int, status
    )
    select id, ${runNotice(sql)} from recorded`;
  return rows[0]!.id; // insert ... returning yields exactly one row
}

/**
 * Marks runs still "running" as failed when their process died (kill -9, power loss): a live
 * run holds its claim (PipelineSession.claimRun) until it has recorded how it ended, even after
 * it released the pipeline lock to deliver webhooks. Call it holding the pipeline lock. Returns how many.
 */
export async function closeInterruptedRuns(sql: Sql): Promise<number> {
  // A claim that can be taken is one whose session is gone; taken per transaction, it ends with this statement.
  const closed = await sql`
    update pipeline_runs set status = 'failed', finished_at = now(),
      error = 'interrupted: the run stopped before it finished (killed, or the machine went down)'
    where status = 'running' and pg_try_advisory_xact_lock(hashtext('cotacao:run'), id::int)`;
  return closed.count;
}

/** Records how a pipeline run ended. */
export async function finishRun(sql: Sql, id: number, outcome: RunOutcome): Promise<void> {
  // The notification goes out with the update, in the same statement (and so the same commit).
  await sql`
    with finished as (
      update pipeline_runs
      set status = ${outcome.status}, finished_at = now(), rows_fetched = ${outcome.fetched},
          rows_inserted = ${outcome.inserted}, rows_updated = ${outcome.updated}, rows_unchanged = ${outcome.unchanged ?? 0},
          error = ${outcome.error ?? null}, failed_step = ${outcome.failedStep ?? null},
          failed_pairs = ${[...(outcome.failedPairs ?? [])]}, failed_pairs_only = ${outcome.failedPairsOnly ?? false},
          warnings = ${[...(outcome.warnings ?? [])]}, failed_sources = ${[...(outcome.failedSources ?? [])]},
          official_rows_fetched = ${outcome.official?.fetched ?? 0}, official_rows_inserted = ${outcome.official?.inserted ?? 0},
          official_rows_updated = ${outcome.official?.updated ?? 0}, official_rows_unchanged = ${outcome.official?.unchanged ?? 0}
      where id = ${id}
      returning id::int, status
    )
    select ${runNotice(sql)} from finished`;
}

/** The session of a run in progress, as withPipelineLock() hands it to the run. */
export interface PipelineSession {
  /** Marks run `id` as alive for as long as this session lasts, so no other run takes it for interrupted. */
  claimRun(id: number): Promise<void>;
  /** Lets the next run start (e.g. before slow webhook deliveries); the claimed run stays alive. */
  releaseLock(): Promise<void>;
}

/**
 * Runs `fn` holding the pipeline's advisory lock, so that runs never overlap. Waits up to
 * `timeoutMs` for a run in progress, then throws a DatabaseError with code "LOCKED". A run
 * that dies loses its session, and with it its locks.
 */
export async function withPipelineLock<T>(sql: Sql, timeoutMs: number, fn: (session: PipelineSession) => Promise<T>): Promise<T> {
  const session = await sql.reserve();
  try {
    await session`select set_config('lock_timeout', ${`${Math.max(1, Math.round(timeoutMs))}ms`}, false)`;
    try {
      await session`select pg_advisory_lock(hashtext('cotacao:pipeline'))`;
    } catch (error) {
      if ((error as { code?: string }).code !== "55P03") throw error;
      throw new DatabaseError(
        "LOCKED",
        `Cannot run the pipeline: another run has held the lock for over ${timeoutMs / 1000} s; let it finish, or raise --lock-timeout`,
        { cause: error },
      );
    }
    let locked = true;
    const releaseLock = async () => {
      if (!locked) return;
      locked = false;
      await session`select pg_advisory_unlock(hashtext('cotacao:pipeline'))`;
    };
    // Session-level locks end with the session: the next release() does not keep them.
    try {
      return await fn({
        claimRun: async (id) => void (await session`select pg_advisory_lock(hashtext('cotacao:run'), ${id}::int)`),
        releaseLock,
      });
    } finally {
      // A session that died has lost its locks already, and its error is not the one to report.
      await releaseLock().catch(() => {});
      await session`select pg_advisory_unlock_all()`.catch(() => {});
    }
  } finally {
    session.release();
  }
}

// ---------------------------------------------------------------------------------------------
// CLI

const USAGE = `Usage: bun database.ts <command>

Manages cotacao's PostgreSQL database: the server named by DATABASE_URL, or, when it is not set,
an embedded server kept in ${relativeToProject(DEFAULT_DATA_DIR)} (COTACAO_DATA_DIR overrides).

Commands:
  status    where the database is, whether it is running, and the schema's state
  start     start the embedded server (creating it on first use) and leave it running
  stop      stop the embedded server
  migrate   apply pending migrations from sql/
  url       print the connection URL (any password masked)
  dump FILE          write a consistent, compressed snapshot of every table to FILE (- for stdout)
  restore FILE       load a dump into the database, all or nothing (- for stdin); the database
                     must hold no data, unless --force: then everything in it is replaced
  --version, -V      print the version and exit

Exit codes: 0 ok, 1 failure, 2 bad usage or configuration, 3 (status) not running.`;

async function withPool<T>(config: DatabaseConfig, fn: (sql: Sql) => Promise<T>): Promise<T> {
  const sql = await connect(config, { max: 1 });
  try {
    return await fn(sql);
  } finally {
    await sql.end({ timeout: 5 });
  }
}

async function statusCommand(config: DatabaseConfig): Promise<number> {
  if (config.databaseUrl) {
    console.log(`database: ${maskUrl(config.databaseUrl)} (DATABASE_URL)`);
  } else {
    const server = await runningEmbeddedServer(config.dataDir);
    console.log(`database: embedded PostgreSQL in ${config.dataDir}`);
    if (!server) {
      const pidFile = await readPostmasterPid(config.dataDir);
      const stale =
        pidFile && isProcessAlive(pidFile.pid)
          ? ` (postmaster.pid names process ${pidFile.pid}, which is not this server: the file was left by a server that was killed; the next start replaces it)`
          : "";
      console.log((await isInitialised(config.dataDir)) ? `server: stopped${stale}` : "server: not created yet (created on first use)");
      return 3;
    }
    console.log(`server: running, pid ${server.pid}, socket ${server.socketDir}`);
  }
  return withPool(config, async (sql) => {
    const [info] = await sql<{ version: string }[]>`select current_setting('server_version') as version`;
    const migrations = await migrationStatus(sql);
    console.log(`version: PostgreSQL ${info?.version}`);
    console.log(
      `schema: ${migrations.applied} migration(s) applied` +
        (migrations.pending.length ? `, pending: ${migrations.pending.join(", ")}` : ", up to date"),
    );
    return 0;
  });
}

async function startCommand(config: DatabaseConfig): Promise<number> {
  if (config.databaseUrl) {
    console.log(`DATABASE_URL is set (${maskUrl(config.databaseUrl)}): cotacao uses that server; nothing to start`);
    return 0;
  }
  const began = performance.now();
  const { server, started, initialised } = await startEmbeddedServer(config.dataDir, { notice: console.error });
  const ms = Math.round(performance.now() - began);
  const what = initialised ? "created and started" : started ? "started" : "already running";
  console.log(`embedded PostgreSQL ${what} (pid ${server.pid}, ${config.dataDir}${started ? `, ${ms} ms` : ""})`);
  return 0;
}

async function stopCommand(config: DatabaseConfig): Promise<number> {
  if (config.databaseUrl) {
    console.log(`DATABASE_URL is set (${maskUrl(config.databaseUrl)}): cotacao does not manage that server; nothing to stop`);
    return 0;
  }
  const stopped = await stopEmbeddedServer(config.dataDir);
  console.log(stopped ? `embedded PostgreSQL stopped (${config.dataDir})` : `embedded PostgreSQL was not running (${config.dataDir})`);
  return 0;
}

async function migrateCommand(config: DatabaseConfig): Promise<number> {
  return withPool(config, async (sql) => {
    const { applied, current } = await migrate(sql);
    console.log(applied.length ? `applied ${applied.join(", ")}; schema at ${current}` : `schema up to date at ${current}`);
    return 0;
  });
}

async function urlCommand(config: DatabaseConfig): Promise<number> {
  if (config.databaseUrl) {
    console.log(maskUrl(config.databaseUrl));
    return 0;
  }
  const server = await runningEmbeddedServer(config.dataDir);
  console.log(server?.url ?? embeddedUrl(config.dataDir));
  if (!server) console.error("(the embedded server is not running: start it with \"bun database.ts start\")");
  return 0;
}

async function dumpCommand(config: DatabaseConfig, [file]: string[]): Promise<number> {
  if (!file) throw usageError("Cannot dump: no FILE given; use \"bun database.ts dump FILE\" (- for stdout)", "database.ts");
  const began = performance.now();
  const result = await withPool(config, (sql) => (file === "-" ? dumpDatabase(sql, process.stdout) : dumpToFile(sql, file)));
  // With "-" the dump is stdout: the summary goes to stderr.
  (file === "-" ? console.error : console.log)(`dumped ${backupSummary(result)} to ${file === "-" ? "standard output" : file} in ${seconds(began)}`);
  return 0;
}

async function restoreCommand(config: DatabaseConfig, args: string[]): Promise<number> {
  const force = args.includes("--force");
  const files = args.filter((arg) => arg !== "--force");
  const [file] = files;
  if (!file || files.length > 1) {
    throw usageError("Cannot restore: give one FILE; use \"bun database.ts restore FILE [--force]\" (- for stdin)", "database.ts");
  }
  if (file !== "-" && !fs().existsSync(file)) throw usageError(`Cannot restore ${file}: no such file; give the path of a dump made by "bun database.ts dump"`, "database.ts");
  const began = performance.now();
  const { result, migrated } = await withPool(config, async (sql) => {
    const result = await restoreFromFile(sql, file, { force });
    return { result, migrated: await migrate(sql) };
  });
  const upgraded = migrated.applied.length ? `; then applied ${migrated.applied.join(", ")}` : "";
  console.log(`restored ${backupSummary(result)} from ${file === "-" ? "standard input" : file} in ${seconds(began)}${upgraded}`);
  return 0;
}

function backupSummary(result: BackupResult): string {
  return `${result.rows} rows of ${result.tables.length} tables (schema at migration ${result.schema})`;
}

function seconds(began: number): string {
  return `${((performance.now() - began) / 1000).toFixed(1)} s`;
}

/** Each command, and whether it takes arguments. */
const COMMANDS: Record<string, { run: (config: DatabaseConfig, args: string[]) => Promise<number>; takesArgs?: boolean }> = {
  status: { run: statusCommand },
  start: { run: startCommand },
  stop: { run: stopCommand },
  migrate: { run: migrateCommand },
  url: { run: urlCommand },
  dump: { run: dumpCommand, takesArgs: true },
  restore: { run: restoreCommand, takesArgs: true },
};
const COMMAND_NAMES = "status, start, stop, migrate, url, dump or restore";

/** Runs the CLI and returns its exit code. */
export async function main(args: string[]): Promise<number> {
  const [command, ...rest] = args;
  if (command === "--help" || command === "-h" || command === "help") {
    console.log(USAGE);
    return 0;
  }
  // Commands, not flags: readFlags() does not read this command line, so --version is answered here.
  if (command === "--version" || command === "-V") {
    console.log(versionLine("database.ts"));
    return 0;
  }
  const found = command === undefined ? undefined : COMMANDS[command];
  if (!found || (rest.length > 0 && !found.takesArgs)) {
    console.error(
      command === undefined
        ? `Missing command: use ${COMMAND_NAMES} (see --help)`
        : `Unknown arguments "${args.join(" ")}": use ${COMMAND_NAMES} (see --help)`,
    );
    return 2;
  }
  try {
    return await found.run(loadDatabaseConfig(process.env), rest);
  } catch (error) {
    const { line, exitCode } = describeError(error, "complete the database operation");
    console.error(line);
    return exitCode;
  }
}

// No top-level await: monitor.ts, which imports this file, compiles to bytecode (bun run build:monitor).
if (import.meta.main) {
  void main(Bun.argv.slice(2)).then((code) => (process.exitCode = code));
}
