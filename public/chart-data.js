/**
 * chart-data.js: the page's pure part. Shapes the API's answers into uPlot's columnar data,
 * does the range arithmetic and formats numbers and times. No DOM, no fetch: bun:test imports
 * it as it is (test/chart-data.test.ts), the browser loads it as an ES module. Words come from
 * i18n.js, in the language of the `locale` each function is given.
 */
import { text } from "./i18n.js";

/** The range presets, in the order the buttons show them; `null`: the whole history. */
export const RANGE_SECONDS = /** @type {const} */ ({
  "1D": 86_400,
  "1W": 7 * 86_400,
  "1M": 30 * 86_400,
  "3M": 91 * 86_400,
  "1Y": 365 * 86_400,
  "5Y": 5 * 365 * 86_400,
  All: null,
});

/** @typedef {keyof typeof RANGE_SECONDS} RangePreset */

/** The zone the page shows times in unless the reader picks their own. */
export const SAO_PAULO = "America/Sao_Paulo";

/** The locale of numbers and dates unless the page is told otherwise. */
export const DEFAULT_LOCALE = "pt-BR";

/**
 * Series order in the chart's data, after x: drawn in this order, so the bid line lies on top
 * of the average, and both on top of the bands.
 */
export const SERIES = /** @type {const} */ ({ lower: 1, upper: 2, ma: 3, min: 4, max: 5, bid: 6, official: 7 });

/**
 * @typedef {object} OfficialAnswer  GET /api/official
 * @property {string} pair
 * @property {{ publishedAt: string, bulletin: string, buy: string, sell: string }[]} bulletins
 * @property {{ day: string, publishedAt: string, buy: string, bid: string, divergencePct: string }[]} divergence
 */

/** @typedef {{ ts: number[], buy: number[] }} OfficialCloses  the closing PTAX of each day: its time (seconds) and buy rate */

/**
 * @typedef {object} QuotesAnswer  GET /api/quotes
 * @property {string} pair
 * @property {string} [from]  ISO: the range the answer covers
 * @property {string} [to]
 * @property {number} bucketSeconds  0: every stored quote, else the width of one bucket
 * @property {[number[], (number|null)[], (number|null)[], (number|null)[], (number|null)[]]} data
 *   [ts seconds, first, min, max, last]
 * @property {{ windowDays: number, thresholdPct: number,
 *   data: [number[], (number|null)[], (number|null)[], (number|null)[]] } | null} [ma]
 *   [day ts seconds, average, lower, upper]
 */

/** @typedef {[number[], ...(number|null)[][]]} ChartData  x, then the series in SERIES order */

/**
 * @param {unknown} value
 * @returns {number|null}
 */
function toNumber(value) {
  // The API sends numbers; the checks below are for decimal strings and gaps.
  if (typeof value === "number") return Number.isFinite(value) ? value : null;
  if (value === null || value === undefined || value === "") return null;
  const number = Number(value);
  return Number.isFinite(number) ? number : null;
}

/**
 * The closing bulletins of an /api/official answer, oldest first: the chart's second series.
 * @param {OfficialAnswer | null | undefined} answer
 * @returns {OfficialCloses}
 */
export function officialCloses(answer) {
  /** @type {OfficialCloses} */
  const closes = { ts: [], buy: [] };
  for (const bulletin of answer?.bulletins ?? []) {
    const ts = toSeconds(bulletin.publishedAt);
    const buy = toNumber(bulletin.buy);
    if (bulletin.bulletin !== "closing" || ts === null || buy === null) continue;
    closes.ts.push(ts);
    closes.buy.push(buy);
  }
  return closes;
}

/**
 * Merges the quote buckets, the daily moving average and the official closes on one x axis (the
 * union of all, ascending), as uPlot wants: `[xs, ...]` in SERIES order, null where a series has
 * no point (its line spans the gap). The bid is each bucket's last, so the line ends on the
 * newest price; min and max keep a bucket's spikes visible at any zoom.
 * @param {QuotesAnswer} answer
 * @param {OfficialCloses | null} [official]  BCB's closing PTAX (SERIES.official), when the pair has it
 * @returns {ChartData}
 */
export function prepData(answer, official = null) {
  const data = prepQuotes(answer);
  return official && official.ts.length ? withOfficial(data, official) : [...data, data[0].map(() => null)];
}

