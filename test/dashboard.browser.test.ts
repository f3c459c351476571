/**
 * The dashboard page in a real browser: headless Chromium (Debian's package) driven by
 * playwright-core, against the real app on loopback over a real, seeded PostgreSQL database.
 * Without Chromium the tests say so loudly and skip, unless COTACAO_REQUIRE_BROWSER=1 (CI),
 * which turns the missing browser into a failure.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Browser, BrowserContextOptions, Page } from "playwright-core";
import { loadAnalysisConfig, paramsFor } from "../lib/rule.ts";
import { rescan } from "../analysis.ts";
import { createApp } from "../dashboard.ts";
import { connectUrl, type Sql } from "../lib/pool.ts";
import type { StoredQuote } from "../lib/quote.ts";
import { finishRun, recordFailedRun, saveOfficialRates, saveQuotes, startRun } from "../database.ts";
import { SOURCE_DAILY } from "../lib/quote.ts";
import { SERIES } from "../public/chart-data.js";
import { MESSAGES } from "../public/i18n.js";
import { MISSING_CHROMIUM, hasChromium, launchChromium, screenshot, watchPage, type PageWatch } from "./support/browser.ts";
import { createTestDatabase, dropTestDatabase, useTestDatabase } from "./support/database.ts";
import { loadPtaxSeries, pointTime, type DailyPoint } from "./support/fake_awesomeapi.ts";
import { useTestTimeout } from "./support/timeout.ts";

useTestTimeout();

const REQUIRE_BROWSER = process.env["COTACAO_REQUIRE_BROWSER"] === "1";
const PAGE_TIMEOUT_MS = 15_000;
const TEST_TIMEOUT_MS = 45_000;
const HOOK_TIMEOUT_MS = 120_000;
const LIVE_DEADLINE_MS = 2_000;
const DAY = 86_400;
// A zone far from São Paulo's, so the time-zone toggle has something to show.
const BROWSER_ZONE = "Asia/Tokyo";

if (!hasChromium) console.warn(`\n*** dashboard.browser.test.ts: ${MISSING_CHROMIUM} ***\n`);

test("Chromium is installed wherever COTACAO_REQUIRE_BROWSER=1 (CI) asks for the browser tests", () => {
  if (REQUIRE_BROWSER) expect(hasChromium, MISSING_CHROMIUM).toBe(true);
});

const seconds = (date: Date) => Math.floor(date.getTime() / 1000);

function storedQuote(pair: string, point: DailyPoint): StoredQuote {
  const ts = pointTime(point);
  return { pair, ts, bid: point.bid, ask: point.ask ?? point.bid, high: null, low: null, varBid: null, pctChange: null, source: "test", fetchedAt: ts };
}

/** pt-BR money as the page must show it, written here without the page's code. */
const brl = (value: string | number) =>
  new Intl.NumberFormat("pt-BR", { style: "currency", currency: "BRL", minimumFractionDigits: 4, maximumFractionDigits: 4 }).format(Number(value));
const plain = (text: string | null) => (text ?? "").replace(/\s/g, " ").trim();

/** The real app on an ephemeral loopback port. */
function serve(sql: Sql) {
  const app = createApp(sql, { analysis: loadAnalysisConfig({}), heartbeatMs: 1_000 });
  const server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: app.fetch, idleTimeout: 0 });
  return {
    url: `http://127.0.0.1:${server.port}/`,
    async stop() {
      await server.stop(true);
      await app.close();
    },
  };
}

interface OpenPage {
  page: Page;
  watch: PageWatch;
  close(): Promise<void>;
}

/** A fresh context and page on `url`, once the page says its chart (or empty state) is drawn. */
async function openPage(browser: Browser, url: string, options: BrowserContextOptions = {}): Promise<OpenPage> {
  // A Brazilian browser unless told otherwise: the page follows navigator.languages.
  const context = await browser.newContext({ viewport: { width: 1200, height: 900 }, timezoneId: BROWSER_ZONE, locale: "pt-BR", ...options });
  const page = await context.newPage();
  page.setDefaultTimeout(PAGE_TIMEOUT_MS);
  const watch = watchPage(page);
  await page.goto(url);
  await page.waitForFunction(() => document.documentElement.dataset["drawn"] === "true");
  return { page, watch, close: () => context.close() };
}

/** Nothing went wrong on the page, and it asked nothing of any host but the app's own. */
function expectClean(watch: PageWatch): void {
  expect(watch.pageErrors).toEqual([]);
  expect(watch.consoleErrors).toEqual([]);
  expect(watch.offHost).toEqual([]);
  expect(watch.requests.length).toBeGreaterThan(0);
}

/** The plot area's box on the screen (uPlot's `.u-over`). */
async function plotBox(page: Page) {
  const box = await page.locator("#chart .u-over").boundingBox();
  if (!box) throw new Error("the chart's plot area is not on the page");
  return box;
}

const xScale = (page: Page) =>
  page.evaluate(() => {
    const scale = (globalThis as any).__cotacao.chart.scales.x;
    return { min: scale.min as number, max: scale.max as number };
  });

