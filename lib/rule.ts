/**
 * lib/rule.ts: the moving-average rule, exactly (see analysis.ts's header), and its settings:
 * pure maths over a daily series, read by the alert lifecycle (analysis.ts), the dashboard's card
 * and the monitor alike.
 */
import * as v from "valibot";
import { durationSetting } from "./cli.ts";
import { envIssue } from "./errors.ts";
import { PairSchema } from "./quote.ts";

const MS_PER_DAY = 86_400_000;
const DEFAULT_WINDOW_DAYS = 20;
const DEFAULT_MIN_POINTS = 10;
const DEFAULT_THRESHOLD_PCT = 3;
// An alert resolves only once |deviation| falls under this share of the threshold: a price
// hovering at the line does not flap.
const DEFAULT_RECOVERY_PCT = 80;
// The cross-check (lib/views.ts divergenceSeries()): AwesomeAPI's quote more than this far from
// the closing PTAX, in percent, fires a divergence alert.
const DEFAULT_DIVERGENCE_PCT = 1.5;
const DEFAULT_STALE_AFTER_MS = 2 * 3_600_000;
// The window's running sum is recomputed from scratch this often, so rounding cannot drift.
const RESUM_EVERY = 1024;
// Rounding of the running maths must never flip a deviation that is exactly at the threshold.
const RELATIVE_TOLERANCE = 1e-12;
// A notification that keeps failing (5xx, 408, 429, network) is retried across runs, with a
// wait that doubles from a minute up to an hour, until this long after it was written
// (ALERT_WEBHOOK_GIVE_UP_AFTER; lib/webhooks.ts's default too).
export const DEFAULT_WEBHOOK_GIVE_UP_AFTER_MS = 24 * 3_600_000;
const MAX_WEBHOOK_GIVE_UP_AFTER_MS = 30 * MS_PER_DAY;

// ---------------------------------------------------------------------------------------------
// Configuration

/** The rule's parameters for one pair. Fractions, not percentages. */
export interface RuleParams {
  windowDays: number;
  minPoints: number;
  threshold: number;
  /** |deviation| under this resolves an open alert. */
  recovery: number;
}

/**
 * The divergence alert's settings for one pair, in percent: the cross-check's unit (its
 * divergences are percents with six decimals, lib/views.ts), so a divergence exactly at the
 * line compares as written.
 */
export interface DivergenceParams {
  /** |divergence| strictly above this fires. */
  thresholdPct: number;
  /** |divergence| under this resolves: the threshold times the recovery share (COTACAO_ALERT_RECOVERY_PCT). */
  recoveryPct: number;
}

/** The rule's and the alerts' settings, from the environment (loadAnalysisConfig()). */
export interface AnalysisConfig {
  defaults: RuleParams;
  /** Overrides per pair, e.g. a wider threshold for BTC-BRL. */
  perPair: Map<string, Partial<RuleParams>>;
  /** The divergence alert's settings: the default, and each pair with an override of its threshold or recovery share. */
  divergence: { defaults: DivergenceParams; perPair: Map<string, DivergenceParams> };
  staleAfterMs: number;
  webhookUrls: string[];
  /** A notification still failing this long after it was written is given up (24 h by default). */
  webhookGiveUpAfterMs?: number;
}

/**
 * A setting with per-pair overrides: "20" or "20,BTC-BRL:10" (the default, then PAIR:value
 * items). Returns the issue's message when the text is malformed.
 */
function perPairNumbers(text: string, setting: PerPairSetting): PerPairNumbers | string {
  const perPair = new Map<string, number>();
  let fallback: number | undefined;
  for (const item of text.split(",").map((part) => part.trim()).filter(Boolean)) {
    const [pair, value = ""] = item.includes(":") ? item.split(":", 2).map((part) => part.trim()) : [undefined, item];
    // Plain decimals only: Number() would also read "1e3", "0x10" and "Infinity".
    const number = /^\d+(\.\d+)?$/.test(value) ? Number(value) : Number.NaN;
    if (!setting.isValid(number)) {
      return `must be ${setting.expected}, optionally followed by PAIR:value items, like "${setting.example}"; got "${item}"`;
    }
    const named = pair === undefined ? undefined : v.safeParse(PairSchema, pair);
    if (named === undefined) fallback = number;
    else if (!named.success) return `names "${pair}", which is not a pair like "USD-BRL"; write items like "${setting.example}"`;
    else perPair.set(named.output, number);
  }
  return { fallback, perPair };
}

/** How a setting with per-pair overrides is checked and explained. */
interface PerPairSetting {
  isValid: (n: number) => boolean;
  expected: string;
  example: string;
}

