/**
 * lib/bcb.ts: Banco Central do Brasil's PTAX bulletins, from its Olinda OData service
 * (`CotacaoMoedaPeriodo`: every bulletin of a currency over a range of days), read as
 * OfficialRate rows (lib/official.ts). Parsing is pure; the transport retries only what is
 * transient (lib/retry.ts), under the same rules as the AwesomeAPI client: a timeout per
 * attempt (the body included), a size cap on the body, bounded retries with backoff, and one
 * line per failure, of the family every script shares (lib/errors.ts), naming BCB.
 *
 * Olinda's quirks, each handled here on purpose (test/bcb.test.ts, with the real payloads in
 * test/fixtures/bcb):
 * - dates go in as `'MM-DD-YYYY'` in single quotes, and `$`/`@` are written as they are (fetch
 *   sends the quotes as %27, as browsers do, which Olinda reads the same);
 * - rates are JSON numbers: their digits are kept as written (readJsonKeepingNumbers()), never
 *   through a float (5.12345678 and 0.0300 stay so);
 * - `dataHoraCotacao` is Brasília wall-clock time without a zone, with 1 to 6 fractional digits:
 *   it gets the offset then in force (-02 in the summers before 2019) and keeps every digit;
 * - the closing bulletin is `Fechamento` in the period endpoints, `Fechamento PTAX` in the day ones;
 * - a weekend or holiday answers 200 with `"value": []`: no bulletins, not an error;
 * - a currency Olinda does not know answers HTTP 500 with JSON wrapped in a `/* ... *\/` comment;
 * - outages answer an HTML or XML page.
 */
import * as v from "valibot";
import { formatSaoPauloTime, isCalendarDate } from "./calendar.ts";
import { envIssue, SourceError } from "./errors.ts";
import { type Fetch, isHttpUrl, readCappedBody, showValue, type SourceRequestOptions } from "./http.ts";
import { type Bulletin, type OfficialRate, PTAX_CURRENCIES } from "./official.ts";
import { backoffMs, isRetryableStatus, RETRIED_FAILURES, retryAfterMs } from "./retry.ts";

/** Olinda's PTAX service, used when BCB_URL is unset. */
export const DEFAULT_BCB_URL = "https://olinda.bcb.gov.br/olinda/servico/PTAX/versao/v1/odata";
/** Per-attempt timeout, the body included. */
export const DEFAULT_BCB_TIMEOUT_MS = 10_000;
/** Attempts after the first, for transient failures. */
export const DEFAULT_BCB_RETRIES = 3;
/**
 * The most bytes of one answer read, once decompressed: a year of one currency's bulletins is
 * ~250 KB, so 8 MiB is ample, and an endless or gzip-bombed body stops there.
 */
export const DEFAULT_BCB_MAX_BODY_BYTES = 8 * 1024 * 1024;
/** The wait before a retry: 500 ms doubling, at most 8 s (as for AwesomeAPI). */
export const BCB_BACKOFF = { firstMs: 500, maxMs: 8_000 } as const;
/** The longest timeout accepted (10 minutes): timers overflow past ~24.8 days, and longer only hides a hung service. */
const MAX_TIMEOUT_MS = 600_000;
/** Whom every message names. */
const BCB = "BCB";
const MS_PER_HOUR = 3_600_000;
// Bounds the offset cache (30 years of bulletins touch ~30,000 wall-clock hours).
const OFFSET_CACHE_MAX_ENTRIES = 100_000;

const CURRENCY_PATTERN = /^[A-Z]{3}$/;
const RATE_TEXT = /^\d+(\.\d+)?$/;
const WALL_CLOCK = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?$/;
// A JSON number token, as JSON's grammar has it, read where the scan stands.
const NUMBER_TOKEN = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
// Olinda's application errors: `/*{"codigo": 500, "mensagem": "..."}*/`.
const COMMENTED_JSON = /^\/\*([\s\S]*)\*\/$/;

// Olinda declares UTF-8; a body that is not valid UTF-8 is read as Latin-1, so "Intermediário" survives.
const UTF8 = new TextDecoder("utf-8", { fatal: true });
const LATIN1 = new TextDecoder("latin1");

