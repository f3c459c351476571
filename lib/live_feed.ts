/**
 * lib/live_feed.ts: the dashboard's live feed engine: one LISTEN on the feed's channel for the
 * whole process, each notification read back from the tables once and fanned out to every
 * subscriber, a watchdog that listens afresh when notifications stop, replays of what was stored
 * while it was deaf; the SSE messages and ids it sends; and caches dropped whenever it hears of
 * a change.
 */
import * as v from "valibot";
import type { Sql } from "./pool.ts";
import { describeError, isConnectionLost } from "./errors.ts";
import {
  ChangeNoticeSchema,
  FEED_CHANNEL,
  type FeedEvent,
  feedEventOf,
  feedEventsSince,
  feedPosition,
  type FeedPosition,
} from "./feed.ts";

// Messages that may wait for an SSE client that stopped reading; beyond, it is let go (its
// EventSource reconnects with Last-Event-ID and is sent what it missed from the tables).
const MAX_SSE_BACKLOG = 1_000;
// How long what is kept in memory (the card, the daily series) may be used when no notification
// said it changed: a writer that does not notify (psql, a backfill) is seen within this long.
const MEMORY_TTL_MS = 1_000;
// Events the live feed remembers having sent, to send each change once however often it is told.
const RECENT_EVENTS = 1_000;

/** A Last-Event-ID as this server sends them: the feed's position, "quote-alert-run" in ms. */
export const LastEventIdSchema = v.pipe(
  v.string(),
  v.regex(/^\d{1,15}-\d{1,15}-\d{1,15}$/, (issue) => `must be an id this server sent, like 1724434780000-0-0, got "${String(issue.input)}"`),
  v.transform((text): FeedPosition => {
    const [quote, alert, run] = text.split("-").map(Number) as [number, number, number];
    return { quote, alert, run };
  }),
);


type FeedListener = (event: FeedEvent) => void;

/** The position as an SSE id: "quote-alert-run", each in ms. */
const eventId = (position: FeedPosition) => `${Math.floor(position.quote)}-${Math.floor(position.alert)}-${Math.floor(position.run)}`;

function advance(position: FeedPosition, event: FeedEvent): void {
  position[event.kind] = Math.max(position[event.kind], event.at);
}

/**
 * One LISTEN for the whole process: each notification is read back from the tables once and
 * sent to every subscriber. postgres.js listens again when its connection comes back, but gives
 * up if the server is still down at that moment; so the feed also pings itself on a channel of
 * its own every `watchdogMs` and, when a ping goes unheard, listens afresh. Whenever it (re)starts
 * listening it replays from the tables what was stored since the last event it sent, so nothing
 * stored while it was deaf is lost.
 */
export class LiveFeed {
  /** True while notifications are known to arrive: only then may /api/latest answer from memory. */
  listening = false;
  private position: FeedPosition | undefined;
  private readonly subscribers = new Set<FeedListener>();
  private readonly changeListeners = new Set<() => void>();
  private started: Promise<void> | undefined;
  private generation = 0;
  private unlisten: (() => Promise<void>)[] = [];
  private watchdog: ReturnType<typeof setInterval> | undefined;
  private pingHeard = true;
  private closed = false;
  private readonly pingChannel = `cotacao_dashboard_${process.pid}_${Math.random().toString(36).slice(2, 10)}`;
  // Notifications are handled one at a time, in order: events go out in the order they were stored.
  private queue: Promise<void> = Promise.resolve();
  // What was last sent of each of the newest changes (by eventIdentity), oldest first.
  private readonly recent = new Map<string, string>();

  constructor(
    private readonly sql: Sql,
    private readonly watchdogMs: number,
    /** Where the feed's one-line failures go (the server's log); the feed itself goes on. */
    readonly log: (line: string) => void,
  ) {}

  /** Starts listening (once); resolves when the first LISTEN is in place. */
  start(): Promise<void> {
    this.started ??= (async () => {
      this.position = await feedPosition(this.sql);
      await this.listen();
      this.watchdog = setInterval(() => void this.check(), this.watchdogMs);
      this.watchdog.unref?.();
    })().catch((error) => {
      // The server is away: the next use tries again.
      this.started = undefined;
      throw error;
    });
    return this.started;
  }

