/**
 * analysis.ts: the alerts the moving-average rule raises (and staleness alerts): their episodes,
 * their lifecycle in PostgreSQL and the webhook notifications they write. The rule's maths and
 * settings are in lib/rule.ts (the dashboard and the monitor read them too), the delivery of the
 * notifications in lib/webhooks.ts, the forex market's clock in lib/calendar.ts.
 *
 * The rule, exactly: a pair's daily series holds, for each São Paulo calendar day that has
 * quotes, the bid of that day's latest quote. The moving average of day d is the mean of the
 * series over the days in [d - W, d) (W calendar days before d, d excluded), W = 20 by default;
 * with fewer than 10 values there it is "insufficient history", never an alert. The deviation
 * is close / average - 1; a day is anomalous when |deviation| > threshold (3 % by default,
 * strictly). The newest quote of the current day is that day's close so far.
 *
 * The divergence alert compares each business day's closing PTAX (the official rate, BCB) with
 * AwesomeAPI's quote nearest to it (lib/views.ts divergenceSeries(), the README's rule): it fires
 * when |divergence| > COTACAO_DIVERGENCE_PCT (1.5 % by default, strictly) and resolves under the
 * recovery share of that, with the deviation alert's lifecycle.
 *
 * Staleness counts forex market time (Sunday 17:00 to Friday 17:00 New York time). Webhook
 * notifications are written with their transition and delivered by rounds with a time budget,
 * retried across runs (see lib/webhooks.ts's deliverPending()).
 *
 * CLI: `bun analysis.ts [--pair P] [--json]`, `--rescan`, `--days --pair P --json`,
 * `--test-webhook` (see --help).
 */
import type postgres from "postgres";
import * as v from "valibot";
import { formatSaoPauloTime, isStale, SAO_PAULO_TIME_ZONE, saoPauloDay } from "./lib/calendar.ts";
import { printDescribed, readFlags } from "./lib/cli.ts";
import { connect, loadDatabaseConfig } from "./lib/connect.ts";
import type { Sql } from "./lib/pool.ts";
import { CotacaoError, describeError, EXIT, usageError } from "./lib/errors.ts";
import { notifyChange } from "./lib/feed.ts";
import { sha256 } from "./lib/hash.ts";
import { migrate } from "./lib/migrations.ts";
import { PairSchema } from "./lib/quote.ts";
import { addRule, describeRule, listRules, parseRuleWords, removeRule, type Rule } from "./lib/alert_rules.ts";
import {
  type AnalysisConfig,
  type DivergenceParams,
  divergenceParamsFor,
  evaluateSeries,
  type Evaluation,
  loadAnalysisConfig,
  paramsFor,
  type RuleParams,
} from "./lib/rule.ts";
import {
  CROSS_CHECK_WINDOW_MINUTES,
  DIVERGENCE_SCALE,
  type DivergencePoint,
  divergenceSeries,
  loadDailySeries,
  officialCloses,
  storedPairs,
  type StoredSeries,
} from "./lib/views.ts";
import {
  type AlertKind,
  type AlertTransition,
  deliverPending,
  type DeliveryOptions,
  type DeliveryReport,
  endpointOf,
  sendTestNotifications,
} from "./lib/webhooks.ts";



// ---------------------------------------------------------------------------------------------
// Episodes (pure)

export type Direction = "up" | "down";

/** One point the alert lifecycle looks at: a day's close (or today's newest quote) and the rule's verdict. */
export interface RulePoint {
  at: Date;
  /** The close as stored, exact. */
  price: string;
  average: number;
  deviation: number;
  /** The rule's verdict: |deviation| > threshold. */
  anomalous: boolean;
}

/** A deviation alert as the lifecycle sees it. */
export interface DeviationEpisode {
  direction: Direction;
  startedAt: Date;
  price: string;
  average: number;
  deviation: number;
  peakDeviation: number;
  peakAt: Date;
  lastSeenAt: Date;
  resolvedAt: Date | null;
}

/**
 * One step of a deviation alert's life. Closed: it opens when |deviation| > threshold. Open: it
 * stays open, recording its peak, while |deviation| stays at or above the recovery level on the
 * same side; it resolves below that level, or when history becomes insufficient. A jump to the
 * other side beyond the threshold resolves it and opens another.
 */
function stepDeviation(
  open: DeviationEpisode | null,
  point: RulePoint,
  params: Pick<RuleParams, "recovery">,
): { open: DeviationEpisode | null; resolved?: DeviationEpisode; opened?: DeviationEpisode } {
  const known = !Number.isNaN(point.deviation);
  const magnitude = Math.abs(point.deviation);
  const direction: Direction = point.deviation > 0 ? "up" : "down";
  const beyond = known && point.anomalous;
  if (open) {
    const holds = known && direction === open.direction && magnitude >= params.recovery;
    if (holds) {
      const peak = magnitude > Math.abs(open.peakDeviation);
      return {
        open: {
          ...open,
          lastSeenAt: point.at,
          peakDeviation: peak ? point.deviation : open.peakDeviation,
          peakAt: peak ? point.at : open.peakAt,
        },
      };
    }
    const resolved = { ...open, resolvedAt: point.at };
    if (!beyond) return { open: null, resolved };
    const opened = openEpisode(point, direction);
    return { open: opened, resolved, opened };
  }
  if (!beyond) return { open: null };
  const opened = openEpisode(point, direction);
  return { open: opened, opened };
}

function openEpisode(point: RulePoint, direction: Direction): DeviationEpisode {
  return {
    direction,
    startedAt: point.at,
    price: point.price,
    average: point.average,
    deviation: point.deviation,
    peakDeviation: point.deviation,
    peakAt: point.at,
    lastSeenAt: point.at,
    resolvedAt: null,
  };
}

/** Every deviation episode over a series of points, oldest first; the last may still be open. */
export function findEpisodes(points: readonly RulePoint[], params: Pick<RuleParams, "recovery">): DeviationEpisode[] {
  const episodes: DeviationEpisode[] = [];
  let open: DeviationEpisode | null = null;
  for (const point of points) {
    const step = stepDeviation(open, point, params);
    if (step.resolved) episodes.push(step.resolved);
    open = step.open;
  }
  if (open) episodes.push(open);
  return episodes;
}

// ---------------------------------------------------------------------------------------------
// The daily series the rule looks at

/**
 * The days the alert lifecycle looks at (from the last day it evaluated, or the newest day) and
 * the window before them: a pair with decades of history costs a few dozen index probes.
 */
async function recentSeries(sql: Sql, pair: string, params: RuleParams): Promise<StoredSeries> {
  const [state] = await sql<{ evaluated: string }[]>`select evaluated_day::text as evaluated from alert_state where pair = ${pair}`;
  return loadDailySeries(sql, pair, { since: state?.evaluated ?? null, daysBefore: params.windowDays });
}

/** The points the alert lifecycle sees, from `index` on. */
function rulePoints(series: StoredSeries, evaluation: Evaluation, from = 0): RulePoint[] {
  const points: RulePoint[] = [];
  for (let i = from; i < series.ats.length; i++) {
    points.push({
      at: series.ats[i]!,
      price: series.closeTexts[i]!,
      average: evaluation.average[i]!,
      deviation: evaluation.deviation[i]!,
      anomalous: evaluation.anomalous[i] === 1,
    });
  }
  return points;
}

// ---------------------------------------------------------------------------------------------
// The cross-check the divergence alert looks at

