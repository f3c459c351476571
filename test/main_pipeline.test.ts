import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { connectUrl, type Sql } from "../lib/pool.ts";
import { runningEmbeddedServer, startEmbeddedServer, stopEmbeddedServer } from "../lib/embedded_server.ts";
import { EXIT } from "../lib/errors.ts";
import { describeGap } from "../lib/gaps.ts";
import type { StoredQuote as Quote } from "../lib/quote.ts";
import { saveQuotes, withPipelineLock } from "../database.ts";
import {
  dryRun,
  formatProgress,
  formatSummary,
  parseInvocation,
  planGapHealing,
  runPipeline,
  type PipelineOptions,
} from "../main_pipeline.ts";
import { loadAnalysisConfig } from "../lib/rule.ts";
import { createApp } from "../dashboard.ts";
import { cleanEnv, runScript } from "./support/cli.ts";
import { createTestDatabase, dropTestDatabase, useTempDirs, useTestDatabase } from "./support/database.ts";
import {
  dailySeries,
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
  type DailyPoint,
  type FakeAwesomeApi,
  type Reply,
} from "./support/fake_awesomeapi.ts";
import { useTestTimeout } from "./support/timeout.ts";
import { type FakeBulletin, type FakeOlinda, olindaHtml, periodSeries, ptaxBulletins, startFakeOlinda } from "./support/fake_olinda.ts";
import { saoPauloDay } from "../lib/calendar.ts";
import { addDays } from "../ingest.ts";

useTestTimeout();

const LAST_USD = "last_USD-BRL_2024-10-25_issue47.json";
const LAST_USD_PATH = "/json/last/USD-BRL";
// The fixture's quote is from 2024-10-25; "now" is shortly after it.
const NOW = new Date("2024-10-25T18:00:00Z");

/** Options for an in-process run against `api`: no real waiting between retries. */
function against(api: FakeAwesomeApi, extra: Partial<PipelineOptions> = {}): PipelineOptions & { sleeps: number[] } {
  const sleeps: number[] = [];
  return {
    pairs: ["USD-BRL"],
    baseUrl: api.url,
    timeoutMs: 2_000,
    retries: 3,
    sleep: async (ms: number) => void sleeps.push(ms),
    now: () => NOW,
    lockTimeoutMs: 5_000,
    analysis: loadAnalysisConfig({}),
    sleeps,
    ...extra,
  };
}

async function withApi<T>(reply: Reply, fn: (api: FakeAwesomeApi) => Promise<T>): Promise<T> {
  const api = startFakeAwesomeApi(reply);
  try {
    return await fn(api);
  } finally {
    await api.stop();
  }
}

/** Every stored quote, as text, minus when it was fetched. */
async function quoteRows(sql: Sql): Promise<unknown[]> {
  return [
    ...(await sql`
      select pair, ts, bid::text, ask::text, high::text, low::text, var_bid::text, pct_change::text, source
      from quotes order by pair, ts`),
  ];
}

async function lastRun(sql: Sql) {
  const [run] = await sql`
    select status, pairs, rows_fetched, rows_inserted, rows_updated, error
    from pipeline_runs order by id desc limit 1`;
  return run;
}

const SEED: Quote = {
  pair: "USD-BRL",
  ts: new Date("2024-10-24T20:00:00Z"),
  bid: "5.6911",
  ask: "5.6921",
  high: "5.70",
  low: "5.66",
  varBid: "0.01",
  pctChange: "0.18",
  source: "seed",
  fetchedAt: new Date("2024-10-24T20:00:05Z"),
};

describe("pure parts", () => {
  test("planGapHealing() fills the business days since the newest stored day, at most 30 days back", () => {
    // Stored up to Monday 2024-10-14; today Friday 2024-10-25: heal 15th..24th.
    expect(planGapHealing("USD-BRL", new Date("2024-10-14T20:00:00Z"), "2024-10-25")).toEqual({
      pair: "USD-BRL",
      range: { from: "2024-10-15", to: "2024-10-24" },
    });
    // Stored yesterday: nothing to heal. Stored Friday, today Monday: only a weekend between.
    expect(planGapHealing("USD-BRL", new Date("2024-10-24T20:00:00Z"), "2024-10-25")).toEqual({ pair: "USD-BRL" });
    expect(planGapHealing("USD-BRL", new Date("2024-10-18T20:00:00Z"), "2024-10-21")).toEqual({ pair: "USD-BRL" });
    // Nothing stored: a backfill's job.
    expect(planGapHealing("USD-BRL", undefined, "2024-10-25")).toEqual({ pair: "USD-BRL" });
    // Older than 30 days: heal the last 30, report the rest with the command that fills it.
    const old = planGapHealing("USD-BRL", new Date("2024-08-01T20:00:00Z"), "2024-10-25");
    expect(old.range).toEqual({ from: "2024-09-25", to: "2024-10-24" });
    expect(old.unfilled).toEqual({ from: "2024-08-02", to: "2024-09-24" });
    expect(describeGap({ pair: "USD-BRL", ...old.unfilled! })).toContain("bun main_pipeline.ts --pairs USD-BRL --from 2024-08-02 --to 2024-09-24");
  });

  test("parseInvocation() checks flags before any I/O, one line each", () => {
    const today = "2024-10-25";
    expect(parseInvocation([], {}, today)).toMatchObject({ pairs: ["USD-BRL"], lockTimeoutMs: 30_000, dryRun: false });
    expect(parseInvocation([], { COTACAO_PAIRS: "EUR-BRL, USD-BRL" }, today).pairs).toEqual(["EUR-BRL", "USD-BRL"]);
    // Any case in, upper case out, as at every boundary.
    expect(parseInvocation(["--pairs", "usd-brl,Eur-Brl"], {}, today).pairs).toEqual(["USD-BRL", "EUR-BRL"]);
    expect(parseInvocation([], { COTACAO_PAIRS: "btc-brl" }, today).pairs).toEqual(["BTC-BRL"]);
    expect(parseInvocation(["--backfill", "10"], {}, today).history).toEqual({ from: "2024-10-15", to: today });
    expect(parseInvocation(["--from", "2024-01-01"], {}, today).history).toEqual({ from: "2024-01-01", to: today });
    expect(parseInvocation(["--every", "60s", "--lock-timeout", "5s"], {}, today)).toMatchObject({ everyMs: 60_000, lockTimeoutMs: 5_000 });
    const refused: [string[], Record<string, string>, RegExp][] = [
      [["--pairs", "usd/brl"], {}, /--pairs: .*"usd\/brl"/],
      [[], { COTACAO_PAIRS: "dollar" }, /COTACAO_PAIRS: .*"dollar"/],
      [["--backfill", "ten"], {}, /--backfill takes a number of days from 1 to .*, got "ten"/],
      [["--from", "2024-02-30"], {}, /--from must be a date like 2024-08-23, got "2024-02-30"/],
      [["--from", "2024-05-01", "--to", "2024-04-01"], {}, /--from \(2024-05-01\) is after --to/],
      [["--to", "2024-04-01"], {}, /--to needs --from/],
      [["--backfill", "5", "--from", "2024-01-01"], {}, /do not go together/],
      [["--lock-timeout", "forever"], {}, /--lock-timeout must be a duration/],
      [["--every", "10ms"], {}, /--every must be between 1s and 24h, got "10ms"/],
      [["--every", "25d"], {}, /--every must be between 1s and 24h, got "25d"/],
      [["--lock-timeout", "400d"], {}, /--lock-timeout must be between 0s and 24h/],
      [["--backfill", "1000000000"], {}, /--backfill takes a number of days from 1 to 12716 \(back to 1990-01-01\)/],
      [["--from", "0000-01-01"], {}, /--from must not be before 1990-01-01, got "0000-01-01"/],
      [["--json", "--quiet"], {}, /--json and --quiet/],
      [["--bogus"], {}, /bogus/],
    ];
    for (const [args, env, message] of refused) {
      expect(() => parseInvocation(args, env, today)).toThrow(message);
    }
  });

  test("formatSummary() and formatProgress() say what happened in one line", () => {
    const line = formatSummary({
      status: "succeeded",
      runId: 7,
      mode: "latest",
      source: "awesomeapi",
      pairs: ["USD-BRL"],
      fetched: 3,
      inserted: 2,
      updated: 0,
      unchanged: 1,
      healed: 2,
      conflicts: 0,
      alerts: [],
      undelivered: [],
      warnings: [],
      failedPairs: [],
      failedSources: [],
      durationMs: 412,
      exitCode: 0,
    });
    expect(line).toBe("latest USD-BRL ok: fetched 3, inserted 2, updated 0, unchanged 1 (2 from gap healing) in 0.4 s [run 7]");
    const progress = formatProgress({
      pair: "USD-BRL",
      pairIndex: 0,
      pairCount: 1,
      chunk: 5,
      chunks: 10,
      doneThrough: "2004-06-30",
      rows: 1234,
      elapsedMs: 1000,
    });
    expect(progress).toContain("USD-BRL [##########----------] chunk 5/10 to 2004-06-30");
    expect(progress).toContain("1,234 rows  1,234 rows/s  ETA 0:01");
  });

  test("formatProgress() fits the terminal: the bar takes the room left, and the line never wraps", () => {
    const at = { pair: "USD-BRL", pairIndex: 0, pairCount: 1, chunk: 5, chunks: 10, doneThrough: "2004-06-30", rows: 1234, elapsedMs: 1000 };
    for (const columns of [200, 120, 80, 60, 40, 20]) {
      expect(formatProgress(at, columns).length).toBeLessThan(columns);
    }
    expect(formatProgress(at, 200)).toContain(`[${"#".repeat(20)}${"-".repeat(20)}]`);
    expect(formatProgress(at, 80)).toMatch(/^USD-BRL \[#+-+\] chunk 5\/10/);
    // Too narrow for a bar: the figures stay, from the left.
    expect(formatProgress(at, 40)).toStartWith("USD-BRL chunk 5/10 to 2004-06-30");
  });
});

describe("runPipeline(): the latest quotes", () => {
  const db = useTestDatabase();

  test("stores the quote exactly, records the run, and the same cycle again stores nothing", async () => {
    await withApi(replay(LAST_USD), async (api) => {
      const first = await runPipeline(db.sql, against(api));
      expect(first).toMatchObject({ status: "succeeded", exitCode: 0, fetched: 1, inserted: 1, updated: 0, unchanged: 0 });
      const fixture = (fixtureJson(LAST_USD) as Record<string, Record<string, string>>)["USDBRL"]!;
      const [row] = await db.sql`select bid::text, ask::text, ts from quotes where pair = 'USD-BRL'`;
      expect(row).toEqual({ bid: fixture["bid"], ask: fixture["ask"], ts: new Date(Number(fixture["timestamp"]) * 1000) });
      expect(await lastRun(db.sql)).toEqual({
        status: "succeeded",
        pairs: ["USD-BRL"],
        rows_fetched: 1,
        rows_inserted: 1,
        rows_updated: 0,
        error: null,
      });

      const second = await runPipeline(db.sql, against(api));
      expect(second).toMatchObject({ status: "succeeded", fetched: 1, inserted: 0, updated: 0, unchanged: 1 });
      const [count] = await db.sql`select count(*)::int as n from quotes`;
      expect(count?.["n"]).toBe(1);
    });
  });
});

describe("runPipeline() when AwesomeAPI misbehaves", () => {
  const db = useTestDatabase();
  beforeAll(async () => {
    await saveQuotes(db.sql, [SEED]);
  });

  const ok = replay(LAST_USD);
  const cases: {
    name: string;
    reply: Reply;
    requests: number;
    outcome: "succeeded" | "failed";
    message?: RegExp;
    timeoutMs?: number;
    sleeps?: number[];
  }[] = [
    { name: "500 then 200: retried, stored", reply: sequence(status(500), ok), requests: 2, outcome: "succeeded" },
    {
      name: "429 with Retry-After: waits what it says, then stored",
      reply: sequence(status(429, { "retry-after": "7" }), ok),
      requests: 2,
      outcome: "succeeded",
      sleeps: [7_000],
    },
    { name: "409 (quota): retried, stored", reply: sequence(status(409), ok), requests: 2, outcome: "succeeded" },
    {
      name: "an answer slower than the timeout: retried, then a timeout",
      reply: delay(400, ok),
      requests: 4,
      outcome: "failed",
      message: /no complete answer within 100 ms/,
      timeoutMs: 100,
    },
    { name: "a reset connection: retried, then a network error", reply: reset(), requests: 4, outcome: "failed", message: /network error/ },
    { name: "a Cloudflare page with 200", reply: html(200), requests: 1, outcome: "failed", message: /HTTP 200\) was an HTML page, not JSON/ },
    { name: "a Cloudflare page with 403: not retried", reply: html(403), requests: 1, outcome: "failed", message: /HTTP 403\) was an HTML page/ },
    { name: "a Cloudflare page with 522: retried", reply: html(522), requests: 4, outcome: "failed", message: /HTTP 522\) was an HTML page/ },
    { name: "truncated JSON", reply: truncated(LAST_USD), requests: 1, outcome: "failed", message: /was not JSON/ },
    {
      name: "numbers where strings are expected",
      reply: json({ USDBRL: { ...(fixtureJson(LAST_USD) as { USDBRL: object }).USDBRL, bid: 5.66 } }),
      requests: 1,
      outcome: "failed",
      message: /USD-BRL bid/,
    },
    { name: "an empty array", reply: json([]), requests: 1, outcome: "failed", message: /keyed by pair .* got an array/ },
    {
      name: "404 CoinNotExists",
      reply: replay("error_404_CoinNotExists_USD-USD.json", { status: 404 }),
      requests: 1,
      outcome: "failed",
      message: /unknown pair "USD-BRL"/,
    },
  ];

  for (const scenario of cases) {
    test(scenario.name, async () => {
      await withApi(routes({ [LAST_USD_PATH]: scenario.reply }), async (api) => {
        await db.sql`delete from quotes where source <> 'seed'`;
        const before = await quoteRows(db.sql);
        const options = against(api, scenario.timeoutMs ? { timeoutMs: scenario.timeoutMs } : {});
        const run = await runPipeline(db.sql, options);
        expect(api.count(LAST_USD_PATH)).toBe(scenario.requests);
        expect(run.status).toBe(scenario.outcome);
        if (scenario.sleeps) expect(options.sleeps).toEqual(scenario.sleeps);
        const recorded = await lastRun(db.sql);
        expect(recorded?.["status"]).toBe(scenario.outcome);
        if (scenario.outcome === "failed") {
          expect(run.exitCode).toBe(EXIT.failure);
          expect(run.error).toMatch(scenario.message!);
          expect(run.error).not.toContain("\n");
          expect(recorded?.["error"]).toBe(run.error);
          expect(await quoteRows(db.sql)).toEqual(before);
        } else {
          expect(run.inserted).toBe(1);
        }
      });
    });
  }

  test("millisecond timestamps are read as milliseconds", async () => {
    const fixture = (fixtureJson(LAST_USD) as { USDBRL: Record<string, string> }).USDBRL;
    const ms = String(Number(fixture["timestamp"]) * 1000);
    await withApi(json({ USDBRL: { ...fixture, timestamp: ms } }), async (api) => {
      await db.sql`delete from quotes where source <> 'seed'`;
      expect((await runPipeline(db.sql, against(api))).status).toBe("succeeded");
      const [row] = await db.sql`select ts from quotes where source <> 'seed'`;
      expect(row?.["ts"]).toEqual(new Date(Number(ms)));
    });
  });

  test("the Latin-1 body of three pairs is read, values exact", async () => {
    await withApi(replay("last_USD-BRL+EUR-BRL+BTC-BRL_2022-08-08_raw-latin1.json"), async (api) => {
      await db.sql`delete from quotes where source <> 'seed'`;
      const run = await runPipeline(db.sql, against(api, { pairs: ["USD-BRL", "EUR-BRL", "BTC-BRL"], now: () => new Date("2022-08-08T20:00:00Z") }));
      expect(run).toMatchObject({ status: "succeeded", inserted: 3 });
      const rows = await db.sql`select pair from quotes where source <> 'seed' order by pair`;
      expect(rows.map((row) => row["pair"])).toEqual(["BTC-BRL", "EUR-BRL", "USD-BRL"]);
    });
  });
});

