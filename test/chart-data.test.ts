import { describe, expect, test } from "bun:test";
import {
  SAO_PAULO,
  SERIES,
  alertSpans,
  appendQuote,
  carryLiveQuotes,
  addDays,
  averageIndexFor,
  countPoints,
  dateNames,
  dayAverageAt,
  describePoint,
  describeResolution,
  describeStatus,
  formatAge,
  formatChange,
  formatPercent,
  formatPrice,
  formatTime,
  officialAt,
  officialCloses,
  prepData,
  rangeBounds,
  tickDecimals,
  timeAxisStamps,
  zonedDate,
  zoomNeedsFetch,
} from "../public/chart-data.js";
import { useTestTimeout } from "./support/timeout.ts";

useTestTimeout();

// Intl separates a currency symbol with a no-break space; compare with plain spaces.
const plain = (text: string) => text.replace(/\s/g, " ");
const DAY = 86_400;

describe("prepData()", () => {
  test("merges buckets and daily averages on one ascending x axis, null where a series has no point", () => {
    const data = prepData({
      pair: "USD-BRL",
      bucketSeconds: 0,
      data: [
        [100, 200, 300],
        [1, 2, 3],
        [0.5, 1.5, 2.5],
        [1.5, 2.5, 3.5],
        [1.1, 2.1, 3.1],
      ],
      ma: { windowDays: 20, thresholdPct: 3, data: [[150, 300], [2, 2.2], [1.9, 2.1], [2.1, 2.3]] },
    });
    expect(data[0]).toEqual([100, 150, 200, 300]);
    expect(data[SERIES.bid]).toEqual([1.1, null, 2.1, 3.1]);
    expect(data[SERIES.min]).toEqual([0.5, null, 1.5, 2.5]);
    expect(data[SERIES.max]).toEqual([1.5, null, 2.5, 3.5]);
    // The quote at 200 lies in the day that starts at 150: it carries that day's average.
    expect(data[SERIES.ma]).toEqual([null, 2, 2, 2.2]);
    expect(data[SERIES.lower]).toEqual([null, 1.9, 1.9, 2.1]);
    expect(data[SERIES.upper]).toEqual([null, 2.1, 2.1, 2.3]);
  });

  // São Paulo days of November 2026 (UTC-3): each starts at 03:00 UTC.
  const dayStart = (day: number) => Date.UTC(2026, 10, day, 3) / 1000;
  const closeAt = (day: number) => dayStart(day) + 14 * 3600; // 17:00 in São Paulo
  const november = () => ({
    pair: "USD-BRL",
    bucketSeconds: 0,
    data: [
      [closeAt(19), closeAt(20), closeAt(23), dayStart(24) + 3600],
      [5.3, 5.31, 5.32, 5.33],
      [5.3, 5.31, 5.32, 5.33],
      [5.3, 5.31, 5.32, 5.33],
      [5.3, 5.31, 5.32, 5.33],
    ] as [number[], number[], number[], number[], number[]],
    ma: {
      windowDays: 20,
      thresholdPct: 3,
      data: [
        [dayStart(19), dayStart(20), dayStart(23), dayStart(24)],
        [5.0621, 5.0821, 5.1025, 5.11],
        [4.9, 4.92, 4.95, 4.96],
        [5.2, 5.23, 5.25, 5.26],
      ] as [number[], number[], number[], number[]],
    },
  });

  test("each quote carries the average of its own day, never the next day's (the legend reads it at the quote's index)", () => {
    const data = prepData(november());
    const at = (ts: number) => data[0].indexOf(ts);
    // 20/11 at 17:00 is nearer 21/11's start than its own in time, but its average is 20/11's.
    expect(data[SERIES.ma]![at(closeAt(20))]).toBe(5.0821);
    expect(averageIndexFor(data, at(closeAt(20)), 0)).toBe(at(closeAt(20)));
    expect(data[SERIES.ma]![at(closeAt(23))]).toBe(5.1025);
    expect([data[SERIES.lower]![at(closeAt(23))], data[SERIES.upper]![at(closeAt(23))]]).toEqual([4.95, 5.25]);
  });

  test("today's newest quote carries today's average, so the band reaches it", () => {
    const data = prepData(november());
    expect(data[0].at(-1)).toBe(dayStart(24) + 3600);
    expect([data[SERIES.ma]!.at(-1), data[SERIES.lower]!.at(-1), data[SERIES.upper]!.at(-1)]).toEqual([5.11, 4.96, 5.26]);
  });

  test("dayAverageAt() finds the stored day that holds a moment, and none past the newest day's end", () => {
    const { ma } = november();
    expect(dayAverageAt(ma, closeAt(20))).toEqual({ ma: 5.0821, lower: 4.92, upper: 5.23 });
    expect(dayAverageAt(ma, dayStart(24))).toEqual({ ma: 5.11, lower: 4.96, upper: 5.26 });
    expect(dayAverageAt(ma, dayStart(25))).toBeNull();
    expect(dayAverageAt(ma, dayStart(19) - 1)).toBeNull();
    expect(dayAverageAt(null, closeAt(20))).toBeNull();
  });

  test("a bucket of whole days shows the average of its last day, whose close is its bid", () => {
    const data = prepData({
      pair: "USD-BRL",
      bucketSeconds: 2 * DAY,
      data: [[dayStart(19), dayStart(23)], [5.31, 5.33], [5.3, 5.32], [5.31, 5.33], [5.31, 5.33]],
      ma: november().ma,
    });
    expect(averageIndexFor(data, data[0].indexOf(dayStart(19)), 2 * DAY)).toBe(data[0].indexOf(dayStart(20)));
    expect(averageIndexFor(data, data[0].indexOf(dayStart(23)), 2 * DAY)).toBe(data[0].indexOf(dayStart(24)));
  });

  test("carryLiveQuotes() keeps the live quotes, with their day's average, when the data is rebuilt from the same answer", () => {
    const answer = november();
    const shown = prepData(answer);
    const newDay = dayStart(25);
    appendQuote(shown, newDay + 3600, 5.35, { ma: 5.12, lower: 4.97, upper: 5.27 });
    appendQuote(shown, newDay + 7200, 5.36, { ma: 5.12, lower: 4.97, upper: 5.27 });
    // The official closes arrive: the answer is prepared again, without the live quotes.
    const rebuilt = prepData(answer);
    expect(rebuilt[0].length).toBe(shown[0].length - 2);
    expect(carryLiveQuotes(shown, rebuilt)).toBe(2);
    expect(rebuilt[0].slice(-2)).toEqual([newDay + 3600, newDay + 7200]);
    expect(rebuilt[SERIES.bid]!.slice(-2)).toEqual([5.35, 5.36]);
    expect(rebuilt[SERIES.ma]!.slice(-2)).toEqual([5.12, 5.12]);
    // Nothing past the answer: nothing carried.
    expect(carryLiveQuotes(prepData(answer), rebuilt)).toBe(0);
  });

  test("addDays() gives live quotes of a new day that day's average once it is read, and keeps it for the next", () => {
    const answer = november();
    const data = prepData(answer);
    const newDay = dayStart(25);
    // Two live quotes of 25/11: no stored day holds them yet.
    appendQuote(data, newDay + 3600, 5.35, dayAverageAt(answer.ma, newDay + 3600));
    appendQuote(data, newDay + 7200, 5.36, dayAverageAt(answer.ma, newDay + 7200));
    expect(data[SERIES.ma]!.slice(-2)).toEqual([null, null]);
    const day25 = { windowDays: 20, thresholdPct: 3, data: [[newDay], [5.12], [4.97], [5.27]] as [number[], number[], number[], number[]] };
    expect(addDays(data, answer.ma, day25)).toBe(true);
    expect(data[SERIES.ma]!.slice(-2)).toEqual([5.12, 5.12]);
    expect(data[SERIES.lower]!.slice(-2)).toEqual([4.97, 4.97]);
    expect(data[SERIES.upper]!.slice(-2)).toEqual([5.27, 5.27]);
    // Today's own earlier point is left as it was, and the day is now known to later quotes.
    expect(data[SERIES.ma]![data[0].indexOf(dayStart(24) + 3600)]).toBe(5.11);
    expect(dayAverageAt(answer.ma, newDay + 9000)).toEqual({ ma: 5.12, lower: 4.97, upper: 5.27 });
    // Read twice: nothing added twice.
    expect(addDays(data, answer.ma, day25)).toBe(false);
    expect(answer.ma.data[0].filter((start) => start === newDay)).toHaveLength(1);
  });

  test("countPoints() counts the bid's points, live ones included", () => {
    const data = prepData(november());
    expect(countPoints(data)).toBe(4);
    appendQuote(data, dayStart(24) + 7200, 5.34);
    expect(countPoints(data)).toBe(5);
  });

  test("takes decimal strings and an answer without a moving average", () => {
    const answer = { pair: "USD-BRL", bucketSeconds: 60, data: [[1], ["5.1"], ["5.0"], ["5.2"], ["5.15"]] };
    const data = prepData(answer as unknown as Parameters<typeof prepData>[0]);
    expect([data[SERIES.bid], data[SERIES.min], data[SERIES.max], data[SERIES.ma]]).toEqual([[5.15], [5], [5.2], [null]]);
  });
});

