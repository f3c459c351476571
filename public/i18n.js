/**
 * i18n.js: every word the page shows, in Brazilian Portuguese and English, and the choice of one
 * of them. Pure (no DOM): bun:test imports it (test/i18n.test.ts checks that both dictionaries
 * have the same keys and placeholders), the browser loads it as an ES module. Numbers and dates
 * follow the same choice through Intl (LANGUAGES[...].locale). The CLI stays English.
 */

/** The page's languages: the Intl locale each formats numbers and dates with, and its own name. */
export const LANGUAGES = /** @type {const} */ ({
  "pt-BR": { locale: "pt-BR", name: "Português (Brasil)" },
  en: { locale: "en-US", name: "English" },
});

/** @typedef {keyof typeof LANGUAGES} Language */

/** When the browser asks for neither: the project is about the real, but its code speaks English. */
export const FALLBACK_LANGUAGE = /** @type {Language} */ ("en");

/** Where the reader's choice in the header is remembered. */
export const LANGUAGE_STORAGE_KEY = "cotacao.lang";

/**
 * The dictionaries. `{name}` is a placeholder that text() fills. Keys of the form `action:<what>`
 * name what the page's attempt() (failures.js) was doing, as its calls say it in English.
 * @type {Record<Language, Record<string, string>>}
 */