describe("runPipeline(): gap healing", () => {
  const db = useTestDatabase();

  test("fetches the business days missing since the newest stored day, once", async () => {
    // Stored up to Wednesday 2024-10-16; today is Friday 2024-10-25.
    await saveQuotes(db.sql, [{ ...SEED, ts: new Date("2024-10-16T20:00:00Z") }]);
    const series: DailyPoint[] = ["2024-10-17", "2024-10-18", "2024-10-21", "2024-10-22", "2024-10-23", "2024-10-24"].map(
      (date, i) => ({ date, bid: `5.6${i}01` }),
    );
    const reply = routes({ [LAST_USD_PATH]: replay(LAST_USD) }, dailySeries({ "USD-BRL": series }));
    await withApi(reply, async (api) => {
      const run = await runPipeline(db.sql, against(api));
      expect(run).toMatchObject({ status: "succeeded", healed: 6, inserted: 7 });
      const days = await db.sql`
        select to_char(ts at time zone 'America/Sao_Paulo', 'YYYY-MM-DD') as day, bid::text
        from quotes where source = 'awesomeapi:daily' order by ts`;
      expect([...days]).toEqual(series.map((point) => ({ day: point.date, bid: point.bid })));
      // The next run finds no gap.
      const again = await runPipeline(db.sql, against(api));
      expect(again).toMatchObject({ healed: 0, inserted: 0, unchanged: 1 });
    });
  });
});

describe("runPipeline(): a gap older than the healing window", () => {
  const db = useTestDatabase();

  test("is said by every run, failed ones too, until a backfill loads it; then by none", async () => {
    // Stored up to 2024-08-01; today is 2024-10-25: runs fill in from 2024-09-25 on, not before.
    await saveQuotes(db.sql, [{ ...SEED, ts: new Date("2024-08-01T20:00:00Z") }]);
    const series: DailyPoint[] = [];
    for (let day = Date.parse("2024-08-02T00:00:00Z"); day <= Date.parse("2024-10-24T00:00:00Z"); day += 86_400_000) {
      if (new Date(day).getUTCDay() % 6 !== 0) series.push({ date: new Date(day).toISOString().slice(0, 10), bid: "5.60" });
    }
    const gap = { pair: "USD-BRL", from: "2024-08-02", to: "2024-09-24" };
    const daily = dailySeries({ "USD-BRL": series });
    await withApi(routes({ [LAST_USD_PATH]: replay(LAST_USD) }, daily), async (api) => {
      const first = await runPipeline(db.sql, against(api));
      expect(first).toMatchObject({ status: "succeeded", gaps: [describeGap(gap)] });
      expect(first.warnings).toEqual([]);
      // The next run has nothing left to heal, and still says it.
      expect(await runPipeline(db.sql, against(api))).toMatchObject({ status: "succeeded", healed: 0, gaps: [describeGap(gap)] });
    });
    await withApi(html(403), async (api) => {
      expect(await runPipeline(db.sql, against(api))).toMatchObject({ status: "failed", gaps: [describeGap(gap)] });
    });
    await withApi(daily, async (api) => {
      const backfill = await runPipeline(db.sql, against(api, { history: { from: gap.from, to: gap.to } }));
      expect(backfill).toMatchObject({ status: "succeeded", gaps: [] });
    });
    await withApi(routes({ [LAST_USD_PATH]: replay(LAST_USD) }, daily), async (api) => {
      expect(await runPipeline(db.sql, against(api))).toMatchObject({ status: "succeeded", gaps: [] });
    });
  });
});

