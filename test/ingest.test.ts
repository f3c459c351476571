import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import * as v from "valibot";
import { watchPeakMemory } from "../bench/peak_memory.ts";
import { saoPauloDay } from "../lib/calendar.ts";
import { type Quote } from "../lib/quote.ts";
import { retryAfterMs } from "../lib/retry.ts";
import {
  AwesomeQuoteSchema,
  backoffDelay,
  CHUNK_DAYS,
  countWeekdays,
  DAILY_MAX_RECORDS,
  DAILY_MAX_REQUESTS_PER_CHUNK,
  dailyChunks,
  DEFAULT_MAX_BODY_BYTES,
  describeConflict,
  fetchDaily,
  fetchLatest,
  IngestError,
  type IngestErrorCode,
  type IngestOptions,
  loadIngestConfig,
  MAX_CONFLICT_LINES,
  normaliseDaily,
  normaliseDailyWithConflicts,
  parseDaily,
  parseLatest,
  planChunks,
  requestJson,
  type RetryInfo,
} from "../ingest.ts";
import {
  dailySeries,
  type DailyPoint,
  delay,
  fixtureJson,
  html,
  json,
  loadPtaxSeries,
  replay,
  reset,
  routes,
  sequence,
  startFakeAwesomeApi,
  status,
  truncated,
} from "./support/fake_awesomeapi.ts";
import type { Fetch } from "../lib/http.ts";
import { rejected, thrown } from "./support/thrown.ts";
import { useTestTimeout } from "./support/timeout.ts";

useTestTimeout();

const ONE_PAIR = "last_USD-BRL_2024-10-25_issue47.json";
const TWO_PAIRS = "last_USD-BRL+EUR-BRL_2020-06-02_official-README.json";
const LATIN1 = "last_USD-BRL+EUR-BRL+BTC-BRL_2022-08-08_raw-latin1.json";
const DAILY = "daily_USD-BRL_15_2024-08-23.json";
// Shortly after the newest fixture (the latest USD-BRL of 2024-10-25, 15:26 UTC).
const NOW = new Date("2024-10-25T18:00:00Z");
const TOKEN = "s3cr3t-T0KEN-value";

/** Options for the fake: a fixed clock, no real waiting (delays recorded), jitter at its midpoint. */
function fakeOptions(baseUrl: string, extra: IngestOptions = {}) {
  const sleeps: number[] = [];
  const retries: RetryInfo[] = [];
  const options: IngestOptions = {
    baseUrl,
    timeoutMs: 2_000,
    now: () => NOW,
    sleep: async (ms: number) => {
      sleeps.push(ms);
    },
    random: () => 0.5,
    onRetry: (info) => retries.push(info),
    ...extra,
  };
  return { options, sleeps, retries };
}

function failure(promise: Promise<unknown>, code: IngestErrorCode): Promise<IngestError> {
  return rejected(promise, IngestError, code);
}


async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const items: T[] = [];
  for await (const item of iterable) items.push(item);
  return items;
}

const addDays = (date: string, days: number) =>
  new Date(Date.parse(`${date}T00:00:00Z`) + days * 86_400_000).toISOString().slice(0, 10);

function weekdaysBetween(from: string, to: string): string[] {
  const days: string[] = [];
  for (let day = from; day <= to; day = addDays(day, 1)) {
    const weekday = new Date(`${day}T12:00:00Z`).getUTCDay();
    if (weekday !== 0 && weekday !== 6) days.push(day);
  }
  return days;
}

// ---------------------------------------------------------------------------------------------

describe("loadIngestConfig", () => {
  test("uses the public API, no token and 10 s when nothing is set, and treats empty strings as unset", () => {
    const expected = { baseUrl: "https://economia.awesomeapi.com.br", timeoutMs: 10_000 };
    expect(loadIngestConfig({})).toEqual(expected);
    expect(loadIngestConfig({ AWESOMEAPI_URL: "", AWESOMEAPI_TOKEN: " ", AWESOMEAPI_TIMEOUT_MS: "" })).toEqual(expected);
  });

  test("reads the URL (trailing slash dropped), the token and the timeout", () => {
    const config = loadIngestConfig({
      AWESOMEAPI_URL: "http://127.0.0.1:8080/proxy/",
      AWESOMEAPI_TOKEN: TOKEN,
      AWESOMEAPI_TIMEOUT_MS: "2500",
    });
    expect(config).toEqual({ baseUrl: "http://127.0.0.1:8080/proxy", token: TOKEN, timeoutMs: 2500 });
  });

  test("a URL that is not http(s) fails naming AWESOMEAPI_URL", () => {
    for (const url of ["ftp://example.com", "economia.awesomeapi.com.br", "https://"]) {
      const error = thrown(() => loadIngestConfig({ AWESOMEAPI_URL: url }), "CONFIG");
      expect(error.message).toStartWith("Cannot start: AWESOMEAPI_URL must be an http:// or https:// URL");
      expect(error.message).not.toContain("\n");
    }
  });

  test("a URL that fails validation is quoted with its user and password masked", () => {
    // Unencoded, "@", "/" and "#" make the password run into the path and fragment.
    for (const url of ["https://user:p@ss/#x@127.0.0.1:9", "https://user:p ss@127.0.0.1:9/?q=1", "ftp://user:p%40ss%2F%23x@127.0.0.1"]) {
      const error = thrown(() => loadIngestConfig({ AWESOMEAPI_URL: url }), "CONFIG");
      expect(error.message).toStartWith("Cannot start: AWESOMEAPI_URL must be an http:// or https:// URL");
      expect(error.message).toContain("://***@127.0.0.1");
      for (const secret of ["user", "p@ss", "ss/#x", "p ss", "p%40ss"]) expect(error.message).not.toContain(secret);
    }
  });

  test("a URL carrying a token is refused without printing the token", () => {
    const error = thrown(() => loadIngestConfig({ AWESOMEAPI_URL: `https://example.com/?token=${TOKEN}` }), "CONFIG");
    expect(error.message).toContain("AWESOMEAPI_URL");
    expect(error.message).toContain("token=***");
    expect(error.message).not.toContain(TOKEN);
  });

  test("a timeout that is not a whole number of milliseconds from 100 ms to 10 minutes fails naming AWESOMEAPI_TIMEOUT_MS", () => {
    for (const value of ["0", "-5", "1.5", "ten", "10s", "1e3", "0x10", "99", "600001", "2592000000", "99999999999999999999"]) {
      const error = thrown(() => loadIngestConfig({ AWESOMEAPI_TIMEOUT_MS: value }), "CONFIG");
      expect(error.message).toBe(
        `Cannot start: AWESOMEAPI_TIMEOUT_MS must be whole milliseconds from 100 to 600000 (10 minutes), got "${value}", set it like AWESOMEAPI_TIMEOUT_MS=10000 or leave it unset`,
      );
    }
    expect(loadIngestConfig({ AWESOMEAPI_TIMEOUT_MS: "100" }).timeoutMs).toBe(100);
    expect(loadIngestConfig({ AWESOMEAPI_TIMEOUT_MS: "600000" }).timeoutMs).toBe(600_000);
  });

  test("a malformed token fails naming AWESOMEAPI_TOKEN without printing it", () => {
    const error = thrown(() => loadIngestConfig({ AWESOMEAPI_TOKEN: `${TOKEN}&x=1` }), "CONFIG");
    expect(error.message).toContain("AWESOMEAPI_TOKEN");
    expect(error.message).not.toContain(TOKEN);
  });
});

// ---------------------------------------------------------------------------------------------

