/**
 * app.js: the page. Reads the JSON API, draws the history with uPlot (loaded by index.html from
 * /vendor, a global), and keeps the card, the chart and the tables live from /api/stream.
 * Data shaping and formatting live in chart-data.js; this file owns the DOM and the network.
 */
import { forgetPrefetched, getJson, iso, prefetch } from "./api.js";
import { refreshLatestSoon, renderCard, watchCard } from "./card.js";
import { addDays, appendQuote, dayAverageAt, toSeconds } from "./chart-data.js";
import {
  buildRangeButtons,
  presetScale,
  rebuildChart,
  renderLegend,
  renderLegendLabels,
  renderResolution,
  resetZoom,
  watchLayout,
} from "./chart.js";
import { byId } from "./dom.js";
import { attempt, renderFailures } from "./failures.js";
import { languageOf } from "./i18n.js";
import { loadPairs, onHistory, selectPair } from "./pairs.js";
import { BROWSER_ZONE, chooseLanguage, pushView, rememberInUrl, state, t, toggleZone } from "./state.js";
import { loadAlerts, loadRuns, turnAlertPage } from "./tables.js";

/** @typedef {import("uplot")} UPlot */
/** @typedef {import("uplot").Options} UPlotOptions */
/** @typedef {import("./chart-data.js").ChartData} ChartData */
/** @typedef {import("./chart-data.js").RangePreset} RangePreset */
/** @typedef {import("./chart-data.js").QuotesAnswer} QuotesAnswer */
/** @typedef {import("./api.js").PairInfo} PairInfo */
/** @typedef {import("./api.js").Latest} Latest */
/** @typedef {import("./api.js").AlertRow} AlertRow */
/** @typedef {import("./api.js").RunRow} RunRow */

// ---------------------------------------------------------------------------------------------
// DOM

const $ = {
  pair: /** @type {HTMLSelectElement} */ (byId("pair")),
  zone: byId("zone"),
  zoneLabel: byId("zone-label"),
  resetZoom: byId("reset-zoom"),
  alertsNewer: /** @type {HTMLButtonElement} */ (byId("alerts-newer")),
  alertsOlder: /** @type {HTMLButtonElement} */ (byId("alerts-older")),
  streamState: byId("stream-state"),
  lang: /** @type {HTMLSelectElement} */ (byId("lang")),
};

/** The words index.html holds (data-i18n: text, data-i18n-title, data-i18n-aria-label), in the page's language. */
function translateStatic() {
  document.documentElement.lang = state.lang;
  for (const element of document.querySelectorAll("[data-i18n]")) element.textContent = t(/** @type {HTMLElement} */ (element).dataset["i18n"] ?? "");
  for (const element of document.querySelectorAll("[data-i18n-title]")) element.setAttribute("title", t(/** @type {HTMLElement} */ (element).dataset["i18nTitle"] ?? ""));
  for (const element of document.querySelectorAll("[data-i18n-aria-label]")) element.setAttribute("aria-label", t(/** @type {HTMLElement} */ (element).dataset["i18nAriaLabel"] ?? ""));
  $.lang.value = state.lang;
  $.lang.setAttribute("aria-label", t("lang.label"));
}

// ---------------------------------------------------------------------------------------------
// Live

function renderStream() {
  $.streamState.textContent = t(state.streamState);
}

/**
 * A quote the pipeline just stored: on the card at once, and on the chart by appending to
 * its data (uPlot's setData, never a new chart).
 * @param {{ pair: string, ts: string, bid: string, ask: string }} quote
 */
function onQuote(quote) {
  if (!state.pairs.some((info) => info.pair === quote.pair)) {
    // A first quote, or a new pair: the selector and the empty state need the list again.
    void attempt("read the pairs", loadPairs);
    return;
  }
  const info = state.pairs.find((candidate) => candidate.pair === quote.pair);
  if (info && quote.ts > info.last) info.last = quote.ts;
  if (quote.pair !== state.pair) return;
  const ts = toSeconds(quote.ts);
  const bid = Number(quote.bid);
  if (ts === null || !Number.isFinite(bid)) return;
  if (!state.latest || ts >= (toSeconds(state.latest.ts) ?? 0)) {
    state.latest = { ...(state.latest ?? { pair: quote.pair }), ts: quote.ts, bid: quote.bid, ask: quote.ask, ageSeconds: Math.max(0, Date.now() / 1000 - ts) };
    state.latestReadAt = performance.now();
    renderCard();
  }
  state.newest = Math.max(state.newest, ts);
  const average = dayAverageAt(state.presetAnswer?.answer.ma, ts);
  if (state.presetData) appendQuote(state.presetData, ts, bid, average);
  // The first quote of a new day: its average is known (the window closed yesterday); read it.
  if (!average) void attempt("read the chart's data", () => loadDayAverage(ts));
  if (state.chart && state.data === state.presetData && state.presetData && !state.zoom) {
    state.chart.setData(/** @type {any} */ (state.presetData), false);
    const bounds = presetScale();
    state.chart.setScale("x", { min: bounds.from, max: Math.max(bounds.to, bounds.from + 3600) });
    renderLegend(state.chart);
    renderResolution();
  }
  refreshLatestSoon();
}