/** `tipoBoletim` as Olinda writes it, and the bulletin it is. */
const BULLETIN_BY_TYPE: Readonly<Record<string, Bulletin>> = {
  Abertura: "opening",
  Intermediário: "intermediate",
  // The period endpoints' name for the closing PTAX...
  Fechamento: "closing",
  // ...and the day endpoints'.
  "Fechamento PTAX": "closing",
};

// ---------------------------------------------------------------------------------------------
// Errors

/** Codes that let callers tell BCB's failures apart. */
export type BcbErrorCode =
  | "CONFIG"
  | "USAGE"
  | "HTTP"
  | "TIMEOUT"
  | "NETWORK"
  | "NOT_JSON"
  | "INVALID_PAYLOAD"
  | "UNKNOWN_CURRENCY"
  | "TRUNCATED"
  | "TOO_LARGE";

/** A failed request to BCB, of the family every script shares: a code, one line naming BCB, the requests made. */
export class BcbError extends SourceError<BcbErrorCode> {
  override name = "BcbError";
}


// ---------------------------------------------------------------------------------------------
// Configuration


const BcbEnvSchema = v.object({
  BCB_URL: v.pipe(
    v.optional(v.string(), ""),
    v.trim(),
    v.check(
      (url) => url === "" || isHttpUrl(url),
      // Not echoed: a URL that fails may hold a password.
      `must be an http:// or https:// URL without user, query or fragment, like BCB_URL=${DEFAULT_BCB_URL}`,
    ),
    // Paths are appended with "/", so a trailing slash must not double it.
    v.transform((url) => (url || DEFAULT_BCB_URL).replace(/\/+$/, "")),
  ),
  // Whether each `bun main_pipeline.ts` run also fetches the last days' bulletins (on by default).
  COTACAO_OFFICIAL: v.pipe(
    v.optional(v.string(), ""),
    v.trim(),
    v.toLowerCase(),
    v.check((text) => ["", "on", "off"].includes(text), (issue) => `must be on or off, got ${showValue(String(issue.input))}`),
    v.transform((text) => text !== "off"),
  ),
});

/** Where BCB's Olinda PTAX service is. */
export interface BcbConfig {
  /** Without a trailing slash, e.g. DEFAULT_BCB_URL. */
  baseUrl: string;
  /** COTACAO_OFFICIAL: each pipeline run also fetches the official bulletins (default true; "off": false). */
  official: boolean;
}

/**
 * Reads and validates BCB_URL (empty or unset: DEFAULT_BCB_URL) and COTACAO_OFFICIAL (on or
 * off, default on); throws a one-line CONFIG error naming the variable.
 */
export function loadBcbConfig(env: Record<string, string | undefined>): BcbConfig {
  const result = v.safeParse(BcbEnvSchema, env);
  if (!result.success) throw envIssue(result.issues);
  return { baseUrl: result.output.BCB_URL, official: result.output.COTACAO_OFFICIAL };
}

// ---------------------------------------------------------------------------------------------
// Dates and times (pure)

/** A span of calendar days, both ends included, as "YYYY-MM-DD". */
export interface DayRange {
  from: string;
  to: string;
}

function checkCurrency(currency: string, action: string): string {
  if (!CURRENCY_PATTERN.test(currency)) {
    throw new BcbError("USAGE", `Cannot ${action}: the currency must be three capital letters like "USD", got ${showValue(currency)}`);
  }
  return currency;
}

function checkRange(range: DayRange, action: string): DayRange {
  for (const end of ["from", "to"] as const) {
    if (!isCalendarDate(range[end])) throw new BcbError("USAGE", `Cannot ${action}: '${end}' must be a date like 2024-08-23, got ${showValue(range[end])}`);
  }
  if (range.from > range.to) throw new BcbError("USAGE", `Cannot ${action}: 'from' (${range.from}) must not be after 'to' (${range.to})`);
  return range;
}

/** "2024-08-23" as Olinda wants it: "08-23-2024". */
export const olindaDate = (date: string): string => `${date.slice(5, 7)}-${date.slice(8, 10)}-${date.slice(0, 4)}`;

/**
 * The URL of every bulletin of `currency` from `range.from` to `range.to`, as Olinda reads it:
 * parameters in single quotes, `@` and `$` written as they are (not percent-encoded).
 */