/**
 * `data` with the official closes as its SERIES.official column: each close at its own time,
 * a point of its own unless a quote has the very same time.
 * @param {ChartData} data  without the official column
 * @param {OfficialCloses} official
 * @returns {ChartData}
 */
function withOfficial(data, official) {
  const [qx] = data;
  /** @type {number[]} */
  const xs = [];
  /** @type {(number|null)[][]} */
  const columns = Array.from({ length: data.length }, () => []);
  let i = 0;
  let k = 0;
  while (i < qx.length || k < official.ts.length) {
    const qt = i < qx.length ? /** @type {number} */ (qx[i]) : Infinity;
    const ot = k < official.ts.length ? /** @type {number} */ (official.ts[k]) : Infinity;
    const t = Math.min(qt, ot);
    xs.push(t);
    const quote = qt === t ? i++ : -1;
    for (let s = 1; s < data.length; s++) /** @type {(number|null)[]} */ (columns[s - 1]).push(quote < 0 ? null : (data[s]?.[quote] ?? null));
    /** @type {(number|null)[]} */ (columns[data.length - 1]).push(ot === t ? (official.buy[k++] ?? null) : null);
  }
  return [xs, ...columns];
}

/**
 * The official close shown for the point at `idx`: the newest at or before it.
 * @param {ChartData} data
 * @param {number|null} idx
 * @returns {number|null}
 */
export function officialAt(data, idx) {
  const column = data[SERIES.official] ?? [];
  for (let i = idx ?? -1; i >= 0; i--) if (column[i] !== null && column[i] !== undefined) return /** @type {number} */ (column[i]);
  return null;
}

/**
 * The quotes and the average on one x axis, in SERIES order up to the bid.
 * @param {QuotesAnswer} answer
 * @returns {ChartData}
 */
function prepQuotes(answer) {
  const [qx = [], , qmin = [], qmax = [], qlast = []] = answer.data;
  const [mx = [], mavg = [], mlow = [], mhigh = []] = answer.ma?.data ?? [];
  /** @type {number[]} */
  const xs = [];
  /** @type {(number|null)[][]} */
  const columns = Array.from({ length: 6 }, () => []);
  /** @param {number} series @param {number|null} value */
  const put = (series, value) => /** @type {(number|null)[]} */ (columns[series - 1]).push(value);
  let i = 0;
  let j = 0;
  while (i < qx.length || j < mx.length) {
    const qt = i < qx.length ? /** @type {number} */ (qx[i]) : Infinity;
    const mt = j < mx.length ? /** @type {number} */ (mx[j]) : Infinity;
    const t = Math.min(qt, mt);
    xs.push(t);
    const quote = qt === t ? i++ : -1;
    // A quote between day starts gets the average of the day that holds it, the one the rule
    // compares it with: the legend reads it at the quote's own index, and the (stepped) band
    // reaches the newest quote of today instead of stopping at today's start.
    const day = mt === t ? j++ : quote >= 0 && j > 0 && t < dayEnd(mx, j - 1) ? j - 1 : -1;
    put(SERIES.bid, quote < 0 ? null : toNumber(qlast[quote]));
    put(SERIES.min, quote < 0 ? null : toNumber(qmin[quote]));
    put(SERIES.max, quote < 0 ? null : toNumber(qmax[quote]));
    put(SERIES.ma, day < 0 ? null : toNumber(mavg[day]));
    put(SERIES.lower, day < 0 ? null : toNumber(mlow[day]));
    put(SERIES.upper, day < 0 ? null : toNumber(mhigh[day]));
  }
  return [xs, ...columns];
}

/**
 * Where the stored day `j` of `days` (day starts, ascending) ends: the next stored day's start,
 * or a day after its own start for the newest (São Paulo keeps no summer time since 2019).
 * @param {readonly number[]} days
 * @param {number} j
 */
function dayEnd(days, j) {
  const start = /** @type {number} */ (days[j]);
  const next = days[j + 1];
  return next === undefined ? start + 86_400 : Math.min(next, start + 86_400 + 3_600);
}

