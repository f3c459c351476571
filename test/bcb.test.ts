import { describe, expect, test } from "bun:test";
import * as v from "valibot";
import {
  BcbError,
  type BcbErrorCode,
  type BcbOptions,
  type BcbRetryInfo,
  brasiliaInstant,
  bulletinOf,
  DEFAULT_BCB_URL,
  fetchPtax,
  fetchPtaxHistory,
  loadBcbConfig,
  olindaErrorMessage,
  parsePtaxPeriod,
  planPtaxYears,
  type PtaxProgress,
  ptaxPeriodUrl,
  ptaxYearChunks,
  readJsonKeepingNumbers,
} from "../lib/bcb.ts";
import { CotacaoError } from "../lib/errors.ts";
import { OfficialRateSchema } from "../lib/official.ts";
import { delay, loadPtaxSeries, reset, sequence, status } from "./support/fake_awesomeapi.ts";
import {
  bcbFixtureBytes,
  olindaHtml,
  olindaXml,
  PERIOD_PATH,
  periodSeries,
  ptaxBulletins,
  rawJson,
  readPeriodRequest,
  replayBcb,
  startFakeOlinda,
  unknownCurrency,
} from "./support/fake_olinda.ts";
import { rejected } from "./support/thrown.ts";
import { useTestTimeout } from "./support/timeout.ts";

useTestTimeout();

const FIVE_BULLETINS = "ptax_CotacaoMoedaDia_EUR_2018-03-05.json";
const EMPTY_DAY = "ptax_CotacaoMoedaDia_empty-day.json";
const PERIOD_TRIMMED = "ptax_CotacaoMoedaPeriodo_USD_2026-07-29_select_trimmed.json";
const DAY_2018_03_05 = { from: "2018-03-05", to: "2018-03-05" };
const fixtureText = (name: string) => new TextDecoder().decode(bcbFixtureBytes(name));

/** Options for the fake: no real waiting (delays recorded), jitter at its midpoint. */
function fakeOptions(baseUrl: string, extra: BcbOptions = {}) {
  const sleeps: number[] = [];
  const retries: BcbRetryInfo[] = [];
  const options: BcbOptions = {
    baseUrl,
    timeoutMs: 2_000,
    sleep: async (ms: number) => {
      sleeps.push(ms);
    },
    random: () => 0.5,
    onRetry: (info) => retries.push(info),
    ...extra,
  };
  return { options, sleeps, retries };
}

async function failure(promise: Promise<unknown>, code: BcbErrorCode): Promise<BcbError> {
  const error = await rejected(promise, BcbError, code);
  // One line, naming BCB.
  expect(error.message).not.toContain("\n");
  expect(error.message).toContain("BCB");
  return error;
}

function thrown(fn: () => unknown): CotacaoError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(CotacaoError);
    return error as CotacaoError;
  }
  throw new Error("expected an error, but it returned");
}

/** A CotacaoMoedaPeriodo answer holding `records` (raw JSON text of each). */
const periodAnswer = (...records: string[]) => `{"@odata.context":"https://was-p/olinda/servico/PTAX/versao/v1/odata$metadata#_CotacaoMoedaPeriodo","value":[${records.join(",")}]}`;

// ---------------------------------------------------------------------------------------------

describe("loadBcbConfig", () => {
  test("BCB_URL unset or empty is Olinda's PTAX service; set, its trailing slash is dropped", () => {
    expect(loadBcbConfig({})).toEqual({ baseUrl: DEFAULT_BCB_URL, official: true });
    expect(loadBcbConfig({ BCB_URL: " " })).toMatchObject({ baseUrl: "https://olinda.bcb.gov.br/olinda/servico/PTAX/versao/v1/odata" });
    expect(loadBcbConfig({ BCB_URL: "http://127.0.0.1:9000/odata/" })).toMatchObject({ baseUrl: "http://127.0.0.1:9000/odata" });
  });

  test("COTACAO_OFFICIAL is on unless off (any case); anything else fails in one line naming it", () => {
    expect(loadBcbConfig({ COTACAO_OFFICIAL: "" }).official).toBe(true);
    expect(loadBcbConfig({ COTACAO_OFFICIAL: "on" }).official).toBe(true);
    expect(loadBcbConfig({ COTACAO_OFFICIAL: " OFF " }).official).toBe(false);
    const error = thrown(() => loadBcbConfig({ COTACAO_OFFICIAL: "no" }));
    expect(error.code).toBe("CONFIG");
    expect(error.message).toBe('Cannot start: COTACAO_OFFICIAL must be on or off, got "no"');
  });

  test("a BCB_URL that is not http(s), or carries a query or a password, fails in one line naming it, without echoing it", () => {
    for (const url of ["ftp://olinda.bcb.gov.br", "olinda.bcb.gov.br", "https://x/?a=1", "https://me:s3cr3t-pass@olinda.bcb.gov.br"]) {
      const error = thrown(() => loadBcbConfig({ BCB_URL: url }));
      expect(error.code).toBe("CONFIG");
      expect(error.message).toStartWith("Cannot start: BCB_URL must be an http:// or https:// URL");
      expect(error.message).not.toContain("s3cr3t-pass");
    }
  });
});

