/**
 * bun bench/database.ts: how long the embedded server takes to be usable.
 *   cold start: no data folder yet (initdb, create the database, start the server)
 *   warm start: data folder exists, server stopped
 *   warm connect: server running; connect() and run `select 1`, as every cron run does
 * Baseline, same run: a bare postgres.js connection to the same socket, with none of
 * connect()'s discovery (reading postmaster.pid), and `select 1`.
 */
import { chmod, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import { connect } from "../lib/connect.ts";
import { startEmbeddedServer, stopEmbeddedServer } from "../lib/embedded_server.ts";

const CONNECT_ROUNDS = 50;

async function timed<T>(fn: () => Promise<T>): Promise<[number, T]> {
  const began = performance.now();
  const value = await fn();
  return [performance.now() - began, value];
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

const root = await mkdtemp(join(tmpdir(), "cotacao-bench-"));
await chmod(root, 0o755);
const dataDir = join(root, "pg");
try {
  const [cold, { server }] = await timed(() => startEmbeddedServer(dataDir));
  await stopEmbeddedServer(dataDir);
  const [warm] = await timed(() => startEmbeddedServer(dataDir));

  const ours: number[] = [];
  const bare: number[] = [];
  for (let round = 0; round < CONNECT_ROUNDS; round++) {
    const [ms] = await timed(async () => {
      const sql = await connect({ dataDir }, { max: 1 });
      await sql`select 1`;
      await sql.end();
    });
    ours.push(ms);
    const [bareMs] = await timed(async () => {
      const sql = postgres({ host: server.socketDir, port: server.port, user: "cotacao", database: "cotacao", max: 1 });
      await sql`select 1`;
      await sql.end();
    });
    bare.push(bareMs);
  }
  console.log(`cold start (initdb + create database + start): ${cold.toFixed(0)} ms`);
  console.log(`warm start (server stopped, data present):     ${warm.toFixed(0)} ms`);
  console.log(
    `warm connect + select 1, median of ${CONNECT_ROUNDS}: ${median(ours).toFixed(2)} ms ` +
      `(baseline, bare postgres.js on the same socket: ${median(bare).toFixed(2)} ms)`,
  );
} finally {
  await stopEmbeddedServer(dataDir).catch(() => {});
  await rm(root, { recursive: true, force: true });
}
