/**
 * lib/http_body.ts: reading an HTTP answer's body whole, but never more than a cap and never past
 * a deadline: an endless, gzip-bombed or stalled body stops there. For the API clients.
 */

/**
 * Reads a body up to `maxBytes`; undefined if there is more (the rest is never read). A read
 * pending when `signal` aborts rejects at once, so the timeout bounds the whole read.
 * Shared by the HTTP clients that read a whole answer (lib/bcb.ts; ingest.ts has the same reader
 * for AwesomeAPI, which can import this one instead).
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
