import { afterAll, describe, expect, test } from "bun:test";
import { mkdtemp, rm, writeFile, mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TzifError, isSafeZoneName, loadZone, offsetAt, parsePosixTz, parseTzif, posixOffsetAt, type Zone } from "../lib/tzif.ts";
import { useTestTimeout } from "./support/timeout.ts";

useTestTimeout();

const HOUR = 3_600_000;
const MINUTE = 60_000;
// America/Nuuk: its footer changes at -1:00 (RFC 8536 version 3), read from 2037 on (fat) or 2023 (slim).
const ZONES = ["America/Sao_Paulo", "America/New_York", "Europe/London", "Australia/Lord_Howe", "Asia/Kolkata", "Pacific/Chatham", "UTC", "America/Nuuk"];
const FROM = Date.UTC(1900, 0, 1);
const TO = Date.UTC(2100, 11, 31);
const STEP = 10 * 86_400_000;

const tempDirs: string[] = [];
afterAll(async () => {
  for (const dir of tempDirs) await rm(dir, { recursive: true, force: true });
});
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "cotacao-tzif-"));
  tempDirs.push(dir);
  return dir;
}

const intlReaders = new Map<string, (at: number) => number>();

/**
 * The UTC offset ICU gives at `at`, read from formatToParts the way analysis.ts's wallClock does
 * (whole seconds). Remembered per zone and instant: the fat and slim files ask the same questions.
 */
function intlOffsetReader(timeZone: string): (at: number) => number {
  const known = intlReaders.get(timeZone);
  if (known) return known;
  const answers = new Map<number, number>();
  const format = new Intl.DateTimeFormat("en-US", {
    timeZone,
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
    hourCycle: "h23",
  });
  const read = (at: number) => {
    const cached = answers.get(at);
    if (cached !== undefined) return cached;
    const parts = Object.fromEntries(format.formatToParts(new Date(at)).map((part) => [part.type, Number(part.value)]));
    const field = (type: string) => parts[type] ?? Number.NaN;
    const wall = Date.UTC(field("year"), field("month") - 1, field("day"), field("hour"), field("minute"), field("second"));
    const offset = wall - Math.floor(at / 1000) * 1000;
    answers.set(at, offset);
    return offset;
  };
  intlReaders.set(timeZone, read);
  return read;
}

/** The instants (whole seconds) at which ICU's offset changes between two sample instants `low` < `high`. */
function intlTransition(intl: (at: number) => number, low: number, high: number): number {
  const before = intl(low);
  let lo = Math.floor(low / 1000);
  let hi = Math.ceil(high / 1000);
  while (hi - lo > 1) {
    const middle = Math.floor((lo + hi) / 2);
    if (intl(middle * 1000) === before) lo = middle;
    else hi = middle;
  }
  return hi * 1000;
}

/**
 * Every instant where `zone` and ICU disagree, sampled every 10 days from 1900 to 2100 plus ±1 s
 * around each change either of them shows. Empty when they agree.
 */
function disagreements(zone: Zone, intl: (at: number) => number): string[] {
  const checks = new Set<number>();
  let previous = FROM;
  for (let at = FROM; at <= TO; at += STEP) {
    checks.add(at);
    if (at > FROM && intl(at) !== intl(previous)) {
      const change = intlTransition(intl, previous, at);
      for (const delta of [-1000, -1, 0, 1000]) checks.add(change + delta);
    }
    previous = at;
  }
  for (const change of zone.transitions) {
    if (change >= FROM && change <= TO) for (const delta of [-1000, -1, 0, 1000]) checks.add(change + delta);
  }
  const wrong: string[] = [];
  for (const at of checks) {
    const ours = offsetAt(zone, at);
    const theirs = intl(at);
    if (ours !== theirs) wrong.push(`${new Date(at).toISOString()}: ${ours / 1000} s, ICU ${theirs / 1000} s`);
  }
  return wrong;
}

