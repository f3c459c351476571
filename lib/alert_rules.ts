/**
 * lib/alert_rules.ts: the alerts people set themselves (issue 19), stored: what a rule is, the words
 * `bun analysis.ts rules add` reads ("USD-BRL above 6.00", "EUR-BRL move 2% 1d"), and the
 * table's reads and writes (sql/013). Evaluating them is not here yet.
 */
import * as v from "valibot";
import { CotacaoError } from "./errors.ts";
import type { Sql } from "./pool.ts";
import { PairSchema } from "./quote.ts";

export const RULE_KINDS = ["above", "below", "move"] as const;
export type RuleKind = (typeof RULE_KINDS)[number];

/** A positive decimal as people write it: "6", "6.00", "0.5". */
const LEVEL_PATTERN = /^\d+(\.\d+)?$/;
/** A window in São Paulo days: "1d", "30d", or weeks "1w" (7 days). */
const WINDOW_PATTERN = /^(\d+)([dw])$/;
/** Ten years: longer than any history a move could be measured over, and inside window_days's integer. */
const MAX_WINDOW_DAYS = 3660;

/** A rule as added: level as text so no digit is lost on the way to numeric; a window only for moves. */
export const NewRuleSchema = v.pipe(
  v.object({
    pair: PairSchema,
    kind: v.picklist(RULE_KINDS),
    level: v.pipe(v.string(), v.regex(LEVEL_PATTERN), v.check((text) => Number(text) > 0, "must be above 0")),
    windowDays: v.nullable(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(MAX_WINDOW_DAYS))),
    note: v.nullable(v.string()),
  }),
  v.check((rule) => (rule.kind === "move") === (rule.windowDays !== null), "a move rule has a window, a level rule none"),
);
export type NewRule = v.InferOutput<typeof NewRuleSchema>;

/** A stored rule. */
export interface Rule extends NewRule {
  id: number;
  createdAt: Date;
}

const EXAMPLES = `like "USD-BRL above 6.00" or "EUR-BRL move 2% 1d"`;

function refuse(message: string): CotacaoError {
  return new CotacaoError("USAGE", `Cannot add the rule: ${message}`);
}

/** The level word: "6.00" for above/below, "2%" for move; the number as typed, without the %. */
function parseLevel(kind: RuleKind, word: string | undefined): string {
  if (word === undefined) {
    throw refuse(kind === "move" ? `no percent given, add one like "2%" and a window like "1d"` : `no level given, add one like "${kind} 6.00"`);
  }
  const percent = word.endsWith("%");
  if (kind === "move" && !percent) throw refuse(`"${word}" is not a percent, write it with % like "2%"`);
  if (kind !== "move" && percent) throw refuse(`"${word}" is a percent, "${kind}" takes a price like "6.00"`);
  const number = percent ? word.slice(0, -1) : word;
  if (/^-\d+(\.\d+)?$/.test(number)) throw refuse(`"${word}" is not above 0, use a ${kind === "move" ? "percent" : "level"} above 0`);
  if (!LEVEL_PATTERN.test(number)) throw refuse(`"${word}" is not a number, write it like ${kind === "move" ? `"2%"` : `"6.00"`}`);
  if (!(Number(number) > 0)) throw refuse(`"${word}" is not above 0, use a ${kind === "move" ? "percent" : "level"} above 0`);
  return number;
}

/** The window word of a move: "1d", "30d", "1w" (7 days); São Paulo days. */
function parseWindow(word: string | undefined): number {
  if (word === undefined) throw refuse(`no window given, add one like "1d", "1w" or "30d"`);
  const match = WINDOW_PATTERN.exec(word);
  const days = match ? Number(match[1]) * (match[2] === "w" ? 7 : 1) : 0;
  if (!(days > 0)) throw refuse(`"${word}" is not a window in days, write it like "1d", "1w" or "30d"`);
  if (days > MAX_WINDOW_DAYS) throw refuse(`"${word}" is longer than ${MAX_WINDOW_DAYS} days, use a shorter window like "30d"`);
  return days;
}

