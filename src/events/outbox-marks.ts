import type { Logger } from "pino";
import type { PublishedEvent, Store } from "../store/index.js";

/** How long acknowledgements gather before one transaction records them all. */
const MARK_DELAY_MS = 20;

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
  #failedIds: string[] = [];
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
    return this.#unwritten.has(eventId);
  }

  failed(eventId: string): void {
    this.#failedIds.push(eventId);
    this.#schedule();
  }

  /** Writes everything collected so far. */
  async flush(): Promise<void> {
    while (this.#flushing || this.#published.length > 0 || this.#failedIds.length > 0) {
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

  async #write(): Promise<void> {
    const published = this.#published;
    const failedIds = this.#failedIds;
    this.#published = [];
    this.#failedIds = [];
    this.#flushing = (async () => {
      try {
        await this.#store.markPublished(published);
        if (failedIds.length > 0) {
          await this.#store.releaseClaims(failedIds);
          this.#onReleased();
        }
      } catch (error) {
        // Not fatal: unmarked events stay pending and the relay re-publishes them
        // (deduplicated by event id) once their lease ends.
        this.#logger.error(
          { err: error, published: published.length, failed: failedIds.length },
          "could not record publish outcomes; the relay will re-publish those events",
        );
      } finally {
        for (const event of published) this.#unwritten.delete(event.eventId);
        this.#flushing = undefined;
      }
    })();
    await this.#flushing;
  }
}