describe("runPipeline(): backfill", () => {
  const ptax = loadPtaxSeries();
  const RANGE = { from: "2000-01-01", to: "2024-03-22" };
  const inRange = ptax.filter((point) => point.date >= RANGE.from && point.date <= RANGE.to);
  const at = () => new Date("2024-03-25T12:00:00Z");
  const urls: string[] = [];
  afterAll(async () => {
    for (const url of urls) await dropTestDatabase(url);
  });

  async function freshDatabase(): Promise<Sql> {
    const url = await createTestDatabase();
    urls.push(url);
    return connectUrl(url);
  }

  /** `fn` with a pool on a database of its own, closed after it. */
  async function withFreshDatabase(fn: (sql: Sql) => Promise<void>): Promise<void> {
    const sql = await freshDatabase();
    try {
      await fn(sql);
    } finally {
      await sql.end({ timeout: 5 });
    }
  }

  test("24 years of PTAX arrive complete: every business day stored once, values exact", async () => {
    await withFreshDatabase(async (sql) => {
      await withApi(dailySeries({ "USD-BRL": ptax }), async (api) => {
        const run = await runPipeline(sql, against(api, { history: RANGE, now: at }));
        expect(run).toMatchObject({ status: "succeeded", mode: "backfill", fetched: inRange.length, inserted: inRange.length });
        const rows = await sql`
          select to_char(ts at time zone 'America/Sao_Paulo', 'YYYY-MM-DD') as date, bid::text as bid
          from quotes where pair = 'USD-BRL' order by ts`;
        expect(rows.map((row) => ({ date: row["date"], bid: row["bid"] }))).toEqual(inRange.map((p) => ({ date: p.date, bid: p.bid })));
        // Run again once complete, the range is fetched again and nothing is written twice.
        const again = await runPipeline(sql, against(api, { history: RANGE, now: at }));
        expect(again).toMatchObject({ status: "succeeded", fetched: inRange.length, inserted: 0, updated: 0, unchanged: inRange.length });
      });
    });
  });

  test("a backfill that fails halfway carries on from its last stored chunk and ends equal to a clean run", async () => {
    const clean = await freshDatabase();
    const resumed = await freshDatabase();
    try {
      await withApi(dailySeries({ "USD-BRL": ptax }), async (api) => {
        await runPipeline(clean, against(api, { history: RANGE, now: at }));
      });
      const series = dailySeries({ "USD-BRL": ptax });
      // The 20th request and all after it fail: the first run dies there.
      let failing = true;
      const flaky: Reply = (request, context) => (failing && context.count >= 20 ? status(400)(request, context) : series(request, context));
      await withApi(flaky, async (api) => {
        const first = await runPipeline(resumed, against(api, { history: RANGE, now: at, backfillBatchRows: 500 }));
        expect(first.status).toBe("failed");
        const [progress] = await resumed`select done_through::text as done from backfill_progress`;
        expect(progress?.["done"] > RANGE.from && progress?.["done"] < RANGE.to).toBe(true);
        const storedSoFar = first.inserted;
        failing = false;
        const requestsBefore = api.count();
        const second = await runPipeline(resumed, against(api, { history: RANGE, now: at }));
        expect(second.status).toBe("succeeded");
        expect(second.inserted).toBe(inRange.length - storedSoFar);
        // It did not fetch again what the first run stored.
        expect(api.count() - requestsBefore).toBeLessThan(40);
      });
      expect(await quoteRows(resumed)).toEqual(await quoteRows(clean));
    } finally {
      await clean.end({ timeout: 5 });
      await resumed.end({ timeout: 5 });
    }
  });

  test("a completed range run again is fetched again: lost rows come back, corrections become revisions", async () => {
    const range = { from: "2023-01-01", to: "2023-12-31" };
    const year = ptax.filter((point) => point.date >= range.from && point.date <= range.to);
    await withFreshDatabase(async (sql) => {
      await withApi(dailySeries({ "USD-BRL": ptax }), async (api) => {
        const first = await runPipeline(sql, against(api, { history: range, now: at }));
        expect(first).toMatchObject({ status: "succeeded", inserted: year.length });
      });
      // 15 rows lost, and the API has since corrected one day of history.
      await sql`delete from quotes where ts in (select ts from quotes order by ts limit 15)`;
      const corrected = year[100]!;
      const series = ptax.map((point) => (point.date === corrected.date ? { ...point, bid: "9.9999" } : point));
      await withApi(dailySeries({ "USD-BRL": series }), async (api) => {
        const again = await runPipeline(sql, against(api, { history: range, now: at }));
        expect(again).toMatchObject({ status: "succeeded", fetched: year.length, inserted: 15, updated: 1, unchanged: year.length - 16 });
        expect(formatSummary(again)).toContain(`inserted 15, updated 1, unchanged ${year.length - 16}`);
      });
      const [revision] = await sql`select bid::text from quote_revisions`;
      expect(revision?.["bid"]).toBe(corrected.bid);
      const [stored] = await sql`
        select bid::text from quotes where (ts at time zone 'America/Sao_Paulo')::date = ${corrected.date}::date`;
      expect(stored?.["bid"]).toBe("9.9999");
      const [progress] = await sql`select done_through::text as done from backfill_progress`;
      expect(progress?.["done"]).toBe(range.to);
    });
  });

  test("a record sent twice with different values: one is kept, the summary counts it and a warning says which", async () => {
    const range = { from: "2023-03-01", to: "2023-03-31" };
    const series = dailySeries({ "USD-BRL": ptax });
    // The API repeats its newest record with another bid.
    const twice: Reply = async (request, context) => {
      const records = (await (await series(request, context)).json()) as Record<string, string>[];
      const [first] = records;
      return json(first ? [first, { ...first, code: undefined, codein: undefined, bid: "9.1234" }, ...records.slice(1)] : [])(request, context);
    };
    await withFreshDatabase(async (sql) => {
      await withApi(twice, async (api) => {
        const run = await runPipeline(sql, against(api, { history: range, now: at }));
        expect(run).toMatchObject({ status: "succeeded", conflicts: 1 });
        expect(run.warnings).toHaveLength(1);
        expect(run.warnings[0]).toMatch(/^USD-BRL 2023-03-31: 2 records share timestamp .* kept the first \(.*\), dropped 9\.1234/);
        expect(formatSummary(run)).toContain(", 1 conflicting record(s) dropped");
      });
      const [kept] = await sql`select bid::text from quotes order by ts desc limit 1`;
      expect(kept?.["bid"]).not.toBe("9.1234");
      const [record] = await sql`select warnings from pipeline_runs`;
      expect(record?.["warnings"]).toHaveLength(1);
    });
  });

  test("--from before the API's first day loads from that day and says so in one line", async () => {
    // The fake has PTAX from 1994-07-01 and answers an empty list before it, as AwesomeAPI does.
    const range = { from: "1993-01-01", to: "1995-12-31" };
    const loaded = ptax.filter((point) => point.date <= range.to);
    await withFreshDatabase(async (sql) => {
      await withApi(dailySeries({ "USD-BRL": ptax }), async (api) => {
        const run = await runPipeline(sql, against(api, { history: range, now: at }));
        expect(run).toMatchObject({ status: "succeeded", inserted: loaded.length });
        expect(run.warnings).toEqual(["USD-BRL: the API has no quotes from 1993-01-01 to 1994-06-30; its history starts on 1994-07-01, so this one does too"]);
      });
    });
  });

  test("a backfill of a new pair raises no staleness alert: it did not ask for the latest quote", async () => {
    // The API's newest daily close is Friday's; the backfill runs on Monday morning, market open.
    const range = { from: "2024-01-01", to: "2024-03-25" };
    await withFreshDatabase(async (sql) => {
      await withApi(dailySeries({ "EUR-BRL": ptax }), async (api) => {
        const run = await runPipeline(sql, against(api, { pairs: ["EUR-BRL"], history: range, now: at }));
        expect(run).toMatchObject({ status: "succeeded", alerts: [] });
      });
      expect([...(await sql`select kind, status from alerts`)]).toEqual([]);
    });
  });

  test("one pair's failure costs the other pairs nothing: an unknown pair in a backfill", async () => {
    const range = { from: "2023-01-01", to: "2023-06-30" };
    const half = ptax.filter((point) => point.date >= range.from && point.date <= range.to);
    await withFreshDatabase(async (sql) => {
      await withApi(dailySeries({ "USD-BRL": ptax }), async (api) => {
        const run = await runPipeline(sql, against(api, { pairs: ["XXX-BRL", "USD-BRL"], history: range, now: at }));
        expect(run).toMatchObject({ status: "failed", exitCode: EXIT.failure, failedStep: "fetch", failedPairs: ["XXX-BRL"], inserted: half.length });
        expect(run.error).toContain('unknown pair "XXX-BRL"');
      });
      const [count] = await sql`select count(*)::int as n from quotes where pair = 'USD-BRL'`;
      expect(count?.["n"]).toBe(half.length);
      const [record] = await sql`select status, failed_step, failed_pairs, rows_inserted from pipeline_runs`;
      expect(record).toEqual({ status: "failed", failed_step: "fetch", failed_pairs: ["XXX-BRL"], rows_inserted: half.length });
    });
  });
});

