import { describe, expect, test } from "bun:test";
import { formatSaoPauloTime, isCalendarDate, isMarketOpen, isStale, marketTimeBetween, prepareClocks, saoPauloDay, saoPauloDayStart } from "../../lib/calendar.ts";
import { useTestTimeout } from "../support/timeout.ts";

useTestTimeout();

/** A São Paulo wall-clock time as an instant (São Paulo has been UTC-3 all year since 2019). */
const sp = (local: string) => new Date(`${local}-03:00`);

describe("saoPauloDay", () => {
  test("follows Brazil's daylight saving time before 2019 and UTC-3 after", () => {
    // In January 2018 São Paulo was on UTC-2: 02:30 UTC is 00:30 local, the same date.
    expect(saoPauloDay(new Date("2018-01-10T02:30:00Z"))).toBe("2018-01-10");
    // From 2019 on, UTC-3 all year: 02:30 UTC is 23:30 of the day before.
    expect(saoPauloDay(new Date("2020-01-10T02:30:00Z"))).toBe("2020-01-09");
    expect(saoPauloDay(new Date("2024-08-23T02:59:59Z"))).toBe("2024-08-22");
    expect(saoPauloDay(new Date("2024-08-23T03:00:00Z"))).toBe("2024-08-23");
  });

  test("agrees with Intl for instants spread over 1994-2026", () => {
    const intl = new Intl.DateTimeFormat("en-CA", { timeZone: "America/Sao_Paulo", year: "numeric", month: "2-digit", day: "2-digit" });
    const from = Date.parse("1994-07-01T00:00:00Z");
    const to = Date.parse("2026-12-31T00:00:00Z");
    // A step that is not a whole number of hours visits every minute offset within an hour.
    for (let ms = from; ms < to; ms += 7_919_000) {
      expect(saoPauloDay(new Date(ms))).toBe(intl.format(ms));
    }
  });

  test("agrees with Intl minute by minute around daylight-saving switches", () => {
    const intl = new Intl.DateTimeFormat("en-CA", { timeZone: "America/Sao_Paulo", year: "numeric", month: "2-digit", day: "2-digit" });
    // DST began at local midnight on 2018-11-04 and ended at local midnight on 2019-02-17 (and 1999-02-21).
    for (const around of ["2018-11-04T03:00:00Z", "2019-02-17T02:00:00Z", "1999-02-21T02:00:00Z"]) {
      const centre = Date.parse(around);
      for (let ms = centre - 86_400_000; ms <= centre + 86_400_000; ms += 60_000) {
        expect(saoPauloDay(ms)).toBe(intl.format(ms));
      }
    }
  });
});

describe("staleness: the forex market's clock", () => {
  const HOUR = 3_600_000;
  const utc = (text: string) => new Date(`${text}Z`);
  const limit = 2 * HOUR;

  test("Friday 20:30 São Paulo, the last quote at 17:55: not stale (the market closed at 19:00 São Paulo)", () => {
    // 2026-11-27 is a Friday; New York is on EST (UTC-5), São Paulo on UTC-3.
    expect(marketTimeBetween(sp("2026-11-27T17:55:00"), sp("2026-11-27T20:30:00"))).toBe(65 * 60_000);
    expect(isStale(sp("2026-11-27T17:55:00"), sp("2026-11-27T20:30:00"), limit)).toBe(false);
    expect(isStale(sp("2026-11-27T17:55:00"), sp("2026-11-28T23:00:00"), limit)).toBe(false); // Saturday night
  });

  test("counting from Friday's close, Monday morning counts only from Sunday 17:00 New York on", () => {
    // Friday 16:50 EST, then Sunday 17:00 EST to Monday 07:00 EST (09:00 São Paulo).
    expect(marketTimeBetween(sp("2026-11-27T18:50:00"), sp("2026-11-30T09:00:00"))).toBe(14 * HOUR + 10 * 60_000);
    expect(isStale(sp("2026-11-27T18:50:00"), sp("2026-11-29T18:00:00"), limit)).toBe(false); // Sunday 15:00 New York
    expect(isStale(sp("2026-11-27T18:50:00"), sp("2026-11-29T21:00:00"), limit)).toBe(true); // open for 2 h since
  });

  test("follows New York's daylight saving time, not São Paulo's or UTC", () => {
    // Clocks go forward on Sunday 2026-03-08: the market opens at 17:00 EDT, 21:00 UTC.
    expect(marketTimeBetween(utc("2026-03-07T12:00:00"), utc("2026-03-08T22:00:00"))).toBe(1 * HOUR);
    // and back on Sunday 2026-11-01: the Friday before closes at 21:00 UTC, Sunday opens at 22:00 UTC.
    expect(marketTimeBetween(utc("2026-10-30T20:00:00"), utc("2026-10-31T00:00:00"))).toBe(1 * HOUR);
    expect(marketTimeBetween(utc("2026-10-31T12:00:00"), utc("2026-11-01T23:00:00"))).toBe(1 * HOUR);
    // A trading week is 120 hours, whichever offsets it starts and ends in.
    expect(marketTimeBetween(utc("2026-03-06T22:00:00"), utc("2026-03-13T21:00:00"))).toBe(120 * HOUR);
    expect(marketTimeBetween(utc("2026-10-30T21:00:00"), utc("2026-11-06T22:00:00"))).toBe(120 * HOUR);
    expect([isMarketOpen(utc("2026-03-08T20:59:00")), isMarketOpen(utc("2026-03-08T21:00:00"))]).toEqual([false, true]);
  });

  test("25 December and 1 January do not count, whole days in New York", () => {
    // Thursday 2026-12-24 12:00 EST to Monday 12:00 EST: 12 h on Thursday, none on Christmas
    // (a Friday), Sunday from 17:00 (7 h), Monday 12 h.
    expect(marketTimeBetween(utc("2026-12-24T17:00:00"), utc("2026-12-28T17:00:00"))).toBe(31 * HOUR);
    expect(isStale(utc("2026-12-25T04:30:00"), utc("2026-12-25T20:00:00"), limit)).toBe(false); // 23:30 EST on the 24th
    expect(marketTimeBetween(utc("2027-01-01T04:00:00"), utc("2027-01-03T23:00:00"))).toBe(2 * HOUR); // from 23:00 EST on 31 Dec: 1 h that night, 1 h on Sunday
  });

  test("a gap of years is counted in per-day steps, not per minute", () => {
    const began = performance.now();
    const years = marketTimeBetween(utc("2016-01-04T00:00:00"), utc("2026-01-04T00:00:00"));
    expect(years).toBeGreaterThan(500 * 115 * HOUR);
    expect(years).toBeLessThan(525 * 120 * HOUR);
    expect(performance.now() - began).toBeLessThan(2000);
    expect(isStale(utc("2016-01-04T00:00:00"), utc("2026-01-04T00:00:00"), limit)).toBe(true);
  });
});

