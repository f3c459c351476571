/**
 * lib/http.ts: what the HTTP clients of the sources (ingest.ts for AwesomeAPI, lib/bcb.ts for BCB)
 * share: a base URL's check, a body read whole but never past a cap or a deadline (an endless,
 * gzip-bombed or stalled body stops there), and a value shown in a message.
 */

/** How a source client reaches the network: fetch, as the clients call it. */
export type Fetch = (input: string, init: RequestInit) => Promise<Response>;

/**
 * How a source client makes its requests; every I/O dependency has a default so tests can pass
 * fakes. `RetryInfo` is what the client tells onRetry about each retry.
 */
export interface SourceRequestOptions<RetryInfo> {
  fetch?: Fetch;
  /** Per attempt, the whole body included. */
  timeoutMs?: number;
  /** The most bytes of a body read, once decompressed; more fails as TOO_LARGE. */
  maxBodyBytes?: number;
  /** Attempts after the first one, for transient failures only. */
  retries?: number;
  sleep?: (ms: number) => Promise<unknown>;
  /** In [0, 1): spreads the backoff so many clients do not retry in step. */
  random?: () => number;
  now?: () => Date;
  onRetry?: (info: RetryInfo) => void;
}

/** How much of a string value a message shows. */
const SNIPPET_CHARS = 60;

/**
 * Whether `text` is an http(s) base URL: no query or fragment, and no credentials unless the
 * client masks them in its messages (`credentials`: AwesomeAPI's, behind a proxy of the user's).
 */
export function isHttpUrl(text: string, { credentials = false }: { credentials?: boolean } = {}): boolean {
  if (!/^https?:\/\//i.test(text)) return false;
  try {
    const url = new URL(text);
    return url.search === "" && url.hash === "" && (credentials || (url.username === "" && url.password === ""));
  } catch {
    return false;
  }
}

/** The value a field had, for messages: strings quoted (and cut), numbers marked as such. */
export function showValue(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value.length > SNIPPET_CHARS ? `${value.slice(0, SNIPPET_CHARS)}...` : value);
  if (typeof value === "number") return `${value} (a number)`;
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  return typeof value === "object" ? "an object" : String(value);
}

/**
 * Reads a body up to `maxBytes`; undefined if there is more (the rest is never read). A read
 * pending when `signal` aborts rejects at once, so the timeout bounds the whole read.
 */
export async function readCappedBody(response: Response, signal: AbortSignal, maxBytes: number): Promise<Uint8Array | undefined> {
  // Without content-encoding the declared length is the body's: refuse it before reading a byte.
  if (!response.headers.has("content-encoding") && Number(response.headers.get("content-length")) > maxBytes) {
    response.body?.cancel().catch(() => {});
    return undefined;
  }
  if (!response.body) return new Uint8Array(0);
  const reader = response.body.getReader();
  let onAbort = () => {};
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason);
    if (signal.aborted) onAbort();
    else signal.addEventListener("abort", onAbort, { once: true });
  });
  // Raced below; a rejection nobody awaits any more must not count as unhandled.
  aborted.catch(() => {});
  const chunks: Uint8Array[] = [];
  let total = 0;
  let complete = false;
  try {
    for (;;) {
      const { done, value } = await Promise.race([reader.read(), aborted]);
      if (done) {
        complete = true;
        break;
      }
      total += value.byteLength;
      if (total > maxBytes) return undefined;
      chunks.push(value);
    }
  } finally {
    signal.removeEventListener("abort", onAbort);
    // Stops an endless, oversized or timed-out transfer; not awaited, since a stalled peer may never confirm.
    if (!complete) reader.cancel().catch(() => {});
  }
  return Buffer.concat(chunks, total);
}