describe("fetchLatest", () => {
  test("one pair: values exactly as the API wrote them, ts from timestamp", async () => {
    await using api = startFakeAwesomeApi(replay(ONE_PAIR));
    const { options } = fakeOptions(api.url);
    const quotes = await fetchLatest(["USD-BRL"], options);
    expect(quotes).toEqual([
      {
        pair: "USD-BRL",
        ts: new Date(1729870016 * 1000),
        bid: "5.7008",
        ask: "5.7017",
        high: "5.7195",
        low: "5.6602",
        varBid: "0.037",
        pctChange: "0.65",
        source: "awesomeapi:last",
        fetchedAt: NOW,
      },
    ] satisfies Quote[]);
    expect(api.requests.map((r) => r.path)).toEqual(["/json/last/USD-BRL"]);
  });

  test("many pairs come from one request, in the order asked for, negative changes kept", async () => {
    await using api = startFakeAwesomeApi(replay(TWO_PAIRS));
    const { options } = fakeOptions(api.url);
    const quotes = await fetchLatest(["EUR-BRL", "USD-BRL"], options);
    expect(api.count()).toBe(1);
    expect(api.requests[0]?.path).toBe("/json/last/EUR-BRL,USD-BRL");
    expect(quotes.map((q) => [q.pair, q.bid, q.ask, q.high, q.low, q.varBid, q.pctChange, q.ts.toISOString()])).toEqual([
      ["EUR-BRL", "5.8462", "5.8497", "6.0046", "5.844", "-0.1235", "-2.07", "2020-06-02T14:55:53.000Z"],
      ["USD-BRL", "5.2279", "5.2285", "5.37", "5.2257", "-0.1351", "-2.52", "2020-06-02T14:55:52.000Z"],
    ]);
  });

  test("a body with a Latin-1 byte (not valid UTF-8) still parses", async () => {
    await using api = startFakeAwesomeApi(replay(LATIN1));
    const { options } = fakeOptions(api.url);
    const quotes = await fetchLatest(["USD-BRL", "EUR-BRL", "BTC-BRL"], options);
    expect(quotes.map((q) => [q.pair, q.bid, q.varBid, q.ts.getTime() / 1000])).toEqual([
      ["USD-BRL", "5.1256", "-0.0377", 1659969127],
      ["EUR-BRL", "5.2295", "-0.0269", 1659969126],
      ["BTC-BRL", "124.12", "4056", 1659969015],
    ]);
  });

  test("a millisecond timestamp (the API's older data) is read as milliseconds", async () => {
    const body = fixtureJson(ONE_PAIR) as { USDBRL: Record<string, unknown> };
    body.USDBRL["timestamp"] = "1538136540000";
    await using api = startFakeAwesomeApi(json(body));
    const [quote] = await fetchLatest(["USD-BRL"], fakeOptions(api.url).options);
    expect(quote?.ts.toISOString()).toBe("2018-09-28T12:09:00.000Z");
  });

  test("the token is sent as the query parameter token", async () => {
    await using api = startFakeAwesomeApi(replay(ONE_PAIR));
    await fetchLatest(["USD-BRL"], fakeOptions(api.url, { token: TOKEN }).options);
    expect(api.requests[0]?.url.searchParams.get("token")).toBe(TOKEN);
  });

  test("an unknown pair (404 CoinNotExists) fails naming it, after one request", async () => {
    await using api = startFakeAwesomeApi();
    const { options, sleeps } = fakeOptions(api.url);
    const error = await failure(fetchLatest(["USD-USD"], options), "UNKNOWN_PAIR");
    expect(error.message).toContain('unknown pair "USD-USD"');
    expect(error.attempts).toBe(1);
    expect(api.count()).toBe(1);
    expect(sleeps).toEqual([]);
  });

  test("an unknown pair among several is named from the API's message", async () => {
    await using api = startFakeAwesomeApi();
    const error = await failure(fetchLatest(["USD-BRL", "USD-USD"], fakeOptions(api.url).options), "UNKNOWN_PAIR");
    expect(error.message).toContain('unknown pair "USD-USD"');
    expect(error.message).not.toContain('"USD-BRL"');
  });

  test("a pair asked for but missing from the answer fails naming it", async () => {
    await using api = startFakeAwesomeApi(replay(ONE_PAIR));
    const error = await failure(fetchLatest(["USD-BRL", "EUR-BRL"], fakeOptions(api.url).options), "INVALID_PAYLOAD");
    expect(error.message).toBe('Cannot read the AwesomeAPI answer: EUR-BRL is missing from the answer (no "EURBRL" key)');
    expect(error.attempts).toBe(1);
  });

  test("a pair in the answer that was not asked for fails naming it", async () => {
    await using api = startFakeAwesomeApi(replay(TWO_PAIRS));
    const error = await failure(fetchLatest(["USD-BRL"], fakeOptions(api.url).options), "INVALID_PAYLOAD");
    expect(error.message).toContain('"EURBRL", which was not asked for');
  });

  test("numbers where strings are expected fail naming the pair and field, without coercion", async () => {
    const body = fixtureJson(ONE_PAIR) as { USDBRL: Record<string, unknown> };
    body.USDBRL["bid"] = 5.7008;
    await using api = startFakeAwesomeApi(json(body));
    const error = await failure(fetchLatest(["USD-BRL"], fakeOptions(api.url).options), "INVALID_PAYLOAD");
    expect(error.message).toBe(
      "Cannot read the AwesomeAPI answer: USD-BRL bid is 5.7008 (a number), expected a positive decimal as a JSON string",
    );
    expect(api.count()).toBe(1);
  });

  test("a numeric timestamp fails too", async () => {
    const body = fixtureJson(ONE_PAIR) as { USDBRL: Record<string, unknown> };
    body.USDBRL["timestamp"] = 1729870016;
    await using api = startFakeAwesomeApi(json(body));
    const error = await failure(fetchLatest(["USD-BRL"], fakeOptions(api.url).options), "INVALID_PAYLOAD");
    expect(error.message).toContain("USD-BRL timestamp is 1729870016 (a number)");
  });
});

describe("parseLatest", () => {
  const body = () => fixtureJson(ONE_PAIR) as { USDBRL: Record<string, unknown> };

  test("a price that is not a positive plain decimal fails naming pair, field and value", () => {
    const cases: [string, unknown, string][] = [
      ["bid", "-1", 'USD-BRL bid is "-1", expected a positive decimal'],
      ["ask", "0", 'USD-BRL ask is "0", expected a positive decimal'],
      ["high", "0.000", 'USD-BRL high is "0.000", expected a positive decimal'],
      ["low", "1e3", 'USD-BRL low is "1e3", expected a positive decimal'],
      ["bid", "Infinity", 'USD-BRL bid is "Infinity", expected a positive decimal'],
      ["bid", "5,70", 'USD-BRL bid is "5,70", expected a positive decimal'],
      ["varBid", "abc", 'USD-BRL varBid is "abc", expected a decimal'],
      ["timestamp", "2024-10-25", 'USD-BRL timestamp is "2024-10-25", expected Unix seconds or milliseconds'],
      ["bid", null, "USD-BRL bid is null, expected a positive decimal as a JSON string"],
      ["code", 1, "USD-BRL code is 1 (a number), expected a string"],
    ];
    for (const [field, value, message] of cases) {
      const edited = body();
      edited.USDBRL[field] = value;
      const error = thrown(() => parseLatest(edited, ["USD-BRL"], NOW), "INVALID_PAYLOAD");
      expect(error.message).toBe(`Cannot read the AwesomeAPI answer: ${message}`);
    }
  });

  test("a missing bid or timestamp fails saying it is missing", () => {
    const edited = body();
    delete edited.USDBRL["bid"];
    expect(thrown(() => parseLatest(edited, ["USD-BRL"], NOW), "INVALID_PAYLOAD").message).toBe(
      "Cannot read the AwesomeAPI answer: USD-BRL bid is missing, expected a positive decimal",
    );
    const daily = fixtureJson(DAILY) as Record<string, unknown>[];
    delete daily[2]?.["timestamp"];
    expect(thrown(() => parseDaily(daily, "USD-BRL", NOW), "INVALID_PAYLOAD").message).toBe(
      "Cannot read the AwesomeAPI answer: USD-BRL record 2 timestamp is missing, expected Unix seconds or milliseconds",
    );
  });

  test("an answer that is not an object keyed by pair fails", () => {
    for (const bad of [[], null, "USDBRL", 3]) thrown(() => parseLatest(bad, ["USD-BRL"], NOW), "INVALID_PAYLOAD");
    expect(thrown(() => parseLatest({ USDBRL: "5.1" }, ["USD-BRL"], NOW), "INVALID_PAYLOAD").message).toBe(
      'Cannot read the AwesomeAPI answer: USD-BRL is "5.1", expected an object',
    );
  });

  test("optional ranges and changes become null when the API leaves them out", () => {
    const edited = body();
    delete edited.USDBRL["high"];
    delete edited.USDBRL["varBid"];
    const [quote] = parseLatest(edited, ["USD-BRL"], NOW);
    expect(quote).toMatchObject({ high: null, varBid: null, low: "5.6602", pctChange: "0.65" });
  });
});

// ---------------------------------------------------------------------------------------------

