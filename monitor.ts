/**
 * monitor.ts: "what is the dollar now, and is anything wrong?" in a blink, for a person, for
 * Nagios/Icinga and for cron. Read-only: it never migrates, writes, or creates a cluster.
 *
 * CLI: `bun monitor.ts [--pair P]... [--format text|json|nagios] [--max-age DUR] [-w RANGE] [-c RANGE]`
 * (see `--help`). Exit codes are the monitoring plugins': 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.
 */
import * as v from "valibot";
import { formatSaoPauloTime, isStale, marketTimeBetween, prepareClocks, saoPauloDay } from "./lib/calendar.ts";
import { durationExample, formatDuration, parseDuration, printDescribed, readFlags } from "./lib/cli.ts";
import { type DatabaseConfig, loadDatabaseConfig } from "./lib/connect.ts";
import { isInitialised, runningEmbeddedServer, startEmbeddedServer } from "./lib/embedded_server.ts";
import { CotacaoError, describeError, isConnectionLost, usageError } from "./lib/errors.ts";
import { FEED_CHANNEL } from "./lib/feed.ts";
import { gapCommand } from "./lib/gaps.ts";
import { PairSchema } from "./lib/quote.ts";
import { connectWire, isWireUnsupported } from "./lib/pg_wire.ts";
import type { Sql } from "./lib/pool.ts";
import { type PairSnapshot, type QuerySql, readSnapshot } from "./lib/views.ts";
import { type AnalysisConfig, evaluateSeries, loadAnalysisConfig, paramsFor } from "./lib/rule.ts";

/** The monitoring plugins' states, worst last; each is its exit code. */
export const STATE = { OK: 0, WARNING: 1, CRITICAL: 2, UNKNOWN: 3 } as const;
export type State = keyof typeof STATE;

const DEFAULT_TIMEOUT_MS = 10_000;
// --watch's server-side statement_timeout runs this much past the check's own timeout.
const STATEMENT_TIMEOUT_MARGIN_MS = 250;
const TIMEOUT_BOUNDS_MS = [100, 300_000] as const;
const MAX_AGE_BOUNDS_MS = [60_000, 30 * 86_400_000] as const;
const NO_DATA = "no data yet: run `bun main_pipeline.ts` (and `bun main_pipeline.ts --backfill 60` for history)";
const BEHIND = "Cannot check: the database's tables are older than this monitor; run `bun database.ts migrate` (the next pipeline run applies the migrations too)";

// ---------------------------------------------------------------------------------------------
// Threshold ranges, as the monitoring plugin guidelines write them (pure)

/** A plugin range: alert when the value is outside [start, end], or inside it with "@". */
export interface PluginRange {
  start: number;
  end: number;
  inside: boolean;
  text: string;
}

/**
 * Parses `10`, `10:`, `~:10`, `10:20` and `@10:20` (Nagios plugin guidelines): `10` is 0..10,
 * `10:` is 10..infinity, `~` is minus infinity. Undefined if malformed.
 */
export function parsePluginRange(text: string): PluginRange | undefined {
  const match = /^(@)?(?:(~|-?\d+(?:\.\d+)?):)?(-?\d+(?:\.\d+)?)?$/.exec(text.trim());
  if (!match || text.trim() === "" || text.trim() === "@") return undefined;
  const [, at, low, high] = match;
  const hasColon = text.includes(":");
  if (!hasColon && high === undefined) return undefined;
  const start = low === "~" ? Number.NEGATIVE_INFINITY : low === undefined ? (hasColon ? Number.NEGATIVE_INFINITY : 0) : Number(low);
  const end = high === undefined ? Number.POSITIVE_INFINITY : Number(high);
  if (start > end) return undefined;
  return { start, end, inside: at === "@", text: text.trim() };
}

/** Whether `value` should raise an alert under `range`. */
export function breaches(range: PluginRange, value: number): boolean {
  const within = value >= range.start && value <= range.end;
  return range.inside ? within : !within;
}

// ---------------------------------------------------------------------------------------------
// A pair's state (pure)