describe("the official closes (BCB's PTAX) on the chart", () => {
  test("officialCloses() keeps the closing bulletins, times in seconds; prepData() puts each at its own time in SERIES.official", () => {
    const closes = officialCloses({
      pair: "USD-BRL",
      bulletins: [
        { publishedAt: "1970-01-01T00:02:00.000000-00:00", bulletin: "opening", buy: "9", sell: "9" },
        { publishedAt: "1970-01-01T00:02:30.000000-00:00", bulletin: "closing", buy: "1.5", sell: "1.6" },
        { publishedAt: "1970-01-01T00:05:00.000000-00:00", bulletin: "closing", buy: "3.5", sell: "3.6" },
      ],
      divergence: [],
    });
    expect(closes).toEqual({ ts: [150, 300], buy: [1.5, 3.5] });
    const data = prepData({ pair: "USD-BRL", bucketSeconds: 0, data: [[100, 200, 300], [1, 2, 3], [1, 2, 3], [1, 2, 3], [1.1, 2.1, 3.1]] }, closes);
    expect(data[0]).toEqual([100, 150, 200, 300]);
    expect(data[SERIES.bid]).toEqual([1.1, null, 2.1, 3.1]);
    // At 300 a quote and a close share the point.
    expect(data[SERIES.official]).toEqual([null, 1.5, null, 3.5]);
    expect([officialAt(data, 0), officialAt(data, 2), officialAt(data, 3)]).toEqual([null, 1.5, 3.5]);
    // Without official closes the column is there, empty: a live quote fills every column alike.
    const plain = prepData({ pair: "USD-BRL", bucketSeconds: 0, data: [[100], [1], [1], [1], [1]] });
    expect(plain[SERIES.official]).toEqual([null]);
    expect(appendQuote(plain, 200, 2)).toBe(true);
    expect(plain[SERIES.official]).toEqual([null, null]);
  });
});