describe("answers that lie: timestamps out of time", () => {
  const latest = () => fixtureJson(ONE_PAIR) as { USDBRL: Record<string, unknown> };
  const prefix = "Cannot read the AwesomeAPI answer: ";
  const future = "more than 10 minutes ahead of this computer's clock (2024-10-25 18:00:00 UTC), nothing of this answer was used; check the clock, else try again later";
  const past = "before 1990-01-01, older than any AwesomeAPI quote, nothing of this answer was used; try again later";

  test("a latest quote stamped in the far future, or more than 10 minutes ahead, fails naming pair, field, value and date", () => {
    const cases: [string, string][] = [
      ["99999999999", `USD-BRL timestamp is "99999999999" (5138-11-16 09:46:39 UTC), ${future}`],
      ["1950000000", `USD-BRL timestamp is "1950000000" (2031-10-17 10:40:00 UTC), ${future}`],
      ["1950000000000", `USD-BRL timestamp is "1950000000000" (2031-10-17 10:40:00 UTC), ${future}`],
      ["1729879801", `USD-BRL timestamp is "1729879801" (2024-10-25 18:10:01 UTC), ${future}`],
      ["9999999999999999", `USD-BRL timestamp is "9999999999999999" (beyond any calendar date), ${future}`],
    ];
    for (const [timestamp, message] of cases) {
      const body = latest();
      body.USDBRL["timestamp"] = timestamp;
      expect(thrown(() => parseLatest(body, ["USD-BRL"], NOW), "INVALID_PAYLOAD").message).toBe(prefix + message);
    }
  });

  test("a latest quote stamped before 1990 fails naming pair, field, value and date", () => {
    for (const [timestamp, date] of [["631151999", "1989-12-31 23:59:59"], ["1", "1970-01-01 00:00:01"], ["99999999", "1973-03-03 09:46:39"]]) {
      const body = latest();
      body.USDBRL["timestamp"] = timestamp;
      expect(thrown(() => parseLatest(body, ["USD-BRL"], NOW), "INVALID_PAYLOAD").message).toBe(
        `${prefix}USD-BRL timestamp is "${timestamp}" (${date} UTC), ${past}`,
      );
    }
  });

  test("the edges are accepted: exactly 10 minutes ahead, and 1990-01-01 00:00 UTC", () => {
    for (const timestamp of ["1729879800", "631152000", "631152000000"]) {
      const body = latest();
      body.USDBRL["timestamp"] = timestamp;
      expect(parseLatest(body, ["USD-BRL"], NOW)[0]?.ts.getTime()).toBe(Number(timestamp) * (timestamp.length > 11 ? 1 : 1000));
    }
  });

  test("one pair from the future fails the whole /json/last answer: no quote is returned", async () => {
    const body = fixtureJson(TWO_PAIRS) as Record<string, Record<string, unknown>>;
    body["EURBRL"]!["timestamp"] = "99999999999";
    await using api = startFakeAwesomeApi(json(body));
    const error = await failure(fetchLatest(["USD-BRL", "EUR-BRL"], fakeOptions(api.url).options), "INVALID_PAYLOAD");
    expect(error.message).toStartWith(`${prefix}EUR-BRL timestamp is "99999999999" (5138-11-16 09:46:39 UTC)`);
    expect(error.attempts).toBe(1);
  });

  test("a daily record from the future or before 1990 fails the answer, naming pair, record, value and date", () => {
    const cases: [number, string, string][] = [
      [3, "99999999999", `USD-BRL record 3 timestamp is "99999999999" (5138-11-16 09:46:39 UTC), ${future}`],
      [0, "1950000000", `USD-BRL record 0 timestamp is "1950000000" (2031-10-17 10:40:00 UTC), ${future}`],
      [14, "631151999000", `USD-BRL record 14 timestamp is "631151999000" (1989-12-31 23:59:59 UTC), ${past}`],
    ];
    for (const [index, timestamp, message] of cases) {
      const body = fixtureJson(DAILY) as Record<string, unknown>[];
      body[index]!["timestamp"] = timestamp;
      expect(thrown(() => parseDaily(body, "USD-BRL", NOW), "INVALID_PAYLOAD").message).toBe(prefix + message);
    }
  });

  test("a history request whose answer holds a record from the future fails, and nothing of it is yielded", async () => {
    const body = fixtureJson(DAILY) as Record<string, unknown>[];
    body[5]!["timestamp"] = "1950000000";
    await using api = startFakeAwesomeApi(json(body));
    const seen: unknown[] = [];
    const run = (async () => {
      for await (const chunk of dailyChunks("USD-BRL", { from: "2024-08-09", to: "2024-08-23" }, fakeOptions(api.url).options)) seen.push(chunk);
    })();
    const error = await failure(run, "INVALID_PAYLOAD");
    expect(error.message).toContain('USD-BRL record 5 timestamp is "1950000000" (2031-10-17 10:40:00 UTC)');
    expect(seen).toEqual([]);
  });
});

describe("answers that lie: another pair than the one asked", () => {
  const prefix = "Cannot read the AwesomeAPI answer: ";
  const latest = () => fixtureJson(ONE_PAIR) as { USDBRL: Record<string, unknown> };

  test("a /json/last record whose code or codein is not the pair asked fails naming field, value and pair", () => {
    const cases: [string, unknown, string][] = [
      ["code", "EUR", 'USD-BRL code is "EUR", expected "USD" as in USD-BRL, the pair asked for, nothing of this answer was used; try again later'],
      ["codein", "JPY", 'USD-BRL codein is "JPY", expected "BRL" as in USD-BRL, the pair asked for, nothing of this answer was used; try again later'],
      ["codein", "BRLT", 'USD-BRL codein is "BRLT", expected "BRL" as in USD-BRL, the pair asked for, nothing of this answer was used; try again later'],
      ["code", undefined, 'USD-BRL code is missing, expected "USD" as in USD-BRL, the pair asked for, nothing of this answer was used; try again later'],
    ];
    for (const [field, value, message] of cases) {
      const body = latest();
      if (value === undefined) delete body.USDBRL[field];
      else body.USDBRL[field] = value;
      expect(thrown(() => parseLatest(body, ["USD-BRL"], NOW), "INVALID_PAYLOAD").message).toBe(prefix + message);
    }
  });

  test("codes are compared without regard to case, and suffixed pairs like USD-BRLT match their codein", () => {
    const body = latest();
    body.USDBRL["code"] = "usd";
    expect(parseLatest(body, ["USD-BRL"], NOW)).toHaveLength(1);
    // As the API answers /json/last/USD-BRLT.
    const tourism = { USDBRLT: { ...latest().USDBRL, codein: "BRLT", name: "Dólar Americano/Real Brasileiro Turismo" } };
    expect(parseLatest(tourism, ["USD-BRLT"], NOW)[0]?.pair).toBe("USD-BRLT");
  });

  test("a mismatch in one pair of several fails the whole answer", async () => {
    const body = fixtureJson(LATIN1) as Record<string, Record<string, unknown>>;
    body["EURBRL"]!["code"] = "JPY";
    await using api = startFakeAwesomeApi(json(body));
    const options = fakeOptions(api.url, { now: () => new Date("2022-08-08T15:00:00Z") }).options;
    const error = await failure(fetchLatest(["USD-BRL", "EUR-BRL", "BTC-BRL"], options), "INVALID_PAYLOAD");
    expect(error.message).toStartWith(`${prefix}EUR-BRL code is "JPY", expected "EUR" as in EUR-BRL, the pair asked for`);
  });

  test("a daily answer for EUR/JPY given for USD-BRL fails naming record, field, value and pair", () => {
    const body = fixtureJson(DAILY) as Record<string, unknown>[];
    body[0]!["code"] = "EUR";
    body[0]!["codein"] = "JPY";
    expect(thrown(() => parseDaily(body, "USD-BRL", NOW), "INVALID_PAYLOAD").message).toBe(
      `${prefix}USD-BRL record 0 code is "EUR", expected "USD" as in USD-BRL, the pair asked for, nothing of this answer was used; try again later`,
    );
    // Only the first daily record carries the codes, but any record that does is checked.
    const later = fixtureJson(DAILY) as Record<string, unknown>[];
    later[6]!["codein"] = "JPY";
    expect(thrown(() => parseDaily(later, "USD-BRL", NOW), "INVALID_PAYLOAD").message).toStartWith(
      `${prefix}USD-BRL record 6 codein is "JPY", expected "BRL"`,
    );
  });

  test("a history request answered with another pair's records stores nothing", async () => {
    const body = fixtureJson(DAILY) as Record<string, unknown>[];
    body[0]!["code"] = "EUR";
    body[0]!["codein"] = "JPY";
    await using api = startFakeAwesomeApi(json(body));
    const error = await failure(fetchDaily("USD-BRL", { from: "2024-08-09", to: "2024-08-23" }, fakeOptions(api.url).options), "INVALID_PAYLOAD");
    expect(error.message).toContain('record 0 code is "EUR", expected "USD"');
  });
});

describe("parseDaily and normaliseDaily", () => {
  test("the daily fixture's 15 records parse, only the first carrying code and name", () => {
    const body = fixtureJson(DAILY) as Record<string, unknown>[];
    expect(body).toHaveLength(15);
    expect(body.filter((record) => "code" in record)).toHaveLength(1);
    const quotes = parseDaily(body, "USD-BRL", NOW);
    expect(quotes).toHaveLength(15);
    expect(quotes[0]).toEqual({
      pair: "USD-BRL",
      ts: new Date(1724434780 * 1000),
      bid: "5.5037",
      ask: "5.506",
      high: "5.6061",
      low: "5.4716",
      varBid: "-0.0785",
      pctChange: "-1.41",
      source: "awesomeapi:daily",
      fetchedAt: NOW,
    });
    expect(quotes[14]).toMatchObject({ bid: "5.5084", ask: "5.5091", ts: new Date(1723237140 * 1000) });
  });

  test("normalising keeps one quote per São Paulo day, the latest of 2024-08-16 and of 2024-08-09", () => {
    const quotes = normaliseDaily(parseDaily(fixtureJson(DAILY), "USD-BRL", NOW));
    const days = quotes.map((q) => saoPauloDay(q.ts));
    // 2024-08-11 and 2024-08-18 are Sundays: the API does send weekend records.
    expect(days).toEqual([
      "2024-08-09", "2024-08-11", "2024-08-12", "2024-08-13", "2024-08-14", "2024-08-15", "2024-08-16",
      "2024-08-18", "2024-08-19", "2024-08-20", "2024-08-21", "2024-08-22", "2024-08-23",
    ]);
    expect(new Set(days).size).toBe(days.length);
    expect(quotes).toHaveLength(13);
    const byDay = new Map(quotes.map((q) => [saoPauloDay(q.ts), q]));
    expect(byDay.get("2024-08-16")).toMatchObject({ bid: "5.4753", ts: new Date(1723841989 * 1000) });
    expect(byDay.get("2024-08-09")).toMatchObject({ bid: "5.5054", ts: new Date(1723237194 * 1000) });
  });

  test("the docs' 2018 example with millisecond timestamps parses", () => {
    const body = [
      { code: "USD", codein: "BRL", name: "Dólar Americano/Real Brasileiro", high: "4.0256", low: "4.0256", pctChange: "0.834", bid: "4.0256", ask: "4.0276", varBid: "0.0333", timestamp: "1538136540000", create_date: "2018-09-28 06:20:02" },
      { high: "4.0376", low: "4.0376", pctChange: "0.313", bid: "4.0376", ask: "4.0388", varBid: "0.0126", timestamp: "1538050140000" },
    ];
    const quotes = parseDaily(body, "USD-BRL", NOW);
    expect(quotes.map((q) => q.ts.toISOString())).toEqual(["2018-09-28T12:09:00.000Z", "2018-09-27T12:09:00.000Z"]);
  });

  test("a bad daily record fails naming pair, record, field and value", () => {
    const body = fixtureJson(DAILY) as Record<string, unknown>[];
    (body[3] as Record<string, unknown>)["ask"] = 5.4795;
    expect(thrown(() => parseDaily(body, "USD-BRL", NOW), "INVALID_PAYLOAD").message).toBe(
      "Cannot read the AwesomeAPI answer: USD-BRL record 3 ask is 5.4795 (a number), expected a positive decimal as a JSON string",
    );
    expect(thrown(() => parseDaily({ USDBRL: {} }, "USD-BRL", NOW), "INVALID_PAYLOAD").message).toContain("expected an array");
  });

  test("normalising keeps pairs apart", () => {
    const quote = (pair: string, iso: string, bid: string): Quote => ({
      pair, ts: new Date(iso), bid, ask: bid, high: null, low: null, varBid: null, pctChange: null, source: "t", fetchedAt: NOW,
    });
    const result = normaliseDaily([
      quote("USD-BRL", "2024-08-16T20:00:00Z", "1"),
      quote("EUR-BRL", "2024-08-16T21:00:00Z", "2"),
      quote("USD-BRL", "2024-08-16T22:00:00Z", "3"),
      // 02:00 UTC on the 17th is still the 16th in São Paulo.
      quote("USD-BRL", "2024-08-17T02:00:00Z", "4"),
    ]);
    expect(result.map((q) => [q.pair, q.bid])).toEqual([["EUR-BRL", "2"], ["USD-BRL", "4"]]);
  });

  test("normalising 500,000 rows takes well under a second per million", () => {
    const start = Date.parse("2000-01-01T00:00:00Z");
    const quotes: Quote[] = Array.from({ length: 500_000 }, (_, i) => ({
      pair: i % 2 ? "USD-BRL" : "EUR-BRL",
      ts: new Date(start + i * 600_000),
      bid: "1.5", ask: "1.5", high: null, low: null, varBid: null, pctChange: null, source: "t", fetchedAt: NOW,
    }));
    const began = performance.now();
    const result = normaliseDaily(quotes);
    const elapsed = performance.now() - began;
    // 500,000 ten-minute steps span ~3,472 days; each pair has a quote on each of them.
    expect(result.length).toBeGreaterThan(6_900);
    expect(result.length).toBeLessThan(7_000);
    expect(elapsed).toBeLessThan(1_500);
  });
});

