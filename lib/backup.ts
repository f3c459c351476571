/**
 * lib/backup.ts: dumps and restores of cotacao's tables, as one gzipped text file.
 */
import type { Readable } from "node:stream";
import type postgres from "postgres";
import * as v from "valibot";
import type { Sql } from "./pool.ts";
import { DatabaseError } from "./errors.ts";
import {
  appliedMigrations,
  applyMigrations,
  createMigrationsTable,
  pendingMigrations,
  readMigrations,
  SQL_DIR,
} from "./migrations.ts";

// Loaded on first use, as in lib/embedded_server.ts: only a dump or a restore needs them.
const fs = () => process.getBuiltinModule("node:fs");
const fsp = () => process.getBuiltinModule("node:fs/promises");
const stream = () => process.getBuiltinModule("node:stream");
const zlib = () => process.getBuiltinModule("node:zlib");
const streamPromises = () => process.getBuiltinModule("node:stream/promises");

// ---------------------------------------------------------------------------------------------
// Backups: dump and restore

/*
 * A dump is one gzip stream:
 *   line 1   a JSON header: format, version, the schema's migrations (version, name, checksum),
 *            and each table with its columns and row count
 *   then     each table's rows as COPY text, in the header's order, each ended by a line "\."
 *            (a data line never is: COPY escapes every backslash in the data)
 *   last     a JSON trailer line, {"end": "cotacao-dump"}
 * Plain COPY text keeps every digit and needs nothing but PostgreSQL to read; gzip's CRC and the
 * row counts catch a truncated or damaged file before anything is committed.
 */
const DUMP_FORMAT = "cotacao-dump";
const DUMP_VERSION = 1;
const DUMP_TRAILER = JSON.stringify({ end: DUMP_FORMAT });
// The header is a few KB; anything this long before the first line break is not a dump.
const MAX_DUMP_HEADER_BYTES = 1024 * 1024;
// A row's COPY line: cotacao's rows are a few hundred bytes (a run's error, a webhook's payload a
// few KB). A dump refuses to write a longer one, a restore to read it: a line that never ends
// must not make the restore hold the whole file in memory.
const MAX_DUMP_LINE_BYTES = 16 * 1024 * 1024;
const COPY_END_LINE = Buffer.from("\\.\n");
// Bytes of COPY text handed to gzip at a time.
const DUMP_WRITE_BYTES = 1024 * 1024;

const DumpHeaderSchema = v.object({
  format: v.literal(DUMP_FORMAT),
  version: v.literal(DUMP_VERSION),
  createdAt: v.string(),
  serverVersion: v.string(),
  migrations: v.array(
    v.object({ version: v.pipe(v.number(), v.integer(), v.minValue(1)), name: v.string(), checksum: v.string() }),
  ),
  tables: v.array(
    v.object({
      name: v.pipe(v.string(), v.minLength(1)),
      columns: v.pipe(v.array(v.pipe(v.string(), v.minLength(1))), v.minLength(1)),
      rows: v.pipe(v.number(), v.integer(), v.minValue(0)),
    }),
  ),
});
/** The first line of a dump. */
export type DumpHeader = v.InferOutput<typeof DumpHeaderSchema>;

/** What a dump or a restore moved. */
export interface BackupResult {
  /** The schema's migration count. */
  schema: number;
  tables: { name: string; rows: number }[];
  rows: number;
}

interface TableShape {
  name: string;
  columns: string[];
  identity: string[];
}

/**
 * Tables derived from others, which a dump leaves out: as a restore loads the quotes, sql/006's
 * triggers note their spans, and the next read of the rollups rebuilds them (refreshRollups).
 */
const DERIVED_TABLES = ["quote_hours", "quote_days", "quote_rollups_pending"];

/**
 * cotacao's tables in the current schema (all but schema_migrations and the derived ones), each
 * after the tables its foreign keys point to, so that loading them in this order satisfies every key.
 */
async function cotacaoTables(tx: postgres.TransactionSql): Promise<TableShape[]> {
  const rows = await tx<{ name: string; columns: string[]; identity: string[]; refs: string[] }[]>`
    select c.relname as name,
      array(select a.attname::text from pg_attribute a
            where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped and a.attgenerated = ''
            order by a.attnum) as columns,
      array(select a.attname::text from pg_attribute a
            where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped and a.attidentity <> ''
            order by a.attnum) as identity,
      array(select distinct r.relname::text from pg_constraint k join pg_class r on r.oid = k.confrelid
            where k.conrelid = c.oid and k.contype = 'f' and r.oid <> c.oid) as refs
    from pg_class c
    where c.relnamespace = current_schema()::regnamespace and c.relkind in ('r', 'p')
      and not c.relispartition and c.relname <> 'schema_migrations' and c.relname <> all(${DERIVED_TABLES})
    order by c.relname`;
  const ordered: TableShape[] = [];
  const placed = new Set<string>();
  while (ordered.length < rows.length) {
    const ready = rows.filter((row) => !placed.has(row.name) && row.refs.every((ref) => placed.has(ref)));
    // A cycle of foreign keys (none exists today) is loaded in name order.
    for (const row of ready.length ? ready : rows.filter((row) => !placed.has(row.name))) {
      placed.add(row.name);
      ordered.push({ name: row.name, columns: row.columns, identity: row.identity });
    }
  }
  return ordered;
}

