/**
 * main_pipeline.ts: one ETL cycle, the cron entry point. It orders the steps (fetch, store,
 * analyse, deliver, record); each step lives in its own script. Two sources are fetched:
 * AwesomeAPI's quotes (ingest.ts) and BCB's official PTAX bulletins (lib/bcb.ts), each stored
 * whatever the other did.
 *
 * CLI: `bun main_pipeline.ts [--pairs A-B,C-D] [--source awesomeapi|bcb] [--backfill DAYS | --from DATE [--to DATE]] ...`
 * (see `--help`).
 */
import * as v from "valibot";
import { isCalendarDate, saoPauloDay } from "./lib/calendar.ts";
import { formatDuration, parseDuration, printDescribed, readFlags } from "./lib/cli.ts";
import { connect, type DatabaseConfig, loadDatabaseConfig } from "./lib/connect.ts";
import type { Sql } from "./lib/pool.ts";
import { DatabaseError, describeError, EXIT, usageError } from "./lib/errors.ts";
import { clearGaps, describeGap, listGaps, type QuoteGap, recordGap } from "./lib/gaps.ts";
import { migrate } from "./lib/migrations.ts";
import { parsePairs, type Quote } from "./lib/quote.ts";
import { newestStored } from "./lib/views.ts";
import { type AnalysisConfig, loadAnalysisConfig } from "./lib/rule.ts";
import { deliverPending, type DeliveryOptions } from "./lib/webhooks.ts";
import { BcbError, type BcbOptions, fetchPtax, loadBcbConfig, planPtaxYears, ptaxYearChunks } from "./lib/bcb.ts";
import { type OfficialRate, PTAX_CURRENCIES, ptaxCurrencyOf } from "./lib/official.ts";
import { analyse, describeTransition } from "./analysis.ts";
import {
  backfillDoneThrough,
  type BackfillStep,
  closeInterruptedRuns,
  finishRun,
  recordFailedRun,
  recordSkippedRun,
  resetBackfillProgress,
  type RunOutcome,
  type RunStep,
  type SaveCounts,
  saveOfficialRates,
  saveQuotes,
  startRun,
  withPipelineLock,
} from "./database.ts";
import {
  addDays,
  countWeekdays,
  type DailyChunk,
  dailyChunks,
  type DateRange,
  dayNumber,
  DEFAULT_PAIRS,
  fetchLatest,
  IngestError,
  type IngestOptions,
  loadIngestConfig,
  planChunks,
} from "./ingest.ts";

const DEFAULT_LOCK_TIMEOUT_MS = 30_000;
// A backfill stores a batch once it holds this many rows, or a second after the last one.
const BACKFILL_BATCH_ROWS = 20_000;
const BACKFILL_FLUSH_MS = 1_000;
// History requests in flight at once: enough to keep the store step busy, gentle on the API.
const BACKFILL_CONCURRENCY = 4;
// Backfill transactions at once, each of another pair: while one waits on its commit or its
// network round trips, the others keep the server busy.
const BACKFILL_WRITERS = 4;
// Flags are bounded to what makes sense: a timer past 2^31 ms overflows and fires at once, and
// AwesomeAPI's history does not reach before 1990 (a quote stamped earlier is refused).
const LOCK_TIMEOUT_BOUNDS_MS = [0, 86_400_000] as const;
const EVERY_BOUNDS_MS = [1_000, 86_400_000] as const;
const EARLIEST_HISTORY_DAY = "1990-01-01";
// PTAX's history starts in 1984 (before it, Olinda answers no bulletins, which is not an error).
const EARLIEST_OFFICIAL_DAY = "1984-01-01";
/**
 * Each run fetches the official bulletins of this many days, today included: one request per
 * currency whatever the span, so a missed run, a holiday or a correction BCB published later
 * is caught up by the next one.
 */
const OFFICIAL_RECENT_DAYS = 10;
// A latest-quote run takes seconds, a minute with every retry and the lock's wait.
const RUN_DEADLINE_MS = 15 * 60_000;
/** Gap healing fetches at most this many days back; an older gap is reported with the command that fills it. */
const GAP_HEAL_MAX_DAYS = 30;


// ---------------------------------------------------------------------------------------------
// Plans (pure)

/** Days the latest-quote run should fill in for one pair, and the older days it leaves to a backfill. */
export interface GapPlan {
  pair: string;
  range?: DateRange;
  /** Missing days older than the bound: remembered (quote_gaps) and reported every run until a backfill loads them. */
  unfilled?: DateRange;
}

/**
 * Gap healing: the business days between a pair's newest stored day and today (today itself
 * comes with the latest quote), at most GAP_HEAL_MAX_DAYS back. A pair with nothing stored has
 * no gap: its history is a backfill's job.
 */
export function planGapHealing(pair: string, newest: Date | undefined, today: string): GapPlan {
  if (!newest) return { pair };
  const first = addDays(saoPauloDay(newest), 1);
  const last = addDays(today, -1);
  if (first > last || countWeekdays({ from: first, to: last }) === 0) return { pair };
  const earliest = addDays(today, -GAP_HEAL_MAX_DAYS);
  if (first >= earliest) return { pair, range: { from: first, to: last } };
  return { pair, range: { from: earliest, to: last }, unfilled: { from: first, to: addDays(earliest, -1) } };
}

// ---------------------------------------------------------------------------------------------
// A run

/** Where a backfill is, for the progress bar. */
export interface BackfillProgress {
  pair: string;
  pairIndex: number;
  pairCount: number;
  /** Chunks done and planned for this pair. */
  chunk: number;
  chunks: number;
  doneThrough: string;
  rows: number;
  elapsedMs: number;
}

/** Where a run's rows come from: AwesomeAPI's quotes, or BCB's official PTAX bulletins. */
export type Source = "awesomeapi" | "bcb";