describe("the same timestamp twice with different values", () => {
  // Record 0 of the daily fixture: USD-BRL 2024-08-23 17:39:40 UTC, bid 5.5037.
  const withTwin = (twin: Record<string, unknown>, position = 1) => {
    const body = fixtureJson(DAILY) as Record<string, unknown>[];
    const { code: _code, codein: _codein, name: _name, create_date: _date, ...first } = body[0]!;
    body.splice(position, 0, { ...first, ...twin });
    return body;
  };

  test("keeps the first in the answer's order and reports the conflict in one line", () => {
    const { quotes, conflicts } = normaliseDailyWithConflicts(parseDaily(withTwin({ bid: "5.51" }), "USD-BRL", NOW));
    expect(quotes.find((q) => saoPauloDay(q.ts) === "2024-08-23")?.bid).toBe("5.5037");
    expect(conflicts).toHaveLength(1);
    expect(conflicts[0]).toMatchObject({ pair: "USD-BRL", day: "2024-08-23", kept: { bid: "5.5037" }, dropped: [{ bid: "5.51" }] });
    expect(conflicts.map(describeConflict)).toEqual([
      "USD-BRL 2024-08-23: 2 records share timestamp 2024-08-23 17:39:40 UTC with different bids; kept the first (5.5037), dropped 5.51",
    ]);
    // The same two the other way round: the first is still the one kept.
    const swapped = parseDaily(withTwin({ bid: "5.51" }), "USD-BRL", NOW);
    [swapped[0], swapped[1]] = [swapped[1]!, swapped[0]!];
    expect(normaliseDailyWithConflicts(swapped).quotes.find((q) => saoPauloDay(q.ts) === "2024-08-23")?.bid).toBe("5.51");
  });

  test("names the fields that differ when the bids agree", () => {
    const { conflicts } = normaliseDailyWithConflicts(parseDaily(withTwin({ ask: "5.6", high: "5.7" }), "USD-BRL", NOW));
    expect(conflicts.map(describeConflict)).toEqual([
      "USD-BRL 2024-08-23: 2 records share timestamp 2024-08-23 17:39:40 UTC with different ask and high; kept the first (ask 5.506, high 5.6061), dropped (ask 5.6, high 5.7)",
    ]);
  });

  test("identical duplicates are not conflicts, and neither are twins of a record the day does not keep", () => {
    expect(normaliseDailyWithConflicts(parseDaily(withTwin({}), "USD-BRL", NOW)).conflicts).toEqual([]);
    // 2024-08-16 has two records; its earlier one (17:25:44 UTC) is dropped for the later one anyway.
    const body = fixtureJson(DAILY) as Record<string, unknown>[];
    body.push({ ...body[7], bid: "9.9" });
    const { quotes, conflicts } = normaliseDailyWithConflicts(parseDaily(body, "USD-BRL", NOW));
    expect(conflicts).toEqual([]);
    expect(quotes.find((q) => saoPauloDay(q.ts) === "2024-08-16")?.bid).toBe("5.4753");
  });

  test("a history chunk counts its conflicts and says what it kept, never silently", async () => {
    await using api = startFakeAwesomeApi(json(withTwin({ bid: "5.51" }, 0)));
    const [chunk, ...rest] = await collect(dailyChunks("USD-BRL", { from: "2024-08-09", to: "2024-08-23" }, fakeOptions(api.url).options));
    expect(rest).toEqual([]);
    expect(chunk?.conflicts).toBe(1);
    expect(chunk?.warnings).toEqual([
      "USD-BRL 2024-08-23: 2 records share timestamp 2024-08-23 17:39:40 UTC with different bids; kept the first (5.51), dropped 5.5037",
    ]);
    expect(chunk?.quotes.at(-1)?.bid).toBe("5.51");
  });

  test("a chunk full of conflicts gives a few lines and a count, not one line per day", async () => {
    const body = fixtureJson(DAILY) as Record<string, unknown>[];
    const twins = body.map((record) => ({ ...record, code: undefined, codein: undefined, bid: "9.9" }));
    await using api = startFakeAwesomeApi(json(body.flatMap((record, i) => [record, twins[i]])));
    const [chunk] = await collect(dailyChunks("USD-BRL", { from: "2024-08-09", to: "2024-08-23" }, fakeOptions(api.url).options));
    // 13 days, each with its latest record twice.
    expect(chunk?.conflicts).toBe(13);
    expect(chunk?.warnings).toHaveLength(MAX_CONFLICT_LINES + 1);
    expect(chunk?.warnings.at(-1)).toBe(
      `USD-BRL 2024-08-09..2024-08-23: ${13 - MAX_CONFLICT_LINES} more timestamps held records with different values; the first of each was kept`,
    );
  });
});

// ---------------------------------------------------------------------------------------------