describe("the São Paulo calendar", () => {
  test("saoPauloDayStart is midnight, or 01:00 on a day daylight saving time began at midnight", () => {
    expect(saoPauloDayStart("2024-08-23").toISOString()).toBe("2024-08-23T03:00:00.000Z");
    // 2018-11-04: clocks went from 00:00 to 01:00 (-02), so the day began at 01:00.
    expect(saoPauloDayStart("2018-11-04").toISOString()).toBe("2018-11-04T03:00:00.000Z");
    expect(saoPauloDayStart("2018-11-05").toISOString()).toBe("2018-11-05T02:00:00.000Z");
    // 2019-02-17: clocks went back from 00:00 to 23:00 the evening before; the day began at 00:00 -03.
    expect(saoPauloDayStart("2019-02-17").toISOString()).toBe("2019-02-17T03:00:00.000Z");
    for (const date of ["2018-11-04", "2018-11-05", "2019-02-16", "2019-02-17", "2024-08-23"]) {
      const start = saoPauloDayStart(date);
      expect(saoPauloDay(start)).toBe(date);
      expect(saoPauloDay(new Date(start.getTime() - 1))).not.toBe(date);
    }
  });

  test("isCalendarDate takes real dates only, and never throws on impossible ones", () => {
    expect(["2024-02-29", "2023-02-29", "2024-13-45", "2024-04-31", "2024-4-1", "x"].map(isCalendarDate)).toEqual([true, false, false, false, false, false]);
  });
});

describe("prepareClocks(): the zones from the system's TZif files, no ICU", () => {
  test("São Paulo times read the same as Intl says, 1985 to 2035, summer time included", async () => {
    await prepareClocks();
    const intl = new Intl.DateTimeFormat("en-CA", {
      timeZone: "America/Sao_Paulo",
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      hourCycle: "h23",
      timeZoneName: "longOffset",
    });
    const expected = (at: Date) => {
      const part = Object.fromEntries(intl.formatToParts(at).map((p) => [p.type, p.value]));
      const offset = (part["timeZoneName"] ?? "").replace("GMT", "").replace(/:00$/, "") || "+00";
      return `${part["year"]}-${part["month"]}-${part["day"]} ${part["hour"]}:${part["minute"]} ${offset}`;
    };
    let checked = 0;
    for (let ms = Date.UTC(1985, 0, 1, 2, 30); ms < Date.UTC(2035, 0, 1); ms += 5 * 86_400_000 + 3_600_000) {
      const at = new Date(ms);
      expect({ at: at.toISOString(), text: formatSaoPauloTime(at) }).toEqual({ at: at.toISOString(), text: expected(at) });
      checked++;
    }
    expect(checked).toBeGreaterThan(3000);
  });

  test("the forex week follows New York's own clock changes", async () => {
    await prepareClocks();
    // Sunday 17:00 in New York: 21:00 UTC under daylight saving time, 22:00 UTC without.
    expect(isMarketOpen(new Date("2024-03-10T20:59:00Z"))).toBe(false);
    expect(isMarketOpen(new Date("2024-03-10T21:01:00Z"))).toBe(true);
    expect(isMarketOpen(new Date("2024-11-03T21:30:00Z"))).toBe(false);
    expect(isMarketOpen(new Date("2024-11-03T22:01:00Z"))).toBe(true);
  });
});
