/**
 * The page's two languages (public/i18n.js): both dictionaries complete, and every word the page
 * asks for present in both. The page itself, in each language, is checked in Chromium
 * (dashboard.browser.test.ts).
 */
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { LANGUAGES, MESSAGES, languageOf, pickLanguage, placeholders, text } from "../public/i18n.js";
import { useTestTimeout } from "./support/timeout.ts";

useTestTimeout();

const PUBLIC = join(import.meta.dir, "..", "public");
const read = (name: string) => Bun.file(join(PUBLIC, name)).text();
const keysOf = (language: keyof typeof MESSAGES) => Object.keys(MESSAGES[language]).sort();

describe("the dictionaries", () => {
  test("pt-BR and English have the same keys, each a non-empty text with the same placeholders", () => {
    expect(Object.keys(MESSAGES).sort()).toEqual(Object.keys(LANGUAGES).sort());
    expect(keysOf("pt-BR")).toEqual(keysOf("en"));
    for (const key of keysOf("en")) {
      const en = MESSAGES.en[key]!;
      const pt = MESSAGES["pt-BR"][key]!;
      expect(en.trim().length, key).toBeGreaterThan(0);
      expect(pt.trim().length, key).toBeGreaterThan(0);
      expect({ key, placeholders: placeholders(pt) }).toEqual({ key, placeholders: placeholders(en) });
    }
  });

  test("a message is the same in both only where it is no word (a range's short name), so none is left untranslated", () => {
    const same = keysOf("en").filter((key) => MESSAGES.en[key] === MESSAGES["pt-BR"][key]);
    expect(same).toEqual(["range.1D", "range.1M", "range.3M"]);
  });

  test("every key index.html names is in them", async () => {
    const html = await read("index.html");
    const named = [...html.matchAll(/data-i18n(?:-title|-aria-label)?="([^"]+)"/g)].map((match) => match[1]!);
    expect(named.length).toBeGreaterThan(30);
    for (const key of named) expect(MESSAGES.en, key).toHaveProperty([key]);
  });

  test("every key the page's scripts (public/*.js) ask for is in them, and every action they may fail at", async () => {
    // Every module of the page but the dictionaries themselves (whose examples are no request).
    const scripts = [...new Bun.Glob("*.js").scanSync(PUBLIC)].filter((name) => name !== "i18n.js").sort();
    expect(scripts).toContain("app.js");
    expect(scripts).toContain("chart-data.js");
    const code = (await Promise.all(scripts.map(read))).join("\n");
    const asked = [...code.matchAll(/\b(?:t|text)\((?:locale, |state\.lang, )?"([^"]+)"/g)].map((match) => match[1]!);
    expect(asked.length).toBeGreaterThan(20);
    for (const key of asked) expect(MESSAGES.en, key).toHaveProperty([key]);
    const actions = [...code.matchAll(/attempt\("([^"]+)"/g)].map((match) => `action:${match[1]}`);
    expect(actions.length).toBeGreaterThan(5);
    for (const key of actions) expect(MESSAGES.en, key).toHaveProperty([key]);
    // Keys built at run time: the range buttons, the run states and the status's "since" forms.
    for (const preset of ["1D", "1W", "1M", "3M", "1Y", "5Y", "All"]) expect(MESSAGES.en).toHaveProperty([`range.${preset}`]);
    for (const status of ["succeeded", "failed", "running"]) expect(MESSAGES.en).toHaveProperty([`runs.${status}`]);
    for (const key of ["status.staleSince", "status.failingSince"]) expect(MESSAGES.en).toHaveProperty([key]);
  });
});

describe("choosing the language", () => {
  test("the first preference the page speaks wins: any Portuguese is pt-BR, any English is English", () => {
    expect(pickLanguage(["pt-BR", "en-US"])).toBe("pt-BR");
    expect(pickLanguage(["de-DE", "pt-PT", "en"])).toBe("pt-BR");
    expect(pickLanguage(["en-GB", "pt-BR"])).toBe("en");
    expect(pickLanguage([null, undefined, "", "fr", "EN"])).toBe("en");
    // Neither: English.
    expect(pickLanguage(["de", "fr-FR"])).toBe("en");
    expect(pickLanguage([])).toBe("en");
    expect(languageOf("pt_BR")).toBe("pt-BR");
    expect(languageOf("xx")).toBeNull();
  });

  test("text() fills placeholders in the language of a locale, and shows an unknown key as it is", () => {
    expect(text("pt-BR", "alerts.pageOf", { first: 1, last: 20, total: 137 })).toBe("1–20 de 137");
    expect(text("en-US", "alerts.pageOf", { first: 1, last: 20, total: 137 })).toBe("1–20 of 137");
    expect(text("en", "legend.averageDays", { days: 20 })).toBe("20-day average");
    expect(text("pt-BR", "no.such.key")).toBe("no.such.key");
    expect(text("pt-BR", "zone.local")).toBe("Seu horário ({zone})");
  });
});
