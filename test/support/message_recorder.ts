/** What a client sends, message by message, through a loopback proxy to the test server. */

/**
 * A loopback proxy to the test server that records the type of every message the client sends
 * after its start-up message and password ("p", on servers that ask for one): "P" Parse, "D"
 * Describe, "H" Flush (postgres.js's wait for the server's answer before it binds), "B" Bind,
 * "E" Execute, "S" Sync.
 */
export function messageRecorder(serverUrl: string) {
  const target = new URL(serverUrl);
  const socketDir = target.searchParams.get("host");
  const port = Number(target.port || 5432);
  const hostname = target.hostname;
  const sent: string[] = [];
  type Relay = { server: Promise<Bun.Socket<undefined>>; pending: Buffer; started: boolean };
  const record = (relay: Relay, chunk: Buffer) => {
    relay.pending = Buffer.concat([relay.pending, chunk]);
    for (;;) {
      const typed = relay.started ? 1 : 0;
      if (relay.pending.length < 4 + typed) return;
      const length = relay.pending.readInt32BE(typed) + typed;
      if (relay.pending.length < length) return;
      const type = String.fromCharCode(relay.pending[0]!);
      if (relay.started && type !== "p") sent.push(type);
      relay.started = true;
      relay.pending = relay.pending.subarray(length);
    }
  };
  const proxy = Bun.listen<Relay>({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      open(client) {
        const socket = { data: (_: Bun.Socket<undefined>, data: Buffer) => void client.write(data), close: () => void client.end() };
        const server = socketDir ? Bun.connect({ unix: `${socketDir}/.s.PGSQL.${port}`, socket }) : Bun.connect({ hostname, port, socket });
        client.data = { server, pending: Buffer.alloc(0), started: false };
      },
      async data(client, data) {
        record(client.data, data);
        (await client.data.server).write(data);
      },
      async close(client) {
        (await client.data.server).end();
      },
    },
  });
  target.searchParams.delete("host");
  target.hostname = "127.0.0.1";
  target.port = String(proxy.port);
  return { url: target.toString(), sent, stop: () => proxy.stop(true) };
}
