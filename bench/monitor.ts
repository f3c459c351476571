/**
 * bun bench/monitor.ts [--rows 1000000] [--runs 30]: how long `bun monitor.ts --pair USD-BRL`
 * takes as a whole process, and how much CPU it burns, against what a user could run instead,
 * over both transports a monitor meets: a Unix socket and TCP.
 *
 * A throwaway embedded PostgreSQL holds `--rows` minute quotes of USD-BRL plus 20 other pairs
 * (3,000 quotes each). Two transports, each measured on its own (a table each):
 *   - socket: the embedded server's Unix socket (what `bun monitor.ts` uses without DATABASE_URL);
 *   - tcp: when DATABASE_URL is set, that server (loopback only: 127.0.0.1, ::1 or localhost),
 *     in a throwaway database the bench creates, loads and drops; when it is not, the same
 *     embedded server, started by the bench listening on 127.0.0.1 too, on a free port, with
 *     trust for 127.0.0.1 in a pg_hba.conf of its own (the cluster's own rejects TCP). TLS is off
 *     (sslmode=disable, postgres.js's default) unless DATABASE_URL asks for it with ?sslmode=.
 * Each contender is run `--runs` times, interleaved (a, b, c, ..., a, b, c, ...) after one
 * warm-up round, so every contender sees the same warm server and caches:
 *   - `bun monitor.ts --pair USD-BRL` (DATABASE_URL = the transport's URL);
 *   - the same compiled here with `bun build --compile --bytecode`;
 *   - the baseline: a Go pgx program doing what the original's monitor.go did (one query for the
 *     newest quote, one line out), built here from Debian's golang-go and
 *     golang-github-jackc-pgx-v4-dev in GOPATH mode, offline (`go` found on PATH; both packages
 *     installed with apt-get when absent, if run as root);
 *   - the floor: the psql binary itself (PostgreSQL 15's, else the `psql` on PATH), `-X -Atc`,
 *     and the same binary's `--version` (its start and exit alone, so that the rest is the server's);
 *   - where Bun's time goes: `bun -e 0`, `bun -e 'import "postgres"'`, the same importing
 *     monitor.ts (its modules, without running it), bench/monitor/bare.ts (import postgres.js, one
 *     query) run as a script and compiled, and an empty program compiled: the floor under any
 *     compiled Bun program.
 * After each transport's rounds, bench/monitor/stages.ts (the monitor with timestamps at each
 * stage) runs 15 times compiled and 15 as a script: where the monitor's time goes inside its
 * process (Bun's start, its modules, its own work, postgres.js's connect timer, node:net, the
 * waits on the server, ICU's start-up, output, exit), medians.
 * Wall time is measured around Bun.spawnSync; CPU time is the child's own user + system time
 * from its rusage (resourceUsage()), so the server's work is not in it.
 * A contender that cannot be built is skipped, loudly; the others still run. An exit code 0..2
 * counts as a run (the monitor's OK, WARNING, CRITICAL), anything else as a failed run.
 * Targets (issue 17), on each transport: compiled monitor <= 1.5x Go's median wall time;
 * `bun monitor.ts` <= 3x; CPU time per check <= 3x Go's (both). And (issue 10) the query under
 * 1 ms: EXPLAIN (ANALYZE, BUFFERS) of the original's query and of the monitor's own, in a new
 * backend and warm, printed at the end. Traffic goes only to loopback and Unix sockets.
 */
