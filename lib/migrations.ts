/**
 * lib/migrations.ts: the schema, from the numbered files in sql/: applied in order, in one
 * transaction, under an advisory lock, each recorded with its checksum; a gap or an edited file
 * is an error.
 */
import { join } from "node:path";
import type postgres from "postgres";
import type { Sql } from "./pool.ts";
import { DatabaseError } from "./errors.ts";
import { sha256 } from "./hash.ts";
import { PROJECT_DIR } from "./project.ts";

// Loaded on first use, as in lib/embedded_server.ts: the monitor never migrates.
const fs = () => process.getBuiltinModule("node:fs");

const MIGRATION_FILE = /^(\d{3})_([a-z0-9_]+)\.sql$/;

/** The migrations' folder. */
export const SQL_DIR = join(PROJECT_DIR, "sql");

// ---------------------------------------------------------------------------------------------
// Migrations

/** One numbered file in `sql/`. */
export interface Migration {
  version: number;
  name: string;
  checksum: string;
  content: string;
}

/** Reads `sql/NNN_name.sql`; refuses duplicate numbers, bad names and gaps. */
export function readMigrations(dir: string = SQL_DIR): Migration[] {
  const migrations = fs().readdirSync(dir)
    .filter((file) => file.endsWith(".sql"))
    .map((file) => {
      const match = MIGRATION_FILE.exec(file);
      if (!match) {
        throw new DatabaseError(
          "MIGRATION",
          `Cannot migrate: "${file}" in ${dir} is not named NNN_name.sql (three digits, lower-case name); rename it`,
        );
      }
      const content = fs().readFileSync(join(dir, file), "utf8");
      return {
        version: Number(match[1]),
        name: file,
        checksum: sha256(content),
        content,
      };
    })
    .sort((a, b) => a.version - b.version);
  migrations.forEach((migration, index) => {
    if (migration.version !== index + 1) {
      throw new DatabaseError(
        "MIGRATION",
        `Cannot migrate: expected migration ${String(index + 1).padStart(3, "0")} but found "${migration.name}" in ${dir}; migrations are numbered 001, 002, ... without gaps or duplicates`,
      );
    }
  });
  return migrations;
}

interface AppliedMigration {
  version: number;
  name: string;
  checksum: string;
}

/** What `migrate()` did. */
export interface MigrationResult {
  applied: string[];
  current: number;
}

/**
 * Brings the schema up to date: pending files applied in order, in one transaction, under an
 * advisory lock so concurrent migrators cannot race. A no-op read when already current.
 */
export async function migrate(sql: Sql, dir: string = SQL_DIR): Promise<MigrationResult> {
  const migrations = readMigrations(dir);
  const current = migrations.length;
  if (pendingMigrations(migrations, await appliedMigrations(sql)).length === 0) return { applied: [], current };
  return sql.begin(async (tx) => {
    // Held until commit: a second migrator waits here, then finds nothing left to do.
    await tx`select pg_advisory_xact_lock(hashtext('cotacao:migrate'))`;
    await createMigrationsTable(tx);
    const pending = pendingMigrations(migrations, await appliedMigrations(tx));
    await applyMigrations(tx, pending);
    return { applied: pending.map((migration) => migration.name), current };
  });
}

/**
 * Call it right after taking the migration lock and before reading schema_migrations: besides
 * creating the table, it makes this session see the catalog as a migrator that just committed
 * left it (an advisory lock alone does not refresh the session's view of the catalog).
 */
export async function createMigrationsTable(tx: postgres.TransactionSql): Promise<void> {
  await tx`
    create table if not exists schema_migrations (
      version integer primary key,
      name text not null,
      checksum text not null,
      applied_at timestamptz not null default now()
    )`;
}

/** Applies `pending` in order inside the caller's transaction, which holds the migration lock. */
export async function applyMigrations(tx: postgres.TransactionSql, pending: readonly Migration[]): Promise<void> {
  for (const migration of pending) {
    // unsafe: a migration file of sql/, checked against its recorded checksum; it holds several statements.
    await tx.unsafe(migration.content);
    await tx`
      insert into schema_migrations (version, name, checksum)
      values (${migration.version}, ${migration.name}, ${migration.checksum})`;
  }
}

/** Applied and pending migrations, for `status`. Read-only. */
export async function migrationStatus(sql: Sql, dir: string = SQL_DIR): Promise<{ applied: number; pending: string[] }> {
  const migrations = readMigrations(dir);
  const applied = await appliedMigrations(sql);
  return { applied: applied.length, pending: pendingMigrations(migrations, applied).map((m) => m.name) };
}

/** The migrations recorded in schema_migrations, in order (none before the first migration). */
export async function appliedMigrations(sql: Sql | postgres.TransactionSql): Promise<AppliedMigration[]> {
  const [table] = await sql<{ present: boolean }[]>`select to_regclass('schema_migrations') is not null as present`;
  if (!table?.present) return [];
  return sql<AppliedMigration[]>`select version, name, checksum from schema_migrations order by version`;
}

/** The files not applied yet; an applied one whose file changed or is gone is an error. */
export function pendingMigrations(files: Migration[], applied: AppliedMigration[]): Migration[] {
  for (const done of applied) {
    const file = files[done.version - 1];
    if (!file) {
      throw new DatabaseError(
        "MIGRATION",
        `Cannot migrate: the database has migration "${done.name}", which this copy of cotacao does not have; update cotacao`,
      );
    }
    if (file.checksum !== done.checksum) {
      throw new DatabaseError(
        "MIGRATION",
        `Cannot migrate: "${file.name}" was changed after it was applied (checksum differs); restore the file and put the change in a new migration`,
      );
    }
  }
  return files.slice(applied.length);
}
