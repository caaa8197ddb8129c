import { readFile } from "node:fs/promises";

/** Resident set size of a process now, in bytes, from `VmRSS` in `/proc/<pid>/status` (Linux). */
export async function processRssBytes(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const kilobytes = Number(/^VmRSS:\s+(\d+)\s+kB$/m.exec(status)?.[1]);
  if (!Number.isFinite(kilobytes)) {
    throw new Error(`cannot read the RSS of process ${pid} from /proc/${pid}/status`);
  }
  return kilobytes * 1024;
}

/** The highest RSS a {@link watchPeakRss} saw. */
export interface PeakRss {
  /** Highest RSS sampled so far, in bytes. */
  readonly peakBytes: number;
  /** Stops sampling; resolves with the highest RSS seen, the last sample included. */
  stop(): Promise<number>;
}

/**
 * Samples a process's RSS every `intervalMs` until stopped. A sampler, not a wait: RSS can rise
 * and fall between two samples, so keep the interval short next to what is measured.
 */
export function watchPeakRss(pid: number, intervalMs = 100): PeakRss {
  let peakBytes = 0;
  let isStopped = false;
  const sample = async () => {
    peakBytes = Math.max(peakBytes, await processRssBytes(pid));
  };
  const loop = (async () => {
    while (!isStopped) {
      await sample();
      await new Promise((wake) => setTimeout(wake, intervalMs));
    }
    await sample();
  })();
  return {
    get peakBytes() {
      return peakBytes;
    },
    stop: async () => {
      isStopped = true;
      await loop;
      return peakBytes;
    },
  };
}

/** Bytes as whole megabytes (MiB), for messages and figures. */
export function megabytes(bytes: number): number {
  return Math.round(bytes / (1024 * 1024));
}
