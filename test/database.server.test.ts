// The embedded server, driven through `bun database.ts` in separate processes, as cron, the
// monitor and the dashboard would.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { chmod, cp, lstat, mkdir, readdir, readFile, rm, stat, symlink, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { DEFAULT_DATA_DIR } from "../lib/connect.ts";
import { connectUrl, type Sql } from "../lib/pool.ts";
import { createdNotice, runningEmbeddedServer, startEmbeddedServer, stopEmbeddedServer } from "../lib/embedded_server.ts";
import { PROJECT_DIR } from "../lib/project.ts";
import { runScript } from "./support/cli.ts";
import { makeTempDir } from "./support/database.ts";
import { useTestTimeout } from "./support/timeout.ts";

useTestTimeout();

const dirs: string[] = [];

// Stopping a dozen servers takes longer than a hook's default 5 s.
afterAll(async () => {
  for (const dir of dirs) {
    await stopEmbeddedServer(join(dir, "pg")).catch(() => {});
    await rm(dir, { recursive: true, force: true });
  }
}, 60_000);

async function serverDir(): Promise<{ root: string; dataDir: string }> {
  const root = await makeTempDir("cotacao-server-");
  dirs.push(root);
  return { root, dataDir: join(root, "pg") };
}

function cli(args: string[], env: Record<string, string>, cwd?: string) {
  return runScript("database.ts", args, { env, cwd });
}

/**
 * The postmasters serving `dataDir`. A backend just forked by one shows the same command line
 * until it sets its title, so a process whose parent also matches is not counted.
 */
async function postmasterCount(dataDir: string): Promise<number> {
  const parents = new Map<string, string>();
  for (const pid of await readdir("/proc")) {
    if (!/^\d+$/.test(pid)) continue;
    const cmdline = await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "");
    const args = cmdline.split("\0");
    if (!(args[0]?.endsWith("/postgres") && args[1] === "-D" && args[2] === dataDir)) continue;
    // /proc/PID/stat: "pid (comm) state ppid ..."; comm may hold spaces, so read after the last ")".
    const stat = await readFile(`/proc/${pid}/stat`, "utf8").catch(() => "");
    parents.set(pid, stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1] ?? "");
  }
  return [...parents.values()].filter((parent) => !parents.has(parent)).length;
}