describe("runPipeline(): one pair's failure, and the analysis step's", () => {
  const db = useTestDatabase();
  const usd = (fixtureJson(LAST_USD) as { USDBRL: Record<string, string> }).USDBRL;
  const unknownXxx = json({ status: 404, code: "CoinNotExists", message: "moeda nao encontrada XXX-BRL" }, { status: 404 });

  test("an unknown pair among several: the others are fetched on their own and stored, the run fails naming it", async () => {
    await db.sql`delete from quotes`;
    const reply = routes({ "/json/last/USD-BRL,XXX-BRL": unknownXxx, [LAST_USD_PATH]: replay(LAST_USD), "/json/last/XXX-BRL": unknownXxx });
    await withApi(reply, async (api) => {
      const run = await runPipeline(db.sql, against(api, { pairs: ["USD-BRL", "XXX-BRL"] }));
      expect(run).toMatchObject({ status: "failed", exitCode: EXIT.failure, failedStep: "fetch", failedPairs: ["XXX-BRL"], inserted: 1 });
      expect(run.error).toContain('unknown pair "XXX-BRL"');
      expect(formatSummary(run)).toMatch(/^latest USD-BRL,XXX-BRL failed at the fetch step \(AwesomeAPI\) after .*unknown pair "XXX-BRL".*; stored all the same: fetched 1, inserted 1/);
    });
    const [stored] = await db.sql`select pair, bid::text from quotes`;
    expect(stored).toEqual({ pair: "USD-BRL", bid: usd["bid"] });
    const [record] = await db.sql`select status, failed_step, failed_pairs, rows_inserted from pipeline_runs order by id desc limit 1`;
    expect(record).toEqual({ status: "failed", failed_step: "fetch", failed_pairs: ["XXX-BRL"], rows_inserted: 1 });
  });

  test("a pair whose gap cannot be fetched stores nothing, so the next run heals it; the other pair is stored", async () => {
    await db.sql`delete from quotes`;
    const old = new Date("2024-10-16T20:00:00Z");
    await saveQuotes(db.sql, [{ ...SEED, ts: old }, { ...SEED, pair: "EUR-BRL", ts: old, bid: "6.1", ask: "6.2" }]);
    const both = json({ USDBRL: usd, EURBRL: { ...usd, code: "EUR", name: "Euro/Real Brasileiro", bid: "6.1712", ask: "6.1801" } });
    const days = ["2024-10-17", "2024-10-18", "2024-10-21", "2024-10-22", "2024-10-23", "2024-10-24"];
    const daily = dailySeries({ "USD-BRL": days.map((date) => ({ date, bid: "5.61" })) });
    const reply = routes({ "/json/last/USD-BRL,EUR-BRL": both, "/json/daily/EUR-BRL/360": status(500) }, daily);
    await withApi(reply, async (api) => {
      const run = await runPipeline(db.sql, against(api, { pairs: ["USD-BRL", "EUR-BRL"] }));
      expect(run).toMatchObject({ status: "failed", failedPairs: ["EUR-BRL"], inserted: 7, healed: 6 });
      expect(run.error).toContain("EUR-BRL");
      expect(run.error).toContain("the next run fills the gap");
    });
    const counts = await db.sql`select pair, count(*)::int as n from quotes group by pair order by pair`;
    expect([...counts]).toEqual([{ pair: "EUR-BRL", n: 1 }, { pair: "USD-BRL", n: 8 }]);
  });

  test("a failure of the analysis step keeps the quotes and records the step that failed", async () => {
    await db.sql`delete from quotes`;
    await db.sql.unsafe(`
      create function refuse() returns trigger language plpgsql as $$ begin raise exception 'alert bookkeeping broke'; end $$;
      create trigger refuse before insert or update on alert_state for each row execute function refuse();`);
    try {
      await withApi(replay(LAST_USD), async (api) => {
        const run = await runPipeline(db.sql, against(api));
        expect(run).toMatchObject({ status: "failed", exitCode: EXIT.failure, failedStep: "analyse", inserted: 1 });
        expect(run.error).toContain("the analysis step failed (the quotes are stored)");
        expect(run.error).toContain("alert bookkeeping broke");
      });
      const [record] = await db.sql`select status, failed_step, rows_inserted, error from pipeline_runs order by id desc limit 1`;
      expect(record).toMatchObject({ status: "failed", failed_step: "analyse", rows_inserted: 1 });
      const [count] = await db.sql`select count(*)::int as n from quotes`;
      expect(count?.["n"]).toBe(1);
    } finally {
      await db.sql.unsafe("drop trigger refuse on alert_state; drop function refuse()");
    }
    await withApi(replay(LAST_USD), async (api) => {
      expect(await runPipeline(db.sql, against(api))).toMatchObject({ status: "succeeded", unchanged: 1 });
    });
  });
});

describe("dryRun()", () => {
  test("fetches and validates, touches no database", async () => {
    await withApi(replay(LAST_USD), async (api) => {
      const run = await dryRun(against(api));
      expect(run).toMatchObject({ status: "succeeded", mode: "dry-run", runId: null, fetched: 1, inserted: 0 });
      expect(api.count()).toBe(1);
    });
  });
});

