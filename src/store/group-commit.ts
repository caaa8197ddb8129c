import type { EventEncoder, NewScore, RecordOutcome, Store } from "./store.js";

/** Knobs of group commit. */
export interface GroupCommitOptions {
  /** Most scores in one transaction. */
  maxBatch: number;
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
 * one transaction runs at a time, and whatever arrives meanwhile forms the next.
 */
export class GroupCommit {
  readonly #store: Store;
  readonly #encode: EventEncoder;
  readonly #options: GroupCommitOptions;
  #queue: Waiting[] = [];
  #isScheduled = false;
  #isCommitting = false;

  constructor(store: Store, encode: EventEncoder, options: GroupCommitOptions) {
    this.#store = store;
    this.#encode = encode;
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
    if (this.#isScheduled || this.#isCommitting) return;
    this.#isScheduled = true;
    setImmediate(() => {
      this.#isScheduled = false;
      void this.#commitNext();
    });
  }

  async #commitNext(): Promise<void> {
    const batch = this.#queue.splice(0, this.#options.maxBatch);
    if (batch.length === 0) return;
    this.#isCommitting = true;
    try {
      const outcomes = await this.#store.recordScores(
        batch.map((waiting) => waiting.score),
        this.#encode,
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
      this.#isCommitting = false;
      if (this.#queue.length > 0) this.#schedule();
    }
  }
}
