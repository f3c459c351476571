/**
 * bun bench/dashboard_page.ts [--rows 3700000] [--loads 15]: how long Chromium takes from
 * navigation to the dashboard's chart drawn, over a large stored history (issue 11's target: 1 s).
 *
 * A throwaway embedded PostgreSQL holds `--rows` minute quotes of USD-BRL ending now (3.7 M: ten
 * years); the real app serves it on loopback. Each load opens a fresh browser context (a first
 * visit: empty cache) and reads, inside the page, the time since navigation start at which
 * uPlot drew the history (`__cotacao.state.drawnAt`) and when /api/quotes's answer arrived.
 * The baselines, measured in the same run: navigation to a static blank page on another loopback
 * server, up to its load event (interleaved with the dashboard's loads), and the chart's request
 * alone, from Bun (the server's share). Medians of `--loads` loads each, after
 * one warm-up round. Headless Chromium is Debian's (/usr/bin/chromium).
 */
import { chmod, mkdtemp, rm } from "node:fs/promises";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import type { Browser } from "playwright-core";
import * as v from "valibot";
import { loadAnalysisConfig } from "../lib/rule.ts";
import { createApp } from "../dashboard.ts";
import { startEmbeddedServer, stopEmbeddedServer } from "../lib/embedded_server.ts";
import { describeError } from "../lib/errors.ts";
import { migrate } from "../lib/migrations.ts";
import { connectUrl, type Sql } from "../lib/pool.ts";
import { refreshRollups } from "../lib/views.ts";
import { readBenchOptions } from "./options.ts";
import { MISSING_CHROMIUM, hasChromium, launchChromium } from "../test/support/browser.ts";

const PAIR = "USD-BRL";
const DEFAULT_ROWS = 3_700_000;
const DEFAULT_LOADS = 15;
const TARGET_MS = 1_000;
const LOAD_TIMEOUT_MS = 30_000;
const BLANK_PAGE = "<!doctype html><html><head><meta charset=utf-8><title>blank</title></head><body></body></html>";

const FlagsSchema = v.object({
  rows: v.pipe(v.string(), v.transform(Number), v.integer("--rows must be a whole number"), v.minValue(1_000, "--rows must be at least 1000"), v.maxValue(20_000_000, "--rows must be at most 20000000")),
  loads: v.pipe(v.string(), v.transform(Number), v.integer("--loads must be a whole number"), v.minValue(10, "--loads must be at least 10"), v.maxValue(200, "--loads must be at most 200")),
});

const USAGE = `Usage: bun bench/dashboard_page.ts [--rows ${DEFAULT_ROWS}] [--loads ${DEFAULT_LOADS}]

Chromium's time from navigation to the dashboard's chart drawn, over --rows minute quotes of
${PAIR} in a throwaway embedded PostgreSQL, against navigation to a blank page (median of --loads).`;

function percentile(samples: readonly number[], p: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil(p * sorted.length) - 1)] ?? Number.NaN;
}

/** `rows` minute quotes of PAIR ending now: a slow wave plus a weekly one, four decimals. */
async function loadQuotes(sql: Sql, rows: number): Promise<void> {
  await sql`
    insert into quotes (pair, ts, bid, ask, source, fetched_at)
    select ${PAIR}, ts, bid, bid + 0.0010, 'bench', ts
    from (
      select ts, round((5 + 0.4 * sin(extract(epoch from ts) / 3456000) + 0.3 * sin(extract(epoch from ts) / 604800))::numeric, 4) as bid
      from generate_series(date_trunc('minute', now()) - (${rows - 1} * interval '1 minute'), date_trunc('minute', now()), interval '1 minute') as ts
    ) minutes`;
  // What `bun dashboard.ts` does when it starts: the rollups of what was written (sql/006).
  await refreshRollups(sql);
  await sql`vacuum analyze`;
}

interface Sample {
  /** ms from navigation start */
  drawn: number;
  quotesAnswered: number;
}

/** One first visit of the dashboard: when the chart was drawn, and when /api/quotes answered. */
async function loadDashboard(browser: Browser, url: string): Promise<Sample> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  try {
    const page = await context.newPage();
    page.setDefaultTimeout(LOAD_TIMEOUT_MS);
    await page.goto(url, { waitUntil: "commit" });
    await page.waitForFunction(() => (globalThis as any).__cotacao?.state.drawnAt != null && (globalThis as any).__cotacao.chart != null);
    return await page.evaluate(() => {
      const quotes = performance.getEntriesByType("resource").find((entry) => new URL(entry.name).pathname === "/api/quotes") as PerformanceResourceTiming | undefined;
      return { drawn: (globalThis as any).__cotacao.state.drawnAt as number, quotesAnswered: quotes?.responseEnd ?? Number.NaN };
    });
  } finally {
    await context.close();
  }
}

