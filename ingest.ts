/**
 * ingest.ts: quotes from AwesomeAPI, fetched, validated and shaped as `Quote` rows. The latest
 * quote of several pairs comes from one `/json/last` request; history comes from
 * `/json/daily/PAIR/N?start_date&end_date`, in chunks small enough for the API's 360-record cap.
 * Parsing is pure; the transport retries only what is transient.
 *
 * CLI: `bun ingest.ts [--pairs USD-BRL,EUR-BRL] [--daily --from YYYY-MM-DD [--to YYYY-MM-DD]]`
 * prints the validated quotes as JSON lines (no database; see `--help`).
 */
import * as v from "valibot";
import { isCalendarDate, saoPauloDay } from "./lib/calendar.ts";
import { printDescribed, readFlags } from "./lib/cli.ts";
import { CotacaoError, describeError, envIssue, SourceError, usageError } from "./lib/errors.ts";
import { type Fetch, isHttpUrl, readCappedBody, showValue, type SourceRequestOptions } from "./lib/http.ts";
import { DEFAULT_PAIR, parsePairs, type Quote, SOURCE_DAILY, SOURCE_LAST } from "./lib/quote.ts";
import { backoffMs, isRetryableStatus, RETRIED_FAILURES, retryAfterMs } from "./lib/retry.ts";

/** The public API, used when AWESOMEAPI_URL is unset. */
const DEFAULT_AWESOMEAPI_URL = "https://economia.awesomeapi.com.br";
/** Per-attempt timeout when AWESOMEAPI_TIMEOUT_MS is unset. */
const DEFAULT_TIMEOUT_MS = 10_000;
/** The shortest AWESOMEAPI_TIMEOUT_MS accepted: under it not even a healthy answer arrives. */
const MIN_TIMEOUT_MS = 100;
/** The longest timeout accepted (10 minutes): longer only hides a hung API, and timers overflow past ~24.8 days. */
const MAX_TIMEOUT_MS = 600_000;
/**
 * The most bytes of one answer's body the client reads, counted after decompression: a 360-record
 * /json/daily answer is ~100 KB, so 8 MiB is ample, and an endless or gzip-bombed body stops there.
 */
export const DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024;
/** Attempts after the first, for transient failures. */
const DEFAULT_RETRIES = 3;
/** What the CLI fetches without --pairs. */
export const DEFAULT_PAIRS = [DEFAULT_PAIR];
/** The most records `/json/daily/PAIR/N` returns (the API's documented maximum for N). */
export const DAILY_MAX_RECORDS = 360;
/**
 * Calendar days per history chunk: ~215 weekdays, room under N for days sent twice; when an
 * answer stops short of the chunk's first day, the older part is asked for next.
 */
export const CHUNK_DAYS = 300;
/**
 * Requests one chunk may take: an API that answers fewer records than asked (100, say) needs
 * 3 for 300 days; one that needs more than this is answering too little to trust.
 */
export const DAILY_MAX_REQUESTS_PER_CHUNK = 32;
/** Conflict lines a chunk's `warnings` spell out; the rest are counted in one more line. */
export const MAX_CONFLICT_LINES = 5;
/** How far ahead of the clock a quote's `timestamp` may be (clocks differ a little); later is refused. */
const MAX_AHEAD_MS = 10 * 60_000;
/** The earliest `timestamp` accepted: AwesomeAPI has nothing older, so an earlier one is a bad value. */
const EARLIEST_QUOTE_DATE = "1990-01-01";
/** The wait before a retry: 500 ms doubling, at most 8 s (lib/retry.ts's backoffMs()). */
const SOURCE_BACKOFF = { firstMs: 500, maxMs: 8_000 } as const;

