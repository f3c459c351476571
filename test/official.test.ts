// PTAX storage (database.ts saveOfficialRates(), sql/009) and the cross-check's data
// (lib/views.ts officialCloses(), divergenceSeries()), with values worked out by hand.
import { beforeEach, describe, expect, test } from "bun:test";
import * as v from "valibot";
import { backfillDoneThrough, resetBackfillProgress, saveOfficialRates, saveQuotes } from "../database.ts";
import { CotacaoError } from "../lib/errors.ts";
import { type OfficialRate, OfficialRateSchema } from "../lib/official.ts";
import type { Sql } from "../lib/pool.ts";
import { divergenceSeries, officialCloses, officialRates } from "../lib/views.ts";
import { useTestDatabase } from "./support/database.ts";
import { sampleQuote } from "./support/quotes.ts";
import { useTestTimeout } from "./support/timeout.ts";

useTestTimeout();

const db = useTestDatabase();

function rate(overrides: Partial<OfficialRate> = {}): OfficialRate {
  return { pair: "USD-BRL", publishedAt: "2024-08-23T13:09:27.123456-03:00", bulletin: "closing", buy: "5.5032", sell: "5.5038", ...overrides };
}

/** The five bulletins of Friday 2024-08-23 (the times and digits BCB's Olinda gives, one to six fractional digits). */
const DAY: OfficialRate[] = [
  rate({ publishedAt: "2024-08-23T10:04:20.1-03:00", bulletin: "opening", buy: "5.5108", sell: "5.5114" }),
  rate({ publishedAt: "2024-08-23T11:11:30.47-03:00", bulletin: "intermediate", buy: "5.4985", sell: "5.4991" }),
  rate({ publishedAt: "2024-08-23T12:08:31.123-03:00", bulletin: "intermediate", buy: "5.5010", sell: "5.5016" }),
  rate({ publishedAt: "2024-08-23T13:03:29.6615-03:00", bulletin: "intermediate", buy: "5.5024", sell: "5.5030" }),
  rate({ publishedAt: "2024-08-23T13:09:27.123456-03:00", bulletin: "closing", buy: "5.5032", sell: "5.5038" }),
];

async function stored(sql: Sql): Promise<{ pair: string; at: string; bulletin: string; buy: string; sell: string }[]> {
  return sql`
    select pair, sao_paulo_instant(published_at) as at, bulletin, buy::text, sell::text
    from official_rates order by pair, published_at`;
}

async function count(sql: Sql, table: "official_rates" | "official_rate_revisions"): Promise<number> {
  const [row] = await sql<{ n: number }[]>`select count(*)::int as n from ${sql(table)}`;
  return row?.n ?? -1;
}

/** The São Paulo wall-clock text sao_paulo_instant() gives for a publishedAt: six fractional digits. */
function sixDigits(publishedAt: string): string {
  const [, clock, fraction = "", offset] = /^(.{19})(?:\.(\d+))?(.{6})$/.exec(publishedAt)!;
  return `${clock}.${fraction.padEnd(6, "0")}${offset}`;
}

beforeEach(async () => {
  await db.sql`truncate official_rates, official_rate_revisions, official_backfill_progress, backfill_progress, quotes, quote_revisions`;
});