/**
 * The moving average and band of the stored day that holds `ts` (seconds), from a quotes
 * answer's `ma`; null when no stored day does (a live quote of a day not yet read).
 * @param {QuotesAnswer["ma"]} ma
 * @param {number} ts
 * @returns {{ ma: number|null, lower: number|null, upper: number|null } | null}
 */
export function dayAverageAt(ma, ts) {
  const [days = [], avg = [], low = [], high = []] = ma?.data ?? [];
  let lo = 0;
  let hi = days.length;
  // The first day starting after ts; the one before it is the candidate.
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (/** @type {number} */ (days[mid]) <= ts) lo = mid + 1;
    else hi = mid;
  }
  const j = lo - 1;
  if (j < 0 || ts >= dayEnd(days, j)) return null;
  return { ma: toNumber(avg[j]), lower: toNumber(low[j]), upper: toNumber(high[j]) };
}

/**
 * Adds the days of `days` (a quotes answer's `ma`, e.g. the day of a live quote that began a new
 * day) to `ma` where they are newer than its newest day, and gives the chart's points of those
 * days that have none their day's average. Both in place; returns whether the chart changed.
 * @param {ChartData} data
 * @param {NonNullable<QuotesAnswer["ma"]>} ma
 * @param {QuotesAnswer["ma"]} days
 * @returns {boolean}
 */
export function addDays(data, ma, days) {
  const [starts = [], averages = [], lows = [], highs = []] = days?.data ?? [];
  for (let i = 0; i < starts.length; i++) {
    const newest = ma.data[0].at(-1);
    if (newest !== undefined && /** @type {number} */ (starts[i]) <= newest) continue;
    ma.data[0].push(/** @type {number} */ (starts[i]));
    ma.data[1].push(averages[i] ?? null);
    ma.data[2].push(lows[i] ?? null);
    ma.data[3].push(highs[i] ?? null);
  }
  let changed = false;
  const xs = data[0];
  const first = starts[0];
  if (first === undefined) return false;
  // Newest first: the points of the new days are at the end.
  for (let i = xs.length - 1; i >= 0 && /** @type {number} */ (xs[i]) >= first; i--) {
    if (data[SERIES.bid]?.[i] === null || data[SERIES.ma]?.[i] !== null) continue;
    const day = dayAverageAt(ma, /** @type {number} */ (xs[i]));
    if (!day || day.ma === null) continue;
    /** @type {(number|null)[]} */ (data[SERIES.ma])[i] = day.ma;
    /** @type {(number|null)[]} */ (data[SERIES.lower])[i] = day.lower;
    /** @type {(number|null)[]} */ (data[SERIES.upper])[i] = day.upper;
    changed = true;
  }
  return changed;
}

/**
 * The row whose average the legend shows beside the bid at `idx`: the bid's own row (prepData
 * gives each quote its day's average), or, for a bucket of whole days, whose bid is its last
 * day's close, the last day of the bucket that has one. null: no average for it.
 * @param {ChartData} data
 * @param {number} idx
 * @param {number} bucketSeconds
 * @returns {number|null}
 */
export function averageIndexFor(data, idx, bucketSeconds) {
  const xs = data[0];
  const averages = data[SERIES.ma] ?? [];
  if (bucketSeconds < 86_400) return averages[idx] === null || averages[idx] === undefined ? null : idx;
  const end = /** @type {number} */ (xs[idx]) + bucketSeconds;
  let found = null;
  for (let i = idx; i < xs.length && /** @type {number} */ (xs[i]) < end; i++) {
    if (averages[i] !== null && averages[i] !== undefined) found = i;
  }
  return found;
}

/**
 * How many points of the bid the chart holds (buckets, or quotes at full resolution), live
 * ones included: the footnote's count.
 * @param {ChartData} data
 */
export function countPoints(data) {
  let n = 0;
  for (const value of data[SERIES.bid] ?? []) if (value !== null && value !== undefined) n++;
  return n;
}

/**
 * Adds a live quote to the chart's data in place: a new point after the newest, or the
 * newest point's new value when the time is the same. An older quote is left to the next fetch
 * (inserting in the middle would shift every index uPlot holds). Returns whether it changed.
 * @param {ChartData} data
 * @param {number} ts  seconds
 * @param {number} bid
 * @param {{ ma: number|null, lower: number|null, upper: number|null } | null} [average]
 *   the average of the quote's day (dayAverageAt()), so that a new point has its own
 * @returns {boolean}
 */
