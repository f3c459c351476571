/**
 * lib/pool.ts: connection pools to a PostgreSQL server named by a URL (postgres.js), with a Bun
 * socket adapter for a short-lived process's Unix-socket connections.
 */
import postgres from "postgres";

// Loaded on first use: a lean connection (the monitor's) never needs node:net, whose import and
// first connect cost a short-lived process ~25 ms (see bunUnixSocket).
const net = () => process.getBuiltinModule("node:net");

const DEFAULT_CONNECT_TIMEOUT_SECONDS = 10;

/** A postgres.js connection pool. */
export type Sql = postgres.Sql;

/** How connect() and connectUrl() open a pool. */
export interface ConnectOptions {
  /** Pool size; the scripts need few connections. */
  max?: number;
  /**
   * Receives the embedded server's one-line notices: its cluster was just created (first use
   * only), or a missing database recreated. connect() writes them to stderr unless given another
   * writer; connectUrl() ignores it.
   */
  notice?: (line: string) => void;
  /**
   * Seconds to wait for a new connection to be ready (TCP, TLS and the server's first answer)
   * before failing with CONNECT_TIMEOUT; default 10.
   */
  connectTimeoutSeconds?: number;
  /**
   * false: skip postgres.js's look-up of the server's array types, one round trip at every new
   * connection. Then no query may pass a JS array as a parameter (the monitor passes none).
   */
  fetchTypes?: boolean;
  /**
   * true: parameters that are strings, numbers or null go untyped and the server infers their
   * types from the query (cast them there), so each query takes one round trip instead of two
   * (postgres.js otherwise asks the server for the types first). Other values still ask.
   */
  inferParameterTypes?: boolean;
  /**
   * true: a Unix-socket connection (the embedded server's) goes through Bun's own sockets instead
   * of node:net, whose import and first connect cost a short-lived process ~25 ms (see
   * bunUnixSocket). For connections that run no COPY; TCP connections ignore it.
   */
  lean?: boolean;
  /**
   * Lean connections only: called once, right after the first message to the server has gone out,
   * while the server starts a backend for it (~20 ms); a short-lived process does its own start-up
   * work there instead of before or after.
   */
  whileWaiting?: (() => void) | undefined;
  /**
   * For a URL of a Unix socket: where the server's socket is now, looked up again by each new
   * connection (undefined: the URL's). The embedded server's may move when it restarts (to a new
   * temporary folder, when the data folder's path is too long for a socket), and the pool must
   * find the server again, as a fresh process does. connect() sets it for the embedded server.
   */
  findSocket?: (() => Promise<string | undefined>) | undefined;
}

/** Opens a connection pool to the server `url` names (libpq's `?host=/socket/dir` included). */
export function connectUrl(
  url: string,
  { max = 4, connectTimeoutSeconds = DEFAULT_CONNECT_TIMEOUT_SECONDS, fetchTypes = true, inferParameterTypes = false, lean = false, whileWaiting, findSocket }: ConnectOptions = {},
): Sql {
  // postgres.js does not understand libpq's `?host=/socket/dir`; the embedded server's URL uses it.
  const parsed = new URL(url);
  const socketDir = parsed.searchParams.get("host");
  parsed.searchParams.delete("host");
  const urlSocket = `${socketDir}/.s.PGSQL.${parsed.port || 5432}`;
  // The server's socket now: where findSocket says, else the URL's (which fails as lost if it is gone).
  const socketPath = async (): Promise<string> => (await findSocket?.()) ?? urlSocket;
  return postgres(parsed.toString(), {
    ...(socketDir ? { host: socketDir } : {}),
    ...(socketDir && (lean || findSocket)
      ? {
          socket: async () => {
            const waiting = whileWaiting;
            whileWaiting = undefined; // once per pool, not at every reconnect
            const path = await socketPath();
            return lean ? bunUnixSocket(path, waiting) : nodeUnixSocket(path);
          },
        }
      : {}),
    max,
    // A server that accepts the connection and never answers must not hang a run for minutes.
    connect_timeout: connectTimeoutSeconds,
    fetch_types: fetchTypes,
    describe_parameters: !inferParameterTypes,
    onnotice: () => {},
    connection: { application_name: "cotacao" },
  });
}

type Listener = (...args: never[]) => void;

/**
 * What postgres.js uses of a net.Socket for queries and LISTEN, over Bun.connect: the data, drain,
 * error and close events, write with backpressure, end, destroy and readyState. Not COPY's
 * pause/resume, hence ConnectOptions.lean. When nothing listens it fails as a net.Socket does: an
 * error event (ENOENT or ECONNREFUSED, syscall "connect", which isConnectionLost() reads the same)
 * and then close, so postgres.js fails the queries and connects anew for the next ones.
 */
