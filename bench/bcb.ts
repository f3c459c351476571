/**
 * bun bench/bcb.ts [--currencies 10] [--runs 3]: the PTAX client (lib/bcb.ts) fetching and parsing
 * 30 years of bulletins (1994-07-01..2024-03-22, ptax.csv's closes as test/support/fake_olinda.ts
 * serves them) for each of `--currencies` currencies, one request per year, from a fake Olinda
 * in its own process (as the real one would not share our CPU time). Prints rows/s for
 *   (a) fetch + parse: fetchPtaxHistory() over HTTP (loopback), one request at a time
 *   (b) the same with 4 years fetched ahead (its `concurrency`)
 *   (c) parse alone: parsePtaxPeriod() on the same answers, already in memory
 * then, into an embedded PostgreSQL of its own (durable settings), on the same rows in the same run:
 *   (d) COPY ... FROM STDIN straight into official_rates: the practical limit
 *   (e) the store step as the backfill runs it: saveOfficialRates() on the fetched rows, one
 *       batch per currency with its progress, durable: false, 4 transactions at once (the
 *       backfill's writers); target >= 75 % of (d), as bench/ingest.ts's (a) for AwesomeAPI
 *   (f) the whole official backfill in this process, runPipeline() with --source bcb's options
 *       (fetch from the fake, parse, store, the run recorded), as a share of (d)
 *   (g) the same as a command, `bun main_pipeline.ts --source bcb --from ... --to ...` (process
 *       start, connection and migrations included), once
 * with the load average before and after (the machine is shared).
 */
import { chmod, mkdtemp, rm } from "node:fs/promises";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import * as v from "valibot";
import { fetchPtaxHistory, parsePtaxPeriod, planPtaxYears, ptaxPeriodUrl } from "../lib/bcb.ts";
import { startEmbeddedServer, stopEmbeddedServer } from "../lib/embedded_server.ts";
import { migrate } from "../lib/migrations.ts";
import { saveOfficialRates } from "../database.ts";
import { type OfficialRate, PTAX_CURRENCIES } from "../lib/official.ts";
import { connectUrl, type Sql } from "../lib/pool.ts";
import { PROJECT_DIR } from "../lib/project.ts";
import { loadAnalysisConfig } from "../lib/rule.ts";
import { runPipeline } from "../main_pipeline.ts";
import { loadPtaxSeries } from "../test/support/fake_awesomeapi.ts";
import { periodSeries, ptaxBulletins, startFakeOlinda } from "../test/support/fake_olinda.ts";
import { readBenchOptions } from "./options.ts";

const RANGE = { from: "1994-07-01", to: "2024-03-22" };
/** (e) against (d). */
const TARGET_BACKFILL_RATIO = 0.75;
/** Years fetched ahead in (b). */
const AHEAD = 4;
const USAGE = `Usage: bun bench/bcb.ts [--currencies 1-10] [--runs N]

Fetches and parses 30 years of PTAX bulletins per currency from a local fake Olinda; prints rows/s.`;

const Options = v.object({
  currencies: v.pipe(v.string(), v.regex(/^\d+$/, "--currencies must be 1 to 10"), v.transform(Number), v.integer(), v.minValue(1, "--currencies must be 1 to 10"), v.maxValue(10, "--currencies must be 1 to 10")),
  runs: v.pipe(v.string(), v.regex(/^\d+$/, "--runs must be 1 to 20"), v.transform(Number), v.integer(), v.minValue(1, "--runs must be 1 to 20"), v.maxValue(20, "--runs must be 1 to 20")),
  "serve-fake": v.optional(v.string(), ""),
});

async function firstLine(stream: ReadableStream<Uint8Array>): Promise<string> {
  const reader = stream.getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { done, value } = await reader.read();
    if (done) break;
    text += new TextDecoder().decode(value);
  }
  reader.releaseLock();
  return text.split("\n")[0] ?? "";
}

const rate = (rows: number, ms: number) => `${Math.round(rows / (ms / 1000)).toLocaleString("en-US")} rows/s`;

