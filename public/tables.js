/**
 * tables.js: the two tables under the chart: the pair's alert episodes, a page of the API's at
 * a time (each start a link to the episode on the chart), and the pipeline's latest runs.
 */
import { getJson } from "./api.js";
import { formatAge, formatChange, formatNumber, formatTime, toSeconds } from "./chart-data.js";
import { loadAlertSpans, showEpisode } from "./chart.js";
import { byId } from "./dom.js";
import { attempt } from "./failures.js";
import { state, t } from "./state.js";

/** @typedef {import("./api.js").AlertRow} AlertRow */
/** @typedef {import("./api.js").RunRow} RunRow */

const $ = {
  alerts: byId("alerts"),
  alertsEmpty: byId("alerts-empty"),
  alertsCount: byId("alerts-count"),
  alertsPager: byId("alerts-pager"),
  alertsNewer: /** @type {HTMLButtonElement} */ (byId("alerts-newer")),
  alertsOlder: /** @type {HTMLButtonElement} */ (byId("alerts-older")),
  alertsTable: byId("alerts-table"),
  runs: byId("runs"),
  runsEmpty: byId("runs-empty"),
  runsTable: byId("runs-table"),
};

const ALERTS_SHOWN = 20;
const RUNS_SHOWN = 20;

/**
 * A table cell with a moment: date (two-digit year) and time in spans of their own, so that a
 * narrow screen can drop the time.
 * @param {number|null} seconds
 * @param {string} [fallback]  when there is no moment
 * @param {string} [className]
 */
function timeCell(seconds, fallback = "–", className = "") {
  const td = document.createElement("td");
  td.className = className;
  if (seconds === null) {
    td.textContent = fallback;
    return td;
  }
  const date = document.createElement("span");
  date.textContent = formatTime(seconds, state.zone, { locale: state.locale, short: true, time: false });
  const time = document.createElement("span");
  time.className = "time";
  time.textContent = ` ${formatTime(seconds, state.zone, { locale: state.locale, date: false })}`;
  td.append(date, time);
  td.title = formatTime(seconds, state.zone, { locale: state.locale });
  return td;
}

/**
 * @param {string} text
 * @param {string} [className]
 */
