/**
 * chart.js: the history chart: uPlot set up over the pure data of chart-data.js, its legend,
 * the range buttons, drag-zoom with finer data from the server, the alert episodes shaded under
 * the series and the average's band. uPlot is a global (index.html loads it from /vendor).
 */
import { abortRequest, getJson, isPending, iso } from "./api.js";
import {
  carryLiveQuotes,
  RANGE_SECONDS,
  SERIES,
  alertSpans,
  averageIndexFor,
  countPoints,
  dateNames,
  describePoint,
  describeResolution,
  formatNumber,
  formatPercent,
  formatPrice,
  officialAt,
  officialCloses,
  prepData,
  rangeBounds,
  tickDecimals,
  timeAxisStamps,
  toSeconds,
  zonedDate,
  zoomNeedsFetch,
} from "./chart-data.js";
import { byId } from "./dom.js";
import { attempt } from "./failures.js";
import { BROWSER_ZONE, currency, isPreset, money, pushView, rememberInUrl, state, t } from "./state.js";

/** @typedef {import("uplot")} UPlot */
/** @typedef {import("uplot").Options} UPlotOptions */
/** @typedef {import("./chart-data.js").ChartData} ChartData */
/** @typedef {import("./chart-data.js").RangePreset} RangePreset */
/** @typedef {import("./chart-data.js").QuotesAnswer} QuotesAnswer */
/** @typedef {import("./api.js").AlertRow} AlertRow */

const $ = {
  chartPanel: byId("chart-panel"),
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
  legendOfficialItem: byId("legend-official-item"),
  legendOfficialToggle: byId("legend-official-toggle"),
  legendOfficial: byId("legend-official"),
  resolution: byId("resolution"),
  csv: /** @type {HTMLAnchorElement} */ (byId("csv")),
};

const uPlot = /** @type {typeof import("uplot")} */ (/** @type {any} */ (globalThis).uPlot);

/** Buckets asked of the server: enough for a wide screen, few enough to draw at once. */
const CHART_POINTS = 1500;

/** A drag-zoom waits this long for the next one before asking the server for finer data. */
const ZOOM_DEBOUNCE_MS = 250;

/** The chart shades every episode of the range; the server's cap. */
const ALERTS_ASKED = 500;

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
    official: read("official"),
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
          seriesIdx === SERIES.bid ? cursorPoint("pt-bid") : seriesIdx === SERIES.ma ? cursorPoint("pt-ma") : seriesIdx === SERIES.official ? cursorPoint("pt-official") : /** @type {any} */ (null),
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
      // BCB's closing PTAX, one point a business day; hidden or shown from the legend.
      { label: "official", stroke: colors.official, width: 1.5, dash: [6, 3], spanGaps: true, show: state.showOfficial, points: { size: 5, fill: colors.official } },
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

