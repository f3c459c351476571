import { describe, expect, test } from "bun:test";
import { medianStages, tcpUrlProblem, targetLines, transportFrom, type Medians } from "../bench/monitor.ts";
import { useTestTimeout } from "./support/timeout.ts";

useTestTimeout();

describe("bench/monitor.ts: the transports", () => {
  test("a socket URL gives psql, pgx and postgres.js the socket folder and its port, and no sslmode", () => {
    const socket = transportFrom("socket", "postgresql://cotacao@localhost:41234/cotacao?host=/tmp/cotacao-bench-x/pg", "socket");
    expect(socket.pg).toEqual({ PGHOST: "/tmp/cotacao-bench-x/pg", PGPORT: "41234", PGUSER: "cotacao", PGDATABASE: "cotacao" });
    expect(socket.goDsn).toBe("host='/tmp/cotacao-bench-x/pg' port='41234' user='cotacao' dbname='cotacao'");
  });

  test("over TCP TLS is off unless the URL asks, and the password goes in PGPASSWORD, never in the Go program's arguments", () => {
    const tcp = transportFrom("tcp", "postgres://me:s%27cr%40t@127.0.0.1:5433/cotacao_bench_1", "tcp");
    expect(tcp.pg).toEqual({ PGHOST: "127.0.0.1", PGPORT: "5433", PGUSER: "me", PGDATABASE: "cotacao_bench_1", PGSSLMODE: "disable", PGPASSWORD: "s'cr@t" });
    expect(tcp.goDsn).toBe("host='127.0.0.1' port='5433' user='me' dbname='cotacao_bench_1' sslmode='disable'");
    expect(transportFrom("tcp", "postgres://me@[::1]/db?sslmode=require", "tcp").pg).toMatchObject({ PGHOST: "::1", PGPORT: "5432", PGSSLMODE: "require" });
  });

  test("DATABASE_URL must be TCP to this machine: loopback only", () => {
    expect(tcpUrlProblem("postgres://me@127.0.0.1:5432/db")).toBeUndefined();
    expect(tcpUrlProblem("postgresql://me@localhost/db")).toBeUndefined();
    expect(tcpUrlProblem("postgres://me@[::1]:5432/db")).toBeUndefined();
    expect(tcpUrlProblem("postgres://me@db.example.com/db")).toContain('got host "db.example.com"');
    expect(tcpUrlProblem("postgres://me@10.0.0.5/db")).toContain("loopback only");
    expect(tcpUrlProblem("postgres://me@localhost/db?host=/run/postgresql")).toContain("Unix socket");
    expect(tcpUrlProblem("mysql://me@127.0.0.1/db")).toContain("postgres:// URL");
    expect(tcpUrlProblem("not a url")).toBe("DATABASE_URL is not a URL");
  });
});

describe("bench/monitor.ts: the targets", () => {
  const go = { wall: 10, cpu: 5 };
  const lines = (compiled: Medians, script: Medians) =>
    targetLines(new Map([["Go pgx (the original)", go], ["compiled monitor", compiled], ["bun monitor.ts", script]]));

  test("each target is a ratio to Go's median, PASS up to and at the bound, MISS beyond", () => {
    expect(lines({ wall: 15, cpu: 15 }, { wall: 30, cpu: 15 })).toEqual([
      "compiled monitor, wall time <= 1.5x Go's: 15.0 / 10.0 ms = 1.50x: PASS",
      "bun monitor.ts, wall time <= 3.0x Go's: 30.0 / 10.0 ms = 3.00x: PASS",
      "compiled monitor, CPU time per check <= 3.0x Go's: 15.0 / 5.0 ms = 3.00x: PASS",
      "bun monitor.ts, CPU time per check <= 3.0x Go's: 15.0 / 5.0 ms = 3.00x: PASS",
    ]);
    const missed = lines({ wall: 15.1, cpu: 20.7 }, { wall: 33, cpu: 41.5 });
    expect(missed.map((line) => line.slice(line.lastIndexOf(":") + 2))).toEqual(["MISS", "MISS", "MISS", "MISS"]);
    expect(missed[2]).toBe("compiled monitor, CPU time per check <= 3.0x Go's: 20.7 / 5.0 ms = 4.14x: MISS");
  });

  test("without Go or the contender, a target is n/a and never PASS", () => {
    const noGo = targetLines(new Map([["compiled monitor", { wall: 1, cpu: 1 }]]));
    expect(noGo[0]).toBe("compiled monitor, wall time <= 1.5x Go's: n/a (Go pgx (the original) did not run): MISS");
    const noCompiled = targetLines(new Map([["Go pgx (the original)", go]]));
    expect(noCompiled[0]).toBe("compiled monitor, wall time <= 1.5x Go's: n/a (compiled monitor did not run): MISS");
  });
});

describe("bench/monitor.ts: the stages", () => {
  test("each stage's median over the runs, in the first run's order, a run without a stage left out of its median", () => {
    const runs = [
      { "Bun's start-up": 2.4, "the query, until its answer": 5, total: 20 },
      { "Bun's start-up": 2.2, "the query, until its answer": 9, total: 30 },
      { "Bun's start-up": 3.1, total: 25 },
    ];
    expect(medianStages(runs)).toEqual([
      ["Bun's start-up", 2.4],
      ["the query, until its answer", 5],
      ["total", 25],
    ]);
    expect(medianStages([])).toEqual([]);
  });
});
