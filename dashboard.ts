/**
 * dashboard.ts: the web page and its JSON API (Hono on Bun). createApp() only wires routes to
 * named handlers; handlers are thin: validate every parameter with valibot, call the read queries
 * of lib/views.ts (and the rule of lib/rule.ts), answer JSON. The live feed's engine (LISTEN,
 * fan-out, replay, SSE) is lib/live_feed.ts.
 *
 * The page (public/) draws the whole history with uPlot, served from node_modules. The API:
 * /api/pairs, /api/quotes (downsampled in SQL, with the rule's daily moving average and band),
 * /api/latest, /api/official (BCB's PTAX and the cross-check), /api/alerts, /api/runs, /api/quotes.csv
 * (streamed, PTAX bulletins among the quotes), /api/stream (Server-Sent
 * Events fed by LISTEN on the feed's channel), /healthz and /metrics (Prometheus).
 *
 * CLI: `bun dashboard.ts [--host 127.0.0.1] [--port 8050]` (see `--help`).
 */
import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { join } from "node:path";
import { Hono, type Context, type MiddlewareHandler } from "hono";
import { serveStatic } from "hono/bun";
import { getCookie, setCookie } from "hono/cookie";
import { HTTPException } from "hono/http-exception";
import { secureHeaders } from "hono/secure-headers";
import * as v from "valibot";
import {
  formatSaoPauloTime,
  isCalendarDate,
  isStale,
  marketTimeBetween,
  saoPauloDay,
  saoPauloDayStart,
} from "./lib/calendar.ts";
import { formatDuration, printDescribed, readFlags } from "./lib/cli.ts";
import { connect, type DatabaseConfig, loadDatabaseConfig } from "./lib/connect.ts";
import type { Sql } from "./lib/pool.ts";
import { CotacaoError, describeError, envIssue, EXIT, isConnectionLost, usageError } from "./lib/errors.ts";
import type { FeedPosition } from "./lib/feed.ts";
import { describeGap } from "./lib/gaps.ts";
import { feedStream, LastEventIdSchema, LiveFeed, Memo } from "./lib/live_feed.ts";
import { migrate } from "./lib/migrations.ts";
import { PROJECT_DIR } from "./lib/project.ts";
import { PTAX_CURRENCIES, ptaxCurrencyOf } from "./lib/official.ts";
import { DEFAULT_PAIR, PairSchema } from "./lib/quote.ts";
import { type AnalysisConfig, evaluateSeries, loadAnalysisConfig, paramsFor, type RuleParams } from "./lib/rule.ts";
import {
  type AlertCursor,
  countAlerts,
  divergenceSeries,
  exportOfficial,
  exportQuotes,
  type HealthFacts,
  healthFacts,
  type LatestFacts,
  latestFacts,
  listAlerts,
  listRuns,
  loadDailyRollup,
  newestOfficial,
  type NewestOfficial,
  type OfficialExportRow,
  officialRates,
  loadQuoteBuckets,
  pairSpan,
  pairSummaries,
  refreshRollups,
  type RollupSeries,
  storedPairs,
} from "./lib/views.ts";

const DEFAULT_HOST = "127.0.0.1";
// The original Dash dashboard's port.
const DEFAULT_PORT = 8050;
const DEFAULT_POINTS = 1500;
const POINTS_BOUNDS = [2, 10_000] as const;
const DEFAULT_RUNS = 20;
const RUNS_BOUNDS = [1, 500] as const;
const DEFAULT_ALERTS = 200;
const ALERTS_BOUNDS = [1, 500] as const;
const DEFAULT_HEARTBEAT_MS = 15_000;
// A token anyone could guess in an afternoon protects nothing.
const MIN_TOKEN_LENGTH = 16;
const SESSION_COOKIE = "cotacao_session";
// How often the live feed checks that its LISTEN connection still hears (see LiveFeed).
const DEFAULT_WATCHDOG_MS = 5_000;
const HEALTH_TIMEOUT_MS = 3_000;
// With a token, /healthz is the one route anyone may ask: however many do, PostgreSQL answers
// at most one of its reads per this interval (a load balancer probes every few seconds).
const HEALTH_REUSE_MS = 1_000;
// CSV downloads at once: each reads the database in turns, with interactive requests waiting
// behind; a person downloads one file at a time.
const DEFAULT_MAX_EXPORTS = 2;
const EXPORT_RETRY_AFTER_S = 10;
// A download whose client takes nothing for this long (a reader that never reads, a client that
// vanished without closing) is cut off, freeing its slot.
const DEFAULT_EXPORT_STALL_MS = 30_000;
const NO_DATA = "no data yet: run bun main_pipeline.ts --backfill 60, then bun main_pipeline.ts (from cron, or with --every 60s)";
const STATIC_DIR = join(PROJECT_DIR, "public");
// uPlot from node_modules, never a CDN: the page works offline.
const VENDOR_FILES: Record<string, { path: string; type: string }> = {
  "uPlot.iife.min.js": { path: join(PROJECT_DIR, "node_modules", "uplot", "dist", "uPlot.iife.min.js"), type: "text/javascript; charset=utf-8" },
  "uPlot.min.css": { path: join(PROJECT_DIR, "node_modules", "uplot", "dist", "uPlot.min.css"), type: "text/css; charset=utf-8" },
};
// No inline script or style, nothing from another origin, no framing.
const CONTENT_SECURITY_POLICY = {
  defaultSrc: ["'self'"],
  scriptSrc: ["'self'"],
  styleSrc: ["'self'"],
  imgSrc: ["'self'", "data:"],
  connectSrc: ["'self'"],
  frameAncestors: ["'none'"],
  baseUri: ["'none'"],
  formAction: ["'self'"],
};

/** What createApp() needs besides the pool. */
export interface DashboardOptions {
  /** The rule's settings (loadAnalysisConfig(env) in main()): the moving average, its band and staleness. */
  analysis: AnalysisConfig;
  /** When set, every request must carry it (Bearer header, or once `?token=`, which sets a cookie). */
  token?: string;
  /** The clock; tests pass their own. */
  now?: () => Date;
  /** SSE heartbeat comment interval (15 s). */
  heartbeatMs?: number;
  /** How old, in market time, the newest quote may be before the pair is stale (default: the analysis config's). */
  staleAfterMs?: number;
  /** How often the live feed checks that its LISTEN connection still hears (5 s). */
  watchdogMs?: number;
  /** CSV downloads served at once (2); beyond, 503 with Retry-After. */
  maxExports?: number;
  /** How long a CSV download's client may take nothing before it is cut off (30 s; Bun.serve's whole seconds). */
  exportStallMs?: number;
  /**
   * The host names (no port; IPv6 in brackets) a request's Host header may name; others get 421.
   * Unset: any. Against DNS rebinding: a page of evil.example whose name now resolves to
   * 127.0.0.1 reaches a loopback server, but its requests still say `Host: evil.example`.
   */
  allowedHosts?: readonly string[];
}

/** The app, plus close(): stops the live feed (its LISTEN and timers). The pool stays the caller's. */
export type DashboardApp = Hono & { close(): Promise<void> };

