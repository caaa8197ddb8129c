import { setTimeout as delay } from "node:timers/promises";
import { readinessOf } from "./gradecast-probes.js";

/** A change of what gradecast's health said; `atMs` is `Date.now()` of the first such answer. */
export interface ReadinessChange {
  readonly atMs: number;
  readonly status: string;
}

const POLL_INTERVAL_MS = 250;

/**
 * Asks gradecast's gRPC health every 250 ms for as long as the campaign runs and keeps each
 * change, so the time readiness took to come back after the last fault is measured, not
 * guessed from one look at the end.
 */
export class ReadinessWatch {
  readonly #address: string;
  readonly #changes: ReadinessChange[] = [];
  readonly #stopped = new AbortController();
  #loop: Promise<void> | undefined;

  constructor(address: string) {
    this.#address = address;
  }

  /** Every change so far, oldest first. */
  get changes(): readonly ReadinessChange[] {
    return this.#changes;
  }

  /** The latest answer. */
  get current(): ReadinessChange | undefined {
    return this.#changes.at(-1);
  }

  start(): void {
    this.#loop ??= this.#poll();
  }

  /**
   * Resolves once the latest answer is SERVING (true) or at `timeoutMs` (false); the watch
   * keeps polling meanwhile.
   */
  async waitUntilServing(timeoutMs: number, signal: AbortSignal): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!signal.aborted && !this.#stopped.signal.aborted) {
      if (this.current?.status === "SERVING") return true;
      if (Date.now() >= deadline) return false;
      await delay(POLL_INTERVAL_MS);
    }
    return this.current?.status === "SERVING";
  }

  async stop(): Promise<void> {
    this.#stopped.abort();
    await this.#loop;
  }

  async #poll(): Promise<void> {
    const signal = this.#stopped.signal;
    while (!signal.aborted) {
      const status = await readinessOf(this.#address);
      // A refused connection while gradecast restarts is one status, whatever its wording.
      const summary = /^(SERVING|NOT_SERVING|UNKNOWN|SERVICE_UNKNOWN)$/.test(status)
        ? status
        : "no answer";
      if (this.current?.status !== summary)
        this.#changes.push({ atMs: Date.now(), status: summary });
      await delay(POLL_INTERVAL_MS, undefined, { signal }).catch((error: unknown) => {
        if (!signal.aborted) throw error;
      });
    }
  }
}