export function appendQuote(data, ts, bid, average = null) {
  const xs = data[0];
  const last = xs.length - 1;
  if (last >= 0 && ts < /** @type {number} */ (xs[last])) return false;
  if (last >= 0 && ts === xs[last]) {
    const bids = data[SERIES.bid];
    const mins = data[SERIES.min];
    const maxs = data[SERIES.max];
    if (!bids || !mins || !maxs) return false;
    bids[last] = bid;
    mins[last] = Math.min(mins[last] ?? bid, bid);
    maxs[last] = Math.max(maxs[last] ?? bid, bid);
    return true;
  }
  xs.push(ts);
  /** @type {Record<number, number|null>} */
  // The official column (SERIES.official) gets null: a live quote is AwesomeAPI's.
  const values = { [SERIES.bid]: bid, [SERIES.min]: bid, [SERIES.max]: bid, [SERIES.ma]: average?.ma ?? null, [SERIES.lower]: average?.lower ?? null, [SERIES.upper]: average?.upper ?? null };
  for (let s = 1; s < data.length; s++) {
    const column = /** @type {(number|null)[]} */ (data[s]);
    column.push(values[s] ?? null);
  }
  return true;
}

/**
 * Carries the live quotes that `from` holds past `to`'s newest point over to `to` (appendQuote(),
 * with their day's average): data rebuilt from the same answer (the official closes joined it)
 * must not lose what the live feed added meanwhile. Returns how many it carried.
 * @param {ChartData} from
 * @param {ChartData} to
 * @returns {number}
 */
export function carryLiveQuotes(from, to) {
  const newest = to[0].at(-1) ?? Number.NEGATIVE_INFINITY;
  let carried = 0;
  for (let i = 0; i < from[0].length; i++) {
    const ts = /** @type {number} */ (from[0][i]);
    const bid = from[SERIES.bid]?.[i];
    if (ts <= newest || bid === null || bid === undefined) continue;
    const average = { ma: from[SERIES.ma]?.[i] ?? null, lower: from[SERIES.lower]?.[i] ?? null, upper: from[SERIES.upper]?.[i] ?? null };
    if (appendQuote(to, ts, bid, average)) carried++;
  }
  return carried;
}

/**
 * The x range a preset shows: the last `preset` of the history, ending at its newest quote
 * (not at "now", so that a pair whose feed stopped still shows its data), never before the first.
 * @param {RangePreset} preset
 * @param {number} first  seconds
 * @param {number} last  seconds
 * @returns {{ from: number, to: number }}
 */
export function rangeBounds(preset, first, last) {
  const span = RANGE_SECONDS[preset];
  if (span === null) return { from: first, to: last };
  return { from: Math.max(first, last - span), to: last };
}

/**
 * Whether a zoom into [min, max] needs data from the server: not when what is loaded already
 * covers it at full resolution.
 * @param {{ from: number, to: number, bucketSeconds: number }} loaded
 * @param {number} min
 * @param {number} max
 * @returns {boolean}
 */
export function zoomNeedsFetch(loaded, min, max) {
  return !(loaded.bucketSeconds === 0 && loaded.from <= min && loaded.to >= max);
}

/**
 * What alertSpans() reads of an alert, all of it optional: its start (`firedAt`, as /api/alerts
 * names it, else `startedAt`), its end and its direction. Any other fields may come too.
 * @typedef {{ firedAt?: string | null | undefined, startedAt?: string | null | undefined,
 *   resolvedAt?: string | null | undefined, direction?: string | null | undefined } & Record<string, unknown>} AlertEpisode
 */

/**
 * The episodes to shade: each alert's span in seconds, an open one running to `until`.
 * Alerts with no start (staleness without a time) are skipped.
 * @param {readonly AlertEpisode[]} alerts
 * @param {number} until  seconds
 * @returns {{ from: number, to: number, direction: string|null, open: boolean }[]}
 */
export function alertSpans(alerts, until) {
  /** @type {{ from: number, to: number, direction: string|null, open: boolean }[]} */
  const spans = [];
  for (const alert of alerts) {
    const start = toSeconds(alert.firedAt ?? alert.startedAt);
    if (start === null) continue;
    const end = toSeconds(alert.resolvedAt);
    const direction = typeof alert.direction === "string" ? alert.direction : null;
    spans.push({ from: start, to: end ?? Math.max(until, start), direction, open: end === null });
  }
  return spans.sort((a, b) => a.from - b.from);
}

