/**
 * lib/webhooks.ts: delivering the alerts' webhook notifications that analysis.ts writes: rounds
 * with a time budget, in order per webhook, retried across runs with backoff (lib/retry.ts decides
 * what is retried), an idempotency key on each; and the test notification. A webhook's URL is a
 * secret: it is stored only as a hash (endpointOf()) and named by position and host.
 */
import { formatSaoPauloTime } from "./calendar.ts";
import { formatDuration } from "./cli.ts";
import type { Sql } from "./pool.ts";
import { sha256 } from "./hash.ts";
import { backoffMs, isRetryableStatus } from "./retry.ts";
import { DEFAULT_WEBHOOK_GIVE_UP_AFTER_MS } from "./rule.ts";

// How long a delivery round waits for one webhook request before it sends that URL nothing more
// this round (the request itself may still answer, and count, until the round's budget ends).
const WEBHOOK_TIMEOUT_MS = 5_000;
// How long one delivery round may take in all; what is left waits for the next run.
const WEBHOOK_BUDGET_MS = 15_000;
const WEBHOOK_BACKOFF = { firstMs: 60_000, maxMs: 3_600_000 } as const;

/** Which transition a notification tells: an alert that fired, or one that resolved. */
export type AlertTransition = "firing" | "resolved";
/** Which kind of alert a notification is about. */
export type AlertKind = "deviation" | "stale" | "divergence";

/** How a delivery line names a notification's kind, after its pair ("the FIRING USD-BRL divergence notification"). */
const KIND_WORDS: Record<AlertKind, string> = { deviation: "", stale: " staleness", divergence: " divergence" };

/** The key a webhook's notifications are stored under: a hash of its URL, never the URL. */
export const endpointOf = (url: string) => sha256(url).slice(0, 16);

/** How a delivery round sends and times its requests; every default is the production one. */
export interface DeliveryOptions {
  fetch?: (input: string, init: RequestInit) => Promise<Response>;
  /** How long to wait for one request before sending that URL nothing more this round (5 s). */
  timeoutMs?: number;
  /** How long the whole round may take (15 s): a request still open then is aborted, and what is left waits for the next run. */
  budgetMs?: number;
  /** A notification still failing this long after it was written is given up (24 h). */
  giveUpAfterMs?: number | undefined;
  /** The clock: when a notification is due, and when it was written. */
  now?: (() => Date) | undefined;
  /** In [0, 1): spreads the wait before a retry, as the source's backoff does. */
  random?: () => number;
}

/** What a delivery round did. Each line names the webhook by position and host, never its URL. */
export interface DeliveryReport {
  delivered: number;
  /** One line per failed attempt that will be retried on a later run. */
  pending: string[];
  /** One line per notification given up for good (reported once: it is never sent again). */
  failed: string[];
}

/** A webhook as people may see it: its position in ALERT_WEBHOOK_URLS and its host (the path is the secret). */
interface Webhook {
  url: string;
  name: string;
}

function webhooksOf(urls: readonly string[]): Webhook[] {
  return urls.map((url, index) => ({ url, name: `webhook ${index + 1} (${new URL(url).host})` }));
}

/** The answer to one webhook request, sorted by what it means for the notification. */
type Outcome =
  | { kind: "delivered"; status: number }
  | { kind: "permanent"; reason: string }
  | { kind: "transient"; reason: string };

/** What an HTTP answer means for a webhook notification, decided in this one place. */
export function outcomeOf(response: Response): Outcome {
  const { status } = response;
  if (status >= 200 && status < 300) return { kind: "delivered", status };
  if (status >= 300 && status < 400) {
    // A redirect is not a delivery: fetch would turn the POST into a GET with no body.
    const location = response.headers.get("location");
    const host = location && URL.canParse(location, response.url || "http://invalid/") ? new URL(location, response.url || "http://invalid/").host : "an unnamed location";
    return { kind: "permanent", reason: `HTTP ${status} redirect to ${host}, not followed: put the final URL in ALERT_WEBHOOK_URLS` };
  }
  // The source's rule for what passes if asked again (lib/retry.ts).
  if (isRetryableStatus(status)) return { kind: "transient", reason: `HTTP ${status}` };
  return { kind: "permanent", reason: `HTTP ${status}, not retried: check the URL` };
}

function failureOf(error: unknown, budgetMs: number): Outcome {
  const name = (error as Error)?.name;
  if (name === "TimeoutError" || name === "AbortError") return { kind: "transient", reason: `no answer within the ${budgetMs / 1000} s delivery budget` };
  // The URL is a secret and error messages may quote it: report the error's code only.
  const code = (error as { code?: unknown })?.code;
  return { kind: "transient", reason: typeof code === "string" && /^[A-Za-z_]{1,40}$/.test(code) ? `network error (${code})` : "network error" };
}

