// Dumps and restores (database.ts): every table round-trips; a damaged file changes nothing.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { cp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Writable } from "node:stream";
import { gunzipSync, gzipSync } from "node:zlib";
import { dumpDatabase, dumpToFile, restoreFromFile } from "../lib/backup.ts";
import { connectUrl, type Sql } from "../lib/pool.ts";
import { DatabaseError } from "../lib/errors.ts";
import { migrate, readMigrations, SQL_DIR } from "../lib/migrations.ts";
import { PROJECT_DIR } from "../lib/project.ts";
import { refreshRollups } from "../lib/views.ts";
import { saveOfficialRates, saveQuotes } from "../database.ts";
import { cleanEnv, runScript } from "./support/cli.ts";
import { createTestDatabase, dropTestDatabase, makeTempDir } from "./support/database.ts";
import { sampleQuote } from "./support/quotes.ts";
import { useTestTimeout } from "./support/timeout.ts";

useTestTimeout();

const pools: Sql[] = [];
const databases: string[] = [];
let scratch: string;

beforeAll(async () => {
  scratch = await makeTempDir("cotacao-backup-");
});

afterAll(async () => {
  await Promise.all(pools.map((pool) => pool.end({ timeout: 5 })));
  for (const url of databases) await dropTestDatabase(url);
  await rm(scratch, { recursive: true, force: true });
});

async function database(migrated: boolean): Promise<{ url: string; sql: Sql }> {
  const url = await createTestDatabase({ migrated });
  databases.push(url);
  const sql = connectUrl(url, { max: 2 });
  pools.push(sql);
  return { url, sql };
}

/** Every row of every table (and the applied migrations), as text, in a stable order. */
/** Every row of every table, the rollups (sql/006) brought up to date first where they exist. */
async function everyRow(sql: Sql): Promise<Record<string, string[]>> {
  const [rollups] = await sql<{ exist: boolean }[]>`select to_regprocedure('refresh_quote_rollups()') is not null as exist`;
  if (rollups?.exist) await refreshRollups(sql);
  const tables = await sql<{ name: string }[]>`
    select tablename as name from pg_tables where schemaname = current_schema() order by tablename`;
  const rows: Record<string, string[]> = {};
  for (const { name } of tables) {
    const text =
      name === "schema_migrations"
        ? await sql<{ row: string }[]>`select (version, name, checksum)::text as row from schema_migrations order by 1`
        : await sql<{ row: string }[]>`select t::text as row from ${sql(name)} t order by 1`;
    rows[name] = text.map((row) => row.row);
  }
  return rows;
}

