import { describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { cp, rm } from "node:fs/promises";
import { join } from "node:path";
import { loadAnalysisConfig } from "../lib/rule.ts";
import { connectUrl } from "../lib/pool.ts";
import { runningEmbeddedServer, startEmbeddedServer, stopEmbeddedServer } from "../lib/embedded_server.ts";
import { migrate, readMigrations, SQL_DIR } from "../lib/migrations.ts";
import { divergenceSeries, type PairSnapshot, readSnapshot } from "../lib/views.ts";
import { SOURCE_DAILY } from "../lib/quote.ts";
import { saveOfficialRates, saveQuotes } from "../database.ts";
import { assess, breaches, formatAge, formatNagios, formatOfficial, formatText, formatUnknown, parsePluginRange, printablePair, toJson, type Checks } from "../monitor.ts";
import packageJson from "../package.json" with { type: "json" };
import { runScript } from "./support/cli.ts";
import { createTestDatabase, dropTestDatabase, useTempDirs, useTestDatabase } from "./support/database.ts";
import { sampleQuote } from "./support/quotes.ts";
import { useTestTimeout } from "./support/timeout.ts";

useTestTimeout();

const CONFIG = loadAnalysisConfig({});

/**
 * `bun monitor.ts --watch ...` as a child, its stdout read line by line: next(pattern, ms) waits
 * for the next line that matches and returns it, with the time it arrived (undefined if none came).
 */
function watchChild(args: string[], env: Record<string, string>) {
  const child = Bun.spawn([process.execPath, "monitor.ts", "--watch", ...args], {
    cwd: `${import.meta.dir}/..`,
    env: { PATH: process.env["PATH"] ?? "", ...env },
    stdout: "pipe",
    stderr: "pipe",
  });
  const reader = child.stdout.getReader();
  let buffered = "";
  const next = async (pattern: RegExp, ms: number): Promise<{ line: string; at: number } | undefined> => {
    const deadline = performance.now() + ms;
    for (;;) {
      let newline: number;
      while ((newline = buffered.indexOf("\n")) !== -1) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        if (pattern.test(line)) return { line, at: performance.now() };
      }
      const left = deadline - performance.now();
      if (left <= 0) return undefined;
      const chunk = await Promise.race([reader.read(), Bun.sleep(left).then(() => undefined)]);
      if (!chunk || chunk.done) return undefined;
      buffered += new TextDecoder().decode(chunk.value);
    }
  };
  return { child, next };
}
const CHECKS: Checks = { config: CONFIG, maxAgeMs: 2 * 3_600_000 };
const DAY_MS = 86_400_000;

/** A snapshot of `pair` with 25 daily closes at 5.00 before `newest`, whose bid is `bid`. */
function snapshot(newest: Date, bid: string, extra: Partial<PairSnapshot> = {}): PairSnapshot {
  const day = Math.floor(newest.getTime() / DAY_MS);
  const closes = Array.from({ length: 25 }, (_, i) => ({ day: day - 25 + i, ts: new Date(newest.getTime() - (25 - i) * DAY_MS), close: "5.00" }));
  closes.push({ day, ts: newest, close: bid });
  return { pair: "USD-BRL", latest: { ts: newest, bid, ask: bid }, closes, alerts: [], lastRun: null, ...extra };
}

describe("plugin ranges", () => {
  test("parsePluginRange() reads the guidelines' forms, and breaches() alerts outside (or inside with @)", () => {
    const cases: [string, number, boolean][] = [
      ["10", 11, true],
      ["10", 10, false],
      ["10", -1, true],
      ["10:", 9, true],
      ["10:", 1e9, false],
      ["~:10", -1e9, false],
      ["~:10", 11, true],
      ["10:20", 15, false],
      ["10:20", 21, true],
      ["@10:20", 15, true],
      ["@10:20", 9, false],
      ["3", 3.01, true],
    ];
    for (const [text, value, alert] of cases) expect([text, value, breaches(parsePluginRange(text)!, value)]).toEqual([text, value, alert]);
    for (const bad of ["", "@", "abc", "20:10", "1:2:3", "5%"]) expect(parsePluginRange(bad)).toBeUndefined();
  });
});