async function measure(currencies: readonly string[], runs: number): Promise<void> {
  const fake = Bun.spawn([process.execPath, import.meta.path, "--serve-fake", "yes", "--currencies", String(currencies.length), "--runs", "1"], { stdout: "pipe", stderr: "inherit" });
  try {
    const baseUrl = await firstLine(fake.stdout);
    if (!baseUrl.startsWith("http://127.0.0.1:")) throw new Error(`the fake Olinda did not start (said ${JSON.stringify(baseUrl)})`);
    const loadBefore = loadavg();
    const fetchTimes: number[] = [];
    const aheadTimes: number[] = [];
    let rows = 0;
    for (let run = 0; run < runs; run++) {
      for (const [concurrency, times] of [[1, fetchTimes], [AHEAD, aheadTimes]] as const) {
        const started = performance.now();
        rows = 0;
        for (const currency of currencies) rows += (await fetchPtaxHistory(currency, RANGE, { baseUrl, concurrency })).length;
        times.push(performance.now() - started);
      }
    }
    // The same answers, in memory: what parsing alone costs.
    const bodies: { currency: string; text: string }[] = [];
    for (const currency of currencies) {
      for (const year of planPtaxYears(RANGE)) bodies.push({ currency, text: await (await fetch(ptaxPeriodUrl(baseUrl, currency, year))).text() });
    }
    const parseTimes: number[] = [];
    for (let run = 0; run < runs; run++) {
      const started = performance.now();
      let parsed = 0;
      for (const { currency, text } of bodies) parsed += parsePtaxPeriod(text, currency).length;
      parseTimes.push(performance.now() - started);
      if (parsed !== rows) throw new Error(`parsing alone gave ${parsed} rows, fetching ${rows}`);
    }
    const best = (times: number[]) => Math.min(...times);
    const bytes = bodies.reduce((sum, body) => sum + body.text.length, 0);
    console.log(`bench/bcb.ts: ${currencies.length} currencies x ${RANGE.from}..${RANGE.to} = ${rows.toLocaleString("en-US")} bulletins, ${planPtaxYears(RANGE).length} requests per currency, ${(bytes / 1e6).toFixed(1)} MB of answers; best of ${runs} runs`);
    console.log(`  (a) fetch + parse over loopback, 1 request at a time: ${best(fetchTimes).toFixed(0)} ms, ${rate(rows, best(fetchTimes))}`);
    console.log(`  (b) the same, ${AHEAD} years fetched ahead:            ${best(aheadTimes).toFixed(0)} ms, ${rate(rows, best(aheadTimes))}`);
    console.log(`  (c) parse alone:                                     ${best(parseTimes).toFixed(0)} ms, ${rate(rows, best(parseTimes))}`);
    console.log(`  load average ${loadBefore.map((n) => n.toFixed(2)).join(" ")} before, ${loadavg().map((n) => n.toFixed(2)).join(" ")} after, on ${availableParallelism()} cores`);
    await measureStore(currencies, runs, baseUrl);
  } finally {
    fake.kill();
    await fake.exited;
  }
}

/** The rows as COPY's text lines (what database.ts's COPY path sends; these values need no escaping). */
function* copyLines(rates: readonly OfficialRate[]): Generator<string> {
  let buffer = "";
  for (const [n, rate] of rates.entries()) {
    buffer += `${rate.pair}\t${rate.publishedAt}\t${rate.bulletin}\t${rate.buy}\t${rate.sell}\n`;
    if (n % 1_000 === 999) {
      yield buffer;
      buffer = "";
    }
  }
  if (buffer) yield buffer;
}

async function officialCount(sql: Sql): Promise<number> {
  const [row] = await sql<{ n: number }[]>`select count(*)::int as n from official_rates`;
  return row?.n ?? 0;
}

async function emptyTables(sql: Sql): Promise<void> {
  await sql`truncate official_rates, official_rate_revisions, official_backfill_progress, pipeline_runs cascade`;
  await sql`vacuum analyze official_rates`;
}

/** The store step as the backfill's writers run it: a batch per pair, with its progress, `writers` transactions at once. */
async function storeAsTheBackfill(sql: Sql, batches: readonly OfficialRate[][], writers: number): Promise<number> {
  let inserted = 0;
  const queue = [...batches];
  const writer = async () => {
    for (let batch = queue.shift(); batch; batch = queue.shift()) {
      const progress = { pair: batch[0]!.pair, from: RANGE.from, to: RANGE.to, doneThrough: RANGE.to };
      const counts = await saveOfficialRates(sql, batch, { progress, durable: false });
      inserted += counts.inserted;
    }
  };
  await Promise.all(Array.from({ length: writers }, writer));
  return inserted;
}