/** Output every server renders the same way, whatever the session's defaults. */
async function setPortableOutput(tx: postgres.TransactionSql): Promise<void> {
  await tx`
    select set_config('datestyle', 'ISO, YMD', true), set_config('timezone', 'UTC', true),
           set_config('intervalstyle', 'postgres', true), set_config('extra_float_digits', '1', true)`;
}

/**
 * Writes a consistent snapshot of every cotacao table to `output` as a gzip-compressed dump: one
 * repeatable-read, read-only transaction, each table streamed with COPY (never held in memory).
 */
export async function dumpDatabase(sql: Sql, output: NodeJS.WritableStream): Promise<BackupResult> {
  return sql.begin("isolation level repeatable read read only", async (tx) => {
    await setPortableOutput(tx);
    const migrations = await appliedMigrations(tx);
    const tables: DumpHeader["tables"] = [];
    for (const table of await cotacaoTables(tx)) {
      const [count] = await tx<{ rows: string }[]>`select count(*)::text as rows from ${tx(table.name)}`;
      tables.push({ name: table.name, columns: table.columns, rows: Number(count?.rows ?? 0) });
    }
    const [server] = await tx<{ version: string }[]>`select current_setting('server_version') as version`;
    const header: DumpHeader = {
      format: DUMP_FORMAT,
      version: DUMP_VERSION,
      createdAt: new Date().toISOString(),
      serverVersion: server?.version ?? "",
      migrations: migrations.map(({ version, name, checksum }) => ({ version, name, checksum })),
      tables,
    };
    async function* content(): AsyncGenerator<string | Buffer> {
      yield `${JSON.stringify(header)}\n`;
      for (const table of tables) {
        const rows = await tx`copy ${tx(table.name)} (${tx(table.columns)}) to stdout`.readable();
        // The server sends one message per row: gzip them a megabyte at a time, not row by row.
        let batch: Buffer[] = [];
        let size = 0;
        // A row a restore would refuse fails the dump, once the COPY is over: leaving a COPY
        // unread would leave the connection in it, and the rollback waiting for ever.
        let tooLong: number | undefined;
        for await (const chunk of rows) {
          if (tooLong !== undefined || (chunk as Buffer).length > MAX_DUMP_LINE_BYTES) {
            tooLong ??= (chunk as Buffer).length;
            continue;
          }
          batch.push(chunk as Buffer);
          size += (chunk as Buffer).length;
          if (size >= DUMP_WRITE_BYTES) {
            yield Buffer.concat(batch, size);
            batch = [];
            size = 0;
          }
        }
        // postgres.js pauses the socket when the stream is full and resumes it when the stream
        // asks for more; if the end of the COPY came in the same read, the ended stream never
        // asks again and the connection hangs (porsager/postgres#499). Ask once more.
        (rows as Readable)._read(0);
        if (tooLong !== undefined) {
          throw new DatabaseError(
            "DUMP",
            `Cannot dump: a row of table ${table.name} is ${tooLong} bytes as COPY text, more than a restore accepts (${MAX_DUMP_LINE_BYTES}); shorten or delete that row, then dump again`,
          );
        }
        batch.push(COPY_END_LINE);
        yield Buffer.concat(batch);
      }
      yield `${DUMP_TRAILER}\n`;
    }
    await streamPromises().pipeline(stream().Readable.from(content()), zlib().createGzip(), output);
    return backupResult(header);
  });
}

/**
 * dumpDatabase() into `file`, written as `file.tmp` and renamed once complete and on disk, so an
 * interrupted dump never leaves a partial file under the name asked for.
 */
export async function dumpToFile(sql: Sql, file: string): Promise<BackupResult> {
  const tmp = `${file}.tmp`;
  try {
    const result = await dumpDatabase(sql, fs().createWriteStream(tmp, { mode: 0o600 }));
    const handle = await fsp().open(tmp, "r");
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fsp().rename(tmp, file);
    return result;
  } catch (error) {
    await fsp().rm(tmp, { force: true });
    if (error instanceof DatabaseError) throw error;
    throw new DatabaseError("DUMP", `Cannot dump to ${file}: ${firstLine(error)}; check that the folder exists, is writable and has room`, {
      cause: error,
    });
  }
}