export interface PipelineOptions extends IngestOptions {
  pairs: readonly string[];
  /** The source a backfill loads (default "awesomeapi"); "bcb" loads official history only. */
  source?: Source;
  /**
   * How BCB's PTAX service is reached, for the official bulletins each latest-quote run fetches
   * and for `source: "bcb"`; undefined: a run fetches none (COTACAO_OFFICIAL=off).
   */
  official?: BcbOptions | undefined;
  /** Load this history instead of the latest quotes. */
  history?: DateRange | undefined;
  lockTimeoutMs?: number;
  onProgress?: ((progress: BackfillProgress) => void) | undefined;
  /** Rows per backfill transaction (default 20,000). */
  backfillBatchRows?: number;
  /** The alert rule's settings. */
  analysis: AnalysisConfig;
  /** How webhooks are reached (tests pass their own fetch, budget or clock). */
  delivery?: DeliveryOptions;
}

/** What one run did: the summary line, or JSON with --json. */
export interface RunSummary {
  /** "skipped": it waited for another run's lock past --lock-timeout and tried nothing (exit 75). */
  status: "succeeded" | "failed" | "skipped";
  /** Its pipeline_runs row; null in a dry run. */
  runId: number | null;
  mode: "latest" | "backfill" | "dry-run";
  /** The source a backfill loaded ("bcb": official history, counted in `official` only). */
  source: Source;
  pairs: string[];
  fetched: number;
  inserted: number;
  updated: number;
  unchanged: number;
  /** Gap days healed by a latest run. */
  healed: number;
  /** Records that shared a timestamp with another of different values (the first was kept; see warnings). */
  conflicts: number;
  /** One line per alert that fired or resolved. */
  alerts: string[];
  /** One line per failed webhook delivery, naming the webhook's host. */
  undelivered: string[];
  /**
   * One line per gap of the run's pairs too old for a run to fill, with the backfill that loads
   * it: printed on stderr by every run, even with --quiet, until that backfill has run.
   */
  gaps?: string[];
  warnings: string[];
  durationMs: number;
  error?: string;
  /** The step that failed. The counts say what was stored all the same. */
  failedStep?: RunStep;
  /** Pairs whose fetch failed while the other pairs were stored. */
  failedPairs: string[];
  /** The sources that failed; the other source's rows are stored all the same. */
  failedSources: Source[];
  /** What the run did with BCB's official bulletins; absent when it asked for none (COTACAO_OFFICIAL=off). */
  official?: OfficialTally;
  /** The exit code this run calls for. */
  exitCode: number;
}

/** A failure that did not stop the run but makes it fail: one pair's fetch, BCB's, or the analysis step. */
interface Problem {
  step: RunStep;
  pair?: string;
  /** The source that failed; a fetch step's problem without one is AwesomeAPI's. */
  source?: Source;
  message: string;
}

/** The official bulletins' counts, and the pairs PTAX does not cover (said in the summary line, not an error). */
export interface OfficialTally extends SaveCounts {
  fetched: number;
  uncovered: string[];
}

interface Tally extends SaveCounts {
  fetched: number;
  healed: number;
  conflicts: number;
  alerts: string[];
  undelivered: string[];
  gaps: string[];
  warnings: string[];
  problems: Problem[];
  source: Source;
  /** Set once the run asks BCB for anything. */
  official?: OfficialTally;
}

function emptyTally(source: Source = "awesomeapi"): Tally {
  return { fetched: 0, inserted: 0, updated: 0, unchanged: 0, healed: 0, conflicts: 0, alerts: [], undelivered: [], gaps: [], warnings: [], problems: [], source };
}

/** Records sent twice with different values: the source kept one by its rule; the run says so. */
function noteConflicts(tally: Tally, chunk: DailyChunk): void {
  tally.conflicts += chunk.conflicts;
  tally.warnings.push(...chunk.warnings);
}

function addCounts(tally: SaveCounts, counts: SaveCounts): void {
  tally.inserted += counts.inserted;
  tally.updated += counts.updated;
  tally.unchanged += counts.unchanged;
}

/**
 * One run: migrate, take the pipeline lock, fetch and store (latest quotes with gap healing, or
 * a backfill), analyse, release the lock, deliver the alerts' webhooks, and record the run in
 * pipeline_runs whatever happens. Never throws for
 * a failed run: the summary says how it ended, at which step, and which exit code that means.
 * One pair's failure never costs another pair its data, and a failure of the analysis step
 * never undoes the quotes stored before it.
 */
export async function runPipeline(sql: Sql, options: PipelineOptions): Promise<RunSummary> {
  const began = performance.now();
  const pairs = [...options.pairs];
  const mode = options.history ? "backfill" : "latest";
  const tally = emptyTally(options.source);
  let runId: number | null = null;
  let step = "start" as RunStep;
  try {
    await migrate(sql);
    await withPipelineLock(sql, options.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS, async (session) => {
      // Holding the lock, no other run is fetching: a "running" row without its claim is one whose process died.
      await closeInterruptedRuns(sql);
      runId = await startRun(sql, pairs);
      await session.claimRun(runId);
      step = "fetch";
      await fetchAndStore(sql, pairs, options, tally, (next) => (step = next));
      // What the person must do, said by every run until it is done.
      tally.gaps = (await listGaps(sql, pairs)).map(describeGap);
      step = "analyse";
      const config = options.analysis;
      try {
        // Every pair, those whose fetch failed too: a feed that stopped is what staleness is for.
        // A backfill asked for no latest quote: staleness is left to the next latest-quote run.
        const { transitions } = await analyse(sql, pairs, { config, now: options.now, deliver: false, staleness: !options.history });
        tally.alerts.push(...transitions.map(describeTransition));
      } catch (error) {
        tally.problems.push({ step: "analyse", message: `the analysis step failed (the quotes are stored): ${errorLine(error)}` });
      }
      // A receiver that hangs must not hold back the next run: deliver outside the lock.
      await session.releaseLock();
      step = "deliver";
      const delivery = await deliverPending(sql, config.webhookUrls, {
        now: options.now,
        giveUpAfterMs: config.webhookGiveUpAfterMs,
        ...options.delivery,
      });
      tally.undelivered.push(...delivery.pending, ...delivery.failed);
      await finishRun(sql, runId, outcomeOf(tally));
    });
    return summary(runId, mode, pairs, tally, began);
  } catch (error) {
    // In the fetch step, anything but a source failure comes from the database: a write.
    const failedStep = step === "fetch" && !(error instanceof IngestError) ? "store" : step;
    // Before the run began, nothing was written: a server that is down is said to be down.
    tally.problems.push({ step: failedStep, message: errorLine(error, runId !== null) });
    // A failed run says what the person must do all the same (unless the database is what failed).
    if (tally.gaps.length === 0) tally.gaps = await listGaps(sql, pairs).then((gaps) => gaps.map(describeGap), () => []);
    if (isLocked(error)) {
      // Another run is at work: this one stood aside, which fails nothing (no pair turns red for it).
      runId = await recordSkippedRun(sql, pairs, errorLine(error)).catch(() => null);
      const { failedStep: _start, ...skipped } = summary(runId, mode, pairs, tally, began);
      return { ...skipped, status: "skipped", exitCode: EXIT.locked };
    }
    const outcome = outcomeOf(tally);
    // The run's own record must not hide the failure that ended it (the database may be what failed).
    if (runId !== null) await finishRun(sql, runId, outcome).catch(() => {});
    else runId = await recordFailedRun(sql, pairs, outcome.error ?? "").catch(() => null);
    return { ...summary(runId, mode, pairs, tally, began), exitCode: describeError(error, ACTION).exitCode };
  }
}

