import { describe, expect, test } from "bun:test";
import { saveQuotes } from "../database.ts";
import { createApp } from "../dashboard.ts";
import { runScript } from "./support/cli.ts";
import { useTestDatabase } from "./support/database.ts";

describe("the dashboard's routes", () => {
  const db = useTestDatabase();

  test("GET /api/latest returns the newest quote with exact decimals", async () => {
    await saveQuotes(db.sql, [
      {
        pair: "USD-BRL",
        ts: new Date("2024-08-23T17:39:40Z"),
        bid: "5.5037",
        ask: "5.5060",
        high: null,
        low: null,
        varBid: null,
        pctChange: null,
        source: "test",
        fetchedAt: new Date("2024-08-23T17:40:00Z"),
      },
    ]);
    const response = await createApp(db.sql).request("/api/latest?pair=usd-brl");
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ pair: "USD-BRL", bid: "5.5037", ask: "5.5060", ts: "2024-08-23T17:39:40.000Z" });
  });

  test("GET /api/latest answers 400 to a malformed pair and 404 to a pair with no quotes", async () => {
    const app = createApp(db.sql);
    const bad = await app.request("/api/latest?pair=dollar");
    expect(bad.status).toBe(400);
    expect((await bad.json()).error).toContain("USD-BRL");
    const missing = await app.request("/api/latest?pair=EUR-BRL");
    expect(missing.status).toBe(404);
  });

  test("GET / serves the page from public/, whatever the working directory", async () => {
    const response = await createApp(db.sql).request("/");
    expect(response.status).toBe(200);
    expect(await response.text()).toContain("<title>cotacao</title>");
  });
});

describe("bun dashboard.ts", () => {
  test("--help says what it does", async () => {
    const result = await runScript("dashboard.ts", ["--help"]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("Usage: bun dashboard.ts");
  });

  test("a bad port is bad usage, exit 2", async () => {
    const result = await runScript("dashboard.ts", ["--port", "http"]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("--port");
  });
});
