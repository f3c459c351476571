/**
 * A fake AwesomeAPI on a local port, for tests and benchmarks: it replays the real captures in
 * test/fixtures/awesomeapi, scripts failures (5xx, 429, timeouts, resets, HTML pages, bad
 * payloads), and serves `/json/daily/PAIR/N?start_date&end_date` from an in-memory series.
 *
 *   const api = startFakeAwesomeApi(sequence(status(500), replay("last_USD-BRL_2024-10-25_issue47.json")));
 *   await fetchLatest(["USD-BRL"], { baseUrl: api.url });
 *   api.count("/json/last/USD-BRL"); // 2
 *   await api.stop();
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";

/** The real payloads (provenance in test/fixtures/awesomeapi/README.md). */
export const FIXTURES_DIR = join(import.meta.dir, "../fixtures/awesomeapi");
/** BCB's daily PTAX series, 1984-2024 (provenance in test/fixtures/data/README.md). */
export const PTAX_CSV = join(import.meta.dir, "../fixtures/data/ptax.csv");

const FIRST_REAL_DAY = "1994-07-01";
const DAILY_MAX_RECORDS = 360;
// The API's data from 2018 and before has millisecond timestamps.
const DEFAULT_MS_TIMESTAMPS_BEFORE = "2019-01-01";
const DEFAULT_TIME = "17:00";
// Series times are São Paulo standard time; DST only moves them within the same day.
const SAO_PAULO_STANDARD_OFFSET_HOURS = 3;
const PTAX_LINE = /^"(\d{2})\/(\d{2})\/(\d{4})";"(\d+),(\d+)"$/;
const BODY_DECODER = new TextDecoder("utf-8", { fatal: false });
const NAMES: Record<string, string> = {
  USD: "Dólar Americano",
  EUR: "Euro",
  BTC: "Bitcoin",
  BRL: "Real Brasileiro",
};

/** What a request learns about where it stands. */
export interface ReplyContext {
  url: URL;
  path: string;
  /** Requests to this path so far, this one included (from 1). */
  count: number;
}

/** Builds the answer to one request. Called afresh per request, since a Response body is read once. */
export type Reply = (request: Request, context: ReplyContext) => Response | Promise<Response>;

/** A request the fake received. */
export interface RecordedRequest {
  method: string;
  path: string;
  /** The full URL, query included (e.g. to check `token`). */
  url: URL;
  headers: Headers;
}

/** A running fake; `await using api = startFakeAwesomeApi(...)` stops it at the end of the scope. */
export interface FakeAwesomeApi {
  /** Base URL, e.g. "http://127.0.0.1:40123", to pass as `baseUrl`. */
  url: string;
  requests: RecordedRequest[];
  /** Requests received, to `path` only when given. */
  count(path?: string): number;
  stop(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Starts the fake on a free port of 127.0.0.1; without a handler every pair is unknown (404 CoinNotExists). */
export function startFakeAwesomeApi(handler: Reply = coinNotExists()): FakeAwesomeApi {
  const requests: RecordedRequest[] = [];
  const perPath = new Map<string, number>();
  const server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    async fetch(request) {
      const url = new URL(request.url);
      const count = (perPath.get(url.pathname) ?? 0) + 1;
      perPath.set(url.pathname, count);
      requests.push({ method: request.method, path: url.pathname, url, headers: request.headers });
      try {
        return await handler(request, { url, path: url.pathname, count });
      } catch (error) {
        // A bug in a test's handler should show up as a readable 599, not a hang.
        return new Response(`fake AwesomeAPI handler failed: ${(error as Error).message}`, { status: 599 });
      }
    },
  });
  const stop = async () => {
    await server.stop(true);
  };
  return {
    url: `http://127.0.0.1:${server.port}`,
    requests,
    count: (path?: string) => (path === undefined ? requests.length : (perPath.get(path) ?? 0)),
    stop,
    [Symbol.asyncDispose]: stop,
  };
}

// ---------------------------------------------------------------------------------------------
// Fixtures

/** The exact bytes of a fixture file (the Latin-1 one included). */
export function fixtureBytes(name: string): Uint8Array<ArrayBuffer> {
  const file = readFileSync(join(FIXTURES_DIR, name));
  return new Uint8Array(file.buffer.slice(file.byteOffset, file.byteOffset + file.byteLength));
}

/** A fixture decoded as the client decodes it (invalid UTF-8 replaced), for tests to edit. */
export function fixtureJson(name: string): unknown {
  return JSON.parse(BODY_DECODER.decode(fixtureBytes(name)));
}