import { existsSync } from "node:fs";
import { chmod, mkdtemp, rm, stat } from "node:fs/promises";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import * as v from "valibot";
import { loadAnalysisConfig } from "../lib/rule.ts";
import { maskUrl } from "../lib/connect.ts";
import { startEmbeddedServer, stopEmbeddedServer, type EmbeddedServer } from "../lib/embedded_server.ts";
import { migrate } from "../lib/migrations.ts";
import { connectUrl } from "../lib/pool.ts";
import { PROJECT_DIR } from "../lib/project.ts";
import { readSnapshot } from "../lib/views.ts";
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
/** Each transport's measuring loop stops after this long even if it has not reached --runs (and says so). */
const MEASURE_BUDGET_MS = 6 * 60_000;
const BUILD_TIMEOUT_MS = 3 * 60_000;
const APT_TIMEOUT_MS = 8 * 60_000;
// --format=esm: without it --bytecode builds CommonJS, where a top-level await would not parse.
// --splitting: the chunks of dynamic imports (postgres.js, for --watch) load only when imported.
const COMPILE_FLAGS = ["build", "--compile", "--bytecode", "--format=esm", "--splitting"];
// Debian's PostgreSQL 15 client, as the original project used; elsewhere whatever psql is on PATH.
const PSQL_15 = "/usr/lib/postgresql/15/bin/psql";
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
/** Issue 17's targets, each on both transports: a ratio of medians to the Go original's in the same run. */
export const TARGETS = [
  { contender: "compiled monitor", measure: "wall", maxRatio: 1.5 },
  { contender: "bun monitor.ts", measure: "wall", maxRatio: 3.0 },
  { contender: "compiled monitor", measure: "cpu", maxRatio: 3.0 },
  { contender: "bun monitor.ts", measure: "cpu", maxRatio: 3.0 },
] as const;
const TARGET_QUERY_MS = 1;
const STAGES = join(import.meta.dir, "monitor", "stages.ts");
/** Runs of bench/monitor/stages.ts per transport and form (compiled, script) for the breakdown. */
const STAGE_RUNS = 15;
// The newest quote of a pair, as the original monitor.go asked it; psql gets it with the pair inlined.
const NEWEST_QUOTE_SQL = "select bid, ask, ts from quotes where pair=$1 order by ts desc limit 1";
const LOOPBACK_HOSTS = new Set(["localhost", "127.0.0.1", "[::1]"]);
// The embedded cluster rejects TCP (initdb --auth-host=reject); the bench's own TCP listener gets
// this file instead (hba_file), trusting 127.0.0.1 only, as the issue's PostgreSQL 15 did.
const BENCH_HBA = "local all all trust\nhost all all 127.0.0.1/32 trust\n";

const FlagsSchema = v.object({
  rows: v.pipe(v.string(), v.transform(Number), v.integer("--rows must be a whole number"), v.minValue(1_000, "--rows must be at least 1000"), v.maxValue(50_000_000, "--rows must be at most 50000000")),
  runs: v.pipe(v.string(), v.transform(Number), v.integer("--runs must be a whole number"), v.minValue(30, "--runs must be at least 30"), v.maxValue(1_000, "--runs must be at most 1000")),
});

interface Contender {
  name: string;
  cmd: string[];
  /** Wall time of each run, ms. */
  samples: number[];
  /** The child's user + system CPU time of each run, ms. */
  cpu: number[];
  failures: number;
  /** The first line the warm-up run printed, to show that every contender answered the same question. */
  firstLine?: string;
}

/** Where the contenders reach the server, and how each kind of client is told. */
export interface Transport {
  name: "socket" | "tcp";
  /** What the table's heading says about it (never a password). */
  label: string;
  /** DATABASE_URL for the monitor. */
  url: string;
  /** The libpq variables psql, pgx and postgres.js (bare.ts) read. */
  pg: Record<string, string>;
  /** The keyword/value DSN the Go program is given (its password, if any, comes from PGPASSWORD). */
  goDsn: string;
}

/**
 * A transport from a postgres:// URL; libpq's `?host=/socket/dir` makes it a Unix socket. Over
 * TCP, TLS is off unless the URL's sslmode asks for it: postgres.js (the monitor) does not try
 * TLS by default, so psql and pgx (whose default, prefer, would) must not either.
 */
export function transportFrom(name: Transport["name"], url: string, label: string): Transport {
  const parsed = new URL(url);
  const socketDir = parsed.searchParams.get("host");
  const fields: [string, string, string][] = [
    ["PGHOST", "host", socketDir ?? parsed.hostname.replace(/^\[(.*)\]$/, "$1")],
    ["PGPORT", "port", parsed.port || "5432"],
    ["PGUSER", "user", decodeURIComponent(parsed.username)],
    ["PGDATABASE", "dbname", decodeURIComponent(parsed.pathname.slice(1))],
    ["PGSSLMODE", "sslmode", socketDir ? "" : (parsed.searchParams.get("sslmode") ?? "disable")],
  ];
  const pg: Record<string, string> = {};
  const dsn: string[] = [];
  for (const [variable, keyword, value] of fields) {
    if (!value) continue;
    pg[variable] = value;
    dsn.push(`${keyword}='${value.replaceAll("\\", "\\\\").replaceAll("'", "\\'")}'`);
  }
  if (parsed.password) pg["PGPASSWORD"] = decodeURIComponent(parsed.password);
  return { name, label, url, pg, goDsn: dsn.join(" ") };
}