/**
 * @param {unknown} iso
 * @returns {number|null}
 */
export function toSeconds(iso) {
  if (typeof iso !== "string" && typeof iso !== "number") return null;
  const ms = typeof iso === "number" ? iso * 1000 : Date.parse(iso);
  return Number.isFinite(ms) ? Math.floor(ms / 1000) : null;
}

// ---------------------------------------------------------------------------------------------
// Formatting

/** @type {Map<string, Intl.NumberFormat | Intl.DateTimeFormat>} */
const formatters = new Map();

/**
 * @template {Intl.NumberFormat | Intl.DateTimeFormat} F
 * @param {string} key
 * @param {() => F} make
 * @returns {F}
 */
function cached(key, make) {
  let formatter = formatters.get(key);
  if (!formatter) formatters.set(key, (formatter = make()));
  return /** @type {F} */ (formatter);
}

/**
 * The currency a pair is quoted in: "USD-BRL" → "BRL".
 * @param {string} pair
 */
export function quoteCurrency(pair) {
  return pair.split("-")[1] ?? pair;
}

/**
 * A price as money, four decimals: `R$ 5,7008` in pt-BR. A code Intl does not know as a
 * currency (some coins) is written after the number.
 * @param {number|string|null|undefined} value
 * @param {string} currency
 * @param {string} [locale]
 */
export function formatPrice(value, currency, locale = DEFAULT_LOCALE) {
  const number = toNumber(value);
  if (number === null) return "–";
  try {
    const format = cached(`price:${locale}:${currency}`, () =>
      new Intl.NumberFormat(locale, { style: "currency", currency, minimumFractionDigits: 4, maximumFractionDigits: 4 }),
    );
    return format.format(number);
  } catch {
    // RangeError: not a well-formed currency code (e.g. a five-letter coin); the number still shows.
    return `${formatNumber(number, 4, locale)} ${currency}`;
  }
}

/**
 * @param {number} value
 * @param {number} decimals
 * @param {string} [locale]
 */
export function formatNumber(value, decimals, locale = DEFAULT_LOCALE) {
  const format = cached(`number:${locale}:${decimals}`, () =>
    new Intl.NumberFormat(locale, { minimumFractionDigits: decimals, maximumFractionDigits: decimals }),
  );
  return format.format(value);
}

/**
 * A change in percent with its sign: `+0,42 %` in pt-BR.
 * @param {number|null|undefined} pct
 * @param {string} [locale]
 */
export function formatChange(pct, locale = DEFAULT_LOCALE) {
  if (pct === null || pct === undefined || !Number.isFinite(pct)) return "–";
  const format = cached(`pct:${locale}`, () =>
    new Intl.NumberFormat(locale, { style: "percent", signDisplay: "exceptZero", minimumFractionDigits: 2, maximumFractionDigits: 2 }),
  );
  return format.format(pct / 100);
}

/**
 * A percentage without a sign, as the locale writes it: `3,0%` in pt-BR, `3.0%` in en-US.
 * @param {number} pct
 * @param {number} decimals
 * @param {string} [locale]
 */
export function formatPercent(pct, decimals, locale = DEFAULT_LOCALE) {
  const format = cached(`percent:${locale}:${decimals}`, () =>
    new Intl.NumberFormat(locale, { style: "percent", minimumFractionDigits: decimals, maximumFractionDigits: decimals }),
  );
  return format.format(pct / 100);
}

/**
 * Decimals for axis ticks `increment` apart: 0.05 → 2.
 * @param {number} increment
 */
export function tickDecimals(increment) {
  if (!(increment > 0)) return 2;
  return Math.min(6, Math.max(0, Math.ceil(-Math.log10(increment) - 1e-9)));
}

/**
 * A moment, to the minute (or second), in `zone`: `23/08/2024 14:39` in pt-BR.
 * @param {number} seconds
 * @param {string} zone  an IANA zone
 * @param {{ locale?: string, seconds?: boolean, date?: boolean, time?: boolean, short?: boolean }} [options]
 *   short: a two-digit year, for tables
 */