/**
 * The fetch and store steps, source by source: official history alone (--source bcb); or
 * AwesomeAPI's quotes (the latest with gap healing, or a backfill), then, in a latest run, the
 * official bulletins of the last days. Each source is stored whatever the other did: AwesomeAPI
 * down, the official bulletins are still fetched and stored before the run fails for it; BCB's
 * failure is a problem of the run, after the quotes are stored. `setStep` follows where it is.
 */
async function fetchAndStore(sql: Sql, pairs: string[], options: PipelineOptions, tally: Tally, setStep: (step: RunStep) => void): Promise<void> {
  if (options.source === "bcb" && options.history) {
    // Asked for by name, official history is loaded whatever COTACAO_OFFICIAL says.
    return backfillOfficial(sql, pairs, options.history, options, options.official ?? {}, tally);
  }
  const awesomeFailure = await sourceFailure(
    options.history ? backfill(sql, pairs, options.history, options, tally) : storeLatest(sql, pairs, options, tally, () => setStep("store")),
  );
  if (!options.history && options.official) {
    setStep("fetch");
    await storeOfficialRecent(sql, pairs, options, options.official, tally, () => setStep("store"));
  }
  if (awesomeFailure) {
    setStep("fetch");
    throw awesomeFailure;
  }
}

function outcomeOf(tally: Tally): RunOutcome {
  const [first] = tally.problems;
  return {
    status: first ? "failed" : "succeeded",
    ...tally,
    ...(first ? { error: tally.problems.map((problem) => problem.message).join("; "), failedStep: first.step } : {}),
    failedPairs: failedPairs(tally),
    // Every problem is one pair's (or BCB's, which costs no pair its quotes): the run succeeded
    // for the pairs it does not name. failed_sources says which source failed.
    failedPairsOnly: first !== undefined && tally.problems.every((problem) => problem.pair !== undefined || problem.source === "bcb"),
    failedSources: failedSources(tally),
  };
}

const failedSources = (tally: Tally): Source[] => [
  ...new Set(tally.problems.flatMap((problem) => problem.source ?? (problem.step === "fetch" ? ["awesomeapi" as const] : []))),
];

/** How the summary line names each source. */
const SOURCE_NAMES: Readonly<Record<Source, string>> = { awesomeapi: "AwesomeAPI", bcb: "BCB" };

/** A source's failure (AwesomeAPI's IngestError) as a value, so that the other source still runs; anything else is thrown. */
const sourceFailure = (work: Promise<void>): Promise<IngestError | undefined> =>
  work.then(
    () => undefined,
    (error: unknown) => {
      if (error instanceof IngestError) return error;
      throw error;
    },
  );

/** The lock timeout's error: another run held the pipeline lock past --lock-timeout. */
const isLocked = (error: unknown): boolean => error instanceof DatabaseError && error.code === "LOCKED";

const failedPairs = (tally: Tally) => [...new Set(tally.problems.flatMap((problem) => (problem.pair ? [problem.pair] : [])))];

/** Fetches and validates, as a run would, and writes nothing: no database is touched. */
export async function dryRun(options: PipelineOptions): Promise<RunSummary> {
  const began = performance.now();
  const pairs = [...options.pairs];
  const tally = emptyTally(options.source);
  try {
    if (options.source === "bcb" && options.history) {
      const official = officialTally(tally);
      for (const { currency } of officialPairs(pairs, tally)) {
        for await (const chunk of ptaxYearChunks(currency, clampToToday(options.history, options), options.official)) official.fetched += chunk.rates.length;
      }
    } else if (options.history) {
      for (const pair of pairs) {
        for await (const chunk of dailyChunks(pair, options.history, options)) {
          tally.fetched += chunk.quotes.length;
          noteConflicts(tally, chunk);
        }
      }
    } else {
      const latest = await fetchLatestOfEach(pairs, options, tally);
      tally.fetched = latest.length;
      if (options.official) officialTally(tally).fetched = (await fetchOfficialRecent(pairs, options, options.official, tally)).length;
    }
  } catch (error) {
    tally.problems.push({ step: "fetch", message: errorLine(error) });
    return { ...summary(null, "dry-run", pairs, tally, began), exitCode: describeError(error, ACTION).exitCode };
  }
  return summary(null, "dry-run", pairs, tally, began);
}

function summary(runId: number | null, mode: RunSummary["mode"], pairs: string[], tally: Tally, began: number): RunSummary {
  const outcome = outcomeOf(tally);
  return {
    status: outcome.status,
    runId,
    mode,
    source: tally.source,
    pairs,
    fetched: tally.fetched,
    inserted: tally.inserted,
    updated: tally.updated,
    unchanged: tally.unchanged,
    healed: tally.healed,
    conflicts: tally.conflicts,
    alerts: tally.alerts,
    undelivered: tally.undelivered,
    gaps: tally.gaps,
    warnings: tally.warnings,
    durationMs: Math.round(performance.now() - began),
    ...(outcome.error === undefined ? {} : { error: outcome.error, failedStep: outcome.failedStep }),
    failedPairs: failedPairs(tally),
    failedSources: failedSources(tally),
    ...(tally.official ? { official: tally.official } : {}),
    exitCode: outcome.status === "succeeded" ? EXIT.ok : EXIT.failure,
  };
}

