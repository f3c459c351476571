/**
 * bun bench/monitor.ts [--rows 1000000] [--runs 30]: how long `bun monitor.ts --pair USD-BRL`
 * takes as a whole process, against what a user could run instead.
 *
 * A throwaway embedded PostgreSQL holds `--rows` minute quotes of USD-BRL plus 20 other pairs
 * (3,000 quotes each). Each contender is run `--runs` times, interleaved (a, b, c, ..., a, b,
 * c, ...) after one warm-up round, so every contender sees the same warm server and caches:
 *   - `bun monitor.ts --pair USD-BRL` (DATABASE_URL = the server's socket URL);
 *   - the same compiled here with `bun build --compile --bytecode`;
 *   - the baseline: a Go pgx program doing what the original's monitor.go did (one query for the
 *     newest quote, one line out), built here from Debian's golang-go and
 *     golang-github-jackc-pgx-v4-dev (installed with apt-get when absent, if run as root);
 *   - the floor: the psql binary itself, `/usr/lib/postgresql/15/bin/psql -X -Atc`, and the
 *     same binary's `--version` (its start and exit alone, so that the rest is the server's);
 *   - where Bun's time goes: `bun -e 0`, `bun -e 'import "postgres"'`, the same importing
 *     monitor.ts (its modules, without running it), bench/monitor/bare.ts (import postgres.js, one
 *     query) run as a script and compiled, and an empty program compiled: the floor under any
 *     compiled Bun program.
 * A contender that cannot be built is skipped, loudly; the others still run. An exit code 0..2
 * counts as a run (the monitor's OK, WARNING, CRITICAL), anything else as a failed run.
 * Targets (issue 10): compiled <= 1.0x Go; `bun monitor.ts` <= 3x Go; the query under 1 ms
 * (EXPLAIN (ANALYZE, BUFFERS) of the original's query and of the monitor's own, in a new backend and warm,
 * printed at the end). Traffic goes only to the server's Unix socket.
 */
import { existsSync } from "node:fs";
import { chmod, mkdtemp, rm, stat } from "node:fs/promises";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import * as v from "valibot";
import { loadAnalysisConfig } from "../analysis.ts";
import { PROJECT_DIR, connectUrl, migrate, readSnapshot, startEmbeddedServer, stopEmbeddedServer, type EmbeddedServer } from "../database.ts";
import { readBenchOptions } from "./options.ts";

const PAIR = "USD-BRL";
const OTHER_PAIRS = [
  "EUR-BRL", "GBP-BRL", "JPY-BRL", "ARS-BRL", "CAD-BRL", "AUD-BRL", "CHF-BRL", "CNY-BRL", "BTC-BRL", "ETH-BRL",
  "EUR-USD", "GBP-USD", "USD-JPY", "USD-CAD", "USD-CHF", "USD-CNY", "USD-MXN", "USD-CLP", "USD-ARS", "MXN-BRL",
];
const OTHER_PAIR_QUOTES = 3_000;
const DEFAULT_ROWS = 1_000_000;
const DEFAULT_RUNS = 30;
/** One run that takes longer than this is killed and counted as failed. */
const RUN_TIMEOUT_MS = 15_000;
/** The measuring loop stops after this long even if it has not reached --runs (and says so). */
const MEASURE_BUDGET_MS = 6 * 60_000;
const BUILD_TIMEOUT_MS = 3 * 60_000;
const APT_TIMEOUT_MS = 8 * 60_000;
// --format=esm: without it --bytecode builds CommonJS, where a top-level await would not parse.
const COMPILE_FLAGS = ["build", "--compile", "--bytecode", "--format=esm"];
const PSQL = "/usr/lib/postgresql/15/bin/psql";
const GO_PACKAGES = ["golang-go", "golang-github-jackc-pgx-v4-dev"];
const GOPATH = "/usr/share/gocode";
const PGX_SOURCE = join(GOPATH, "src/github.com/jackc/pgx/v4");
const BASELINE = "Go pgx (the original)";
const IMPORT_ONLY = "bun, import postgres.js";
const IMPORT_MONITOR = "bun, import monitor.ts";
const COMPILED_EMPTY = "compiled empty program";
const PSQL_FLOOR = "psql binary (floor)";
const PSQL_ALONE = "psql --version";
const PSQL_MONITOR_QUERY = "psql, the monitor's query";
const TARGETS = [
  { contender: "compiled monitor", maxRatio: 1.0 },
  { contender: "bun monitor.ts", maxRatio: 3.0 },
] as const;
const TARGET_QUERY_MS = 1;
// The newest quote of a pair, as the original monitor.go asked it; psql gets it with the pair inlined.
const NEWEST_QUOTE_SQL = "select bid, ask, ts from quotes where pair=$1 order by ts desc limit 1";

