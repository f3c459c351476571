import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { formatSaoPauloTime } from "../lib/calendar.ts";
import { parseDuration } from "../lib/cli.ts";
import type { Sql } from "../lib/pool.ts";
import { CotacaoError } from "../lib/errors.ts";
import type { OfficialRate } from "../lib/official.ts";
import { SOURCE_DAILY, type StoredQuote as Quote } from "../lib/quote.ts";
import { divergenceSeries, loadDailySeries } from "../lib/views.ts";
import { saveOfficialRates, saveQuotes } from "../database.ts";
import {
  type AnalysisConfig,
  type DailySeries,
  divergenceParamsFor,
  evaluateSeries,
  loadAnalysisConfig,
  paramsFor,
  type RuleParams,
} from "../lib/rule.ts";
import { deliverPending, webhookBackoffMs } from "../lib/webhooks.ts";
import { analyse, describeTransition, findEpisodes, rescan, rescanDivergence, webhookPayload } from "../analysis.ts";
import { runScript } from "./support/cli.ts";
import { useTestDatabase } from "./support/database.ts";
import { loadPtaxSeries, pointTime } from "./support/fake_awesomeapi.ts";
import { useTestTimeout } from "./support/timeout.ts";

useTestTimeout();

const PARAMS: RuleParams = { windowDays: 20, minPoints: 10, threshold: 0.03, recovery: 0.024 };
const MS_PER_DAY = 86_400_000;
const dayNumber = (date: string) => Date.parse(`${date}T00:00:00Z`) / MS_PER_DAY;
const dateOf = (day: number) => new Date(day * MS_PER_DAY).toISOString().slice(0, 10);

function series(points: [string, number][]): DailySeries {
  return { days: Int32Array.from(points.map(([date]) => dayNumber(date))), closes: Float64Array.from(points.map(([, close]) => close)) };
}

/** `count` consecutive calendar days from `first`, each with `close`. */
function flat(first: string, count: number, close: number): [string, number][] {
  return Array.from({ length: count }, (_, i) => [dateOf(dayNumber(first) + i), close]);
}

/** The definition read plainly, O(n * W): for every day, the mean of the closes in [d - W, d). */
function referenceFlags(input: DailySeries, params: RuleParams): boolean[] {
  const flags: boolean[] = [];
  for (let i = 0; i < input.days.length; i++) {
    const day = input.days[i]!;
    let sum = 0;
    let count = 0;
    for (let j = 0; j < input.days.length; j++) {
      if (input.days[j]! >= day - params.windowDays && input.days[j]! < day) {
        sum += input.closes[j]!;
        count++;
      }
    }
    flags.push(count >= params.minPoints && Math.abs(input.closes[i]! / (sum / count) - 1) > params.threshold);
  }
  return flags;
}

function quote(pair: string, at: Date, bid: string): Quote {
  return { pair, ts: at, bid, ask: bid, high: null, low: null, varBid: null, pctChange: null, source: "test", fetchedAt: at };
}

/** A São Paulo wall-clock time as an instant (São Paulo has been UTC-3 all year since 2019). */
const sp = (local: string) => new Date(`${local}-03:00`);

const PTAX = loadPtaxSeries().filter((point) => point.date >= "1999-01-01");
const PTAX_SERIES = series(PTAX.map((point) => [point.date, Number(point.bid)]));

describe("configuration", () => {
  test("parseDuration() reads ms, s, m, h, d and plain seconds", () => {
    expect([parseDuration("250ms"), parseDuration("30s"), parseDuration("5m"), parseDuration("2h"), parseDuration("1d"), parseDuration("45")]).toEqual([
      250, 30_000, 300_000, 7_200_000, 86_400_000, 45_000,
    ]);
    expect(parseDuration("soon")).toBeUndefined();
  });

  test("defaults: 20 days, 10 points, 3 %, resolved under 80 % of it, stale after 2 h", () => {
    const config = loadAnalysisConfig({});
    expect(config.defaults.windowDays).toBe(20);
    expect(config.defaults.minPoints).toBe(10);
    expect(config.defaults.threshold).toBeCloseTo(0.03, 12);
    expect(config.defaults.recovery).toBeCloseTo(0.024, 12);
    expect(config.staleAfterMs).toBe(7_200_000);
    expect(config.webhookUrls).toEqual([]);
  });

  test("window and threshold can be set per pair", () => {
    const config = loadAnalysisConfig({
      COTACAO_MA_WINDOW_DAYS: "30,BTC-BRL:10",
      COTACAO_ALERT_THRESHOLD_PCT: "2.5, BTC-BRL:8",
      COTACAO_STALE_AFTER: "90m",
    });
    expect(paramsFor(config, "USD-BRL")).toMatchObject({ windowDays: 30, threshold: 0.025 });
    expect(paramsFor(config, "BTC-BRL")).toMatchObject({ windowDays: 10, threshold: 0.08 });
    expect(paramsFor(config, "BTC-BRL").recovery).toBeCloseTo(0.064, 12);
    // A pair named in any case is the same pair, as everywhere else.
    expect(paramsFor(loadAnalysisConfig({ COTACAO_ALERT_THRESHOLD_PCT: "3,btc-brl:8" }), "BTC-BRL").threshold).toBe(0.08);
    expect(config.staleAfterMs).toBe(5_400_000);
  });

  test("a bad value stops with one line naming the variable; a webhook URL is never printed", () => {
    const cases: [Record<string, string>, RegExp][] = [
      [{ COTACAO_MA_WINDOW_DAYS: "twenty" }, /COTACAO_MA_WINDOW_DAYS must be a whole number of days/],
      [{ COTACAO_ALERT_THRESHOLD_PCT: "3,usd:2" }, /COTACAO_ALERT_THRESHOLD_PCT names "usd"/],
      [{ COTACAO_ALERT_THRESHOLD_PCT: "150" }, /COTACAO_ALERT_THRESHOLD_PCT must be a percentage/],
      [{ COTACAO_STALE_AFTER: "later" }, /COTACAO_STALE_AFTER must be a duration/],
      // Settings that pass a loose reading but make no sense are refused at start, with an
      // example that is not the bad value.
      [{ COTACAO_MA_WINDOW_DAYS: "1e3" }, /COTACAO_MA_WINDOW_DAYS must be a whole number of days from 1 to 3650, .* like "20,BTC-BRL:10"; got "1e3"/],
      [{ COTACAO_MA_WINDOW_DAYS: "0x10" }, /COTACAO_MA_WINDOW_DAYS .* got "0x10"/],
      [{ COTACAO_MA_WINDOW_DAYS: "99999999999999999999" }, /COTACAO_MA_WINDOW_DAYS .* got "99999999999999999999"/],
      [{ COTACAO_MA_MIN_POINTS: "Infinity" }, /COTACAO_MA_MIN_POINTS .* got "Infinity"/],
      [{ COTACAO_ALERT_THRESHOLD_PCT: "abc" }, /like "3,BTC-BRL:8"; got "abc"$/],
      [{ COTACAO_STALE_AFTER: "400d" }, /COTACAO_STALE_AFTER must be a duration from 1m to 30d/],
      [{ COTACAO_STALE_AFTER: "1ms" }, /COTACAO_STALE_AFTER must be a duration from 1m to 30d/],
      [{ ALERT_WEBHOOK_URLS: "https://hooks.example/ok,ftp://secret-token@x" }, /ALERT_WEBHOOK_URLS .* URL number 2 is not one/],
    ];
    for (const [env, message] of cases) {
      let error: unknown;
      try {
        loadAnalysisConfig(env);
      } catch (caught) {
        error = caught;
      }
      expect(error).toBeInstanceOf(CotacaoError);
      expect((error as CotacaoError).code).toBe("CONFIG");
      expect((error as Error).message).toMatch(message);
      expect((error as Error).message).not.toContain("secret-token");
    }
  });
});

describe("evaluateSeries(): the rule", () => {
  test("on PTAX since 1999 flags exactly the days a plain O(n*W) reading of the definition flags", () => {
    const fast = evaluateSeries(PTAX_SERIES, PARAMS);
    const reference = referenceFlags(PTAX_SERIES, PARAMS);
    const flagged = (flags: ArrayLike<number | boolean>) => PTAX.filter((_, i) => Boolean(flags[i])).map((point) => point.date);
    expect(flagged(fast.anomalous)).toEqual(flagged(reference));
    expect(flagged(reference).length).toBeGreaterThan(50);
    // The averages agree too, to rounding.
    const i = PTAX.findIndex((point) => point.date === "2008-10-22");
    const window = PTAX.filter((point) => point.date >= dateOf(dayNumber("2008-10-22") - 20) && point.date < "2008-10-22");
    expect(fast.average[i]).toBeCloseTo(window.reduce((sum, point) => sum + Number(point.bid), 0) / window.length, 10);
  });

  test("a deviation exactly at the threshold is not anomalous; a hair beyond it is", () => {
    const base = flat("2024-01-01", 20, 100);
    const at = evaluateSeries(series([...base, ["2024-01-21", 103]]), PARAMS);
    expect(at.deviation[20]).toBeCloseTo(0.03, 12);
    expect(at.anomalous[20]).toBe(0);
    expect(evaluateSeries(series([...base, ["2024-01-21", 97]]), PARAMS).anomalous[20]).toBe(0);
    expect(evaluateSeries(series([...base, ["2024-01-21", 103.0001]]), PARAMS).anomalous[20]).toBe(1);
    expect(evaluateSeries(series([...base, ["2024-01-21", 96.9999]]), PARAMS).anomalous[20]).toBe(1);
  });

  test("fewer than the minimum points in the window is insufficient history, never an alert", () => {
    const one = evaluateSeries(series([["2024-01-01", 5]]), PARAMS);
    expect(Number.isNaN(one.average[0])).toBe(true);
    expect(one.anomalous[0]).toBe(0);
    const nine = evaluateSeries(series([...flat("2024-01-01", 9, 100), ["2024-01-10", 200]]), PARAMS);
    expect(Number.isNaN(nine.deviation[9])).toBe(true);
    expect(nine.anomalous[9]).toBe(0);
  });

  test("a gap longer than the window empties it: history starts again after the gap", () => {
    const input = series([...flat("2024-01-01", 15, 100), ["2024-03-01", 150], ...flat("2024-03-02", 10, 150), ["2024-03-12", 150]]);
    const result = evaluateSeries(input, PARAMS);
    expect(Number.isNaN(result.deviation[15])).toBe(true); // 2024-03-01: nothing in [Feb 10, Mar 1)
    expect(result.anomalous.some(Boolean)).toBe(false);
    expect(result.deviation[26]).toBe(0); // 2024-03-12: ten closes of 150 before it
  });

  test("a flat series never strays", () => {
    const result = evaluateSeries(series(flat("2020-01-01", 400, 5.1234)), PARAMS);
    expect(result.anomalous.some(Boolean)).toBe(false);
    expect(Math.max(...Array.from(result.deviation).filter((d) => !Number.isNaN(d)).map(Math.abs))).toBeLessThan(1e-12);
  });

  test("the window is calendar days: weekend days count when they have quotes", () => {
    // 2024-06-01 is a Saturday. With it, 2024-06-21's window [Jun 1, Jun 21) holds 20 closes; without, 19.
    const days = flat("2024-06-01", 20, 100);
    const withWeekend = evaluateSeries(series([...days, ["2024-06-21", 100]]), PARAMS);
    const withoutFirst = evaluateSeries(series([...days.slice(1), ["2024-06-21", 100]]), PARAMS);
    expect(withWeekend.deviation[20]).toBe(0);
    expect(withoutFirst.deviation[19]).toBe(0);
  });
});

