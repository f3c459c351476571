import { describe, expect, test } from "bun:test";
import { CotacaoError } from "../lib/errors.ts";
import { addRule, listRules, parseRuleWords, removeRule } from "../lib/alert_rules.ts";
import { runScript } from "./support/cli.ts";
import { useTestDatabase } from "./support/database.ts";
import { useTestTimeout } from "./support/timeout.ts";

useTestTimeout();

const db = useTestDatabase();

/** The USAGE line `fn` throws. */
function refusal(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(CotacaoError);
    expect((error as CotacaoError).code).toBe("USAGE");
    return (error as CotacaoError).message;
  }
  throw new Error("expected a refusal");
}

async function asyncRefusal(promise: Promise<unknown>): Promise<string> {
  const error = await promise.then(() => undefined, (caught: unknown) => caught);
  expect(error).toBeInstanceOf(CotacaoError);
  expect((error as CotacaoError).code).toBe("USAGE");
  return (error as CotacaoError).message;
}

describe("parseRuleWords", () => {
  test("reads level and move rules, any case, weeks as 7 days, with a note", () => {
    expect(parseRuleWords(["usd-brl", "above", "6.00"])).toEqual({ pair: "USD-BRL", kind: "above", level: "6.00", windowDays: null, note: null });
    expect(parseRuleWords(["USD-BRL", "below", "5.10"], "buy")).toEqual({ pair: "USD-BRL", kind: "below", level: "5.10", windowDays: null, note: "buy" });
    expect(parseRuleWords(["EUR-BRL", "move", "2%", "1d"])).toEqual({ pair: "EUR-BRL", kind: "move", level: "2", windowDays: 1, note: null });
    expect(parseRuleWords(["EUR-BRL", "MOVE", "0.5%", "1w"]).windowDays).toBe(7);
    expect(parseRuleWords(["EUR-BRL", "move", "10%", "30d"]).windowDays).toBe(30);
  });

  test("refuses bad input with one line saying what to do", () => {
    const cases: [string[], string][] = [
      [[], `Cannot add the rule: no pair given, write it like "USD-BRL above 6.00" or "EUR-BRL move 2% 1d"`],
      [["USDBRL", "above", "6"], `Cannot add the rule: "USDBRL" is not a pair like "USD-BRL", use letters or digits, 2 to 12 on each side of one dash`],
      [["USD-BRL"], `Cannot add the rule: no kind given, write "above", "below" or "move" after the pair`],
      [["USD-BRL", "over", "6"], `Cannot add the rule: "over" is not a kind, use "above", "below" or "move"`],
      [["USD-BRL", "above"], `Cannot add the rule: no level given, add one like "above 6.00"`],
      [["USD-BRL", "above", "six"], `Cannot add the rule: "six" is not a number, write it like "6.00"`],
      [["USD-BRL", "above", "0"], `Cannot add the rule: "0" is not above 0, use a level above 0`],
      [["USD-BRL", "below", "-1"], `Cannot add the rule: "-1" is not above 0, use a level above 0`],
      [["USD-BRL", "above", "6%"], `Cannot add the rule: "6%" is a percent, "above" takes a price like "6.00"`],
      [["USD-BRL", "above", "6", "1d"], `Cannot add the rule: "1d" is one word too many, write it like "USD-BRL above 6.00" or "EUR-BRL move 2% 1d"`],
      [["EUR-BRL", "move"], `Cannot add the rule: no percent given, add one like "2%" and a window like "1d"`],
      [["EUR-BRL", "move", "2", "1d"], `Cannot add the rule: "2" is not a percent, write it with % like "2%"`],
      [["EUR-BRL", "move", "0%", "1d"], `Cannot add the rule: "0%" is not above 0, use a percent above 0`],
      [["EUR-BRL", "move", "2%"], `Cannot add the rule: no window given, add one like "1d", "1w" or "30d"`],
      [["EUR-BRL", "move", "2%", "2h"], `Cannot add the rule: "2h" is not a window in days, write it like "1d", "1w" or "30d"`],
      [["EUR-BRL", "move", "2%", "0d"], `Cannot add the rule: "0d" is not a window in days, write it like "1d", "1w" or "30d"`],
      [["EUR-BRL", "move", "2%", "99999999999d"], `Cannot add the rule: "99999999999d" is longer than 3660 days, use a shorter window like "30d"`],
      [["EUR-BRL", "move", "2%", "1d", "x"], `Cannot add the rule: "x" is one word too many, write it like "USD-BRL above 6.00" or "EUR-BRL move 2% 1d"`],
    ];
    for (const [words, message] of cases) expect(refusal(() => parseRuleWords(words))).toBe(message);
  });
});