describe.skipIf(!hasChromium)("the dashboard page in Chromium", () => {
  let browser: Browser | undefined;
  let app: ReturnType<typeof serve> | undefined;
  // Registered before the database's own hooks, so the server stops before its database goes.
  afterAll(async () => {
    await browser?.close();
    await app?.stop();
  }, HOOK_TIMEOUT_MS);
  const db = useTestDatabase();
  const ptax = loadPtaxSeries();
  const newestPtax = ptax.at(-1)!;
  // A second pair for the live test, so that its new quote changes nothing the others look at.
  const euro = ptax.slice(-400).map((point) => ({ ...point, bid: (Number(point.bid) * 1.08).toFixed(4) }));
  // A third, for the live quote that begins a new day (after the newest stored one).
  const pound = ptax.slice(-60).map((point) => ({ ...point, bid: (Number(point.bid) * 1.27).toFixed(4) }));

  beforeAll(async () => {
    await saveQuotes(db.sql, [
      ...ptax.map((point) => storedQuote("USD-BRL", point)),
      ...euro.map((point) => storedQuote("EUR-BRL", point)),
      ...pound.map((point) => storedQuote("GBP-BRL", point)),
    ]);
    await rescan(db.sql, "USD-BRL", paramsFor(loadAnalysisConfig({}), "USD-BRL"));
    await recordFailedRun(db.sql, ["USD-BRL"], "Cannot fetch the latest USD-BRL quotes: the answer (HTTP 522) was an HTML page");
    const run = await startRun(db.sql, ["USD-BRL", "EUR-BRL"]);
    await finishRun(db.sql, run, { status: "succeeded", fetched: 2, inserted: 2, updated: 0 });
    app = serve(db.sql);
    browser = await launchChromium();
  }, HOOK_TIMEOUT_MS);

  test(
    "the page loads the seeded history with no console error and no request leaving loopback",
    async () => {
      const { page, watch, close } = await openPage(browser!, app!.url);
      try {
        expect(plain(await page.textContent("#latest-pair"))).toBe("USD-BRL");
        expect(plain(await page.textContent("#bid"))).toBe(plain(brl(newestPtax.bid)));
        expect(plain(await page.textContent("#status"))).toStartWith("desatualizado desde");
        const drawn = await page.evaluate(() => {
          const { chart, state } = (globalThis as any).__cotacao;
          return { points: chart.data[0].length as number, bucketSeconds: state.loaded.bucketSeconds as number };
        });
        // The whole history, downsampled by the server to at most 1500 buckets.
        expect(drawn.points).toBeGreaterThan(500);
        expect(drawn.bucketSeconds).toBeGreaterThan(0);
        expect(await page.locator("#alerts tr").count()).toBeGreaterThan(0);
        expect(await page.locator("#runs tr.detail").count()).toBe(1);
        const box = await plotBox(page);
        await page.mouse.move(box.x + box.width * 0.8, box.y + box.height / 2);
        await screenshot(page, "dashboard.png");
        expectClean(watch);
      } finally {
        await close();
      }
    },
    TEST_TIMEOUT_MS,
  );

  test(
    "the legend shows the value and São Paulo time of the point under the cursor, or the browser's zone when asked",
    async () => {
      const { page, watch, close } = await openPage(browser!, `${app!.url}?range=1Y`);
      try {
        // A year of daily quotes comes at full resolution: each point is a stored quote.
        expect(await page.evaluate(() => (globalThis as any).__cotacao.state.loaded.bucketSeconds)).toBe(0);
        const box = await plotBox(page);
        const cursorX = box.x + box.width * 0.4;
        await page.mouse.move(cursorX, box.y + box.height / 2);
        await page.waitForFunction(() => (globalThis as any).__cotacao.chart.cursor.idx != null);
        const ts = Number(await page.getAttribute("#legend-time", "data-ts"));
        const point = ptax.find((candidate) => seconds(pointTime(candidate)) === ts);
        expect(point, `no seeded quote at ${new Date(ts * 1000).toISOString()}`).toBeDefined();
        expect(plain(await page.textContent("#legend-bid"))).toBe(plain(brl(point!.bid)));
        // The point is the one under the cursor: within a weekend of the cursor's time.
        const atCursor = await page.evaluate((left) => (globalThis as any).__cotacao.chart.posToVal(left, "x"), cursorX - box.x);
        expect(Math.abs(atCursor - ts)).toBeLessThan(3 * DAY);
        const time = (zone: string) =>
          new Intl.DateTimeFormat("pt-BR", { timeZone: zone, day: "2-digit", month: "2-digit", year: "numeric", hour: "2-digit", minute: "2-digit", hourCycle: "h23" }).format(
            new Date(ts * 1000),
          );
        expect(plain(await page.textContent("#legend-time"))).toBe(plain(time("America/Sao_Paulo")));
        await page.click("#zone");
        expect(await page.getAttribute("#zone", "aria-pressed")).toBe("true");
        await page.mouse.move(cursorX, box.y + box.height / 2 + 5);
        expect(plain(await page.textContent("#legend-time"))).toBe(plain(time(BROWSER_ZONE)));
        expectClean(watch);
      } finally {
        await close();
      }
    },
    TEST_TIMEOUT_MS,
  );

  test(
    "a range button, pressed from the keyboard, shows that range up to the newest quote",
    async () => {
      const { page, watch, close } = await openPage(browser!, app!.url);
      try {
        const newest = seconds(pointTime(newestPtax));
        const all = await xScale(page);
        expect(all.max).toBe(newest);
        expect(all.max - all.min).toBeGreaterThan(25 * 365 * DAY);
        expect(await page.getAttribute('#ranges button[data-range="All"]', "aria-pressed")).toBe("true");
        await page.focus('#ranges button[data-range="1M"]');
        await page.keyboard.press("Enter");
        await page.waitForFunction(() => {
          const { min, max } = (globalThis as any).__cotacao.chart.scales.x;
          return max - min === 30 * 86_400;
        });
        expect(await xScale(page)).toEqual({ min: newest - 30 * DAY, max: newest });
        expect(await page.getAttribute('#ranges button[data-range="1M"]', "aria-pressed")).toBe("true");
        expect(await page.getAttribute('#ranges button[data-range="All"]', "aria-pressed")).toBe("false");
        expect(new URL(page.url()).searchParams.get("range")).toBe("1M");
        expectClean(watch);
      } finally {
        await close();
      }
    },
    TEST_TIMEOUT_MS,
  );

  test(
    "dragging across the chart zooms, then fetches finer data once; a double-click goes back to the range",
    async () => {
      const { page, watch, close } = await openPage(browser!, app!.url);
      try {
        const before = await xScale(page);
        const coarse = await page.evaluate(() => (globalThis as any).__cotacao.state.loaded.bucketSeconds);
        expect(coarse).toBeGreaterThan(0);
        const box = await plotBox(page);
        const y = box.y + box.height / 2;
        const quotesRequests = () => watch.requests.filter((url) => new URL(url).pathname === "/api/quotes").length;
        const requestsBefore = quotesRequests();
        await page.mouse.move(box.x + box.width * 0.5, y);
        await page.mouse.down();
        await page.mouse.move(box.x + box.width * 0.53, y, { steps: 4 });
        await page.mouse.move(box.x + box.width * 0.55, y, { steps: 4 });
        await page.mouse.up();
        // uPlot zooms into the data it has at once; the finer data replaces it when it arrives.
        const zoomed = await xScale(page);
        expect(zoomed.max - zoomed.min).toBeLessThan((before.max - before.min) * 0.1);
        await page.waitForFunction(() => (globalThis as any).__cotacao.state.loaded.bucketSeconds === 0);
        expect(await xScale(page)).toEqual(zoomed);
        // The finer data replaced the chart's under the cursor: the legend still names a point in the zoom.
        expect(plain(await page.textContent("#legend-bid"))).toMatch(/^R\$ \d/);
        const legendTs = Number(await page.getAttribute("#legend-time", "data-ts"));
        expect(legendTs).toBeGreaterThanOrEqual(Math.floor(zoomed.min));
        expect(legendTs).toBeLessThanOrEqual(Math.ceil(zoomed.max));
        expect(quotesRequests() - requestsBefore).toBe(1);
        expect(await page.isVisible("#reset-zoom")).toBe(true);
        await page.mouse.dblclick(box.x + box.width * 0.5, y);
        await page.waitForFunction(() => (globalThis as any).__cotacao.state.zoom === null);
        expect(await xScale(page)).toEqual(before);
        expect(await page.evaluate(() => (globalThis as any).__cotacao.state.loaded.bucketSeconds)).toBe(coarse);
        expect(await page.getAttribute('#ranges button[data-range="All"]', "aria-pressed")).toBe("true");
        expectClean(watch);
      } finally {
        await close();
      }
    },
    TEST_TIMEOUT_MS,
  );

  test(
    "a quote stored with NOTIFY shows on the card and the chart within 2 s, and a finished run in the runs table, without a reload",
    async () => {
      const { page, watch, close } = await openPage(browser!, app!.url);
      try {
        await page.selectOption("#pair", "EUR-BRL");
        await page.waitForFunction(() => document.getElementById("latest-pair")?.textContent === "EUR-BRL" && (globalThis as any).__cotacao.state.presetData !== null);
        await page.waitForFunction(() => (globalThis as any).__cotacao.state.latest?.pair === "EUR-BRL");
        await page.evaluate(() => Object.assign(globalThis, { __sameDocument: true }));
        const pointsShown = async () => Number(/^([\d.]+) pontos/.exec(plain(await page.textContent("#resolution")))?.[1]?.replaceAll(".", ""));
        const pointsBefore = await pointsShown();
        expect(pointsBefore).toBe(await page.evaluate((bidIndex) => (globalThis as any).__cotacao.chart.data[bidIndex].filter((v: unknown) => v != null).length, SERIES.bid));
        const ts = new Date(Math.floor(Date.now() / 1000) * 1000);
        const bid = "6.4321";
        const started = performance.now();
        await saveQuotes(db.sql, [{ ...storedQuote("EUR-BRL", { date: "2000-01-01", bid }), ts, fetchedAt: ts }], { notify: true });
        await page.waitForFunction(
          ({ text, ts, bidIndex }) => {
            const { chart } = (globalThis as any).__cotacao;
            const shown = document.getElementById("bid")?.textContent?.replace(/\s/g, " ");
            return shown === text && chart.data[0].at(-1) === ts && chart.data[bidIndex].at(-1) === 6.4321;
          },
          { text: plain(brl(bid)), ts: seconds(ts), bidIndex: SERIES.bid },
          { timeout: LIVE_DEADLINE_MS },
        );
        console.log(`live quote on the card and the chart after ${Math.round(performance.now() - started)} ms`);
        // The footnote counts the new point too.
        expect(await pointsShown()).toBe(pointsBefore + 1);
        // A run's end reaches the runs table the same way.
        const run = await startRun(db.sql, ["EUR-BRL"]);
        await finishRun(db.sql, run, { status: "succeeded", fetched: 1, inserted: 1, updated: 0 });
        await page.waitForFunction((id) => document.querySelector("#runs tr td")?.textContent === id, String(run), { timeout: LIVE_DEADLINE_MS });
        expect(await page.evaluate(() => (globalThis as any).__sameDocument)).toBe(true);
        expectClean(watch);
      } finally {
        await close();
      }
    },
    TEST_TIMEOUT_MS,
  );

  test(
    "the legend's average is the hovered quote's own day's, wherever the cursor is, and the band reaches the newest quote",
    async () => {
      const { page, watch, close } = await openPage(browser!, `${app!.url}?range=3M`);
      try {
        expect(await page.evaluate(() => (globalThis as any).__cotacao.state.loaded.bucketSeconds)).toBe(0);
        // The rule's average per São Paulo date, from the API's answer (the figures of `bun analysis.ts --days`).
        const days: [number[], (number | null)[]] = await page.evaluate(() => {
          const [starts, averages] = (globalThis as any).__cotacao.state.presetAnswer.answer.ma.data;
          return [starts, averages];
        });
        const dateOf = (ts: number) => new Intl.DateTimeFormat("en-CA", { timeZone: "America/Sao_Paulo" }).format(new Date(ts * 1000));
        const averageOn = new Map(days[0].map((start, i) => [dateOf(start), days[1][i]]));
        const box = await plotBox(page);
        let checked = 0;
        // Every few pixels: the cursor is sometimes nearer the next day's start than its quote.
        for (let x = box.x + 4; x < box.x + box.width - 4; x += 7) {
          await page.mouse.move(x, box.y + box.height / 2);
          const ts = Number(await page.getAttribute("#legend-time", "data-ts"));
          const expected = averageOn.get(dateOf(ts));
          if (expected === undefined || expected === null) continue;
          expect(plain(await page.textContent("#legend-ma")), `hovering the quote of ${new Date(ts * 1000).toISOString()}`).toBe(plain(brl(expected)));
          checked++;
        }
        expect(checked).toBeGreaterThan(50);
        // Today's average is known (its window closed the day before): the band runs to the newest quote.
        const newest = await page.evaluate((series) => {
          const data = (globalThis as any).__cotacao.chart.data;
          const i = data[series.bid].findLastIndex((v: unknown) => v != null);
          return { ts: data[0][i], ma: data[series.ma][i], lower: data[series.lower][i], upper: data[series.upper][i] };
        }, SERIES);
        expect(newest.ts).toBe(seconds(pointTime(newestPtax)));
        expect(newest.ma).toBe(averageOn.get(dateOf(newest.ts))!);
        expect(newest.lower).toBeLessThan(newest.ma);
        expect(newest.upper).toBeGreaterThan(newest.ma);
        expectClean(watch);
      } finally {
        await close();
      }
    },
    TEST_TIMEOUT_MS,
  );

  test(
    "the alerts table pages through every episode, older and newer, 20 at a time",
    async () => {
      const { page, watch, close } = await openPage(browser!, app!.url);
      try {
        const [counted] = await db.sql<{ n: number }[]>`select count(*)::int as n from alerts where pair = 'USD-BRL'`;
        const total = counted!.n;
        const expected = await db.sql<{ started: Date }[]>`select started_at as started from alerts where pair = 'USD-BRL' order by started_at desc, id desc`;
        expect(total).toBeGreaterThan(40);
        const startedShown = () => page.$$eval("#alerts tr td:first-child", (cells) => cells.map((cell) => cell.getAttribute("title")));
        const titleOf = (date: Date) =>
          new Intl.DateTimeFormat("pt-BR", { timeZone: "America/Sao_Paulo", day: "2-digit", month: "2-digit", year: "numeric", hour: "2-digit", minute: "2-digit", hourCycle: "h23" }).format(date);
        await page.waitForFunction(() => document.querySelectorAll("#alerts tr").length > 0);
        expect(await page.isDisabled("#alerts-newer")).toBe(true);
        const seen: (string | null)[] = [];
        for (let pageNumber = 0; ; pageNumber++) {
          const first = pageNumber * 20 + 1;
          const last = Math.min(total, first + 19);
          await page.waitForFunction((text) => document.getElementById("alerts-count")?.textContent === text, `${first}–${last} de ${total}`);
          seen.push(...(await startedShown()));
          if (last === total) break;
          await page.click("#alerts-older");
        }
        expect(await page.isDisabled("#alerts-older")).toBe(true);
        expect(seen).toEqual(expected.map((row) => titleOf(row.started)));
        await page.click("#alerts-newer");
        const lastPage = Math.ceil(total / 20) - 1;
        await page.waitForFunction((text) => document.getElementById("alerts-count")?.textContent === text, `${(lastPage - 1) * 20 + 1}–${lastPage * 20} de ${total}`);
        expect(await page.isDisabled("#alerts-older")).toBe(false);
        expectClean(watch);
      } finally {
        await close();
      }
    },
    TEST_TIMEOUT_MS,
  );

  /**
   * What the page shows a reader in words: its visible text, and the titles and labels of its
   * elements. The pipeline's own error messages (a failed run's detail row) are stored data in
   * the CLI's English, not the page's words, and are left out; so is the language switch, whose
   * options name each language in itself.
   */
  const wordsShown = (page: Page) =>
    page.evaluate(() => {
      const skip = (element: Element) => element.closest("tr.detail, #status-detail, #lang") !== null;
      const texts: string[] = [];
      const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
      for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        const parent = node.parentElement;
        if (!parent || skip(parent) || parent.closest("[hidden]") || getComputedStyle(parent).display === "none") continue;
        texts.push(node.textContent ?? "");
      }
      for (const element of document.querySelectorAll("[title], [aria-label]")) {
        if (skip(element)) continue;
        texts.push(element.getAttribute("title") ?? "", element.getAttribute("aria-label") ?? "");
      }
      return texts.join("\n").replace(/\s+/g, " ");
    });

  /** The other language's words (each literal run of a message of 3 letters or more) found in `shown`. */
  function foreignWords(shown: string, own: Record<string, string>, other: Record<string, string>): string[] {
    const found: string[] = [];
    for (const [key, message] of Object.entries(other)) {
      if (message === own[key]) continue;
      for (const piece of message.split(/\{\w+\}/).map((part) => part.trim())) {
        if ((piece.match(/\p{L}/gu) ?? []).length < 3) continue;
        const escaped = piece.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
        if (new RegExp(`(?<![\\p{L}\\p{N}])${escaped}(?![\\p{L}\\p{N}])`, "u").test(shown)) found.push(`${key}: "${piece}"`);
      }
    }
    return found;
  }

  for (const { locale, language, other } of [
    { locale: "pt-BR", language: "pt-BR", other: "en" },
    { locale: "en-US", language: "en", other: "pt-BR" },
  ] as const) {
    test(
      `a ${locale} browser gets the whole page in ${language}, numbers, dates and month names included, and no word of ${other}`,
      async () => {
        const { page, watch, close } = await openPage(browser!, `${app!.url}?range=1Y`, { locale });
        try {
          await page.waitForFunction(() => document.querySelectorAll("#alerts tr").length > 0 && document.querySelectorAll("#runs tr").length > 0);
          await page.mouse.move(0, 0);
          expect(await page.getAttribute("html", "lang")).toBe(language);
          expect(await page.inputValue("#lang")).toBe(language);
          const shown = await wordsShown(page);
          expect(foreignWords(shown, MESSAGES[language], MESSAGES[other])).toEqual([]);
          // Its own words are there: the card's, the chart's, the tables'.
          for (const key of ["card.bid", "card.vsPrevious", "chart.hint", "alerts.title", "runs.title", "chart.csv"]) expect(shown).toContain(MESSAGES[language][key]!);
          // Numbers and dates in the same locale.
          const money = new Intl.NumberFormat(locale, { style: "currency", currency: "BRL", minimumFractionDigits: 4, maximumFractionDigits: 4 }).format(Number(newestPtax.bid));
          expect(plain(await page.textContent("#bid"))).toBe(plain(money));
          const ts = Number(await page.getAttribute("#legend-time", "data-ts"));
          const when = new Intl.DateTimeFormat(locale, {
            timeZone: "America/Sao_Paulo",
            day: "2-digit",
            month: "2-digit",
            year: "numeric",
            hour: "2-digit",
            minute: "2-digit",
            hourCycle: "h23",
          }).format(new Date(ts * 1000));
          expect(plain(await page.textContent("#legend-time"))).toBe(plain(when));
          expect(plain(await page.textContent("#resolution"))).toStartWith(plain(MESSAGES[language]["chart.points"]!.split("{n}")[0]!));
          // The x axis of a year names months: the locale's short names.
          const labels: string[] = await page.evaluate(() => (globalThis as any).__cotacao.chart.axes[0]._values.flatMap((label: string) => label.split("\n")));
          const months = Array.from({ length: 12 }, (_, month) =>
            new Intl.DateTimeFormat(locale, { month: "short", timeZone: "UTC" }).format(new Date(Date.UTC(2024, month, 15))).replace(/\.$/, ""),
          );
          const monthLabels = labels.filter((label) => /^\p{L}+$/u.test(label));
          expect(monthLabels.length).toBeGreaterThan(3);
          for (const label of monthLabels) expect(months).toContain(label);
          await screenshot(page, `dashboard-${locale}.png`);
          expectClean(watch);
        } finally {
          await close();
        }
      },
      TEST_TIMEOUT_MS,
    );
  }

  test(
    "the language switch turns the page to English in place, and the choice is remembered and kept in the URL",
    async () => {
      const { page, watch, close } = await openPage(browser!, app!.url);
      try {
        await page.waitForFunction(() => document.querySelectorAll("#alerts tr").length > 0);
        await page.evaluate(() => Object.assign(globalThis, { __sameDocument: true }));
        expect(plain(await page.textContent("#alerts-title"))).toStartWith("Alertas");
        await page.selectOption("#lang", "en");
        await page.waitForFunction(() => document.querySelector("#alerts tr td:nth-child(4)")?.textContent?.match(/^[▲▼] (above|below)$/) !== null);
        expect(await page.getAttribute("html", "lang")).toBe("en");
        expect(new URL(page.url()).searchParams.get("lang")).toBe("en");
        expect(await page.evaluate(() => (globalThis as any).__sameDocument)).toBe(true);
        expect(plain(await page.textContent("#bid"))).toBe(
          plain(new Intl.NumberFormat("en-US", { style: "currency", currency: "BRL", minimumFractionDigits: 4, maximumFractionDigits: 4 }).format(Number(newestPtax.bid))),
        );
        expect(plain(await page.textContent("#status"))).toStartWith("stale since");
        expect(await page.textContent('#ranges button[data-range="All"]')).toBe("All");
        expect(foreignWords(await wordsShown(page), MESSAGES.en, MESSAGES["pt-BR"])).toEqual([]);
        // A new visit from the same (Brazilian) browser keeps the choice.
        const again = await page.context().newPage();
        await again.goto(app!.url);
        await again.waitForFunction(() => document.documentElement.dataset["drawn"] === "true");
        expect(await again.getAttribute("html", "lang")).toBe("en");
        expect(plain(await again.textContent("#runs-title"))).toBe("Pipeline runs");
        // The URL's language wins over the remembered one.
        await again.goto(`${app!.url}?lang=pt-BR`);
        await again.waitForFunction(() => document.documentElement.dataset["drawn"] === "true");
        expect(plain(await again.textContent("#runs-title"))).toBe("Execuções do pipeline");
        expectClean(watch);
      } finally {
        await close();
      }
    },
    TEST_TIMEOUT_MS,
  );

  test(
    "Back and Forward return to the previous pair and range, and a reload keeps them",
    async () => {
      const { page, watch, close } = await openPage(browser!, app!.url);
      try {
        await page.evaluate(() => Object.assign(globalThis, { __sameDocument: true }));
        const view = () =>
          page.evaluate(() => {
            const { state, chart } = (globalThis as any).__cotacao;
            return { pair: state.pair, preset: state.preset, span: chart.scales.x.max - chart.scales.x.min, url: location.search };
          });
        // The pair and range shown, the range's button pressed, and the chart's scale that range's.
        const settled = (pair: string, preset: string) =>
          page.waitForFunction(
            ([pair, preset]) => {
              const { state, chart } = (globalThis as any).__cotacao;
              const pressed = document.querySelector(`#ranges button[data-range="${preset}"]`)?.getAttribute("aria-pressed") === "true";
              const span = chart.scales.x.max - chart.scales.x.min;
              const spanFits = preset === "All" ? span > 30 * 86_400 * 12 : span === 30 * 86_400;
              return state.pair === pair && state.preset === preset && pressed && spanFits && document.getElementById("latest-pair")?.textContent === pair;
            },
            [pair, preset],
          );
        await page.click('#ranges button[data-range="1M"]');
        await settled("USD-BRL", "1M");
        await page.selectOption("#pair", "EUR-BRL");
        await settled("EUR-BRL", "1M");
        expect(new URL(page.url()).searchParams.get("pair")).toBe("EUR-BRL");
        await page.goBack();
        await settled("USD-BRL", "1M");
        expect((await view()).span).toBe(30 * DAY);
        await page.goBack();
        await settled("USD-BRL", "All");
        expect((await view()).span).toBeGreaterThan(25 * 365 * DAY);
        await page.goForward();
        await settled("USD-BRL", "1M");
        await page.goForward();
        await settled("EUR-BRL", "1M");
        expect(await page.evaluate(() => (globalThis as any).__sameDocument)).toBe(true);
        await page.reload();
        await page.waitForFunction(() => document.documentElement.dataset["drawn"] === "true");
        await settled("EUR-BRL", "1M");
        expectClean(watch);
      } finally {
        await close();
      }
    },
    TEST_TIMEOUT_MS,
  );

  test(
    "a live quote that begins a new day gets that day's average, so the band goes on past midnight without a reload",
    async () => {
      const { page, watch, close } = await openPage(browser!, app!.url);
      try {
        await page.selectOption("#pair", "GBP-BRL");
        await page.waitForFunction(() => (globalThis as any).__cotacao.state.presetAnswer?.answer.pair === "GBP-BRL");
        await page.evaluate(() => Object.assign(globalThis, { __sameDocument: true }));
        // 15:00 in São Paulo on the day after the newest stored quote.
        const ts = new Date(pointTime(pound.at(-1)!).getTime() + 22 * 3_600_000);
        await saveQuotes(db.sql, [{ ...storedQuote("GBP-BRL", { date: "2000-01-01", bid: "6.5432" }), ts, fetchedAt: ts }], { notify: true });
        const newest = await page.waitForFunction(
          ({ ts, series }) => {
            const data = (globalThis as any).__cotacao.chart.data;
            const i = data[0].length - 1;
            return data[0][i] === ts && data[series.ma][i] !== null ? { ma: data[series.ma][i], lower: data[series.lower][i], upper: data[series.upper][i] } : null;
          },
          { ts: seconds(ts), series: SERIES },
          { timeout: 5_000 },
        );
        // The server's figures for that day (the rule's, as `bun analysis.ts --days` gives them).
        const day = await (await fetch(`${app!.url}api/quotes?pair=GBP-BRL&from=${ts.toISOString()}&to=${new Date(ts.getTime() + 1000).toISOString()}`)).json();
        const [[start], [ma], [lower], [upper]] = day.ma.data;
        expect(start).toBeLessThanOrEqual(seconds(ts));
        expect(ma).not.toBeNull();
        expect(await newest.jsonValue()).toEqual({ ma, lower, upper });
        // Not hovering: the legend shows the newest point, with its own day's average.
        await page.mouse.move(0, 0);
        await page.waitForFunction((text) => document.getElementById("legend-ma")?.textContent?.replace(/\s/g, " ") === text, plain(brl(ma)));
        expect(await page.evaluate(() => (globalThis as any).__sameDocument)).toBe(true);
        expectClean(watch);
      } finally {
        await close();
      }
    },
    TEST_TIMEOUT_MS,
  );

  test(
    "at 375 px nothing scrolls sideways and the chart follows the window; dark follows the colour scheme",
    async () => {
      const narrow = await openPage(browser!, app!.url, { viewport: { width: 375, height: 812 } });
      try {
        const widths = await narrow.page.evaluate(() => ({ page: document.documentElement.scrollWidth, window: innerWidth }));
        expect(widths.page).toBeLessThanOrEqual(widths.window);
        await screenshot(narrow.page, "dashboard-375.png");
        const chartWidth = () => narrow.page.evaluate(() => (globalThis as any).__cotacao.chart.width as number);
        expect(await chartWidth()).toBeLessThan(375);
        await narrow.page.setViewportSize({ width: 1000, height: 812 });
        await narrow.page.waitForFunction(() => (globalThis as any).__cotacao.chart.width > 800);
        expectClean(narrow.watch);
      } finally {
        await narrow.close();
      }
      const dark = await openPage(browser!, app!.url, { colorScheme: "dark" });
      try {
        const background = await dark.page.evaluate(() => getComputedStyle(document.body).backgroundColor);
        expect(background).toBe("rgb(15, 18, 22)");
        await screenshot(dark.page, "dashboard-dark.png");
        expectClean(dark.watch);
      } finally {
        await dark.close();
      }
    },
    TEST_TIMEOUT_MS,
  );

  test(
    "the card names days too old for a run to fill; the alerts table marks a superseded episode",
    async () => {
      await db.sql`insert into quote_gaps (pair, from_day, to_day) values ('USD-BRL', '2023-01-02', '2023-02-28')`;
      const [newest] = await db.sql<{ id: number }[]>`select id::int from alerts where pair = 'USD-BRL' order by started_at desc limit 1`;
      await db.sql`update alerts set superseded_at = now() where id = ${newest!.id}`;
      // A server of its own: the shared one keeps the card it read, as nothing notified a change.
      const own = serve(db.sql);
      const { page, watch, close } = await openPage(browser!, own.url);
      try {
        // In the page's language (the browser's: pt-BR), the command as the CLI takes it.
        expect(plain(await page.textContent("#gaps"))).toBe(
          "USD-BRL não tem cotações de 2 de jan. de 2023 a 28 de fev. de 2023, mais antigas do que uma execução preenche; carregue-as com: bun main_pipeline.ts --pairs USD-BRL --from 2023-01-02 --to 2023-02-28",
        );
        expect(await page.isVisible("#gaps")).toBe(true);
        const superseded = MESSAGES["pt-BR"]["alerts.superseded"]!;
        expect(plain(await page.textContent("#alerts tr:first-child"))).toContain(`· ${superseded}`);
        expect(await page.locator("#alerts tr", { hasText: superseded }).count()).toBe(1);
        expectClean(watch);
      } finally {
        await close();
        await own.stop();
        await db.sql`delete from quote_gaps`;
        await db.sql`update alerts set superseded_at = null`;
      }
    },
    TEST_TIMEOUT_MS,
  );
});

