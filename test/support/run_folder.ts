/**
 * One temporary folder per `bun test` run, made the run's TMPDIR: every folder, embedded server,
 * socket and browser profile the tests make lands inside it. The run removes it at the end; a
 * watchdog process (reaper.ts) removes it, and stops any server in it, when the run ends any
 * other way: a crash, Ctrl-C, kill -9.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readdir, rm } from "node:fs/promises";
import { chmodSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stopEmbeddedServer } from "../../lib/embedded_server.ts";

const RUN_FOLDER_PREFIX = "cotacao-test-run-";
// Test servers live at <run>/<test folder>/pg, or one level deeper: deep enough, and bounded.
const MAX_SERVER_DEPTH = 4;

/** What the run writes to the watchdog when it has cleaned up itself. */
export const DONE = "done\n";

let watchdog: ChildProcess | undefined;

/**
 * Makes the run's folder, points TMPDIR (and so os.tmpdir() here and in children that inherit the
 * environment) at it, and starts the watchdog. Returns the folder.
 */
export function openRunFolder(): string {
  const dir = mkdtempSync(join(tmpdir(), RUN_FOLDER_PREFIX));
  // PostgreSQL's OS user (tests run as root in CI) must reach the servers' folders inside.
  chmodSync(dir, 0o755);
  process.env["TMPDIR"] = dir;
  // Its own session, so Ctrl-C in a terminal (sent to the whole foreground group) does not
  // reach it; its stdin is a pipe from us, which closes however we end.
  watchdog = spawn(process.execPath, [join(import.meta.dir, "reaper.ts"), dir, String(process.pid)], {
    detached: true,
    stdio: ["pipe", "ignore", "inherit"],
    env: process.env,
  });
  watchdog.unref();
  return dir;
}

/** The data folders of servers under `dir` (those with a postmaster.pid). */
export async function serverFolders(dir: string, depth = MAX_SERVER_DEPTH): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  if (entries.some((entry) => entry.name === "postmaster.pid")) return [dir];
  if (depth === 0) return [];
  const nested = await Promise.all(
    entries.filter((entry) => entry.isDirectory() && !entry.isSymbolicLink()).map((entry) => serverFolders(join(dir, entry.name), depth - 1)),
  );
  return nested.flat();
}

/** Stops every server under `dir`, then removes it. */
export async function removeRunFolder(dir: string): Promise<void> {
  for (const dataDir of await serverFolders(dir)) {
    await stopEmbeddedServer(dataDir).catch((error: unknown) => {
      console.error(`test run: could not stop the server in ${dataDir}: ${error instanceof Error ? error.message : String(error)}`);
    });
  }
  await rm(dir, { recursive: true, force: true });
  // Done: the watchdog has nothing left to do (and must not reach for a server the caller may
  // be stopping now).
  watchdog?.stdin?.end(DONE);
}