/** What the monitor knows about one pair: every figure of the text line, and the state. */
export interface PairReport {
  pair: string;
  state: State;
  /** Why the state is not OK, in a few words each. */
  reasons: string[];
  bid: string | null;
  ask: string | null;
  ts: Date | null;
  /** Seconds since the quote, on the wall clock. */
  ageSeconds: number | null;
  /** Seconds since the quote that the market was open: what --max-age and staleness count. */
  marketAgeSeconds: number | null;
  previousClose: string | null;
  /** Percent change against the previous day's close. */
  changePct: number | null;
  windowDays: number;
  /** The rule's moving average and the deviation from it, in percent; null with too little history. */
  average: number | null;
  deviationPct: number | null;
  thresholdPct: number;
  alerts: { kind: string; direction: string | null; startedAt: Date }[];
  lastRun: PairSnapshot["lastRun"];
  /**
   * BCB's newest closing PTAX (São Paulo time, as sao_paulo_instant() writes it; rates as stored)
   * and the cross-check of its day: AwesomeAPI's bid against its buy rate, in percent (null when
   * no quote matches). Null for a pair without official rates.
   */
  official: { publishedAt: string; buy: string; sell: string; bid: string | null; divergencePct: number | null } | null;
}

/** How the state is decided. */
export interface Checks {
  config: AnalysisConfig;
  maxAgeMs: number;
  /** On |deviation| in percent: WARNING and CRITICAL when given. */
  warning?: PluginRange;
  critical?: PluginRange;
}

const WORSE: Record<State, number> = { OK: 0, WARNING: 1, CRITICAL: 2, UNKNOWN: 3 };
const worst = (states: State[]): State => states.reduce<State>((a, b) => (WORSE[b] > WORSE[a] ? b : a), "OK");

/** A pair's figures, as the analysis rule sees them, and its state. */
export function assess(snapshot: PairSnapshot, checks: Checks, now: Date): PairReport {
  const params = paramsFor(checks.config, snapshot.pair);
  const base = {
    pair: snapshot.pair,
    windowDays: params.windowDays,
    thresholdPct: params.threshold * 100,
    alerts: snapshot.alerts,
    lastRun: snapshot.lastRun,
    official: snapshot.official
      ? { ...snapshot.official, divergencePct: snapshot.official.divergencePct === null ? null : Number(snapshot.official.divergencePct) }
      : null,
  };
  const { latest } = snapshot;
  if (!latest) {
    return {
      ...base,
      state: "UNKNOWN",
      reasons: ["no quotes stored"],
      bid: null,
      ask: null,
      ts: null,
      ageSeconds: null,
      marketAgeSeconds: null,
      previousClose: null,
      changePct: null,
      average: null,
      deviationPct: null,
    };
  }
  // The rule's own maths over the closes it would see: today's close so far is the newest bid.
  const days = Int32Array.from(snapshot.closes, (close) => close.day);
  const closes = Float64Array.from(snapshot.closes, (close) => Number(close.close));
  const evaluation = evaluateSeries({ days, closes }, params);
  const last = snapshot.closes.length - 1;
  const average = last >= 0 ? evaluation.average[last]! : Number.NaN;
  const deviation = last >= 0 ? evaluation.deviation[last]! : Number.NaN;
  const previous = last >= 1 ? snapshot.closes[last - 1]! : undefined;
  const marketAgeMs = marketTimeBetween(latest.ts, now);

  const states: State[] = [];
  const reasons: string[] = [];
  const flag = (state: State, reason: string) => (states.push(state), reasons.push(reason));
  for (const alert of snapshot.alerts) {
    if (alert.kind === "deviation") flag("WARNING", `${alert.direction ?? ""} alert firing since ${formatSaoPauloTime(alert.startedAt)}`.trim());
    // AwesomeAPI disagrees with BCB's closing PTAX beyond COTACAO_DIVERGENCE_PCT (analysis.ts).
    if (alert.kind === "divergence") flag("WARNING", `divergence from PTAX alert firing since ${formatSaoPauloTime(alert.startedAt)}`);
  }
  if (isStale(latest.ts, now, checks.maxAgeMs)) flag("CRITICAL", `quote older than ${formatDuration(checks.maxAgeMs)} of market time`);
  // Days too old for a run to fill: nothing is wrong now, but only the person can load them.
  for (const gap of snapshot.gaps ?? []) flag("WARNING", `no quotes from ${gap.from} to ${gap.to}: load them with ${gapCommand(gap)}`);
  if (snapshot.lastRun?.status === "failed") flag("CRITICAL", `last run ${snapshot.lastRun.id} failed${snapshot.lastRun.failedStep ? ` at the ${snapshot.lastRun.failedStep} step` : ""}`);
  const deviationPct = Number.isNaN(deviation) ? null : deviation * 100;
  if (deviationPct !== null) {
    const magnitude = Math.abs(deviationPct);
    if (checks.critical && breaches(checks.critical, magnitude)) flag("CRITICAL", `deviation ${signedPct(deviationPct)} beyond -c ${checks.critical.text}`);
    else if (checks.warning && breaches(checks.warning, magnitude)) flag("WARNING", `deviation ${signedPct(deviationPct)} beyond -w ${checks.warning.text}`);
  }
  return {
    ...base,
    state: worst(states),
    reasons,
    bid: latest.bid,
    ask: latest.ask,
    ts: latest.ts,
    ageSeconds: Math.max(0, Math.round((now.getTime() - latest.ts.getTime()) / 1000)),
    marketAgeSeconds: Math.round(marketAgeMs / 1000),
    previousClose: previous?.close ?? null,
    changePct: previous ? (Number(latest.bid) / Number(previous.close) - 1) * 100 : null,
    average: Number.isNaN(average) ? null : average,
    deviationPct,
  };
}