/**
 * Why `url` (the user's DATABASE_URL) cannot be the bench's TCP server, or undefined if it can:
 * it must be a postgres:// URL to this machine over TCP (benchmarks send traffic to loopback only).
 */
export function tcpUrlProblem(url: string): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return "DATABASE_URL is not a URL";
  }
  if (!/^postgres(ql)?:$/.test(parsed.protocol)) return `DATABASE_URL must be a postgres:// URL, got "${parsed.protocol}//..."`;
  if (parsed.searchParams.has("host")) return "DATABASE_URL names a Unix socket (?host=), and this transport is TCP; give the server's 127.0.0.1 address and port";
  if (!LOOPBACK_HOSTS.has(parsed.hostname)) return `DATABASE_URL must name a server on this machine (127.0.0.1, ::1 or localhost: benchmarks send traffic to loopback only), got host "${parsed.hostname}"`;
  return undefined;
}

export function percentile(samples: readonly number[], p: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil(p * sorted.length) - 1)] ?? Number.NaN;
}

/** Medians of one contender: wall time and CPU time, ms. */
export interface Medians {
  wall: number;
  cpu: number;
}

/**
 * The PASS/MISS lines of issue 17's targets for one transport: each contender's median against
 * Go's, wall time and CPU time. n/a (never PASS) when Go or the contender did not run.
 */
export function targetLines(medians: ReadonlyMap<string, Medians>): string[] {
  const go = medians.get(BASELINE);
  return TARGETS.map(({ contender, measure, maxRatio }) => {
    const what = `${contender}, ${measure === "wall" ? "wall time" : "CPU time per check"} <= ${maxRatio.toFixed(1)}x Go's`;
    const mine = medians.get(contender)?.[measure];
    const base = go?.[measure];
    if (mine === undefined || base === undefined || Number.isNaN(mine) || Number.isNaN(base) || base <= 0) {
      return `${what}: n/a (${go ? contender : BASELINE} did not run): MISS`;
    }
    const ratio = mine / base;
    return `${what}: ${mine.toFixed(1)} / ${base.toFixed(1)} ms = ${ratio.toFixed(2)}x: ${ratio <= maxRatio ? "PASS" : "MISS"}`;
  });
}