export const MESSAGES = {
  en: {
    "lang.label": "Language",
    "pair.label": "Pair",
    "pair.help": "The exchange-rate pair the page shows",
    "zone.title": "Show times in your browser's time zone instead of São Paulo's",
    "zone.saoPaulo": "São Paulo time",
    "zone.local": "Your time ({zone})",
    "empty.title": "No quotes stored yet",
    "empty.load": "The database is empty. Load the history and the newest quote from the project folder:",
    "empty.keep": "then keep it fresh from cron, or with",
    "empty.shows": ". This page shows the quotes as soon as they are stored.",
    "card.bid": "bid",
    "card.vsPrevious": "vs previous day",
    "card.ask": "ask",
    "card.quotedAt": "quoted at",
    "card.age": "age",
    "card.officialRate": "BCB's PTAX {rate} ({bulletin}, {time})",
    "card.divergence": "AwesomeAPI {pct} vs the closing PTAX of {day}",
    "card.noDivergence": "no AwesomeAPI quote to compare with the closing PTAX",
    "card.fallbackFailing": "AwesomeAPI is failing: the last trustworthy rate is {rate}",
    "card.fallbackStale": "AwesomeAPI is stale: the last trustworthy rate is {rate}",
    "bulletin.opening": "opening bulletin",
    "bulletin.intermediate": "intermediate bulletin",
    "bulletin.closing": "closing",
    "legend.official": "PTAX (closing)",
    "legend.officialToggle": "Show or hide BCB's closing PTAX on the chart",
    "alerts.divergence": "≠ PTAX (AwesomeAPI diverges)",
    "card.loading": "loading…",
    "card.gap": "{pair} has no quotes from {from} to {to}, further back than a run fills in; load them with: {command}",
    "status.unknown": "status unknown",
    "status.live": "live",
    "status.stale": "stale",
    "status.staleSince": "stale since {time}",
    "status.failing": "pipeline failing",
    "status.failingSince": "pipeline failing since {time}",
    "status.empty": "no quotes yet",
    "chart.title": "History",
    "chart.ranges": "Range",
    "chart.resetZoom": "Reset zoom",
    "chart.label": "Chart of the pair's history",
    "chart.hint": "Drag across the chart to zoom, double-click to reset.",
    "chart.csv": "Download CSV",
    "chart.points": "{n} points, {resolution}",
    "chart.everyQuote": "every quote",
    "chart.onePointPer": "one point per {span}",
    "range.1D": "1D",
    "range.1W": "1W",
    "range.1M": "1M",
    "range.3M": "3M",
    "range.1Y": "1Y",
    "range.5Y": "5Y",
    "range.All": "All",
    "legend.bid": "bid",
    "legend.range": "range",
    "legend.average": "average",
    "legend.averageDays": "{days}-day average",
    "legend.band": "band",
    "legend.none": "no quotes in this range",
    "alerts.title": "Alerts",
    "alerts.started": "started",
    "alerts.ended": "ended",
    "alerts.lasted": "lasted",
    "alerts.vsAverage": "vs average",
    "alerts.peak": "peak",
    "alerts.newer": "← newer",
    "alerts.older": "older →",
    "alerts.none": "No alerts for this pair.",
    "alerts.pageOf": "{first}–{last} of {total}",
    "alerts.above": "▲ above",
    "alerts.below": "▼ below",
    "alerts.stale": "stale feed",
    "alerts.showEpisode": "Show this episode on the chart",
    "alerts.stillFiring": "still firing",
    "alerts.superseded": "superseded",
    "alerts.soFar": "{lasted} so far",
    "runs.title": "Pipeline runs",
    "runs.started": "started",
    "runs.status": "status",
    "runs.took": "took",
    "runs.stored": "stored",
    "runs.pairs": "pairs",
    "runs.none": "No pipeline runs recorded.",
    "runs.succeeded": "succeeded",
    "runs.failed": "failed",
    "runs.running": "running",
    "runs.skipped": "skipped",
    "runs.failedAt": "failed at {step}: ",
    "stream.connecting": "connecting…",
    "stream.on": "live updates on",
    "stream.off": "live updates off: reload the page",
    "stream.reconnecting": "live updates reconnecting…",
    "error.cannot": "Cannot {action}: {reason}.",
    "action:read the chart's data": "read the chart's data",
    "action:read the newest quote": "read the newest quote",
    "action:read the alerts": "read the alerts",
    "action:read the pipeline runs": "read the pipeline runs",
    "action:switch pairs": "switch pairs",
    "action:read the pairs": "read the pairs",
    "action:read the zoomed range": "read the zoomed range",
  },
  "pt-BR": {
    "lang.label": "Idioma",
    "pair.label": "Par",
    "pair.help": "O par de moedas que a página mostra",
    "zone.title": "Mostrar os horários no fuso do seu navegador em vez do de São Paulo",
    "zone.saoPaulo": "Horário de São Paulo",
    "zone.local": "Seu horário ({zone})",
    "empty.title": "Nenhuma cotação armazenada ainda",
    "empty.load": "O banco de dados está vazio. Carregue o histórico e a cotação mais recente a partir da pasta do projeto:",
    "empty.keep": "depois mantenha-o em dia pelo cron, ou com",
    "empty.shows": ". Esta página mostra as cotações assim que são armazenadas.",
    "card.bid": "compra",
    "card.vsPrevious": "vs. dia anterior",
    "card.ask": "venda",
    "card.quotedAt": "cotado em",
    "card.age": "idade",
    "card.officialRate": "PTAX do BCB {rate} ({bulletin}, {time})",
    "card.divergence": "AwesomeAPI {pct} vs. a PTAX de fechamento de {day}",
    "card.noDivergence": "nenhuma cotação da AwesomeAPI para comparar com a PTAX de fechamento",
    "card.fallbackFailing": "A AwesomeAPI está falhando: a última cotação confiável é a {rate}",
    "card.fallbackStale": "A AwesomeAPI está desatualizada: a última cotação confiável é a {rate}",
    "bulletin.opening": "boletim de abertura",
    "bulletin.intermediate": "boletim intermediário",
    "bulletin.closing": "fechamento",
    "legend.official": "PTAX (fechamento)",
    "legend.officialToggle": "Mostrar ou ocultar a PTAX de fechamento do BCB no gráfico",
    "alerts.divergence": "≠ PTAX (AwesomeAPI diverge)",
    "card.loading": "carregando…",
    "card.gap": "{pair} não tem cotações de {from} a {to}, mais antigas do que uma execução preenche; carregue-as com: {command}",
    "status.unknown": "situação desconhecida",
    "status.live": "ao vivo",
    "status.stale": "desatualizado",
    "status.staleSince": "desatualizado desde {time}",
    "status.failing": "pipeline com falha",
    "status.failingSince": "pipeline com falha desde {time}",
    "status.empty": "nenhuma cotação ainda",
    "chart.title": "Histórico",
    "chart.ranges": "Período",
    "chart.resetZoom": "Desfazer zoom",
    "chart.label": "Gráfico do histórico do par",
    "chart.hint": "Arraste sobre o gráfico para ampliar, clique duas vezes para voltar.",
    "chart.csv": "Baixar CSV",
    "chart.points": "{n} pontos, {resolution}",
    "chart.everyQuote": "todas as cotações",
    "chart.onePointPer": "um ponto a cada {span}",
    "range.1D": "1D",
    "range.1W": "1S",
    "range.1M": "1M",
    "range.3M": "3M",
    "range.1Y": "1A",
    "range.5Y": "5A",
    "range.All": "Tudo",
    "legend.bid": "compra",
    "legend.range": "faixa",
    "legend.average": "média",
    "legend.averageDays": "média de {days} dias",
    "legend.band": "banda",
    "legend.none": "nenhuma cotação neste período",
    "alerts.title": "Alertas",
    "alerts.started": "início",
    "alerts.ended": "fim",
    "alerts.lasted": "duração",
    "alerts.vsAverage": "vs. média",
    "alerts.peak": "pico",
    "alerts.newer": "← mais recentes",
    "alerts.older": "mais antigos →",
    "alerts.none": "Nenhum alerta para este par.",
    "alerts.pageOf": "{first}–{last} de {total}",
    "alerts.above": "▲ acima",
    "alerts.below": "▼ abaixo",
    "alerts.stale": "cotação parada",
    "alerts.showEpisode": "Mostrar este episódio no gráfico",
    "alerts.stillFiring": "ainda ativo",
    "alerts.superseded": "substituído",
    "alerts.soFar": "{lasted} até agora",
    "runs.title": "Execuções do pipeline",
    "runs.started": "início",
    "runs.status": "situação",
    "runs.took": "duração",
    "runs.stored": "gravadas",
    "runs.pairs": "pares",
    "runs.none": "Nenhuma execução do pipeline registrada.",
    "runs.succeeded": "concluída",
    "runs.failed": "falhou",
    "runs.skipped": "pulada",
    "runs.running": "em andamento",
    "runs.failedAt": "falhou em {step}: ",
    "stream.connecting": "conectando…",
    "stream.on": "atualizações ao vivo ligadas",
    "stream.off": "atualizações ao vivo desligadas: recarregue a página",
    "stream.reconnecting": "atualizações ao vivo reconectando…",
    "error.cannot": "Não foi possível {action}: {reason}.",
    "action:read the chart's data": "ler os dados do gráfico",
    "action:read the newest quote": "ler a cotação mais recente",
    "action:read the alerts": "ler os alertas",
    "action:read the pipeline runs": "ler as execuções do pipeline",
    "action:switch pairs": "trocar de par",
    "action:read the pairs": "ler os pares",
    "action:read the zoomed range": "ler o período ampliado",
  },
};