// ---------------------------------------------------------------------------------------------
// Output (pure)

const signedPct = (pct: number) => `${pct >= 0 ? "+" : ""}${pct.toFixed(2)}%`;

/** "3 min ago", "2 h ago", "4 d ago". */
export function formatAge(seconds: number): string {
  if (seconds < 90) return `${seconds} s ago`;
  if (seconds < 90 * 60) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 36 * 3600) return `${Math.round(seconds / 3600)} h ago`;
  return `${Math.round(seconds / 86_400)} d ago`;
}

/** The line a person reads, e.g. `USD-BRL 5.7008 / 5.7017 · 2024-10-25 12:26:56 -03 (3 min ago) · +0.65% d/d · MA20d 5.6120 (+1.58%) · OK`. */
export function formatText(report: PairReport): string {
  if (!report.ts) return `${report.pair} · ${report.reasons.join("; ")} · ${report.state}`;
  const parts = [
    `${report.pair} ${report.bid} / ${report.ask}`,
    `${formatSaoPauloTime(report.ts, { seconds: true })} (${formatAge(report.ageSeconds ?? 0)})`,
    report.changePct === null ? "no previous close" : `${signedPct(report.changePct)} d/d`,
    report.average === null || report.deviationPct === null
      ? `MA${report.windowDays}d n/a (too little history)`
      : `MA${report.windowDays}d ${report.average.toFixed(4)} (${signedPct(report.deviationPct)})`,
  ];
  if (report.official) parts.push(formatOfficial(report.official, report.ts));
  if (report.lastRun) parts.push(`last run ${report.lastRun.status}`);
  parts.push(report.reasons.length ? `${report.state}: ${report.reasons.join("; ")}` : report.state);
  return parts.join(" · ");
}

/**
 * `PTAX 5.4278 (13:09) Δ +0.12%`: the closing PTAX's buy rate, its São Paulo time (with its date
 * when it is not the quote's day), and AwesomeAPI's divergence from it.
 */
export function formatOfficial(official: NonNullable<PairReport["official"]>, quoteAt: Date): string {
  const day = official.publishedAt.slice(0, 10);
  const time = official.publishedAt.slice(11, 16);
  const when = day === saoPauloDay(quoteAt) ? time : `${day} ${time}`;
  return `PTAX ${official.buy} (${when}) Δ ${official.divergencePct === null ? "n/a" : signedPct(official.divergencePct)}`;
}