/** A row or more in every table, with the awkward values: long decimals, nulls, tabs, JSON. */
async function fill(sql: Sql): Promise<void> {
  await saveQuotes(sql, [
    sampleQuote(),
    sampleQuote({ ts: new Date("2024-08-22T17:00:00Z"), bid: "123456789.123456789012345678", ask: "0.00000001", high: null, low: null, varBid: null, pctChange: null }),
    sampleQuote({ pair: "EUR-BRL", source: "odd\tsource\nwith \\N and \\ back\rslash, ção" }),
  ]);
  await saveQuotes(sql, [sampleQuote({ bid: "5.6" })]);
  await saveQuotes(sql, [sampleQuote({ bid: "5.7" })]);
  // A gap in the ids, as deletions leave.
  await sql`delete from quote_revisions where id = (select min(id) from quote_revisions)`;
  await sql`insert into pipeline_runs (pairs) values ('{USD-BRL}'), ('{USD-BRL,EUR-BRL}'), ('{EUR-BRL}')`;
  await sql`
    update pipeline_runs set status = 'failed', finished_at = '2024-08-23T17:41:00Z', rows_fetched = 2,
      error = ${"Cannot fetch: HTTP 522\twith a tab"}
    where id = (select min(id) from pipeline_runs)`;
  await sql`delete from pipeline_runs where id = (select max(id) from pipeline_runs)`;
  await sql`
    insert into backfill_progress (pair, range_from, range_to, done_through)
    values ('USD-BRL', '2024-01-01', '2024-12-31', '2024-06-30')`;
  await sql`
    insert into alerts (pair, kind, direction, status, started_at, last_seen_at, resolved_at, price, average,
                        deviation, peak_deviation, peak_at, threshold, window_days, fingerprint)
    values ('USD-BRL', 'deviation', 'up', 'resolved', '2024-08-05T18:00:00Z', '2024-08-06T18:00:00Z',
            '2024-08-07T18:00:00Z', 5.20, 5.0, 0.04, 0.041234567890123, '2024-08-06T18:00:00Z', 0.03, 20, 'fp-1'),
           ('EUR-BRL', 'stale', null, 'firing', '2024-08-23T20:30:00Z', '2024-08-23T21:00:00Z',
            null, null, null, null, null, null, null, null, 'fp-2')`;
  await sql`
    insert into alert_notifications (alert_id, transition, endpoint, payload, attempts, last_error)
    select id, 'firing', 'sha256:abc', ${sql.json({ text: "alert: FIRING USD-BRL", deviation: 0.04 })}, 2, 'HTTP 500'
    from alerts`;
  await sql`insert into alert_state (pair, evaluated_day) values ('USD-BRL', '2024-08-23')`;
  await sql`insert into quote_gaps (pair, from_day, to_day) values ('USD-BRL', '2024-06-03', '2024-07-19')`;
  // Rules (sql/013): a level and a move, one disabled, a note with a tab.
  await sql`
    insert into alert_rules (pair, kind, level, window_days, note, disabled_at)
    values ('USD-BRL', 'above', 6.00, null, ${"sell\tnow, ção"}, null),
           ('EUR-BRL', 'move', 2.5, 7, null, '2024-08-23T18:00:00Z')`;
  // PTAX (sql/009): microseconds and long digits, and a correction for official_rate_revisions.
  const closing = { pair: "USD-BRL", publishedAt: "2024-08-23T13:09:27.123456-03:00", bulletin: "closing", buy: "5.5032", sell: "5.50380000000000000001" } as const;
  await saveOfficialRates(sql, [{ ...closing, bulletin: "intermediate", publishedAt: "2024-08-23T12:08:31.1-03:00" }, closing]);
  await saveOfficialRates(sql, [{ ...closing, buy: "5.5033" }], { progress: { pair: "USD-BRL", from: "2024-01-01", to: "2024-12-31", doneThrough: "2024-08-23" } });
}

