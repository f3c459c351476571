/**
 * app.js: the page. Reads the JSON API, draws the history with uPlot (loaded by index.html from
 * /vendor, a global), and keeps the card, the chart and the tables live from /api/stream.
 * Data shaping and formatting live in chart-data.js; this file owns the DOM and the network.
 */
import {
  addDays,
  RANGE_SECONDS,
  SERIES,
  alertSpans,
  appendQuote,
  averageIndexFor,
  countPoints,
  dateNames,
  dayAverageAt,
  describePoint,
  describeResolution,
  formatAge,
  formatChange,
  formatNumber,
  formatPercent,
  formatPrice,
  formatTime,
  prepData,
  rangeBounds,
  tickDecimals,
  timeAxisStamps,
  toSeconds,
  zonedDate,
  zoomNeedsFetch,
} from "./chart-data.js";
import { abortRequest, forgetPrefetched, getJson, isPending, iso, prefetch } from "./api.js";
import { loadLatest, refreshLatestSoon, renderCard, watchCard } from "./card.js";
import { byId } from "./dom.js";
import { attempt, renderFailures } from "./failures.js";
import { languageOf } from "./i18n.js";
import {
  BROWSER_ZONE,
  chooseLanguage,
  currency,
  isPreset,
  money,
  pairInAddress,
  pushView,
  rememberInUrl,
  state,
  t,
  toggleZone,
  viewInUrl,
} from "./state.js";

/** @typedef {import("uplot")} UPlot */
/** @typedef {import("uplot").Options} UPlotOptions */
/** @typedef {import("./chart-data.js").ChartData} ChartData */
/** @typedef {import("./chart-data.js").RangePreset} RangePreset */
/** @typedef {import("./chart-data.js").QuotesAnswer} QuotesAnswer */
/** @typedef {import("./api.js").PairInfo} PairInfo */
/** @typedef {import("./api.js").Latest} Latest */
/** @typedef {import("./api.js").AlertRow} AlertRow */
/** @typedef {import("./api.js").RunRow} RunRow */

const uPlot = /** @type {typeof import("uplot")} */ (/** @type {any} */ (globalThis).uPlot);

/** Buckets asked of the server: enough for a wide screen, few enough to draw at once. */
const CHART_POINTS = 1500;
/** A drag-zoom waits this long for the next one before asking the server for finer data. */
const ZOOM_DEBOUNCE_MS = 250;
const ALERTS_SHOWN = 20;
/** The chart shades every episode of the range; the server's cap. */
const ALERTS_ASKED = 500;
const RUNS_SHOWN = 20;

// ---------------------------------------------------------------------------------------------
// DOM

