import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { recordFailedRun, saveQuotes, startRun } from "../database.ts";
import { startEmbeddedServer } from "../lib/embedded_server.ts";
import { describeError } from "../lib/errors.ts";
import { recordGap } from "../lib/gaps.ts";
import { connectUrl, type Sql } from "../lib/pool.ts";
import { readSnapshot } from "../lib/views.ts";
import { connectWire, isWireUnsupported, wireTarget, type WireConnection } from "../lib/pg_wire.ts";
import { parseArray, serialize } from "../lib/pg_values.ts";
import { useTempDirs, useTestDatabase } from "./support/database.ts";
import { messageRecorder } from "./support/message_recorder.ts";
import { sampleQuote } from "./support/quotes.ts";
import { useTestTimeout } from "./support/timeout.ts";

useTestTimeout();

const db = useTestDatabase();

/** Connections a test opened, closed after it whatever happens. */
const opened: WireConnection[] = [];
async function open(url: string, options: Parameters<typeof connectWire>[1] = {}): Promise<WireConnection> {
  const connection = await connectWire(url, options);
  opened.push(connection);
  return connection;
}
afterAll(async () => {
  await Promise.all(opened.map((connection) => connection.close()));
});

/** The error a promise rejects with (fails the test if it resolves). */
async function rejection(promise: Promise<unknown>): Promise<Error & { code?: unknown }> {
  try {
    await promise;
  } catch (error) {
    return error as Error & { code?: unknown };
  }
  throw new Error("expected a rejection");
}

/** A port on 127.0.0.1 that nothing listens on (it was free a moment ago). */
function closedPort(): number {
  const listener = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const { port } = listener;
  listener.stop(true);
  return port;
}

describe("URLs", () => {
  test("a TCP URL: host, port, user, password and database, decoded", () => {
    const target = wireTarget("postgres://me:p%40ss@127.0.0.1:6543/quotes", {});
    expect(target).toMatchObject({ path: null, host: "127.0.0.1", port: 6543, user: "me", password: "p@ss", database: "quotes", parameters: {} });
  });

  test("the embedded server's libpq-style URL names a socket in the ?host= folder", () => {
    const target = wireTarget("postgresql://cotacao@localhost/cotacao?host=/tmp/cotacao%20pg/run", {});
    expect(target).toMatchObject({ path: "/tmp/cotacao pg/run/.s.PGSQL.5432", user: "cotacao", database: "cotacao", parameters: {} });
    expect(wireTarget("postgresql://cotacao@localhost:5433/cotacao?host=/run/pg", {}).path).toBe("/run/pg/.s.PGSQL.5433");
  });

  test("a URL that asks for TLS says to use postgres.js instead; sslmode=disable does not", async () => {
    for (const mode of ["require", "verify-ca", "verify-full", "prefer"]) {
      expect(isWireUnsupported(await rejection(connectWire(`postgres://u:secret@127.0.0.1:1/db?sslmode=${mode}`)))).toBe(true);
    }
    expect(wireTarget("postgres://u@127.0.0.1/db?sslmode=disable", {}).path).toBeNull();
  });

  test("parameters serialize as postgres.js sends them; arrays as quoted, escaped literals", () => {
    expect(serialize(["USD-BRL", 'a"b', "c\\d", "x,y", null])).toBe('{"USD-BRL","a\\"b","c\\\\d","x,y",NULL}');
    expect(serialize([[1, 2], [3, 4]])).toBe('{{"1","2"},{"3","4"}}');
    expect(serialize(new Date("2024-08-23T17:39:40Z"))).toBe("2024-08-23T17:39:40.000Z");
    expect([serialize(true), serialize(false), serialize(null), serialize(3.5)]).toEqual(["t", "f", null, "3.5"]);
    expect(parseArray('{a,"b c","d\\"e",NULL}', (text) => text)).toEqual(["a", "b c", 'd"e', null]);
  });
});