// Each variable is optional: its default ("") still goes through the pipe, so the output is whole.
function perPairSchema(setting: PerPairSetting) {
  return v.optional(
    v.pipe(
      v.string(),
      v.rawTransform(({ dataset, addIssue, NEVER }) => {
        const parsed = perPairNumbers(dataset.value, setting);
        if (typeof parsed === "string") {
          addIssue({ message: parsed });
          return NEVER;
        }
        return parsed;
      }),
    ),
    "",
  );
}

// Ten years of days: a window or a minimum beyond it has no data to work on.
const MAX_WINDOW_DAYS = 3650;
const isDayCount = (n: number) => Number.isInteger(n) && n > 0 && n <= MAX_WINDOW_DAYS;
const isPercent = (n: number) => n > 0 && n < 100;
const STALE_AFTER_BOUNDS_MS = [60_000, 30 * MS_PER_DAY] as const;

const AnalysisEnvSchema = v.object({
  COTACAO_MA_WINDOW_DAYS: perPairSchema({ isValid: isDayCount, expected: `a whole number of days from 1 to ${MAX_WINDOW_DAYS}`, example: "20,BTC-BRL:10" }),
  COTACAO_MA_MIN_POINTS: perPairSchema({ isValid: isDayCount, expected: `a whole number of closes from 1 to ${MAX_WINDOW_DAYS}`, example: "10,BTC-BRL:5" }),
  COTACAO_ALERT_THRESHOLD_PCT: perPairSchema({ isValid: isPercent, expected: "a percentage between 0 and 100", example: "3,BTC-BRL:8" }),
  COTACAO_ALERT_RECOVERY_PCT: perPairSchema({ isValid: isPercent, expected: "a percentage of the threshold between 0 and 100", example: "80,BTC-BRL:50" }),
  COTACAO_DIVERGENCE_PCT: perPairSchema({ isValid: isPercent, expected: "a percentage between 0 and 100", example: "1.5,USD-BRL:1.2" }),
  COTACAO_STALE_AFTER: durationSetting(DEFAULT_STALE_AFTER_MS, STALE_AFTER_BOUNDS_MS, "90m"),
  ALERT_WEBHOOK_GIVE_UP_AFTER: durationSetting(DEFAULT_WEBHOOK_GIVE_UP_AFTER_MS, [60_000, MAX_WEBHOOK_GIVE_UP_AFTER_MS], "6h"),
  ALERT_WEBHOOK_URLS: v.optional(
    v.pipe(
      v.string(),
      v.transform((text) => text.split(",").map((url) => url.trim()).filter(Boolean)),
    // Webhook URLs carry their secret in the path: a bad one is named by its position only.
    v.check(
      (urls) => urls.every((url) => /^https?:\/\/[^\s]+$/.test(url) && URL.canParse(url)),
      (issue) => {
        const urls = issue.input as string[];
        const position = urls.findIndex((url) => !/^https?:\/\/[^\s]+$/.test(url) || !URL.canParse(url)) + 1;
        return `must be comma-separated http(s) URLs; URL number ${position} is not one`;
      },
    ),
    ),
    "",
  ),
});

/** Reads and validates the analysis settings from the environment; throws a one-line error naming the variable. */
export function loadAnalysisConfig(env: Record<string, string | undefined>): AnalysisConfig {
  const result = v.safeParse(AnalysisEnvSchema, env);
  if (!result.success) throw envIssue(result.issues);
  const { COTACAO_MA_WINDOW_DAYS, COTACAO_MA_MIN_POINTS, COTACAO_ALERT_THRESHOLD_PCT, COTACAO_ALERT_RECOVERY_PCT, COTACAO_DIVERGENCE_PCT } = result.output;
  const defaults: RuleParams = {
    windowDays: COTACAO_MA_WINDOW_DAYS.fallback ?? DEFAULT_WINDOW_DAYS,
    minPoints: COTACAO_MA_MIN_POINTS.fallback ?? DEFAULT_MIN_POINTS,
    threshold: (COTACAO_ALERT_THRESHOLD_PCT.fallback ?? DEFAULT_THRESHOLD_PCT) / 100,
    recovery: 0, // set below: a share of the threshold
  };
  const recoveryShare = (COTACAO_ALERT_RECOVERY_PCT.fallback ?? DEFAULT_RECOVERY_PCT) / 100;
  defaults.recovery = defaults.threshold * recoveryShare;
  const perPair = new Map<string, Partial<RuleParams>>();
  const override = (pair: string) => perPair.get(pair) ?? perPair.set(pair, {}).get(pair)!;
  for (const [pair, days] of COTACAO_MA_WINDOW_DAYS.perPair) override(pair).windowDays = days;
  for (const [pair, points] of COTACAO_MA_MIN_POINTS.perPair) override(pair).minPoints = points;
  for (const [pair, pct] of COTACAO_ALERT_THRESHOLD_PCT.perPair) override(pair).threshold = pct / 100;
  for (const [pair, pct] of COTACAO_ALERT_RECOVERY_PCT.perPair) override(pair).recovery = pct / 100;
  // A per-pair recovery is a share like the default; resolve it against that pair's threshold.
  for (const [pair, params] of perPair) {
    const threshold = params.threshold ?? defaults.threshold;
    const share = COTACAO_ALERT_RECOVERY_PCT.perPair.has(pair) ? (params.recovery as number) : recoveryShare;
    params.recovery = threshold * share;
  }
  return {
    defaults,
    perPair,
    divergence: divergenceSettings(COTACAO_DIVERGENCE_PCT, COTACAO_ALERT_RECOVERY_PCT),
    staleAfterMs: result.output.COTACAO_STALE_AFTER,
    webhookUrls: result.output.ALERT_WEBHOOK_URLS,
    webhookGiveUpAfterMs: result.output.ALERT_WEBHOOK_GIVE_UP_AFTER,
  };
}

