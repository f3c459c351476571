import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { rm } from "node:fs/promises";
import { evaluateSeries, loadAnalysisConfig, paramsFor, rescan, saoPauloDayStart } from "../analysis.ts";
import { connectUrl, finishRun, loadDailySeries, recordFailedRun, recordSkippedRun, saveQuotes, startRun, type QuoteBuckets, type Sql, type StoredQuote } from "../database.ts";
import { createApp, staleSince, type DashboardApp, type DashboardOptions, type FeedStatus } from "../dashboard.ts";
import type { AlertRow, PairInfo, RunRow } from "../public/api.js";
import type { QuotesAnswer } from "../public/chart-data.js";
import { runScript } from "./support/cli.ts";
import { makeTempDir, useTestDatabase } from "./support/database.ts";
import { loadPtaxSeries, pointTime } from "./support/fake_awesomeapi.ts";
import { sampleQuote } from "./support/quotes.ts";

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
    expect(await response.text()).toBe("ts,bid,ask,high,low\n2021-06-01T15:00:00.000Z,7.12345678901234567890,7.2,7.30,\n");
    const day = await (await appFor(db.sql).request("/api/quotes.csv?pair=USD-BRL&from=2021-06-01T12:00:00Z&to=2021-06-01T12:30:00Z")).text();
    expect(day.trim().split("\n")).toEqual([
      "ts,bid,ask,high,low",
      "2021-06-01T12:00:00.000Z,5.1000,5.2000,5.6061,5.4716",
      "2021-06-01T12:10:00.000Z,5.1001,5.2001,5.6061,5.4716",
      "2021-06-01T12:20:00.000Z,5.1002,5.2002,5.6061,5.4716",
      "2021-06-01T12:30:00.000Z,5.1003,5.2003,5.6061,5.4716",
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
    for (const [, labelName] of labels.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="(?:[^"\\]|\\.)*"/g)) expect(["pair", "kind"]).toContain(labelName!);
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