describe("findEpisodes(): alert lifecycle over a series", () => {
  const points = (closes: number[]) => {
    const input = series(closes.map((close, i) => [dateOf(dayNumber("2024-01-01") + i), close]));
    const result = evaluateSeries(input, PARAMS);
    return closes.map((close, i) => ({
      at: new Date((dayNumber("2024-01-01") + i) * MS_PER_DAY + 20 * 3_600_000),
      price: String(close),
      average: result.average[i]!,
      deviation: result.deviation[i]!,
      anomalous: result.anomalous[i] === 1,
    }));
  };

  test("opens once, records its peak, stays open above the recovery level, resolves under it", () => {
    // Thirty days at 100, then 104 (+4 %: opens), 103 (+2.79 %: under the threshold, above
    // 2.4 %: stays open), 102 (+1.64 %: resolves).
    const episodes = findEpisodes(points([...Array(30).fill(100), 104, 103, 102, 100]), PARAMS);
    expect(episodes).toHaveLength(1);
    const [episode] = episodes;
    expect(episode?.direction).toBe("up");
    expect(episode?.peakDeviation).toBeCloseTo(0.04, 12);
    expect(episode?.startedAt.toISOString().slice(0, 10)).toBe("2024-01-31");
    expect(episode?.lastSeenAt.toISOString().slice(0, 10)).toBe("2024-02-01");
    expect(episode?.resolvedAt?.toISOString().slice(0, 10)).toBe("2024-02-02");
  });

  test("a price hovering at the line does not flap", () => {
    // Closes alternately 3.1 % and 2.5 % above the average of the 20 days before them: over the
    // threshold, then under it but above the recovery level, six times.
    const closes: number[] = Array(30).fill(100);
    for (let k = 0; k < 6; k++) {
      const window = closes.slice(-20);
      const average = window.reduce((sum, close) => sum + close, 0) / window.length;
      closes.push(Number((average * (k % 2 === 0 ? 1.031 : 1.025)).toFixed(4)));
    }
    const hovering = points(closes);
    expect(hovering.slice(30).map((point) => point.anomalous)).toEqual([true, false, true, false, true, false]);
    const episodes = findEpisodes(hovering, PARAMS);
    expect(episodes).toHaveLength(1);
    expect(episodes[0]?.resolvedAt).toBeNull();
  });

  test("a jump to the other side resolves the episode and opens another", () => {
    const episodes = findEpisodes(points([...Array(30).fill(100), 105, 95]), PARAMS);
    expect(episodes.map((episode) => [episode.direction, episode.resolvedAt === null])).toEqual([
      ["up", false],
      ["down", true],
    ]);
  });
});

describe("the README's worked example", () => {
  test("holds, number for number", () => {
    const before = flat("2024-07-16", 20, 5.0);
    expect(evaluateSeries(series([...before, ["2024-08-05", 5.15]]), PARAMS).anomalous[20]).toBe(0);
    const episode = (next: number) => {
      const input = series([...before, ["2024-08-05", 5.2], ["2024-08-06", next]]);
      const result = evaluateSeries(input, PARAMS);
      expect(result.average[21]).toBeCloseTo(5.01, 12);
      const points = Array.from(input.days, (day, i) => ({
        at: new Date(day * MS_PER_DAY),
        price: String(input.closes[i]),
        average: result.average[i]!,
        deviation: result.deviation[i]!,
        anomalous: result.anomalous[i] === 1,
      }));
      return findEpisodes(points, PARAMS);
    };
    expect(episode(5.14).map((e) => [e.deviation.toFixed(4), e.resolvedAt])).toEqual([["0.0400", null]]);
    expect(episode(5.1)[0]?.resolvedAt?.toISOString().slice(0, 10)).toBe("2024-08-06");
  });
});

describe("the daily series and rescans in PostgreSQL", () => {
  const db = useTestDatabase();
  beforeAll(async () => {
    await saveQuotes(db.sql, PTAX.map((point) => quote("USD-BRL", pointTime(point), point.bid)));
  });

  test("the series from SQL is PTAX, day for day, exact", async () => {
    const stored = await loadDailySeries(db.sql, "USD-BRL");
    expect(stored.dates).toEqual(PTAX.map((point) => point.date));
    expect(stored.closeTexts).toEqual(PTAX.map((point) => point.bid));
  });

  test("from a date on, the series is the same days, and no more", async () => {
    const stored = await loadDailySeries(db.sql, "USD-BRL", { since: "2020-03-02" });
    expect(stored.dates).toEqual(PTAX.filter((point) => point.date >= "2020-03-02").map((point) => point.date));
  });

  test("a day's close is its latest quote, and a late-evening quote belongs to São Paulo's day", async () => {
    await saveQuotes(db.sql, [
      quote("EUR-BRL", sp("2024-07-05T10:00:00"), "6.01"),
      quote("EUR-BRL", sp("2024-07-05T16:59:00"), "6.03"),
      quote("EUR-BRL", sp("2024-07-05T12:00:00"), "6.02"),
      // 23:30 in São Paulo is already Saturday in UTC: still Friday's close.
      quote("EUR-BRL", sp("2024-07-05T23:30:00"), "6.04"),
      quote("EUR-BRL", sp("2024-07-06T11:00:00"), "6.05"),
    ]);
    const stored = await loadDailySeries(db.sql, "EUR-BRL");
    expect(stored.dates).toEqual(["2024-07-05", "2024-07-06"]);
    expect(stored.closeTexts).toEqual(["6.04", "6.05"]);
  });

  test("--rescan finds the October 2008 and March 2020 stress, the same every time", async () => {
    const first = await rescan(db.sql, "USD-BRL", PARAMS);
    const spans = first.map((episode) => [episode.startedAt.toISOString().slice(0, 10), episode.resolvedAt?.toISOString().slice(0, 10) ?? "open"]);
    const covers = (month: string) => spans.some(([start, end]) => start! <= `${month}-31` && end! >= `${month}-01`);
    expect(covers("2008-10")).toBe(true);
    expect(covers("2020-03")).toBe(true);
    const rows = await db.sql`select id, fingerprint, status, peak_deviation from alerts where kind = 'deviation' order by id`;
    const again = await rescan(db.sql, "USD-BRL", PARAMS);
    expect(again).toEqual(first);
    expect(await db.sql`select id, fingerprint, status, peak_deviation from alerts where kind = 'deviation' order by id`).toEqual(rows);
    expect(rows.length).toBe(first.length);
  });
});