/** Runs `cmd` to completion; returns its wall time, CPU time (user + system, ms), exit code (null if killed) and output. */
function runOnce(cmd: string[], env: Record<string, string | undefined>, timeout = RUN_TIMEOUT_MS) {
  const began = performance.now();
  const result = Bun.spawnSync({ cmd, env, cwd: PROJECT_DIR, stdout: "pipe", stderr: "pipe", timeout });
  const ms = performance.now() - began;
  return { ms, cpuMs: Number(result.resourceUsage.cpuTime.total) / 1000, exitCode: result.exitCode, stdout: result.stdout.toString(), stderr: result.stderr.toString() };
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

Whole-process wall time and CPU time of bun monitor.ts, the compiled monitor, a Go pgx program
and psql, interleaved, against a throwaway embedded PostgreSQL holding --rows quotes of ${PAIR},
over its Unix socket and over TCP: to DATABASE_URL's server when set (127.0.0.1, ::1 or
localhost only; the bench creates, loads and drops a database of its own there), else to the
same embedded server listening on 127.0.0.1 too.`;

async function main(args: string[]): Promise<number> {
  const options = readBenchOptions(args, { rows: String(DEFAULT_ROWS), runs: String(DEFAULT_RUNS) }, FlagsSchema, USAGE, "bench/monitor.ts");
  if (typeof options === "number") return options;
  const userUrl = process.env["DATABASE_URL"]?.trim() || undefined;
  const problem = userUrl === undefined ? undefined : tcpUrlProblem(userUrl);
  if (problem) {
    console.error(`Cannot run the benchmark: ${problem}; or unset DATABASE_URL to let the bench start a TCP server of its own`);
    return 2;
  }
  const root = await mkdtemp(join(tmpdir(), "cotacao-bench-"));
  await chmod(root, 0o755);
  const dataDir = join(root, "pg");
  let dropUserDatabase: (() => Promise<void>) | undefined;
  try {
    // The user's server first: a mistake there shows before minutes of loading.
    const throwaway = userUrl === undefined ? undefined : await createThrowawayDatabase(userUrl);
    dropUserDatabase = throwaway?.drop;
    // Without DATABASE_URL, the embedded server listens on 127.0.0.1 too, on a free port (its
    // socket is then named for that port as well); the socket's table is the same either way.
    const port = userUrl ? undefined : freeLoopbackPort();
    const hbaFile = join(root, "pg_hba.conf");
    await Bun.write(hbaFile, BENCH_HBA);
    const settings: Record<string, string> = port === undefined ? {} : { listen_addresses: "127.0.0.1", port: String(port), hba_file: hbaFile };
    const { server } = await startEmbeddedServer(dataDir, { settings });
    const socket = transportFrom("socket", socketUrl(server), `the embedded server's Unix socket (${server.socketDir})`);
    await loadDatabase(socket.url, options.rows, "the embedded server");
    let tcp: Transport;
    if (throwaway) {
      tcp = transportFrom("tcp", throwaway.url, `TCP to DATABASE_URL's server, ${maskUrl(throwaway.url)}`);
      await loadDatabase(tcp.url, options.rows, `DATABASE_URL's server (database ${tcp.pg["PGDATABASE"]})`);
    } else {
      tcp = transportFrom("tcp", `postgresql://${socket.pg["PGUSER"]}@127.0.0.1:${port}/${socket.pg["PGDATABASE"]}`, `TCP to the embedded server on 127.0.0.1:${port} (no DATABASE_URL given)`);
    }
    const explained = await explainSection(server, options.rows);
    const built = await buildContenders(root, server);
    const verdicts: string[] = [];
    for (const transport of [socket, tcp]) {
      const measured = measure(contendersFor(built, transport), childEnv(transport), options.runs, transport);
      verdicts.push(...report(measured, options.runs, transport).map((line) => `${transport.name.padEnd(6)}  ${line}`));
      printStages(built, transport);
    }
    console.log(`\n${explained}`);
    console.log(`\ntargets (issue 17), both transports (load averages above):\n${verdicts.map((line) => `  ${line}`).join("\n")}`);
    return 0;
  } finally {
    await dropUserDatabase?.().catch((error) => console.error(`Cannot drop the bench's database on DATABASE_URL's server: ${(error as Error).message}`));
    await stopEmbeddedServer(dataDir).catch(() => {});
    await rm(root, { recursive: true, force: true });
  }
}

/** A TCP port on 127.0.0.1 nobody listens on now (the kernel's pick). */
function freeLoopbackPort(): number {
  const listener = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const { port } = listener;
  listener.stop(true);
  return port;
}

/** The embedded server's socket URL with its port: the socket is named for it, and it is not always 5432 here. */
function socketUrl(server: EmbeddedServer): string {
  const url = new URL(server.url);
  url.port = String(server.port);
  return url.toString();
}

/**
 * A database of the bench's own on the user's server (DATABASE_URL), dropped at the end: their
 * own database is never written. Needs a user that may create databases.
 */
async function createThrowawayDatabase(userUrl: string): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `cotacao_bench_${process.pid}`;
  const admin = () => postgres(userUrl, { max: 1, onnotice: () => {}, connect_timeout: 10 });
  const sql = admin();
  try {
    await sql.unsafe(`create database ${name}`);
  } catch (error) {
    throw new Error(`Cannot create the bench's database ${name} on DATABASE_URL's server: ${(error as Error).message}; check that the server runs and that its user may create databases, or unset DATABASE_URL`, { cause: error });
  } finally {
    await sql.end({ timeout: 5 });
  }
  const url = new URL(userUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const dropper = admin();
      try {
        await dropper.unsafe(`drop database if exists ${name} with (force)`);
      } finally {
        await dropper.end({ timeout: 5 });
      }
    },
  };
}

