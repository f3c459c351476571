import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { cp, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { DEFAULT_DATA_DIR, loadDatabaseConfig, maskUrl } from "../lib/connect.ts";
import { connectUrl, type Sql } from "../lib/pool.ts";
import { CotacaoError, DatabaseError, describeError } from "../lib/errors.ts";
import { FEED_CHANNEL } from "../lib/feed.ts";
import { migrate, migrationStatus, readMigrations, SQL_DIR } from "../lib/migrations.ts";
import { PROJECT_DIR } from "../lib/project.ts";
import {
  latestQuote,
  loadDailyRollup,
  loadDailySeries,
  newestStored,
  refreshRollups,
} from "../lib/views.ts";
import {
  backfillDoneThrough,
  finishRun,
  recordFailedRun,
  saveQuotes,
  startRun,
  withPipelineLock,
} from "../database.ts";
import { createTestDatabase, dropTestDatabase, makeTempDir, useTestDatabase } from "./support/database.ts";
import { sampleQuote } from "./support/quotes.ts";
import { useTestTimeout } from "./support/timeout.ts";

useTestTimeout();

const quote = sampleQuote;

async function countQuotes(sql: Sql): Promise<number> {
  const [row] = await sql<{ n: number }[]>`select count(*)::int as n from quotes`;
  return row?.n ?? -1;
}

describe("loadDatabaseConfig()", () => {
  test("uses the embedded server in the project's .data/postgres when nothing is set", () => {
    expect(loadDatabaseConfig({})).toEqual({ databaseUrl: undefined, dataDir: join(PROJECT_DIR, ".data", "postgres") });
    expect(DEFAULT_DATA_DIR).toBe(join(PROJECT_DIR, ".data", "postgres"));
  });

  test("treats empty variables as unset", () => {
    expect(loadDatabaseConfig({ DATABASE_URL: " ", COTACAO_DATA_DIR: "" })).toEqual({
      databaseUrl: undefined,
      dataDir: DEFAULT_DATA_DIR,
    });
  });

  test("resolves a relative COTACAO_DATA_DIR against the project, not the working directory", () => {
    expect(loadDatabaseConfig({ COTACAO_DATA_DIR: "var/pg" }).dataDir).toBe(join(PROJECT_DIR, "var", "pg"));
    expect(loadDatabaseConfig({ COTACAO_DATA_DIR: "/srv/pg" }).dataDir).toBe("/srv/pg");
  });

  test("accepts postgres:// and postgresql:// URLs", () => {
    expect(loadDatabaseConfig({ DATABASE_URL: "postgres://u:p@db:5433/x" }).databaseUrl).toBe("postgres://u:p@db:5433/x");
    expect(loadDatabaseConfig({ DATABASE_URL: "postgresql:///x?host=/run/pg" }).databaseUrl).toBe("postgresql:///x?host=/run/pg");
  });

  test("refuses another scheme with one line that names the variable and hides the password", () => {
    let error: unknown;
    try {
      loadDatabaseConfig({ DATABASE_URL: "mysql://root:hunter2@db/x" });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(CotacaoError);
    expect((error as CotacaoError).code).toBe("CONFIG");
    expect((error as CotacaoError).exitCode).toBe(2);
    expect((error as Error).message).toContain("DATABASE_URL");
    expect((error as Error).message).not.toContain("hunter2");
    expect((error as Error).message).not.toContain("\n");
  });
});

describe("maskUrl()", () => {
  test("replaces the password and keeps the rest", () => {
    expect(maskUrl("postgres://app:s3cr%40t@db.example:5432/quotes?sslmode=require")).toBe(
      "postgres://app:***@db.example:5432/quotes?sslmode=require",
    );
  });

  test("masks a password holding /, #, ? or @ entirely, parsable URL or not", () => {
    for (const password of ["pa/ss", "pa#ss", "pa?ss", "p@ss", "a/b#c?d@e", "123/abc"]) {
      const masked = maskUrl(`postgres://app:${password}@db.example:5432/quotes`);
      expect(masked).toBe("postgres://app:***@db.example:5432/quotes");
    }
    expect(maskUrl("postgres://app:p@ss w/rd@db:99999/x")).toBe("postgres://app:***@db:99999/x");
    expect(maskUrl("https://user:t0k/en@api.example/json")).toBe("https://user:***@api.example/json");
  });

  test("leaves URLs without a password alone", () => {
    expect(maskUrl("postgresql://cotacao@localhost/cotacao?host=/tmp/pg")).toBe(
      "postgresql://cotacao@localhost/cotacao?host=/tmp/pg",
    );
  });
});

describe("connectUrl()", () => {
  test("a server that accepts the connection and never answers fails after the connect timeout", async () => {
    const silent = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const sql = connectUrl(`postgres://cotacao@127.0.0.1:${silent.port}/cotacao`, { max: 1, connectTimeoutSeconds: 1 });
    try {
      const began = performance.now();
      const error = await sql`select 1`.catch((caught: unknown) => caught);
      const seconds = (performance.now() - began) / 1000;
      expect((error as { code?: string }).code).toBe("CONNECT_TIMEOUT");
      expect(describeError(error, "connect")).toEqual({
        line: expect.stringContaining("Cannot connect: PostgreSQL did not answer within the connect timeout") as unknown as string,
        exitCode: 1,
      });
      expect(seconds).toBeGreaterThanOrEqual(0.9);
      expect(seconds).toBeLessThan(5);
    } finally {
      await sql.end({ timeout: 1 });
      silent.stop(true);
    }
  });

  test("a server that is down is named, host and port, as out of reach, with what to try; no pipeline wording, no password", async () => {
    const closed = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const port = closed.port;
    closed.stop(true);
    const sql = connectUrl(`postgres://app:s3cret@127.0.0.1:${port}/cotacao`, { max: 1 });
    try {
      const error = await sql`select 1`.catch((caught: unknown) => caught);
      const { line, exitCode } = describeError(error, "check");
      expect(line).toStartWith(`Cannot check: PostgreSQL at 127.0.0.1:${port} cannot be reached (ECONNREFUSED); check that the server is running`);
      expect(line).toContain("DATABASE_URL");
      expect(line).not.toContain("committed");
      expect(line).not.toContain("s3cret");
      expect(exitCode).toBe(1);
      // A writer midway (the pipeline) lost its server: it is told that what it committed stays stored.
      expect(describeError(error, "complete the run", { writing: true }).line).toStartWith(`Cannot complete the run: lost the connection to PostgreSQL at 127.0.0.1:${port} (ECONNREFUSED); what was committed before stays stored`);
    } finally {
      await sql.end({ timeout: 1 });
    }
  });

  test("a connection lost midway names the server; only a writer is told that what it committed stays stored", () => {
    // The shape of postgres.js's own connection errors (Errors.connection).
    const lost = Object.assign(new Error("write CONNECTION_CLOSED db.example:5432"), { code: "CONNECTION_CLOSED", errno: "CONNECTION_CLOSED", address: "db.example", port: 5432 });
    const reader = describeError(lost, "check").line;
    expect(reader).toBe("Cannot check: lost the connection to PostgreSQL at db.example:5432 (CONNECTION_CLOSED); check the server (bun database.ts status) and try again");
    const writer = describeError(lost, "complete the run", { writing: true }).line;
    expect(writer).toContain("what was committed before stays stored");
  });

  test("waits 10 s for a connection by default", async () => {
    const sql = connectUrl("postgres://cotacao@127.0.0.1:1/cotacao");
    expect(sql.options.connect_timeout).toBe(10);
    await sql.end();
  });
});

describe("migrate()", () => {
  let url: string;
  let sql: Sql;
  beforeAll(async () => {
    url = await createTestDatabase({ migrated: false });
    sql = connectUrl(url);
  });
  afterAll(async () => {
    await sql.end({ timeout: 5 });
    await dropTestDatabase(url);
  });

  test("applies every migration to an empty database and records name, checksum and time", async () => {
    const files = readMigrations();
    const result = await migrate(sql);
    expect(result.applied).toEqual(files.map((file) => file.name));
    const rows = await sql<{ version: number; name: string; checksum: string; applied_at: Date }[]>`
      select version, name, checksum, applied_at from schema_migrations order by version`;
    expect(rows.map((row) => [row.version, row.name, row.checksum])).toEqual(
      files.map((file) => [file.version, file.name, file.checksum]),
    );
    expect(rows[0]?.applied_at).toBeInstanceOf(Date);
    const tables = await sql<{ name: string }[]>`
      select table_name as name from information_schema.tables
      where table_schema = 'public' and table_name in ('quotes', 'pipeline_runs')`;
    expect(tables.map((table) => table.name).sort()).toEqual(["pipeline_runs", "quotes"]);
  });

  test("is a no-op when the schema is current", async () => {
    const before = await sql`select * from schema_migrations order by version`;
    expect(await migrate(sql)).toEqual({ applied: [], current: readMigrations().length });
    expect(await sql`select * from schema_migrations order by version`).toEqual(before);
    expect((await migrationStatus(sql)).pending).toEqual([]);
  });
});

describe("migrate() under concurrency and misuse", () => {
  const scratch: string[] = [];
  afterAll(async () => {
    for (const dir of scratch) await rm(dir, { recursive: true, force: true });
  });

  async function withFreshDatabase(fn: (url: string) => Promise<void>): Promise<void> {
    const url = await createTestDatabase({ migrated: false });
    try {
      await fn(url);
    } finally {
      await dropTestDatabase(url);
    }
  }

  async function copyOfSqlDir(): Promise<string> {
    const dir = await makeTempDir("cotacao-sql-");
    scratch.push(dir);
    await cp(SQL_DIR, dir, { recursive: true });
    return dir;
  }

  test("sql/008 reads the runs recorded before it: a lock timeout was a skip, a fetch failure of some pairs was theirs only", async () => {
    await withFreshDatabase(async (url) => {
      const dir = await copyOfSqlDir();
      // The schema as it was before 008: 008 and every migration after it removed.
      for (const { name, version } of readMigrations()) if (version >= 8) await rm(join(dir, name));
      const sql = connectUrl(url, { max: 1 });
      try {
        await migrate(sql, dir);
        const lock = "Cannot run the pipeline: another run has held the lock for over 30 s; let it finish, or raise --lock-timeout";
        await sql`
          insert into pipeline_runs (pairs, status, finished_at, error, failed_step, failed_pairs) values
            ('{USD-BRL}', 'failed', now(), ${lock}, 'start', '{}'),
            ('{USD-BRL,XXX-BRL}', 'failed', now(), 'Cannot fetch the latest XXX-BRL quotes: unknown pair "XXX-BRL"', 'fetch', '{XXX-BRL}'),
            ('{USD-BRL,XXX-BRL}', 'failed', now(), 'Cannot fetch XXX-BRL; the analysis step failed (the quotes are stored): boom', 'fetch', '{XXX-BRL}'),
            ('{USD-BRL}', 'failed', now(), 'Cannot fetch the latest quotes: HTTP 522', 'fetch', '{}'),
            ('{USD-BRL}', 'succeeded', now(), null, null, '{}')`;
        await migrate(sql);
        const rows = await sql`
          select status, failed_step, failed_pairs_only,
                 pipeline_run_status_for(status, failed_pairs, failed_pairs_only, 'USD-BRL') as usd,
                 pipeline_run_status_for(status, failed_pairs, failed_pairs_only, 'XXX-BRL') as xxx
          from pipeline_runs order by id`;
        expect([...rows]).toEqual([
          { status: "skipped", failed_step: null, failed_pairs_only: false, usd: "skipped", xxx: "skipped" },
          { status: "failed", failed_step: "fetch", failed_pairs_only: true, usd: "succeeded", xxx: "failed" },
          { status: "failed", failed_step: "fetch", failed_pairs_only: false, usd: "failed", xxx: "failed" },
          { status: "failed", failed_step: "fetch", failed_pairs_only: false, usd: "failed", xxx: "failed" },
          { status: "succeeded", failed_step: null, failed_pairs_only: false, usd: "succeeded", xxx: "succeeded" },
        ]);
      } finally {
        await sql.end({ timeout: 5 });
      }
    });
  });

  test("two migrators at once: one applies the files, the other waits and applies nothing", async () => {
    await withFreshDatabase(async (url) => {
      const pools = [connectUrl(url), connectUrl(url)];
      try {
        const results = await Promise.all(pools.map((pool) => migrate(pool)));
        const applied = results.map((result) => result.applied.length).sort();
        expect(applied).toEqual([0, readMigrations().length]);
        const [row] = await pools[0]!<{ n: number }[]>`select count(*)::int as n from schema_migrations`;
        expect(row?.n).toBe(readMigrations().length);
      } finally {
        await Promise.all(pools.map((pool) => pool.end({ timeout: 5 })));
      }
    });
  });

  test("refuses a migration whose file changed after it was applied, and changes nothing", async () => {
    const dir = await copyOfSqlDir();
    await withFreshDatabase(async (url) => {
      const sql = connectUrl(url);
      try {
        await migrate(sql, dir);
        const file = join(dir, readMigrations(dir)[0]!.name);
        await writeFile(file, `${await readFile(file, "utf8")}\ncreate table sneaky (id int);\n`);
        const error = await migrate(sql, dir).catch((caught: unknown) => caught);
        expect(error).toBeInstanceOf(DatabaseError);
        expect((error as Error).message).toContain("was changed after it was applied");
        const [sneaky] = await sql<{ present: boolean }[]>`select to_regclass('sneaky') is not null as present`;
        expect(sneaky?.present).toBe(false);
      } finally {
        await sql.end({ timeout: 5 });
      }
    });
  });

  test("refuses a gap in the numbers", async () => {
    const dir = await copyOfSqlDir();
    // One number skipped past the newest migration, however many there are.
    const skipped = String(readMigrations(dir).length + 2).padStart(3, "0");
    await writeFile(join(dir, `${skipped}_far_ahead.sql`), "select 1;");
    expect(() => readMigrations(dir)).toThrow(new RegExp(`expected migration \\d{3} but found "${skipped}_far_ahead.sql"`));
  });

  test("refuses a file that is not named NNN_name.sql", async () => {
    const dir = await copyOfSqlDir();
    await writeFile(join(dir, "add-index.sql"), "select 1;");
    expect(() => readMigrations(dir)).toThrow(/"add-index.sql" .* is not named NNN_name.sql/);
  });

  test("refuses a database that has migrations this copy of cotacao does not know", async () => {
    const dir = await copyOfSqlDir();
    await withFreshDatabase(async (url) => {
      const sql = connectUrl(url);
      try {
        await migrate(sql);
        await sql`insert into schema_migrations (version, name, checksum) values (999, '999_future.sql', 'x')`;
        await expect(migrate(sql, dir)).rejects.toThrow(/has migration "999_future.sql".* update cotacao/);
      } finally {
        await sql.end({ timeout: 5 });
      }
    });
  });

  test("rolls back every migration of a run when one of them fails", async () => {
    const dir = await copyOfSqlDir();
    const next = String(readMigrations(dir).length + 1).padStart(3, "0");
    await writeFile(join(dir, `${next}_broken.sql`), "create table half_done (id int);\nselect * from no_such_table;");
    await withFreshDatabase(async (url) => {
      const sql = connectUrl(url);
      try {
        await expect(migrate(sql, dir)).rejects.toThrow(/no_such_table/);
        const [state] = await sql`
          select to_regclass('quotes') is not null as quotes, to_regclass('half_done') is not null as half_done,
                 to_regclass('schema_migrations') is not null as migrations`;
        expect(state).toEqual({ quotes: false, half_done: false, migrations: false });
      } finally {
        await sql.end({ timeout: 5 });
      }
    });
  });
});

describe("saveQuotes()", () => {
  const db = useTestDatabase();

  test("stores decimals exactly as received, with no float on the way", async () => {
    const exact = [
      quote({ ts: new Date("2024-01-01T12:00:00Z"), bid: "5.7008", ask: "5.70" }),
      quote({ ts: new Date("2024-01-02T12:00:00Z"), bid: "123456789.123456789012345678", ask: "0.00000001" }),
      quote({ pair: "BTC-BRL", ts: new Date("2024-01-02T12:00:00Z"), bid: "351234.5", ask: "351300", varBid: null }),
    ];
    expect(await saveQuotes(db.sql, exact)).toEqual({ inserted: 3, updated: 0, unchanged: 0 });
    const rows = await db.sql`
      select pair, bid::text, ask::text, var_bid::text from quotes order by pair, ts`;
    expect([...rows]).toEqual([
      { pair: "BTC-BRL", bid: "351234.5", ask: "351300", var_bid: null },
      { pair: "USD-BRL", bid: "5.7008", ask: "5.70", var_bid: "-0.0785" },
      { pair: "USD-BRL", bid: "123456789.123456789012345678", ask: "0.00000001", var_bid: "-0.0785" },
    ]);
  });

  test("the same batch twice: the second inserts nothing and changes nothing", async () => {
    const batch = [1, 2, 3].map((day) => quote({ pair: "EUR-BRL", ts: new Date(`2024-03-0${day}T15:00:00Z`) }));
    expect(await saveQuotes(db.sql, batch)).toEqual({ inserted: 3, updated: 0, unchanged: 0 });
    const before = await db.sql`select * from quotes where pair = 'EUR-BRL' order by ts`;
    expect(await saveQuotes(db.sql, batch)).toEqual({ inserted: 0, updated: 0, unchanged: 3 });
    expect(await db.sql`select * from quotes where pair = 'EUR-BRL' order by ts`).toEqual(before);
  });

  test("a corrected value updates the row and keeps the replaced one; the same number written differently does not", async () => {
    const ts = new Date("2024-04-01T15:00:00Z");
    await saveQuotes(db.sql, [quote({ pair: "GBP-BRL", ts, bid: "6.10" })]);
    expect(await saveQuotes(db.sql, [quote({ pair: "GBP-BRL", ts, bid: "6.1" })])).toEqual({
      inserted: 0,
      updated: 0,
      unchanged: 1,
    });
    expect(await saveQuotes(db.sql, [quote({ pair: "GBP-BRL", ts, bid: "6.1234" })])).toEqual({
      inserted: 0,
      updated: 1,
      unchanged: 0,
    });
    expect((await latestQuote(db.sql, "GBP-BRL"))?.bid).toBe("6.1234");
    const revisions = await db.sql`select bid::text, source from quote_revisions where pair = 'GBP-BRL'`;
    expect([...revisions]).toEqual([{ bid: "6.10", source: "test" }]);
  });

  test("within one batch the last quote for a (pair, ts) wins", async () => {
    const ts = new Date("2024-05-01T15:00:00Z");
    const counts = await saveQuotes(db.sql, [quote({ pair: "JPY-BRL", ts, bid: "0.031" }), quote({ pair: "JPY-BRL", ts, bid: "0.032" })]);
    expect(counts).toEqual({ inserted: 1, updated: 0, unchanged: 0 });
    expect((await latestQuote(db.sql, "JPY-BRL"))?.bid).toBe("0.032");
  });

  test("a batch with one bad price stores nothing at all", async () => {
    const before = await countQuotes(db.sql);
    for (const bad of ["-1", "0", "NaN", "Infinity"]) {
      const batch = [
        quote({ pair: "CHF-BRL", ts: new Date("2024-06-01T15:00:00Z") }),
        quote({ pair: "CHF-BRL", ts: new Date("2024-06-02T15:00:00Z"), bid: bad }),
      ];
      await expect(saveQuotes(db.sql, batch)).rejects.toThrow();
    }
    expect(await countQuotes(db.sql)).toBe(before);
  });

  test("stores a 10,000-row batch in one call, and the second time inserts 0", async () => {
    const start = Date.UTC(2020, 0, 1);
    const batch = Array.from({ length: 10_000 }, (_, i) =>
      quote({ pair: "ARS-BRL", ts: new Date(start + i * 60_000), bid: `0.${String(10_000 + i).padStart(6, "0")}` }),
    );
    expect(await saveQuotes(db.sql, batch)).toEqual({ inserted: 10_000, updated: 0, unchanged: 0 });
    expect(await saveQuotes(db.sql, batch)).toEqual({ inserted: 0, updated: 0, unchanged: 10_000 });
    const [row] = await db.sql<{ n: number; first: string; last: string }[]>`
      select count(*)::int as n, min(bid)::text as first, max(bid)::text as last from quotes where pair = 'ARS-BRL'`;
    expect(row).toEqual({ n: 10_000, first: "0.010000", last: "0.019999" });
  });

  test("text with tabs, line breaks and backslashes arrives intact; a value that is no decimal is refused", async () => {
    const source = "odd\tsource\nwith \\N and \\ back\rslash";
    await saveQuotes(db.sql, [quote({ pair: "MXN-BRL", ts: new Date("2024-09-01T12:00:00Z"), source })]);
    const [row] = await db.sql<{ source: string }[]>`select source from quotes where pair = 'MXN-BRL'`;
    expect(row?.source).toBe(source);
    await expect(saveQuotes(db.sql, [quote({ pair: "MXN-BRL", bid: "5.1\t9" })])).rejects.toThrow(/numeric|extra data/);
  });

  test("an empty batch is a no-op", async () => {
    expect(await saveQuotes(db.sql, [])).toEqual({ inserted: 0, updated: 0, unchanged: 0 });
  });
});

describe("saveQuotes() options", () => {
  const db = useTestDatabase();

  test("records backfill progress with the quotes, never moving it backwards", async () => {
    const step = { pair: "USD-BRL", from: "2024-01-01", to: "2024-12-31" };
    expect(await backfillDoneThrough(db.sql, "USD-BRL", step.from, step.to)).toBeNull();
    await saveQuotes(db.sql, [quote({ ts: new Date("2024-03-28T20:00:00Z") })], { progress: { ...step, doneThrough: "2024-03-31" } });
    expect(await backfillDoneThrough(db.sql, "USD-BRL", step.from, step.to)).toBe("2024-03-31");
    await saveQuotes(db.sql, [], { progress: { ...step, doneThrough: "2024-02-29" } });
    expect(await backfillDoneThrough(db.sql, "USD-BRL", step.from, step.to)).toBe("2024-03-31");
  });

  test("a batch that fails records no progress", async () => {
    const step = { pair: "USD-BRL", from: "2023-01-01", to: "2023-12-31", doneThrough: "2023-06-30" };
    await expect(saveQuotes(db.sql, [quote({ bid: "-1" })], { progress: step })).rejects.toThrow();
    expect(await backfillDoneThrough(db.sql, "USD-BRL", step.from, step.to)).toBeNull();
  });

  test("notifies the quotes channel with each pair's newest timestamp, on commit", async () => {
    const listener = connectUrl(db.url, { max: 1 });
    const received: string[] = [];
    const subscription = await listener.listen(FEED_CHANNEL, (payload) => received.push(payload));
    try {
      await saveQuotes(
        db.sql,
        [
          quote({ pair: "CAD-BRL", ts: new Date("2024-07-01T12:00:00Z") }),
          quote({ pair: "CAD-BRL", ts: new Date("2024-07-02T12:00:00Z") }),
          quote({ pair: "AUD-BRL", ts: new Date("2024-07-01T12:00:00Z") }),
        ],
        { notify: true },
      );
      for (let waited = 0; received.length < 2 && waited < 5_000; waited += 10) await Bun.sleep(10);
      expect(received.map((payload) => JSON.parse(payload)).sort((a, b) => a.pair.localeCompare(b.pair))).toEqual([
        { kind: "quote", pair: "AUD-BRL", ts: "2024-07-01T12:00:00.000Z" },
        { kind: "quote", pair: "CAD-BRL", ts: "2024-07-02T12:00:00.000Z" },
      ]);
    } finally {
      await subscription.unlisten();
      await listener.end({ timeout: 5 });
    }
  });
});

describe("newestStored()", () => {
  const db = useTestDatabase();

  test("gives each pair's newest timestamp and leaves out pairs with no quotes", async () => {
    await saveQuotes(db.sql, [
      quote({ ts: new Date("2024-08-22T17:00:00Z") }),
      quote({ ts: new Date("2024-08-23T17:00:00Z") }),
      quote({ pair: "EUR-BRL", ts: new Date("2024-08-20T17:00:00Z") }),
    ]);
    const newest = await newestStored(db.sql, ["USD-BRL", "EUR-BRL", "JPY-BRL"]);
    expect([...newest.entries()]).toEqual([
      ["USD-BRL", new Date("2024-08-23T17:00:00Z")],
      ["EUR-BRL", new Date("2024-08-20T17:00:00Z")],
    ]);
  });
});

describe("pipeline runs", () => {
  const db = useTestDatabase();

  test("startRun() and finishRun() record a run's life", async () => {
    const id = await startRun(db.sql, ["USD-BRL"]);
    const [running] = await db.sql`select status, finished_at from pipeline_runs where id = ${id}`;
    expect(running).toEqual({ status: "running", finished_at: null });
    await finishRun(db.sql, id, { status: "failed", fetched: 3, inserted: 0, updated: 0, error: "boom" });
    const [done] = await db.sql`
      select status, rows_fetched, rows_inserted, rows_updated, error, finished_at is not null as finished
      from pipeline_runs where id = ${id}`;
    expect(done).toEqual({ status: "failed", rows_fetched: 3, rows_inserted: 0, rows_updated: 0, error: "boom", finished: true });
  });

  test("withPipelineLock() makes a second run wait, then gives up with LOCKED", async () => {
    const other = connectUrl(db.url);
    try {
      let release!: () => void;
      const held = new Promise<void>((resolve) => (release = resolve));
      let entered!: () => void;
      const inside = new Promise<void>((resolve) => (entered = resolve));
      const first = withPipelineLock(db.sql, 1_000, async () => {
        entered();
        await held;
        return "first";
      });
      await inside;
      const error = await withPipelineLock(other, 200, async () => "second").catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(DatabaseError);
      expect((error as DatabaseError).code).toBe("LOCKED");
      release();
      expect(await first).toBe("first");
      expect(await withPipelineLock(other, 200, async () => "third")).toBe("third");
    } finally {
      await other.end({ timeout: 5 });
    }
  });
});

describe("latestQuote()", () => {
  const db = useTestDatabase();

  test("returns the newest quote of the pair with its decimals as text", async () => {
    await saveQuotes(db.sql, [
      quote({ ts: new Date("2024-08-22T17:00:00Z"), bid: "5.4831" }),
      quote({ ts: new Date("2024-08-23T17:39:40Z"), bid: "5.5037" }),
      quote({ pair: "EUR-BRL", ts: new Date("2024-08-24T17:00:00Z"), bid: "6.1" }),
    ]);
    const latest = await latestQuote(db.sql, "USD-BRL");
    expect(latest).toEqual(quote({ ts: new Date("2024-08-23T17:39:40Z"), bid: "5.5037" }));
  });

  test("returns undefined for a pair with no quotes", async () => {
    expect(await latestQuote(db.sql, "XYZ-ABC")).toBeUndefined();
  });
});

describe("the quotes table", () => {
  const db = useTestDatabase();

  test("refuses non-positive prices and malformed pairs at the database too", async () => {
    const insert = (pair: string, bid: string) =>
      db.sql`insert into quotes (pair, ts, bid, ask, source) values (${pair}, now(), ${bid}::numeric, 1, 'test')`;
    await expect(insert("USD-BRL", "0")).rejects.toThrow(/check constraint/);
    await expect(insert("USD-BRL", "-5.1")).rejects.toThrow(/check constraint/);
    await expect(insert("USDBRL", "5.1")).rejects.toThrow(/check constraint/);
    await expect(insert("USD-BRL", "5.1")).resolves.toBeDefined();
  });
});

describe("the hourly and daily rollups (sql/006)", () => {
  const db = useTestDatabase();

  /** The rollups recomputed from scratch from quotes, to compare with what the triggers kept. */
  async function rollupsFromScratch(sql: Sql) {
    const hours = await sql`
      select pair, date_trunc('hour', ts, 'UTC') as hour, min(ts) as first_ts, (array_agg(bid order by ts))[1]::text as first_bid,
             min(bid)::text as min_bid, max(bid)::text as max_bid, max(ts) as last_ts, (array_agg(bid order by ts desc))[1]::text as last_bid,
             count(*)::int as quotes
      from quotes group by 1, 2 order by 1, 2`;
    const days = await sql`
      select pair, (ts at time zone 'America/Sao_Paulo')::date::text as day, min(ts) as first_ts, (array_agg(bid order by ts))[1]::text as first_bid,
             min(bid)::text as min_bid, max(bid)::text as max_bid, max(ts) as last_ts, (array_agg(bid order by ts desc))[1]::text as last_bid,
             count(*)::int as quotes
      from quotes group by 1, 2 order by 1, 2`;
    return { hours: [...hours], days: [...days] };
  }

  async function storedRollups(sql: Sql) {
    await refreshRollups(sql);
    const hours = await sql`
      select pair, hour, first_ts, first_bid::text, min_bid::text, max_bid::text, last_ts, last_bid::text, quotes
      from quote_hours order by 1, 2`;
    const days = await sql`
      select pair, day::text, first_ts, first_bid::text, min_bid::text, max_bid::text, last_ts, last_bid::text, quotes
      from quote_days order by 1, 2`;
    return { hours: [...hours], days: [...days] };
  }

  test("stay equal to the quotes through inserts, corrections, deletes and truncation, across São Paulo's DST changes", async () => {
    // 2018-11-04: São Paulo's clocks jumped from 00:00 to 01:00; 2019-02-16: back from 00:00 to 23:00.
    const starts = ["2018-11-03T20:00:00Z", "2019-02-16T20:00:00Z", "2024-08-23T12:00:00Z"];
    const batch = starts.flatMap((start, s) =>
      Array.from({ length: 60 }, (_, i) =>
        quote({ ts: new Date(Date.parse(start) + i * 397_000), bid: (5 + s / 10 + ((i * 37) % 11) / 1000).toFixed(4) }),
      ),
    );
    await saveQuotes(db.sql, batch);
    expect(await storedRollups(db.sql)).toEqual(await rollupsFromScratch(db.sql));
    // Overlapping batches are merged: new rows, corrected values, and another pair.
    await saveQuotes(db.sql, [
      quote({ ts: batch[5]!.ts, bid: "9.9999" }),
      quote({ ts: batch[59]!.ts, bid: "0.0001" }),
      quote({ ts: new Date("2019-02-17T02:30:00Z"), bid: "5.5555" }),
      quote({ pair: "EUR-BRL", ts: batch[0]!.ts, bid: "6.0000" }),
    ]);
    expect(await storedRollups(db.sql)).toEqual(await rollupsFromScratch(db.sql));
    await db.sql`delete from quotes where ts >= ${starts[1]!} and ts < '2019-02-17T00:00:00Z'`;
    await db.sql`update quotes set bid = bid + 1 where pair = 'EUR-BRL'`;
    expect(await storedRollups(db.sql)).toEqual(await rollupsFromScratch(db.sql));
    await db.sql`truncate quotes cascade`;
    expect(await storedRollups(db.sql)).toEqual({ hours: [], days: [] });
  });

  test("a write only notes its span, one row per pair; the first read builds the rollups, and the next finds nothing to do", async () => {
    await saveQuotes(db.sql, [
      quote({ pair: "AUD-BRL", ts: new Date("2024-08-21T12:00:00Z") }),
      quote({ pair: "AUD-BRL", ts: new Date("2024-08-23T12:00:00Z") }),
      quote({ pair: "CAD-BRL", ts: new Date("2024-08-22T12:00:00Z") }),
    ]);
    const pending = await db.sql<{ pair: string; from_ts: Date; to_ts: Date }[]>`
      select pair, from_ts, to_ts from quote_rollups_pending where pair in ('AUD-BRL', 'CAD-BRL') order by pair`;
    expect(pending.map((row) => [row.pair, row.from_ts.toISOString(), row.to_ts.toISOString()])).toEqual([
      ["AUD-BRL", "2024-08-21T12:00:00.000Z", "2024-08-23T12:00:00.000Z"],
      ["CAD-BRL", "2024-08-22T12:00:00.000Z", "2024-08-22T12:00:00.000Z"],
    ]);
    const [before] = await db.sql<{ n: number }[]>`select count(*)::int as n from quote_days where pair in ('AUD-BRL', 'CAD-BRL')`;
    expect(before?.n).toBe(0);
    expect(await refreshRollups(db.sql)).toBeGreaterThanOrEqual(2);
    const days = await db.sql<{ pair: string; day: string }[]>`select pair, day::text from quote_days where pair in ('AUD-BRL', 'CAD-BRL') order by 1, 2`;
    expect(days.map((row) => `${row.pair} ${row.day}`)).toEqual(["AUD-BRL 2024-08-21", "AUD-BRL 2024-08-23", "CAD-BRL 2024-08-22"]);
    expect(await refreshRollups(db.sql)).toBe(0);
  });

  test("a day's last bid is the rule's close, day for day (loadDailyRollup() equals loadDailySeries())", async () => {
    await saveQuotes(db.sql, [
      quote({ pair: "CHF-BRL", ts: new Date("2018-11-04T02:59:00Z"), bid: "3.7000" }), // 23:59 on the 3rd in São Paulo
      quote({ pair: "CHF-BRL", ts: new Date("2018-11-04T03:00:00Z"), bid: "3.7100" }), // 01:00 on the 4th (no midnight that day)
      quote({ pair: "CHF-BRL", ts: new Date("2019-02-17T01:30:00Z"), bid: "3.7200" }), // 23:30 on the 16th, the second time round
      quote({ pair: "CHF-BRL", ts: new Date("2019-02-17T03:30:00Z"), bid: "3.7300" }),
      quote({ pair: "CHF-BRL", ts: new Date("2024-08-23T23:59:00Z"), bid: "5.5037" }),
      quote({ pair: "CHF-BRL", ts: new Date("2024-08-24T02:59:59Z"), bid: "5.5038" }),
    ]);
    const rule = await loadDailySeries(db.sql, "CHF-BRL");
    const rollup = await loadDailyRollup(db.sql, "CHF-BRL");
    expect(rollup.dates).toEqual(["2018-11-03", "2018-11-04", "2019-02-16", "2019-02-17", "2024-08-23"]);
    expect({ dates: rollup.dates, closes: rollup.closeTexts, ats: rollup.ats, days: [...rollup.days] }).toEqual({
      dates: rule.dates,
      closes: rule.closeTexts,
      ats: rule.ats,
      days: [...rule.days],
    });
    // Each day's start is its first instant in São Paulo: 01:00 local on 2018-11-04.
    expect(new Date(rollup.dayStarts[1]! * 1000).toISOString()).toBe("2018-11-04T03:00:00.000Z");
    expect(new Date(rollup.dayStarts[4]! * 1000).toISOString()).toBe("2024-08-23T03:00:00.000Z");
  });
});

describe("run notifications", () => {
  const db = useTestDatabase();

  test("finishRun() and recordFailedRun() notify the quotes channel with the run's id and status", async () => {
    const listener = connectUrl(db.url, { max: 1 });
    const received: unknown[] = [];
    const subscription = await listener.listen(FEED_CHANNEL, (payload) => received.push(JSON.parse(payload)));
    try {
      const id = await startRun(db.sql, ["USD-BRL"]);
      await finishRun(db.sql, id, { status: "succeeded", fetched: 1, inserted: 1, updated: 0 });
      const failed = await recordFailedRun(db.sql, ["USD-BRL"], "Cannot run the pipeline: locked");
      for (let waited = 0; received.length < 2 && waited < 5_000; waited += 10) await Bun.sleep(10);
      expect(received).toEqual([
        { kind: "run", id, status: "succeeded" },
        { kind: "run", id: failed, status: "failed" },
      ]);
    } finally {
      await subscription.unlisten();
      await listener.end({ timeout: 5 });
    }
  });
});
