import { describe, expect, test } from "bun:test";
import { saveQuotes } from "../database.ts";
import { formatQuote } from "../monitor.ts";
import { runScript } from "./support/cli.ts";
import { useTestDatabase } from "./support/database.ts";
import { sampleQuote } from "./support/quotes.ts";

const QUOTE = sampleQuote();

describe("formatQuote()", () => {
  test("shows the decimals as stored and the age in minutes", () => {
    expect(formatQuote(QUOTE, new Date("2024-08-23T18:09:40Z"))).toBe(
      "USD-BRL bid 5.5037 ask 5.506 at 2024-08-23T17:39:40.000Z (30 min ago)",
    );
  });
});

describe("bun monitor.ts", () => {
  const db = useTestDatabase();

  test("--help says what it does", async () => {
    const result = await runScript("monitor.ts", ["--help"]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("Usage: bun monitor.ts");
  });

  test("prints the newest quote of the pair, exit 0", async () => {
    await saveQuotes(db.sql, [QUOTE, { ...QUOTE, ts: new Date("2024-08-22T17:00:00Z"), bid: "5.4831" }]);
    const result = await runScript("monitor.ts", ["--pair", "usd-brl"], { env: { DATABASE_URL: db.url } });
    expect(result.code).toBe(0);
    expect(result.stdout).toStartWith("USD-BRL bid 5.5037 ask 5.506 at 2024-08-23T17:39:40.000Z");
  });

  test("a pair with nothing stored is exit 1 with what to run", async () => {
    const result = await runScript("monitor.ts", ["--pair", "EUR-BRL"], { env: { DATABASE_URL: db.url } });
    expect(result.code).toBe(1);
    expect(result.stderr.trim()).toBe("No quote stored for EUR-BRL: run bun main_pipeline.ts --pairs EUR-BRL");
  });

  test("an unknown flag is bad usage, exit 2", async () => {
    const result = await runScript("monitor.ts", ["--bogus"]);
    expect(result.code).toBe(2);
  });
});