describe("assess(): the state of a pair (pure)", () => {
  // Wednesday 2024-10-23, 15:00 São Paulo.
  const wednesday = new Date("2024-10-23T18:00:00Z");

  test("fresh, near its average, no alert: OK, with the rule's average and deviation", () => {
    const report = assess(snapshot(new Date(wednesday.getTime() - 60_000), "5.0500"), CHECKS, wednesday);
    expect(report).toMatchObject({ state: "OK", reasons: [], bid: "5.0500", previousClose: "5.00", average: 5, windowDays: 20 });
    expect(report.deviationPct).toBeCloseTo(1, 10);
    expect(report.changePct).toBeCloseTo(1, 10);
    expect(formatText(report)).toBe("USD-BRL 5.0500 / 5.0500 · 2024-10-23 14:59:00 -03 (60 s ago) · +1.00% d/d · MA20d 5.0000 (+1.00%) · OK");
  });

  test("older than --max-age on a weekday is CRITICAL; the same age over a weekend is not", () => {
    const stale = assess(snapshot(new Date(wednesday.getTime() - 3 * 3_600_000), "5.01"), CHECKS, wednesday);
    expect(stale.state).toBe("CRITICAL");
    expect(stale.reasons[0]).toContain("older than 2h of market time");
    // Friday 16:00 New York to Sunday 16:00 New York: the market was closed but for one hour.
    const friday = new Date("2024-10-25T20:00:00Z");
    const sunday = new Date("2024-10-27T20:00:00Z");
    expect(assess(snapshot(friday, "5.01"), CHECKS, sunday).state).toBe("OK");
  });

  test("a firing alert is WARNING; a failed last run is CRITICAL; -w and -c judge |deviation|", () => {
    const now = wednesday;
    const fresh = new Date(now.getTime() - 60_000);
    const firing = assess(snapshot(fresh, "5.30", { alerts: [{ kind: "deviation", direction: "up", startedAt: fresh }] }), CHECKS, now);
    expect(firing.state).toBe("WARNING");
    const run = { id: 7, status: "failed", startedAt: fresh, finishedAt: fresh, failedStep: "fetch", error: "boom" };
    expect(assess(snapshot(fresh, "5.01", { lastRun: run }), CHECKS, now)).toMatchObject({ state: "CRITICAL", reasons: ["last run 7 failed at the fetch step"] });
    const ranges = { ...CHECKS, warning: parsePluginRange("2")!, critical: parsePluginRange("5")! };
    expect(assess(snapshot(fresh, "5.15"), ranges, now).state).toBe("WARNING");
    expect(assess(snapshot(fresh, "4.70"), ranges, now).state).toBe("CRITICAL");
    expect(assess(snapshot(fresh, "5.05"), ranges, now).state).toBe("OK");
  });

  test("too little history is said, never guessed; no quote at all is UNKNOWN", () => {
    const few = snapshot(new Date(wednesday.getTime() - 60_000), "5.01");
    few.closes = few.closes.slice(-3);
    const report = assess(few, CHECKS, wednesday);
    expect(report).toMatchObject({ state: "OK", average: null, deviationPct: null });
    expect(formatText(report)).toContain("MA20d n/a (too little history)");
    expect(assess({ pair: "EUR-BRL", latest: null, closes: [], alerts: [], lastRun: null }, CHECKS, wednesday)).toMatchObject({ state: "UNKNOWN", reasons: ["no quotes stored"] });
  });

  test("formatAge() says seconds, minutes, hours or days", () => {
    expect([formatAge(59), formatAge(180), formatAge(7200), formatAge(3 * 86_400)]).toEqual(["59 s ago", "3 min ago", "2 h ago", "3 d ago"]);
  });
});

describe("printablePair()", () => {
  test("keeps a pair that follows the rule, escapes everything else but letters, digits and -", () => {
    expect(printablePair("USD-BRL")).toBe("USD-BRL");
    expect(printablePair("\x1b[2JX-BRL")).toBe("\\x1b\\x5b2JX-BRL");
    expect(printablePair("A'|B-C=1")).toBe("A\\x27\\x7cB-C\\x3d1");
    expect(printablePair(" USD-BRL")).toBe("\\x20USD-BRL");
    expect(printablePair("USD-BR\\L\u00e9\u{1f4b5}")).toBe("USD-BR\\x5cL\\xe9\\u{1f4b5}");
  });
});

describe("formatUnknown()", () => {
  test("a failed check in --watch says UNKNOWN first, in each format", () => {
    const line = "Cannot check: no answer within 1s; check the database (bun database.ts status)";
    expect(formatUnknown(line, "text")).toBe(`UNKNOWN - ${line}`);
    expect(formatUnknown(line, "nagios")).toBe(`COTACAO UNKNOWN - ${line}`);
    expect(JSON.parse(formatUnknown(line, "json"))).toEqual({ state: "UNKNOWN", exitCode: 3, error: line });
  });
});

