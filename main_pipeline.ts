/**
 * main_pipeline.ts: one ETL cycle, the cron entry point. It only orders the steps; each step
 * lives in its own script.
 *
 * For now a cycle prepares the database (start, migrate) and records the run; fetching quotes
 * arrives with the ingestion issue.
 */
import { parseArgs } from "node:util";
import { analyse } from "./analysis.ts";
import { DatabaseError, connect, errorLine, finishRun, migrate, startRun, type Sql } from "./database.ts";

const USAGE = `Usage: bun main_pipeline.ts [--help]

Runs one cycle of the pipeline: prepares the database (the embedded server is started on first
use; migrations are applied), runs the analysis step and records the run in pipeline_runs.
Fetching quotes from AwesomeAPI arrives with the ingestion issue.

Exit codes: 0 success, 1 failure, 2 bad usage or configuration.`;

/** Runs one cycle and returns the id of its pipeline_runs row. */
export async function runCycle(sql: Sql, pairs: readonly string[]): Promise<number> {
  await migrate(sql);
  const runId = await startRun(sql, pairs);
  try {
    await analyse(sql, pairs);
    await finishRun(sql, runId, { status: "succeeded", fetched: 0, inserted: 0, updated: 0 });
  } catch (error) {
    await finishRun(sql, runId, { status: "failed", fetched: 0, inserted: 0, updated: 0, error: errorLine(error) });
    throw error;
  }
  return runId;
}

async function main(args: string[]): Promise<number> {
  try {
    const { values } = parseArgs({ args, options: { help: { type: "boolean", short: "h" } } });
    if (values.help) {
      console.log(USAGE);
      return 0;
    }
  } catch (error) {
    console.error(`${(error as Error).message} (see bun main_pipeline.ts --help)`);
    return 2;
  }
  let sql: Sql | undefined;
  try {
    sql = await connect();
    const runId = await runCycle(sql, ["USD-BRL"]);
    console.log(`run ${runId} succeeded: database ready (fetching quotes is not built yet)`);
    return 0;
  } catch (error) {
    console.error(errorLine(error));
    return error instanceof DatabaseError && error.code === "CONFIG" ? 2 : 1;
  } finally {
    await sql?.end({ timeout: 5 });
  }
}

if (import.meta.main) {
  process.exitCode = await main(Bun.argv.slice(2));
}
