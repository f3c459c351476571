import { afterAll, setDefaultTimeout } from "bun:test";
import { removeTestServer } from "./support/database.ts";
import { openRunFolder, removeRunFolder } from "./support/run_folder.ts";

// Starting a server, creating databases and running whole pipelines in child processes takes
// longer than bun's 5 s default on a slow machine. (bunfig.toml's [test] timeout is not read.)
setDefaultTimeout(60_000);

// Everything the run makes goes in one folder, removed at the end however the run ends.
const runFolder = openRunFolder();

// Hooks in a preload file span the whole `bun test` run.
afterAll(async () => {
  await removeTestServer();
  await removeRunFolder(runFolder);
}, 60_000);
