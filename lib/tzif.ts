/**
 * UTC offsets from the system's TZif files (RFC 8536), without ICU.
 *
 * Why: a process's first `Intl.DateTimeFormat` with a `timeZone` starts ICU, 6–8 ms of CPU, on
 * every run of a short-lived script (the monitor) that only needs two zones' offsets. Reading a
 * zone's file with `Bun.file` and searching its transitions costs a fraction of that. No
 * `node:fs` on purpose: loading it costs about 2 ms more at start-up.
 *
 * - `loadZone(name)` reads `$TZDIR/name` (default /usr/share/zoneinfo). It resolves to
 *   `undefined` when the name is not a safe zone name or no such file exists, and rejects with a
 *   `TzifError` when the file is not a TZif file we can read (truncated, garbage, leap seconds).
 * - `offsetAt(zone, atMs)` is the UTC offset (ms, east positive) in force at an instant: a binary
 *   search over the transitions, then the footer's POSIX TZ rule after the last one (so "slim"
 *   files, whose footer carries every future change, work too).
 * - `parsePosixTz` / `posixOffsetAt` evaluate a POSIX TZ string on its own.
 *
 * Leaf module: imports nothing from the project.
 */

const MS_PER_SECOND = 1000;
const MS_PER_HOUR = 3_600_000;
const MS_PER_DAY = 86_400_000;
const DEFAULT_ZONE_DIR = "/usr/share/zoneinfo";
/** POSIX's default time of a change: 02:00 local time. */
const DEFAULT_RULE_TIME_MS = 2 * MS_PER_HOUR;
const HEADER_BYTES = 44;
const MAX_ZONE_NAME_LENGTH = 255;
/** Errors that mean "no such zone" rather than "the zone is broken". */
const MISSING_FILE_CODES = new Set(["ENOENT", "ENOTDIR", "EISDIR", "ENAMETOOLONG"]);

/** A rule of a POSIX TZ string: the day it applies (in local time) and the time of day. */
export type PosixDate =
  | { kind: "julian"; day: number; timeMs: number } // Jn: 1..365, 29 February never counted
  | { kind: "ordinal"; day: number; timeMs: number } // n: 0..365, 29 February counted
  | { kind: "weekday"; month: number; week: number; weekday: number; timeMs: number }; // Mm.w.d

/** A parsed POSIX TZ string; offsets are UTC offsets in ms (east positive, unlike POSIX's sign). */
export interface PosixTz {
  stdOffsetMs: number;
  /** Present when the zone has daylight saving time. */
  dst?: { offsetMs: number; start: PosixDate; end: PosixDate };
}

/** A loaded zone: transition instants (ms, ascending), the offset each one starts, and the rule after. */
export interface Zone {
  name: string;
  /** Instants (ms since the epoch) at which the offset changes, ascending. */
  transitions: Float64Array;
  /** `offsets[i]`: the UTC offset (ms) in force from `transitions[i]` on. */
  offsets: Float64Array;
  /** The offset before the first transition (RFC 8536: local time type 0). */
  initialOffsetMs: number;
  /** The footer's rule, for instants after the last transition (absent in version 1 files). */
  rule?: PosixTz;
}

/** A zone file that exists but cannot be read as TZif; `code` says why. */
export class TzifError extends Error {
  constructor(
    readonly code: "TRUNCATED" | "BAD_MAGIC" | "BAD_DATA" | "LEAP_SECONDS" | "BAD_FOOTER" | "READ_FAILED",
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "TzifError";
  }
}

/**
 * Whether `name` is a zone name we may join to the zone folder, written as the tz database
 * writes them (`America/Sao_Paulo`, `Etc/GMT+3`, `UTC`): parts of letters, digits, `_`, `+` and
 * `-`, each starting with a letter, digit or `_`, joined by single slashes. So no `..`, no
 * absolute path, no empty part. (A loop, not a regular expression: see parsePosixTz.)
 */
