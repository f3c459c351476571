/**
 * bun bench/bcb.ts [--currencies 10] [--runs 3]: the PTAX client (lib/bcb.ts) fetching and parsing
 * 30 years of bulletins (1994-07-01..2024-03-22, ptax.csv's closes as test/support/fake_olinda.ts
 * serves them) for each of `--currencies` currencies, one request per year, from a fake Olinda
 * in its own process (as the real one would not share our CPU time). Prints rows/s for
 *   (a) fetch + parse: fetchPtaxHistory() over HTTP (loopback), one request at a time
 *   (b) the same with 4 years fetched ahead (its `concurrency`)
 *   (c) parse alone: parsePtaxPeriod() on the same answers, already in memory
 * with the load average before and after (the machine is shared).
 */
import { availableParallelism, loadavg } from "node:os";
import * as v from "valibot";
import { fetchPtaxHistory, parsePtaxPeriod, planPtaxYears, ptaxPeriodUrl } from "../lib/bcb.ts";
import { PTAX_CURRENCIES } from "../lib/official.ts";
import { loadPtaxSeries } from "../test/support/fake_awesomeapi.ts";
import { periodSeries, ptaxBulletins, startFakeOlinda } from "../test/support/fake_olinda.ts";
import { readBenchOptions } from "./options.ts";

const RANGE = { from: "1994-07-01", to: "2024-03-22" };
/** Years fetched ahead in (b). */
const AHEAD = 4;
const USAGE = `Usage: bun bench/bcb.ts [--currencies 1-10] [--runs N]

Fetches and parses 30 years of PTAX bulletins per currency from a local fake Olinda; prints rows/s.`;

const Options = v.object({
  currencies: v.pipe(v.string(), v.regex(/^\d+$/, "--currencies must be 1 to 10"), v.transform(Number), v.integer(), v.minValue(1, "--currencies must be 1 to 10"), v.maxValue(10, "--currencies must be 1 to 10")),
  runs: v.pipe(v.string(), v.regex(/^\d+$/, "--runs must be 1 to 20"), v.transform(Number), v.integer(), v.minValue(1, "--runs must be 1 to 20"), v.maxValue(20, "--runs must be 1 to 20")),
  "serve-fake": v.optional(v.string(), ""),
});

async function firstLine(stream: ReadableStream<Uint8Array>): Promise<string> {
  const reader = stream.getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { done, value } = await reader.read();
    if (done) break;
    text += new TextDecoder().decode(value);
  }
  reader.releaseLock();
  return text.split("\n")[0] ?? "";
}

const rate = (rows: number, ms: number) => `${Math.round(rows / (ms / 1000)).toLocaleString("en-US")} rows/s`;

async function measure(currencies: readonly string[], runs: number): Promise<void> {
  const fake = Bun.spawn([process.execPath, import.meta.path, "--serve-fake", "yes", "--currencies", String(currencies.length), "--runs", "1"], { stdout: "pipe", stderr: "inherit" });
  try {
    const baseUrl = await firstLine(fake.stdout);
    if (!baseUrl.startsWith("http://127.0.0.1:")) throw new Error(`the fake Olinda did not start (said ${JSON.stringify(baseUrl)})`);
    const loadBefore = loadavg();
    const fetchTimes: number[] = [];
    const aheadTimes: number[] = [];
    let rows = 0;
    for (let run = 0; run < runs; run++) {
      for (const [concurrency, times] of [[1, fetchTimes], [AHEAD, aheadTimes]] as const) {
        const started = performance.now();
        rows = 0;
        for (const currency of currencies) rows += (await fetchPtaxHistory(currency, RANGE, { baseUrl, concurrency })).length;
        times.push(performance.now() - started);
      }
    }
    // The same answers, in memory: what parsing alone costs.
    const bodies: { currency: string; text: string }[] = [];
    for (const currency of currencies) {
      for (const year of planPtaxYears(RANGE)) bodies.push({ currency, text: await (await fetch(ptaxPeriodUrl(baseUrl, currency, year))).text() });
    }
    const parseTimes: number[] = [];
    for (let run = 0; run < runs; run++) {
      const started = performance.now();
      let parsed = 0;
      for (const { currency, text } of bodies) parsed += parsePtaxPeriod(text, currency).length;
      parseTimes.push(performance.now() - started);
      if (parsed !== rows) throw new Error(`parsing alone gave ${parsed} rows, fetching ${rows}`);
    }
    const best = (times: number[]) => Math.min(...times);
    const bytes = bodies.reduce((sum, body) => sum + body.text.length, 0);
    console.log(`bench/bcb.ts: ${currencies.length} currencies x ${RANGE.from}..${RANGE.to} = ${rows.toLocaleString("en-US")} bulletins, ${planPtaxYears(RANGE).length} requests per currency, ${(bytes / 1e6).toFixed(1)} MB of answers; best of ${runs} runs`);
    console.log(`  (a) fetch + parse over loopback, 1 request at a time: ${best(fetchTimes).toFixed(0)} ms, ${rate(rows, best(fetchTimes))}`);
    console.log(`  (b) the same, ${AHEAD} years fetched ahead:            ${best(aheadTimes).toFixed(0)} ms, ${rate(rows, best(aheadTimes))}`);
    console.log(`  (c) parse alone:                                     ${best(parseTimes).toFixed(0)} ms, ${rate(rows, best(parseTimes))}`);
    console.log(`  load average ${loadBefore.map((n) => n.toFixed(2)).join(" ")} before, ${loadavg().map((n) => n.toFixed(2)).join(" ")} after, on ${availableParallelism()} cores`);
  } finally {
    fake.kill();
    await fake.exited;
  }
}

const options = readBenchOptions(Bun.argv.slice(2), { currencies: "10", runs: "3", "serve-fake": "" }, Options, USAGE, "bench/bcb.ts");
if (typeof options === "number") {
  process.exitCode = options;
} else {
  const currencies = PTAX_CURRENCIES.slice(0, options.currencies);
  if (options["serve-fake"]) {
    // Every currency gets ptax.csv's series: 30 years of one close a business day.
    const bulletins = ptaxBulletins(loadPtaxSeries());
    const olinda = startFakeOlinda(periodSeries(Object.fromEntries(currencies.map((currency) => [currency, bulletins]))));
    console.log(olinda.url);
  } else {
    await measure(currencies, options.runs);
  }
}
