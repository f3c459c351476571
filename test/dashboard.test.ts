import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { rm } from "node:fs/promises";
import { connect as netConnect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { saoPauloDayStart } from "../lib/calendar.ts";
import { connect } from "../lib/connect.ts";
import { connectUrl, type Sql } from "../lib/pool.ts";
import { startEmbeddedServer, stopEmbeddedServer } from "../lib/embedded_server.ts";
import { migrate } from "../lib/migrations.ts";
import type { StoredQuote } from "../lib/quote.ts";
import { loadDailySeries, type QuoteBuckets } from "../lib/views.ts";
import { finishRun, recordFailedRun, recordSkippedRun, saveOfficialRates, saveQuotes, startRun } from "../database.ts";
import type { OfficialRate } from "../lib/official.ts";
import { evaluateSeries, loadAnalysisConfig, paramsFor } from "../lib/rule.ts";
import { rescan } from "../analysis.ts";
import { createApp, staleSince, type DashboardApp, type DashboardOptions, type FeedStatus } from "../dashboard.ts";
import type { AlertRow, PairInfo, RunRow } from "../public/api.js";
import type { QuotesAnswer } from "../public/chart-data.js";
import { runScript } from "./support/cli.ts";
import { makeTempDir, useTestDatabase } from "./support/database.ts";
import { loadPtaxSeries, pointTime } from "./support/fake_awesomeapi.ts";
import { sampleQuote } from "./support/quotes.ts";
import { useTestTimeout } from "./support/timeout.ts";

useTestTimeout();

const ANALYSIS = loadAnalysisConfig({});
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";
// PTAX from 2019 to 2021: the March 2020 stress fires alerts.
const PTAX = loadPtaxSeries().filter((point) => point.date >= "2019-01-01" && point.date <= "2021-12-31");
const NEWEST = pointTime(PTAX.at(-1)!);

function ptaxQuotes(): StoredQuote[] {
  return PTAX.map((point) => sampleQuote({ ts: pointTime(point), bid: point.bid, ask: point.bid, high: null, low: null, varBid: null, pctChange: null }));
}

/** Ten-minute quotes over `hours` hours from `start`, bids 5.1000, 5.1001, ... (exact decimals). */
function intraday(start: Date, hours: number, pair = "USD-BRL"): StoredQuote[] {
  return Array.from({ length: hours * 6 }, (_, i) =>
    sampleQuote({ pair, ts: new Date(start.getTime() + i * 600_000), bid: (5.1 + i / 10_000).toFixed(4), ask: (5.2 + i / 10_000).toFixed(4) }),
  );
}

const apps: DashboardApp[] = [];
function appFor(sql: Sql, options: Partial<DashboardOptions> = {}): DashboardApp {
  const app = createApp(sql, { analysis: ANALYSIS, now: () => new Date(NEWEST.getTime() + 60_000), ...options });
  apps.push(app);
  return app;
}
afterAll(async () => {
  for (const app of apps) await app.close();
});

// The answers as the routes send them; the page's typedefs where it reads them too.
type PairsAnswer = { pairs: PairInfo[] };
type QuotesBody = QuotesAnswer & { resolution: QuoteBuckets["resolution"]; points: number };
/** GET /api/latest: nulls on an empty database, previousClose only when there are quotes. */
type LatestAnswer = {
  pair: string;
  ts: string | null;
  bid: string | null;
  ask: string | null;
  previousClose?: string | null;
  changePct: number | null;
  ageSeconds: number | null;
  status: FeedStatus;
  gaps?: { from: string; to: string; message: string }[];
};
type AlertsAnswer = { alerts: AlertRow[]; next: string | null; total: number };
type RunsAnswer = { runs: RunRow[] };
/** GET /healthz when it answers 503. */
type UnhealthyAnswer = { ok: false; reason: string };
/** Any 4xx or 5xx the app answers itself. */
type ErrorAnswer = { error: string };

/** A response's JSON as `T`: the shape the route sends, which the assertions then check. */
async function json<T>(response: Response): Promise<T> {
  return (await response.json()) as T;
}

/** A stream's text as it arrives: until() reads until `done` says the text so far is enough, or fails after `timeoutMs`. */
function textReader(body: ReadableStream<Uint8Array>) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let text = "";
  return {
    async until(done: (text: string) => boolean, timeoutMs = 10_000): Promise<string> {
      const deadline = Date.now() + timeoutMs;
      while (!done(text)) {
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`nothing matching within ${timeoutMs} ms; got: ${text}`);
        const chunk = await Promise.race([reader.read(), Bun.sleep(left).then(() => null)]);
        if (chunk === null) continue;
        if (chunk.done) throw new Error(`the stream ended; got: ${text}`);
        text += decoder.decode(chunk.value, { stream: true });
      }
      return text;
    },
    /** Reads to the stream's end: true, with all of it in `text()`; false if it goes on past timeoutMs. */
    async end(timeoutMs = 10_000): Promise<boolean> {
      const deadline = Date.now() + timeoutMs;
      for (let left = timeoutMs; left > 0; left = deadline - Date.now()) {
        const chunk = await Promise.race([reader.read(), Bun.sleep(left).then(() => null)]);
        if (chunk === null) return false;
        if (chunk.done) return true;
        text += decoder.decode(chunk.value, { stream: true });
      }
      return false;
    },
    text: () => text,
    cancel: () => reader.cancel(),
  };
}

/** The SSE messages of `text` with the given event name. */
function messages(text: string, event: string): { id: string; data: any }[] {
  return text
    .split("\n\n")
    .filter((block) => block.includes(`event: ${event}\n`))
    .map((block) => ({ id: /^id: (.*)$/m.exec(block)?.[1] ?? "", data: JSON.parse(/^data: (.*)$/m.exec(block)?.[1] ?? "null") }));
}