export function ptaxPeriodUrl(baseUrl: string, currency: string, range: DayRange): string {
  const base = baseUrl.replace(/\/+$/, "");
  const query = `@moeda='${currency}'&@dataInicial='${olindaDate(range.from)}'&@dataFinalCotacao='${olindaDate(range.to)}'&$format=json`;
  return `${base}/CotacaoMoedaPeriodo(moeda=@moeda,dataInicial=@dataInicial,dataFinalCotacao=@dataFinalCotacao)?${query}`;
}

/** The calendar years of a range, each clipped to it, oldest first: one request each in a backfill. */
export function planPtaxYears(range: DayRange): DayRange[] {
  const { from, to } = checkRange(range, `plan the PTAX requests to ${BCB}`);
  const years: DayRange[] = [];
  for (let year = Number(from.slice(0, 4)); year <= Number(to.slice(0, 4)); year++) {
    const first = `${String(year).padStart(4, "0")}-01-01`;
    const last = `${String(year).padStart(4, "0")}-12-31`;
    years.push({ from: first < from ? from : first, to: last > to ? to : last });
  }
  return years;
}

/** São Paulo's offset at an instant, as "-03:00" (lib/calendar.ts is the one that knows São Paulo's clock). */
function offsetTextAt(at: number): string {
  const match = /([+-])(\d{2})(?::(\d{2}))?$/.exec(formatSaoPauloTime(new Date(at)));
  return match ? `${match[1]}${match[2]}:${match[3] ?? "00"}` : "-03:00";
}

const offsetMs = (text: string): number => (text.startsWith("-") ? -1 : 1) * (Number(text.slice(1, 3)) * MS_PER_HOUR + Number(text.slice(4, 6)) * 60_000);

/**
 * The offset in force when São Paulo's wall clock read `wall` (ms, a wall-clock time read as
 * UTC): the one whose instant reads `wall` back. Brazil's clocks changed at midnight, when no
 * bulletin is published; for the hour that did not exist, the offset before the change is taken,
 * and for the hour that came twice, summer time's.
 */
function offsetAtWallClock(wall: number): string {
  // The offsets in force an hour apart around it (São Paulo's are -02 and -03), the earlier first.
  const candidates = [offsetTextAt(wall + 2 * MS_PER_HOUR), offsetTextAt(wall + 3 * MS_PER_HOUR)];
  return candidates.find((candidate) => offsetTextAt(wall - offsetMs(candidate)) === candidate) ?? candidates[0] ?? "-03:00";
}

// "YYYY-MM-DD HH" of a valid date and hour -> the offset then in force (an hour of history holds ~5 bulletins).
const offsetByDateHour = new Map<string, string>();

/** The offset of a wall-clock hour "YYYY-MM-DD HH", or undefined if it is no real date and hour. */
function offsetOfDateHour(dateHour: string): string | undefined {
  let text = offsetByDateHour.get(dateHour);
  if (text === undefined) {
    const date = dateHour.slice(0, 10);
    const hour = Number(dateHour.slice(11, 13));
    if (!isCalendarDate(date) || hour > 23) return undefined;
    text = offsetAtWallClock(Date.parse(`${date}T00:00:00Z`) + hour * MS_PER_HOUR);
    if (offsetByDateHour.size >= OFFSET_CACHE_MAX_ENTRIES) offsetByDateHour.clear();
    offsetByDateHour.set(dateHour, text);
  }
  return text;
}

/** A `dataHoraCotacao` read: the instant as text (see brasiliaInstant()) and in microseconds since 1970, for ordering (a Date keeps milliseconds only). */
function readWallClock(wallClock: string): { publishedAt: string; micros: number } | undefined {
  const match = WALL_CLOCK.exec(wallClock);
  if (!match) return undefined;
  const [, year, month, day, hour, minute, second, fraction] = match;
  if (Number(minute) > 59 || Number(second) > 59) return undefined;
  const offset = offsetOfDateHour(wallClock.slice(0, 13));
  if (offset === undefined) return undefined;
  const wall = Date.UTC(Number(year), Number(month) - 1, Number(day), Number(hour), Number(minute), Number(second));
  const micros = (wall - offsetMs(offset)) * 1000 + (fraction === undefined ? 0 : Number(fraction.padEnd(6, "0")));
  return { publishedAt: `${wallClock.slice(0, 10)}T${wallClock.slice(11)}${offset}`, micros };
}