/**
 * The cross-check's days as points of the alert lifecycle: at the closing PTAX's time, the
 * AwesomeAPI bid compared (price), the closing buy rate (in the average's place: what the price is
 * measured against) and the divergence as a fraction. Beyond the threshold is decided in percent,
 * on the divergence as the rule writes it, so one exactly at the line is not beyond it.
 */
export function divergencePoints(days: readonly DivergencePoint[], params: DivergenceParams): RulePoint[] {
  return days.map((day) => {
    const pct = Number(day.divergencePct);
    return { at: new Date(day.publishedAt), price: day.bid, average: Number(day.buy), deviation: pct / 100, anomalous: Math.abs(pct) > params.thresholdPct };
  });
}

/** The recovery level of the divergence lifecycle, as a fraction like its points' divergences. */
const divergenceRecovery = (params: DivergenceParams) => ({ recovery: params.recoveryPct / 100 });

/**
 * The cross-check days the divergence alert looks at: from the last day it evaluated (again: a
 * quote nearer the closing may have come), or the first time the newest day only (history is
 * --rescan's job), looked for among the last ten days with a closing PTAX.
 */
async function recentDivergences(sql: Sql, pair: string): Promise<DivergencePoint[]> {
  const [state] = await sql<{ day: string | null }[]>`select divergence_day::text as day from alert_state where pair = ${pair}`;
  if (state?.day) return divergenceSeries(sql, pair, state.day, null);
  const [newest] = await sql<{ since: string | null }[]>`
    select to_char((max(published_at) at time zone ${SAO_PAULO_TIME_ZONE})::date - 10, 'YYYY-MM-DD') as since
    from official_rates where pair = ${pair} and bulletin = 'closing'`;
  if (!newest?.since) return [];
  return (await divergenceSeries(sql, pair, newest.since, null)).slice(-1);
}

// ---------------------------------------------------------------------------------------------
// Alerts in PostgreSQL

type Tx = Sql | postgres.TransactionSql;

/** A stored alert, as the CLI and the webhooks show it. */
export interface Alert {
  id: number;
  pair: string;
  kind: AlertKind;
  direction: Direction | null;
  status: "firing" | "resolved";
  startedAt: Date;
  lastSeenAt: Date;
  resolvedAt: Date | null;
  price: string | null;
  average: number | null;
  deviation: number | null;
  peakDeviation: number | null;
  peakAt: Date | null;
  threshold: number | null;
  windowDays: number | null;
  fingerprint: string;
  /** When a run saw it fire; null for an episode a rescan found in history. */
  firedSeenAt: Date | null;
  /** When a run saw it resolve; null while firing or for history. */
  resolvedSeenAt: Date | null;
}

/** A change of an alert's state: what is printed and sent. */
export interface Transition {
  transition: AlertTransition;
  alert: Alert;
}

/**
 * An alert's stable identity: pair, kind, direction and start, and for the n-th later episode
 * with that same start (a corrected quote that fires again) "#n". History gives episode 0 (one
 * episode per start), so a rescan finds the same fingerprints every time.
 */
function fingerprintOf(pair: string, kind: string, direction: string | null, startedAt: Date, episode = 0): string {
  const key = `${pair}|${kind}|${direction ?? ""}|${startedAt.toISOString()}${episode > 0 ? `#${episode}` : ""}`;
  return sha256(key).slice(0, 16);
}

/** The fingerprint of a new episode: the first of episode 0, 1, 2... that no stored alert has. */
async function freshFingerprint(tx: Tx, pair: string, kind: Alert["kind"], direction: Direction | null, startedAt: Date): Promise<string> {
  for (let episode = 0; ; episode++) {
    const fingerprint = fingerprintOf(pair, kind, direction, startedAt, episode);
    const [taken] = await tx`select 1 from alerts where fingerprint = ${fingerprint}`;
    if (!taken) return fingerprint;
  }
}

const ALERT_COLUMNS = `id::int, pair, kind, direction, status, started_at as "startedAt", last_seen_at as "lastSeenAt",
  resolved_at as "resolvedAt", price::text, average, deviation, peak_deviation as "peakDeviation", peak_at as "peakAt",
  threshold, window_days as "windowDays", fingerprint, fired_seen_at as "firedSeenAt", resolved_seen_at as "resolvedSeenAt"`;

async function openAlert(tx: Tx, pair: string, kind: Alert["kind"]): Promise<Alert | undefined> {
  // unsafe: ALERT_COLUMNS is this file's constant column list; no input reaches it.
  const [alert] = await tx<Alert[]>`
    select ${tx.unsafe(ALERT_COLUMNS)} from alerts where pair = ${pair} and kind = ${kind} and status = 'firing'`;
  return alert;
}

function episodeOf(alert: Alert): DeviationEpisode {
  return {
    direction: alert.direction ?? "up",
    startedAt: alert.startedAt,
    price: alert.price ?? "0",
    average: alert.average ?? Number.NaN,
    deviation: alert.deviation ?? Number.NaN,
    peakDeviation: alert.peakDeviation ?? 0,
    peakAt: alert.peakAt ?? alert.startedAt,
    lastSeenAt: alert.lastSeenAt,
    resolvedAt: alert.resolvedAt,
  };
}

/** The kinds of alert that are episodes of a measure beyond a line, with a direction and a peak. */
type EpisodeKind = "deviation" | "divergence";

/** The setting stored with an episode: its threshold (a fraction) and, for a deviation, the window. */
interface EpisodeSettings {
  threshold: number;
  windowDays: number | null;
}

async function insertEpisode(tx: Tx, pair: string, kind: EpisodeKind, episode: DeviationEpisode, settings: EpisodeSettings, seenAt: Date): Promise<Alert> {
  const fingerprint = await freshFingerprint(tx, pair, kind, episode.direction, episode.startedAt);
  // unsafe: ALERT_COLUMNS is this file's constant column list; no input reaches it.
  const [alert] = await tx<Alert[]>`
    insert into alerts (pair, kind, direction, status, started_at, last_seen_at, resolved_at, price, average,
                        deviation, peak_deviation, peak_at, threshold, window_days, fingerprint, fired_seen_at)
    values (${pair}, ${kind}, ${episode.direction}, ${episode.resolvedAt ? "resolved" : "firing"},
            ${episode.startedAt}, ${episode.lastSeenAt}, ${episode.resolvedAt}, ${episode.price}::numeric,
            ${episode.average}, ${episode.deviation}, ${episode.peakDeviation}, ${episode.peakAt},
            ${settings.threshold}, ${settings.windowDays}::int, ${fingerprint}, ${seenAt})
    returning ${tx.unsafe(ALERT_COLUMNS)}`;
  return alert!;
}

async function updateDeviation(tx: Tx, id: number, episode: DeviationEpisode, seenAt: Date): Promise<Alert> {
  // unsafe: ALERT_COLUMNS is this file's constant column list; no input reaches it.
  const [alert] = await tx<Alert[]>`
    update alerts
    set last_seen_at = ${episode.lastSeenAt}, peak_deviation = ${episode.peakDeviation}, peak_at = ${episode.peakAt},
        resolved_at = ${episode.resolvedAt}, status = ${episode.resolvedAt ? "resolved" : "firing"},
        resolved_seen_at = ${episode.resolvedAt ? seenAt : null}
    where id = ${id}
    returning ${tx.unsafe(ALERT_COLUMNS)}`;
  return alert!;
}

// ---------------------------------------------------------------------------------------------
// Notifications