describe("analyse(): alerts through their life, with a clock and a webhook receiver", () => {
  const db = useTestDatabase();
  const received: Record<string, unknown>[] = [];
  let receiverStatus = 200;
  const receiver = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    async fetch(request) {
      if (receiverStatus !== 200) return new Response("down", { status: receiverStatus });
      received.push((await request.json()) as Record<string, unknown>);
      return new Response("ok");
    },
  });
  afterAll(() => receiver.stop(true));
  afterEach(() => {
    receiverStatus = 200; // a failed test must not take the receiver down for the next ones
  });
  const config: AnalysisConfig = { ...loadAnalysisConfig({}), webhookUrls: [`http://127.0.0.1:${receiver.port}/hook/secret-part`] };
  // Retries wait the whole backoff, not a jittered share of it: the test's clock knows when they are due.
  const noWait = { config, random: () => 1 };
  const PAIR = "GBP-BRL";
  // Thirty weekdays' worth of calendar days at 7.00, closing at 17:00 São Paulo time.
  const day = (i: number) => dateOf(dayNumber("2024-06-01") + i);
  const close = (i: number, bid: string) => quote(PAIR, sp(`${day(i)}T17:00:00`), bid);
  const alerts = (sql: Sql) => sql`select kind, direction, status, peak_deviation, resolved_at from alerts where pair = ${PAIR} order by id`;

  test("opens once with a webhook, updates without one, resolves with one, and a re-run changes nothing", async () => {
    await saveQuotes(db.sql, Array.from({ length: 30 }, (_, i) => close(i, "7.00")));
    const now = (i: number) => () => sp(`${day(i)}T17:30:00`);
    expect((await analyse(db.sql, [PAIR], { ...noWait, now: now(29) })).transitions).toEqual([]);

    await saveQuotes(db.sql, [close(30, "7.28")]); // +4 %
    const fired = await analyse(db.sql, [PAIR], { ...noWait, now: now(30) });
    expect(fired.transitions.map((change) => change.transition)).toEqual(["firing"]);
    expect(fired.delivery.delivered).toBe(1);
    expect(received).toHaveLength(1);
    expect(received[0]).toMatchObject({ status: "firing", pair: PAIR, kind: "deviation", direction: "up", price: "7.28" });
    expect(received[0]?.["text"]).toBe(`FIRING ${PAIR} 7.28 is 4.00% above its 20-day average 7.0000 (threshold 3.00%; quote of ${day(30)} 17:00 -03)`);
    expect(received[0]?.["startedAt"]).toBe(sp(`${day(30)}T17:00:00`).toISOString()); // machine fields stay ISO 8601 UTC
    expect(received[0]?.["content"]).toBe(received[0]?.["text"]);

    const before = await alerts(db.sql);
    const rerun = await analyse(db.sql, [PAIR], { ...noWait, now: now(30) });
    expect(rerun.transitions).toEqual([]);
    expect(await alerts(db.sql)).toEqual(before);
    expect(received).toHaveLength(1);

    await saveQuotes(db.sql, [close(31, "7.35")]); // higher still: the peak moves, nothing is sent
    expect((await analyse(db.sql, [PAIR], { ...noWait, now: now(31) })).transitions).toEqual([]);
    const [open] = await alerts(db.sql);
    expect(open?.["status"]).toBe("firing");
    expect(open?.["peak_deviation"]).toBeGreaterThan(0.045);

    await saveQuotes(db.sql, [close(32, "7.05")]);
    const resolved = await analyse(db.sql, [PAIR], { ...noWait, now: now(32) });
    expect(resolved.transitions.map((change) => change.transition)).toEqual(["resolved"]);
    expect(received.map((body) => body["status"])).toEqual(["firing", "resolved"]);
    expect(received[1]?.["fingerprint"]).toBe(received[0]?.["fingerprint"]);
    expect(await analyse(db.sql, [PAIR], { ...noWait, now: now(32) })).toMatchObject({ transitions: [] });
    expect((await alerts(db.sql)).map((alert) => alert["status"])).toEqual(["resolved"]);
  });

  test("with the receiver down the notification is kept, then delivered once on the next run", async () => {
    const pair = "CHF-BRL";
    await saveQuotes(db.sql, [...Array.from({ length: 30 }, (_, i) => quote(pair, sp(`${day(i)}T17:00:00`), "6.00")), quote(pair, sp(`${day(30)}T17:00:00`), "5.70")]);
    const now = () => sp(`${day(30)}T17:30:00`);
    const count = received.length;
    receiverStatus = 503;
    const down = await analyse(db.sql, [pair], { ...noWait, now });
    expect(down.transitions.map((change) => [change.transition, change.alert.direction])).toEqual([["firing", "down"]]);
    expect(down.delivery.delivered).toBe(0);
    expect(down.delivery.pending).toEqual([
      `webhook 1 (127.0.0.1:${receiver.port}): HTTP 503, retried after ${day(30)} 17:31 -03; the FIRING ${pair} notification is kept`,
    ]);
    const [kept] = await db.sql`select delivered_at, last_error from alert_notifications n join alerts a on a.id = n.alert_id where a.pair = ${pair}`;
    expect(kept).toEqual({ delivered_at: null, last_error: "HTTP 503" });

    receiverStatus = 200;
    const later = () => sp(`${day(30)}T17:32:00`);
    const up = await analyse(db.sql, [pair], { ...noWait, now: later });
    expect(up.transitions).toEqual([]);
    expect(up.delivery.delivered).toBe(1);
    expect(received.length).toBe(count + 1);
    expect(received.at(-1)).toMatchObject({ status: "firing", pair, direction: "down" });
    await analyse(db.sql, [pair], { ...noWait, now: later });
    expect(received.length).toBe(count + 1);
  });

  test("a stale pair fires while the market is open, not at the weekend, and resolves when quotes arrive", async () => {
    const pair = "JPY-BRL";
    // Wednesday 2024-07-10, last quote 10:00 São Paulo.
    await saveQuotes(db.sql, [quote(pair, sp("2024-07-10T10:00:00"), "0.034")]);
    const at = (local: string) => ({ ...noWait, now: () => sp(local) });
    expect((await analyse(db.sql, [pair], at("2024-07-10T11:00:00"))).transitions).toEqual([]);
    const stale = await analyse(db.sql, [pair], at("2024-07-10T12:30:00"));
    expect(stale.transitions.map((change) => [change.transition, change.alert.kind])).toEqual([["firing", "stale"]]);
    expect((await analyse(db.sql, [pair], at("2024-07-10T13:30:00"))).transitions).toEqual([]);
    await saveQuotes(db.sql, [quote(pair, sp("2024-07-10T13:40:00"), "0.035")]);
    const fresh = await analyse(db.sql, [pair], at("2024-07-10T13:45:00"));
    expect(fresh.transitions.map((change) => [change.transition, change.alert.kind])).toEqual([["resolved", "stale"]]);

    const weekend = "MXN-BRL";
    await saveQuotes(db.sql, [quote(weekend, sp("2024-07-12T16:00:00"), "0.30")]);
    // The forex market closed at 18:00 São Paulo (17:00 EDT) that Friday and opens again on
    // Sunday at 18:00 São Paulo: stale only once it has been open for two more hours.
    expect((await analyse(db.sql, [weekend], at("2024-07-13T15:00:00"))).transitions).toEqual([]); // Saturday
    expect((await analyse(db.sql, [weekend], at("2024-07-14T17:30:00"))).transitions).toEqual([]); // Sunday
    const sunday = await analyse(db.sql, [weekend], at("2024-07-14T20:30:00"));
    expect(sunday.transitions.map((change) => [change.transition, change.alert.kind])).toEqual([["firing", "stale"]]);
  });

  describe("the same quote firing again", () => {
    // 90 days at 5.00 closing at 17:00 São Paulo, then the newest quote, corrected back and forth.
    const history = (pair: string) => Array.from({ length: 90 }, (_, i) => quote(pair, sp(`${day(i)}T17:00:00`), "5.00"));
    const latest = (pair: string, bid: string) => quote(pair, sp(`${day(90)}T17:00:00`), bid);
    const at = (minute: number) => () => sp(`${day(90)}T17:${String(minute).padStart(2, "0")}:00`);
    const fingerprints = async (pair: string) =>
      (await db.sql<{ fingerprint: string; status: string }[]>`select fingerprint, status from alerts where pair = ${pair} and kind = 'deviation' order by id`).map(
        (row) => [row.fingerprint, row.status],
      );
    const sentFor = (pair: string) => received.filter((body) => body["pair"] === pair).map((body) => [body["status"], body["fingerprint"]]);

    test("a corrected quote that fires, resolves and fires again opens a new alert, notified, and later runs succeed", async () => {
      const pair = "AUD-BRL";
      await saveQuotes(db.sql, [...history(pair), latest(pair, "5.40")]); // +8 %
      const fired = await analyse(db.sql, [pair], { ...noWait, now: at(5) });
      expect(fired.transitions.map((change) => change.transition)).toEqual(["firing"]);

      await saveQuotes(db.sql, [latest(pair, "5.01")]); // the API corrects the same quote
      const resolved = await analyse(db.sql, [pair], { ...noWait, now: at(10) });
      expect(resolved.transitions.map((change) => change.transition)).toEqual(["resolved"]);
      expect(describeTransition(resolved.transitions[0]!)).toContain(`fired ${day(90)} 17:05 -03, resolved ${day(90)} 17:10 -03`);

      await saveQuotes(db.sql, [latest(pair, "5.40")]); // and undoes the correction
      const again = await analyse(db.sql, [pair], { ...noWait, now: at(15) });
      expect(again.transitions.map((change) => change.transition)).toEqual(["firing"]);
      const [first, second] = await fingerprints(pair);
      expect(first?.[1]).toBe("resolved");
      expect(second?.[1]).toBe("firing");
      expect(second?.[0]).not.toBe(first?.[0]);
      for (const minute of [20, 25]) expect((await analyse(db.sql, [pair], { ...noWait, now: at(minute) })).transitions).toEqual([]);

      await saveQuotes(db.sql, [latest(pair, "5.01")]);
      expect((await analyse(db.sql, [pair], { ...noWait, now: at(30) })).transitions.map((change) => change.transition)).toEqual(["resolved"]);
      expect(sentFor(pair)).toEqual([
        ["firing", first?.[0]],
        ["resolved", first?.[0]],
        ["firing", second?.[0]],
        ["resolved", second?.[0]],
      ]);
    });

    test("a threshold raised for one run and set back resolves and fires a new alert, never a failed run", async () => {
      const pair = "NZD-BRL";
      await saveQuotes(db.sql, [...history(pair), latest(pair, "5.39")]); // +7.8 %
      expect((await analyse(db.sql, [pair], { ...noWait, now: at(5) })).transitions.map((change) => change.transition)).toEqual(["firing"]);
      const wide = loadAnalysisConfig({ COTACAO_ALERT_THRESHOLD_PCT: "10" });
      const raised = await analyse(db.sql, [pair], { ...noWait, config: { ...wide, webhookUrls: config.webhookUrls }, now: at(10) });
      expect(raised.transitions.map((change) => change.transition)).toEqual(["resolved"]);
      const back = await analyse(db.sql, [pair], { ...noWait, now: at(15) });
      expect(back.transitions.map((change) => change.transition)).toEqual(["firing"]);
      expect(new Set((await fingerprints(pair)).map(([fingerprint]) => fingerprint)).size).toBe(2);
      expect(sentFor(pair).map(([status]) => status)).toEqual(["firing", "resolved", "firing"]);
    });

    test("fire, resolve and fire again on new quotes the same day: two alerts, three notifications", async () => {
      const pair = "SEK-BRL";
      await saveQuotes(db.sql, [...history(pair), latest(pair, "5.40")]);
      await analyse(db.sql, [pair], { ...noWait, now: at(5) });
      await saveQuotes(db.sql, [quote(pair, sp(`${day(90)}T17:20:00`), "5.01")]);
      await analyse(db.sql, [pair], { ...noWait, now: at(25) });
      await saveQuotes(db.sql, [quote(pair, sp(`${day(90)}T17:40:00`), "5.40")]);
      const last = await analyse(db.sql, [pair], { ...noWait, now: at(45) });
      expect(last.transitions.map((change) => change.transition)).toEqual(["firing"]);
      expect((await fingerprints(pair)).map(([, status]) => status)).toEqual(["resolved", "firing"]);
      expect(sentFor(pair).map(([status]) => status)).toEqual(["firing", "resolved", "firing"]);
    });

    test("--rescan stores history without sending, and the next run still notifies what is live", async () => {
      const pair = "NOK-BRL";
      await saveQuotes(db.sql, [...history(pair), latest(pair, "5.40")]);
      await analyse(db.sql, [pair], { ...noWait, now: at(5) });
      await saveQuotes(db.sql, [latest(pair, "5.01")]);
      await analyse(db.sql, [pair], { ...noWait, now: at(10) });
      await saveQuotes(db.sql, [latest(pair, "5.40")]);
      const episodes = await rescan(db.sql, pair, PARAMS);
      expect(episodes.at(-1)?.resolvedAt).toBeNull(); // history says: open now
      expect(await rescan(db.sql, pair, PARAMS)).toEqual(episodes); // the same every time
      expect(sentFor(pair).map(([status]) => status)).toEqual(["firing", "resolved"]); // rescan sent nothing
      const live = await analyse(db.sql, [pair], { ...noWait, now: at(15) });
      expect(live.transitions.map((change) => change.transition)).toEqual(["firing"]);
      expect(sentFor(pair).map(([status]) => status)).toEqual(["firing", "resolved", "firing"]);
      await rescan(db.sql, pair, PARAMS); // a rescan never closes or removes a live alert
      await saveQuotes(db.sql, [latest(pair, "5.01")]);
      const resolved = await analyse(db.sql, [pair], { ...noWait, now: at(20) });
      expect(resolved.transitions.map((change) => change.transition)).toEqual(["resolved"]);
      expect(sentFor(pair).map(([status]) => status)).toEqual(["firing", "resolved", "firing", "resolved"]);
    });
  });

  describe("--rescan keeps what was delivered", () => {
    // Thirty days at 7.00; on day 30 a quote at 11:00 crosses the line (+4 %) and the day closes
    // at 17:00 still beyond it; day 31 closes back near the average. The live alert starts at
    // 11:00, history's episode at day 30's close: the same episode, another start.
    async function deliveredEpisode(pair: string): Promise<{ id: number; fingerprint: string }> {
      await saveQuotes(db.sql, Array.from({ length: 30 }, (_, i) => quote(pair, sp(`${day(i)}T17:00:00`), "7.00")));
      await analyse(db.sql, [pair], { ...noWait, now: () => sp(`${day(29)}T17:30:00`) });
      await saveQuotes(db.sql, [quote(pair, sp(`${day(30)}T11:00:00`), "7.28")]);
      expect((await analyse(db.sql, [pair], { ...noWait, now: () => sp(`${day(30)}T11:05:00`) })).transitions.map((t) => t.transition)).toEqual(["firing"]);
      await saveQuotes(db.sql, [quote(pair, sp(`${day(30)}T17:00:00`), "7.30")]);
      await analyse(db.sql, [pair], { ...noWait, now: () => sp(`${day(30)}T17:30:00`) });
      await saveQuotes(db.sql, [quote(pair, sp(`${day(31)}T17:00:00`), "7.05")]);
      expect((await analyse(db.sql, [pair], { ...noWait, now: () => sp(`${day(31)}T17:30:00`) })).transitions.map((t) => t.transition)).toEqual(["resolved"]);
      const [delivered] = await db.sql<{ id: number; fingerprint: string; delivered: number }[]>`
        select a.id::int, a.fingerprint, count(n.delivered_at)::int as delivered
        from alerts a join alert_notifications n on n.alert_id = a.id where a.pair = ${pair} group by a.id`;
      expect(delivered?.delivered).toBe(2); // FIRING and RESOLVED reached the webhook
      return { id: delivered!.id, fingerprint: delivered!.fingerprint };
    }
    const rows = (pair: string) =>
      db.sql<{ id: number; fingerprint: string; superseded: boolean }[]>`
        select id::int, fingerprint, superseded_at is not null as superseded from alerts where pair = ${pair} and kind = 'deviation' order by id`;

    test("history finds the same episode (another start): the delivered alert stays, same id, and nothing is added", async () => {
      const pair = "CAD-BRL";
      const live = await deliveredEpisode(pair);
      const episodes = await rescan(db.sql, pair, PARAMS);
      expect(episodes.map((episode) => [episode.startedAt.toISOString(), episode.resolvedAt?.toISOString()])).toEqual([
        [sp(`${day(30)}T17:00:00`).toISOString(), sp(`${day(31)}T17:00:00`).toISOString()],
      ]);
      expect([...(await rows(pair))]).toEqual([{ ...live, superseded: false }]);
      await rescan(db.sql, pair, PARAMS);
      expect([...(await rows(pair))]).toEqual([{ ...live, superseded: false }]);
    });

    test("history no longer finds it (settings changed): kept, marked superseded, and found again once they are set back", async () => {
      const pair = "HKD-BRL";
      const live = await deliveredEpisode(pair);
      const wide = { ...PARAMS, threshold: 0.1, recovery: 0.08 };
      expect(await rescan(db.sql, pair, wide)).toEqual([]);
      expect([...(await rows(pair))]).toEqual([{ ...live, superseded: true }]);
      await rescan(db.sql, pair, wide); // the same every time
      expect([...(await rows(pair))]).toEqual([{ ...live, superseded: true }]);
      const cli = await runScript("analysis.ts", ["--rescan", "--pair", pair], { env: { DATABASE_URL: db.url, COTACAO_ALERT_THRESHOLD_PCT: "10" } });
      expect(cli.stdout).toContain(`${pair}: 0 episode(s) beyond 10.00% of the 20-day average\n  and 1 delivered alert(s) these settings no longer find, kept and marked superseded\n`);
      expect([...(await rows(pair))]).toEqual([{ ...live, superseded: true }]);
      await rescan(db.sql, pair, PARAMS);
      expect([...(await rows(pair))]).toEqual([{ ...live, superseded: false }]);
      expect(sentFor(pair)).toHaveLength(2); // a rescan sends nothing
    });

    const sentFor = (pair: string) => received.filter((body) => body["pair"] === pair);
  });

  test("the webhook body is what Slack, Discord and Alertmanager receivers read", () => {
    const body = webhookPayload({
      transition: "firing",
      alert: {
        id: 1,
        pair: "USD-BRL",
        kind: "deviation",
        direction: "up",
        status: "firing",
        startedAt: new Date("2024-08-05T20:00:00Z"),
        lastSeenAt: new Date("2024-08-05T20:00:00Z"),
        resolvedAt: null,
        price: "5.7408",
        average: 5.5,
        deviation: 0.04378,
        peakDeviation: 0.04378,
        peakAt: new Date("2024-08-05T20:00:00Z"),
        threshold: 0.03,
        windowDays: 20,
        fingerprint: "0123456789abcdef",
        firedSeenAt: new Date("2024-08-05T20:05:00Z"),
        resolvedSeenAt: null,
      },
    });
    expect(typeof body["text"]).toBe("string");
    expect(body["content"]).toBe(body["text"]);
    expect(body).toMatchObject({ status: "firing", version: "4", pair: "USD-BRL", kind: "deviation", fingerprint: "0123456789abcdef", endedAt: null });
    expect(body["alerts"]).toEqual([
      expect.objectContaining({ status: "firing", startsAt: "2024-08-05T20:00:00.000Z", endsAt: "0001-01-01T00:00:00Z", fingerprint: "0123456789abcdef" }),
    ]);
  });
});