describe("bun database.ts with the embedded server", () => {
  test("start creates and starts it, status reports it running, stop stops it", async () => {
    const { dataDir } = await serverDir();
    const env = { COTACAO_DATA_DIR: dataDir };

    const before = await cli(["status"], env);
    expect(before.code).toBe(3);
    expect(before.stdout).toContain("not created yet");

    const start = await cli(["start"], env);
    expect(start.code).toBe(0);
    expect(start.stdout).toContain("created and started");

    const status = await cli(["status"], env);
    expect(status.code).toBe(0);
    expect(status.stdout).toContain(`embedded PostgreSQL in ${dataDir}`);
    expect(status.stdout).toMatch(/server: running, pid \d+/);
    expect(status.stdout).toMatch(/version: PostgreSQL \d+/);

    const again = await cli(["start"], env);
    expect(again.stdout).toContain("already running");

    const stop = await cli(["stop"], env);
    expect(stop.code).toBe(0);
    expect(stop.stdout).toContain("stopped");
    expect(await runningEmbeddedServer(dataDir)).toBeNull();
    expect(await postmasterCount(dataDir)).toBe(0);

    const after = await cli(["status"], env);
    expect(after.code).toBe(3);
    expect(after.stdout).toContain("server: stopped");
  });

  test("the first script to create it says so once on stderr, with how to stop it; later runs say nothing", async () => {
    const { dataDir } = await serverDir();
    const env = { COTACAO_DATA_DIR: dataDir };
    const first = await cli(["migrate"], env);
    expect(first.code).toBe(0);
    expect(first.stderr.trim().split("\n")).toEqual([
      `Created a PostgreSQL cluster in ${dataDir} and left its server running; "bun database.ts stop" stops it`,
    ]);
    const second = await runScript("monitor.ts", [], { env });
    expect(second.stderr).not.toContain("Created a PostgreSQL cluster");
    expect(second.stderr).toContain("no data yet");
    await stopEmbeddedServer(dataDir);
    const restarted = await cli(["migrate"], env);
    expect(restarted.code).toBe(0);
    expect(restarted.stderr).toBe("");
  });

  test("the creation notice names the data folder relative to the project when it is inside it", () => {
    expect(createdNotice(DEFAULT_DATA_DIR)).toStartWith("Created a PostgreSQL cluster in .data/postgres and left");
  });

  test("the server does not inherit the caller's environment: no token, webhook URL or PG password in its environ", async () => {
    const { dataDir } = await serverDir();
    const secrets = {
      AWESOMEAPI_TOKEN: "token-secret-1234",
      ALERT_WEBHOOK_URLS: "http://127.0.0.1:9/hook-secret-5678",
      PGPASSWORD: "pg-secret-9012",
    };
    const start = await cli(["start"], { COTACAO_DATA_DIR: dataDir, ...secrets });
    expect(start.code).toBe(0);
    const server = await runningEmbeddedServer(dataDir);
    const environ = (await readFile(`/proc/${server!.pid}/environ`, "utf8")).split("\0");
    expect(environ).toContain("LC_ALL=C");
    for (const [name, value] of Object.entries(secrets)) {
      expect(environ.join("\n")).not.toContain(name);
      expect(environ.join("\n")).not.toContain(value);
    }
  });

  test("a long data path's socket folder: a symlink planted at the old predictable name is left alone, stop (or the start after a kill -9) removes the folder", async () => {
    const { root } = await serverDir();
    const dataDir = join(root, "a-folder-name-long-enough-that-the-socket-path-passes-the-limit-of-sun-path", "pg");
    dirs.push(dirname(dataDir));
    const predicted = join(tmpdir(), `cotacao-pg-${createHash("sha256").update(dataDir).digest("hex").slice(0, 12)}`);
    const target = join(root, "not-yours");
    await mkdir(target, { mode: 0o755 });
    await chmod(target, 0o755);
    await symlink(target, predicted);
    try {
      const before = await stat(target);
      const start = await cli(["start"], { COTACAO_DATA_DIR: dataDir });
      expect(start.stderr.trim()).toBe(createdNotice(dataDir));
      expect(start.code).toBe(0);
      const after = await stat(target);
      expect([after.uid, after.gid, after.mode]).toEqual([before.uid, before.gid, before.mode]);
      expect(await readdir(target)).toEqual([]);
      const server = await runningEmbeddedServer(dataDir);
      expect(server!.socketDir).not.toBe(predicted);
      expect(dirname(server!.socketDir)).toBe(tmpdir());
      const socketDir = await lstat(server!.socketDir);
      expect(socketDir.isDirectory() && !socketDir.isSymbolicLink()).toBe(true);
      expect(socketDir.mode & 0o777).toBe(0o700);
      const sql = connectUrl(server!.url, { max: 1 });
      try {
        expect([...(await sql`select 1 as one`)]).toEqual([{ one: 1 }]);
      } finally {
        await sql.end({ timeout: 5 });
      }
      expect((await cli(["stop"], { COTACAO_DATA_DIR: dataDir })).code).toBe(0);
      expect(existsSync(server!.socketDir)).toBe(false);

      // Killed with -9, it leaves its socket folder behind; the next start clears it.
      expect((await cli(["start"], { COTACAO_DATA_DIR: dataDir })).code).toBe(0);
      const killed = await runningEmbeddedServer(dataDir);
      process.kill(killed!.pid, "SIGKILL");
      expect(existsSync(join(killed!.socketDir, ".s.PGSQL.5432.lock"))).toBe(true);
      const restart = await cli(["start"], { COTACAO_DATA_DIR: dataDir });
      expect(restart.code).toBe(0);
      expect(existsSync(killed!.socketDir)).toBe(false);
      expect(existsSync((await runningEmbeddedServer(dataDir))!.socketDir)).toBe(true);
    } finally {
      await rm(predicted, { force: true });
    }
  });

  test("an empty start lock left by a full disk does not hold up the next start", async () => {
    const { dataDir } = await serverDir();
    const lock = `${dataDir}.lock`;
    await writeFile(lock, "");
    const aMinuteAgo = new Date(Date.now() - 60_000);
    await utimes(lock, aMinuteAgo, aMinuteAgo);
    const began = performance.now();
    const start = await cli(["start"], { COTACAO_DATA_DIR: dataDir });
    expect(start.code).toBe(0);
    expect(start.stdout).toContain("created and started");
    expect(performance.now() - began).toBeLessThan(30_000);
    expect(existsSync(lock)).toBe(false);
  });

  test("a cluster left without its database by an interrupted first start gets it back at the next start, and says so", async () => {
    const { dataDir } = await serverDir();
    const env = { COTACAO_DATA_DIR: dataDir };
    expect((await cli(["start"], env)).code).toBe(0);
    const server = await runningEmbeddedServer(dataDir);
    const maintenance = new URL(server!.url);
    maintenance.pathname = "/postgres";
    const admin = connectUrl(maintenance.toString(), { max: 1 });
    try {
      await admin`drop database cotacao with (force)`;
    } finally {
      await admin.end({ timeout: 5 });
    }
    const broken = await runScript("monitor.ts", [], { env });
    // The monitor speaks the plugins' codes: an unusable database is UNKNOWN.
    expect(broken.code).toBe(3);
    expect(broken.stderr).toContain(`database "cotacao" does not exist; if it is the embedded server, run "bun database.ts stop"`);
    expect((await cli(["stop"], env)).code).toBe(0);

    const repaired = await cli(["migrate"], env);
    expect(repaired.code).toBe(0);
    expect(repaired.stderr.trim()).toBe(`The embedded PostgreSQL in ${dataDir} had no "cotacao" database (its first start was interrupted); created it empty`);
    expect(repaired.stdout).toContain("applied");
  });

  test("a stale postmaster.pid naming another live postgres process: status says stopped and why, start starts it", async () => {
    const { root, dataDir } = await serverDir();
    const env = { COTACAO_DATA_DIR: dataDir };
    expect((await cli(["start"], env)).code).toBe(0);
    expect((await cli(["stop"], env)).code).toBe(0);
    // Another process called postgres now has the pid the file names (as after a kill -9 and a reboot).
    await mkdir(join(root, "bin"));
    const impostor = join(root, "bin", "postgres");
    await cp(Bun.which("sleep")!, impostor);
    const other = Bun.spawn([impostor, "300"]);
    try {
      await writeFile(join(dataDir, "postmaster.pid"), `${other.pid}\n${dataDir}\n1700000000\n5432\n${dataDir}\n\n 0 0\nready   \n`);
      const status = await cli(["status"], env);
      expect(status.code).toBe(3);
      expect(status.stdout).toContain(`server: stopped (postmaster.pid names process ${other.pid}, which is not this server`);
      const start = await cli(["start"], env);
      expect(start.stderr).toBe("");
      expect(start.code).toBe(0);
      expect(start.stdout).toMatch(/started \(pid \d+/);
      expect((await runningEmbeddedServer(dataDir))?.pid).not.toBe(other.pid);
      expect(other.exitCode).toBeNull(); // nobody signalled it
    } finally {
      other.kill();
    }
  });

  test("two processes starting it at once: exactly one starts it, both can use it", async () => {
    const { dataDir } = await serverDir();
    const env = { COTACAO_DATA_DIR: dataDir };
    const results = await Promise.all([cli(["start"], env), cli(["start"], env)]);
    expect(results.map((result) => result.code)).toEqual([0, 0]);
    const outputs = results.map((result) => result.stdout).sort();
    expect(outputs[0]).toContain("already running");
    expect(outputs[1]).toContain("created and started");
    expect(await postmasterCount(dataDir)).toBe(1);
    const migrated = await Promise.all([cli(["migrate"], env), cli(["migrate"], env)]);
    expect(migrated.map((result) => result.code)).toEqual([0, 0]);
  });

  test("a server killed with -9 is started again by the next user, with its data", async () => {
    const { dataDir } = await serverDir();
    const env = { COTACAO_DATA_DIR: dataDir };
    expect((await cli(["migrate"], env)).code).toBe(0);
    const first = await runningEmbeddedServer(dataDir);
    expect(first).not.toBeNull();
    const sql = connectUrl(first!.url, { max: 1 });
    await sql`insert into quotes (pair, ts, bid, ask, source) values ('USD-BRL', '2024-08-23T17:39:40Z', 5.5037, 5.506, 'test')`;
    await sql.end({ timeout: 5 });

    process.kill(first!.pid, "SIGKILL");
    const pidFile = await readFile(join(dataDir, "postmaster.pid"), "utf8");
    expect(pidFile.startsWith(`${first!.pid}\n`)).toBe(true); // the stale pid file is still there

    const restart = await cli(["start"], env);
    expect(restart.stderr).toBe("");
    expect(restart.code).toBe(0);
    expect(restart.stdout).toMatch(/started \(pid \d+/);
    const second = await runningEmbeddedServer(dataDir);
    expect(second?.pid).not.toBe(first!.pid);
    const again = connectUrl(second!.url, { max: 1 });
    try {
      const rows = await again`select bid::text from quotes where pair = 'USD-BRL'`;
      expect([...rows]).toEqual([{ bid: "5.5037" }]);
    } finally {
      await again.end({ timeout: 5 });
    }
  });

  test("run from another working directory, it keeps its data where it was told and nothing in the cwd", async () => {
    const { root, dataDir } = await serverDir();
    const cwd = join(root, "elsewhere");
    await mkdir(cwd);
    const start = await cli(["start"], { COTACAO_DATA_DIR: dataDir }, cwd);
    expect(start.code).toBe(0);
    expect((await runningEmbeddedServer(dataDir))?.dataDir).toBe(dataDir);
    expect(await readdir(cwd)).toEqual([]);
  });

  test("without COTACAO_DATA_DIR the data directory is the project's .data/postgres, whatever the cwd", async () => {
    const { root } = await serverDir();
    const url = await cli(["url"], {}, root);
    expect(url.code).toBe(0);
    expect(url.stdout).toContain(`host=${join(PROJECT_DIR, ".data", "postgres")}`);
  });

  test("refuses to create a cluster in a folder that holds something else", async () => {
    const { dataDir } = await serverDir();
    await mkdir(dataDir);
    await writeFile(join(dataDir, "notes.txt"), "mine");
    const start = await cli(["start"], { COTACAO_DATA_DIR: dataDir });
    expect(start.code).toBe(1);
    expect(start.stderr.trim().split("\n")).toHaveLength(1);
    expect(start.stderr).toContain("not empty");
    expect(await readFile(join(dataDir, "notes.txt"), "utf8")).toBe("mine");
  });
});

describe("bun database.ts with DATABASE_URL", () => {
  test("url masks the password", async () => {
    const result = await cli(["url"], { DATABASE_URL: "postgres://app:hunter2@db.example:5432/quotes" });
    expect(result.code).toBe(0);
    expect(result.stdout.trim()).toBe("postgres://app:***@db.example:5432/quotes");
    expect(result.stdout + result.stderr).not.toContain("hunter2");
  });

  test("a malformed DATABASE_URL stops it with one line naming the variable, exit 2", async () => {
    const result = await cli(["status"], { DATABASE_URL: "mysql://app:hunter2@db/quotes" });
    expect(result.code).toBe(2);
    expect(result.stderr.trim().split("\n")).toHaveLength(1);
    expect(result.stderr).toContain("DATABASE_URL");
    expect(result.stderr).not.toContain("hunter2");
  });

  test("an unknown command is bad usage, exit 2", async () => {
    const result = await cli(["frobnicate"], {});
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("status, start, stop, migrate, url, dump or restore");
  });
});

describe("pools that look the embedded server's socket up at each connection (ConnectOptions.findSocket)", () => {
  let url = "";
  let dataDir = "";
  beforeAll(async () => {
    ({ dataDir } = await serverDir());
    url = (await startEmbeddedServer(dataDir, { notice: () => {} })).server.url;
  }, 60_000);

  const pool = () => connectUrl(url, { max: 1, fetchTypes: false, findSocket: async () => undefined });

  test("runs queries whose parameters and results span many writes and reads", async () => {
    const sql = pool();
    try {
      // 4 MB out in one parameter (more than a socket takes at once) and back, and 20,000 rows.
      const big = "x".repeat(4 * 1024 * 1024);
      const [echo] = await sql<{ length: number; same: boolean }[]>`select length(${big}::text)::int as length, ${big}::text = repeat('x', 4194304) as same`;
      expect(echo).toEqual({ length: 4 * 1024 * 1024, same: true });
      const rows = await sql<{ n: number }[]>`select n::int from generate_series(1, 20000) as n`;
      expect(rows.length).toBe(20_000);
      expect(rows.at(-1)?.n).toBe(20_000);
    } finally {
      await sql.end({ timeout: 5 });
    }
  });

  test("hears NOTIFY on a LISTEN channel", async () => {
    const sql = pool();
    const other = connectUrl(url, { max: 1 });
    try {
      let hear = (_payload: string) => {};
      const heard = new Promise<string>((resolve) => (hear = resolve));
      await sql.listen("lean_test", (payload) => hear(payload));
      await other`select pg_notify('lean_test', 'hello')`;
      expect(await Promise.race([heard, Bun.sleep(5_000).then(() => "nothing within 5 s")])).toBe("hello");
    } finally {
      await sql.end({ timeout: 5 });
      await other.end({ timeout: 5 });
    }
  });

  test("a backend ended by the server fails its query as a lost connection, and the next query connects again", async () => {
    const sql = pool();
    const admin = connectUrl(url, { max: 1 });
    try {
      const [{ pid } = { pid: 0 }] = await sql<{ pid: number }[]>`select pg_backend_pid() as pid`;
      const pending = sql`select pg_sleep(10)`.catch((error: unknown) => error);
      for (let tries = 0; tries < 100; tries++) {
        const [busy] = await admin`select 1 from pg_stat_activity where pid = ${pid} and query like 'select pg_sleep%' and state = 'active'`;
        if (busy) break;
        await Bun.sleep(20);
      }
      await admin`select pg_terminate_backend(${pid})`;
      const error = (await pending) as { code?: string };
      expect(["57P01", "CONNECTION_CLOSED", "ECONNRESET"]).toContain(error.code ?? "none");
      // A query sent before the close is read meets the same end (as with node:net); then it connects anew.
      let again: number | undefined;
      for (let attempt = 0; attempt < 3 && again === undefined; attempt++) {
        again = await sql<{ pid: number }[]>`select pg_backend_pid() as pid`.then(([row]) => row?.pid, () => undefined);
      }
      expect(again).toBeGreaterThan(0);
      expect(again).not.toBe(pid);
    } finally {
      await sql.end({ timeout: 5 });
      await admin.end({ timeout: 5 });
    }
  });

  test("a pool whose server went away answers again once it is back, without a new pool", async () => {
    const sql = pool();
    try {
      expect((await sql<{ n: number }[]>`select 1 as n`)[0]?.n).toBe(1);
      await stopEmbeddedServer(dataDir);
      for (let attempt = 0; attempt < 2; attempt++) {
        const error = (await sql`select 1`.catch((caught: unknown) => caught)) as { code?: string };
        expect(["ENOENT", "ECONNREFUSED", "57P01", "CONNECTION_CLOSED"]).toContain(error.code ?? "none");
      }
      await startEmbeddedServer(dataDir, { notice: () => {} });
      // postgres.js waits a little longer before each new attempt after failures: a few tries.
      let answer: number | undefined;
      const deadline = Date.now() + 10_000;
      while (answer === undefined && Date.now() < deadline) {
        answer = await sql<{ n: number }[]>`select 2 as n`.then(([row]) => row?.n, () => undefined);
        if (answer === undefined) await Bun.sleep(100);
      }
      expect(answer).toBe(2);
    } finally {
      await sql.end({ timeout: 5 });
    }
  }, 30_000);

  test("a server that is not there fails at once, as node:net would (ENOENT on connect)", async () => {
    const gone = new URL(url);
    gone.searchParams.set("host", join(dataDir, "no-such-dir"));
    const sql = connectUrl(gone.toString(), { max: 1, connectTimeoutSeconds: 5, findSocket: async () => undefined });
    try {
      const began = performance.now();
      const error = (await sql`select 1`.catch((caught: unknown) => caught)) as { code?: string; syscall?: string };
      expect({ code: error.code, syscall: error.syscall }).toEqual({ code: "ENOENT", syscall: "connect" });
      expect(performance.now() - began).toBeLessThan(2_000);
    } finally {
      await sql.end({ timeout: 1 });
    }
  });
});

describe("a reserved connection whose backend dies (sql.reserve(), as withPipelineLock() holds the pipeline lock)", () => {
  let url = "";
  beforeAll(async () => {
    const { dataDir } = await serverDir();
    url = (await startEmbeddedServer(dataDir, { notice: () => {} })).server.url;
  }, 60_000);

  // Each wait is bounded, so that a query that never settles fails its test instead of hanging it.
  const SETTLE_MS = 5_000;

  /** How `query` ended: its error's code, "resolved", or "still waiting" (a query that never settles). */
  function outcome(query: PromiseLike<unknown>): Promise<string> {
    return Promise.race([
      Promise.resolve(query).then(
        () => "resolved",
        (error: { code?: string }) => error.code ?? "an error without a code",
      ),
      Bun.sleep(SETTLE_MS).then(() => `still waiting after ${SETTLE_MS / 1000} s`),
    ]);
  }

  async function backendPid(session: Sql): Promise<number> {
    const [row] = await session<{ pid: number }[]>`select pg_backend_pid() as pid`;
    return row?.pid ?? 0;
  }

  /** Waits until backend `pid` runs pg_sleep. */
  async function sleepingIn(admin: Sql, pid: number): Promise<void> {
    for (let tries = 0; tries < 250; tries++) {
      const [busy] = await admin`select 1 from pg_stat_activity where pid = ${pid} and query like 'select pg_sleep%' and state = 'active'`;
      if (busy) return;
      await Bun.sleep(20);
    }
    throw new Error(`backend ${pid} never started its pg_sleep`);
  }

  /** Runs `steps` on a reserved session of a pool of two (its backend's pid given) beside an admin pool; ends both pools. */
  async function withReservedSession(steps: (session: Sql & { release(): void }, pid: number, admin: Sql, sql: Sql) => Promise<void>): Promise<void> {
    const sql = connectUrl(url, { max: 2 });
    const admin = connectUrl(url, { max: 1 });
    try {
      const session = await sql.reserve();
      await steps(session, await backendPid(session), admin, sql);
    } finally {
      await sql.end({ timeout: 1 });
      await admin.end({ timeout: 1 });
    }
  }

  test("a query sent after its connection failed, before the socket closed, fails too instead of waiting forever", async () => {
    await withReservedSession(async (session, pid, admin) => {
      let next: Promise<string> = Promise.resolve("never sent");
      // As withPipelineLock()'s finally does: the moment a query of the session fails, one more.
      const sleeping = outcome(
        session`select pg_sleep(30)`.catch((error: unknown) => {
          next = outcome(session`select 1`);
          throw error;
        }),
      );
      await sleepingIn(admin, pid);
      // Sent while the backend sleeps, it is still unread when the backend exits: the socket is
      // reset, so postgres.js gets an error event, and the close only a turn of the event loop later.
      const unread = outcome(session`select 2`);
      await admin`select pg_terminate_backend(${pid})`;
      expect(await sleeping).toBe("ECONNRESET");
      expect(await unread).toBe("ECONNRESET");
      expect(await next).toBe("CONNECTION_CLOSED");
      session.release();
    });
  }, 30_000);

  test("a query waiting for the busy connection fails when it closes instead of waiting forever", async () => {
    await withReservedSession(async (session, pid, admin) => {
      // A parameter makes postgres.js ask for its type first, and mark the connection full until
      // the query is done: the next query waits in the reservation's own queue.
      const sleeping = outcome(session`select pg_sleep(${30})`);
      const waiting = outcome(session`select 1`);
      await sleepingIn(admin, pid);
      await admin`select pg_terminate_backend(${pid})`;
      expect(["57P01", "CONNECTION_CLOSED"]).toContain(await sleeping);
      expect(await waiting).toBe("CONNECTION_CLOSED");
      session.release();
    });
  }, 30_000);

  test("once its connection has closed, every query fails at once, and release() leaves the pool a connection that works", async () => {
    // Two connections: the pool's next query gets the other one. (postgres.js keeps the 57P01 the
    // closed connection received, and fails the first query of its next connection with it.)
    await withReservedSession(async (session, pid, admin, sql) => {
      const sleeping = outcome(session`select pg_sleep(30)`);
      await sleepingIn(admin, pid);
      await admin`select pg_terminate_backend(${pid})`;
      // It fails when postgres.js handles the close.
      expect(await sleeping).toBe("CONNECTION_CLOSED");
      // withPipelineLock()'s claimRun() is such a query: one that asks for its parameter's type
      // first. Sent to the closed connection, it marked it full for good, and the next query (the
      // unlock in withPipelineLock()'s finally) waited in the reservation's queue forever.
      expect(await outcome(session`select pg_advisory_lock(hashtext('cotacao:test'), ${1}::int)`)).toBe("CONNECTION_CLOSED");
      expect(await outcome(session`select pg_advisory_unlock_all()`)).toBe("CONNECTION_CLOSED");
      session.release();
      // The pool connects again, rather than taking the dead connection back as open.
      expect(await outcome(sql`select 2 as n`)).toBe("resolved");
    });
  }, 30_000);
});
