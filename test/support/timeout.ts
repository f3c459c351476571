import { setDefaultTimeout } from "bun:test";

/**
 * The tests' default timeout. Starting a server, creating databases and running whole pipelines
 * in child processes takes longer than bun's 5 s on a slow or busy machine.
 */
export const TEST_TIMEOUT_MS = 60_000;

/**
 * Sets the default timeout for the calling test file. Every test file calls it: bun applies a
 * default set in a preload file to the first test file only, and reads no timeout from bunfig.toml.
 */
export function useTestTimeout(): void {
  setDefaultTimeout(TEST_TIMEOUT_MS);
}