/** Reads `PAIR KIND LEVEL [WINDOW]` (the words after `rules add`); throws one USAGE line for anything else. */
export function parseRuleWords(words: readonly string[], note: string | null = null): NewRule {
  const [pairWord, kindWord, levelWord, windowWord, ...rest] = words;
  if (pairWord === undefined) throw refuse(`no pair given, write it ${EXAMPLES}`);
  const pair = v.safeParse(PairSchema, pairWord);
  if (!pair.success) throw refuse(`"${pairWord}" is not a pair like "USD-BRL", use letters or digits, 2 to 12 on each side of one dash`);
  if (kindWord === undefined) throw refuse(`no kind given, write "above", "below" or "move" after the pair`);
  const kind = kindWord.toLowerCase();
  if (!(RULE_KINDS as readonly string[]).includes(kind)) throw refuse(`"${kindWord}" is not a kind, use "above", "below" or "move"`);
  const ruleKind = kind as RuleKind;
  const level = parseLevel(ruleKind, levelWord);
  const windowDays = ruleKind === "move" ? parseWindow(windowWord) : null;
  const extra = ruleKind === "move" ? rest : [windowWord, ...rest].filter((word) => word !== undefined);
  if (extra.length > 0) throw refuse(`"${extra.join(" ")}" is one word too many, write it ${EXAMPLES}`);
  return v.parse(NewRuleSchema, { pair: pair.output, kind: ruleKind, level, windowDays, note });
}

/** "USD-BRL above 6.00", "EUR-BRL move 2% 1d": a rule as it is typed. */
export function describeRule(rule: NewRule): string {
  return rule.kind === "move" ? `${rule.pair} move ${rule.level}% ${rule.windowDays}d` : `${rule.pair} ${rule.kind} ${rule.level}`;
}

type RuleRow = { id: string; pair: string; kind: RuleKind; level: string; window_days: number | null; note: string | null; created_at: Date };

function toRule(row: RuleRow): Rule {
  return { id: Number(row.id), pair: row.pair, kind: row.kind, level: row.level, windowDays: row.window_days, note: row.note, createdAt: row.created_at };
}

/** Stores a rule; the same active rule twice is refused with one USAGE line, and nothing stored. */
export async function addRule(sql: Sql, rule: NewRule): Promise<Rule> {
  const rows = await sql<RuleRow[]>`
    insert into alert_rules (pair, kind, level, window_days, note)
    values (${rule.pair}, ${rule.kind}, ${rule.level}, ${rule.windowDays}, ${rule.note})
    on conflict (pair, kind, level, coalesce(window_days, 0)) where disabled_at is null do nothing
    returning id::text, pair, kind, level::text, window_days, note, created_at`;
  if (rows.length === 0) {
    const [existing] = await sql<{ id: string }[]>`
      select id::text from alert_rules
      where disabled_at is null and pair = ${rule.pair} and kind = ${rule.kind} and level = ${rule.level}
        and coalesce(window_days, 0) = ${rule.windowDays ?? 0}`;
    throw refuse(`${describeRule(rule)} already exists as rule ${existing?.id ?? "?"}, remove it first to change its note`);
  }
  return toRule(rows[0]!);
}

/** The active rules, oldest first. */
export async function listRules(sql: Sql): Promise<Rule[]> {
  const rows = await sql<RuleRow[]>`
    select id::text, pair, kind, level::text, window_days, note, created_at
    from alert_rules where disabled_at is null order by created_at, id`;
  return rows.map(toRule);
}

/** Disables a rule (never deletes it: its alerts keep their meaning); an unknown or removed id is one USAGE line. */
export async function removeRule(sql: Sql, idText: string): Promise<Rule> {
  const fail = (message: string) => new CotacaoError("USAGE", `Cannot remove the rule: ${message}`);
  if (!/^\d{1,18}$/.test(idText)) throw fail(`"${idText}" is not a rule id, use a number from "bun analysis.ts rules"`);
  const rows = await sql<RuleRow[]>`
    update alert_rules set disabled_at = now() where id = ${idText} and disabled_at is null
    returning id::text, pair, kind, level::text, window_days, note, created_at`;
  if (rows.length === 0) {
    const [known] = await sql<{ id: string }[]>`select id::text from alert_rules where id = ${idText}`;
    throw fail(known ? `rule ${idText} is already removed, see the active ones with "bun analysis.ts rules"` : `there is no rule ${idText}, see the active ones with "bun analysis.ts rules"`);
  }
  return toRule(rows[0]!);
}
