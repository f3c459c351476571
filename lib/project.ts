/**
 * lib/project.ts: where the project is, wherever the process was started from (cron starts jobs
 * in $HOME): the folder above lib/.
 */
import { dirname } from "node:path";

/** The project's folder: the one this file's folder (lib/) is in. */
export const PROJECT_DIR = dirname(import.meta.dir);

/** `path` relative to the project when it is inside it (for messages), else as given. */
export function relativeToProject(path: string): string {
  return path.startsWith(`${PROJECT_DIR}/`) ? path.slice(PROJECT_DIR.length + 1) : path;
}