// ---------------------------------------------------------------------------------------------
// Replies

const JSON_HEADERS = { "content-type": "application/json; charset=utf-8" };

/** Status and extra headers of a reply. */
export interface ReplyInit {
  status?: number;
  headers?: Record<string, string>;
}

/** A fixture's bytes, unchanged. */
export function replay(name: string, init: ReplyInit = {}): Reply {
  const bytes = fixtureBytes(name);
  return () => new Response(bytes, { status: init.status ?? 200, headers: { ...JSON_HEADERS, ...init.headers } });
}

/** `body` as JSON. */
export function json(body: unknown, init: ReplyInit = {}): Reply {
  const text = JSON.stringify(body);
  return () => new Response(text, { status: init.status ?? 200, headers: { ...JSON_HEADERS, ...init.headers } });
}

/** A status with a small JSON body (or `body` as given), e.g. `status(429, { "retry-after": "7" })`. */
export function status(code: number, headers: Record<string, string> = {}, body?: string): Reply {
  const text = body ?? JSON.stringify({ status: code, message: "fake AwesomeAPI error" });
  return () => new Response(text, { status: code, headers: { ...JSON_HEADERS, ...headers } });
}

/** A Cloudflare-style HTML error page with `code`, as outages are answered (seen with 200, 403, 522). */
export function html(code: number): Reply {
  const page = `<!DOCTYPE html>\n<html lang="en-US"><head><title>economia.awesomeapi.com.br | ${code}: Connection timed out</title></head><body><div id="cf-error-details"><h1>Error ${code}</h1><p>Cloudflare Ray ID: 8c2f0e1a2b3c4d5e</p></div></body></html>\n`;
  return () => new Response(page, { status: code, headers: { "content-type": "text/html; charset=UTF-8", server: "cloudflare" } });
}

/** A fixture cut short (half of it, or `keepBytes`), as a dropped connection can leave it. */
export function truncated(name: string, keepBytes?: number): Reply {
  const bytes = fixtureBytes(name);
  const cut = bytes.slice(0, keepBytes ?? Math.floor(bytes.length / 2));
  return () => new Response(cut, { headers: JSON_HEADERS });
}

/** The real answer to an unknown pair: HTTP 404 with `{"code":"CoinNotExists",...}`. */
export function coinNotExists(): Reply {
  return replay("error_404_CoinNotExists_USD-USD.json", { status: 404 });
}

/** `reply`, after `ms` of silence (longer than the client's timeout makes it time out). */
export function delay(ms: number, reply: Reply): Reply {
  return async (request, context) => {
    await Bun.sleep(ms);
    return reply(request, context);
  };
}

/** Headers, then the connection is cut: the client sees a reset (ECONNRESET). */
export function reset(): Reply {
  // Erroring without a reason closes the socket quietly; an Error would be printed by Bun.
  return () => new Response(new ReadableStream({ pull: (controller) => controller.error() }), { headers: JSON_HEADERS });
}

/** One reply per request, in order; the last one answers every request after it. */
export function sequence(...replies: Reply[]): Reply {
  if (replies.length === 0) throw new Error("sequence() needs at least one reply");
  let next = 0;
  return (request, context) => {
    const reply = replies[Math.min(next++, replies.length - 1)];
    if (!reply) throw new Error("sequence() ran out of replies");
    return reply(request, context);
  };
}

/** Dispatches on the request path; anything else gets `fallback` (404 CoinNotExists by default). */
export function routes(table: Record<string, Reply>, fallback: Reply = coinNotExists()): Reply {
  return (request, context) => (table[context.path] ?? fallback)(request, context);
}

// ---------------------------------------------------------------------------------------------
// Daily series

/** One daily quote of a series: a São Paulo date, and its time ("HH:MM", UTC-3, default 17:00). */
export interface DailyPoint {
  date: string;
  bid: string;
  ask?: string;
  time?: string;
}

/** How `dailySeries()` shapes its answers. */
export interface DailySeriesOptions {
  /** Dates before this get millisecond timestamps, as the API's old data has. */
  msTimestampsBefore?: string;
  /** The most records one answer holds, whatever N asks (an API that sends fewer than it should). */
  maxRecords?: number;
}

/** The instant a series point stands for. */
export function pointTime(point: DailyPoint): Date {
  const [year, month, day] = point.date.split("-").map(Number);
  const [hour, minute] = (point.time ?? DEFAULT_TIME).split(":").map(Number);
  return new Date(Date.UTC(year ?? 0, (month ?? 1) - 1, day ?? 1, (hour ?? 0) + SAO_PAULO_STANDARD_OFFSET_HOURS, minute ?? 0));
}