// AwesomeAPI answers a multi-pair request with one error when one pair is unknown or malformed:
// these failures may belong to one pair, so each pair is then asked for on its own.
const PAIR_SPECIFIC: ReadonlySet<string> = new Set(["UNKNOWN_PAIR", "INVALID_PAYLOAD"]);

/**
 * The latest quote of every pair: one request for all, and if that answer fails because of one
 * pair, one request per pair, so that the others are still stored. A pair that fails is a
 * problem of the run; a failure of the source as a whole (network, 5xx) is thrown.
 */
async function fetchLatestOfEach(pairs: string[], options: PipelineOptions, tally: Tally): Promise<Quote[]> {
  try {
    return await fetchLatest(pairs, options);
  } catch (error) {
    if (pairs.length === 1 || !(error instanceof IngestError && PAIR_SPECIFIC.has(error.code))) throw error;
  }
  const answers = await Promise.allSettled(pairs.map((pair) => fetchLatest([pair], options)));
  const quotes: Quote[] = [];
  answers.forEach((answer, index) => {
    if (answer.status === "fulfilled") quotes.push(...answer.value);
    else tally.problems.push({ step: "fetch", pair: pairs[index]!, message: errorLine(answer.reason) });
  });
  return quotes;
}

/**
 * The latest quotes plus the days missing since the last run, all fetched before one write.
 * A pair whose gap could not be fetched stores nothing this run, not even its latest quote:
 * stored, it would hide the gap from the next run's healing.
 */
async function storeLatest(sql: Sql, pairs: string[], options: PipelineOptions, tally: Tally, onStore: () => void): Promise<void> {
  const latest = await fetchLatestOfEach(pairs, options, tally);
  const today = saoPauloDay((options.now ?? (() => new Date()))());
  const fetchedPairs = [...new Set(latest.map((quote) => quote.pair))];
  const newest = await newestStored(sql, fetchedPairs);
  const healed: Quote[] = [];
  const unhealed = new Set<string>();
  const unfilled: QuoteGap[] = [];
  for (const pair of fetchedPairs) {
    const plan = planGapHealing(pair, newest.get(pair), today);
    if (plan.unfilled) unfilled.push({ pair, ...plan.unfilled });
    if (!plan.range) continue;
    try {
      const quotes: Quote[] = [];
      for await (const chunk of dailyChunks(pair, plan.range, options)) {
        quotes.push(...chunk.quotes);
        noteConflicts(tally, chunk);
      }
      healed.push(...quotes);
    } catch (error) {
      if (!(error instanceof IngestError)) throw error;
      unhealed.add(pair);
      tally.problems.push({ step: "fetch", pair, message: `${errorLine(error)} (nothing of ${pair} is stored this run, so the next run fills the gap)` });
    }
  }
  const quotes = [...healed, ...latest.filter((quote) => !unhealed.has(quote.pair))];
  tally.healed = healed.length;
  tally.fetched = quotes.length;
  onStore();
  addCounts(tally, await saveQuotes(sql, quotes, { notify: true }));
  // Stored past it, the next run no longer sees the older gap: it is remembered until loaded.
  for (const gap of unfilled) await recordGap(sql, gap);
}

/**
 * Stores backfill batches in the background with `save` (one transaction each, with its
 * progress), so that fetching goes on meanwhile: up to `concurrency` transactions at once, but a
 * pair's batches strictly one after another, so a pair's recorded progress never runs ahead of
 * what is stored. `drain()` waits for all and throws the first failure.
 */
function backgroundWriter<Row>(concurrency: number, save: (rows: Row[], progress: BackfillStep) => Promise<void>) {
  const inFlight = new Set<Promise<void>>();
  const lastOfPair = new Map<string, Promise<void>>();
  return {
    async write(rows: Row[], progress: BackfillStep): Promise<void> {
      while (inFlight.size >= concurrency) await Promise.race(inFlight);
      const previous = lastOfPair.get(progress.pair) ?? Promise.resolve();
      const task = previous.then(() => save(rows, progress));
      lastOfPair.set(progress.pair, task);
      inFlight.add(task);
      // Settled tasks leave the set; a failure is reported by write() or drain(), never as unhandled.
      task.then(
        () => inFlight.delete(task),
        () => {},
      );
    },
    async drain(): Promise<void> {
      const results = await Promise.allSettled(lastOfPair.values());
      const failure = results.find((result) => result.status === "rejected");
      if (failure) throw failure.reason;
    },
  };
}

/**
 * Loads history, resuming where a previous run stopped. Chunks are fetched a few ahead and
 * stored in batches (by size, or every second) in the background, each batch in one
 * transaction with its pair's progress. A failed fetch first stores the complete chunks before
 * it, so a re-run carries on.
 */
async function backfill(sql: Sql, pairs: string[], range: DateRange, options: PipelineOptions, tally: Tally): Promise<void> {
  const began = performance.now();
  const batchRows = options.backfillBatchRows ?? BACKFILL_BATCH_ROWS;
  const today = saoPauloDay((options.now ?? (() => new Date()))());
  // A batch lost to a crash goes with its progress, and the re-run fetches it again.
  const writer = backgroundWriter<Quote>(BACKFILL_WRITERS, async (quotes, progress) =>
    addCounts(tally, await saveQuotes(sql, quotes, { progress, notify: true, durable: false })),
  );
  try {
    for (const [pairIndex, pair] of pairs.entries()) {
      const last = range.to < today ? range.to : today;
      if (range.from > last) continue;
      const from = await resumeFrom(sql, pair, range, last, "awesomeapi");
      let chunks = planChunks(from, last).length;
      let chunk = 0;
      const batch = backfillBatch(writer, { pair, from: range.from, to: range.to }, batchRows);
      try {
        for await (const part of dailyChunks(pair, { from, to: last }, { ...options, concurrency: BACKFILL_CONCURRENCY })) {
          tally.fetched += part.quotes.length;
          noteConflicts(tally, part);
          chunks = Math.max(chunks, ++chunk);
          await batch.add(part.quotes, part.to);
          options.onProgress?.({
            pair,
            pairIndex,
            pairCount: pairs.length,
            chunk,
            chunks,
            doneThrough: part.to,
            rows: tally.fetched,
            elapsedMs: performance.now() - began,
          });
        }
      } catch (error) {
        // The source failed for this pair: what it stored so far stays, the next pairs go on.
        if (!(error instanceof IngestError)) throw error;
        tally.problems.push({ step: "fetch", pair, message: errorLine(error) });
      } finally {
        await batch.flush();
      }
    }
  } finally {
    await writer.drain();
  }
  // Every pair whose range is stored complete: the gaps inside it are filled, as far as the API has them.
  const failed = new Set(failedPairs(tally));
  const last = range.to < today ? range.to : today;
  for (const pair of pairs) if (!failed.has(pair) && range.from <= last) await clearGaps(sql, pair, range.from, last);
}