function backupResult(header: DumpHeader): BackupResult {
  return {
    schema: header.migrations.length,
    tables: header.tables.map(({ name, rows }) => ({ name, rows })),
    rows: header.tables.reduce((sum, table) => sum + table.rows, 0),
  };
}

function firstLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split("\n")[0] ?? "";
}

/** Reads a dump's decompressed bytes: its header and trailer lines, and each table's COPY text. */
class DumpReader {
  private buffered: Buffer = Buffer.alloc(0);
  private readonly chunks: AsyncIterator<Buffer>;

  constructor(input: AsyncIterable<Buffer>) {
    this.chunks = input[Symbol.asyncIterator]();
  }

  /**
   * Reads on until the buffer holds a line break (true) or the input ends (false). Refuses a line
   * longer than `maxBytes` (give or take a chunk) once it has read that much of it. Linear: the
   * chunks are joined once, when the break comes, and only each new chunk is searched for it (a
   * 64 MB line took 41 s and 650 MB when every chunk was joined to and searched with the rest).
   */
  private async untilBreak(maxBytes: number): Promise<boolean> {
    if (this.buffered.includes(10)) return true;
    const parts = [this.buffered];
    let size = this.buffered.length;
    try {
      for (;;) {
        if (size > maxBytes) throw new Error(`a line is longer than ${maxBytes} bytes, far longer than any in a dump`);
        const next = await this.chunks.next();
        if (next.done) return false;
        parts.push(next.value);
        size += next.value.length;
        if (next.value.includes(10)) return true;
      }
    } finally {
      this.buffered = parts.length === 1 ? this.buffered : Buffer.concat(parts, size);
    }
  }

  /** The next line, without its line break; null at the end of the input. */
  async line(maxBytes: number): Promise<string | null> {
    if (!(await this.untilBreak(maxBytes))) {
      if (this.buffered.length) throw new Error("it ends in the middle of a line");
      return null;
    }
    const end = this.buffered.indexOf(10);
    const line = this.buffered.subarray(0, end).toString("utf8");
    this.buffered = this.buffered.subarray(end + 1);
    return line;
  }

  /** One table's COPY text up to its "\." line, in whole lines; `counted` receives its row count. */
  async *table(counted: (rows: number) => void): AsyncGenerator<Buffer> {
    let rows = 0;
    for (;;) {
      if (!(await this.untilBreak(MAX_DUMP_LINE_BYTES))) throw new Error("it ends in the middle of a table");
      const lastBreak = this.buffered.lastIndexOf(10);
      const whole = this.buffered.subarray(0, lastBreak + 1);
      for (let start = 0; start < whole.length; ) {
        const end = whole.indexOf(10, start);
        if (end - start === 2 && whole[start] === 0x5c && whole[start + 1] === 0x2e) {
          if (start > 0) yield whole.subarray(0, start);
          this.buffered = this.buffered.subarray(end + 1);
          counted(rows);
          return;
        }
        rows++;
        start = end + 1;
      }
      yield whole;
      this.buffered = this.buffered.subarray(lastBreak + 1);
    }
  }
}

/** How restoreDatabase() treats a database that already holds data. */
export interface RestoreOptions {
  /** Replace whatever the database holds (in the same transaction) instead of refusing. */
  force?: boolean;
  /** The migrations folder (tests use copies). */
  dir?: string;
}

/**
 * Loads a dump made by dumpDatabase() into the database of `sql`, all or nothing, in one
 * transaction: applies the migrations the dump's schema has (refusing a dump from a schema this
 * code does not know), refuses a database that holds data unless `force`, copies every table in,
 * checks every row count against the header, and moves identity sequences past the restored ids.
 * A damaged or truncated dump is refused and the database is left as it was. `name` names the
 * dump in messages.
 */