type PerPairNumbers = { fallback: number | undefined; perPair: Map<string, number> };

/**
 * The divergence alert's settings: its threshold (COTACAO_DIVERGENCE_PCT) and the recovery share
 * the deviation rule uses (COTACAO_ALERT_RECOVERY_PCT), each with its per-pair overrides.
 */
function divergenceSettings(thresholds: PerPairNumbers, shares: PerPairNumbers): AnalysisConfig["divergence"] {
  const paramsOf = (pair: string | undefined): DivergenceParams => {
    const thresholdPct = (pair !== undefined ? thresholds.perPair.get(pair) : undefined) ?? thresholds.fallback ?? DEFAULT_DIVERGENCE_PCT;
    const sharePct = (pair !== undefined ? shares.perPair.get(pair) : undefined) ?? shares.fallback ?? DEFAULT_RECOVERY_PCT;
    // Rounded back to the decimal the two settings make (1.5 x 80 % is 1.2, not 1.2000000000000002),
    // so a divergence of exactly the recovery level holds, as written.
    return { thresholdPct, recoveryPct: Number(((thresholdPct * sharePct) / 100).toPrecision(12)) };
  };
  const perPair = new Map<string, DivergenceParams>();
  for (const pair of new Set([...thresholds.perPair.keys(), ...shares.perPair.keys()])) perPair.set(pair, paramsOf(pair));
  return { defaults: paramsOf(undefined), perPair };
}

/** The divergence alert's settings for `pair`. */
export function divergenceParamsFor(config: AnalysisConfig, pair: string): DivergenceParams {
  return config.divergence.perPair.get(pair) ?? config.divergence.defaults;
}

/** The rule's parameters for `pair`: its overrides over the defaults. */
export function paramsFor(config: AnalysisConfig, pair: string): RuleParams {
  return { ...config.defaults, ...config.perPair.get(pair) };
}

// ---------------------------------------------------------------------------------------------
// The rule (pure)

/** A pair's daily series: day numbers (days since 1970-01-01, São Paulo calendar), ascending, and each day's close. */
export interface DailySeries {
  days: Int32Array;
  closes: Float64Array;
}

/** The rule's verdict for every day of a series; NaN average and deviation where history is insufficient. */
export interface Evaluation {
  average: Float64Array;
  deviation: Float64Array;
  anomalous: Uint8Array;
}

/**
 * The moving average, deviation and anomaly flag of every day, in one pass: the window's sum
 * is kept running as days enter and leave it. O(n) whatever the window. A day is anomalous when
 * |close * count - sum| > threshold * sum, the same as |close / average - 1| > threshold but
 * exact where that would round either way at a deviation of exactly the threshold.
 */
export function evaluateSeries(series: DailySeries, params: RuleParams): Evaluation {
  const { days, closes } = series;
  const n = days.length;
  // One allocation for both number columns: this runs over millions of points.
  const numbers = new Float64Array(2 * n);
  const average = numbers.subarray(0, n);
  const deviation = numbers.subarray(n);
  const anomalous = new Uint8Array(n);
  const { windowDays, minPoints } = params;
  // A day is anomalous when |close * count - sum| > (threshold + tolerance) * sum.
  const limit = params.threshold + RELATIVE_TOLERANCE;
  let first = 0; // the oldest day still in the window
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const since = days[i]! - windowDays;
    while (first < i && days[first]! < since) sum -= closes[first++]!;
    if ((i & (RESUM_EVERY - 1)) === 0) {
      sum = 0;
      for (let j = first; j < i; j++) sum += closes[j]!;
    }
    const count = i - first;
    const close = closes[i]!;
    if (count >= minPoints) {
      average[i] = sum / count;
      deviation[i] = (close * count) / sum - 1;
      anomalous[i] = Math.abs(close * count - sum) > limit * sum ? 1 : 0;
    } else {
      average[i] = Number.NaN;
      deviation[i] = Number.NaN;
    }
    sum += close;
  }
  return { average, deviation, anomalous };
}

