import type { Logger } from "pino";
import type { PublishedEvent, PublishFailure, Store } from "../store/index.js";
import { PublishError } from "./publisher.js";

/** How long acknowledgements gather before one transaction records them all. */
const MARK_DELAY_MS = 20;
/** How long a written mark is still remembered in memory (at least; at most twice that). */
const RECENT_MARKS_MS = 5_000;

/**
 * Collects the outcomes of direct publishes and writes them in batches: one
 * transaction marks every event acknowledged within {@link MARK_DELAY_MS}
 * (marks are not urgent: an unmarked event is at worst re-published, and
 * deduplicated), and failed ones are handed back to the relay instead of
 * waiting for their lease to run out.
 */
export class OutboxMarks {
  readonly #store: Store;
  readonly #logger: Logger;
  readonly #onReleased: () => void;
  #published: PublishedEvent[] = [];
  readonly #unwritten = new Set<string>();
  /**
   * Ids whose mark was written lately, in two generations of {@link RECENT_MARKS_MS}:
   * a retry may read its row (unpublished) just before the mark lands, and must
   * still answer `published: true` like the call it repeats.
   */
  #recentlyWritten = new Set<string>();
  #previouslyWritten = new Set<string>();
  #generationStartedAtMs = Date.now();
  #failures: PublishFailure[] = [];
  #flushing: Promise<void> | undefined;
  #isScheduled = false;

  constructor(store: Store, logger: Logger, onReleased: () => void) {
    this.#store = store;
    this.#logger = logger;
    this.#onReleased = onReleased;
  }

  published(event: PublishedEvent): void {
    this.#published.push(event);
    this.#unwritten.add(event.eventId);
    this.#schedule();
  }

  /**
   * True when JetStream acknowledged the event but the mark is not written yet:
   * readers combine it with the store so GetScore never contradicts SubmitScore.
   */
  isAcknowledged(eventId: string): boolean {
    return (
      this.#unwritten.has(eventId) ||
      this.#recentlyWritten.has(eventId) ||
      this.#previouslyWritten.has(eventId)
    );
  }

  /**
   * A direct publish failed (or was not tried): the relay takes the event at once,
   * unless JetStream can never take it as it is, then it is parked.
   */
  failed(eventId: string, reason?: unknown): void {
    const error = reason instanceof Error ? reason.message : "not published directly";
    this.#failures.push(
      reason instanceof PublishError && reason.isPermanent
        ? { eventId, kind: "park", error }
        : { eventId, kind: "retry", retryAtMs: 0, error },
    );
    this.#schedule();
  }

  /** Writes everything collected so far. */
  async flush(): Promise<void> {
    while (this.#flushing || this.#published.length > 0 || this.#failures.length > 0) {
      if (this.#flushing) await this.#flushing;
      else await this.#write();
    }
  }

  #schedule(): void {
    if (this.#isScheduled) return;
    this.#isScheduled = true;
    setTimeout(() => {
      this.#isScheduled = false;
      if (!this.#flushing) void this.#write();
      else void this.#flushing.then(() => this.#schedule());
    }, MARK_DELAY_MS);
  }

  #rememberWritten(published: readonly PublishedEvent[]): void {
    const nowMs = Date.now();
    if (nowMs - this.#generationStartedAtMs >= RECENT_MARKS_MS) {
      this.#previouslyWritten = this.#recentlyWritten;
      this.#recentlyWritten = new Set();
      this.#generationStartedAtMs = nowMs;
    }
    for (const event of published) {
      this.#unwritten.delete(event.eventId);
      this.#recentlyWritten.add(event.eventId);
    }
  }

  async #write(): Promise<void> {
    const published = this.#published;
    const failures = this.#failures;
    this.#published = [];
    this.#failures = [];
    this.#flushing = (async () => {
      try {
        await this.#store.markPublished(published);
        if (failures.length > 0) {
          await this.#store.releaseClaims(failures);
          this.#onReleased();
        }
      } catch (error) {
        // Not fatal: unmarked events stay pending and the relay re-publishes them
        // (deduplicated by event id) once their lease ends.
        this.#logger.error(
          { err: error, published: published.length, failed: failures.length },
          "could not record publish outcomes; the relay will re-publish those events",
        );
      } finally {
        this.#rememberWritten(published);
        this.#flushing = undefined;
      }
    })();
    await this.#flushing;
  }
}