const percent = (fraction: number | null) => (fraction === null || Number.isNaN(fraction) ? "?" : `${(fraction * 100).toFixed(2)}%`);
/** A deviation for people: signed, two decimals of a percent. */
const signedPercent = (fraction: number | null) => (fraction === null || Number.isNaN(fraction) ? "?" : `${fraction > 0 ? "+" : ""}${percent(fraction)}`);
/** A computed price (an average) for people: four decimals, like the quotes. */
const price = (value: number | null) => (value === null || Number.isNaN(value) ? "?" : value.toFixed(4));

/**
 * An official rate kept as a float (a divergence alert's `average`) for people: four decimals like
 * the quotes, or every digit it has when it has more (a yen is a few hundredths of a real: 0.046231).
 */
const officialRate = (value: number | null) => {
  if (value === null || Number.isNaN(value)) return "?";
  const digits = String(value).split(".")[1]?.length ?? 0;
  return digits > 4 ? String(value) : value.toFixed(4);
};

/** Two instants for people, with seconds when the minutes alone would read the same. */
function twoTimes(first: Date, second: Date): [string, string] {
  const plain: [string, string] = [formatSaoPauloTime(first), formatSaoPauloTime(second)];
  if (plain[0] !== plain[1] || first.getTime() === second.getTime()) return plain;
  return [formatSaoPauloTime(first, { seconds: true }), formatSaoPauloTime(second, { seconds: true })];
}

/**
 * The one line a transition prints, and the text of its webhook message; times in São Paulo.
 * A RESOLVED line says when a run saw the alert fire and resolve (one quote can do both, when
 * the API corrects it), and falls back to the quotes' times for alerts stored before that.
 */
export function describeTransition({ transition, alert }: Transition): string {
  const state = transition === "firing" ? "FIRING" : "RESOLVED";
  if (alert.kind === "stale") {
    if (transition === "firing") return `${state} ${alert.pair} stale: no new quote since ${formatSaoPauloTime(alert.lastSeenAt)}`;
    const [from, to] = twoTimes(alert.startedAt, alert.resolvedAt ?? alert.startedAt);
    return `${state} ${alert.pair} stale: quotes arrive again (stale from ${from} to ${to})`;
  }
  if (alert.kind === "divergence") return describeDivergence(state, { transition, alert });
  const side = alert.direction === "up" ? "above" : "below";
  const window = `${alert.windowDays}-day average`;
  if (transition === "firing") {
    return `${state} ${alert.pair} ${alert.price} is ${percent(Math.abs(alert.deviation ?? Number.NaN))} ${side} its ${window} ${price(alert.average)} (threshold ${percent(alert.threshold)}; quote of ${formatSaoPauloTime(alert.startedAt)})`;
  }
  const peak = `peak ${signedPercent(alert.peakDeviation)} with the quote of ${formatSaoPauloTime(alert.peakAt ?? alert.startedAt)}`;
  if (alert.firedSeenAt && alert.resolvedSeenAt) {
    const [fired, resolved] = twoTimes(alert.firedSeenAt, alert.resolvedSeenAt);
    return `${state} ${alert.pair} back near its ${window} (${peak}); fired ${fired}, resolved ${resolved}`;
  }
  const [fired, resolved] = twoTimes(alert.startedAt, alert.resolvedAt ?? alert.startedAt);
  return `${state} ${alert.pair} back near its ${window} (${peak}); fired with the quote of ${fired}, resolved with the quote of ${resolved}`;
}

/**
 * A divergence alert's line: the divergence, from which closing PTAX, the AwesomeAPI bid it was
 * measured on; a RESOLVED line as a deviation's, with the closing PTAX's times.
 */
function describeDivergence(state: string, { transition, alert }: Transition): string {
  if (transition === "firing") {
    return `${state} ${alert.pair} divergence ${signedPercent(alert.deviation)} from PTAX ${officialRate(alert.average)}: AwesomeAPI bid ${alert.price} (threshold ${percent(alert.threshold)}; closing PTAX of ${formatSaoPauloTime(alert.startedAt)})`;
  }
  const peak = `peak ${signedPercent(alert.peakDeviation)} with the closing PTAX of ${formatSaoPauloTime(alert.peakAt ?? alert.startedAt)}`;
  if (alert.firedSeenAt && alert.resolvedSeenAt) {
    const [fired, resolved] = twoTimes(alert.firedSeenAt, alert.resolvedSeenAt);
    return `${state} ${alert.pair} divergence: back near PTAX (${peak}); fired ${fired}, resolved ${resolved}`;
  }
  const [fired, resolved] = twoTimes(alert.startedAt, alert.resolvedAt ?? alert.startedAt);
  return `${state} ${alert.pair} divergence: back near PTAX (${peak}); fired with the closing PTAX of ${fired}, resolved with the closing PTAX of ${resolved}`;
}

/** The alert's name for Alertmanager receivers, by kind. */
const ALERT_NAMES: Record<AlertKind, string> = { deviation: "QuoteDeviation", stale: "QuotesStale", divergence: "QuoteDivergence" };

/**
 * The JSON a webhook receives: `text` (Slack) and `content` (Discord) hold the readable line;
 * the rest follows Alertmanager's webhook shape, with a stable fingerprint.
 */
export function webhookPayload(change: Transition): Record<string, unknown> {
  const { transition, alert } = change;
  const line = describeTransition(change);
  const labels = {
    alertname: ALERT_NAMES[alert.kind],
    pair: alert.pair,
    kind: alert.kind,
    ...(alert.direction ? { direction: alert.direction } : {}),
  };
  return {
    text: line,
    content: line,
    receiver: "cotacao",
    status: transition,
    version: "4",
    groupKey: `${alert.pair}:${alert.kind}`,
    commonLabels: labels,
    alerts: [
      {
        status: transition,
        labels,
        annotations: { summary: line },
        startsAt: alert.startedAt.toISOString(),
        endsAt: alert.resolvedAt?.toISOString() ?? "0001-01-01T00:00:00Z",
        fingerprint: alert.fingerprint,
      },
    ],
    pair: alert.pair,
    kind: alert.kind,
    direction: alert.direction,
    startedAt: alert.startedAt.toISOString(),
    endedAt: alert.resolvedAt?.toISOString() ?? null,
    price: alert.price,
    average: alert.average,
    deviation: alert.deviation,
    peakDeviation: alert.peakDeviation,
    threshold: alert.threshold,
    windowDays: alert.windowDays,
    fingerprint: alert.fingerprint,
  };
}

async function enqueue(tx: Tx, change: Transition, webhookUrls: readonly string[], now: Date): Promise<void> {
  // Listeners (the dashboard, monitor.ts --watch) hear of it when the transition commits.
  await notifyChange(tx, { kind: "alert", id: change.alert.id, pair: change.alert.pair, transition: change.transition });
  const payload = webhookPayload(change);
  for (const url of webhookUrls) {
    await tx`
      insert into alert_notifications (alert_id, transition, endpoint, payload, created_at)
      values (${change.alert.id}, ${change.transition}, ${endpointOf(url)}, ${tx.json(payload as postgres.JSONValue)}, ${now})
      on conflict (alert_id, transition, endpoint) do nothing`;
  }
}

// ---------------------------------------------------------------------------------------------
// The analysis step

/** What one analysis pass did. */
export interface AnalysisSummary {
  pairs: string[];
  transitions: Transition[];
  delivery: DeliveryReport;
}