describe("dump and restore", () => {
  let source: { url: string; sql: Sql };
  let file: string;
  beforeAll(async () => {
    source = await database(true);
    await fill(source.sql);
    file = join(scratch, "full.dump.gz");
    await dumpToFile(source.sql, file);
  });

  test("a dump restored into an empty, unmigrated database holds every row of every table", async () => {
    const target = await database(false);
    const restored = await restoreFromFile(target.sql, file);
    expect(restored.schema).toBe(readMigrations().length);
    // The rollups (sql/006) are not in the dump: the restore noted its quotes, and the first read
    // of the rollups rebuilds them, equal to the source's.
    expect(await refreshRollups(target.sql)).toBeGreaterThan(0);
    const rows = await everyRow(source.sql);
    expect(Object.entries(rows).every(([name, table]) => name === "quote_rollups_pending" || table.length > 0)).toBe(true);
    expect(await everyRow(target.sql)).toEqual(rows);
    const notDumped = ["schema_migrations", "quote_hours", "quote_days", "quote_rollups_pending"];
    expect(restored.rows).toBe(Object.entries(rows).reduce((sum, [name, table]) => sum + (notDumped.includes(name) ? 0 : table.length), 0));
    expect(existsSync(`${file}.tmp`)).toBe(false);
  });

  test("new rows after a restore take ids after the restored ones", async () => {
    const target = await database(true);
    await restoreFromFile(target.sql, file);
    const [run] = await target.sql<{ id: string }[]>`insert into pipeline_runs (pairs) values ('{USD-BRL}') returning id::text`;
    const [before] = await source.sql<{ max: string }[]>`select max(id)::text as max from pipeline_runs`;
    expect(Number(run?.id)).toBe(Number(before?.max) + 1);
    const [revision] = await target.sql<{ id: string }[]>`
      insert into quote_revisions (pair, ts, bid, ask, source, fetched_at)
      values ('USD-BRL', '2024-08-23T17:39:40Z', 5.1, 5.2, 'test', now()) returning id::text`;
    const [restored] = await source.sql<{ max: string }[]>`select max(id)::text as max from quote_revisions`;
    expect(Number(revision?.id)).toBe(Number(restored?.max) + 1);
  });

  test("refuses a database that already holds data and leaves it as it was; --force replaces it", async () => {
    const target = await database(true);
    await saveQuotes(target.sql, [sampleQuote({ pair: "JPY-BRL" })]);
    const before = await everyRow(target.sql);
    const error = await restoreFromFile(target.sql, file).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(DatabaseError);
    expect((error as Error).message).toContain("already holds data (1 quotes)");
    expect((error as Error).message).toContain("--force");
    expect(await everyRow(target.sql)).toEqual(before);

    await restoreFromFile(target.sql, file, { force: true });
    expect(await everyRow(target.sql)).toEqual(await everyRow(source.sql));
  });

  test("a truncated file is refused with one line and leaves the database as it was", async () => {
    const bytes = await readFile(file);
    const truncated = join(scratch, "truncated.dump.gz");
    await writeFile(truncated, bytes.subarray(0, Math.floor(bytes.length * 0.8)));
    const target = await database(false);
    const error = await restoreFromFile(target.sql, truncated).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(DatabaseError);
    expect((error as Error).message).toStartWith(`Cannot restore ${truncated}: the file is damaged, truncated or not a cotacao dump`);
    expect((error as Error).message).not.toContain("\n");
    expect(await everyRow(target.sql)).toEqual({});
  });

  test("a file whose rows do not match its header's counts is refused and changes nothing", async () => {
    const text = gunzipSync(await readFile(file)).toString("utf8");
    // Drop one quote line: the gzip is valid, the content is not.
    const lines = text.split("\n");
    const quoteLine = lines.findIndex((line) => line.startsWith("EUR-BRL\t"));
    expect(quoteLine).toBeGreaterThan(0);
    lines.splice(quoteLine, 1);
    const edited = join(scratch, "edited.dump.gz");
    await writeFile(edited, gzipSync(lines.join("\n")));
    const target = await database(true);
    const error = await restoreFromFile(target.sql, edited).catch((caught: unknown) => caught);
    expect((error as Error).message).toMatch(/damaged.*table quotes holds 2 rows, its header says 3/);
    expect(Object.values(await everyRow(target.sql)).flat().length).toBe(readMigrations().length);
  });

  test("a table line that never ends (20 MB, past the 16 MB cap) is refused in seconds, with one line, and nothing is restored", async () => {
    const text = gunzipSync(await readFile(file)).toString("utf8");
    const header = text.slice(0, text.indexOf("\n") + 1);
    const endless = join(scratch, "endless.dump.gz");
    await writeFile(endless, gzipSync(Buffer.concat([Buffer.from(header), Buffer.alloc(20 * 1024 * 1024, "x")])));
    const target = await database(false);
    const began = performance.now();
    const error = await restoreFromFile(target.sql, endless).catch((caught: unknown) => caught);
    expect(performance.now() - began).toBeLessThan(3_000);
    expect(error).toBeInstanceOf(DatabaseError);
    expect((error as Error).message).toBe(
      `Cannot restore ${endless}: the file is damaged, truncated or not a cotacao dump (a line is longer than 16777216 bytes, far longer than any in a dump); nothing was restored, use a complete file made by "bun database.ts dump"`,
    );
    expect(await everyRow(target.sql)).toEqual({});
    // Under the cap, a long line still loads: a 1 MB error message round-trips.
    const long = await database(true);
    await long.sql`insert into pipeline_runs (pairs, error) values ('{USD-BRL}', repeat('e', 1024 * 1024))`;
    const longFile = join(scratch, "long-line.dump.gz");
    await dumpToFile(long.sql, longFile);
    const copy = await database(false);
    await restoreFromFile(copy.sql, longFile);
    expect(await everyRow(copy.sql)).toEqual(await everyRow(long.sql));
  });

  test("a dump refuses a row longer than a restore accepts, and writes no FILE", async () => {
    const huge = await database(true);
    await huge.sql`insert into pipeline_runs (pairs, error) values ('{USD-BRL}', repeat('e', 17 * 1024 * 1024))`;
    const hugeFile = join(scratch, "huge.dump.gz");
    const error = await dumpToFile(huge.sql, hugeFile).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(DatabaseError);
    expect((error as Error).message).toMatch(/^Cannot dump: a row of table pipeline_runs is \d+ bytes as COPY text, more than a restore accepts \(16777216\); shorten or delete that row, then dump again$/);
    expect(existsSync(hugeFile)).toBe(false);
    expect(existsSync(`${hugeFile}.tmp`)).toBe(false);
    // The COPY was read to its end: the connection is not left in it.
    expect([...(await huge.sql`select 1 as ok`)]).toEqual([{ ok: 1 }]);
  });

  test("a file that is not a dump at all is refused", async () => {
    const notADump = join(scratch, "notes.txt");
    await writeFile(notADump, "hello\n");
    const target = await database(false);
    await expect(restoreFromFile(target.sql, notADump)).rejects.toThrow(/damaged, truncated or not a cotacao dump/);
  });

  test("refuses a dump from a newer schema, or whose migrations differ, before touching the database", async () => {
    const text = gunzipSync(await readFile(file)).toString("utf8");
    const newline = text.indexOf("\n");
    const header = JSON.parse(text.slice(0, newline));
    const variant = async (name: string, edit: (header: { migrations: { version: number; name: string; checksum: string }[] }) => void) => {
      const copy = structuredClone(header);
      edit(copy);
      const path = join(scratch, name);
      await writeFile(path, gzipSync(JSON.stringify(copy) + text.slice(newline)));
      return path;
    };
    const newer = await variant("newer.dump.gz", (h) => h.migrations.push({ version: h.migrations.length + 1, name: "999_future.sql", checksum: "x" }));
    const changed = await variant("changed.dump.gz", (h) => (h.migrations[0]!.checksum = "0000"));
    const target = await database(false);
    await expect(restoreFromFile(target.sql, newer)).rejects.toThrow(/newer schema \(migration "999_future.sql"\).*update cotacao/);
    await expect(restoreFromFile(target.sql, changed)).rejects.toThrow(/differs from this copy's/);
    expect(await everyRow(target.sql)).toEqual({});
  });

  test("refuses a database whose schema is newer than the dump's, and changes nothing", async () => {
    const sqlDir = join(scratch, "sql-ahead");
    await cp(SQL_DIR, sqlDir, { recursive: true });
    const next = String(readMigrations().length + 1).padStart(3, "0");
    await writeFile(join(sqlDir, `${next}_ahead.sql`), "create table ahead (id int);");
    const target = await database(false);
    await migrate(target.sql, sqlDir);
    const before = await everyRow(target.sql);
    await expect(restoreFromFile(target.sql, file, { dir: sqlDir })).rejects.toThrow(
      /the database's schema \(\d+ migrations\) is newer than the dump's \(\d+\); restore into an empty database/,
    );
    expect(await everyRow(target.sql)).toEqual(before);
  });

  test("a dump of an empty database restores", async () => {
    const empty = await database(true);
    const emptyFile = join(scratch, "empty.dump.gz");
    const dumped = await dumpToFile(empty.sql, emptyFile);
    expect(dumped.rows).toBe(0);
    const target = await database(false);
    await restoreFromFile(target.sql, emptyFile);
    expect(await everyRow(target.sql)).toEqual(await everyRow(empty.sql));
  });

  test(
    "a dump into a slow destination completes and leaves the connection usable",
    async () => {
      const big = await database(true);
      await big.sql`
        insert into quotes (pair, ts, bid, ask, source)
        select 'USD-BRL', timestamptz '2000-01-01' + g * interval '1 minute', 5 + g / 1e6, 5.1, 'test'
        from generate_series(1, 100000) g`;
      let written = 0;
      // A slow disk: every write completes on a later turn of the event loop.
      const slow = new Writable({
        highWaterMark: 1024,
        write(chunk: Buffer, _encoding, done) {
          written += chunk.length;
          setImmediate(done);
        },
      });
      const result = await dumpDatabase(big.sql, slow);
      expect(result.rows).toBe(100_000);
      expect(written).toBeGreaterThan(100_000);
      expect([...(await big.sql`select 1 as ok`)]).toEqual([{ ok: 1 }]);
    },
    20_000,
  );

  test("a dump that fails half-way (disk full) leaves the previous FILE intact and no FILE.tmp", async () => {
    const previous = join(scratch, "nightly.dump.gz");
    await writeFile(previous, "yesterday's dump");
    await symlink("/dev/full", `${previous}.tmp`);
    const error = await dumpToFile(source.sql, previous).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(DatabaseError);
    expect((error as Error).message).toStartWith(`Cannot dump to ${previous}:`);
    expect(await readFile(previous, "utf8")).toBe("yesterday's dump");
    expect(existsSync(`${previous}.tmp`)).toBe(false);
  });
});

describe("bun database.ts dump and restore", () => {
  test("dump FILE then restore FILE into another database: the same rows, exit 0 both", async () => {
    const source = await database(true);
    await fill(source.sql);
    const file = join(scratch, "cli.dump.gz");
    const dump = await runScript("database.ts", ["dump", file], { env: { DATABASE_URL: source.url } });
    expect(dump.stderr).toBe("");
    expect(dump.code).toBe(0);
    expect(dump.stdout).toMatch(/^dumped \d+ rows of \d+ tables \(schema at migration \d+\) to .* in [\d.]+ s\n$/);

    const target = await database(false);
    const restore = await runScript("database.ts", ["restore", file], { env: { DATABASE_URL: target.url } });
    expect(restore.stderr).toBe("");
    expect(restore.code).toBe(0);
    expect(restore.stdout).toStartWith("restored ");
    expect(await everyRow(target.sql)).toEqual(await everyRow(source.sql));

    const again = await runScript("database.ts", ["restore", file], { env: { DATABASE_URL: target.url } });
    expect(again.code).toBe(1);
    expect(again.stderr.trim().split("\n")).toHaveLength(1);
    expect(again.stderr).toContain("already holds data");
  });

  test("dump - writes to stdout and restore - reads stdin, with the summary on stderr and stdout", async () => {
    const source = await database(true);
    await fill(source.sql);
    const run = (args: string[], url: string, stdin?: Blob) =>
      Bun.spawn([process.execPath, join(PROJECT_DIR, "database.ts"), ...args], {
        env: cleanEnv({ DATABASE_URL: url }),
        stdin: stdin ?? "ignore",
        stdout: "pipe",
        stderr: "pipe",
      });
    const dump = run(["dump", "-"], source.url);
    const [bytes, dumpErr, dumpCode] = await Promise.all([new Response(dump.stdout).arrayBuffer(), new Response(dump.stderr).text(), dump.exited]);
    expect(dumpCode).toBe(0);
    expect(dumpErr).toMatch(/^dumped \d+ rows .* to standard output/);
    expect(gunzipSync(new Uint8Array(bytes)).toString("utf8")).toStartWith('{"format":"cotacao-dump"');

    const target = await database(false);
    const restore = run(["restore", "-"], target.url, new Blob([bytes]));
    const [out, err, code] = await Promise.all([new Response(restore.stdout).text(), new Response(restore.stderr).text(), restore.exited]);
    expect(err).toBe("");
    expect(code).toBe(0);
    expect(out).toContain("from standard input");
    expect(await everyRow(target.sql)).toEqual(await everyRow(source.sql));
  });

  test("restore of a missing file and dump without a FILE are bad usage, exit 2", async () => {
    const missing = await runScript("database.ts", ["restore", join(scratch, "nope.gz")], { env: { DATABASE_URL: "postgres://u@127.0.0.1:1/x" } });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("no such file");
    const noFile = await runScript("database.ts", ["dump"], { env: { DATABASE_URL: "postgres://u@127.0.0.1:1/x" } });
    expect(noFile.code).toBe(2);
    expect(noFile.stderr).toContain("no FILE given");
  });
});