  /** The feed's position now (after start()). */
  current(): FeedPosition {
    return { ...(this.position ?? { quote: 0, alert: 0, run: 0 }) };
  }

  subscribe(listener: FeedListener): () => void {
    this.subscribers.add(listener);
    return () => this.subscribers.delete(listener);
  }

  /** `listener` is called whenever stored data may have changed (for caches). */
  onChange(listener: () => void): void {
    this.changeListeners.add(listener);
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.watchdog);
    this.listening = false;
    await Promise.all(this.unlisten.map((unlisten) => unlisten().catch(() => {})));
    this.subscribers.clear();
  }

  private async listen(): Promise<void> {
    const generation = ++this.generation;
    const old = this.unlisten;
    this.unlisten = [];
    await Promise.all(old.map((unlisten) => unlisten().catch(() => {})));
    // A notification for an older generation arrives through a listener this feed replaced.
    const onListen = () => {
      if (generation !== this.generation || this.closed) return;
      this.listening = true;
      this.pingHeard = true;
      this.enqueue(() => this.replay());
    };
    const quotes = await this.sql.listen(FEED_CHANNEL, (payload) => generation === this.generation && this.enqueue(() => this.handle(payload)), onListen);
    const ping = await this.sql.listen(this.pingChannel, () => generation === this.generation && (this.pingHeard = true));
    this.unlisten.push(quotes.unlisten, ping.unlisten);
  }

  /** Sends a ping; if the previous one was never heard, the LISTEN is gone: listen again. */
  private async check(): Promise<void> {
    if (this.closed) return;
    try {
      if (!this.pingHeard) {
        this.listening = false;
        this.notifyChange();
        await this.listen();
      }
      this.pingHeard = false;
      await this.sql`select pg_notify(${this.pingChannel}, 'ping')`;
    } catch {
      // The server is away: not listening, and the next check tries again.
      this.listening = false;
      this.pingHeard = false;
    }
  }

  private enqueue(task: () => Promise<void>): void {
    this.queue = this.queue.then(task).catch((error: { code?: unknown }) => {
      this.listening = false;
      // The pool's owner ended it (shutting down): nothing to report.
      if (this.closed || error.code === "CONNECTION_ENDED") return;
      this.log(describeError(error, "follow the live feed").line);
    });
  }

  private async handle(payload: string): Promise<void> {
    let json: unknown;
    try {
      json = JSON.parse(payload);
    } catch {
      return; // not ours to read: another program's notification on the channel
    }
    const notice = v.safeParse(ChangeNoticeSchema, json);
    if (!notice.success) return;
    this.notifyChange();
    let event: FeedEvent | undefined;
    try {
      event = await feedEventOf(this.sql, notice.output);
    } catch (error) {
      // The server away: the feed stops trusting what it heard (enqueue()). Anything else is this
      // notification's fault (a ts PostgreSQL cannot read, say): it costs this change only.
      if (isConnectionLost(error)) throw error;
      // Control characters out: the text is partly the notifier's (PostgreSQL quotes bad input).
      this.log(describeError(error, `read back a notified ${notice.output.kind} (the feed goes on)`).line.replace(/[\x00-\x1f\x7f]/g, "?"));
      return;
    }
    if (event) this.send(event);
  }

  private async replay(): Promise<void> {
    this.notifyChange();
    if (!this.position) return;
    for (const event of await feedEventsSince(this.sql, this.position)) this.send(event);
  }

  private send(event: FeedEvent): void {
    // The same change told twice (two notifications naming one quote, a replay after listening
    // again) goes out once; a quote the source corrected differs from what was last sent of it
    // and goes out again (and so does a correction undone).
    const identity = eventIdentity(event);
    const data = JSON.stringify(event.data);
    if (this.recent.get(identity) === data) return;
    this.recent.delete(identity);
    this.recent.set(identity, data);
    if (this.recent.size > RECENT_EVENTS) this.recent.delete(this.recent.keys().next().value!);
    if (this.position) advance(this.position, event);
    for (const subscriber of this.subscribers) subscriber(event);
  }

  private notifyChange(): void {
    for (const listener of this.changeListeners) listener();
  }
}