/**
 * `dataHoraCotacao` ("2020-08-28 13:09:27.123456", Brasília wall-clock time) as the instant it
 * names, with the offset then in force and every fractional digit as written:
 * "2020-08-28T13:09:27.123456-03:00". Undefined if it is not such a time.
 */
export function brasiliaInstant(wallClock: string): string | undefined {
  return readWallClock(wallClock)?.publishedAt;
}

// ---------------------------------------------------------------------------------------------
// Payloads (pure)

/**
 * JSON.parse, with every number token given as its text: `{"a":5.12345678,"b":0.0300}` reads as
 * `{a: "5.12345678", b: "0.0300"}`, so no digit goes through a float. Strings are skipped whole,
 * so digits inside them are left alone; text that is not JSON stays not JSON (throws SyntaxError).
 */
export function readJsonKeepingNumbers(text: string): unknown {
  // A scan by hand: twice as fast as a regular expression's replace on a year of bulletins.
  const parts: string[] = [];
  let copied = 0;
  for (let i = 0; i < text.length; i++) {
    const char = text.charCodeAt(i);
    if (char === 0x22) {
      // A string: to its closing quote, past escapes.
      for (i++; i < text.length; i++) {
        const inner = text.charCodeAt(i);
        if (inner === 0x5c) i++;
        else if (inner === 0x22) break;
      }
    } else if (char === 0x2d || (char >= 0x30 && char <= 0x39)) {
      NUMBER_TOKEN.lastIndex = i;
      // No token here: left as is, for JSON.parse to refuse.
      if (!NUMBER_TOKEN.exec(text)) continue;
      parts.push(text.slice(copied, i), '"', text.slice(i, NUMBER_TOKEN.lastIndex), '"');
      copied = NUMBER_TOKEN.lastIndex;
      i = copied - 1;
    }
  }
  parts.push(text.slice(copied));
  return JSON.parse(parts.join(""));
}

/** What each field of a record must be, for messages (a missing field too). */
const EXPECTED = {
  rate: "expected a rate as a JSON number",
  positive: "expected a positive decimal",
  time: 'expected a time like "2020-08-28 13:09:27.123"',
  bulletin: `expected one of ${Object.keys(BULLETIN_BY_TYPE).map((name) => `"${name}"`).join(", ")}`,
} as const;
const EXPECTED_BY_FIELD: Readonly<Record<string, string>> = {
  cotacaoCompra: EXPECTED.rate,
  cotacaoVenda: EXPECTED.rate,
  dataHoraCotacao: EXPECTED.time,
  tipoBoletim: EXPECTED.bulletin,
};

const RateSchema = v.pipe(
  v.string(EXPECTED.rate),
  v.regex(RATE_TEXT, EXPECTED.positive),
  v.check((text) => /[1-9]/.test(text), EXPECTED.positive),
);

/** One record of `CotacaoMoedaPeriodo` (numbers already as text); other fields (paridade*) are ignored. */
const PeriodRecordSchema = v.object({
  cotacaoCompra: RateSchema,
  cotacaoVenda: RateSchema,
  dataHoraCotacao: v.pipe(v.string(EXPECTED.time), v.check((text) => brasiliaInstant(text) !== undefined, EXPECTED.time)),
  tipoBoletim: v.pipe(v.string(EXPECTED.bulletin), v.check((text) => bulletinOf(text) !== undefined, EXPECTED.bulletin)),
});

/** The bulletin a `tipoBoletim` names, or undefined. */
export function bulletinOf(tipoBoletim: string): Bulletin | undefined {
  return BULLETIN_BY_TYPE[tipoBoletim.normalize("NFC")];
}

function payloadError(subject: string, message: string): BcbError {
  return new BcbError("INVALID_PAYLOAD", `Cannot read ${BCB}'s answer for ${subject}: ${message}, nothing of this answer was used; try again later`);
}

const isPlainObject = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null && !Array.isArray(value);

/**
 * The bulletins of a `CotacaoMoedaPeriodo` answer (its raw text) for `currency`, oldest first,
 * as OfficialRate rows of pair `${currency}-BRL`: digits as written, publishedAt with its offset
 * and every fractional digit. `"value": []` (a weekend, a holiday) is no bulletins. With `within`,
 * bulletins of days outside it are left out (chunks never overlap). Two records at the same
 * instant: the first is kept, as Olinda lists them, unless the second is the closing PTAX and the
 * first is not. Anything malformed fails the whole answer.
 */
