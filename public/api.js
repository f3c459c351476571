/**
 * api.js: the page's requests to the JSON API, and the shapes of its answers. A newer request of
 * a kind aborts the older one, and the first view's request may leave before the page has
 * started (prefetch()).
 */

/** @typedef {{ pair: string, first: string, last: string, count: number }} PairInfo */
/**
 * @typedef {object} Latest  GET /api/latest
 * @property {string} pair
 * @property {string} ts
 * @property {string} bid
 * @property {string} ask
 * @property {number|null} [changePct]
 * @property {number} [ageSeconds]
 * @property {import("./chart-data.js").FeedStatus} [status]
 * @property {{ from: string, to: string, message: string }[]} [gaps]  days too old for a run to fill, and how to load them
 * @property {OfficialView|null} [official]  BCB's newest PTAX bulletin and the newest cross-check
 */
/**
 * @typedef {object} OfficialView  GET /api/latest's official: times São Paulo ISO with offset, rates as stored
 * @property {string} bulletin  "opening", "intermediate" or "closing"
 * @property {string} publishedAt
 * @property {string} buy
 * @property {string} sell
 * @property {{ day: string, publishedAt: string, buy: string, bid: string, quoteAt: string, divergencePct: string } | null} divergence
 */
/**
 * @typedef {object} AlertRow  one of GET /api/alerts' alerts: an episode, times in ISO
 * @property {number} id
 * @property {string} pair
 * @property {string} kind  "deviation", "stale" or "divergence" (AwesomeAPI against BCB's closing PTAX)
 * @property {string|null} direction  a deviation's: "up" or "down"
 * @property {string} state  "firing" or "resolved"
 * @property {string} firedAt
 * @property {string|null} resolvedAt
 * @property {string} lastSeenAt
 * @property {string|null} price  the decimal as stored
 * @property {number|null} average
 * @property {number|null} deviation  a fraction: close / average - 1
 * @property {number|null} peakDeviation
 * @property {string|null} peakAt
 * @property {number|null} threshold
 * @property {number|null} windowDays
 * @property {string|null} firedSeenAt
 * @property {string|null} resolvedSeenAt
 * @property {string|null} [supersededAt]  set when a rescan no longer found this delivered episode
 */
/**
 * @typedef {object} RunRow  one of GET /api/runs' runs, times in ISO
 * @property {number} id
 * @property {string} startedAt
 * @property {string|null} finishedAt
 * @property {string} status  "running", "succeeded", "failed" or "skipped" (stood aside for another run's lock)
 * @property {string[]} pairs
 * @property {number} rowsFetched
 * @property {number} rowsInserted
 * @property {number} rowsUpdated
 * @property {number} rowsUnchanged
 * @property {string|null} error
 * @property {string|null} failedStep
 * @property {string[]} failedPairs
 * @property {string[]} warnings
 */

/** Each request kind aborts its predecessor, so an old answer never overwrites a newer one. */
/** @type {Map<string, AbortController>} */
const inflight = new Map();

/**
 * @param {string} path
 * @param {Record<string, string|number|undefined>} [query]
 */
function apiUrl(path, query = {}) {
  const url = new URL(path, location.origin);
  for (const [key, value] of Object.entries(query)) if (value !== undefined) url.searchParams.set(key, String(value));
  return url;
}

/**
 * The first view's request that needs nothing else, sent as the page starts, before its
 * other work; getJson() takes an answer from here when it asks for the very same URL. Cleared
 * once the first view is shown.
 * @type {Map<string, Promise<Response|null>>}
 */
const prefetched = new Map();

/**
 * @param {string} path
 * @param {Record<string, string|number|undefined>} [query]
 */
export function prefetch(path, query = {}) {
  const url = apiUrl(path, query);
  // A network error here is left for the real request to meet and report.
  // Plain (no headers), so that it matches index.html's preload of /api/pairs.
  prefetched.set(url.href, fetch(url).catch(() => null));
}

/**
 * GETs JSON; a new call with the same `kind` aborts the previous one (null is returned to the
 * aborted caller). A 4xx/5xx throws with the server's message.
 * @param {string} kind
 * @param {string} path
 * @param {Record<string, string|number|undefined>} [query]
 * @returns {Promise<any>}
 */
export async function getJson(kind, path, query = {}) {
  inflight.get(kind)?.abort();
  const controller = new AbortController();
  inflight.set(kind, controller);
  const url = apiUrl(path, query);
  const early = prefetched.get(url.href);
  prefetched.delete(url.href);
  try {
    // fetch() is called before this function first yields, so the request leaves at once.
    const response = early ? ((await early) ?? (await fetch(url, { signal: controller.signal }))) : await fetch(url, { signal: controller.signal });
    const body = await response.json().catch(() => null);
    if (!response.ok) {
      const error = new Error(body?.error ?? `${path} answered HTTP ${response.status}`);
      Object.assign(error, { status: response.status });
      throw error;
    }
    return body;
  } catch (error) {
    if (controller.signal.aborted) return null;
    throw error;
  } finally {
    if (inflight.get(kind) === controller) inflight.delete(kind);
  }
}

/** @param {number} seconds */
export const iso = (seconds) => new Date(seconds * 1000).toISOString();

/**
 * Drops a request of this kind on its way (its caller gets null).
 * @param {string} kind
 */
export function abortRequest(kind) {
  inflight.get(kind)?.abort();
}

/**
 * Whether a request of this kind is on its way.
 * @param {string} kind
 */
export function isPending(kind) {
  return inflight.has(kind);
}

/** Lets go of the prefetched answers the first view did not take. */
export function forgetPrefetched() {
  prefetched.clear();
}
