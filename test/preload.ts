import { afterAll } from "bun:test";
import { removeTestServer } from "./support/database.ts";

// Hooks in a preload file span the whole `bun test` run.
afterAll(removeTestServer);
