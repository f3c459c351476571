/**
 * A small PostgreSQL client for a short-lived process that runs a query or two and exits: the
 * monitor's one-shot check. It speaks protocol 3.0 over Bun's own sockets (Bun.connect), so it
 * loads no node:net, node:tls or node:stream, and it sends each query in one write (Parse, Bind,
 * Describe, Execute, Sync with untyped text parameters), so a query costs one round trip.
 * What it leaves to postgres.js: TLS (a URL that asks for it gets WireUnsupportedError, and the
 * caller uses postgres.js), LISTEN, COPY, pools, reconnecting, transactions as a helper.
 * Values come back decoded as postgres.js decodes them by default (lib/pg_values.ts); passwords
 * are answered by lib/pg_auth.ts (Bun.CryptoHasher and WebCrypto, no node:crypto). Imports
 * nothing else.
 */
import { md5Password, ScramClient } from "./pg_auth.ts";
import { parserFor, serialize } from "./pg_values.ts";

/** Where and as whom to connect, read from a postgres:// URL (see wireTarget). */
export interface WireTarget {
  /** The Unix socket's path (`<dir>/.s.PGSQL.<port>`), or null for TCP. */
  path: string | null;
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
  /** Startup parameters the URL's query adds (postgres.js sends the ones it does not know, too). */
  parameters: Record<string, string>;
  /** The URL's `connect_timeout` (seconds, as libpq and postgres.js read it), in ms. */
  connectTimeoutMs: number | undefined;
}

export interface WireOptions {
  /** Ms to wait for the connection and the server's start-up answers (ReadyForQuery); default: the URL's connect_timeout, else 10 s. */
  connectTimeoutMs?: number;
  /** Default "cotacao"; a URL's `?application_name=` wins, as in postgres.js. */
  applicationName?: string;
  /**
   * Called once, right after the start-up message has gone out, while the server starts a
   * backend and answers: a short-lived process does its own start-up work there. connectWire()
   * resolves once both the server and this work are done.
   */
  whileWaiting?: () => void | Promise<void>;
  /** Where PGUSER, PGPASSWORD, PGHOST, PGPORT, PGDATABASE, PGSSL are read, as postgres.js reads them; default process.env. */
  env?: Record<string, string | undefined>;
}

/** A column of a result, as RowDescription gives it. */
export interface WireColumn {
  name: string;
  type: number;
}

/** What a query resolves to: the rows (objects by column name), and postgres.js's `command`, `count` and `columns`. */
export type WireResult<T = Record<string, unknown>> = T[] & { command: string; count: number; columns: WireColumn[] };

/** A tagged template that runs its SQL with the values as $1..$n, as postgres.js's `sql` does for plain values. */
export interface WireSql {
  <T extends readonly object[] = Record<string, unknown>[]>(strings: TemplateStringsArray, ...values: unknown[]): Promise<T & { command: string; count: number; columns: WireColumn[] }>;
  /** As postgres.js's sql.end(): closes the connection (the options are accepted and ignored). */
  end(options?: { timeout?: number }): Promise<void>;
}

export interface WireConnection {
  /** The tagged-template form of query(). */
  readonly sql: WireSql;
  /** Runs `text` with `params` ($1..$n; JS values, serialized as text; the server infers their types): one write, one round trip. */
  query<T = Record<string, unknown>>(text: string, params?: readonly unknown[]): Promise<WireResult<T>>;
  /** The server's ParameterStatus values (server_version, TimeZone, ...). */
  readonly parameters: Readonly<Record<string, string>>;
  /** The backend's process id (BackendKeyData), for pg_terminate_backend or a cancel request. */
  readonly processId: number;
  /** Sends Terminate and ends the socket; a query still waiting is rejected (CONNECTION_ENDED). Resolves once the socket is closed. */
  close(): Promise<void>;
}

/** The URL asks for what this client does not do (TLS, several hosts, an authentication method): use postgres.js for it. */
export class WireUnsupportedError extends Error {
  readonly code = "WIRE_UNSUPPORTED";

  constructor(what: string) {
    super(`Cannot connect with the lean client: ${what} is not supported here, use postgres.js`);
    this.name = "WireUnsupportedError";
  }
}

/** Whether `error` says to use postgres.js instead (WireUnsupportedError, wherever it came from). */
export function isWireUnsupported(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === "WIRE_UNSUPPORTED";
}