// ---------------------------------------------------------------------------------------------
// Query parameters (valibot): a bad one is a 400 naming it, never a 500

const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/;
const DAY_MS = 86_400_000;

/** A time parameter: ISO 8601 with a zone, or a São Paulo date (its start for `from`, its end for `to`). */
function timeParam(end: "start" | "end") {
  return v.optional(
    v.pipe(
      v.string(),
      v.check(
        (text) => (isCalendarDate(text) || (DATE_TIME.test(text) && isCalendarDate(text.slice(0, 10)) && !Number.isNaN(Date.parse(text)))) && text >= "1900" && text < "2200",
        (issue) => `must be a date like 2024-08-23 or a time like 2024-08-23T17:39:40Z, got "${String(issue.input)}"`,
      ),
      v.transform((text) => {
        if (!isCalendarDate(text)) return new Date(text);
        if (end === "start") return saoPauloDayStart(text);
        const next = new Date(Date.parse(`${text}T00:00:00Z`) + DAY_MS).toISOString().slice(0, 10);
        return new Date(saoPauloDayStart(next).getTime() - 1);
      }),
    ),
  );
}

/** A whole number in [min, max], written in digits. */
function countParam(fallback: number, [min, max]: readonly [number, number]) {
  return v.pipe(
    v.optional(v.string(), String(fallback)),
    v.check((text) => /^\d{1,6}$/.test(text) && Number(text) >= min && Number(text) <= max, (issue) => `must be a whole number from ${min} to ${max}, got "${String(issue.input)}"`),
    v.transform(Number),
  );
}

const PairParam = v.optional(PairSchema, DEFAULT_PAIR);
const RangeParams = { from: timeParam("start"), to: timeParam("end") };
const QuotesQuery = v.object({ pair: PairParam, ...RangeParams, points: countParam(DEFAULT_POINTS, POINTS_BOUNDS) });
const CsvQuery = v.object({ pair: PairParam, ...RangeParams });
const LatestQuery = v.object({ pair: PairParam });
const OfficialQuery = v.object({ pair: PairParam, ...RangeParams });
// The cursor a page of alerts ends with (its `next`): the last alert's start, to the microsecond, and its id.
const AlertCursorParam = v.optional(
  v.pipe(
    v.string(),
    v.regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z_\d{1,15}$/, (issue) => `must be the "next" of an earlier answer, like 2020-03-09T20:00:00.000000Z_42, got "${String(issue.input)}"`),
    v.check((text) => isCalendarDate(text.slice(0, 10)) && !Number.isNaN(Date.parse(text.slice(0, 23) + "Z")), (issue) => `must name a real time, got "${String(issue.input)}"`),
    v.transform((text): AlertCursor => {
      const at = text.lastIndexOf("_");
      return { startedAt: text.slice(0, at), id: Number(text.slice(at + 1)) };
    }),
  ),
);
const AlertsQuery = v.object({ pair: v.optional(PairSchema), ...RangeParams, before: AlertCursorParam, limit: countParam(DEFAULT_ALERTS, ALERTS_BOUNDS) });
const RunsQuery = v.object({ limit: countParam(DEFAULT_RUNS, RUNS_BOUNDS) });

/** The query string parsed by `schema`, or a 400 whose message names the first bad parameter. */
function readQuery<S extends v.GenericSchema>(c: Context, schema: S): v.InferOutput<S> {
  const result = v.safeParse(schema, c.req.query());
  if (result.success) return result.output;
  const [issue] = result.issues;
  const name = issue?.path?.map((item) => String(item.key)).join(".") ?? "the query";
  throw badRequest(`${name} ${issue?.message ?? "is invalid"}`);
}

const badRequest = (what: string) => new HTTPException(400, { message: `Cannot answer: ${what}` });

/**
 * The range asked for, each end defaulting to the pair's first or last quote; a 404 for a pair
 * without quotes, unless `unchecked` (the caller finds out itself, saving a round trip).
 */
async function resolveRange(sql: Sql, pair: string, from: Date | undefined, to: Date | undefined, unchecked = false): Promise<{ from: Date; to: Date }> {
  if (from && to && from >= to) throw badRequest(`from (${from.toISOString()}) must be before to (${to.toISOString()})`);
  if (unchecked && from && to) return { from, to };
  const span = await pairSpan(sql, pair);
  if (!span) throw await unknownPair(sql, pair);
  const range = { from: from ?? span.first, to: to ?? span.last };
  if (range.from > range.to) throw badRequest(`from (${range.from.toISOString()}) must be before to (${range.to.toISOString()})`);
  return range;
}

async function unknownPair(sql: Sql, pair: string): Promise<HTTPException> {
  const pairs = await storedPairs(sql);
  const stored = pairs.length ? `stored pairs: ${pairs.join(", ")}` : NO_DATA;
  return new HTTPException(404, { message: `Cannot answer: no quotes stored for ${pair}; ${stored}` });
}

// ---------------------------------------------------------------------------------------------
// The chart's moving average (pure)

/**
 * The rule's daily moving average and its ±threshold band, for the days of [from, to]: the
 * rule evaluated over the pair's whole daily series, as `bun analysis.ts --days` evaluates it,
 * so that each day's figures are the very numbers it prints. Columnar: [day starts (Unix s), ma,
 * lower, upper], null where history is insufficient.
 */