export function parsePtaxPeriod(text: string, currency: string, within?: DayRange): OfficialRate[] {
  const subject = `the ${currency} PTAX bulletins${within ? ` from ${within.from} to ${within.to}` : ""}`;
  let body: unknown;
  try {
    body = readJsonKeepingNumbers(text.replace(/^\uFEFF/, ""));
  } catch (cause) {
    throw new BcbError("NOT_JSON", `Cannot read ${BCB}'s answer for ${subject}: it is not JSON (${(cause as Error).message}), try again later`, { cause });
  }
  if (!isPlainObject(body) || !Array.isArray(body["value"])) {
    throw payloadError(subject, `expected an object with a "value" list, got ${showValue(body)}`);
  }
  if (typeof body["@odata.nextLink"] === "string") {
    // Olinda has never paged these answers; one that does would lose bulletins without this check.
    throw new BcbError("TRUNCATED", `Cannot read ${BCB}'s answer for ${subject}: it holds only part of the bulletins (it names a next page), ask for a shorter range`);
  }
  const pair = `${currency}-BRL`;
  const rates: { rate: OfficialRate; micros: number }[] = [];
  // Instant -> its place in `rates`: one row per instant, as official_rates keys them.
  const placeOf = new Map<number, number>();
  let ordered = true;
  for (const [index, record] of body["value"].entries()) {
    const read = wellFormedRecord(record) ?? refuseRecord(record, index, subject);
    if (within && (read.day < within.from || read.day > within.to)) continue;
    const rate: OfficialRate = { pair, publishedAt: read.publishedAt, bulletin: read.bulletin, buy: read.buy, sell: read.sell };
    const place = placeOf.get(read.micros);
    if (place !== undefined) {
      // The first at an instant is kept, unless a closing PTAX came second: the close is the one the cross-check needs.
      if (read.bulletin === "closing" && rates[place]!.rate.bulletin !== "closing") rates[place]!.rate = rate;
      continue;
    }
    placeOf.set(read.micros, rates.length);
    if (ordered && rates.length > 0 && read.micros < rates[rates.length - 1]!.micros) ordered = false;
    rates.push({ rate, micros: read.micros });
  }
  // Olinda lists them oldest first; sorting is for an answer that does not.
  if (!ordered) rates.sort((a, b) => a.micros - b.micros);
  return rates.map(({ rate }) => rate);
}

/** A record as read: its day ("YYYY-MM-DD"), instant, bulletin and rates. */
interface ReadRecord {
  day: string;
  publishedAt: string;
  micros: number;
  bulletin: Bulletin;
  buy: string;
  sell: string;
}

const isRate = (value: unknown): value is string => typeof value === "string" && RATE_TEXT.test(value) && /[1-9]/.test(value);

/**
 * The fast path, for 30 years of bulletins: PeriodRecordSchema's rules checked by hand. It only
 * accepts what the schema accepts; anything else goes to refuseRecord(), which says what is wrong.
 */
function wellFormedRecord(record: unknown): ReadRecord | undefined {
  if (!isPlainObject(record)) return undefined;
  const { cotacaoCompra: buy, cotacaoVenda: sell, dataHoraCotacao, tipoBoletim } = record;
  if (!isRate(buy) || !isRate(sell) || typeof dataHoraCotacao !== "string" || typeof tipoBoletim !== "string") return undefined;
  const bulletin = bulletinOf(tipoBoletim);
  const instant = readWallClock(dataHoraCotacao);
  if (bulletin === undefined || instant === undefined) return undefined;
  return { day: dataHoraCotacao.slice(0, 10), publishedAt: instant.publishedAt, micros: instant.micros, bulletin, buy, sell };
}