describe("bun analysis.ts before there is data", () => {
  const db = useTestDatabase();

  test("on an empty database the status says there is no data yet and how to load it (exit 0)", async () => {
    const plain = await runScript("analysis.ts", [], { env: { DATABASE_URL: db.url } });
    expect(plain).toEqual({
      code: 0,
      stdout: "No quotes stored yet: load some history with bun main_pipeline.ts --backfill 60, then run bun analysis.ts again\n",
      stderr: "",
    });
    const json = await runScript("analysis.ts", ["--json"], { env: { DATABASE_URL: db.url } });
    expect([json.code, json.stdout]).toEqual([0, "[]\n"]);
    expect(json.stderr).toStartWith("No quotes stored yet");
    const rescanned = await runScript("analysis.ts", ["--rescan"], { env: { DATABASE_URL: db.url } });
    expect([rescanned.code, rescanned.stdout]).toEqual([0, plain.stdout]);
  });

  test("--days for a pair with no quotes fails with one line saying how to load them (exit 1)", async () => {
    const result = await runScript("analysis.ts", ["--days", "--pair", "USD-BRL", "--json"], { env: { DATABASE_URL: db.url } });
    expect(result).toEqual({
      code: 1,
      stdout: "",
      stderr: "Cannot show the daily series of USD-BRL: no quotes stored for it, load them with bun main_pipeline.ts --pairs USD-BRL --backfill 60\n",
    });
  });

  test("a pair with too few closes says how many are missing and which backfill loads them", async () => {
    await saveQuotes(db.sql, ["2024-07-08", "2024-07-09", "2024-07-10", "2024-07-11"].map((date) => quote("EUR-BRL", sp(`${date}T17:00:00`), "6.01")));
    const result = await runScript("analysis.ts", ["--pair", "EUR-BRL"], { env: { DATABASE_URL: db.url, COTACAO_MA_WINDOW_DAYS: "30" } });
    expect(result.code).toBe(0);
    expect(result.stdout).toBe(
      "EUR-BRL 2024-07-11 close 6.01: insufficient history: 3 closes in the 30 days before it, the average needs 10 (7 more); " +
        "load more with bun main_pipeline.ts --pairs EUR-BRL --backfill 90; newest quote 2024-07-11 17:00 -03; open alerts: none\n",
    );
    const other = await runScript("analysis.ts", ["--pair", "GBP-BRL"], { env: { DATABASE_URL: db.url } });
    expect([other.code, other.stdout]).toEqual([0, "GBP-BRL: no quotes stored yet; load them with bun main_pipeline.ts --pairs GBP-BRL --backfill 60\n"]);
  });
});