export function isSafeZoneName(name: string): boolean {
  if (name.length === 0 || name.length > MAX_ZONE_NAME_LENGTH) return false;
  let partStart = true;
  for (let i = 0; i < name.length; i++) {
    const code = name.charCodeAt(i);
    if (code === 0x2f /* / */) {
      if (partStart) return false;
      partStart = true;
    } else if (isAlphanumeric(code) || code === 0x5f /* _ */) {
      partStart = false;
    } else if ((code === 0x2b || code === 0x2d) && !partStart) {
      // '+' or '-' inside a part (Etc/GMT+3, Port-au-Prince)
      continue;
    } else {
      return false;
    }
  }
  return !partStart;
}

/**
 * Reads zone `name` from `dir` (default `$TZDIR`, else /usr/share/zoneinfo). Resolves to
 * `undefined` for an unsafe name or a missing file; rejects with a TzifError for a malformed one.
 */
export async function loadZone(name: string, { dir = process.env["TZDIR"] || DEFAULT_ZONE_DIR }: { dir?: string } = {}): Promise<Zone | undefined> {
  if (!isSafeZoneName(name)) return undefined;
  let bytes: ArrayBuffer;
  try {
    bytes = await Bun.file(`${dir}/${name}`).arrayBuffer();
  } catch (error) {
    const code = (error as { code?: unknown } | null)?.code;
    if (typeof code === "string" && MISSING_FILE_CODES.has(code)) return undefined;
    throw new TzifError("READ_FAILED", `Cannot read time zone '${name}': ${String(error)}, check ${dir}`, { cause: error });
  }
  return parseTzif(new Uint8Array(bytes), name);
}

/** The UTC offset (ms, east positive) in force in `zone` at instant `atMs` (NaN for NaN, like an invalid Date). */
export function offsetAt(zone: Zone, atMs: number): number {
  if (Number.isNaN(atMs)) return Number.NaN;
  const { transitions, offsets } = zone;
  const count = transitions.length;
  if (count === 0) return zone.rule ? posixOffsetAt(zone.rule, atMs) : zone.initialOffsetMs;
  if (atMs < transitions[0]!) return zone.initialOffsetMs;
  if (atMs >= transitions[count - 1]! && zone.rule) {
    // The rule describes the time after the last transition; at that instant itself both agree.
    return atMs === transitions[count - 1]! ? offsets[count - 1]! : posixOffsetAt(zone.rule, atMs);
  }
  // The last transition at or before atMs.
  let low = 0;
  let high = count - 1;
  while (low < high) {
    const middle = (low + high + 1) >>> 1;
    if (transitions[middle]! <= atMs) low = middle;
    else high = middle - 1;
  }
  return offsets[low]!;
}

// ---------------------------------------------------------------------------------------------
// TZif (RFC 8536)

