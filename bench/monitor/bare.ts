/**
 * The floor for a Bun process that asks PostgreSQL one question with postgres.js: import it,
 * connect (PGHOST, PGPORT, PGUSER, PGDATABASE from the environment), run the monitor's query
 * once, print one line, close. bench/monitor.ts runs it as a contender to split `bun monitor.ts`'s
 * time into Bun's start, postgres.js, and what cotacao adds.
 *
 * Usage: PGHOST=/socket/dir PGPORT=5432 bun bench/monitor/bare.ts USD-BRL
 */
import postgres from "postgres";

const pair = Bun.argv[2] ?? "USD-BRL";
const sql = postgres({ max: 1, onnotice: () => {} });
try {
  const [row] = await sql<{ bid: string; ask: string; ts: Date }[]>`
    select bid, ask, ts from quotes where pair = ${pair} order by ts desc limit 1`;
  if (!row) {
    console.error(`No quote stored for ${pair}`);
    process.exitCode = 1;
  } else {
    console.log(`${pair} bid ${row.bid} ask ${row.ask} at ${row.ts.toISOString()}`);
  }
} finally {
  await sql.end({ timeout: 1 });
}