describe("queries against the test server", () => {
  test("a query, the monitor's included, goes in one write and one round trip: no Flush to wait on", async () => {
    const recorder = messageRecorder(db.url);
    const wire = await connectWire(recorder.url);
    try {
      const [row] = await wire.sql<{ t: string; n: number; z: string | null }[]>`select ${"a'b"}::text as t, ${41}::int + 1 as n, ${null}::text as z`;
      expect(row).toEqual({ t: "a'b", n: 42, z: null });
      expect(recorder.sent.filter((type) => type !== "X")).toEqual(["P", "B", "D", "E", "S"]);
      recorder.sent.length = 0;
      await readSnapshot(wire.sql, ["USD-BRL"], 20);
      expect(recorder.sent).toEqual(["P", "B", "D", "E", "S"]);
    } finally {
      await wire.close();
      recorder.stop();
    }
  });

  // Every type the client decodes, with a NULL of each, as postgres.js (its defaults) reads them.
  const TYPES_QUERY = `
    select true as t, false as f, 7::int2 as i2, 70000::int4 as i4, 9007199254740993::int8 as i8, 26::oid as o,
      1.5::float4 as f4, 0.1::float8 as f8, 'NaN'::float8 as nan, 12345678901234567890.123456789::numeric as n,
      '{"a": [1, "x"], "b": null}'::json as j, '{"k": {"nested": true}}'::jsonb as jb,
      '2024-08-23 17:39:40.123456+00'::timestamptz as tz, '2024-08-23 17:39:40'::timestamp as ts, '2024-08-23'::date as d,
      'olá, "mundo"'::text as txt, 'v'::varchar as vc, 'nm'::name as nm, 'b'::char(3) as bp, '12:30'::time as tm,
      '00000000-0000-0000-0000-000000000001'::uuid as u, '\\x00ff'::bytea as by,
      array['a', 'b c', 'd"e', 'f\\g', '']::text[] as ta, array[1, 2, 3]::int4[] as ia, array[[1, 2], [3, 4]]::int2[] as i2a,
      array[10000000000]::int8[] as i8a, array[true, false] as ba, array['2024-08-23T10:00:00Z'::timestamptz] as tza,
      array['{"x":1}'::jsonb] as jba, array[1.5]::numeric[] as na, '{}'::text[] as empty,
      null::int4 as null_int, null::text as null_text, null::jsonb as null_json, null::timestamptz as null_tz, null::bool as null_bool`;

  test("every decoded type equals postgres.js's answer to the same query", async () => {
    const wire = await open(db.url);
    const [ours] = await wire.query(TYPES_QUERY);
    const [theirs] = await db.sql.unsafe(TYPES_QUERY);
    expect(ours).toEqual({ ...theirs });
    // And they are the JS types the monitor relies on, not text.
    expect(ours).toMatchObject({ t: true, i4: 70000, i8: "9007199254740993", n: "12345678901234567890.123456789", j: { a: [1, "x"], b: null }, null_int: null });
    expect((ours!["tz"] as Date).toISOString()).toBe("2024-08-23T17:39:40.123Z");
    expect(ours!["ta"]).toEqual(["a", "b c", 'd"e', "f\\g", ""]);
  });

  test("parameters go as text and the server infers their types; a JS array reaches a text[] intact", async () => {
    const wire = await open(db.url);
    const rows = await wire.sql<{ n: number; s: string; isNull: boolean; list: string[]; at: Date }[]>`
      select ${41}::int + 1 as n, ${"ok"} || '!' as s, ${null}::text is null as "isNull",
             ${["USD-BRL", 'quo"te', "back\\slash", "com,ma"]}::text[] as list, ${new Date("2024-01-02T03:04:05Z")}::timestamptz as at`;
    expect<unknown>(rows).toEqual([{ n: 42, s: "ok!", isNull: true, list: ["USD-BRL", 'quo"te', "back\\slash", "com,ma"], at: new Date("2024-01-02T03:04:05Z") }]);
    expect(rows.command).toBe("SELECT");
    expect(rows.count).toBe(1);
  });

  test("readSnapshot through the lean client equals readSnapshot through postgres.js, on seeded data", async () => {
    const quotes = ["USD-BRL", "EUR-BRL"].flatMap((pair, p) =>
      Array.from({ length: 12 }, (_, i) =>
        sampleQuote({ pair, ts: new Date(Date.UTC(2024, 7, 12 + i, 15 + p, 30)), bid: (5.1 + i / 100 + p).toFixed(4), ask: (5.2 + i / 100 + p).toFixed(4) }),
      ),
    );
    await saveQuotes(db.sql, quotes);
    await startRun(db.sql, ["USD-BRL", "EUR-BRL"]);
    await recordFailedRun(db.sql, ["EUR-BRL"], "AwesomeAPI answered 503");
    await recordGap(db.sql, { pair: "USD-BRL", from: "2024-06-01", to: "2024-06-03" });
    await db.sql`
      insert into alerts (pair, kind, direction, status, started_at, last_seen_at, fingerprint)
      values ('USD-BRL', 'deviation', 'up', 'firing', ${new Date(Date.UTC(2024, 7, 23, 15, 30))}, now(), 'test-up')`;
    const wire = await open(db.url);
    const lean = wire.sql as unknown as Sql;
    for (const [pairs, days] of [[null, 5], [["USD-BRL"], 3], [["EUR-BRL", "XXX-BRL"], 30]] as const) {
      const ours = await readSnapshot(lean, pairs, days);
      expect(ours).toEqual(await readSnapshot(db.sql, pairs, days));
      expect(ours.length).toBeGreaterThan(0);
    }
    const [usd] = await readSnapshot(lean, ["USD-BRL"], 3);
    expect(usd?.alerts).toEqual([{ kind: "deviation", direction: "up", startedAt: new Date(Date.UTC(2024, 7, 23, 15, 30)) }]);
    expect(usd?.closes.length).toBe(4);
    expect(usd?.gaps).toEqual([{ pair: "USD-BRL", from: "2024-06-01", to: "2024-06-03" }]);
  });

  test("an SQL error rejects with its SQLSTATE and message, and the connection goes on", async () => {
    const wire = await open(db.url);
    const error = await rejection(wire.query("select * from no_such_table"));
    expect(error).toMatchObject({ name: "PostgresError", code: "42P01", severity: "ERROR", message: 'relation "no_such_table" does not exist' });
    expect(describeError(error, "check").line).toBe('Cannot check: relation "no_such_table" does not exist');
    expect<unknown>(await wire.query("select 1 as one")).toEqual([{ one: 1 }]);
  });

  test("queries sent together are answered in order", async () => {
    const wire = await open(db.url);
    const answers = await Promise.all([1, 2, 3].map((n) => wire.sql<{ n: number }[]>`select ${n}::int as n`));
    expect(answers.map((rows) => rows[0]?.n)).toEqual([1, 2, 3]);
  });

  test("the server ending the backend mid-query rejects the query (57P01) instead of hanging, and later queries fail at once", async () => {
    const wire = await open(db.url);
    const sleeping = wire.query("select pg_sleep(5)");
    // Wait until the backend is inside pg_sleep, then end it from another connection.
    for (let tries = 0; tries < 200; tries++) {
      const [row] = await db.sql<{ terminated: boolean }[]>`
        select pg_terminate_backend(pid) as terminated from pg_stat_activity where pid = ${wire.processId} and wait_event = 'PgSleep'`;
      if (row?.terminated) break;
      await Bun.sleep(10);
    }
    const started = performance.now();
    const error = await rejection(sleeping);
    expect(performance.now() - started).toBeLessThan(3_000);
    expect(error.code).toBe("57P01");
    expect((await rejection(wire.query("select 1"))).code).toBe("57P01");
  });

  test("close() sends Terminate: the backend is gone from pg_stat_activity", async () => {
    const wire = await connectWire(db.url);
    const pid = wire.processId;
    await wire.close();
    for (let tries = 0; tries < 200; tries++) {
      const [row] = await db.sql<{ present: boolean }[]>`select exists (select 1 from pg_stat_activity where pid = ${pid}) as present`;
      if (!row?.present) break;
      await Bun.sleep(10);
    }
    const [row] = await db.sql<{ present: boolean }[]>`select exists (select 1 from pg_stat_activity where pid = ${pid}) as present`;
    expect(row?.present).toBe(false);
    expect((await rejection(wire.query("select 1"))).code).toBe("CONNECTION_ENDED");
  });

  test("whileWaiting runs once, after the start-up message went out and before connectWire resolves", async () => {
    const events: string[] = [];
    const wire = await open(db.url, {
      whileWaiting: async () => {
        events.push("waiting");
        await Bun.sleep(20);
        events.push("waited");
      },
    });
    events.push("connected");
    expect(events).toEqual(["waiting", "waited", "connected"]);
    expect(wire.parameters["client_encoding"]).toBe("UTF8");
    expect(wire.parameters["application_name"]).toBe("cotacao");
  });
});