describe("formatNagios()", () => {
  test("the status line's perfdata parses back, field by field", () => {
    const now = new Date("2024-10-23T18:00:00Z");
    const report = assess(snapshot(new Date(now.getTime() - 180_000), "5.0790"), { ...CHECKS, critical: parsePluginRange("5")! }, now);
    const line = formatNagios([report], { ...CHECKS, critical: parsePluginRange("5")! });
    const [status, perfdata] = line.split(" | ");
    expect(status).toBe("COTACAO OK - USD-BRL 5.0790");
    const fields = Object.fromEntries(
      perfdata!.split(" ").map((item) => {
        const match = /^'([^']+)'=(-?[\d.]+)(s|%)?;([^;]*);([^;]*)(?:;([^;]*))?(?:;([^;]*))?$/.exec(item);
        expect(match).not.toBeNull();
        const [, label, value, unit, warn, crit, min] = match!;
        return [label, { value: Number(value), unit: unit ?? "", warn, crit, min }];
      }),
    );
    expect(fields.bid).toEqual({ value: 5.079, unit: "", warn: "", crit: "", min: "0" });
    expect(fields.age).toEqual({ value: 180, unit: "s", warn: "3600", crit: "7200", min: "0" });
    expect(fields.deviation).toEqual({ value: 1.58, unit: "%", warn: "3", crit: "5", min: undefined });
  });
});

describe("the official source (PTAX) in the monitor", () => {
  // Wednesday 2024-10-23, 15:00 São Paulo; the closing PTAX at 13:09 that day.
  const now = new Date("2024-10-23T18:00:00Z");
  const official = { publishedAt: "2024-10-23T13:09:27.123456-03:00", buy: "5.4278", sell: "5.4284", bid: "5.4343", divergencePct: "0.119754" };

  test("the line gains PTAX, its time and the divergence; JSON and perfdata carry both; a firing divergence alert is WARNING", () => {
    const report = assess(snapshot(new Date(now.getTime() - 60_000), "5.0500", { official }), CHECKS, now);
    expect(report.state).toBe("OK");
    expect(report.official).toEqual({ ...official, divergencePct: 0.119754 });
    expect(formatText(report)).toBe("USD-BRL 5.0500 / 5.0500 · 2024-10-23 14:59:00 -03 (60 s ago) · +1.00% d/d · MA20d 5.0000 (+1.00%) · PTAX 5.4278 (13:09) Δ +0.12% · OK");
    const nagios = formatNagios([report], CHECKS);
    expect(nagios).toContain(" 'ptax'=5.4278;;;0 'divergence'=0.12%;;");
    expect((JSON.parse(JSON.stringify([report].map(toJson)))[0] as { official: unknown }).official).toEqual({ ...official, divergencePct: 0.119754 });
    // Another day's closing names its date; no matching quote says n/a.
    expect(formatOfficial({ ...official, publishedAt: "2024-10-22T13:09:27.000000-03:00", divergencePct: null }, now)).toBe("PTAX 5.4278 (2024-10-22 13:09) Δ n/a");
    const fresh = new Date(now.getTime() - 60_000);
    const firing = assess(snapshot(fresh, "5.0500", { official, alerts: [{ kind: "divergence", direction: "up", startedAt: fresh }] }), CHECKS, now);
    expect(firing).toMatchObject({ state: "WARNING", reasons: ["divergence from PTAX alert firing since 2024-10-23 14:59 -03"] });
  });

  const db = useTestDatabase();
  test("readSnapshot() reads the newest closing PTAX in its one query, with divergenceSeries()'s figure: nearest quote, else the day's daily quote", async () => {
    const closing = (pair: string, day: string, buy: string) => ({ pair, publishedAt: `${day}T13:09:27.123456-03:00`, bulletin: "closing" as const, buy, sell: buy });
    await saveOfficialRates(db.sql, [
      closing("USD-BRL", "2024-10-22", "5.7000"),
      closing("USD-BRL", "2024-10-23", "5.4278"),
      { pair: "USD-BRL", publishedAt: "2024-10-24T10:04:00.5-03:00", bulletin: "opening", buy: "5.5000", sell: "5.5006" },
      closing("EUR-BRL", "2024-10-23", "6.1000"),
    ]);
    await saveQuotes(db.sql, [
      // 16:09:27Z is the closing: 16:00Z is 9 min before, 16:20Z 11 min after; 17:00Z too far.
      sampleQuote({ ts: new Date("2024-10-23T16:00:00Z"), bid: "5.4343", ask: "5.44" }),
      sampleQuote({ ts: new Date("2024-10-23T16:20:00Z"), bid: "5.9999", ask: "6" }),
      sampleQuote({ ts: new Date("2024-10-24T17:00:00Z"), bid: "5.5", ask: "5.51" }),
      // EUR-BRL: only a daily quote, hours from the closing.
      sampleQuote({ pair: "EUR-BRL", ts: new Date("2024-10-23T20:00:00Z"), bid: "6.1610", ask: "6.17", source: SOURCE_DAILY }),
      sampleQuote({ pair: "BTC-BRL", ts: new Date("2024-10-23T20:00:00Z"), bid: "380000", ask: "380100" }),
    ]);
    const snapshots = await readSnapshot(db.sql, null, 5);
    const byPair = new Map(snapshots.map((s) => [s.pair, s.official]));
    expect(byPair.get("USD-BRL")).toEqual({ publishedAt: "2024-10-23T13:09:27.123456-03:00", buy: "5.4278", sell: "5.4278", bid: "5.4343", divergencePct: "0.119754" });
    expect(byPair.get("EUR-BRL")).toMatchObject({ bid: "6.1610", divergencePct: "1.000000" });
    expect(byPair.get("BTC-BRL")).toBeNull();
    for (const pair of ["USD-BRL", "EUR-BRL"]) {
      const [point] = await divergenceSeries(db.sql, pair, "2024-10-23", "2024-10-23");
      expect({ pair, pct: byPair.get(pair)?.divergencePct }).toEqual({ pair, pct: point!.divergencePct });
    }
    const result = await runScript("monitor.ts", ["--pair", "USD-BRL"], { env: { DATABASE_URL: db.url } });
    expect(result.stdout).toContain(" · PTAX 5.4278 (2024-10-23 13:09) Δ +0.12% · ");
  });
});