/** The wait before the next attempt after `attempts` failed ones: one minute, doubling, at most an hour. */
export function webhookBackoffMs(attempts: number, random: () => number = Math.random): number {
  return backoffMs(attempts, WEBHOOK_BACKOFF, random);
}

/** A POST of `body` to a webhook: no redirects followed, an idempotency key, aborted at `signal`. */
function postWebhook(fetcher: NonNullable<DeliveryOptions["fetch"]>, url: string, body: Record<string, unknown>, key: string, signal: AbortSignal) {
  return fetcher(url, {
    method: "POST",
    headers: { "content-type": "application/json", "idempotency-key": key },
    body: JSON.stringify({ ...body, idempotencyKey: key }),
    redirect: "manual",
    signal,
  }).then(async (response) => {
    await response.body?.cancel().catch(() => {});
    return response;
  });
}

interface Claimed {
  id: number;
  endpoint: string;
  payload: Record<string, unknown>;
  transition: AlertTransition;
  attempts: number;
  createdAt: Date;
  previousNextAttemptAt: Date | null;
  pair: string;
  kind: AlertKind;
  fingerprint: string;
}

/**
 * Sends the notifications that are due, oldest first per webhook, to different webhooks at once,
 * within a time budget (15 s); each request carries an `Idempotency-Key` (the alert's
 * fingerprint and status), also in the body as `idempotencyKey`.
 *
 * A 2xx marks a notification delivered: it is never sent again. A 3xx (redirects are not
 * followed) or a 4xx other than 408 and 429 fails it for good. Anything else (5xx, 408, 429, no
 * answer, network) is retried on a later run, after a wait that doubles from a minute to an hour,
 * until `giveUpAfterMs` after it was written; then it fails for good too. A webhook whose request
 * takes longer than `timeoutMs` is sent nothing more this round, but that request is not aborted
 * before the budget ends: a slow receiver's late 2xx still counts, so it never gets the same
 * notification twice. A notification waits while an older one to the same webhook waits, so each
 * webhook sees them in order. Notifications for a URL no longer configured wait until it is again.
 */
export async function deliverPending(sql: Sql, webhookUrls: readonly string[], options: DeliveryOptions = {}): Promise<DeliveryReport> {
  const {
    fetch: fetcher = globalThis.fetch,
    timeoutMs = WEBHOOK_TIMEOUT_MS,
    budgetMs = WEBHOOK_BUDGET_MS,
    giveUpAfterMs = DEFAULT_WEBHOOK_GIVE_UP_AFTER_MS,
    now: clock = () => new Date(),
    random = Math.random,
  } = options;
  const report: DeliveryReport = { delivered: 0, pending: [], failed: [] };
  const byEndpoint = new Map(webhooksOf(webhookUrls).map((webhook) => [endpointOf(webhook.url), webhook]));
  if (byEndpoint.size === 0) return report;
  const deadline = AbortSignal.timeout(budgetMs);
  const claimed = await claimDue(sql, [...byEndpoint.keys()], clock(), budgetMs + timeoutMs);
  const queues = Map.groupBy(claimed, (notification) => notification.endpoint);

  const settle = async (notification: Claimed, webhook: Webhook, outcome: Outcome): Promise<void> => {
    const at = clock();
    const what = `the ${notification.transition.toUpperCase()} ${notification.pair}${KIND_WORDS[notification.kind]} notification`;
    if (outcome.kind === "delivered") {
      report.delivered++;
      await sql`
        update alert_notifications
        set attempts = attempts + 1, last_attempt_at = ${at}, delivered_at = ${at}, last_error = null, next_attempt_at = null
        where id = ${notification.id}`;
      return;
    }
    const givenUp = outcome.kind === "transient" && at.getTime() >= notification.createdAt.getTime() + giveUpAfterMs;
    if (outcome.kind === "permanent" || givenUp) {
      const reason = givenUp ? `${outcome.reason}, given up ${formatDuration(giveUpAfterMs)} after it was written: check the receiver` : outcome.reason;
      report.failed.push(`${webhook.name}: ${reason}; ${what} is dropped`);
      await sql`
        update alert_notifications
        set attempts = attempts + 1, last_attempt_at = ${at}, failed_at = ${at}, last_error = ${reason}, next_attempt_at = null
        where id = ${notification.id}`;
      return;
    }
    const next = new Date(at.getTime() + webhookBackoffMs(notification.attempts + 1, random));
    report.pending.push(`${webhook.name}: ${outcome.reason}, retried after ${formatSaoPauloTime(next)}; ${what} is kept`);
    await sql`
      update alert_notifications
      set attempts = attempts + 1, last_attempt_at = ${at}, last_error = ${outcome.reason}, next_attempt_at = ${next}
      where id = ${notification.id}`;
  };

  const sendQueue = async (endpoint: string, queue: Claimed[]): Promise<void> => {
    const webhook = byEndpoint.get(endpoint)!;
    let sent = 0;
    for (const notification of queue) {
      if (deadline.aborted) break;
      const key = `${notification.fingerprint}:${notification.transition}`;
      const answer = postWebhook(fetcher, webhook.url, notification.payload, key, deadline).then(
        (response) => outcomeOf(response),
        (error: unknown) => failureOf(error, budgetMs),
      );
      sent++;
      const settled = answer.then(async (outcome) => (await settle(notification, webhook, outcome), outcome));
      let timer: ReturnType<typeof setTimeout> | undefined;
      const waited = await Promise.race([settled, new Promise<undefined>((resolve) => (timer = setTimeout(resolve, timeoutMs, undefined)))]);
      clearTimeout(timer);
      if (!waited) {
        // Slow: send this webhook nothing more this round, but let the request answer (or be
        // aborted by the budget) and record it.
        await settled;
        break;
      }
      // A notification to retry later holds back the newer ones, so the webhook sees them in order.
      if (waited.kind === "transient") break;
    }
    // What this round did not send is due again as before.
    const unsent = queue.slice(sent);
    for (const notification of unsent) {
      await sql`update alert_notifications set next_attempt_at = ${notification.previousNextAttemptAt} where id = ${notification.id}`;
    }
  };

  await Promise.all([...queues].map(([endpoint, queue]) => sendQueue(endpoint, queue)));
  return report;
}