export function formatTime(seconds, zone, { locale = DEFAULT_LOCALE, seconds: withSeconds = false, date = true, time = true, short = false } = {}) {
  const format = cached(`time:${locale}:${zone}:${withSeconds}:${date}:${time}:${short}`, () =>
    new Intl.DateTimeFormat(locale, {
      timeZone: zone,
      ...(date ? { day: "2-digit", month: "2-digit", year: short ? "2-digit" : "numeric" } : {}),
      ...(time ? { hour: "2-digit", minute: "2-digit", hourCycle: "h23" } : {}),
      ...(time && withSeconds ? { second: "2-digit" } : {}),
    }),
  );
  return format.format(new Date(seconds * 1000));
}

/**
 * A Date whose local-time fields read the wall-clock time of `seconds` in `zone`, as uPlot's
 * `tzDate` option wants. uPlot.tzDate() does the same with a toLocaleString() per call, which
 * costs a new formatter each time; this one is made once per zone.
 * @param {number} seconds
 * @param {string} zone
 */
export function zonedDate(seconds, zone) {
  const format = cached(`parts:${zone}`, () =>
    new Intl.DateTimeFormat("en-US", {
      timeZone: zone,
      hourCycle: "h23",
      year: "numeric",
      month: "numeric",
      day: "numeric",
      hour: "numeric",
      minute: "numeric",
      second: "numeric",
    }),
  );
  const ms = seconds * 1000;
  /** @type {Record<string, number>} */
  const field = {};
  for (const part of format.formatToParts(new Date(ms))) field[part.type] = Number(part.value);
  const { year = 1970, month = 1, day = 1, hour = 0, minute = 0, second = 0 } = field;
  return new Date(year, month - 1, day, hour, minute, second, ((ms % 1000) + 1000) % 1000);
}

/**
 * A date alone in `zone`: `23/08/2024` in pt-BR.
 * @param {number} seconds
 * @param {string} zone
 * @param {string} [locale]
 */
export function formatDay(seconds, zone, locale = DEFAULT_LOCALE) {
  const format = cached(`day:${locale}:${zone}`, () => new Intl.DateTimeFormat(locale, { timeZone: zone, dateStyle: "short" }));
  return format.format(new Date(seconds * 1000));
}

/**
 * What one chart point covers, for the legend: its moment at full resolution, else its bucket
 * (`01/12/2011 – 07/12/2011`, or `23/08/2024, 14:00 – 15:00`).
 * @param {number} seconds  the point's x
 * @param {number} bucketSeconds
 * @param {string} zone
 * @param {string} [locale]
 */
export function describePoint(seconds, bucketSeconds, zone, locale = DEFAULT_LOCALE) {
  if (!bucketSeconds) return formatTime(seconds, zone, { locale });
  const end = seconds + bucketSeconds - 1;
  if (bucketSeconds >= 86_400) return `${formatDay(seconds, zone, locale)} – ${formatDay(end, zone, locale)}`;
  return `${formatTime(seconds, zone, { locale })} – ${formatTime(end + 1, zone, { locale, date: false })}`;
}

/**
 * A moment the way a status line says it: the time alone when it is today in `zone`, else the
 * date too.
 * @param {number} seconds
 * @param {number} nowSeconds
 * @param {string} zone
 * @param {string} [locale]
 */
export function formatSince(seconds, nowSeconds, zone, locale = DEFAULT_LOCALE) {
  const sameDay = formatDay(seconds, zone, locale) === formatDay(nowSeconds, zone, locale);
  return formatTime(seconds, zone, { locale, date: !sameDay });
}

/**
 * How old something is, in words: "12 s", "4 min", "3 h 05 min", "2 d".
 * @param {number} seconds
 */
export function formatAge(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")} min`;
  return `${Math.floor(s / 86_400)} d`;
}

/**
 * A bucket's width in words, for the chart's footnote: 0 → "every quote".
 * @param {number} bucketSeconds
 * @param {string} [locale]
 */
export function describeResolution(bucketSeconds, locale = DEFAULT_LOCALE) {
  if (!bucketSeconds) return text(locale, "chart.everyQuote");
  return text(locale, "chart.onePointPer", { span: formatAge(bucketSeconds).replace(/ 00 min$/, "") });
}