/** Migrates and loads a throwaway database at `url`. */
async function loadDatabase(url: string, rows: number, where: string): Promise<void> {
  const sql = connectUrl(url, { max: 1 });
  try {
    await migrate(sql);
    const began = performance.now();
    await loadQuotes(sql, rows);
    const [counts] = await sql<{ pair: number; total: number }[]>`
      select count(*) filter (where pair = ${PAIR})::int as pair, count(*)::int as total from quotes`;
    console.log(
      `${where}: ${(counts?.pair ?? 0).toLocaleString("en-US")} minute quotes of ${PAIR} + ${OTHER_PAIRS.length} pairs x ${OTHER_PAIR_QUOTES.toLocaleString("en-US")} ` +
        `(${(counts?.total ?? 0).toLocaleString("en-US")} rows), loaded and vacuumed in ${((performance.now() - began) / 1000).toFixed(1)} s`,
    );
  } finally {
    await sql.end({ timeout: 5 });
  }
}

/** EXPLAIN of the original's query and of the monitor's, on the embedded server; the section to print at the end. */
async function explainSection(server: EmbeddedServer, rows: number): Promise<string> {
  const sql = connectUrl(socketUrl(server), { max: 1 });
  try {
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

/**
 * The environment every contender runs with: the transport's DATABASE_URL, and the same as PG*
 * variables for psql, pgx and postgres.js (any PG* of the caller's left out).
 */
function childEnv(transport: Transport): Record<string, string | undefined> {
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith("PG")));
  return { ...inherited, ...transport.pg, DATABASE_URL: transport.url };
}

/** What was built (absent: its build failed or it cannot be had here), and the monitor's query for psql. */
interface Built {
  compiled?: string;
  go?: string;
  psql?: string;
  empty?: string;
  bareCompiled?: string;
  /** bench/monitor/stages.ts compiled: the monitor run with timestamps at each stage. */
  stagesCompiled?: string;
  psqlMonitorQuery: string;
}

/** Builds what needs building, once for both transports. */
async function buildContenders(root: string, server: EmbeddedServer): Promise<Built> {
  const bun = process.execPath;
  const built: Built = { psqlMonitorQuery: inlined(await snapshotQuery(server, [PAIR])) };
  const compiled = join(root, "monitor");
  if (await build("compiled monitor", [bun, ...COMPILE_FLAGS, join(PROJECT_DIR, "monitor.ts"), "--outfile", compiled], compiled, process.env)) built.compiled = compiled;

  if (!ensureGo()) {
    skip(BASELINE, `no Go toolchain on PATH or no pgx v4 source in ${GOPATH} (apt-get install ${GO_PACKAGES.join(" ")} as root); ratios to Go are left out`);
  } else {
    const goBinary = join(root, "monitor-go");
    // GOPATH mode builds offline from Debian's sources; the build cache stays in the throwaway folder.
    const goEnv = { ...process.env, GO111MODULE: "off", GOPATH, GOFLAGS: "", GOPROXY: "off", GOCACHE: join(root, "go-cache") };
    if (await build(BASELINE, ["go", "build", "-o", goBinary, join(import.meta.dir, "monitor", "monitor.go")], goBinary, goEnv)) built.go = goBinary;
  }

  const psql = existsSync(PSQL_15) ? PSQL_15 : Bun.which("psql");
  if (psql) built.psql = psql;
  else skip(PSQL_FLOOR, `neither ${PSQL_15} nor a psql on PATH`);

  const empty = join(root, "empty");
  await Bun.write(`${empty}.ts`, "export {};\n");
  if (await build(COMPILED_EMPTY, [bun, ...COMPILE_FLAGS, `${empty}.ts`, "--outfile", empty], empty, process.env)) built.empty = empty;
  const bareCompiled = join(root, "bare");
  if (await build("bare, compiled", [bun, ...COMPILE_FLAGS, join(import.meta.dir, "monitor", "bare.ts"), "--outfile", bareCompiled], bareCompiled, process.env)) {
    built.bareCompiled = bareCompiled;
  }
  const stages = join(root, "stages");
  if (await build("stages, compiled", [bun, ...COMPILE_FLAGS, STAGES, "--outfile", stages], stages, process.env)) built.stagesCompiled = stages;
  return built;
}

