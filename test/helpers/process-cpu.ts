import { execFileSync } from "node:child_process";
import { readFile } from "node:fs/promises";

let clockTicksPerSecond: number | undefined;

/**
 * CPU time (user + system, all threads) a process has used so far, in seconds, from
 * `/proc/<pid>/stat` (Linux). CPU time, unlike wall time, barely moves when other processes
 * load the machine, so per-call figures from it hold on a busy CI host. Resolution: one clock
 * tick (usually 10 ms), so measure over many calls.
 */
export async function processCpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8");
  // Fields after the command name, which is in parentheses and may hold spaces: state is
  // field 3, utime 14, stime 15 (1-based), so 11 and 12 here.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const userTicks = Number(fields[11]);
  const systemTicks = Number(fields[12]);
  if (!Number.isFinite(userTicks) || !Number.isFinite(systemTicks)) {
    throw new Error(`cannot read the CPU time of process ${pid} from /proc/${pid}/stat`);
  }
  clockTicksPerSecond ??= Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim());
  return (userTicks + systemTicks) / clockTicksPerSecond;
}
