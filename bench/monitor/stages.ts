/**
 * Where one run of the monitor spends its time, stage by stage, measured inside the process: run
 * it as the monitor itself (same arguments, same DATABASE_URL), as a script or compiled.
 *
 *   DATABASE_URL=... bun bench/monitor/stages.ts --pair USD-BRL
 *   bun build --compile --bytecode --format=esm bench/monitor/stages.ts --outfile /tmp/stages
 *   DATABASE_URL=... /tmp/stages --pair USD-BRL
 *
 * It loads monitor.ts with a dynamic import (so its modules' cost is a stage of its own), then
 * runs its main() with hooks that only take timestamps: Node built-ins loaded on first use
 * (process.getBuiltinModule), Intl date formatters made (ICU's start-up), Bun.connect (the lean
 * socket: connected, each message sent, each answer received), the output, the exit. The
 * monitor prints as usual on stdout; the stages go to stderr when it exits. Timestamps are
 * performance.now(), whose origin is the process's start; with several things on the JS thread
 * at once (ICU while the server answers) a stage's end can wait for the other's.
 */
const marks: { at: number; what: string }[] = [];
const mark = (what: string, at = performance.now()) => void marks.push({ at, what });
mark("this file starts running (Bun's own start-up before it)");

/** Times each call of `object[name]` as "label" from its start to its end. */
function timeCalls<T extends object>(object: T, name: keyof T & string, label: (args: unknown[]) => string): void {
  const original = object[name] as (...args: unknown[]) => unknown;
  Object.defineProperty(object, name, {
    configurable: true,
    writable: true,
    value: function (this: unknown, ...args: unknown[]) {
      const began = performance.now();
      const result = new.target ? Reflect.construct(original, args, new.target) : original.apply(this, args);
      mark(`${label(args)}: ${(performance.now() - began).toFixed(2)} ms`, began);
      return result;
    },
  });
}

timeCalls(process, "getBuiltinModule", (args) => `loaded ${String(args[0])} (getBuiltinModule)`);
const IntlDateTimeFormat = Intl.DateTimeFormat;
Object.defineProperty(Intl, "DateTimeFormat", {
  configurable: true,
  writable: true,
  value: function DateTimeFormat(...args: ConstructorParameters<typeof Intl.DateTimeFormat>) {
    const began = performance.now();
    const format = new IntlDateTimeFormat(...args);
    mark(`new Intl.DateTimeFormat(${String(args[1]?.timeZone ?? "")}): ${(performance.now() - began).toFixed(2)} ms`, began);
    return format;
  },
});

/** Calls too many or too short to list one by one: counted, and their total time. */
const totals = new Map<string, { calls: number; ms: number; first: number }>();
function sumCalls<T extends object>(object: T, name: keyof T & string, label: string): void {
  const original = object[name] as (...args: unknown[]) => unknown;
  Object.defineProperty(object, name, {
    configurable: true,
    writable: true,
    value: function (this: unknown, ...args: unknown[]) {
      const began = performance.now();
      try {
        return original.apply(this, args);
      } finally {
        const total = totals.get(label) ?? { calls: 0, ms: 0, first: began };
        totals.set(label, { calls: total.calls + 1, ms: total.ms + performance.now() - began, first: total.first });
      }
    },
  });
}
sumCalls(IntlDateTimeFormat.prototype, "formatToParts", "Intl.DateTimeFormat formatToParts (the clocks)");
sumCalls(JSON, "parse", "JSON.parse (the query's json columns)");

// The lean socket's traffic: the handlers Bun.connect is given, and the socket's write.
const bunConnect = Bun.connect.bind(Bun);
const connect = (options: Parameters<typeof Bun.connect>[0]) => {
  mark("Bun.connect called");
  const handlers = options.socket as unknown as Record<string, ((...args: unknown[]) => unknown) | undefined>;
  const data = handlers["data"];
  let answers = 0;
  handlers["data"] = (socket: unknown, chunk: unknown) => {
    mark(`answer ${++answers} from the server (${(chunk as Uint8Array).length} bytes)`);
    return data?.(socket, chunk);
  };
  return bunConnect(options).then((socket) => {
    mark("socket connected");
    const write = socket.write.bind(socket);
    let sent = 0;
    socket.write = ((chunk: Uint8Array) => {
      mark(`message ${++sent} sent (${chunk.length} bytes)`);
      return write(chunk);
    }) as typeof socket.write;
    return socket;
  });
};
Bun.connect = connect as typeof Bun.connect;

// postgres.js opens its first connection from a setTimeout(connect, 0): when it was asked, when it ran.
const realSetTimeout = globalThis.setTimeout;
let timers = 0;
globalThis.setTimeout = ((fn: (...args: unknown[]) => void, ms?: number, ...rest: unknown[]) => {
  const n = ++timers;
  if (n > 3) return realSetTimeout(fn, ms, ...rest);
  const asked = performance.now();
  mark(`setTimeout #${n} (${ms ?? 0} ms) asked`, asked);
  return realSetTimeout((...args: unknown[]) => {
    mark(`setTimeout #${n} (${ms ?? 0} ms) runs, ${(performance.now() - asked).toFixed(2)} ms after`);
    fn(...args);
  }, ms, ...rest);
}) as typeof setTimeout;

timeCalls(console, "log", () => "output written (console.log)");
const exit = process.exit.bind(process);
process.exit = ((code?: number) => {
  mark("process.exit called");
  for (const [label, { calls, ms, first }] of totals) mark(`${label}: ${calls} calls, ${ms.toFixed(2)} ms in all, the first here`, first);
  const start = marks[0]!.at;
  const lines = marks.sort((a, b) => a.at - b.at).map(({ at, what }, i) => `${at.toFixed(2).padStart(8)} ms  (+${(at - (i ? marks[i - 1]!.at : 0)).toFixed(2).padStart(5)})  ${what}`);
  process.stderr.write(`\nstages of one run (ms since the process started; Bun's start-up took ${start.toFixed(2)} ms):\n${lines.join("\n")}\n`);
  return exit(code);
}) as typeof process.exit;

const imported = performance.now();
const { main } = await import("../../monitor.ts");
mark(`monitor.ts and its modules loaded: ${(performance.now() - imported).toFixed(2)} ms`);
mark("main() starts");
process.exit(await main(Bun.argv.slice(2)));
