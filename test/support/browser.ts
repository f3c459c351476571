/**
 * Headless Chromium for the page's tests and its benchmark: Debian's `chromium` package, driven
 * by playwright-core (which downloads no browser of its own).
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";

export const CHROMIUM_PATH = "/usr/bin/chromium";
/** The Debian package that provides CHROMIUM_PATH. */
export const CHROMIUM_PACKAGE = "chromium";
// No sandbox (CI runs as root), no GPU, and nothing that phones home: a request that leaves
// loopback must be the page's doing, not the browser's.
const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
  "--disable-quic",
];
const LAUNCH_TIMEOUT_MS = 30_000;

/** Whether Debian's Chromium is installed. */
export const hasChromium = existsSync(CHROMIUM_PATH);

/** What to say when it is not. */
export const MISSING_CHROMIUM = `no Chromium at ${CHROMIUM_PATH}: the browser tests are SKIPPED. Install Debian's package: sudo apt-get install ${CHROMIUM_PACKAGE}`;

/** Starts headless Chromium; the caller closes it. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS, timeout: LAUNCH_TIMEOUT_MS });
}

/** What a page did that a test may object to, collected as it happens. */
export interface PageWatch {
  /** console.error() calls and failed loads, as Chromium's console reports them. */
  consoleErrors: string[];
  /** Uncaught exceptions. */
  pageErrors: string[];
  /** Every URL the page asked for. */
  requests: string[];
  /** Those whose host is not `host`. */
  offHost: string[];
}

/** Watches `page` for console errors, uncaught exceptions and requests to hosts other than `host`. */
export function watchPage(page: Page, host = "127.0.0.1"): PageWatch {
  const watch: PageWatch = { consoleErrors: [], pageErrors: [], requests: [], offHost: [] };
  page.on("console", (message) => {
    if (message.type() === "error") watch.consoleErrors.push(`${message.text()} (${message.location().url})`);
  });
  page.on("pageerror", (error) => watch.pageErrors.push(error.message));
  page.on("request", (request) => {
    const url = request.url();
    watch.requests.push(url);
    // data: URLs never leave the machine; anything else must be the app's own server.
    if (!url.startsWith("data:") && new URL(url).hostname !== host) watch.offHost.push(url);
  });
  return watch;
}

/**
 * A full-page screenshot: kept as `<COTACAO_SCREENSHOT_DIR>/<name>` (its path printed) when that
 * variable names a folder, else taken and dropped, so a run leaves nothing behind by default.
 */
export async function screenshot(page: Page, name: string): Promise<void> {
  const dir = process.env["COTACAO_SCREENSHOT_DIR"]?.trim();
  const path = dir ? join(dir, name) : undefined;
  await page.screenshot({ ...(path ? { path } : {}), fullPage: true });
  if (path) console.log(`screenshot: ${path}`);
}
