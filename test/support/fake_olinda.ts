/**
 * A fake BCB Olinda (PTAX OData) on a local port, for tests and benchmarks: it serves
 * `CotacaoMoedaPeriodo(moeda=@moeda,dataInicial=@dataInicial,dataFinalCotacao=@dataFinalCotacao)`
 * from an in-memory series of bulletins, replays the real captures in test/fixtures/bcb, and
 * scripts failures (Olinda's 500 with a `/* *\/` body, HTML and XML outage pages; hangs, resets and
 * sequences come from fake_awesomeapi.ts, whose server it runs on: loopback only).
 *
 *   const olinda = startFakeOlinda(periodSeries({ USD: ptaxBulletins(loadPtaxSeries()) }));
 *   await fetchPtax("USD", { from: "2024-03-18", to: "2024-03-22" }, { baseUrl: olinda.url });
 *   await olinda.stop();
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { type DailyPoint, type FakeAwesomeApi, type Reply, type ReplyInit, startFakeAwesomeApi } from "./fake_awesomeapi.ts";

/** The real payloads (provenance in test/fixtures/bcb/README.md). */
export const BCB_FIXTURES_DIR = join(import.meta.dir, "../fixtures/bcb");
/** The real answer to an unknown currency (HTTP 500): JSON wrapped in a comment. */
export const UNKNOWN_CURRENCY_FIXTURE = "ptax_error_500_body_as-in-fixture.txt";
/** The path part every PTAX period request names, after the base URL. */
export const PERIOD_PATH = "/CotacaoMoedaPeriodo(moeda=@moeda,dataInicial=@dataInicial,dataFinalCotacao=@dataFinalCotacao)";

const JSON_HEADERS = { "content-type": "application/json;charset=UTF-8;odata.metadata=minimal", "odata-version": "4.0" };
const CONTEXT = "https://was-p.bcnet.bcb.gov.br/olinda/servico/PTAX/versao/v1/odata$metadata#_CotacaoMoedaPeriodo";
const OLINDA_DATE = /^'(\d{2})-(\d{2})-(\d{4})'$/;
/** The closing bulletin's time in the series: 13:09:27 Brasília time (the fraction varies, see ptaxBulletins()). */
export const SERIES_CLOSING_TIME = "13:09:27";
/** buy = sell - this, in units of 0.0001 (PTAX's spread is a few ten-thousandths). */
export const SERIES_SPREAD_UNITS = 6;

/** A running fake; `await using olinda = startFakeOlinda(...)` stops it at the end of the scope. */
export type FakeOlinda = FakeAwesomeApi;

/** Starts the fake on a free port of 127.0.0.1; without a handler every currency is unknown (Olinda's 500). */
export function startFakeOlinda(handler: Reply = unknownCurrency()): FakeOlinda {
  return startFakeAwesomeApi(handler);
}

// ---------------------------------------------------------------------------------------------
// Fixtures and failures

/** The exact bytes of a fixture file. */
export function bcbFixtureBytes(name: string): Uint8Array<ArrayBuffer> {
  const file = readFileSync(join(BCB_FIXTURES_DIR, name));
  return new Uint8Array(file.buffer.slice(file.byteOffset, file.byteOffset + file.byteLength));
}

/** A fixture's bytes, unchanged, with Olinda's headers. */
export function replayBcb(name: string, init: ReplyInit = {}): Reply {
  const bytes = bcbFixtureBytes(name);
  return () => new Response(bytes, { status: init.status ?? 200, headers: { ...JSON_HEADERS, ...init.headers } });
}

/** `text` as the body, with Olinda's JSON headers (for payloads a test writes itself). */
export function rawJson(text: string, init: ReplyInit = {}): Reply {
  return () => new Response(text, { status: init.status ?? 200, headers: { ...JSON_HEADERS, ...init.headers } });
}

/** The real answer to an unknown currency: HTTP 500, `/*{"codigo":500,"mensagem":"Erro desconhecido"}*\/`. */
export function unknownCurrency(): Reply {
  return replayBcb(UNKNOWN_CURRENCY_FIXTURE, { status: 500 });
}

/** An outage as a web server's HTML error page, with `code`. */
export function olindaHtml(code: number): Reply {
  const page = `<!DOCTYPE HTML PUBLIC "-//IETF//DTD HTML 2.0//EN">\n<html><head><title>${code} Service Unavailable</title></head><body><h1>Service Unavailable</h1><p>The server is temporarily unable to service your request. Please try again later.</p></body></html>\n`;
  return () => new Response(page, { status: code, headers: { "content-type": "text/html; charset=iso-8859-1" } });
}

/** An outage as an XML document (the application server's error), with `code`. */
export function olindaXml(code: number): Reply {
  const doc = `<?xml version="1.0" encoding="UTF-8"?>\n<error xmlns="http://docs.oasis-open.org/odata/ns/metadata"><code>${code}</code><message>Service temporarily unavailable</message></error>\n`;
  return () => new Response(doc, { status: code, headers: { "content-type": "application/xml;charset=UTF-8" } });
}

// ---------------------------------------------------------------------------------------------
// Series

