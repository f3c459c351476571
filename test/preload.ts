import { afterAll } from "bun:test";
import { removeTestServer } from "./support/database.ts";
import { openRunFolder, removeRunFolder } from "./support/run_folder.ts";

// Everything the run makes goes in one folder, removed at the end however the run ends.
const runFolder = openRunFolder();

// Hooks in a preload file span the whole `bun test` run.
afterAll(async () => {
  await removeTestServer();
  await removeRunFolder(runFolder);
}, 60_000);

// Tests reach loopback only: a script spawned with this environment fetches no official
// bulletins from BCB unless the test asks for them (COTACAO_OFFICIAL is on by default).
process.env["COTACAO_OFFICIAL"] ??= "off";
