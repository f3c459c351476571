import { describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { useTestTimeout } from "./support/timeout.ts";

useTestTimeout();

const PROJECT = resolve(import.meta.dir, "..");
const LIB = join(PROJECT, "lib");

/** An import of a source file: what it names, and whether it is erased at run time (`import type`). */
interface Import {
  specifier: string;
  typeOnly: boolean;
  /** `import("...")`: loaded when that line runs, not with the file. */
  dynamic: boolean;
}

/**
 * Every module a source imports or re-exports: static imports and exports (`import type` marked),
 * side-effect imports and dynamic `import("...")`. Comments are dropped first, so a path named in
 * a comment is not an import.
 */
function importsOf(source: string): Import[] {
  const code = source.replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, "");
  const found: Import[] = [];
  for (const match of code.matchAll(/^\s*(import|export)(\s+type)?\b[^;'"]*?\bfrom\s*["']([^"']+)["']/gm)) {
    found.push({ specifier: match[3]!, typeOnly: match[2] !== undefined, dynamic: false });
  }
  for (const match of code.matchAll(/^\s*import\s*["']([^"']+)["']/gm)) found.push({ specifier: match[1]!, typeOnly: false, dynamic: false });
  for (const match of code.matchAll(/\bimport\s*\(\s*["']([^"']+)["']\s*\)/g)) found.push({ specifier: match[1]!, typeOnly: false, dynamic: true });
  return found;
}

/** The project file a relative specifier of `file` names, or undefined for a package or a builtin. */
function projectFile(file: string, specifier: string): string | undefined {
  return specifier.startsWith(".") ? resolve(dirname(file), specifier) : undefined;
}

/** The project's own top-level files a lib/ source imports (package.json's data excepted: it is inlined, not code). */
function topLevelImports(file: string, source: string): string[] {
  return importsOf(source).flatMap(({ specifier }) => {
    const target = projectFile(file, specifier);
    if (!target || dirname(target) !== PROJECT || target === join(PROJECT, "package.json")) return [];
    return [relative(PROJECT, target)];
  });
}

/**
 * Every project file `entry` loads at run time (type-only imports are erased), and every package
 * they load; with `atStart`, only what loads with it (dynamic imports left out).
 */
function runtimeClosure(entry: string, { atStart = false } = {}): { files: Set<string>; packages: Set<string> } {
  const files = new Set<string>();
  const packages = new Set<string>();
  const visit = (file: string) => {
    if (files.has(file) || !file.endsWith(".ts")) return;
    files.add(file);
    for (const { specifier, typeOnly, dynamic } of importsOf(readFileSync(file, "utf8"))) {
      if (typeOnly || (atStart && dynamic)) continue;
      const target = projectFile(file, specifier);
      if (target) visit(target);
      else packages.add(specifier);
    }
  };
  visit(entry);
  return { files, packages };
}

const libFiles = readdirSync(LIB).filter((name) => name.endsWith(".ts")).map((name) => join(LIB, name));

describe("the import rule", () => {
  test("no lib/ file imports a top-level file, statically or dynamically", () => {
    expect(libFiles.length).toBeGreaterThan(10);
    const offending = libFiles.flatMap((file) => topLevelImports(file, readFileSync(file, "utf8")).map((target) => `${relative(PROJECT, file)} imports ${target}`));
    expect(offending).toEqual([]);
  });

  test("the check sees every way of importing, and not a path in a comment", () => {
    const file = join(LIB, "example.ts");
    const source = [
      'import { saveQuotes } from "../database.ts";',
      'import type { Quote } from "../ingest.ts";',
      'export { analyse } from "../analysis.ts";',
      'import "../monitor.ts";',
      'const app = await import("../dashboard.ts");',
      'import { PairSchema } from "./quote.ts";',
      'import { version } from "../package.json" with { type: "json" };',
      "// see ../main_pipeline.ts, which imports this file",
      '/* import { x } from "../main_pipeline.ts"; */',
    ].join("\n");
    expect(topLevelImports(file, source).sort()).toEqual(["analysis.ts", "dashboard.ts", "database.ts", "ingest.ts", "monitor.ts"]);
  });

  test("lib/ files import each other without a cycle, so each can be read (and loaded) on its own", () => {
    const cycles: string[] = [];
    const visit = (file: string, path: string[]) => {
      for (const { specifier, typeOnly } of importsOf(readFileSync(file, "utf8"))) {
        const target = projectFile(file, specifier);
        if (typeOnly || !target?.startsWith(`${LIB}/`)) continue;
        if (path.includes(target)) cycles.push([...path.slice(path.indexOf(target)), target].map((f) => relative(PROJECT, f)).join(" -> "));
        else visit(target, [...path, target]);
      }
    };
    for (const file of libFiles) visit(file, [file]);
    expect(cycles).toEqual([]);
  });

  test("ingest.ts loads neither database.ts nor postgres.js, directly or through lib/", () => {
    const { files, packages } = runtimeClosure(join(PROJECT, "ingest.ts"));
    expect([...files].map((file) => relative(PROJECT, file)).filter((file) => !file.startsWith("lib/"))).toEqual(["ingest.ts"]);
    expect([...packages].filter((name) => name === "postgres" || name.startsWith("postgres/"))).toEqual([]);
  });

  test("monitor.ts loads lib/ files only, not the other scripts", () => {
    const { files } = runtimeClosure(join(PROJECT, "monitor.ts"));
    expect([...files].map((file) => relative(PROJECT, file)).filter((file) => !file.startsWith("lib/"))).toEqual(["monitor.ts"]);
  });

  test("monitor.ts's check starts without postgres.js: lib/pg_wire.ts talks to the server (postgres.js only for --watch and TLS, loaded then)", () => {
    const { files, packages } = runtimeClosure(join(PROJECT, "monitor.ts"), { atStart: true });
    expect([...packages].filter((name) => name === "postgres" || name.startsWith("postgres/"))).toEqual([]);
    expect([...files].map((file) => relative(PROJECT, file))).toContain("lib/pg_wire.ts");
    expect([...files].map((file) => relative(PROJECT, file))).not.toContain("lib/pool.ts");
    // It is there when needed.
    expect([...runtimeClosure(join(PROJECT, "monitor.ts")).packages]).toContain("postgres");
  });
});
