import { describe, expect, test } from "bun:test";
import { runCycle } from "../main_pipeline.ts";
import { runScript } from "./support/cli.ts";
import { createTestDatabase, dropTestDatabase, useTestDatabase } from "./support/database.ts";
import { connectUrl } from "../database.ts";

describe("runCycle()", () => {
  const db = useTestDatabase();

  test("records a succeeded run with its pairs", async () => {
    const id = await runCycle(db.sql, ["USD-BRL", "EUR-BRL"]);
    const [run] = await db.sql`select status, pairs, finished_at is not null as finished, error from pipeline_runs where id = ${id}`;
    expect(run).toEqual({ status: "succeeded", pairs: ["USD-BRL", "EUR-BRL"], finished: true, error: null });
  });
});

describe("bun main_pipeline.ts", () => {
  test("--help says what it does and lists the exit codes", async () => {
    const result = await runScript("main_pipeline.ts", ["--help"]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("Usage: bun main_pipeline.ts");
    expect(result.stdout).toContain("Exit codes");
  });

  test("on an empty database it migrates and records the run, exit 0", async () => {
    const url = await createTestDatabase({ migrated: false });
    try {
      const result = await runScript("main_pipeline.ts", [], { env: { DATABASE_URL: url } });
      expect(result.stderr).toBe("");
      expect(result.code).toBe(0);
      const sql = connectUrl(url, { max: 1 });
      try {
        const runs = await sql`select status from pipeline_runs`;
        expect([...runs]).toEqual([{ status: "succeeded" }]);
      } finally {
        await sql.end({ timeout: 5 });
      }
    } finally {
      await dropTestDatabase(url);
    }
  });
});