describe("servers that cannot be reached", () => {
  test("nothing listening on a TCP port: ECONNREFUSED at once, named by host:port", async () => {
    const port = closedPort();
    const started = performance.now();
    const error = await rejection(connectWire(`postgres://me:hunter2secret@127.0.0.1:${port}/db`));
    expect(performance.now() - started).toBeLessThan(1_000);
    expect(error).toMatchObject({ code: "ECONNREFUSED", syscall: "connect", address: "127.0.0.1", port });
    const { line } = describeError(error, "check");
    expect(line).toContain(`PostgreSQL at 127.0.0.1:${port} cannot be reached (ECONNREFUSED)`);
    expect(`${error.message} ${line}`).not.toContain("hunter2secret");
  });

  test("a socket folder with no server: ENOENT at once, named by the socket's path", async () => {
    const started = performance.now();
    const error = await rejection(connectWire("postgresql://cotacao@localhost/cotacao?host=/nonexistent/cotacao-socket"));
    expect(performance.now() - started).toBeLessThan(1_000);
    expect(error).toMatchObject({ code: "ENOENT", syscall: "connect", address: "/nonexistent/cotacao-socket/.s.PGSQL.5432" });
    expect(describeError(error, "check").line).toContain("PostgreSQL at /nonexistent/cotacao-socket/.s.PGSQL.5432 cannot be reached (ENOENT)");
  });

  test("a server that accepts and never answers: the connect timeout fires (CONNECT_TIMEOUT)", async () => {
    const silent = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    try {
      const started = performance.now();
      const error = await rejection(connectWire(`postgres://me:hunter2secret@127.0.0.1:${silent.port}/db`, { connectTimeoutMs: 300 }));
      const elapsed = performance.now() - started;
      expect(elapsed).toBeGreaterThanOrEqual(290);
      expect(elapsed).toBeLessThan(2_000);
      expect(error).toMatchObject({ code: "CONNECT_TIMEOUT", address: "127.0.0.1", port: silent.port });
      expect(describeError(error, "check").line).toContain("PostgreSQL did not answer within the connect timeout");
      expect(error.message).not.toContain("hunter2secret");
    } finally {
      silent.stop(true);
    }
  });
});

