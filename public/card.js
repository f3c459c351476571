/**
 * card.js: the card with the pair's newest quote: bid, ask, change, age, the feed's status (the
 * server's judgement) and the days a run cannot fill.
 */
import { getJson } from "./api.js";
import { describeStatus, formatAge, formatChange, formatTime, toSeconds } from "./chart-data.js";
import { byId } from "./dom.js";
import { attempt } from "./failures.js";
import { money, state, t } from "./state.js";

/** @typedef {import("./api.js").Latest} Latest */

const $ = {
  latestPair: byId("latest-pair"),
  status: byId("status"),
  statusDetail: byId("status-detail"),
  gaps: byId("gaps"),
  bid: byId("bid"),
  change: byId("change"),
  ask: byId("ask"),
  quotedAt: byId("quoted-at"),
  age: byId("age"),
  official: byId("official"),
  officialFallback: byId("official-fallback"),
};

/** The status is the server's judgement; asked again this often even without events. */
const LATEST_REFRESH_MS = 30_000;

/**
 * Days too old for a run to fill, and the command that loads them, in the page's language.
 * @param {string} pair
 * @param {{ from: string, to: string }} gap  calendar days, YYYY-MM-DD
 */
function gapLine(pair, { from, to }) {
  const day = (/** @type {string} */ date) => new Intl.DateTimeFormat(state.locale, { dateStyle: "medium", timeZone: "UTC" }).format(new Date(`${date}T00:00:00Z`));
  const command = `bun main_pipeline.ts --pairs ${pair} --from ${from} --to ${to}`;
  return t("card.gap", { pair, from: day(from), to: day(to), command });
}

export async function loadLatest() {
  if (!state.pair) return;
  /** @type {Latest|null} */
  const latest = await getJson("latest", "/api/latest", { pair: state.pair });
  if (!latest) return;
  state.latest = latest;
  state.latestReadAt = performance.now();
  state.newest = Math.max(state.newest, toSeconds(latest.ts) ?? 0);
  renderCard();
}

export function renderCard() {
  const latest = state.latest;
  $.latestPair.textContent = state.pair ?? "–";
  if (!latest) {
    for (const element of [$.bid, $.ask, $.quotedAt, $.age, $.change]) element.textContent = "–";
    $.status.textContent = t("card.loading");
    $.status.className = "status none";
    $.official.hidden = true;
    $.officialFallback.hidden = true;
    return;
  }
  $.bid.textContent = money(latest.bid);
  $.ask.textContent = money(latest.ask);
  const ts = toSeconds(latest.ts);
  $.quotedAt.textContent = ts === null ? "–" : formatTime(ts, state.zone, { locale: state.locale, seconds: true });
  const pct = latest.changePct;
  const arrow = pct === null || pct === undefined || pct === 0 ? "" : pct > 0 ? "▲ " : "▼ ";
  $.change.textContent = `${arrow}${formatChange(pct, state.locale)}`;
  $.change.className = `value${pct ? (pct > 0 ? " up" : " down") : ""}`;
  // Days the pipeline cannot fill by itself: a line until the backfill it names has run.
  $.gaps.textContent = (latest.gaps ?? []).map((gap) => gapLine(latest.pair, gap)).join("; ");
  $.gaps.hidden = $.gaps.textContent === "";
  renderOfficial(latest.official ?? null);
  renderAge();
}

/**
 * A PTAX bulletin as the card names it: its rate, its time and which bulletin it is.
 * @param {import("./api.js").OfficialView} official
 */
function bulletinText(official) {
  const ts = toSeconds(official.publishedAt);
  return t("card.officialRate", {
    rate: money(official.buy),
    time: ts === null ? "–" : formatTime(ts, state.zone, { locale: state.locale }),
    bulletin: t(`bulletin.${official.bulletin}`),
  });
}

/**
 * BCB's newest bulletin under the quote, with AwesomeAPI's divergence from the newest closing PTAX.
 * @param {import("./api.js").OfficialView|null} official
 */
function renderOfficial(official) {
  $.official.hidden = official === null;
  if (!official) return;
  const point = official.divergence;
  const divergence = point ? t("card.divergence", { pct: formatChange(Number(point.divergencePct), state.locale), day: formatDate(point.day) }) : t("card.noDivergence");
  $.official.replaceChildren(document.createTextNode(`${bulletinText(official)} · `), Object.assign(document.createElement("b"), { textContent: divergence }));
}

/** @param {string} day  YYYY-MM-DD */
function formatDate(day) {
  return new Intl.DateTimeFormat(state.locale, { dateStyle: "short", timeZone: "UTC" }).format(new Date(`${day}T00:00:00Z`));
}

/**
 * While AwesomeAPI is failing or stale (the card's status), the official rate is the last number
 * to trust: said plainly, with its time.
 */
function renderFallback() {
  const official = state.latest?.official;
  const feed = state.latest?.status?.state;
  $.officialFallback.hidden = !official || (feed !== "failing" && feed !== "stale");
  if (!official || $.officialFallback.hidden) return;
  $.officialFallback.textContent = t(feed === "failing" ? "card.fallbackFailing" : "card.fallbackStale", { rate: bulletinText(official) });
}

/** The age ticks on between reads; the status line is the server's, re-read every 30 s. */
function renderAge() {
  const latest = state.latest;
  if (!latest) return;
  const elapsed = (performance.now() - state.latestReadAt) / 1000;
  $.age.textContent = latest.ageSeconds === undefined ? "–" : formatAge(latest.ageSeconds + elapsed);
  const status = describeStatus(latest.status, Date.now() / 1000, state.zone, state.locale);
  $.status.textContent = status.text;
  $.status.className = `status ${status.tone}`;
  renderFallback();
  // Which run failed, and why, under the card (a stale feed's badge says all there is to say).
  const detail = status.tone === "bad" ? (latest.status?.message ?? "") : "";
  $.statusDetail.textContent = detail;
  $.statusDetail.hidden = detail === "";
}

/** @type {ReturnType<typeof setTimeout> | undefined} */
let latestTimer;

/** The card's timers: its age ticks every second; the server's status is re-read every 30 s. */
export function watchCard() {
  setInterval(renderAge, 1000);
  setInterval(() => {
    if (state.pair) void attempt("read the newest quote", loadLatest);
  }, LATEST_REFRESH_MS);
}

/** Re-reads the card soon (its change and status), once for a burst of events. */
export function refreshLatestSoon() {
  clearTimeout(latestTimer);
  latestTimer = setTimeout(() => void attempt("read the newest quote", loadLatest), 150);
}
