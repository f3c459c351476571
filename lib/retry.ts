/**
 * lib/retry.ts: what cotacao asks again and how long it waits first, for every HTTP client it has
 * (the AwesomeAPI client in ingest.ts, webhook delivery in lib/webhooks.ts). Only what is
 * transient is retried: no answer in time, the network, throttling, the server's own errors; a
 * bad request or a bad payload fails at once.
 */

/**
 * Kinds of failure with no HTTP answer that may pass if the same request is made again. Not, for
 * example, an answer too large to read (the same request would bring the same flood), nor one
 * that is not JSON or fails validation.
 */
export const RETRIED_FAILURES: ReadonlySet<string> = new Set(["TIMEOUT", "NETWORK"]);

/** Whether an HTTP status may pass if asked again: timeouts (408), throttling (429, and 409 as AwesomeAPI uses it), server errors. */
export function isRetryableStatus(status: number): boolean {
  return status >= 500 || status === 429 || status === 409 || status === 408;
}

/** A doubling wait: `firstMs` before the second attempt, doubling, never above `maxMs`. */
export interface Backoff {
  firstMs: number;
  maxMs: number;
}

/**
 * The wait after `attempt` failed attempts (from 1): the backoff's ceiling for it, with half of
 * it jittered by `random` (in [0, 1)) so that many clients do not retry in step.
 */
export function backoffMs(attempt: number, { firstMs, maxMs }: Backoff, random: () => number = Math.random): number {
  const ceiling = Math.min(maxMs, firstMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(ceiling / 2 + (ceiling / 2) * random());
}

/** The longest wait a `Retry-After` header is obeyed for. */
const RETRY_AFTER_CAP_MS = 60_000;

/** The wait a `Retry-After` header asks for (seconds or an HTTP date), capped at 60 s; undefined if absent or unreadable. */
export function retryAfterMs(header: string | null, now: Date): number | undefined {
  if (header === null || header.trim() === "") return undefined;
  const text = header.trim();
  const ms = /^\d+(\.\d+)?$/.test(text) ? Number(text) * 1000 : Date.parse(text) - now.getTime();
  if (!Number.isFinite(ms)) return undefined;
  return Math.min(RETRY_AFTER_CAP_MS, Math.max(0, Math.round(ms)));
}