/** Parses a TZif file (versions 1 to 4; the 64-bit block of version 2+). Throws a TzifError when malformed. */
export function parseTzif(bytes: Uint8Array, name = "(zone)"): Zone {
  const fail = (code: TzifError["code"], what: string): never => {
    throw new TzifError(code, `Cannot read time zone '${name}': ${what}, reinstall the tzdata package or set TZDIR`);
  };
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const header = (at: number) => {
    if (bytes.length < at + HEADER_BYTES) fail("TRUNCATED", "the file ends inside a header");
    if (view.getUint32(at) !== 0x545a6966) fail("BAD_MAGIC", "not a TZif file (no 'TZif' at its start)");
    const version = bytes[at + 4]!;
    if (version !== 0 && (version < 0x32 || version > 0x34)) fail("BAD_DATA", `unknown TZif version byte ${version}`);
    const count = (index: number) => view.getUint32(at + 20 + 4 * index);
    const counts = { isutcnt: count(0), isstdcnt: count(1), leapcnt: count(2), timecnt: count(3), typecnt: count(4), charcnt: count(5) };
    return { version: version === 0 ? 1 : version - 0x30, ...counts };
  };
  const blockBytes = (h: ReturnType<typeof header>, timeSize: number) =>
    h.timecnt * timeSize + h.timecnt + h.typecnt * 6 + h.charcnt + h.leapcnt * (timeSize + 4) + h.isstdcnt + h.isutcnt;

  const first = header(0);
  let at = HEADER_BYTES;
  let h = first;
  let timeSize = 4;
  if (first.version >= 2) {
    at += blockBytes(first, 4); // skip the 32-bit block: version 2+ readers use the 64-bit one
    h = header(at);
    at += HEADER_BYTES;
    timeSize = 8;
  }
  if (bytes.length < at + blockBytes(h, timeSize)) fail("TRUNCATED", "the file ends inside its data");
  if (h.typecnt === 0 || h.charcnt === 0) fail("BAD_DATA", "no local time types");
  if (h.leapcnt > 0) fail("LEAP_SECONDS", "leap-second files ('right/' zones) are not supported");
  if ((h.isstdcnt !== 0 && h.isstdcnt !== h.typecnt) || (h.isutcnt !== 0 && h.isutcnt !== h.typecnt)) fail("BAD_DATA", "indicator counts differ from the type count");

  const transitions = new Float64Array(h.timecnt);
  for (let i = 0; i < h.timecnt; i++, at += timeSize) {
    // Two 32-bit halves rather than getBigInt64: a BigInt per transition costs more at start-up.
    const seconds = timeSize === 8 ? view.getInt32(at) * 4_294_967_296 + view.getUint32(at + 4) : view.getInt32(at);
    transitions[i] = seconds * MS_PER_SECOND;
    if (i > 0 && !(transitions[i]! > transitions[i - 1]!)) fail("BAD_DATA", "transition times are not ascending");
  }
  const typeIndexes = bytes.subarray(at, at + h.timecnt);
  at += h.timecnt;
  const typeOffsets = new Float64Array(h.typecnt);
  for (let i = 0; i < h.typecnt; i++, at += 6) {
    const utoff = view.getInt32(at);
    if (utoff === -0x80000000 || bytes[at + 4]! > 1 || bytes[at + 5]! >= h.charcnt) fail("BAD_DATA", `local time type ${i} is invalid`);
    typeOffsets[i] = utoff * MS_PER_SECOND;
  }
  at += h.charcnt + h.isstdcnt + h.isutcnt; // names and indicators: not needed for offsets

  const offsets = new Float64Array(h.timecnt);
  for (let i = 0; i < h.timecnt; i++) {
    const type = typeIndexes[i]!;
    if (type >= h.typecnt) fail("BAD_DATA", `transition ${i} names local time type ${type} of ${h.typecnt}`);
    offsets[i] = typeOffsets[type]!;
  }
  const zone: Zone = { name, transitions, offsets, initialOffsetMs: typeOffsets[0]! };
  if (first.version >= 2) {
    const footer = readFooter(bytes, at, fail);
    if (footer !== "") {
      zone.rule = parsePosixTz(footer) ?? fail("BAD_FOOTER", `its footer '${footer}' is not a POSIX TZ string`);
    }
  }
  return zone;
}

/** The footer's TZ string (between two newlines after the 64-bit block); "" when empty. */
function readFooter(bytes: Uint8Array, at: number, fail: (code: TzifError["code"], what: string) => never): string {
  if (bytes[at] !== 0x0a) fail(at >= bytes.length ? "TRUNCATED" : "BAD_FOOTER", "no footer after the data");
  const end = bytes.indexOf(0x0a, at + 1);
  if (end < 0) fail("TRUNCATED", "the footer has no closing newline");
  let text = "";
  for (let i = at + 1; i < end; i++) {
    const byte = bytes[i]!;
    if (byte < 0x20 || byte > 0x7e) fail("BAD_FOOTER", "the footer is not printable ASCII");
    text += String.fromCharCode(byte);
  }
  return text;
}

