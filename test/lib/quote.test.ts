import { describe, expect, test } from "bun:test";
import * as v from "valibot";
import { PairSchema, parsePairs } from "../../lib/quote.ts";
import { thrown } from "../support/thrown.ts";
import { useTestTimeout } from "../support/timeout.ts";

useTestTimeout();


describe("PairSchema", () => {
  test("takes any case and gives upper case; refuses what is not a pair, quoting it as typed", () => {
    expect(v.parse(PairSchema, " usd-brl ")).toBe("USD-BRL");
    expect(v.parse(PairSchema, "USD-BRLPTAX")).toBe("USD-BRLPTAX");
    for (const bad of ["usd/brl", "USDBRL", "USD-BRL-EUR", "U-BRL", "USD_BRL", "'; drop table quotes; --"]) {
      const result = v.safeParse(PairSchema, bad);
      expect(result.success).toBe(false);
      expect(result.issues?.[0]?.message).toBe(`"${bad}" is not a pair like "USD-BRL"`);
    }
  });
});

describe("parsePairs", () => {
  test("splits, trims and deduplicates pairs", () => {
    expect(parsePairs("USD-BRL,EUR-BRL")).toEqual(["USD-BRL", "EUR-BRL"]);
    expect(parsePairs(" USD-BRL , EUR-BRL,USD-BRL,")).toEqual(["USD-BRL", "EUR-BRL"]);
    expect(parsePairs(["BTC-BRL", "USD-BRLPTAX"])).toEqual(["BTC-BRL", "USD-BRLPTAX"]);
  });

  test("takes any case and gives upper case, as every other boundary does", () => {
    expect(parsePairs("usd-brl, Eur-Brl,USD-BRL")).toEqual(["USD-BRL", "EUR-BRL"]);
  });

  test("a malformed pair fails as USAGE naming it", () => {
    for (const bad of ["usd/brl", "USDBRL", "USD-BRL-EUR", "U-BRL", "USD-ABCDEFGHIJKLM", "USD_BRL"]) {
      const error = thrown(() => parsePairs(`EUR-BRL,${bad}`), "USAGE");
      expect(error.message).toStartWith(`Cannot read the pairs: "${bad}" is not a pair like "USD-BRL"`);
    }
  });

  test("no pair at all fails as USAGE", () => {
    expect(thrown(() => parsePairs(" , "), "USAGE").message).toContain("none given");
    thrown(() => parsePairs([""]), "USAGE");
  });
});
