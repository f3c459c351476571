/**
 * Not a test of its own: test/run_folder.test.ts runs it with `bun test` and ends that run while it
 * waits, to check that what the run started is stopped and removed however the run ends.
 */
import { expect, test } from "bun:test";
import { useTestDatabase } from "./database.ts";
import { useTestTimeout } from "./timeout.ts";

// Its server may take over 5 s to start on a busy machine, as in any test file.
useTestTimeout();

const db = useTestDatabase();

test("holds the throwaway server, says so, and waits to be ended", async () => {
  expect((await db.sql<{ one: number }[]>`select 1 as one`)[0]?.one).toBe(1);
  console.log(`READY ${process.env["TMPDIR"]}`);
  await Bun.sleep(Number(process.env["COTACAO_WAIT_MS"] ?? 30_000));
  expect(process.env["COTACAO_FAIL"]).toBeUndefined();
}, 60_000);
