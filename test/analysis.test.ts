import { describe, expect, test } from "bun:test";
import { runScript } from "./support/cli.ts";

describe("bun analysis.ts", () => {
  test("--help says what it does", async () => {
    const result = await runScript("analysis.ts", ["--help"]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("moving average");
  });

  test("says plainly that the rule is not built yet, exit 1", async () => {
    const result = await runScript("analysis.ts", []);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("not built");
  });
});