describe("saveOfficialRates()", () => {
  test("stores a day's five bulletins as five rows: kinds, São Paulo times to the microsecond, digits as written", async () => {
    expect(await saveOfficialRates(db.sql, DAY)).toEqual({ inserted: 5, updated: 0, unchanged: 0 });
    expect(await stored(db.sql)).toEqual(
      DAY.map((r) => ({ pair: r.pair, at: sixDigits(r.publishedAt), bulletin: r.bulletin, buy: r.buy, sell: r.sell })),
    );
    const [closing] = await db.sql<{ utc: string }[]>`
      select to_char(published_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') as utc from official_rates where bulletin = 'closing'`;
    expect(closing?.utc).toBe("2024-08-23T16:09:27.123456");
  });

  test("is idempotent: the same batch again adds nothing, updates nothing, keeps no revision", async () => {
    await saveOfficialRates(db.sql, DAY);
    const before = await stored(db.sql);
    expect(await saveOfficialRates(db.sql, DAY)).toEqual({ inserted: 0, updated: 0, unchanged: 5 });
    expect(await saveOfficialRates(db.sql, [...DAY].reverse())).toEqual({ inserted: 0, updated: 0, unchanged: 5 });
    expect(await stored(db.sql)).toEqual(before);
    expect(await count(db.sql, "official_rate_revisions")).toBe(0);
  });

  test("a correction updates the row and keeps the replaced values, with when they were replaced", async () => {
    await saveOfficialRates(db.sql, DAY);
    const [first] = await db.sql<{ fetchedAt: string }[]>`
      select fetched_at::text as "fetchedAt" from official_rates where bulletin = 'closing'`;
    const corrected = DAY.map((r) => (r.bulletin === "closing" ? { ...r, buy: "5.5033" } : r));
    expect(await saveOfficialRates(db.sql, corrected)).toEqual({ inserted: 0, updated: 1, unchanged: 4 });
    const closing = (await stored(db.sql)).find((r) => r.bulletin === "closing");
    expect(closing?.buy).toBe("5.5033");
    const revisions = await db.sql<{ at: string; bulletin: string; buy: string; sell: string; fetchedAt: string; replaced: boolean }[]>`
      select sao_paulo_instant(published_at) as at, bulletin, buy::text, sell::text, fetched_at::text as "fetchedAt",
             replaced_at >= fetched_at as replaced
      from official_rate_revisions`;
    expect([...revisions]).toEqual([
      { at: "2024-08-23T13:09:27.123456-03:00", bulletin: "closing", buy: "5.5032", sell: "5.5038", fetchedAt: first!.fetchedAt, replaced: true },
    ]);
    // A changed kind is a correction too.
    expect(await saveOfficialRates(db.sql, [{ ...corrected[4]!, bulletin: "intermediate" }])).toEqual({ inserted: 0, updated: 1, unchanged: 0 });
    expect(await count(db.sql, "official_rate_revisions")).toBe(2);
  });

  test("keeps every digit: long decimals and trailing zeros read back as written", async () => {
    const digits = [
      rate({ publishedAt: "2024-08-23T10:00:00-03:00", bulletin: "opening", buy: "0.000000000123456789012345678901", sell: "123456789.987654321" }),
      rate({ publishedAt: "2024-08-23T13:00:00-03:00", buy: "5.4000", sell: "5.40" }),
    ];
    expect(await saveOfficialRates(db.sql, digits)).toEqual({ inserted: 2, updated: 0, unchanged: 0 });
    expect((await stored(db.sql)).map((r) => [r.buy, r.sell])).toEqual([
      ["0.000000000123456789012345678901", "123456789.987654321"],
      ["5.4000", "5.40"],
    ]);
  });

  test("keeps microseconds: two bulletins 1 µs apart are two rows, each time exact, through the merge too", async () => {
    const apart = [
      rate({ publishedAt: "2024-08-23T13:09:27.000001-03:00" }),
      rate({ publishedAt: "2024-08-23T13:09:27.000002-03:00", buy: "5.5", sell: "5.6" }),
    ];
    expect(await saveOfficialRates(db.sql, apart)).toEqual({ inserted: 2, updated: 0, unchanged: 0 });
    // Overlapping what is stored: this batch goes through the staging table and the merge.
    const more = [...apart, rate({ publishedAt: "2024-08-23T13:09:27.999999-03:00" })];
    expect(await saveOfficialRates(db.sql, more)).toEqual({ inserted: 1, updated: 0, unchanged: 2 });
    expect((await stored(db.sql)).map((r) => r.at)).toEqual([
      "2024-08-23T13:09:27.000001-03:00",
      "2024-08-23T13:09:27.000002-03:00",
      "2024-08-23T13:09:27.999999-03:00",
    ]);
  });

  test("a bulletin under daylight saving time keeps its -02:00 and its São Paulo day", async () => {
    await saveOfficialRates(db.sql, [rate({ publishedAt: "2018-02-15T13:06:00.1-02:00", buy: "3.2200" })]);
    expect((await stored(db.sql)).map((r) => r.at)).toEqual(["2018-02-15T13:06:00.100000-02:00"]);
    expect((await officialCloses(db.sql, "USD-BRL", "2018-02-15", "2018-02-15")).map((c) => c.publishedAt)).toEqual(["2018-02-15T13:06:00.100000-02:00"]);
  });

  test("one (pair, instant) is one row, whatever the offset it is written with; within a batch the last one wins", async () => {
    const batch = [rate({ publishedAt: "2024-08-23T13:09:27.5-03:00", buy: "1.1" }), rate({ publishedAt: "2024-08-23T16:09:27.500+00:00", buy: "2.2" })];
    expect(await saveOfficialRates(db.sql, batch)).toEqual({ inserted: 1, updated: 0, unchanged: 0 });
    expect((await stored(db.sql)).map((r) => [r.at, r.buy])).toEqual([["2024-08-23T13:09:27.500000-03:00", "2.2"]]);
  });

  test("10,000 bulletins go in, and come back unchanged, in one transaction each, in bounded time", async () => {
    const start = Date.UTC(1990, 0, 1);
    const batch: OfficialRate[] = [];
    for (let day = 0; batch.length < 10_000; day++) {
      const date = new Date(start + day * 86_400_000).toISOString().slice(0, 10);
      for (const [i, bulletin] of (["opening", "intermediate", "intermediate", "intermediate", "closing"] as const).entries()) {
        batch.push(rate({ publishedAt: `${date}T1${i}:0${i}:00.${String(day).padStart(6, "0")}-03:00`, bulletin, buy: `${day}.${i}001`, sell: `${day}.${i}002` }));
      }
    }
    const began = performance.now();
    expect(await saveOfficialRates(db.sql, batch)).toEqual({ inserted: 10_000, updated: 0, unchanged: 0 });
    const inserted = performance.now() - began;
    expect(await saveOfficialRates(db.sql, batch)).toEqual({ inserted: 0, updated: 0, unchanged: 10_000 });
    const merged = performance.now() - began - inserted;
    expect(await count(db.sql, "official_rates")).toBe(10_000);
    const [last] = await db.sql<{ buy: string }[]>`select buy::text from official_rates order by published_at desc limit 1`;
    expect(last?.buy).toBe(batch.at(-1)!.buy);
    // Well under a second each on a laptop; the bound leaves room for a busy shared machine.
    expect(inserted).toBeLessThan(15_000);
    expect(merged).toBeLessThan(15_000);
  });

  test("a row that is not an OfficialRate fails the batch, naming the row, before anything is written", async () => {
    const bad = [DAY[0]!, { ...DAY[1]!, bulletin: "Fechamento" } as unknown as OfficialRate, DAY[2]!];
    const error = await saveOfficialRates(db.sql, bad).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CotacaoError);
    expect((error as CotacaoError).code).toBe("INVALID_RATE");
    expect((error as Error).message).toStartWith("Cannot store the official rates: row 2 (USD-BRL 2024-08-23T11:11:30.47-03:00) has a bad bulletin");
    const badDigits = [DAY[0]!, { ...DAY[1]!, buy: "5,4985" }];
    expect(((await saveOfficialRates(db.sql, badDigits).catch((e: unknown) => e)) as Error).message).toContain("row 2");
    expect(await count(db.sql, "official_rates")).toBe(0);
  });

  test("a row the table refuses (a zero rate, a date that does not exist) leaves nothing of its batch, new or merged", async () => {
    const zero = [DAY[0]!, DAY[1]!, { ...DAY[2]!, buy: "0" }];
    await expect(saveOfficialRates(db.sql, zero)).rejects.toThrow(/official_rates_buy_check/);
    expect(await count(db.sql, "official_rates")).toBe(0);
    const noSuchDay = [DAY[0]!, rate({ publishedAt: "2024-02-30T13:09:27-03:00" })];
    await expect(saveOfficialRates(db.sql, noSuchDay)).rejects.toThrow(/out of range/);
    expect(await count(db.sql, "official_rates")).toBe(0);
    const noSuchMonth = [rate({ publishedAt: "2024-13-01T13:09:27-03:00" }), DAY[0]!];
    await expect(saveOfficialRates(db.sql, noSuchMonth)).rejects.toThrow(/out of range/);
    expect(await count(db.sql, "official_rates")).toBe(0);
    // Through the merge: a batch that corrects stored rows, adds new ones, and holds one bad row.
    await saveOfficialRates(db.sql, DAY.slice(0, 2));
    const before = await stored(db.sql);
    const mixed = [{ ...DAY[0]!, buy: "9.9999" }, DAY[2]!, { ...DAY[3]!, sell: "0.0000" }];
    await expect(saveOfficialRates(db.sql, mixed)).rejects.toThrow(/official_rates_sell_check/);
    expect(await stored(db.sql)).toEqual(before);
    expect(await count(db.sql, "official_rate_revisions")).toBe(0);
  });

  test("a backfill's progress commits with its rates, in its own table: a failed batch records none, AwesomeAPI's is another", async () => {
    const step = { pair: "USD-BRL", from: "2024-01-01", to: "2024-12-31", doneThrough: "2024-08-23" };
    expect(await saveOfficialRates(db.sql, DAY, { progress: step, durable: false })).toEqual({ inserted: 5, updated: 0, unchanged: 0 });
    expect(await backfillDoneThrough(db.sql, "USD-BRL", step.from, step.to, "bcb")).toBe("2024-08-23");
    expect(await backfillDoneThrough(db.sql, "USD-BRL", step.from, step.to)).toBeNull();
    const bad = [rate({ publishedAt: "2024-08-26T13:10:00-03:00", buy: "0" })];
    await expect(saveOfficialRates(db.sql, bad, { progress: { ...step, doneThrough: "2024-08-26" } })).rejects.toThrow(/official_rates_buy_check/);
    expect(await backfillDoneThrough(db.sql, "USD-BRL", step.from, step.to, "bcb")).toBe("2024-08-23");
    // An empty chunk (a year of holidays, were there one) still moves the progress on; never back.
    expect(await saveOfficialRates(db.sql, [], { progress: { ...step, doneThrough: "2024-09-30" } })).toEqual({ inserted: 0, updated: 0, unchanged: 0 });
    await saveOfficialRates(db.sql, [], { progress: { ...step, doneThrough: "2024-02-01" } });
    expect(await backfillDoneThrough(db.sql, "USD-BRL", step.from, step.to, "bcb")).toBe("2024-09-30");
    await resetBackfillProgress(db.sql, "USD-BRL", step.from, step.to, "bcb");
    expect(await backfillDoneThrough(db.sql, "USD-BRL", step.from, step.to, "bcb")).toBeNull();
  });

  test("an empty batch writes nothing", async () => {
    expect(await saveOfficialRates(db.sql, [])).toEqual({ inserted: 0, updated: 0, unchanged: 0 });
  });
});