describe.skipIf(!hasChromium)("the official source (BCB's PTAX) on the page", () => {
  let browser: Browser | undefined;
  const servers: ReturnType<typeof serve>[] = [];
  afterAll(async () => {
    await browser?.close();
    for (const server of servers) await server.stop();
  }, HOOK_TIMEOUT_MS);
  const db = useTestDatabase();
  // 120 business days of daily AwesomeAPI quotes (17:00 São Paulo), and each day's closing PTAX
  // at 13:10, 0.5% under the bid (the cross-check falls back to the day's daily quote).
  const days = loadPtaxSeries().slice(-120);
  const newest = days.at(-1)!;
  const buyOf = (point: DailyPoint) => (Number(point.bid) * 0.995).toFixed(4);
  const newestBuy = buyOf(newest);
  const divergencePct = (100 * (Number(newest.bid) - Number(newestBuy))) / Number(newestBuy);
  /** The app, its clock a minute after the newest quote: the card is live. */
  const serveLive = () => {
    const app = createApp(db.sql, { analysis: loadAnalysisConfig({}), heartbeatMs: 1_000, now: () => new Date(pointTime(newest).getTime() + 60_000) });
    const server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: app.fetch, idleTimeout: 0 });
    const served = {
      url: `http://127.0.0.1:${server.port}/`,
      async stop() {
        await server.stop(true);
        await app.close();
      },
    };
    servers.push(served);
    return served;
  };

  beforeAll(async () => {
    await saveQuotes(db.sql, days.map((point) => ({ ...storedQuote("USD-BRL", point), source: SOURCE_DAILY })));
    await saveOfficialRates(db.sql, [
      ...days.map((point) => ({ pair: "USD-BRL", publishedAt: `${point.date}T13:10:00.123456-03:00`, bulletin: "closing" as const, buy: buyOf(point), sell: (Number(buyOf(point)) + 0.0006).toFixed(4) })),
      { pair: "USD-BRL", publishedAt: `${newest.date}T10:04:00.5-03:00`, bulletin: "opening", buy: "4.9000", sell: "4.9006" },
    ]);
    await db.sql`
      insert into alerts (pair, kind, direction, status, started_at, last_seen_at, resolved_at, fingerprint)
      values ('USD-BRL', 'divergence', 'up', 'resolved', ${pointTime(days.at(-30)!)}, ${pointTime(days.at(-25)!)}, ${pointTime(days.at(-25)!)}, 'test-divergence')`;
    browser = await launchChromium();
  }, HOOK_TIMEOUT_MS);

  test(
    "the closing PTAX is a second series, drawn by default and toggled from the legend; the card shows the bulletin and the divergence; divergence alerts are labelled",
    async () => {
      const { page, watch, close } = await openPage(browser!, serveLive().url);
      try {
        const official = await page.waitForFunction(
          (index) => {
            const { chart, state } = (globalThis as any).__cotacao;
            const column: (number | null)[] = chart?.data[index] ?? [];
            const values = column.filter((v) => v !== null && v !== undefined);
            return state.official && values.length > 0 ? { count: values.length, newest: values.at(-1), shown: chart.series[index].show, drawn: chart.series[index]._paths != null } : null;
          },
          SERIES.official,
        );
        expect(await official.jsonValue()).toEqual({ count: days.length, newest: Number(newestBuy), shown: true, drawn: true });
        expect(await page.isVisible("#legend-official-item")).toBe(true);
        expect(plain(await page.textContent("#legend-official"))).toBe(plain(brl(newestBuy)));
        expect(await page.getAttribute("#legend-official-toggle", "aria-pressed")).toBe("true");
        await screenshot(page, "dashboard-official.png");
        // Off from the legend, and on again.
        const shown = () => page.evaluate((index) => (globalThis as any).__cotacao.chart.series[index].show as boolean, SERIES.official);
        await page.click("#legend-official-toggle");
        expect(await shown()).toBe(false);
        expect(await page.getAttribute("#legend-official-toggle", "aria-pressed")).toBe("false");
        await page.click("#legend-official-toggle");
        expect(await shown()).toBe(true);
        // The card: the newest bulletin (the closing, in pt-BR) and AwesomeAPI's divergence from it.
        const card = plain(await page.textContent("#official"));
        expect(card).toContain(`PTAX do BCB ${plain(brl(newestBuy))} (fechamento,`);
        expect(card).toContain("13:10");
        const pct = new Intl.NumberFormat("pt-BR", { minimumFractionDigits: 2, maximumFractionDigits: 2, signDisplay: "always" }).format(divergencePct);
        expect(card).toContain(`AwesomeAPI ${pct}`);
        expect(plain(await page.textContent("#status"))).toBe(MESSAGES["pt-BR"]["status.live"]!);
        expect(await page.isVisible("#official-fallback")).toBe(false);
        // The divergence episode, labelled in the page's language.
        expect(await page.locator("#alerts tr", { hasText: MESSAGES["pt-BR"]["alerts.divergence"]! }).count()).toBe(1);
        expectClean(watch);
      } finally {
        await close();
      }
    },
    TEST_TIMEOUT_MS,
  );

  test(
    "while AwesomeAPI is failing, the card says so and shows the official rate, with its time, as the last trustworthy number",
    async () => {
      await recordFailedRun(db.sql, ["USD-BRL"], "Cannot fetch the latest USD-BRL quotes: the answer (HTTP 522) was an HTML page");
      const { page, watch, close } = await openPage(browser!, `${serveLive().url}?lang=en`);
      try {
        await page.waitForSelector("#official-fallback", { state: "visible" });
        const fallback = plain(await page.textContent("#official-fallback"));
        expect(fallback).toStartWith("AwesomeAPI is failing: the last trustworthy rate is BCB's PTAX");
        const usd = new Intl.NumberFormat("en-US", { style: "currency", currency: "BRL", minimumFractionDigits: 4, maximumFractionDigits: 4 }).format(Number(newestBuy));
        expect(fallback).toContain(`${plain(usd)} (closing,`);
        expect(fallback).toContain("13:10");
        expect(await page.getAttribute("#status", "class")).toContain("bad");
        await screenshot(page, "dashboard-official-fallback.png");
        expectClean(watch);
      } finally {
        await close();
      }
    },
    TEST_TIMEOUT_MS,
  );
});