class BunUnixSocket {
  readyState: "open" | "closed" = "open";
  readonly #listeners = new Map<string, { fn: Listener; once: boolean }[]>();
  readonly #unsent: { data: Uint8Array; callback: ((error?: Error) => void) | undefined }[] = [];
  #ending = false;

  constructor(
    /** null: the connection could not be made; closed() follows at once. */
    private readonly socket: Bun.Socket<undefined> | null,
    private whileWaiting: (() => void) | undefined,
  ) {}

  on(event: string, fn: Listener, once = false): this {
    this.#listeners.set(event, [...(this.#listeners.get(event) ?? []), { fn, once }]);
    return this;
  }
  once(event: string, fn: Listener): this {
    return this.on(event, fn, true);
  }
  removeListener(event: string, fn: Listener): this {
    this.#listeners.set(event, (this.#listeners.get(event) ?? []).filter((entry) => entry.fn !== fn));
    return this;
  }
  removeAllListeners(): this {
    this.#listeners.clear();
    return this;
  }
  emit(event: string, ...args: unknown[]): void {
    const entries = this.#listeners.get(event) ?? [];
    this.#listeners.set(event, entries.filter((entry) => !entry.once));
    for (const { fn } of entries) (fn as (...args: unknown[]) => void)(...args);
  }

  /** Queues what the kernel does not take now; false (as net's) until it is all sent. */
  write(data: Uint8Array, callback?: (error?: Error) => void): boolean {
    if (this.readyState === "closed") {
      callback?.(new Error("write after the socket closed"));
      return false;
    }
    this.#unsent.push({ data, callback });
    return this.flush();
  }
  end(data?: Uint8Array): void {
    if (data) this.write(data);
    this.#ending = true;
    this.flush();
  }
  destroy(): void {
    if (this.socket) this.socket.terminate();
    else this.closed();
  }

  /** Sends what is queued, as far as the kernel takes it; on the drain handler, again. */
  flush(): boolean {
    if (!this.socket) return false;
    while (this.#unsent[0]) {
      const head = this.#unsent[0];
      const sent = this.socket.write(head.data);
      if (sent < head.data.length) {
        head.data = head.data.subarray(Math.max(sent, 0));
        return false;
      }
      this.#unsent.shift();
      head.callback?.();
      if (this.whileWaiting) {
        // The message is with the kernel, the server at work: once postgres.js's code for this
        // write has run (a microtask, not a timer, which would wait a turn of the event loop).
        queueMicrotask(this.whileWaiting);
        this.whileWaiting = undefined;
      }
    }
    if (this.#ending) this.socket.end();
    return true;
  }
  closed(error?: Error): void {
    if (this.readyState === "closed") return;
    this.readyState = "closed";
    for (const { callback } of this.#unsent.splice(0)) callback?.(new Error("the socket closed"));
    if (error) this.emit("error", error);
    this.emit("close", !!error);
  }
}

/**
 * postgres.js's `socket` option for a Unix socket (ConnectOptions.lean): connects with Bun's own
 * sockets, so node:net is never loaded.
 */
async function bunUnixSocket(path: string, whileWaiting?: () => void): Promise<BunUnixSocket> {
  let adapter: BunUnixSocket | undefined;
  const connecting = Bun.connect({
    unix: path,
    socket: {
      binaryType: "buffer",
      data: (_socket, data) => adapter?.emit("data", data),
      drain: () => {
        if (adapter?.flush()) adapter.emit("drain");
      },
      // The server closed its side (it stopped, or ended this backend): close ours too.
      end: (socket) => void socket.end(),
      error: (_socket, error) => adapter?.closed(error),
      close: (_socket, error) => adapter?.closed(error),
    },
  });
  try {
    adapter = new BunUnixSocket(await connecting, whileWaiting);
  } catch (error) {
    // Not a rejection: postgres.js would leave the connection waiting for a socket forever, and
    // every later query with it (found by stopping the server under `bun monitor.ts --watch`).
    const failed = new BunUnixSocket(null, undefined);
    setTimeout(() => failed.closed(error as Error), 0);
    return failed;
  }
  return adapter;
}

/**
 * postgres.js's `socket` option for a Unix socket through node:net (COPY included), connected
 * before it is handed over, as postgres.js expects of that option. A failure is not a rejection
 * but a socket that fails at once, as in bunUnixSocket().
 */
function nodeUnixSocket(path: string): Promise<import("node:net").Socket | BunUnixSocket> {
  const socket = net().createConnection(path);
  return new Promise((resolve) => {
    const failed = (error: Error) => {
      const lost = new BunUnixSocket(null, undefined);
      setTimeout(() => lost.closed(error), 0);
      resolve(lost);
    };
    socket.once("error", failed);
    socket.once("connect", () => {
      socket.removeListener("error", failed);
      resolve(socket);
    });
  });
}