/**
 * Where a backfill of `pair` over `range` starts: the day after its recorded progress when an
 * earlier run was interrupted; the range's start when it never ran, or when it completed (its
 * progress is forgotten: run again, a completed range is fetched again in full and only what
 * differs is written, corrections going to the revisions table).
 */
async function resumeFrom(sql: Sql, pair: string, range: DateRange, last: string, source: Source): Promise<string> {
  const doneThrough = await backfillDoneThrough(sql, pair, range.from, range.to, source);
  const completed = doneThrough !== null && doneThrough >= last;
  if (completed) await resetBackfillProgress(sql, pair, range.from, range.to, source);
  return doneThrough === null || completed ? range.from : addDays(doneThrough, 1);
}

/**
 * A pair's backfill rows gathered into large batches: handed to the writer once a batch holds
 * `batchRows` rows or a second after the last one, each with the last day it completes.
 */
function backfillBatch<Row>(writer: ReturnType<typeof backgroundWriter<Row>>, step: Omit<BackfillStep, "doneThrough">, batchRows: number) {
  let rows: Row[] = [];
  let through: string | undefined;
  let flushedAt = performance.now();
  const flush = async () => {
    if (through === undefined) return;
    const progress = { ...step, doneThrough: through };
    const batch = rows;
    rows = [];
    through = undefined;
    flushedAt = performance.now();
    await writer.write(batch, progress);
  };
  return {
    /** A chunk's rows, complete through `doneThrough`. */
    async add(chunk: readonly Row[], doneThrough: string): Promise<void> {
      for (const row of chunk) rows.push(row);
      through = doneThrough;
      if (rows.length >= batchRows || performance.now() - flushedAt >= BACKFILL_FLUSH_MS) await flush();
    },
    flush,
  };
}

// ---------------------------------------------------------------------------------------------
// The official source: BCB's PTAX bulletins

const officialTally = (tally: Tally): OfficialTally => (tally.official ??= { fetched: 0, inserted: 0, updated: 0, unchanged: 0, uncovered: [] });

/** The pairs PTAX covers, with their currency; the others are noted once, in the run's summary (not an error). */
function officialPairs(pairs: readonly string[], tally: Tally): { pair: string; currency: string }[] {
  const official = officialTally(tally);
  const covered: { pair: string; currency: string }[] = [];
  for (const pair of pairs) {
    const currency = ptaxCurrencyOf(pair);
    if (currency) covered.push({ pair, currency });
    else if (!official.uncovered.includes(pair)) official.uncovered.push(pair);
  }
  return covered;
}

/** `range`, ending today at the latest (São Paulo's day). */
function clampToToday(range: DateRange, options: PipelineOptions): DateRange {
  const today = saoPauloDay((options.now ?? (() => new Date()))());
  return { from: range.from, to: range.to < today ? range.to : today };
}

/** BCB's failures as one problem of the run, naming BCB; anything but a BcbError is thrown. */
function noteOfficialFailures(tally: Tally, failures: readonly unknown[]): void {
  const [first, ...others] = failures;
  if (first === undefined) return;
  for (const failure of failures) if (!(failure instanceof BcbError)) throw failure;
  const more = others.length > 0 ? ` (and ${others.length} more PTAX request(s) failed)` : "";
  tally.problems.push({ step: "fetch", source: "bcb", message: `${errorLine(first)}${more}` });
}

/**
 * The official bulletins of the last OFFICIAL_RECENT_DAYS days of every pair PTAX covers: one
 * request per currency, all at once. A currency that fails is a problem of the run; the others
 * are returned.
 */
async function fetchOfficialRecent(pairs: readonly string[], options: PipelineOptions, bcb: BcbOptions, tally: Tally): Promise<OfficialRate[]> {
  const today = saoPauloDay((options.now ?? (() => new Date()))());
  const range = { from: addDays(today, -(OFFICIAL_RECENT_DAYS - 1)), to: today };
  const answers = await Promise.allSettled(officialPairs(pairs, tally).map(({ currency }) => fetchPtax(currency, range, bcb)));
  noteOfficialFailures(tally, answers.flatMap((answer) => (answer.status === "rejected" ? [answer.reason] : [])));
  return answers.flatMap((answer) => (answer.status === "fulfilled" ? answer.value : []));
}

/** The cycle's official step: the recent bulletins fetched, then stored in one transaction (only what is new or corrected is written). */
async function storeOfficialRecent(sql: Sql, pairs: readonly string[], options: PipelineOptions, bcb: BcbOptions, tally: Tally, onStore: () => void): Promise<void> {
  const rates = await fetchOfficialRecent(pairs, options, bcb, tally);
  const official = officialTally(tally);
  official.fetched += rates.length;
  onStore();
  addCounts(official, await saveOfficialRates(sql, rates));
}

/**
 * Loads official history (--source bcb), as backfill() loads AwesomeAPI's: per pair, one request
 * per calendar year, a few years fetched ahead, stored in large batches in the background, each
 * with the pair's progress (official_backfill_progress), so an interrupted run resumes. A pair
 * BCB fails for keeps what was stored, and the next pairs go on.
 */