describe("offsetAt() on the system's zones", () => {
  for (const name of ZONES) {
    test(`${name} agrees with Intl from 1900 to 2100, also ±1 s around each change`, async () => {
      const zone = await loadZone(name);
      expect(zone).toBeDefined();
      expect(disagreements(zone!, intlOffsetReader(name))).toEqual([]);
    });
  }

  test("America/Sao_Paulo: -03 now, -02 in the summer of 2018/19, LMT before 1914", async () => {
    const zone = (await loadZone("America/Sao_Paulo"))!;
    expect(offsetAt(zone, Date.UTC(2026, 11, 8))).toBe(-3 * HOUR);
    expect(offsetAt(zone, Date.UTC(2019, 0, 15))).toBe(-2 * HOUR);
    expect(offsetAt(zone, Date.UTC(1900, 0, 1))).toBe(-(3 * HOUR + 6 * MINUTE + 28_000));
  });

  test("an invalid instant (NaN) has no offset, before, between or after the transitions", async () => {
    const zone = (await loadZone("America/New_York"))!;
    expect(offsetAt(zone, Number.NaN)).toBeNaN();
    expect(offsetAt(parseTzif(tzifV1([], [3600]), "Fixed"), Number.NaN)).toBeNaN();
  });

  test("America/New_York changes at 02:00 local time, to the millisecond", async () => {
    const zone = (await loadZone("America/New_York"))!;
    const springForward = Date.UTC(2027, 2, 14, 7); // Sunday 14 March 2027, 02:00 EST
    expect(offsetAt(zone, springForward - 1)).toBe(-5 * HOUR);
    expect(offsetAt(zone, springForward)).toBe(-4 * HOUR);
    const fallBack = Date.UTC(2090, 10, 5, 6); // Sunday 5 November 2090, 02:00 EDT: from the footer
    expect(offsetAt(zone, fallBack - 1)).toBe(-4 * HOUR);
    expect(offsetAt(zone, fallBack)).toBe(-5 * HOUR);
  });
});

describe("offsetAt() on slim files (zic -b slim: the footer carries every change after 2007 or so)", () => {
  const slimDir = (async () => {
    // libc-bin (Debian's essential set) ships zic; tzdata ships the source it was built from.
    const zic = Bun.which("zic") ?? Bun.which("zic", { PATH: "/usr/sbin:/sbin" });
    if (!zic) throw new Error("Cannot compile slim zones: zic not found, install libc-bin");
    const dir = await tempDir();
    const compile = Bun.spawnSync([zic, "-b", "slim", "-d", dir, "/usr/share/zoneinfo/tzdata.zi"], { stderr: "pipe" });
    if (!compile.success) throw new Error(`Cannot compile slim zones: ${compile.stderr.toString().trim()}`);
    return dir;
  })();

  for (const name of ZONES) {
    test(`${name}, slim, agrees with Intl from 1900 to 2100`, async () => {
      const dir = await slimDir;
      const slim = await loadZone(name, { dir });
      const fat = await loadZone(name);
      expect(slim).toBeDefined();
      expect(slim!.transitions.length).toBeLessThanOrEqual(fat!.transitions.length);
      expect(disagreements(slim!, intlOffsetReader(name))).toEqual([]);
    });
  }

  test("a slim America/New_York stops its transitions in 2007 and lives on its footer", async () => {
    const slim = (await loadZone("America/New_York", { dir: await slimDir }))!;
    expect(slim.transitions.at(-1)).toBe(Date.UTC(2007, 2, 11, 7)); // the first change under the rules of 2007
    expect(slim.rule?.dst?.start).toEqual({ kind: "weekday", month: 3, week: 2, weekday: 0, timeMs: 2 * HOUR });
  });
});