// ---------------------------------------------------------------------------------------------
// POSIX TZ strings (as RFC 8536 section 3.3 extends them: hours up to ±167 in rule times)

/**
 * Parses a POSIX TZ string such as `<-03>3`, `EST5EDT,M3.2.0,M11.1.0` or
 * `<+1030>-10:30<+11>-11,M10.1.0,M4.1.0`. Undefined when it is not one, or names daylight
 * saving time without rules (TZif footers always carry them).
 */
export function parsePosixTz(text: string): PosixTz | undefined {
  // Scanned by character code rather than with regular expressions: in a fresh process this
  // parses both zones about 0.2 ms sooner (regular expressions are compiled on first use).
  let at = 0;
  const code = () => text.charCodeAt(at); // NaN past the end
  const skip = (char: string): boolean => {
    if (text[at] !== char) return false;
    at++;
    return true;
  };
  /** Up to `maxDigits` decimal digits; undefined when there is none. */
  const integer = (maxDigits = Number.POSITIVE_INFINITY): number | undefined => {
    const start = at;
    while (at - start < maxDigits && isDigit(code())) at++;
    return at === start ? undefined : Number(text.slice(start, at));
  };
  /** `EST`, or `<-03>` (letters, digits, + and -), at least three characters. */
  const zoneName = (): boolean => {
    const start = at;
    if (skip("<")) {
      while (isAlphanumeric(code()) || text[at] === "+" || text[at] === "-") at++;
      return at - start - 1 >= 3 && skip(">");
    }
    while (isLetter(code())) at++;
    return at - start >= 3;
  };
  /** [+-]hh[:mm[:ss]] in ms, hours up to `maxHours`; undefined when malformed. */
  const time = (maxHours: number): number | undefined => {
    const sign = skip("-") ? -1 : (skip("+"), 1);
    const hours = integer(3);
    let minutes: number | undefined = 0;
    let seconds: number | undefined = 0;
    if (skip(":")) {
      minutes = integer(2);
      if (skip(":")) seconds = integer(2);
    }
    if (hours === undefined || minutes === undefined || seconds === undefined) return undefined;
    if (hours > maxHours || minutes > 59 || seconds > 59) return undefined;
    return sign * (hours * MS_PER_HOUR + minutes * 60_000 + seconds * MS_PER_SECOND);
  };
  /** Mm.w.d, Jn or n, then an optional /time. */
  const date = (): PosixDate | undefined => {
    let rule: PosixDate;
    if (skip("M")) {
      const month = integer();
      const week = skip(".") ? integer() : undefined;
      const weekday = skip(".") ? integer() : undefined;
      if (month === undefined || week === undefined || weekday === undefined) return undefined;
      if (month < 1 || month > 12 || week < 1 || week > 5 || weekday > 6) return undefined;
      rule = { kind: "weekday", month, week, weekday, timeMs: DEFAULT_RULE_TIME_MS };
    } else if (skip("J")) {
      const day = integer();
      if (day === undefined || day < 1 || day > 365) return undefined;
      rule = { kind: "julian", day, timeMs: DEFAULT_RULE_TIME_MS };
    } else {
      const day = integer();
      if (day === undefined || day > 365) return undefined;
      rule = { kind: "ordinal", day, timeMs: DEFAULT_RULE_TIME_MS };
    }
    if (skip("/")) {
      const timeMs = time(167);
      if (timeMs === undefined) return undefined;
      rule.timeMs = timeMs;
    }
    return rule;
  };

  if (!zoneName()) return undefined;
  const stdPosix = time(24);
  if (stdPosix === undefined) return undefined;
  const tz: PosixTz = { stdOffsetMs: negate(stdPosix) };
  if (at === text.length) return tz;
  if (!zoneName()) return undefined;
  let dstOffsetMs = tz.stdOffsetMs + MS_PER_HOUR;
  if (text[at] !== ",") {
    const dstPosix = time(24);
    if (dstPosix === undefined) return undefined;
    dstOffsetMs = negate(dstPosix);
  }
  if (!skip(",")) return undefined;
  const start = date();
  if (!start || !skip(",")) return undefined;
  const end = date();
  if (!end || at !== text.length) return undefined;
  tz.dst = { offsetMs: dstOffsetMs, start, end };
  return tz;
}

