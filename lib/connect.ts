/**
 * lib/connect.ts: where cotacao's database is (DATABASE_URL or the embedded server, validated
 * with valibot) and connect(), which opens a pool to it, starting the embedded server on first use.
 */
import { join, resolve } from "node:path";
import * as v from "valibot";
import { runningEmbeddedServer, startEmbeddedServer } from "./embedded_server.ts";
import { envIssue } from "./errors.ts";
import type { ConnectOptions, Sql } from "./pool.ts";
import { PROJECT_DIR } from "./project.ts";

/** The embedded server's data folder when COTACAO_DATA_DIR is unset. */
export const DEFAULT_DATA_DIR = join(PROJECT_DIR, ".data", "postgres");

/** A postgres.js connection pool. */
const DatabaseEnvSchema = v.object({
  DATABASE_URL: v.pipe(
    v.optional(v.string(), ""),
    v.trim(),
    v.check(
      (url) => url === "" || isPostgresUrl(url),
      (issue) => `must be a postgres:// or postgresql:// URL, like DATABASE_URL=postgres://user:password@localhost:5432/cotacao, got "${maskUrl(String(issue.input))}"`,
    ),
  ),
  COTACAO_DATA_DIR: v.pipe(v.optional(v.string(), ""), v.trim()),
});

/** Where cotacao's database is: a server the user runs, or the embedded one in `dataDir`. */
export interface DatabaseConfig {
  /** Set: connect to this server. Unset: use the embedded server. */
  databaseUrl?: string | undefined;
  /** The embedded server's data directory (absolute). */
  dataDir: string;
}

/** Reads and validates the database settings from `env`; throws a one-line CONFIG error naming the variable. */
export function loadDatabaseConfig(env: Record<string, string | undefined>): DatabaseConfig {
  const result = v.safeParse(DatabaseEnvSchema, env);
  if (!result.success) throw envIssue(result.issues);
  const { DATABASE_URL, COTACAO_DATA_DIR } = result.output;
  return {
    ...(DATABASE_URL ? { databaseUrl: DATABASE_URL } : {}),
    // Relative to the project, not the working directory: cron starts jobs in $HOME.
    dataDir: COTACAO_DATA_DIR ? resolve(PROJECT_DIR, COTACAO_DATA_DIR) : DEFAULT_DATA_DIR,
  };
}

function isPostgresUrl(url: string): boolean {
  if (!/^postgres(ql)?:\/\//.test(url)) return false;
  try {
    new URL(url);
    return true;
  } catch {
    return false;
  }
}

/**
 * The URL with its password replaced by `***`, safe to print; parsed or not. The user info runs
 * to the last "@": people write passwords with "/", "#", "?" or "@" unescaped, and a URL parser
 * would then take part of the password for the host or the path. Masking too much (an "@" later
 * in the URL) is the safe way to be wrong.
 */
export function maskUrl(url: string): string {
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(url)?.[0];
  if (!scheme) return url;
  const at = url.lastIndexOf("@");
  const colon = url.indexOf(":", scheme.length);
  if (at < scheme.length || colon < 0 || colon > at) return url;
  return `${url.slice(0, colon + 1)}***${url.slice(at)}`;
}

const writeToStderr = (line: string) => void process.stderr.write(`${line}\n`);

/**
 * Opens a connection pool to cotacao's database: `DATABASE_URL` when set, else the embedded
 * server, started on first use and left running for the next process.
 */
export async function connect(config: DatabaseConfig, options: ConnectOptions = {}): Promise<Sql> {
  // postgres.js on first use: a process that reads the configuration only (the monitor's check,
  // through lib/pg_wire.ts) never loads it.
  const { connectUrl } = await import("./pool.ts");
  if (config.databaseUrl) return connectUrl(config.databaseUrl, options);
  const url = await embeddedServerUrl(config.dataDir, options.notice ?? writeToStderr);
  // Where postmaster.pid says the socket is; stopped, the URL's.
  const findSocket = async () => {
    const running = await runningEmbeddedServer(config.dataDir);
    return running ? `${running.socketDir}/.s.PGSQL.${running.port}` : undefined;
  };
  return connectUrl(url, { ...options, findSocket });
}

async function embeddedServerUrl(dataDir: string, notice: (line: string) => void): Promise<string> {
  const server =
    (await runningEmbeddedServer(dataDir)) ??
    (await startEmbeddedServer(dataDir, { notice })).server;
  return server.url;
}