describe.skipIf(!hasChromium)("the dashboard page on an empty database", () => {
  let url: string | undefined;
  let sql: Sql | undefined;
  let app: ReturnType<typeof serve> | undefined;
  let browser: Browser | undefined;
  beforeAll(async () => {
    url = await createTestDatabase();
    sql = connectUrl(url);
    app = serve(sql);
    browser = await launchChromium();
  }, HOOK_TIMEOUT_MS);
  afterAll(async () => {
    await browser?.close();
    await app?.stop();
    await sql?.end({ timeout: 5 });
    if (url) await dropTestDatabase(url);
  }, HOOK_TIMEOUT_MS);

  test(
    "says how to load data, and shows the first quote stored without a reload",
    async () => {
      const { page, watch, close } = await openPage(browser!, app!.url);
      try {
        expect(await page.isVisible("#empty")).toBe(true);
        expect(await page.isVisible("#chart-panel")).toBe(false);
        expect(await page.textContent("#empty")).toContain("bun main_pipeline.ts --from");
        // In the browser's language too.
        expect(await page.textContent("#empty-title")).toBe(MESSAGES["pt-BR"]["empty.title"]!);
        expect(plain(await page.textContent("#empty"))).toContain(MESSAGES["pt-BR"]["empty.shows"]!.slice(2));
        await screenshot(page, "dashboard-empty.png");
        const ts = new Date(Math.floor(Date.now() / 1000) * 1000);
        await saveQuotes(sql!, [{ ...storedQuote("USD-BRL", { date: "2000-01-01", bid: "5.7008" }), ts, fetchedAt: ts }], { notify: true });
        await page.waitForFunction((text) => document.getElementById("bid")?.textContent?.replace(/\s/g, " ") === text, plain(brl("5.7008")), {
          timeout: 5_000,
        });
        expect(await page.isVisible("#empty")).toBe(false);
        expect(plain(await page.textContent("#bid"))).toBe("R$ 5,7008");
        expectClean(watch);
      } finally {
        await close();
      }
    },
    TEST_TIMEOUT_MS,
  );
});