async function backfillOfficial(sql: Sql, pairs: readonly string[], range: DateRange, options: PipelineOptions, bcb: BcbOptions, tally: Tally): Promise<void> {
  const began = performance.now();
  const official = officialTally(tally);
  const covered = officialPairs(pairs, tally);
  const { to: last } = clampToToday(range, options);
  if (range.from > last) return;
  // As for quotes: a batch lost to a crash goes with its progress, and the re-run fetches it again.
  const writer = backgroundWriter<OfficialRate>(BACKFILL_WRITERS, async (rates, progress) =>
    addCounts(official, await saveOfficialRates(sql, rates, { progress, durable: false })),
  );
  try {
    for (const [pairIndex, { pair, currency }] of covered.entries()) {
      const from = await resumeFrom(sql, pair, range, last, "bcb");
      const chunks = planPtaxYears({ from, to: last }).length;
      const batch = backfillBatch(writer, { pair, from: range.from, to: range.to }, options.backfillBatchRows ?? BACKFILL_BATCH_ROWS);
      let chunk = 0;
      try {
        for await (const year of ptaxYearChunks(currency, { from, to: last }, { ...bcb, concurrency: BACKFILL_CONCURRENCY })) {
          official.fetched += year.rates.length;
          await batch.add(year.rates, year.to);
          chunk++;
          options.onProgress?.({ pair, pairIndex, pairCount: covered.length, chunk, chunks, doneThrough: year.to, rows: official.fetched, elapsedMs: performance.now() - began });
        }
      } catch (error) {
        noteOfficialFailures(tally, [error]);
      } finally {
        await batch.flush();
      }
    }
  } finally {
    await writer.drain();
  }
}

const ACTION = "complete the run";

/** One line for the person running it (or cron's mail); never a stack, never a query parameter. */
const errorLine = (error: unknown, writing = true): string => describeError(error, ACTION, { writing }).line;

// ---------------------------------------------------------------------------------------------
// Output

/** The one summary line of a run. */
export function formatSummary(run: RunSummary): string {
  const quotes =
    run.mode === "dry-run"
      ? `fetched ${run.fetched}, nothing written (dry run)`
      : `fetched ${run.fetched}, inserted ${run.inserted}, updated ${run.updated}, unchanged ${run.unchanged}` +
        (run.healed ? ` (${run.healed} from gap healing)` : "") +
        (run.conflicts ? `, ${run.conflicts} conflicting record(s) dropped` : "");
  const official = run.official ? formatOfficial(run.official, run.mode === "dry-run") : "";
  // An official backfill loads no quotes: its counts are the official ones only.
  const counts =
    run.source === "bcb" && run.official
      ? official
      : quotes + (official ? `; ${official}` : "");
  const storedAny = run.inserted + run.updated + run.unchanged + (run.official ? run.official.inserted + run.official.updated + run.official.unchanged : 0) > 0;
  const id = run.runId === null ? "" : ` [run ${run.runId}]`;
  const seconds = (run.durationMs / 1000).toFixed(1);
  if (run.status === "succeeded") return `${run.mode} ${run.pairs.join(",")} ok: ${counts} in ${seconds} s${id}`;
  if (run.status === "skipped") return `${run.mode} ${run.pairs.join(",")} skipped after ${seconds} s${id}: ${run.error}`;
  // Two sources feed a run: the line names the one that failed (its rows and the other's are counted below).
  const sources = run.failedSources.length > 0 ? ` (${run.failedSources.map((source) => SOURCE_NAMES[source]).join(", ")})` : "";
  const step = run.failedStep ? ` at the ${run.failedStep} step${sources}` : "";
  // A failed run may have stored quotes all the same: one pair's failure does not cost the
  // others, and the analysis step runs after the quotes are committed.
  const stored = storedAny ? `; stored all the same: ${counts}` : "";
  return `${run.mode} ${run.pairs.join(",")} failed${step} after ${seconds} s${id}: ${run.error}${stored}`;
}

/**
 * The official bulletins' part of the summary line, and the pairs PTAX does not cover, said
 * here, once per run, in the line a person reads (not a warning: nothing is wrong; --quiet and
 * cron print nothing of it).
 */
function formatOfficial(official: OfficialTally, dry: boolean): string {
  const counts = dry
    ? `official PTAX fetched ${official.fetched}`
    : `official PTAX fetched ${official.fetched}, inserted ${official.inserted}, updated ${official.updated}, unchanged ${official.unchanged}`;
  return official.uncovered.length > 0 ? `${counts} (PTAX does not cover ${official.uncovered.join(", ")})` : counts;
}

const PROGRESS_BAR_WIDTH = 20;
const PROGRESS_BAR_MAX_WIDTH = 40;

/**
 * A progress line for a terminal: pair, bar, chunk, rows, rate, ETA. Given the terminal's
 * width, the bar takes the room left (none on a narrow terminal) and the line never wraps,
 * which would break the redraw in place.
 */
export function formatProgress(p: BackfillProgress, columns?: number): string {
  const rate = p.elapsedMs > 0 ? Math.round((p.rows * 1000) / p.elapsedMs) : 0;
  const pairFraction = p.chunks > 0 ? p.chunk / p.chunks : 1;
  const overall = (p.pairIndex + pairFraction) / p.pairCount;
  const etaSeconds = overall > 0 ? Math.round((p.elapsedMs / overall - p.elapsedMs) / 1000) : 0;
  const eta = `${Math.floor(etaSeconds / 60)}:${String(etaSeconds % 60).padStart(2, "0")}`;
  const rest = `chunk ${p.chunk}/${p.chunks} to ${p.doneThrough}  ${p.rows.toLocaleString("en-US")} rows  ${rate.toLocaleString("en-US")} rows/s  ETA ${eta}`;
  // One column stays free: a line that fills the last column wraps on some terminals.
  const room = columns === undefined ? undefined : columns - 1;
  const width = room === undefined ? PROGRESS_BAR_WIDTH : Math.min(PROGRESS_BAR_MAX_WIDTH, room - p.pair.length - rest.length - 4);
  if (width < 5) return `${p.pair} ${rest}`.slice(0, Math.max(0, room ?? Number.POSITIVE_INFINITY));
  const filled = Math.round(overall * width);
  return `${p.pair} [${"#".repeat(filled)}${"-".repeat(width - filled)}] ${rest}`;
}

// ---------------------------------------------------------------------------------------------
// CLI

