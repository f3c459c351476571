/**
 * The test run's watchdog: `bun reaper.ts <run folder> <pid>`. It waits for its stdin (a pipe from
 * the test run) to close, which happens however the run ends, then stops any PostgreSQL server
 * left in the run folder, drops the databases the run left on TEST_DATABASE_URL's server, and
 * removes the folder. On a run that cleaned up after itself it finds nothing to do.
 */
import { connectUrl } from "../../lib/pool.ts";
import { DONE, removeRunFolder } from "./run_folder.ts";

const [dir = "", pid = ""] = process.argv.slice(2);
if (!dir || !/^\d+$/.test(pid)) {
  console.error("usage: bun test/support/reaper.ts <run folder> <pid of the test run>");
  process.exit(2);
}

// Ctrl-C and a closing terminal are the run's to handle; this process outlives them to clean up.
for (const signal of ["SIGINT", "SIGHUP"] as const) process.on(signal, () => {});

/** The databases test/support/database.ts names after the run's pid, on a server of the user's. */
async function dropRunDatabases(adminUrl: string, runPid: string): Promise<void> {
  const admin = connectUrl(adminUrl, { max: 1 });
  try {
    const names = await admin<{ datname: string }[]>`
      select datname from pg_database
      where datname = ${`cotacao_template_${runPid}`} or datname like ${`cotacao\\_test\\_${runPid}\\_%`}`;
    for (const { datname } of names) await admin`drop database if exists ${admin(datname)} with (force)`;
  } finally {
    await admin.end({ timeout: 5 });
  }
}

let said = "";
let reaping = false;
async function reap(): Promise<void> {
  if (reaping) return;
  reaping = true;
  if (said === DONE) process.exit(0);
  const external = process.env["TEST_DATABASE_URL"]?.trim();
  try {
    if (external) await dropRunDatabases(external, pid);
  } catch (error) {
    console.error(`test run: could not drop its databases: ${error instanceof Error ? error.message : String(error)}`);
  }
  await removeRunFolder(dir);
  process.exit(0);
}

process.stdin.on("data", (chunk: Buffer) => {
  said += chunk.toString();
});
process.stdin.on("end", reap);
process.stdin.on("close", reap);
process.stdin.resume();
