import type { Logger } from "pino";
import type { Store } from "./store.js";

/** Knobs of the pruner. */
export interface OutboxPrunerOptions {
  /** How long an outbox row is kept after its event was published. */
  retentionMs: number;
  /** Time between two pruning rounds, ±10% jitter (instances sharing a database spread out). */
  intervalMs: number;
  /** Most rows one store call deletes: the longest a round holds the store at a time. */
  batchSize: number;
  /** Told how many rows each batch deleted (metrics); must be cheap. */
  onPruned?: (count: number) => void;
}

/** A round that deleted at least this many rows says so at info; smaller ones at debug. */
const NOTABLE_ROUND_ROWS = 10_000;

type PrunerState = "idle" | "running" | "closed";

/**
 * Deletes the outbox rows of events published longer ago than the retention, on a schedule.
 * Once JetStream has acknowledged an event the stream is its history; the outbox row only
 * duplicated the score row (the event bytes, its stream sequence), so without pruning the store
 * would grow with every event instead of with the scores it must keep. Pending and parked rows
 * are never touched: what "nothing acknowledged is lost" rests on stays.
 *
 * A round deletes in bounded batches and yields between them, so SubmitScore's commits (on the
 * same SQLite thread, or the same PostgreSQL pool) wait at most one batch.
 */
export class OutboxPruner {
  readonly #store: Store;
  readonly #options: OutboxPrunerOptions;
  readonly #logger: Logger;
  #state: PrunerState = "idle";
  #timer: NodeJS.Timeout | undefined;
  #round: Promise<void> | undefined;
  /** The last round failed (logged once per run of failures). */
  #isFailing = false;

  constructor(store: Store, options: OutboxPrunerOptions, logger: Logger) {
    this.#store = store;
    this.#options = options;
    this.#logger = logger;
  }

  /** Schedules the first round one (jittered) interval from now. */
  start(): void {
    if (this.#state !== "idle") return;
    this.#state = "running";
    this.#schedule();
  }

  /**
   * Stops scheduling rounds and waits for the one under way, which stops after its current
   * batch: what is left is pruned by the next start.
   */
  async close(): Promise<void> {
    this.#state = "closed";
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#round;
  }

  /**
   * One round: deletes every row published before now minus the retention, batch by batch.
   * Resolves how many rows it deleted; a store failure rejects (after what was deleted).
   */
  async pruneOnce(): Promise<number> {
    const { retentionMs, batchSize, onPruned } = this.#options;
    const publishedBeforeMs = Date.now() - retentionMs;
    let total = 0;
    for (;;) {
      const deleted = await this.#store.pruneOutbox({ publishedBeforeMs, limit: batchSize });
      total += deleted;
      if (deleted > 0) onPruned?.(deleted);
      if (deleted < batchSize || this.#state === "closed") return total;
      // Commits that queued behind this batch go first.
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  #schedule(): void {
    if (this.#state !== "running") return;
    const jitter = 0.9 + Math.random() * 0.2;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#round = this.#runRound().finally(() => {
        this.#round = undefined;
        this.#schedule();
      });
    }, this.#options.intervalMs * jitter);
    // A pending round must not keep a stopping process alive.
    this.#timer.unref();
  }

  async #runRound(): Promise<void> {
    const startedAt = performance.now();
    try {
      const deleted = await this.pruneOnce();
      this.#isFailing = false;
      const fields = {
        deleted,
        retentionMs: this.#options.retentionMs,
        durationMs: Math.round(performance.now() - startedAt),
      };
      if (deleted >= NOTABLE_ROUND_ROWS) {
        this.#logger.info(fields, "pruned published outbox rows");
      } else {
        this.#logger.debug(fields, "pruned published outbox rows");
      }
    } catch (error) {
      // The next round tries again; a store that stays down is logged once, not every round.
      if (!this.#isFailing) {
        this.#logger.warn({ err: error }, "cannot prune the outbox; trying again next round");
        this.#isFailing = true;
      }
    }
  }
}
