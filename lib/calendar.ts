/**
 * lib/calendar.ts: São Paulo's clock and the forex market's week, the only place that knows
 * either. Days are São Paulo calendar days everywhere (in SQL too: SAO_PAULO_TIME_ZONE);
 * staleness counts the forex market's open time. Pure; formatters are made on first use.
 */
import { loadZone, offsetAt, type Zone } from "./tzif.ts";

/** The zone whose calendar days cotacao counts, in TypeScript and in SQL (`at time zone`). */
export const SAO_PAULO_TIME_ZONE = "America/Sao_Paulo";
const MS_PER_DAY = 86_400_000;
const MS_PER_HOUR = 3_600_000;
// Bounds each time-zone cache (a century of days is ~36,500 entries).
const DAY_CACHE_MAX_ENTRIES = 200_000;
const DATE_PATTERN = /^\d{4}-\d{2}-\d{2}$/;

/**
 * A zone's clock: its TZif file's offsets once prepareClocks() has read it (no ICU), else an Intl
 * formatter made on first use (a process's first Intl date formatter loads ICU's data, 6-14 ms).
 */
interface ZoneClock {
  name: string;
  zone?: Zone;
  format?: Intl.DateTimeFormat;
}

function zoneClock(name: string): ZoneClock {
  return { name };
}

function formatOf(clock: ZoneClock): Intl.DateTimeFormat {
  return (clock.format ??= new Intl.DateTimeFormat("en-US", {
    timeZone: clock.name,
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
    hourCycle: "h23",
  }));
}

/**
 * The wall clock of instant `at` (ms) in the clock's zone, to the second, read as if it were UTC
 * (so day arithmetic is plain).
 */
function wallClock(clock: ZoneClock, at: number): number {
  if (clock.zone) return Math.floor(at / 1000) * 1000 + offsetAt(clock.zone, at);
  const parts = Object.fromEntries(formatOf(clock).formatToParts(new Date(at)).map((part) => [part.type, Number(part.value)]));
  const field = (type: Intl.DateTimeFormatPartTypes) => parts[type] ?? Number.NaN;
  return Date.UTC(field("year"), field("month") - 1, field("day"), field("hour"), field("minute"), field("second"));
}

const SAO_PAULO_CLOCK = zoneClock(SAO_PAULO_TIME_ZONE);

// NaN marks a UTC day (or hour) in which the offset changes.
const offsetByUtcDay = new Map<number, number>();
const offsetByUtcHour = new Map<number, number>();
const dateByLocalDay = new Map<number, string>();

/** São Paulo's offset from UTC at an instant, in ms (negative), straight from Intl. */
function intlOffsetMs(ms: number): number {
  return wallClock(SAO_PAULO_CLOCK, ms) - Math.floor(ms / 1000) * 1000;
}

/** The offset over [start, start + length), or NaN if it changes within. */
function steadyOffset(start: number, length: number): number {
  const first = intlOffsetMs(start);
  return first === intlOffsetMs(start + length - 1000) ? first : Number.NaN;
}

function cached(map: Map<number, number>, key: number, compute: () => number): number {
  let value = map.get(key);
  if (value === undefined) {
    if (map.size >= DAY_CACHE_MAX_ENTRIES) map.clear();
    value = compute();
    map.set(key, value);
  }
  return value;
}

function saoPauloOffsetMs(ms: number): number {
  const day = Math.floor(ms / MS_PER_DAY);
  const daily = cached(offsetByUtcDay, day, () => steadyOffset(day * MS_PER_DAY, MS_PER_DAY));
  if (!Number.isNaN(daily)) return daily;
  // A daylight-saving switch day (two a year before 2019): narrow down to the hour.
  const hour = Math.floor(ms / MS_PER_HOUR);
  const hourly = cached(offsetByUtcHour, hour, () => steadyOffset(hour * MS_PER_HOUR, MS_PER_HOUR));
  return Number.isNaN(hourly) ? intlOffsetMs(ms) : hourly;
}

/**
 * The São Paulo calendar day ("YYYY-MM-DD") of an instant. Brazil had daylight saving time until
 * 2019, so the offset comes from Intl; it is cached per UTC day (per hour on a switch day), which
 * keeps this at millions of calls a second where formatToParts per call would manage a few hundred thousand.
 */
export function saoPauloDay(date: Date | number): string {
  const ms = typeof date === "number" ? date : date.getTime();
  const localDay = Math.floor((ms + saoPauloOffsetMs(ms)) / MS_PER_DAY);
  let text = dateByLocalDay.get(localDay);
  if (text === undefined) {
    if (dateByLocalDay.size >= DAY_CACHE_MAX_ENTRIES) dateByLocalDay.clear();
    text = new Date(localDay * MS_PER_DAY).toISOString().slice(0, 10);
    dateByLocalDay.set(localDay, text);
  }
  return text;
}

/**
 * An instant in São Paulo time, for people: `2026-11-27 18:00 -03` (with `seconds`,
 * `2026-11-27 18:00:05 -03`). The offset is the one in force then (-02 in the summers before
 * 2019). Machine output (JSON, webhook fields) keeps ISO 8601 UTC instead.
 */
export function formatSaoPauloTime(at: Date, { seconds = false }: { seconds?: boolean } = {}): string {
  const wall = wallClock(SAO_PAULO_CLOCK, at.getTime());
  const offsetMinutes = Math.round((wall - Math.floor(at.getTime() / 1000) * 1000) / 60_000);
  const sign = offsetMinutes < 0 ? "-" : "+";
  const hours = String(Math.floor(Math.abs(offsetMinutes) / 60)).padStart(2, "0");
  const minutes = Math.abs(offsetMinutes) % 60;
  const text = new Date(wall).toISOString();
  return `${text.slice(0, 10)} ${text.slice(11, seconds ? 19 : 16)} ${sign}${hours}${minutes ? `:${String(minutes).padStart(2, "0")}` : ""}`;
}