export interface AnalyseOptions extends DeliveryOptions {
  /** The rule's settings: loadAnalysisConfig(env) in a script's main(). */
  config: AnalysisConfig;
  /**
   * Deliver pending notifications after the analysis (true by default). The pipeline passes
   * false to analyse inside its lock, then calls deliverPending() itself once it is released.
   */
  deliver?: boolean;
  /**
   * Fire and resolve staleness alerts (true by default). A backfill passes false: it did not ask
   * for the latest quotes, so how old the newest stored one is says nothing about the feed.
   */
  staleness?: boolean;
}

/**
 * The pipeline's analysis step: for each pair, looks at the days since the rule last looked
 * (the last of them again: its close may have moved), moves its deviation alert through its
 * lifecycle, fires or resolves its staleness alert, moves its divergence alert through the
 * cross-check's days since it last looked (the newest official closes), and records each transition for delivery
 * in the same transaction. Then, unless `deliver` is false, delivers what is pending (see
 * deliverPending()). Running it again over the same data changes nothing.
 */
export async function analyse(sql: Sql, pairs: readonly string[], options: AnalyseOptions): Promise<AnalysisSummary> {
  const { config } = options;
  const now = (options.now ?? (() => new Date()))();
  const transitions: Transition[] = [];
  for (const pair of pairs) {
    const params = paramsFor(config, pair);
    const series = await recentSeries(sql, pair, params);
    if (series.dates.length === 0) continue;
    const evaluation = evaluateSeries(series, params);
    const crossCheck = await recentDivergences(sql, pair);
    await sql.begin(async (tx) => {
      await tx`select pg_advisory_xact_lock(hashtext(${`cotacao:alerts:${pair}`}))`;
      transitions.push(...(await advanceDeviation(tx, pair, series, evaluation, params, config.webhookUrls, now)));
      if (options.staleness !== false) transitions.push(...(await advanceStaleness(tx, pair, series.ats.at(-1), now, config)));
      transitions.push(...(await advanceDivergence(tx, pair, crossCheck, divergenceParamsFor(config, pair), config.webhookUrls, now)));
    });
  }
  const delivery =
    options.deliver === false
      ? { delivered: 0, pending: [], failed: [] }
      : await deliverPending(sql, config.webhookUrls, { ...options, giveUpAfterMs: options.giveUpAfterMs ?? config.webhookGiveUpAfterMs });
  return { pairs: [...pairs], transitions, delivery };
}

async function advanceDeviation(
  tx: Tx,
  pair: string,
  series: StoredSeries,
  evaluation: Evaluation,
  params: RuleParams,
  webhookUrls: readonly string[],
  now: Date,
): Promise<Transition[]> {
  if (series.dates.length === 0) return [];
  const [state] = await tx<{ day: string }[]>`select evaluated_day::text as day from alert_state where pair = ${pair}`;
  // The first time, only the newest day matters: history is --rescan's job, and must not page anyone.
  const last = series.dates.length - 1;
  const from = state ? series.dates.findIndex((date) => date >= state.day) : last;
  const points = rulePoints(series, evaluation, from === -1 ? last : from);
  const transitions = await advanceEpisodes(tx, pair, "deviation", points, params, params, now);
  await tx`
    insert into alert_state (pair, evaluated_day) values (${pair}, ${series.dates.at(-1)!})
    on conflict (pair) do update set evaluated_day = excluded.evaluated_day, updated_at = now()`;
  for (const change of transitions) await enqueue(tx, change, webhookUrls, now);
  return transitions;
}

/** Moves `pair`'s open alert of `kind` (deviation or divergence) through `points`: what fired and resolved. */
async function advanceEpisodes(
  tx: Tx,
  pair: string,
  kind: EpisodeKind,
  points: readonly RulePoint[],
  levels: Pick<RuleParams, "recovery">,
  settings: EpisodeSettings,
  now: Date,
): Promise<Transition[]> {
  const current = await openAlert(tx, pair, kind);
  let open: DeviationEpisode | null = current ? episodeOf(current) : null;
  let openId = current?.id;
  const transitions: Transition[] = [];
  for (const point of points) {
    const step = stepDeviation(open, point, levels);
    if (step.resolved && openId !== undefined) {
      const alert = await updateDeviation(tx, openId, step.resolved, now);
      transitions.push({ transition: "resolved", alert });
      openId = undefined;
    }
    if (step.opened) {
      const alert = await insertEpisode(tx, pair, kind, step.opened, settings, now);
      transitions.push({ transition: "firing", alert });
      openId = alert.id;
    } else if (step.open && openId !== undefined) {
      await updateDeviation(tx, openId, step.open, now);
    }
    open = step.open;
  }
  return transitions;
}

/**
 * Moves `pair`'s divergence alert through the cross-check's days it has not looked at yet (the
 * last one again), as advanceDeviation() does with the closes. A day without a closing PTAX or
 * without a quote to compare has no row in `days`: it neither opens nor resolves anything.
 */
async function advanceDivergence(
  tx: Tx,
  pair: string,
  days: readonly DivergencePoint[],
  params: DivergenceParams,
  webhookUrls: readonly string[],
  now: Date,
): Promise<Transition[]> {
  if (days.length === 0) return [];
  const [state] = await tx<{ day: string | null }[]>`select divergence_day::text as day from alert_state where pair = ${pair}`;
  const from = state?.day ? days.findIndex((day) => day.day >= state.day!) : days.length - 1;
  if (from === -1) return [];
  const points = divergencePoints(days.slice(from), params);
  const transitions = await advanceEpisodes(tx, pair, "divergence", points, divergenceRecovery(params), { threshold: params.thresholdPct / 100, windowDays: null }, now);
  // The deviation step of this same transaction has written the pair's row.
  await tx`update alert_state set divergence_day = ${days.at(-1)!.day}, updated_at = now() where pair = ${pair}`;
  for (const change of transitions) await enqueue(tx, change, webhookUrls, now);
  return transitions;
}

async function advanceStaleness(tx: Tx, pair: string, newest: Date | undefined, now: Date, config: AnalysisConfig): Promise<Transition[]> {
  if (!newest) return [];
  const current = await openAlert(tx, pair, "stale");
  const stale = isStale(newest, now, config.staleAfterMs);
  let change: Transition | undefined;
  if (stale && !current) {
    // unsafe: ALERT_COLUMNS is this file's constant column list; no input reaches it.
    const [alert] = await tx<Alert[]>`
      insert into alerts (pair, kind, status, started_at, last_seen_at, fingerprint, fired_seen_at)
      values (${pair}, 'stale', 'firing', ${now}, ${newest}, ${await freshFingerprint(tx, pair, "stale", null, now)}, ${now})
      returning ${tx.unsafe(ALERT_COLUMNS)}`;
    change = { transition: "firing", alert: alert! };
  } else if (current && newest > current.lastSeenAt) {
    // Fresh data arrived: resolved, whatever the day of the week.
    // unsafe: ALERT_COLUMNS is this file's constant column list; no input reaches it.
    const [alert] = await tx<Alert[]>`
      update alerts set status = 'resolved', resolved_at = ${now}, resolved_seen_at = ${now} where id = ${current.id}
      returning ${tx.unsafe(ALERT_COLUMNS)}`;
    change = { transition: "resolved", alert: alert! };
  }
  if (!change) return [];
  await enqueue(tx, change, config.webhookUrls, now);
  return [change];
}