/** One bulletin of the fake's series: a Brasília date and wall-clock time, its type as Olinda names it, exact digits. */
export interface FakeBulletin {
  /** "YYYY-MM-DD" */
  date: string;
  /** "HH:MM:SS" or with 1 to 6 fractional digits, Brasília wall-clock time. */
  time: string;
  tipoBoletim: "Abertura" | "Intermediário" | "Fechamento";
  buy: string;
  sell: string;
}

/** "4.9891" minus `units` ten-thousandths, exactly ("0.9000" - 6 -> "0.8994"). */
function minusUnits(decimal: string, units: number): string {
  const [whole = "0", fraction = ""] = decimal.split(".");
  const scale = Math.max(4, fraction.length);
  const scaled = BigInt(whole + fraction.padEnd(scale, "0")) - BigInt(units) * 10n ** BigInt(scale - 4);
  const text = scaled.toString().padStart(scale + 1, "0");
  return `${text.slice(0, -scale)}.${text.slice(-scale)}`;
}

/**
 * A daily series (loadPtaxSeries()'s sell rates) as PTAX closes: one `Fechamento` per point at
 * SERIES_CLOSING_TIME Brasília time, with 1 to 6 fractional digits of the second (the day's index
 * picks how many, so every length occurs), sell = the point's rate as written (trailing zeros
 * kept), buy = sell - 0.0006.
 */
export function ptaxBulletins(points: readonly DailyPoint[]): FakeBulletin[] {
  return points.map((point, index) => {
    const digits = 1 + (index % 6);
    const fraction = String((index * 7919) % 10 ** digits).padStart(digits, "0");
    return { date: point.date, time: `${SERIES_CLOSING_TIME}.${fraction}`, tipoBoletim: "Fechamento", buy: minusUnits(point.bid, SERIES_SPREAD_UNITS), sell: point.bid };
  });
}

/** The record Olinda would send for a bulletin: rates as JSON numbers with the digits as written. */
function recordText(bulletin: FakeBulletin): string {
  return `{"paridadeCompra":1.0000,"paridadeVenda":1.0000,"cotacaoCompra":${bulletin.buy},"cotacaoVenda":${bulletin.sell},"dataHoraCotacao":"${bulletin.date} ${bulletin.time}","tipoBoletim":"${bulletin.tipoBoletim}"}`;
}

/** A period request's parameters, or why Olinda would refuse it. */
export function readPeriodRequest(url: URL, basePath = ""): { currency: string; from: string; to: string } | { refused: string } {
  if (decodeURIComponent(url.pathname) !== `${basePath}${PERIOD_PATH}`) return { refused: `unknown path ${url.pathname}` };
  // The client must write "@" and "$" as they are; quotes may come as %27 (fetch encodes them).
  if (/%40|%24/i.test(url.search)) return { refused: `percent-encoded @ or $ in ${url.search}` };
  if (url.searchParams.get("$format") !== "json") return { refused: "no $format=json" };
  const moeda = /^'([A-Z]{3})'$/.exec(url.searchParams.get("@moeda") ?? "");
  const from = OLINDA_DATE.exec(url.searchParams.get("@dataInicial") ?? "");
  const to = OLINDA_DATE.exec(url.searchParams.get("@dataFinalCotacao") ?? "");
  if (!moeda?.[1] || !from || !to) return { refused: `bad parameters ${url.search}` };
  return { currency: moeda[1], from: `${from[3]}-${from[1]}-${from[2]}`, to: `${to[3]}-${to[1]}-${to[2]}` };
}

/**
 * Serves `CotacaoMoedaPeriodo` from `series` (bulletins by currency) in Olinda's shape: `{"@odata.context":
 * ..., "value": [...]}`, oldest first, the bulletins of days from dataInicial to dataFinalCotacao
 * (both included); `"value": []` for a range without any. A currency not in `series`: Olinda's
 * 500 with the `/* *\/` body. A request not in Olinda's form (path, quotes, encoded `@`/`$`): 400.
 */
export function periodSeries(series: Record<string, readonly FakeBulletin[]>): Reply {
  // Built once, sorted, so that a benchmark's requests cost the fake little CPU time.
  const byCurrency = new Map(
    Object.entries(series).map(([currency, bulletins]) => {
      const sorted = [...bulletins].sort((a, b) => (a.date + a.time < b.date + b.time ? -1 : 1));
      return [currency, { dates: sorted.map((b) => b.date), texts: sorted.map(recordText) }];
    }),
  );
  const missing = unknownCurrency();
  return (request, context) => {
    const asked = readPeriodRequest(context.url);
    if ("refused" in asked) return new Response(`fake Olinda: ${asked.refused}`, { status: 400 });
    const entry = byCurrency.get(asked.currency);
    if (!entry) return missing(request, context);
    let low = 0;
    let high = entry.dates.length;
    while (low < high) {
      const middle = (low + high) >> 1;
      if (entry.dates[middle]! < asked.from) low = middle + 1;
      else high = middle;
    }
    const records: string[] = [];
    for (let index = low; index < entry.dates.length && entry.dates[index]! <= asked.to; index++) records.push(entry.texts[index]!);
    return new Response(`{"@odata.context":"${CONTEXT}","value":[${records.join(",")}]}`, { headers: JSON_HEADERS });
  };
}