describe("bun main_pipeline.ts", () => {
  const db = useTestDatabase();
  // Processes run on the real clock: a quote from a minute ago leaves no gap to heal.
  const fixture = (fixtureJson(LAST_USD) as { USDBRL: Record<string, string> }).USDBRL;
  const FRESH = json({ USDBRL: { ...fixture, timestamp: String(Math.floor(Date.now() / 1000) - 60) } });

  test("--help lists the options and the exit codes", async () => {
    const result = await runScript("main_pipeline.ts", ["--help"]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("--backfill DAYS");
    expect(result.stdout).toContain("75 another run holds the lock");
  });

  test("bad usage is one line and exit 2, before touching anything", async () => {
    const result = await runScript("main_pipeline.ts", ["--pairs", "dollar"], { env: { DATABASE_URL: "postgres://nobody@127.0.0.1:1/x" } });
    expect(result.code).toBe(EXIT.usage);
    expect(result.stderr.trim().split("\n")).toHaveLength(1);
    expect(result.stderr).toContain('"dollar"');
  });

  test("one run prints one summary line; --json prints it as JSON; --quiet prints nothing", async () => {
    await withApi(FRESH, async (api) => {
      const env = { DATABASE_URL: db.url, AWESOMEAPI_URL: api.url };
      const plain = await runScript("main_pipeline.ts", [], { env });
      expect(plain.code).toBe(0);
      expect(plain.stdout.trim().split("\n")).toHaveLength(1);
      expect(plain.stdout).toMatch(/^latest USD-BRL ok: fetched 1, inserted (0|1)/);
      const asJson = await runScript("main_pipeline.ts", ["--json"], { env });
      expect(JSON.parse(asJson.stdout)).toMatchObject({ status: "succeeded", fetched: 1, inserted: 0, unchanged: 1 });
      const quiet = await runScript("main_pipeline.ts", ["--quiet"], { env });
      expect(quiet).toEqual({ code: 0, stdout: "", stderr: "" });
    });
  });

  test("a gap too old to fill is on stderr in every --quiet run, with the command that loads it", async () => {
    await db.sql`insert into quote_gaps (pair, from_day, to_day) values ('USD-BRL', '2024-08-02', '2024-09-24')`;
    try {
      await withApi(FRESH, async (api) => {
        const env = { DATABASE_URL: db.url, AWESOMEAPI_URL: api.url };
        for (let run = 0; run < 2; run++) {
          const quiet = await runScript("main_pipeline.ts", ["--quiet"], { env });
          expect(quiet).toEqual({
            code: 0,
            stdout: "",
            stderr: "gap: USD-BRL has no quotes from 2024-08-02 to 2024-09-24, further back than a run fills in; load them with: bun main_pipeline.ts --pairs USD-BRL --from 2024-08-02 --to 2024-09-24\n",
          });
        }
      });
    } finally {
      await db.sql`delete from quote_gaps`;
    }
  });

  test("a failing source is exit 1 with one line on stderr, even with --quiet", async () => {
    await withApi(html(403), async (api) => {
      const result = await runScript("main_pipeline.ts", ["--quiet"], { env: { DATABASE_URL: db.url, AWESOMEAPI_URL: api.url } });
      expect(result.code).toBe(EXIT.failure);
      expect(result.stdout).toBe("");
      expect(result.stderr.trim().split("\n")).toHaveLength(1);
      expect(result.stderr).toContain("HTML page");
    });
  });

  test("an unknown pair among several: the others are stored, exit 1, one line on stderr naming it, even with --quiet", async () => {
    const unknown = json({ status: 404, code: "CoinNotExists", message: "moeda nao encontrada XXX-BRL" }, { status: 404 });
    await withApi(routes({ "/json/last/USD-BRL,XXX-BRL": unknown, [LAST_USD_PATH]: FRESH, "/json/last/XXX-BRL": unknown }), async (api) => {
      const result = await runScript("main_pipeline.ts", ["--quiet", "--pairs", "USD-BRL,XXX-BRL"], { env: { DATABASE_URL: db.url, AWESOMEAPI_URL: api.url } });
      expect(result.code).toBe(EXIT.failure);
      expect(result.stdout).toBe("");
      const lines = result.stderr.trim().split("\n");
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/failed at the fetch step .*unknown pair "XXX-BRL".*stored all the same: fetched 1/);
    });
  });

  test("status pair by pair: USD-BRL stored beside an unknown XXX-BRL, then a run that stood aside for the lock, is not failing anywhere", async () => {
    await db.sql`delete from quotes`;
    await db.sql`delete from pipeline_runs`;
    const unknown = json({ status: 404, code: "CoinNotExists", message: "moeda nao encontrada XXX-BRL" }, { status: 404 });
    const env = (api: FakeAwesomeApi) => ({ DATABASE_URL: db.url, AWESOMEAPI_URL: api.url });
    await withApi(routes({ "/json/last/USD-BRL,XXX-BRL": unknown, [LAST_USD_PATH]: FRESH, "/json/last/XXX-BRL": unknown }), async (api) => {
      expect((await runScript("main_pipeline.ts", ["--pairs", "USD-BRL,XXX-BRL"], { env: env(api) })).code).toBe(EXIT.failure);
      // Another run holds the lock: this one waits 200 ms, stands aside (75) and says so.
      const holder = connectUrl(db.url, { max: 2 });
      try {
        const skipped = await withPipelineLock(holder, 1_000, () => runScript("main_pipeline.ts", ["--pairs", "USD-BRL", "--lock-timeout", "200ms"], { env: env(api) }));
        expect(skipped.code).toBe(EXIT.locked);
        expect(skipped.stderr).toMatch(/^latest USD-BRL skipped after .*another run has held the lock/);
      } finally {
        await holder.end({ timeout: 5 });
      }
    });
    const runs = await db.sql`select status, failed_pairs, failed_pairs_only from pipeline_runs order by id`;
    expect([...runs]).toEqual([
      { status: "failed", failed_pairs: ["XXX-BRL"], failed_pairs_only: true },
      { status: "skipped", failed_pairs: [], failed_pairs_only: false },
    ]);

    const monitor = await runScript("monitor.ts", ["--pair", "USD-BRL", "--format", "json"], { env: { DATABASE_URL: db.url } });
    const [report] = JSON.parse(monitor.stdout);
    expect({ code: monitor.code, state: report.state, run: report.lastRun.status, error: report.lastRun.error }).toEqual({ code: 0, state: "OK", run: "succeeded", error: null });

    const app = createApp(db.sql, { analysis: loadAnalysisConfig({}) });
    try {
      const latest = await (await app.request("/api/latest?pair=USD-BRL")).json();
      expect(latest.status.state).toBe("live");
      const metrics = await (await app.request("/metrics")).text();
      expect(metrics).toContain('cotacao_pair_last_run_success{pair="USD-BRL"} 1\n');
      // The pair that did fail says so, quotes or none.
      expect(metrics).toContain('cotacao_pair_last_run_success{pair="XXX-BRL"} 0\n');
      expect(metrics).toContain("cotacao_runs_skipped_locked_total 1\n");
    } finally {
      app.close();
    }
  });

  test("status pair by pair: a run that failed for USD-BRL itself is still CRITICAL, failing and 0", async () => {
    await withApi(html(403), async (api) => {
      const result = await runScript("main_pipeline.ts", ["--pairs", "USD-BRL,EUR-BRL"], { env: { DATABASE_URL: db.url, AWESOMEAPI_URL: api.url } });
      expect(result.code).toBe(EXIT.failure);
    });
    const monitor = await runScript("monitor.ts", ["--pair", "USD-BRL", "--format", "json"], { env: { DATABASE_URL: db.url } });
    const [report] = JSON.parse(monitor.stdout);
    expect({ code: monitor.code, state: report.state, run: report.lastRun.status }).toEqual({ code: 2, state: "CRITICAL", run: "failed" });
    const app = createApp(db.sql, { analysis: loadAnalysisConfig({}) });
    try {
      expect((await (await app.request("/api/latest?pair=USD-BRL")).json()).status.state).toBe("failing");
      expect(await (await app.request("/metrics")).text()).toContain('cotacao_pair_last_run_success{pair="USD-BRL"} 0\n');
    } finally {
      app.close();
    }
  });

  test("a database that is down before the run: PostgreSQL at host:port cannot be reached, nothing said of what was stored", async () => {
    const closed = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const port = closed.port;
    closed.stop(true);
    const result = await runScript("main_pipeline.ts", [], { env: { DATABASE_URL: `postgres://u:s3cret@127.0.0.1:${port}/x`, AWESOMEAPI_URL: "http://127.0.0.1:9/" } });
    expect(result.code).toBe(EXIT.failure);
    expect(result.stderr).toContain(`PostgreSQL at 127.0.0.1:${port} cannot be reached (ECONNREFUSED); check that the server is running`);
    expect(result.stderr).not.toContain("committed");
    expect(result.stderr).not.toContain("s3cret");
  });

  test("the token never reaches the output", async () => {
    await withApi(html(403), async (api) => {
      const token = "tok-very-secret-123";
      const result = await runScript("main_pipeline.ts", ["--json"], {
        env: { DATABASE_URL: db.url, AWESOMEAPI_URL: api.url, AWESOMEAPI_TOKEN: token },
      });
      expect(api.requests[0]?.url.searchParams.get("token")).toBe(token);
      expect(result.stdout + result.stderr).not.toContain(token);
      const [run] = await db.sql`select error from pipeline_runs order by id desc limit 1`;
      expect(run?.["error"]).not.toContain(token);
    });
  });

  test("two runs at once: the second waits for the first, or exits 75 past --lock-timeout; nothing is stored twice", async () => {
    await db.sql`delete from quotes`;
    await withApi(delay(1_500, FRESH), async (api) => {
      const env = { DATABASE_URL: db.url, AWESOMEAPI_URL: api.url };
      const first = runScript("main_pipeline.ts", ["--json"], { env });
      // The first run holds the lock once its request reaches the API.
      for (let waited = 0; api.count() === 0 && waited < 20_000; waited += 20) await Bun.sleep(20);
      const impatient = await runScript("main_pipeline.ts", ["--lock-timeout", "200ms"], { env });
      const patient = runScript("main_pipeline.ts", ["--json", "--lock-timeout", "30s"], { env });
      expect(impatient.code).toBe(EXIT.locked);
      expect(impatient.stderr).toContain("another run has held the lock");
      const [a, b] = await Promise.all([first, patient]);
      expect([a.code, b.code]).toEqual([0, 0]);
      const inserted = [JSON.parse(a.stdout).inserted, JSON.parse(b.stdout).inserted].sort();
      expect(inserted).toEqual([0, 1]);
      const [count] = await db.sql`select count(*)::int as n from quotes`;
      expect(count?.["n"]).toBe(1);
      // Standing aside for another run fails nothing.
      const [locked] = await db.sql`select status, error from pipeline_runs where error like '%lock%'`;
      expect(locked?.["status"]).toBe("skipped");
    });
  });

  /** `fn` with the URL of a database holding a month of closes at 5.00 up to yesterday: the API's 5.66 or so is far above. */
  async function withFlatMonth(fn: (url: string) => Promise<void>): Promise<void> {
    const url = await createTestDatabase();
    try {
      const sql = connectUrl(url, { max: 1 });
      const yesterday = Date.now() - 86_400_000;
      await saveQuotes(sql, Array.from({ length: 30 }, (_, i) => ({ ...SEED, ts: new Date(yesterday - i * 86_400_000), bid: "5.00" })));
      await sql.end({ timeout: 5 });
      await fn(url);
    } finally {
      await dropTestDatabase(url);
    }
  }

  test("an alert that fires prints one line, even with --quiet, and reaches the webhook", async () => {
    const hooks: Record<string, unknown>[] = [];
    const receiver = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      fetch: async (request) => (hooks.push((await request.json()) as Record<string, unknown>), new Response("ok")),
    });
    try {
      await withFlatMonth(async (url) => {
        await withApi(FRESH, async (api) => {
          const env = { DATABASE_URL: url, AWESOMEAPI_URL: api.url, ALERT_WEBHOOK_URLS: `http://127.0.0.1:${receiver.port}/hook` };
          const result = await runScript("main_pipeline.ts", ["--quiet"], { env });
          expect(result.stderr).toBe("");
          expect(result.code).toBe(0);
          expect(result.stdout).toMatch(/^alert: FIRING USD-BRL \d+\.\d+ is \d+\.\d+% above its 20-day average 5\.0000/);
          expect(result.stdout.trim().split("\n")).toHaveLength(1);
          expect(hooks).toHaveLength(1);
          expect(hooks[0]).toMatchObject({ status: "firing", pair: "USD-BRL", direction: "up" });
          const again = await runScript("main_pipeline.ts", ["--quiet"], { env });
          expect(again).toEqual({ code: 0, stdout: "", stderr: "" });
          expect(hooks).toHaveLength(1);
        });
      });
    } finally {
      receiver.stop(true);
    }
  });

  test("a webhook that refuses (404) is one line on stderr even with --quiet, naming its host, and only once", async () => {
    const refusing = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response("no such hook", { status: 404 }) });
    try {
      await withFlatMonth(async (url) => {
        await withApi(FRESH, async (api) => {
          const secretPath = "/services/T000/B000/very-secret-token";
          const env = { DATABASE_URL: url, AWESOMEAPI_URL: api.url, ALERT_WEBHOOK_URLS: `http://127.0.0.1:${refusing.port}${secretPath}` };
          const result = await runScript("main_pipeline.ts", ["--quiet"], { env });
          expect(result.code).toBe(0);
          expect(result.stdout).toMatch(/^alert: FIRING USD-BRL/);
          const lines = result.stderr.trim().split("\n");
          expect(lines).toHaveLength(1);
          expect(lines[0]).toStartWith(`webhook: webhook 1 (127.0.0.1:${refusing.port})`);
          expect(lines[0]).toContain("404");
          expect(result.stderr).not.toContain(secretPath);
          const again = await runScript("main_pipeline.ts", ["--quiet"], { env });
          expect(again).toEqual({ code: 0, stdout: "", stderr: "" });
        });
      });
    } finally {
      refusing.stop(true);
    }
  });

  test("--dry-run writes nothing", async () => {
    await withApi(FRESH, async (api) => {
      const runsBefore = await db.sql`select count(*)::int as n from pipeline_runs`;
      const result = await runScript("main_pipeline.ts", ["--dry-run"], { env: { DATABASE_URL: db.url, AWESOMEAPI_URL: api.url } });
      expect(result.code).toBe(0);
      expect(result.stdout).toContain("nothing written (dry run)");
      expect(await db.sql`select count(*)::int as n from pipeline_runs`).toEqual(runsBefore);
    });
  });

  test("--every keeps cycling until SIGTERM, then finishes the cycle and exits 0", async () => {
    await withApi(FRESH, async (api) => {
      const child = Bun.spawn([process.execPath, "main_pipeline.ts", "--every", "1s", "--json"], {
        cwd: `${import.meta.dir}/..`,
        env: { ...process.env, DATABASE_URL: db.url, AWESOMEAPI_URL: api.url, COTACAO_OFFICIAL: "off" },
        stdout: "pipe",
        stderr: "pipe",
      });
      for (let waited = 0; api.count() < 2 && waited < 20_000; waited += 20) await Bun.sleep(20);
      child.kill("SIGTERM");
      expect(await child.exited).toBe(0);
      const lines = (await new Response(child.stdout).text()).trim().split("\n");
      expect(lines.length).toBeGreaterThanOrEqual(2);
      for (const line of lines) expect(JSON.parse(line).status).toBe("succeeded");
    });
  });
});

describe("bun main_pipeline.ts --from: killed with -9 in the middle of a backfill", () => {
  const urls: string[] = [];
  afterAll(async () => {
    for (const url of urls) await dropTestDatabase(url);
  });

  test("run again, it ends with the same table as a clean run, row for row", async () => {
    const ptax = loadPtaxSeries();
    const range = ["--from", "2004-01-01", "--to", "2023-12-31"];
    const cleanUrl = await createTestDatabase();
    const killedUrl = await createTestDatabase();
    urls.push(cleanUrl, killedUrl);
    const series = dailySeries({ "USD-BRL": ptax });
    await withApi(series, async (api) => {
      const clean = await runScript("main_pipeline.ts", range, { env: { DATABASE_URL: cleanUrl, AWESOMEAPI_URL: api.url } });
      expect(clean.code).toBe(0);
    });
    const killed = connectUrl(killedUrl, { max: 1 });
    try {
      await withApi(delay(300, series), async (api) => {
        const env = { ...process.env, DATABASE_URL: killedUrl, AWESOMEAPI_URL: api.url };
        const child = Bun.spawn([process.execPath, "main_pipeline.ts", ...range], { cwd: `${import.meta.dir}/..`, env, stdout: "ignore", stderr: "ignore" });
        // Let it store a few chunks, then pull the plug.
        for (let waited = 0; waited < 30_000; waited += 20) {
          const [progress] = await killed`select count(*)::int as n from quotes`;
          if ((progress?.["n"] ?? 0) > 500) break;
          await Bun.sleep(20);
        }
        child.kill("SIGKILL");
        await child.exited;
        const [partial] = await killed`select count(*)::int as n from quotes`;
        expect(partial!["n"]).toBeGreaterThan(0);
        const [interrupted] = await killed`select status from pipeline_runs`;
        expect(interrupted?.["status"]).toBe("running");

        const rerun = await runScript("main_pipeline.ts", [...range, "--json"], { env: { DATABASE_URL: killedUrl, AWESOMEAPI_URL: api.url } });
        expect(rerun.code).toBe(0);
        expect(JSON.parse(rerun.stdout).inserted).toBeLessThan(ptax.length);
      });
      const clean = connectUrl(cleanUrl, { max: 1 });
      try {
        expect(await quoteRows(killed)).toEqual(await quoteRows(clean));
      } finally {
        await clean.end({ timeout: 5 });
      }
      const runs = await killed`select status, error from pipeline_runs order by id`;
      expect(runs.map((run) => run["status"])).toEqual(["failed", "succeeded"]);
      expect(runs[0]?.["error"]).toContain("interrupted");
    } finally {
      await killed.end({ timeout: 5 });
    }
  }, 60_000);
});