/** A stored, resolved deviation alert as a rescan weighs it. */
export interface StoredEpisode {
  id: number;
  fingerprint: string;
  direction: Direction;
  /** São Paulo dates of its start and of the last quote still beyond the recovery level. */
  firstDay: string;
  lastDay: string;
  /** It was delivered to a webhook, or is still to be: part of the record, never deleted. */
  kept: boolean;
  superseded: boolean;
}

/** What a rescan does to the stored history of a pair (pure: see reconcileHistory()). */
export interface HistoryPlan {
  /** History's ended episodes that no kept alert stands for: stored (upserted by fingerprint). */
  store: DeviationEpisode[];
  /** Alerts that are neither kept nor history any more. */
  remove: number[];
  /** Kept alerts history no longer finds: marked superseded. */
  supersede: number[];
  /** Kept alerts marked superseded that history finds again. */
  restore: number[];
}

/**
 * Weighs history against what is stored. A kept alert (delivered, or still to be) stands for
 * every history episode of its direction whose days overlap its own, whatever the exact start:
 * a live alert starts at the quote that crossed the line, history at that day's close. Such an
 * episode is not stored again, and the kept alert keeps its row and id; a kept alert that no
 * episode overlaps is superseded, never deleted. Other alerts are history's to rebuild.
 */
export function reconcileHistory(stored: readonly StoredEpisode[], episodes: readonly DeviationEpisode[], fingerprint: (episode: DeviationEpisode) => string): HistoryPlan {
  const kept = stored.filter((alert) => alert.kept);
  const found = new Set<number>();
  const uncovered: DeviationEpisode[] = [];
  for (const episode of episodes) {
    const first = saoPauloDay(episode.startedAt);
    const last = saoPauloDay(episode.lastSeenAt);
    const standing = kept.filter((alert) => alert.direction === episode.direction && alert.firstDay <= last && first <= alert.lastDay);
    for (const alert of standing) found.add(alert.id);
    if (standing.length === 0) uncovered.push(episode);
  }
  const wanted = new Set(uncovered.map(fingerprint));
  return {
    store: uncovered.filter((episode) => episode.resolvedAt !== null),
    remove: stored.filter((alert) => !alert.kept && !wanted.has(alert.fingerprint)).map((alert) => alert.id),
    supersede: kept.filter((alert) => !found.has(alert.id) && !alert.superseded).map((alert) => alert.id),
    restore: kept.filter((alert) => found.has(alert.id) && alert.superseded).map((alert) => alert.id),
  };
}

/**
 * Recomputes the whole deviation alert history of `pair` from its stored quotes, for data
 * loaded by a backfill: the same result every time, and nothing is sent: this is history.
 *
 * It stores the episodes that ended; the live state is left to the pipeline, so a rescan never
 * breaks or swallows the next live transition: an open (firing) alert is never touched (its
 * RESOLVED will still be sent), and an episode still open in history is reported but not
 * stored: if the price is still beyond the threshold, the next run opens it as a live alert,
 * with its FIRING notification. An alert that was delivered (or is still to be) is part of the
 * record: it keeps its row and id when history finds the same episode, and is marked superseded
 * when history no longer does (other settings, corrected quotes); other stored episodes that
 * history no longer holds are removed (see reconcileHistory()).
 */
export async function rescan(sql: Sql, pair: string, params: RuleParams): Promise<DeviationEpisode[]> {
  const series = await loadDailySeries(sql, pair);
  const episodes = findEpisodes(rulePoints(series, evaluateSeries(series, params)), params);
  await sql.begin(async (tx) => {
    await tx`select pg_advisory_xact_lock(hashtext(${`cotacao:alerts:${pair}`}))`;
    await storeHistory(tx, pair, "deviation", episodes, params);
    if (series.dates.length > 0) {
      await tx`
        insert into alert_state (pair, evaluated_day) values (${pair}, ${series.dates.at(-1)!})
        on conflict (pair) do update set evaluated_day = excluded.evaluated_day, updated_at = now()`;
    }
  });
  return episodes;
}

/**
 * Recomputes the whole divergence alert history of `pair` from its stored official closes and
 * quotes (the cross-check of every business day, lib/views.ts divergenceSeries()), exactly as
 * rescan() does for the deviation alert: nothing is sent, a firing alert is never touched, an
 * episode still open in history is reported but not stored, and a delivered alert keeps its row
 * and id when history finds it again, or is marked superseded when it does not.
 */
export async function rescanDivergence(sql: Sql, pair: string, params: DivergenceParams): Promise<DeviationEpisode[]> {
  const days = await divergenceSeries(sql, pair, null, null);
  const episodes = findEpisodes(divergencePoints(days, params), divergenceRecovery(params));
  await sql.begin(async (tx) => {
    await tx`select pg_advisory_xact_lock(hashtext(${`cotacao:alerts:${pair}`}))`;
    await storeHistory(tx, pair, "divergence", episodes, { threshold: params.thresholdPct / 100, windowDays: null });
    // Without a row (no quote analysed yet), the first run looks at the newest day only anyway.
    if (days.length > 0) await tx`update alert_state set divergence_day = ${days.at(-1)!.day}, updated_at = now() where pair = ${pair}`;
  });
  return episodes;
}

/** Brings the stored, resolved alerts of `kind` in line with history's `episodes` (see reconcileHistory()). */
async function storeHistory(tx: Tx, pair: string, kind: EpisodeKind, episodes: readonly DeviationEpisode[], settings: EpisodeSettings): Promise<void> {
  const fingerprint = (episode: DeviationEpisode) => fingerprintOf(pair, kind, episode.direction, episode.startedAt);
  const stored = await tx<StoredEpisode[]>`
    select id::int, fingerprint, direction,
           to_char(started_at at time zone ${SAO_PAULO_TIME_ZONE}, 'YYYY-MM-DD') as "firstDay",
           to_char(last_seen_at at time zone ${SAO_PAULO_TIME_ZONE}, 'YYYY-MM-DD') as "lastDay",
           exists (select from alert_notifications n
                   where n.alert_id = a.id and (n.delivered_at is not null or n.failed_at is null)) as kept,
           superseded_at is not null as superseded
    from alerts a where pair = ${pair} and kind = ${kind} and status = 'resolved'`;
  const plan = reconcileHistory(stored, episodes, fingerprint);
  if (plan.remove.length > 0) await tx`delete from alerts where id in ${tx(plan.remove)}`;
  if (plan.supersede.length > 0) await tx`update alerts set superseded_at = now() where id in ${tx(plan.supersede)}`;
  if (plan.restore.length > 0) await tx`update alerts set superseded_at = null where id in ${tx(plan.restore)}`;
  // One statement for the whole history: an episode already stored keeps its row (and its
  // notifications); its end and peak are brought up to date, unless it is live (firing).
  const column = <T>(pick: (episode: DeviationEpisode) => T) => plan.store.map(pick);
  await tx`
    insert into alerts (pair, kind, direction, status, started_at, last_seen_at, resolved_at, price, average,
                        deviation, peak_deviation, peak_at, threshold, window_days, fingerprint)
    select ${pair}, ${kind}, e.direction, 'resolved',
           e.started_at, e.last_seen_at, e.resolved_at, e.price, e.average, e.deviation, e.peak_deviation, e.peak_at,
           ${settings.threshold}::float8, ${settings.windowDays}::int, e.fingerprint
    from unnest(
      ${column((e) => e.direction)}::text[], ${column((e) => e.startedAt.toISOString())}::timestamptz[],
      ${column((e) => e.lastSeenAt.toISOString())}::timestamptz[], ${column((e) => e.resolvedAt!.toISOString())}::timestamptz[],
      ${column((e) => e.price)}::numeric[], ${column((e) => e.average)}::float8[], ${column((e) => e.deviation)}::float8[],
      ${column((e) => e.peakDeviation)}::float8[], ${column((e) => e.peakAt.toISOString())}::timestamptz[],
      ${column(fingerprint)}::text[]
    ) as e(direction, started_at, last_seen_at, resolved_at, price, average, deviation, peak_deviation, peak_at, fingerprint)
    on conflict (fingerprint) do update set
      last_seen_at = excluded.last_seen_at, resolved_at = excluded.resolved_at,
      peak_deviation = excluded.peak_deviation, peak_at = excluded.peak_at
    where alerts.status = 'resolved'`;
}