/**
 * Per-pair values loaded from the database and kept while the feed listens: dropped on every
 * change it hears of, and after MEMORY_TTL_MS whatever happens. Concurrent requests share one load.
 */
export class Memo<T> {
  private readonly entries = new Map<string, { at: number; value: Promise<T> }>();

  constructor(
    private readonly feed: LiveFeed,
    private readonly load: (key: string) => Promise<T>,
  ) {
    feed.onChange(() => this.entries.clear());
  }

  get(key: string): Promise<T> {
    // The first use starts the feed; until it listens, every call loads afresh.
    void this.feed.start().catch(() => {});
    const at = performance.now();
    const entry = this.entries.get(key);
    if (entry && this.feed.listening && at - entry.at < MEMORY_TTL_MS) return entry.value;
    const value = this.load(key);
    this.entries.set(key, { at, value });
    value.catch(() => this.entries.delete(key));
    return value;
  }
}

/** One SSE message. */
function sseMessage(event: FeedEvent, position: FeedPosition): string {
  return `id: ${eventId(position)}\nevent: ${event.kind}\ndata: ${JSON.stringify(event.data)}\n\n`;
}

const eventKey = (event: FeedEvent) => `${event.kind}:${JSON.stringify(event.data)}`;

/** What an event is about, whatever it says of it: a quote (pair and time), an alert transition, a run. */
function eventIdentity(event: FeedEvent): string {
  if (event.kind === "quote") return `quote:${event.data.pair}:${event.data.ts}`;
  if (event.kind === "alert") return `alert:${event.data.id}:${event.data.transition}`;
  return `run:${event.data.id}`;
}

/**
 * The body of one SSE client's stream: a comment with the position, the events stored after
 * `since` (when the client reconnects with its Last-Event-ID), then every event the feed hears of,
 * each once, and a heartbeat comment every `heartbeatMs`. Call it after feed.start().
 */
export function feedStream(sql: Sql, feed: LiveFeed, since: FeedPosition | undefined, heartbeatMs: number): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  let stop = () => {};
  return new ReadableStream<Uint8Array>({
    async start(controller) {
      // The replay goes out at once, before the client can read any of it: it may wait on top
      // of the backlog (it is bounded, feedEventsSince's caps).
      let replaying = 0;
      const write = (text: string) => {
        try {
          if ((controller.desiredSize ?? 0) < -(MAX_SSE_BACKLOG + replaying)) {
            stop();
            controller.close();
            return;
          }
          controller.enqueue(encoder.encode(text));
        } catch {
          stop(); // the client is gone
        }
      };
      const position = since ? { ...since } : feed.current();
      // Live events wait while the replay is read; those it sent (their notification may come
      // in after it) are skipped.
      let buffered: FeedEvent[] | null = [];
      const replayed = new Set<string>();
      const deliver = (event: FeedEvent) => {
        advance(position, event);
        write(sseMessage(event, position));
      };
      const unsubscribe = feed.subscribe((event) => {
        if (buffered) buffered.push(event);
        else if (!replayed.has(eventKey(event))) deliver(event);
      });
      const heartbeat = setInterval(() => write(": heartbeat\n\n"), heartbeatMs);
      stop = () => {
        clearInterval(heartbeat);
        unsubscribe();
      };
      write(`retry: 2000\n: cotacao live feed, position ${eventId(position)}\n\n`);
      if (since) {
        try {
          const events = await feedEventsSince(sql, since);
          replaying = events.length;
          for (const event of events) {
            replayed.add(eventKey(event));
            deliver(event);
          }
        } catch (error) {
          feed.log(describeError(error, "replay the live feed").line);
        }
      }
      const waiting = buffered;
      buffered = null;
      for (const event of waiting) if (!replayed.has(eventKey(event))) deliver(event);
    },
    cancel() {
      stop();
    },
  });
}
