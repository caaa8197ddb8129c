// What a process has used, from Linux's /proc: CPU time and peak resident memory.
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";

/** One reading of a process's counters. */
export interface UsageReading {
  /** User + system CPU seconds since the process started. */
  cpuS: number;
  /** Peak resident set size (VmHWM) since start or the last {@link resetPeakRss}, in bytes. */
  peakRssBytes: number;
}

/** What a process used between two readings. */
export interface UsageDelta {
  cpuS: number;
  /** Peak RSS reached by the end of the interval (see {@link resetPeakRss}). */
  peakRssBytes: number;
}

let clockTicksPerS: number | undefined;

/** `getconf CLK_TCK` (the unit of utime and stime), 100 when it cannot be asked. */
function ticksPerS(): number {
  if (clockTicksPerS === undefined) {
    try {
      clockTicksPerS = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim());
    } catch (error) {
      process.stderr.write(
        `bench: getconf CLK_TCK failed (${(error as Error).message}); using 100\n`,
      );
      clockTicksPerS = 100;
    }
  }
  return clockTicksPerS;
}

/** Reads `pid`'s CPU seconds and peak RSS. Linux only. */
export function readUsage(pid: number): UsageReading {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // Fields after the command name (which may hold spaces) start at field 3 ("state").
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const hwmKb = Number(/^VmHWM:\s+(\d+) kB/m.exec(status)?.[1] ?? Number.NaN);
  return { cpuS: (utime + stime) / ticksPerS(), peakRssBytes: hwmKb * 1024 };
}

/**
 * Resets `pid`'s VmHWM to its current RSS (`echo 5 > clear_refs`), so the next reading's peak
 * belongs to the next scenario. False when the kernel refuses; peaks then cover the whole run.
 */
export function resetPeakRss(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, "5");
    return true;
  } catch (error) {
    process.stderr.write(`bench: cannot reset peak RSS of ${pid}: ${(error as Error).message}\n`);
    return false;
  }
}

/** Measures `pid` around `work`: CPU seconds spent and the peak RSS reached meanwhile. */
export async function measureUsage<T>(
  pid: number,
  work: () => Promise<T>,
): Promise<{ result: T; usage: UsageDelta }> {
  resetPeakRss(pid);
  const before = readUsage(pid);
  const result = await work();
  const after = readUsage(pid);
  return { result, usage: { cpuS: after.cpuS - before.cpuS, peakRssBytes: after.peakRssBytes } };
}