describe("appendQuote()", () => {
  const chart = () => prepData({ pair: "USD-BRL", bucketSeconds: 0, data: [[10, 20], [1, 2], [1, 2], [1, 2], [1, 2]] });

  test("adds a newer quote as a point of its own, with no average", () => {
    const data = chart();
    expect(appendQuote(data, 30, 3)).toBe(true);
    const newest = (series: number) => data[series]?.at(-1);
    expect([newest(0), newest(SERIES.bid), newest(SERIES.min), newest(SERIES.max)]).toEqual([30, 3, 3, 3]);
    expect([newest(SERIES.ma), newest(SERIES.lower), newest(SERIES.upper)]).toEqual([null, null, null]);
  });

  test("gives a newer quote the average of its day when told it", () => {
    const data = chart();
    expect(appendQuote(data, 30, 3, { ma: 2.5, lower: 2.4, upper: 2.6 })).toBe(true);
    const newest = (series: number) => data[series]?.at(-1);
    expect([newest(SERIES.ma), newest(SERIES.lower), newest(SERIES.upper)]).toEqual([2.5, 2.4, 2.6]);
  });

  test("updates the newest point for the same time and widens its range", () => {
    const data = chart();
    expect(appendQuote(data, 20, 2.5)).toBe(true);
    const newest = (series: number) => data[series]?.at(-1);
    expect([newest(0), newest(SERIES.bid), newest(SERIES.min), newest(SERIES.max)]).toEqual([20, 2.5, 2, 2.5]);
    expect(data[0]).toHaveLength(2);
  });

  test("leaves an older quote to the next fetch", () => {
    const data = chart();
    expect(appendQuote(data, 15, 9)).toBe(false);
    expect(data[0]).toEqual([10, 20]);
  });
});

