/**
 * live.js: the live feed (/api/stream, an EventSource) and what its events update: a quote goes
 * on the card and onto the chart's data at once, an alert or a run re-reads its table, and each
 * re-reads the card soon.
 */
import { getJson, iso } from "./api.js";
import { refreshLatestSoon, renderCard } from "./card.js";
import { addDays, appendQuote, dayAverageAt, toSeconds } from "./chart-data.js";
import { presetScale, renderLegend, renderResolution } from "./chart.js";
import { byId } from "./dom.js";
import { attempt } from "./failures.js";
import { loadPairs } from "./pairs.js";
import { state, t } from "./state.js";
import { loadAlerts, loadRuns } from "./tables.js";

/** @typedef {import("./chart-data.js").QuotesAnswer} QuotesAnswer */

const $streamState = byId("stream-state");

/** The footer: whether the live feed is on. */
export function renderStream() {
  $streamState.textContent = t(state.streamState);
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

/** Listens to /api/stream: quotes, alerts and runs as the pipeline stores them. */
export function openStream() {
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