// ---------------------------------------------------------------------------------------------
// The cross-check

/** An AwesomeAPI quote of USD-BRL at a São Paulo time. */
function quoteAt(at: string, bid: string, source = "awesomeapi:last", pair = "USD-BRL") {
  return sampleQuote({ pair, ts: new Date(at), bid, ask: bid, source });
}

describe("officialRates()", () => {
  test("gives back what was stored, as OfficialRates, for the São Paulo days asked", async () => {
    const monday = rate({ publishedAt: "2024-08-26T10:04:00.5-03:00", bulletin: "opening", buy: "5.4900", sell: "5.4906" });
    await saveOfficialRates(db.sql, [...DAY, monday, rate({ pair: "EUR-BRL" })]);
    const day = await officialRates(db.sql, "USD-BRL", "2024-08-23", "2024-08-23");
    expect(day).toEqual(DAY.map((r) => ({ ...r, publishedAt: sixDigits(r.publishedAt) })));
    expect(day.every((r) => v.is(OfficialRateSchema, r))).toBe(true);
    expect((await officialRates(db.sql, "USD-BRL", "2024-08-24", null)).map((r) => r.publishedAt)).toEqual(["2024-08-26T10:04:00.500000-03:00"]);
    expect(await officialRates(db.sql, "USD-BRL", null, "2024-08-22")).toEqual([]);
  });
});

