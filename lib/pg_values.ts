/**
 * PostgreSQL's text format and JS values, for lib/pg_wire.ts: parameters out as postgres.js
 * serializes them, column values in as postgres.js decodes them by default.
 */

/**
 * A JS value as a parameter's text, as postgres.js serializes it: null as SQL NULL, a Date as
 * ISO 8601, a boolean as t/f, bytes as \x hex, an array as an array literal ({"a","b"}: every
 * element quoted and escaped, so the server reads any text; cast it in SQL, e.g. ${list}::text[]),
 * another object as JSON.
 */
export function serialize(value: unknown): string | null {
  if (value === null) return null;
  if (value === undefined) throw new TypeError("Cannot run the query: a parameter is undefined (pass null for SQL NULL)");
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "bigint") return String(value);
  if (typeof value === "boolean") return value ? "t" : "f";
  if (value instanceof Date) return value.toISOString();
  if (value instanceof Uint8Array) return `\\x${Buffer.from(value).toString("hex")}`;
  if (Array.isArray(value)) return arrayLiteral(value);
  return JSON.stringify(value);
}

function arrayLiteral(values: readonly unknown[]): string {
  const elements = values.map((value) => {
    if (value === null || value === undefined) return "NULL";
    if (Array.isArray(value)) return arrayLiteral(value);
    return `"${(serialize(value) ?? "").replace(/[\\"]/g, "\\$&")}"`;
  });
  return `{${elements.join(",")}}`;
}

// Column values, decoded by type as postgres.js does by default

const identity = (text: string): string => text;
const bool = (text: string): boolean => text === "t";
const number = (text: string): number => +text;
const json = (text: string): unknown => JSON.parse(text);
// As postgres.js: new Date() of the server's text (a timestamp without zone is read as local time).
const date = (text: string): Date => new Date(text);
const bytea = (text: string): Buffer => Buffer.from(text.slice(2), "hex");

const SCALARS: Record<number, (text: string) => unknown> = {
  16: bool,
  17: bytea,
  21: number,
  23: number,
  26: number,
  700: number,
  701: number,
  114: json,
  3802: json,
  1082: date,
  1114: date,
  1184: date,
};

/**
 * Built-in array types and their elements' types (pg_type.typarray): postgres.js, which looks
 * them up at connect, parses these into JS arrays; the rest of its look-up are types cotacao does
 * not use. Elements without a parser stay text (int8 and numeric included, as in postgres.js).
 */
const ARRAYS: Record<number, number> = {
  1000: 16, 1001: 17, 1005: 21, 1007: 23, 1028: 26, 1021: 700, 1022: 701, 199: 114, 3807: 3802, 1182: 1082, 1115: 1114, 1185: 1184,
  1009: 25, 1015: 1043, 1014: 1042, 1003: 19, 1016: 20, 1231: 1700, 2951: 2950, 1183: 1083, 1270: 1266, 1187: 1186, 1041: 869, 1002: 18,
};

const PARSERS: Record<number, (text: string) => unknown> = { ...SCALARS };
for (const [arrayType, elementType] of Object.entries(ARRAYS)) {
  const element = SCALARS[elementType] ?? identity;
  PARSERS[Number(arrayType)] = (text) => parseArray(text, element);
}

/** A PostgreSQL array literal ({a,"b c",NULL,{1,2}}) as nested JS arrays; NULL elements as null. */
export function parseArray(text: string, element: (text: string) => unknown): unknown[] {
  let at = text.startsWith("[") ? text.indexOf("=") + 1 : 0; // bounds such as [0:1]={...}
  const read = (): unknown[] => {
    const items: unknown[] = [];
    at++; // "{"
    while (at < text.length) {
      const char = text[at];
      if (char === "}") {
        at++;
        return items;
      }
      if (char === ",") {
        at++;
        continue;
      }
      if (char === "{") {
        items.push(read());
        continue;
      }
      if (char === '"') {
        let value = "";
        at++;
        while (text[at] !== '"') {
          if (text[at] === "\\") at++;
          value += text[at++];
        }
        at++;
        items.push(element(value));
        continue;
      }
      let end = at;
      while (text[end] !== "," && text[end] !== "}") end++;
      const raw = text.slice(at, end);
      items.push(raw === "NULL" ? null : element(raw));
      at = end;
    }
    return items;
  };
  return read();
}

/** The decoder of a column of type `oid`: text for the types it does not know, as postgres.js. */
export function parserFor(oid: number): (text: string) => unknown {
  return PARSERS[oid] ?? identity;
}