describe("posixOffsetAt()", () => {
  test("a zone without daylight saving time: <-03>3 is -3 h at any instant", () => {
    const tz = parsePosixTz("<-03>3")!;
    expect(tz).toEqual({ stdOffsetMs: -3 * HOUR });
    expect(posixOffsetAt(tz, Date.UTC(2500, 5, 1))).toBe(-3 * HOUR);
    expect(posixOffsetAt(tz, -8.64e15)).toBe(-3 * HOUR);
  });

  test("EST5EDT,M3.2.0,M11.1.0: second Sunday of March to first Sunday of November, at 02:00 local", () => {
    const tz = parsePosixTz("EST5EDT,M3.2.0,M11.1.0")!;
    // 2026: 8 March 07:00 UTC (02:00 EST) and 1 November 06:00 UTC (02:00 EDT).
    expect(posixOffsetAt(tz, Date.UTC(2026, 2, 8, 6, 59, 59, 999))).toBe(-5 * HOUR);
    expect(posixOffsetAt(tz, Date.UTC(2026, 2, 8, 7))).toBe(-4 * HOUR);
    expect(posixOffsetAt(tz, Date.UTC(2026, 10, 1, 5, 59, 59, 999))).toBe(-4 * HOUR);
    expect(posixOffsetAt(tz, Date.UTC(2026, 10, 1, 6))).toBe(-5 * HOUR);
  });

  test("southern hemisphere with a 30-minute change: Lord Howe's <+1030>-10:30<+11>-11,M10.1.0,M4.1.0", () => {
    const tz = parsePosixTz("<+1030>-10:30<+11>-11,M10.1.0,M4.1.0")!;
    expect(tz.stdOffsetMs).toBe(10.5 * HOUR);
    expect(tz.dst?.offsetMs).toBe(11 * HOUR);
    // 2026: ends Sunday 5 April 02:00 +11 (4 April 15:00 UTC); starts Sunday 4 October 02:00 +1030 (3 October 15:30 UTC).
    expect(posixOffsetAt(tz, Date.UTC(2026, 0, 1))).toBe(11 * HOUR);
    expect(posixOffsetAt(tz, Date.UTC(2026, 3, 4, 14, 59, 59))).toBe(11 * HOUR);
    expect(posixOffsetAt(tz, Date.UTC(2026, 3, 4, 15))).toBe(10.5 * HOUR);
    expect(posixOffsetAt(tz, Date.UTC(2026, 9, 3, 15, 29, 59))).toBe(10.5 * HOUR);
    expect(posixOffsetAt(tz, Date.UTC(2026, 9, 3, 15, 30))).toBe(11 * HOUR);
  });

  test("M10.5.0 is the last Sunday even in a month with four", () => {
    const tz = parsePosixTz("GMT0BST,M3.5.0/1,M10.5.0")!;
    // 2027: last Sundays are 28 March and 31 October; 2026: 29 March and 25 October.
    expect(posixOffsetAt(tz, Date.UTC(2027, 2, 28, 0, 59, 59))).toBe(0);
    expect(posixOffsetAt(tz, Date.UTC(2027, 2, 28, 1))).toBe(HOUR);
    expect(posixOffsetAt(tz, Date.UTC(2026, 9, 25, 0, 59, 59))).toBe(HOUR);
    expect(posixOffsetAt(tz, Date.UTC(2026, 9, 25, 1))).toBe(0);
  });

  test("Jn never counts 29 February; n counts it", () => {
    const julian = parsePosixTz("AAA0BBB,J60,J300")!; // J60 is 1 March every year
    expect(posixOffsetAt(julian, Date.UTC(2028, 1, 29, 12))).toBe(0);
    expect(posixOffsetAt(julian, Date.UTC(2028, 2, 1, 1, 59, 59))).toBe(0);
    expect(posixOffsetAt(julian, Date.UTC(2028, 2, 1, 2))).toBe(HOUR);
    const ordinal = parsePosixTz("AAA0BBB,59,299")!; // day 59 (from 0) is 29 February in a leap year, 1 March otherwise
    expect(posixOffsetAt(ordinal, Date.UTC(2028, 1, 29, 2))).toBe(HOUR);
    expect(posixOffsetAt(ordinal, Date.UTC(2028, 1, 29, 1, 59, 59))).toBe(0);
    expect(posixOffsetAt(ordinal, Date.UTC(2027, 2, 1, 2))).toBe(HOUR);
    expect(posixOffsetAt(ordinal, Date.UTC(2027, 1, 28, 12))).toBe(0);
  });

  test("explicit times: minutes, negative hours and hours past 24 (RFC 8536 version 3)", () => {
    // Chatham: starts last Sunday of September at 02:45 +1245, ends first Sunday of April at 03:45 +1345.
    const chatham = parsePosixTz("<+1245>-12:45<+1345>,M9.5.0/2:45,M4.1.0/3:45")!;
    // 2026: 27 September 02:45 +1245 = 26 September 14:00 UTC; 5 April 03:45 +1345 = 4 April 14:00 UTC.
    expect(posixOffsetAt(chatham, Date.UTC(2026, 8, 26, 13, 59, 59))).toBe(12.75 * HOUR);
    expect(posixOffsetAt(chatham, Date.UTC(2026, 8, 26, 14))).toBe(13.75 * HOUR);
    expect(posixOffsetAt(chatham, Date.UTC(2026, 3, 4, 13, 59, 59))).toBe(13.75 * HOUR);
    expect(posixOffsetAt(chatham, Date.UTC(2026, 3, 4, 14))).toBe(12.75 * HOUR);
    // Nuuk (America/Godthab) since 2023: the last Sunday of March at -1:00, i.e. Saturday 23:00 local standard time.
    const negative = parsePosixTz("<-02>2<-01>,M3.5.0/-1,M10.5.0/0")!;
    // 2026: last Sunday of March is 29 March; -1:00 that day is 28 March 23:00 -02 = 29 March 01:00 UTC.
    expect(posixOffsetAt(negative, Date.UTC(2026, 2, 29, 0, 59, 59))).toBe(-2 * HOUR);
    expect(posixOffsetAt(negative, Date.UTC(2026, 2, 29, 1))).toBe(-HOUR);
    // Hours past 24: "the Sunday after the first Saturday" written as M3.1.6/26 (Saturday 02:00 + 24 h).
    const past24 = parsePosixTz("EST5EDT,M3.1.6/26,M11.1.0")!;
    // 2026: first Saturday of March is 7 March; +26 h is Sunday 8 March 02:00 EST = 07:00 UTC.
    expect(posixOffsetAt(past24, Date.UTC(2026, 2, 8, 6, 59, 59))).toBe(-5 * HOUR);
    expect(posixOffsetAt(past24, Date.UTC(2026, 2, 8, 7))).toBe(-4 * HOUR);
  });

  test("daylight saving time all year (version 3's EST5EDT,0/0,J365/25) never falls back", () => {
    const tz = parsePosixTz("EST5EDT,0/0,J365/25")!;
    for (const at of [Date.UTC(2026, 0, 1, 5), Date.UTC(2026, 0, 1, 4, 59, 59), Date.UTC(2026, 6, 1), Date.UTC(2026, 11, 31, 23, 59, 59), Date.UTC(2028, 11, 31, 12)]) {
      expect(posixOffsetAt(tz, at)).toBe(-4 * HOUR);
    }
  });

  test("strings that are not POSIX TZ strings are refused", () => {
    for (const text of ["", "3", "AB3", "<-03", "<-03>", "EST5EDT", "EST5EDT,M3.2.0", "EST5EDT,M13.2.0,M11.1.0", "EST5EDT,M3.6.0,M11.1.0", "EST5EDT,J0,J365", "EST5EDT,M3.2.0,M11.1.0x", "EST5EDT,M3.2,M11.1.0", "EST5EDT,M3.2.0/,M11.1.0", "<-0>3", "EST25"]) {
      expect(parsePosixTz(text)).toBeUndefined();
    }
  });
});

