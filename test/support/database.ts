/**
 * Test databases on a real PostgreSQL server: the one TEST_DATABASE_URL names, else a throwaway
 * embedded server in a temporary folder, started once per `bun test` run and removed after it.
 * Every test file gets a database of its own, created fresh from a migrated template.
 */
import { afterAll, beforeAll } from "bun:test";
import { chmod, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connectUrl, type Sql } from "../../lib/pool.ts";
import { startEmbeddedServer, stopEmbeddedServer } from "../../lib/embedded_server.ts";
import { migrate } from "../../lib/migrations.ts";

// Durability buys nothing in a server that is deleted after the run.
const THROWAWAY_SETTINGS = { fsync: "off", synchronous_commit: "off", full_page_writes: "off" };

interface TestServer {
  /** A URL of the server's maintenance database. */
  adminUrl: string;
  /** The temporary folder of the embedded server, if we started one. */
  ownDir?: string;
}

let server: Promise<TestServer> | undefined;
let template: Promise<string> | undefined;
let created = 0;

/** A folder that PostgreSQL's OS user can reach (mkdtemp makes it 0700). Caller removes it. */
export async function makeTempDir(prefix = "cotacao-test-"): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  await chmod(dir, 0o755);
  return dir;
}

function testServer(): Promise<TestServer> {
  server ??= (async () => {
    const external = process.env["TEST_DATABASE_URL"]?.trim();
    if (external) return { adminUrl: external };
    const ownDir = await makeTempDir();
    const { server: embedded } = await startEmbeddedServer(join(ownDir, "pg"), { settings: THROWAWAY_SETTINGS });
    return { adminUrl: embedded.url, ownDir };
  })();
  return server;
}

/** The URL of `database` on the test server. */
export function databaseUrl(adminUrl: string, database: string): string {
  const url = new URL(adminUrl);
  url.pathname = `/${database}`;
  return url.toString();
}

async function withAdmin<T>(fn: (sql: Sql) => Promise<T>): Promise<T> {
  const { adminUrl } = await testServer();
  const admin = connectUrl(adminUrl, { max: 1 });
  try {
    return await fn(admin);
  } finally {
    await admin.end({ timeout: 5 });
  }
}

function migratedTemplate(): Promise<string> {
  template ??= (async () => {
    const name = `cotacao_template_${process.pid}`;
    await withAdmin((admin) => admin`create database ${admin(name)}`);
    const sql = connectUrl(databaseUrl((await testServer()).adminUrl, name), { max: 1 });
    try {
      await migrate(sql);
    } finally {
      await sql.end({ timeout: 5 });
    }
    return name;
  })();
  return template;
}

/** A new database: migrated (a copy of the template) or empty. Returns its URL. */
export async function createTestDatabase({ migrated = true }: { migrated?: boolean } = {}): Promise<string> {
  const name = `cotacao_test_${process.pid}_${++created}`;
  const source = migrated ? await migratedTemplate() : "template0";
  await withAdmin((admin) => admin`create database ${admin(name)} template ${admin(source)}`);
  return databaseUrl((await testServer()).adminUrl, name);
}

/** Drops a database made by createTestDatabase(), closing anyone still connected. */
export async function dropTestDatabase(url: string): Promise<void> {
  const name = new URL(url).pathname.slice(1);
  await withAdmin((admin) => admin`drop database if exists ${admin(name)} with (force)`);
}

/**
 * A fresh database for this test file: created before its tests, dropped after them.
 * Read `db.sql` and `db.url` inside tests and hooks.
 */
export function useTestDatabase(options: { migrated?: boolean } = {}): { readonly sql: Sql; readonly url: string } {
  let url: string | undefined;
  let sql: Sql | undefined;
  beforeAll(async () => {
    url = await createTestDatabase(options);
    sql = connectUrl(url);
  });
  afterAll(async () => {
    await sql?.end({ timeout: 5 });
    if (url) await dropTestDatabase(url);
  });
  const ready = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error("useTestDatabase(): the database exists only inside tests and hooks");
    return value;
  };
  return {
    get sql() {
      return ready(sql);
    },
    get url() {
      return ready(url);
    },
  };
}

/**
 * Temporary folders for a test file, for embedded servers of its own (in `<folder>/pg`) that its
 * tests may stop or kill: each call makes one; after the file, its server is stopped and the
 * folder removed.
 */
export function useTempDirs(): () => Promise<string> {
  const dirs: string[] = [];
  // Stopping several servers takes longer than a hook's default 5 s.
  afterAll(async () => {
    for (const dir of dirs) {
      await stopEmbeddedServer(join(dir, "pg"));
      await rm(dir, { recursive: true, force: true });
    }
  }, 60_000);
  return async () => {
    const dir = await makeTempDir();
    dirs.push(dir);
    return dir;
  };
}

/** Removes what this run made on the server; stops and deletes the embedded one. */
export async function removeTestServer(): Promise<void> {
  if (!server) return;
  const { ownDir } = await server;
  if (ownDir) {
    await stopEmbeddedServer(join(ownDir, "pg"));
    await rm(ownDir, { recursive: true, force: true });
    return;
  }
  if (template) {
    const name = await template;
    await withAdmin((admin) => admin`drop database if exists ${admin(name)} with (force)`);
  }
}