describe("deliverPending(): webhooks that fail, hang, lie or redirect", () => {
  const db = useTestDatabase();
  const servers: ReturnType<typeof Bun.serve>[] = [];
  afterAll(() => servers.forEach((server) => server.stop(true)));

  /** A local receiver that answers with `answer` and records every request it gets. */
  function receiverOf(answer: (request: Request, count: number) => Response | Promise<Response>) {
    const requests: { body: Record<string, unknown>; key: string | null; at: number }[] = [];
    const server = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      idleTimeout: 30,
      async fetch(request) {
        requests.push({ body: (await request.json()) as Record<string, unknown>, key: request.headers.get("idempotency-key"), at: performance.now() });
        return answer(request, requests.length);
      },
    });
    servers.push(server);
    return { url: `http://127.0.0.1:${server.port}/services/T000/B000/secret-token`, host: `127.0.0.1:${server.port}`, requests };
  }

  const day = (i: number) => dateOf(dayNumber("2025-03-01") + i);
  let pairs = 0;
  /** A new pair whose alert fires (and with `resolve`, then resolves) at `at`: its notifications are written, not sent. */
  async function notifications(urls: string[], at: Date, { resolve = false } = {}): Promise<string> {
    const pair = `T${String(++pairs).padStart(2, "0")}-BRL`;
    const config = { ...loadAnalysisConfig({}), webhookUrls: urls };
    await saveQuotes(db.sql, Array.from({ length: 30 }, (_, i) => quote(pair, sp(`${day(i)}T12:00:00`), "5.00")));
    await saveQuotes(db.sql, [quote(pair, new Date(at.getTime() - 60_000), "5.40")]);
    await analyse(db.sql, [pair], { config, now: () => at, deliver: false });
    if (resolve) {
      await saveQuotes(db.sql, [quote(pair, new Date(at.getTime() - 30_000), "5.01")]);
      await analyse(db.sql, [pair], { config, now: () => at, deliver: false });
    }
    return pair;
  }
  const stateOf = async (pair: string) => [
    ...(await db.sql`select n.transition, n.attempts, n.delivered_at is not null as delivered, n.failed_at is not null as failed, n.last_error
           from alert_notifications n join alerts a on a.id = n.alert_id where a.pair = ${pair} order by n.id`),
  ];
  const T0 = sp(`${day(30)}T15:00:00`);
  const after = (ms: number) => () => new Date(T0.getTime() + ms);

  test("analyse({ deliver: false }) writes the notification and sends nothing", async () => {
    const hook = receiverOf(() => new Response("ok"));
    const pair = await notifications([hook.url], T0);
    expect(hook.requests).toHaveLength(0);
    expect(await stateOf(pair)).toEqual([{ transition: "firing", attempts: 0, delivered: false, failed: false, last_error: null }]);
  });

  test("a 404 fails the notification once, says why naming only the host, and is never retried", async () => {
    const hook = receiverOf(() => new Response("no such hook", { status: 404 }));
    const pair = await notifications([hook.url], T0);
    const report = await deliverPending(db.sql, [hook.url], { random: () => 1, now: after(0) });
    expect(report).toEqual({
      delivered: 0,
      pending: [],
      failed: [`webhook 1 (${hook.host}): HTTP 404, not retried: check the URL; the FIRING ${pair} notification is dropped`],
    });
    expect(report.failed[0]).not.toContain("secret-token");
    for (const later of [after(60_000), after(2 * MS_PER_DAY)]) {
      expect(await deliverPending(db.sql, [hook.url], { random: () => 1, now: later })).toEqual({ delivered: 0, pending: [], failed: [] });
    }
    expect(hook.requests).toHaveLength(1);
    expect(await stateOf(pair)).toEqual([{ transition: "firing", attempts: 1, delivered: false, failed: true, last_error: "HTTP 404, not retried: check the URL" }]);
  });

  test("a 503 is retried on later runs with a growing wait, not in the same run, counting real attempts", async () => {
    const hook = receiverOf(() => new Response("busy", { status: 503 }));
    const pair = await notifications([hook.url], T0);
    const first = await deliverPending(db.sql, [hook.url], { random: () => 1, now: after(0) });
    expect(first.pending).toEqual([`webhook 1 (${hook.host}): HTTP 503, retried after ${day(30)} 15:01 -03; the FIRING ${pair} notification is kept`]);
    expect(hook.requests).toHaveLength(1);
    expect(await deliverPending(db.sql, [hook.url], { random: () => 1, now: after(30_000) })).toEqual({ delivered: 0, pending: [], failed: [] }); // not due yet
    const second = await deliverPending(db.sql, [hook.url], { random: () => 1, now: after(61_000) });
    expect(second.pending[0]).toContain(`retried after ${day(30)} 15:03 -03`); // two minutes after 15:01
    expect(hook.requests).toHaveLength(2);
    expect(await stateOf(pair)).toEqual([{ transition: "firing", attempts: 2, delivered: false, failed: false, last_error: "HTTP 503" }]);
    expect(webhookBackoffMs(1, () => 1)).toBe(60_000);
    expect(webhookBackoffMs(20, () => 1)).toBe(3_600_000);
    // Half of the wait is jittered, as the source's backoff is.
    expect(webhookBackoffMs(1, () => 0)).toBe(30_000);
    expect(webhookBackoffMs(2, () => 0.5)).toBe(90_000);
  });

  test("still failing past the limit (24 h after it was written) it fails once and is reported once", async () => {
    const hook = receiverOf(() => new Response("busy", { status: 503 }));
    const pair = await notifications([hook.url], T0);
    const late = await deliverPending(db.sql, [hook.url], { random: () => 1, now: after(24 * 3_600_000 + 1000) });
    expect(late.pending).toEqual([]);
    expect(late.failed).toEqual([`webhook 1 (${hook.host}): HTTP 503, given up 24h after it was written: check the receiver; the FIRING ${pair} notification is dropped`]);
    expect(await deliverPending(db.sql, [hook.url], { random: () => 1, now: after(30 * 3_600_000) })).toEqual({ delivered: 0, pending: [], failed: [] });
    expect(hook.requests).toHaveLength(1);
    const shorter = await notifications([hook.url], T0);
    const custom = await deliverPending(db.sql, [hook.url], { random: () => 1, now: after(3 * 3_600_000), giveUpAfterMs: 2 * 3_600_000 });
    expect(custom.failed).toEqual([`webhook 1 (${hook.host}): HTTP 503, given up 2h after it was written: check the receiver; the FIRING ${shorter} notification is dropped`]);
  });

  test("a notification waiting to be retried holds back the newer ones to the same webhook", async () => {
    const hook = receiverOf((_, count) => new Response("", { status: count === 1 ? 503 : 200 }));
    const pair = await notifications([hook.url], T0, { resolve: true });
    expect((await deliverPending(db.sql, [hook.url], { random: () => 1, now: after(0) })).pending).toHaveLength(1);
    expect(hook.requests).toHaveLength(1);
    expect(await deliverPending(db.sql, [hook.url], { random: () => 1, now: after(61_000) })).toMatchObject({ delivered: 2 });
    expect(hook.requests.map((request) => request.body["status"])).toEqual(["firing", "firing", "resolved"]);
    expect((await stateOf(pair)).map((row) => row["delivered"])).toEqual([true, true]);
  });

  test("a receiver answering 200 later than the per-request wait gets each notification exactly once, with its idempotency key", async () => {
    const hook = receiverOf(async () => (await Bun.sleep(300), new Response("ok"))); // the receiver is slow, not the test
    const pair = await notifications([hook.url], T0, { resolve: true });
    const options = { now: after(0), timeoutMs: 50, budgetMs: 5000 };
    const first = await deliverPending(db.sql, [hook.url], options);
    expect(first).toEqual({ delivered: 1, pending: [], failed: [] }); // slow: the newer one waits for the next run
    expect(await deliverPending(db.sql, [hook.url], options)).toEqual({ delivered: 1, pending: [], failed: [] });
    expect(await deliverPending(db.sql, [hook.url], { ...options, now: after(3 * 3_600_000) })).toEqual({ delivered: 0, pending: [], failed: [] });
    const [alert] = await db.sql<{ fingerprint: string }[]>`select fingerprint from alerts where pair = ${pair}`;
    expect(hook.requests.map((request) => [request.key, request.body["idempotencyKey"], request.body["status"]])).toEqual([
      [`${alert?.fingerprint}:firing`, `${alert?.fingerprint}:firing`, "firing"],
      [`${alert?.fingerprint}:resolved`, `${alert?.fingerprint}:resolved`, "resolved"],
    ]);
    expect((await stateOf(pair)).map((row) => [row["attempts"], row["delivered"]])).toEqual([
      [1, true],
      [1, true],
    ]);
  });

  test("a hanging receiver costs one round's budget, and another webhook is served meanwhile", async () => {
    const hanging = receiverOf(() => new Promise<Response>(() => {}));
    const healthy = receiverOf(() => new Response("ok"));
    const pair = await notifications([hanging.url, healthy.url], T0, { resolve: true });
    const began = performance.now();
    const report = await deliverPending(db.sql, [hanging.url, healthy.url], { random: () => 1, now: after(0), timeoutMs: 100, budgetMs: 600 });
    const took = performance.now() - began;
    expect(took).toBeLessThan(3000);
    expect(report.delivered).toBe(2);
    expect(report.pending).toEqual([
      `webhook 1 (${hanging.host}): no answer within the 0.6 s delivery budget, retried after ${day(30)} 15:01 -03; the FIRING ${pair} notification is kept`,
    ]);
    expect(hanging.requests).toHaveLength(1);
    expect(healthy.requests.map((request) => request.body["status"])).toEqual(["firing", "resolved"]);
  });

  test("a redirect is not a delivery: not followed, failed, naming the new location's host", async () => {
    const elsewhere = receiverOf(() => new Response("ok"));
    const moved = receiverOf(() => new Response(null, { status: 301, headers: { location: `${elsewhere.url}/moved` } }));
    const pair = await notifications([moved.url], T0);
    const report = await deliverPending(db.sql, [moved.url], { random: () => 1, now: after(0) });
    expect(report.failed).toEqual([
      `webhook 1 (${moved.host}): HTTP 301 redirect to ${elsewhere.host}, not followed: put the final URL in ALERT_WEBHOOK_URLS; the FIRING ${pair} notification is dropped`,
    ]);
    expect(elsewhere.requests).toHaveLength(0);
  });

  test("ALERT_WEBHOOK_GIVE_UP_AFTER is 24 h by default, a duration otherwise, and checked", () => {
    expect(loadAnalysisConfig({}).webhookGiveUpAfterMs).toBe(24 * 3_600_000);
    expect(loadAnalysisConfig({ ALERT_WEBHOOK_GIVE_UP_AFTER: "6h" }).webhookGiveUpAfterMs).toBe(6 * 3_600_000);
    for (const bad of ["soon", "0", "90d"]) {
      expect(() => loadAnalysisConfig({ ALERT_WEBHOOK_GIVE_UP_AFTER: bad })).toThrow(/^Cannot start: ALERT_WEBHOOK_GIVE_UP_AFTER must be a duration from 1m to 30d/);
    }
  });

  test("bun analysis.ts --test-webhook sends a marked test to every URL, prints each answer, stores nothing", async () => {
    const good = receiverOf(() => new Response("ok"));
    const bad = receiverOf(() => new Response("gone", { status: 410 }));
    const before = await db.sql`select count(*)::int as n from alert_notifications`;
    const both = await runScript("analysis.ts", ["--test-webhook"], { env: { DATABASE_URL: db.url, ALERT_WEBHOOK_URLS: `${good.url},${bad.url}` } });
    expect(both.code).toBe(1);
    const lines = both.stdout.trim().split("\n");
    expect(lines[0]).toMatch(new RegExp(`^webhook 1 \\(${good.host}\\) after \\d+ ms: HTTP 200$`));
    expect(lines[1]).toMatch(new RegExp(`^webhook 2 \\(${bad.host}\\) after \\d+ ms: HTTP 410, not retried: check the URL$`));
    expect(both.stdout).not.toContain("secret-token");
    expect(good.requests[0]?.body).toMatchObject({ test: true, status: "test" });
    expect(String(good.requests[0]?.body["text"])).toStartWith("TEST from cotacao");
    expect(await db.sql`select count(*)::int as n from alert_notifications`).toEqual(before);
    const one = await runScript("analysis.ts", ["--test-webhook"], { env: { ALERT_WEBHOOK_URLS: good.url } });
    expect(one.code).toBe(0);
    const none = await runScript("analysis.ts", ["--test-webhook"]);
    expect(none.code).toBe(2);
    expect(none.stderr).toStartWith("Cannot send a test notification: ALERT_WEBHOOK_URLS is not set");
  });
});