// ---------------------------------------------------------------------------------------------
// CLI

const USAGE = `Usage: bun analysis.ts [--pair P] [--json]
       bun analysis.ts --rescan [--pair P] [--json]
       bun analysis.ts --days --pair P [--json]
       bun analysis.ts --test-webhook
       bun analysis.ts rules [--json]
       bun analysis.ts rules add PAIR above|below LEVEL [--note TEXT]
       bun analysis.ts rules add PAIR move PCT% WINDOW [--note TEXT]
       bun analysis.ts rules remove ID

The moving-average rule: for each São Paulo day with quotes, the close is the bid of the day's
latest quote; the average of day d is the mean of the closes in the W days before d (d
excluded); a close is anomalous when it strays from that average by more than the threshold.
The cross-check: each business day's closing PTAX (BCB's official rate) against AwesomeAPI's
quote nearest to it; a divergence beyond its threshold fires a divergence alert.

  (default)   each pair's newest close, its average, deviation and open alerts
  --rescan    recompute the whole alert history from stored quotes and official closes (e.g.
              after a backfill) and print its episodes, deviation then divergence: start, end,
              direction, peak. Sends nothing.
  --days      the daily series as the rule sees it: date, close, average, deviation, anomalous;
              and the closing PTAX and the divergence from it, on days that have one
  --test-webhook  send one test notification to every URL in ALERT_WEBHOOK_URLS and print
              each answer; exit 0 if all answered 2xx, else 1. Stores nothing.
  rules       the alert rules people set (stored only: evaluating them is not there yet):
              list the active ones; "add USD-BRL above 6.00", "add EUR-BRL move 2% 1d" (windows
              in São Paulo days, like 1d, 1w, 30d); "remove ID" disables one (kept, not deleted)
  --pair P    one pair (default: every pair with quotes)
  --json      JSON instead of lines
  -V, --version  print the version and exit

Settings (environment): COTACAO_MA_WINDOW_DAYS (20), COTACAO_MA_MIN_POINTS (10),
COTACAO_ALERT_THRESHOLD_PCT (3), COTACAO_ALERT_RECOVERY_PCT (80, of the threshold),
COTACAO_DIVERGENCE_PCT (1.5), each with per-pair overrides like "3,BTC-BRL:8";
COTACAO_STALE_AFTER (2h); ALERT_WEBHOOK_URLS;
ALERT_WEBHOOK_GIVE_UP_AFTER (24h).

Exit codes: 0 done, 1 failure, 2 bad usage or configuration.`;

const round = (value: number, digits = 6) => (Number.isNaN(value) ? null : Number(value.toFixed(digits)));

/** The command that loads enough history for `pair`'s rule: a few windows' worth, at least 60 days. */
function backfillCommand(pair: string, windowDays: number): string {
  return `bun main_pipeline.ts --pairs ${pair} --backfill ${Math.max(60, 3 * windowDays)}`;
}

const noQuotesLine = (pair: string, params: RuleParams) => `${pair}: no quotes stored yet; load them with ${backfillCommand(pair, params.windowDays)}`;
const NO_DATA_LINE = "No quotes stored yet: load some history with bun main_pipeline.ts --backfill 60, then run bun analysis.ts again";

/** How many closes the window of day `i` holds: the days in [day - W, day). */
function closesInWindow(days: Int32Array, i: number, windowDays: number): number {
  let count = 0;
  for (let j = i - 1; j >= 0 && days[j]! >= days[i]! - windowDays; j--) count++;
  return count;
}

/** Where a CLI command writes: lines for people on stdout, notes on stderr. */
interface Output {
  out: (line: string) => void;
  err: (line: string) => void;
}

const CONSOLE: Output = { out: (line) => console.log(line), err: (line) => console.error(line) };

/** An empty database: an empty JSON list (the line then on stderr), or the line that says how to load data. */
function noData(json: boolean, output: Output): number {
  if (json) output.out("[]");
  (json ? output.err : output.out)(NO_DATA_LINE);
  return 0;
}

async function statusCommand(sql: Sql, pairs: string[], config: AnalysisConfig, json: boolean, output: Output): Promise<number> {
  const report = [];
  for (const pair of pairs) {
    const params = paramsFor(config, pair);
    const series = await recentSeries(sql, pair, params);
    const evaluation = evaluateSeries(series, params);
    const last = series.dates.length - 1;
    const closes = last >= 0 ? closesInWindow(series.days, last, params.windowDays) : 0;
    // unsafe: ALERT_COLUMNS is this file's constant column list; no input reaches it.
    const alerts = await sql<Alert[]>`
      select ${sql.unsafe(ALERT_COLUMNS)} from alerts where pair = ${pair} and status = 'firing' order by started_at`;
    report.push({
      pair,
      date: series.dates[last] ?? null,
      quoteAt: series.ats[last] ?? null,
      close: series.closeTexts[last] ?? null,
      average: last >= 0 ? round(evaluation.average[last]!) : null,
      deviation: last >= 0 ? round(evaluation.deviation[last]!) : null,
      threshold: params.threshold,
      windowDays: params.windowDays,
      closesInWindow: closes,
      missingCloses: Math.max(0, params.minPoints - closes),
      openAlerts: alerts.map((alert) => ({
        kind: alert.kind,
        direction: alert.direction,
        startedAt: alert.startedAt,
        peakDeviation: alert.peakDeviation,
        fingerprint: alert.fingerprint,
      })),
    });
  }
  if (json) output.out(JSON.stringify(report));
  for (const entry of report) {
    const params = paramsFor(config, entry.pair);
    if (entry.date === null) {
      (json ? output.err : output.out)(noQuotesLine(entry.pair, params));
      continue;
    }
    if (json) continue;
    const verdict =
      entry.deviation === null
        ? `insufficient history: ${entry.closesInWindow} closes in the ${entry.windowDays} days before it, the average needs ${params.minPoints} (${entry.missingCloses} more); load more with ${backfillCommand(entry.pair, entry.windowDays)}`
        : `${signedPercent(entry.deviation)} from its ${entry.windowDays}-day average ${price(entry.average)} (threshold ${percent(entry.threshold)})`;
    const alerts = entry.openAlerts.length
      ? entry.openAlerts
          .map((alert) =>
            alert.kind === "stale"
              ? `stale since ${formatSaoPauloTime(alert.startedAt)}`
              : alert.kind === "divergence"
                ? `divergence ${alert.direction} since the closing PTAX of ${formatSaoPauloTime(alert.startedAt)} (peak ${signedPercent(alert.peakDeviation)})`
                : `${alert.direction} since the quote of ${formatSaoPauloTime(alert.startedAt)} (peak ${signedPercent(alert.peakDeviation)})`,
          )
          .join("; ")
      : "none";
    output.out(`${entry.pair} ${entry.date} close ${entry.close}: ${verdict}; newest quote ${formatSaoPauloTime(entry.quoteAt!)}; open alerts: ${alerts}`);
  }
  return 0;
}

