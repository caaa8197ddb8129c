import type { Logger } from "pino";
import type { OutboxEntry, PublishedEvent, PublishFailure, Store } from "../store/index.js";
import type { NatsLink } from "./nats-link.js";
import { type EventPublisher, PublishError, type PublishFailureReason } from "./publisher.js";

/** Knobs of the relay. */
export interface OutboxRelayOptions {
  /** Most entries claimed and published (pipelined) per round. */
  batchSize: number;
  /** How long a claimed entry stays with this relay before another may take it. */
  leaseMs: number;
  /** How often an idle relay looks for entries nobody woke it for (expired leases). */
  idlePollMs: number;
  /**
   * First wait after a failed round, and before an event's second attempt; doubles per
   * failed round (per failed attempt of an event) up to `maxBackoffMs`.
   */
  initialBackoffMs: number;
  maxBackoffMs: number;
  /** Runs before retrying after a failed round, e.g. to re-create a deleted stream. */
  beforeRetry?: () => Promise<void>;
  /**
   * Told of each event whose publish failed and that is set to be tried again (not parked),
   * with the failure's reason (metrics); must be cheap.
   */
  onRetry?: (reason: PublishFailureReason) => void;
}

type RelayState = "idle" | "running" | "stopping" | "stopped";

/**
 * Publishes what the outbox holds, oldest first, in pipelined batches. It is
 * what makes "nothing lost" true: whatever the direct publish after a commit
 * did not get acknowledged (NATS down, slow, process killed) stays pending in
 * the store, and this loop publishes it when it can, backing off (capped,
 * exponential) while NATS is unavailable. Re-publishes carry the same event id,
 * so JetStream's duplicate window drops the ones that had landed.
 *
 * No event can hold back the others: a failed event gets its own backoff
 * (stored as its lease, so it is not claimed again before then) while later
 * ones keep flowing, and an event JetStream can never take as it is (too
 * large) is parked until an operator re-drives it (`gradecast outbox retry`).
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
  #parkedTotal = 0;
  /** A publish of the last round found no stream for its subject. */
  #isStreamMissing = false;
  /**
   * Events given their own backoff in a round where nothing could be published (id → error):
   * likely a passing state of NATS, so they are retried as soon as a publish succeeds again.
   */
  readonly #heldBack = new Map<string, string>();
  /** A publish succeeded while events were held back. */
  #isNatsBack = false;
  /** The last round failed in the store (logged once per run of such failures). */
  #isStoreFailing = false;

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

  /**
   * Tells the relay that a publish outside it was acknowledged: if it is backing
   * off, NATS works again and there is no reason to wait out the backoff.
   */
  notePublishAcknowledged(): void {
    if (this.#backoffMs > 0) this.wake();
    if (this.#heldBack.size > 0 && !this.#isNatsBack) {
      this.#isNatsBack = true;
      this.wake();
    }
  }

  /** Events this relay has published since it started. */
  get publishedTotal(): number {
    return this.#publishedTotal;
  }

  /** Events this relay has parked since it started. */
  get parkedTotal(): number {
    return this.#parkedTotal;
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
      const published = await this.#storeRound();
      if (published === "failed") {
        this.#backoffMs = Math.min(
          this.#options.maxBackoffMs,
          Math.max(this.#options.initialBackoffMs, this.#backoffMs * 2),
        );
        await this.#pause(this.#backoffMs);
        await this.#prepareRetry();
      } else if (this.#isStreamMissing) {
        // "No stream captures the subject": the stream may have been deleted; set it up again.
        this.#isStreamMissing = false;
        await this.#prepareRetry();
      } else if (published === 0) {
        if (this.#state === "stopping") return;
        await this.#pause(this.#options.idlePollMs);
      }
    }
  }

  /** Makes the held-back events due now: NATS has taken a publish since they failed. */
  async #releaseHeldBack(): Promise<void> {
    this.#isNatsBack = false;
    const released: PublishFailure[] = [...this.#heldBack].map(([eventId, error]) => ({
      eventId,
      kind: "retry",
      retryAtMs: 0,
      error,
    }));
    this.#heldBack.clear();
    await this.#store.releaseClaims(released);
  }

  /**
   * One round, with the store's failures (PostgreSQL gone, a locked file) taken as a failed
   * round: the relay backs off and tries again. Were it to stop, what waits in the outbox
   * would stay there until a restart, and nothing would tell readiness the store is back.
   */
  async #storeRound(): Promise<number | "failed"> {
    try {
      if (this.#isNatsBack) await this.#releaseHeldBack();
      const settled = await this.#publishRound();
      this.#isStoreFailing = false;
      return settled;
    } catch (error) {
      if (!this.#isStoreFailing) {
        this.#logger.warn(
          { err: error },
          "outbox relay cannot reach the store; retrying with backoff",
        );
        this.#isStoreFailing = true;
      }
      return "failed";
    }
  }

  #prepareRetry(): Promise<void> {
    return (
      this.#options.beforeRetry?.().catch((error: unknown) => {
        this.#logger.warn({ err: error }, "preparing the outbox relay retry failed");
      }) ?? Promise.resolve()
    );
  }

  /**
   * One claim-publish-mark round: how many events it settled (published, parked or
   * set to retry later), or "failed" when NATS took none and the events themselves
   * were not the cause (not connected, disconnected): the whole relay backs off.
   */
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
      entries.map((entry) => this.#publisher.publish(entry, "relay")),
    );
    const published: PublishedEvent[] = [];
    const failures: PublishFailure[] = [];
    /** The claimed entry of each failure, index for index. */
    const failedEntries: OutboxEntry[] = [];
    let firstFailure: unknown;
    results.forEach((result, index) => {
      const entry = entries[index];
      if (!entry) return;
      if (result.status === "fulfilled") {
        published.push(result.value);
        return;
      }
      firstFailure ??= result.reason;
      if (result.reason instanceof PublishError && result.reason.reason === "no-stream") {
        this.#isStreamMissing = true;
      }
      const failure = this.#failureOf(entry, result.reason, Date.now());
      if (failure.kind === "retry") this.#options.onRetry?.(failureReasonOf(result.reason));
      failures.push(failure);
      failedEntries.push(entry);
    });
    await this.#store.markPublished(published);
    this.#publishedTotal += published.length;
    if (failures.length > 0) await this.#store.releaseClaims(failures);
    const parked = failures.filter((failure) => failure.kind === "park");
    this.#parkedTotal += parked.length;
    for (const [index, failure] of failures.entries()) {
      if (failure.kind !== "park") continue;
      this.#logger.error(
        {
          eventId: failure.eventId,
          subject: failedEntries[index]?.message.subject,
          reason: failure.error,
        },
        "outbox event parked: JetStream cannot take it as it is; fix the cause, then run `gradecast outbox retry`",
      );
    }
    const retried = failures.length - parked.length;
    const waitForNats = failures.filter(
      (failure) => failure.kind === "retry" && failure.retryAtMs === 0,
    );
    if (published.length === 0) {
      // Nothing went through: whatever failed on its own may have failed for a passing cause
      // of NATS (a leader election); the first ack anywhere retries those at once.
      // A few attempts only: an event that keeps failing on its own waits out its backoff.
      failures.forEach((failure, index) => {
        const attempts = failedEntries[index]?.attempts ?? 0;
        if (failure.kind !== "retry" || failure.retryAtMs === 0) return;
        if (attempts > MAX_EARLY_RETRIES || this.#heldBack.size >= MAX_HELD_BACK) return;
        this.#heldBack.set(failure.eventId, failure.error);
      });
    } else {
      for (const event of published) this.#heldBack.delete(event.eventId);
    }
    if (published.length === 0 && waitForNats.length > 0) {
      if (this.#backoffMs === 0) {
        this.#logger.warn(
          { err: firstFailure, failed: retried },
          "outbox relay could not publish; retrying with backoff",
        );
      }
      return "failed";
    }
    if (retried > 0) {
      this.#logger.warn(
        { err: firstFailure, failed: retried, published: published.length },
        "some outbox events could not be published; each is retried with its own backoff",
      );
    }
    if (this.#backoffMs > 0 && published.length > 0) {
      this.#logger.info({ published: published.length }, "outbox relay is publishing again");
      this.#backoffMs = 0;
    }
    // Events that failed on their own are out of the way until their retry time: the
    // next round goes on with the ones behind them at once.
    return published.length + failures.length;
  }

  /** A failed event's fate: parked when retrying cannot help, else its own capped backoff. */
  #failureOf(entry: OutboxEntry, reason: unknown, nowMs: number): PublishFailure {
    const error = describe(reason);
    if (reason instanceof PublishError && reason.isPermanent) {
      return { eventId: entry.eventId, kind: "park", error };
    }
    if (
      !(reason instanceof PublishError) ||
      reason.reason === "not-connected" ||
      reason.reason === "disconnected"
    ) {
      // Nothing was wrong with the event: the whole relay backs off until NATS is back,
      // then every such event is due at once.
      return { eventId: entry.eventId, kind: "retry", retryAtMs: 0, error };
    }
    // `attempts` counts claims, this one included: the first failure waits initialBackoffMs.
    const backoffMs = Math.min(
      this.#options.maxBackoffMs,
      this.#options.initialBackoffMs * 2 ** Math.min(30, Math.max(0, entry.attempts - 1)),
    );
    return { eventId: entry.eventId, kind: "retry", retryAtMs: nowMs + backoffMs, error };
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

/** Most held-back event ids remembered; beyond that, events wait out their own backoff. */
const MAX_HELD_BACK = 10_000;
/** Attempts after which a failing event is no longer retried early on the next ack. */
const MAX_EARLY_RETRIES = 5;

/** A failed publish's reason; the publisher rejects with PublishError only, anything else is `refused`. */
function failureReasonOf(reason: unknown): PublishFailureReason {
  return reason instanceof PublishError ? reason.reason : "refused";
}

/** Longest failure text kept with an outbox row. */
const MAX_ERROR_CHARS = 500;

function describe(reason: unknown): string {
  const text = reason instanceof Error ? reason.message : String(reason);
  return text.length > MAX_ERROR_CHARS ? `${text.slice(0, MAX_ERROR_CHARS)}…` : text;
}
