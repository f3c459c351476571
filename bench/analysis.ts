/**
 * bun bench/analysis.ts [--years 10]: the alert rule's cost.
 *   1. The pure rule, evaluateSeries(), over 1,000,000 daily points; baseline, same run: a plain
 *      Float64Array loop (a 20-point running mean, no window bookkeeping).
 *   2. A full rescan of one pair holding 10 years of minute quotes on weekdays (~3.7 M rows in
 *      the embedded PostgreSQL); baseline, same run: a bare select of the same daily series.
 *      Then `bun analysis.ts --rescan` as a process, for its wall time and peak memory.
 * Targets: pure rule <= 5 ms per million points; rescan <= 1.5x the bare select; peak memory
 * <= 150 MB.
 */
import { chmod, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { rescan } from "../analysis.ts";
import { SAO_PAULO_TIME_ZONE } from "../lib/calendar.ts";
import { evaluateSeries, loadAnalysisConfig } from "../lib/rule.ts";
import { startEmbeddedServer, stopEmbeddedServer } from "../lib/embedded_server.ts";
import { migrate } from "../lib/migrations.ts";
import { connectUrl } from "../lib/pool.ts";
import { PROJECT_DIR } from "../lib/project.ts";
import { loadDailySeries } from "../lib/views.ts";
import { watchPeakMemory } from "./peak_memory.ts";

const PURE_POINTS = 1_000_000;
const ROUNDS = 7;
const WARMUP_ROUNDS = 10;
const PURE_ROUNDS = 31;
const PAIR = "USD-BRL";
const TARGET_PURE_MS = 5;
const TARGET_RESCAN_RATIO = 1.5;
const TARGET_PEAK_MB = 150;

const { values } = parseArgs({ args: Bun.argv.slice(2), options: { years: { type: "string", default: "10" } } });
const YEARS = Number(values.years);

function median(samples: number[]): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

async function timedMs(fn: () => unknown): Promise<number> {
  const began = performance.now();
  await fn();
  return performance.now() - began;
}

const params = loadAnalysisConfig({}).defaults;
const verdict = (ok: boolean) => (ok ? "met" : "MISSED");

// 1. The pure rule.
const days = new Int32Array(PURE_POINTS);
const closes = new Float64Array(PURE_POINTS);
for (let i = 0; i < PURE_POINTS; i++) {
  days[i] = i;
  closes[i] = 5 + Math.sin(i / 40) * 0.4 + ((i * 7919) % 1000) / 100_000;
}
/** Median time of `fn` after warm-up rounds, so that both sides are measured compiled. */
function medianMs(fn: () => unknown): number {
  for (let round = 0; round < WARMUP_ROUNDS; round++) fn();
  const samples: number[] = [];
  for (let round = 0; round < PURE_ROUNDS; round++) {
    const began = performance.now();
    fn();
    samples.push(performance.now() - began);
  }
  return median(samples);
}

function plainRunningMean(): Float64Array {
  const mean = new Float64Array(PURE_POINTS);
  let sum = 0;
  for (let i = 0; i < PURE_POINTS; i++) {
    sum += closes[i]!;
    if (i >= 20) sum -= closes[i - 20]!;
    mean[i] = sum / 20;
  }
  return mean;
}

const pureMs = medianMs(() => evaluateSeries({ days, closes }, params));
const plainMs = medianMs(plainRunningMean);
// What one evaluation holds: its input and output arrays.
const pureMb = (days.byteLength + closes.byteLength + PURE_POINTS * (8 + 8 + 1)) / 1024 / 1024;
console.log(`pure rule over ${PURE_POINTS.toLocaleString("en-US")} daily points: ${pureMs.toFixed(2)} ms (median of ${PURE_ROUNDS}, after ${WARMUP_ROUNDS} to warm up); target <= ${TARGET_PURE_MS} ms: ${verdict(pureMs <= TARGET_PURE_MS)}`);
console.log(`  baseline, a plain Float64Array running-mean loop: ${plainMs.toFixed(2)} ms; memory: ${pureMb.toFixed(0)} MB of arrays (input and output)`);

// 2. The rescan.
const root = await mkdtemp(join(tmpdir(), "cotacao-bench-"));
await chmod(root, 0o755);
const dataDir = join(root, "pg");
try {
  const { server } = await startEmbeddedServer(dataDir);
  const sql = connectUrl(server.url, { max: 2 });
  await migrate(sql);
  const loadMs = await timedMs(async () => {
    await sql`
      insert into quotes (pair, ts, bid, ask, source, fetched_at)
      select ${PAIR}, ts, bid, bid + 0.0010, 'bench', ts
      from (
        select ts, round((5 + 0.4 * sin(extract(epoch from ts) / 3456000) + 0.3 * sin(extract(epoch from ts) / 604800))::numeric, 4) as bid
        from generate_series(
          date_trunc('day', now() - ${`${YEARS} years`}::interval, ${SAO_PAULO_TIME_ZONE}::text),
          date_trunc('day', now(), ${SAO_PAULO_TIME_ZONE}::text) - interval '1 minute',
          interval '1 minute'
        ) as ts
        where extract(isodow from ts at time zone ${SAO_PAULO_TIME_ZONE}::text) < 6
      ) minutes`;
    await sql`vacuum analyze quotes`;
  });
  const [{ rows } = { rows: 0 }] = await sql<{ rows: number }[]>`select count(*)::int as rows from quotes`;
  console.log(`${rows.toLocaleString("en-US")} minute quotes of ${PAIR} over ${YEARS} years (weekdays), loaded in ${(loadMs / 1000).toFixed(1)} s`);

  // Interleaved, so both see the same caches.
  const selectSamples: number[] = [];
  const rescanSamples: number[] = [];
  let episodes = 0;
  for (let round = 0; round < ROUNDS; round++) {
    selectSamples.push(await timedMs(() => loadDailySeries(sql, PAIR)));
    rescanSamples.push(await timedMs(async () => (episodes = (await rescan(sql, PAIR, params)).length)));
  }
  const selectMs = median(selectSamples);
  const rescanMs = median(rescanSamples);
  const series = await loadDailySeries(sql, PAIR);
  await sql.end();
  console.log(`bare select of the daily series (${series.dates.length.toLocaleString("en-US")} days): ${selectMs.toFixed(1)} ms (median of ${ROUNDS})`);
  console.log(
    `rescan, rescan() in process (select + rule + ${episodes} episodes written): ${rescanMs.toFixed(1)} ms = ${(rescanMs / selectMs).toFixed(2)}x the select; target <= ${TARGET_RESCAN_RATIO}x: ${verdict(rescanMs / selectMs <= TARGET_RESCAN_RATIO)}`,
  );

  const began = performance.now();
  const cli = Bun.spawn([process.execPath, join(PROJECT_DIR, "analysis.ts"), "--rescan", "--pair", PAIR, "--json"], {
    env: { ...process.env, DATABASE_URL: server.url },
    stdout: "pipe",
    stderr: "inherit",
  });
  const memory = watchPeakMemory(cli.pid);
  await new Response(cli.stdout).text();
  if ((await cli.exited) !== 0) throw new Error("bun analysis.ts --rescan failed");
  const cliMs = performance.now() - began;
  const peakMb = memory.stop();
  console.log(`bun analysis.ts --rescan as a process: ${cliMs.toFixed(0)} ms wall (Bun's start included); peak memory ${peakMb.toFixed(0)} MB; target <= ${TARGET_PEAK_MB} MB: ${verdict(peakMb <= TARGET_PEAK_MB)}`);
} finally {
  await stopEmbeddedServer(dataDir).catch(() => {});
  await rm(root, { recursive: true, force: true });
}