describe("bun monitor.ts", () => {
  const db = useTestDatabase();
  const env = () => ({ DATABASE_URL: db.url });
  const fresh = () => new Date(Date.now() - 60_000);
  const tempDir = useTempDirs();

  test("--help lists the formats and the plugin exit codes", async () => {
    const result = await runScript("monitor.ts", ["--help"]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("--format F");
    expect(result.stdout).toContain("3 UNKNOWN");
  });

  test("an empty database is UNKNOWN: no data yet, and what to run", async () => {
    const result = await runScript("monitor.ts", [], { env: env() });
    expect(result.code).toBe(3);
    expect(result.stderr.trim()).toBe("no data yet: run `bun main_pipeline.ts` (and `bun main_pipeline.ts --backfill 60` for history)");
  });

  test("fresh data: OK, exit 0, one line per pair with every figure", async () => {
    const now = fresh();
    const days = Array.from({ length: 25 }, (_, i) => sampleQuote({ ts: new Date(now.getTime() - (i + 1) * DAY_MS), bid: "5.0000", ask: "5.0010" }));
    await saveQuotes(db.sql, [...days, sampleQuote({ ts: now, bid: "5.0500", ask: "5.0510" })]);
    const result = await runScript("monitor.ts", ["--pair", "usd-brl"], { env: env() });
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(result.stdout.trim()).toMatch(/^USD-BRL 5\.0500 \/ 5\.0510 · \d{4}-\d\d-\d\d \d\d:\d\d:\d\d -0[23] \(\d+ s ago\) · \+1\.00% d\/d · MA20d 5\.0000 \(\+1\.00%\) · OK$/);
  });

  test("--format json: one object per pair, decimals as stored, and --format nagios", async () => {
    const json = await runScript("monitor.ts", ["--format", "json"], { env: env() });
    expect(json.code).toBe(0);
    const [report] = JSON.parse(json.stdout) as Record<string, unknown>[];
    expect(report).toMatchObject({ pair: "USD-BRL", bid: "5.0500", ask: "5.0510", previousClose: "5.0000", average: 5, state: "OK", exitCode: 0 });
    expect(typeof report?.["ts"]).toBe("string");
    const nagios = await runScript("monitor.ts", ["--format", "nagios", "-w", "0.5", "-c", "5"], { env: env() });
    expect(nagios.code).toBe(1);
    expect(nagios.stdout).toMatch(/^COTACAO WARNING - USD-BRL 5\.0500 \(deviation \+1\.00% beyond -w 0\.5\) \| 'bid'=5\.0500;;;0 'age'=\d+s;3600;7200;0 'deviation'=1\.00%;0\.5;5\n$/);
  });

  test("days too old for a run to fill are WARNING (1), naming the backfill that loads them, until it has run", async () => {
    await db.sql`insert into quote_gaps (pair, from_day, to_day) values ('USD-BRL', '2024-08-02', '2024-09-24')`;
    try {
      const result = await runScript("monitor.ts", ["--pair", "usd-brl"], { env: env() });
      expect(result.code).toBe(1);
      expect(result.stdout.trim()).toEndWith(
        " · WARNING: no quotes from 2024-08-02 to 2024-09-24: load them with bun main_pipeline.ts --pairs USD-BRL --from 2024-08-02 --to 2024-09-24",
      );
    } finally {
      await db.sql`delete from quote_gaps`;
    }
    expect((await runScript("monitor.ts", ["--pair", "usd-brl"], { env: env() })).code).toBe(0);
  });

  test("a firing alert is WARNING (1); a failed last run is CRITICAL (2); with several pairs the worst wins", async () => {
    await db.sql`
      insert into alerts (pair, kind, direction, status, started_at, last_seen_at, fingerprint)
      values ('USD-BRL', 'deviation', 'up', 'firing', now(), now(), 'test-firing')`;
    const warning = await runScript("monitor.ts", [], { env: env() });
    expect(warning.code).toBe(1);
    expect(warning.stdout).toContain("WARNING: up alert firing since");
    const now = fresh();
    await saveQuotes(db.sql, [sampleQuote({ pair: "EUR-BRL", ts: now, bid: "6.10", ask: "6.11" })]);
    await db.sql`insert into pipeline_runs (pairs, status, finished_at, error, failed_step) values ('{EUR-BRL}', 'failed', now(), 'boom', 'fetch')`;
    const both = await runScript("monitor.ts", [], { env: env() });
    expect(both.code).toBe(2);
    const lines = both.stdout.trim().split("\n");
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^EUR-BRL .* · last run failed · CRITICAL: last run \d+ failed at the fetch step$/);
    expect(lines[1]).toMatch(/^USD-BRL .* · WARNING: up alert firing since/);
    // Asked for alone, each pair has its own state.
    expect((await runScript("monitor.ts", ["--pair", "USD-BRL"], { env: env() })).code).toBe(1);
    // A pair with nothing stored is UNKNOWN, and UNKNOWN is the worst.
    const unknown = await runScript("monitor.ts", ["--pair", "USD-BRL", "--pair", "GBP-BRL"], { env: env() });
    expect(unknown.code).toBe(3);
    expect(unknown.stdout).toContain("GBP-BRL · no quotes stored · UNKNOWN");
  });

  test("bad usage is UNKNOWN (3), one line: a malformed pair, a bad range, an unknown flag", async () => {
    for (const args of [["--pair", "dollar"], ["-w", "abc"], ["--format", "xml"], ["--bogus"], ["--timeout", "0s"]]) {
      const result = await runScript("monitor.ts", args, { env: env() });
      expect([args, result.code]).toEqual([args, 3]);
      expect(result.stderr.trim().split("\n")).toHaveLength(1);
      // Nagios reads only stdout: the same line there, as a plugin's UNKNOWN.
      expect([args, result.stdout]).toEqual([args, `COTACAO UNKNOWN - ${result.stderr.trim()}\n`]);
    }
  });

  test("a duration out of range is refused with an example inside the range", async () => {
    for (const [args, example] of [[["--timeout", "90m"], "like 10s,"], [["--max-age", "10s"], "like 2h,"]] as const) {
      const result = await runScript("monitor.ts", [...args], { env: env() });
      expect([args, result.code]).toEqual([args, 3]);
      expect(result.stderr).toContain(example);
    }
  });

  test("pair names stored by another program are printed escaped: no terminal control, one plugin line that parses", async () => {
    const url = await createTestDatabase();
    const sql = connectUrl(url, { max: 1 });
    try {
      for (const pair of ["\x1b[2JX-BRL", "A'|B-C=1"]) {
        await sql`insert into quotes (pair, ts, bid, ask, source, fetched_at) values (${pair}, now(), 5.1, 5.2, 'other program', now())`;
      }
      const text = await runScript("monitor.ts", [], { env: { DATABASE_URL: url } });
      expect(text.stdout).not.toContain("\x1b");
      expect(text.stdout.trim().split("\n").map((line) => line.split(" ")[0]).sort()).toEqual(["A\\x27\\x7cB-C\\x3d1", "\\x1b\\x5b2JX-BRL"].sort());
      const nagios = await runScript("monitor.ts", ["--format", "nagios"], { env: { DATABASE_URL: url } });
      expect(nagios.stdout).not.toContain("\x1b");
      const [status, perfdata, ...rest] = nagios.stdout.trim().split("|");
      expect(rest).toEqual([]);
      expect(status).toStartWith("COTACAO ");
      // Every label is one quoted string, name=value.
      expect(perfdata?.trim()).toMatch(/^('[^'=]+'=[^ ]+ ?)+$/);
      const json = await runScript("monitor.ts", ["--format", "json"], { env: { DATABASE_URL: url } });
      expect((JSON.parse(json.stdout) as { pair: string }[]).map((report) => report.pair).sort()).toEqual(["A'|B-C=1", "\x1b[2JX-BRL"].sort());
    } finally {
      await sql.end({ timeout: 5 });
      await dropTestDatabase(url);
    }
  });

  test("a query slower than --timeout is UNKNOWN within the timeout", async () => {
    const blocker = connectUrl(db.url, { max: 1 });
    try {
      const held = blocker.begin(async (tx) => {
        await tx`lock table quotes in access exclusive mode`;
        await tx`select pg_sleep(4)`;
      });
      await Bun.sleep(200);
      const began = performance.now();
      const result = await runScript("monitor.ts", ["--timeout", "1s"], { env: env() });
      const seconds = (performance.now() - began) / 1000;
      expect(result.code).toBe(3);
      expect(result.stderr).toContain("no answer within 1s");
      expect(seconds).toBeLessThan(3.5);
      await held;
    } finally {
      await blocker.end({ timeout: 5 });
    }
  });

  test("an unreachable database is UNKNOWN within the timeout", async () => {
    const silent = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    try {
      const began = performance.now();
      const result = await runScript("monitor.ts", ["--timeout", "1s", "--format", "nagios"], { env: { DATABASE_URL: `postgres://u:secret@127.0.0.1:${silent.port}/x` } });
      expect(result.code).toBe(3);
      expect(result.stdout).toStartWith("COTACAO UNKNOWN - ");
      expect(result.stdout).not.toContain("secret");
      expect((performance.now() - began) / 1000).toBeLessThan(4);
    } finally {
      silent.stop(true);
    }
  });

  test("a database that is down is UNKNOWN, naming PostgreSQL's host and port and what to try, in every format", async () => {
    const closed = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const port = closed.port;
    closed.stop(true);
    const env = { DATABASE_URL: `postgres://u:secret@127.0.0.1:${port}/x` };
    const text = await runScript("monitor.ts", [], { env });
    const nagios = await runScript("monitor.ts", ["--format", "nagios"], { env });
    expect([text.code, nagios.code]).toEqual([3, 3]);
    expect(text.stderr.trim()).toStartWith(`Cannot check: PostgreSQL at 127.0.0.1:${port} cannot be reached (ECONNREFUSED); check that the server is running`);
    expect(nagios.stdout.trim()).toStartWith(`COTACAO UNKNOWN - Cannot check: PostgreSQL at 127.0.0.1:${port} cannot be reached`);
    for (const output of [text.stderr, nagios.stdout]) {
      expect(output).not.toContain("committed");
      expect(output).not.toContain("secret");
    }
  });

  test("a database whose tables predate a migration the monitor reads (sql/008) is UNKNOWN, saying how to migrate", async () => {
    const url = await createTestDatabase({ migrated: false });
    const dir = await tempDir();
    try {
      await cp(SQL_DIR, dir, { recursive: true });
      // The schema as it was before 008: 008 and every migration after it removed.
      for (const { name, version } of readMigrations()) if (version >= 8) await rm(join(dir, name));
      const sql = connectUrl(url, { max: 1 });
      await migrate(sql, dir);
      await saveQuotes(sql, [sampleQuote({ ts: new Date() })]);
      await sql.end({ timeout: 5 });
      const result = await runScript("monitor.ts", [], { env: { DATABASE_URL: url } });
      expect(result.code).toBe(3);
      expect(result.stderr.trim()).toStartWith("Cannot check: the database's tables are older than this monitor; run `bun database.ts migrate`");
    } finally {
      await dropTestDatabase(url);
    }
  });

  test("a database without cotacao's tables is UNKNOWN: no data yet, and nothing is created", async () => {
    const url = await createTestDatabase({ migrated: false });
    try {
      const result = await runScript("monitor.ts", [], { env: { DATABASE_URL: url } });
      expect(result.code).toBe(3);
      expect(result.stderr).toStartWith("no data yet");
      const sql = connectUrl(url, { max: 1 });
      const [tables] = await sql`select count(*)::int as n from pg_tables where schemaname = 'public'`;
      await sql.end({ timeout: 5 });
      expect(tables?.["n"]).toBe(0);
    } finally {
      await dropTestDatabase(url);
    }
  });

  test("a database migrated by an older copy (no quote_gaps yet) is UNKNOWN, saying how to migrate it", async () => {
    const url = await createTestDatabase();
    try {
      const sql = connectUrl(url, { max: 1 });
      await saveQuotes(sql, [sampleQuote({ ts: fresh() })]);
      await sql`drop table quote_gaps`;
      await sql.end({ timeout: 5 });
      const result = await runScript("monitor.ts", [], { env: { DATABASE_URL: url } });
      expect(result.code).toBe(3);
      expect(result.stderr.trim()).toStartWith("Cannot check: the database's tables are older than this monitor; run `bun database.ts migrate`");
    } finally {
      await dropTestDatabase(url);
    }
  });

  test("a fresh checkout, no data folder: UNKNOWN, and no cluster is created", async () => {
    const dir = await tempDir();
    const dataDir = join(dir, "pg");
    const result = await runScript("monitor.ts", [], { env: { COTACAO_DATA_DIR: dataDir } });
    expect(result.code).toBe(3);
    expect(result.stderr.trim()).toStartWith("no data yet");
    expect(existsSync(dataDir)).toBe(false);
    expect(existsSync(`${dataDir}.init`)).toBe(false);
  });

  test("--watch shows a quote another connection stores within a second, and Ctrl-C exits 0", async () => {
    const child = Bun.spawn([process.execPath, "monitor.ts", "--watch", "30", "--pair", "USD-BRL"], {
      cwd: `${import.meta.dir}/..`,
      env: { PATH: process.env["PATH"] ?? "", DATABASE_URL: db.url },
      stdout: "pipe",
      stderr: "pipe",
    });
    const reader = child.stdout.getReader();
    let seen = "";
    const waitFor = async (text: string, ms: number) => {
      const deadline = performance.now() + ms;
      while (!seen.includes(text)) {
        const left = deadline - performance.now();
        if (left <= 0) return false;
        const chunk = await Promise.race([reader.read(), Bun.sleep(left).then(() => undefined)]);
        if (!chunk || chunk.done) return seen.includes(text);
        seen += new TextDecoder().decode(chunk.value);
      }
      return true;
    };
    try {
      expect(await waitFor("USD-BRL ", 10_000)).toBe(true);
      const stored = performance.now();
      await saveQuotes(db.sql, [sampleQuote({ ts: new Date(), bid: "5.4321", ask: "5.4329" })], { notify: true });
      expect(await waitFor("USD-BRL 5.4321 / 5.4329", 1_000)).toBe(true);
      expect(performance.now() - stored).toBeLessThan(1_000);
      child.kill("SIGINT");
      expect(await child.exited).toBe(0);
    } finally {
      child.kill("SIGKILL");
    }
  });

  test("--watch: with quotes locked, each check is UNKNOWN within --timeout, leaves no backend waiting, and the next check after the lock recovers", async () => {
    await saveQuotes(db.sql, [sampleQuote({ ts: new Date(), bid: "5.1111", ask: "5.1119" })]);
    const { child, next } = watchChild(["2", "--timeout", "1s", "--pair", "USD-BRL"], env());
    const blocker = connectUrl(db.url, { max: 1 });
    let release = () => {};
    try {
      // (Earlier tests left an alert firing: the state is WARNING, what matters is the line.)
      expect(await next(/^USD-BRL 5\.1111 /, 10_000)).toBeDefined();
      let locked = () => {};
      const lockTaken = new Promise<void>((resolve) => (locked = resolve));
      const held = blocker.begin(async (tx) => {
        await tx`lock table quotes in access exclusive mode`;
        locked();
        await new Promise<void>((resolve) => (release = resolve));
      });
      await lockTaken;
      const since = performance.now();
      // The check in progress may still be OK; the first to meet the lock says UNKNOWN within --timeout.
      const unknown = await next(/UNKNOWN/, 6_000);
      expect(unknown?.line).toBe("UNKNOWN - Cannot check: no answer within 1s; check the database (bun database.ts status)");
      // At worst the lock came just after a check began: the next one starts within 2 s, ends within 1 s.
      expect(unknown!.at - since).toBeLessThan(2_000 + 1_000 + 1_000);
      // Another check meets the lock again: UNKNOWN again, not silence.
      expect((await next(/./, 5_000))?.line).toStartWith("UNKNOWN - ");
      // The server ends the statements the checks gave up on (within the time the check took to
      // connect, before the next check 2 s later): nobody stays queued behind the lock.
      const waiting = async () => (await db.sql<{ n: number }[]>`
        select count(*)::int as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'`)[0]?.n;
      const deadline = performance.now() + 1_500;
      while ((await waiting()) !== 0 && performance.now() < deadline) await Bun.sleep(50);
      expect(await waiting()).toBe(0);
      release();
      await held;
      expect(await next(/^USD-BRL 5\.1111 /, 5_000)).toBeDefined();
      child.kill("SIGINT");
      expect(await child.exited).toBe(0);
    } finally {
      release();
      child.kill("SIGKILL");
      await blocker.end({ timeout: 5 });
    }
  }, 30_000);

  test("--watch: a stopped backend is UNKNOWN within --timeout, then a new connection; a restarted embedded server is found in its new socket folder", async () => {
    // A data folder too long for a socket path: each start puts the socket in a new temp folder.
    const dataDir = join(await tempDir(), "x".repeat(80), "pg");
    const { server } = await startEmbeddedServer(dataDir);
    expect(server.socketDir).not.toBe(dataDir);
    const setup = connectUrl(server.url, { max: 1 });
    await migrate(setup);
    await saveQuotes(setup, [sampleQuote({ ts: fresh(), bid: "5.2222", ask: "5.2229" })]);
    await setup.end({ timeout: 5 });
    const { child, next } = watchChild(["1", "--timeout", "1s"], { COTACAO_DATA_DIR: dataDir });
    let stoppedPid: number | undefined;
    try {
      expect((await next(/^USD-BRL 5\.2222/, 10_000))?.line).toEndWith("OK");
      // The backend of the monitor's checks (not its LISTEN one) stops answering.
      const probe = connectUrl(server.url, { max: 1 });
      const [backend] = await probe<{ pid: number }[]>`
        select pid from pg_stat_activity
        where backend_type = 'client backend' and pid <> pg_backend_pid() and query not ilike 'listen%'`;
      await probe.end({ timeout: 5 });
      stoppedPid = backend!.pid;
      process.kill(stoppedPid, "SIGSTOP");
      const since = performance.now();
      const unknown = await next(/UNKNOWN/, 4_000);
      expect(unknown?.line).toStartWith("UNKNOWN - Cannot check: no answer within 1s");
      expect(unknown!.at - since).toBeLessThan(1_000 + 1_000 + 1_000);
      expect((await next(/./, 3_000))?.line).toMatch(/^USD-BRL 5\.2222 .* OK$/);
      process.kill(stoppedPid, "SIGCONT");
      stoppedPid = undefined;

      await stopEmbeddedServer(dataDir);
      const restarted = (await startEmbeddedServer(dataDir)).server;
      expect(restarted.socketDir).not.toBe(server.socketDir);
      const since2 = performance.now();
      const back = await next(/^USD-BRL 5\.2222/, 5_000);
      expect(back?.line).toEndWith("OK");
      expect(back!.at - since2).toBeLessThan(3_000);
      child.kill("SIGINT");
      expect(await child.exited).toBe(0);
    } finally {
      if (stoppedPid !== undefined) process.kill(stoppedPid, "SIGCONT");
      child.kill("SIGKILL");
      await stopEmbeddedServer(dataDir);
    }
  }, 30_000);

  test("bun run build:monitor makes one executable that answers like bun monitor.ts", async () => {
    const dir = await tempDir();
    const outfile = join(dir, "monitor");
    // The script's own command (bun build ... --outfile .build/monitor), into this test's folder.
    const script = packageJson.scripts["build:monitor"].split(" ");
    expect(script.slice(0, 2)).toEqual(["bun", "build"]);
    script[script.indexOf("--outfile") + 1] = outfile;
    const build = Bun.spawn([process.execPath, ...script.slice(1)], {
      cwd: `${import.meta.dir}/..`,
      stdout: "ignore",
      stderr: "pipe",
    });
    expect([await build.exited, await new Response(build.stderr).text()]).toEqual([0, expect.any(String) as unknown as string]);
    const compiled = Bun.spawn([outfile, "--format", "json", "--pair", "EUR-BRL"], { env: { PATH: process.env["PATH"] ?? "", DATABASE_URL: db.url }, stdout: "pipe", stderr: "pipe" });
    const [stdout, code] = await Promise.all([new Response(compiled.stdout).text(), compiled.exited]);
    const viaBun = await runScript("monitor.ts", ["--format", "json", "--pair", "EUR-BRL"], { env: env() });
    expect(code).toBe(viaBun.code);
    const strip = (text: string) => (JSON.parse(text) as Record<string, unknown>[]).map(({ ageSeconds: _a, marketAgeSeconds: _m, ...rest }) => rest);
    expect(strip(stdout)).toEqual(strip(viaBun.stdout));
    // --watch's postgres.js, a chunk loaded on first use, is in the executable too.
    const watching = Bun.spawn([outfile, "--watch", "30", "--format", "json", "--pair", "EUR-BRL"], {
      env: { PATH: process.env["PATH"] ?? "", DATABASE_URL: db.url },
      stdout: "pipe",
      stderr: "pipe",
    });
    try {
      const reader = watching.stdout.getReader();
      const first = new TextDecoder().decode((await reader.read()).value);
      expect(strip(`[${first.trim().split("\n")[0]!.replace(/^\[|\]$/g, "")}]`)).toEqual(strip(viaBun.stdout));
    } finally {
      watching.kill("SIGINT");
      await watching.exited;
    }
    // The version is built in: package.json is not beside the executable.
    const version = Bun.spawnSync([outfile, "--version"], { cwd: dir, env: { PATH: process.env["PATH"] ?? "" } });
    expect([version.exitCode, version.stdout.toString()]).toEqual([0, `monitor.ts ${packageJson.version}\n`]);
  }, 60_000);

  test("an embedded cluster whose server is stopped is started, and stderr says so", async () => {
    const dir = await tempDir();
    const dataDir = join(dir, "pg");
    const { server } = await startEmbeddedServer(dataDir);
    const sql = connectUrl(server.url, { max: 1 });
    await migrate(sql);
    await saveQuotes(sql, [sampleQuote({ ts: fresh() })]);
    await sql.end({ timeout: 5 });
    await stopEmbeddedServer(dataDir);
    const result = await runScript("monitor.ts", [], { env: { COTACAO_DATA_DIR: dataDir } });
    expect(result.stderr).toContain("was stopped; starting it");
    expect(result.stdout).toStartWith("USD-BRL 5.5037 / 5.506");
    expect(result.code).toBe(0);
    expect(await runningEmbeddedServer(dataDir)).not.toBeNull();
  });
});
