/**
 * pairs.js: the stored pairs: the selector, the empty state of a fresh database, and switching
 * the page to a pair (its chart and card first, then its tables), from the selector, the
 * address or Back and Forward.
 */
import { getJson } from "./api.js";
import { loadLatest, renderCard } from "./card.js";
import { toSeconds } from "./chart-data.js";
import { loadPreset, markDrawn } from "./chart.js";
import { byId } from "./dom.js";
import { attempt } from "./failures.js";
import { pairInAddress, state, viewInUrl } from "./state.js";
import { loadAlerts, loadRuns } from "./tables.js";

/** @typedef {import("./api.js").PairInfo} PairInfo */

const $ = {
  empty: byId("empty"),
  latest: byId("latest"),
  chartPanel: byId("chart-panel"),
  alertsPanel: byId("alerts-panel"),
  runsPanel: byId("runs-panel"),
  pair: /** @type {HTMLSelectElement} */ (byId("pair")),
  pairField: byId("pair-field"),
};

/** Back or Forward: the pair and range that entry's URL names, without a new entry. */
export function onHistory() {
  const { pair: wanted, preset } = viewInUrl();
  const pair = state.pairs.find((info) => info.pair === wanted)?.pair;
  if (pair && pair !== state.pair) {
    state.preset = preset;
    void attempt("switch pairs", () => selectPair(pair));
  } else if (preset !== state.preset || state.zoom) {
    void attempt("read the chart's data", () => loadPreset(preset));
  }
}

export async function loadPairs() {
  const body = await getJson("pairs", "/api/pairs");
  if (!body) return;
  /** @type {PairInfo[]} */
  const pairs = body.pairs ?? [];
  state.pairs = pairs;
  const empty = pairs.length === 0;
  $.empty.hidden = !empty;
  for (const panel of [$.latest, $.chartPanel, $.alertsPanel, $.runsPanel]) panel.hidden = empty;
  $.pair.disabled = empty;
  $.pairField.hidden = empty;
  if (empty) {
    // The runs still tell whether a pipeline has tried (and why it stored nothing).
    $.runsPanel.hidden = false;
    await loadRuns();
    markDrawn();
    return;
  }
  $.pair.replaceChildren(
    ...pairs.map((info) => {
      const option = document.createElement("option");
      option.value = info.pair;
      option.textContent = info.pair;
      return option;
    }),
  );
  const wanted = state.pair ?? pairInAddress();
  const chosen = pairs.find((info) => info.pair === wanted) ?? pairs.find((info) => info.pair === "USD-BRL") ?? pairs[0];
  if (chosen && chosen.pair !== state.pair) await selectPair(chosen.pair);
  else if (chosen) $.pair.value = chosen.pair;
}

/** @param {string} pair */
export async function selectPair(pair) {
  state.pair = pair;
  $.pair.value = pair;
  const info = state.pairs.find((candidate) => candidate.pair === pair);
  state.newest = toSeconds(info?.last) ?? 0;
  state.presetData = null;
  state.presetAnswer = null;
  state.zoom = null;
  state.latest = null;
  state.alertPages = [];
  // The chart and the card first, the tables (below them) once the chart is drawn: their
  // answers would otherwise hold the main thread while the chart's data waits to be read.
  const chart = attempt("read the chart's data", () => loadPreset(state.preset));
  const card = attempt("read the newest quote", loadLatest);
  renderCard();
  await chart;
  await Promise.all([card, attempt("read the alerts", loadAlerts), attempt("read the pipeline runs", loadRuns)]);
}