async function restoreDatabase(
  sql: Sql,
  input: AsyncIterable<Buffer>,
  { force = false, dir = SQL_DIR }: RestoreOptions = {},
  name = "the dump",
): Promise<BackupResult> {
  const cannot = (what: string, cause?: unknown) =>
    new DatabaseError("RESTORE", `Cannot restore ${name}: ${what}`, cause === undefined ? {} : { cause });
  const damaged = (cause: unknown) =>
    cannot(`the file is damaged, truncated or not a cotacao dump (${firstLine(cause)}); nothing was restored, use a complete file made by "bun database.ts dump"`, cause);
  const reader = new DumpReader(input);
  let header: DumpHeader;
  try {
    const line = await reader.line(MAX_DUMP_HEADER_BYTES);
    header = v.parse(DumpHeaderSchema, JSON.parse(line ?? ""));
  } catch (error) {
    throw damaged(error);
  }
  const files = readMigrations(dir);
  for (const [index, migration] of header.migrations.entries()) {
    if (migration.version !== index + 1) throw damaged(new Error("its list of migrations has gaps"));
    const file = files[index];
    if (!file) {
      throw cannot(`it was made with a newer schema (migration "${migration.name}"), which this copy of cotacao does not have; update cotacao, then restore`);
    }
    if (file.name !== migration.name || file.checksum !== migration.checksum) {
      throw cannot(`its migration "${migration.name}" differs from this copy's "${file.name}" (checksum); restore it with the version of cotacao that made it`);
    }
  }
  const schema = header.migrations.length;
  await sql.begin(async (tx) => {
    await setPortableOutput(tx);
    await tx`select pg_advisory_xact_lock(hashtext('cotacao:migrate'))`;
    await createMigrationsTable(tx);
    const applied = await appliedMigrations(tx);
    if (applied.length > schema) {
      throw cannot(`the database's schema (${applied.length} migrations) is newer than the dump's (${schema}); restore into an empty database`);
    }
    await applyMigrations(tx, pendingMigrations(files.slice(0, schema), applied));
    const tables = await cotacaoTables(tx);
    const shape = (list: { name: string; columns: string[] }[]) =>
      JSON.stringify(list.map(({ name, columns }) => [name, columns]).sort());
    if (shape(tables) !== shape(header.tables)) {
      throw cannot(`its tables do not match cotacao's schema at migration ${schema}; was it edited? Use a file made by "bun database.ts dump"`);
    }
    // No other writer may slip rows in between the check and the load; readers carry on.
    for (const table of tables) await tx`lock table ${tx(table.name)} in exclusive mode`;
    if (force) {
      if (tables.length) await tx`truncate ${tx(tables.map((table) => table.name))} restart identity cascade`;
    } else {
      const held: string[] = [];
      for (const table of tables) {
        const [row] = await tx<{ rows: string }[]>`select count(*)::text as rows from ${tx(table.name)}`;
        if (row && row.rows !== "0") held.push(`${row.rows} ${table.name}`);
      }
      if (held.length) {
        throw cannot(`the database already holds data (${held.join(", ")}); restore into an empty database, or add --force to replace everything in it`);
      }
    }
    for (const table of header.tables) {
      let rows = -1;
      try {
        const copy = await tx`copy ${tx(table.name)} (${tx(table.columns)}) from stdin`.writable();
        await streamPromises().pipeline(stream().Readable.from(reader.table((counted) => (rows = counted))), copy);
      } catch (error) {
        if (error instanceof DatabaseError) throw error;
        throw damaged(error);
      }
      if (rows !== table.rows) throw damaged(new Error(`table ${table.name} holds ${rows} rows, its header says ${table.rows}`));
      const [stored] = await tx<{ rows: string }[]>`select count(*)::text as rows from ${tx(table.name)}`;
      if (Number(stored?.rows) !== table.rows) {
        throw damaged(new Error(`table ${table.name} has ${stored?.rows} rows after loading, its header says ${table.rows}`));
      }
    }
    let trailer: string | null;
    try {
      trailer = await reader.line(MAX_DUMP_HEADER_BYTES);
      if (trailer !== DUMP_TRAILER) throw new Error("its last line is missing");
      if ((await reader.line(MAX_DUMP_HEADER_BYTES)) !== null) throw new Error("there is more after its last line");
    } catch (error) {
      throw damaged(error);
    }
    // New rows must not collide with restored ids.
    for (const table of tables) {
      for (const column of table.identity) {
        await tx`
          select setval(pg_get_serial_sequence(${table.name}, ${column}), coalesce(max(${tx(column)}), 0) + 1, false)
          from ${tx(table.name)}`;
      }
    }
  });
  return backupResult(header);
}

/** restoreDatabase() from a dump file (`-`: standard input). */
export async function restoreFromFile(sql: Sql, file: string, options: RestoreOptions = {}): Promise<BackupResult> {
  const source = file === "-" ? process.stdin : fs().createReadStream(file);
  const gunzip = zlib().createGunzip();
  // Errors of either stream end the reading with that error; the restore then rolls back.
  stream().pipeline(source, gunzip, () => {});
  try {
    return await restoreDatabase(sql, gunzip, options, file === "-" ? "standard input" : file);
  } finally {
    gunzip.destroy();
  }
}

