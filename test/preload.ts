import { afterAll, setDefaultTimeout } from "bun:test";
import { removeTestServer } from "./support/database.ts";

// Starting a server, creating databases and running whole pipelines in child processes takes
// longer than bun's 5 s default on a slow machine. (bunfig.toml's [test] timeout is not read.)
setDefaultTimeout(60_000);

// Hooks in a preload file span the whole `bun test` run.
afterAll(removeTestServer);
