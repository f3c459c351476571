/**
 * bun bench/ingest.ts [--pairs 100] [--days 10000]: 1,000,000 daily quotes (100 pairs x 10,000
 * days by default) into the embedded PostgreSQL, measured in one run on the same table and rows:
 *   (c) COPY ... FROM STDIN straight into quotes (postgres.js .writable()): the practical limit
 *   (a) the store step alone: saveQuotes() on validated quotes, in the backfill's batch size,
 *       then the same batches again (idempotent: all unchanged)
 *   (b) the whole backfill: `bun main_pipeline.ts --from ... --to ...` against a fake AwesomeAPI
 *       in its own process (HTTP + parse + validate + store), with its peak memory
 * Targets: (a) >= 70 % of (c); (b) >= 150,000 rows/s; (b)'s peak memory <= 200 MB.
 */
import { chmod, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { parseArgs } from "node:util";
import { saveQuotes } from "../database.ts";
import { startEmbeddedServer, stopEmbeddedServer } from "../lib/embedded_server.ts";
import { migrate } from "../lib/migrations.ts";
import { connectUrl, type Sql } from "../lib/pool.ts";
import { PROJECT_DIR } from "../lib/project.ts";
import { type StoredQuote as Quote } from "../lib/quote.ts";
import { watchPeakMemory } from "./peak_memory.ts";
import { dailySeries, pointTime, startFakeAwesomeApi, type DailyPoint } from "../test/support/fake_awesomeapi.ts";

const FIRST_DAY = "1999-01-01";
const BATCH_ROWS = 20_000; // main_pipeline.ts's backfill batch
const TARGET_STORE_RATIO = 0.7;
const TARGET_BACKFILL_ROWS_PER_S = 150_000;
const TARGET_PEAK_MB = 200;

const { values } = parseArgs({
  args: Bun.argv.slice(2),
  options: { pairs: { type: "string", default: "100" }, days: { type: "string", default: "10000" }, "serve-fake": { type: "boolean" } },
});
const PAIR_COUNT = Number(values.pairs);
const DAY_COUNT = Number(values.days);
const PAIRS = Array.from({ length: PAIR_COUNT }, (_, i) => `C${String(i).padStart(2, "0")}-BRL`);
const LAST_DAY = dayAfter(FIRST_DAY, DAY_COUNT - 1);

function dayAfter(day: string, days: number): string {
  return new Date(Date.parse(`${day}T00:00:00Z`) + days * 86_400_000).toISOString().slice(0, 10);
}

/** The series every measurement stores: a quote a day per pair, with varied exact decimals. */
function point(pairIndex: number, dayIndex: number): DailyPoint {
  const bid = (1 + pairIndex / 10 + ((dayIndex * 7919) % 10_007) / 10_000).toFixed(4);
  return { date: dayAfter(FIRST_DAY, dayIndex), bid };
}

/** The same rows as validated quotes, pair by pair, in the backfill's batch size. */
function* quoteBatches(): Generator<Quote[]> {
  const fetchedAt = new Date();
  let batch: Quote[] = [];
  for (const [pairIndex, pair] of PAIRS.entries()) {
    for (let day = 0; day < DAY_COUNT; day++) {
      const { date, bid } = point(pairIndex, day);
      const ts = pointTime({ date, bid });
      batch.push({ pair, ts, bid, ask: bid, high: bid, low: bid, varBid: "0", pctChange: "0", source: "awesomeapi:daily", fetchedAt });
      if (batch.length === BATCH_ROWS) {
        yield batch;
        batch = [];
      }
    }
  }
  if (batch.length) yield batch;
}

if (values["serve-fake"]) {
  // The fake AwesomeAPI runs in a process of its own, as the real one would not share our CPU time.
  const series = Object.fromEntries(PAIRS.map((pair, p) => [pair, Array.from({ length: DAY_COUNT }, (_, d) => point(p, d))]));
  const api = startFakeAwesomeApi(dailySeries(series, { msTimestampsBefore: "0000-00-00" }));
  console.log(api.url);
} else {
  await measure();
}

async function firstLine(stream: ReadableStream<Uint8Array>): Promise<string> {
  const reader = stream.getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error("the fake AwesomeAPI exited before printing its URL");
    text += new TextDecoder().decode(value);
  }
  reader.releaseLock();
  return text.split("\n")[0]!.trim();
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const began = performance.now();
  await fn();
  return (performance.now() - began) / 1000;
}

async function reset(sql: Sql): Promise<void> {
  await sql`truncate quotes, quote_revisions, backfill_progress, pipeline_runs`;
  await sql`vacuum analyze quotes`;
}

async function rowCount(sql: Sql): Promise<number> {
  const [row] = await sql<{ n: number }[]>`select count(*)::int as n from quotes`;
  return row?.n ?? 0;
}