/** Throws the INVALID_PAYLOAD error for a record wellFormedRecord() refused: the schema names the field and what it needed. */
function refuseRecord(record: unknown, index: number, subject: string): never {
  const parsed = v.safeParse(PeriodRecordSchema, record, { abortEarly: true });
  const issue = parsed.issues?.[0];
  if (!issue) throw payloadError(subject, `record ${index} is invalid`);
  const field = (issue.path ?? []).map((item) => item.key).filter((key) => typeof key === "string").join(".");
  // A missing key is reported against the object, in valibot's words: say what the field needed.
  const message = issue.input === undefined ? `is missing, ${EXPECTED_BY_FIELD[field] ?? issue.message}` : `is ${showValue(issue.input)}, ${issue.message}`;
  throw payloadError(subject, `record ${index}${field ? ` ${field}` : ""} ${message}`);
}

/** `/*{"codigo": 500, "mensagem": "Erro desconhecido"}*\/`'s message, or undefined if `text` is not such a comment. */
export function olindaErrorMessage(text: string): string | undefined {
  const match = COMMENTED_JSON.exec(text.trim());
  if (!match) return undefined;
  try {
    const inner: unknown = JSON.parse(match[1] ?? "");
    if (!isPlainObject(inner)) return undefined;
    const message = inner["mensagem"];
    return typeof message === "string" ? message : String(inner["codigo"] ?? "an error");
  } catch {
    return undefined;
  }
}

/** What a body that is not JSON looks like, for messages: an HTML page, an XML document, nothing, or its start. */
function describeNonJson(text: string): string {
  const start = text.trimStart().slice(0, 200).toLowerCase();
  if (start.startsWith("<?xml") || (start.startsWith("<") && !start.startsWith("<!doctype html") && !start.includes("<html"))) {
    return "an XML document, not JSON (an outage page)";
  }
  if (start.startsWith("<")) return "an HTML page, not JSON (an outage page)";
  if (start === "") return "empty, not JSON";
  return `not JSON, it starts ${showValue(text.trimStart())}`;
}

// ---------------------------------------------------------------------------------------------
// Transport

/** What `onRetry` hears before each wait. */
export interface BcbRetryInfo {
  /** The attempt that failed, from 1. */
  attempt: number;
  delayMs: number;
  error: BcbError;
}

/** Where BCB is and how to reach it (lib/http.ts; defaults: DEFAULT_BCB_TIMEOUT_MS, DEFAULT_BCB_MAX_BODY_BYTES, DEFAULT_BCB_RETRIES). */
export interface BcbOptions extends SourceRequestOptions<BcbRetryInfo> {
  /** Olinda's PTAX service (BCB_URL; default DEFAULT_BCB_URL). */
  baseUrl?: string;
}

const SettingsSchema = v.object({
  timeoutMs: v.pipe(
    v.number(),
    v.check((n) => Number.isSafeInteger(n) && n > 0 && n <= MAX_TIMEOUT_MS, (i) => `'timeoutMs' must be a positive integer of at most ${MAX_TIMEOUT_MS}, got ${String(i.input)}`),
  ),
  retries: v.pipe(v.number(), v.check((n) => Number.isSafeInteger(n) && n >= 0, (i) => `'retries' must be a non-negative integer, got ${String(i.input)}`)),
  maxBodyBytes: v.pipe(v.number(), v.check((n) => Number.isSafeInteger(n) && n > 0, (i) => `'maxBodyBytes' must be a positive integer, got ${String(i.input)}`)),
});

function decodeBody(bytes: Uint8Array): string {
  try {
    return UTF8.decode(bytes);
  } catch {
    return LATIN1.decode(bytes);
  }
}

/** One attempt's outcome: the body's text, or a failure and whether it may pass if asked again. */
type AttemptResult = { ok: true; status: number; text: string } | { ok: false; error: BcbError; retryable: boolean; retryAfter?: number | undefined };

/** What a request is for, in words (`the USD PTAX bulletins from ... to ...`), and its currency. */
interface Subject {
  what: string;
  currency: string;
}