describe("officialCloses()", () => {
  test("each São Paulo day's closing bulletin in [from, to], oldest first; days with none have no row", async () => {
    await saveOfficialRates(db.sql, [
      ...DAY,
      // Monday the 19th: its closing; Tuesday the 20th: intermediate bulletins only.
      rate({ publishedAt: "2024-08-19T13:04:00.5-03:00", buy: "5.4600", sell: "5.4606" }),
      rate({ publishedAt: "2024-08-20T11:04:00-03:00", bulletin: "intermediate", buy: "5.47", sell: "5.48" }),
      rate({ publishedAt: "2024-08-20T12:04:00-03:00", bulletin: "intermediate", buy: "5.47", sell: "5.48" }),
      // Wednesday the 21st, late in the São Paulo evening: already the 22nd in UTC, still the 21st's bulletin.
      rate({ publishedAt: "2024-08-21T22:30:00-03:00", buy: "5.4800", sell: "5.4806" }),
      // Another pair's closing never shows.
      rate({ pair: "EUR-BRL", publishedAt: "2024-08-19T13:04:00-03:00", buy: "6.0", sell: "6.1" }),
    ]);
    const days = (closes: { day: string }[]) => closes.map((c) => c.day);
    expect(await officialCloses(db.sql, "USD-BRL", "2024-08-17", "2024-08-25")).toEqual([
      { day: "2024-08-19", publishedAt: "2024-08-19T13:04:00.500000-03:00", buy: "5.4600", sell: "5.4606" },
      { day: "2024-08-21", publishedAt: "2024-08-21T22:30:00.000000-03:00", buy: "5.4800", sell: "5.4806" },
      { day: "2024-08-23", publishedAt: "2024-08-23T13:09:27.123456-03:00", buy: "5.5032", sell: "5.5038" },
    ]);
    expect(days(await officialCloses(db.sql, "USD-BRL", "2024-08-21", "2024-08-21"))).toEqual(["2024-08-21"]);
    expect(days(await officialCloses(db.sql, "USD-BRL", "2024-08-22", "2024-08-22"))).toEqual([]);
    expect(days(await officialCloses(db.sql, "USD-BRL", null, "2024-08-20"))).toEqual(["2024-08-19"]);
    expect(days(await officialCloses(db.sql, "USD-BRL", "2024-08-20", null))).toEqual(["2024-08-21", "2024-08-23"]);
    // Two closings on one day (BCB never publishes them; a correction at another time could): the later.
    await saveOfficialRates(db.sql, [rate({ publishedAt: "2024-08-19T13:30:00-03:00", buy: "5.4700", sell: "5.4706" })]);
    expect((await officialCloses(db.sql, "USD-BRL", "2024-08-19", "2024-08-19")).map((c) => c.buy)).toEqual(["5.4700"]);
  });
});