function cell(text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

/**
 * A deviation as the alerts store it (a fraction: close / average - 1), in percent with its sign.
 * @param {unknown} value
 */
function deviationText(value) {
  const number = typeof value === "number" ? value : Number(value);
  if (value === null || value === undefined || !Number.isFinite(number)) return "–";
  return formatChange(number * 100, state.locale);
}

/**
 * An alert's kind in the page's language: a deviation's direction, a stale feed, or AwesomeAPI
 * diverging from BCB's PTAX (analysis.ts's "divergence").
 * @param {AlertRow} alert
 */
function alertKind(alert) {
  if (alert.kind === "deviation" && alert.direction) return t(alert.direction === "up" ? "alerts.above" : "alerts.below");
  if (alert.kind === "stale") return t("alerts.stale");
  if (alert.kind === "divergence") return t("alerts.divergence");
  return String(alert.kind ?? "–");
}

/**
 * The alerts table, one page of the API's at a time (the page state.alertPages ends at), and
 * the chart's shading unless `spans` is false (paging).
 */
export async function loadAlerts({ spans = true } = {}) {
  if (!state.pair) return;
  const before = state.alertPages.at(-1);
  const [body] = await Promise.all([getJson("alerts-page", "/api/alerts", { pair: state.pair, limit: ALERTS_SHOWN, before }), spans ? loadAlertSpans() : null]);
  if (!body) return;
  /** @type {AlertRow[]} */
  const shown = body.alerts ?? [];
  /** @type {number} */
  const total = body.total ?? shown.length;
  state.alertsNext = body.next ?? null;
  const first = state.alertPages.length * ALERTS_SHOWN + 1;
  $.alertsCount.textContent =
    total > shown.length && shown.length > 0
      ? t("alerts.pageOf", { first: formatNumber(first, 0, state.locale), last: formatNumber(first + shown.length - 1, 0, state.locale), total: formatNumber(total, 0, state.locale) })
      : "";
  $.alertsPager.hidden = total <= ALERTS_SHOWN;
  $.alertsNewer.disabled = state.alertPages.length === 0;
  $.alertsOlder.disabled = state.alertsNext === null;
  $.alerts.replaceChildren(
    ...shown.map((alert) => {
      const row = document.createElement("tr");
      const started = toSeconds(alert.firedAt);
      const ended = toSeconds(alert.resolvedAt);
      const firing = alert.state === "firing";
      const kind = alertKind(alert);
      const start = timeCell(started);
      if (started !== null) {
        // The start is a button that shows the episode on the chart.
        const button = document.createElement("button");
        button.type = "button";
        button.className = "link-button";
        button.title = t("alerts.showEpisode");
        button.append(...start.childNodes);
        button.addEventListener("click", () => showEpisode(started, ended ?? state.newest));
        start.replaceChildren(button);
      }
      const lasted = started === null ? "–" : formatAge((ended ?? Date.now() / 1000) - started);
      row.append(
        start,
        timeCell(ended, firing ? t("alerts.stillFiring") : "–", `wide-only${firing ? " tag bad" : ""}`),
        cell(firing && ended === null ? t("alerts.soFar", { lasted }) : lasted, "num"),
        cell(alert.supersededAt ? `${kind} · ${t("alerts.superseded")}` : kind),
        cell(deviationText(alert.peakDeviation ?? alert.deviation), "num"),
      );
      return row;
    }),
  );
  $.alertsEmpty.hidden = total > 0;
  $.alertsTable.hidden = total === 0;
}

/** @param {-1|1} step  1: the older page, -1: the newer */
export function turnAlertPage(step) {
  if (step === 1 && state.alertsNext !== null) state.alertPages.push(state.alertsNext);
  else if (step === -1 && state.alertPages.length > 0) state.alertPages.pop();
  else return;
  void attempt("read the alerts", () => loadAlerts({ spans: false }));
}

const RUN_TONES = /** @type {Record<string, string>} */ ({ succeeded: "ok", failed: "bad", running: "warn", skipped: "" });

export async function loadRuns() {
  const body = await getJson("runs", "/api/runs", { limit: RUNS_SHOWN });
  if (!body) return;
  /** @type {RunRow[]} */
  const runs = body.runs ?? [];
  $.runs.replaceChildren(
    ...runs.flatMap((run) => {
      const row = document.createElement("tr");
      const started = toSeconds(run.startedAt);
      const finished = toSeconds(run.finishedAt);
      const took = started !== null && finished !== null ? formatAge(finished - started) : "–";
      const stored = run.rowsInserted === undefined ? "–" : String((run.rowsInserted ?? 0) + (run.rowsUpdated ?? 0));
      row.append(
        cell(String(run.id ?? ""), "wide-only"),
        timeCell(started),
        cell(Object.hasOwn(RUN_TONES, run.status) ? t(`runs.${run.status}`) : String(run.status ?? "–"), `tag ${RUN_TONES[run.status] ?? ""}`),
        cell(took, "num"),
        cell(stored, "num"),
        cell(Array.isArray(run.pairs) ? run.pairs.join(", ") : "", "wide-only"),
      );
      if (!run.error) return [row];
      // The error gets a row of its own, as wide as the table, so a narrow screen can read it.
      row.className = "has-detail";
      const detail = document.createElement("tr");
      detail.className = "detail";
      // The error is the pipeline's own message (English, as its log says it).
      const message = cell(`${run.failedStep ? t("runs.failedAt", { step: run.failedStep }) : ""}${run.error}`, "wrap");
      message.colSpan = 6;
      detail.append(message);
      return [row, detail];
    }),
  );
  $.runsEmpty.hidden = runs.length > 0;
  $.runsTable.hidden = runs.length === 0;
}
