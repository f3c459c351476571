/**
 * lib/errors.ts: the one family of errors every script throws and explains. A stable `code`
 * callers test (as porsager/postgres's errors have), a message for the person running it
 * (`Cannot <action>: <what is wrong>, <what to do>`), the exit code it calls for, its cause; and
 * describeError(), which turns any error into the one line a script prints.
 */
import type * as v from "valibot";

/** The exit codes of every script but monitor.ts, which speaks the monitoring plugins' own. */
export const EXIT = { ok: 0, failure: 1, usage: 2, locked: 75 } as const;

/** The exit code each code calls for, for every script (any other code exits 1). */
const EXIT_CODES: Readonly<Record<string, number>> = { CONFIG: EXIT.usage, USAGE: EXIT.usage, LOCKED: EXIT.locked };

/**
 * A failure cotacao expects and explains: a stable `code` callers test (as porsager/postgres's
 * errors have), a message for the person running it (`Cannot <action>: <what is wrong>, <what
 * to do>`), the exit code it calls for (by default the one EXIT_CODES gives its code), and its
 * cause. Every script's errors are of this family.
 */
export class CotacaoError extends Error {
  readonly exitCode: number;

  constructor(
    readonly code: string,
    message: string,
    options: { cause?: unknown; exitCode?: number } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "CotacaoError";
    this.exitCode = options.exitCode ?? EXIT_CODES[code] ?? EXIT.failure;
  }
}

/**
 * A failed request to a source of quotes (AwesomeAPI in ingest.ts, BCB in lib/bcb.ts), of the
 * family: a code, one line for the person running it, and what the requests came to.
 */
export class SourceError<Code extends string = string> extends CotacaoError {
  declare readonly code: Code;
  /** Requests made before giving up (0 when none was needed to fail). */
  readonly attempts: number;
  /** The HTTP status of the last answer, when there was one. */
  readonly status: number | undefined;

  constructor(code: Code, message: string, options: { cause?: unknown; attempts?: number; status?: number | undefined } = {}) {
    super(code, message, options.cause === undefined ? {} : { cause: options.cause });
    this.name = "SourceError";
    this.attempts = options.attempts ?? 0;
    this.status = options.status;
  }
}

/** Codes that let callers (and the CLIs' exit codes) tell failures apart. */
export type DatabaseErrorCode =
  | "CONFIG"
  | "EMBEDDED_UNSUPPORTED"
  | "EMBEDDED_START"
  | "EMBEDDED_STOP"
  | "EMBEDDED_LOCK"
  | "MIGRATION"
  | "DUMP"
  | "RESTORE"
  | "LOCKED";

/** A failure of cotacao's own database logic, with a message meant for the person running it. */
export class DatabaseError extends CotacaoError {
  declare readonly code: DatabaseErrorCode;

  constructor(code: DatabaseErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(code, message, options);
    this.name = "DatabaseError";
  }
}

/** The first issue of a failed parse of the environment, as a CONFIG error naming its variable. */
export function envIssue(issues: readonly v.BaseIssue<unknown>[]): CotacaoError {
  const [issue] = issues;
  const variable = String(issue?.path?.[0]?.key ?? "the environment");
  return new CotacaoError("CONFIG", `Cannot start: ${variable} ${issue?.message ?? "is invalid"}`);
}

/** A bad command line: one line that points at the script's --help, exit 2. */
export function usageError(message: string, script: string): CotacaoError {
  return new CotacaoError("USAGE", `${message} (see bun ${script} --help)`);
}

/**
 * The one line and the exit code any error calls for, in every script's main(): the family's
 * own message; a server that cannot be reached (named by host:port or socket), a lost
 * connection, a connect timeout or a missing database worded with what to do (`writing`: the
 * caller was writing, as a pipeline run is, and a lost connection tells it that what it
 * committed stays stored); anything else (a bug, PostgreSQL refusing a statement) as `Cannot <action>: <its first
 * line>`. Never a stack, never a query's parameters.
 */
