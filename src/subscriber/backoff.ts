/**
 * How long JetStream waits before redelivering an event whose handler failed: a function
 * of the delivery that failed (1 for the first), or a list read by delivery (the last entry
 * repeats once the list runs out).
 */
export type Backoff = ((deliveryCount: number) => number) | readonly number[];

/** The default: 1 s after the first failure, doubling per delivery, never above 60 s. */
export function exponentialBackoffMs(deliveryCount: number): number {
  const exponent = Math.min(Math.max(deliveryCount, 1) - 1, 16);
  return Math.min(1_000 * 2 ** exponent, 60_000);
}

/** The redelivery delay after failed delivery number `deliveryCount`, in whole ms (>= 0). */
export function backoffDelayMs(backoff: Backoff, deliveryCount: number): number {
  const raw =
    typeof backoff === "function"
      ? backoff(deliveryCount)
      : (backoff[Math.min(Math.max(deliveryCount, 1), backoff.length) - 1] ?? 0);
  return Number.isFinite(raw) && raw > 0 ? Math.round(raw) : 0;
}