const USAGE = `Usage: bun main_pipeline.ts [options]

Runs one pipeline cycle: fetches the latest quotes of the pairs from AwesomeAPI (and the
business days missing since the last stored one, up to ${GAP_HEAL_MAX_DAYS} days back), stores them
once, runs the analysis step and records the run in pipeline_runs. Missing days further back
are printed on stderr ("gap: ...", with the backfill that loads them) by every run until loaded.
Each run also stores BCB's official PTAX bulletins of the last ${OFFICIAL_RECENT_DAYS} days for the pairs
PTAX covers (${PTAX_CURRENCIES.join(", ")} against BRL); COTACAO_OFFICIAL=off turns that off.
Either source's failure costs the other nothing: its rows are stored, and the run fails naming it.

Options:
  --pairs LIST         comma-separated pairs (default: COTACAO_PAIRS, else ${DEFAULT_PAIRS.join(",")})
  --source SOURCE      what --backfill/--from load: awesomeapi (default, daily quotes) or
                       bcb (BCB's official PTAX bulletins, one request per pair and year,
                       back to ${EARLIEST_OFFICIAL_DAY.slice(0, 4)}; whatever COTACAO_OFFICIAL says)
  --backfill DAYS      load the last DAYS days of daily history instead
  --from DATE          load daily history from DATE (YYYY-MM-DD) ...
  --to DATE            ... to DATE (default today). Run again, an interrupted backfill carries
                       on where it stopped; a completed one fetches the range again and
                       writes only what differs
  --lock-timeout DUR   wait this long for a run in progress (default 30s), then exit 75
  --every DUR          keep running, one cycle every DUR (e.g. 60s, 5m); Ctrl-C or SIGTERM
                       finish the current cycle and exit 0
  --dry-run            fetch and validate, write nothing (the database is not touched)
  --json               print the run's summary as JSON
  --quiet              print nothing for a healthy run; errors, alert lines, failed
                       webhook deliveries and unfilled gaps are still printed (cron mails them)
  -h, --help           show this help
  -V, --version        print the version and exit

Durations: 250ms, 30s, 5m, 2h (a plain number is seconds).

Each alert that fires or resolves prints one line ("alert: FIRING USD-BRL ...") and is sent
to ALERT_WEBHOOK_URLS (see bun analysis.ts --help).

Exit codes: 0 success, 1 failure (the source, a pair, the database or the analysis step;
quotes stored before the failure stay stored and the summary counts them), 2 bad usage or
configuration, 75 another run holds the lock.`;

const PairsSchema = v.pipe(
  v.string(),
  v.rawTransform(({ dataset, addIssue, NEVER }) => {
    try {
      return parsePairs(dataset.value);
    } catch (error) {
      addIssue({ message: (error as Error).message });
      return NEVER;
    }
  }),
);

/** What the command line and the environment asked for. */
export interface Invocation {
  pairs: string[];
  source: Source;
  history?: DateRange | undefined;
  lockTimeoutMs: number;
  everyMs?: number | undefined;
  dryRun: boolean;
  json: boolean;
  quiet: boolean;
  help: boolean;
}

/** Reads and checks the flags (and COTACAO_PAIRS) before any I/O; throws a one-line USAGE error. */
const FLAGS = {
  pairs: { type: "string" },
  source: { type: "string" },
  backfill: { type: "string" },
  from: { type: "string" },
  to: { type: "string" },
  "lock-timeout": { type: "string" },
  every: { type: "string" },
  "dry-run": { type: "boolean" },
  json: { type: "boolean" },
  quiet: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

const usage = (message: string) => usageError(message, "main_pipeline.ts");

export function parseInvocation(args: string[], env: Record<string, string | undefined>, today: string): Invocation {
  const values = readFlags(args, FLAGS, "main_pipeline.ts");
  const base = { dryRun: !!values["dry-run"], json: !!values.json, quiet: !!values.quiet, help: !!values.help };
  if (base.help) return { ...base, pairs: [...DEFAULT_PAIRS], source: "awesomeapi", lockTimeoutMs: DEFAULT_LOCK_TIMEOUT_MS };

  const pairsText = values.pairs ?? (env["COTACAO_PAIRS"]?.trim() || DEFAULT_PAIRS.join(","));
  const pairs = v.safeParse(PairsSchema, pairsText);
  if (!pairs.success) {
    throw usage(`${values.pairs === undefined ? "COTACAO_PAIRS" : "--pairs"}: ${pairs.issues[0].message}`);
  }
  const duration = (flag: string, text: string | undefined, [min, max]: readonly [number, number]) => {
    if (text === undefined) return undefined;
    const ms = parseDuration(text);
    if (ms === undefined) throw usage(`--${flag} must be a duration like 30s, 5m or 2h, got "${text}"`);
    if (ms < min || ms > max) throw usage(`--${flag} must be between ${formatDuration(min)} and ${formatDuration(max)}, got "${text}"`);
    return ms;
  };
  const lockTimeoutMs = duration("lock-timeout", values["lock-timeout"], LOCK_TIMEOUT_BOUNDS_MS) ?? DEFAULT_LOCK_TIMEOUT_MS;
  const everyMs = duration("every", values.every, EVERY_BOUNDS_MS);
  if (values.json && values.quiet) throw usage("--json and --quiet do not go together: choose one");
  const source = values.source ?? "awesomeapi";
  if (source !== "awesomeapi" && source !== "bcb") throw usage(`--source must be awesomeapi or bcb, got "${source}"`);
  // Each source's history starts where it has one.
  const earliest = source === "bcb" ? EARLIEST_OFFICIAL_DAY : EARLIEST_HISTORY_DAY;

  let history: DateRange | undefined;
  if (values.backfill !== undefined) {
    if (values.from !== undefined || values.to !== undefined) throw usage("--backfill and --from/--to do not go together: choose one");
    const maxDays = dayNumber(today) - dayNumber(earliest);
    if (!/^\d+$/.test(values.backfill) || Number(values.backfill) < 1 || Number(values.backfill) > maxDays) {
      throw usage(`--backfill takes a number of days from 1 to ${maxDays} (back to ${earliest}), got "${values.backfill}"`);
    }
    history = { from: addDays(today, -Number(values.backfill)), to: today };
  } else if (values.from !== undefined) {
    history = { from: values.from, to: values.to ?? today };
    for (const [flag, day] of [["--from", history.from], ["--to", history.to]] as const) {
      if (!isCalendarDate(day)) throw usage(`${flag} must be a date like 2024-08-23, got "${day}"`);
    }
    if (history.from < earliest) throw usage(`--from must not be before ${earliest}, got "${history.from}"`);
    if (history.from > history.to) throw usage(`--from (${history.from}) is after --to (${history.to})`);
    if (history.from > today) throw usage(`--from (${history.from}) is in the future`);
  } else if (values.to !== undefined) {
    throw usage("--to needs --from");
  }
  if (history && everyMs !== undefined) throw usage("--every repeats the latest-quote cycle; it does not go with a backfill");
  if (source === "bcb") {
    if (!history) throw usage("--source bcb loads official history: give it --from DATE [--to DATE] or --backfill DAYS");
    if (!pairs.output.some((pair) => ptaxCurrencyOf(pair))) {
      throw usage(`--source bcb: PTAX covers none of ${pairs.output.join(", ")}; it publishes ${PTAX_CURRENCIES.join(", ")} against BRL (e.g. --pairs USD-BRL)`);
    }
  }
  return { ...base, pairs: pairs.output, source, history, lockTimeoutMs, everyMs };
}

/** Prints a run the way the flags ask; errors always reach stderr. */
function report(run: RunSummary, invocation: Invocation): void {
  if (invocation.json) console.log(JSON.stringify(run));
  else if (!invocation.quiet && run.status === "succeeded") console.log(formatSummary(run));
  // An alert is news even in cron's quiet mode.
  if (!invocation.json) for (const alert of run.alerts) console.log(`alert: ${alert}`);
  if (run.status !== "succeeded") console.error(invocation.json ? run.error : formatSummary(run));
  // A webhook that fails loses alerts: say so even in quiet mode, so that cron mails it.
  if (!invocation.json) for (const line of run.undelivered) console.error(`webhook: ${line}`);
  // What the person must do: every run says it, even in quiet mode, until it is done.
  if (!invocation.json) for (const line of run.gaps ?? []) console.error(`gap: ${line}`);
  if (!invocation.quiet && !invocation.json) for (const warning of run.warnings) console.error(`warning: ${warning}`);
}

/** Sleeps `ms`, or less if `signal` fires. */
function sleepUnless(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => (clearTimeout(timer), resolve()), { once: true });
  });
}

