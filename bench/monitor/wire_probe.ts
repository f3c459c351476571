/**
 * The monitor's one query, run once through one client, for bench/pg_wire.ts to time as a whole
 * (compiled) process: `wire` connects with lib/pg_wire.ts, `postgres` with postgres.js as the
 * monitor did before lib/pg_wire.ts (connectUrl: max 1, no type look-up).
 * Prints one line (the pairs and the newest bid), so the two can be checked to agree.
 *
 * Usage: PROBE_URL=postgres://... wire_probe wire|postgres
 */
import { connectUrl, type Sql } from "../../lib/pool.ts";
import { readSnapshot } from "../../lib/views.ts";
import { connectWire } from "../../lib/pg_wire.ts";

const PAIRS = ["USD-BRL"];
const DAYS = 20;

async function main(mode: string, url: string): Promise<number> {
  let close: () => unknown = () => {};
  try {
    let sql: Sql;
    if (mode === "wire") {
      const wire = await connectWire(url, { connectTimeoutMs: 10_000 });
      close = () => wire.close();
      sql = wire.sql as unknown as Sql;
    } else {
      sql = connectUrl(url, { max: 1, connectTimeoutSeconds: 10, fetchTypes: false });
      close = () => sql.end({ timeout: 0 });
    }
    const snapshots = await readSnapshot(sql, PAIRS, DAYS);
    console.log(snapshots.map((s) => `${s.pair} ${s.latest?.bid} ${s.closes.length}`).join(" "));
    return 0;
  } catch (error) {
    console.error(String(error));
    return 1;
  } finally {
    void close();
  }
}

if (import.meta.main) void main(Bun.argv[2] ?? "wire", process.env["PROBE_URL"] ?? "").then((code) => process.exit(code));
