/**
 * app.js: the page's entry (the one script index.html loads): it wires the controls to the
 * modules that own each part, re-renders the page for a new language or time zone, and starts.
 * The parts: state.js (the state and the address), api.js (requests), failures.js (the error
 * banner), card.js (the newest quote), chart.js (uPlot over chart-data.js's pure data),
 * tables.js (alerts and runs), pairs.js (the pairs and switching them), live.js (/api/stream);
 * chart-data.js and i18n.js are pure (no DOM), tested by bun:test.
 */
import { forgetPrefetched, prefetch } from "./api.js";
import { renderCard, watchCard } from "./card.js";
import { buildRangeButtons, rebuildChart, renderLegend, renderLegendLabels, renderResolution, resetZoom, toggleOfficial, watchLayout } from "./chart.js";
import { byId } from "./dom.js";
import { attempt, renderFailures } from "./failures.js";
import { languageOf } from "./i18n.js";
import { openStream, renderStream } from "./live.js";
import { loadPairs, onHistory, selectPair } from "./pairs.js";
import { BROWSER_ZONE, chooseLanguage, pushView, rememberInUrl, state, t, toggleZone } from "./state.js";
import { loadAlerts, loadRuns, turnAlertPage } from "./tables.js";

/** The header's controls, and the buttons wired here to the modules that act on them. */
const $ = {
  pair: /** @type {HTMLSelectElement} */ (byId("pair")),
  zone: byId("zone"),
  zoneLabel: byId("zone-label"),
  resetZoom: byId("reset-zoom"),
  officialToggle: byId("legend-official-toggle"),
  alertsNewer: /** @type {HTMLButtonElement} */ (byId("alerts-newer")),
  alertsOlder: /** @type {HTMLButtonElement} */ (byId("alerts-older")),
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
  $.officialToggle.addEventListener("click", toggleOfficial);
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