describe("bun analysis.ts", () => {
  const db = useTestDatabase();
  beforeAll(async () => {
    const points = PTAX.filter((point) => point.date >= "2020-01-01" && point.date <= "2020-06-30");
    await saveQuotes(db.sql, points.map((point) => quote("USD-BRL", pointTime(point), point.bid)));
  });

  test("--days --pair --json prints the daily series as the rule sees it", async () => {
    const result = await runScript("analysis.ts", ["--days", "--pair", "USD-BRL", "--json"], { env: { DATABASE_URL: db.url } });
    expect(result.code).toBe(0);
    const days = JSON.parse(result.stdout) as ({ date: string; close: string; average: number | null; deviation: number | null; anomalous: boolean } & Record<string, unknown>)[];
    // No official rates stored here: the cross-check's fields are null.
    expect(days[0]).toEqual({
      date: "2020-01-02", close: PTAX.find((p) => p.date === "2020-01-02")!.bid, average: null, deviation: null, anomalous: false,
      official: null, officialAt: null, comparedBid: null, comparedAt: null, match: null, divergence: null, divergent: false,
    });
    const march = days.filter((entry) => entry.date.startsWith("2020-03") && entry.anomalous);
    expect(march.length).toBeGreaterThan(0);
    for (const entry of days) if (entry.deviation !== null) expect(entry.anomalous).toBe(Math.abs(entry.deviation) > 0.03);
  });

  test("--rescan --json prints the episodes; plain prints each pair's state", async () => {
    const rescanned = await runScript("analysis.ts", ["--rescan", "--json"], { env: { DATABASE_URL: db.url } });
    expect(rescanned.code).toBe(0);
    const [report] = JSON.parse(rescanned.stdout) as { pair: string; episodes: { start: string; direction: string }[] }[];
    expect(report?.pair).toBe("USD-BRL");
    expect(report?.episodes.some((episode) => episode.start.startsWith("2020-03") && episode.direction === "up")).toBe(true);
    const status = await runScript("analysis.ts", [], { env: { DATABASE_URL: db.url } });
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/^USD-BRL 2020-06-30 close \d+\.\d+: /);
  });

  test("people read São Paulo times, prices to 4 decimals and percents to 2; --json keeps UTC, stored decimals as strings", async () => {
    const status = await runScript("analysis.ts", [], { env: { DATABASE_URL: db.url } });
    expect(status.stdout.trim()).toMatch(
      /^USD-BRL 2020-06-30 close \d+\.\d+: [+-]\d+\.\d{2}% from its 20-day average \d+\.\d{4} \(threshold 3\.00%\); newest quote 2020-06-30 \d\d:\d\d -03; open alerts: (none|.*since the quote of \d{4}-\d\d-\d\d \d\d:\d\d -0[23] .*)$/,
    );
    const json = await runScript("analysis.ts", ["--json"], { env: { DATABASE_URL: db.url } });
    const [entry] = JSON.parse(json.stdout) as Record<string, unknown>[];
    expect(typeof entry?.["close"]).toBe("string");
    expect(typeof entry?.["average"]).toBe("number");
    expect(typeof entry?.["deviation"]).toBe("number");
    expect(entry?.["quoteAt"]).toMatch(/^2020-06-30T\d\d:\d\d:\d\d\.\d{3}Z$/);
    const days = await runScript("analysis.ts", ["--days", "--pair", "USD-BRL"], { env: { DATABASE_URL: db.url } });
    const lines = days.stdout.trim().split("\n");
    expect(lines[0]).toStartWith("date        close       average   deviation  (20-day average, threshold 3.00%)");
    expect(lines[1]).toMatch(/^2020-01-02  \d+\.\d+ +insufficient history \(0 of 10 closes\)$/);
    expect(lines.find((line) => line.startsWith("2020-03-18"))).toMatch(/^2020-03-18  \d+\.\d+ +\d+\.\d{4} +\+\d+\.\d{2}%  ANOMALOUS$/);
    const rescanned = await runScript("analysis.ts", ["--rescan"], { env: { DATABASE_URL: db.url } });
    const episodes = rescanned.stdout.trim().split("\n");
    expect(episodes[0]).toMatch(/^USD-BRL: \d+ episode\(s\) beyond 3\.00% of the 20-day average$/);
    expect(episodes[1]).toMatch(/^ {2}2020-\d\d-\d\d \d\d:\d\d -03 to (2020-\d\d-\d\d \d\d:\d\d -03|now .*) +(up|down) +peak [+-]\d+\.\d{2}% with the quote of 2020-\d\d-\d\d \d\d:\d\d -03$/);
  });

  test("a RESOLVED line tells apart a fire and a resolution in the same minute, and falls back to the quotes' times", () => {
    const alert = {
      id: 1, pair: "USD-BRL", kind: "deviation" as const, direction: "up" as const, status: "resolved" as const,
      startedAt: new Date("2026-11-27T20:59:00Z"), lastSeenAt: new Date("2026-11-27T20:59:00Z"), resolvedAt: new Date("2026-11-27T20:59:00Z"),
      price: "5.40", average: 5, deviation: 0.08, peakDeviation: 0.08, peakAt: new Date("2026-11-27T20:59:00Z"), threshold: 0.03, windowDays: 20,
      fingerprint: "0123456789abcdef", firedSeenAt: new Date("2026-11-27T21:00:05Z"), resolvedSeenAt: new Date("2026-11-27T21:00:50Z"),
    };
    expect(describeTransition({ transition: "resolved", alert })).toBe(
      "RESOLVED USD-BRL back near its 20-day average (peak +8.00% with the quote of 2026-11-27 17:59 -03); fired 2026-11-27 18:00:05 -03, resolved 2026-11-27 18:00:50 -03",
    );
    expect(describeTransition({ transition: "resolved", alert: { ...alert, firedSeenAt: null, resolvedSeenAt: null, resolvedAt: new Date("2026-11-28T13:00:00Z") } })).toBe(
      "RESOLVED USD-BRL back near its 20-day average (peak +8.00% with the quote of 2026-11-27 17:59 -03); fired with the quote of 2026-11-27 17:59 -03, resolved with the quote of 2026-11-28 10:00 -03",
    );
  });

  test("formatSaoPauloTime() writes São Paulo's offset of the day, with seconds on request", () => {
    expect(formatSaoPauloTime(new Date("2026-11-27T21:00:00Z"))).toBe("2026-11-27 18:00 -03");
    expect(formatSaoPauloTime(new Date("2026-11-27T21:00:05.900Z"), { seconds: true })).toBe("2026-11-27 18:00:05 -03");
    expect(formatSaoPauloTime(new Date("2018-01-15T12:00:00Z"))).toBe("2018-01-15 10:00 -02"); // summer time, before 2019
    expect(formatSaoPauloTime(new Date("2026-11-28T02:30:00Z"))).toBe("2026-11-27 23:30 -03"); // the São Paulo day, not UTC's
  });

  test("bad usage is one line and exit 2", async () => {
    for (const args of [["--days"], ["--pair", "dollar"], ["--bogus"], ["--test-webhook", "--json"]]) {
      const result = await runScript("analysis.ts", args);
      expect(result.code).toBe(2);
      expect(result.stderr.trim().split("\n")).toHaveLength(1);
    }
  });
});