describe("the dashboard's history API", () => {
  const db = useTestDatabase();
  const dayStart = new Date("2021-06-01T12:00:00Z");
  beforeAll(async () => {
    await saveQuotes(db.sql, ptaxQuotes());
    await saveQuotes(db.sql, [...intraday(dayStart, 24), sampleQuote({ pair: "EUR-BRL", ts: new Date("2021-06-01T15:00:00Z"), bid: "6.1234", ask: "6.1299" })]);
  });

  test("GET /api/pairs gives each pair's first and last quote and count", async () => {
    const body = await json<PairsAnswer>(await appFor(db.sql).request("/api/pairs"));
    const [stored] = await db.sql<{ n: number }[]>`select count(*)::int as n from quotes where pair = 'USD-BRL'`;
    // One intraday quote falls on a PTAX quote's time (17:00 in São Paulo) and replaces it.
    expect(stored!.n).toBe(PTAX.length + 143);
    expect(body.pairs).toEqual([
      { pair: "EUR-BRL", first: "2021-06-01T15:00:00.000Z", last: "2021-06-01T15:00:00.000Z", count: 1 },
      { pair: "USD-BRL", first: pointTime(PTAX[0]!).toISOString(), last: NEWEST.toISOString(), count: stored!.n },
    ]);
  });

  test("GET /api/quotes of a range that fits gives every quote as stored (bucketSeconds 0)", async () => {
    const response = await appFor(db.sql).request("/api/quotes?pair=usd-brl&from=2021-06-01T12:00:00Z&to=2021-06-01T13:00:00Z");
    expect(response.status).toBe(200);
    const body = await json<QuotesBody>(response);
    expect(body).toMatchObject({ pair: "USD-BRL", from: "2021-06-01T12:00:00.000Z", to: "2021-06-01T13:00:00.000Z", bucketSeconds: 0, points: 7 });
    expect(body.data[0]).toEqual(Array.from({ length: 7 }, (_, i) => dayStart.getTime() / 1000 + i * 600));
    expect(body.data[4]).toEqual([5.1, 5.1001, 5.1002, 5.1003, 5.1004, 5.1005, 5.1006]);
  });

  test("GET /api/quotes downsamples to at most `points` buckets of first, min, max and last, at every resolution", async () => {
    const app = appFor(db.sql);
    // A spike in the middle of the intraday quotes, and one in the daily history.
    await saveQuotes(db.sql, [sampleQuote({ ts: new Date("2021-06-01T18:05:00Z"), bid: "9.9999", ask: "9.9999" })]);
    const cases: { query: string; resolution: QuoteBuckets["resolution"]; spike: boolean }[] = [
      { query: "from=2021-06-01T12:00:00Z&to=2021-06-01T15:00:00Z&points=5", resolution: "quote", spike: false },
      { query: "from=2021-06-01T12:00:00Z&to=2021-06-02T12:00:00Z&points=10", resolution: "hour", spike: true },
      { query: "points=40", resolution: "day", spike: true },
    ];
    for (const { query, resolution, spike } of cases) {
      const body = await json<QuotesBody>(await app.request(`/api/quotes?pair=USD-BRL&${query}`));
      const points = Number(new URLSearchParams(query).get("points"));
      expect(body.resolution).toBe(resolution);
      expect(body.bucketSeconds).toBeGreaterThan(0);
      expect(body.points).toBeLessThanOrEqual(points);
      expect(body.points).toBeGreaterThan(points / 3);
      const [ts, first, min, max, last] = body.data as number[][];
      for (let i = 0; i < ts!.length; i++) {
        expect(min![i]!).toBeLessThanOrEqual(Math.min(first![i]!, last![i]!));
        expect(max![i]!).toBeGreaterThanOrEqual(Math.max(first![i]!, last![i]!));
        if (i > 0) expect(ts![i]! - ts![i - 1]!).toBeGreaterThanOrEqual(body.bucketSeconds);
      }
      if (spike) expect(Math.max(...max!)).toBe(9.9999);
    }
    // The hourly and daily rollups hold the first and last quote of the range exactly.
    const whole = await json<QuotesBody>(await app.request("/api/quotes?points=40"));
    expect(whole.data[1][0]).toBe(Number(PTAX[0]!.bid));
    expect(whole.data[4].at(-1)).toBe(Number(PTAX.at(-1)!.bid));
  });

  test("the moving average and its band are, day for day, what bun analysis.ts --days prints", async () => {
    const body = await json<QuotesBody>(await appFor(db.sql).request("/api/quotes?pair=USD-BRL&from=2020-01-01&to=2020-12-31"));
    const [days, ma, lower, upper] = body.ma!.data;
    expect(body.ma).toMatchObject({ windowDays: 20, thresholdPct: 3 });
    expect(days[0]).toBe(saoPauloDayStart("2020-01-02").getTime() / 1000);
    expect(days.at(-1)).toBe(saoPauloDayStart("2020-12-31").getTime() / 1000);
    // The rule's own maths over the rule's own series: equal to the last bit.
    const series = await loadDailySeries(db.sql, "USD-BRL");
    const evaluation = evaluateSeries(series, paramsFor(ANALYSIS, "USD-BRL"));
    const first = series.dates.indexOf("2020-01-02");
    days.forEach((_, i) => {
      expect(ma[i]).toBe(evaluation.average[first + i]!);
      expect(lower[i]).toBe(evaluation.average[first + i]! * 0.97);
      expect(upper[i]).toBe(evaluation.average[first + i]! * 1.03);
    });
    // And what the command prints.
    const cli = await runScript("analysis.ts", ["--days", "--pair", "USD-BRL", "--json"], { env: { DATABASE_URL: db.url } });
    expect(cli.code).toBe(0);
    const printed = (JSON.parse(cli.stdout) as { date: string; average: number | null }[]).filter((day) => day.date >= "2020-01-01" && day.date <= "2020-12-31");
    expect(printed.length).toBe(days.length);
    printed.forEach((day, i) => expect(day.average).toBe(ma[i] === null ? null : Number(ma[i]!.toFixed(6))));
  }, 30_000);

  test("history answers carry an ETag and answer 304 to If-None-Match", async () => {
    const app = appFor(db.sql);
    const first = await app.request("/api/quotes?pair=USD-BRL&points=100");
    const etag = first.headers.get("ETag");
    expect(etag).toMatch(/^"[0-9a-z]+"$/);
    const again = await app.request("/api/quotes?pair=USD-BRL&points=100", { headers: { "If-None-Match": etag! } });
    expect(again.status).toBe(304);
    expect(await again.text()).toBe("");
    const other = await app.request("/api/quotes?pair=USD-BRL&points=101", { headers: { "If-None-Match": etag! } });
    expect(other.status).toBe(200);
  });

  test("GET /api/quotes.csv streams every quote of the range with its decimals exactly as stored", async () => {
    await saveQuotes(db.sql, [sampleQuote({ pair: "GBP-BRL", ts: new Date("2021-06-01T15:00:00Z"), bid: "7.12345678901234567890", ask: "7.2", high: "7.30", low: null })]);
    const response = await appFor(db.sql).request("/api/quotes.csv?pair=GBP-BRL");
    expect(response.status).toBe(200);
    expect(response.headers.get("Content-Type")).toStartWith("text/csv");
    expect(response.headers.get("Content-Disposition")).toBe('attachment; filename="cotacao-GBP-BRL-2021-06-01-2021-06-01.csv"');
    expect(await response.text()).toBe("ts,bid,ask,high,low,ptax_bulletin,ptax_buy,ptax_sell\n2021-06-01T15:00:00.000Z,7.12345678901234567890,7.2,7.30,,,,\n");
    const day = await (await appFor(db.sql).request("/api/quotes.csv?pair=USD-BRL&from=2021-06-01T12:00:00Z&to=2021-06-01T12:30:00Z")).text();
    expect(day.trim().split("\n")).toEqual([
      "ts,bid,ask,high,low,ptax_bulletin,ptax_buy,ptax_sell",
      "2021-06-01T12:00:00.000Z,5.1000,5.2000,5.6061,5.4716,,,",
      "2021-06-01T12:10:00.000Z,5.1001,5.2001,5.6061,5.4716,,,",
      "2021-06-01T12:20:00.000Z,5.1002,5.2002,5.6061,5.4716,,,",
      "2021-06-01T12:30:00.000Z,5.1003,5.2003,5.6061,5.4716,,,",
    ]);
  });

  test("bad parameters answer 400 naming the parameter, an unknown pair 404; never a 500", async () => {
    const app = appFor(db.sql);
    const cases: [string, number, string][] = [
      ["/api/quotes?pair=XYZ-BRL", 404, "XYZ-BRL"],
      ["/api/quotes?pair=dollar", 400, "pair"],
      [`/api/quotes?pair=${encodeURIComponent("USD-BRL'; drop table quotes; --")}`, 400, "pair"],
      [`/api/quotes?from=${encodeURIComponent("2020-01-01' or 1=1 --")}`, 400, "from"],
      ["/api/quotes?from=2021-01-02&to=2021-01-01", 400, "from"],
      ["/api/quotes?from=2021-01-01&to=2021-01-01T00:00:00-03:00", 400, "from"],
      ["/api/quotes?from=yesterday", 400, "from"],
      ["/api/quotes?to=2021-02-30", 400, "to"],
      ["/api/quotes?from=2024-13-45", 400, "from"],
      ["/api/quotes?to=2021-06-01T25:00:00Z", 400, "to"],
      ["/api/quotes?from=2021-06-01T12:00:00", 400, "from"],
      ["/api/quotes?points=0", 400, "points"],
      ["/api/quotes?points=1", 400, "points"],
      ["/api/quotes?points=10001", 400, "points"],
      ["/api/quotes?points=99999999999999999999", 400, "points"],
      ["/api/quotes?points=1e3", 400, "points"],
      ["/api/quotes?points=-5", 400, "points"],
      ["/api/quotes.csv?pair=XYZ-BRL", 404, "XYZ-BRL"],
      ["/api/quotes.csv?from=nope", 400, "from"],
      ["/api/latest?pair=XYZ-BRL", 404, "XYZ-BRL"],
      ["/api/latest?pair=%00", 400, "pair"],
      ["/api/alerts?pair=XYZ-BRL", 404, "XYZ-BRL"],
      ["/api/alerts?from=2021-01-02&to=2021-01-01", 400, "from"],
      ["/api/alerts?limit=501", 400, "limit"],
      ["/api/alerts?before=42", 400, "before"],
      ["/api/alerts?before=2020-03-09T20:00:00Z_42", 400, "before"],
      ["/api/alerts?before=2020-02-30T20:00:00.000000Z_42", 400, "before"],
      ["/api/alerts?before=2020-03-09T20:00:00.000000Z_1;drop", 400, "before"],
      ["/api/runs?limit=0", 400, "limit"],
      ["/api/runs?limit=ten", 400, "limit"],
      ["/api/stream", 400, "Last-Event-ID"],
      ["/no/such/page", 404, "no such page"],
    ];
    for (const [path, status, named] of cases) {
      const response = await app.request(path, path === "/api/stream" ? { headers: { "Last-Event-ID": "1; drop table" } } : {});
      const body = await json<ErrorAnswer>(response);
      expect({ path, status: response.status }).toEqual({ path, status });
      expect(body.error).toContain(named);
      expect(body.error).toStartWith("Cannot answer: ");
      expect(response.headers.get("Cache-Control")).toBe("no-store");
    }
    const [stored] = await db.sql<{ n: number }[]>`select count(*)::int as n from quotes`;
    expect(stored?.n).toBeGreaterThan(PTAX.length);
  });

  test("every answer carries the security headers: a CSP without inline script, nosniff, no referrer, no framing", async () => {
    const app = appFor(db.sql);
    for (const path of ["/", "/api/pairs", "/api/quotes?points=0", "/nope", "/vendor/uPlot.iife.min.js", "/api/quotes.csv?pair=EUR-BRL"]) {
      const response = await app.request(path);
      expect(response.headers.get("Content-Security-Policy")).toBe(CSP);
      expect(response.headers.get("X-Content-Type-Options")).toBe("nosniff");
      expect(response.headers.get("Referrer-Policy")).toBe("no-referrer");
      expect(response.headers.get("X-Frame-Options")).toBe("DENY");
      await response.arrayBuffer();
    }
  });

  test("the page, its files and uPlot are served from the project, whatever the working directory; nothing outside", async () => {
    const app = appFor(db.sql);
    const page = await app.request("/");
    expect(page.status).toBe(200);
    expect(await page.text()).toContain("<title>cotacao</title>");
    const script = await app.request("/vendor/uPlot.iife.min.js");
    expect(script.status).toBe(200);
    expect(script.headers.get("Content-Type")).toStartWith("text/javascript");
    expect(await script.text()).toContain("uPlot");
    const css = await app.request("/vendor/uPlot.min.css");
    expect(css.headers.get("Content-Type")).toStartWith("text/css");
    for (const path of ["/../database.ts", "/%2e%2e/database.ts", "/vendor/..%2fpackage.json", "/vendor/uPlot.esm.js"]) {
      const response = await app.request(path);
      expect(response.status).toBe(404);
      expect(await response.text()).not.toContain("import");
    }
  });

  test("index.html runs app.js alone, as a module; every module it imports, however deep, is served as JavaScript and preloaded", async () => {
    const app = appFor(db.sql);
    const html = await (await app.request("/")).text();
    const scripts = [...html.matchAll(/<script\b[^>]*>/g)].map((match) => match[0]);
    // No inline script (the CSP forbids it): each has a src, and the one module is app.js.
    expect(scripts.every((tag) => / src="\/[^"]+"/.test(tag))).toBe(true);
    expect(scripts.filter((tag) => tag.includes('type="module"'))).toEqual(['<script src="/app.js" type="module">']);
    const preloaded = new Set([...html.matchAll(/<link rel="modulepreload" href="([^"]+)">/g)].map((match) => match[1]!));
    const served = new Set<string>();
    const queue = ["/app.js"];
    for (let path = queue.shift(); path !== undefined; path = queue.shift()) {
      if (served.has(path)) continue;
      served.add(path);
      const response = await app.request(path);
      expect(response.status, path).toBe(200);
      expect(response.headers.get("Content-Type"), path).toStartWith("text/javascript");
      const code = await response.text();
      for (const [, specifier] of code.matchAll(/^import\s[^;]*?from\s+"(\.\/[^"]+)";/gm)) queue.push(new URL(specifier!, `http://page${path}`).pathname);
    }
    expect(served).toContain("/chart.js");
    expect(served).toContain("/chart-data.js");
    // Preloaded, so that the import graph's depth costs no round trip before the first chart.
    expect([...served].filter((path) => path !== "/app.js" && !preloaded.has(path))).toEqual([]);
    expect([...preloaded].filter((path) => !served.has(path))).toEqual([]);
  });
});

describe("the card, alerts and runs", () => {
  const db = useTestDatabase();
  beforeAll(async () => {
    await saveQuotes(db.sql, ptaxQuotes());
    await rescan(db.sql, "USD-BRL", paramsFor(ANALYSIS, "USD-BRL"));
  });

  test("GET /api/latest gives the newest quote with its decimals as stored, its change and age, live", async () => {
    const body = await json<LatestAnswer>(await appFor(db.sql).request("/api/latest?pair=usd-brl"));
    const [previous, last] = PTAX.slice(-2);
    expect(body).toMatchObject({ pair: "USD-BRL", ts: NEWEST.toISOString(), bid: last!.bid, ask: last!.bid, ageSeconds: 60 });
    expect(body.changePct).toBeCloseTo((Number(last!.bid) / Number(previous!.bid) - 1) * 100, 10);
    expect(body.status).toMatchObject({ state: "live", since: null });
  });

  test("GET /api/latest names the days too old for a run to fill, with the command that loads them, until loaded", async () => {
    expect((await json<LatestAnswer>(await appFor(db.sql).request("/api/latest"))).gaps).toEqual([]);
    await db.sql`insert into quote_gaps (pair, from_day, to_day) values ('USD-BRL', '2021-06-01', '2021-07-30')`;
    try {
      const body = await json<LatestAnswer>(await appFor(db.sql).request("/api/latest"));
      expect(body.gaps).toEqual([
        {
          from: "2021-06-01",
          to: "2021-07-30",
          message: "USD-BRL has no quotes from 2021-06-01 to 2021-07-30, further back than a run fills in; load them with: bun main_pipeline.ts --pairs USD-BRL --from 2021-06-01 --to 2021-07-30",
        },
      ]);
    } finally {
      await db.sql`delete from quote_gaps`;
    }
  });

  test("a quote older than the staleness setting in market time is stale, since the moment it became so", async () => {
    // 2021-12-31 is a Friday: the market closes at 17:00 New York. Two hours of market time after the last quote.
    const app = appFor(db.sql, { now: () => new Date("2022-01-04T12:00:00Z") });
    const body = await json<LatestAnswer>(await app.request("/api/latest"));
    const since = staleSince(NEWEST, 2 * 3_600_000);
    expect(body.status).toMatchObject({ state: "stale", since: since.toISOString() });
    expect(body.status.message).toContain("stale since");
    const weekend = await json<LatestAnswer>(await appFor(db.sql, { now: () => new Date("2022-01-01T18:00:00Z") }).request("/api/latest"));
    expect(weekend.status.state).toBe("live");
  });

  test("GET /api/alerts lists the episodes, newest first, within a range", async () => {
    const app = appFor(db.sql);
    const all = await json<AlertsAnswer>(await app.request("/api/alerts?pair=USD-BRL"));
    expect(all.alerts.length).toBeGreaterThan(0);
    const fired = all.alerts.map((alert) => alert.firedAt);
    expect(fired).toEqual([...fired].sort().reverse());
    expect(all.alerts[0]).toMatchObject({ pair: "USD-BRL", kind: "deviation", state: "resolved", windowDays: 20 });
    expect(typeof all.alerts[0]!.price).toBe("string");
    const march = await json<AlertsAnswer>(await app.request("/api/alerts?pair=USD-BRL&from=2020-03-01&to=2020-03-31"));
    expect(march.alerts.length).toBeGreaterThan(0);
    for (const alert of march.alerts) {
      expect(alert.firedAt <= "2020-04-01").toBe(true);
      expect(alert.resolvedAt! >= "2020-03-01").toBe(true);
    }
    expect(march.alerts.length).toBeLessThan(all.alerts.length);
  });

  test("GET /api/alerts keeps a delivered episode a rescan no longer finds, with supersededAt", async () => {
    const app = appFor(db.sql);
    const [newest] = (await json<AlertsAnswer>(await app.request("/api/alerts?pair=USD-BRL&limit=1"))).alerts;
    expect(newest?.supersededAt).toBeNull();
    await db.sql`
      insert into alert_notifications (alert_id, transition, endpoint, payload, delivered_at)
      values (${newest!.id}, 'resolved', 'test', '{}', now())`;
    const params = paramsFor(ANALYSIS, "USD-BRL");
    await rescan(db.sql, "USD-BRL", { ...params, threshold: 0.5, recovery: 0.4 }); // settings under which nothing strays
    const kept = await json<AlertsAnswer>(await app.request("/api/alerts?pair=USD-BRL"));
    expect(kept.alerts.map((alert) => [alert.id, typeof alert.supersededAt])).toEqual([[newest!.id, "string"]]);
    await rescan(db.sql, "USD-BRL", params); // set back: found again
    const again = await json<AlertsAnswer>(await app.request("/api/alerts?pair=USD-BRL"));
    expect(again.alerts.find((alert) => alert.id === newest!.id)?.supersededAt).toBeNull();
  });

  test("GET /api/alerts pages: each answer's next cursor gives the older ones, none twice, none left out, with the total", async () => {
    const app = appFor(db.sql);
    const all = await json<AlertsAnswer>(await app.request("/api/alerts?pair=USD-BRL&limit=500"));
    expect(all.next).toBeNull();
    expect(all.total).toBe(all.alerts.length);
    expect(all.alerts.length).toBeGreaterThan(12);
    const paged: AlertRow[] = [];
    let before: string | null = null;
    let pages = 0;
    do {
      const page: AlertsAnswer = await json<AlertsAnswer>(await app.request(`/api/alerts?pair=USD-BRL&limit=5${before ? `&before=${encodeURIComponent(before)}` : ""}`));
      expect(page.total).toBe(all.total);
      expect(page.alerts.length).toBeLessThanOrEqual(5);
      paged.push(...page.alerts);
      before = page.next;
      pages++;
    } while (before !== null && pages < 100);
    expect(pages).toBe(Math.ceil(all.total / 5));
    expect(paged.map((alert) => alert.id)).toEqual(all.alerts.map((alert) => alert.id));
  });

  test("GET /api/runs lists runs newest first; a failing pipeline shows on the card from its first failure", async () => {
    const app = appFor(db.sql);
    const ok = await startRun(db.sql, ["USD-BRL"]);
    await finishRun(db.sql, ok, { status: "succeeded", fetched: 1, inserted: 1, updated: 0 });
    const firstFailure = await recordFailedRun(db.sql, ["USD-BRL"], "Cannot run: the lock");
    const second = await startRun(db.sql, ["USD-BRL"]);
    await finishRun(db.sql, second, { status: "failed", fetched: 0, inserted: 0, updated: 0, error: "Cannot fetch: HTTP 522", failedStep: "fetch" });
    const runs = (await json<RunsAnswer>(await app.request("/api/runs?limit=2"))).runs;
    expect(runs.map((run) => run.id)).toEqual([second, firstFailure]);
    expect(runs[0]).toMatchObject({ status: "failed", pairs: ["USD-BRL"], rowsFetched: 0, error: "Cannot fetch: HTTP 522", failedStep: "fetch" });
    const [started] = await db.sql<{ at: Date }[]>`select started_at as at from pipeline_runs where id = ${firstFailure}`;
    const body = await json<LatestAnswer>(await appFor(db.sql).request("/api/latest"));
    expect(body.status).toMatchObject({ state: "failing", since: started!.at.toISOString() });
    expect(body.status.message).toContain("HTTP 522");
    const fixed = await startRun(db.sql, ["USD-BRL"]);
    await finishRun(db.sql, fixed, { status: "succeeded", fetched: 1, inserted: 0, updated: 0 });
    expect((await json<LatestAnswer>(await appFor(db.sql).request("/api/latest"))).status.state).toBe("live");
  });

  test("GET /healthz is 200 while the data is fresh and 503 with the reason once it is stale", async () => {
    const fresh = await appFor(db.sql).request("/healthz");
    expect(fresh.status).toBe(200);
    expect(await json(fresh)).toMatchObject({ ok: true, pairs: [{ pair: "USD-BRL", stale: false }] });
    const stale = await appFor(db.sql, { now: () => new Date("2022-01-10T12:00:00Z") }).request("/healthz");
    expect(stale.status).toBe(503);
    expect((await json<UnhealthyAnswer>(stale)).reason).toContain("stale: USD-BRL");
  });

  test("GET /metrics follows Prometheus's rules: HELP and TYPE once each, units in the names, labels from fixed sets, finite values", async () => {
    const run = await startRun(db.sql, ["USD-BRL"]);
    await finishRun(db.sql, run, { status: "succeeded", fetched: 1, inserted: 0, updated: 0, unchanged: 1 });
    const response = await appFor(db.sql).request("/metrics");
    expect(response.headers.get("Content-Type")).toBe("text/plain; version=0.0.4; charset=utf-8");
    const series = exposition(await response.text());
    const last = PTAX.at(-1)!;
    const daily = await loadDailySeries(db.sql, "USD-BRL");
    const rule = evaluateSeries(daily, paramsFor(ANALYSIS, "USD-BRL"));
    expect(series.get('cotacao_quote_bid{pair="USD-BRL"}')).toBe(Number(last.bid));
    expect(series.get('cotacao_quote_ask{pair="USD-BRL"}')).toBe(Number(last.bid));
    expect(series.get('cotacao_quote_age_seconds{pair="USD-BRL"}')).toBe(60);
    expect(series.get('cotacao_quote_clock_skew_seconds{pair="USD-BRL"}')).toBe(0);
    expect(series.get('cotacao_quote_timestamp_seconds{pair="USD-BRL"}')).toBe(NEWEST.getTime() / 1000);
    expect(series.get('cotacao_quote_moving_average{pair="USD-BRL"}')).toBeCloseTo(rule.average.at(-1)!, 12);
    expect(series.get('cotacao_quote_deviation_ratio{pair="USD-BRL"}')).toBeCloseTo(rule.deviation.at(-1)!, 12);
    expect(series.get('cotacao_alerts_firing{pair="USD-BRL",kind="stale"}')).toBe(0);
    expect(series.get("cotacao_database_up{}")).toBe(1);
    expect(series.get("cotacao_last_run_success{}")).toBe(1);
    expect(series.get("cotacao_last_run_id{}")).toBe(run);
    expect(series.get('cotacao_pair_last_run_success{pair="USD-BRL"}')).toBe(1);
    expect(series.get("cotacao_runs_skipped_locked_total{}")).toBe(0);
    expect(series.get("cotacao_last_run_duration_seconds{}")).toBeGreaterThanOrEqual(0);
  });

  test("GET /metrics keeps the same series from run to run: the run's id is a value, never a label", async () => {
    const app = appFor(db.sql);
    const before = exposition(await (await app.request("/metrics")).text());
    const id = await startRun(db.sql, ["USD-BRL"]);
    await finishRun(db.sql, id, { status: "succeeded", fetched: 1, inserted: 0, updated: 0, unchanged: 1 });
    const after = exposition(await (await app.request("/metrics")).text());
    expect([...after.keys()].sort()).toEqual([...before.keys()].sort());
    expect(after.get("cotacao_last_run_id{}")).toBe(id);
    expect(after.get('cotacao_pair_last_run_success{pair="USD-BRL"}')).toBe(1);
  });

  test("a run that stood aside for the lock is counted, and turns nothing red: the card, /metrics", async () => {
    const app = appFor(db.sql);
    const ok = await startRun(db.sql, ["USD-BRL"]);
    await finishRun(db.sql, ok, { status: "succeeded", fetched: 1, inserted: 0, updated: 0, unchanged: 1 });
    const before = exposition(await (await app.request("/metrics")).text()).get("cotacao_runs_skipped_locked_total{}")!;
    await recordSkippedRun(db.sql, ["USD-BRL"], "Cannot run the pipeline: another run has held the lock for over 30 s; let it finish, or raise --lock-timeout");
    const after = exposition(await (await appFor(db.sql).request("/metrics")).text());
    expect(after.get("cotacao_runs_skipped_locked_total{}")).toBe(before + 1);
    expect(after.get('cotacao_pair_last_run_success{pair="USD-BRL"}')).toBe(1);
    expect(after.get("cotacao_last_run_id{}")).toBe(ok);
    expect(after.get("cotacao_last_run_success{}")).toBe(1);
    expect((await json<LatestAnswer>(await appFor(db.sql).request("/api/latest"))).status.state).toBe("live");
  });

  test("a quote stamped ahead of the server's clock is 0 s old, never negative; the skew is a metric of its own", async () => {
    const app = appFor(db.sql, { now: () => new Date(NEWEST.getTime() - 144_000) });
    const series = exposition(await (await app.request("/metrics")).text());
    expect(series.get('cotacao_quote_age_seconds{pair="USD-BRL"}')).toBe(0);
    expect(series.get('cotacao_quote_market_age_seconds{pair="USD-BRL"}')).toBe(0);
    expect(series.get('cotacao_quote_clock_skew_seconds{pair="USD-BRL"}')).toBe(144);
    const health = await json<{ pairs: { ageSeconds: number }[] }>(await app.request("/healthz"));
    expect(health.pairs[0]!.ageSeconds).toBe(0);
  });
});

/** A business day's five PTAX bulletins (10h to 13h São Paulo), buy rates `buys`, sell = buy + 0.0006. */
function bulletins(day: string, buys: [string, string, string, string, string], pair = "USD-BRL"): OfficialRate[] {
  const times = ["10:04:27.1", "11:04:27.12", "12:04:27.123", "13:01:27.1234", "13:04:27.123456"];
  const kinds = ["opening", "intermediate", "intermediate", "intermediate", "closing"] as const;
  return buys.map((buy, i) => ({ pair, publishedAt: `${day}T${times[i]}-03:00`, bulletin: kinds[i]!, buy, sell: (Number(buy) + 0.0006).toFixed(4) }));
}

describe("the official source (PTAX) in the API, the CSV and /metrics", () => {
  const db = useTestDatabase();
  // Monday 2024-06-03: ten-minute quotes from 09:00 to 15:00 São Paulo (12:00Z to 18:00Z), bids
  // 5.1000, 5.1001, ...; the closing PTAX at 13:04:27.123456 (16:04:27Z) is nearest the 16:00Z
  // quote (4 min 27 s before), bid 5.1024. Friday 2024-05-31 has bulletins and no quote.
  const now = () => new Date("2024-06-03T18:10:00Z");
  beforeAll(async () => {
    await saveQuotes(db.sql, intraday(new Date("2024-06-03T12:00:00Z"), 6));
    await saveOfficialRates(db.sql, [
      ...bulletins("2024-05-31", ["5.2000", "5.2010", "5.2020", "5.2030", "5.2015"]),
      ...bulletins("2024-06-03", ["5.0800", "5.0850", "5.0950", "5.1000", "5.0900"]),
    ]);
  });
  // By hand: 100 × (5.1024 − 5.0900) / 5.0900 = 0.24361493...; six places.
  const DIVERGENCE = "0.243615";

  test("GET /api/official: every bulletin of the range, digits exact, São Paulo times; the day's cross-check; an ETag", async () => {
    const app = appFor(db.sql, { now });
    const all = await app.request("/api/official?pair=USD-BRL");
    expect(all.status).toBe(200);
    const body = await json<{ pair: string; bulletins: Omit<OfficialRate, "pair">[]; divergence: { day: string; buy: string; bid: string; match: string; divergencePct: string }[] }>(all);
    expect(body.bulletins.length).toBe(10);
    expect(body.bulletins.at(-1)).toEqual({ publishedAt: "2024-06-03T13:04:27.123456-03:00", bulletin: "closing", buy: "5.0900", sell: "5.0906" });
    expect(body.bulletins[0]!.publishedAt).toBe("2024-05-31T10:04:27.100000-03:00");
    expect(body.divergence).toMatchObject([{ day: "2024-06-03", buy: "5.0900", bid: "5.1024", match: "nearest", divergencePct: DIVERGENCE }]);
    const day = await json<typeof body>(await app.request("/api/official?pair=USD-BRL&from=2024-06-03&to=2024-06-03"));
    expect(day.bulletins.map((b) => b.bulletin)).toEqual(["opening", "intermediate", "intermediate", "intermediate", "closing"]);
    const friday = await json<typeof body>(await app.request("/api/official?pair=USD-BRL&to=2024-05-31"));
    expect({ bulletins: friday.bulletins.length, divergence: friday.divergence }).toEqual({ bulletins: 5, divergence: [] });
    const etag = all.headers.get("ETag");
    expect(etag).toMatch(/^"[0-9a-z]+"$/);
    expect((await app.request("/api/official?pair=USD-BRL", { headers: { "If-None-Match": etag! } })).status).toBe(304);
  });

  test("GET /api/official: bad parameters 400 naming them; a pair PTAX does not publish has none, and says which it does", async () => {
    const app = appFor(db.sql, { now });
    const cases: [string, number, string][] = [
      ["/api/official?pair=dollar", 400, "pair"],
      ["/api/official?from=2024-13-01", 400, "from"],
      ["/api/official?from=2024-06-03&to=2024-06-01", 400, "from"],
    ];
    for (const [path, status, text] of cases) {
      const response = await app.request(path);
      expect({ path, status: response.status }).toEqual({ path, status });
      expect((await json<ErrorAnswer>(response)).error).toContain(text);
    }
    const bitcoin = await app.request("/api/official?pair=BTC-BRL");
    expect(bitcoin.status).toBe(200);
    expect(await json(bitcoin)).toMatchObject({ pair: "BTC-BRL", covered: false, bulletins: [], divergence: [], message: expect.stringContaining("covers USD-BRL, EUR-BRL") });
    // A pair PTAX publishes but nothing is stored for yet: empty, covered.
    expect(await json(await app.request("/api/official?pair=SEK-BRL"))).toMatchObject({ covered: true, bulletins: [], divergence: [] });
  });

  test("GET /api/quotes.csv: each PTAX bulletin is a row of its own among the quotes, in time order, in the ptax_ columns", async () => {
    const csv = await (await appFor(db.sql, { now }).request("/api/quotes.csv?pair=USD-BRL&from=2024-06-03T15:50:00Z&to=2024-06-03T16:10:00Z")).text();
    expect(csv.trim().split("\n")).toEqual([
      "ts,bid,ask,high,low,ptax_bulletin,ptax_buy,ptax_sell",
      "2024-06-03T15:50:00.000Z,5.1023,5.2023,5.6061,5.4716,,,",
      "2024-06-03T16:00:00.000Z,5.1024,5.2024,5.6061,5.4716,,,",
      "2024-06-03T16:01:27.123Z,,,,,intermediate,5.1000,5.1006",
      "2024-06-03T16:04:27.123Z,,,,,closing,5.0900,5.0906",
      "2024-06-03T16:10:00.000Z,5.1025,5.2025,5.6061,5.4716,,,",
    ]);
    // A bulletin after the last quote of the range still comes out.
    const tail = await (await appFor(db.sql, { now }).request("/api/quotes.csv?pair=USD-BRL&from=2024-06-03T15:50:00Z&to=2024-06-03T16:05:00Z")).text();
    expect(tail.trim().split("\n").at(-1)).toBe("2024-06-03T16:04:27.123Z,,,,,closing,5.0900,5.0906");
  });

  test("GET /api/latest: the card gets the newest bulletin and the newest cross-check", async () => {
    const latest = await json<LatestAnswer & { official: unknown }>(await appFor(db.sql, { now }).request("/api/latest?pair=USD-BRL"));
    expect(latest.official).toMatchObject({
      bulletin: "closing",
      publishedAt: "2024-06-03T13:04:27.123456-03:00",
      buy: "5.0900",
      sell: "5.0906",
      divergence: { day: "2024-06-03", bid: "5.1024", divergencePct: DIVERGENCE },
    });
  });

  test("GET /metrics: cotacao_official_rate by side and cotacao_divergence_percent, by the exposition's rules", async () => {
    const series = exposition(await (await appFor(db.sql, { now }).request("/metrics")).text());
    expect(series.get('cotacao_official_rate{pair="USD-BRL",side="buy"}')).toBe(5.09);
    expect(series.get('cotacao_official_rate{pair="USD-BRL",side="sell"}')).toBe(5.0906);
    expect(series.get('cotacao_divergence_percent{pair="USD-BRL"}')).toBe(Number(DIVERGENCE));
    expect(series.get('cotacao_alerts_firing{pair="USD-BRL",kind="divergence"}')).toBe(0);
  });
});

/**
 * The samples of a Prometheus text exposition by series (`name{labels}`), after checking the
 * rules promtool and the naming guide state: HELP and TYPE once each, before the samples; a
 * counter's name ends in _total; labels only from small fixed sets (never an id or a time,
 * which start a new series every run); every value finite; no age below 0.
 */
function exposition(text: string): Map<string, number> {
  const help = new Set<string>();
  const types = new Map<string, string>();
  const series = new Map<string, number>();
  for (const line of text.trimEnd().split("\n")) {
    const comment = /^# (HELP|TYPE) ([a-z_:][a-z0-9_:]*) (.+)$/.exec(line);
    if (comment) {
      const [, kind, name, rest] = comment as unknown as [string, string, string, string];
      if (kind === "HELP") {
        expect({ line, twice: help.has(name) }).toEqual({ line, twice: false });
        help.add(name);
      } else {
        expect({ line, twice: types.has(name), type: ["gauge", "counter"].includes(rest) }).toEqual({ line, twice: false, type: true });
        types.set(name, rest);
      }
      continue;
    }
    const sample = /^([a-z_:][a-z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    expect({ line, sample: sample !== null }).toEqual({ line, sample: true });
    const [, name, labels = "", value] = sample as unknown as [string, string, string | undefined, string];
    expect({ name, help: help.has(name), type: types.has(name) }).toEqual({ name, help: true, type: true });
    if (types.get(name) === "counter") expect(name).toEndWith("_total");
    if (/_(age|duration|skew)(_|$)/.test(name)) expect(name).toEndWith("_seconds");
    for (const [, labelName] of labels.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="(?:[^"\\]|\\.)*"/g)) expect(["pair", "kind", "side"]).toContain(labelName!);
    const number = Number(value);
    expect({ line, finite: Number.isFinite(number) }).toEqual({ line, finite: true });
    if (/_(age|skew)_seconds$/.test(name)) expect({ line, negative: number < 0 }).toEqual({ line, negative: false });
    series.set(`${name}{${labels}}`, number);
  }
  return series;
}

describe("alert pages", () => {
  // A database of its own: the pair made here would be stale for the other tests' /healthz.
  const db = useTestDatabase();

  test("GET /api/alerts pages alerts that started in the same microsecond without losing one", async () => {
    await saveQuotes(db.sql, [sampleQuote({ pair: "GBP-BRL", bid: "6.9", ask: "7.0" })]);
    const starts = ["2024-08-23 12:00:00.123457+00", "2024-08-23 12:00:00.123456+00", "2024-08-23 12:00:00.123456+00", "2024-08-23 12:00:00.123456+00", "2024-08-23 12:00:00.123455+00"];
    for (const [i, start] of starts.entries()) {
      await db.sql`
        insert into alerts (pair, kind, direction, status, started_at, last_seen_at, resolved_at, fingerprint)
        values ('GBP-BRL', 'deviation', 'up', 'resolved', ${start}::text::timestamptz, ${start}::text::timestamptz, ${start}::text::timestamptz, ${`paging-${i}`})`;
    }
    const app = appFor(db.sql);
    const ids: number[] = [];
    let before: string | null = null;
    for (let page = 0; page < 10; page++) {
      const body: AlertsAnswer = await json<AlertsAnswer>(await app.request(`/api/alerts?pair=GBP-BRL&limit=2${before ? `&before=${encodeURIComponent(before)}` : ""}`));
      ids.push(...body.alerts.map((alert) => alert.id));
      before = body.next;
      if (before === null) break;
      expect(before).toMatch(/^2024-08-23T12:00:00\.12345\dZ_\d+$/);
    }
    const expected = await db.sql<{ id: number }[]>`select id::int from alerts where pair = 'GBP-BRL' order by started_at desc, id desc`;
    expect(ids).toEqual(expected.map((row) => row.id));
    expect(new Set(ids).size).toBe(5);
  });
});

describe("an empty database", () => {
  const db = useTestDatabase();

  test("the card says there is no data yet and how to load it; /healthz is 503 with that reason", async () => {
    const app = appFor(db.sql);
    const latest = await json<LatestAnswer>(await app.request("/api/latest"));
    expect(latest).toMatchObject({ pair: "USD-BRL", ts: null, bid: null, status: { state: "empty" } });
    expect(latest.status.message).toContain("bun main_pipeline.ts");
    expect((await json<PairsAnswer>(await app.request("/api/pairs"))).pairs).toEqual([]);
    const health = await app.request("/healthz");
    expect(health.status).toBe(503);
    expect((await json<UnhealthyAnswer>(health)).reason).toContain("no data yet");
    expect((await app.request("/api/quotes")).status).toBe(404);
  });
});

describe("a database that does not answer", () => {
  test("/healthz says PostgreSQL at host:port cannot be reached and what to try; to a probe without the token, one word", async () => {
    const closed = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const port = closed.port;
    closed.stop(true);
    const sql = connectUrl(`postgres://cotacao:s3cret@127.0.0.1:${port}/cotacao`, { max: 1, connectTimeoutSeconds: 1 });
    try {
      const health = await appFor(sql).request("/healthz");
      expect(health.status).toBe(503);
      const { reason } = await json<UnhealthyAnswer>(health);
      expect(reason).toStartWith(`Cannot reach the database: PostgreSQL at 127.0.0.1:${port} cannot be reached (ECONNREFUSED); check that the server is running`);
      expect(reason).not.toContain("committed");
      expect(reason).not.toContain("s3cret");
      const probe = await appFor(sql, { token: "correct-horse-battery-staple" }).request("/healthz");
      expect({ status: probe.status, body: await probe.text() }).toEqual({ status: 503, body: '{"ok":false,"status":"degraded","reason":"database"}' });
    } finally {
      await sql.end({ timeout: 1 });
    }
  });

  test("/healthz is 503 saying so, /metrics reports the database down, the live feed and the API 503 (the browser retries)", async () => {
    const dir = await makeTempDir();
    // A socket folder with no server in it.
    const sql = connectUrl(`postgresql://cotacao@localhost/cotacao?host=${dir}`, { max: 1, connectTimeoutSeconds: 1 });
    try {
      const app = appFor(sql);
      const health = await app.request("/healthz");
      expect(health.status).toBe(503);
      expect((await json<UnhealthyAnswer>(health)).reason).toStartWith("Cannot reach the database: ");
      expect(await (await app.request("/metrics")).text()).toContain("cotacao_database_up 0\n");
      const stream = await app.request("/api/stream");
      expect(stream.status).toBe(503);
      expect((await json<ErrorAnswer>(stream)).error).toStartWith("Cannot follow the live feed: ");
      // A pool each: postgres.js waits longer before each new attempt on a pool that keeps failing.
      for (const path of ["/api/latest", "/api/pairs", "/api/quotes", "/api/runs"]) {
        const pool = connectUrl(`postgresql://cotacao@localhost/cotacao?host=${dir}`, { max: 1, connectTimeoutSeconds: 1 });
        try {
          const answer = await appFor(pool).request(path);
          expect({ path, status: answer.status, retryAfter: answer.headers.get("Retry-After") }).toEqual({ path, status: 503, retryAfter: "5" });
          expect((await json<ErrorAnswer>(answer)).error).toBe("Cannot answer: the database is not reachable; try again shortly");
        } finally {
          await pool.end({ timeout: 1 });
        }
      }
    } finally {
      await sql.end({ timeout: 1 });
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("the token", () => {
  const db = useTestDatabase();
  const token = "correct-horse-battery-staple";

  test("without a token the dashboard is open", async () => {
    expect((await appFor(db.sql).request("/api/pairs")).status).toBe(200);
  });

  test("with a token: 401 without it or with a wrong one, 200 with the Bearer header", async () => {
    const app = appFor(db.sql, { token });
    const none = await app.request("/api/pairs");
    expect(none.status).toBe(401);
    expect(none.headers.get("WWW-Authenticate")).toContain("Bearer");
    expect(none.headers.get("Content-Security-Policy")).toBe(CSP);
    expect((await json<ErrorAnswer>(none)).error).toContain("DASHBOARD_TOKEN");
    expect((await app.request("/", {})).status).toBe(401);
    expect((await app.request("/api/pairs", { headers: { Authorization: `Bearer ${token}x` } })).status).toBe(401);
    expect((await app.request("/api/pairs", { headers: { Authorization: `Bearer ${token.slice(1)}` } })).status).toBe(401);
    expect((await app.request("/api/pairs", { headers: { Authorization: `Bearer ${token}` } })).status).toBe(200);
  });

  test("?token= once sets an HttpOnly, SameSite=Strict cookie and redirects to the URL without it; the cookie then lets requests in", async () => {
    const app = appFor(db.sql, { token });
    const wrong = await app.request("/?token=guess");
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get("Set-Cookie")).toBeNull();
    const first = await app.request(`/api/pairs?token=${token}&x=1`);
    expect(first.status).toBe(303);
    expect(first.headers.get("Location")).toBe("/api/pairs?x=1");
    const cookie = first.headers.get("Set-Cookie")!;
    expect(cookie).toContain("HttpOnly");
    expect(cookie).toContain("SameSite=Strict");
    expect(cookie).not.toContain(token);
    const session = cookie.split(";")[0]!;
    expect((await app.request("/api/pairs?x=1", { headers: { Cookie: session } })).status).toBe(200);
    expect((await app.request("/api/pairs", { headers: { Cookie: `${session}0` } })).status).toBe(401);
  });
});

describe("the token, for a load balancer and a Prometheus server", () => {
  const db = useTestDatabase();
  const token = "correct-horse-battery-staple";
  beforeAll(async () => {
    await saveQuotes(db.sql, [sampleQuote({ ts: NEWEST, bid: "5.4321", ask: "5.4331" })]);
  });

  test("/healthz answers without the token: the state and one word, no pair, no data; with the token, the detail", async () => {
    const app = appFor(db.sql, { token });
    const anonymous = await app.request("/healthz");
    expect(anonymous.status).toBe(200);
    expect(await anonymous.text()).toBe('{"ok":true,"status":"ok"}');
    // A wrong or foreign Authorization header is a probe like any other: no 401, no detail.
    const wrong = await app.request("/healthz", { headers: { Authorization: `Bearer ${token}x` } });
    expect({ status: wrong.status, body: await wrong.text() }).toEqual({ status: 200, body: '{"ok":true,"status":"ok"}' });
    const detailed = await app.request("/healthz", { headers: { Authorization: `Bearer ${token}` } });
    expect(await json(detailed)).toMatchObject({ ok: true, status: "ok", pairs: [{ pair: "USD-BRL", stale: false, ageSeconds: 60 }] });

    const later = appFor(db.sql, { token, now: () => new Date("2022-01-10T12:00:00Z") });
    const stale = await later.request("/healthz");
    expect({ status: stale.status, body: await stale.text() }).toEqual({ status: 503, body: '{"ok":false,"status":"degraded","reason":"stale"}' });
    const staleDetail = await json<UnhealthyAnswer>(await later.request("/healthz", { headers: { Authorization: `Bearer ${token}` } }));
    expect(staleDetail.reason).toContain("stale: USD-BRL");
    // Only /healthz is open: everything else still needs the token.
    for (const path of ["/healthz/", "/healthz/x", "/api/latest", "/metrics", "/"]) expect({ path, status: (await app.request(path)).status }).toEqual({ path, status: 401 });
  });

  test("/healthz, open to anyone, costs PostgreSQL one read however many ask at once", async () => {
    let queries = 0;
    const counted = new Proxy(db.sql, { apply: (target, self, args) => (queries++, Reflect.apply(target, self, args)) });
    const app = appFor(counted, { token });
    const answers = await Promise.all(Array.from({ length: 50 }, () => app.request("/healthz")));
    expect(answers.map((answer) => answer.status)).toEqual(Array(50).fill(200));
    expect(queries).toBe(1);
  });

  test("/metrics takes the token as Prometheus's authorization setting sends it: Authorization: Bearer", async () => {
    const app = appFor(db.sql, { token });
    expect((await app.request("/metrics")).status).toBe(401);
    expect((await app.request("/metrics", { headers: { Authorization: `Bearer ${token}x` } })).status).toBe(401);
    const scraped = await app.request("/metrics", { headers: { Authorization: `Bearer ${token}` } });
    expect(scraped.status).toBe(200);
    const series = exposition(await scraped.text());
    expect(series.get('cotacao_quote_bid{pair="USD-BRL"}')).toBe(5.4321);
    expect(series.get('cotacao_quote_ask{pair="USD-BRL"}')).toBe(5.4331);
  });
});

describe("the live feed: GET /api/stream", () => {
  const db = useTestDatabase();
  const later = (minutes: number) => new Date(Date.UTC(2024, 7, 23, 17, minutes));

  async function connectStream(app: DashboardApp, lastEventId?: string) {
    const response = await app.request("/api/stream", lastEventId ? { headers: { "Last-Event-ID": lastEventId } } : {});
    expect(response.status).toBe(200);
    expect(response.headers.get("Content-Type")).toStartWith("text/event-stream");
    const reader = textReader(response.body!);
    await reader.until((text) => text.includes("cotacao live feed"));
    return reader;
  }

  test("a quote stored with a notification reaches a connected client, with an id; a finished run and an alert too", async () => {
    await saveQuotes(db.sql, [sampleQuote({ ts: later(0) })]);
    const app = appFor(db.sql);
    const reader = await connectStream(app);
    try {
      await saveQuotes(db.sql, [sampleQuote({ ts: later(1), bid: "5.5040", ask: "5.5071" })], { notify: true });
      const text = await reader.until((t) => t.includes("event: quote"));
      const [quote] = messages(text, "quote");
      expect(quote!.data).toEqual({ pair: "USD-BRL", ts: later(1).toISOString(), bid: "5.5040", ask: "5.5071" });
      expect(quote!.id).toBe(`${later(1).getTime()}-0-0`);
      const run = await startRun(db.sql, ["USD-BRL"]);
      await finishRun(db.sql, run, { status: "succeeded", fetched: 1, inserted: 1, updated: 0 });
      const runs = messages(await reader.until((t) => t.includes("event: run")), "run");
      expect(runs[0]!.data).toMatchObject({ id: run, status: "succeeded" });
    } finally {
      await reader.cancel();
    }
  });

  test("an alert transition stored by the analysis step reaches a connected client", async () => {
    const { analyse } = await import("../analysis.ts");
    const app = appFor(db.sql);
    const reader = await connectStream(app);
    try {
      // A feed silent for days: the staleness alert fires.
      await analyse(db.sql, ["USD-BRL"], { config: ANALYSIS, now: () => new Date("2024-08-28T15:00:00Z"), deliver: false });
      const alerts = messages(await reader.until((t) => t.includes("event: alert")), "alert");
      expect(alerts[0]!.data).toMatchObject({ pair: "USD-BRL", alertKind: "stale", transition: "firing", state: "firing" });
    } finally {
      await reader.cancel();
    }
  });

  test("Last-Event-ID replays what was stored since that event, then goes on live", async () => {
    const app = appFor(db.sql);
    let reader = await connectStream(app);
    await saveQuotes(db.sql, [sampleQuote({ ts: later(2), bid: "5.6000" })], { notify: true });
    const [seen] = messages(await reader.until((t) => t.includes("event: quote")), "quote");
    await reader.cancel();
    // Stored while the client was away.
    await saveQuotes(db.sql, [sampleQuote({ ts: later(3), bid: "5.6100" }), sampleQuote({ ts: later(4), bid: "5.6200" })], { notify: true });
    reader = await connectStream(app, seen!.id);
    try {
      const replayed = messages(await reader.until((t) => messages(t, "quote").length >= 2), "quote");
      expect(replayed.map((m) => m.data.bid)).toEqual(["5.6100", "5.6200"]);
      await saveQuotes(db.sql, [sampleQuote({ ts: later(5), bid: "5.6300" })], { notify: true });
      const live = messages(await reader.until((t) => messages(t, "quote").length >= 3), "quote");
      expect(live.map((m) => m.data.bid)).toEqual(["5.6100", "5.6200", "5.6300"]);
    } finally {
      await reader.cancel();
    }
  });

  test("sends a heartbeat comment every heartbeatMs", async () => {
    const reader = await connectStream(appFor(db.sql, { heartbeatMs: 50 }));
    try {
      const text = await reader.until((t) => t.split(": heartbeat").length > 2, 5_000);
      expect(text).toContain(": heartbeat\n\n");
    } finally {
      await reader.cancel();
    }
  });

  test("a client that stops reading is let go once 1,000 messages wait for it, instead of holding them all", async () => {
    const response = await appFor(db.sql, { heartbeatMs: 1 }).request("/api/stream");
    expect(response.status).toBe(200);
    // Read nothing while heartbeats pile up: one a millisecond, so 1,000 take about a second.
    await Bun.sleep(2_500);
    const reader = textReader(response.body!);
    try {
      expect(await reader.end(5_000)).toBe(true);
      const heartbeats = reader.text().split(": heartbeat").length - 1;
      expect(heartbeats).toBeGreaterThan(900);
      expect(heartbeats).toBeLessThanOrEqual(1_005);
    } finally {
      await reader.cancel();
    }
  });

  test("after PostgreSQL drops its LISTEN connection (pg_terminate_backend), a later quote still arrives", async () => {
    // A pool of its own, so that terminating its listener touches no other test.
    const sql = connectUrl(db.url, { max: 2 });
    try {
      const app = appFor(sql, { watchdogMs: 200 });
      const reader = await connectStream(app);
      try {
        const killed = await db.sql<{ pid: number }[]>`
          select pg_terminate_backend(pid), pid from pg_stat_activity
          where datname = current_database() and query ilike 'listen%' and pid <> pg_backend_pid()`;
        expect(killed.length).toBeGreaterThan(0);
        // Stored while nobody listened: the feed replays it once it listens again.
        await saveQuotes(db.sql, [sampleQuote({ ts: later(10), bid: "5.7000" })], { notify: true });
        await Bun.sleep(100);
        await saveQuotes(db.sql, [sampleQuote({ ts: later(11), bid: "5.7100" })], { notify: true });
        const quotes = messages(await reader.until((t) => messages(t, "quote").some((m) => m.data.bid === "5.7100")), "quote");
        expect(quotes.map((m) => m.data.bid)).toContain("5.7000");
      } finally {
        await reader.cancel();
      }
    } finally {
      await sql.end({ timeout: 5 });
    }
  });
});

describe("bun dashboard.ts", () => {
  const db = useTestDatabase();

  test("--help says what it does", async () => {
    const result = await runScript("dashboard.ts", ["--help"]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("Usage: bun dashboard.ts");
  });

  test("bad flags and settings exit 2 with one line naming them", async () => {
    const cases: [string[], Record<string, string>, string][] = [
      [["--port", "http"], {}, "--port"],
      [["--port", "70000"], {}, "--port"],
      [[], { PORT: "-1" }, "PORT"],
      [["--colour"], {}, "--colour"],
      [["--host", "0.0.0.0"], {}, "DASHBOARD_TOKEN"],
      [[], { HOST: "192.168.1.10" }, "DASHBOARD_TOKEN"],
      [["--host", "0.0.0.0"], { DASHBOARD_TOKEN: "short" }, "DASHBOARD_TOKEN"],
      [[], { COTACAO_STALE_AFTER: "forever" }, "COTACAO_STALE_AFTER"],
    ];
    for (const [args, env, named] of cases) {
      const result = await runScript("dashboard.ts", args, { env });
      expect({ args, env, code: result.code }).toEqual({ args, env, code: 2 });
      expect(result.stderr.trim().split("\n")).toHaveLength(1);
      expect(result.stderr).toContain(named);
      expect(result.stdout).toBe("");
    }
  });

  test("serves on the port asked for (flags win over PORT), prints the URL, and exits 0 on SIGTERM", async () => {
    const child = Bun.spawn([process.execPath, "dashboard.ts", "--port", "0"], {
      cwd: `${import.meta.dir}/..`,
      env: { ...process.env, DATABASE_URL: db.url, PORT: "1", HOST: "" },
      stdout: "pipe",
      stderr: "pipe",
    });
    try {
      const line = await textReader(child.stdout).until((text) => text.includes("\n"), 20_000);
      const url = /http:\/\/127\.0\.0\.1:(\d+)\//.exec(line);
      expect(url).not.toBeNull();
      const response = await fetch(`http://127.0.0.1:${url![1]}/api/pairs`);
      expect(response.status).toBe(200);
      expect(await response.json()).toEqual({ pairs: [] });
      child.kill("SIGTERM");
      expect(await child.exited).toBe(0);
    } finally {
      child.kill();
    }
  }, 30_000);
});

/** The app served on a real loopback socket (what a browser or curl meets); stop() closes it. */
function serve(app: DashboardApp) {
  const server = Bun.serve({ hostname: "127.0.0.1", port: 0, idleTimeout: 60, fetch: app.fetch });
  return { port: server.port!, stop: () => server.stop(true) };
}

/** A GET on a raw socket: the test decides when it reads and when it hangs up. */
function rawGet(port: number, path: string, headers: Record<string, string> = {}): Socket {
  const socket = netConnect(port, "127.0.0.1");
  const lines = Object.entries({ Host: `127.0.0.1:${port}`, ...headers }).map(([name, value]) => `${name}: ${value}\r\n`);
  socket.write(`GET ${path} HTTP/1.1\r\n${lines.join("")}\r\n`);
  socket.on("error", () => {});
  return socket;
}

/** Resolves once `socket` has received `bytes` bytes (or ended first); the bytes seen so far. */
function received(socket: Socket, bytes: number): Promise<number> {
  return new Promise((resolve) => {
    let seen = 0;
    const onData = (chunk: Buffer) => {
      seen += chunk.length;
      if (seen >= bytes) done();
    };
    const done = () => {
      socket.off("data", onData);
      resolve(seen);
    };
    socket.on("data", onData);
    socket.once("close", done);
  });
}

describe("the CSV export under clients that hang up, stall or read slowly", () => {
  const db = useTestDatabase();
  const EXPORT_QUERY = "%from quotes where pair%";
  beforeAll(async () => {
    // 300,000 minute quotes, about 17 MB of CSV: more than the socket buffers on both sides hold.
    await db.sql`
      insert into quotes (pair, ts, bid, ask, high, low, source)
      select 'EUR-BRL', timestamptz '2020-01-01 00:00Z' + n * interval '1 minute', (6 + n / 1e7)::numeric(9, 7), (6.1 + n / 1e7)::numeric(9, 7), 6.2, 5.9, 'test'
      from generate_series(0, 299999) as n`;
    // As autovacuum would soon after such a load: the planner's estimates match the table.
    await db.sql`analyze quotes`;
  });

  /** Backends of this database still running an export's query (a leaked cursor stays so for good). */
  async function exportBackends(): Promise<number> {
    const [row] = await db.sql<{ n: number }[]>`
      select count(*)::int as n from pg_stat_activity
      where datname = current_database() and pid <> pg_backend_pid() and state <> 'idle' and query like ${EXPORT_QUERY}`;
    return row!.n;
  }

  async function noExportBackendsWithin(timeoutMs: number): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    let left = await exportBackends();
    while (left > 0 && Date.now() < deadline) {
      await Bun.sleep(50);
      left = await exportBackends();
    }
    return left;
  }

  /** /api/latest's status, or "timeout" when it does not answer within `ms`. */
  async function probe(port: number, ms = 2_000): Promise<number | "timeout"> {
    try {
      const response = await fetch(`http://127.0.0.1:${port}/api/latest?pair=EUR-BRL`, { signal: AbortSignal.timeout(ms) });
      await response.arrayBuffer();
      return response.status;
    } catch {
      return "timeout";
    }
  }

  test("downloads cancelled before the first byte or mid-stream leave no backend behind; the API still answers", async () => {
    // As small a pool as the leak needs to show: each cancelled download used to keep one connection for good.
    const sql = connectUrl(db.url, { max: 3 });
    const server = serve(appFor(sql));
    try {
      for (let round = 0; round < 3; round++) {
        // Hung up at once, before the first byte.
        rawGet(server.port, "/api/quotes.csv?pair=EUR-BRL").destroy();
        const early = rawGet(server.port, "/api/quotes.csv?pair=EUR-BRL");
        await Bun.sleep(5);
        early.destroy();
        // Hung up mid-stream, after the first bytes and after a megabyte.
        for (const bytes of [1, 1_000_000]) {
          const socket = rawGet(server.port, "/api/quotes.csv?pair=EUR-BRL");
          expect(await received(socket, bytes)).toBeGreaterThanOrEqual(bytes);
          socket.destroy();
        }
      }
      expect(await noExportBackendsWithin(5_000)).toBe(0);
      expect(await probe(server.port)).toBe(200);
      // And a whole download still works.
      const csv = await (await fetch(`http://127.0.0.1:${server.port}/api/quotes.csv?pair=EUR-BRL&from=2020-01-01T00:00:00Z&to=2020-01-01T00:02:00Z`)).text();
      expect(csv).toBe("ts,bid,ask,high,low,ptax_bulletin,ptax_buy,ptax_sell\n2020-01-01T00:00:00.000Z,6.0000000,6.1000000,6.2,5.9,,,\n2020-01-01T00:01:00.000Z,6.0000001,6.1000001,6.2,5.9,,,\n2020-01-01T00:02:00.000Z,6.0000002,6.1000002,6.2,5.9,,,\n");
    } finally {
      await server.stop();
      await sql.end({ timeout: 5 });
    }
  }, 30_000);

  test("slow and stalled readers hold none of the connections the API needs; beyond the cap 503 with Retry-After; a stalled one is cut off, a slow one not", async () => {
    // The dashboard's own pool size.
    const sql = connectUrl(db.url, { max: 8 });
    const server = serve(appFor(sql, { exportStallMs: 1_500 }));
    const sockets: Socket[] = [];
    try {
      // One reader that reads 50 KB a second, one that never reads past the first bytes.
      const slow = rawGet(server.port, "/api/quotes.csv?pair=EUR-BRL");
      sockets.push(slow);
      let slowBytes = 0;
      slow.on("data", (chunk: Buffer) => {
        slowBytes += chunk.length;
        slow.pause();
        setTimeout(() => slow.resume(), (chunk.length / 50_000) * 1000);
      });
      const stalled = rawGet(server.port, "/api/quotes.csv?pair=EUR-BRL");
      sockets.push(stalled);
      await Promise.all([received(slow, 1), received(stalled, 1)]);
      stalled.pause();
      // Both slots taken: more downloads are refused at once, with when to ask again.
      const refused = rawGet(server.port, "/api/quotes.csv?pair=EUR-BRL");
      sockets.push(refused);
      const answer = await new Promise<string>((resolve) => {
        let text = "";
        refused.on("data", (chunk: Buffer) => {
          text += chunk.toString();
          if (text.includes("\r\n\r\n")) resolve(text);
        });
      });
      expect(answer).toStartWith("HTTP/1.1 503");
      expect(answer).toMatch(/\r\nretry-after: \d+\r\n/i);
      // Meanwhile the API answers, every probe, well within its time.
      for (let i = 0; i < 10; i++) expect(await probe(server.port)).toBe(200);
      // Their backends are busy only while a batch is read (a cursor's stayed so for the whole download).
      expect(await noExportBackendsWithin(2_000)).toBe(0);
      // The stalled reader is cut off (its kernel buffers full, nothing taken for 1.5 s): its slot is free again...
      const small = `http://127.0.0.1:${server.port}/api/quotes.csv?pair=EUR-BRL&from=2020-01-01T00:00:00Z&to=2020-01-01T00:00:30Z`;
      let again = await fetch(small);
      for (const deadline = Date.now() + 10_000; again.status === 503 && Date.now() < deadline; again = await fetch(small)) await Bun.sleep(200);
      expect(again.status).toBe(200);
      expect(await again.text()).toBe("ts,bid,ask,high,low,ptax_bulletin,ptax_buy,ptax_sell\n2020-01-01T00:00:00.000Z,6.0000000,6.1000000,6.2,5.9,,,\n");
      // ...and its download ends short of the whole file (about 15 MB), as a failed download, not a complete one.
      stalled.resume();
      let tail = "";
      stalled.on("data", (chunk: Buffer) => (tail = (tail + chunk.toString("latin1")).slice(-10)));
      const stalledBytes = await received(stalled, Number.POSITIVE_INFINITY);
      expect(stalledBytes).toBeLessThan(14_000_000);
      expect(tail).not.toEndWith("0\r\n\r\n");
      // The slow reader goes on.
      expect(slow.destroyed).toBe(false);
      const before = slowBytes;
      for (const deadline = Date.now() + 5_000; slowBytes === before && Date.now() < deadline; ) await Bun.sleep(50);
      expect(slowBytes).toBeGreaterThan(before);
    } finally {
      for (const socket of sockets) socket.destroy();
      await server.stop();
      await sql.end({ timeout: 5 });
    }
  }, 30_000);
});

describe("the live feed's replays and notifications", () => {
  const db = useTestDatabase();
  const at = (minutes: number) => new Date(Date.UTC(2024, 7, 26, 14, minutes));

  async function connectStream(app: DashboardApp, lastEventId?: string) {
    const response = await app.request("/api/stream", lastEventId ? { headers: { "Last-Event-ID": lastEventId } } : {});
    expect(response.status).toBe(200);
    const reader = textReader(response.body!);
    await reader.until((text) => text.includes("cotacao live feed"));
    return reader;
  }

  test("Last-Event-ID 0-0-0 replays at most the newest 1,000 runs and 1,000 alert transitions, not the whole tables", async () => {
    await db.sql`
      insert into pipeline_runs (started_at, finished_at, status)
      select timestamptz '2024-08-20 00:00Z' + n * interval '1 second', timestamptz '2024-08-20 00:00Z' + n * interval '1 second' + interval '500 ms', 'succeeded'
      from generate_series(1, 3000) as n`;
    await db.sql`
      insert into alerts (pair, kind, status, started_at, last_seen_at, resolved_at, fingerprint, fired_seen_at, resolved_seen_at)
      select 'ZZZ-BRL', 'stale', 'resolved', timestamptz '2024-08-20 00:00Z' + n * interval '1 minute', timestamptz '2024-08-20 00:00Z' + n * interval '1 minute',
             timestamptz '2024-08-20 00:00Z' + n * interval '1 minute', 'replay-test-' || n,
             timestamptz '2024-08-20 00:00Z' + n * interval '1 minute', timestamptz '2024-08-20 00:00Z' + n * interval '1 minute' + interval '1 second'
      from generate_series(1, 1500) as n`;
    const [newest] = await db.sql<{ run: number; alert: number }[]>`select (select max(id)::int from pipeline_runs) as run, (select max(id)::int from alerts) as alert`;
    const reader = await connectStream(appFor(db.sql), "0-0-0");
    try {
      const text = await reader.until((t) => messages(t, "run").some((m) => m.data.id === newest!.run) && messages(t, "alert").some((m) => m.data.id === newest!.alert && m.data.transition === "resolved"));
      const runs = messages(text, "run").map((m) => m.data.id);
      expect(runs).toHaveLength(1_000);
      expect(runs[0]).toBe(newest!.run - 999);
      expect(runs.at(-1)).toBe(newest!.run);
      const alerts = messages(text, "alert");
      expect(alerts).toHaveLength(1_000);
      // Oldest first: the newest 500 episodes, each fired then resolved.
      expect(alerts[0]!.data).toMatchObject({ id: newest!.alert - 499, transition: "firing" });
      expect(alerts.at(-1)!.data).toMatchObject({ id: newest!.alert, transition: "resolved" });
    } finally {
      await reader.cancel();
    }
  });

  test("reconnecting with the server's own Last-Event-ID resends nothing, though stored times have microseconds", async () => {
    const app = appFor(db.sql);
    let reader = await connectStream(app);
    const [run] = await db.sql<{ id: number }[]>`
      insert into pipeline_runs (started_at, finished_at, status) values (now(), now() + interval '1.234567 s', 'succeeded') returning id::int`;
    await db.sql`select pg_notify('quotes', json_build_object('kind', 'run', 'id', ${run!.id}::int, 'status', 'succeeded')::text)`;
    const [sent] = messages(await reader.until((t) => t.includes("event: run")), "run");
    expect(sent!.data.id).toBe(run!.id);
    await reader.cancel();
    for (let round = 0; round < 3; round++) {
      reader = await connectStream(app, sent!.id);
      try {
        // A quote after the reconnection: once it arrives, the replay (sent before live events) is over.
        await saveQuotes(db.sql, [sampleQuote({ ts: at(round), bid: `5.70${round}0` })], { notify: true });
        const text = await reader.until((t) => messages(t, "quote").some((m) => m.data.bid === `5.70${round}0`));
        expect(messages(text, "run")).toEqual([]);
        expect(messages(text, "quote").filter((m) => m.data.bid === `5.70${round}0`)).toHaveLength(1);
      } finally {
        await reader.cancel();
      }
    }
  });

  test("a quote another program stored with a sub-second time and notified reaches the stream, once however often it is notified", async () => {
    const reader = await connectStream(appFor(db.sql));
    try {
      const [row] = await db.sql<{ ts: string }[]>`
        insert into quotes (pair, ts, bid, ask, source) values ('USD-BRL', '2024-08-26 15:00:00.123456+00', 5.4321, 5.4399, 'other')
        returning json_build_object('ts', ts)->>'ts' as ts`;
      expect(row!.ts).toBe("2024-08-26T15:00:00.123456+00:00");
      // As the README says another program notifies: twice, as two writers might.
      for (let i = 0; i < 2; i++) await db.sql`select pg_notify('quotes', json_build_object('kind', 'quote', 'pair', 'USD-BRL', 'ts', ${row!.ts}::text)::text)`;
      // Later than the first: the feed may also replay both from the table (it started with this client), oldest first.
      await saveQuotes(db.sql, [sampleQuote({ ts: at(90), bid: "5.8000" })], { notify: true });
      const text = await reader.until((t) => messages(t, "quote").some((m) => m.data.bid === "5.8000"));
      expect(messages(text, "quote").map((m) => m.data)).toEqual([
        { pair: "USD-BRL", ts: "2024-08-26T15:00:00.123Z", bid: "5.4321", ask: "5.4399" },
        { pair: "USD-BRL", ts: at(90).toISOString(), bid: "5.8000", ask: "5.506" },
      ]);
    } finally {
      await reader.cancel();
    }
  });

  test("a Last-Event-ID from far in the future replays nothing and logs nothing; the feed goes on live", async () => {
    const errors: unknown[] = [];
    const original = console.error;
    console.error = (...args: unknown[]) => errors.push(args);
    try {
      const reader = await connectStream(appFor(db.sql), "999999999999999-999999999999999-999999999999999");
      try {
        await saveQuotes(db.sql, [sampleQuote({ ts: at(2000), bid: "6.3000" })], { notify: true });
        const text = await reader.until((t) => t.includes("event: quote"));
        expect(messages(text, "quote").map((m) => m.data.bid)).toEqual(["6.3000"]);
      } finally {
        await reader.cancel();
      }
    } finally {
      console.error = original;
    }
    expect(errors).toEqual([]);
  });

  test("a quote the source corrects, and corrects back, goes out each time it changes", async () => {
    const reader = await connectStream(appFor(db.sql));
    try {
      const ts = at(200);
      for (const bid of ["6.1000", "6.2000", "6.1000"]) {
        await saveQuotes(db.sql, [sampleQuote({ ts, bid })], { notify: true });
        await reader.until((t) => messages(t, "quote").filter((m) => m.data.ts === ts.toISOString()).at(-1)?.data.bid === bid);
      }
      expect(messages(reader.text(), "quote").map((m) => m.data.bid)).toEqual(["6.1000", "6.2000", "6.1000"]);
    } finally {
      await reader.cancel();
    }
  });

  test("a notification the feed cannot read back costs that change only: the card's memory stays on, later changes arrive", async () => {
    const app = appFor(db.sql);
    const reader = await connectStream(app);
    try {
      await db.sql`select pg_notify('quotes', '{"kind":"quote","pair":"USD-BRL","ts":"garbage"}')`;
      // Notifications are handled in order: once this one arrives, the bad one was handled.
      await saveQuotes(db.sql, [sampleQuote({ pair: "GBP-BRL", ts: at(1120), bid: "5.9000" })], { notify: true });
      await reader.until((t) => messages(t, "quote").some((m) => m.data.bid === "5.9000"));
      const first = await json<LatestAnswer>(await app.request("/api/latest?pair=GBP-BRL"));
      expect(first.bid).toBe("5.9000");
      // A writer that does not notify: the card answers from memory (up to a second) while the
      // feed listens; with its memory off it would read the new quote at once.
      await saveQuotes(db.sql, [sampleQuote({ pair: "GBP-BRL", ts: at(1121), bid: "5.9100" })]);
      const second = await json<LatestAnswer>(await app.request("/api/latest?pair=GBP-BRL"));
      expect(second.bid).toBe("5.9000");
      await saveQuotes(db.sql, [sampleQuote({ pair: "GBP-BRL", ts: at(1122), bid: "5.9200" })], { notify: true });
      await reader.until((t) => messages(t, "quote").some((m) => m.data.bid === "5.9200"));
    } finally {
      await reader.cancel();
    }
  });
});

describe("requests an attacker crafts", () => {
  const db = useTestDatabase();
  const token = "correct-horse-battery-staple";

  test("a Host header naming another site (DNS rebinding) gets 421 and one line; the allowed names, any case and port, get in", async () => {
    const app = appFor(db.sql, { allowedHosts: ["localhost", "127.0.0.1", "[::1]"] });
    for (const host of ["evil.example", "evil.example:8050", "127.0.0.1.evil.example", "localhost.evil.example:8050", "", "[::2]:8050", "127.0.0.1@evil.example"]) {
      const response = await app.request("/api/runs", { headers: { Host: host } });
      expect({ host, status: response.status }).toEqual({ host, status: 421 });
      const body = await json<ErrorAnswer>(response);
      expect(body.error).toStartWith("Cannot answer: ");
      expect(body.error).toContain("DASHBOARD_ALLOWED_HOSTS");
      expect(body.error).not.toContain("\n");
    }
    for (const host of ["127.0.0.1:8050", "localhost", "LOCALHOST:8050", "[::1]:8050"]) {
      const response = await app.request("/api/runs", { headers: { Host: host } });
      expect({ host, status: response.status }).toEqual({ host, status: 200 });
    }
  });

  test("?token= redirects only to a path on this server, never to another site", async () => {
    const app = appFor(db.sql, { token });
    for (const [url, location] of [
      [`http://127.0.0.1//evil.example/x?token=${token}`, "/evil.example/x"],
      [`http://127.0.0.1///evil.example/x?token=${token}&a=1`, "/evil.example/x?a=1"],
      [`http://127.0.0.1/%2F%2Fevil.example/x?token=${token}`, "/%2F%2Fevil.example/x"],
      [`http://127.0.0.1/api/pairs?token=${token}`, "/api/pairs"],
    ] as const) {
      const response = await app.request(url);
      expect({ url, status: response.status, location: response.headers.get("Location") }).toEqual({ url, status: 303, location });
    }
  });

  test("/vendor/__proto__ and kin, and a path with a NUL byte, are 404, not 500", async () => {
    const app = appFor(db.sql);
    const errors: unknown[] = [];
    const original = console.error;
    console.error = (...args: unknown[]) => errors.push(args);
    try {
      for (const path of ["/vendor/__proto__", "/vendor/constructor", "/vendor/toString", "/vendor/hasOwnProperty", "/app.js%00.png", "/%00", "/index.html%00", "/vendor/uPlot.min.css%00"]) {
        const response = await app.request(path);
        expect({ path, status: response.status }).toEqual({ path, status: 404 });
        expect((await json<ErrorAnswer>(response)).error).toStartWith("Cannot answer: ");
      }
    } finally {
      console.error = original;
    }
    expect(errors).toEqual([]);
    expect((await app.request("/app.js")).status).toBe(200);
  });
});

describe("bun dashboard.ts, its port and its Host names", () => {
  const db = useTestDatabase();

  /** Starts `bun dashboard.ts --port 0` with `env`; its port, and stop(). */
  async function startDashboard(env: Record<string, string> = {}) {
    const child = Bun.spawn([process.execPath, "dashboard.ts", "--port", "0"], {
      cwd: `${import.meta.dir}/..`,
      env: { ...process.env, DATABASE_URL: db.url, HOST: "", DASHBOARD_TOKEN: "", DASHBOARD_ALLOWED_HOSTS: "", ...env },
      stdout: "pipe",
      stderr: "pipe",
    });
    const line = await textReader(child.stdout).until((text) => text.includes("\n"), 20_000);
    const port = Number(/http:\/\/127\.0\.0\.1:(\d+)\//.exec(line)?.[1]);
    return {
      port,
      stop: async () => {
        child.kill("SIGTERM");
        await child.exited;
      },
    };
  }

  /** The status line of GET `path` sent with `host` as its Host header. */
  async function statusFor(port: number, path: string, host: string): Promise<string> {
    const socket = rawGet(port, path, { Host: host, Connection: "close" });
    const text = await new Promise<string>((resolve) => {
      let seen = "";
      socket.on("data", (chunk: Buffer) => (seen += chunk.toString()));
      socket.once("close", () => resolve(seen));
    });
    return text.split("\r\n")[0] ?? "";
  }

  test("on loopback with no settings, only the loopback names are answered", async () => {
    const dashboard = await startDashboard();
    try {
      expect(await statusFor(dashboard.port, "/api/runs", `evil.example:${dashboard.port}`)).toBe("HTTP/1.1 421 Misdirected Request");
      expect(await statusFor(dashboard.port, "/metrics", "evil.example")).toBe("HTTP/1.1 421 Misdirected Request");
      expect(await statusFor(dashboard.port, "/api/runs", `127.0.0.1:${dashboard.port}`)).toBe("HTTP/1.1 200 OK");
      expect(await statusFor(dashboard.port, "/api/runs", `localhost:${dashboard.port}`)).toBe("HTTP/1.1 200 OK");
    } finally {
      await dashboard.stop();
    }
  }, 30_000);

  test("DASHBOARD_ALLOWED_HOSTS names the Host names answered; a bad value exits 2 with one line", async () => {
    const dashboard = await startDashboard({ DASHBOARD_ALLOWED_HOSTS: "cotacao.lan, 192.168.1.10" });
    try {
      expect(await statusFor(dashboard.port, "/api/runs", `Cotacao.LAN:${dashboard.port}`)).toBe("HTTP/1.1 200 OK");
      expect(await statusFor(dashboard.port, "/api/runs", "192.168.1.10")).toBe("HTTP/1.1 200 OK");
      expect(await statusFor(dashboard.port, "/api/runs", `127.0.0.1:${dashboard.port}`)).toBe("HTTP/1.1 421 Misdirected Request");
    } finally {
      await dashboard.stop();
    }
    for (const value of ["http://cotacao.lan", "cotacao.lan:8050", "a b", "cotacao.lan,,x"]) {
      const result = await runScript("dashboard.ts", ["--port", "0"], { env: { DASHBOARD_ALLOWED_HOSTS: value } });
      expect({ value, code: result.code }).toEqual({ value, code: 2 });
      expect(result.stderr.trim().split("\n")).toHaveLength(1);
      expect(result.stderr).toContain("DASHBOARD_ALLOWED_HOSTS");
    }
  }, 30_000);

  test("a port in use: one line saying so, exit 1, nothing about rollups or connections", async () => {
    const taken = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("someone else") });
    try {
      const result = await runScript("dashboard.ts", ["--port", String(taken.port)], { env: { DATABASE_URL: db.url } });
      expect(result.code).toBe(1);
      expect(result.stderr.trim().split("\n")).toEqual([
        `Cannot serve the dashboard: port ${taken.port} on 127.0.0.1 is in use by another program; stop it, or pick another port with --port (0 picks a free one)`,
      ]);
      expect(result.stdout).toBe("");
    } finally {
      await taken.stop(true);
    }
  }, 30_000);
});

describe("the embedded server restarting under the dashboard", () => {
  test("with its socket in a per-start temporary folder (a long data path), the dashboard finds the server again after a restart", async () => {
    const root = await makeTempDir();
    const dataDir = join(root, "a-folder-name-long-enough-that-the-socket-path-passes-the-limit-of-sun-path", "pg");
    let sql: Sql | undefined;
    try {
      const first = (await startEmbeddedServer(dataDir, { settings: { fsync: "off" } })).server;
      expect(dirname(first.socketDir)).toBe(tmpdir());
      sql = await connect({ dataDir }, { max: 2 });
      await migrate(sql);
      const app = appFor(sql);
      expect((await app.request("/api/pairs")).status).toBe(200);
      await stopEmbeddedServer(dataDir);
      const second = (await startEmbeddedServer(dataDir, { settings: { fsync: "off" } })).server;
      expect(second.socketDir).not.toBe(first.socketDir);
      // The pool's connections died with the old server; new ones must go to the new socket.
      let status = 0;
      for (const deadline = Date.now() + 15_000; status !== 200 && Date.now() < deadline; ) {
        status = (await app.request("/api/pairs")).status;
        if (status !== 200) await Bun.sleep(100);
      }
      expect(status).toBe(200);
      expect((await app.request("/api/latest")).status).toBe(200);
    } finally {
      await sql?.end({ timeout: 5 });
      await stopEmbeddedServer(dataDir);
      await rm(root, { recursive: true, force: true });
    }
  }, 90_000);
});