/** The report as JSON: decimals as the database holds them (strings), computed figures as numbers, times ISO 8601 UTC. */
export function toJson(report: PairReport): Record<string, unknown> {
  return {
    ...report,
    exitCode: STATE[report.state],
    ts: report.ts?.toISOString() ?? null,
    alerts: report.alerts.map((alert) => ({ ...alert, startedAt: alert.startedAt.toISOString() })),
    lastRun: report.lastRun && {
      ...report.lastRun,
      startedAt: report.lastRun.startedAt.toISOString(),
      finishedAt: report.lastRun.finishedAt?.toISOString() ?? null,
    },
  };
}

/**
 * The plugin output: `COTACAO STATE - summary | perfdata`. One pair's labels are 'bid', 'age'
 * and 'deviation'; with several, each label starts with the pair.
 */
export function formatNagios(reports: readonly PairReport[], checks: Checks): string {
  const state = worst(reports.map((report) => report.state));
  const summary = reports.map((report) => `${report.pair} ${report.bid ?? "-"}${report.reasons.length ? ` (${report.reasons.join("; ")})` : ""}`).join(", ");
  const maxAge = Math.round(checks.maxAgeMs / 1000);
  const perfdata = reports.flatMap((report) => {
    const label = (name: string) => `'${reports.length > 1 ? `${report.pair} ` : ""}${name}'`;
    const data: string[] = [];
    if (report.bid !== null) data.push(`${label("bid")}=${report.bid};;;0`);
    if (report.marketAgeSeconds !== null) data.push(`${label("age")}=${report.marketAgeSeconds}s;${Math.round(maxAge / 2)};${maxAge};0`);
    if (report.deviationPct !== null) {
      const warn = checks.warning?.text ?? String(report.thresholdPct);
      data.push(`${label("deviation")}=${report.deviationPct.toFixed(2)}%;${warn};${checks.critical?.text ?? ""}`);
    }
    if (report.official) {
      data.push(`${label("ptax")}=${report.official.buy};;;0`);
      if (report.official.divergencePct !== null) data.push(`${label("divergence")}=${report.official.divergencePct.toFixed(2)}%;;`);
    }
    return data;
  });
  return `COTACAO ${state} - ${summary}${perfdata.length ? ` | ${perfdata.join(" ")}` : ""}`;
}

// ---------------------------------------------------------------------------------------------
// CLI

const USAGE = `Usage: bun monitor.ts [--pair P]... [--format text|json|nagios] [--max-age DUR]
                      [-w RANGE] [-c RANGE] [--timeout DUR] [--watch [SECONDS]]

What is the dollar now, how old is that, and is anything wrong: one line per pair (every pair
with quotes, else COTACAO_PAIRS) with bid and ask, the quote's time in São Paulo and its age,
the change against the previous day's close, the moving average and the deviation from it as
the alert rule sees them, BCB's newest closing PTAX with AwesomeAPI's divergence from it
(PTAX 5.4278 (13:09) Δ +0.12%), open alerts and the last pipeline run. Read-only.

Options:
  --pair P        a pair, any case (repeatable; default: every stored pair, else COTACAO_PAIRS)
  --format F      text (default), json (one object per pair), nagios (status line + perfdata)
  --max-age DUR   CRITICAL when the newest quote is older than this, counting market time
                  only, as the staleness alert does (default COTACAO_STALE_AFTER, 2h)
  -w RANGE        WARNING when |deviation| in percent breaches this plugin range (e.g. 3, 0:3, @5:10)
  -c RANGE        CRITICAL likewise (e.g. 5)
  --timeout DUR   give up, UNKNOWN, after this long (default 10s)
  --watch [SEC]   check again every SEC seconds (default 10) and as soon as the pipeline stores
                  a quote; on a terminal the screen is redrawn in place; Ctrl-C exits 0
  -h, --help      show this help
  -V, --version   print the version and exit

Exit codes, as monitoring plugins use them: 0 OK; 1 WARNING (an anomaly or divergence alert is firing,
|deviation| breaches -w, or days too old for a run to fill are missing: it names the backfill
that loads them); 2 CRITICAL (the quote is older than --max-age, the last pipeline run that
tried the pair failed for it, or |deviation| breaches -c); 3 UNKNOWN (no data yet, the database
unreachable, the timeout elapsed, or bad usage, as the plugin guidelines ask). With several
pairs the worst wins.`;