// ---------------------------------------------------------------------------------------------

describe("Olinda's quirks, one test each", () => {
  test("dates go in as 'MM-DD-YYYY' in single quotes, with $ and @ not percent-encoded", async () => {
    expect(ptaxPeriodUrl("https://olinda.bcb.gov.br/olinda/servico/PTAX/versao/v1/odata/", "USD", { from: "2024-01-02", to: "2024-12-31" })).toBe(
      "https://olinda.bcb.gov.br/olinda/servico/PTAX/versao/v1/odata/CotacaoMoedaPeriodo(moeda=@moeda,dataInicial=@dataInicial,dataFinalCotacao=@dataFinalCotacao)?@moeda='USD'&@dataInicial='01-02-2024'&@dataFinalCotacao='12-31-2024'&$format=json",
    );
    await using olinda = startFakeOlinda(replayBcb(FIVE_BULLETINS));
    await fetchPtax("EUR", DAY_2018_03_05, fakeOptions(olinda.url).options);
    const sent = olinda.requests[0]!.url;
    expect(decodeURIComponent(sent.pathname)).toBe(PERIOD_PATH);
    // fetch sends the quotes as %27, as a browser does; "@" and "$" go as they are.
    expect(sent.search).toBe("?@moeda=%27EUR%27&@dataInicial=%2703-05-2018%27&@dataFinalCotacao=%2703-05-2018%27&$format=json");
    expect(olinda.requests[0]!.headers.get("accept")).toBe("application/json");
  });

  test("the fake Olinda holds clients to that form: encoded @ or $, unquoted or DD-MM dates are refused", async () => {
    const base = `http://127.0.0.1${PERIOD_PATH}`;
    expect(readPeriodRequest(new URL(`${base}?@moeda='USD'&@dataInicial='03-05-2018'&@dataFinalCotacao='03-06-2018'&$format=json`))).toEqual({ currency: "USD", from: "2018-03-05", to: "2018-03-06" });
    for (const query of [
      "?%40moeda='USD'&@dataInicial='03-05-2018'&@dataFinalCotacao='03-06-2018'&$format=json",
      "?@moeda='USD'&@dataInicial='03-05-2018'&@dataFinalCotacao='03-06-2018'&%24format=json",
      "?@moeda=USD&@dataInicial='03-05-2018'&@dataFinalCotacao='03-06-2018'&$format=json",
      "?@moeda='USD'&@dataInicial=03-05-2018&@dataFinalCotacao='03-06-2018'&$format=json",
      "?@moeda='USD'&@dataInicial='2018-03-05'&@dataFinalCotacao='03-06-2018'&$format=json",
    ]) {
      expect(readPeriodRequest(new URL(`${base}${query}`))).toHaveProperty("refused");
    }
    // And the client passes: a week of the real series through periodSeries().
    await using olinda = startFakeOlinda(periodSeries({ USD: ptaxBulletins(loadPtaxSeries().filter((point) => point.date >= "2024-03-18")) }));
    const rates = await fetchPtax("USD", { from: "2024-03-18", to: "2024-03-22" }, fakeOptions(olinda.url).options);
    // ptax.csv's last five rows, "5,0118" to "4,9891".
    expect(rates.map((rate) => rate.sell)).toEqual(["5.0118", "5.0346", "5.0114", "4.9801", "4.9891"]);
  });

  test("rates are JSON numbers whose digits are kept as written, never through a float", async () => {
    // A float would make these 5.12345678 -> fine, but 0.0300 -> 0.03, 5.12110 -> 5.1211, 1e2 -> 100.
    expect(readJsonKeepingNumbers('{"a":5.12345678,"b":0.0300,"c":[-1.50,2e-3],"s":"9.90 12","t":true,"n":null}')).toEqual({
      a: "5.12345678",
      b: "0.0300",
      c: ["-1.50", "2e-3"],
      s: "9.90 12",
      t: true,
      n: null,
    });
    // The real period answer's trailing zeros stay.
    const trimmed = readJsonKeepingNumbers(fixtureText(PERIOD_TRIMMED)) as { value: { cotacaoCompra: string; cotacaoVenda: string }[] };
    expect(trimmed.value.map((record) => [record.cotacaoCompra, record.cotacaoVenda])).toEqual([
      ["5.12110", "5.12170"],
      ["5.12700", "5.12760"],
    ]);
    // Not JSON stays not JSON.
    expect(() => readJsonKeepingNumbers('{"a":01}')).toThrow(SyntaxError);
    expect(() => readJsonKeepingNumbers('{"a":5.1.2}')).toThrow(SyntaxError);

    await using olinda = startFakeOlinda(
      rawJson(periodAnswer('{"paridadeCompra":1.0000,"paridadeVenda":1.0000,"cotacaoCompra":5.12345678,"cotacaoVenda":0.0300,"dataHoraCotacao":"2024-03-22 13:04:05.1","tipoBoletim":"Fechamento"}')),
    );
    const [rate] = await fetchPtax("USD", { from: "2024-03-22", to: "2024-03-22" }, fakeOptions(olinda.url).options);
    expect(rate).toEqual({ pair: "USD-BRL", publishedAt: "2024-03-22T13:04:05.1-03:00", bulletin: "closing", buy: "5.12345678", sell: "0.0300" });
    expect(v.is(OfficialRateSchema, rate)).toBe(true);
  });

  test("dataHoraCotacao is Brasília wall-clock time with 1 to 6 fractional digits: every digit kept, the offset then in force added", () => {
    // Each length, as the real payloads have them (.46, .732, .534984) and the rest.
    const cases: [string, string][] = [
      ["2024-03-22 13:09:27", "2024-03-22T13:09:27-03:00"],
      ["2024-03-22 13:09:27.1", "2024-03-22T13:09:27.1-03:00"],
      ["2018-03-05 13:05:07.46", "2018-03-05T13:05:07.46-03:00"],
      ["2018-03-05 13:05:07.476", "2018-03-05T13:05:07.476-03:00"],
      ["2020-08-28 13:09:27.1234", "2020-08-28T13:09:27.1234-03:00"],
      ["2020-08-28 13:09:27.12345", "2020-08-28T13:09:27.12345-03:00"],
      ["2026-07-29 13:08:43.534984", "2026-07-29T13:08:43.534984-03:00"],
      // Summer time (-02) before 2019: the 1999 devaluation, and either side of the 2018 switches.
      ["1999-01-13 13:09:00.12", "1999-01-13T13:09:00.12-02:00"],
      ["2018-02-16 13:00:00.5", "2018-02-16T13:00:00.5-02:00"],
      ["2018-02-19 13:00:00.5", "2018-02-19T13:00:00.5-03:00"],
      ["2018-11-05 10:00:00.5", "2018-11-05T10:00:00.5-02:00"],
      // None since 2019.
      ["2019-11-05 13:00:00", "2019-11-05T13:00:00-03:00"],
      // The hour that never was (clocks went 00:00 -> 01:00): the offset before; the hour that came twice: summer time's.
      ["2018-11-04 00:30:00", "2018-11-04T00:30:00-03:00"],
      ["2018-02-17 23:30:00", "2018-02-17T23:30:00-02:00"],
    ];
    for (const [wallClock, instant] of cases) expect(`${wallClock} -> ${brasiliaInstant(wallClock)}`).toBe(`${wallClock} -> ${instant}`);
    // Each names the instant it says (a Date keeps milliseconds).
    expect(new Date(brasiliaInstant("1999-01-13 13:09:00.12")!).toISOString()).toBe("1999-01-13T15:09:00.120Z");
    for (const bad of ["2018-02-30 10:00:00", "2018-03-05T10:00:00", "2018-03-05 10:00:00.1234567", "2018-03-05 24:00:00", "2018-03-05 10:00", ""]) {
      expect(brasiliaInstant(bad)).toBeUndefined();
    }
  });

  test("the closing bulletin is 'Fechamento' in the period endpoints and 'Fechamento PTAX' in the day ones; anything else fails", async () => {
    expect(bulletinOf("Abertura")).toBe("opening");
    expect(bulletinOf("Intermediário")).toBe("intermediate");
    expect(bulletinOf("Intermedia\u0301rio")).toBe("intermediate"); // decomposed accent
    expect(bulletinOf("Fechamento")).toBe("closing");
    expect(bulletinOf("Fechamento PTAX")).toBe("closing");
    expect(bulletinOf("Extra")).toBeUndefined();
    // The real period answer (its $select left tipoBoletim out; ours does not), with the type Olinda gives there.
    const period = fixtureText(PERIOD_TRIMMED).replaceAll(/("dataHoraCotacao":"[^"]+")/g, '$1,"tipoBoletim":"Fechamento"');
    expect(parsePtaxPeriod(period, "USD").map((rate) => [rate.bulletin, rate.publishedAt, rate.buy])).toEqual([
      ["closing", "2026-07-29T13:08:43.345891-03:00", "5.12700"],
      ["closing", "2026-07-29T13:08:43.534984-03:00", "5.12110"],
    ]);
    await using olinda = startFakeOlinda(rawJson(period.replace('"tipoBoletim":"Fechamento"', '"tipoBoletim":"Extra"')));
    const error = await failure(fetchPtax("USD", { from: "2026-07-29", to: "2026-07-29" }, fakeOptions(olinda.url).options), "INVALID_PAYLOAD");
    expect(error.message).toBe(
      `Cannot read BCB's answer for the USD PTAX bulletins from 2026-07-29 to 2026-07-29: record 0 tipoBoletim is "Extra", expected one of "Abertura", "Intermediário", "Fechamento", "Fechamento PTAX", nothing of this answer was used; try again later`,
    );
    expect(error.attempts).toBe(1);
  });

  test("a weekend or holiday answers 200 with \"value\": [] : no bulletins, not an error, not retried", async () => {
    await using olinda = startFakeOlinda(replayBcb(EMPTY_DAY));
    const { options, retries } = fakeOptions(olinda.url);
    expect(await fetchPtax("USD", { from: "2024-12-25", to: "2024-12-25" }, options)).toEqual([]);
    expect(olinda.count()).toBe(1);
    expect(retries).toEqual([]);
  });

  test("an unknown currency answers HTTP 500 with JSON in /* */: one line naming BCB and the currency, not retried", async () => {
    expect(olindaErrorMessage(fixtureText("ptax_error_500_body_as-in-fixture.txt"))).toBe("Erro desconhecido");
    expect(olindaErrorMessage('{"codigo":500}')).toBeUndefined();
    await using olinda = startFakeOlinda(unknownCurrency());
    const { options, retries } = fakeOptions(olinda.url);
    const error = await failure(fetchPtax("XYZ", DAY_2018_03_05, options), "UNKNOWN_CURRENCY");
    expect(error.message).toBe(
      `Cannot fetch the XYZ PTAX bulletins from 2018-03-05 to 2018-03-05 from BCB (${new URL(olinda.url).host}): BCB answered HTTP 500 "Erro desconhecido": it does not publish PTAX for "XYZ" (it does for USD, EUR, GBP, JPY, CHF, CAD, AUD, DKK, NOK, SEK), check the pair`,
    );
    expect(error.status).toBe(500);
    expect(error.attempts).toBe(1);
    expect(retries).toEqual([]);
  });

  test("the same 500 for a currency PTAX publishes is a passing failure: retried, then one line naming BCB", async () => {
    await using olinda = startFakeOlinda(unknownCurrency());
    const { options, retries } = fakeOptions(olinda.url, { retries: 2 });
    const error = await failure(fetchPtax("USD", DAY_2018_03_05, options), "HTTP");
    expect(error.message).toEndWith(`BCB answered HTTP 500 "Erro desconhecido", try again later (gave up after 3 attempts)`);
    expect(error.attempts).toBe(3);
    expect(retries.length).toBe(2);
  });

  test("an HTML outage page: one line naming BCB, retried while the status says transient, nothing returned", async () => {
    await using olinda = startFakeOlinda(olindaHtml(503));
    const { options, sleeps } = fakeOptions(olinda.url, { retries: 2 });
    const error = await failure(fetchPtax("USD", DAY_2018_03_05, options), "NOT_JSON");
    expect(error.message).toBe(
      `Cannot fetch the USD PTAX bulletins from 2018-03-05 to 2018-03-05 from BCB (${new URL(olinda.url).host}): BCB answered HTTP 503 with an HTML page, not JSON (an outage page), try again later (gave up after 3 attempts)`,
    );
    expect(olinda.count()).toBe(3);
    expect(sleeps).toEqual([375, 750]);
  });

  test("an XML outage page: one line naming BCB, nothing returned; with a 200 it is not retried", async () => {
    await using olinda = startFakeOlinda(olindaXml(200));
    const { options } = fakeOptions(olinda.url);
    const error = await failure(fetchPtax("EUR", DAY_2018_03_05, options), "NOT_JSON");
    expect(error.message).toEndWith("BCB answered HTTP 200 with an XML document, not JSON (an outage page), try again later");
    expect(olinda.count()).toBe(1);
  });

  test("an XML page with a 502, then the real answer: the retry gets the five bulletins", async () => {
    await using olinda = startFakeOlinda(sequence(olindaXml(502), replayBcb(FIVE_BULLETINS)));
    const { options, retries } = fakeOptions(olinda.url);
    expect(await fetchPtax("EUR", DAY_2018_03_05, options)).toHaveLength(5);
    expect(retries.map((retry) => retry.error.code)).toEqual(["NOT_JSON"]);
  });
});

// ---------------------------------------------------------------------------------------------

describe("a day with five bulletins (EUR, 2018-03-05, the real payload)", () => {
  test("five OfficialRates with the right kinds and São Paulo times, digits exact, oldest first", async () => {
    await using olinda = startFakeOlinda(replayBcb(FIVE_BULLETINS));
    const rates = await fetchPtax("EUR", DAY_2018_03_05, fakeOptions(olinda.url).options);
    expect(rates).toEqual([
      { pair: "EUR-BRL", publishedAt: "2018-03-05T10:02:47.732-03:00", bulletin: "opening", buy: "4.0072", sell: "4.0092" },
      { pair: "EUR-BRL", publishedAt: "2018-03-05T11:05:54.755-03:00", bulletin: "intermediate", buy: "4.0098", sell: "4.0118" },
      { pair: "EUR-BRL", publishedAt: "2018-03-05T12:03:31.119-03:00", bulletin: "intermediate", buy: "4.0153", sell: "4.0164" },
      { pair: "EUR-BRL", publishedAt: "2018-03-05T13:05:07.46-03:00", bulletin: "intermediate", buy: "4.0117", sell: "4.0134" },
      { pair: "EUR-BRL", publishedAt: "2018-03-05T13:05:07.476-03:00", bulletin: "closing", buy: "4.0156", sell: "4.0174" },
    ]);
    for (const rate of rates) expect(v.is(OfficialRateSchema, rate)).toBe(true);
  });

  test("bulletins of days outside the range asked for are left out (chunks never overlap)", async () => {
    await using olinda = startFakeOlinda(replayBcb(FIVE_BULLETINS));
    expect(await fetchPtax("EUR", { from: "2018-03-06", to: "2018-03-09" }, fakeOptions(olinda.url).options)).toEqual([]);
  });

  test("records at the same instant: one row (official_rates' key), the first, unless the closing came second", () => {
    const at = (type: string, buy: string, time = "13:05:07.476") => `{"cotacaoCompra":${buy},"cotacaoVenda":4.0174,"dataHoraCotacao":"2018-03-05 ${time}","tipoBoletim":"${type}"}`;
    const kept = (text: string) => parsePtaxPeriod(text, "EUR").map((rate) => `${rate.bulletin} ${rate.buy}`);
    expect(kept(periodAnswer(at("Intermediário", "4.0117"), at("Fechamento", "4.0156")))).toEqual(["closing 4.0156"]);
    expect(kept(periodAnswer(at("Fechamento", "4.0156"), at("Fechamento", "4.0999")))).toEqual(["closing 4.0156"]);
    // The same instant written with more digits is the same instant; later answers listed out of order are sorted.
    expect(kept(periodAnswer(at("Fechamento", "4.0156", "13:05:07.4760"), at("Intermediário", "4.0117", "13:05:07.476")))).toEqual(["closing 4.0156"]);
    expect(kept(periodAnswer(at("Fechamento", "4.0156"), at("Abertura", "4.0072", "10:02:47.732")))).toEqual(["opening 4.0072", "closing 4.0156"]);
  });

  test("a body in Latin-1 (not valid UTF-8) still reads 'Intermediário'", () => {
    const text = fixtureText(FIVE_BULLETINS);
    const latin1 = new Uint8Array([...text].map((char) => char.charCodeAt(0)));
    expect(latin1.length).toBe(text.length);
    // What the client does with the bytes (lib/bcb.ts decodeBody): the same as reading them as Latin-1.
    expect(parsePtaxPeriod(new TextDecoder("latin1").decode(latin1), "EUR").map((rate) => rate.bulletin)).toEqual(["opening", "intermediate", "intermediate", "intermediate", "closing"]);
  });
});

// ---------------------------------------------------------------------------------------------

describe("bad payloads fail the whole answer in one line", () => {
  const record = (fields: string) => `{"cotacaoCompra":5.1,"cotacaoVenda":5.2,"dataHoraCotacao":"2024-03-22 13:04:05.1","tipoBoletim":"Fechamento",${fields}}`;
  const cases: [string, string, string][] = [
    ["a rate as a string of letters", periodAnswer(record('"cotacaoCompra":"abc"')), 'record 0 cotacaoCompra is "abc", expected a positive decimal'],
    ["a negative rate", periodAnswer(record('"cotacaoVenda":-5.2')), 'record 0 cotacaoVenda is "-5.2", expected a positive decimal'],
    ["a zero rate", periodAnswer(record('"cotacaoVenda":0.0000')), 'record 0 cotacaoVenda is "0.0000", expected a positive decimal'],
    ["an exponent", periodAnswer(record('"cotacaoVenda":5e0')), 'record 0 cotacaoVenda is "5e0", expected a positive decimal'],
    ["a time with a zone", periodAnswer(record('"dataHoraCotacao":"2024-03-22T13:04:05Z"')), 'record 0 dataHoraCotacao is "2024-03-22T13:04:05Z", expected a time like "2020-08-28 13:09:27.123"'],
    ["a missing rate", periodAnswer('{"cotacaoVenda":5.2,"dataHoraCotacao":"2024-03-22 13:04:05.1","tipoBoletim":"Fechamento"}'), "record 0 cotacaoCompra is missing, expected a rate as a JSON number"],
    ["no value list", '{"@odata.context":"x"}', 'expected an object with a "value" list, got an object'],
    ["a list", "[1]", 'expected an object with a "value" list, got an array'],
  ];
  for (const [name, body, message] of cases) {
    test(name, async () => {
      await using olinda = startFakeOlinda(rawJson(body));
      const error = await failure(fetchPtax("USD", { from: "2024-03-22", to: "2024-03-22" }, fakeOptions(olinda.url).options), "INVALID_PAYLOAD");
      expect(error.message).toBe(`Cannot read BCB's answer for the USD PTAX bulletins from 2024-03-22 to 2024-03-22: ${message}, nothing of this answer was used; try again later`);
    });
  }

  test("JSON cut short is NOT_JSON, not retried", async () => {
    const text = fixtureText(FIVE_BULLETINS);
    await using olinda = startFakeOlinda(rawJson(text.slice(0, 200)));
    const error = await failure(fetchPtax("EUR", DAY_2018_03_05, fakeOptions(olinda.url).options), "NOT_JSON");
    expect(error.message).toStartWith("Cannot read BCB's answer for the EUR PTAX bulletins from 2018-03-05 to 2018-03-05: it is not JSON (");
    expect(olinda.count()).toBe(1);
  });

  test("an answer that names a next page is TRUNCATED, not taken as complete", async () => {
    await using olinda = startFakeOlinda(rawJson('{"value":[],"@odata.nextLink":"https://olinda/next"}'));
    const error = await failure(fetchPtax("USD", { from: "2024-03-22", to: "2024-03-22" }, fakeOptions(olinda.url).options), "TRUNCATED");
    expect(error.message).toContain("ask for a shorter range");
  });

  test("bad arguments fail before any request", async () => {
    await using olinda = startFakeOlinda(replayBcb(EMPTY_DAY));
    const { options } = fakeOptions(olinda.url);
    const cases: [string, { from: string; to: string }, string][] = [
      ["usd", DAY_2018_03_05, 'the currency must be three capital letters like "USD", got "usd"'],
      ["USD'&$x=1", DAY_2018_03_05, "the currency must be three capital letters"],
      ["USD", { from: "2018-02-30", to: "2018-03-05" }, `'from' must be a date like 2024-08-23, got "2018-02-30"`],
      ["USD", { from: "2018-03-06", to: "2018-03-05" }, "'from' (2018-03-06) must not be after 'to' (2018-03-05)"],
    ];
    for (const [currency, range, message] of cases) {
      const error = await failure(fetchPtax(currency, range, options), "USAGE");
      expect(error.message).toContain(message);
    }
    expect(olinda.count()).toBe(0);
  });
});

// ---------------------------------------------------------------------------------------------

describe("transport: timeout, bounded retries, size cap", () => {
  test("a server slower than the timeout: TIMEOUT naming BCB, retried, bounded", async () => {
    await using olinda = startFakeOlinda(delay(3_000, replayBcb(FIVE_BULLETINS)));
    const { options, retries } = fakeOptions(olinda.url, { timeoutMs: 100, retries: 1 });
    const started = performance.now();
    const error = await failure(fetchPtax("EUR", DAY_2018_03_05, options), "TIMEOUT");
    expect(error.message).toContain("no complete answer within 100 ms");
    expect(error.message).toEndWith("(gave up after 2 attempts)");
    expect(retries.map((retry) => retry.error.code)).toEqual(["TIMEOUT"]);
    expect(performance.now() - started).toBeLessThan(2_500);
  });

  test("retries are bounded: a 503 every time is retries + 1 requests, with a doubling backoff", async () => {
    await using olinda = startFakeOlinda(status(503));
    const { options, sleeps } = fakeOptions(olinda.url);
    const error = await failure(fetchPtax("USD", DAY_2018_03_05, options), "HTTP");
    expect(error.message).toEndWith("BCB answered HTTP 503, the service is failing, try again later (gave up after 4 attempts)");
    expect(olinda.count()).toBe(4);
    // 500 ms doubling, jitter at its midpoint (3/4 of each ceiling).
    expect(sleeps).toEqual([375, 750, 1500]);
  });

  test("429 with Retry-After waits what it asks; a 400 is not retried", async () => {
    await using olinda = startFakeOlinda(sequence(status(429, { "retry-after": "7" }), replayBcb(EMPTY_DAY)));
    const { options, sleeps } = fakeOptions(olinda.url);
    expect(await fetchPtax("USD", DAY_2018_03_05, options)).toEqual([]);
    expect(sleeps).toEqual([7_000]);
    await using refusing = startFakeOlinda(status(400));
    const error = await failure(fetchPtax("USD", DAY_2018_03_05, fakeOptions(refusing.url).options), "HTTP");
    expect(error.message).toEndWith("BCB answered HTTP 400, check BCB_URL");
    expect(refusing.count()).toBe(1);
  });

  test("a connection reset is NETWORK, retried, and a later answer wins", async () => {
    await using olinda = startFakeOlinda(sequence(reset(), replayBcb(FIVE_BULLETINS)));
    const { options, retries } = fakeOptions(olinda.url);
    expect(await fetchPtax("EUR", DAY_2018_03_05, options)).toHaveLength(5);
    expect(retries.map((retry) => retry.error.code)).toEqual(["NETWORK"]);
  });

  test("a body over the size cap is TOO_LARGE, not retried", async () => {
    await using olinda = startFakeOlinda(replayBcb(FIVE_BULLETINS));
    const error = await failure(fetchPtax("EUR", DAY_2018_03_05, fakeOptions(olinda.url, { maxBodyBytes: 100 }).options), "TOO_LARGE");
    expect(error.message).toContain("larger than 100 bytes");
    expect(olinda.count()).toBe(1);
  });

  test("a streamed body (no length declared) past the cap is TOO_LARGE; one that stalls midway is TIMEOUT", async () => {
    const chunk = new TextEncoder().encode(" ".repeat(1024));
    const endless = () => new Response(new ReadableStream({ pull: (controller) => controller.enqueue(chunk) }), { headers: { "content-type": "application/json" } });
    await using flooding = startFakeOlinda(endless);
    const error = await failure(fetchPtax("EUR", DAY_2018_03_05, fakeOptions(flooding.url, { maxBodyBytes: 64 * 1024 }).options), "TOO_LARGE");
    expect(error.attempts).toBe(1);
    const stalling = () =>
      new Response(
        new ReadableStream({
          start: (controller) => controller.enqueue(new TextEncoder().encode('{"value":[')),
          pull: () => new Promise(() => {}),
        }),
        { headers: { "content-type": "application/json" } },
      );
    await using stalled = startFakeOlinda(stalling);
    const timeout = await failure(fetchPtax("EUR", DAY_2018_03_05, fakeOptions(stalled.url, { timeoutMs: 150, retries: 0 }).options), "TIMEOUT");
    expect(timeout.message).toContain("no complete answer within 150 ms");
  });

  test("nothing listening: NETWORK naming BCB and its host", async () => {
    const olinda = startFakeOlinda();
    const url = olinda.url;
    await olinda.stop();
    const error = await failure(fetchPtax("USD", DAY_2018_03_05, fakeOptions(url, { retries: 0 }).options), "NETWORK");
    expect(error.message).toStartWith(`Cannot fetch the USD PTAX bulletins from 2018-03-05 to 2018-03-05 from BCB (${new URL(url).host}): network error (`);
  });
});

// ---------------------------------------------------------------------------------------------

describe("a long range, year by year", () => {
  test("planPtaxYears clips the first and last years and leaves no gap", () => {
    expect(planPtaxYears({ from: "1994-07-01", to: "1996-03-22" })).toEqual([
      { from: "1994-07-01", to: "1994-12-31" },
      { from: "1995-01-01", to: "1995-12-31" },
      { from: "1996-01-01", to: "1996-03-22" },
    ]);
    expect(planPtaxYears({ from: "2024-03-22", to: "2024-03-22" })).toEqual([{ from: "2024-03-22", to: "2024-03-22" }]);
  });

  test("1994-07-01..2024-03-22 from ptax.csv over the fake Olinda: every business day, digit for digit, one request a year, progress told", async () => {
    const points = loadPtaxSeries();
    const bulletins = ptaxBulletins(points);
    await using olinda = startFakeOlinda(periodSeries({ USD: bulletins }));
    const progress: PtaxProgress[] = [];
    const rates = await fetchPtaxHistory("USD", { from: "1994-07-01", to: "2024-03-22" }, { ...fakeOptions(olinda.url).options, onProgress: (p) => progress.push(p) });
    expect(rates.length).toBe(points.length);
    expect(rates.length).toBeGreaterThan(7_400);
    const mismatches = rates.flatMap((rate, index) => {
      const point = points[index]!;
      const bulletin = bulletins[index]!;
      const expected = { pair: "USD-BRL", publishedAt: `${point.date}T${bulletin.time}${rate.publishedAt.slice(-6)}`, bulletin: "closing", buy: bulletin.buy, sell: point.bid };
      return JSON.stringify(rate) === JSON.stringify(expected) ? [] : [`${point.date}: ${JSON.stringify(rate)}`];
    });
    expect(mismatches).toEqual([]);
    // Trailing zeros survived (0.9000 on the real's first day), as did every fractional-second length.
    expect(rates[0]).toMatchObject({ publishedAt: "1994-07-01T13:09:27.0-03:00", sell: "0.9000", buy: "0.8994" });
    expect(new Set(rates.map((rate) => /\.(\d+)-/.exec(rate.publishedAt)?.[1]?.length)).size).toBe(6);
    // Summer time's offset where it applied (1999 devaluation: January, -02), none after 2019.
    expect(rates.find((rate) => rate.publishedAt.startsWith("1999-01-13"))?.publishedAt).toEndWith("-02:00");
    expect(rates.filter((rate) => rate.publishedAt >= "2019-06" && !rate.publishedAt.endsWith("-03:00"))).toEqual([]);
    expect(olinda.count()).toBe(31);
    expect(progress.length).toBe(31);
    expect(progress[0]).toEqual({ pair: "USD-BRL", done: 1, total: 31, from: "1994-07-01", to: "1994-12-31", rates: rates.filter((rate) => rate.publishedAt < "1995").length });
    expect(progress.at(-1)).toMatchObject({ done: 31, total: 31, from: "2024-01-01", to: "2024-03-22" });
  });

  test("with concurrency 4, years are fetched ahead (4 requests at once at most) and still come in order", async () => {
    const bulletins = ptaxBulletins(loadPtaxSeries().filter((point) => point.date >= "2010-01-01"));
    const series = periodSeries({ USD: bulletins });
    let inFlight = 0;
    let most = 0;
    // The first three answers wait for the fourth request (a second at most, for a client that never sends it).
    const fourth = Promise.withResolvers<void>();
    const gate = Promise.race([fourth.promise, Bun.sleep(1_000)]);
    await using olinda = startFakeOlinda(async (request, context) => {
      most = Math.max(most, ++inFlight);
      if (context.count === 4) fourth.resolve();
      if (context.count <= 4) await gate;
      inFlight--;
      return series(request, context);
    });
    const froms: string[] = [];
    let total = 0;
    for await (const chunk of ptaxYearChunks("USD", { from: "2010-01-01", to: "2024-03-22" }, { ...fakeOptions(olinda.url).options, concurrency: 4 })) {
      froms.push(chunk.from);
      total += chunk.rates.length;
    }
    expect(froms).toEqual(planPtaxYears({ from: "2010-01-01", to: "2024-03-22" }).map((year) => year.from));
    expect(total).toBe(bulletins.length);
    expect(most).toBe(4);
    expect(olinda.count()).toBe(15);
  });

  test("the chunks come oldest first and a failure midway leaves the years before it with the caller", async () => {
    const bulletins = ptaxBulletins(loadPtaxSeries().filter((point) => point.date >= "2020-01-01"));
    const series = periodSeries({ USD: bulletins });
    // The third request (2022) fails for good.
    await using olinda = startFakeOlinda((request, context) => (context.count === 3 ? status(400)(request, context) : series(request, context)));
    const years: string[] = [];
    const error = await failure(
      (async () => {
        for await (const chunk of ptaxYearChunks("USD", { from: "2020-01-01", to: "2023-12-31" }, fakeOptions(olinda.url).options)) {
          years.push(`${chunk.from}:${chunk.rates.length}`);
        }
      })(),
      "HTTP",
    );
    expect(error.message).toContain("the USD PTAX bulletins from 2022-01-01 to 2022-12-31");
    expect(years).toEqual([`2020-01-01:${bulletins.filter((b) => b.date < "2021").length}`, `2021-01-01:${bulletins.filter((b) => b.date >= "2021" && b.date < "2022").length}`]);
  });
});