describe("bun main_pipeline.ts when the database goes away", () => {
  const ptax = loadPtaxSeries();
  const range = ["--from", "2000-01-01", "--to", "2023-12-31"];
  const inRange = ptax.filter((point) => point.date >= "2000-01-01" && point.date <= "2023-12-31");
  const tempDir = useTempDirs();

  /** An embedded server of the test's own, which the test may stop or kill. */
  async function ownServer(): Promise<string> {
    const dataDir = join(await tempDir(), "pg");
    await startEmbeddedServer(dataDir);
    return dataDir;
  }

  async function storedCount(dataDir: string): Promise<number> {
    const server = await runningEmbeddedServer(dataDir);
    if (!server) return 0;
    const sql = connectUrl(server.url, { max: 1 });
    try {
      const [row] = await sql`select count(*)::int as n from quotes`.catch(() => [{ n: 0 }]);
      return row?.n ?? 0;
    } finally {
      await sql.end({ timeout: 1 });
    }
  }

  const ways: [string, (dataDir: string) => Promise<unknown>][] = [
    ["stopped", (dataDir) => stopEmbeddedServer(dataDir)],
    [
      "killed with -9",
      async (dataDir) => {
        const server = await runningEmbeddedServer(dataDir);
        if (server) process.kill(server.pid, "SIGKILL");
      },
    ],
  ];
  for (const [way, pullThePlug] of ways) {
    test(`the server ${way} in the middle of a backfill: exit 1 within seconds, one line; the next run ends complete`, async () => {
      const dataDir = await ownServer();
      await withApi(delay(250, dailySeries({ "USD-BRL": ptax })), async (api) => {
        const env = cleanEnv({ COTACAO_DATA_DIR: dataDir, AWESOMEAPI_URL: api.url });
        const child = Bun.spawn([process.execPath, "main_pipeline.ts", ...range], { cwd: `${import.meta.dir}/..`, env, stdout: "pipe", stderr: "pipe" });
        for (let waited = 0; (await storedCount(dataDir)) === 0 && waited < 30_000; waited += 50) await Bun.sleep(50);
        const pulled = performance.now();
        await pullThePlug(dataDir);
        const code = await Promise.race([child.exited, Bun.sleep(20_000).then(() => "still running")]);
        if (code === "still running") child.kill("SIGKILL");
        const seconds = (performance.now() - pulled) / 1000;
        expect(code).toBe(EXIT.failure);
        expect(seconds).toBeLessThan(10);
        const stderr = (await new Response(child.stderr).text()).trim();
        expect(stderr.split("\n")).toHaveLength(1);
        expect(stderr).toContain("lost the connection to PostgreSQL");

        // The next run starts the server again, carries on, and the table is complete.
        const rerun = await runScript("main_pipeline.ts", [...range, "--json"], { env: { COTACAO_DATA_DIR: dataDir, AWESOMEAPI_URL: api.url } });
        expect(rerun.code).toBe(0);
      });
      const server = await runningEmbeddedServer(dataDir);
      const sql = connectUrl(server!.url, { max: 1 });
      try {
        const rows = await sql`
          select to_char(ts at time zone 'America/Sao_Paulo', 'YYYY-MM-DD') as date, bid::text as bid
          from quotes order by ts`;
        expect(rows.map((row) => ({ date: row["date"], bid: row["bid"] }))).toEqual(inRange.map((point) => ({ date: point.date, bid: point.bid })));
        const runs = await sql`select status from pipeline_runs order by id`;
        expect(runs.map((run) => run["status"])).toEqual(["failed", "succeeded"]);
      } finally {
        await sql.end({ timeout: 5 });
      }
    }, 60_000);
  }

  test("--every survives a database that died between cycles: the next cycle starts the embedded server again", async () => {
    const dataDir = await ownServer();
    const fixture = (fixtureJson(LAST_USD) as { USDBRL: Record<string, string> }).USDBRL;
    const fresh = json({ USDBRL: { ...fixture, timestamp: String(Math.floor(Date.now() / 1000) - 60) } });
    await withApi(fresh, async (api) => {
      const env = cleanEnv({ COTACAO_DATA_DIR: dataDir, AWESOMEAPI_URL: api.url });
      const child = Bun.spawn([process.execPath, "main_pipeline.ts", "--every", "3s", "--json"], { cwd: `${import.meta.dir}/..`, env, stdout: "pipe", stderr: "pipe" });
      const reader = child.stdout.getReader();
      let output = "";
      const lines = async (count: number) => {
        const deadline = performance.now() + 20_000;
        while (output.split("\n").filter(Boolean).length < count && performance.now() < deadline) {
          const chunk = await Promise.race([reader.read(), Bun.sleep(deadline - performance.now()).then(() => undefined)]);
          if (!chunk || chunk.done) break;
          output += new TextDecoder().decode(chunk.value);
        }
        return output.split("\n").filter(Boolean).map((line) => JSON.parse(line).status as string);
      };
      try {
        // Right after a cycle has reported, the next one is 3 s away: the server dies in between.
        expect(await lines(1)).toEqual(["succeeded"]);
        const server = await runningEmbeddedServer(dataDir);
        process.kill(server!.pid, "SIGKILL");
        expect(await lines(3)).toEqual(["succeeded", "succeeded", "succeeded"]);
        child.kill("SIGTERM");
        expect(await child.exited).toBe(0);
        const restarted = await runningEmbeddedServer(dataDir);
        expect(restarted?.pid).toBeGreaterThan(0);
        expect(restarted?.pid).not.toBe(server!.pid);
      } finally {
        child.kill("SIGKILL");
      }
    });
  }, 60_000);
});

describe("runPipeline(): an alert that fires again on the same quote", () => {
  const db = useTestDatabase();
  const usd = (fixtureJson(LAST_USD) as { USDBRL: Record<string, string> }).USDBRL;
  // 90 days of closes at 5.60 up to the day before the fixture's quote.
  const days: DailyPoint[] = [];
  for (let day = Date.UTC(2024, 6, 27); day <= Date.UTC(2024, 9, 24); day += 86_400_000) {
    const weekday = new Date(day).getUTCDay();
    if (weekday !== 0 && weekday !== 6) days.push({ date: new Date(day).toISOString().slice(0, 10), bid: "5.60" });
  }
  const latest = (bid: string) => json({ USDBRL: { ...usd, bid, ask: bid } });

  test("fires, resolves and fires again on one corrected quote, and a threshold changed for one run: every run succeeds", async () => {
    const hooks: { status: string; fingerprint: string }[] = [];
    const receiver = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      fetch: async (request) => (hooks.push((await request.json()) as { status: string; fingerprint: string }), new Response("ok")),
    });
    try {
      const analysis = loadAnalysisConfig({ ALERT_WEBHOOK_URLS: `http://127.0.0.1:${receiver.port}/hook` });
      let reply: Reply = dailySeries({ "USD-BRL": days });
      const api = startFakeAwesomeApi((request, context) => reply(request, context));
      try {
        // Minutes after each quote: nothing is stale.
        const afterQuote = () => new Date("2024-10-25T15:30:00Z");
        const run = (extra: Partial<PipelineOptions> = {}) => runPipeline(db.sql, against(api, { analysis, now: afterQuote, ...extra }));
        const history = { from: "2024-07-27", to: "2024-10-24" };
        expect(await run({ history, now: () => new Date("2024-10-24T20:30:00Z") })).toMatchObject({ status: "succeeded", alerts: [] });
        const steps: [string, Partial<PipelineOptions>, RegExp | null][] = [
          ["6.0480", {}, /^FIRING USD-BRL 6\.0480 is 8\.00% above/],
          ["5.6100", {}, /^RESOLVED USD-BRL/],
          ["6.0480", {}, /^FIRING USD-BRL 6\.0480/],
          ["6.0480", {}, null],
          // A wider threshold for one run resolves it; the default fires it again, on the same quote.
          ["6.0480", { analysis: { ...analysis, defaults: { ...analysis.defaults, threshold: 0.12, recovery: 0.096 } } }, /^RESOLVED USD-BRL/],
          ["6.0480", {}, /^FIRING USD-BRL 6\.0480/],
          ["6.0480", {}, null],
        ];
        for (const [bid, extra, expected] of steps) {
          reply = routes({ [LAST_USD_PATH]: latest(bid) });
          const result = await run(extra);
          expect(result.error).toBeUndefined();
          expect(result.status).toBe("succeeded");
          if (expected) {
            expect(result.alerts).toHaveLength(1);
            expect(result.alerts[0]).toMatch(expected);
          } else {
            expect(result.alerts).toEqual([]);
          }
        }
      } finally {
        await api.stop();
      }
      const alerts = await db.sql`select status, fingerprint from alerts where kind = 'deviation' order by id`;
      expect(alerts.map((alert) => alert["status"])).toEqual(["resolved", "resolved", "firing"]);
      expect(new Set(alerts.map((alert) => alert["fingerprint"])).size).toBe(3);
      // Each episode sent its own FIRING and RESOLVED, once.
      expect(hooks.map((hook) => hook.status)).toEqual(["firing", "resolved", "firing", "resolved", "firing"]);
      expect(new Set(hooks.map((hook) => `${hook.fingerprint}:${hook.status}`)).size).toBe(5);
    } finally {
      receiver.stop(true);
    }
  });
});

