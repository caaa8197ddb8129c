import { setTimeout as delay } from "node:timers/promises";

/**
 * Waits `ms` (not at all when it is not positive), or less when `signal` aborts: for pacing
 * (a call rate, a fault plan, a retry backoff), never to wait for something to happen.
 */
export async function pause(ms: number, signal: AbortSignal): Promise<void> {
  if (ms <= 0 || signal.aborted) return;
  await delay(ms, undefined, { signal }).catch((error: unknown) => {
    if (!signal.aborted) throw error;
  });
}