const ERROR_FIELDS: Record<string, string> = {
  S: "severity_local",
  V: "severity",
  C: "code",
  M: "message",
  D: "detail",
  H: "hint",
  P: "position",
  p: "internal_position",
  q: "internal_query",
  W: "where",
  s: "schema_name",
  t: "table_name",
  c: "column_name",
  d: "data_type_name",
  n: "constraint_name",
  F: "file",
  L: "line",
  R: "routine",
};

/** An ErrorResponse, with the fields postgres.js's PostgresError has (code is the SQLSTATE). */
export class PostgresError extends Error {
  code = "";
  severity = "";
  severity_local = "";
  [field: string]: unknown;

  constructor(fields: Record<string, string>) {
    super(fields["message"] ?? "unknown error");
    this.name = "PostgresError";
    Object.assign(this, fields);
  }
}

/** A connection failure as node:net and postgres.js shape it: code, syscall, and the server's address (and port, over TCP). */
export type WireConnectionError = Error & { code: string; errno?: number; syscall?: string; address: string; port?: number };

const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
const PROTOCOL_3_0 = 196_608;
/** URL parameters postgres.js takes as its own options, not as start-up parameters (see its parseOptions). */
const CLIENT_OPTIONS = new Set([
  "host",
  "ssl",
  "sslmode",
  "sslrootcert",
  "sslnegotiation",
  "max",
  "idle_timeout",
  "connect_timeout",
  "max_lifetime",
  "max_pipeline",
  "backoff",
  "keep_alive",
  "prepare",
  "debug",
  "fetch_types",
  "publications",
  "target_session_attrs",
]);

/**
 * Reads a postgres:// or postgresql:// URL as postgres.js (and, for `?host=/socket/dir`, libpq)
 * reads it. Throws WireUnsupportedError for what needs postgres.js: TLS (any sslmode but disable,
 * or PGSSL), several hosts, a target_session_attrs other than any.
 */