describe("range maths", () => {
  test("a preset ends at the newest quote and never starts before the first", () => {
    expect(rangeBounds("1W", 0, 100 * DAY)).toEqual({ from: 93 * DAY, to: 100 * DAY });
    expect(rangeBounds("1Y", 50 * DAY, 100 * DAY)).toEqual({ from: 50 * DAY, to: 100 * DAY });
    expect(rangeBounds("All", 5, 100 * DAY)).toEqual({ from: 5, to: 100 * DAY });
  });

  test("a zoom inside full-resolution data needs no fetch; one inside buckets does", () => {
    expect(zoomNeedsFetch({ from: 0, to: 100, bucketSeconds: 0 }, 10, 90)).toBe(false);
    expect(zoomNeedsFetch({ from: 0, to: 100, bucketSeconds: 0 }, 10, 120)).toBe(true);
    expect(zoomNeedsFetch({ from: 0, to: 100, bucketSeconds: 3600 }, 10, 90)).toBe(true);
  });

  test("alert episodes become spans in seconds; an open one runs to the given end", () => {
    const spans = alertSpans(
      [
        { firedAt: "2024-01-03T00:00:00Z", resolvedAt: null, direction: "up" },
        { startedAt: "2024-01-01T00:00:00Z", resolvedAt: "2024-01-02T00:00:00Z", direction: "down" },
        { kind: "stale" },
      ],
      1_704_500_000,
    );
    expect(spans).toEqual([
      { from: 1_704_067_200, to: 1_704_153_600, direction: "down", open: false },
      { from: 1_704_240_000, to: 1_704_500_000, direction: "up", open: true },
    ]);
  });
});