const FlagsSchema = v.object({
  rows: v.pipe(v.string(), v.transform(Number), v.integer("--rows must be a whole number"), v.minValue(1_000, "--rows must be at least 1000"), v.maxValue(50_000_000, "--rows must be at most 50000000")),
  runs: v.pipe(v.string(), v.transform(Number), v.integer("--runs must be a whole number"), v.minValue(30, "--runs must be at least 30"), v.maxValue(1_000, "--runs must be at most 1000")),
});

interface Contender {
  name: string;
  cmd: string[];
  samples: number[];
  failures: number;
  /** The first line the warm-up run printed, to show that every contender answered the same question. */
  firstLine?: string;
}

function percentile(samples: readonly number[], p: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil(p * sorted.length) - 1)] ?? Number.NaN;
}

/** Runs `cmd` to completion; returns its wall time, exit code (null if killed) and output. */
function runOnce(cmd: string[], env: Record<string, string | undefined>, timeout = RUN_TIMEOUT_MS) {
  const began = performance.now();
  const result = Bun.spawnSync({ cmd, env, cwd: PROJECT_DIR, stdout: "pipe", stderr: "pipe", timeout });
  return { ms: performance.now() - began, exitCode: result.exitCode, stdout: result.stdout.toString(), stderr: result.stderr.toString() };
}

/** Says loudly on stderr why a contender is left out. */
function skip(name: string, why: string): void {
  console.error(`\n*** SKIPPED: ${name}: ${why} ***\n`);
}

/** The Go toolchain and pgx v4 from Debian, installed with apt-get if absent (root only). True when both are there. */
function ensureGo(): boolean {
  const present = () => Bun.which("go") !== null && existsSync(PGX_SOURCE);
  if (present()) return true;
  if (process.getuid?.() !== 0 || !Bun.which("apt-get")) return false;
  console.error(`installing ${GO_PACKAGES.join(" ")} with apt-get (absent)...`);
  const aptEnv = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  const install = () => runOnce(["apt-get", "install", "-y", "-qq", ...GO_PACKAGES], aptEnv, APT_TIMEOUT_MS);
  if (install().exitCode !== 0) {
    runOnce(["apt-get", "update", "-qq"], aptEnv, APT_TIMEOUT_MS);
    const retried = install();
    if (retried.exitCode !== 0) console.error(retried.stderr.trim().split("\n").slice(-3).join("\n"));
  }
  return present();
}

/** Builds `what` with `cmd`, printing its time and the binary's size; false (with the reason on stderr) if it failed. */
async function build(what: string, cmd: string[], outfile: string, env: Record<string, string | undefined>): Promise<boolean> {
  const { ms, exitCode, stderr } = runOnce(cmd, env, BUILD_TIMEOUT_MS);
  if (exitCode !== 0 || !existsSync(outfile)) {
    skip(what, `the build failed (exit ${exitCode}): ${stderr.trim().split("\n").slice(-5).join(" | ")}`);
    return false;
  }
  console.log(`built ${what} in ${(ms / 1000).toFixed(1)} s: ${((await stat(outfile)).size / 1024 / 1024).toFixed(1)} MB`);
  return true;
}

/** Fills the quotes table: `rows` minute quotes of PAIR ending now, and OTHER_PAIR_QUOTES of each other pair. */
async function loadQuotes(sql: ReturnType<typeof connectUrl>, rows: number): Promise<void> {
  await sql`
    insert into quotes (pair, ts, bid, ask, source, fetched_at)
    select ${PAIR}, ts, bid, bid + 0.0010, 'bench', ts
    from (
      select ts, round((5 + 0.4 * sin(extract(epoch from ts) / 3456000) + 0.3 * sin(extract(epoch from ts) / 604800))::numeric, 4) as bid
      from generate_series(date_trunc('minute', now()) - (${rows - 1} * interval '1 minute'), date_trunc('minute', now()), interval '1 minute') as ts
    ) minutes`;
  await sql`
    insert into quotes (pair, ts, bid, ask, source, fetched_at)
    select pair, ts, round((1 + n % 97 + 0.01 * sin(extract(epoch from ts) / 86400))::numeric, 4), round((1.001 + n % 97)::numeric, 4), 'bench', ts
    from unnest(${sql.array(OTHER_PAIRS)}::text[]) with ordinality as pairs(pair, n),
         generate_series(date_trunc('minute', now()) - (${OTHER_PAIR_QUOTES - 1} * interval '1 minute'), date_trunc('minute', now()), interval '1 minute') as ts`;
  await sql`vacuum analyze quotes`;
}