describe("runPipeline(): webhook receivers that hang or refuse", () => {
  const db = useTestDatabase();
  const usd = (fixtureJson(LAST_USD) as { USDBRL: Record<string, string> }).USDBRL;
  const days: DailyPoint[] = [];
  for (let day = Date.UTC(2024, 8, 1); day <= Date.UTC(2024, 9, 24); day += 86_400_000) {
    const weekday = new Date(day).getUTCDay();
    if (weekday !== 0 && weekday !== 6) days.push({ date: new Date(day).toISOString().slice(0, 10), bid: "5.60" });
  }
  const afterQuote = () => new Date("2024-10-25T15:30:00Z");

  test("a receiver that never answers delays no other run: delivery happens after the lock is released", async () => {
    // Accepts connections and stays silent.
    const silent = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const analysis = loadAnalysisConfig({ ALERT_WEBHOOK_URLS: `http://127.0.0.1:${silent.port}/hook` });
    const reply = routes({ [LAST_USD_PATH]: json({ USDBRL: { ...usd, bid: "6.0480", ask: "6.0480" } }) }, dailySeries({ "USD-BRL": days }));
    try {
      await withApi(reply, async (api) => {
        const seed = await runPipeline(db.sql, against(api, { analysis, history: { from: "2024-09-01", to: "2024-10-24" }, now: () => new Date("2024-10-24T20:30:00Z") }));
        expect(seed.status).toBe("succeeded");
        const options = { analysis, now: afterQuote, delivery: { timeoutMs: 200, budgetMs: 3_000 } };
        const firing = runPipeline(db.sql, against(api, options));
        // While the first run waits on the receiver, a second one takes the lock at once.
        for (let waited = 0; api.count(LAST_USD_PATH) === 0 && waited < 10_000; waited += 10) await Bun.sleep(10);
        await Bun.sleep(500);
        const began = performance.now();
        const second = await runPipeline(db.sql, against(api, { ...options, lockTimeoutMs: 1_000 }));
        expect(second.status).toBe("succeeded");
        expect(performance.now() - began).toBeLessThan(2_500);
        const first = await firing;
        expect(first).toMatchObject({ status: "succeeded" });
        expect(first.alerts[0]).toMatch(/^FIRING USD-BRL/);
        expect(first.undelivered).toHaveLength(1);
        expect(first.undelivered[0]).toContain(`127.0.0.1:${silent.port}`);
      });
      // The second run did not take the first, still delivering, for an interrupted one.
      const runs = await db.sql`select status, error from pipeline_runs order by id`;
      expect(runs.map((run) => run["status"])).toEqual(["succeeded", "succeeded", "succeeded"]);
    } finally {
      silent.stop(true);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// The official source: BCB's PTAX, beside AwesomeAPI

const KIND = { Abertura: "opening", Intermediário: "intermediate", Fechamento: "closing" } as const;

/**
 * A working day's five bulletins (opening, three intermediate, closing) for every weekday from
 * `from` to `to`, with times of 1 to 6 fractional digits and rates whose digits must survive as
 * written (trailing zeros too).
 */
function fiveBulletinDays(from: string, to: string): FakeBulletin[] {
  const bulletins: FakeBulletin[] = [];
  const times = ["10:04:27.1", "11:04:27.12", "12:04:27.123", "13:04:27.1234", "13:09:27.123456"];
  for (let day = from, n = 0; day <= to; day = addDays(day, 1), n++) {
    const weekday = new Date(`${day}T12:00:00Z`).getUTCDay();
    if (weekday === 0 || weekday === 6) continue;
    times.forEach((time, index) => {
      const kind = index === 0 ? "Abertura" : index === 4 ? "Fechamento" : "Intermediário";
      bulletins.push({ date: day, time, tipoBoletim: kind, buy: `5.${6900 + n * 7 + index}`, sell: `5.${6906 + n * 7 + index}0` });
    });
  }
  return bulletins;
}

/** A bulletin as official_rates should hold it: São Paulo wall-clock time with six fractional digits, digits as sent. */
function storedAs(pair: string, bulletin: FakeBulletin) {
  const [seconds, fraction = ""] = bulletin.time.split(".");
  return { pair, at: `${bulletin.date} ${seconds}.${fraction.padEnd(6, "0")}`, bulletin: KIND[bulletin.tipoBoletim], buy: bulletin.buy, sell: bulletin.sell };
}

async function officialRows(sql: Sql): Promise<unknown[]> {
  return [
    ...(await sql`
      select pair, to_char(published_at at time zone 'America/Sao_Paulo', 'YYYY-MM-DD HH24:MI:SS.US') as at, bulletin, buy::text, sell::text
      from official_rates order by pair, published_at`),
  ];
}

async function officialRun(sql: Sql) {
  const [run] = await sql`
    select status, failed_step, failed_sources, failed_pairs, failed_pairs_only, rows_inserted,
      official_rows_fetched, official_rows_inserted, official_rows_updated, official_rows_unchanged, error
    from pipeline_runs order by id desc limit 1`;
  return run;
}

/** BCB options for a run against the fake Olinda: no real waiting between retries. */
const bcbAt = (olinda: FakeOlinda) => ({ baseUrl: olinda.url, timeoutMs: 2_000, retries: 2, sleep: async () => {} });

describe("runPipeline(): the official bulletins of the last ten days, beside the latest quote", () => {
  const db = useTestDatabase();
  // NOW is Friday 2024-10-25: the ten days are 2024-10-16..25; the 14th and 15th are older.
  const bulletins = fiveBulletinDays("2024-10-14", "2024-10-25");
  const recent = bulletins.filter((bulletin) => bulletin.date >= "2024-10-16");
  const fixture = (fixtureJson(LAST_USD) as { USDBRL: Record<string, string> }).USDBRL;
  const BOTH = json({ USDBRL: fixture, BTCBRL: { ...fixture, code: "BTC", name: "Bitcoin/Real Brasileiro", bid: "371234.5", ask: "371300.1" } });

  test("the default run stores the ten days' bulletins digit for digit, one request per currency; run again, it adds nothing", async () => {
    await using olinda = startFakeOlinda(periodSeries({ USD: bulletins }));
    await withApi(replay(LAST_USD), async (api) => {
      const first = await runPipeline(db.sql, against(api, { official: bcbAt(olinda) }));
      expect(first).toMatchObject({ status: "succeeded", exitCode: 0, inserted: 1, failedSources: [] });
      expect(first.official).toEqual({ fetched: recent.length, inserted: recent.length, updated: 0, unchanged: 0, uncovered: [] });
      expect(recent.length).toBe(40);
      expect(await officialRows(db.sql)).toEqual(recent.map((bulletin) => storedAs("USD-BRL", bulletin)));
      expect(olinda.count()).toBe(1);
      expect(decodeURIComponent(olinda.requests[0]!.url.search)).toContain("@dataInicial='10-16-2024'&@dataFinalCotacao='10-25-2024'");
      expect(await officialRun(db.sql)).toMatchObject({ status: "succeeded", failed_sources: [], official_rows_fetched: 40, official_rows_inserted: 40 });
      expect(formatSummary(first)).toContain("; official PTAX fetched 40, inserted 40, updated 0, unchanged 0 in ");

      const again = await runPipeline(db.sql, against(api, { official: bcbAt(olinda) }));
      expect(again.official).toEqual({ fetched: 40, inserted: 0, updated: 0, unchanged: 40, uncovered: [] });
      expect(await officialRun(db.sql)).toMatchObject({ official_rows_inserted: 0, official_rows_unchanged: 40 });
    });
  });

  test("BTC-BRL, which PTAX does not cover, is said once in the summary line, asked nothing, and is no error", async () => {
    await using olinda = startFakeOlinda(periodSeries({ USD: bulletins }));
    await withApi(BOTH, async (api) => {
      const run = await runPipeline(db.sql, against(api, { pairs: ["USD-BRL", "BTC-BRL"], official: bcbAt(olinda) }));
      expect(run).toMatchObject({ status: "succeeded", exitCode: 0, fetched: 2, failedPairs: [], failedSources: [], warnings: [] });
      expect(run.official?.uncovered).toEqual(["BTC-BRL"]);
      expect(olinda.count()).toBe(1);
      const line = formatSummary(run);
      expect(line.split("\n")).toHaveLength(1);
      expect(line.match(/BTC-BRL/g)).toHaveLength(2); // the pairs, and the one note
      expect(line).toContain("(PTAX does not cover BTC-BRL)");
      expect(await officialRun(db.sql)).toMatchObject({ status: "succeeded", error: null });
    });
  });
});

describe("runPipeline(): each source stored whatever the other does", () => {
  const db = useTestDatabase();
  const bulletins = fiveBulletinDays("2024-10-14", "2024-10-25");
  const recent = bulletins.filter((bulletin) => bulletin.date >= "2024-10-16");

  test("AwesomeAPI down while BCB answers: the official bulletins are stored, the run fails naming AwesomeAPI", async () => {
    await using olinda = startFakeOlinda(periodSeries({ USD: bulletins }));
    await withApi(status(503), async (api) => {
      const run = await runPipeline(db.sql, against(api, { official: bcbAt(olinda) }));
      expect(run).toMatchObject({ status: "failed", exitCode: EXIT.failure, failedStep: "fetch", failedSources: ["awesomeapi"], inserted: 0 });
      expect(run.error).toContain("the API answered HTTP 503");
      expect(run.error).not.toContain("BCB");
      expect(formatSummary(run)).toMatch(/^latest USD-BRL failed at the fetch step \(AwesomeAPI\) after /);
      expect(run.official).toMatchObject({ fetched: 40, inserted: 40 });
      expect(await officialRows(db.sql)).toEqual(recent.map((bulletin) => storedAs("USD-BRL", bulletin)));
      expect(formatSummary(run)).toContain("stored all the same: fetched 0, inserted 0, updated 0, unchanged 0; official PTAX fetched 40, inserted 40");
      expect(await officialRun(db.sql)).toMatchObject({
        status: "failed",
        failed_step: "fetch",
        failed_sources: ["awesomeapi"],
        failed_pairs_only: false,
        official_rows_inserted: 40,
      });
    });
  });

  test("BCB down while AwesomeAPI answers: the quote is stored, the run fails naming BCB, and no pair's quotes count as failed", async () => {
    await db.sql`truncate official_rates, official_rate_revisions, quotes, quote_revisions`;
    await using olinda = startFakeOlinda(olindaHtml(503));
    await withApi(replay(LAST_USD), async (api) => {
      const run = await runPipeline(db.sql, against(api, { official: bcbAt(olinda) }));
      expect(run).toMatchObject({ status: "failed", exitCode: EXIT.failure, failedStep: "fetch", failedSources: ["bcb"], failedPairs: [], inserted: 1 });
      expect(run.error).toStartWith("Cannot fetch the USD PTAX bulletins from 2024-10-16 to 2024-10-25 from BCB (127.0.0.1:");
      expect(run.error).toContain("(gave up after 3 attempts)");
      expect(await quoteRows(db.sql)).toHaveLength(1);
      expect(await officialRows(db.sql)).toEqual([]);
      expect(await officialRun(db.sql)).toMatchObject({ status: "failed", failed_sources: ["bcb"], failed_pairs: [], failed_pairs_only: true, rows_inserted: 1 });
      // How the run went for USD-BRL's quotes (the monitor's, the card's and /metrics' rule): it succeeded.
      const [forPair] = await db.sql`
        select pipeline_run_status_for(status, failed_pairs, failed_pairs_only, 'USD-BRL') as status from pipeline_runs order by id desc limit 1`;
      expect(forPair?.["status"]).toBe("succeeded");
    });
  });
});

describe("runPipeline() --source bcb: official history", () => {
  const db = useTestDatabase();
  const points = loadPtaxSeries().filter((point) => point.date >= "1994-07-01" && point.date <= "2024-03-22");
  const bulletins = ptaxBulletins(points);
  const RANGE = { from: "1994-07-01", to: "2024-03-22" };
  const at = () => new Date("2024-03-25T12:00:00Z");
  const expected = bulletins.map((bulletin) => storedAs("USD-BRL", bulletin));

  test("1994-07-01..2024-03-22 from ptax.csv: every business day digit for digit, a year a request, no AwesomeAPI request; a re-run adds 0", async () => {
    await using olinda = startFakeOlinda(periodSeries({ USD: bulletins }));
    await withApi(status(500), async (api) => {
      const progress: number[] = [];
      const options = against(api, { pairs: ["USD-BRL", "BTC-BRL"], source: "bcb", history: RANGE, now: at, official: bcbAt(olinda), onProgress: (p) => progress.push(p.chunk) });
      const run = await runPipeline(db.sql, options);
      expect(run).toMatchObject({ status: "succeeded", mode: "backfill", source: "bcb", fetched: 0, inserted: 0 });
      expect(run.official).toEqual({ fetched: points.length, inserted: points.length, updated: 0, unchanged: 0, uncovered: ["BTC-BRL"] });
      expect(points.length).toBeGreaterThan(7_400);
      expect(await officialRows(db.sql)).toEqual(expected);
      expect(api.count()).toBe(0);
      expect(olinda.count()).toBe(31);
      expect(progress).toEqual(Array.from({ length: 31 }, (_, index) => index + 1));
      expect(formatSummary(run)).toMatch(new RegExp(`^backfill USD-BRL,BTC-BRL ok: official PTAX fetched ${points.length}, inserted ${points.length}, updated 0, unchanged 0 \\(PTAX does not cover BTC-BRL\\) in `));
      const [progressRow] = await db.sql`select done_through::text as done from official_backfill_progress`;
      expect(progressRow?.["done"]).toBe("2024-03-22");

      const again = await runPipeline(db.sql, { ...options, onProgress: undefined });
      expect(again.official).toMatchObject({ fetched: points.length, inserted: 0, updated: 0, unchanged: points.length });
      expect(await officialRun(db.sql)).toMatchObject({ status: "succeeded", official_rows_inserted: 0, official_rows_unchanged: points.length });
    });
  });

  test("interrupted midway (BCB fails from the 12th request), it resumes where it stopped and ends with every row", async () => {
    await db.sql`truncate official_rates, official_rate_revisions, official_backfill_progress`;
    const series = periodSeries({ USD: bulletins });
    let failing = true;
    await using olinda = startFakeOlinda((request, context) => (failing && context.count >= 12 ? olindaHtml(503)(request, context) : series(request, context)));
    await withApi(status(500), async (api) => {
      const options = against(api, { source: "bcb", history: RANGE, now: at, official: bcbAt(olinda), backfillBatchRows: 500 });
      const first = await runPipeline(db.sql, options);
      expect(first).toMatchObject({ status: "failed", exitCode: EXIT.failure, failedSources: ["bcb"] });
      expect(first.error).toContain("from BCB (127.0.0.1:");
      const [progress] = await db.sql`select done_through::text as done from official_backfill_progress`;
      expect(progress?.["done"] > RANGE.from && progress?.["done"] < "2010-01-01").toBe(true);
      const storedSoFar = first.official!.inserted;
      expect(storedSoFar).toBeGreaterThan(0);
      // What is stored is exactly the years before the progress mark.
      expect(await officialRows(db.sql)).toEqual(expected.slice(0, storedSoFar));

      failing = false;
      const requestsBefore = olinda.count();
      const second = await runPipeline(db.sql, options);
      expect(second).toMatchObject({ status: "succeeded", failedSources: [] });
      expect(second.official?.inserted).toBe(points.length - storedSoFar);
      // It did not ask again for the years the first run stored.
      expect(olinda.count() - requestsBefore).toBeLessThan(31);
      expect(await officialRows(db.sql)).toEqual(expected);
    });
  });
});

describe("bun main_pipeline.ts and the official source", () => {
  const db = useTestDatabase();
  const fixture = (fixtureJson(LAST_USD) as { USDBRL: Record<string, string> }).USDBRL;
  const FRESH = json({ USDBRL: { ...fixture, timestamp: String(Math.floor(Date.now() / 1000) - 60) } });
  // Processes run on the real clock: bulletins of the days around today.
  const today = saoPauloDay(new Date());
  const bulletins = fiveBulletinDays(addDays(today, -20), today);
  const inTenDays = bulletins.filter((bulletin) => bulletin.date >= addDays(today, -9)).length;

  test("on by default, the run stores the ten days' bulletins and --json counts them; COTACAO_OFFICIAL=off asks BCB nothing", async () => {
    await using olinda = startFakeOlinda(periodSeries({ USD: bulletins }));
    await withApi(FRESH, async (api) => {
      const env = { DATABASE_URL: db.url, AWESOMEAPI_URL: api.url, BCB_URL: olinda.url };
      const on = await runScript("main_pipeline.ts", ["--json"], { env: { ...env, COTACAO_OFFICIAL: "" } });
      expect(on.code).toBe(0);
      expect(JSON.parse(on.stdout)).toMatchObject({ status: "succeeded", failedSources: [], official: { fetched: inTenDays, inserted: inTenDays, uncovered: [] } });
      expect(olinda.count()).toBe(1);
      const off = await runScript("main_pipeline.ts", ["--json"], { env: { ...env, COTACAO_OFFICIAL: "off" } });
      expect(off.code).toBe(0);
      expect(JSON.parse(off.stdout).official).toBeUndefined();
      expect(olinda.count()).toBe(1);
      const bad = await runScript("main_pipeline.ts", [], { env: { ...env, COTACAO_OFFICIAL: "maybe" } });
      expect([bad.code, bad.stderr]).toEqual([EXIT.usage, 'Cannot start: COTACAO_OFFICIAL must be on or off, got "maybe"\n']);
    });
  });

  test("BCB failing while AwesomeAPI answers: exit 1, one line on stderr naming BCB even with --quiet, the quote stored", async () => {
    await db.sql`truncate quotes, quote_revisions, official_rates, official_rate_revisions`;
    await using olinda = startFakeOlinda(olindaHtml(404));
    await withApi(FRESH, async (api) => {
      const result = await runScript("main_pipeline.ts", ["--quiet"], { env: { DATABASE_URL: db.url, AWESOMEAPI_URL: api.url, BCB_URL: olinda.url, COTACAO_OFFICIAL: "on" } });
      expect(result.code).toBe(EXIT.failure);
      expect(result.stdout).toBe("");
      const lines = result.stderr.trim().split("\n");
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/^latest USD-BRL failed at the fetch step \(BCB\) after .*from BCB \(127\.0\.0\.1:\d+\): BCB answered HTTP 404 with an HTML page.*; stored all the same: fetched 1, inserted 1/);
      expect(await quoteRows(db.sql)).toHaveLength(1);
    });
  });

  test("--source bcb in cron (--quiet) prints nothing and stores the official history; --help lists it", async () => {
    const series = ptaxBulletins(loadPtaxSeries().filter((point) => point.date >= "2023-01-01" && point.date <= "2024-03-22"));
    await using olinda = startFakeOlinda(periodSeries({ USD: series }));
    await withApi(status(500), async (api) => {
      const env = { DATABASE_URL: db.url, AWESOMEAPI_URL: api.url, BCB_URL: olinda.url, COTACAO_OFFICIAL: "off" };
      const result = await runScript("main_pipeline.ts", ["--quiet", "--source", "bcb", "--pairs", "USD-BRL,BTC-BRL", "--from", "2023-01-01", "--to", "2024-03-22"], { env });
      expect(result).toEqual({ code: 0, stdout: "", stderr: "" });
      const [stored] = await db.sql`select count(*)::int as n from official_rates where published_at < '2024-03-23'`;
      expect(stored?.["n"]).toBe(series.length);
      expect(olinda.count()).toBe(2);
      expect(api.count()).toBe(0);
    });
    const help = await runScript("main_pipeline.ts", ["--help"]);
    expect(help.stdout).toContain("--source SOURCE");
    expect(help.stdout).toContain("COTACAO_OFFICIAL=off");
  });

  test("--source is checked before any I/O: bcb needs a range and a pair PTAX covers", () => {
    const day = "2024-10-25";
    expect(parseInvocation(["--source", "bcb", "--from", "1994-07-01"], {}, day)).toMatchObject({ source: "bcb", history: { from: "1994-07-01", to: day } });
    expect(parseInvocation(["--source", "bcb", "--from", "1985-01-02"], {}, day).history?.from).toBe("1985-01-02");
    expect(() => parseInvocation(["--from", "1985-01-02"], {}, day)).toThrow('--from must not be before 1990-01-01, got "1985-01-02"');
    expect(() => parseInvocation(["--source", "ptax", "--from", "2024-01-02"], {}, day)).toThrow('--source must be awesomeapi or bcb, got "ptax"');
    expect(() => parseInvocation(["--source", "bcb"], {}, day)).toThrow("--source bcb loads official history: give it --from DATE [--to DATE] or --backfill DAYS");
    expect(() => parseInvocation(["--source", "bcb", "--pairs", "BTC-BRL", "--backfill", "30"], {}, day)).toThrow("--source bcb: PTAX covers none of BTC-BRL");
  });
});
