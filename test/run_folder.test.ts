import { describe, expect, test } from "bun:test";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { connectUrl } from "../lib/pool.ts";
import { PROJECT_DIR } from "../lib/project.ts";
import { makeTempDir } from "./support/database.ts";
import { cleanEnv } from "./support/cli.ts";
import { useTestTimeout } from "./support/timeout.ts";

useTestTimeout();

const RUN_TIMEOUT_MS = 90_000;
const CLEANED_WITHIN_MS = 20_000;

/** Postgres processes whose command line names `dir`. */
async function serversUnder(dir: string): Promise<number> {
  let count = 0;
  for (const pid of await readdir("/proc")) {
    if (!/^\d+$/.test(pid)) continue;
    const cmdline = await Bun.file(`/proc/${pid}/cmdline`).text().catch(() => "");
    if (cmdline.includes("postgres") && cmdline.includes(dir)) count++;
  }
  return count;
}

/** The databases a run with this pid made on TEST_DATABASE_URL's server (0 without one). */
async function databasesOf(pid: number): Promise<number> {
  const external = process.env["TEST_DATABASE_URL"]?.trim();
  if (!external) return 0;
  const admin = connectUrl(external, { max: 1 });
  try {
    const [row] = await admin<{ n: number }[]>`
      select count(*)::int as n from pg_database where datname like ${`cotacao\\_%\\_${pid}%`}`;
    return row?.n ?? 0;
  } finally {
    await admin.end({ timeout: 5 });
  }
}

/** Runs `bun test` on a file that holds the throwaway server, ends it with `end`, and reports what is left. */
async function runAndEnd(end: "passes" | "fails" | "SIGINT" | "SIGKILL") {
  const parent = await makeTempDir("r-");
  const env = cleanEnv({
    TMPDIR: parent,
    COTACAO_WAIT_MS: end === "passes" || end === "fails" ? "10" : "60000",
    ...(end === "fails" ? { COTACAO_FAIL: "1" } : {}),
    ...(process.env["TEST_DATABASE_URL"] ? { TEST_DATABASE_URL: process.env["TEST_DATABASE_URL"] } : {}),
  });
  const child = Bun.spawn([process.execPath, "test", "./test/support/server_then_wait.ts"], { cwd: PROJECT_DIR, env, stdout: "pipe", stderr: "pipe" });
  const stderr = new Response(child.stderr).text();
  const reader = child.stdout.getReader();
  let seen = "";
  while (!seen.includes("READY")) {
    const { value, done } = await reader.read();
    if (done) break;
    seen += new TextDecoder().decode(value);
  }
  if (!seen.includes("READY")) child.kill("SIGKILL");
  expect({ seen, stderr: seen.includes("READY") ? "" : await stderr }).toMatchObject({ seen: expect.stringContaining(`READY ${parent}/cotacao-test-run-`) });
  if (end === "SIGINT" || end === "SIGKILL") child.kill(end);
  while (!(await reader.read()).done) {
    // Drain what the run still prints, so it never blocks on a full pipe.
  }
  const code = await child.exited;
  // The watchdog may still be at work after a kill: give it a bounded while.
  const deadline = Date.now() + CLEANED_WITHIN_MS;
  let left: string[] = [];
  let servers = 0;
  do {
    left = await readdir(parent);
    servers = await serversUnder(parent);
    if (left.length === 0 && servers === 0) break;
    await Bun.sleep(100);
  } while (Date.now() < deadline);
  return { code, left, servers, databases: await databasesOf(child.pid), stderr: await stderr };
}

describe("a test run leaves nothing behind", () => {
  for (const end of ["passes", "fails", "SIGINT", "SIGKILL"] as const) {
    test(
      `when it ${end === "passes" || end === "fails" ? end : `is ended with ${end}`}: no server, no folder, no database of its own`,
      async () => {
        const result = await runAndEnd(end);
        if (end === "passes") expect(result.code).toBe(0);
        else expect(result.code).not.toBe(0);
        expect(result.left).toEqual([]);
        expect(result.servers).toBe(0);
        expect(result.databases).toBe(0);
      },
      RUN_TIMEOUT_MS,
    );
  }
});

test("every test file sets the tests' timeout itself (bun applies a preload's to the first file only)", async () => {
  const files = (await readdir(import.meta.dir, { recursive: true })).filter((name) => name.endsWith(".test.ts"));
  expect(files.length).toBeGreaterThan(5);
  for (const name of files) {
    const source = await Bun.file(join(import.meta.dir, name)).text();
    expect({ name, calls: /^useTestTimeout\(\);$/m.test(source) }).toEqual({ name, calls: true });
  }
});