const FLAGS = {
  pair: { type: "string", multiple: true },
  format: { type: "string" },
  "max-age": { type: "string" },
  w: { type: "string", short: "w" },
  c: { type: "string", short: "c" },
  timeout: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

const FORMATS = ["text", "json", "nagios"] as const;
type Format = (typeof FORMATS)[number];

/** What `bun monitor.ts` was asked, checked before any I/O. */
export interface Invocation {
  help: boolean;
  pairs: string[] | null;
  fallbackPairs: string[];
  format: Format;
  timeoutMs: number;
  checks: Checks;
  database: DatabaseConfig;
  /** --watch: redraw every this many ms, and whenever the pipeline stores a quote. */
  watchMs?: number;
}

const DEFAULT_WATCH_MS = 10_000;
const WATCH_BOUNDS_MS = [1_000, 3_600_000] as const;

/**
 * `--watch [SECONDS]` takes an optional value, which node:util's parseArgs cannot say: it is
 * taken out of the arguments here, the rest goes to readFlags().
 */
function takeWatch(args: string[]): { rest: string[]; watchMs?: number } {
  const index = args.findIndex((arg) => arg === "--watch" || arg.startsWith("--watch="));
  if (index === -1) return { rest: args };
  const arg = args[index]!;
  const next = args[index + 1];
  const inline = arg.startsWith("--watch=") ? arg.slice("--watch=".length) : undefined;
  const value = inline ?? (next !== undefined && /^\d+(\.\d+)?$/.test(next) ? next : undefined);
  const rest = args.filter((_, i) => i !== index && !(inline === undefined && value !== undefined && i === index + 1));
  if (value === undefined) return { rest, watchMs: DEFAULT_WATCH_MS };
  const ms = /^\d+(\.\d+)?$/.test(value) ? Number(value) * 1000 : Number.NaN;
  if (!(ms >= WATCH_BOUNDS_MS[0] && ms <= WATCH_BOUNDS_MS[1])) throw usageError(`--watch takes seconds from 1 to 3600, got "${value}"`, "monitor.ts");
  return { rest, watchMs: ms };
}

const MonitorEnvSchema = v.object({ COTACAO_PAIRS: v.optional(v.string(), "") });

/** Reads the flags and the environment; throws one USAGE or CONFIG line. */
export function readInvocation(args: string[], env: Record<string, string | undefined>): Invocation {
  const { rest, watchMs } = takeWatch(args);
  const flags = readFlags(rest, FLAGS, "monitor.ts");
  const usage = (message: string) => usageError(message, "monitor.ts");
  const config = loadAnalysisConfig(env);
  const database = loadDatabaseConfig(env);
  const settings = v.parse(MonitorEnvSchema, env);
  const pairList = (items: readonly string[], source: string) =>
    [...new Set(items.map((item) => {
      const parsed = v.safeParse(PairSchema, item);
      if (!parsed.success) throw usage(`${source} must name pairs like USD-BRL, got "${item}"`);
      return parsed.output;
    }))];
  const format = (flags.format ?? "text") as Format;
  if (!FORMATS.includes(format)) throw usage(`--format must be text, json or nagios, got "${flags.format}"`);
  const duration = (flag: string, text: string | undefined, fallback: number, [min, max]: readonly [number, number]) => {
    if (text === undefined) return fallback;
    const ms = parseDuration(text);
    if (ms === undefined || ms < min || ms > max) {
      throw usage(`--${flag} must be a duration from ${formatDuration(min)} to ${formatDuration(max)}, like ${durationExample([min, max], formatDuration(fallback))}, got "${text}"`);
    }
    return ms;
  };
  const range = (flag: string, text: string) => {
    const parsed = parsePluginRange(text);
    if (!parsed) throw usage(`-${flag} must be a plugin range like 3, 0:3, ~:3 or @5:10, got "${text}"`);
    return parsed;
  };
  return {
    help: !!flags.help,
    pairs: flags.pair ? pairList(flags.pair, "--pair") : null,
    fallbackPairs: pairList(settings.COTACAO_PAIRS.split(",").map((item) => item.trim()).filter(Boolean), "COTACAO_PAIRS"),
    format,
    timeoutMs: duration("timeout", flags.timeout, DEFAULT_TIMEOUT_MS, TIMEOUT_BOUNDS_MS),
    checks: {
      config,
      maxAgeMs: duration("max-age", flags["max-age"], config.staleAfterMs, MAX_AGE_BOUNDS_MS),
      ...(flags.w === undefined ? {} : { warning: range("w", flags.w) }),
      ...(flags.c === undefined ? {} : { critical: range("c", flags.c) }),
    },
    database,
    ...(watchMs === undefined ? {} : { watchMs }),
  };
}

class Unknown extends CotacaoError {
  constructor(message: string, cause?: unknown) {
    super("UNKNOWN", message, { cause, exitCode: STATE.UNKNOWN });
  }
}

/**
 * Where the database is, without creating anything: no cluster on a fresh checkout. A cluster
 * whose server is stopped (after a reboot) is started, and stderr says so; unless `startStopped`
 * is false (--watch once running: a server someone stopped stays stopped).
 */
async function databaseUrl(database: DatabaseConfig, notice: (line: string) => void, startStopped = true): Promise<string> {
  if (database.databaseUrl) return database.databaseUrl;
  if (!(await isInitialised(database.dataDir))) throw new Unknown(NO_DATA);
  const running = await runningEmbeddedServer(database.dataDir);
  if (running) return running.url;
  if (!startStopped) throw new Unknown(`Cannot check: the embedded PostgreSQL in ${database.dataDir} is not running; start it (bun database.ts start)`);
  notice(`The embedded PostgreSQL in ${database.dataDir} was stopped; starting it`);
  return (await startEmbeddedServer(database.dataDir, { notice })).server.url;
}

/** One check's connection: what it queries with, and how to let it go (not awaited). */
interface CheckConnection {
  sql: QuerySql;
  close: () => void;
}

/**
 * The one-shot check's connection: lib/pg_wire.ts, our own lean client (one query in one round
 * trip, Bun's sockets, no postgres.js to load); postgres.js only for what it does not speak (TLS).
 */
async function openCheck(database: DatabaseConfig, timeoutMs: number, notice: (line: string) => void): Promise<CheckConnection> {
  const url = await databaseUrl(database, notice);
  try {
    // The clocks' zones are read while the server starts a backend for us.
    const wire = await connectWire(url, { connectTimeoutMs: timeoutMs, whileWaiting: () => void prepareClocks() });
    return { sql: wire.sql, close: () => void wire.close() };
  } catch (error) {
    if (!isWireUnsupported(error)) throw error;
    const sql = await openPool(url, timeoutMs);
    return { sql, close: () => void sql.end({ timeout: 0 }) };
  }
}

/** A postgres.js pool of one connection to `url` (--watch, which LISTENs, and TLS), loaded on first use. */
async function openPool(url: string, timeoutMs: number): Promise<Sql> {
  const { connectUrl } = await import("./lib/pool.ts");
  // No type look-up: one round trip less at start.
  return connectUrl(url, { max: 1, connectTimeoutSeconds: Math.max(1, Math.ceil(timeoutMs / 1000)), fetchTypes: false });
}

/** Reads and assesses every pair asked for; the worst state is the exit code. */
export async function check(sql: QuerySql, invocation: Invocation, now: Date): Promise<PairReport[]> {
  // The clocks' zones are read from the system's TZif files (no ICU), if not already under way.
  const clocks = prepareClocks();
  let snapshots: PairSnapshot[];
  try {
    snapshots = await readSnapshot(sql, invocation.pairs, invocation.checks.config.defaults.windowDays + maxWindowOverride(invocation.checks.config));
  } catch (error) {
    const code = String((error as { code?: unknown }).code);
    // A table, column or function a newer migration adds (sql/007, sql/008): the monitor never
    // migrates, so say who does. No tables at all: a database nobody has run the pipeline on.
    if (code === "42P01") throw new Unknown(/"(quote_gaps|official_rates)"/.test((error as Error).message) ? BEHIND : NO_DATA, error);
    if (code === "42703" || code === "42883") throw new Unknown(BEHIND, error);
    throw error;
  }
  if (snapshots.length === 0 && invocation.fallbackPairs.length > 0) {
    snapshots = invocation.fallbackPairs.map((pair) => ({ pair, latest: null, closes: [], alerts: [], lastRun: null }));
  }
  if (snapshots.length === 0 || snapshots.every((snapshot) => !snapshot.latest && !invocation.pairs)) throw new Unknown(NO_DATA);
  await clocks;
  return snapshots.map((snapshot) => assess(snapshot, invocation.checks, now));
}

/** The longest window any pair's rule looks back over, beyond the default's. */
function maxWindowOverride(config: AnalysisConfig): number {
  let extra = 0;
  for (const params of config.perPair.values()) extra = Math.max(extra, (params.windowDays ?? 0) - config.defaults.windowDays);
  return extra;
}

/**
 * A pair name read from the database, safe to print on a terminal or in a plugin line: as stored
 * when it follows the pair rule (PairSchema), else with every character but letters, digits and
 * "-" written as \xHH or \u{H}. Another program may have stored anything there: an escape
 * sequence would clear the person's terminal, a "|", "'" or "=" break the Nagios line.
 */
export function printablePair(pair: string): string {
  if (v.safeParse(PairSchema, pair).success && !/\s/.test(pair)) return pair;
  return pair.replace(/[^A-Za-z0-9-]/gu, (char) => {
    const code = char.codePointAt(0)!;
    return code < 0x100 ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u{${code.toString(16)}}`;
  });
}

function render(reports: readonly PairReport[], invocation: Invocation): string {
  // JSON escapes what it must itself, and keeps the name as stored.
  if (invocation.format === "json") return JSON.stringify(reports.map(toJson));
  const printable = reports.map((report) => ({ ...report, pair: printablePair(report.pair) }));
  if (invocation.format === "nagios") return formatNagios(printable, invocation.checks);
  return printable.map(formatText).join("\n");
}

/** Runs the CLI and returns its exit code: the plugin state. */
export async function main(args: string[], env: Record<string, string | undefined> = process.env): Promise<number> {
  let invocation: Invocation;
  try {
    invocation = readInvocation(args, env);
  } catch (error) {
    const described = describeError(error, "read the arguments");
    // --version: an answer, exit 0.
    if (described.exitCode === STATE.OK) return printDescribed(described);
    // Bad usage is UNKNOWN for a monitoring plugin, and said on stdout too: Nagios reads nothing else.
    console.error(described.line);
    console.log(`COTACAO UNKNOWN - ${described.line}`);
    return STATE.UNKNOWN;
  }
  if (invocation.help) {
    console.log(USAGE);
    return STATE.OK;
  }
  if (invocation.watchMs !== undefined) return watch(invocation, invocation.watchMs);
  let connection: CheckConnection | undefined;
  try {
    const reports = await withinTimeout(
      (async () => {
        connection = await openCheck(invocation.database, invocation.timeoutMs, (line) => console.error(line));
        return check(connection.sql, invocation, new Date());
      })(),
      invocation.timeoutMs,
    );
    console.log(render(reports, invocation));
    return STATE[worst(reports.map((report) => report.state))];
  } catch (error) {
    const { line } = describeError(error, "check");
    if (invocation.format === "nagios") console.log(`COTACAO UNKNOWN - ${line}`);
    else console.error(line);
    return STATE.UNKNOWN;
  } finally {
    // Not awaited: the answer is out, and a server that stopped answering would not acknowledge
    // the goodbye at all. The CLI exits at once.
    (connection as CheckConnection | undefined)?.close();
  }
}

/** `work`'s result, or an UNKNOWN "no answer" once `timeoutMs` has passed (`work` is left to fail on its own). */
async function withinTimeout<T>(work: Promise<T>, timeoutMs: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Unknown(`Cannot check: no answer within ${formatDuration(timeoutMs)}; check the database (bun database.ts status)`)), timeoutMs);
  });
  try {
    return await Promise.race([work, timedOut]);
  } finally {
    clearTimeout(timer);
  }
}

/** A whole check that failed, as the screen shows it in --watch: the state first, in every format. */
export function formatUnknown(line: string, format: Format): string {
  if (format === "json") return JSON.stringify({ state: "UNKNOWN", exitCode: STATE.UNKNOWN, error: line });
  return `${format === "nagios" ? "COTACAO " : ""}UNKNOWN - ${line}`;
}

/**
 * Opens --watch's connection (one, max: 1) and LISTENs. Its statement_timeout is the check's (and
 * a little more, so that the check's own "no answer within" says why, not the server's cancel): a
 * check that gives up on a locked table leaves no backend queued behind the lock (one more at
 * every check, until the server ran out of connections). A session setting, not a startup
 * parameter, which poolers such as PgBouncer refuse. If the pool reconnects on its own (a server
 * restarted at the same socket), the new connection lacks it until a failed check replaces the
 * pool; a reserved connection would not reconnect, but postgres.js 3.4.9's reserve() never
 * answers on a new pool with fetch_types off (porsager/postgres#751, #1219; fix proposed in #1220).
 */
async function openWatchConnection(invocation: Invocation, startStopped: boolean, onStored: () => void): Promise<Sql> {
  const sql = await openPool(await databaseUrl(invocation.database, (line) => console.error(line), startStopped), invocation.timeoutMs);
  try {
    await sql`select set_config('statement_timeout', ${`${invocation.timeoutMs + STATEMENT_TIMEOUT_MARGIN_MS}ms`}, false)`;
    await sql.listen(FEED_CHANNEL, onStored);
    return sql;
  } catch (error) {
    void sql.end({ timeout: 0 });
    throw error;
  }
}

/**
 * --watch: the same check, again every `intervalMs` and as soon as the pipeline stores a quote
 * (LISTEN on the channel it notifies). On a terminal the screen is redrawn in place; otherwise
 * each check is printed after the last. Ctrl-C (or SIGTERM) ends it with exit 0.
 *
 * Each check, connecting included, ends within --timeout: if it fails or times out, the screen
 * says UNKNOWN and the connection is dropped (it may be wedged: a backend stopped, a table
 * locked), and the next check opens a new one, looking the embedded server up again (after a
 * restart its socket may be in a new folder). A connection lost since the last check (the server
 * restarted meanwhile) is replaced at once, within the same check.
 */
async function watch(invocation: Invocation, intervalMs: number): Promise<number> {
  const tty = process.stdout.isTTY === true;
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  let wake = () => {};
  // A quote stored while a check runs must not wait for the next interval.
  let stored = false;
  const onStored = () => ((stored = true), wake());
  // The connection as a promise, so that one dropped while it was still opening is closed too.
  let connection: Promise<Sql> | undefined;
  let opened = 0;
  const open = () => (connection ??= openWatchConnection(invocation, opened++ === 0, onStored));
  const drop = (which: Promise<Sql> | undefined) => {
    if (which === undefined || which !== connection) return;
    connection = undefined;
    void which.then((sql) => sql.end({ timeout: 0 }), () => {});
  };
  const checkOnce = async (): Promise<PairReport[]> => {
    const reused = connection !== undefined;
    const current = open();
    try {
      return await check(await current, invocation, new Date());
    } catch (error) {
      drop(current);
      if (!reused || !isConnectionLost(error)) throw error;
      return await check(await open(), invocation, new Date());
    }
  };
  try {
    while (!stop.signal.aborted) {
      stored = false;
      let output: string;
      try {
        output = render(await withinTimeout(checkOnce(), invocation.timeoutMs), invocation);
      } catch (error) {
        drop(connection);
        output = formatUnknown(describeError(error, "check").line, invocation.format);
      }
      process.stdout.write(tty ? `\x1b[H\x1b[2J${output}\n` : `${output}\n`);
      if (stored) continue;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, intervalMs);
        wake = () => (clearTimeout(timer), resolve());
        stop.signal.addEventListener("abort", wake, { once: true });
      });
    }
    return STATE.OK;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    drop(connection);
  }
}

// No top-level await: `bun build --compile --bytecode` (bun run build:monitor) does not take it.
if (import.meta.main) {
  // A monitor never hangs: once it has printed, a socket to a server that stopped answering
  // must not keep it alive, nor a goodbye the server is slow to acknowledge.
  void main(Bun.argv.slice(2)).then((code) => process.exit(code));
}