export function markDrawn() {
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
export function renderResolution() {
  const points = state.data ? countPoints(state.data) : 0;
  $.resolution.textContent = t("chart.points", { n: formatNumber(points, 0, state.locale), resolution: describeResolution(state.loaded.bucketSeconds, state.locale) });
}

/**
 * @param {{ from: number, to: number }} bounds
 * @returns {{ min: number, max: number }}
 */
const scaleOf = ({ from, to }) => ({ min: from, max: to });

/** The scale a preset shows, following the newest quote. */
export function presetScale() {
  const info = state.pairs.find((candidate) => candidate.pair === state.pair);
  const first = toSeconds(info?.first) ?? state.newest;
  return rangeBounds(state.preset, first, state.newest);
}

/**
 * Shows `preset`: its buckets from the server, then the scale that ends at the newest quote.
 * @param {RangePreset} preset
 */
export async function loadPreset(preset) {
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
  const official = fetchOfficial(range);
  localeParts();
  const answer = await request;
  if (!answer || state.zoom) return;
  if (state.drawnAt === null) performance.mark("cotacao:quotes");
  state.presetData = prepData(answer, state.official);
  state.presetAnswer = { answer, from: range?.from ?? toSeconds(answer.from) ?? bounds.from, to: range?.to ?? toSeconds(answer.to) ?? bounds.to };
  noteAnswer(answer, state.presetAnswer.from, state.presetAnswer.to);
  showData(state.presetData, scaleOf(presetScale()));
  // The official closes follow the chart, never hold it up: they join it when they come.
  const closes = await official;
  if (!closes || !state.presetAnswer || state.presetAnswer.answer !== answer) return;
  state.official = closes;
  renderOfficialLegend();
  const joined = prepData(answer, closes);
  // Live quotes the feed added since the answer came are not in it: they stay on the chart.
  if (state.presetData) carryLiveQuotes(state.presetData, joined);
  state.presetData = joined;
  if (!state.zoom) showData(state.presetData, scaleOf(presetScale()));
}

/**
 * BCB's closing PTAX of the pair over `range` (the whole history when null): none when PTAX does
 * not publish the pair; null when the request was superseded.
 * @param {{ from: number, to: number } | null} range
 * @returns {Promise<import("./chart-data.js").OfficialCloses | null>}
 */
async function fetchOfficial(range) {
  if (!state.pair) return null;
  const pair = state.pair;
  state.official = null;
  renderOfficialLegend();
  const span = range ? { from: iso(range.from), to: iso(range.to) } : {};
  const answer = await getJson("official", "/api/official", { pair, ...span });
  return answer && pair === state.pair ? officialCloses(answer) : null;
}

/** The legend's PTAX item: shown when the pair has official closes; pressed while the series is shown. */
function renderOfficialLegend() {
  $.legendOfficialItem.hidden = !state.official || state.official.ts.length === 0;
  $.legendOfficialToggle.setAttribute("aria-pressed", String(state.showOfficial));
}

/** The legend's PTAX button: shows or hides the official series (uPlot's series `show`). */
export function toggleOfficial() {
  state.showOfficial = !state.showOfficial;
  state.chart?.setSeries(SERIES.official, { show: state.showOfficial });
  renderOfficialLegend();
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
export function renderLegendLabels() {
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
      showData(prepData(answer, state.official), { min, max });
    });
  }, ZOOM_DEBOUNCE_MS);
}

export function resetZoom() {
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
export function renderLegend(u) {
  const data = /** @type {ChartData} */ (/** @type {unknown} */ (u.data));
  const xs = data[0];
  if (xs.length === 0) {
    $.legendTime.textContent = t("legend.none");
    for (const element of [$.legendBid, $.legendSpread, $.legendMa, $.legendBand, $.legendOfficial]) element.textContent = "–";
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
  // The closing PTAX in force at the point: the newest published at or before it.
  $.legendOfficial.textContent = money(officialAt(data, hovering ? (u.cursor.idx ?? null) : data[0].length - 1));
}

function renderRangeButtons() {
  for (const button of $.ranges.querySelectorAll("button")) {
    button.setAttribute("aria-pressed", String(!state.zoom && button.dataset["range"] === state.preset));
  }
}

export function buildRangeButtons() {
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

/** The chart's shading: every episode of the pair (up to the server's cap). */
export async function loadAlertSpans() {
  if (!state.pair) return;
  const body = await getJson("alerts", "/api/alerts", { pair: state.pair, limit: ALERTS_ASKED });
  if (!body) return;
  /** @type {AlertRow[]} */
  const alerts = body.alerts ?? [];
  state.spans = alertSpans(alerts, Math.max(state.newest, Date.now() / 1000));
  state.chart?.redraw(false, false);
}

/**
 * Zooms the chart to an alert episode, with some of the days around it.
 * @param {number} from
 * @param {number} to
 */
export function showEpisode(from, to) {
  if (!state.chart) return;
  const margin = Math.max((to - from) * 0.5, 5 * 86_400);
  const min = from - margin;
  const max = Math.min(to + margin, Math.max(state.newest, to));
  state.chart.setScale("x", { min, max });
  onZoom(min, max);
  $.chartPanel.scrollIntoView({ block: "nearest" });
}

/** Keeps the chart as wide as its panel, and its colours those of the scheme in force. */
export function watchLayout() {
  new ResizeObserver(() => {
    if (state.chart) state.chart.setSize(chartSize());
  }).observe($.chart);
  matchMedia("(prefers-color-scheme: dark)").addEventListener("change", () => {
    colorsCache = null;
    rebuildChart();
  });
}

/**
 * Makes the chart anew over the same data and range, so that what is set only when it is made
 * (colours, month names, number formats) follows the colour scheme and the language.
 */
export function rebuildChart() {
  if (!state.chart || !state.data) return;
  const { min, max } = state.chart.scales["x"] ?? {};
  state.chart.destroy();
  state.chart = null;
  showData(state.data, { min: min ?? 0, max: max ?? 0 });
}