/** The contenders of one transport, in the order they are run each round. */
function contendersFor(built: Built, transport: Transport): Contender[] {
  const bun = process.execPath;
  const contenders: Contender[] = [];
  const add = (name: string, cmd: string[]) => contenders.push({ name, cmd, samples: [], cpu: [], failures: 0 });
  add("bun monitor.ts", [bun, join(PROJECT_DIR, "monitor.ts"), "--pair", PAIR]);
  if (built.compiled) add("compiled monitor", [built.compiled, "--pair", PAIR]);
  if (built.go) add(BASELINE, [built.go, transport.goDsn, PAIR]);
  if (built.psql) {
    // psql reads the transport from the PG* variables.
    add(PSQL_FLOOR, [built.psql, "-X", "-Atc", NEWEST_QUOTE_SQL.replace("$1", `'${PAIR}'`)]);
    // The monitor's own question (its one query, every figure it prints), asked by psql.
    add(PSQL_MONITOR_QUERY, [built.psql, "-X", "-At", "-c", built.psqlMonitorQuery]);
    // psql's own start and exit, without a connection: what is left of the rows above is the server's.
    add(PSQL_ALONE, [built.psql, "--version"]);
  }
  add("bun -e 0", [bun, "-e", "0"]);
  add(IMPORT_ONLY, [bun, "-e", 'import "postgres"']);
  add(IMPORT_MONITOR, [bun, "-e", `import ${JSON.stringify(join(PROJECT_DIR, "monitor.ts"))}`]);
  if (built.empty) add(COMPILED_EMPTY, [built.empty]);
  add("bare bun + postgres.js", [bun, join(import.meta.dir, "monitor", "bare.ts"), PAIR]);
  if (built.bareCompiled) add("bare, compiled", [built.bareCompiled, PAIR]);
  return contenders;
}

/** One warm-up round (which also drops a contender that cannot run at all), then `runs` interleaved rounds. */
function measure(contenders: Contender[], env: Record<string, string | undefined>, runs: number, transport: Transport): Contender[] {
  console.log(`\n=== ${transport.name}: ${transport.label} ===`);
  const running = contenders.filter((contender) => {
    const warmUp = runOnce(contender.cmd, env);
    if (warmUp.exitCode === null || warmUp.exitCode > 2) {
      skip(`${contender.name} (${transport.name})`, `its warm-up run failed (exit ${warmUp.exitCode}): ${(warmUp.stderr.trim() || warmUp.stdout.trim()).split("\n").slice(-3).join(" | ")}`);
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
      const { ms, cpuMs, exitCode } = runOnce(contender.cmd, env);
      if (exitCode === null || exitCode > 2) contender.failures++;
      else {
        contender.samples.push(ms);
        contender.cpu.push(cpuMs);
      }
    }
  }
  console.log(`${runs} interleaved rounds of ${running.length} contenders in ${((performance.now() - began) / 1000).toFixed(1)} s (after one warm-up round); 1-min load average ${loadBefore.toFixed(2)} before, ${(loadavg()[0] ?? Number.NaN).toFixed(2)} after, on ${availableParallelism()} cores`);
  return running;
}

/** Prints one transport's table and figures; returns its PASS/MISS lines. */
function report(contenders: Contender[], runs: number, transport: Transport): string[] {
  const medians = new Map<string, Medians>(contenders.map((contender) => [contender.name, { wall: percentile(contender.samples, 0.5), cpu: percentile(contender.cpu, 0.5) }]));
  const go = medians.get(BASELINE);
  const ratio = (ms: number, base: number | undefined) => (base === undefined ? "n/a" : `${(ms / base).toFixed(2)}x`);
  const width = Math.max(...contenders.map((contender) => contender.name.length));
  console.log(`\n${transport.name}: whole-process wall time and the process's own CPU time (user + system), ${runs} runs each, interleaved; x Go = median / Go's median:`);
  console.log(`${"contender".padEnd(width)}  runs  median ms  p90 ms   x Go  CPU ms  CPU x Go`);
  for (const contender of contenders) {
    const { wall, cpu } = medians.get(contender.name)!;
    const failed = contender.failures ? `  (${contender.failures} FAILED runs left out)` : "";
    console.log(
      `${contender.name.padEnd(width)}  ${String(contender.samples.length).padStart(4)}  ${wall.toFixed(1).padStart(9)}  ${percentile(contender.samples, 0.9).toFixed(1).padStart(6)}  ${ratio(wall, go?.wall).padStart(5)}  ${cpu.toFixed(1).padStart(6)}  ${ratio(cpu, go?.cpu).padStart(8)}${failed}`,
    );
  }
  console.log(`\nwhat each printed (warm-up run):`);
  const shown = (line = "") => (line.length > 150 ? `${line.slice(0, 150)}... (${line.length} characters)` : line);
  for (const contender of contenders) console.log(`  ${contender.name.padEnd(width)}  ${shown(contender.firstLine)}`);

  const medianOf = (name: string) => medians.get(name)?.wall ?? Number.NaN;
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
  console.log(`  (bare bun + postgres.js, the newest quote alone: ${bare.toFixed(1)} ms; compiled: ${medianOf("bare, compiled").toFixed(1)} ms)`);
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
          `of psql's run ${(psqlRun - psqlAlone).toFixed(1)} ms = ${floor.toFixed(1)} ms = ${(floor / go.wall).toFixed(2)}x Go`,
      );
    }
  }

  const verdicts = targetLines(medians);
  console.log(`\ntargets (issue 17) over ${transport.name}:`);
  for (const target of verdicts) console.log(`  ${target}`);
  return verdicts;
}