const USAGE = `Usage: bun bench/monitor.ts [--rows ${DEFAULT_ROWS}] [--runs ${DEFAULT_RUNS}]

Whole-process wall time of bun monitor.ts, the compiled monitor, a Go pgx program and psql,
interleaved, against a throwaway embedded PostgreSQL holding --rows quotes of ${PAIR}.`;

/** The options, or undefined when --help was asked for (the usage is printed). */
async function main(args: string[]): Promise<number> {
  const options = readBenchOptions(args, { rows: String(DEFAULT_ROWS), runs: String(DEFAULT_RUNS) }, FlagsSchema, USAGE, "bench/monitor.ts");
  if (typeof options === "number") return options;
  const root = await mkdtemp(join(tmpdir(), "cotacao-bench-"));
  await chmod(root, 0o755);
  const dataDir = join(root, "pg");
  try {
    const { server } = await startEmbeddedServer(dataDir);
    const loaded = await prepareDatabase(server, options.rows);
    const contenders = await buildContenders(root, server);
    const env = childEnv(server);
    const measured = measure(contenders, env, options.runs);
    report(measured, options.runs);
    console.log(`\n${loaded}`);
    return 0;
  } finally {
    await stopEmbeddedServer(dataDir).catch(() => {});
    await rm(root, { recursive: true, force: true });
  }
}

/** Migrates and loads the throwaway database; returns the EXPLAIN section to print at the end. */
async function prepareDatabase(server: EmbeddedServer, rows: number): Promise<string> {
  const sql = connectUrl(server.url, { max: 1 });
  try {
    await migrate(sql);
    const began = performance.now();
    await loadQuotes(sql, rows);
    const [counts] = await sql<{ pair: number; total: number }[]>`
      select count(*) filter (where pair = ${PAIR})::int as pair, count(*)::int as total from quotes`;
    console.log(
      `${(counts?.pair ?? 0).toLocaleString("en-US")} minute quotes of ${PAIR} + ${OTHER_PAIRS.length} pairs x ${OTHER_PAIR_QUOTES.toLocaleString("en-US")} ` +
        `(${(counts?.total ?? 0).toLocaleString("en-US")} rows), loaded and vacuumed in ${((performance.now() - began) / 1000).toFixed(1)} s`,
    );
    // The first EXPLAIN reads the pages into the cache; the second shows the warm query the original ran.
    const explain = () => sql<{ "QUERY PLAN": string }[]>`explain (analyze, buffers) select bid, ask, ts from quotes where pair = ${PAIR} order by ts desc limit 1`;
    await explain();
    const plan = (await explain()).map((row) => `  ${row["QUERY PLAN"]}`);
    const original = timesOf(plan);
    const onePair = await explainSnapshot(server, [PAIR]);
    const everyPair = await explainSnapshot(server, null);
    const at = `at ${rows.toLocaleString("en-US")} rows of ${PAIR}`;
    const verdict = (ms: number) => `${ms < TARGET_QUERY_MS ? "PASS" : "MISS"} (target: execution under ${TARGET_QUERY_MS} ms)`;
    return [
      `the original's query, EXPLAIN (ANALYZE, BUFFERS) ${NEWEST_QUOTE_SQL.replace("$1", `'${PAIR}'`)}  -- ${at}, warm:`,
      ...plan,
      `  execution ${original.execution} ms: ${verdict(original.execution)}`,
      `\nthe monitor's one query (readSnapshot, every figure it prints) for --pair ${PAIR}, ${at}, warm:`,
      ...onePair.plan.map((line) => `  ${line}`),
      `  in a new backend (what every run meets): planning ${onePair.cold.planning} + execution ${onePair.cold.execution} ms`,
      `  warm (median of ${EXPLAIN_REPEATS} repeats):               planning ${onePair.warm.planning} + execution ${onePair.warm.execution} ms: ${verdict(onePair.warm.execution)}`,
      `the same for all ${OTHER_PAIRS.length + 1} pairs (bun monitor.ts with no --pair): new backend ${everyPair.cold.planning} + ${everyPair.cold.execution} ms, warm ${everyPair.warm.planning} + ${everyPair.warm.execution} ms`,
    ].join("\n");
  } finally {
    await sql.end({ timeout: 5 });
  }
}

