/**
 * dashboard.ts: the web page and its JSON API (Hono). Routes are thin: validate, call one
 * function from the other scripts, return JSON.
 *
 * For now it serves the latest quote; the uPlot chart of the whole history arrives with its issue.
 */
import { Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import { serveStatic } from "hono/bun";
import { parseArgs } from "node:util";
import { join } from "node:path";
import * as v from "valibot";
import { PROJECT_DIR, PairSchema, connect, describeError, latestQuote, loadDatabaseConfig, migrate, type Sql } from "./database.ts";

const DEFAULT_PORT = 8080;
const DEFAULT_HOST = "127.0.0.1";

const USAGE = `Usage: bun dashboard.ts [--port 8080] [--host 127.0.0.1] [--help]

Serves the cotacao page and its JSON API, on loopback unless --host says otherwise.
  GET /                   the page
  GET /api/latest?pair=   the newest stored quote of a pair (default USD-BRL)`;


/** The dashboard's routes over an open pool; tests call `app.request()` on it. */
export function createApp(sql: Sql): Hono {
  const app = new Hono();
  app.get("/api/latest", async (c) => {
    const pair = v.safeParse(PairSchema, c.req.query("pair") ?? "USD-BRL");
    if (!pair.success) throw new HTTPException(400, { message: v.summarize(pair.issues) });
    const quote = await latestQuote(sql, pair.output);
    if (!quote) throw new HTTPException(404, { message: `no quote stored for ${pair.output}` });
    return c.json(quote);
  });
  app.get("/*", serveStatic({ root: join(PROJECT_DIR, "public") }));
  app.onError((error, c) => {
    if (error instanceof HTTPException) return c.json({ error: error.message }, error.status);
    // Internals stay in the server's log, not in the answer.
    console.error(describeError(error, "answer the request").line);
    return c.json({ error: "internal error" }, 500);
  });
  return app;
}

async function main(args: string[]): Promise<number> {
  let options: { port: number; host: string };
  try {
    const { values } = parseArgs({
      args,
      options: { port: { type: "string" }, host: { type: "string" }, help: { type: "boolean", short: "h" } },
    });
    if (values.help) {
      console.log(USAGE);
      return 0;
    }
    const port = Number(values.port ?? DEFAULT_PORT);
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port must be 0-65535, got "${values.port}"`);
    options = { port, host: values.host ?? DEFAULT_HOST };
  } catch (error) {
    console.error(`${(error as Error).message} (see bun dashboard.ts --help)`);
    return 2;
  }
  try {
    const sql = await connect(loadDatabaseConfig(process.env));
    await migrate(sql);
    const server = Bun.serve({ port: options.port, hostname: options.host, fetch: createApp(sql).fetch });
    console.log(`cotacao dashboard on http://${server.hostname}:${server.port}/`);
    return 0;
  } catch (error) {
    const { line, exitCode } = describeError(error, "serve the dashboard");
    console.error(line);
    return exitCode;
  }
}

if (import.meta.main) {
  const code = await main(Bun.argv.slice(2));
  if (code !== 0) process.exit(code);
}