async function rescanCommand(sql: Sql, pairs: string[], config: AnalysisConfig, json: boolean, output: Output): Promise<number> {
  const report = [];
  const superseded = async (pair: string, kind: EpisodeKind) =>
    (await sql<{ n: number }[]>`select count(*)::int as n from alerts where pair = ${pair} and kind = ${kind} and superseded_at is not null`)[0]?.n ?? 0;
  const listed = (episodes: DeviationEpisode[]) =>
    episodes.map((episode) => ({
      start: episode.startedAt,
      end: episode.resolvedAt,
      direction: episode.direction,
      peakDeviation: round(episode.peakDeviation),
      peakAt: episode.peakAt,
    }));
  for (const pair of pairs) {
    const episodes = await rescan(sql, pair, paramsFor(config, pair));
    const divergence = await rescanDivergence(sql, pair, divergenceParamsFor(config, pair));
    report.push({
      pair,
      superseded: await superseded(pair, "deviation"),
      episodes: listed(episodes),
      divergence: {
        officialCloses: (await sql`select 1 from official_rates where pair = ${pair} and bulletin = 'closing' limit 1`).length > 0,
        superseded: await superseded(pair, "divergence"),
        episodes: listed(divergence),
      },
    });
  }
  if (json) output.out(JSON.stringify(report));
  for (const { pair, episodes, superseded, divergence } of report) {
    const params = paramsFor(config, pair);
    if (episodes.length === 0 && (await sql`select 1 from quotes where pair = ${pair} limit 1`).length === 0) {
      (json ? output.err : output.out)(noQuotesLine(pair, params));
      continue;
    }
    if (json) continue;
    output.out(`${pair}: ${episodes.length} episode(s) beyond ${percent(params.threshold)} of the ${params.windowDays}-day average`);
    for (const episode of episodes) {
      const end = episode.end ? formatSaoPauloTime(episode.end) : "now (open in history: the pipeline alerts if it is still beyond the threshold)";
      output.out(`  ${formatSaoPauloTime(episode.start)} to ${end}  ${episode.direction.padEnd(4)} peak ${signedPercent(episode.peakDeviation)} with the quote of ${formatSaoPauloTime(episode.peakAt)}`);
    }
    if (superseded > 0) output.out(`  and ${superseded} delivered alert(s) these settings no longer find, kept and marked superseded`);
    printDivergenceHistory(pair, divergence, divergenceParamsFor(config, pair), output);
  }
  return 0;
}

/** The divergence episodes a rescan found, under the deviation ones; nothing for a pair without official closes (BTC-BRL) nor divergence alerts. */
function printDivergenceHistory(
  pair: string,
  history: { officialCloses: boolean; superseded: number; episodes: { start: Date; end: Date | null; direction: Direction; peakDeviation: number | null; peakAt: Date }[] },
  params: DivergenceParams,
  output: Output,
): void {
  if (!history.officialCloses && history.episodes.length === 0 && history.superseded === 0) return;
  output.out(`${pair}: ${history.episodes.length} divergence episode(s) beyond ${params.thresholdPct.toFixed(2)}% from the closing PTAX`);
  for (const episode of history.episodes) {
    const end = episode.end ? formatSaoPauloTime(episode.end) : "now (open in history: the pipeline alerts if it is still beyond the threshold)";
    output.out(`  ${formatSaoPauloTime(episode.start)} to ${end}  ${episode.direction.padEnd(4)} peak ${signedPercent(episode.peakDeviation)} with the closing PTAX of ${formatSaoPauloTime(episode.peakAt)}`);
  }
  if (history.superseded > 0) output.out(`  and ${history.superseded} delivered divergence alert(s) these settings no longer find, kept and marked superseded`);
}

async function daysCommand(sql: Sql, pair: string, config: AnalysisConfig, json: boolean, output: Output): Promise<number> {
  const params = paramsFor(config, pair);
  const series = await loadDailySeries(sql, pair);
  if (series.dates.length === 0) {
    output.err(`Cannot show the daily series of ${pair}: no quotes stored for it, load them with ${backfillCommand(pair, params.windowDays)}`);
    return 1;
  }
  const evaluation = evaluateSeries(series, params);
  const crossCheck = await crossCheckByDay(sql, pair, series.dates[0]!, series.dates.at(-1)!, divergenceParamsFor(config, pair));
  const days = series.dates.map((date, i) => ({
    date,
    close: series.closeTexts[i]!,
    average: round(evaluation.average[i]!),
    deviation: round(evaluation.deviation[i]!),
    anomalous: evaluation.anomalous[i] === 1,
    ...(crossCheck.get(date) ?? NO_CROSS_CHECK),
  }));
  if (json) {
    output.out(JSON.stringify(days));
    return 0;
  }
  const divergence = divergenceParamsFor(config, pair);
  const official = crossCheck.size > 0 ? `; closing PTAX and the divergence from it, threshold ${divergence.thresholdPct.toFixed(2)}%` : "";
  output.out(`date        close       average   deviation  (${params.windowDays}-day average, threshold ${percent(params.threshold)}${official})`);
  days.forEach((day, i) => {
    const figures =
      day.deviation === null
        ? `insufficient history (${closesInWindow(series.days, i, params.windowDays)} of ${params.minPoints} closes)`
        : `${price(day.average).padStart(9)} ${signedPercent(day.deviation).padStart(10)}${day.anomalous ? "  ANOMALOUS" : ""}`;
    const line = `${day.date}  ${day.close.padEnd(10)} ${figures}`;
    output.out(day.official === null ? line : `${line.padEnd(62)}  ${describeCrossCheck(day)}`);
  });
  return 0;
}

/** A day of --days as the cross-check sees it (all null on a day without a closing PTAX). */
interface CrossCheckDay {
  /** The closing PTAX buy rate, as stored, and its time. */
  official: string | null;
  officialAt: Date | null;
  /** The AwesomeAPI quote compared with it (lib/views.ts divergenceSeries()): bid as stored, time, how it was chosen. */
  comparedBid: string | null;
  comparedAt: Date | null;
  match: DivergencePoint["match"] | null;
  /** (bid - buy) / buy as a fraction, the rule's six decimals of a percent; null without a quote to compare. */
  divergence: number | null;
  /** |divergence| > COTACAO_DIVERGENCE_PCT: the divergence alert's verdict. */
  divergent: boolean;
}

const NO_CROSS_CHECK: CrossCheckDay = { official: null, officialAt: null, comparedBid: null, comparedAt: null, match: null, divergence: null, divergent: false };