const EXPLAIN_REPEATS = 5;

/** Planning and execution times (ms) from an EXPLAIN ANALYZE's lines. */
function timesOf(plan: readonly string[]): { planning: number; execution: number } {
  const text = plan.join("\n");
  const ms = (label: string) => Number(new RegExp(`${label} Time: ([\\d.]+) ms`).exec(text)?.[1] ?? Number.NaN);
  return { planning: ms("Planning"), execution: ms("Execution") };
}

/**
 * EXPLAIN ANALYZE of the very query readSnapshot sends (captured through postgres.js's debug
 * hook, so the benchmark cannot drift from the code), once in a new backend, then repeated.
 */
/** How to reach the throwaway server with postgres.js directly, without type fetching (as the monitor connects). */
function directOptions(server: EmbeddedServer) {
  const url = new URL(server.url);
  return {
    host: server.socketDir,
    port: server.port,
    user: decodeURIComponent(url.username),
    database: decodeURIComponent(url.pathname.slice(1)),
    max: 1,
    onnotice: () => {},
    fetch_types: false,
  };
}

/** The very query readSnapshot sends for `pairs`, captured through postgres.js's debug hook, so the benchmark cannot drift from the code. */
async function snapshotQuery(server: EmbeddedServer, pairs: string[] | null): Promise<{ text: string; parameters: unknown[] }> {
  let captured: { text: string; parameters: unknown[] } | undefined;
  const capture = postgres({
    ...directOptions(server),
    debug: (_connection: number, text: string, parameters: unknown[]) => {
      captured ??= { text, parameters };
    },
  });
  try {
    await readSnapshot(capture, pairs, loadAnalysisConfig({}).defaults.windowDays);
  } finally {
    await capture.end({ timeout: 5 });
  }
  if (!captured) throw new Error("readSnapshot sent no query");
  return captured;
}

/** The same query with its parameters written in as SQL literals, for psql -c. */
function inlined({ text, parameters }: { text: string; parameters: unknown[] }): string {
  const literal = (value: unknown) => (value === null ? "null" : typeof value === "number" ? String(value) : `'${String(value).replaceAll("'", "''")}'`);
  return text.replace(/\$(\d+)/g, (_, n: string) => literal(parameters[Number(n) - 1]));
}

/** EXPLAIN ANALYZE of readSnapshot's query, once in a new backend, then repeated. */
async function explainSnapshot(server: EmbeddedServer, pairs: string[] | null) {
  const { text, parameters } = await snapshotQuery(server, pairs);
  const options = directOptions(server);
  const fresh = postgres(options);
  try {
    const run = async () => (await fresh.unsafe<{ "QUERY PLAN": string }[]>(`explain (analyze, buffers) ${text}`, parameters as postgres.ParameterOrJSON<never>[])).map((row) => row["QUERY PLAN"]);
    const cold = timesOf(await run());
    const repeats: { planning: number; execution: number }[] = [];
    let plan: string[] = [];
    for (let i = 0; i < EXPLAIN_REPEATS; i++) {
      plan = await run();
      repeats.push(timesOf(plan));
    }
    const median = (pick: (t: { planning: number; execution: number }) => number) => percentile(repeats.map(pick), 0.5);
    return { cold, warm: { planning: median((t) => t.planning), execution: median((t) => t.execution) }, plan };
  } finally {
    await fresh.end({ timeout: 5 });
  }
}

/** The environment every contender runs with: the server's socket URL, and the same as PG* variables for psql and postgres.js. */
function childEnv(server: EmbeddedServer): Record<string, string | undefined> {
  const url = new URL(server.url);
  return {
    ...process.env,
    DATABASE_URL: server.url,
    PGHOST: server.socketDir,
    PGPORT: String(server.port),
    PGUSER: decodeURIComponent(url.username),
    PGDATABASE: decodeURIComponent(url.pathname.slice(1)),
  };
}