describe("the divergence alert: PTAX against AwesomeAPI through March 2020", () => {
  // The official side: March 2020's PTAX closes from ptax.csv, each stored as that day's closing
  // bulletin at 13:09 São Paulo time (sell 0.0006 above buy, as BCB's spread usually is). The
  // AwesomeAPI side: daily quotes at 17:00 (so no quote is within 30 minutes of the closing and
  // each day compares its daily quote), their bids the same series moved by hand-chosen amounts.
  // Each divergence below is round(100 * (bid - buy) / buy, 6), worked out by hand:
  const DAYS: [day: string, bid: string | null, divergencePct: string | null][] = [
    ["2020-03-02", "4.4990", "0.111259"], //   4.4940 -> +0.0050
    ["2020-03-03", "4.4850", "-0.060164"], //  4.4877 -> -0.0027
    ["2020-03-04", "4.5300", "0.106073"], //   4.5252 -> +0.0048
    ["2020-03-05", "4.6150", "-0.110387"], //  4.6201 -> -0.0051
    ["2020-03-06", "4.6500", "0.101178"], //   4.6453 -> +0.0047
    ["2020-03-09", "4.8200", "1.745720"], //   4.7373 -> +0.0827: beyond 1.5, fires up
    ["2020-03-10", "4.7350", "1.420096"], //   4.6687 -> +0.0663: under 1.5 but at least 1.2 (80 % of it): holds
    ["2020-03-11", "4.7700", "2.071386"], //   4.6732 -> +0.0968: the peak
    ["2020-03-12", "4.9300", "0.972862"], //   4.8825 -> +0.0475: under 1.2, resolves
    ["2020-03-13", null, null], //             4.7355 and no quote: nothing
    ["2020-03-16", "5.2000", null], //         only the opening and an intermediate bulletin (no closing): nothing, though +5 %
    ["2020-03-17", "4.9500", "-1.958843"], //  5.0489 -> -0.0989: fires down
    ["2020-03-18", "5.0400", "-1.371793"], //  5.1101 -> -0.0701: holds
    ["2020-03-19", "5.0819756", "-1.200000"], // 5.1437 -> -0.0617244: exactly the recovery level, holds
    ["2020-03-20", "5.0100", "-0.280647"], //  5.0241 -> -0.0141: resolves
    ["2020-03-23", "5.1600", "1.578802"], //   5.0798 -> +0.0802: fires up
    ["2020-03-24", "4.9900", "-1.591496"], //  5.0707 -> -0.0807: beyond on the other side: resolves, fires down
    ["2020-03-25", "5.0750", "0.098619"], //   5.0700 -> +0.0050: resolves
    ["2020-03-26", "5.075406", "1.500000"], // 5.0004 -> +0.075006: exactly the threshold, not beyond it
    ["2020-03-27", "5.1050", "-0.103712"], //  5.1103 -> -0.0053
    ["2020-03-30", "5.1650", "0.120183"], //   5.1588 -> +0.0062
    ["2020-03-31", "5.2900", "1.767954"], //   5.1981 -> +0.0919: fires up, still open at the end
  ];
  // A Saturday quote far from every PTAX: no closing that day, so nothing.
  const SATURDAY: [string, string] = ["2020-03-14", "5.5000"];
  // The episodes, from the divergences above: [start, end (null: open), direction, peak %].
  const EPISODES = [
    ["2020-03-09", "2020-03-12", "up", 2.071386],
    ["2020-03-17", "2020-03-20", "down", -1.958843],
    ["2020-03-23", "2020-03-24", "up", 1.578802],
    ["2020-03-24", "2020-03-25", "down", -1.591496],
    ["2020-03-31", null, "up", 1.767954],
  ];

  const db = useTestDatabase();
  const ptax = new Map(PTAX.map((point) => [point.date, point.bid]));
  const closingAt = (day: string) => sp(`${day}T13:09:00`);
  const plusTicks = (rate: string, ticks: number) => ((Math.round(Number(rate) * 10_000) + ticks) / 10_000).toFixed(4);

  /** Day `day`'s bulletins for `pair`: the closing, or on 2020-03-16 the two morning ones only. */
  function bulletins(pair: string, day: string): OfficialRate[] {
    const buy = ptax.get(day)!;
    const bulletin = (hour: string, kind: OfficialRate["bulletin"]): OfficialRate => ({ pair, publishedAt: `${day}T${hour}:09:00-03:00`, bulletin: kind, buy, sell: plusTicks(buy, 6) });
    return day === "2020-03-16" ? [bulletin("10", "opening"), bulletin("11", "intermediate")] : [bulletin("13", "closing")];
  }

  /** An AwesomeAPI daily record as ingest.ts stores it: the day's quote at 17:00 São Paulo. */
  function dailyQuote(pair: string, day: string, bid: string): Quote {
    const at = sp(`${day}T17:00:00`);
    return { pair, ts: at, bid, ask: bid, high: bid, low: bid, varBid: "0", pctChange: "0", source: SOURCE_DAILY, fetchedAt: at };
  }

  async function storeDay(pair: string, day: string, bid: string | null): Promise<void> {
    await saveOfficialRates(db.sql, bulletins(pair, day));
    if (bid !== null) await saveQuotes(db.sql, [dailyQuote(pair, day, bid)]);
  }

  async function storeMonth(pair: string): Promise<void> {
    for (const [day, bid] of DAYS) await storeDay(pair, day, bid);
    await saveQuotes(db.sql, [dailyQuote(pair, ...SATURDAY)]);
  }

  const asSpans = (episodes: Awaited<ReturnType<typeof rescanDivergence>>) =>
    episodes.map((episode) => [
      formatSaoPauloTime(episode.startedAt).slice(0, 10),
      episode.resolvedAt && formatSaoPauloTime(episode.resolvedAt).slice(0, 10),
      episode.direction,
      Number((episode.peakDeviation * 100).toFixed(6)),
    ]);

  const DEFAULTS = divergenceParamsFor(loadAnalysisConfig({}), "USD-BRL");

  beforeAll(async () => {
    await storeMonth("USD-BRL");
  });

  test("the cross-check gives the divergences worked out by hand, and no row for a day without a closing or a quote", async () => {
    expect(DEFAULTS).toEqual({ thresholdPct: 1.5, recoveryPct: 1.2 });
    const days = await divergenceSeries(db.sql, "USD-BRL", "2020-03-01", "2020-03-31");
    expect(days.map((day): (string | null)[] => [day.day, day.bid, day.divergencePct])).toEqual(
      DAYS.filter(([, , pct]) => pct !== null).map(([day, bid, pct]) => [day, bid, pct]),
    );
    expect(new Set(days.map((day) => day.match))).toEqual(new Set(["daily"]));
  });

  test("--rescan finds the episodes worked out by hand: starts, ends, directions, peaks, the hysteresis", async () => {
    const episodes = await rescanDivergence(db.sql, "USD-BRL", DEFAULTS);
    expect(asSpans(episodes)).toEqual(EPISODES);
    // Starts, ends and peaks are closing PTAX times.
    expect(episodes[0]?.startedAt).toEqual(closingAt("2020-03-09"));
    expect(episodes[0]?.peakAt).toEqual(closingAt("2020-03-11"));
    expect(episodes[1]?.lastSeenAt).toEqual(closingAt("2020-03-19")); // -1.200000 held it open
    // The ended ones are stored, the open one left to the pipeline; the same every time.
    const stored = () => db.sql`
      select to_char(started_at at time zone 'America/Sao_Paulo', 'YYYY-MM-DD') as start, direction, status, price::text, average, threshold, window_days
      from alerts where pair = 'USD-BRL' and kind = 'divergence' order by started_at, id`;
    const rows = await stored();
    expect(rows.map((row) => [row["start"], row["direction"], row["status"]])).toEqual([
      ["2020-03-09", "up", "resolved"],
      ["2020-03-17", "down", "resolved"],
      ["2020-03-23", "up", "resolved"],
      ["2020-03-24", "down", "resolved"],
    ]);
    expect(rows[0]).toMatchObject({ price: "4.8200", average: 4.7373, threshold: 0.015, window_days: null });
    expect(await rescanDivergence(db.sql, "USD-BRL", DEFAULTS)).toEqual(episodes);
    expect(await stored()).toEqual(rows);
  });

  test("a threshold per pair: EUR-BRL at 2 % sees only the +2.07 % day", async () => {
    await storeMonth("EUR-BRL"); // the same figures, under another pair
    const config = loadAnalysisConfig({ COTACAO_DIVERGENCE_PCT: "1.5, EUR-BRL:2" });
    expect(divergenceParamsFor(config, "EUR-BRL")).toEqual({ thresholdPct: 2, recoveryPct: 1.6 });
    expect(divergenceParamsFor(config, "USD-BRL")).toEqual({ thresholdPct: 1.5, recoveryPct: 1.2 });
    expect(asSpans(await rescanDivergence(db.sql, "EUR-BRL", divergenceParamsFor(config, "EUR-BRL")))).toEqual([["2020-03-11", "2020-03-12", "up", 2.071386]]);
    // The recovery share is the deviation rule's, per pair too.
    expect(divergenceParamsFor(loadAnalysisConfig({ COTACAO_DIVERGENCE_PCT: "2", COTACAO_ALERT_RECOVERY_PCT: "80,EUR-BRL:50" }), "EUR-BRL")).toEqual({ thresholdPct: 2, recoveryPct: 1 });
  });

  test("COTACAO_DIVERGENCE_PCT is checked like the other settings", () => {
    for (const [value, message] of [
      ["lots", /COTACAO_DIVERGENCE_PCT must be a percentage between 0 and 100, .* like "1.5,USD-BRL:1.2"; got "lots"/],
      ["1.5,usd:2", /COTACAO_DIVERGENCE_PCT names "usd"/],
      ["0", /COTACAO_DIVERGENCE_PCT must be a percentage/],
    ] as const) {
      expect(() => loadAnalysisConfig({ COTACAO_DIVERGENCE_PCT: value })).toThrow(message);
    }
  });

  test("bun analysis.ts --days shows the closing PTAX and the divergence per day, in text and JSON; --rescan lists the episodes", async () => {
    const env = { env: { DATABASE_URL: db.url } };
    const json = await runScript("analysis.ts", ["--days", "--pair", "USD-BRL", "--json"], env);
    expect(json.code).toBe(0);
    const days = new Map((JSON.parse(json.stdout) as Record<string, unknown>[]).map((day) => [day["date"], day]));
    expect(days.get("2020-03-09")).toMatchObject({
      close: "4.8200", official: "4.7373", officialAt: closingAt("2020-03-09").toISOString(),
      comparedBid: "4.8200", comparedAt: sp("2020-03-09T17:00:00").toISOString(), match: "daily", divergence: 0.0174572, divergent: true,
    });
    expect(days.get("2020-03-26")).toMatchObject({ divergence: 0.015, divergent: false });
    expect(days.get("2020-03-16")).toMatchObject({ close: "5.2000", official: null, divergence: null, divergent: false });
    expect(days.get("2020-03-14")).toMatchObject({ close: "5.5000", official: null, divergence: null });
    expect(days.has("2020-03-13")).toBe(false); // no quote: not in the daily series

    const text = await runScript("analysis.ts", ["--days", "--pair", "USD-BRL"], env);
    const lines = text.stdout.trim().split("\n");
    expect(lines[0]).toBe("date        close       average   deviation  (20-day average, threshold 3.00%; closing PTAX and the divergence from it, threshold 1.50%)");
    expect(lines.find((line) => line.startsWith("2020-03-09"))).toMatch(/  PTAX 4\.7373 \(13:09\) Δ \+1\.75%  DIVERGENT$/);
    expect(lines.find((line) => line.startsWith("2020-03-26"))).toMatch(/  PTAX 5\.0004 \(13:09\) Δ \+1\.50%$/);
    expect(lines.find((line) => line.startsWith("2020-03-16"))).not.toContain("PTAX");

    const rescanned = await runScript("analysis.ts", ["--rescan", "--pair", "USD-BRL"], env);
    const out = rescanned.stdout.split("\n");
    const at = out.indexOf("USD-BRL: 5 divergence episode(s) beyond 1.50% from the closing PTAX");
    expect(at).toBeGreaterThan(0);
    expect(out[at + 1]).toBe("  2020-03-09 13:09 -03 to 2020-03-12 13:09 -03  up   peak +2.07% with the closing PTAX of 2020-03-11 13:09 -03");
    expect(out[at + 5]).toStartWith("  2020-03-31 13:09 -03 to now (open in history");
    const [report] = JSON.parse((await runScript("analysis.ts", ["--rescan", "--pair", "USD-BRL", "--json"], env)).stdout) as { divergence: { episodes: { direction: string }[] } }[];
    expect(report?.divergence.episodes.map((episode) => episode.direction)).toEqual(["up", "down", "up", "down", "up"]);
  });

  describe("live, a run a day, with a webhook receiver", () => {
    const received: Record<string, unknown>[] = [];
    const receiver = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      async fetch(request) {
        received.push((await request.json()) as Record<string, unknown>);
        return new Response("ok");
      },
    });
    afterAll(() => receiver.stop(true));
    const PAIR = "CAD-BRL";
    const config: AnalysisConfig = { ...loadAnalysisConfig({}), webhookUrls: [`http://127.0.0.1:${receiver.port}/hook/secret-part`] };
    const divergenceRows = () =>
      db.sql<{ id: number; status: string; superseded: boolean }[]>`
        select id::int, status, superseded_at is not null as superseded from alerts where pair = ${PAIR} and kind = 'divergence' order by id`;

    test("fires and resolves on the days worked out by hand, nothing on a day without a closing or a quote, each notified once", async () => {
      const seen: string[][] = [];
      const run = async (day: string) => {
        const summary = await analyse(db.sql, [PAIR], { config, random: () => 1, staleness: false, now: () => sp(`${day}T17:30:00`) });
        for (const change of summary.transitions.filter((t) => t.alert.kind === "divergence")) seen.push([day, change.transition, change.alert.direction!]);
      };
      for (const [day, bid] of DAYS) {
        await storeDay(PAIR, day, bid);
        await run(day);
        if (day === "2020-03-13") {
          await saveQuotes(db.sql, [dailyQuote(PAIR, ...SATURDAY)]);
          await run(SATURDAY[0]);
        }
      }
      expect(seen).toEqual([
        ["2020-03-09", "firing", "up"],
        ["2020-03-12", "resolved", "up"],
        ["2020-03-17", "firing", "down"],
        ["2020-03-20", "resolved", "down"],
        ["2020-03-23", "firing", "up"],
        ["2020-03-24", "resolved", "up"],
        ["2020-03-24", "firing", "down"],
        ["2020-03-25", "resolved", "down"],
        ["2020-03-31", "firing", "up"],
      ]);
      // A second run over the same data changes nothing.
      const before = await divergenceRows();
      await run("2020-03-31");
      expect(seen).toHaveLength(9);
      expect(await divergenceRows()).toEqual(before);

      const sent = received.filter((body) => body["kind"] === "divergence");
      expect(sent.map((body) => [body["status"], body["direction"]])).toEqual(seen.map(([, transition, direction]) => [transition, direction]));
      expect(sent[0]).toMatchObject({ pair: PAIR, price: "4.8200", average: 4.7373, threshold: 0.015, windowDays: null, startedAt: closingAt("2020-03-09").toISOString() });
      expect((sent[0]?.["commonLabels"] as Record<string, string>)["alertname"]).toBe("QuoteDivergence");
      expect(sent[0]?.["text"]).toBe(`FIRING ${PAIR} divergence +1.75% from PTAX 4.7373: AwesomeAPI bid 4.8200 (threshold 1.50%; closing PTAX of 2020-03-09 13:09 -03)`);
      expect(sent[1]?.["text"]).toBe(
        `RESOLVED ${PAIR} divergence: back near PTAX (peak +2.07% with the closing PTAX of 2020-03-11 13:09 -03); fired 2020-03-09 17:30 -03, resolved 2020-03-12 17:30 -03`,
      );
      expect(sent[1]?.["fingerprint"]).toBe(sent[0]?.["fingerprint"]);
      expect(sent[2]?.["text"]).toBe(`FIRING ${PAIR} divergence -1.96% from PTAX 5.0489: AwesomeAPI bid 4.9500 (threshold 1.50%; closing PTAX of 2020-03-17 13:09 -03)`);
    });

    test("a divergence line writes the PTAX rate with all its digits when it has more than four, else four", () => {
      const alert = {
        id: 1, pair: "JPY-BRL", kind: "divergence" as const, direction: "down" as const, status: "firing" as const,
        startedAt: closingAt("2020-03-17"), lastSeenAt: closingAt("2020-03-17"), resolvedAt: null,
        price: "0.0455", average: 0.046231, deviation: -0.0158116, peakDeviation: -0.0158116, peakAt: closingAt("2020-03-17"), threshold: 0.015, windowDays: null,
        fingerprint: "0123456789abcdef", firedSeenAt: sp("2020-03-17T17:30:00"), resolvedSeenAt: null,
      };
      expect(describeTransition({ transition: "firing", alert })).toBe(
        "FIRING JPY-BRL divergence -1.58% from PTAX 0.046231: AwesomeAPI bid 0.0455 (threshold 1.50%; closing PTAX of 2020-03-17 13:09 -03)",
      );
      expect(describeTransition({ transition: "firing", alert: { ...alert, pair: "USD-BRL", average: 5.427 } })).toContain("from PTAX 5.4270:");
    });

    test("--rescan keeps the delivered episodes (same ids), leaves the firing one alone, supersedes what other settings no longer find", async () => {
      const live = await divergenceRows();
      expect(live.map((row) => row.status)).toEqual(["resolved", "resolved", "resolved", "resolved", "firing"]);
      const count = received.length;
      expect(asSpans(await rescanDivergence(db.sql, PAIR, DEFAULTS))).toEqual(EPISODES);
      expect(await divergenceRows()).toEqual(live); // history found each one again: no copy, same ids
      const wide = { thresholdPct: 2.5, recoveryPct: 2 };
      expect(await rescanDivergence(db.sql, PAIR, wide)).toEqual([]);
      expect([...(await divergenceRows())]).toEqual(live.map((row) => ({ ...row, superseded: row.status === "resolved" })));
      await rescanDivergence(db.sql, PAIR, DEFAULTS);
      expect(await divergenceRows()).toEqual(live);
      expect(received.length).toBe(count); // a rescan sends nothing
      // The deviation rescan leaves divergence alerts alone.
      await rescan(db.sql, PAIR, { ...PARAMS, threshold: 0.5, recovery: 0.4 });
      expect(await divergenceRows()).toEqual(live);
    });
  });
});