/** One webhook's answer to the test notification. */
export interface TestAnswer {
  ok: boolean;
  /** e.g. "webhook 1 (hooks.slack.com) after 84 ms: HTTP 200" */
  line: string;
}

/**
 * Sends one test notification (marked as a test in its text and in `test: true`) to every
 * webhook at once, as a real one would be sent, and says how each answered. Stores nothing.
 */
export async function sendTestNotifications(webhookUrls: readonly string[], options: Pick<DeliveryOptions, "fetch" | "budgetMs" | "now"> = {}): Promise<TestAnswer[]> {
  const { fetch: fetcher = globalThis.fetch, budgetMs = WEBHOOK_BUDGET_MS, now: clock = () => new Date() } = options;
  const sentAt = clock();
  const line = `TEST from cotacao (bun analysis.ts --test-webhook) at ${formatSaoPauloTime(sentAt)}: this webhook works; no alert is firing`;
  const body = { text: line, content: line, test: true, receiver: "cotacao", status: "test", sentAt: sentAt.toISOString() };
  const deadline = AbortSignal.timeout(budgetMs);
  return Promise.all(
    webhooksOf(webhookUrls).map(async (webhook) => {
      const started = performance.now();
      const outcome = await postWebhook(fetcher, webhook.url, body, `test:${sentAt.toISOString()}`, deadline).then(outcomeOf, (error: unknown) => failureOf(error, budgetMs));
      const answered = `${webhook.name} after ${Math.round(performance.now() - started)} ms`;
      if (outcome.kind === "delivered") return { ok: true, line: `${answered}: HTTP ${outcome.status}` };
      return { ok: false, line: `${answered}: ${outcome.reason}` };
    }),
  );
}

/**
 * Takes the notifications due now, per webhook the oldest ones up to the first that is not due
 * (so each webhook gets them in order), and sets them ahead by a lease so that a concurrent
 * round leaves them alone.
 */
async function claimDue(sql: Sql, endpoints: string[], now: Date, leaseMs: number): Promise<Claimed[]> {
  return sql.begin(async (tx) => {
    const rows = await tx<Claimed[]>`
      select n.id::int, n.endpoint, n.payload, n.transition, n.attempts, n.created_at as "createdAt",
             n.next_attempt_at as "previousNextAttemptAt", a.pair, a.kind, a.fingerprint
      from alert_notifications n join alerts a on a.id = n.alert_id
      where n.delivered_at is null and n.failed_at is null and n.endpoint in ${tx(endpoints)}
      order by n.id
      for update of n`;
    const blocked = new Set<string>();
    const due = rows.filter((row) => {
      if (blocked.has(row.endpoint)) return false;
      if (row.previousNextAttemptAt === null || row.previousNextAttemptAt <= now) return true;
      blocked.add(row.endpoint);
      return false;
    });
    if (due.length > 0) {
      await tx`update alert_notifications set next_attempt_at = ${new Date(now.getTime() + leaseMs)} where id in ${tx(due.map((row) => row.id))}`;
    }
    return due;
  });
}
