/**
 * bun bench/pg_wire.ts [runs]: the monitor's one query (readSnapshot for USD-BRL) as a whole
 * compiled process, through lib/pg_wire.ts against through postgres.js as the monitor connected
 * before it (one pool of one connection), over the embedded server's Unix socket and over TCP to it on
 * 127.0.0.1 (trust); and over TCP to DATABASE_URL's server when it is set (loopback only; a
 * throwaway database is created there, loaded and dropped; SCRAM if that server asks for it).
 * Both clients are in the same binary (bench/monitor/wire_probe.ts), so they load the same
 * modules: the difference is the clients' own work. For scale: a compiled empty program, and one
 * that only imports postgres.js (what the monitor stops loading once it no longer imports it).
 * Runs are interleaved after a warm-up round; wall time around Bun.spawnSync, CPU time the
 * child's own user + system (rusage). Medians. Default 20 runs.
 */
import { chmod, mkdtemp, rm } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { startEmbeddedServer, stopEmbeddedServer } from "../lib/embedded_server.ts";
import { migrate } from "../lib/migrations.ts";
import { connectUrl, type Sql } from "../lib/pool.ts";

const RUNS = Number(Bun.argv[2] ?? 20);
const ROWS = 200_000;
const OTHER_PAIRS = ["EUR-BRL", "GBP-BRL", "JPY-BRL", "ARS-BRL", "CAD-BRL", "AUD-BRL", "CHF-BRL", "CNY-BRL", "BTC-BRL", "ETH-BRL"];
const HBA = "local all all trust\nhost all all 127.0.0.1/32 trust\n";
const LOOPBACK = new Set(["localhost", "127.0.0.1", "[::1]"]);

interface Run {
  ms: number;
  cpuMs: number;
  out: string;
}

function run(cmd: string[], env: Record<string, string> = {}): Run {
  const began = performance.now();
  const result = Bun.spawnSync({ cmd, env: { PATH: process.env["PATH"] ?? "", ...env }, stdout: "pipe", stderr: "pipe", timeout: 15_000 });
  const ms = performance.now() - began;
  if (result.exitCode !== 0) throw new Error(`${cmd.join(" ")} exited ${result.exitCode}: ${result.stderr.toString().trim()}`);
  return { ms, cpuMs: Number(result.resourceUsage.cpuTime.total) / 1000, out: result.stdout.toString().trim() };
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
};

async function load(sql: Sql): Promise<void> {
  await migrate(sql);
  await sql`
    insert into quotes (pair, ts, bid, ask, source)
    select 'USD-BRL', timestamptz '2025-01-01 00:00Z' + g * interval '1 minute', 5 + (g % 1000) / 10000.0, 5.01 + (g % 1000) / 10000.0, 'bench'
    from generate_series(1, ${ROWS}::int) g`;
  await sql`
    insert into quotes (pair, ts, bid, ask, source)
    select p, timestamptz '2025-01-01 00:00Z' + g * interval '1 hour', 1 + g / 10000.0, 1.01 + g / 10000.0, 'bench'
    from unnest(${OTHER_PAIRS}::text[]) p cross join generate_series(1, 3000) g`;
  await sql`vacuum analyze quotes`.catch(() => sql`analyze quotes`);
}

async function build(root: string, name: string, source: string): Promise<string> {
  const outfile = join(root, name);
  // Generated sources sit beside this file for the build, so that "postgres" resolves from the project.
  const file = source.endsWith(".ts") ? source : join(import.meta.dir, `.${name}_${process.pid}.ts`);
  if (file !== source) await Bun.write(file, source);
  try {
    run([process.execPath, "build", "--compile", "--bytecode", "--format=esm", file, "--outfile", outfile]);
  } finally {
    if (file !== source) await rm(file, { force: true });
  }
  return outfile;
}