const compactToIso = (text: string | null) =>
  text && /^\d{8}$/.test(text) ? `${text.slice(0, 4)}-${text.slice(4, 6)}-${text.slice(6, 8)}` : undefined;

/**
 * Serves `/json/daily/PAIR/N[?start_date=YYYYMMDD&end_date=YYYYMMDD]` from `series` (points by
 * pair) in AwesomeAPI's shape: newest first, every value a string, only the first element with
 * code/codein/name/create_date, at most N (<= 360, <= `maxRecords`) records, only dates in range.
 * Other paths: 404.
 */
export function dailySeries(series: Record<string, readonly DailyPoint[]>, options: DailySeriesOptions = {}): Reply {
  const msBefore = options.msTimestampsBefore ?? DEFAULT_MS_TIMESTAMPS_BEFORE;
  // Built once: each point's record, newest first, so that a benchmark's thousands of requests
  // cost the fake little CPU time.
  const newestFirst = new Map(
    Object.entries(series).map(([pair, points]) => [
      pair,
      points
        .map((point) => ({ point, at: pointTime(point) }))
        .sort((a, b) => b.at.getTime() - a.at.getTime())
        .map(({ point, at }) => ({
          date: point.date,
          at,
          record: {
            high: point.bid,
            low: point.bid,
            varBid: "0",
            pctChange: "0",
            bid: point.bid,
            ask: point.ask ?? point.bid,
            timestamp: point.date < msBefore ? String(at.getTime()) : String(Math.floor(at.getTime() / 1000)),
          },
        }))
        .map((entry) => ({ ...entry, json: JSON.stringify(entry.record) })),
    ]),
  );
  return (request, { url, path }) => {
    const match = /^\/json\/daily\/([A-Z0-9]+-[A-Z0-9]+)(?:\/(\d+))?\/?$/.exec(path);
    const points = match?.[1] ? newestFirst.get(match[1]) : undefined;
    if (!match?.[1] || !points) return coinNotExists()(request, { url, path, count: 0 });
    const [code = "", codein = ""] = match[1].split("-");
    const limit = Math.min(DAILY_MAX_RECORDS, options.maxRecords ?? DAILY_MAX_RECORDS, Math.max(1, Number(match[2] ?? "1")));
    const start = compactToIso(url.searchParams.get("start_date"));
    const end = compactToIso(url.searchParams.get("end_date"));
    // Dates descend: binary search for the newest point on or before `end`.
    let low = 0;
    let high = points.length;
    while (end && low < high) {
      const middle = (low + high) >> 1;
      if (points[middle]!.date > end) low = middle + 1;
      else high = middle;
    }
    const records: string[] = [];
    for (let index = low; index < points.length && records.length < limit; index++) {
      const { date, at, record, json: text } = points[index]!;
      if (start && date < start) break;
      if (records.length > 0) {
        records.push(text);
        continue;
      }
      const local = new Date(at.getTime() - SAO_PAULO_STANDARD_OFFSET_HOURS * 3_600_000).toISOString();
      const name = `${NAMES[code] ?? code}/${NAMES[codein] ?? codein}`;
      records.push(JSON.stringify({ code, codein, name, ...record, create_date: `${local.slice(0, 10)} ${local.slice(11, 19)}` }));
    }
    return new Response(`[${records.join(",")}]`, { headers: JSON_HEADERS });
  };
}

/** BCB's PTAX series from 1994-07-01 (the real's first day) as daily points: decimal point, exact digits, oldest first. */
export function loadPtaxSeries(path: string = PTAX_CSV): DailyPoint[] {
  const lines = readFileSync(path, "utf8").split(/\r?\n/);
  if (lines[0]?.trim() !== '"Data";"ptax"') throw new Error(`Cannot read ${path}: the header is not "Data";"ptax"`);
  const points: DailyPoint[] = [];
  for (const [index, line] of lines.entries()) {
    if (index === 0 || line.trim() === "") continue;
    const match = PTAX_LINE.exec(line.trim());
    if (!match) throw new Error(`Cannot read ${path}: line ${index + 1} is ${JSON.stringify(line)}, expected "DD/MM/YYYY";"1,2345"`);
    const [, day, month, year, units, fraction] = match;
    const date = `${year}-${month}-${day}`;
    if (date >= FIRST_REAL_DAY) points.push({ date, bid: `${units}.${fraction}` });
  }
  return points;
}