describe("requestJson", () => {
  test("a 500 then a 200 succeeds after two requests and one backoff", async () => {
    await using api = startFakeAwesomeApi(sequence(status(500), replay(ONE_PAIR)));
    const { options, sleeps, retries } = fakeOptions(api.url);
    const quotes = await fetchLatest(["USD-BRL"], options);
    expect(quotes[0]?.bid).toBe("5.7008");
    expect(api.count("/json/last/USD-BRL")).toBe(2);
    // 500 ms ceiling, half fixed and half jittered at random() = 0.5.
    expect(sleeps).toEqual([375]);
    expect(retries.map((r) => [r.attempt, r.delayMs, r.error.code, r.error.status])).toEqual([[1, 375, "HTTP", 500]]);
  });

  test("persistent 5xx gives up after the retries with exponential backoff, counting attempts", async () => {
    await using api = startFakeAwesomeApi(status(503));
    const { options, sleeps } = fakeOptions(api.url, { retries: 3 });
    const error = await failure(fetchLatest(["USD-BRL"], options), "HTTP");
    expect(error.attempts).toBe(4);
    expect(error.status).toBe(503);
    expect(api.count()).toBe(4);
    expect(sleeps).toEqual([375, 750, 1500]);
    expect(error.message).toContain("HTTP 503");
    expect(error.message).toContain("gave up after 4 attempts");
  });

  test("429 waits as long as Retry-After says, in seconds", async () => {
    await using api = startFakeAwesomeApi(sequence(status(429, { "retry-after": "7" }), replay(ONE_PAIR)));
    const { options, sleeps } = fakeOptions(api.url);
    await fetchLatest(["USD-BRL"], options);
    expect(sleeps).toEqual([7_000]);
    expect(api.count()).toBe(2);
  });

  test("Retry-After as an HTTP date is honoured against the injected clock, and capped at 60 s", async () => {
    const in30s = new Date(NOW.getTime() + 30_000).toUTCString();
    await using api = startFakeAwesomeApi(
      sequence(status(429, { "retry-after": in30s }), status(503, { "retry-after": "3600" }), replay(ONE_PAIR)),
    );
    const { options, sleeps } = fakeOptions(api.url);
    await fetchLatest(["USD-BRL"], options);
    expect(sleeps).toEqual([30_000, 60_000]);
  });

  test("409 (quota) is retried", async () => {
    await using api = startFakeAwesomeApi(sequence(status(409), replay(ONE_PAIR)));
    const { options, sleeps } = fakeOptions(api.url);
    await fetchLatest(["USD-BRL"], options);
    expect(api.count()).toBe(2);
    expect(sleeps).toHaveLength(1);
  });

  test("an answer slower than timeoutMs times out on every attempt, then fails as TIMEOUT", async () => {
    await using api = startFakeAwesomeApi(delay(1_000, replay(ONE_PAIR)));
    const { options, sleeps } = fakeOptions(api.url, { timeoutMs: 50, retries: 2 });
    const error = await failure(fetchLatest(["USD-BRL"], options), "TIMEOUT");
    expect(error.attempts).toBe(3);
    expect(api.count()).toBe(3);
    expect(sleeps).toHaveLength(2);
    expect(error.message).toContain("within 50 ms");
  });

  test("a slow first answer is retried and the second one is used", async () => {
    await using api = startFakeAwesomeApi(sequence(delay(1_000, replay(ONE_PAIR)), replay(TWO_PAIRS)));
    const quotes = await fetchLatest(["USD-BRL", "EUR-BRL"], fakeOptions(api.url, { timeoutMs: 50 }).options);
    expect(quotes).toHaveLength(2);
    expect(api.count()).toBe(2);
  });

  test("a reset connection is a NETWORK error, and is retried", async () => {
    await using api = startFakeAwesomeApi(sequence(reset(), replay(ONE_PAIR)));
    const { options, retries } = fakeOptions(api.url);
    await fetchLatest(["USD-BRL"], options);
    expect(api.count()).toBe(2);
    expect(retries[0]?.error.code).toBe("NETWORK");
  });

  test("a connection that keeps resetting fails as NETWORK after the retries", async () => {
    await using api = startFakeAwesomeApi(reset());
    const error = await failure(fetchLatest(["USD-BRL"], fakeOptions(api.url, { retries: 1 }).options), "NETWORK");
    expect(error.attempts).toBe(2);
    expect(api.count()).toBe(2);
    expect(error.cause).toBeDefined();
  });

  test("nobody listening is a NETWORK error", async () => {
    const api = startFakeAwesomeApi();
    const url = api.url;
    await api.stop();
    const error = await failure(fetchLatest(["USD-BRL"], fakeOptions(url, { retries: 1 }).options), "NETWORK");
    expect(error.attempts).toBe(2);
  });

  test("an HTML page with 200 is NOT_JSON, says HTML and the status, and is not retried", async () => {
    await using api = startFakeAwesomeApi(html(200));
    const error = await failure(fetchLatest(["USD-BRL"], fakeOptions(api.url).options), "NOT_JSON");
    expect(error.message).toContain("HTTP 200");
    expect(error.message).toContain("HTML");
    expect(error.attempts).toBe(1);
    expect(api.count()).toBe(1);
  });

  test("a Cloudflare 403 page is NOT_JSON and not retried", async () => {
    await using api = startFakeAwesomeApi(html(403));
    const { options, sleeps } = fakeOptions(api.url);
    const error = await failure(fetchLatest(["USD-BRL"], options), "NOT_JSON");
    expect(error.message).toContain("HTTP 403");
    expect(error.message).toContain("HTML");
    expect(error.status).toBe(403);
    expect(api.count()).toBe(1);
    expect(sleeps).toEqual([]);
  });

  test("a JSON 403 is an HTTP error and not retried", async () => {
    await using api = startFakeAwesomeApi(status(403));
    const error = await failure(fetchLatest(["USD-BRL"], fakeOptions(api.url).options), "HTTP");
    expect(error.attempts).toBe(1);
    expect(api.count()).toBe(1);
  });

  test("a Cloudflare 522 page is retried, then fails as NOT_JSON naming HTML and 522", async () => {
    await using api = startFakeAwesomeApi(html(522));
    const error = await failure(fetchLatest(["USD-BRL"], fakeOptions(api.url, { retries: 2 }).options), "NOT_JSON");
    expect(error.message).toContain("HTTP 522");
    expect(error.message).toContain("HTML");
    expect(error.attempts).toBe(3);
    expect(api.count()).toBe(3);
  });

  test("truncated JSON is NOT_JSON and not retried", async () => {
    await using api = startFakeAwesomeApi(truncated(TWO_PAIRS));
    const error = await failure(fetchLatest(["USD-BRL", "EUR-BRL"], fakeOptions(api.url).options), "NOT_JSON");
    expect(error.message).toContain("was not JSON");
    expect(error.message).toContain("HTTP 200");
    expect(api.count()).toBe(1);
  });

  test("a user and password inside the base URL never appear in an error message; the URL shows ***@", async () => {
    // "p@ss/#x" percent-encoded, as a URL must carry it.
    const credentials = `user:${encodeURIComponent("p@ss/#x")}`;
    const secrets = ["user", "p@ss", "ss/#x", "p%40ss", encodeURIComponent("p@ss/#x")];
    await using api = startFakeAwesomeApi(status(500));
    const withCredentials = (url: string) => url.replace("http://", `http://${credentials}@`);
    const { options } = fakeOptions(withCredentials(api.url), { retries: 0 });
    const httpError = await failure(fetchLatest(["USD-BRL"], options), "HTTP");
    // They were sent (as Basic authentication), just never shown.
    expect(api.requests[0]?.headers.get("authorization")).toBe(`Basic ${btoa("user:p@ss/#x")}`);
    expect(httpError.message).toContain(`Cannot fetch http://***@127.0.0.1:`);

    const stopped = startFakeAwesomeApi();
    await stopped.stop();
    const networkError = await failure(fetchLatest(["USD-BRL"], { ...options, baseUrl: withCredentials(stopped.url) }), "NETWORK");
    expect(networkError.message).toContain(`Cannot fetch http://***@127.0.0.1:`);
    for (const error of [httpError, networkError]) {
      for (const secret of secrets) {
        expect(error.message).not.toContain(secret);
        expect(String((error.cause as Error | undefined)?.message)).not.toContain(secret);
      }
    }
  });

  test("the token never appears in an error message; the URL shows token=***", async () => {
    await using api = startFakeAwesomeApi(routes({ "/json/last/USD-BRL": status(500) }));
    const { options } = fakeOptions(api.url, { token: TOKEN, retries: 0 });
    const httpError = await failure(fetchLatest(["USD-BRL"], options), "HTTP");
    expect(api.requests[0]?.url.searchParams.get("token")).toBe(TOKEN);
    expect(httpError.message).toContain("token=***");
    expect(httpError.message).not.toContain(TOKEN);

    const stopped = startFakeAwesomeApi();
    await stopped.stop();
    const networkError = await failure(fetchLatest(["USD-BRL"], { ...options, baseUrl: stopped.url }), "NETWORK");
    expect(networkError.message).toContain("token=***");
    expect(networkError.message).not.toContain(TOKEN);

    const notFound = await failure(fetchLatest(["USD-USD"], options), "UNKNOWN_PAIR");
    expect(notFound.message).not.toContain(TOKEN);
    expect(String((notFound.cause as Error).message)).not.toContain(TOKEN);
  });

  test("decodes the body itself and returns status and attempts", async () => {
    await using api = startFakeAwesomeApi(replay(LATIN1));
    const response = await requestJson(`${api.url}/json/last/USD-BRL`, { timeoutMs: 1_000 });
    expect(response.status).toBe(200);
    expect(response.attempts).toBe(1);
    expect((response.body as { USDBRL: { name: string } }).USDBRL.name).toBe("D\uFFFDlar Americano/Real Brasileiro");
  });

  test("bad retry or timeout options fail before any request", async () => {
    await using api = startFakeAwesomeApi(replay(ONE_PAIR));
    expect((await failure(requestJson(api.url, { retries: -1 }), "USAGE")).message).toContain("'retries'");
    expect((await failure(requestJson(api.url, { timeoutMs: 0 }), "USAGE")).message).toContain("'timeoutMs'");
    // 25 days would overflow the timer and fire at once.
    expect((await failure(requestJson(api.url, { timeoutMs: 25 * 86_400_000 }), "USAGE")).message).toContain("at most 600000");
    expect(api.count()).toBe(0);
  });

  test("backoff doubles from 500 ms up to 8 s, jittered over its upper half", () => {
    expect([1, 2, 3, 4, 5, 6, 7].map((attempt) => backoffDelay(attempt, () => 0))).toEqual([250, 500, 1000, 2000, 4000, 4000, 4000]);
    expect([1, 2, 5, 9].map((attempt) => backoffDelay(attempt, () => 1))).toEqual([500, 1000, 8000, 8000]);
  });

  test("Retry-After accepts seconds and HTTP dates, ignores junk and caps at 60 s", () => {
    expect(retryAfterMs("12", NOW)).toBe(12_000);
    expect(retryAfterMs("0", NOW)).toBe(0);
    expect(retryAfterMs(new Date(NOW.getTime() + 5_000).toUTCString(), NOW)).toBe(5_000);
    expect(retryAfterMs(new Date(NOW.getTime() - 5_000).toUTCString(), NOW)).toBe(0);
    expect(retryAfterMs("86400", NOW)).toBe(60_000);
    expect(retryAfterMs("soon", NOW)).toBeUndefined();
    expect(retryAfterMs(null, NOW)).toBeUndefined();
  });
});

