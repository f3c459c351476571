/** Runs a project script in its own process, as a user or cron would. */
import { join } from "node:path";
import { PROJECT_DIR } from "../../lib/project.ts";

export interface ScriptResult {
  stdout: string;
  stderr: string;
  code: number;
}

/** The environment of a user who has set nothing but what the test names. */
export function cleanEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined && !/^(DATABASE_URL|TEST_DATABASE_URL|COTACAO_|AWESOMEAPI_|BCB_|ALERT_|PG)/.test(key)) env[key] = value;
  }
  // Tests reach loopback only: a script's official step (on by default, to BCB) is off unless a test asks for it.
  return { ...env, COTACAO_OFFICIAL: "off", ...extra };
}

/** `bun <script> ...args` with only `env` set, from `cwd` (the project by default). */
export async function runScript(
  script: string,
  args: string[],
  { env = {}, cwd = PROJECT_DIR }: { env?: Record<string, string>; cwd?: string | undefined } = {},
): Promise<ScriptResult> {
  const child = Bun.spawn([process.execPath, join(PROJECT_DIR, script), ...args], {
    cwd,
    env: cleanEnv(env),
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr, code] = await Promise.all([
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
    child.exited,
  ]);
  return { stdout, stderr, code };
}