async function main(): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), "cotacao-bench-wire-"));
  await chmod(root, 0o755);
  const dataDir = join(root, "pg");
  const cleanups: (() => Promise<unknown>)[] = [() => stopEmbeddedServer(dataDir), () => rm(root, { recursive: true, force: true })];
  try {
    const listener = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const port = listener.port;
    listener.stop(true);
    await Bun.write(join(root, "pg_hba.conf"), HBA);
    const { server } = await startEmbeddedServer(dataDir, { settings: { listen_addresses: "127.0.0.1", port: String(port), hba_file: join(root, "pg_hba.conf") } });
    const socketUrl = `postgresql://cotacao@localhost:${server.port}/cotacao?host=${encodeURIComponent(server.socketDir)}`;
    const transports: [string, string][] = [
      ["socket", socketUrl],
      ["tcp", `postgresql://cotacao@127.0.0.1:${port}/cotacao`],
    ];
    const seed = connectUrl(socketUrl, { max: 1 });
    await load(seed).finally(() => seed.end({ timeout: 5 }));
    const userUrl = process.env["DATABASE_URL"];
    if (userUrl) {
      const url = new URL(userUrl);
      if (!LOOPBACK.has(url.hostname)) throw new Error("DATABASE_URL must name a loopback server (127.0.0.1, ::1, localhost)");
      const name = `cotacao_bench_wire_${process.pid}`;
      const admin = connectUrl(userUrl, { max: 1 });
      await admin`create database ${admin(name)}`;
      cleanups.unshift(async () => {
        await admin`drop database if exists ${admin(name)} with (force)`;
        await admin.end({ timeout: 5 });
      });
      url.pathname = `/${name}`;
      const sql = connectUrl(url.toString(), { max: 1 });
      await load(sql).finally(() => sql.end({ timeout: 5 }));
      transports.push(["DATABASE_URL (tcp)", url.toString()]);
    }
    const probe = await build(root, "probe", join(import.meta.dir, "monitor", "wire_probe.ts"));
    const empty = await build(root, "empty", "export {};\n");
    const importPostgres = await build(root, "import_postgres", 'import postgres from "postgres";\nif (typeof postgres !== "function") process.exit(1);\n');
    console.log(`bench/pg_wire.ts: ${RUNS} runs each, interleaved; load average ${loadavg().map((n) => n.toFixed(2)).join(" ")}; ${ROWS.toLocaleString("en-US")} quotes of USD-BRL`);
    const contenders: [string, string[], boolean][] = [
      ["lib/pg_wire.ts", [probe, "wire"], true],
      ["postgres.js", [probe, "postgres"], true],
      ["compiled empty program", [empty], false],
      ["compiled, import postgres.js only", [importPostgres], false],
    ];
    for (const [transport, url] of transports) {
      const results = new Map<string, Run[]>(contenders.map(([name]) => [name, []]));
      for (let round = 0; round <= RUNS; round++) {
        for (const [name, cmd, needsUrl] of contenders) {
          const result = run(cmd, needsUrl ? { PROBE_URL: url } : {});
          if (round > 0) results.get(name)!.push(result); // round 0 warms up
        }
      }
      const outs = new Set([...results.get("lib/pg_wire.ts")!, ...results.get("postgres.js")!].map((r) => r.out));
      console.log(`\n${transport}: both clients printed ${outs.size === 1 ? `the same line (${[...outs][0]})` : `DIFFERENT lines: ${[...outs].join(" | ")}`}`);
      console.log(`  ${"contender".padEnd(36)} ${"wall ms".padStart(8)} ${"cpu ms".padStart(8)}`);
      for (const [name, runs] of results) {
        console.log(`  ${name.padEnd(36)} ${median(runs.map((r) => r.ms)).toFixed(1).padStart(8)} ${median(runs.map((r) => r.cpuMs)).toFixed(1).padStart(8)}`);
      }
    }
  } finally {
    for (const cleanup of cleanups) await cleanup().catch((error) => console.error(String(error)));
  }
}

await main();