const $ = {
  empty: byId("empty"),
  latest: byId("latest"),
  chartPanel: byId("chart-panel"),
  alertsPanel: byId("alerts-panel"),
  runsPanel: byId("runs-panel"),
  pair: /** @type {HTMLSelectElement} */ (byId("pair")),
  zone: byId("zone"),
  zoneLabel: byId("zone-label"),
  ranges: byId("ranges"),
  resetZoom: byId("reset-zoom"),
  chart: byId("chart"),
  legendTime: byId("legend-time"),
  legendBid: byId("legend-bid"),
  legendSpreadItem: byId("legend-spread-item"),
  legendSpread: byId("legend-spread"),
  legendMaLabel: byId("legend-ma-label"),
  legendMa: byId("legend-ma"),
  legendBandLabel: byId("legend-band-label"),
  legendBand: byId("legend-band"),
  resolution: byId("resolution"),
  csv: /** @type {HTMLAnchorElement} */ (byId("csv")),
  alerts: byId("alerts"),
  alertsEmpty: byId("alerts-empty"),
  alertsCount: byId("alerts-count"),
  alertsPager: byId("alerts-pager"),
  alertsNewer: /** @type {HTMLButtonElement} */ (byId("alerts-newer")),
  alertsOlder: /** @type {HTMLButtonElement} */ (byId("alerts-older")),
  runs: byId("runs"),
  runsEmpty: byId("runs-empty"),
  runsTable: byId("runs-table"),
  alertsTable: byId("alerts-table"),
  pairField: byId("pair-field"),
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

function renderStream() {
  $.streamState.textContent = t(state.streamState);
}

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

/** Back or Forward: the pair and range that entry's URL names, without a new entry. */
function onHistory() {
  const { pair: wanted, preset } = viewInUrl();
  const pair = state.pairs.find((info) => info.pair === wanted)?.pair;
  if (pair && pair !== state.pair) {
    state.preset = preset;
    void attempt("switch pairs", () => selectPair(pair));
  } else if (preset !== state.preset || state.zoom) {
    void attempt("read the chart's data", () => loadPreset(preset));
  }
}

// ---------------------------------------------------------------------------------------------
// Pairs and the empty state

async function loadPairs() {
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
async function selectPair(pair) {
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

// ---------------------------------------------------------------------------------------------
// The card

// ---------------------------------------------------------------------------------------------
// The chart

/** @type {ReturnType<typeof readThemeColors> | null} */
let colorsCache = null;

/** The chart's colours, read once per colour scheme (reading styles forces a style pass). */
function themeColors() {
  colorsCache ??= readThemeColors();
  return colorsCache;
}

/** The colours app.css defines for the chart, as they are now (they change with the colour scheme). */
function readThemeColors() {
  const style = getComputedStyle(document.documentElement);
  /** @param {string} name */
  const read = (name) => style.getPropertyValue(`--chart-${name}`).trim();
  return {
    bid: read("bid"),
    spread: read("spread"),
    ma: read("ma"),
    band: read("band"),
    bandFill: read("band-fill"),
    alert: read("alert"),
    alertEdge: read("alert-edge"),
    axis: read("axis"),
    grid: read("grid"),
  };
}

function chartSize() {
  const width = Math.max(200, Math.floor($.chart.clientWidth));
  const height = Math.round(Math.min(420, Math.max(260, width * 0.5)));
  return { width, height };
}

/** @param {string} className */
function cursorPoint(className) {
  const point = document.createElement("div");
  point.className = className;
  return point;
}

/**
 * uPlot's y-axis width from its longest label (uPlot's demos do the same), so pt-BR's longer
 * labels are never clipped.
 * @param {UPlot} self
 * @param {string[]} values
 * @param {number} axisIdx
 * @param {number} cycleNum
 */
function yAxisSize(self, values, axisIdx, cycleNum) {
  const axis = /** @type {import("uplot").Axis & { _size?: number, ticks: { size: number }, gap: number, font: [string] }} */ (self.axes[axisIdx]);
  if (cycleNum > 1 && axis._size) return axis._size;
  const longest = (values ?? []).reduce((a, b) => (b.length > a.length ? b : a), "");
  self.ctx.font = axis.font[0];
  return Math.ceil(axis.ticks.size + axis.gap + self.ctx.measureText(longest).width / devicePixelRatio) + 4;
}

/** Shades each alert episode under the series, with a stronger edge along the top. */
/** @param {UPlot} u */
function drawAlerts(u) {
  if (state.spans.length === 0) return;
  const colors = themeColors();
  const { ctx, bbox } = u;
  const min = u.scales["x"]?.min ?? 0;
  const max = u.scales["x"]?.max ?? 0;
  ctx.save();
  for (const span of state.spans) {
    if (span.to < min || span.from > max) continue;
    const left = Math.max(bbox.left, u.valToPos(span.from, "x", true));
    const right = Math.min(bbox.left + bbox.width, u.valToPos(span.to, "x", true));
    const width = Math.max(right - left, 2 * devicePixelRatio);
    ctx.fillStyle = colors.alert;
    ctx.fillRect(left, bbox.top, width, bbox.height);
    ctx.fillStyle = colors.alertEdge;
    ctx.fillRect(left, bbox.top, width, 3 * devicePixelRatio);
  }
  ctx.restore();
}

/** @type {{ locale: string, names: ReturnType<typeof dateNames>, stamps: ReturnType<typeof timeAxisStamps> } | null} */
let localePartsCache = null;

/**
 * What the chart's labels need of the locale. The first call sets up Intl's locale and zone
 * data, which is slow: loadPreset() makes it while the chart's data is on its way.
 */
function localeParts() {
  if (localePartsCache?.locale !== state.locale) {
    localePartsCache = { locale: state.locale, names: dateNames(state.locale), stamps: timeAxisStamps(state.locale) };
    zonedDate(0, state.zone);
    formatPrice(0, currency(), state.locale);
  }
  return localePartsCache;
}

/**
 * The average and its band hold one value per day (the rule compares each quote with its day's),
 * so they are drawn as steps that start at each day's start.
 */
const dayStep = /** @type {import("uplot").Series.PathBuilder} */ (uPlot.paths.stepped?.({ align: 1 }));

/**
 * The cursor's point on the average sits where the legend reads it: at the average of the
 * hovered bid's own day, not at whichever day start is nearest the cursor.
 * @param {UPlot} u
 */
function followBidDay(u) {
  const scan = u.cursor.dataIdx;
  if (!scan) return;
  u.cursor.dataIdx = (self, seriesIdx, cursorIdx, valAtPosX) => {
    if (seriesIdx !== SERIES.ma && seriesIdx !== SERIES.lower && seriesIdx !== SERIES.upper) return scan(self, seriesIdx, cursorIdx, valAtPosX);
    const bidIdx = scan(self, SERIES.bid, cursorIdx, valAtPosX);
    return bidIdx === null || bidIdx === undefined ? /** @type {any} */ (null) : /** @type {any} */ (averageIndexFor(/** @type {any} */ (self.data), bidIdx, state.loaded.bucketSeconds));
  };
}

/** @returns {UPlotOptions} */
function chartOptions() {
  const colors = themeColors();
  const { names, stamps } = localeParts();
  const { width, height } = chartSize();
  const thin = { show: false };
  const axisFont = `12px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif`;
  return {
    width,
    height,
    // x values are UTC seconds; labels follow the zone the reader chose (read at each draw).
    tzDate: (ts) => (state.zone === BROWSER_ZONE ? new Date(ts * 1000) : zonedDate(ts, state.zone)),
    fmtDate: (template) => uPlot.fmtDate(template, names),
    legend: { show: false },
    // Room on the right for the last x label, which uPlot centres on its tick.
    padding: [8, 18, 0, 0],
    cursor: {
      drag: { x: true, y: false, setScale: true },
      // Each series' legend value is its nearest real point, not a gap of the merged axis.
      hover: { skip: [null, undefined] },
      points: {
        show: (_u, seriesIdx) =>
          seriesIdx === SERIES.bid ? cursorPoint("pt-bid") : seriesIdx === SERIES.ma ? cursorPoint("pt-ma") : /** @type {any} */ (null),
      },
      bind: {
        // Double-click goes back to the preset's range (uPlot's own reset would keep the zoom's data).
        dblclick: () => () => {
          resetZoom();
          return null;
        },
      },
    },
    scales: { x: { time: true } },
    // In SERIES order (chart-data.js): bands first, the bid line last, on top.
    series: [
      {},
      { label: "lower", stroke: colors.band, width: 1, dash: [4, 4], spanGaps: true, points: thin, paths: dayStep },
      { label: "upper", stroke: colors.band, width: 1, dash: [4, 4], spanGaps: true, points: thin, paths: dayStep },
      { label: "average", stroke: colors.ma, width: 1.5, spanGaps: true, points: thin, paths: dayStep },
      { label: "min", stroke: "transparent", width: 0, spanGaps: true, points: thin },
      { label: "max", stroke: "transparent", width: 0, spanGaps: true, points: thin },
      { label: "bid", stroke: colors.bid, width: 1.5, spanGaps: true },
    ],
    bands: [
      { series: [SERIES.upper, SERIES.lower], fill: colors.bandFill },
      { series: [SERIES.max, SERIES.min], fill: colors.spread },
    ],
    axes: [
      {
        stroke: colors.axis,
        font: axisFont,
        grid: { stroke: colors.grid, width: 1 },
        ticks: { stroke: colors.grid, width: 1 },
        values: /** @type {any} */ (stamps),
      },
      {
        stroke: colors.axis,
        font: axisFont,
        grid: { stroke: colors.grid, width: 1 },
        ticks: { stroke: colors.grid, width: 1 },
        size: yAxisSize,
        values: (_u, splits, _axisIdx, _space, increment) =>
          splits.map((value) => (value === null || value === undefined ? "" : formatNumber(value, tickDecimals(increment), state.locale))),
      },
    ],
    hooks: {
      drawClear: [drawAlerts],
      draw: [() => markDrawn()],
      setCursor: [(u) => renderLegend(u)],
      setSelect: [
        (u) => {
          if (u.select.width <= 0) return;
          const min = u.posToVal(u.select.left, "x");
          const max = u.posToVal(u.select.left + u.select.width, "x");
          onZoom(min, max);
        },
      ],
    },
  };
}

function markDrawn() {
  if (state.drawnAt === null && (state.data || state.pairs.length === 0)) {
    state.drawnAt = performance.now();
    performance.mark("cotacao:drawn");
    document.documentElement.dataset["drawn"] = "true";
  }
}

/**
 * Shows `data` in the chart, creating it the first time; after that only `setData`, so live
 * updates never rebuild it.
 * @param {ChartData} data
 * @param {{ min: number, max: number }} scale
 */
function showData(data, scale) {
  state.data = data;
  const max = scale.max > scale.min ? scale.max : scale.min + 3600;
  const min = scale.max > scale.min ? scale.min : scale.min - 3600;
  if (!state.chart) {
    state.chart = new uPlot(chartOptions(), /** @type {any} */ (data), $.chart);
    followBidDay(state.chart);
    state.chart.setScale("x", { min, max });
  } else {
    state.chart.setData(/** @type {any} */ (data), false);
    state.chart.setScale("x", { min, max });
    // The cursor's indexes were the old data's (a zoom's finer data just replaced it): find
    // the point under it again, or the legend would show dashes until the mouse moves.
    const { left, top } = state.chart.cursor;
    if (left !== undefined && top !== undefined && left >= 0 && top >= 0) state.chart.setCursor({ left, top });
  }
  renderLegend(state.chart);
  renderResolution();
}

/** The footnote: how many points the chart holds (live ones too) and what one point is. */
function renderResolution() {
  const points = state.data ? countPoints(state.data) : 0;
  $.resolution.textContent = t("chart.points", { n: formatNumber(points, 0, state.locale), resolution: describeResolution(state.loaded.bucketSeconds, state.locale) });
}

/**
 * @param {{ from: number, to: number }} bounds
 * @returns {{ min: number, max: number }}
 */
const scaleOf = ({ from, to }) => ({ min: from, max: to });

/** The scale a preset shows, following the newest quote. */
function presetScale() {
  const info = state.pairs.find((candidate) => candidate.pair === state.pair);
  const first = toSeconds(info?.first) ?? state.newest;
  return rangeBounds(state.preset, first, state.newest);
}

/**
 * Shows `preset`: its buckets from the server, then the scale that ends at the newest quote.
 * @param {RangePreset} preset
 */
async function loadPreset(preset) {
  clearTimeout(zoomTimer);
  state.preset = preset;
  state.zoom = null;
  $.resetZoom.hidden = true;
  renderRangeButtons();
  rememberInUrl();
  const bounds = presetScale();
  // All: the server's whole range (as prefetched). Else up to now, not just the newest known
  // quote: one stored since the pairs were read comes too.
  const range = preset === "All" ? null : { from: bounds.from, to: Math.max(bounds.to + 1, Math.ceil(Date.now() / 1000)) };
  const request = fetchQuotes("quotes", range);
  localeParts();
  const answer = await request;
  if (!answer || state.zoom) return;
  if (state.drawnAt === null) performance.mark("cotacao:quotes");
  state.presetData = prepData(answer);
  state.presetAnswer = { answer, from: range?.from ?? toSeconds(answer.from) ?? bounds.from, to: range?.to ?? toSeconds(answer.to) ?? bounds.to };
  noteAnswer(answer, state.presetAnswer.from, state.presetAnswer.to);
  showData(state.presetData, scaleOf(presetScale()));
}

/**
 * The pair's buckets for [from, to] (seconds), or for its whole history when `range` is null.
 * @param {string} kind
 * @param {{ from: number, to: number } | null} range
 * @returns {Promise<QuotesAnswer|null>}
 */
async function fetchQuotes(kind, range) {
  if (!state.pair) return null;
  $.chart.classList.add("loading");
  try {
    const span = range ? { from: iso(range.from), to: iso(range.to) } : {};
    return await getJson(kind, "/api/quotes", { pair: state.pair, ...span, points: CHART_POINTS });
  } finally {
    if (!isPending("quotes") && !isPending("zoom")) $.chart.classList.remove("loading");
  }
}

/**
 * Records what a quotes answer covers, for the legend, the footnote and the CSV link.
 * @param {QuotesAnswer} answer
 * @param {number} from
 * @param {number} to
 */
function noteAnswer(answer, from, to) {
  state.loaded = { from, to, bucketSeconds: answer.bucketSeconds ?? 0 };
  state.ma = answer.ma ? { windowDays: answer.ma.windowDays, thresholdPct: answer.ma.thresholdPct } : null;
  renderLegendLabels();
  $.legendSpreadItem.hidden = state.loaded.bucketSeconds === 0;
  const csv = new URL("/api/quotes.csv", location.origin);
  csv.searchParams.set("pair", state.pair ?? "");
  csv.searchParams.set("from", iso(from));
  csv.searchParams.set("to", iso(to));
  $.csv.href = csv.pathname + csv.search;
}

/** The legend's names for the average and its band, which say the rule's settings. */
function renderLegendLabels() {
  $.legendMaLabel.textContent = state.ma ? t("legend.averageDays", { days: state.ma.windowDays }) : t("legend.average");
  $.legendBandLabel.textContent = state.ma ? `±${formatPercent(state.ma.thresholdPct, 1, state.locale)}` : t("legend.band");
}

/** @type {ReturnType<typeof setTimeout> | undefined} */
let zoomTimer;

/**
 * A drag-zoom: uPlot has already zoomed into the data it holds; finer data for the range
 * follows once the dragging stops, replacing the old only when it arrives.
 * @param {number} min
 * @param {number} max
 */
function onZoom(min, max) {
  state.zoom = { min, max };
  $.resetZoom.hidden = false;
  renderRangeButtons();
  clearTimeout(zoomTimer);
  if (!zoomNeedsFetch(state.loaded, min, max)) return;
  zoomTimer = setTimeout(() => {
    void attempt("read the zoomed range", async () => {
      const answer = await fetchQuotes("zoom", { from: Math.floor(min), to: Math.ceil(max) });
      // A reset or another zoom since: this answer is for a view no longer shown.
      if (!answer || !state.zoom || state.zoom.min !== min || state.zoom.max !== max) return;
      noteAnswer(answer, Math.floor(min), Math.ceil(max));
      showData(prepData(answer), { min, max });
    });
  }, ZOOM_DEBOUNCE_MS);
}

function resetZoom() {
  clearTimeout(zoomTimer);
  abortRequest("zoom");
  if (!state.zoom && state.data === state.presetData) return;
  state.zoom = null;
  $.resetZoom.hidden = true;
  renderRangeButtons();
  if (state.presetData && state.presetAnswer) {
    const { answer, from, to } = state.presetAnswer;
    noteAnswer(answer, from, to);
    showData(state.presetData, scaleOf(presetScale()));
  } else void attempt("read the chart's data", () => loadPreset(state.preset));
}

/**
 * The legend: the point under the cursor, else the newest one.
 * @param {UPlot} u
 */
function renderLegend(u) {
  const data = /** @type {ChartData} */ (/** @type {unknown} */ (u.data));
  const xs = data[0];
  if (xs.length === 0) {
    $.legendTime.textContent = t("legend.none");
    for (const element of [$.legendBid, $.legendSpread, $.legendMa, $.legendBand]) element.textContent = "–";
    return;
  }
  const hovering = u.cursor.idx !== null && u.cursor.idx !== undefined;
  /** @param {number} series */
  const newestIndex = (series) => {
    const column = data[series] ?? [];
    for (let i = column.length - 1; i >= 0; i--) if (column[i] !== null && column[i] !== undefined) return i;
    return null;
  };
  /** @param {number} series */
  const index = (series) => (hovering ? (u.cursor.idxs?.[series] ?? null) : newestIndex(series));
  /** @param {number} series @param {number|null} i */
  const value = (series, i) => (i === null ? null : (data[series]?.[i] ?? null));
  // A cursor whose index no longer finds a bid (data replaced under it) shows the newest.
  const bidIdx = index(SERIES.bid) ?? (hovering ? newestIndex(SERIES.bid) : null);
  const ts = bidIdx === null ? null : (xs[bidIdx] ?? null);
  // A live quote appended to bucketed data is a point of its own, not a bucket.
  const bucket = bidIdx === xs.length - 1 && ts !== null && ts > state.loaded.to ? 0 : state.loaded.bucketSeconds;
  $.legendTime.textContent = ts === null ? "–" : describePoint(ts, bucket, state.zone, state.locale);
  $.legendTime.dataset["ts"] = ts === null ? "" : String(ts);
  $.legendBid.textContent = money(value(SERIES.bid, bidIdx));
  $.legendSpread.textContent = `${money(value(SERIES.min, bidIdx))} – ${money(value(SERIES.max, bidIdx))}`;
  // The average of the bid's own day (its nearest point in time may be the next day's start).
  const maIdx = bidIdx === null ? null : averageIndexFor(data, bidIdx, bucket);
  $.legendMa.textContent = money(value(SERIES.ma, maIdx));
  $.legendBand.textContent = `${money(value(SERIES.lower, maIdx))} – ${money(value(SERIES.upper, maIdx))}`;
}

function renderRangeButtons() {
  for (const button of $.ranges.querySelectorAll("button")) {
    button.setAttribute("aria-pressed", String(!state.zoom && button.dataset["range"] === state.preset));
  }
}

function buildRangeButtons() {
  $.ranges.replaceChildren(
    ...Object.keys(RANGE_SECONDS).map((preset) => {
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = t(`range.${preset}`);
      button.dataset["range"] = preset;
      button.setAttribute("aria-pressed", "false");
      button.addEventListener("click", () => {
        if (!isPreset(preset)) return;
        pushView({ range: preset });
        void attempt("read the chart's data", () => loadPreset(preset));
      });
      return button;
    }),
  );
  renderRangeButtons();
}

// ---------------------------------------------------------------------------------------------
// Tables

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

/** The chart's shading: every episode of the pair (up to the server's cap). */
async function loadAlertSpans() {
  if (!state.pair) return;
  const body = await getJson("alerts", "/api/alerts", { pair: state.pair, limit: ALERTS_ASKED });
  if (!body) return;
  /** @type {AlertRow[]} */
  const alerts = body.alerts ?? [];
  state.spans = alertSpans(alerts, Math.max(state.newest, Date.now() / 1000));
  state.chart?.redraw(false, false);
}

/**
 * The alerts table, one page of the API's at a time (the page state.alertPages ends at), and
 * the chart's shading unless `spans` is false (paging).
 */
async function loadAlerts({ spans = true } = {}) {
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
      const kind = alert.kind === "deviation" && alert.direction ? t(alert.direction === "up" ? "alerts.above" : "alerts.below") : alert.kind === "stale" ? t("alerts.stale") : String(alert.kind ?? "–");
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
function turnAlertPage(step) {
  if (step === 1 && state.alertsNext !== null) state.alertPages.push(state.alertsNext);
  else if (step === -1 && state.alertPages.length > 0) state.alertPages.pop();
  else return;
  void attempt("read the alerts", () => loadAlerts({ spans: false }));
}

/**
 * Zooms the chart to an alert episode, with some of the days around it.
 * @param {number} from
 * @param {number} to
 */
function showEpisode(from, to) {
  if (!state.chart) return;
  const margin = Math.max((to - from) * 0.5, 5 * 86_400);
  const min = from - margin;
  const max = Math.min(to + margin, Math.max(state.newest, to));
  state.chart.setScale("x", { min, max });
  onZoom(min, max);
  $.chartPanel.scrollIntoView({ block: "nearest" });
}

const RUN_TONES = /** @type {Record<string, string>} */ ({ succeeded: "ok", failed: "bad", running: "warn", skipped: "" });

async function loadRuns() {
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

// ---------------------------------------------------------------------------------------------
// Live

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
  if (state.chart && state.data) {
    // Month names and number formats are set when the chart is made.
    const { min, max } = state.chart.scales["x"] ?? {};
    state.chart.destroy();
    state.chart = null;
    showData(state.data, { min: min ?? 0, max: max ?? 0 });
  }
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

/** Keeps the chart as wide as its panel, and its colours those of the scheme in force. */
function watchLayout() {
  new ResizeObserver(() => {
    if (state.chart) state.chart.setSize(chartSize());
  }).observe($.chart);
  matchMedia("(prefers-color-scheme: dark)").addEventListener("change", () => {
    colorsCache = null;
    if (!state.chart || !state.data) return;
    const { min, max } = state.chart.scales["x"] ?? {};
    state.chart.destroy();
    state.chart = null;
    showData(state.data, { min: min ?? 0, max: max ?? 0 });
  });
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