describe("stored rules", () => {
  test("add, list oldest first, refuse a duplicate, remove once, add again after removing", async () => {
    const above = await addRule(db.sql, parseRuleWords(["USD-BRL", "above", "6.00"], "sell"));
    const move = await addRule(db.sql, parseRuleWords(["EUR-BRL", "move", "2%", "1d"]));
    expect(above).toMatchObject({ pair: "USD-BRL", kind: "above", level: "6.00", windowDays: null, note: "sell" });
    expect((await listRules(db.sql)).map((rule) => rule.id)).toEqual([above.id, move.id]);

    // 6.0 is the same level as 6.00: numeric equality.
    expect(await asyncRefusal(addRule(db.sql, parseRuleWords(["USD-BRL", "above", "6.0"])))).toBe(
      `Cannot add the rule: USD-BRL above 6.0 already exists as rule ${above.id}, remove it first to change its note`,
    );
    // The same percent over another window is another rule.
    const week = await addRule(db.sql, parseRuleWords(["EUR-BRL", "move", "2%", "1w"]));
    expect(week.windowDays).toBe(7);

    expect((await removeRule(db.sql, String(above.id))).id).toBe(above.id);
    expect(await asyncRefusal(removeRule(db.sql, String(above.id)))).toBe(
      `Cannot remove the rule: rule ${above.id} is already removed, see the active ones with "bun analysis.ts rules"`,
    );
    expect(await asyncRefusal(removeRule(db.sql, "999999"))).toBe(
      `Cannot remove the rule: there is no rule 999999, see the active ones with "bun analysis.ts rules"`,
    );
    expect((await listRules(db.sql)).map((rule) => rule.id)).toEqual([move.id, week.id]);
    // Disabled, never deleted.
    const [kept] = await db.sql<{ disabled: boolean }[]>`select disabled_at is not null as disabled from alert_rules where id = ${above.id}`;
    expect(kept?.disabled).toBe(true);
    const again = await addRule(db.sql, parseRuleWords(["USD-BRL", "above", "6.00"]));
    expect(again.id).toBeGreaterThan(week.id);
    for (const rule of [move, week, again]) await removeRule(db.sql, String(rule.id));
  });

  test("the table refuses what the parser would", async () => {
    const insert = (kind: string, level: string, window: number | null) =>
      db.sql`insert into alert_rules (pair, kind, level, window_days) values ('USD-BRL', ${kind}, ${level}, ${window})`.then(() => "stored", () => "refused");
    expect(await insert("above", "0", null)).toBe("refused");
    expect(await insert("above", "6", 1)).toBe("refused");
    expect(await insert("move", "2", null)).toBe("refused");
    expect(await insert("move", "2", 0)).toBe("refused");
    expect(await insert("sideways", "2", null)).toBe("refused");
  });
});

describe("bun analysis.ts rules", () => {
  const run = (args: string[]) => runScript("analysis.ts", ["rules", ...args], { env: { DATABASE_URL: db.url } });
  const count = async () => Number((await db.sql<{ n: string }[]>`select count(*)::text as n from alert_rules`)[0]!.n);

  test("add, list (text and --json), remove", async () => {
    const added = await run(["add", "USD-BRL", "above", "6.00", "--note", "time to sell"]);
    expect(added.stderr).toBe("");
    expect(added.code).toBe(0);
    const id = /^added rule (\d+): USD-BRL above 6\.00\n$/.exec(added.stdout)?.[1];
    expect(id).toBeDefined();
    const move = await run(["add", "eur-brl", "move", "2%", "1w"]);
    expect(move.stdout).toMatch(/^added rule \d+: EUR-BRL move 2% 7d\n$/);

    const text = await run([]);
    expect(text.code).toBe(0);
    const lines = text.stdout.trimEnd().split("\n").map((line) => line.split("\t"));
    expect(lines.map((line) => line.slice(0, 6))).toEqual([
      [id!, "USD-BRL", "above", "6.00", "-", "time to sell"],
      [expect.any(String), "EUR-BRL", "move", "2%", "7d", "-"],
    ]);
    const json = await run(["--json"]);
    expect(JSON.parse(json.stdout)).toMatchObject([
      { id: Number(id), pair: "USD-BRL", kind: "above", level: "6.00", windowDays: null, note: "time to sell" },
      { pair: "EUR-BRL", kind: "move", level: "2", windowDays: 7, note: null },
    ]);

    const removed = await run(["remove", id!]);
    expect(removed).toEqual({ stdout: `removed rule ${id}: USD-BRL above 6.00\n`, stderr: "", code: 0 });
    const twice = await run(["remove", id!]);
    expect(twice.code).toBe(2);
    expect(twice.stderr).toBe(`Cannot remove the rule: rule ${id} is already removed, see the active ones with "bun analysis.ts rules"\n`);
    expect(JSON.parse((await run(["--json"])).stdout).map((rule: { pair: string }) => rule.pair)).toEqual(["EUR-BRL"]);
  });

  test("bad input: exit 2, one line, nothing stored", async () => {
    const before = await count();
    for (const args of [
      ["add", "USD-BRL", "above", "-1"],
      ["add", "USD-BRL", "above", "abc"],
      ["add", "USDBRL", "above", "6"],
      ["add", "EUR-BRL", "move", "2", "1d"],
      ["add", "EUR-BRL", "move", "2%", "soon"],
      ["add", "USD-BRL"],
      ["add", "USD-BRL", "above", "6", "--bogus"],
      ["remove"],
      ["remove", "x"],
      ["frobnicate"],
    ]) {
      const result = await run(args);
      expect({ args, code: result.code, stdout: result.stdout }).toEqual({ args, code: 2, stdout: "" });
      expect(result.stderr.trimEnd().split("\n")).toHaveLength(1);
      expect(result.stderr).toMatch(/^Cannot /);
    }
    expect(await count()).toBe(before);
    const duplicate = ["add", "EUR-BRL", "move", "3%", "1d"];
    expect((await run(duplicate)).code).toBe(0);
    const again = await run(duplicate);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/^Cannot add the rule: EUR-BRL move 3% 1d already exists as rule \d+, remove it first to change its note\n$/);
    expect(await count()).toBe(before + 1);
  });

  test("--help mentions rules", async () => {
    const help = await run(["--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain("bun analysis.ts rules add PAIR above|below LEVEL");
  });
});