export function describeError(error: unknown, action: string, options: { writing?: boolean } = {}): { line: string; exitCode: number } {
  if (error instanceof CotacaoError) return { line: error.message.split("\n")[0] ?? "", exitCode: error.exitCode };
  const message = (error instanceof Error ? error.message : String(error)).split("\n")[0];
  const { code } = (error ?? {}) as { code?: unknown };
  // A server that is down is named, with what to try. A writer whose server went away midway (the
  // embedded one's socket goes with it: ENOENT) lost the connection, and is told so below.
  if (isUnreachable(error) && !options.writing) {
    return {
      line: `Cannot ${action}: PostgreSQL${serverOf(error)} cannot be reached (${String(code)}); check that the server is running (bun database.ts status, for the embedded one) and that DATABASE_URL names it, then try again`,
      exitCode: EXIT.failure,
    };
  }
  if (code === "CONNECT_TIMEOUT") {
    return {
      line: `Cannot ${action}: PostgreSQL did not answer within the connect timeout (${message}); check that the server is up and that DATABASE_URL names it`,
      exitCode: EXIT.failure,
    };
  }
  if (isConnectionLost(error)) {
    return {
      // "What was committed stays stored" is news only to a writer (the pipeline, a restore).
      line: `Cannot ${action}: lost the connection to PostgreSQL${serverOf(error)} (${String(code)}); ${options.writing ? "what was committed before stays stored, " : ""}check the server (bun database.ts status) and ${options.writing ? "run" : "try"} again`,
      exitCode: EXIT.failure,
    };
  }
  if (code === "3D000") {
    return {
      line: `Cannot ${action}: ${message}; if it is the embedded server, run "bun database.ts stop" and try again (the next start creates it), else create it on your server (createdb)`,
      exitCode: EXIT.failure,
    };
  }
  return { line: `Cannot ${action}: ${message}`, exitCode: EXIT.failure };
}

// Error codes that mean the server went away or could not be reached: postgres.js's own, the
// socket's, and PostgreSQL's shutdown and connection-exception (08xxx) SQLSTATEs.
const CONNECTION_LOST_CODES: ReadonlySet<string> = new Set([
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "CONNECTION_DESTROYED",
  "CONNECT_TIMEOUT",
  "ECONNREFUSED",
  "ECONNRESET",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EPIPE",
  "57P01", // admin_shutdown
  "57P02", // crash_shutdown
  "57P03", // cannot_connect_now
]);

/**
 * Whether `error` says no connection to PostgreSQL could be made at all: nothing listens at the
 * address (or the embedded server's socket is gone), or the host is out of reach. The server is
 * down, not the work: its message says where the server was looked for, not what a run kept.
 */
function isUnreachable(error: unknown): boolean {
  const { code, syscall } = (error ?? {}) as { code?: unknown; syscall?: unknown };
  return code === "ECONNREFUSED" || code === "EHOSTUNREACH" || code === "ENETUNREACH" || code === "57P03" || (code === "ENOENT" && syscall === "connect");
}

/** " at host:port" (or the socket's path) of a connection error, as postgres.js and the socket name it; never a password. */
function serverOf(error: unknown): string {
  const { address, port } = (error ?? {}) as { address?: unknown; port?: unknown };
  if (typeof address !== "string" || address === "") return "";
  return ` at ${typeof port === "number" || typeof port === "string" ? `${address}:${port}` : address}`;
}

/** Whether `error` says the connection to PostgreSQL was lost, or could not be made. */
export function isConnectionLost(error: unknown): boolean {
  const { code, syscall } = (error ?? {}) as { code?: unknown; syscall?: unknown };
  if (typeof code !== "string") return false;
  // A Unix socket that is gone (the embedded server stopped) is ENOENT on connect.
  return CONNECTION_LOST_CODES.has(code) || code.startsWith("08") || (code === "ENOENT" && syscall === "connect");
}