/**
 * The medians of each stage over runs of bench/monitor/stages.ts's `STAGES {...}` lines (stage
 * name to ms), in the order of the first run's; pure.
 */
export function medianStages(runs: readonly Record<string, number>[]): [string, number][] {
  const names = Object.keys(runs[0] ?? {});
  return names.map((name) => [name, percentile(runs.map((run) => run[name] ?? Number.NaN).filter((ms) => !Number.isNaN(ms)), 0.5)]);
}

/** Where the monitor's time goes inside its process, compiled and as a script: bench/monitor/stages.ts, STAGE_RUNS runs each, after the measured rounds. */
function printStages(built: Built, transport: Transport): void {
  const forms: [string, string[]][] = [["bun monitor.ts", [process.execPath, STAGES, "--pair", PAIR]]];
  if (built.stagesCompiled) forms.unshift(["compiled monitor", [built.stagesCompiled, "--pair", PAIR]]);
  const env = { ...childEnv(transport), STAGES_JSON: "1" };
  const columns = forms.map(([name, cmd]) => {
    const runs: Record<string, number>[] = [];
    for (let i = 0; i < STAGE_RUNS; i++) {
      const { stderr, exitCode } = runOnce(cmd, env);
      const line = stderr.split("\n").find((text) => text.startsWith("STAGES "));
      if (exitCode !== null && exitCode <= 2 && line) runs.push(JSON.parse(line.slice("STAGES ".length)) as Record<string, number>);
    }
    return { name, runs: runs.length, stages: medianStages(runs) };
  });
  const names = columns[0]?.stages.map(([name]) => name) ?? [];
  const width = Math.max(...names.map((name) => name.length));
  console.log(`\n${transport.name}: inside the process, stage by stage (bench/monitor/stages.ts, median ms of ${STAGE_RUNS} runs each; in each run the stages add up to its total, and ICU's start-up is inside one of them):`);
  console.log(`  ${"stage".padEnd(width)}  ${columns.map((column) => column.name.padStart(16)).join("  ")}`);
  for (const name of names) {
    const cells = columns.map((column) => (column.stages.find(([stage]) => stage === name)?.[1] ?? Number.NaN).toFixed(1).padStart(16));
    console.log(`  ${name.padEnd(width)}  ${cells.join("  ")}`);
  }
  for (const column of columns) if (column.runs < STAGE_RUNS) console.error(`*** stages of ${column.name} over ${transport.name}: only ${column.runs} of ${STAGE_RUNS} runs answered ***`);
}

if (import.meta.main) {
  try {
    process.exitCode = await main(Bun.argv.slice(2));
  } catch (error) {
    // A server that cannot be reached or loaded: one line, not a stack.
    const message = error instanceof Error ? error.message : String(error);
    console.error(message.startsWith("Cannot ") ? message : `Cannot run the benchmark: ${message}`);
    process.exitCode = 1;
  }
}
