/**
 * state.js: the page's state, one object the other modules read and write, and what chooses it:
 * the address (?pair=, ?range=, ?tz=, ?lang=) both ways, the language, the time zone and the
 * range. No DOM: the modules that draw read from here.
 */
import { DEFAULT_LOCALE, RANGE_SECONDS, SAO_PAULO, formatPrice, quoteCurrency } from "./chart-data.js";
import { LANGUAGES, LANGUAGE_STORAGE_KEY, languageOf, pickLanguage, text } from "./i18n.js";

/** @typedef {import("uplot")} UPlot */
/** @typedef {import("./chart-data.js").ChartData} ChartData */
/** @typedef {import("./chart-data.js").RangePreset} RangePreset */
/** @typedef {import("./chart-data.js").QuotesAnswer} QuotesAnswer */
/** @typedef {import("./api.js").PairInfo} PairInfo */
/** @typedef {import("./api.js").Latest} Latest */

const DEFAULT_PRESET = /** @type {RangePreset} */ ("All");
export const BROWSER_ZONE = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";

const params = new URLSearchParams(location.search);

/** The reader's remembered choice of language; storage may be refused (privacy settings). */
function storedLanguage() {
  try {
    return localStorage.getItem(LANGUAGE_STORAGE_KEY);
  } catch {
    return null;
  }
}

/** One language per page: the URL's (?lang=), else the one chosen here before, else the browser's. */
const LANGUAGE = pickLanguage([params.get("lang"), params.get("locale"), storedLanguage(), ...navigator.languages]);

export const state = {
  /** @type {import("./i18n.js").Language} */
  lang: LANGUAGE,
  /** Numbers and dates in the language's locale (?locale= may name another of the same language). */
  locale: languageOf(params.get("locale")) === LANGUAGE ? /** @type {string} */ (params.get("locale")) : LANGUAGES[LANGUAGE].locale || DEFAULT_LOCALE,
  /** What the footer says of the live feed (a key of i18n.js). */
  streamState: "stream.connecting",
  /** Times in the browser's zone rather than São Paulo's (the toggle; the zones may be one). */
  localTime: params.get("tz") === "local",
  /** The zone times are shown in, as the toggle says. */
  /** @type {string} */
  zone: params.get("tz") === "local" ? BROWSER_ZONE : SAO_PAULO,
  /** @type {PairInfo[]} */
  pairs: [],
  /** @type {string|null} */
  pair: null,
  /** @type {RangePreset} */
  preset: isPreset(params.get("range")) ? /** @type {RangePreset} */ (params.get("range")) : DEFAULT_PRESET,
  /** The newest quote time known for the pair (seconds), live quotes included. */
  newest: 0,
  /** The preset's data, kept up to date by live quotes, shown again when a zoom is reset. */
  /** @type {ChartData|null} */
  presetData: null,
  /** The answer presetData came from, and the range it covers (seconds), for a zoom's reset. */
  /** @type {{ answer: QuotesAnswer, from: number, to: number } | null} */
  presetAnswer: null,
  /** What the chart shows now: presetData, or a zoom's finer data. */
  /** @type {ChartData|null} */
  data: null,
  /** @type {{ from: number, to: number, bucketSeconds: number }} */
  loaded: { from: 0, to: 0, bucketSeconds: 0 },
  /** @type {{ min: number, max: number } | null} */
  zoom: null,
  /** @type {{ windowDays: number, thresholdPct: number } | null} */
  ma: null,
  /** @type {ReturnType<typeof import("./chart-data.js").alertSpans>} */
  spans: [],
  /** The alerts table's page: the cursors (the API's `before`) of the pages shown before it, newest first; none for the first page. */
  /** @type {string[]} */
  alertPages: [],
  /** The cursor of the page after the one shown (older alerts), null on the last. */
  /** @type {string|null} */
  alertsNext: null,
  /** BCB's closing PTAX of the pair over the preset's range (chart.js), null when it has none. */
  /** @type {import("./chart-data.js").OfficialCloses | null} */
  official: null,
  /** Whether the chart shows the official closes (the legend's PTAX button): by default, yes. */
  showOfficial: true,
  /** @type {Latest|null} */
  latest: null,
  /** performance.now() when `latest` was read, to age it between reads. */
  latestReadAt: 0,
  /** @type {UPlot|null} */
  chart: null,
  /** performance.now() when the chart first drew the pair's data (bench/dashboard_page.ts). */
  /** @type {number|null} */
  drawnAt: null,
};

/**
 * @param {unknown} value
 * @returns {value is RangePreset}
 */
export function isPreset(value) {
  return typeof value === "string" && Object.hasOwn(RANGE_SECONDS, value);
}

/**
 * The page's words in its language.
 * @param {string} key
 * @param {Record<string, string|number>} [values]
 */
export function t(key, values) {
  return text(state.lang, key, values);
}

/** The pair's quote currency, for money formatting. */
export function currency() {
  return quoteCurrency(state.pair ?? "USD-BRL");
}

/** @param {number|string|null|undefined} value */
export function money(value) {
  return formatPrice(value, currency(), state.locale);
}

/** The pair the address named when the page was opened (?pair=), if any. */
export function pairInAddress() {
  return params.get("pair")?.toUpperCase();
}

/**
 * A new history entry for a view the reader picked (a pair, a range), so that Back returns to
 * the one before; the view's own loading then only refines this entry (rememberInUrl()).
 * @param {{ pair?: string, range?: RangePreset }} view
 */
export function pushView(view) {
  const url = new URL(location.href);
  if (view.pair) url.searchParams.set("pair", view.pair);
  if (view.range) url.searchParams.set("range", view.range);
  if (url.href !== location.href) history.pushState(null, "", url);
}

/** Back or Forward: the pair (as asked, not yet checked) and the range that entry's URL names. */
export function viewInUrl() {
  const query = new URLSearchParams(location.search);
  const range = query.get("range");
  const preset = isPreset(range) ? range : DEFAULT_PRESET;
  const pair = query.get("pair")?.toUpperCase();
  return { pair, preset };
}

export function rememberInUrl() {
  const url = new URL(location.href);
  if (state.pair) url.searchParams.set("pair", state.pair);
  url.searchParams.set("range", state.preset);
  // A language picked here stays in the address; one that only follows the browser does not.
  if (params.has("lang") || storedLanguage()) url.searchParams.set("lang", state.lang);
  if (!state.localTime) url.searchParams.delete("tz");
  else url.searchParams.set("tz", "local");
  history.replaceState(null, "", url);
}

/**
 * The language picked in the header: the page's from now on, remembered here and in the URL.
 * @param {import("./i18n.js").Language} language
 */
export function chooseLanguage(language) {
  state.lang = language;
  state.locale = LANGUAGES[language].locale;
  try {
    localStorage.setItem(LANGUAGE_STORAGE_KEY, language);
  } catch {
    // Not remembered beyond this address; the URL still says it.
  }
  const url = new URL(location.href);
  url.searchParams.set("lang", language);
  url.searchParams.delete("locale");
  history.replaceState(history.state, "", url);
}

/** The time-zone toggle: the browser's zone, or back to São Paulo's. */
export function toggleZone() {
  state.localTime = !state.localTime;
  state.zone = state.localTime ? BROWSER_ZONE : SAO_PAULO;
}