export function wireTarget(url: string, env: Record<string, string | undefined> = process.env): WireTarget {
  if (!/^postgres(ql)?:\/\//i.test(url)) throw new TypeError("Cannot connect: not a postgres:// URL");
  const parsed = new URL(url);
  if (parsed.host.includes(",")) throw new WireUnsupportedError("a URL with several hosts");
  const query = Object.fromEntries(parsed.searchParams);
  const ssl = query["sslmode"] ?? query["ssl"] ?? env["PGSSL"];
  if ((ssl !== undefined && ssl !== "disable" && ssl !== "false") || query["sslrootcert"] === "system") {
    throw new WireUnsupportedError(`TLS (sslmode=${ssl ?? "verify-full"})`);
  }
  const sessionAttrs = query["target_session_attrs"] ?? env["PGTARGETSESSIONATTRS"];
  if (sessionAttrs !== undefined && sessionAttrs !== "any") throw new WireUnsupportedError(`target_session_attrs=${sessionAttrs}`);
  const user = decodeURIComponent(parsed.username) || env["PGUSERNAME"] || env["PGUSER"] || env["USER"] || env["LOGNAME"] || env["USERNAME"] || "postgres";
  const port = Number(parsed.port || env["PGPORT"] || 5432);
  // libpq's `?host=/socket/dir` (the embedded server's URL): a socket folder, not a host name.
  const hostParam = query["host"];
  const host = hostParam || parsed.hostname.replace(/^\[(.*)\]$/, "$1") || env["PGHOST"] || "localhost";
  const parameters: Record<string, string> = {};
  for (const [name, value] of Object.entries(query)) if (!CLIENT_OPTIONS.has(name)) parameters[name] = value;
  const timeoutSeconds = query["connect_timeout"] === undefined ? undefined : Number(query["connect_timeout"]);
  return {
    path: host.startsWith("/") ? `${host}/.s.PGSQL.${port}` : null,
    host,
    port,
    user,
    password: decodeURIComponent(parsed.password) || env["PGPASSWORD"] || "",
    database: decodeURIComponent(parsed.pathname.slice(1)) || env["PGDATABASE"] || user,
    parameters,
    connectTimeoutMs: timeoutSeconds !== undefined && timeoutSeconds > 0 ? timeoutSeconds * 1000 : undefined,
  };
}

/**
 * Connects to the server `url` names and completes the start-up (authentication included):
 * resolves once the server is ready for queries. Fails with WireUnsupportedError for what needs
 * postgres.js (see wireTarget), with a WireConnectionError when nothing answers (ENOENT,
 * ECONNREFUSED, CONNECT_TIMEOUT, CONNECTION_CLOSED), or with the server's PostgresError (a wrong
 * password, a missing database).
 */
export async function connectWire(url: string, options: WireOptions = {}): Promise<WireConnection> {
  const target = wireTarget(url, options.env);
  const connection = new Connection(target);
  await connection.open(options);
  return connection;
}

type Pending = {
  columns: WireColumn[];
  parsers: ((text: string) => unknown)[];
  rows: Record<string, unknown>[];
  command: string;
  count: number;
  error: PostgresError | null;
  resolve: (result: WireResult) => void;
  reject: (error: Error) => void;
};

class Connection implements WireConnection {
  readonly parameters: Record<string, string> = {};
  processId = 0;
  readonly sql: WireSql;
  #socket: Bun.Socket<undefined> | null = null;
  #unsent: Uint8Array[] = [];
  #leftover: Uint8Array | null = null;
  /** Set once the connection is unusable: every later query fails with it. */
  #closedError: Error | null = null;
  #closed = false;
  #onClosed: (() => void)[] = [];
  /** Handles each message during start-up; queries use #pending. */
  #startup: ((type: number, body: Uint8Array) => void) | null = null;
  #failStartup: ((error: Error) => void) | null = null;
  #pending: Pending | null = null;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly target: WireTarget) {
    const sql = ((strings: TemplateStringsArray, ...values: unknown[]) => {
      let text = strings[0] ?? "";
      for (let i = 1; i < strings.length; i++) text += `$${i}${strings[i]}`;
      return this.query(text, values);
    }) as WireSql;
    sql.end = () => this.close();
    this.sql = sql;
  }

  async open(options: WireOptions): Promise<void> {
    const timeoutMs = options.connectTimeoutMs ?? this.target.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const error = this.#connectionError("CONNECT_TIMEOUT", `no answer within ${timeoutMs} ms`);
        reject(error);
        this.#destroy(error);
      }, timeoutMs);
    });
    try {
      await Promise.race([this.#handshake(options), timedOut]);
    } catch (error) {
      this.#destroy(error as Error);
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  async #handshake(options: WireOptions): Promise<void> {
    const handlers: Bun.SocketHandler<undefined> = {
      data: (_socket, data) => this.#receive(data),
      drain: () => this.#flush(),
      // The server closed its side (it stopped, or ended this backend): close ours too.
      end: (socket) => void socket.end(),
      error: (_socket, error) => this.#lost(error),
      close: (_socket, error) => this.#lost(error),
    };
    const { path, host, port } = this.target;
    let socket: Bun.Socket<undefined>;
    try {
      socket = await (path === null ? Bun.connect({ hostname: host, port, socket: handlers }) : Bun.connect({ unix: path, socket: handlers }));
    } catch (error) {
      const { code, errno } = error as { code?: string; errno?: number };
      throw this.#connectionError(code ?? "ECONNREFUSED", `connect ${code ?? "failed"}`, { syscall: "connect", ...(errno === undefined ? {} : { errno }) });
    }
    if (this.#closedError) {
      // The connect timeout fired while Bun.connect was still at work.
      socket.terminate();
      throw this.#closedError;
    }
    this.#socket = socket;
    const ready = new Promise<void>((resolve, reject) => {
      this.#failStartup = reject;
      this.#startup = this.#authenticator(resolve, reject);
    });
    this.#send(startupMessage(this.target, options.applicationName ?? "cotacao"));
    const work = options.whileWaiting?.();
    await Promise.all([ready, work]);
  }

  /** The start-up exchange: authentication, then ParameterStatus and BackendKeyData until ReadyForQuery. */
  #authenticator(resolve: () => void, reject: (error: Error) => void): (type: number, body: Uint8Array) => void {
    let scram: ScramClient | undefined;
    const fail = (error: Error) => {
      this.#startup = null;
      reject(error);
    };
    const step = (work: () => Promise<void> | void) => {
      try {
        const done = work();
        if (done) done.catch(fail);
      } catch (error) {
        fail(error as Error);
      }
    };
    return (type, body) => {
      const view = dataView(body);
      if (type === 0x52 /* R */) {
        const method = view.getInt32(0);
        if (method === 0) return; // AuthenticationOk
        if (method === 3) return step(() => this.#send(passwordMessage(cString(this.#password()))));
        if (method === 5) return step(() => this.#send(passwordMessage(cString(md5Password(this.target.user, this.#password(), body.subarray(4, 8))))));
        if (method === 10) {
          return step(() => {
            const mechanisms = decoder.decode(body.subarray(4)).split("\0");
            if (!mechanisms.includes("SCRAM-SHA-256")) throw new WireUnsupportedError(`SASL mechanisms ${mechanisms.filter(Boolean).join(", ")}`);
            scram = new ScramClient(this.#password());
            this.#send(saslInitialResponse("SCRAM-SHA-256", scram.clientFirst()));
          });
        }
        if (method === 11) return step(async () => this.#send(saslResponse(await scram!.clientFinal(decoder.decode(body.subarray(4))))));
        if (method === 12) return step(() => scram!.verifyServerFinal(decoder.decode(body.subarray(4))));
        return fail(new WireUnsupportedError(`the authentication method the server asks for (${method})`));
      }
      if (type === 0x4b /* K */) {
        this.processId = view.getInt32(0);
        return;
      }
      if (type === 0x45 /* E */) return fail(new PostgresError(errorFields(body)));
      if (type === 0x5a /* Z */) {
        this.#startup = null;
        this.#failStartup = null;
        return resolve();
      }
      // ParameterStatus, NoticeResponse and NegotiateProtocolVersion are handled or ignored by #dispatch.
    };
  }

  #password(): string {
    if (this.target.password === "") {
      throw Object.assign(new Error("Cannot connect: the server asks for a password and the URL gives none; put it in DATABASE_URL (postgres://user:password@host/db)"), {
        code: "PASSWORD_MISSING",
      });
    }
    return this.target.password;
  }

  query<T = Record<string, unknown>>(text: string, params: readonly unknown[] = []): Promise<WireResult<T>> {
    const run = this.#queue.then(() => this.#run(text, params));
    this.#queue = run.catch(() => {});
    return run as Promise<WireResult<T>>;
  }

  #run(text: string, params: readonly unknown[]): Promise<WireResult> {
    if (this.#closedError) return Promise.reject(this.#closedError);
    let message: Uint8Array;
    try {
      message = extendedQuery(text, params.map(serialize));
    } catch (error) {
      return Promise.reject(error);
    }
    return new Promise((resolve, reject) => {
      this.#pending = { columns: [], parsers: [], rows: [], command: "", count: 0, error: null, resolve, reject };
      this.#send(message);
    });
  }

  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    const closed = new Promise<void>((resolve) => this.#onClosed.push(resolve));
    this.#closedError ??= this.#connectionError("CONNECTION_ENDED", "the connection was closed by this client");
    if (this.#socket) {
      this.#send(TERMINATE);
      this.#socket.end();
    } else {
      this.#lost();
    }
    return closed;
  }

  /** Queues `bytes` and sends what the kernel takes now; the drain handler sends the rest. */
  #send(bytes: Uint8Array): void {
    this.#unsent.push(bytes);
    this.#flush();
  }

  #flush(): void {
    const socket = this.#socket;
    if (!socket) return;
    while (this.#unsent[0]) {
      const head = this.#unsent[0];
      const sent = socket.write(head);
      if (sent < head.length) {
        this.#unsent[0] = head.subarray(Math.max(sent, 0));
        return;
      }
      this.#unsent.shift();
    }
  }

  /** Splits what arrived into messages (type byte, length, body); keeps a partial one for the next chunk. */
  #receive(chunk: Uint8Array): void {
    let data = chunk;
    if (this.#leftover) {
      data = new Uint8Array(this.#leftover.length + chunk.length);
      data.set(this.#leftover);
      data.set(chunk, this.#leftover.length);
      this.#leftover = null;
    }
    let at = 0;
    while (data.length - at >= 5) {
      const end = at + 1 + ((data[at + 1]! << 24) | (data[at + 2]! << 16) | (data[at + 3]! << 8) | data[at + 4]!);
      if (end > data.length) break;
      try {
        this.#dispatch(data[at]!, data.subarray(at + 5, end));
      } catch (error) {
        // A message this client cannot read (a value that does not parse): fail what waits, never hang.
        this.#destroy(Object.assign(new Error(`Cannot read the server's answer: ${(error as Error).message}`), { code: "PROTOCOL_ERROR" }));
        return;
      }
      at = end;
    }
    if (at < data.length) this.#leftover = data.slice(at);
  }

  #dispatch(type: number, body: Uint8Array): void {
    if (type === 0x53 /* S: ParameterStatus */) {
      const [name = "", value = ""] = decoder.decode(body).split("\0");
      this.parameters[name] = value;
      return;
    }
    if (type === 0x4e /* N: NoticeResponse */ || type === 0x41 /* A: NotificationResponse */ || type === 0x76 /* v: NegotiateProtocolVersion */) return;
    if (this.#startup) return this.#startup(type, body);
    const pending = this.#pending;
    if (type === 0x45 /* E */) {
      const error = new PostgresError(errorFields(body));
      if (pending) pending.error ??= error;
      // A FATAL one with no query waiting (the backend terminated while idle): the connection is done for.
      else this.#closedError ??= error;
      return;
    }
    if (!pending) return;
    switch (type) {
      case 0x54 /* T: RowDescription */:
        pending.columns = rowDescription(body);
        pending.parsers = pending.columns.map((column) => parserFor(column.type));
        return;
      case 0x44 /* D: DataRow */:
        pending.rows.push(dataRow(body, pending.columns, pending.parsers));
        return;
      case 0x43 /* C: CommandComplete */: {
        const tag = decoder.decode(body.subarray(0, body.length - 1));
        const words = tag.split(" ");
        pending.command = words[0] ?? "";
        const count = Number(words[words.length - 1]);
        pending.count = Number.isInteger(count) ? count : 0;
        return;
      }
      case 0x5a /* Z: ReadyForQuery */: {
        this.#pending = null;
        if (pending.error) return pending.reject(pending.error);
        const result = Object.assign(pending.rows, { command: pending.command, count: pending.count, columns: pending.columns });
        return pending.resolve(result);
      }
      // ParseComplete, BindComplete, NoData, EmptyQueryResponse, PortalSuspended: nothing to keep.
    }
  }

  /** The socket failed or closed: whatever waits is rejected, with the server's last error when it sent one (a FATAL before closing). */
  #lost(error?: Error): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#socket = null;
    const cause = this.#pending?.error ?? this.#closedError ?? this.#connectionError("CONNECTION_CLOSED", "the server closed the connection", error ? { cause: error } : {});
    this.#closedError ??= cause;
    this.#startup = null;
    this.#failStartup?.(cause);
    this.#failStartup = null;
    this.#pending?.reject(cause);
    this.#pending = null;
    for (const resolve of this.#onClosed.splice(0)) resolve();
  }

  /** Ends the socket at once (a timeout, a failed start-up). */
  #destroy(error: Error): void {
    this.#closedError ??= error;
    if (this.#socket) this.#socket.terminate();
    this.#lost(error);
  }

  /** A connection error naming the server as postgres.js and node:net do (never the password: the URL is not in it). */
  #connectionError(code: string, what: string, extra: { syscall?: string; errno?: number; cause?: Error } = {}): WireConnectionError {
    const { path, host, port } = this.target;
    const where = path ?? `${host}:${port}`;
    const { cause, ...fields } = extra;
    const error = new Error(`${what} (${code} ${where})`, cause ? { cause } : undefined);
    return Object.assign(error, { code, ...fields, address: path ?? host }, path === null ? { port } : {}) as WireConnectionError;
  }
}

// ---------------------------------------------------------------------------------------------
// Messages out

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const TERMINATE = new Uint8Array([0x58, 0, 0, 0, 4]);

/** Builds frontend messages into one buffer, growing it as needed. */
class Writer {
  #bytes = new Uint8Array(256);
  #view = new DataView(this.#bytes.buffer);
  #at = 0;
  #start = 0;

  #room(n: number): void {
    if (this.#at + n <= this.#bytes.length) return;
    const bigger = new Uint8Array(Math.max(this.#bytes.length * 2, this.#at + n));
    bigger.set(this.#bytes);
    this.#bytes = bigger;
    this.#view = new DataView(bigger.buffer);
  }
  /** Starts a message of `type` (0: the start-up message, which has none). */
  begin(type: number): this {
    if (type) this.byte(type);
    this.#start = this.#at;
    return this.i32(0);
  }
  /** Writes the length of the message begun last. */
  end(): this {
    this.#view.setInt32(this.#start, this.#at - this.#start);
    return this;
  }
  byte(value: number): this {
    this.#room(1);
    this.#bytes[this.#at++] = value;
    return this;
  }
  i16(value: number): this {
    this.#room(2);
    this.#view.setInt16(this.#at, value);
    this.#at += 2;
    return this;
  }
  i32(value: number): this {
    this.#room(4);
    this.#view.setInt32(this.#at, value);
    this.#at += 4;
    return this;
  }
  bytes(value: Uint8Array): this {
    this.#room(value.length);
    this.#bytes.set(value, this.#at);
    this.#at += value.length;
    return this;
  }
  /** A NUL-terminated string. */
  cstr(value: string): this {
    return this.bytes(encoder.encode(value)).byte(0);
  }
  done(): Uint8Array {
    return this.#bytes.subarray(0, this.#at);
  }
}

function startupMessage(target: WireTarget, applicationName: string): Uint8Array {
  const parameters: Record<string, string> = {
    user: target.user,
    database: target.database,
    application_name: applicationName,
    client_encoding: "UTF8",
    ...target.parameters,
  };
  const writer = new Writer().begin(0).i32(PROTOCOL_3_0);
  for (const [name, value] of Object.entries(parameters)) writer.cstr(name).cstr(value);
  return writer.byte(0).end().done();
}

function cString(value: string): Uint8Array {
  return new Writer().cstr(value).done();
}

function passwordMessage(payload: Uint8Array): Uint8Array {
  return new Writer().begin(0x70 /* p */).bytes(payload).end().done();
}

function saslInitialResponse(mechanism: string, data: string): Uint8Array {
  const bytes = encoder.encode(data);
  return new Writer().begin(0x70).cstr(mechanism).i32(bytes.length).bytes(bytes).end().done();
}

function saslResponse(data: string): Uint8Array {
  return new Writer().begin(0x70).bytes(encoder.encode(data)).end().done();
}

/** Parse (unnamed, every parameter's type left to the server), Bind (text in, text out), Describe the portal, Execute, Sync: one write. */
function extendedQuery(text: string, params: readonly (string | null)[]): Uint8Array {
  const writer = new Writer();
  writer.begin(0x50 /* P */).cstr("").cstr(text).i16(params.length);
  for (let i = 0; i < params.length; i++) writer.i32(0);
  writer.end();
  writer.begin(0x42 /* B */).cstr("").cstr("").i16(0).i16(params.length);
  for (const param of params) {
    if (param === null) writer.i32(-1);
    else {
      const bytes = encoder.encode(param);
      writer.i32(bytes.length).bytes(bytes);
    }
  }
  writer.i16(0).end();
  writer.begin(0x44 /* D */).byte(0x50 /* P */).cstr("").end();
  writer.begin(0x45 /* E */).cstr("").i32(0).end();
  writer.begin(0x53 /* S */).end();
  return writer.done();
}

// ---------------------------------------------------------------------------------------------
// Messages in

function dataView(body: Uint8Array): DataView {
  return new DataView(body.buffer, body.byteOffset, body.byteLength);
}

function errorFields(body: Uint8Array): Record<string, string> {
  const fields: Record<string, string> = {};
  let at = 0;
  while (at < body.length && body[at] !== 0) {
    const end = body.indexOf(0, at + 1);
    const name = ERROR_FIELDS[String.fromCharCode(body[at]!)];
    if (name) fields[name] = decoder.decode(body.subarray(at + 1, end));
    at = end + 1;
  }
  return fields;
}

function rowDescription(body: Uint8Array): WireColumn[] {
  const view = dataView(body);
  const count = view.getInt16(0);
  const columns: WireColumn[] = [];
  let at = 2;
  for (let i = 0; i < count; i++) {
    const end = body.indexOf(0, at);
    const name = decoder.decode(body.subarray(at, end));
    // Table oid (4), column number (2), type oid (4), size (2), modifier (4), format (2).
    columns.push({ name, type: view.getInt32(end + 7) });
    at = end + 19;
  }
  return columns;
}

function dataRow(body: Uint8Array, columns: readonly WireColumn[], parsers: readonly ((text: string) => unknown)[]): Record<string, unknown> {
  const view = dataView(body);
  const row: Record<string, unknown> = {};
  let at = 2;
  for (let i = 0; i < columns.length; i++) {
    const length = view.getInt32(at);
    at += 4;
    if (length === -1) row[columns[i]!.name] = null;
    else {
      row[columns[i]!.name] = parsers[i]!(decoder.decode(body.subarray(at, at + length)));
      at += length;
    }
  }
  return row;
}