/**
 * Reads the average of the day that holds `ts` (a live quote's) and gives it to the preset's
 * points of that day, so that the band goes on across midnight without a reload.
 * @param {number} ts  seconds
 */
async function loadDayAverage(ts) {
  const presetAnswer = state.presetAnswer;
  const ma = presetAnswer?.answer.ma;
  const newest = ma?.data[0].at(-1);
  if (!state.pair || !ma || !state.presetData || (newest !== undefined && ts < newest)) return;
  /** @type {QuotesAnswer|null} */
  const answer = await getJson("day-average", "/api/quotes", { pair: state.pair, from: iso(ts), to: iso(ts + 1), points: 2 });
  // Another pair or range since: that data is gone.
  if (!answer || state.presetAnswer !== presetAnswer) return;
  if (!addDays(state.presetData, ma, answer.ma) || !state.chart || state.data !== state.presetData) return;
  state.chart.setData(/** @type {any} */ (state.presetData), false);
  const bounds = presetScale();
  state.chart.setScale("x", { min: bounds.from, max: Math.max(bounds.to, bounds.from + 3600) });
  renderLegend(state.chart);
}

function openStream() {
  const stream = new EventSource("/api/stream");
  stream.addEventListener("open", () => {
    state.streamState = "stream.on";
    renderStream();
  });
  stream.addEventListener("error", () => {
    state.streamState = stream.readyState === EventSource.CLOSED ? "stream.off" : "stream.reconnecting";
    renderStream();
  });
  stream.addEventListener("quote", (event) => {
    const quote = JSON.parse(/** @type {MessageEvent<string>} */ (event).data);
    onQuote(quote);
  });
  stream.addEventListener("alert", () => {
    void attempt("read the alerts", loadAlerts);
    refreshLatestSoon();
  });
  stream.addEventListener("run", () => {
    void attempt("read the pipeline runs", loadRuns);
    refreshLatestSoon();
  });
}

// ---------------------------------------------------------------------------------------------
// Controls and start

function renderZone() {
  $.zone.setAttribute("aria-pressed", String(state.localTime));
  $.zoneLabel.textContent = state.localTime ? t("zone.local", { zone: BROWSER_ZONE }) : t("zone.saoPaulo");
}

/** The switch in the header: the whole page in the other language, remembered here and in the URL. */
function onLanguageChange() {
  const language = languageOf($.lang.value);
  if (!language || language === state.lang) return;
  chooseLanguage(language);
  translateStatic();
  buildRangeButtons();
  renderZone();
  renderStream();
  renderFailures();
  renderCard();
  renderLegendLabels();
  renderResolution();
  // Month names and number formats are set when the chart is made.
  rebuildChart();
  void attempt("read the alerts", loadAlerts);
  void attempt("read the pipeline runs", loadRuns);
}

function onZoneToggle() {
  toggleZone();
  renderZone();
  rememberInUrl();
  renderCard();
  if (state.chart) {
    state.chart.redraw(false, true);
    renderLegend(state.chart);
  }
  void attempt("read the alerts", loadAlerts);
  void attempt("read the pipeline runs", loadRuns);
}

async function start() {
  // Marks for bench/dashboard_page.ts: where the time to the first chart goes.
  performance.mark("cotacao:start");
  // Only what cannot fail on a fresh database or an unknown ?pair= (a 404 would be a console
  // error for a guess); the pair's requests follow it, the chart's first.
  prefetch("/api/pairs");
  translateStatic();
  buildRangeButtons();
  renderZone();
  renderStream();
  renderCard();
  $.lang.addEventListener("change", onLanguageChange);
  $.pair.addEventListener("change", () => {
    pushView({ pair: $.pair.value });
    void attempt("switch pairs", () => selectPair($.pair.value));
  });
  addEventListener("popstate", onHistory);
  $.zone.addEventListener("click", onZoneToggle);
  $.resetZoom.addEventListener("click", resetZoom);
  $.alertsOlder.addEventListener("click", () => turnAlertPage(1));
  $.alertsNewer.addEventListener("click", () => turnAlertPage(-1));
  watchLayout();
  openStream();
  watchCard();
  await attempt("read the pairs", loadPairs);
  // What the first view did not take (a pair that is not stored, an empty database) is stale by now.
  forgetPrefetched();
}

/** For tests and the benchmark: the chart and the page's state, read-only by convention. */
Object.assign(globalThis, {
  __cotacao: {
    state,
    get chart() {
      return state.chart;
    },
    ready: start(),
  },
});
