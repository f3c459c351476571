/**
 * bun bench/dashboard.ts [--years 10] [--requests 200] [--load-rows 500000]: the dashboard's
 * server latency on ten years of minute quotes of one pair (≈ 3.7 M rows: the forex market's
 * weekdays), against a throwaway embedded PostgreSQL, with `bun dashboard.ts` in its own process:
 *   - what the rollups (sql/006) cost a bulk load: --load-rows quotes inserted with the
 *     triggers that note the written spans and without them (disabled), same rows, same
 *     statement, then the deferred work the first read does (refreshRollups); minute quotes of
 *     one pair, and daily quotes of 100 pairs (a backfill's shape: one hour and one day per quote);
 *   - GET /api/quotes of the whole range at 1500 points, and of one zoomed day at full
 *     resolution: p50 and p99 over --requests sequential requests (after a warm-up), each next to
 *     the same answer computed by plain SQL on the quotes table (the baseline: what a scan
 *     costs without rollups; the whole-range one a few times only, it takes seconds);
 *   - GET /api/latest under `wrk` (Debian's package, installed with apt-get when absent, if
 *     root) for 10 s on 2 threads and 32 connections: requests/s and p99, next to a `bun -e`
 *     server answering a constant JSON under the same load (the floor of Bun's HTTP stack).
 * Targets (issue 11): whole range p50 <= 50 ms; zoomed day p50 <= 10 ms; /api/latest >= 10,000
 * req/s with p99 <= 20 ms. Traffic stays on 127.0.0.1 and the server's Unix socket.
 */
import { spawnSync } from "node:child_process";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import * as v from "valibot";
import { startEmbeddedServer, stopEmbeddedServer } from "../lib/embedded_server.ts";
import { describeError } from "../lib/errors.ts";
import { migrate } from "../lib/migrations.ts";
import { connectUrl, type Sql } from "../lib/pool.ts";
import { PROJECT_DIR } from "../lib/project.ts";
import { refreshRollups } from "../lib/views.ts";
import { readBenchOptions } from "./options.ts";
import { makeTempDir } from "../test/support/database.ts";

const PAIR = "USD-BRL";
const LOAD_PAIR = "XXX-BRL";
const POINTS = 1500;
const WARM_UP = 20;
const BASELINE_SCANS = 5;
const WRK_SECONDS = 10;
const WRK_THREADS = 2;
const WRK_CONNECTIONS = 32;
const REQUEST_TIMEOUT_MS = 30_000;
// Durability buys nothing in a server deleted after the run.
const THROWAWAY_SETTINGS = { fsync: "off", synchronous_commit: "off", full_page_writes: "off", max_wal_size: "4GB" };
const TARGETS = { wholeP50: 50, dayP50: 10, latestRps: 10_000, latestP99: 20 };

const FlagsSchema = v.object({
  years: v.pipe(v.string(), v.transform(Number), v.integer("--years must be a whole number"), v.minValue(1, "--years must be at least 1"), v.maxValue(30, "--years must be at most 30")),
  requests: v.pipe(v.string(), v.transform(Number), v.integer("--requests must be a whole number"), v.minValue(200, "--requests must be at least 200"), v.maxValue(5_000, "--requests must be at most 5000")),
  "load-rows": v.pipe(v.string(), v.transform(Number), v.integer("--load-rows must be a whole number"), v.minValue(0, "--load-rows must be at least 0"), v.maxValue(5_000_000, "--load-rows must be at most 5000000")),
});

function percentile(samples: readonly number[], p: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil(p * sorted.length) - 1)] ?? Number.NaN;
}

const ms = (value: number) => `${value.toFixed(1)} ms`;
const verdict = (ok: boolean) => (ok ? "PASS" : "MISS");

async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const began = performance.now();
  const value = await fn();
  return { ms: performance.now() - began, value };
}