// Fewer weekdays than this may all be holidays (Carnival, Christmas-New Year), so empty is fine.
const MIN_WEEKDAYS_EXPECTING_DATA = 5;
// A `timestamp` above this is milliseconds (the API's data from 2018 and before), else seconds.
const MILLISECOND_TIMESTAMP_ABOVE = 1e11;
const EARLIEST_QUOTE_MS = Date.parse(`${EARLIEST_QUOTE_DATE}T00:00:00Z`);
const MS_PER_DAY = 86_400_000;
// A user or password shorter than this is masked only where it appears inside a URL.
const MIN_MASKED_USERINFO_CHARS = 4;
const POSITIVE_DECIMAL = /^\d+(\.\d+)?$/;
const SIGNED_DECIMAL = /^-?\d+(\.\d+)?$/;
const TIMESTAMP_DIGITS = /^\d{1,16}$/;
const TOKEN_PARAMETER = /([?&]token=)[^&#\s"']*/gi;
// A URL's userinfo within a message: greedy up to the last "@" of the word, since an unencoded
// password may hold "/", "#" or "@" (hiding part of a host is better than showing a password).
const URL_USERINFO = /(\b[a-z][a-z0-9+.-]*:\/\/)[^\s"'<>]*@/gi;

// The API sends UTF-8, but captured bodies can hold stray Latin-1 bytes: replace, never fail.
const BODY_DECODER = new TextDecoder("utf-8", { fatal: false });

// ---------------------------------------------------------------------------------------------
// Errors

/** Codes that let callers (and the CLI's exit code) tell failures apart. */
export type IngestErrorCode =
  | "CONFIG"
  | "USAGE"
  | "HTTP"
  | "TIMEOUT"
  | "NETWORK"
  | "NOT_JSON"
  | "INVALID_PAYLOAD"
  | "UNKNOWN_PAIR"
  | "NO_DATA"
  | "TRUNCATED"
  | "TOO_LARGE";

/** A failed AwesomeAPI request or ingest step (lib/errors.ts SourceError: a code, one line, the requests made). */
export class IngestError extends SourceError<IngestErrorCode> {
  override name = "IngestError";
}

const STATUS_HINTS: Record<number, string> = {
  401: "check AWESOMEAPI_TOKEN",
  403: "the API refused the request; check AWESOMEAPI_TOKEN, or try again later",
  404: "check the pair and AWESOMEAPI_URL",
  409: "the API is throttling this client or its quota is used up; wait and try again",
  429: "the API is throttling this client; wait and try again, or set AWESOMEAPI_TOKEN",
};

/**
 * `text` safe to print: every URL's user and password shown as `***@`, the `token` query
 * parameter as `token=***`, and each of `secrets` (as given or URL-encoded) as `***`.
 */
function maskSecrets(text: string, secrets: readonly (string | undefined)[] = []): string {
  let masked = text.replace(URL_USERINFO, "$1***@").replace(TOKEN_PARAMETER, "$1***");
  // The raw values too, in case a cause's message quoted them outside a URL.
  const forms = new Set(secrets.flatMap((secret) => (secret ? [secret, encodeURIComponent(secret)] : [])));
  // Longest first, so that a secret containing another is hidden whole.
  for (const form of [...forms].sort((a, b) => b.length - a.length)) masked = masked.split(form).join("***");
  return masked;
}

/** A URL as the user typed it, safe to quote even when it does not parse: all between "://" and the last "@" masked. */
function maskUrlInput(input: string): string {
  const scheme = input.indexOf("://");
  const at = input.lastIndexOf("@");
  const masked = scheme >= 0 && at > scheme ? `${input.slice(0, scheme + 3)}***${input.slice(at)}` : input;
  return maskSecrets(masked);
}

/** What a URL carries that must never be printed: its token, user and password, decoded and as written. */
function secretsOf(url: string): string[] {
  try {
    const parsed = new URL(url);
    const userinfo: string[] = [];
    for (const part of [parsed.username, parsed.password]) {
      userinfo.push(part);
      try {
        userinfo.push(decodeURIComponent(part));
      } catch {
        // A malformed escape is masked as written.
      }
    }
    // A user "me" masked as text would shred every message; in a URL the pattern hides it anyway.
    const token = parsed.searchParams.get("token") ?? "";
    return [token, ...userinfo.filter((part) => part.length >= MIN_MASKED_USERINFO_CHARS)].filter((secret) => secret !== "");
  } catch {
    return [];
  }
}

// ---------------------------------------------------------------------------------------------
// Configuration


// Each variable's default ("") runs through its pipe like an empty value: empty means unset.
const IngestEnvSchema = v.object({
  AWESOMEAPI_URL: v.pipe(
    v.optional(v.string(), ""),
    v.trim(),
    v.check(
      (url) => url === "" || isHttpUrl(url, { credentials: true }),
      (issue) =>
        `must be an http:// or https:// URL without query or fragment, like AWESOMEAPI_URL=${DEFAULT_AWESOMEAPI_URL}, got "${maskUrlInput(String(issue.input))}"`,
    ),
    // Paths are appended with "/", so one trailing slash (or several) must not double it.
    v.transform((url) => (url || DEFAULT_AWESOMEAPI_URL).replace(/\/+$/, "")),
  ),
  AWESOMEAPI_TOKEN: v.pipe(
    v.optional(v.string(), ""),
    v.trim(),
    // Never echo the value: it is a secret.
    v.check((token) => !/[\s&#]/.test(token), "must be the key AwesomeAPI gave you, without spaces, '&' or '#'"),
  ),
  AWESOMEAPI_TIMEOUT_MS: v.pipe(
    v.optional(v.string(), ""),
    v.trim(),
    v.check(
      (ms) => ms === "" || (/^\d{1,9}$/.test(ms) && Number(ms) >= MIN_TIMEOUT_MS && Number(ms) <= MAX_TIMEOUT_MS),
      (issue) =>
        `must be whole milliseconds from ${MIN_TIMEOUT_MS} to ${MAX_TIMEOUT_MS} (10 minutes), got "${String(issue.input)}", set it like AWESOMEAPI_TIMEOUT_MS=${DEFAULT_TIMEOUT_MS} or leave it unset`,
    ),
    v.transform((ms) => (ms === "" ? DEFAULT_TIMEOUT_MS : Number(ms))),
  ),
});

/** Where and how to reach AwesomeAPI. */
export interface IngestConfig {
  /** Without a trailing slash, e.g. "https://economia.awesomeapi.com.br". */
  baseUrl: string;
  /** Sent as the query parameter `token`; never printed. */
  token?: string;
  timeoutMs: number;
}

/** Reads and validates the AwesomeAPI settings from the environment; throws a one-line CONFIG error naming the variable. */
export function loadIngestConfig(env: Record<string, string | undefined>): IngestConfig {
  const result = v.safeParse(IngestEnvSchema, env);
  if (!result.success) throw envIssue(result.issues);
  const { AWESOMEAPI_URL, AWESOMEAPI_TOKEN, AWESOMEAPI_TIMEOUT_MS } = result.output;
  return {
    baseUrl: AWESOMEAPI_URL,
    ...(AWESOMEAPI_TOKEN ? { token: AWESOMEAPI_TOKEN } : {}),
    timeoutMs: AWESOMEAPI_TIMEOUT_MS,
  };
}

// ---------------------------------------------------------------------------------------------
// Pairs and dates (pure)

/** A span of São Paulo calendar days, both ends included, as "YYYY-MM-DD". */
const DateRangeSchema = v.pipe(
  v.object({
    from: v.pipe(v.string(), v.check(isCalendarDate, (i) => `'from' must be a date like 2024-08-23, got "${String(i.input)}"`)),
    to: v.pipe(v.string(), v.check(isCalendarDate, (i) => `'to' must be a date like 2024-08-23, got "${String(i.input)}"`)),
  }),
  v.check(
    (range) => range.from <= range.to,
    (issue) => `'from' (${issue.input.from}) must not be after 'to' (${issue.input.to})`,
  ),
);
/** A validated span of São Paulo calendar days. */
export type DateRange = v.InferOutput<typeof DateRangeSchema>;

function parseRange(range: DateRange, action: string): DateRange {
  const result = v.safeParse(DateRangeSchema, range);
  if (!result.success) throw new IngestError("USAGE", `Cannot ${action}: ${result.issues[0].message}`);
  return result.output;
}

/** Days since 1970-01-01 of a valid "YYYY-MM-DD". */
export const dayNumber = (date: string): number => Date.parse(`${date}T00:00:00Z`) / MS_PER_DAY;
/** The "YYYY-MM-DD" of a day number. */
const dateOfDay = (day: number): string => new Date(day * MS_PER_DAY).toISOString().slice(0, 10);
/** "YYYY-MM-DD" shifted by `days`. */
export const addDays = (date: string, days: number): string => dateOfDay(dayNumber(date) + days);
const compactDate = (date: string) => date.replaceAll("-", "");

/** Mondays to Fridays in the range (holidays included: the API's calendar is not known here). */
export function countWeekdays(range: DateRange): number {
  let weekdays = 0;
  for (let day = dayNumber(range.from); day <= dayNumber(range.to); day++) {
    // Day 0 (1970-01-01) was a Thursday.
    const weekday = (day + 4) % 7;
    if (weekday !== 0 && weekday !== 6) weekdays++;
  }
  return weekdays;
}

/** Splits `from`..`to` into consecutive ranges of at most `maxDays` days, oldest first, with no gap or overlap. */
export function planChunks(from: string, to: string, maxDays: number = CHUNK_DAYS): DateRange[] {
  const range = parseRange({ from, to }, "plan the history requests");
  if (!Number.isSafeInteger(maxDays) || maxDays < 1) {
    throw new IngestError("USAGE", `Cannot plan the history requests: 'maxDays' must be a positive integer, got ${maxDays}`);
  }
  const last = dayNumber(range.to);
  const chunks: DateRange[] = [];
  for (let start = dayNumber(range.from); start <= last; start += maxDays) {
    chunks.push({ from: dateOfDay(start), to: dateOfDay(Math.min(start + maxDays - 1, last)) });
  }
  return chunks;
}

// ---------------------------------------------------------------------------------------------
// Payloads (pure)


const decimalString = (expected: string) =>
  v.string((issue) => (issue.input === undefined ? `expected ${expected}` : `expected ${expected} as a JSON string`));

const PriceSchema = v.pipe(
  decimalString("a positive decimal"),
  v.regex(POSITIVE_DECIMAL, "expected a positive decimal"),
  v.check((text) => /[1-9]/.test(text), "expected a positive decimal"),
);
const ChangeSchema = v.pipe(decimalString("a decimal"), v.regex(SIGNED_DECIMAL, "expected a decimal"));
const TimestampSchema = v.pipe(
  decimalString("Unix seconds or milliseconds"),
  v.regex(TIMESTAMP_DIGITS, "expected Unix seconds or milliseconds"),
  v.transform(Number),
  v.check((n) => n > 0, "expected Unix seconds or milliseconds"),
  v.transform((n) => new Date(n > MILLISECOND_TIMESTAMP_ABOVE ? n : n * 1000)),
);
const LabelSchema = v.optional(v.string("expected a string"));
const FIELD_EXPECTATIONS: Record<string, string> = {
  bid: "expected a positive decimal",
  ask: "expected a positive decimal",
  timestamp: "expected Unix seconds or milliseconds",
};

/** One quote as AwesomeAPI sends it; only the first element of a daily array has code, codein, name and create_date. */
export const AwesomeQuoteSchema = v.object(
  {
  code: LabelSchema,
  codein: LabelSchema,
  name: LabelSchema,
  create_date: LabelSchema,
  bid: PriceSchema,
  ask: PriceSchema,
  high: v.optional(PriceSchema),
  low: v.optional(PriceSchema),
  varBid: v.optional(ChangeSchema),
  pctChange: v.optional(ChangeSchema),
  // The quote's own time (UTC); create_date is local time without a zone and can disagree.
  timestamp: TimestampSchema,
  },
  "expected an object",
);
/** One validated AwesomeAPI record, `timestamp` already a Date. */
export type AwesomeQuote = v.InferOutput<typeof AwesomeQuoteSchema>;

const AwesomeDailySchema = v.array(AwesomeQuoteSchema);

function payloadError(message: string): IngestError {
  return new IngestError("INVALID_PAYLOAD", `Cannot read the AwesomeAPI answer: ${message}`);
}

function issueMessage(subject: string, issues: readonly v.BaseIssue<unknown>[]): string {
  const issue = issues[0];
  if (!issue) return `${subject} is invalid`;
  const keys = (issue.path ?? []).map((item) => item.key);
  const field = keys.filter((key) => typeof key === "string").join(".");
  const index = keys.find((key) => typeof key === "number");
  const where = `${subject}${index === undefined ? "" : ` record ${index}`}${field ? ` ${field}` : ""}`;
  // A missing key is reported against the object, with the object's message: say what the field needed.
  if (typeof keys.at(-1) === "string" && issue.input === undefined) {
    return `${where} is missing, ${FIELD_EXPECTATIONS[field] ?? "expected a value"}`;
  }
  return `${where} is ${showValue(issue.input)}, ${issue.message}`;
}

function toQuote(pair: string, record: AwesomeQuote, source: string, fetchedAt: Date): Quote {
  return {
    pair,
    ts: record.timestamp,
    bid: record.bid,
    ask: record.ask,
    high: record.high ?? null,
    low: record.low ?? null,
    varBid: record.varBid ?? null,
    pctChange: record.pctChange ?? null,
    source,
    fetchedAt,
  };
}

const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

/** "2024-10-25 18:00:00 UTC", for messages. */
function utcText(date: Date): string {
  return Number.isNaN(date.getTime()) ? "beyond any calendar date" : `${date.toISOString().slice(0, 19).replace("T", " ")} UTC`;
}

/**
 * Refuses a well-formed record that cannot be what was asked for: a `timestamp` more than
 * MAX_AHEAD_MS past `now` or before EARLIEST_QUOTE_DATE, or a `code`/`codein` (upper case from
 * the API; compared ignoring case) that is not the pair's. `requireCodes`: /json/last sends them
 * in every record, /json/daily only in the first, so there they are checked where present.
 */
function checkRecord(record: AwesomeQuote, raw: unknown, where: string, pair: string, now: Date, requireCodes: boolean): void {
  const [base = "", quote = ""] = pair.split("-");
  for (const [field, expected] of [["code", base], ["codein", quote]] as const) {
    const value = record[field];
    if (value === undefined && !requireCodes) continue;
    if (value !== undefined && value.toUpperCase() === expected) continue;
    const shown = value === undefined ? "missing" : showValue(value);
    throw payloadError(
      `${where} ${field} is ${shown}, expected "${expected}" as in ${pair}, the pair asked for, nothing of this answer was used; try again later`,
    );
  }
  const ms = record.timestamp.getTime();
  const stamp = isPlainObject(raw) ? showValue(raw["timestamp"]) : "";
  const at = `${where} timestamp is ${stamp} (${utcText(record.timestamp)})`;
  // NaN (beyond Date's range) fails the first test.
  if (!(ms <= now.getTime() + MAX_AHEAD_MS)) {
    throw payloadError(
      `${at}, more than ${MAX_AHEAD_MS / 60_000} minutes ahead of this computer's clock (${utcText(now)}), nothing of this answer was used; check the clock, else try again later`,
    );
  }
  if (ms < EARLIEST_QUOTE_MS) {
    throw payloadError(`${at}, before ${EARLIEST_QUOTE_DATE}, older than any AwesomeAPI quote, nothing of this answer was used; try again later`);
  }
}

/**
 * Validates a `/json/last/...` answer (an object keyed by pair without dash) into one quote per
 * requested pair. `fetchedAt` is also the clock that future timestamps are judged by; a record
 * out of time or for another pair (checkRecord()) fails the whole answer.
 */
export function parseLatest(body: unknown, pairs: readonly string[], fetchedAt: Date): Quote[] {
  if (!isPlainObject(body)) {
    throw payloadError(`expected an object keyed by pair (like "USDBRL"), got ${showValue(body)}`);
  }
  const pairByKey = new Map(pairs.map((pair) => [pair.replace("-", ""), pair]));
  for (const key of Object.keys(body)) {
    if (!pairByKey.has(key)) {
      throw payloadError(`the answer holds pair "${key}", which was not asked for (asked for ${pairs.join(", ")})`);
    }
  }
  return [...pairByKey].map(([key, pair]) => {
    if (!(key in body)) throw payloadError(`${pair} is missing from the answer (no "${key}" key)`);
    const result = v.safeParse(AwesomeQuoteSchema, body[key], { abortEarly: true });
    if (!result.success) throw payloadError(issueMessage(pair, result.issues));
    checkRecord(result.output, body[key], pair, pair, fetchedAt, true);
    return toQuote(pair, result.output, SOURCE_LAST, fetchedAt);
  });
}

/**
 * Validates a `/json/daily/...` answer (an array, newest first) into quotes, in the answer's
 * order. `fetchedAt` is also the clock that future timestamps are judged by; one record out of
 * time or for another pair (checkRecord()) fails the whole answer.
 */
export function parseDaily(body: unknown, pair: string, fetchedAt: Date): Quote[] {
  if (!Array.isArray(body)) {
    throw payloadError(`expected an array of ${pair} quotes, got ${showValue(body)}`);
  }
  let records: AwesomeQuote[] = [];
  for (const element of body) {
    const record = wellFormedRecord(element);
    if (!record) break;
    records.push(record);
  }
  if (records.length < body.length) {
    // The schema is the authority: it names the record, field and value that are wrong.
    const result = v.safeParse(AwesomeDailySchema, body, { abortEarly: true });
    if (!result.success) throw payloadError(issueMessage(pair, result.issues));
    records = result.output;
  }
  return records.map((record, index) => {
    checkRecord(record, body[index], `${pair} record ${index}`, pair, fetchedAt, false);
    return toQuote(pair, record, SOURCE_DAILY, fetchedAt);
  });
}

const isPrice = (value: unknown): value is string =>
  typeof value === "string" && POSITIVE_DECIMAL.test(value) && /[1-9]/.test(value);
const isOptional = (value: unknown, check: (value: unknown) => boolean) => value === undefined || check(value);
const isChange = (value: unknown) => typeof value === "string" && SIGNED_DECIMAL.test(value);
const isLabel = (value: unknown) => typeof value === "string";

/**
 * The fast path for history, which can run to millions of records: the same rules as
 * AwesomeQuoteSchema, checked by hand. It only accepts what the schema accepts; anything else
 * goes to the schema, which explains what is wrong.
 */
function wellFormedRecord(element: unknown): AwesomeQuote | undefined {
  if (!isPlainObject(element)) return undefined;
  const { bid, ask, high, low, varBid, pctChange, timestamp, code, codein, name, create_date } = element;
  if (!isPrice(bid) || !isPrice(ask) || !isOptional(high, isPrice) || !isOptional(low, isPrice)) return undefined;
  if (!isOptional(varBid, isChange) || !isOptional(pctChange, isChange)) return undefined;
  if (!isOptional(code, isLabel) || !isOptional(codein, isLabel) || !isOptional(name, isLabel) || !isOptional(create_date, isLabel)) {
    return undefined;
  }
  if (typeof timestamp !== "string" || !TIMESTAMP_DIGITS.test(timestamp)) return undefined;
  const stamp = Number(timestamp);
  if (!(stamp > 0)) return undefined;
  return {
    code: code as string | undefined,
    codein: codein as string | undefined,
    bid,
    ask,
    high: high as string | undefined,
    low: low as string | undefined,
    varBid: varBid as string | undefined,
    pctChange: pctChange as string | undefined,
    timestamp: new Date(stamp > MILLISECOND_TIMESTAMP_ABOVE ? stamp : stamp * 1000),
  };
}

/** A day's kept quote and the records that shared its timestamp with other values, which were dropped. */
export interface DailyConflict {
  pair: string;
  /** The São Paulo day, "YYYY-MM-DD". */
  day: string;
  ts: Date;
  kept: Quote;
  /** In the order received; identical duplicates are not listed (they are no conflict). */
  dropped: Quote[];
}

const VALUE_FIELDS = ["bid", "ask", "high", "low", "varBid", "pctChange"] as const;
const differingFields = (a: Quote, b: Quote) => VALUE_FIELDS.filter((field) => a[field] !== b[field]);

/**
 * normaliseDaily(), also returning the conflicts: records of the kept timestamp whose values
 * differ. The rule: of records sharing a timestamp, the first in the order given is kept, which
 * for an answer is the first the API lists (it lists newest first). Twins of a record the day
 * does not keep (an earlier one) change nothing stored, so they are not conflicts.
 */
export function normaliseDailyWithConflicts(quotes: readonly Quote[], within?: DateRange): { quotes: Quote[]; conflicts: DailyConflict[] } {
  const byPair = new Map<string, Map<string, Quote>>();
  // Only allocated for a conflict: history runs to millions of records, conflicts to a handful.
  const droppedByKept = new Map<Quote, DailyConflict>();
  for (const quote of quotes) {
    const day = saoPauloDay(quote.ts);
    if (within && (day < within.from || day > within.to)) continue;
    let byDay = byPair.get(quote.pair);
    if (!byDay) {
      byDay = new Map();
      byPair.set(quote.pair, byDay);
    }
    const kept = byDay.get(day);
    if (!kept || quote.ts.getTime() > kept.ts.getTime()) {
      byDay.set(day, quote);
    } else if (quote.ts.getTime() === kept.ts.getTime() && differingFields(kept, quote).length > 0) {
      let conflict = droppedByKept.get(kept);
      if (!conflict) {
        conflict = { pair: kept.pair, day, ts: kept.ts, kept, dropped: [] };
        droppedByKept.set(kept, conflict);
      }
      if (!conflict.dropped.some((other) => differingFields(other, quote).length === 0)) conflict.dropped.push(quote);
    }
  }
  const result: Quote[] = [];
  const conflicts: DailyConflict[] = [];
  for (const byDay of byPair.values()) {
    for (const quote of byDay.values()) {
      result.push(quote);
      const conflict = droppedByKept.size > 0 ? droppedByKept.get(quote) : undefined;
      if (conflict) conflicts.push(conflict);
    }
  }
  const byTimeThenPair = (a: { ts: Date; pair: string }, b: { ts: Date; pair: string }) =>
    a.ts.getTime() - b.ts.getTime() || (a.pair < b.pair ? -1 : a.pair > b.pair ? 1 : 0);
  return { quotes: result.sort(byTimeThenPair), conflicts: conflicts.sort(byTimeThenPair) };
}

/**
 * One quote per pair and São Paulo calendar day, the one with the latest timestamp (the day's
 * close; the API can send a day twice, or a late correction); of records sharing that timestamp,
 * the first given (see normaliseDailyWithConflicts()). Sorted by time, then pair.
 */
export function normaliseDaily(quotes: readonly Quote[], within?: DateRange): Quote[] {
  return normaliseDailyWithConflicts(quotes, within).quotes;
}

/**
 * One line saying what a conflict was and what was kept, e.g. `USD-BRL 2024-08-23: 2 records share
 * timestamp 2024-08-23 17:39:40 UTC with different bids; kept the first (5.5037), dropped 5.51`.
 */
export function describeConflict(conflict: DailyConflict): string {
  const fields = VALUE_FIELDS.filter((field) => conflict.dropped.some((quote) => quote[field] !== conflict.kept[field]));
  const only = fields.length === 1 ? fields[0] : undefined;
  const what = only === "bid" ? "bids" : fields.join(" and ");
  const show = (quote: Quote) => (only ? `${quote[only]}` : `(${fields.map((field) => `${field} ${quote[field]}`).join(", ")})`);
  const kept = only ? `(${show(conflict.kept)})` : show(conflict.kept);
  return `${conflict.pair} ${conflict.day}: ${conflict.dropped.length + 1} records share timestamp ${utcText(conflict.ts)} with different ${what}; kept the first ${kept}, dropped ${conflict.dropped.map(show).join(", ")}`;
}

// ---------------------------------------------------------------------------------------------
// Transport

/** What `onRetry` hears before each wait. */
export interface RetryInfo {
  /** The attempt that failed, from 1. */
  attempt: number;
  /** How long the client waits before the next attempt. */
  delayMs: number;
  error: IngestError;
}

/** How requests are made (lib/http.ts; defaults: DEFAULT_TIMEOUT_MS, DEFAULT_MAX_BODY_BYTES, DEFAULT_RETRIES). */
export type RequestOptions = SourceRequestOptions<RetryInfo>;

/** A decoded JSON answer. */
export interface JsonResponse {
  status: number;
  body: unknown;
  /** Requests made, retries included. */
  attempts: number;
}

const RequestSettingsSchema = v.object({
  timeoutMs: v.pipe(
    v.number(),
    // No lower bound here: tests time out in a few ms. The upper one keeps the timer from overflowing.
    v.check(
      (n) => Number.isSafeInteger(n) && n > 0 && n <= MAX_TIMEOUT_MS,
      (i) => `'timeoutMs' must be a positive integer of at most ${MAX_TIMEOUT_MS} (10 minutes), got ${String(i.input)}`,
    ),
  ),
  retries: v.pipe(
    v.number(),
    v.check((n) => Number.isSafeInteger(n) && n >= 0, (i) => `'retries' must be a non-negative integer, got ${String(i.input)}`),
  ),
  maxBodyBytes: v.pipe(
    v.number(),
    v.check((n) => Number.isSafeInteger(n) && n > 0, (i) => `'maxBodyBytes' must be a positive integer, got ${String(i.input)}`),
  ),
});

/** Backoff before attempt `attempt + 1`: 500 ms doubling, capped at 8 s, with half of it jittered. */
export function backoffDelay(attempt: number, random: () => number = Math.random): number {
  return backoffMs(attempt, SOURCE_BACKOFF, random);
}

interface AttemptFailure {
  error: IngestError;
  retryable: boolean;
  retryAfter?: number | undefined;
}

function describeNonJson(text: string, status: number, parseMessage: string): string {
  const trimmed = text.trimStart();
  if (trimmed.startsWith("<")) {
    return `the answer (HTTP ${status}) was an HTML page, not JSON (an outage page, e.g. from Cloudflare)`;
  }
  if (trimmed === "") return `the answer (HTTP ${status}) was empty, not JSON`;
  return `the answer (HTTP ${status}) was not JSON (${parseMessage}), it starts ${showValue(trimmed)}`;
}

/** One request's fixed inputs, shared by its attempts. */
interface Attempt {
  url: string;
  /** `url` with its secrets masked. */
  shownUrl: string;
  /** What `url` carries that no message may show. */
  secrets: string[];
  fetch: Fetch;
  timeoutMs: number;
  maxBodyBytes: number;
  now: () => Date;
}

/** "8 MiB", "512 KiB" or "1000 bytes", for messages. */
function byteSize(bytes: number): string {
  if (bytes % (1024 * 1024) === 0) return `${bytes / (1024 * 1024)} MiB`;
  if (bytes % 1024 === 0) return `${bytes / 1024} KiB`;
  return `${bytes} bytes`;
}


async function attemptRequest({ url, shownUrl, secrets, fetch, timeoutMs, maxBodyBytes, now }: Attempt): Promise<
  { ok: true; status: number; body: unknown } | { ok: false; failure: AttemptFailure }
> {
  const signal = AbortSignal.timeout(timeoutMs);
  const fail = (code: IngestErrorCode, message: string, extra: Partial<AttemptFailure> & { cause?: unknown; status?: number } = {}) => ({
    ok: false as const,
    failure: {
      error: new IngestError(code, `Cannot fetch ${shownUrl}: ${maskSecrets(message, secrets)}`, {
        cause: extra.cause,
        status: extra.status,
      }),
      retryable: extra.retryable ?? RETRIED_FAILURES.has(code),
      retryAfter: extra.retryAfter,
    },
  });
  let response: Response;
  let bytes: Uint8Array | undefined;
  try {
    response = await fetch(url, { signal, headers: { accept: "application/json" } });
    // Reading the body is part of the attempt: a stalled or cut-off body is a timeout or network error too.
    bytes = await readCappedBody(response, signal, maxBodyBytes);
  } catch (cause) {
    if (signal.aborted) {
      return fail("TIMEOUT", `no complete answer within ${timeoutMs} ms, check the connection or raise AWESOMEAPI_TIMEOUT_MS`, { cause });
    }
    const reason = cause instanceof Error ? cause.message.split("\n")[0] : String(cause);
    return fail("NETWORK", `network error (${reason}), check the connection and AWESOMEAPI_URL`, { cause });
  }
  const status = response.status;
  if (bytes === undefined) {
    return fail(
      "TOO_LARGE",
      `the answer is larger than ${byteSize(maxBodyBytes)} once decompressed, the most this client reads, check that AWESOMEAPI_URL is AwesomeAPI, else try again later`,
      { status },
    );
  }
  const text = BODY_DECODER.decode(bytes);
  let body: unknown;
  let parseError: unknown;
  try {
    body = JSON.parse(text);
  } catch (cause) {
    parseError = cause;
  }
  const retryable = isRetryableStatus(status);
  const retryAfter = retryable ? retryAfterMs(response.headers.get("retry-after"), now()) : undefined;
  if (parseError !== undefined) {
    const reason = parseError instanceof Error ? parseError.message : String(parseError);
    return fail("NOT_JSON", `${describeNonJson(text, status, reason)}, try again later`, {
      cause: parseError,
      status,
      retryable: !response.ok && retryable,
      retryAfter,
    });
  }
  if (status === 404 && isPlainObject(body) && body["code"] === "CoinNotExists") {
    const apiMessage = typeof body["message"] === "string" ? body["message"] : "CoinNotExists";
    return fail("UNKNOWN_PAIR", `the API does not know the pair (${apiMessage})`, { status, cause: body });
  }
  if (!response.ok) {
    const hint = STATUS_HINTS[status] ?? (status >= 500 ? "the API is failing, try again later" : "check AWESOMEAPI_URL");
    return fail("HTTP", `the API answered HTTP ${status}, ${hint}`, { status, retryable, retryAfter, cause: body });
  }
  return { ok: true, status, body };
}

/**
 * GETs `url` and decodes its JSON body, retrying network errors, timeouts, 5xx, 429 and 409 with
 * exponential backoff and jitter (or the `Retry-After` the API sends). Every failure is an
 * `IngestError` whose message shows the URL with its token, user and password masked.
 */
export async function requestJson(url: string, options: RequestOptions = {}): Promise<JsonResponse> {
  const {
    fetch = globalThis.fetch,
    sleep = Bun.sleep,
    random = Math.random,
    now = () => new Date(),
    onRetry,
  } = options;
  const settings = v.safeParse(RequestSettingsSchema, {
    timeoutMs: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    retries: options.retries ?? DEFAULT_RETRIES,
    maxBodyBytes: options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES,
  });
  if (!settings.success) throw new IngestError("USAGE", `Cannot fetch: ${settings.issues[0].message}`);
  const { timeoutMs, retries, maxBodyBytes } = settings.output;
  const secrets = secretsOf(url);
  const attempt: Attempt = { url, shownUrl: maskSecrets(url, secrets), secrets, fetch, timeoutMs, maxBodyBytes, now };
  for (let count = 1; ; count++) {
    const result = await attemptRequest(attempt);
    if (result.ok) return { status: result.status, body: result.body, attempts: count };
    const { error, retryable, retryAfter } = result.failure;
    if (!retryable || count > retries) {
      const after = count > 1 ? ` (gave up after ${count} attempts)` : "";
      throw new IngestError(error.code, `${error.message}${after}`, {
        cause: error.cause,
        attempts: count,
        status: error.status,
      });
    }
    const delayMs = retryAfter ?? backoffDelay(count, random);
    onRetry?.({ attempt: count, delayMs, error });
    await sleep(delayMs);
  }
}

// ---------------------------------------------------------------------------------------------
// Endpoints

/** Where AwesomeAPI is, plus how to reach it; `{ ...loadIngestConfig(env), fetch }` fits. */
export interface IngestOptions extends RequestOptions {
  baseUrl?: string;
  token?: string;
}

function endpointUrl(options: IngestOptions, path: string, query: Record<string, string> = {}): string {
  const base = (options.baseUrl ?? DEFAULT_AWESOMEAPI_URL).replace(/\/+$/, "");
  const params = new URLSearchParams(query);
  if (options.token) params.set("token", options.token);
  const search = params.toString();
  return `${base}${path}${search ? `?${search}` : ""}`;
}

/** requestJson(), with an unknown-pair answer reworded to name the pairs asked for. */
async function requestForPairs(url: string, pairs: readonly string[], action: string, options: IngestOptions): Promise<JsonResponse> {
  try {
    return await requestJson(url, options);
  } catch (error) {
    if (!(error instanceof IngestError) || error.code !== "UNKNOWN_PAIR") throw error;
    // The API's message names the culprit ("moeda nao encontrada USD-USD"); fall back to all of them.
    const apiMessage = isPlainObject(error.cause) && typeof error.cause["message"] === "string" ? error.cause["message"] : "";
    const named = pairs.filter((pair) => apiMessage.includes(pair));
    const culprits = (named.length > 0 ? named : pairs).map((pair) => `"${pair}"`).join(", ");
    throw new IngestError(
      "UNKNOWN_PAIR",
      `Cannot ${action}: unknown pair ${culprits} (HTTP 404 CoinNotExists), check the pair against ${DEFAULT_AWESOMEAPI_URL}/json/available`,
      { cause: error, attempts: error.attempts, status: error.status },
    );
  }
}

/** Every failure carries how many requests were made; payload errors learn it here. */
function withAttempts(error: unknown, attempts: number): unknown {
  if (!(error instanceof IngestError) || error.attempts === attempts) return error;
  return new IngestError(error.code, error.message, { cause: error.cause ?? error, attempts, status: error.status });
}

/** The latest quote of each pair, from one `GET /json/last/A-B,C-D` request. */
export async function fetchLatest(pairs: readonly string[], options: IngestOptions = {}): Promise<Quote[]> {
  const valid = parsePairs(pairs);
  const { now = () => new Date() } = options;
  const url = endpointUrl(options, `/json/last/${valid.join(",")}`);
  const response = await requestForPairs(url, valid, `fetch the latest ${valid.join(", ")} quotes`, options);
  try {
    return parseLatest(response.body, valid, now());
  } catch (error) {
    throw withAttempts(error, response.attempts);
  }
}

/** One history chunk's result: the in-range quotes, one per São Paulo day, oldest first. */
export interface DailyChunk {
  pair: string;
  from: string;
  to: string;
  quotes: Quote[];
  /** Timestamps at which the API sent records with different values; the first of each was kept. */
  conflicts: number;
  /** One line per conflict (describeConflict()), at most MAX_CONFLICT_LINES and then one for the rest: for the run's output. */
  warnings: string[];
}

/**
 * Fetches one chunk. The API answers newest first and may stop short of `from` (it sends at
 * most N records, or fewer than asked): then the older part it left out, `from` up to the day
 * before its oldest record, is asked for next, until every weekday of the chunk is covered or the
 * API answers that part with nothing (the pair's history begins later). The oldest day of a short
 * answer is not asked again: newest first, its latest record (the one kept) is in. At most
 * DAILY_MAX_REQUESTS_PER_CHUNK requests, else TRUNCATED.
 */
async function fetchDailyChunk(pair: string, range: DateRange, options: IngestOptions): Promise<DailyChunk> {
  const { now = () => new Date() } = options;
  const received: Quote[] = [];
  let missing: DateRange | undefined = range;
  for (let requests = 0; missing; requests++) {
    if (requests === DAILY_MAX_REQUESTS_PER_CHUNK) {
      throw new IngestError(
        "TRUNCATED",
        `Cannot fetch the ${pair} history from ${range.from} to ${range.to}: after ${requests} requests the API's answers reach back only to ${addDays(missing.to, 1)}, so the days from ${missing.from} to ${missing.to} are missing; try again later, or report it: the API's daily data looks wrong`,
        { attempts: requests },
      );
    }
    const part: DateRange = missing;
    const url = endpointUrl(options, `/json/daily/${pair}/${DAILY_MAX_RECORDS}`, {
      start_date: compactDate(part.from),
      end_date: compactDate(part.to),
    });
    const response = await requestForPairs(url, [pair], `fetch the ${pair} history from ${part.from} to ${part.to}`, options);
    let parsed: Quote[];
    try {
      parsed = parseDaily(response.body, pair, now());
    } catch (error) {
      throw withAttempts(error, response.attempts);
    }
    let oldest: string | undefined;
    for (const quote of parsed) {
      const day = saoPauloDay(quote.ts);
      if (day < part.from || day > part.to) continue;
      received.push(quote);
      if (oldest === undefined || day < oldest) oldest = day;
    }
    if (oldest === undefined) {
      // Nothing more: fine for the older part, or for a stretch too short to be sure it has trading days.
      if (requests === 0 && countWeekdays(range) >= MIN_WEEKDAYS_EXPECTING_DATA) {
        throw new IngestError(
          "NO_DATA",
          `Cannot fetch the ${pair} history: the API sent no quotes from ${range.from} to ${range.to}, which has ${countWeekdays(range)} weekdays; if ${pair} has no history that far back, choose a later start date, else try again later`,
          { attempts: response.attempts, status: response.status },
        );
      }
      break;
    }
    const older: DateRange | undefined = oldest > part.from ? { from: part.from, to: addDays(oldest, -1) } : undefined;
    // A weekend left before a short answer's oldest day is taken as covered: asking for it would
    // cost a request for every chunk that starts on a Saturday, for what is almost always nothing.
    const mayHoldMore = older !== undefined && (countWeekdays(older) > 0 || parsed.length >= DAILY_MAX_RECORDS);
    missing = mayHoldMore ? older : undefined;
  }
  const { quotes, conflicts } = normaliseDailyWithConflicts(received, range);
  const warnings = conflicts.slice(0, MAX_CONFLICT_LINES).map(describeConflict);
  if (conflicts.length > MAX_CONFLICT_LINES) {
    warnings.push(
      `${pair} ${range.from}..${range.to}: ${conflicts.length - MAX_CONFLICT_LINES} more timestamps held records with different values; the first of each was kept`,
    );
  }
  return { pair, from: range.from, to: range.to, quotes, conflicts: conflicts.length, warnings };
}

/**
 * The daily history of `pair` over `range`, in chunks of at most CHUNK_DAYS days, oldest first:
 * one request per chunk, more when the API's answer stops short of the chunk's start (see
 * fetchDailyChunk()). Each yielded chunk holds one quote per São Paulo day; store it before asking
 * for the next, and memory stays bounded whatever the range. `to` is clamped to today. With `concurrency` above 1, that
 * many chunks are fetched ahead while the caller works, and still yielded in order.
 *
 * A range that starts before the API's first day of `pair` starts at that day: the API answers
 * nothing before it, so the chunks before the first quote are skipped (not yielded) and the
 * first chunk with quotes says so in one line of its `warnings`. Nothing at all over the whole
 * range is NO_DATA, as is an empty chunk after the first quote.
 */
export async function* dailyChunks(
  pair: string,
  range: DateRange,
  options: IngestOptions & { concurrency?: number } = {},
): AsyncGenerator<DailyChunk> {
  const [valid] = parsePairs([pair]);
  const checked = parseRange(range, `fetch the ${pair} history`);
  if (!valid) return;
  const today = saoPauloDay((options.now ?? (() => new Date()))());
  if (checked.from > today) {
    throw new IngestError("USAGE", `Cannot fetch the ${valid} history: 'from' (${checked.from}) is after today (${today}), choose a past date`);
  }
  const last = checked.to > today ? today : checked.to;
  const planned = planChunks(checked.from, last);
  const ahead: Promise<DailyChunk>[] = [];
  const fetchNext = () => {
    const next = planned.shift();
    if (!next) return;
    const chunk = fetchDailyChunk(valid, next, options);
    // Awaited in order below; until then a failure must not count as unhandled.
    chunk.catch(() => {});
    ahead.push(chunk);
  };
  for (let i = 0; i < Math.max(1, options.concurrency ?? 1); i++) fetchNext();
  let started = false;
  const skipped: IngestError[] = [];
  for (let chunk = ahead.shift(); chunk; chunk = ahead.shift()) {
    let fetched: DailyChunk;
    try {
      fetched = await chunk;
    } catch (error) {
      // Before the pair's first day the API answers an empty list: go on until its history begins.
      if (started || !(error instanceof IngestError && error.code === "NO_DATA")) throw error;
      skipped.push(error);
      fetchNext();
      continue;
    }
    fetchNext();
    const first = fetched.quotes[0];
    if (!started && first) {
      started = true;
      const firstDay = saoPauloDay(first.ts);
      const before: DateRange = { from: checked.from, to: addDays(firstDay, -1) };
      if (before.from <= before.to && countWeekdays(before) >= MIN_WEEKDAYS_EXPECTING_DATA) {
        fetched = { ...fetched, warnings: [`${valid}: the API has no quotes from ${before.from} to ${before.to}; its history starts on ${firstDay}, so this one does too`, ...fetched.warnings] };
      }
    }
    yield fetched;
  }
  if (!started && skipped.length === 1) throw skipped[0];
  if (!started && skipped.length > 1) {
    throw new IngestError(
      "NO_DATA",
      `Cannot fetch the ${valid} history: the API sent no quotes from ${checked.from} to ${last}, which has ${countWeekdays({ from: checked.from, to: last })} weekdays; try again later, or check the pair against ${DEFAULT_AWESOMEAPI_URL}/json/available`,
      { attempts: skipped.reduce((sum, error) => sum + (error.attempts ?? 0), 0) },
    );
  }
}

/** The daily history of `pair` over `range`, collected (one quote per São Paulo day, oldest first). */
export async function fetchDaily(pair: string, range: DateRange, options: IngestOptions = {}): Promise<Quote[]> {
  const quotes: Quote[] = [];
  for await (const chunk of dailyChunks(pair, range, options)) quotes.push(...chunk.quotes);
  return quotes;
}

// ---------------------------------------------------------------------------------------------
// CLI

const USAGE = `Usage: bun ingest.ts [--pairs USD-BRL,EUR-BRL] [--daily --from YYYY-MM-DD [--to YYYY-MM-DD]]

Fetches quotes from AwesomeAPI, validates them and prints one JSON object per line
(pair, ts, bid, ask, high, low, varBid, pctChange, source, fetchedAt). Nothing is stored.
Warnings (a timestamp sent twice with different values, and which record was kept) go to stderr.

Options:
  --pairs LIST   comma-separated pairs, e.g. USD-BRL,EUR-BRL (default ${DEFAULT_PAIRS.join(",")})
  --daily        the daily history (one quote per São Paulo day) instead of the latest quote
  --from DATE    first day of the history, YYYY-MM-DD (required with --daily)
  --to DATE      last day of the history, YYYY-MM-DD (default: today)
  -h, --help     show this help
  -V, --version  print the version and exit

Environment:
  AWESOMEAPI_URL         API base URL (default ${DEFAULT_AWESOMEAPI_URL})
  AWESOMEAPI_TOKEN       API key, sent as the query parameter "token" (never printed)
  AWESOMEAPI_TIMEOUT_MS  per-request timeout, ${MIN_TIMEOUT_MS} to ${MAX_TIMEOUT_MS} ms (default ${DEFAULT_TIMEOUT_MS})

Exit codes: 0 done, 1 the fetch failed, 2 bad usage or configuration.`;

const FLAGS = {
  pairs: { type: "string" },
  daily: { type: "boolean" },
  from: { type: "string" },
  to: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

/** Runs the CLI and returns its exit code. */
export async function main(args: string[]): Promise<number> {
  try {
    const flags = readFlags(args, FLAGS, "ingest.ts");
    if (flags.help) {
      console.log(USAGE);
      return 0;
    }
    const pairs = parsePairs(flags.pairs ?? DEFAULT_PAIRS);
    if (!flags.daily && (flags.from !== undefined || flags.to !== undefined)) {
      throw usageError("Cannot read the arguments: --from and --to need --daily", "ingest.ts");
    }
    if (flags.daily && flags.from === undefined) {
      throw usageError("Cannot read the arguments: --daily needs --from YYYY-MM-DD", "ingest.ts");
    }
    const options: IngestOptions = loadIngestConfig(process.env);
    if (!flags.daily) {
      for (const quote of await fetchLatest(pairs, options)) console.log(JSON.stringify(quote));
      return 0;
    }
    const range = { from: flags.from ?? "", to: flags.to ?? saoPauloDay(new Date()) };
    parseRange(range, "read the arguments");
    for (const pair of pairs) {
      for await (const chunk of dailyChunks(pair, range, options)) {
        for (const warning of chunk.warnings) console.error(`warning: ${warning}`);
        for (const quote of chunk.quotes) console.log(JSON.stringify(quote));
      }
    }
    return 0;
  } catch (error) {
    // Every expected failure is of the family (lib/errors.ts); anything else is a bug, and its stack says where.
    if (!(error instanceof CotacaoError)) throw error;
    return printDescribed(describeError(error, "fetch"));
  }
}

if (import.meta.main) {
  process.exitCode = await main(Bun.argv.slice(2));
}