describe("divergenceSeries()", () => {
  test("compares the closing buy rate with the quote nearest its time: (bid − buy) / buy in percent, exact", async () => {
    await saveOfficialRates(db.sql, [
      rate({ publishedAt: "2024-08-19T13:10:00-03:00", buy: "5.0000", sell: "5.0006" }),
      rate({ publishedAt: "2024-08-20T13:10:00-03:00", buy: "5.4278", sell: "5.4284" }),
      rate({ publishedAt: "2024-08-21T13:10:00-03:00", buy: "3.2052", sell: "3.2058" }),
    ]);
    await saveQuotes(db.sql, [
      // 19th: 12:50 is 20 minutes before, 13:21 eleven after: 13:21 is nearer.
      quoteAt("2024-08-19T12:50:00-03:00", "5.1000"),
      quoteAt("2024-08-19T13:21:00-03:00", "5.0750"),
      // 20th: the same distance before and after: the earlier.
      quoteAt("2024-08-20T13:05:00-03:00", "5.4343"),
      quoteAt("2024-08-20T13:15:00-03:00", "5.5000"),
      // 21st: one quote only, 30 minutes before to the second (the window includes its ends).
      quoteAt("2024-08-21T12:40:00-03:00", "3.9"),
      // Another pair's quote at the very time is never used.
      quoteAt("2024-08-19T13:10:00-03:00", "9.0000", "awesomeapi:last", "EUR-BRL"),
    ]);
    expect(await divergenceSeries(db.sql, "USD-BRL", "2024-08-19", "2024-08-21")).toEqual([
      // 100 × (5.0750 − 5.0000) / 5.0000 = 1.5
      { day: "2024-08-19", publishedAt: "2024-08-19T13:10:00.000000-03:00", buy: "5.0000", sell: "5.0006",
        quoteAt: "2024-08-19T13:21:00.000000-03:00", bid: "5.0750", match: "nearest", divergencePct: "1.500000" },
      // 100 × 0.0065 / 5.4278 = 0.11975385...
      { day: "2024-08-20", publishedAt: "2024-08-20T13:10:00.000000-03:00", buy: "5.4278", sell: "5.4284",
        quoteAt: "2024-08-20T13:05:00.000000-03:00", bid: "5.4343", match: "nearest", divergencePct: "0.119754" },
      // 100 × 0.6948 / 3.2052 = 21.67727442...
      { day: "2024-08-21", publishedAt: "2024-08-21T13:10:00.000000-03:00", buy: "3.2052", sell: "3.2058",
        quoteAt: "2024-08-21T12:40:00.000000-03:00", bid: "3.9", match: "nearest", divergencePct: "21.677274" },
    ]);
  });

  test("30 minutes is to the microsecond: a quote 1 µs further is not near", async () => {
    await saveOfficialRates(db.sql, [rate({ publishedAt: "2024-08-19T13:09:27.000001-03:00", buy: "5.0000" })]);
    await saveQuotes(db.sql, [quoteAt("2024-08-19T13:39:27.001-03:00", "5.0750")]);
    expect(await divergenceSeries(db.sql, "USD-BRL", "2024-08-19", "2024-08-19")).toEqual([]);
    await saveQuotes(db.sql, [quoteAt("2024-08-19T13:39:27.000-03:00", "5.0500")]);
    expect((await divergenceSeries(db.sql, "USD-BRL", "2024-08-19", "2024-08-19")).map((p) => [p.quoteAt, p.divergencePct])).toEqual([
      ["2024-08-19T13:39:27.000000-03:00", "1.000000"],
    ]);
  });

  test("with no quote within 30 minutes, the day's stored daily quote; with neither, no row", async () => {
    await saveOfficialRates(db.sql, [
      rate({ publishedAt: "2024-08-19T13:10:00-03:00", buy: "5.0000" }),
      rate({ publishedAt: "2024-08-20T13:10:00-03:00", buy: "5.0000" }),
      rate({ publishedAt: "2024-08-21T13:10:00-03:00", buy: "5.0000" }),
    ]);
    await saveQuotes(db.sql, [
      // 19th: minute quotes, but none near 13:10; and the day's daily quote (its last).
      quoteAt("2024-08-19T11:00:00-03:00", "5.2000"),
      quoteAt("2024-08-19T16:59:00-03:00", "4.9000", "awesomeapi:daily"),
      quoteAt("2024-08-19T17:59:00-03:00", "4.9500", "awesomeapi:daily"),
      // 20th: quotes far from the closing, none daily: no row.
      quoteAt("2024-08-20T09:00:00-03:00", "5.3000"),
      quoteAt("2024-08-20T18:00:00-03:00", "5.3000"),
      // 21st: only the 22nd's daily quote (São Paulo date), which is not the 21st's.
      quoteAt("2024-08-22T00:30:00-03:00", "5.1000", "awesomeapi:daily"),
    ]);
    expect(await divergenceSeries(db.sql, "USD-BRL", "2024-08-19", "2024-08-21")).toEqual([
      // 100 × (4.9500 − 5.0000) / 5.0000 = −1
      { day: "2024-08-19", publishedAt: "2024-08-19T13:10:00.000000-03:00", buy: "5.0000", sell: "5.5038",
        quoteAt: "2024-08-19T17:59:00.000000-03:00", bid: "4.9500", match: "daily", divergencePct: "-1.000000" },
    ]);
  });

  test("a daily quote within 30 minutes is simply the nearest", async () => {
    await saveOfficialRates(db.sql, [rate({ publishedAt: "2024-08-19T13:10:00-03:00", buy: "5.0000" })]);
    await saveQuotes(db.sql, [
      quoteAt("2024-08-19T13:30:00-03:00", "5.0250", "awesomeapi:daily"),
      quoteAt("2024-08-19T17:59:00-03:00", "4.9500", "awesomeapi:daily"),
    ]);
    expect((await divergenceSeries(db.sql, "USD-BRL", null, null)).map((p) => [p.match, p.bid, p.divergencePct])).toEqual([["nearest", "5.0250", "0.500000"]]);
  });

  test("a weekend, or a day with intermediate bulletins only, has no row, however many quotes it has", async () => {
    await saveOfficialRates(db.sql, [
      // Tuesday the 20th: opening and intermediate bulletins, no closing (yet).
      rate({ publishedAt: "2024-08-20T10:04:00-03:00", bulletin: "opening", buy: "5.0000" }),
      rate({ publishedAt: "2024-08-20T13:04:00-03:00", bulletin: "intermediate", buy: "5.0000" }),
      // Friday the 23rd: its closing, so the range is not empty.
      rate({ publishedAt: "2024-08-23T13:10:00-03:00", buy: "5.0000" }),
    ]);
    await saveQuotes(db.sql, [
      quoteAt("2024-08-17T13:10:00-03:00", "5.1000"),
      quoteAt("2024-08-17T18:00:00-03:00", "5.1000", "awesomeapi:daily"),
      quoteAt("2024-08-18T13:10:00-03:00", "5.1000"),
      quoteAt("2024-08-20T13:05:00-03:00", "5.1000"),
      quoteAt("2024-08-20T18:00:00-03:00", "5.1000", "awesomeapi:daily"),
      quoteAt("2024-08-23T13:11:00-03:00", "5.1000"),
    ]);
    expect((await divergenceSeries(db.sql, "USD-BRL", "2024-08-17", "2024-08-25")).map((p) => [p.day, p.divergencePct])).toEqual([
      ["2024-08-23", "2.000000"],
    ]);
  });
});

