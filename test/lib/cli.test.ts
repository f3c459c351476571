import { describe, expect, test } from "bun:test";
import { parseArgs } from "node:util";
import * as v from "valibot";
import packageJson from "../../package.json" with { type: "json" };
import { durationExample, durationSetting, parseDuration, readFlags } from "../../lib/cli.ts";
import { CotacaoError } from "../../lib/errors.ts";
import { runScript } from "../support/cli.ts";
import { useTestTimeout } from "../support/timeout.ts";

useTestTimeout();

describe("readFlags()", () => {
  // The shapes the scripts use: repeatable and short string options, booleans, defaults.
  const OPTIONS = {
    pair: { type: "string", multiple: true },
    format: { type: "string" },
    w: { type: "string", short: "w" },
    json: { type: "boolean" },
    quiet: { type: "boolean", short: "q" },
    help: { type: "boolean", short: "h" },
    runs: { type: "string", default: "30" },
  } as const;
  const CASES = [
    [], ["--pair", "USD-BRL"], ["--pair", "usd-brl", "--pair=EUR-BRL"], ["--pair=USD-BRL", "--pair", "-"], ["--format", "json", "--format", "text"],
    ["-w", "3"], ["-w3"], ["-w=3"], ["-w", "@5:10"], ["-w", "-3:3"], ["-w-3:3"], ["-hq"], ["-qh", "--json"], ["-qw3"], ["-qw", "~:3"], ["-hqw"],
    ["--json", "--json"], ["--runs", "50"], ["--runs=", "--json"], ["--help"], ["--"], ["--json", "--"],
    ["--pair"], ["--pair", "--json"], ["--pair", "--"], ["--json=yes"], ["--json=", "-h"], ["-h=1"], ["--bogus"], ["--bogus=1"], ["-x"], ["-hx"],
    ["USD-BRL"], ["-"], ["--", "x"], ["--=x"], ["---pair", "x"], ["--no-json"], ["--constructor"], ["--__proto__"], ["-w"], ["--w", "2"], ["--q"],
  ];

  test("accepts and rejects what node:util's parseArgs does, with the same values", () => {
    for (const args of CASES) {
      let expected: unknown;
      try {
        expected = { ...parseArgs({ args, options: OPTIONS, strict: true, allowPositionals: false }).values };
      } catch {
        expected = "rejected";
      }
      let actual: unknown;
      try {
        actual = { ...readFlags(args, OPTIONS, "monitor.ts") };
      } catch (error) {
        expect(error).toBeInstanceOf(CotacaoError);
        expect((error as CotacaoError).code).toBe("USAGE");
        actual = "rejected";
      }
      expect({ args, result: actual }).toEqual({ args, result: expected });
    }
  });

  test("a bad flag is one line that names it and points at --help", () => {
    for (const [args, named] of [[["--bogus"], "'--bogus'"], [["--pair"], "'--pair <value>'"], [["--json=1"], "'--json'"], [["extra"], "'extra'"], [["-w", "-x"], "'-w'"]] as const) {
      let error: CotacaoError | undefined;
      try {
        readFlags([...args], OPTIONS, "monitor.ts");
      } catch (caught) {
        error = caught as CotacaoError;
      }
      expect(error?.message).toContain(named);
      expect(error?.message).toEndWith("(see bun monitor.ts --help)");
      expect(error?.message).not.toContain("\n");
    }
  });

  test("--version or -V anywhere is an answer, not a failure: the script and package.json's version, exit 0", () => {
    for (const args of [["--version"], ["-V"], ["--json", "-V"], ["--version", "--bogus"]]) {
      let error: CotacaoError | undefined;
      try {
        readFlags(args, OPTIONS, "monitor.ts");
      } catch (caught) {
        error = caught as CotacaoError;
      }
      expect({ args, code: error?.code, exitCode: error?.exitCode, message: error?.message }).toEqual({ args, code: "VERSION", exitCode: 0, message: `monitor.ts ${packageJson.version}` });
    }
    // A script with a version option of its own keeps it.
    expect(readFlags(["--version", "2"], { version: { type: "string" } }, "x.ts")).toEqual({ version: "2" });
  });
});

describe("--version", () => {
  test("every script prints its name and the version on stdout and exits 0, with --version and -V", async () => {
    const scripts = ["ingest.ts", "database.ts", "analysis.ts", "main_pipeline.ts", "monitor.ts", "dashboard.ts"];
    const runs = await Promise.all(scripts.flatMap((script) => ["--version", "-V"].map(async (flag) => ({ script, flag, ...(await runScript(script, [flag])) }))));
    for (const { script, flag, stdout, stderr, code } of runs) {
      expect({ script, flag, stdout, stderr, code }).toEqual({ script, flag, stdout: `${script} ${packageJson.version}\n`, stderr: "", code: 0 });
    }
  });
});

describe("durationExample()", () => {
  test("the example a duration message gives is inside the range it names", () => {
    const bounds: [number, number][] = [[100, 300_000], [60_000, 30 * 86_400_000], [0, 86_400_000], [1_000, 3_600_000], [100, 100], [7, 9]];
    for (const range of bounds) {
      for (const preferred of [undefined, "90m", "1ms", "10s"]) {
        const example = durationExample(range, preferred);
        const ms = parseDuration(example);
        expect({ range, preferred, example, inside: ms !== undefined && ms >= range[0] && ms <= range[1] }).toEqual({ range, preferred, example, inside: true });
      }
    }
    // An example already inside is kept.
    expect(durationExample([60_000, 86_400_000], "90m")).toBe("90m");
    // A setting whose example is outside its range: the message shows one inside instead.
    const parsed = v.safeParse(durationSetting(10_000, [100, 300_000], "90m"), "1h");
    expect(parsed.success).toBe(false);
    expect(parsed.issues?.[0].message).toBe('must be a duration from 100ms to 5m, like 5s, got "1h"');
  });
});
