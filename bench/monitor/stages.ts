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
 * (process.getBuiltinModule), Intl date formatters made (ICU's start-up), postgres.js's
 * setTimeout(connect, 0), the socket (Bun.connect's for the lean Unix socket, node:net's
 * otherwise: connected, each message sent, each answer received), the output, the exit. The
 * monitor prints as usual on stdout; the stages go to stderr when it exits, one per line, or
 * with STAGES_JSON=1 as one line `STAGES {...}` of summed stages (bench/monitor.ts reads it).
 * Timestamps are performance.now(), whose origin is the process's start. With two things on
 * the JS thread at once (ICU while the server answers), the answer is only read once ICU is done.
 */
type Tag = "start" | "modules" | "main" | "timer0" | "net" | "icu" | "connect" | "sent" | "answer" | "output" | "exit";
const marks: { at: number; what: string; tag?: Tag; ms?: number }[] = [];
const mark = (what: string, tag?: Tag, at = performance.now(), ms?: number) => void marks.push({ at, what, ...(tag ? { tag } : {}), ...(ms === undefined ? {} : { ms }) });
mark("this file starts running (Bun's own start-up before it)", "start");

/** Replaces `object[name]`, a function, with `wrap(original)`. */
function hook<T extends object>(object: T, name: keyof T & string, wrap: (original: (...args: any[]) => any) => (...args: any[]) => any): void {
  Object.defineProperty(object, name, { configurable: true, writable: true, value: wrap(object[name] as (...args: any[]) => any) });
}

/** The same messages and answers, whichever socket carries them. */
let sent = 0;
let answers = 0;
const onSent = (bytes: number) => mark(`message ${++sent} sent (${bytes} bytes)`, "sent");
const onAnswer = (bytes: number) => mark(`answer ${++answers} from the server (${bytes} bytes)`, "answer");

hook(process, "getBuiltinModule", (original) => (name: string) => {
  const began = performance.now();
  const module = original(name);
  if (name === "net" || name === "node:net") watchNet(module);
  mark(`loaded ${name} (getBuiltinModule): ${(performance.now() - began).toFixed(2)} ms`, name.endsWith("net") ? "net" : undefined, began, performance.now() - began);
  return module;
});

/** node:net's socket (TCP, or a Unix socket without the lean adapter): the same marks as the lean one. */
function watchNet(net: typeof import("node:net")): void {
  const proto = net.Socket.prototype as unknown as Record<string, (...args: any[]) => any>;
  if (Object.hasOwn(proto, "__stagesWatched")) return;
  Object.defineProperty(proto, "__stagesWatched", { value: true });
  hook(proto, "connect", (original) =>
    function (this: unknown, ...args: unknown[]) {
      mark("net.Socket connect called", "connect");
      return original.apply(this, args);
    },
  );
  hook(proto, "write", (original) =>
    function (this: unknown, chunk: Uint8Array, ...args: unknown[]) {
      onSent(chunk.length);
      return original.call(this, chunk, ...args);
    },
  );
  hook(proto, "emit", (original) =>
    function (this: unknown, event: string, ...args: unknown[]) {
      if (event === "data") onAnswer((args[0] as Uint8Array).length);
      if (event === "connect") mark("socket connected");
      return original.call(this, event, ...args);
    },
  );
}

const IntlDateTimeFormat = Intl.DateTimeFormat;
Object.defineProperty(Intl, "DateTimeFormat", {
  configurable: true,
  writable: true,
  value: function DateTimeFormat(...args: ConstructorParameters<typeof Intl.DateTimeFormat>) {
    const began = performance.now();
    const format = new IntlDateTimeFormat(...args);
    const ms = performance.now() - began;
    mark(`new Intl.DateTimeFormat(${String(args[1]?.timeZone ?? "")}): ${ms.toFixed(2)} ms`, "icu", began, ms);
    return format;
  },
});

/** Calls too many or too short to list one by one: counted, and their total time. */
const totals = new Map<string, { calls: number; ms: number; first: number }>();
function sumCalls<T extends object>(object: T, name: keyof T & string, label: string): void {
  hook(object, name, (original) =>
    function (this: unknown, ...args: unknown[]) {
      const began = performance.now();
      try {
        return original.apply(this, args);
      } finally {
        const total = totals.get(label) ?? { calls: 0, ms: 0, first: began };
        totals.set(label, { calls: total.calls + 1, ms: total.ms + performance.now() - began, first: total.first });
      }
    },
  );
}
sumCalls(IntlDateTimeFormat.prototype, "formatToParts", "Intl.DateTimeFormat formatToParts (the clocks)");
sumCalls(JSON, "parse", "JSON.parse (the query's json columns)");

// The lean socket's traffic: the handlers Bun.connect is given, and the socket's write.
const bunConnect = Bun.connect.bind(Bun);
Bun.connect = ((options: Parameters<typeof Bun.connect>[0]) => {
  mark("Bun.connect called", "connect");
  const handlers = options.socket as unknown as Record<string, ((...args: unknown[]) => unknown) | undefined>;
  const data = handlers["data"];
  handlers["data"] = (socket: unknown, chunk: unknown) => {
    onAnswer((chunk as Uint8Array).length);
    return data?.(socket, chunk);
  };
  return bunConnect(options).then((socket) => {
    mark("socket connected");
    const write = socket.write.bind(socket);
    socket.write = ((chunk: Uint8Array) => {
      onSent(chunk.length);
      return write(chunk);
    }) as typeof socket.write;
    return socket;
  });
}) as typeof Bun.connect;

// postgres.js opens its first connection from a setTimeout(connect, 0): when it was asked, when it ran.
const realSetTimeout = globalThis.setTimeout;
globalThis.setTimeout = ((fn: (...args: unknown[]) => void, ms?: number, ...rest: unknown[]) => {
  if (ms) return realSetTimeout(fn, ms, ...rest);
  const asked = performance.now();
  return realSetTimeout((...args: unknown[]) => {
    const waited = performance.now() - asked;
    mark(`a setTimeout(0) runs, ${waited.toFixed(2)} ms after it was asked`, "timer0", asked, waited);
    fn(...args);
  }, ms, ...rest);
}) as typeof setTimeout;

hook(console, "log", (original) =>
  function (this: unknown, ...args: unknown[]) {
    mark("output written (console.log)", "output");
    return original.apply(this, args);
  },
);

/**
 * The run in stages that add up to its length (ms): Bun's start, modules, the monitor's own work
 * before the socket, waits on the server, ICU, output and exit. Pure, on the marks.
 */
function summarize(list: readonly { at: number; tag?: Tag; ms?: number }[]): Record<string, number> {
  const first = (tag: Tag) => list.find((entry) => entry.tag === tag);
  const sum = (tag: Tag) => list.filter((entry) => entry.tag === tag).reduce((total, entry) => total + (entry.ms ?? 0), 0);
  const at = (tag: Tag, nth = 1) => list.filter((entry) => entry.tag === tag)[nth - 1]?.at ?? Number.NaN;
  const timer = first("timer0")?.ms ?? 0;
  const net = sum("net");
  const beforeSocket = at("connect") - at("main") - Math.min(timer, at("connect") - at("main")) - net;
  return {
    "Bun's start-up": at("start"),
    "loading monitor.ts's modules": at("modules") - at("start"),
    "arguments, config, the pool (main() to the socket)": beforeSocket,
    "postgres.js's setTimeout(connect, 0)": timer,
    "loading node:net (TCP)": net,
    "connect, startup message sent": at("sent", 1) - at("connect"),
    "to the server's first answer (backend start, auth; ICU meanwhile)": at("answer", 1) - at("sent", 1),
    "first answer to the query sent": at("sent", 2) - at("answer", 1),
    "the query, until its answer": at("answer", 2) - at("sent", 2),
    "answer to output: rows, assess, render (ICU if not yet)": at("output") - at("answer", 2),
    "output to exit": at("exit") - at("output"),
    total: at("exit"),
    "of which ICU's start-up (Intl.DateTimeFormat)": sum("icu"),
  };
}

const exit = process.exit.bind(process);
process.exit = ((code?: number) => {
  mark("process.exit called", "exit");
  for (const [label, { calls, ms, first }] of totals) mark(`${label}: ${calls} calls, ${ms.toFixed(2)} ms in all, the first here`, undefined, first);
  marks.sort((a, b) => a.at - b.at);
  if (process.env["STAGES_JSON"] === "1") {
    process.stderr.write(`STAGES ${JSON.stringify(summarize(marks))}\n`);
  } else {
    const lines = marks.map(({ at, what }, i) => `${at.toFixed(2).padStart(8)} ms  (+${(at - (i ? marks[i - 1]!.at : 0)).toFixed(2).padStart(5)})  ${what}`);
    process.stderr.write(`\nstages of one run (ms since the process started):\n${lines.join("\n")}\n`);
  }
  return exit(code);
}) as typeof process.exit;

if (import.meta.main) {
  const imported = performance.now();
  const { main } = await import("../../monitor.ts");
  mark(`monitor.ts and its modules loaded: ${(performance.now() - imported).toFixed(2)} ms`, "modules");
  mark("main() starts", "main");
  process.exit(await main(Bun.argv.slice(2)));
}