describe("the README's rule", () => {
  test("recomputed from the two tables by a plain query written from the README, it gives divergenceSeries()'s rows", async () => {
    // 200 days of closings, some days without one, and quotes scattered around them: some near,
    // some just outside 30 minutes, some days with a daily quote only, some with nothing.
    let seed = 7;
    const random = () => ((seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648) / 2_147_483_648);
    const rates: OfficialRate[] = [];
    const quotes = [];
    for (let d = 0; d < 200; d++) {
      const date = new Date(Date.UTC(2020, 2, 1) + d * 86_400_000).toISOString().slice(0, 10);
      const minute = String(5 + Math.floor(random() * 10)).padStart(2, "0");
      if (random() < 0.8) rates.push(rate({ publishedAt: `${date}T13:${minute}:27.${String(d).padStart(6, "0")}-03:00`, buy: (4 + random()).toFixed(4) }));
      const closing = Date.parse(`${date}T13:${minute}:27-03:00`);
      for (let q = Math.floor(random() * 3); q > 0; q--) {
        const at = closing + Math.round((random() - 0.5) * 2 * 33 * 60_000);
        quotes.push(quoteAt(new Date(at).toISOString(), (4 + random()).toFixed(4), random() < 0.3 ? "awesomeapi:daily" : "awesomeapi:last"));
      }
      // Around the window's ends, to the millisecond (the closing itself has microseconds).
      if (random() < 0.3) {
        const at = closing + (random() < 0.5 ? -1 : 1) * (30 * 60_000 + Math.round((random() - 0.5) * 2_000));
        quotes.push(quoteAt(new Date(at).toISOString(), (4 + random()).toFixed(4)));
      }
      if (random() < 0.5) quotes.push(quoteAt(`${date}T18:00:00-03:00`, (4 + random()).toFixed(4), "awesomeapi:daily"));
    }
    await saveOfficialRates(db.sql, rates);
    await saveQuotes(db.sql, quotes);
    const plain = await db.sql<{ day: string; quoteAt: string; divergencePct: string }[]>`
      with closing as (
        select distinct on (1) (published_at at time zone 'America/Sao_Paulo')::date as day, published_at, buy
        from official_rates where pair = 'USD-BRL' and bulletin = 'closing' order by 1, published_at desc
      ),
      chosen as (
        select c.*, coalesce(
          (select q.ts from quotes q where q.pair = 'USD-BRL' and q.ts between c.published_at - interval '30 minutes' and c.published_at + interval '30 minutes'
            order by greatest(q.ts - c.published_at, c.published_at - q.ts), q.ts limit 1),
          (select q.ts from quotes q where q.pair = 'USD-BRL' and q.source = 'awesomeapi:daily'
             and (q.ts at time zone 'America/Sao_Paulo')::date = c.day order by q.ts desc limit 1)) as ts
        from closing c
      )
      select to_char(c.day, 'YYYY-MM-DD') as day, sao_paulo_instant(q.ts) as "quoteAt",
             round(100 * (q.bid - c.buy) / c.buy, 6)::text as "divergencePct"
      from chosen c join quotes q on q.pair = 'USD-BRL' and q.ts = c.ts order by c.day`;
    const series = await divergenceSeries(db.sql, "USD-BRL", null, null);
    expect(plain.length).toBeGreaterThan(40);
    expect(series.some((p) => p.match === "daily")).toBe(true);
    expect(series.map(({ day, quoteAt, divergencePct }) => ({ day, quoteAt, divergencePct }))).toEqual([...plain]);
  });
});