describe("formatting", () => {
  test("prices are money in pt-BR with four decimals, in the pair's quote currency", () => {
    expect(plain(formatPrice("5.7008", "BRL"))).toBe("R$ 5,7008");
    expect(plain(formatPrice(0.1754, "USD"))).toBe("US$ 0,1754");
    expect(plain(formatPrice(2814, "BRL"))).toBe("R$ 2.814,0000");
    expect(formatPrice(null, "BRL")).toBe("–");
  });

  test("a code Intl cannot take as a currency still shows the number", () => {
    expect(plain(formatPrice(1.5, "USDT1"))).toBe("1,5000 USDT1");
  });

  test("percentages follow the locale", () => {
    expect(plain(formatPercent(3, 1, "pt-BR"))).toBe("3,0%");
    expect(plain(formatPercent(3, 1, "en-US"))).toBe("3.0%");
  });

  test("changes carry their sign", () => {
    expect(plain(formatChange(0.4213))).toBe("+0,42%");
    expect(plain(formatChange(-1.41))).toBe("-1,41%");
    expect(formatChange(null)).toBe("–");
  });

  test("times are São Paulo's by default and 24-hour", () => {
    // 2024-08-23T17:39:40Z is 14:39 in São Paulo (UTC-3).
    expect(formatTime(1_724_434_780, SAO_PAULO)).toBe("23/08/2024, 14:39");
    expect(formatTime(1_724_434_780, "UTC", { seconds: true })).toBe("23/08/2024, 17:39:40");
  });

  test("ages and resolutions read as words", () => {
    expect(formatAge(12.7)).toBe("12 s");
    expect(formatAge(245)).toBe("4 min");
    expect(formatAge(3 * 3600 + 300)).toBe("3 h 05 min");
    expect(formatAge(2 * DAY + 5)).toBe("2 d");
    expect(describeResolution(0, "en-US")).toBe("every quote");
    expect(describeResolution(DAY, "en-US")).toBe("one point per 1 d");
    expect(describeResolution(3600, "en-US")).toBe("one point per 1 h");
    // The default locale is pt-BR's, in words too.
    expect(describeResolution(0)).toBe("todas as cotações");
    expect(describeResolution(3600, "pt-BR")).toBe("um ponto a cada 1 h");
  });

  test("tick decimals follow the tick spacing", () => {
    expect(tickDecimals(0.05)).toBe(2);
    expect(tickDecimals(0.1)).toBe(1);
    expect(tickDecimals(1)).toBe(0);
    expect(tickDecimals(500)).toBe(0);
    expect(tickDecimals(0.0001)).toBe(4);
  });

  test("the status says since when, with the date only when it is not today", () => {
    const now = Date.parse("2026-11-29T18:00:00Z") / 1000;
    expect(describeStatus({ state: "live", since: null }, now, SAO_PAULO, "en-US")).toEqual({ text: "live", tone: "ok" });
    expect(describeStatus({ state: "stale", since: "2026-11-29T17:02:00Z" }, now, SAO_PAULO, "en-US")).toEqual({ text: "stale since 14:02", tone: "warn" });
    expect(describeStatus({ state: "failing", since: "2026-11-28T12:15:00Z" }, now, SAO_PAULO, "en-US")).toEqual({
      text: "pipeline failing since 11/28/2026, 09:15",
      tone: "bad",
    });
    expect(describeStatus({ state: "empty", since: null, message: "no quotes yet" }, now, SAO_PAULO, "en-US")).toEqual({ text: "no quotes yet", tone: "none" });
    // pt-BR: its words and its dates.
    expect(describeStatus({ state: "live", since: null }, now, SAO_PAULO, "pt-BR")).toEqual({ text: "ao vivo", tone: "ok" });
    expect(describeStatus({ state: "stale", since: "2026-11-29T17:02:00Z" }, now, SAO_PAULO, "pt-BR")).toEqual({ text: "desatualizado desde 14:02", tone: "warn" });
    expect(describeStatus({ state: "failing", since: "2026-11-28T12:15:00Z" }, now, SAO_PAULO, "pt-BR")).toEqual({
      text: "pipeline com falha desde 28/11/2026, 09:15",
      tone: "bad",
    });
    expect(describeStatus({ state: "empty", since: null, message: "No quotes are stored yet." }, now, SAO_PAULO, "pt-BR").text).toBe("nenhuma cotação ainda");
  });

  test("axis labels speak the locale", () => {
    expect(dateNames("pt-BR").MMMM[0]).toBe("janeiro");
    expect(dateNames("pt-BR").WWW[0]).toBe("dom");
    expect(timeAxisStamps("pt-BR")[2]?.[1]).toBe("{D}/{M}");
    expect(timeAxisStamps("en-US")[2]?.[1]).toBe("{M}/{D}");
    expect(timeAxisStamps("en-US")[4]?.[1]).toBe("{h}:{mm}{aa}");
  });
});

test("describePoint() names a bucket's span, or the moment of a full-resolution point", () => {
  expect(describePoint(1_724_434_780, 0, SAO_PAULO)).toBe("23/08/2024, 14:39");
  expect(describePoint(Date.parse("2024-07-01T03:00:00Z") / 1000, 7 * DAY, SAO_PAULO)).toBe("01/07/2024 – 07/07/2024");
  expect(describePoint(Date.parse("2024-08-23T17:00:00Z") / 1000, 3600, SAO_PAULO)).toBe("23/08/2024, 14:00 – 15:00");
});

test("zonedDate() gives the wall-clock fields of a moment in a zone, as uPlot's tzDate wants", () => {
  const date = zonedDate(1_724_434_780.25, SAO_PAULO);
  expect([date.getFullYear(), date.getMonth(), date.getDate(), date.getHours(), date.getMinutes(), date.getSeconds(), date.getMilliseconds()]).toEqual([
    2024, 7, 23, 14, 39, 40, 250,
  ]);
  expect(zonedDate(Date.parse("2024-01-01T03:00:00Z") / 1000, SAO_PAULO).getHours()).toBe(0);
});
