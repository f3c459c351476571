/**
 * lib/pool.ts: connection pools to a PostgreSQL server named by a URL (postgres.js). The
 * monitor's one-shot check does not come here: it speaks to the server through lib/pg_wire.ts.
 */
import { EventEmitter } from "node:events";
import { createConnection, type Socket } from "node:net";
import postgres from "postgres";

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
  { max = 4, connectTimeoutSeconds = DEFAULT_CONNECT_TIMEOUT_SECONDS, fetchTypes = true, findSocket }: ConnectOptions = {},
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
    ...(socketDir && findSocket ? { socket: async () => unixSocket(await socketPath()) } : {}),
    max,
    // A server that accepts the connection and never answers must not hang a run for minutes.
    connect_timeout: connectTimeoutSeconds,
    fetch_types: fetchTypes,
    onnotice: () => {},
    connection: { application_name: "cotacao" },
  });
}

/**
 * postgres.js's `socket` option for a Unix socket, connected before it is handed over, as
 * postgres.js expects of that option. A failure is not a rejection (postgres.js would leave the
 * connection, and every later query of the pool, waiting forever) but a socket that fails at
 * once, as a net.Socket does: an error event (ENOENT or ECONNREFUSED, syscall "connect", which
 * isConnectionLost() reads), then close, so postgres.js fails the queries and connects anew.
 */
function unixSocket(path: string): Promise<Socket | FailedSocket> {
  const socket = createConnection(path);
  return new Promise((resolve) => {
    const failed = (error: Error) => resolve(new FailedSocket(error));
    socket.once("error", failed);
    socket.once("connect", () => {
      socket.removeListener("error", failed);
      resolve(socket);
    });
  });
}

/** A socket whose connection could not be made: it says so (error, then close) and takes nothing. */
class FailedSocket extends EventEmitter {
  readyState = "closed";

  constructor(error: Error) {
    super();
    // After postgres.js has attached its listeners.
    setTimeout(() => {
      this.emit("error", error);
      this.emit("close", true);
    }, 0);
  }

  write(_data: Uint8Array, callback?: (error?: Error) => void): boolean {
    callback?.(new Error("write after the socket closed"));
    return false;
  }
  end(): void {}
  destroy(): void {}
}