/**
 * The language a tag asks for, if the page has it: any Portuguese gets Brazil's, any English
 * gets English; null otherwise.
 * @param {string|null|undefined} tag  a BCP 47 tag (`pt-BR`, `en-GB`, `pt`) or a language code
 * @returns {Language|null}
 */
export function languageOf(tag) {
  const primary = String(tag ?? "").trim().toLowerCase().split(/[-_]/)[0];
  if (primary === "pt") return "pt-BR";
  if (primary === "en") return "en";
  return null;
}

/**
 * The first of `preferences` (the URL's, the remembered choice, then navigator.languages, in that
 * order) that the page speaks; FALLBACK_LANGUAGE when none does.
 * @param {readonly (string|null|undefined)[]} preferences
 * @returns {Language}
 */
export function pickLanguage(preferences) {
  for (const tag of preferences) {
    const language = languageOf(tag);
    if (language) return language;
  }
  return FALLBACK_LANGUAGE;
}

/**
 * The words of `language` (or of the language of an Intl locale such as `en-US`), filled in:
 * text("pt-BR", "alerts.pageOf", { first: 1, last: 20, total: 137 }) → "1–20 de 137". An unknown
 * key comes back as it is, so a slip shows on the page instead of throwing.
 * @param {string} language
 * @param {string} key
 * @param {Record<string, string|number>} [values]
 */
export function text(language, key, values = {}) {
  const words = MESSAGES[languageOf(language) ?? FALLBACK_LANGUAGE];
  const template = words[key] ?? key;
  return template.replace(/\{(\w+)\}/g, (whole, name) => (Object.hasOwn(values, name) ? String(values[name]) : whole));
}

/**
 * The placeholders a message uses, sorted: what both languages' versions of it must share.
 * @param {string} message
 */
export function placeholders(message) {
  return [...message.matchAll(/\{(\w+)\}/g)].map((match) => /** @type {string} */ (match[1])).sort();
}
