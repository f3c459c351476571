/**
 * The peak resident memory of another process, read from /proc/<pid>/status (VmHWM) while it
 * runs. Not from getrusage(): Linux counts in a child's maxrss the memory of the process it was
 * forked from, before exec, so a large benchmark would inflate what it measures.
 */
import { readFileSync } from "node:fs";

const POLL_MS = 10;

/** Starts watching `pid`; `stop()` returns the highest VmHWM seen, in MB (NaN without /proc). */
export function watchPeakMemory(pid: number): { stop(): number } {
  let peakKb = Number.NaN;
  const read = () => {
    try {
      const match = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
      if (match) peakKb = Math.max(Number.isNaN(peakKb) ? 0 : peakKb, Number(match[1]));
    } catch {
      // Gone already: the last reading stands.
    }
  };
  read();
  const timer = setInterval(read, POLL_MS);
  return {
    stop() {
      clearInterval(timer);
      return peakKb / 1024;
    },
  };
}