describe("requestJson: answers too large to read", () => {
  const MiB = 1024 * 1024;
  const spaces = (bytes: number) => new Uint8Array(bytes).fill(0x20);

  /** A fetch whose answer never ends, counting the bytes the client pulls from it. */
  function endlessFetch(chunkBytes: number) {
    const pulled = { bytes: 0, requests: 0 };
    const fetch: Fetch = async () => {
      pulled.requests++;
      const stream = new ReadableStream<Uint8Array>({
        pull(controller) {
          pulled.bytes += chunkBytes;
          controller.enqueue(spaces(chunkBytes));
        },
      });
      return new Response(stream, { headers: { "content-type": "application/json" } });
    };
    return { fetch, pulled };
  }

  test("an endless answer fails as TOO_LARGE once past the cap, after reading at most the cap and a chunk, and is not retried", async () => {
    const { fetch, pulled } = endlessFetch(64 * 1024);
    const error = await failure(requestJson("http://127.0.0.1:9/json/last/USD-BRL", { fetch, maxBodyBytes: MiB, timeoutMs: 5_000 }), "TOO_LARGE");
    expect(error.message).toBe(
      "Cannot fetch http://127.0.0.1:9/json/last/USD-BRL: the answer is larger than 1 MiB once decompressed, the most this client reads, check that AWESOMEAPI_URL is AwesomeAPI, else try again later",
    );
    expect(error.attempts).toBe(1);
    expect(pulled.requests).toBe(1);
    // The stream may have one chunk queued ahead of the one that crossed the cap.
    expect(pulled.bytes).toBeLessThanOrEqual(MiB + 2 * 64 * 1024);
  });

  test("an answer of exactly the cap is read; the default cap is 8 MiB", async () => {
    const body = new TextEncoder().encode(`[${" ".repeat(MiB - 2)}]`);
    const fetch: Fetch = async () => new Response(body);
    expect((await requestJson("http://127.0.0.1:9/", { fetch, maxBodyBytes: MiB })).body).toEqual([]);
    expect(DEFAULT_MAX_BODY_BYTES).toBe(8 * MiB);
  });

  test("a 9 MiB answer over HTTP fails as TOO_LARGE naming the 8 MiB cap", async () => {
    // Valid JSON: without a cap it would be read, parsed and accepted.
    const body = new TextEncoder().encode(`${" ".repeat(9 * MiB)}{}`);
    await using api = startFakeAwesomeApi(() => new Response(body, { headers: { "content-type": "application/json" } }));
    const error = await failure(requestJson(`${api.url}/json/last/USD-BRL`, { retries: 2, timeoutMs: 5_000 }), "TOO_LARGE");
    expect(error.message).toContain("larger than 8 MiB once decompressed");
    expect(api.count()).toBe(1);
  });

  test("a gzip bomb is counted as it inflates, and stops past the cap", async () => {
    // 64 MiB of zeros packs into ~64 KB; Content-Length says the small figure.
    const bomb = Bun.gzipSync(new Uint8Array(64 * MiB));
    expect(bomb.byteLength).toBeLessThan(MiB);
    await using api = startFakeAwesomeApi(() => new Response(bomb, { headers: { "content-type": "application/json", "content-encoding": "gzip" } }));
    // Counts what the client reads of the inflated body.
    let read = 0;
    const counting: Fetch = async (input, init) => {
      const response = await globalThis.fetch(input, init);
      const counter = new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, controller) {
          read += chunk.byteLength;
          controller.enqueue(chunk);
        },
      });
      return new Response(response.body?.pipeThrough(counter), { status: response.status, headers: response.headers });
    };
    const error = await failure(requestJson(`${api.url}/json/daily/USD-BRL/360`, { fetch: counting, maxBodyBytes: 2 * MiB }), "TOO_LARGE");
    expect(error.message).toContain("larger than 2 MiB once decompressed");
    expect(read).toBeGreaterThan(2 * MiB);
    expect(read).toBeLessThan(4 * MiB);
  });

  test("an answer that keeps trickling bytes times out at the timeout, not when it ends", async () => {
    await using api = startFakeAwesomeApi(
      () =>
        new Response(
          new ReadableStream({
            async pull(controller) {
              await Bun.sleep(5);
              controller.enqueue(spaces(1024));
            },
          }),
          { headers: { "content-type": "application/json" } },
        ),
    );
    const began = performance.now();
    const error = await failure(requestJson(`${api.url}/json/last/USD-BRL`, { timeoutMs: 200, retries: 0 }), "TIMEOUT");
    expect(error.message).toContain("within 200 ms");
    expect(performance.now() - began).toBeLessThan(2_000);
  });

  test("a bad cap fails before any request", async () => {
    const { fetch, pulled } = endlessFetch(1024);
    for (const maxBodyBytes of [0, -1, 1.5]) {
      expect((await failure(requestJson("http://127.0.0.1:9/", { fetch, maxBodyBytes }), "USAGE")).message).toContain("'maxBodyBytes'");
    }
    expect(pulled.requests).toBe(0);
  });

  test("a process fetching an endless answer and a gzip bomb stays under 200 MB", async () => {
    const chunk = spaces(MiB);
    const bomb = Bun.gzipSync(new Uint8Array(256 * MiB));
    await using api = startFakeAwesomeApi(
      routes({
        "/endless": () => new Response(new ReadableStream({ pull: (controller) => controller.enqueue(chunk) })),
        "/bomb": () => new Response(bomb, { headers: { "content-encoding": "gzip" } }),
      }),
    );
    const script = `
      const { requestJson } = await import(${JSON.stringify(join(import.meta.dir, "../ingest.ts"))});
      for (const path of ["/endless", "/bomb"]) {
        const error = await requestJson(${JSON.stringify(api.url)} + path, { retries: 0, timeoutMs: 20000 }).catch((e) => e);
        console.log(error.code);
      }`;
    const child = Bun.spawn([process.execPath, "-e", script], { stdout: "pipe", stderr: "pipe" });
    const memory = watchPeakMemory(child.pid);
    const [stdout, , exitCode] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
    const peakMb = memory.stop();
    expect({ exitCode, codes: stdout.trim().split("\n") }).toEqual({ exitCode: 0, codes: ["TOO_LARGE", "TOO_LARGE"] });
    if (!Number.isNaN(peakMb)) expect(peakMb).toBeLessThan(200);
  });
});

// ---------------------------------------------------------------------------------------------

describe("planChunks", () => {
  test("covers 1999-01-01..2026-11-29 in chunks of at most CHUNK_DAYS days, with no gap or overlap", () => {
    const chunks = planChunks("1999-01-01", "2026-11-29");
    expect(chunks[0]?.from).toBe("1999-01-01");
    expect(chunks.at(-1)?.to).toBe("2026-11-29");
    let previous: string | undefined;
    let days = 0;
    for (const chunk of chunks) {
      if (previous) expect(chunk.from).toBe(addDays(previous, 1));
      const length = (Date.parse(chunk.to) - Date.parse(chunk.from)) / 86_400_000 + 1;
      expect(length).toBeGreaterThanOrEqual(1);
      expect(length).toBeLessThanOrEqual(CHUNK_DAYS);
      days += length;
      previous = chunk.to;
    }
    expect(days).toBe((Date.parse("2026-11-29") - Date.parse("1999-01-01")) / 86_400_000 + 1);
    expect(chunks).toHaveLength(Math.ceil(days / CHUNK_DAYS));
  });

  test("a single day is one chunk", () => {
    expect(planChunks("2024-02-29", "2024-02-29")).toEqual([{ from: "2024-02-29", to: "2024-02-29" }]);
  });

  test("a reversed or impossible range fails as USAGE", () => {
    expect(thrown(() => planChunks("2024-02-01", "2024-01-01"), "USAGE").message).toContain("'from' (2024-02-01) must not be after 'to' (2024-01-01)");
    expect(thrown(() => planChunks("2023-02-29", "2024-01-01"), "USAGE").message).toContain('"2023-02-29"');
    thrown(() => planChunks("20240101", "2024-01-02"), "USAGE");
  });

  test("counts weekdays, holidays included", () => {
    expect(countWeekdays({ from: "2024-08-19", to: "2024-08-25" })).toBe(5);
    expect(countWeekdays({ from: "2024-12-25", to: "2024-12-26" })).toBe(2);
  });
});