/** A server message: type, length, body. */
function message(type: string, ...parts: (string | number | Uint8Array)[]): Uint8Array {
  const body = Buffer.concat(parts.map((part) => (typeof part === "number" ? Buffer.from([part >>> 24, (part >>> 16) & 255, (part >>> 8) & 255, part & 255]) : Buffer.from(part))));
  const header = Buffer.from([type.charCodeAt(0), 0, 0, 0, 0]);
  header.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([header, body]);
}

/**
 * A scripted server on 127.0.0.1 for what a real one does not do on demand: `answer` gets each
 * chunk the client sends (the start-up message first) and its number, and writes back.
 */
function scriptedServer(answer: (socket: Bun.Socket<undefined>, chunk: Buffer, index: number) => void) {
  let index = 0;
  return Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { binaryType: "buffer", data: (socket, chunk) => answer(socket, chunk, index++) } });
}

describe("servers that misbehave (scripted)", () => {
  test("a server whose SCRAM signature is wrong is refused: it does not know the password", async () => {
    const server = scriptedServer((socket, chunk, index) => {
      if (index === 0) socket.write(message("R", 10, "SCRAM-SHA-256\0\0"));
      if (index === 1) {
        const nonce = /r=([^,]+)/.exec(chunk.toString("latin1"))?.[1] ?? "";
        socket.write(message("R", 11, `r=${nonce}server,s=${Buffer.from("salt").toString("base64")},i=4096`));
      }
      if (index === 2) socket.write(message("R", 12, `v=${Buffer.alloc(32).toString("base64")}`));
    });
    try {
      const error = await rejection(connectWire(`postgres://me:hunter2secret@127.0.0.1:${server.port}/db`));
      expect(error.code).toBe("SCRAM_SERVER_SIGNATURE");
      expect(error.message).not.toContain("hunter2secret");
    } finally {
      server.stop(true);
    }
  });

  test("a connection closed mid-query with no word from the server rejects the query (CONNECTION_CLOSED)", async () => {
    const server = scriptedServer((socket, _chunk, index) => {
      if (index === 0) socket.write(Buffer.concat([message("R", 0), message("Z", "I")]));
      else socket.end();
    });
    try {
      const wire = await open(`postgres://me@127.0.0.1:${server.port}/db`);
      const error = await rejection(wire.query("select 1"));
      expect(error).toMatchObject({ code: "CONNECTION_CLOSED", address: "127.0.0.1", port: server.port });
      expect(describeError(error, "check").line).toContain(`lost the connection to PostgreSQL at 127.0.0.1:${server.port} (CONNECTION_CLOSED)`);
    } finally {
      server.stop(true);
    }
  });

  test("an answer the client cannot read (a json column that is not JSON) rejects the query instead of hanging", async () => {
    const server = scriptedServer((socket, _chunk, index) => {
      if (index === 0) return void socket.write(Buffer.concat([message("R", 0), message("Z", "I")]));
      const column = Buffer.alloc(18);
      column.writeInt32BE(114, 6); // type oid: json
      const row = Buffer.alloc(6);
      row.writeInt16BE(1, 0);
      row.writeInt32BE(4, 2);
      socket.write(Buffer.concat([message("1"), message("2"), message("T", Buffer.from([0, 1]), "j\0", column), message("D", row, "nope"), message("C", "SELECT 1\0"), message("Z", "I")]));
    });
    try {
      const wire = await open(`postgres://me@127.0.0.1:${server.port}/db`);
      const error = await rejection(wire.query("select 1"));
      expect(error.code).toBe("PROTOCOL_ERROR");
    } finally {
      server.stop(true);
    }
  });
});

