/**
 * failures.js: the banner of what the page could not do. Each action's failure stays in it, in
 * the page's language, until that action next succeeds.
 */
import { byId } from "./dom.js";
import { t } from "./state.js";

const $error = byId("error");

/** What failed, by action, until that action next succeeds. */
/** @type {Map<string, string>} */
const failures = new Map();

export function renderFailures() {
  $error.textContent = [...failures].map(([action, reason]) => t("error.cannot", { action: t(`action:${action}`), reason })).join(" ");
  $error.hidden = failures.size === 0;
}

/**
 * Runs `task`, showing its failure in the banner instead of leaving a rejected promise.
 * @param {string} action
 * @param {() => Promise<unknown>} task
 */
export async function attempt(action, task) {
  try {
    await task();
    failures.delete(action);
  } catch (error) {
    // The reason is the server's (English, like the CLI's); the frame is the page's language.
    failures.set(action, (error instanceof Error ? error.message : String(error)).replace(/\.$/, ""));
  }
  renderFailures();
}