describe("dailyChunks and fetchDaily", () => {
  const series: DailyPoint[] = weekdaysBetween("2024-01-01", "2024-08-23").map((date, i) => ({
    date,
    bid: `5.${String(1000 + i)}`,
  }));

  test("asks for /json/daily/PAIR/360 with start_date, end_date and the token", async () => {
    await using api = startFakeAwesomeApi(dailySeries({ "USD-BRL": series }));
    const { options } = fakeOptions(api.url, { token: TOKEN });
    const chunks = await collect(dailyChunks("USD-BRL", { from: "2024-08-01", to: "2024-08-16" }, options));
    expect(chunks).toHaveLength(1);
    const request = api.requests[0];
    expect(request?.path).toBe(`/json/daily/USD-BRL/${DAILY_MAX_RECORDS}`);
    expect(Object.fromEntries(request?.url.searchParams ?? [])).toEqual({ start_date: "20240801", end_date: "20240816", token: TOKEN });
    expect(chunks[0]?.quotes.map((q) => saoPauloDay(q.ts))).toEqual(weekdaysBetween("2024-08-01", "2024-08-16"));
    expect(chunks[0]?.quotes.every((q) => q.source === "awesomeapi:daily")).toBe(true);
  });

  test("a multi-year PTAX range returns every business day once, with exact values", async () => {
    const ptax = loadPtaxSeries();
    expect(ptax[0]).toEqual({ date: "1994-07-01", bid: "0.9000" });
    expect(ptax.at(-1)).toEqual({ date: "2024-03-22", bid: "4.9891" });
    await using api = startFakeAwesomeApi(dailySeries({ "USD-BRL": ptax }));
    const { options } = fakeOptions(api.url);
    const range = { from: "1998-06-15", to: "2024-03-22" };
    const chunks = await collect(dailyChunks("USD-BRL", range, options));
    // One request per chunk, plus one (answered empty) for each chunk that begins on a weekday
    // holiday: a weekend before the first answer's oldest day is not asked for.
    const chunkCount = planChunks(range.from, range.to).length;
    expect(api.count()).toBeGreaterThanOrEqual(chunkCount);
    expect(api.count()).toBeLessThanOrEqual(chunkCount + 6);
    expect(chunks.map((c) => [c.from, c.to])).toEqual(planChunks(range.from, range.to).map((c) => [c.from, c.to]));
    const quotes = chunks.flatMap((c) => c.quotes);
    const expected = ptax.filter((p) => p.date >= range.from && p.date <= range.to);
    expect(expected.length).toBeGreaterThan(6_000);
    expect(quotes.map((q) => [saoPauloDay(q.ts), q.bid, q.ask])).toEqual(expected.map((p) => [p.date, p.bid, p.bid]));
    // Old records carry millisecond timestamps, new ones seconds; both land at 17:00 in São Paulo.
    expect(quotes.every((q) => q.ts.getUTCHours() === 20)).toBe(true);
  });

  test("an answer that fills N is followed by a request for the older part it left out, ending complete", async () => {
    const busy: DailyPoint[] = weekdaysBetween("2023-01-01", "2023-12-31").flatMap((date, i) => [
      { date, bid: `4.${1000 + i}1`, time: "10:00" },
      { date, bid: `4.${1000 + i}2`, time: "13:00" },
      { date, bid: `4.${1000 + i}3`, time: "17:30" },
    ]);
    await using api = startFakeAwesomeApi(dailySeries({ "EUR-BRL": busy }));
    const range = { from: "2023-01-01", to: "2023-06-29" };
    expect(countWeekdays(range) * 3).toBeGreaterThan(DAILY_MAX_RECORDS);
    const quotes = await fetchDaily("EUR-BRL", range, fakeOptions(api.url).options);
    // 360 records (120 days of 3) reach back to 2023-01-13; then the days before it, which the
    // second answer covers from Monday 2023-01-02: Sunday 2023-01-01 alone is not asked for.
    expect(api.requests.map((r) => [r.url.searchParams.get("start_date"), r.url.searchParams.get("end_date")])).toEqual([
      ["20230101", "20230629"],
      ["20230101", "20230112"],
    ]);
    const weekdays = weekdaysBetween(range.from, range.to);
    expect(quotes.map((q) => saoPauloDay(q.ts))).toEqual(weekdays);
    expect(quotes.every((q) => q.bid.endsWith("3"))).toBe(true);
  });

  test("a day with more records than one answer holds yields its latest", async () => {
    const crowded: DailyPoint[] = Array.from({ length: 400 }, (_, i) => ({
      date: "2024-05-02",
      bid: `5.${1000 + i}`,
      time: `${String(8 + Math.floor(i / 60)).padStart(2, "0")}:${String(i % 60).padStart(2, "0")}`,
    }));
    await using api = startFakeAwesomeApi(dailySeries({ "USD-BRL": crowded }));
    const quotes = await fetchDaily("USD-BRL", { from: "2024-05-02", to: "2024-05-02" }, fakeOptions(api.url).options);
    expect(quotes.map((q) => [saoPauloDay(q.ts), q.bid])).toEqual([["2024-05-02", "5.1399"]]);
    expect(api.count()).toBe(1);
  });

  test("an API that answers at most 100 records still yields every day of a 2-year backfill", async () => {
    // Sundays too, as the API sends some: every calendar day has a quote.
    const days: DailyPoint[] = [];
    for (let day = "2022-08-01"; day <= "2024-07-31"; day = addDays(day, 1)) days.push({ date: day, bid: `5.${String(days.length).padStart(4, "0")}` });
    await using api = startFakeAwesomeApi(dailySeries({ "USD-BRL": days }, { maxRecords: 100 }));
    const range = { from: "2022-08-01", to: "2024-07-31" };
    const chunks = await collect(dailyChunks("USD-BRL", range, fakeOptions(api.url).options));
    expect(chunks.map((c) => [c.from, c.to])).toEqual(planChunks(range.from, range.to).map((c) => [c.from, c.to]));
    const quotes = chunks.flatMap((c) => c.quotes);
    expect(quotes.map((q) => [saoPauloDay(q.ts), q.bid])).toEqual(days.map((p) => [p.date, p.bid]));
    // 731 days, 100 per answer: 3 + 3 + 2 requests for the chunks of 300, 300 and 131 days.
    expect(api.count()).toBe(8);
  });

  test("the older part is asked for until the API answers it with nothing: the pair's history begins", async () => {
    const late = weekdaysBetween("2024-03-04", "2024-08-23").map((date) => ({ date, bid: "5.1" }));
    await using api = startFakeAwesomeApi(dailySeries({ "USD-BRL": late }, { maxRecords: 50 }));
    const quotes = await fetchDaily("USD-BRL", { from: "2024-01-01", to: "2024-08-23" }, fakeOptions(api.url).options);
    expect(quotes.map((q) => saoPauloDay(q.ts))).toEqual(weekdaysBetween("2024-03-04", "2024-08-23"));
    const requests = api.requests.map((r) => [r.url.searchParams.get("start_date"), r.url.searchParams.get("end_date")]);
    // 125 weekdays in answers of 50, then the empty answer for 2024-01-01..2024-03-03.
    expect(requests).toHaveLength(4);
    expect(requests.at(-1)).toEqual(["20240101", "20240303"]);
    expect(requests.every(([from]) => from === "20240101")).toBe(true);
  });

  test("a chunk that starts on a weekend takes one request when the answer reaches its first weekday", async () => {
    await using api = startFakeAwesomeApi(dailySeries({ "USD-BRL": series }, { maxRecords: 100 }));
    const quotes = await fetchDaily("USD-BRL", { from: "2024-08-03", to: "2024-08-23" }, fakeOptions(api.url).options);
    expect(quotes.map((q) => saoPauloDay(q.ts))).toEqual(weekdaysBetween("2024-08-05", "2024-08-23"));
    expect(api.count()).toBe(1);
  });

  test("an API that answers a record or two at a time fails as TRUNCATED after a bounded number of requests", async () => {
    const days = weekdaysBetween("2024-01-01", "2024-08-23").map((date) => ({ date, bid: "5.1" }));
    await using api = startFakeAwesomeApi(dailySeries({ "USD-BRL": days }, { maxRecords: 2 }));
    const error = await failure(fetchDaily("USD-BRL", { from: "2024-01-01", to: "2024-08-23" }, fakeOptions(api.url).options), "TRUNCATED");
    expect(api.count()).toBe(DAILY_MAX_REQUESTS_PER_CHUNK);
    expect(error.message).toStartWith(
      `Cannot fetch the USD-BRL history from 2024-01-01 to 2024-08-23: after ${DAILY_MAX_REQUESTS_PER_CHUNK} requests the API's answers reach back only to `,
    );
    expect(error.message).toContain("so the days from 2024-01-01 to ");
  });

  test("an empty array for a chunk with business days fails naming pair and dates", async () => {
    await using api = startFakeAwesomeApi(json([]));
    const { options } = fakeOptions(api.url);
    const error = await failure(fetchDaily("USD-BRL", { from: "2024-01-01", to: "2024-01-31" }, options), "NO_DATA");
    expect(error.message).toContain("USD-BRL");
    expect(error.message).toContain("from 2024-01-01 to 2024-01-31");
    expect(error.attempts).toBe(1);
  });

  test("a range that starts before the API's first day starts at that day, and one warning says so", async () => {
    // The fake answers an empty list before 2024-01-01, as AwesomeAPI does before its data begins.
    await using api = startFakeAwesomeApi(dailySeries({ "USD-BRL": series }));
    const range = { from: "2022-06-01", to: "2024-08-23" };
    const chunks = await collect(dailyChunks("USD-BRL", range, { ...fakeOptions(api.url).options, concurrency: 4 }));
    expect(chunks.flatMap((c) => c.quotes).map((q) => saoPauloDay(q.ts))).toEqual(weekdaysBetween("2024-01-01", "2024-08-23"));
    expect(chunks.flatMap((c) => c.warnings)).toEqual([
      "USD-BRL: the API has no quotes from 2022-06-01 to 2023-12-31; its history starts on 2024-01-01, so this one does too",
    ]);
    // Nothing at all, over several chunks, is still an error naming the whole range.
    await using empty = startFakeAwesomeApi(json([]));
    const error = await failure(fetchDaily("USD-BRL", range, fakeOptions(empty.url).options), "NO_DATA");
    expect(error.message).toContain("the API sent no quotes from 2022-06-01 to 2024-08-23");
  });

  test("an empty answer for a holiday-only stretch of 1-2 weekdays is accepted", async () => {
    await using api = startFakeAwesomeApi(json([]));
    const chunks = await collect(dailyChunks("USD-BRL", { from: "2023-12-25", to: "2023-12-26" }, fakeOptions(api.url).options));
    expect(chunks).toEqual([{ pair: "USD-BRL", from: "2023-12-25", to: "2023-12-26", quotes: [], conflicts: 0, warnings: [] }]);
  });

  test("records outside the requested range are dropped and days normalised", async () => {
    // The real fixture, whatever the range asked: the client must filter it.
    await using api = startFakeAwesomeApi(replay(DAILY));
    const quotes = await fetchDaily("USD-BRL", { from: "2024-08-12", to: "2024-08-16" }, fakeOptions(api.url).options);
    expect(quotes.map((q) => [saoPauloDay(q.ts), q.bid])).toEqual([
      ["2024-08-12", "5.4929"],
      ["2024-08-13", "5.4558"],
      ["2024-08-14", "5.4695"],
      ["2024-08-15", "5.4837"],
      ["2024-08-16", "5.4753"],
    ]);
  });

  test("a range running past today stops at today", async () => {
    await using api = startFakeAwesomeApi(dailySeries({ "USD-BRL": series }));
    await fetchDaily("USD-BRL", { from: "2024-08-01", to: "2024-12-31" }, fakeOptions(api.url).options);
    expect(api.requests.map((r) => r.url.searchParams.get("end_date"))).toEqual(["20241025"]);
    const error = await failure(fetchDaily("USD-BRL", { from: "2025-01-01", to: "2025-02-01" }, fakeOptions(api.url).options), "USAGE");
    expect(error.message).toContain("after today");
  });

  test("an unknown pair fails as UNKNOWN_PAIR naming it, and bad input fails before any request", async () => {
    await using api = startFakeAwesomeApi(dailySeries({ "USD-BRL": series }));
    const { options } = fakeOptions(api.url);
    const error = await failure(fetchDaily("XYZ-BRL", { from: "2024-08-01", to: "2024-08-16" }, options), "UNKNOWN_PAIR");
    expect(error.message).toContain('unknown pair "XYZ-BRL"');
    expect(api.count()).toBe(1);
    expect(await fetchDaily("usd/brl", { from: "2024-08-01", to: "2024-08-16" }, options).catch((error: unknown) => error)).toMatchObject({ code: "USAGE", exitCode: 2 });
    await failure(fetchDaily("USD-BRL", { from: "2024-08-16", to: "2024-08-01" }, options), "USAGE");
    expect(api.count()).toBe(1);
  });

  test("a failure in a later chunk comes after the earlier chunks were yielded", async () => {
    // From a Monday, with quotes all through: the first chunk takes one request.
    const longer = weekdaysBetween("2023-01-02", "2024-08-23").map((date) => ({ date, bid: "5.1" }));
    await using api = startFakeAwesomeApi(sequence(dailySeries({ "USD-BRL": longer }), status(500)));
    const seen: string[] = [];
    const run = (async () => {
      for await (const chunk of dailyChunks("USD-BRL", { from: "2023-10-02", to: "2024-08-01" }, fakeOptions(api.url, { retries: 1 }).options)) {
        seen.push(`${chunk.from}..${chunk.to}`);
      }
    })();
    const error = await failure(run, "HTTP");
    const [first] = planChunks("2023-10-02", "2024-08-01");
    expect(seen).toEqual([`${first?.from}..${first?.to}`]);
    expect(error.attempts).toBe(2);
  });
});