/** Builds what needs building; returns the contenders that can run, in the order they are run each round. */
async function buildContenders(root: string, server: EmbeddedServer): Promise<Contender[]> {
  const bun = process.execPath;
  const contenders: Contender[] = [];
  const add = (name: string, cmd: string[]) => contenders.push({ name, cmd, samples: [], failures: 0 });

  add("bun monitor.ts", [bun, join(PROJECT_DIR, "monitor.ts"), "--pair", PAIR]);
  const compiled = join(root, "monitor");
  if (await build("compiled monitor", [bun, ...COMPILE_FLAGS, join(PROJECT_DIR, "monitor.ts"), "--outfile", compiled], compiled, process.env)) {
    add("compiled monitor", [compiled, "--pair", PAIR]);
  }

  if (!ensureGo()) {
    skip(BASELINE, `no Go toolchain or no pgx v4 source in ${GOPATH} (apt-get install ${GO_PACKAGES.join(" ")} as root); ratios to Go are left out`);
  } else {
    const goBinary = join(root, "monitor-go");
    // GOPATH mode builds offline from Debian's sources; the build cache stays in the throwaway folder.
    const goEnv = { ...process.env, GO111MODULE: "off", GOPATH, GOFLAGS: "", GOPROXY: "off", GOCACHE: join(root, "go-cache") };
    if (await build(BASELINE, ["go", "build", "-o", goBinary, join(import.meta.dir, "monitor", "monitor.go")], goBinary, goEnv)) {
      const env = childEnv(server);
      add(BASELINE, [goBinary, `host=${env["PGHOST"]} port=${env["PGPORT"]} user=${env["PGUSER"]} dbname=${env["PGDATABASE"]}`, PAIR]);
    }
  }

  if (existsSync(PSQL)) {
    add(PSQL_FLOOR, [PSQL, "-X", "-Atc", NEWEST_QUOTE_SQL.replace("$1", `'${PAIR}'`)]);
    // The monitor's own question (its one query, every figure it prints), asked by psql.
    add(PSQL_MONITOR_QUERY, [PSQL, "-X", "-At", "-c", inlined(await snapshotQuery(server, [PAIR]))]);
    // psql's own start and exit, without a connection: what is left of the rows above is the server's.
    add(PSQL_ALONE, [PSQL, "--version"]);
  } else skip(PSQL_FLOOR, `${PSQL} is not there (Debian's postgresql-client-15)`);

  add("bun -e 0", [bun, "-e", "0"]);
  add(IMPORT_ONLY, [bun, "-e", 'import "postgres"']);
  add(IMPORT_MONITOR, [bun, "-e", `import ${JSON.stringify(join(PROJECT_DIR, "monitor.ts"))}`]);
  const empty = join(root, "empty");
  await Bun.write(`${empty}.ts`, "export {};\n");
  if (await build(COMPILED_EMPTY, [bun, ...COMPILE_FLAGS, `${empty}.ts`, "--outfile", empty], empty, process.env)) add(COMPILED_EMPTY, [empty]);
  const bare = join(import.meta.dir, "monitor", "bare.ts");
  add("bare bun + postgres.js", [bun, bare, PAIR]);
  const bareCompiled = join(root, "bare");
  if (await build("bare, compiled", [bun, ...COMPILE_FLAGS, bare, "--outfile", bareCompiled], bareCompiled, process.env)) {
    add("bare, compiled", [bareCompiled, PAIR]);
  }
  return contenders;
}

/** One warm-up round (which also drops a contender that cannot run at all), then `runs` interleaved rounds. */
function measure(contenders: Contender[], env: Record<string, string | undefined>, runs: number): Contender[] {
  const running = contenders.filter((contender) => {
    const warmUp = runOnce(contender.cmd, env);
    if (warmUp.exitCode === null || warmUp.exitCode > 2) {
      skip(contender.name, `its warm-up run failed (exit ${warmUp.exitCode}): ${warmUp.stderr.trim().split("\n").slice(-3).join(" | ")}`);
      return false;
    }
    contender.firstLine = warmUp.stdout.trim().split("\n")[0] ?? "";
    return true;
  });
  // Another process busy on the same cores shows in every contender; the load average says so.
  const loadBefore = loadavg()[0] ?? Number.NaN;
  const began = performance.now();
  for (let round = 0; round < runs; round++) {
    if (performance.now() - began > MEASURE_BUDGET_MS) {
      console.error(`\n*** STOPPED EARLY: ${MEASURE_BUDGET_MS / 60_000} min budget spent after ${round} of ${runs} rounds ***\n`);
      break;
    }
    for (const contender of running) {
      const { ms, exitCode } = runOnce(contender.cmd, env);
      if (exitCode === null || exitCode > 2) contender.failures++;
      else contender.samples.push(ms);
    }
  }
  console.log(`\n${runs} interleaved rounds of ${running.length} contenders in ${((performance.now() - began) / 1000).toFixed(1)} s (after one warm-up round); 1-min load average ${loadBefore.toFixed(2)} before, ${(loadavg()[0] ?? Number.NaN).toFixed(2)} after, on ${availableParallelism()} cores`);
  return running;
}