/**
 * @typedef {object} FeedStatus  GET /api/latest's status
 * @property {"live"|"stale"|"failing"|"empty"} state
 * @property {string|null} since
 * @property {string} [message]
 */

/**
 * The status line, and a class for its colour: "live", "stale since 14:02", "pipeline failing
 * since 28/11/2026 09:15".
 * @param {FeedStatus | null | undefined} status
 * @param {number} nowSeconds
 * @param {string} zone
 * @param {string} [locale]
 * @returns {{ text: string, tone: "ok"|"warn"|"bad"|"none" }}
 */
export function describeStatus(status, nowSeconds, zone, locale = DEFAULT_LOCALE) {
  if (!status) return { text: text(locale, "status.unknown"), tone: "none" };
  const since = toSeconds(status.since);
  /** @param {string} key */
  const withSince = (key) => (since === null ? text(locale, key) : text(locale, `${key}Since`, { time: formatSince(since, nowSeconds, zone, locale) }));
  switch (status.state) {
    case "live":
      return { text: text(locale, "status.live"), tone: "ok" };
    case "stale":
      return { text: withSince("status.stale"), tone: "warn" };
    case "failing":
      return { text: withSince("status.failing"), tone: "bad" };
    case "empty":
      // The server's message is English; the page says it in its own language.
      return { text: text(locale, "status.empty"), tone: "none" };
    default:
      return { text: status.message || String(status.state), tone: "none" };
  }
}

/**
 * Month and weekday names for uPlot's axis labels in `locale`.
 * @param {string} locale
 * @returns {{ MMMM: string[], MMM: string[], WWWW: string[], WWW: string[] }}
 */
export function dateNames(locale) {
  /** @param {Intl.DateTimeFormatOptions} options @param {(i: number) => Date} at @param {number} n */
  const names = (options, at, n) => {
    const format = new Intl.DateTimeFormat(locale, { ...options, timeZone: "UTC" });
    return Array.from({ length: n }, (_, i) => format.format(at(i)).replace(/\.$/, ""));
  };
  const month = (/** @type {number} */ i) => new Date(Date.UTC(2024, i, 15));
  // 2024-01-07 was a Sunday, as uPlot's weekday arrays start.
  const weekday = (/** @type {number} */ i) => new Date(Date.UTC(2024, 0, 7 + i));
  return {
    MMMM: names({ month: "long" }, month, 12),
    MMM: names({ month: "short" }, month, 12),
    WWWW: names({ weekday: "long" }, weekday, 7),
    WWW: names({ weekday: "short" }, weekday, 7),
  };
}

/**
 * uPlot's x-axis label table (its `axes[0].values` spec) for `locale`: day before month where
 * the locale writes it so (pt-BR: 23/8), a 24-hour clock where it uses one.
 * @param {string} locale
 * @returns {(string|number|null)[][]}
 */
export function timeAxisStamps(locale) {
  const parts = new Intl.DateTimeFormat(locale, { day: "numeric", month: "numeric", year: "2-digit", timeZone: "UTC" })
    .formatToParts(new Date(Date.UTC(2024, 7, 23)))
    .map((part) => part.type);
  const dayFirst = parts.indexOf("day") < parts.indexOf("month");
  const hour12 = new Intl.DateTimeFormat(locale, { hour: "numeric", timeZone: "UTC" }).resolvedOptions().hour12 === true;
  const dm = dayFirst ? "{D}/{M}" : "{M}/{D}";
  const hm = hour12 ? "{h}:{mm}{aa}" : "{HH}:{mm}";
  const h = hour12 ? "{h}{aa}" : "{HH}h";
  const day = 86_400;
  return [
    [365 * day, "{YYYY}", null, null, null, null, null, null, 1],
    [28 * day, "{MMM}", "\n{YYYY}", null, null, null, null, null, 1],
    [day, dm, "\n{YYYY}", null, null, null, null, null, 1],
    [3600, h, `\n${dm}/{YY}`, null, `\n${dm}`, null, null, null, 1],
    [60, hm, `\n${dm}/{YY}`, null, `\n${dm}`, null, null, null, 1],
    [1, ":{ss}", `\n${dm}/{YY} ${hm}`, null, `\n${dm} ${hm}`, null, `\n${hm}`, null, 1],
  ];
}