/**
 * The first instant of São Paulo day `date` ("YYYY-MM-DD"): its midnight, or 01:00 on the days
 * daylight saving time began at midnight (before 2019). The offset has been a whole number of
 * hours since 1914, so it is the first UTC hour whose São Paulo date is `date`.
 */
export function saoPauloDayStart(date: string): Date {
  const utcMidnight = Date.parse(`${date}T00:00:00Z`);
  for (let hour = 0; hour <= 6; hour++) {
    const at = new Date(utcMidnight + hour * 3_600_000);
    if (saoPauloDay(at) === date) return at;
  }
  return new Date(utcMidnight + 3 * 3_600_000);
}

/** Whether `text` is a real calendar date written "YYYY-MM-DD" (2024-02-30 is not). */
export function isCalendarDate(text: string): boolean {
  if (!DATE_PATTERN.test(text)) return false;
  const ms = Date.parse(`${text}T00:00:00Z`);
  return Number.isFinite(ms) && new Date(ms).toISOString().slice(0, 10) === text;
}

// ---------------------------------------------------------------------------------------------
// The forex market's week

// USD-BRL comes from the forex market, which trades from Sunday 17:00 to Friday 17:00 New York
// time (with New York's own daylight saving time), and not on 25 December and 1 January.
const NEW_YORK = "America/New_York";
const MARKET_OPENS_SUNDAY_MS = 17 * 3_600_000;
const MARKET_CLOSES_FRIDAY_MS = 17 * 3_600_000;
/** Whole New York days without trading, as "MM-DD". */
const MARKET_HOLIDAYS = new Set(["12-25", "01-01"]);

const NEW_YORK_CLOCK = zoneClock(NEW_YORK);
const newYorkWallClock = (at: number) => wallClock(NEW_YORK_CLOCK, at);

/**
 * Reads both clocks' zones from the system's TZif files (lib/tzif.ts), so that no Intl formatter,
 * and no ICU start-up, is needed; a zone that cannot be read keeps Intl. A short-lived caller
 * (the monitor) starts it while it waits for the database's first answer.
 */
export function prepareClocks(): Promise<void> {
  preparing ??= Promise.all(
    [SAO_PAULO_CLOCK, NEW_YORK_CLOCK].map(async (clock) => {
      const zone = await loadZone(clock.name).catch(() => undefined);
      if (zone) clock.zone = zone;
    }),
  ).then(() => {});
  return preparing;
}

let preparing: Promise<void> | undefined;

/**
 * The instant at which New York's wall clock reads `wall` (a wall-clock time read as UTC). Only
 * used for midnight and 17:00, which exist exactly once every day (the clocks change at 02:00).
 */
function newYorkInstant(wall: number): number {
  let at = wall + 5 * 3_600_000; // a first guess: Eastern Standard Time
  for (let i = 0; i < 2; i++) at = wall - (newYorkWallClock(at) - at);
  return at;
}

/** The trading hours of one New York day (a day number), as wall-clock offsets from its midnight. */
function tradingHours(day: number): [number, number] | undefined {
  const date = new Date(day * MS_PER_DAY);
  if (MARKET_HOLIDAYS.has(date.toISOString().slice(5, 10))) return undefined;
  const weekday = date.getUTCDay();
  if (weekday === 6) return undefined;
  if (weekday === 0) return [MARKET_OPENS_SUNDAY_MS, MS_PER_DAY];
  if (weekday === 5) return [0, MARKET_CLOSES_FRIDAY_MS];
  return [0, MS_PER_DAY];
}

/**
 * How much of the time between two instants the forex market was open (Sunday 17:00 to Friday
 * 17:00 New York time, not on 25 December or 1 January), in milliseconds. One step per day, so a
 * gap of years costs a few thousand steps; with `stopAbove`, it stops counting once past it.
 */
export function marketTimeBetween(from: Date, to: Date, stopAbove = Number.POSITIVE_INFINITY): number {
  const start = from.getTime();
  const end = to.getTime();
  if (!(end > start)) return 0;
  const lastDay = Math.floor(newYorkWallClock(end) / MS_PER_DAY);
  let total = 0;
  for (let day = Math.floor(newYorkWallClock(start) / MS_PER_DAY); day <= lastDay && total <= stopAbove; day++) {
    const hours = tradingHours(day);
    if (!hours) continue;
    const opens = newYorkInstant(day * MS_PER_DAY + hours[0]);
    const closes = newYorkInstant(day * MS_PER_DAY + hours[1]);
    total += Math.max(0, Math.min(closes, end) - Math.max(opens, start));
  }
  return total;
}

/** Whether the forex market is open at `at`. */
export function isMarketOpen(at: Date): boolean {
  const wall = newYorkWallClock(at.getTime());
  const hours = tradingHours(Math.floor(wall / MS_PER_DAY));
  const sinceMidnight = ((wall % MS_PER_DAY) + MS_PER_DAY) % MS_PER_DAY;
  return hours !== undefined && sinceMidnight >= hours[0] && sinceMidnight < hours[1];
}

/**
 * Whether a pair whose newest quote is from `newest` is stale at `now`: more than `staleAfterMs`
 * of market time has passed since, so a feed that stops with the market on Friday evening is
 * not stale over the weekend, and is again once the market has been open that long.
 */
export function isStale(newest: Date, now: Date, staleAfterMs: number): boolean {
  return marketTimeBetween(newest, now, staleAfterMs) > staleAfterMs;
}