/**
 * Connects, runs one cycle and disconnects. A connection of its own per cycle: with --every, a
 * cycle after the database went away reconnects (and restarts the embedded server).
 */
async function connectAndRun(database: DatabaseConfig, options: PipelineOptions): Promise<RunSummary> {
  const began = performance.now();
  // A safety net, not a timeout: a query that never settles holds a run forever, and Bun spins on
  // a wait nothing can end (postgres.js did that when the server died as a cycle connected; fixed
  // in .patches/). A latest-quote run takes seconds; one still going after this is ended, exit 1,
  // so that cron jobs cannot pile up.
  const deadline = options.history
    ? undefined
    : setTimeout(() => {
        console.error(`Cannot complete the run: it did not finish within ${formatDuration(RUN_DEADLINE_MS)}; stopped (check the database: bun database.ts status)`);
        process.exit(EXIT.failure);
      }, RUN_DEADLINE_MS);
  deadline?.unref();
  try {
    return await connectAndRunOnce(database, options, began);
  } finally {
    clearTimeout(deadline);
  }
}

async function connectAndRunOnce(database: DatabaseConfig, options: PipelineOptions, began: number): Promise<RunSummary> {
  let sql: Sql;
  try {
    // The lock's session, the run's own queries, and the backfill's writers.
    sql = await connect(database, { max: BACKFILL_WRITERS + 2 });
  } catch (error) {
    const tally = emptyTally(options.source);
    tally.problems.push({ step: "start", message: errorLine(error, false) });
    return { ...summary(null, options.history ? "backfill" : "latest", [...options.pairs], tally, began), exitCode: describeError(error, ACTION).exitCode };
  }
  try {
    return await runPipeline(sql, options);
  } finally {
    // Every query has been awaited: ending only says goodbye, and a dead server will not answer it.
    await sql.end({ timeout: 1 });
  }
}

/** Runs the CLI and returns its exit code. */
export async function main(args: string[], env: Record<string, string | undefined> = process.env): Promise<number> {
  let invocation: Invocation;
  let ingest: IngestOptions;
  let analysis: AnalysisConfig;
  let database: DatabaseConfig;
  let bcb: ReturnType<typeof loadBcbConfig>;
  try {
    invocation = parseInvocation(args, env, saoPauloDay(new Date()));
    if (invocation.help) {
      console.log(USAGE);
      return EXIT.ok;
    }
    ingest = loadIngestConfig(env);
    analysis = loadAnalysisConfig(env);
    database = loadDatabaseConfig(env);
    bcb = loadBcbConfig(env);
  } catch (error) {
    return printDescribed(describeError(error, "start"));
  }
  const progressOnTty = process.stderr.isTTY && !invocation.quiet && !invocation.json;
  const options: PipelineOptions = {
    ...ingest,
    pairs: invocation.pairs,
    source: invocation.source,
    // COTACAO_OFFICIAL=off stops the cycle's official step; an official backfill asked for by name runs all the same.
    official: bcb.official || invocation.source === "bcb" ? { baseUrl: bcb.baseUrl } : undefined,
    history: invocation.history,
    lockTimeoutMs: invocation.lockTimeoutMs,
    analysis,
    onProgress: progressOnTty ? (progress) => process.stderr.write(`\r\x1b[2K${formatProgress(progress, process.stderr.columns)}`) : undefined,
  };
  const clearProgress = () => progressOnTty && invocation.history && process.stderr.write("\r\x1b[2K");

  if (invocation.everyMs === undefined) {
    const run = invocation.dryRun ? await dryRun(options) : await connectAndRun(database, options);
    clearProgress();
    report(run, invocation);
    return run.exitCode;
  }
  // --every: a signal ends the wait at once, or the loop after the cycle in progress.
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    while (!stop.signal.aborted) {
      const began = Date.now();
      report(invocation.dryRun ? await dryRun(options) : await connectAndRun(database, options), invocation);
      await sleepUnless(Math.max(0, invocation.everyMs - (Date.now() - began)), stop.signal);
    }
    return EXIT.ok;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

if (import.meta.main) {
  process.exitCode = await main(Bun.argv.slice(2));
}