function isDigit(code: number): boolean {
  return code >= 0x30 && code <= 0x39;
}

function isLetter(code: number): boolean {
  const lower = code | 0x20;
  return lower >= 0x61 && lower <= 0x7a;
}

function isAlphanumeric(code: number): boolean {
  return isDigit(code) || isLetter(code);
}

/** POSIX writes offsets west-positive; ours are east-positive (and never -0, so `UTC0` reads as 0). */
function negate(ms: number): number {
  return ms === 0 ? 0 : -ms;
}

/** The UTC offset (ms) a POSIX TZ rule gives at instant `atMs`. */
export function posixOffsetAt(tz: PosixTz, atMs: number): number {
  const { dst } = tz;
  if (!dst) return tz.stdOffsetMs;
  // A change's local date and time may fall into the next or previous UTC year (times up to
  // ±167 h, offsets up to ±25 h), so look at the changes of three years and keep the last one
  // at or before atMs. At equal instants the end sorts first, so a start wins (DST all year).
  const year = new Date(atMs).getUTCFullYear();
  if (!Number.isFinite(year)) return tz.stdOffsetMs; // beyond Date's range (±275,000 years)
  let lastAt = Number.NEGATIVE_INFINITY;
  let offset = tz.stdOffsetMs;
  for (let y = year - 1; y <= year + 1; y++) {
    const startsAt = ruleDay(dst.start, y) + dst.start.timeMs - tz.stdOffsetMs; // given in standard time
    const endsAt = ruleDay(dst.end, y) + dst.end.timeMs - dst.offsetMs; // given in daylight saving time
    if (endsAt <= atMs && endsAt > lastAt) {
      lastAt = endsAt;
      offset = tz.stdOffsetMs;
    }
    if (startsAt <= atMs && startsAt >= lastAt) {
      lastAt = startsAt;
      offset = dst.offsetMs;
    }
  }
  return offset;
}

/** Midnight (as ms of a UTC-read wall clock) of the day a rule names in `year`. */
function ruleDay(rule: PosixDate, year: number): number {
  switch (rule.kind) {
    case "ordinal":
      return (daysFromCivil(year, 1, 1) + rule.day) * MS_PER_DAY;
    case "julian":
      // Day 60 is always 1 March: skip 29 February in leap years.
      return (daysFromCivil(year, 1, 1) + rule.day - 1 + (isLeapYear(year) && rule.day >= 60 ? 1 : 0)) * MS_PER_DAY;
    case "weekday": {
      const monthStart = daysFromCivil(year, rule.month, 1);
      const firstWeekday = (((monthStart + 4) % 7) + 7) % 7; // 1970-01-01 was a Thursday
      let day = 1 + ((rule.weekday - firstWeekday + 7) % 7) + (rule.week - 1) * 7;
      const daysInMonth = rule.month === 2 && isLeapYear(year) ? 29 : DAYS_IN_MONTH[rule.month - 1]!;
      while (day > daysInMonth) day -= 7; // week 5: the last such weekday
      return (monthStart + day - 1) * MS_PER_DAY;
    }
  }
}

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function isLeapYear(year: number): boolean {
  return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
}

/** Days since 1970-01-01 of a proleptic Gregorian date (month 1..12); plain arithmetic, any year. */
function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yearOfEra = y - era * 400;
  const dayOfYear = Math.floor((153 * (month + (month > 2 ? -3 : 9)) + 2) / 5) + day - 1;
  return era * 146_097 + yearOfEra * 365 + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100) + dayOfYear - 719_468;
}