export function movingAverageBand(
  series: { days: Int32Array; closes: Float64Array; dates: string[]; dayStarts: Float64Array },
  params: RuleParams,
  from: Date,
  to: Date,
): [number[], (number | null)[], (number | null)[], (number | null)[]] {
  const { average } = evaluateSeries(series, params);
  const out: [number[], (number | null)[], (number | null)[], (number | null)[]] = [[], [], [], []];
  // The São Paulo days that overlap the range.
  const first = saoPauloDay(from);
  const last = saoPauloDay(to);
  for (let i = 0; i < series.days.length; i++) {
    const date = series.dates[i]!;
    if (date < first || date > last) continue;
    const ma = average[i]!;
    const known = !Number.isNaN(ma);
    out[0].push(series.dayStarts[i]!);
    out[1].push(known ? ma : null);
    out[2].push(known ? ma * (1 - params.threshold) : null);
    out[3].push(known ? ma * (1 + params.threshold) : null);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The card's status (pure)

/** The feed's state for the card: live, stale (market time), failing (pipeline runs) or empty. */
export interface FeedStatus {
  state: "live" | "stale" | "failing" | "empty";
  since: string | null;
  message: string;
}

/**
 * The instant a quote of `ts` becomes stale: the first millisecond at which isStale() (lib/calendar.ts's
 * market clock, so monitor, analysis and dashboard agree) says so. Found by bisection; market time
 * only grows, so the pair is stale at every later instant.
 */
export function staleSince(ts: Date, staleAfterMs: number): Date {
  let low = ts.getTime();
  // Market time runs at least 5 days in 7, less two holidays: this is always past the moment.
  let high = low + staleAfterMs * 2 + 5 * DAY_MS;
  while (high - low > 1) {
    const mid = Math.floor((low + high) / 2);
    if (isStale(ts, new Date(mid), staleAfterMs)) high = mid;
    else low = mid;
  }
  return new Date(high);
}

/**
 * The card of one pair, worked out once per stored state (not per request: /api/latest serves
 * thousands a second): its change, when it turns stale, and the status it shows before and after.
 */
export interface LatestView {
  facts: LatestFacts;
  changePct: number | null;
  /** The card's status at `now`: a failing pipeline first, then staleness, else live. */
  statusAt(now: Date): FeedStatus;
}

/** The view of `facts`, with staleness after `staleAfterMs` of market time. */
export function latestView(facts: LatestFacts, staleAfterMs: number): LatestView {
  const changePct = facts.previousClose === null ? null : (Number(facts.bid) / Number(facts.previousClose) - 1) * 100;
  if (facts.failingSince && facts.lastRun?.status === "failed") {
    const step = facts.lastRun.failedStep ? ` at the ${facts.lastRun.failedStep} step` : "";
    const failing: FeedStatus = {
      state: "failing",
      since: facts.failingSince.toISOString(),
      message: `pipeline failing since ${formatSaoPauloTime(facts.failingSince)}: run ${facts.lastRun.id} failed${step}${facts.lastRun.error ? `: ${facts.lastRun.error.split("\n")[0]}` : ""}`,
    };
    return { facts, changePct, statusAt: () => failing };
  }
  const staleAt = staleSince(facts.ts, staleAfterMs);
  const live: FeedStatus = { state: "live", since: null, message: `live: quote of ${formatSaoPauloTime(facts.ts, { seconds: true })}` };
  const stale: FeedStatus = {
    state: "stale",
    since: staleAt.toISOString(),
    message: `stale since ${formatSaoPauloTime(staleAt)}: no quote for over ${formatDuration(staleAfterMs)} of market time`,
  };
  return { facts, changePct, statusAt: (now) => (now >= staleAt ? stale : live) };
}

// ---------------------------------------------------------------------------------------------
// Tokens

/** Equal strings, in time that does not depend on where they differ (or their lengths). */
function sameSecret(given: string, expected: string): boolean {
  const digest = (text: string) => createHash("sha256").update(text).digest();
  return timingSafeEqual(digest(given), digest(expected));
}

/** Requests that carried the token (Bearer or session cookie): /healthz gives them the detail. */
const AUTHENTICATED = new WeakSet<Request>();

// Answered without the token, for a load balancer's probe: unauthenticated, its body names no
// pair and no data (see the route).
const OPEN_PATHS: ReadonlySet<string> = new Set(["/healthz"]);

/**
 * With a token: a request passes with `Authorization: Bearer <token>` or the session cookie;
 * `?token=<token>` sets the cookie (HttpOnly, SameSite=Strict; it holds an HMAC of the token,
 * never the token) and redirects to the same URL without it, so it stays out of history.
 * /healthz passes without it, as an anonymous request.
 */
function requireToken(token: string): MiddlewareHandler {
  const session = createHmac("sha256", token).update("cotacao dashboard session").digest("hex");
  const refuse = (what: string) =>
    new HTTPException(401, {
      message: `Cannot answer: ${what}; send "Authorization: Bearer <DASHBOARD_TOKEN>", or open the page once with ?token=<DASHBOARD_TOKEN>`,
    });
  return async (c, next) => {
    const url = new URL(c.req.url);
    const given = url.searchParams.get("token");
    if (given !== null) {
      if (!sameSecret(given, token)) throw refuse("wrong token");
      setCookie(c, SESSION_COOKIE, session, { httpOnly: true, sameSite: "Strict", path: "/", secure: url.protocol === "https:" });
      url.searchParams.delete("token");
      // A path on this server: "//evil.example/x" (or "/\evil.example") would be read by the
      // browser as another site's address.
      return c.redirect(`${url.pathname.replace(/^[/\\]+/, "/")}${url.search}`, 303);
    }
    const open = OPEN_PATHS.has(c.req.path);
    const pass = () => (AUTHENTICATED.add(c.req.raw), next());
    const header = c.req.header("Authorization");
    if (header !== undefined) {
      const bearer = /^Bearer (.+)$/i.exec(header)?.[1];
      if (bearer !== undefined && sameSecret(bearer, token)) return pass();
      if (open) return next();
      throw refuse("wrong token");
    }
    const cookie = getCookie(c, SESSION_COOKIE);
    if (cookie !== undefined && sameSecret(cookie, session)) return pass();
    if (open) return next();
    throw refuse("this dashboard needs its token");
  };
}

/**
 * Only requests whose Host header names one of `allowed` (with any port, or none); others get 421
 * Misdirected Request. The name is what tells a rebound page from the dashboard's own: the port
 * is the server's own either way (the browser connected to it), and a reverse proxy may forward
 * its own port in the header.
 */
function requireHost(allowed: readonly string[]): MiddlewareHandler {
  const names = new Set(allowed.map((name) => name.toLowerCase()));
  return async (c, next) => {
    const [, name] = /^(\[[0-9a-f:.]+\]|[a-z0-9.-]+)(?::\d{1,5})?$/i.exec(c.req.header("Host") ?? "") ?? [];
    if (name !== undefined && names.has(name.toLowerCase())) return next();
    return c.json(
      { error: `Cannot answer: this dashboard answers only as ${[...names].join(", ")} (the Host header); open it by one of those names, or add this one to DASHBOARD_ALLOWED_HOSTS` },
      421,
      { "Cache-Control": "no-store" },
    );
  };
}

// ---------------------------------------------------------------------------------------------
// The app

/** JSON with an ETag of its body; 304 when the client has it already. */
function jsonWithETag(c: Context, body: unknown): Response {
  const text = JSON.stringify(body);
  const etag = `"${Bun.hash(text).toString(36)}"`;
  const headers = { ETag: etag, "Cache-Control": "no-cache" };
  const asked = c.req.header("If-None-Match");
  if (asked && asked.split(",").some((tag) => tag.trim().replace(/^W\//, "") === etag)) return c.body(null, 304, headers);
  return c.body(text, 200, { ...headers, "Content-Type": "application/json; charset=utf-8" });
}

/** Whether the URL path decodes to text with a NUL byte in it. */
function hasNulByte(path: string): boolean {
  try {
    return decodeURIComponent(path).includes("\0");
  } catch {
    return false; // not decodable: the static handler answers 404 itself
  }
}

const iso = (date: Date | null) => date?.toISOString() ?? null;
const csvField = (value: string | null) => value ?? "";

/** Prometheus label values: backslash, quote and line breaks escaped. */
const label = (value: string) => value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms / 1000} s`)), ms))),
  ]).finally(() => clearTimeout(timer));
}

/** The dashboard's routes over an open pool; tests call `app.request()` on it, no server needed. */
/** What the handlers share: the pool, the options, the live feed and the caches it keeps honest. */
interface DashboardState {
  sql: Sql;
  options: DashboardOptions;
  now: () => Date;
  staleAfterMs: number;
  heartbeatMs: number;
  feed: LiveFeed;
  /** /api/latest's answers, per pair. */
  latestCache: Memo<LatestView | undefined>;
  /** The chart's daily series, per pair. */
  dailyCache: Memo<RollupSeries>;
  /** /healthz's facts, shared by the requests of one HEALTH_REUSE_MS. */
  readHealth: () => Promise<HealthFacts>;
  /** CSV downloads: how many run now, the most at once, and how long a stalled reader is waited for. */
  exports: { running: number; max: number; stallMs: number };
}

/**
 * The dashboard's Hono app over `sql`: security headers, the Host and token checks, each route
 * wired to its handler, one error handler. close() stops the live feed.
 */
export function createApp(sql: Sql, options: DashboardOptions): DashboardApp {
  const staleAfterMs = options.staleAfterMs ?? options.analysis.staleAfterMs;
  const feed = new LiveFeed(sql, options.watchdogMs ?? DEFAULT_WATCHDOG_MS, (line) => console.error(line));
  let health: { at: number; facts: Promise<HealthFacts> } | undefined;
  const state: DashboardState = {
    sql,
    options,
    now: options.now ?? (() => new Date()),
    staleAfterMs,
    heartbeatMs: options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS,
    feed,
    // /api/latest and the chart's daily series from memory: at thousands of requests a second a
    // query each would be the bottleneck. Entries are dropped whenever a notification says
    // something changed (LISTEN), and used at all only while the feed is listening.
    latestCache: new Memo(feed, (pair) => latestFacts(sql, pair).then((facts) => facts && latestView(facts, staleAfterMs))),
    dailyCache: new Memo(feed, (pair) => loadDailyRollup(sql, pair)),
    readHealth: () => {
      const at = performance.now();
      if (!health || at - health.at >= HEALTH_REUSE_MS) health = { at, facts: withTimeout(healthFacts(sql), HEALTH_TIMEOUT_MS, "PostgreSQL") };
      return health.facts;
    },
    exports: { running: 0, max: options.maxExports ?? DEFAULT_MAX_EXPORTS, stallMs: options.exportStallMs ?? DEFAULT_EXPORT_STALL_MS },
  };

  const app = new Hono();
  app.use(
    secureHeaders({
      contentSecurityPolicy: CONTENT_SECURITY_POLICY,
      referrerPolicy: "no-referrer",
      xFrameOptions: "DENY",
      // Plain http on a LAN: a Strict-Transport-Security header would only mislead.
      strictTransportSecurity: false,
    }),
  );
  if (options.allowedHosts !== undefined) app.use(requireHost(options.allowedHosts));
  if (options.token !== undefined) app.use(requireToken(options.token));

  app.get("/api/pairs", (c) => answerPairs(state, c));
  app.get("/api/quotes", (c) => answerQuotes(state, c));
  app.get("/api/quotes.csv", (c) => answerCsv(state, c));
  app.get("/api/latest", (c) => answerLatest(state, c));
  app.get("/api/official", (c) => answerOfficial(state, c));
  app.get("/api/alerts", (c) => answerAlerts(state, c));
  app.get("/api/runs", (c) => answerRuns(state, c));
  app.get("/api/stream", (c) => answerStream(state, c));
  app.get("/healthz", (c) => answerHealth(state, c));
  app.get("/metrics", (c) => answerMetrics(state, c));
  app.get("/vendor/:file", answerVendorFile);
  // A path with a NUL byte (%00) names no file; the file system would throw on it (a 500).
  app.get("/*", (c, next) => (hasNulByte(c.req.path) ? c.notFound() : next()), serveStatic({ root: STATIC_DIR }));
  app.notFound(answerNotFound);
  app.onError(answerError);
  return Object.assign(app, { close: () => feed.close() });
}

/** GET /api/pairs: every stored pair with its first and last quote and how many there are. */
async function answerPairs(state: DashboardState, c: Context): Promise<Response> {
  const { sql } = state;
  const pairs = await pairSummaries(sql);
  return c.json({ pairs: pairs.map((p) => ({ pair: p.pair, first: iso(p.first), last: iso(p.last), count: p.count })) });
}

/** GET /api/quotes: the chart's buckets for a pair and range, with the rule's moving-average band. */
async function answerQuotes(state: DashboardState, c: Context): Promise<Response> {
  const { sql, options, dailyCache } = state;
  const query = readQuery(c, QuotesQuery);
  const { from, to } = await resolveRange(sql, query.pair, query.from, query.to, query.from !== undefined && query.to !== undefined);
  const params = paramsFor(options.analysis, query.pair);
  const [buckets, daily] = await Promise.all([loadQuoteBuckets(sql, query.pair, from, to, query.points), dailyCache.get(query.pair)]);
  // A range given whole was not looked up: a pair with no daily series has no quotes at all.
  if (daily.days.length === 0) throw await unknownPair(sql, query.pair);
  return jsonWithETag(c, {
    pair: query.pair,
    from: from.toISOString(),
    to: to.toISOString(),
    bucketSeconds: buckets.bucketSeconds,
    resolution: buckets.resolution,
    points: buckets.ts.length,
    data: [buckets.ts, buckets.first, buckets.min, buckets.max, buckets.last],
    ma: { windowDays: params.windowDays, thresholdPct: params.threshold * 100, data: movingAverageBand(daily, params, from, to) },
  });
}

/** GET /api/quotes.csv: a pair's quotes in a range, streamed in batches; at most `maxExports` at once, a stalled reader cut off. */
async function answerCsv(state: DashboardState, c: Context): Promise<Response> {
  const { sql } = state;
  const query = readQuery(c, CsvQuery);
  const { from, to } = await resolveRange(sql, query.pair, query.from, query.to);
  if (state.exports.running >= state.exports.max) {
    return c.json(
      { error: `Cannot answer: ${state.exports.max} CSV downloads are running already, the most at once; try again in a few seconds` },
      503,
      { "Cache-Control": "no-store", "Retry-After": String(EXPORT_RETRY_AFTER_S) },
    );
  }
  state.exports.running++;
  // A reader that stalls is cut off: Bun closes the connection once nothing could be written to it
  // for this long, and cancels the stream (below), which frees the slot. Bun counts what the
  // socket takes, so a slow reader that keeps taking is not cut off; a timer on pull() could not
  // tell it from a stalled one (the kernel's buffers hold megabytes). c.env is Bun's server
  // under Bun.serve; app.request() has none.
  (c.env as Partial<Pick<Bun.Server<undefined>, "timeout">> | undefined)?.timeout?.(c.req.raw, Math.ceil(state.exports.stallMs / 1000));
  let official: OfficialExportRow[];
  try {
    official = ptaxCurrencyOf(query.pair) ? await exportOfficial(sql, query.pair, from, to) : [];
  } catch (error) {
    state.exports.running--;
    throw error;
  }
  const batches = exportQuotes(sql, query.pair, from, to);
  const encoder = new TextEncoder();
  let finished = false;
  // Once, however the download ends: read to the end, failed, cancelled by the client or cut off.
  const finish = () => {
    if (finished) return false;
    finished = true;
    state.exports.running--;
    // Queued behind a batch being read, if any; the generator then ends without another query.
    void batches.return(undefined).catch(() => {});
    return true;
  };
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(encoder.encode(`${CSV_HEADER}\n`));
    },
    async pull(controller) {
      try {
        const next = await batches.next();
        // The client went away while the batch was read: it is dropped.
        if (finished) return;
        if (next.done) {
          finish();
          // Bulletins after the last quote.
          if (official.length) controller.enqueue(encoder.encode(official.splice(0).map(officialCsvLine).join("")));
          return controller.close();
        }
        let text = "";
        for (const row of next.value) {
          // Both times are ISO 8601 UTC with milliseconds: as text, they sort as times.
          while (official.length && official[0]!.ts <= row.ts) text += officialCsvLine(official.shift()!);
          text += `${row.ts},${row.bid},${row.ask},${csvField(row.high)},${csvField(row.low)},,,\n`;
        }
        controller.enqueue(encoder.encode(text));
      } catch (error) {
        if (!finish()) return;
        console.error(describeError(error, "export the quotes").line);
        controller.error(error);
      }
    },
    cancel() {
      finish();
    },
  });
  const day = (date: Date) => date.toISOString().slice(0, 10);
  return c.body(body, 200, {
    "Content-Type": "text/csv; charset=utf-8",
    "Content-Disposition": `attachment; filename="cotacao-${query.pair}-${day(from)}-${day(to)}.csv"`,
    "Cache-Control": "no-store",
  });
}

/**
 * The CSV export's columns: AwesomeAPI's quotes fill the first five, BCB's PTAX bulletins the
 * last three; each row is one or the other, in time order, so a spreadsheet can filter either
 * source by its empty columns (the two sources are never mixed in one row).
 */
const CSV_HEADER = "ts,bid,ask,high,low,ptax_bulletin,ptax_buy,ptax_sell";

/** A PTAX bulletin's CSV row: the quote columns left empty. */
const officialCsvLine = (row: OfficialExportRow) => `${row.ts},,,,,${row.bulletin},${row.buy},${row.sell}\n`;

/** The card's and /metrics' view of the newest official bulletin and cross-check. */
function officialView(official: NewestOfficial | undefined) {
  if (!official) return null;
  const { bulletin, divergence } = official;
  return {
    bulletin: bulletin.bulletin,
    publishedAt: bulletin.publishedAt,
    buy: bulletin.buy,
    sell: bulletin.sell,
    divergence: divergence && { day: divergence.day, publishedAt: divergence.publishedAt, buy: divergence.buy, bid: divergence.bid, quoteAt: divergence.quoteAt, divergencePct: divergence.divergencePct },
  };
}

/**
 * GET /api/official: BCB's PTAX bulletins of a pair whose São Paulo day is in [from, to] (each
 * end optional: the whole history), and the cross-check of each day against AwesomeAPI.
 */
async function answerOfficial(state: DashboardState, c: Context): Promise<Response> {
  const { sql } = state;
  const query = readQuery(c, OfficialQuery);
  if (query.from && query.to && query.from >= query.to) throw badRequest(`from (${query.from.toISOString()}) must be before to (${query.to.toISOString()})`);
  const from = query.from ? saoPauloDay(query.from) : null;
  const to = query.to ? saoPauloDay(query.to) : null;
  // A pair PTAX does not publish (BTC-BRL) is no error: it has no official rates, and says why.
  if (!ptaxCurrencyOf(query.pair)) {
    const covers = PTAX_CURRENCIES.map((currency) => `${currency}-BRL`).join(", ");
    return jsonWithETag(c, { pair: query.pair, from, to, covered: false, message: `PTAX publishes no rate for ${query.pair}; it covers ${covers}`, bulletins: [], divergence: [] });
  }
  const [bulletins, divergence] = await Promise.all([officialRates(sql, query.pair, from, to), divergenceSeries(sql, query.pair, from, to)]);
  return jsonWithETag(c, {
    pair: query.pair,
    from,
    to,
    covered: true,
    bulletins: bulletins.map(({ pair: _pair, ...rate }) => rate),
    divergence,
  });
}

/** GET /api/latest: the card: a pair's newest quote, its change, its age and status, its unfilled gaps. */
async function answerLatest(state: DashboardState, c: Context): Promise<Response> {
  const { sql, now, latestCache } = state;
  const { pair } = readQuery(c, LatestQuery);
  const [view, official] = await Promise.all([latestCache.get(pair), ptaxCurrencyOf(pair) ? newestOfficial(sql, pair) : undefined]);
  if (!view) {
    const pairs = await storedPairs(sql);
    if (pairs.length > 0) throw await unknownPair(sql, pair);
    const status: FeedStatus = { state: "empty", since: null, message: NO_DATA };
    return c.json({ pair, ts: null, bid: null, ask: null, changePct: null, ageSeconds: null, status, official: officialView(official) }, 200, { "Cache-Control": "no-store" });
  }
  const at = now();
  const { facts } = view;
  return c.json(
    {
      pair,
      ts: facts.ts.toISOString(),
      bid: facts.bid,
      ask: facts.ask,
      previousClose: facts.previousClose,
      changePct: view.changePct,
      ageSeconds: Math.max(0, Math.round((at.getTime() - facts.ts.getTime()) / 1000)),
      status: view.statusAt(at),
      // Days too old for a run to fill: the person must load them (the message says how).
      gaps: (facts.gaps ?? []).map((gap) => ({ from: gap.from, to: gap.to, message: describeGap(gap) })),
      // BCB's newest PTAX bulletin and the newest cross-check: the number to trust when AwesomeAPI fails.
      official: officialView(official),
    },
    200,
    { "Cache-Control": "no-store" },
  );
}

/** GET /api/alerts: a page of alerts, newest first, with the total and the next page's cursor. */
async function answerAlerts(state: DashboardState, c: Context): Promise<Response> {
  const { sql } = state;
  const query = readQuery(c, AlertsQuery);
  if (query.from && query.to && query.from >= query.to) throw badRequest(`from (${query.from.toISOString()}) must be before to (${query.to.toISOString()})`);
  if (query.pair && !(await pairSpan(sql, query.pair))) throw await unknownPair(sql, query.pair);
  const filter = { ...(query.pair ? { pair: query.pair } : {}), ...(query.from ? { from: query.from } : {}), ...(query.to ? { to: query.to } : {}) };
  // One more than asked: whether there is a next page.
  const [rows, total] = await Promise.all([listAlerts(sql, { ...filter, limit: query.limit + 1, ...(query.before ? { before: query.before } : {}) }), countAlerts(sql, filter)]);
  const alerts = rows.slice(0, query.limit);
  return c.json({
    total,
    next: rows.length > query.limit ? (alerts.at(-1)?.cursor ?? null) : null,
    alerts: alerts.map(({ cursor: _cursor, ...a }) => ({
      ...a,
      firedAt: iso(a.firedAt),
      resolvedAt: iso(a.resolvedAt),
      lastSeenAt: iso(a.lastSeenAt),
      peakAt: iso(a.peakAt),
      firedSeenAt: iso(a.firedSeenAt),
      resolvedSeenAt: iso(a.resolvedSeenAt),
      supersededAt: iso(a.supersededAt),
    })),
  });
}

/** GET /api/runs: the newest pipeline runs. */
async function answerRuns(state: DashboardState, c: Context): Promise<Response> {
  const { sql } = state;
  const { limit } = readQuery(c, RunsQuery);
  const runs = await listRuns(sql, limit);
  return c.json({ runs: runs.map((r) => ({ ...r, startedAt: iso(r.startedAt), finishedAt: iso(r.finishedAt) })) });
}

/** GET /healthz: 200 while every pair is fresh, else 503 with the reason (one word without the token). */
async function answerHealth(state: DashboardState, c: Context): Promise<Response> {
  const { options, now, staleAfterMs, readHealth } = state;
  // With a token, a request without it (a load balancer's probe) learns the state and one
  // word for the cause: no pair, no data, no error text.
  const detailed = options.token === undefined || AUTHENTICATED.has(c.req.raw);
  const headers = { "Cache-Control": "no-store" };
  const unhealthy = (word: string, reason: string, extra: Record<string, unknown> = {}) =>
    c.json(detailed ? { ok: false, status: "degraded", reason, ...extra } : { ok: false, status: "degraded", reason: word }, 503, headers);
  let facts;
  try {
    facts = await readHealth();
  } catch (error) {
    return unhealthy("database", describeError(error, "reach the database").line);
  }
  if (facts.pairs.length === 0) return unhealthy("empty", NO_DATA);
  const at = now();
  const pairs = facts.pairs.map((p) => ({
    pair: p.pair,
    newest: p.newest.toISOString(),
    // A quote stamped ahead of this clock is new: 0 s old, never negative (as /metrics says).
    ageSeconds: Math.max(0, Math.round((at.getTime() - p.newest.getTime()) / 1000)),
    stale: isStale(p.newest, at, staleAfterMs),
  }));
  const stale = pairs.filter((p) => p.stale);
  if (stale.length) {
    return unhealthy("stale", `stale: ${stale.map((p) => `${p.pair} (newest quote ${formatSaoPauloTime(new Date(p.newest))})`).join(", ")} older than ${formatDuration(staleAfterMs)} of market time`, { pairs });
  }
  if (!detailed) return c.json({ ok: true, status: "ok" }, 200, headers);
  return c.json({ ok: true, status: "ok", pairs, lastRun: facts.lastRun && { ...facts.lastRun, startedAt: iso(facts.lastRun.startedAt), finishedAt: iso(facts.lastRun.finishedAt) } }, 200, headers);
}

/** GET /metrics: the Prometheus text exposition of the quotes, the rule, alerts and runs. */
async function answerMetrics(state: DashboardState, c: Context): Promise<Response> {
  const { sql, options, now, dailyCache } = state;
  // Prometheus's rules: units in the names (_seconds, _ratio, _total), one HELP and TYPE per
  // metric, and labels from small fixed sets only (pair, kind): a run id or a time as a label
  // would start a new series every run, so they are values here.
  const lines: string[] = [];
  const metric = (name: string, help: string, type: "gauge" | "counter", samples: [string, number][]) => {
    const finite = samples.filter(([, value]) => Number.isFinite(value));
    if (finite.length === 0) return;
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [labels, value] of finite) lines.push(`${name}${labels} ${value}`);
  };
  let read: HealthFacts | undefined;
  try {
    read = await withTimeout(healthFacts(sql), HEALTH_TIMEOUT_MS, "PostgreSQL");
  } catch (error) {
    console.error(describeError(error, "read the metrics").line);
  }
  metric("cotacao_database_up", "1 if PostgreSQL answered this scrape, else 0.", "gauge", [["", read ? 1 : 0]]);
  if (read) {
    const facts = read;
    const at = now();
    const perPair = (value: (p: HealthFacts["pairs"][number]) => number | undefined) =>
      facts.pairs.flatMap((p): [string, number][] => {
        const v = value(p);
        return v === undefined ? [] : [[`{pair="${label(p.pair)}"}`, v]];
      });
    metric("cotacao_quote_bid", "The newest stored bid of the pair, in its quote currency (BRL for USD-BRL).", "gauge", perPair((p) => Number(p.bid)));
    metric("cotacao_quote_ask", "The newest stored ask of the pair, in its quote currency.", "gauge", perPair((p) => Number(p.ask)));
    metric("cotacao_quote_timestamp_seconds", "Unix time of the newest stored quote of the pair (the source's timestamp).", "gauge", perPair((p) => p.newest.getTime() / 1000));
    // A quote stamped ahead of this clock is new, not minus 144 s old: its age is 0, and how far ahead it is is a metric of its own.
    metric("cotacao_quote_age_seconds", "Seconds since the newest stored quote of the pair (wall clock; 0 when stamped ahead of this server's clock).", "gauge",
      perPair((p) => Math.max(0, Math.round((at.getTime() - p.newest.getTime()) / 1000))));
    metric("cotacao_quote_clock_skew_seconds", "Seconds the newest stored quote of the pair is stamped ahead of this server's clock (0 when it is not).", "gauge",
      perPair((p) => Math.max(0, Math.round((p.newest.getTime() - at.getTime()) / 1000))));
    metric("cotacao_quote_market_age_seconds", "Seconds of forex market time since the newest stored quote of the pair (what staleness counts).", "gauge",
      perPair((p) => Math.max(0, Math.round(marketTimeBetween(p.newest, at) / 1000))));
    // The rule's figures for the newest close, as `bun analysis.ts --days` and the monitor give them.
    const rule = new Map<string, { average: number; deviation: number }>();
    try {
      const series = await Promise.all(facts.pairs.map((p) => dailyCache.get(p.pair)));
      facts.pairs.forEach((p, i) => {
        const last = series[i]!.days.length - 1;
        if (last < 0) return;
        const evaluation = evaluateSeries(series[i]!, paramsFor(options.analysis, p.pair));
        rule.set(p.pair, { average: evaluation.average[last]!, deviation: evaluation.deviation[last]! });
      });
    } catch (error) {
      // The rest of the scrape stands; these two metrics are absent this time.
      console.error(describeError(error, "read the metrics' daily series").line);
    }
    metric("cotacao_quote_moving_average", "The alert rule's moving average of daily closes for the pair's newest day (absent with too little history).", "gauge",
      perPair((p) => rule.get(p.pair)?.average));
    metric("cotacao_quote_deviation_ratio", "How far the pair's newest close is from the rule's moving average, as a ratio (0.02 is 2% above; absent with too little history).", "gauge",
      perPair((p) => rule.get(p.pair)?.deviation));
    // BCB's PTAX beside AwesomeAPI: the newest bulletin's rates, and the newest cross-check.
    const official = new Map<string, NewestOfficial>();
    try {
      const covered = facts.pairs.filter((p) => ptaxCurrencyOf(p.pair));
      const read = await Promise.all(covered.map((p) => newestOfficial(sql, p.pair)));
      covered.forEach((p, i) => read[i] && official.set(p.pair, read[i]));
    } catch (error) {
      console.error(describeError(error, "read the metrics' official rates").line);
    }
    metric("cotacao_official_rate", "The newest PTAX bulletin of Banco Central do Brasil for the pair (its buy and sell rates), in BRL.", "gauge",
      facts.pairs.flatMap((p): [string, number][] => {
        const rate = official.get(p.pair)?.bulletin;
        return rate ? [[`{pair="${label(p.pair)}",side="buy"}`, Number(rate.buy)], [`{pair="${label(p.pair)}",side="sell"}`, Number(rate.sell)]] : [];
      }));
    metric("cotacao_divergence_percent", "How far AwesomeAPI's bid is from the closing PTAX buy rate on the newest cross-checked day, in percent ((bid - buy) / buy x 100).", "gauge",
      perPair((p) => {
        const point = official.get(p.pair)?.divergence;
        return point ? Number(point.divergencePct) : undefined;
      }));
    metric("cotacao_alerts_firing", "Alerts firing now, per pair and kind.", "gauge",
      facts.pairs.flatMap((p) => ["deviation", "stale", "divergence"].map((kind): [string, number] => [`{pair="${label(p.pair)}",kind="${kind}"}`, p.firing.find((f) => f.kind === kind)?.count ?? 0])));
    metric("cotacao_pair_last_run_success", "1 if the newest finished pipeline run that tried the pair succeeded for it, 0 if it failed for it (a run that failed for other pairs only succeeded for this one); every stored pair, and every pair of the newest run.", "gauge",
      facts.pairRuns.map((r): [string, number] => [`{pair="${label(r.pair)}"}`, r.status === "succeeded" ? 1 : 0]));
    metric("cotacao_runs_skipped_locked_total", "Pipeline runs that waited for another run's lock past --lock-timeout and stood aside (exit 75); they try no pair and fail nothing.", "counter",
      [["", facts.skippedRuns]]);
    const run = facts.lastRun;
    if (run) {
      metric("cotacao_last_run_id", "The id of the newest pipeline run (runs that stood aside for the lock not counted).", "gauge", [["", run.id]]);
      metric("cotacao_last_run_success", "1 if the newest pipeline run succeeded for every pair it tried, 0 if it failed for any (see cotacao_pair_last_run_success) or is still running.", "gauge",
        [["", run.status === "succeeded" ? 1 : 0]]);
      metric("cotacao_last_run_duration_seconds", "How long the newest pipeline run took (so far, while it runs).", "gauge",
        [["", ((run.finishedAt ?? at).getTime() - run.startedAt.getTime()) / 1000]]);
      metric("cotacao_last_run_timestamp_seconds", "Unix time the newest pipeline run finished (started, while it runs).", "gauge",
        [["", (run.finishedAt ?? run.startedAt).getTime() / 1000]]);
    }
  }
  return c.body(`${lines.join("\n")}\n`, 200, { "Content-Type": "text/plain; version=0.0.4; charset=utf-8", "Cache-Control": "no-store" });
}

/** GET /vendor/:file: uPlot's script and style, from node_modules. */
async function answerVendorFile(c: Context): Promise<Response> {
  const name = c.req.param("file") ?? "";
  // Own keys only: "__proto__", "constructor" or "toString" would find Object.prototype's.
  const file = Object.hasOwn(VENDOR_FILES, name) ? VENDOR_FILES[name] : undefined;
  if (!file) throw new HTTPException(404, { message: "Cannot answer: no such file" });
  return c.body(await Bun.file(file.path).arrayBuffer(), 200, { "Content-Type": file.type, "Cache-Control": "no-cache" });
}

/** GET /api/stream: the live feed as server-sent events, from the client's Last-Event-ID when it reconnects. */
async function answerStream(state: DashboardState, c: Context): Promise<Response> {
  const lastId = c.req.header("Last-Event-ID") ?? c.req.query("lastEventId");
  let since: FeedPosition | undefined;
  if (lastId !== undefined && lastId !== "") {
    const parsed = v.safeParse(LastEventIdSchema, lastId);
    if (!parsed.success) throw badRequest(`Last-Event-ID ${parsed.issues[0].message}`);
    since = parsed.output;
  }
  try {
    await state.feed.start();
  } catch (error) {
    // The browser's EventSource retries by itself; the server may be back by then.
    throw new HTTPException(503, { message: describeError(error, "follow the live feed").line });
  }
  const body = feedStream(state.sql, state.feed, since, state.heartbeatMs);
  return c.body(body, 200, { "Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-store", "X-Accel-Buffering": "no" });
}

/** Any other path: a 404 in JSON. */
function answerNotFound(c: Context): Response {
  return c.json({ error: `Cannot answer: no such page ${c.req.path}` }, 404, { "Cache-Control": "no-store" });
}

/** Every failure's answer: an HTTPException as itself; the database away as a 503; anything else a plain 500, its line in the server's log. */
function answerError(error: Error, c: Context): Response {
  if (error instanceof HTTPException) {
    const headers: Record<string, string> = { "Cache-Control": "no-store" };
    if (error.status === 401) headers["WWW-Authenticate"] = 'Bearer realm="cotacao"';
    return c.json({ error: error.message }, error.status, headers);
  }
  // Internals stay in the server's log, not in the answer.
  console.error(describeError(error, "answer the request").line);
  // The database away (stopped, restarting) is the server's state, not a bug: say so, and when to ask again.
  if (isConnectionLost(error)) {
    return c.json({ error: "Cannot answer: the database is not reachable; try again shortly" }, 503, { "Cache-Control": "no-store", "Retry-After": "5" });
  }
  return c.json({ error: "internal error" }, 500, { "Cache-Control": "no-store" });
}

// ---------------------------------------------------------------------------------------------
// CLI

const USAGE = `Usage: bun dashboard.ts [--host 127.0.0.1] [--port 8050] [--help]

Serves the cotacao page and its JSON API, on loopback unless told otherwise. Applies pending
migrations on start.

Options:
  --host H     the address to listen on (default HOST, else 127.0.0.1); any address that is
               not loopback needs DASHBOARD_TOKEN
  --port N     the port, 0 to 65535 (default PORT, else 8050; 0 picks a free one)
  -h, --help   show this help
  -V, --version  print the version and exit

Settings (environment): HOST, PORT, DASHBOARD_TOKEN (at least ${MIN_TOKEN_LENGTH} characters; then every
request needs "Authorization: Bearer <token>", or opens the page once with ?token=<token>, which
sets a cookie), DASHBOARD_ALLOWED_HOSTS (the names the Host header may give, comma-separated;
on loopback localhost, 127.0.0.1 and [::1] by default; others get 421), DATABASE_URL, and the
analysis settings (COTACAO_MA_WINDOW_DAYS, ..., COTACAO_STALE_AFTER) that the chart's average
and the status follow.

Routes: GET / (the page), /api/pairs, /api/quotes, /api/quotes.csv, /api/latest, /api/alerts,
/api/runs, /api/stream (Server-Sent Events), /healthz, /metrics.

Exit codes: 0 stopped by Ctrl-C or SIGTERM, 1 failure, 2 bad usage or configuration.`;

const FLAGS = { host: { type: "string" }, port: { type: "string" }, help: { type: "boolean", short: "h" } } as const;

// A host name or an IP address as a Host header names it (IPv6 in brackets), without a port.
const HOST_NAME = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)$/;

const DashboardEnvSchema = v.object({
  HOST: v.pipe(v.optional(v.string(), ""), v.trim()),
  DASHBOARD_ALLOWED_HOSTS: v.pipe(
    v.optional(v.string(), ""),
    v.trim(),
    v.check(
      (text) => text === "" || text.split(",").every((name) => HOST_NAME.test(name.trim())),
      (issue) => `must be host names separated by commas, without scheme or port, like cotacao.lan,192.168.1.10,[::1], got "${String(issue.input)}"`,
    ),
    v.transform((text) => (text === "" ? [] : text.split(",").map((name) => name.trim().toLowerCase()))),
  ),
  PORT: v.pipe(v.optional(v.string(), ""), v.trim()),
  DASHBOARD_TOKEN: v.pipe(
    v.optional(v.string(), ""),
    v.check((token) => token === "" || token.length >= MIN_TOKEN_LENGTH, `must be at least ${MIN_TOKEN_LENGTH} characters long (e.g. the output of "openssl rand -hex 32")`),
  ),
});

/** What `bun dashboard.ts` was asked, checked before any I/O. */
export interface Invocation {
  help: boolean;
  host: string;
  port: number;
  token?: string;
  /** The Host names answered (createApp's allowedHosts); unset: any. */
  allowedHosts?: string[];
  analysis: AnalysisConfig;
  database: DatabaseConfig;
}

/** Loopback addresses: the only ones served without a token. */
export function isLoopback(host: string): boolean {
  const bare = host.replace(/^\[(.*)\]$/, "$1").toLowerCase();
  return bare === "localhost" || bare === "::1" || /^127(\.\d{1,3}){3}$/.test(bare);
}

/** Reads the flags and the environment (flags win); throws one USAGE or CONFIG line, exit 2. */
export function readInvocation(args: string[], env: Record<string, string | undefined>): Invocation {
  const flags = readFlags(args, FLAGS, "dashboard.ts");
  const settings = v.safeParse(DashboardEnvSchema, env);
  if (!settings.success) throw envIssue(settings.issues);
  const analysis = loadAnalysisConfig(env);
  const database = loadDatabaseConfig(env);
  const portText = flags.port ?? (settings.output.PORT || String(DEFAULT_PORT));
  const portSource = flags.port !== undefined ? "--port" : "PORT";
  if (!/^\d{1,5}$/.test(portText) || Number(portText) > 65535) {
    const message = `${portSource} must be a port number from 0 to 65535, got "${portText}"`;
    throw flags.port !== undefined ? usageError(message, "dashboard.ts") : new CotacaoError("CONFIG", `Cannot start: ${message}`, { exitCode: EXIT.usage });
  }
  const host = (flags.host ?? settings.output.HOST) || DEFAULT_HOST;
  if (!/^[A-Za-z0-9.:[\]-]+$/.test(host)) throw usageError(`${flags.host !== undefined ? "--host" : "HOST"} must be a host name or an IP address, got "${host}"`, "dashboard.ts");
  const token = settings.output.DASHBOARD_TOKEN || undefined;
  if (!flags.help && !isLoopback(host) && token === undefined) {
    throw new CotacaoError(
      "CONFIG",
      `Cannot serve the dashboard on ${host}: an address other than loopback needs DASHBOARD_TOKEN, set it to a long random secret (openssl rand -hex 32) or serve on 127.0.0.1`,
      { exitCode: EXIT.usage },
    );
  }
  const allowedHosts = settings.output.DASHBOARD_ALLOWED_HOSTS.length > 0 ? settings.output.DASHBOARD_ALLOWED_HOSTS : defaultAllowedHosts(host);
  return { help: !!flags.help, host, port: Number(portText), ...(token ? { token } : {}), ...(allowedHosts ? { allowedHosts } : {}), analysis, database };
}

/**
 * The Host names answered unless DASHBOARD_ALLOWED_HOSTS says: on loopback, the loopback names
 * and the address listened on; elsewhere any (the token guards it, and the names people use on
 * a network are theirs to list).
 */
export function defaultAllowedHosts(host: string): string[] | undefined {
  if (!isLoopback(host)) return undefined;
  const own = host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
  return [...new Set(["localhost", "127.0.0.1", "[::1]", own.toLowerCase()])];
}

/** Bun.serve on the address asked for; a port in use is one CotacaoError line (exit 1). */
function listen(invocation: Invocation, app: DashboardApp): Bun.Server<undefined> {
  try {
    return Bun.serve({ hostname: invocation.host, port: invocation.port, idleTimeout: 60, fetch: app.fetch });
  } catch (error) {
    if ((error as { code?: unknown }).code !== "EADDRINUSE") throw error;
    throw new CotacaoError(
      "LISTEN",
      `Cannot serve the dashboard: port ${invocation.port} on ${invocation.host} is in use by another program; stop it, or pick another port with --port (0 picks a free one)`,
      { exitCode: EXIT.failure },
    );
  }
}

/** Runs the CLI: serves until Ctrl-C or SIGTERM; returns the exit code. */
export async function main(args: string[], env: Record<string, string | undefined> = process.env): Promise<number> {
  let invocation: Invocation;
  try {
    invocation = readInvocation(args, env);
  } catch (error) {
    return printDescribed(describeError(error, "read the arguments"));
  }
  if (invocation.help) {
    console.log(USAGE);
    return EXIT.ok;
  }
  let sql: Sql | undefined;
  try {
    sql = await connect(invocation.database, { max: 8 });
    await migrate(sql);
    const app = createApp(sql, {
      analysis: invocation.analysis,
      ...(invocation.token ? { token: invocation.token } : {}),
      ...(invocation.allowedHosts ? { allowedHosts: invocation.allowedHosts } : {}),
    });
    // Idle connections close after a minute; the SSE heartbeat (15 s) keeps a live feed open.
    const server = listen(invocation, app);
    // What the pipeline wrote while no dashboard ran (a backfill, say) is rolled up now, before
    // the first visitor's chart has to wait for it. Once listening: a port in use ends the
    // process first, and this would only add a second, false error about a closed pool.
    const pool = sql;
    void refreshRollups(pool).catch((error: unknown) => console.error(describeError(error, "bring the chart's rollups up to date").line));
    const shown = server.hostname?.includes(":") ? `[${server.hostname}]` : server.hostname;
    console.log(`cotacao dashboard on http://${shown}:${server.port}/${invocation.token ? " (DASHBOARD_TOKEN required: open it once with ?token=<your token>)" : ""}`);
    await new Promise<void>((resolve) => {
      process.once("SIGINT", resolve);
      process.once("SIGTERM", resolve);
    });
    await server.stop(true);
    await app.close();
    return EXIT.ok;
  } catch (error) {
    const { line, exitCode } = describeError(error, "serve the dashboard");
    console.error(line);
    return exitCode;
  } finally {
    await sql?.end({ timeout: 1 });
  }
}

if (import.meta.main) {
  void main(Bun.argv.slice(2)).then((code) => process.exit(code));
}