describe("loadZone()", () => {
  test("a missing zone is undefined", async () => {
    expect(await loadZone("America/Atlantis")).toBeUndefined();
    expect(await loadZone("America")).toBeUndefined(); // a folder, not a zone
  });

  test("names that could leave the zone folder, or hold odd characters, are refused without reading", async () => {
    for (const name of ["../etc/passwd", "/etc/passwd", "America/../../etc/passwd", "./UTC", "America//New_York", "UTC\0", "America/New York", "", "America/", "/", "-x", "America/+x", "América/Sao_Paulo"]) {
      expect(isSafeZoneName(name)).toBe(false);
      expect(await loadZone(name)).toBeUndefined();
    }
    expect(isSafeZoneName("Etc/GMT+3")).toBe(true);
    expect(isSafeZoneName("America/Port-au-Prince")).toBe(true);
  });

  test("a malformed file rejects with a TzifError that names the zone and says why", async () => {
    const dir = await tempDir();
    const good = new Uint8Array(await Bun.file("/usr/share/zoneinfo/America/New_York").arrayBuffer());
    await writeFile(join(dir, "Garbage"), "not a zone file at all, long enough to hold a header...........");
    await writeFile(join(dir, "Truncated"), good.subarray(0, good.length - 200));
    await writeFile(join(dir, "Empty"), "");
    const failure = async (name: string) => {
      try {
        await loadZone(name, { dir });
      } catch (error) {
        return error;
      }
      return undefined;
    };
    for (const [name, code] of [["Garbage", "BAD_MAGIC"], ["Truncated", "TRUNCATED"], ["Empty", "TRUNCATED"]] as const) {
      const error = await failure(name);
      expect(error).toBeInstanceOf(TzifError);
      expect((error as TzifError).code).toBe(code);
      expect((error as TzifError).message).toStartWith(`Cannot read time zone '${name}': `);
    }
  });

  test("reads from TZDIR's folder when given `dir`", async () => {
    const dir = await tempDir();
    await mkdir(join(dir, "Test"));
    await writeFile(join(dir, "Test", "Zone"), new Uint8Array(await Bun.file("/usr/share/zoneinfo/Asia/Kolkata").arrayBuffer()));
    const zone = await loadZone("Test/Zone", { dir });
    expect(zone?.name).toBe("Test/Zone");
    expect(offsetAt(zone!, Date.UTC(2026, 0, 1))).toBe(5.5 * HOUR);
  });
});