async function attempt(url: string, subject: Subject, settings: v.InferOutput<typeof SettingsSchema>, fetch: Fetch, now: () => Date): Promise<AttemptResult> {
  const where = `${BCB} (${new URL(url).host})`;
  const action = `Cannot fetch ${subject.what} from ${where}`;
  const fail = (code: BcbErrorCode, message: string, extra: { retryable?: boolean; retryAfter?: number | undefined; status?: number; cause?: unknown } = {}): AttemptResult => ({
    ok: false,
    error: new BcbError(code, `${action}: ${message}`, { cause: extra.cause, status: extra.status }),
    retryable: extra.retryable ?? RETRIED_FAILURES.has(code),
    retryAfter: extra.retryAfter,
  });
  const signal = AbortSignal.timeout(settings.timeoutMs);
  let response: Response;
  let bytes: Uint8Array | undefined;
  try {
    response = await fetch(url, { signal, headers: { accept: "application/json" } });
    bytes = await readCappedBody(response, signal, settings.maxBodyBytes);
  } catch (cause) {
    if (signal.aborted) return fail("TIMEOUT", `no complete answer within ${settings.timeoutMs} ms, check the connection and BCB_URL, or try again later`, { cause });
    const reason = cause instanceof Error ? cause.message.split("\n")[0] : String(cause);
    return fail("NETWORK", `network error (${reason}), check the connection and BCB_URL`, { cause });
  }
  const status = response.status;
  const retryable = isRetryableStatus(status);
  const retryAfter = retryable ? retryAfterMs(response.headers.get("retry-after"), now()) : undefined;
  if (bytes === undefined) {
    return fail("TOO_LARGE", `the answer is larger than ${settings.maxBodyBytes} bytes once decompressed, the most this client reads; check BCB_URL, or ask for a shorter range`, { status });
  }
  const text = decodeBody(bytes);
  const olindaError = olindaErrorMessage(text);
  if (olindaError !== undefined && !response.ok) {
    // Olinda's own error for a well-formed request: a currency it does not know. For one it
    // publishes, the same answer can only be a passing failure of the service.
    const known = (PTAX_CURRENCIES as readonly string[]).includes(subject.currency);
    if (!known) {
      return fail(
        "UNKNOWN_CURRENCY",
        `${BCB} answered HTTP ${status} "${olindaError}": it does not publish PTAX for "${subject.currency}" (it does for ${PTAX_CURRENCIES.join(", ")}), check the pair`,
        { status, retryable: false },
      );
    }
    return fail("HTTP", `${BCB} answered HTTP ${status} "${olindaError}", try again later`, { status, retryable, retryAfter });
  }
  const looksJson = /^\s*[{[]/.test(text);
  if (!looksJson) {
    return fail("NOT_JSON", `${BCB} answered HTTP ${status} with ${describeNonJson(text)}, try again later`, { status, retryable: !response.ok && retryable, retryAfter });
  }
  if (!response.ok) {
    const hint = status >= 500 ? "the service is failing, try again later" : retryable ? "the service is throttling this client, wait and try again" : "check BCB_URL";
    return fail("HTTP", `${BCB} answered HTTP ${status}, ${hint}`, { status, retryable, retryAfter });
  }
  return { ok: true, status, text };
}

/** GETs `url`, retrying what is transient with backoff (or the Retry-After asked for); the body's text, or a BcbError naming BCB. */
async function requestText(url: string, subject: Subject, options: BcbOptions): Promise<{ text: string; attempts: number }> {
  const { fetch = globalThis.fetch, sleep = Bun.sleep, random = Math.random, now = () => new Date(), onRetry } = options;
  const parsed = v.safeParse(SettingsSchema, {
    timeoutMs: options.timeoutMs ?? DEFAULT_BCB_TIMEOUT_MS,
    retries: options.retries ?? DEFAULT_BCB_RETRIES,
    maxBodyBytes: options.maxBodyBytes ?? DEFAULT_BCB_MAX_BODY_BYTES,
  });
  if (!parsed.success) throw new BcbError("USAGE", `Cannot fetch ${subject.what} from ${BCB}: ${parsed.issues[0].message}`);
  for (let count = 1; ; count++) {
    const result = await attempt(url, subject, parsed.output, fetch, now);
    if (result.ok) return { text: result.text, attempts: count };
    const { error, retryable, retryAfter } = result;
    if (!retryable || count > parsed.output.retries) {
      const after = count > 1 ? ` (gave up after ${count} attempts)` : "";
      throw new BcbError(error.code, `${error.message}${after}`, { cause: error.cause, attempts: count, status: error.status });
    }
    const delayMs = retryAfter ?? backoffMs(count, BCB_BACKOFF, random);
    onRetry?.({ attempt: count, delayMs, error });
    await sleep(delayMs);
  }
}

// ---------------------------------------------------------------------------------------------
// Endpoints

/**
 * Every PTAX bulletin of `currency` (e.g. "USD") from `range.from` to `range.to` (Brasília
 * calendar days, both included), oldest first, as OfficialRate rows of pair `${currency}-BRL`:
 * one request. No bulletins (weekends, holidays) is an empty list, not an error.
 */
export async function fetchPtax(currency: string, range: DayRange, options: BcbOptions = {}): Promise<OfficialRate[]> {
  const what = `the ${currency} PTAX bulletins from ${range.from} to ${range.to}`;
  checkCurrency(currency, `fetch ${what} from ${BCB}`);
  checkRange(range, `fetch ${what} from ${BCB}`);
  const url = ptaxPeriodUrl(options.baseUrl ?? DEFAULT_BCB_URL, currency, range);
  const { text, attempts } = await requestText(url, { what, currency }, options);
  try {
    return parsePtaxPeriod(text, currency, range);
  } catch (error) {
    if (!(error instanceof BcbError)) throw error;
    throw new BcbError(error.code, error.message, { cause: error.cause ?? error, attempts, status: 200 });
  }
}

/** One year (or part of one) of a backfill: its bulletins, oldest first. */
export interface PtaxChunk {
  currency: string;
  pair: string;
  from: string;
  to: string;
  rates: OfficialRate[];
}

/** What `onProgress` hears after each chunk. */
export interface PtaxProgress {
  pair: string;
  /** Chunks done, this one included (from 1), of `total`. */
  done: number;
  total: number;
  from: string;
  to: string;
  /** Bulletins in this chunk. */
  rates: number;
}

/** How a long range is fetched: what fetchPtax() takes, plus progress and how many years are asked for at once. */
export interface PtaxHistoryOptions extends BcbOptions {
  /** Hears each chunk once fetched, in order. */
  onProgress?: (progress: PtaxProgress) => void;
  /** Years fetched ahead while the caller stores the current one (default 1: one request at a time). */
  concurrency?: number;
}

/**
 * The bulletins of `currency` over a long range, one request per calendar year (planPtaxYears()),
 * oldest first: store each chunk before asking for the next, and memory stays bounded whatever
 * the range; a failure leaves the chunks before it with the caller (resumable). `onProgress`
 * hears each chunk once fetched. Years without bulletins (before a currency's history) are
 * empty chunks, not errors. With `concurrency` above 1, that many years are fetched ahead, and
 * still yielded in order.
 */
export async function* ptaxYearChunks(
  currency: string,
  range: DayRange,
  options: PtaxHistoryOptions = {},
): AsyncGenerator<PtaxChunk> {
  checkCurrency(currency, `fetch the ${currency} PTAX history from ${BCB}`);
  const concurrency = options.concurrency ?? 1;
  if (!Number.isSafeInteger(concurrency) || concurrency < 1) {
    throw new BcbError("USAGE", `Cannot fetch the ${currency} PTAX history from ${BCB}: 'concurrency' must be a positive integer, got ${concurrency}`);
  }
  const years = planPtaxYears(range);
  // The requests under way, oldest first; a year's leaves once yielded, so memory stays bounded.
  const ahead: Promise<OfficialRate[]>[] = [];
  let started = 0;
  const fetchNext = () => {
    const year = years[started];
    if (!year) return;
    started++;
    const rates = fetchPtax(currency, year, options);
    // Awaited in order below; until then a failure must not count as unhandled.
    rates.catch(() => {});
    ahead.push(rates);
  };
  for (let i = 0; i < concurrency; i++) fetchNext();
  for (const [index, year] of years.entries()) {
    const rates = await ahead.shift()!;
    fetchNext();
    options.onProgress?.({ pair: `${currency}-BRL`, done: index + 1, total: years.length, from: year.from, to: year.to, rates: rates.length });
    yield { currency, pair: `${currency}-BRL`, from: year.from, to: year.to, rates };
  }
}

/** ptaxYearChunks(), collected: every bulletin of the range, oldest first. */
export async function fetchPtaxHistory(currency: string, range: DayRange, options: PtaxHistoryOptions = {}): Promise<OfficialRate[]> {
  const rates: OfficialRate[] = [];
  for await (const chunk of ptaxYearChunks(currency, range, options)) rates.push(...chunk.rates);
  return rates;
}