/** `rows` minute quotes of `pair` on weekdays (UTC), from `start`: varied exact decimals. */
async function insertMinutes(sql: Sql, pair: string, start: string, end: string): Promise<number> {
  const result = await sql`
    insert into quotes (pair, ts, bid, ask, source, fetched_at)
    select ${pair}, ts, bid, bid + 0.0010, 'bench', ts
    from (
      select ts, round((5 + 0.8 * sin(extract(epoch from ts) / 34560000) + 0.3 * sin(extract(epoch from ts) / 604800)
                          + 0.01 * sin(extract(epoch from ts) / 977))::numeric, 4) as bid
      from generate_series(${start}::timestamptz, ${end}::timestamptz - interval '1 minute', interval '1 minute') as ts
      where extract(isodow from ts) < 6
    ) minutes`;
  return result.count;
}

/** `days` daily quotes (17:00 in São Paulo) of each of `pairs` pairs: a backfill's shape, one hour and one day per quote. */
async function insertDays(sql: Sql, pairs: number, days: number): Promise<number> {
  const result = await sql`
    insert into quotes (pair, ts, bid, ask, source, fetched_at)
    select 'D' || lpad(p::text, 3, '0') || '-BRL', timestamptz '1990-01-01 20:00Z' + n * interval '1 day',
           round((1 + p / 10.0 + (n * 7919 % 10007) / 10000.0)::numeric, 4), 1, 'bench', now()
    from generate_series(1, ${pairs}::int) as p, generate_series(0, ${days - 1}::int) as n`;
  return result.count;
}

/** The rollup triggers' cost: the same rows inserted with and without them, minute quotes of one pair and daily quotes of many. */
async function measureLoadCost(sql: Sql, rows: number): Promise<void> {
  if (rows === 0) return;
  // Weekdays only: 7/5 as many minutes make `rows` quotes.
  const end = new Date(Date.UTC(2001, 0, 1) + Math.ceil((rows * 7) / 5) * 60_000).toISOString();
  const shapes = [
    { name: "minute quotes of one pair", insert: () => insertMinutes(sql, LOAD_PAIR, "2001-01-01T00:00:00Z", end) },
    { name: "daily quotes of 100 pairs", insert: () => insertDays(sql, 100, Math.ceil(rows / 100)) },
  ];
  for (const shape of shapes) {
    const run = async (triggers: boolean) => {
      await sql`truncate quotes cascade`;
      if (!triggers) await sql`alter table quotes disable trigger user`;
      try {
        return await timed(shape.insert);
      } finally {
        if (!triggers) await sql`alter table quotes enable trigger user`;
      }
    };
    await run(false); // warm-up: the table's files and the buffers
    const without = await run(false);
    const withTriggers = await run(true);
    const refreshed = await timed(() => refreshRollups(sql));
    await sql`truncate quotes cascade`;
    const rate = (t: { ms: number; value: number }) => `${Math.round(t.value / (t.ms / 1000)).toLocaleString("en")} rows/s`;
    console.log(`
bulk load of ${without.value.toLocaleString("en")} ${shape.name} in one INSERT ... SELECT:`);
    console.log(`  without the rollup triggers: ${(without.ms / 1000).toFixed(2)} s (${rate(without)})`);
    console.log(`  with them (sql/006):          ${(withTriggers.ms / 1000).toFixed(2)} s (${rate(withTriggers)}): ${((withTriggers.ms / without.ms - 1) * 100).toFixed(0)} % more`);
    console.log(`  then the first read's refresh: ${(refreshed.ms / 1000).toFixed(2)} s (${refreshed.value} noted span${refreshed.value === 1 ? "" : "s"}), once, off the write path`);
  }
}