describe("parseTzif()", () => {
  test("a version 1 file (32-bit data, no footer) keeps its last offset after the last transition", () => {
    // Built by hand: one transition at 0 (1970) from type 0 (+1 h) to type 1 (+2 h).
    const bytes = tzifV1([[0, 1]], [3600, 7200]);
    const zone = parseTzif(bytes, "V1");
    expect(zone.rule).toBeUndefined();
    expect(offsetAt(zone, -1)).toBe(HOUR);
    expect(offsetAt(zone, 0)).toBe(2 * HOUR);
    expect(offsetAt(zone, Date.UTC(2100, 0, 1))).toBe(2 * HOUR);
  });

  test("versions 2, 3 and 4 read alike; an unknown version byte is refused", async () => {
    const bytes = new Uint8Array(await Bun.file("/usr/share/zoneinfo/Europe/London").arrayBuffer());
    const secondHeader = Buffer.from(bytes.buffer).indexOf("TZif", 4);
    expect(secondHeader).toBeGreaterThan(44);
    const reference = parseTzif(bytes, "London");
    for (const version of ["2", "3", "4"]) {
      bytes[4] = bytes[secondHeader + 4] = version.charCodeAt(0);
      expect(parseTzif(bytes, "London")).toEqual(reference);
    }
    bytes[4] = bytes[secondHeader + 4] = "5".charCodeAt(0);
    expect(() => parseTzif(bytes, "London")).toThrow("unknown TZif version byte 53");
  });

  test("a footer that is not a POSIX TZ string is refused", async () => {
    const bytes = new Uint8Array(await Bun.file("/usr/share/zoneinfo/America/New_York").arrayBuffer());
    const footer = new TextDecoder().decode(bytes.subarray(bytes.lastIndexOf(0x0a, bytes.length - 2)));
    expect(footer).toBe("\nEST5EDT,M3.2.0,M11.1.0\n");
    bytes.set(new TextEncoder().encode("M99"), bytes.length - 8); // month 99
    expect(() => parseTzif(bytes, "BadFooter")).toThrow(TzifError);
    expect(() => parseTzif(bytes, "BadFooter")).toThrow("Cannot read time zone 'BadFooter': its footer 'EST5EDT,M3.2.0,M99.1.0' is not a POSIX TZ string");
  });

  test("a transition that names a missing local time type is refused", () => {
    expect(() => parseTzif(tzifV1([[0, 5]], [3600, 7200]), "BadType")).toThrow(/local time type 5/);
  });
});

/** A version 1 TZif file: transitions as [seconds, type index], types as UTC offsets in seconds. */
function tzifV1(transitions: [number, number][], offsets: number[]): Uint8Array {
  const charcnt = 4;
  const size = 44 + transitions.length * 5 + offsets.length * 6 + charcnt;
  const bytes = new Uint8Array(size);
  const view = new DataView(bytes.buffer);
  bytes.set([0x54, 0x5a, 0x69, 0x66], 0);
  view.setUint32(20 + 12, transitions.length);
  view.setUint32(20 + 16, offsets.length);
  view.setUint32(20 + 20, charcnt);
  let at = 44;
  for (const [seconds] of transitions) (view.setInt32(at, seconds), (at += 4));
  for (const [, type] of transitions) bytes[at++] = type;
  for (const offset of offsets) (view.setInt32(at, offset), (at += 6));
  bytes.set([0x41, 0x42, 0x43, 0], at);
  return bytes;
}
