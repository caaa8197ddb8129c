import type { Logger } from "pino";
import type { PublishedEvent, Store } from "../store/index.js";
import type { NatsLink } from "./nats-link.js";
import type { EventPublisher } from "./publisher.js";

/** Knobs of the relay. */
export interface OutboxRelayOptions {
  /** Most entries claimed and published (pipelined) per round. */
  batchSize: number;
  /** How long a claimed entry stays with this relay before another may take it. */
  leaseMs: number;
  /** How often an idle relay looks for entries nobody woke it for (expired leases). */
  idlePollMs: number;
  /** First wait after a failed round; doubles per failed round up to `maxBackoffMs`. */
  initialBackoffMs: number;
  maxBackoffMs: number;
  /** Runs before retrying after a failed round, e.g. to re-create a deleted stream. */
  beforeRetry?: () => Promise<void>;
}

type RelayState = "idle" | "running" | "stopping" | "stopped";

/**
 * Publishes what the outbox holds, oldest first, in pipelined batches. It is
 * what makes "nothing lost" true: whatever the direct publish after a commit
 * did not get acknowledged (NATS down, slow, process killed) stays pending in
 * the store, and this loop publishes it when it can, backing off (capped,
 * exponential) while NATS is unavailable. Re-publishes carry the same event id,
 * so JetStream's duplicate window drops the ones that had landed.
 */
export class OutboxRelay {
  readonly #store: Store;
  readonly #publisher: EventPublisher;
  readonly #link: NatsLink;
  readonly #options: OutboxRelayOptions;
  readonly #logger: Logger;
  #state: RelayState = "idle";
  #wakeUp: (() => void) | undefined;
  #isWoken = false;
  #loop: Promise<void> | undefined;
  #stopDeadlineMs = 0;
  #backoffMs = 0;
  #publishedTotal = 0;

  constructor(
    store: Store,
    publisher: EventPublisher,
    link: NatsLink,
    options: OutboxRelayOptions,
    logger: Logger,
  ) {
    this.#store = store;
    this.#publisher = publisher;
    this.#link = link;
    this.#options = options;
    this.#logger = logger;
  }

  /** Starts the loop; it first drains whatever a previous process left pending. */
  start(): void {
    if (this.#state !== "idle") return;
    this.#state = "running";
    this.#loop = this.#run().catch((error: unknown) => {
      this.#logger.error({ err: error }, "outbox relay stopped on an unexpected error");
    });
  }

  /** Asks the loop to look at the outbox now (a direct publish failed, NATS came back). */
  wake(): void {
    this.#isWoken = true;
    this.#wakeUp?.();
  }

  /** Events this relay has published since it started. */
  get publishedTotal(): number {
    return this.#publishedTotal;
  }

  /**
   * Stops the loop after giving it up to `flushTimeoutMs` to publish what is
   * pending. Whatever is left stays in the outbox for the next start.
   */
  async stop(flushTimeoutMs: number): Promise<void> {
    if (this.#state === "idle") {
      this.#state = "stopped";
      return;
    }
    if (this.#state !== "running") return this.#loop;
    this.#state = "stopping";
    this.#stopDeadlineMs = Date.now() + flushTimeoutMs;
    this.wake();
    await this.#loop;
    this.#state = "stopped";
  }

  async #run(): Promise<void> {
    while (this.#state === "running" || this.#isFlushing()) {
      if (!this.#link.isConnected) {
        // Nothing can be flushed without NATS: stopping need not wait out the deadline.
        if (this.#state === "stopping") return;
        await this.#pause(this.#options.idlePollMs);
        continue;
      }
      const published = await this.#publishRound();
      if (published === "failed") {
        this.#backoffMs = Math.min(
          this.#options.maxBackoffMs,
          Math.max(this.#options.initialBackoffMs, this.#backoffMs * 2),
        );
        await this.#pause(this.#backoffMs);
        await this.#options.beforeRetry?.().catch((error: unknown) => {
          this.#logger.warn({ err: error }, "preparing the outbox relay retry failed");
        });
      } else if (published === 0) {
        if (this.#state === "stopping") return;
        await this.#pause(this.#options.idlePollMs);
      }
    }
  }

  /** One claim-publish-mark round: the number published, or "failed" if any publish failed. */
  async #publishRound(): Promise<number | "failed"> {
    const nowMs = Date.now();
    const entries = await this.#store.claimPending(
      this.#options.batchSize,
      nowMs,
      nowMs + this.#options.leaseMs,
    );
    if (entries.length === 0) return 0;
    // All publishes go out at once on one connection, in position order, so the
    // stream receives them in commit order; the acks come back together.
    const results = await Promise.allSettled(
      entries.map((entry) => this.#publisher.publish(entry)),
    );
    const published: PublishedEvent[] = [];
    const failedIds: string[] = [];
    let firstFailure: unknown;
    results.forEach((result, index) => {
      if (result.status === "fulfilled") published.push(result.value);
      else {
        failedIds.push(entries[index]?.eventId ?? "");
        firstFailure ??= result.reason;
      }
    });
    await this.#store.markPublished(published);
    this.#publishedTotal += published.length;
    if (failedIds.length > 0) {
      await this.#store.releaseClaims(failedIds);
      if (this.#backoffMs === 0) {
        this.#logger.warn(
          { err: firstFailure, failed: failedIds.length, published: published.length },
          "outbox relay could not publish; retrying with backoff",
        );
      }
      return "failed";
    }
    if (this.#backoffMs > 0) {
      this.#logger.info({ published: published.length }, "outbox relay is publishing again");
      this.#backoffMs = 0;
    }
    return published.length;
  }

  #isFlushing(): boolean {
    return this.#state === "stopping" && Date.now() < this.#stopDeadlineMs;
  }

  /** Waits `ms`, or less when woken; never past the stop deadline. */
  #pause(ms: number): Promise<void> {
    if (this.#isWoken) {
      this.#isWoken = false;
      return Promise.resolve();
    }
    const waitMs =
      this.#state === "stopping"
        ? Math.max(0, Math.min(ms, this.#stopDeadlineMs - Date.now()))
        : ms;
    return new Promise((resolve) => {
      const timer = setTimeout(done, waitMs);
      this.#wakeUp = done;
      const self = this;
      function done() {
        clearTimeout(timer);
        self.#wakeUp = undefined;
        self.#isWoken = false;
        resolve();
      }
    });
  }
}