describe("password authentication, on a server of this file's own", () => {
  // An embedded server with a pg_hba.conf of its own: one role per method, over its socket, and
  // SCRAM over TCP on 127.0.0.1 too (the shared test server may be either, and trusts its user).
  const PASSWORD = "s3cret-ünicode/@#?";
  const ROLES = { scram_user: "scram-sha-256", md5_user: "md5", clear_user: "password" } as const;
  const tempDir = useTempDirs();
  let socketUrl: (user: string, password: string) => string;
  let tcpUrl: (user: string, password: string) => string;

  beforeAll(async () => {
    const dir = await tempDir();
    const hbaFile = join(dir, "pg_hba.conf");
    const port = closedPort();
    await Bun.write(
      hbaFile,
      [
        "local all cotacao trust",
        ...Object.entries(ROLES).map(([role, method]) => `local all ${role} ${method}`),
        "host all scram_user 127.0.0.1/32 scram-sha-256",
        "",
      ].join("\n"),
    );
    const { server } = await startEmbeddedServer(join(dir, "pg"), { settings: { hba_file: hbaFile, listen_addresses: "127.0.0.1", port: String(port) } });
    // The server's own URL leaves the port out (the embedded one's is fixed); this one has its own.
    const url = (credentials: string) => `postgresql://${credentials}@localhost:${server.port}/cotacao?host=${encodeURIComponent(server.socketDir)}`;
    const admin = connectUrl(url("cotacao"), { max: 1 });
    try {
      for (const [role, method] of Object.entries(ROLES)) {
        await admin.unsafe(`set password_encryption = '${method === "md5" ? "md5" : "scram-sha-256"}'`);
        await admin.unsafe(`create role ${role} login password '${PASSWORD.replaceAll("'", "''")}'`);
      }
    } finally {
      await admin.end({ timeout: 5 });
    }
    const credentials = (user: string, password: string) => `${user}:${encodeURIComponent(password)}`;
    socketUrl = (user, password) => url(credentials(user, password));
    tcpUrl = (user, password) => `postgres://${credentials(user, password)}@127.0.0.1:${port}/cotacao`;
  }, 60_000);

  for (const role of Object.keys(ROLES)) {
    test(`${role} (${ROLES[role as keyof typeof ROLES]}) connects with the right password and queries`, async () => {
      const wire = await open(socketUrl(role, PASSWORD));
      expect<unknown>(await wire.sql`select current_user as me`).toEqual([{ me: role }]);
    });
  }

  test("SCRAM-SHA-256 over TCP, the server's signature verified", async () => {
    const wire = await open(tcpUrl("scram_user", PASSWORD));
    expect<unknown>(await wire.sql`select current_user as me, inet_client_addr()::text as addr`).toEqual([{ me: "scram_user", addr: "127.0.0.1/32" }]);
  });

  test("a wrong password fails with the server's message (28P01), the password nowhere in it", async () => {
    for (const url of [socketUrl("scram_user", "wrong-hunter2"), socketUrl("md5_user", "wrong-hunter2"), tcpUrl("scram_user", "wrong-hunter2")]) {
      const error = await rejection(connectWire(url));
      expect(error).toMatchObject({ code: "28P01", severity: "FATAL" });
      expect(error.message).toMatch(/password authentication failed for user "(scram|md5)_user"/);
      expect(`${error.message} ${describeError(error, "check").line} ${JSON.stringify(error)}`).not.toContain("hunter2");
    }
  });

  test("no password where the server asks for one: a clear error, not a hang", async () => {
    const error = await rejection(connectWire(socketUrl("scram_user", ""), { env: {} }));
    expect(error.code).toBe("PASSWORD_MISSING");
  });
});