/** (d) to (g): the same rows into official_rates by COPY, by the store step, by the backfill in this process, and by the command. */
async function measureStore(currencies: readonly string[], runs: number, baseUrl: string): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), "cotacao-bench-bcb-"));
  await chmod(root, 0o755);
  const dataDir = join(root, "pg");
  try {
    const { server } = await startEmbeddedServer(dataDir);
    // The backfill's pool: the lock's session, the run's queries and 4 writers (as main_pipeline.ts connects).
    const sql = connectUrl(server.url, { max: 6 });
    try {
      await migrate(sql);
      const batches: OfficialRate[][] = [];
      for (const currency of currencies) batches.push(await fetchPtaxHistory(currency, RANGE, { baseUrl, concurrency: AHEAD }));
      const rates = batches.flat();
      const pairs = currencies.map((currency) => `${currency}-BRL`);
      const loadBefore = loadavg();
      const copyTimes: number[] = [];
      const storeTimes: number[] = [];
      const backfillTimes: number[] = [];
      for (let run = 0; run < runs; run++) {
        await emptyTables(sql);
        let began = performance.now();
        const copy = await sql`copy official_rates (pair, published_at, bulletin, buy, sell) from stdin`.writable();
        await pipeline(Readable.from(copyLines(rates)), copy);
        copyTimes.push(performance.now() - began);
        if ((await officialCount(sql)) !== rates.length) throw new Error("COPY stored the wrong number of rows");

        await emptyTables(sql);
        began = performance.now();
        const stored = await storeAsTheBackfill(sql, batches, 4);
        storeTimes.push(performance.now() - began);
        if (stored !== rates.length) throw new Error(`the store step inserted ${stored} rows, expected ${rates.length}`);

        await emptyTables(sql);
        began = performance.now();
        const summary = await runPipeline(sql, {
          pairs,
          source: "bcb",
          history: RANGE,
          official: { baseUrl },
          analysis: loadAnalysisConfig({}),
          now: () => new Date("2024-03-25T12:00:00Z"),
        });
        backfillTimes.push(performance.now() - began);
        if (summary.status !== "succeeded" || summary.official?.inserted !== rates.length) throw new Error(`the backfill failed: ${JSON.stringify(summary)}`);
      }

      // (g): the command, once, on the same empty table.
      await emptyTables(sql);
      const began = performance.now();
      const command = Bun.spawn(
        [process.execPath, join(PROJECT_DIR, "main_pipeline.ts"), "--source", "bcb", "--pairs", pairs.join(","), "--from", RANGE.from, "--to", RANGE.to, "--json"],
        { env: { ...process.env, DATABASE_URL: server.url, BCB_URL: baseUrl }, stdout: "pipe", stderr: "inherit" },
      );
      const summary = JSON.parse(await new Response(command.stdout).text());
      if ((await command.exited) !== 0 || summary.official?.inserted !== rates.length) throw new Error(`bun main_pipeline.ts --source bcb failed: ${JSON.stringify(summary)}`);
      const commandMs = performance.now() - began;

      const best = (times: number[]) => Math.min(...times);
      const share = (times: number[]) => `${((best(copyTimes) / best(times)) * 100).toFixed(0)} % of (d)`;
      const storeRatio = best(copyTimes) / best(storeTimes);
      console.log(`into official_rates (embedded PostgreSQL, durable settings), ${rates.length.toLocaleString("en-US")} rows; best of ${runs} runs`);
      console.log(`  (d) COPY FROM STDIN, the limit:                        ${best(copyTimes).toFixed(0)} ms, ${rate(rates.length, best(copyTimes))}`);
      console.log(
        `  (e) store step, saveOfficialRates() as the backfill:    ${best(storeTimes).toFixed(0)} ms, ${rate(rates.length, best(storeTimes))} = ${share(storeTimes)}; ` +
          `target >= ${TARGET_BACKFILL_RATIO * 100} %: ${storeRatio >= TARGET_BACKFILL_RATIO ? "met" : "MISSED"}`,
      );
      console.log(`  (f) whole backfill in process (fetch + parse + store): ${best(backfillTimes).toFixed(0)} ms, ${rate(rates.length, best(backfillTimes))} = ${share(backfillTimes)}`);
      console.log(`  (g) bun main_pipeline.ts --source bcb, the command:    ${commandMs.toFixed(0)} ms, ${rate(rates.length, commandMs)} (process start and migrations included)`);
      console.log(`  load average ${loadBefore.map((n) => n.toFixed(2)).join(" ")} before, ${loadavg().map((n) => n.toFixed(2)).join(" ")} after, on ${availableParallelism()} cores`);
    } finally {
      await sql.end();
    }
  } finally {
    await stopEmbeddedServer(dataDir).catch(() => {});
    await rm(root, { recursive: true, force: true });
  }
}

const options = readBenchOptions(Bun.argv.slice(2), { currencies: "10", runs: "3", "serve-fake": "" }, Options, USAGE, "bench/bcb.ts");
if (typeof options === "number") {
  process.exitCode = options;
} else {
  const currencies = PTAX_CURRENCIES.slice(0, options.currencies);
  if (options["serve-fake"]) {
    // Every currency gets ptax.csv's series: 30 years of one close a business day.
    const bulletins = ptaxBulletins(loadPtaxSeries());
    const olinda = startFakeOlinda(periodSeries(Object.fromEntries(currencies.map((currency) => [currency, bulletins]))));
    console.log(olinda.url);
  } else {
    await measure(currencies, options.runs);
  }
}