/** The cross-check of each São Paulo day in [from, to] that has a closing PTAX, by day. */
async function crossCheckByDay(sql: Sql, pair: string, from: string, to: string, params: DivergenceParams): Promise<Map<string, CrossCheckDay>> {
  const byDay = new Map<string, CrossCheckDay>();
  for (const close of await officialCloses(sql, pair, from, to)) {
    byDay.set(close.day, { ...NO_CROSS_CHECK, official: close.buy, officialAt: new Date(close.publishedAt) });
  }
  const days = await divergenceSeries(sql, pair, from, to);
  divergencePoints(days, params).forEach((point, i) => {
    const day = days[i]!;
    byDay.set(day.day, {
      official: day.buy,
      officialAt: point.at,
      comparedBid: day.bid,
      comparedAt: new Date(day.quoteAt),
      match: day.match,
      divergence: Number((Number(day.divergencePct) / 100).toFixed(DIVERGENCE_SCALE + 2)),
      divergent: point.anomalous,
    });
  });
  return byDay;
}

/** "PTAX 5.4278 (13:09) Δ +1.82%  DIVERGENT", the monitor's words; the time is São Paulo's. */
function describeCrossCheck(day: CrossCheckDay): string {
  const official = `PTAX ${day.official} (${formatSaoPauloTime(day.officialAt!).slice(11, 16)})`;
  if (day.divergence === null) return `${official} Δ ? (no quote within ${CROSS_CHECK_WINDOW_MINUTES} min of it, no daily quote)`;
  return `${official} Δ ${signedPercent(day.divergence)}${day.divergent ? "  DIVERGENT" : ""}`;
}

const FLAGS = {
  pair: { type: "string" },
  json: { type: "boolean" },
  rescan: { type: "boolean" },
  days: { type: "boolean" },
  "test-webhook": { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

/** What the command line and the environment ask of `bun analysis.ts`, checked before any I/O. */
function readInvocation(args: string[], env: Record<string, string | undefined>) {
  const flags = readFlags(args, FLAGS, "analysis.ts");
  if (flags.help) return { flags };
  const usage = (message: string) => usageError(message, "analysis.ts");
  const pair = flags.pair === undefined ? undefined : v.safeParse(PairSchema, flags.pair);
  if (pair && !pair.success) throw usage(`--pair must look like USD-BRL, got "${flags.pair}"`);
  if (flags.rescan && flags.days) throw usage("--rescan and --days do not go together: choose one");
  if (flags.days && flags.pair === undefined) throw usage("--days needs --pair");
  if (flags["test-webhook"] && (flags.rescan || flags.days || flags.pair !== undefined || flags.json)) {
    throw usage("Cannot send a test notification: --test-webhook takes no other option, run it alone");
  }
  const config = loadAnalysisConfig(env);
  if (flags["test-webhook"] && config.webhookUrls.length === 0) {
    throw new CotacaoError("CONFIG", "Cannot send a test notification: ALERT_WEBHOOK_URLS is not set, set it to your webhook URLs, comma-separated", { exitCode: EXIT.usage });
  }
  return { flags, pair: pair?.output, config, database: loadDatabaseConfig(env) };
}

const RULES_FLAGS = {
  json: { type: "boolean" },
  note: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

/**
 * `rules [add WORDS | remove ID]`: the words apart from the flags (readFlags takes no
 * positionals). "-1" is a word (a level the parser refuses with its own line), not a flag.
 */
function readRulesInvocation(args: string[]) {
  const words: string[] = [];
  const flagArgs: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg.startsWith("-") && !/^-\d/.test(arg)) {
      flagArgs.push(arg);
      if (arg === "--note" && i + 1 < args.length) flagArgs.push(args[++i]!);
    } else {
      words.push(arg);
    }
  }
  const flags = readFlags(flagArgs, RULES_FLAGS, "analysis.ts");
  const usage = (message: string) => usageError(message, "analysis.ts");
  const [action, ...rest] = words;
  if (flags.help) return { flags, action: "help" as const };
  if (action === undefined) {
    if (flags.note !== undefined) throw usage("Cannot list the rules: --note goes with \"rules add\"");
    return { flags, action: "list" as const };
  }
  if (action === "add") {
    if (flags.json) throw usage("Cannot add the rule: --json goes with \"rules\" alone");
    return { flags, action: "add" as const, rule: parseRuleWords(rest, flags.note ?? null) };
  }
  if (action === "remove") {
    if (rest.length !== 1 || flags.note !== undefined || flags.json) throw usage("Cannot remove the rule: give one rule id and nothing else, like \"rules remove 3\"");
    return { flags, action: "remove" as const, id: rest[0]! };
  }
  throw usage(`Cannot read the rules command: "${action}" is not one, use "rules", "rules add ..." or "rules remove ID"`);
}

/** One rule as `rules` lists it: id, pair, kind, level, window, note, created (São Paulo time). */
function ruleLine(rule: Rule): string {
  const window = rule.windowDays === null ? "-" : `${rule.windowDays}d`;
  const level = rule.kind === "move" ? `${rule.level}%` : rule.level;
  return [String(rule.id), rule.pair, rule.kind, level, window, rule.note ?? "-", formatSaoPauloTime(rule.createdAt)].join("\t");
}

/** `bun analysis.ts rules ...`: every input checked before the database is opened. */
async function rulesCommand(args: string[], env: Record<string, string | undefined>, output: Output): Promise<number> {
  const invocation = readRulesInvocation(args);
  if (invocation.action === "help") {
    output.out(USAGE);
    return EXIT.ok;
  }
  const sql = await connect(loadDatabaseConfig(env), { max: 1 });
  try {
    await migrate(sql);
    if (invocation.action === "add") {
      const rule = await addRule(sql, invocation.rule);
      output.out(`added rule ${rule.id}: ${describeRule(rule)}`);
    } else if (invocation.action === "remove") {
      const rule = await removeRule(sql, invocation.id);
      output.out(`removed rule ${rule.id}: ${describeRule(rule)}`);
    } else {
      const rules = await listRules(sql);
      if (invocation.flags.json) output.out(JSON.stringify(rules));
      else if (rules.length === 0) output.out("no rules: add one like \"bun analysis.ts rules add USD-BRL above 6.00\"");
      else for (const rule of rules) output.out(ruleLine(rule));
    }
    return EXIT.ok;
  } finally {
    await sql.end({ timeout: 5 });
  }
}

/** Runs the CLI and returns its exit code. */
export async function main(args: string[], env: Record<string, string | undefined> = process.env): Promise<number> {
  let sql: Sql | undefined;
  try {
    if (args[0] === "rules") return await rulesCommand(args.slice(1), env, CONSOLE);
    const { flags, pair, config, database } = readInvocation(args, env);
    if (!config || !database) {
      console.log(USAGE);
      return EXIT.ok;
    }
    if (flags["test-webhook"]) {
      const answers = await sendTestNotifications(config.webhookUrls);
      for (const answer of answers) console.log(answer.line);
      return answers.every((answer) => answer.ok) ? EXIT.ok : EXIT.failure;
    }
    sql = await connect(database, { max: 2 });
    await migrate(sql);
    const pairs = pair ? [pair] : await storedPairs(sql);
    if (flags.days && pair) return await daysCommand(sql, pair, config, !!flags.json, CONSOLE);
    if (pairs.length === 0) return noData(!!flags.json, CONSOLE);
    if (flags.rescan) return await rescanCommand(sql, pairs, config, !!flags.json, CONSOLE);
    return await statusCommand(sql, pairs, config, !!flags.json, CONSOLE);
  } catch (error) {
    return printDescribed(describeError(error, "analyse"));
  } finally {
    await sql?.end({ timeout: 5 });
  }
}

// No top-level await: monitor.ts, which imports this file, compiles to bytecode (bun run build:monitor).
if (import.meta.main) {
  void main(Bun.argv.slice(2)).then((code) => (process.exitCode = code));
}