/** Starts `bun dashboard.ts --port 0` on `databaseUrl`; resolves with its base URL once it prints it. */
async function startDashboard(databaseUrl: string): Promise<{ url: string; child: ReturnType<typeof Bun.spawn> }> {
  const child = Bun.spawn([process.execPath, join(PROJECT_DIR, "dashboard.ts"), "--port", "0"], {
    cwd: PROJECT_DIR,
    env: { ...process.env, DATABASE_URL: databaseUrl, HOST: "127.0.0.1", DASHBOARD_TOKEN: "" },
    stdout: "pipe",
    stderr: "inherit",
  });
  const reader = child.stdout.getReader();
  let text = "";
  const deadline = Date.now() + 60_000;
  while (!/http:\/\/[^\s]+\//.test(text)) {
    if (Date.now() > deadline) throw new Error("bun dashboard.ts printed no URL within 60 s");
    const chunk = await reader.read();
    if (chunk.done) throw new Error(`bun dashboard.ts exited: ${text}`);
    text += new TextDecoder().decode(chunk.value);
  }
  reader.releaseLock();
  return { url: /http:\/\/[^\s]+\//.exec(text)![0].replace(/\/$/, ""), child };
}

/** Sequential requests to `url`: each one's wall time on loopback, after a warm-up. */
async function latencies(url: string, count: number): Promise<{ samples: number[]; points: number; bucketSeconds: number }> {
  let last: { points: number; bucketSeconds: number } = { points: 0, bucketSeconds: 0 };
  for (let i = 0; i < WARM_UP; i++) await (await fetch(url)).arrayBuffer();
  const samples: number[] = [];
  for (let i = 0; i < count; i++) {
    const began = performance.now();
    const response = await fetch(url, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
    const body = (await response.json()) as { points: number; bucketSeconds: number };
    samples.push(performance.now() - began);
    if (response.status !== 200) throw new Error(`GET ${url} answered ${response.status}: ${JSON.stringify(body)}`);
    last = body;
  }
  return { samples, ...last };
}

/** wrk's requests/s and latency percentiles (ms). */
function runWrk(url: string): { rps: number; p50: number; p99: number; errors: string } {
  const result = spawnSync("wrk", [`-t${WRK_THREADS}`, `-c${WRK_CONNECTIONS}`, `-d${WRK_SECONDS}s`, "--latency", url], { encoding: "utf8", timeout: (WRK_SECONDS + 30) * 1000 });
  if (result.status !== 0) throw new Error(`wrk failed: ${result.stderr || result.error?.message}`);
  const toMs = (value: string, unit: string) => Number(value) * ({ us: 0.001, ms: 1, s: 1000, m: 60_000 }[unit] ?? Number.NaN);
  const percentileOf = (p: string) => {
    const match = new RegExp(`^\\s+${p}%\\s+([0-9.]+)(us|ms|s|m)\\s*$`, "m").exec(result.stdout);
    return match ? toMs(match[1]!, match[2]!) : Number.NaN;
  };
  const errors = /(Non-2xx or 3xx responses: \d+|Socket errors: .*)/.exec(result.stdout)?.[0] ?? "";
  return { rps: Number(/Requests\/sec:\s+([0-9.]+)/.exec(result.stdout)?.[1]), p50: percentileOf("50"), p99: percentileOf("99"), errors };
}

/** wrk itself, when absent: Debian's package, if we are root. */
function ensureWrk(): boolean {
  if (Bun.which("wrk")) return true;
  if (process.getuid?.() !== 0 || !Bun.which("apt-get")) return false;
  console.error("installing wrk with apt-get (absent)...");
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  spawnSync("apt-get", ["install", "-y", "-qq", "wrk"], { env, stdio: "inherit", timeout: 300_000 });
  if (!Bun.which("wrk")) spawnSync("sh", ["-c", "apt-get update -qq && apt-get install -y -qq wrk"], { env, stdio: "inherit", timeout: 600_000 });
  return Bun.which("wrk") !== null;
}

/** A `bun -e` server answering a constant JSON of /api/latest's size: the floor of Bun's HTTP stack. */
async function startConstantServer(): Promise<{ url: string; child: ReturnType<typeof Bun.spawn> }> {
  const body = JSON.stringify({ pair: PAIR, ts: "2024-08-23T17:39:40.000Z", bid: "5.5037", ask: "5.5060", changePct: -1.41, ageSeconds: 60, status: { state: "live", since: null, message: "live" } });
  const script = `const s = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response(${JSON.stringify(body)}, { headers: { "Content-Type": "application/json" } }) }); console.log("http://127.0.0.1:" + s.port + "/");`;
  const child = Bun.spawn([process.execPath, "-e", script], { stdout: "pipe", stderr: "inherit" });
  const reader = child.stdout.getReader();
  let text = "";
  while (!text.includes("\n")) {
    const chunk = await reader.read();
    if (chunk.done) throw new Error("the constant server exited");
    text += new TextDecoder().decode(chunk.value);
  }
  reader.releaseLock();
  return { url: text.trim().replace(/\/$/, ""), child };
}

const USAGE = `Usage: bun bench/dashboard.ts [--years 10] [--requests 200] [--load-rows 500000]

Latency of the dashboard's /api/quotes (whole range at ${POINTS} points, one day at full resolution)
and throughput of /api/latest under wrk, on --years of minute quotes of ${PAIR}, against a throwaway
embedded PostgreSQL; and what the rollup triggers cost a bulk load of --load-rows quotes (0: skip).`;

async function main(args: string[]): Promise<number> {
  const options = readBenchOptions(args, { years: "10", requests: "200", "load-rows": "500000" }, FlagsSchema, USAGE, "bench/dashboard.ts");
  if (typeof options === "number") return options;
  const dir = await makeTempDir("cotacao-bench-dashboard-");
  const dataDir = join(dir, "pg");
  const children: ReturnType<typeof Bun.spawn>[] = [];
  let sql: Sql | undefined;
  try {
    const { server } = await startEmbeddedServer(dataDir, { settings: THROWAWAY_SETTINGS });
    sql = connectUrl(server.url, { max: 2 });
    await migrate(sql);
    await measureLoadCost(sql, options["load-rows"]);

    const end = new Date(Date.UTC(2025, 0, 1));
    const start = new Date(Date.UTC(end.getUTCFullYear() - options.years, 0, 1));
    const load = await timed(async () => {
      let rows = 0;
      // A year per statement: the triggers' transition table stays a few hundred thousand rows.
      for (let year = start.getUTCFullYear(); year < end.getUTCFullYear(); year++) {
        rows += await insertMinutes(sql!, PAIR, `${year}-01-01T00:00:00Z`, `${year + 1}-01-01T00:00:00Z`);
      }
      await sql!`vacuum analyze`;
      return rows;
    });
    // What the dashboard does when it starts (or the first read would): build the rollups.
    const built = await timed(() => refreshRollups(sql!));
    await sql`vacuum analyze quote_hours, quote_days`;
    const [sizes] = await sql<{ hours: number; days: number }[]>`select (select count(*) from quote_hours)::int as hours, (select count(*) from quote_days)::int as days`;
    console.log(`\nloaded ${load.value.toLocaleString("en")} minute quotes of ${PAIR} (${start.toISOString().slice(0, 10)} to ${end.toISOString().slice(0, 10)}, weekdays) in ${(load.ms / 1000).toFixed(1)} s; rollups built in ${(built.ms / 1000).toFixed(1)} s: ${sizes?.hours.toLocaleString("en")} hours, ${sizes?.days.toLocaleString("en")} days`);

    const dashboard = await startDashboard(server.url);
    children.push(dashboard.child);
    console.log(`dashboard: ${dashboard.url} (bun dashboard.ts, its own process)`);

    // A Wednesday in the last year: 1,440 quotes, under 1,500 points, so the day comes at full resolution.
    const dayFrom = new Date(Date.UTC(end.getUTCFullYear() - 1, 5, 12, 3));
    const dayTo = new Date(dayFrom.getTime() + 86_400_000 - 60_000);
    const wholeUrl = `${dashboard.url}/api/quotes?pair=${PAIR}&points=${POINTS}`;
    const dayUrl = `${dashboard.url}/api/quotes?pair=${PAIR}&from=${dayFrom.toISOString()}&to=${dayTo.toISOString()}&points=${POINTS}`;
    const whole = await latencies(wholeUrl, options.requests);
    const day = await latencies(dayUrl, options.requests);

    // Baselines: the same answers by plain SQL on quotes, over a connection of this process.
    const wholeScan: number[] = [];
    const bucket = Math.ceil((end.getTime() - start.getTime()) / 1000 / (POINTS - 1));
    for (let i = 0; i < BASELINE_SCANS; i++) {
      wholeScan.push((await timed(() => sql!`
        select floor(extract(epoch from ts) / ${bucket}::int) as b, (array_agg(bid order by ts))[1]::float8, min(bid)::float8, max(bid)::float8, (array_agg(bid order by ts desc))[1]::float8
        from quotes where pair = ${PAIR} group by 1 order by 1`)).ms);
    }
    const dayQuery: number[] = [];
    for (let i = 0; i < WARM_UP + options.requests; i++) {
      const t = await timed(() => sql!`select extract(epoch from ts)::float8, bid::float8 from quotes where pair = ${PAIR} and ts >= ${dayFrom} and ts <= ${dayTo} order by ts`);
      if (i >= WARM_UP) dayQuery.push(t.ms);
    }

    console.log(`\nGET /api/quotes, ${options.requests} sequential requests each (client wall time on loopback):`);
    console.log(`  whole range, ${POINTS} points: p50 ${ms(percentile(whole.samples, 0.5))}, p99 ${ms(percentile(whole.samples, 0.99))} (${whole.points} buckets of ${whole.bucketSeconds / 86_400} d)`);
    console.log(`    baseline: the same buckets by SQL over the raw quotes: median ${ms(percentile(wholeScan, 0.5))} over ${BASELINE_SCANS} runs`);
    console.log(`  one day, full resolution:    p50 ${ms(percentile(day.samples, 0.5))}, p99 ${ms(percentile(day.samples, 0.99))} (${day.points} quotes, bucketSeconds ${day.bucketSeconds})`);
    console.log(`    baseline: the day's quotes by SQL alone: p50 ${ms(percentile(dayQuery, 0.5))}, p99 ${ms(percentile(dayQuery, 0.99))}`);

    let latest: ReturnType<typeof runWrk> | undefined;
    let floor: ReturnType<typeof runWrk> | undefined;
    if (!ensureWrk()) console.error("\n*** SKIPPED: /api/latest under load: wrk is not installed (apt-get install wrk) ***\n");
    else {
      const latestUrl = `${dashboard.url}/api/latest?pair=${PAIR}`;
      for (let i = 0; i < WARM_UP; i++) await (await fetch(latestUrl)).arrayBuffer();
      latest = runWrk(latestUrl);
      const constant = await startConstantServer();
      children.push(constant.child);
      floor = runWrk(`${constant.url}/`);
      console.log(`\nGET /api/latest under wrk (${WRK_SECONDS} s, ${WRK_THREADS} threads, ${WRK_CONNECTIONS} connections):`);
      console.log(`  dashboard:        ${Math.round(latest.rps).toLocaleString("en")} req/s, p50 ${ms(latest.p50)}, p99 ${ms(latest.p99)}${latest.errors ? ` (${latest.errors})` : ""}`);
      console.log(`  baseline bun -e constant JSON: ${Math.round(floor.rps).toLocaleString("en")} req/s, p50 ${ms(floor.p50)}, p99 ${ms(floor.p99)}`);
    }

    console.log(`\ntargets (issue 11):`);
    const wholeP50 = percentile(whole.samples, 0.5);
    const dayP50 = percentile(day.samples, 0.5);
    console.log(`  whole range p50 <= ${TARGETS.wholeP50} ms: ${ms(wholeP50)}: ${verdict(wholeP50 <= TARGETS.wholeP50)}`);
    console.log(`  zoomed day p50 <= ${TARGETS.dayP50} ms: ${ms(dayP50)}: ${verdict(dayP50 <= TARGETS.dayP50)}`);
    if (latest) {
      console.log(`  /api/latest >= ${TARGETS.latestRps.toLocaleString("en")} req/s: ${Math.round(latest.rps).toLocaleString("en")}: ${verdict(latest.rps >= TARGETS.latestRps && !latest.errors)}`);
      console.log(`  /api/latest p99 <= ${TARGETS.latestP99} ms: ${ms(latest.p99)}: ${verdict(latest.p99 <= TARGETS.latestP99)}`);
    } else console.log("  /api/latest: n/a (wrk missing)");
    return 0;
  } catch (error) {
    console.error(describeError(error, "run the dashboard benchmark").line);
    return 1;
  } finally {
    for (const child of children) child.kill("SIGTERM");
    await Promise.all(children.map((child) => child.exited));
    await sql?.end({ timeout: 5 });
    await stopEmbeddedServer(dataDir);
    await rm(dir, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  process.exitCode = await main(Bun.argv.slice(2));
}