// ---------------------------------------------------------------------------------------------

describe("the CLI", () => {
  const run = async (args: string[], env: Record<string, string> = {}) => {
    const child = Bun.spawn([process.execPath, join(import.meta.dir, "../ingest.ts"), ...args], {
      env: { PATH: process.env["PATH"] ?? "", ...env },
      stdout: "pipe",
      stderr: "pipe",
    });
    const [stdout, stderr, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
    return { stdout, stderr, code };
  };

  test("--help explains the options and exits 0", async () => {
    const { stdout, code } = await run(["--help"]);
    expect(code).toBe(0);
    for (const word of ["--pairs", "--daily", "--from", "AWESOMEAPI_TOKEN"]) expect(stdout).toContain(word);
  });

  test("bad usage exits 2 with one line on stderr", async () => {
    for (const args of [["--pairs", "usd/brl"], ["--daily"], ["--from", "2024-01-01"], ["--bogus"]]) {
      const { stderr, code, stdout } = await run(args);
      expect(code).toBe(2);
      expect(stdout).toBe("");
      expect(stderr.trim().split("\n")).toHaveLength(1);
    }
  });

  test("prints validated quotes as JSON lines", async () => {
    await using api = startFakeAwesomeApi(replay(TWO_PAIRS));
    const { stdout, code } = await run(["--pairs", "USD-BRL,EUR-BRL"], { AWESOMEAPI_URL: api.url });
    expect(code).toBe(0);
    const lines = stdout.trim().split("\n").map((line) => JSON.parse(line));
    expect(lines.map((l) => [l.pair, l.bid, l.ts])).toEqual([
      ["USD-BRL", "5.2279", "2020-06-02T14:55:52.000Z"],
      ["EUR-BRL", "5.8462", "2020-06-02T14:55:53.000Z"],
    ]);
  });

  test("prints a daily range as JSON lines", async () => {
    await using api = startFakeAwesomeApi(dailySeries({ "USD-BRL": loadPtaxSeries() }));
    const { stdout, code } = await run(["--daily", "--from", "2024-03-18", "--to", "2024-03-22"], { AWESOMEAPI_URL: api.url });
    expect(code).toBe(0);
    expect(stdout.trim().split("\n").map((line) => JSON.parse(line).bid)).toEqual(["5.0118", "5.0346", "5.0114", "4.9801", "4.9891"]);
  });

  test("prints a daily conflict as a warning on stderr, the kept quote on stdout", async () => {
    const body = fixtureJson(DAILY) as Record<string, unknown>[];
    body.splice(1, 0, { ...body[0], code: undefined, codein: undefined, bid: "5.51" });
    await using api = startFakeAwesomeApi(json(body));
    const { stdout, stderr, code } = await run(["--daily", "--from", "2024-08-19", "--to", "2024-08-23"], { AWESOMEAPI_URL: api.url });
    expect(code).toBe(0);
    expect(stderr).toBe(
      "warning: USD-BRL 2024-08-23: 2 records share timestamp 2024-08-23 17:39:40 UTC with different bids; kept the first (5.5037), dropped 5.51\n",
    );
    expect(stdout.trim().split("\n").map((line) => JSON.parse(line).bid)).toEqual(["5.4068", "5.4785", "5.4831", "5.5911", "5.5037"]);
  });

  test("a failure exits 1 with one line on stderr that hides the token", async () => {
    await using api = startFakeAwesomeApi(html(403));
    const { stderr, code } = await run([], { AWESOMEAPI_URL: api.url, AWESOMEAPI_TOKEN: TOKEN });
    expect(code).toBe(1);
    expect(stderr.trim().split("\n")).toHaveLength(1);
    expect(stderr).toContain("HTML");
    expect(stderr).not.toContain(TOKEN);
  });

  test("a failure against a base URL with a user and password prints neither", async () => {
    await using api = startFakeAwesomeApi(status(400));
    const url = api.url.replace("http://", `http://user:${encodeURIComponent("p@ss/#x")}@`);
    const { stderr, code } = await run([], { AWESOMEAPI_URL: url, AWESOMEAPI_TIMEOUT_MS: "1000" });
    expect(code).toBe(1);
    expect(stderr).toContain("http://***@127.0.0.1:");
    for (const secret of ["user", "p%40ss", "p@ss"]) expect(stderr).not.toContain(secret);
  });

  test("a bad configuration exits 2 naming the variable", async () => {
    const { stderr, code } = await run([], { AWESOMEAPI_TIMEOUT_MS: "soon" });
    expect(code).toBe(2);
    expect(stderr).toContain("AWESOMEAPI_TIMEOUT_MS");
  });
});

describe("parseDaily()'s fast path", () => {
  const CANDIDATES: unknown[] = ["5.1", "0.0001", "-5.1", "0", "0.0", "", "1e5", "5.", ".5", " 5.1", "5,1", 5.1, null, undefined, {}];
  const BASE = { high: "5.6", low: "5.4", varBid: "-0.01", pctChange: "-0.2", bid: "5.5", ask: "5.51", timestamp: "1724434780" };

  test("accepts exactly what AwesomeQuoteSchema accepts, with the same values, then refuses what is out of time or another pair", () => {
    const fetchedAt = new Date("2024-08-23T18:00:00Z");
    const fields = [...Object.keys(BASE), "code", "codein", "name"];
    for (const field of fields) {
      for (const value of [...CANDIDATES, "1724434780", "1724434780000", "99999999999", "Dólar", "USD", "usd", "BRL"]) {
        const record = { ...BASE, [field]: value };
        if (value === undefined) delete (record as Record<string, unknown>)[field];
        const schema = v.safeParse(AwesomeQuoteSchema, record);
        const expected = ({ code: "USD", codein: "BRL" } as Record<string, string>)[field];
        const otherPair = expected !== undefined && typeof value === "string" && value.toUpperCase() !== expected;
        const outOfTime = schema.success && schema.output.timestamp.getTime() > fetchedAt.getTime() + 600_000;
        if (schema.success && (otherPair || outOfTime)) {
          const error = thrown(() => parseDaily([record], "USD-BRL", fetchedAt), "INVALID_PAYLOAD");
          expect(error.message).toContain(`USD-BRL record 0 ${field} is ${JSON.stringify(value)}`);
        } else if (schema.success) {
          const [quote] = parseDaily([record], "USD-BRL", fetchedAt);
          expect(quote?.ts).toEqual(schema.output.timestamp);
          expect([quote?.bid, quote?.ask, quote?.high, quote?.low, quote?.varBid, quote?.pctChange]).toEqual([
            schema.output.bid,
            schema.output.ask,
            schema.output.high ?? null,
            schema.output.low ?? null,
            schema.output.varBid ?? null,
            schema.output.pctChange ?? null,
          ]);
        } else {
          expect(() => parseDaily([record], "USD-BRL", fetchedAt)).toThrow(IngestError);
        }
      }
    }
  });
});