async function measure(): Promise<void> {
  const rows = PAIR_COUNT * DAY_COUNT;
  const root = await mkdtemp(join(tmpdir(), "cotacao-bench-"));
  await chmod(root, 0o755);
  const dataDir = join(root, "pg");
  const fake = Bun.spawn([process.execPath, import.meta.path, "--serve-fake", "--pairs", String(PAIR_COUNT), "--days", String(DAY_COUNT)], {
    stdout: "pipe",
    stderr: "inherit",
  });
  try {
    const { server } = await startEmbeddedServer(dataDir);
    const sql = connectUrl(server.url, { max: 2 });
    await migrate(sql);
    console.log(`${rows.toLocaleString("en-US")} quotes: ${PAIR_COUNT} pairs x ${DAY_COUNT} days (${FIRST_DAY} to ${LAST_DAY}), embedded PostgreSQL, durable settings`);

    await reset(sql);
    const copySeconds = await timed(async () => {
      const copy = await sql`copy quotes (pair, ts, bid, ask, high, low, var_bid, pct_change, source, fetched_at) from stdin`.writable();
      const lines = function* () {
        for (const batch of quoteBatches()) {
          yield batch
            .map((q) => `${q.pair}\t${q.ts.toISOString()}\t${q.bid}\t${q.ask}\t${q.high}\t${q.low}\t${q.varBid}\t${q.pctChange}\t${q.source}\t${q.fetchedAt.toISOString()}\n`)
            .join("");
        }
      };
      await pipeline(Readable.from(lines()), copy);
    });
    if ((await rowCount(sql)) !== rows) throw new Error("COPY stored the wrong number of rows");

    await reset(sql);
    let storeSeconds = 0;
    let restoreSeconds = 0;
    for (const batch of quoteBatches()) storeSeconds += await timed(() => saveQuotes(sql, batch));
    if ((await rowCount(sql)) !== rows) throw new Error("saveQuotes() stored the wrong number of rows");
    let unchanged = 0;
    for (const batch of quoteBatches()) {
      restoreSeconds += await timed(async () => (unchanged += (await saveQuotes(sql, batch)).unchanged));
    }
    if (unchanged !== rows) throw new Error(`the second pass found ${unchanged} unchanged rows, expected ${rows}`);

    await reset(sql);
    const apiUrl = await firstLine(fake.stdout);
    const began = performance.now();
    const backfill = Bun.spawn(
      [process.execPath, join(PROJECT_DIR, "main_pipeline.ts"), "--pairs", PAIRS.join(","), "--from", FIRST_DAY, "--to", LAST_DAY, "--json"],
      { env: { ...process.env, DATABASE_URL: server.url, AWESOMEAPI_URL: apiUrl }, stdout: "pipe", stderr: "inherit" },
    );
    const memory = watchPeakMemory(backfill.pid);
    const summary = JSON.parse(await new Response(backfill.stdout).text());
    if ((await backfill.exited) !== 0 || summary.inserted !== rows) throw new Error(`the backfill failed: ${JSON.stringify(summary)}`);
    const backfillSeconds = (performance.now() - began) / 1000;
    const peakMb = memory.stop();
    await sql.end();

    const rate = (seconds: number) => Math.round(rows / seconds);
    const figure = (seconds: number) => `${rate(seconds).toLocaleString("en-US").padStart(9)} rows/s (${seconds.toFixed(2)} s)`;
    const storeRatio = rate(storeSeconds) / rate(copySeconds);
    const verdict = (ok: boolean) => (ok ? "met" : "MISSED");
    console.log(`(c) COPY FROM STDIN into quotes, the limit:    ${figure(copySeconds)}`);
    console.log(`(a) store step, saveQuotes(), new rows:        ${figure(storeSeconds)} = ${(storeRatio * 100).toFixed(0)} % of (c); target >= ${TARGET_STORE_RATIO * 100} %: ${verdict(storeRatio >= TARGET_STORE_RATIO)}`);
    console.log(`    same rows again (idempotent, all unchanged): ${figure(restoreSeconds)}`);
    console.log(`(b) whole backfill, bun main_pipeline.ts:      ${figure(backfillSeconds)}; target >= ${TARGET_BACKFILL_ROWS_PER_S.toLocaleString("en-US")}: ${verdict(rate(backfillSeconds) >= TARGET_BACKFILL_ROWS_PER_S)}`);
    console.log(`    its peak memory (max RSS): ${peakMb.toFixed(0)} MB; target <= ${TARGET_PEAK_MB} MB: ${verdict(peakMb <= TARGET_PEAK_MB)}`);
  } finally {
    fake.kill();
    await stopEmbeddedServer(dataDir).catch(() => {});
    await rm(root, { recursive: true, force: true });
  }
}