function report(contenders: Contender[], runs: number): void {
  const go = contenders.find((contender) => contender.name === BASELINE);
  const goMedian = go ? percentile(go.samples, 0.5) : Number.NaN;
  const ratio = (ms: number) => (go ? `${(ms / goMedian).toFixed(2)}x` : "n/a");
  const width = Math.max(...contenders.map((contender) => contender.name.length));
  console.log(`\nwhole-process wall time (${runs} runs each, interleaved; ratio = median / Go's median):`);
  console.log(`${"contender".padEnd(width)}  runs  median ms  p90 ms  x Go`);
  for (const contender of contenders) {
    const median = percentile(contender.samples, 0.5);
    const failed = contender.failures ? `  (${contender.failures} FAILED runs left out)` : "";
    console.log(
      `${contender.name.padEnd(width)}  ${String(contender.samples.length).padStart(4)}  ${median.toFixed(1).padStart(9)}  ${percentile(contender.samples, 0.9).toFixed(1).padStart(6)}  ${ratio(median).padStart(5)}${failed}`,
    );
  }
  console.log(`\nwhat each printed (warm-up run):`);
  for (const contender of contenders) console.log(`  ${contender.name.padEnd(width)}  ${contender.firstLine}`);

  const medianOf = (name: string) => percentile(contenders.find((contender) => contender.name === name)?.samples ?? [], 0.5);
  const bunStart = medianOf("bun -e 0");
  const imported = medianOf(IMPORT_ONLY);
  const modules = medianOf(IMPORT_MONITOR);
  const bare = medianOf("bare bun + postgres.js");
  const monitor = medianOf("bun monitor.ts");
  const compiled = medianOf("compiled monitor");
  const compiledStart = medianOf(COMPILED_EMPTY);
  const line = (label: string, ms: number) => console.log(`  ${label.padEnd(60)} ${ms.toFixed(1).padStart(6)} ms`);
  console.log(`\nwhere bun monitor.ts's ${monitor.toFixed(1)} ms go (differences of medians):`);
  line("Bun's start (bun -e 0)", bunStart);
  line("+ loading its modules (postgres.js alone: " + (imported - bunStart).toFixed(1) + " ms)", modules - bunStart);
  line("+ connecting, the query, printing, exiting", monitor - modules);
  console.log(`  (bare bun + postgres.js, the newest quote alone: ${bare.toFixed(1)} ms)`);
  console.log(`where the compiled monitor's ${compiled.toFixed(1)} ms go:`);
  line("an empty compiled program", compiledStart);
  line("+ everything the monitor does", compiled - compiledStart);
  if (go) {
    // The server's work for a new connection and a question is the same whoever asks: psql's run
    // less psql's own start and exit. No compiled Bun program starts faster than the empty one.
    const psqlAlone = medianOf(PSQL_ALONE);
    for (const [question, psqlRun] of [["the original's one question", medianOf(PSQL_FLOOR)], ["the monitor's query", medianOf(PSQL_MONITOR_QUERY)]] as const) {
      const floor = compiledStart + psqlRun - psqlAlone;
      if (Number.isNaN(floor)) continue;
      console.log(
        `floor for a compiled Bun client asking ${question}: its empty start ${compiledStart.toFixed(1)} ms + the server's share ` +
          `of psql's run ${(psqlRun - psqlAlone).toFixed(1)} ms = ${floor.toFixed(1)} ms = ${(floor / goMedian).toFixed(2)}x Go`,
      );
    }
  }

  console.log(`\ntargets (issue 10):`);
  for (const { contender, maxRatio } of TARGETS) {
    const median = medianOf(contender);
    if (!go || Number.isNaN(median)) console.log(`  ${contender} <= ${maxRatio.toFixed(1)}x Go: n/a (${go ? contender : BASELINE} was skipped)`);
    else console.log(`  ${contender} <= ${maxRatio.toFixed(1)}x Go: ${(median / goMedian).toFixed(2)}x: ${median / goMedian <= maxRatio ? "PASS" : "MISS"}`);
  }
}

if (import.meta.main) {
  process.exitCode = await main(Bun.argv.slice(2));
}