/** One first visit of a blank page: its load event, from navigation start. */
async function loadBlank(browser: Browser, url: string): Promise<number> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  try {
    const page = await context.newPage();
    page.setDefaultTimeout(LOAD_TIMEOUT_MS);
    await page.goto(url, { waitUntil: "load" });
    return await page.evaluate(() => (performance.getEntriesByType("navigation")[0] as PerformanceNavigationTiming).loadEventEnd);
  } finally {
    await context.close();
  }
}

async function main(args: string[]): Promise<number> {
  const options = readBenchOptions(args, { rows: String(DEFAULT_ROWS), loads: String(DEFAULT_LOADS) }, FlagsSchema, USAGE, "bench/dashboard_page.ts");
  if (typeof options === "number") return options;
  if (!hasChromium) {
    console.error(`Cannot run the benchmark: ${MISSING_CHROMIUM}`);
    return 1;
  }
  const root = await mkdtemp(join(tmpdir(), "cotacao-bench-page-"));
  await chmod(root, 0o755);
  const dataDir = join(root, "pg");
  let sql: Sql | undefined;
  let browser: Browser | undefined;
  const stops: (() => Promise<void>)[] = [];
  try {
    const { server } = await startEmbeddedServer(dataDir);
    sql = connectUrl(server.url, { max: 10 });
    await migrate(sql);
    const began = performance.now();
    await loadQuotes(sql, options.rows);
    console.log(`${options.rows.toLocaleString("en-US")} minute quotes of ${PAIR} loaded and vacuumed in ${((performance.now() - began) / 1000).toFixed(1)} s`);

    const app = createApp(sql, { analysis: loadAnalysisConfig({}) });
    const dashboard = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: app.fetch, idleTimeout: 0 });
    stops.push(async () => {
      await dashboard.stop(true);
      await app.close();
    });
    const blank = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response(BLANK_PAGE, { headers: { "content-type": "text/html; charset=utf-8" } }) });
    stops.push(() => blank.stop(true));
    const dashboardUrl = `http://127.0.0.1:${dashboard.port}/`;
    const blankUrl = `http://127.0.0.1:${blank.port}/`;

    // The server's share: the chart's request, from Bun, as the page sends it.
    const quotesUrl = `${dashboardUrl}api/quotes?pair=${PAIR}&points=1500`;
    const serverMs: number[] = [];
    for (let i = 0; i <= options.loads; i++) {
      const started = performance.now();
      const response = await fetch(quotesUrl);
      await response.arrayBuffer();
      if (!response.ok) throw new Error(`Cannot run the benchmark: ${quotesUrl} answered HTTP ${response.status}`);
      // The first is a warm-up.
      if (i > 0) serverMs.push(performance.now() - started);
    }

    browser = await launchChromium();
    // Warm-up: Chromium's own start-up, the server's first queries and PostgreSQL's caches.
    await loadBlank(browser, blankUrl);
    await loadDashboard(browser, dashboardUrl);
    // Chromium, Bun and PostgreSQL share the machine's cores: a busy machine slows every row.
    const loadBefore = loadavg()[0] ?? Number.NaN;
    const blanks: number[] = [];
    const pages: Sample[] = [];
    for (let i = 0; i < options.loads; i++) {
      blanks.push(await loadBlank(browser, blankUrl));
      pages.push(await loadDashboard(browser, dashboardUrl));
    }

    const row = (name: string, samples: number[]) =>
      console.log(
        `${name.padEnd(44)} ${percentile(samples, 0.5).toFixed(0).padStart(7)} ${percentile(samples, 0.9).toFixed(0).padStart(7)} ${Math.min(...samples).toFixed(0).padStart(7)} ${Math.max(...samples).toFixed(0).padStart(7)}`,
      );
    console.log(`\n${options.loads} first visits each, interleaved, ms from navigation start (Chromium ${browser.version()}, headless);`);
    console.log(`load average ${loadBefore.toFixed(1)} before, ${(loadavg()[0] ?? Number.NaN).toFixed(1)} after, on ${availableParallelism()} cores:`);
    console.log(`${"".padEnd(44)} ${"median".padStart(7)} ${"p90".padStart(7)} ${"min".padStart(7)} ${"max".padStart(7)}`);
    row("baseline: blank page, load event", blanks);
    row("server alone: GET /api/quotes (from Bun)", serverMs);
    row("dashboard: /api/quotes answered", pages.map((sample) => sample.quotesAnswered));
    row("dashboard: chart drawn", pages.map((sample) => sample.drawn));
    const median = percentile(pages.map((sample) => sample.drawn), 0.5);
    console.log(`\ntarget (issue 11): chart drawn <= ${TARGET_MS} ms after navigation: median ${median.toFixed(0)} ms: ${median <= TARGET_MS ? "PASS" : "MISS"}`);
    return 0;
  } catch (error) {
    console.error(describeError(error, "run the benchmark").line);
    return 1;
  } finally {
    await browser?.close();
    for (const stop of stops.reverse()) await stop().catch(() => {});
    await sql?.end({ timeout: 5 });
    await stopEmbeddedServer(dataDir).catch(() => {});
    await rm(root, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  process.exitCode = await main(Bun.argv.slice(2));
}
