import type { NewScore, RecordOutcome, Store } from "./store.js";

/** Knobs of group commit. */
export interface GroupCommitOptions {
  /** Most scores in one transaction. */
  maxBatch: number;
  /**
   * Batches handed to the store before the first is committed. A store that
   * commits in order on another thread stays busy with 2: it commits one batch
   * while the next waits; that store commits batches in the order it receives
   * them. PostgreSQL runs batches side by side; its unique constraint on
   * (submission, sequence) keeps each submission's scores in commit order.
   */
  maxBatchesInFlight?: number;
  /**
   * How long new outbox rows stay leased to the direct publish that follows the
   * commit; asked per batch (0 while NATS is down, so the relay owns them at once).
   */
  directLeaseMs: () => number;
}

interface Waiting {
  score: NewScore;
  resolve(outcome: RecordOutcome): void;
  reject(error: unknown): void;
}

/**
 * Batches the scores that arrive together into one store transaction, so
 * concurrent SubmitScore calls share one fsync instead of paying one each.
 * A batch closes at the end of the current event-loop turn or at `maxBatch`;
 * while `maxBatchesInFlight` batches are with the store, whatever arrives forms
 * the next one.
 */
export class GroupCommit {
  readonly #store: Store;
  readonly #options: GroupCommitOptions;
  #queue: Waiting[] = [];
  #isScheduled = false;
  #batchesInFlight = 0;

  constructor(store: Store, options: GroupCommitOptions) {
    this.#store = store;
    this.#options = options;
  }

  /** Records one score; resolves once its transaction has committed. */
  record(score: NewScore): Promise<RecordOutcome> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ score, resolve, reject });
      this.#schedule();
    });
  }

  /** Scores waiting for a transaction. */
  get queued(): number {
    return this.#queue.length;
  }

  #schedule(): void {
    if (this.#isScheduled || this.#batchesInFlight >= (this.#options.maxBatchesInFlight ?? 1)) {
      return;
    }
    this.#isScheduled = true;
    setImmediate(() => {
      this.#isScheduled = false;
      void this.#commitNext();
    });
  }

  async #commitNext(): Promise<void> {
    const batch = this.#queue.splice(0, this.#options.maxBatch);
    if (batch.length === 0) return;
    this.#batchesInFlight += 1;
    try {
      const outcomes = await this.#store.recordScores(
        batch.map((waiting) => waiting.score),
        Date.now() + this.#options.directLeaseMs(),
      );
      batch.forEach((waiting, index) => {
        const outcome = outcomes[index];
        if (outcome) waiting.resolve(outcome);
        else waiting.reject(new Error("the store returned fewer outcomes than scores"));
      });
    } catch (error) {
      for (const waiting of batch) waiting.reject(error);
    } finally {
      this.#batchesInFlight -= 1;
      if (this.#queue.length > 0) this.#schedule();
    }
  }
}
