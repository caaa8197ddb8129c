import { Worker } from "node:worker_threads";
import { StoreUnavailableError } from "../contract/index.js";
import type { SqliteStoreOptions } from "./sqlite-store.js";
import type {
  NewScore,
  OutboxBacklog,
  OutboxEntry,
  OutboxListing,
  OutboxPruning,
  PublishedEvent,
  PublishFailure,
  RecordOutcome,
  Store,
  StoredScore,
  SubmissionHistoryEntry,
  SubmissionHistoryOptions,
  SubmissionKey,
} from "./store.js";
import {
  deserializeError,
  fromWireOutcome,
  type StoreMethod,
  type StoreReply,
  type WireOutcome,
} from "./store-messages.js";

interface Pending {
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

/**
 * The SQLite store on its own thread. better-sqlite3 is synchronous: in the
 * serving thread each commit's fsync would stall gRPC and NATS I/O. Here the
 * worker commits one batch while this thread parses and gathers the next, so
 * group commit batches grow with load instead of queueing behind the disk.
 */
export class ThreadedSqliteStore implements Store {
  readonly #options: SqliteStoreOptions;
  #worker: Worker | undefined;
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  #failure: Error | undefined;

  constructor(options: SqliteStoreOptions) {
    this.#options = options;
  }

  async start(): Promise<void> {
    const worker = spawnWorker(this.#options);
    this.#worker = worker;
    const started = new Promise<unknown>((resolve, reject) =>
      this.#pending.set(0, { resolve, reject }),
    );
    worker.on("message", (reply: StoreReply) => this.#settle(reply));
    worker.on("error", (error) => this.#fail(error));
    worker.on("exit", (code) =>
      this.#fail(new Error(`the SQLite worker exited with code ${code}`)),
    );
    // A worker whose store did not open would keep the process alive (serve would never exit).
    await started.catch(async (error: unknown) => {
      this.#worker = undefined;
      await worker.terminate();
      throw error;
    });
  }

  async close(): Promise<void> {
    const worker = this.#worker;
    if (!worker) return;
    try {
      await this.#call("close", []);
    } finally {
      this.#worker = undefined;
      await worker.terminate();
    }
  }

  async recordScores(scores: readonly NewScore[], leaseUntilMs: number): Promise<RecordOutcome[]> {
    const outcomes = (await this.#call("recordScores", [scores, leaseUntilMs])) as WireOutcome[];
    return outcomes.map(fromWireOutcome);
  }

  latestScore(submission: SubmissionKey): Promise<StoredScore | undefined> {
    return this.#call("latestScore", [submission]) as Promise<StoredScore | undefined>;
  }

  latestScoresAcrossQueues(submissionId: bigint): Promise<StoredScore[]> {
    return this.#call("latestScoresAcrossQueues", [submissionId]) as Promise<StoredScore[]>;
  }

  claimPending(limit: number, nowMs: number, leaseUntilMs: number): Promise<OutboxEntry[]> {
    return this.#call("claimPending", [limit, nowMs, leaseUntilMs]) as Promise<OutboxEntry[]>;
  }

  async markPublished(events: readonly PublishedEvent[]): Promise<void> {
    if (events.length > 0) await this.#call("markPublished", [events]);
  }

  async releaseClaims(failures: readonly PublishFailure[]): Promise<void> {
    if (failures.length > 0) await this.#call("releaseClaims", [failures]);
  }

  outboxBacklog(): Promise<OutboxBacklog> {
    return this.#call("outboxBacklog", []) as Promise<OutboxBacklog>;
  }

  listOutbox(options: { limit: number; parkedOnly: boolean }): Promise<OutboxListing[]> {
    return this.#call("listOutbox", [options]) as Promise<OutboxListing[]>;
  }

  unparkEvents(eventIds: readonly string[] | undefined): Promise<number> {
    return this.#call("unparkEvents", [eventIds]) as Promise<number>;
  }

  /** Each call is one message: commits queued meanwhile run between two calls. */
  pruneOutbox(pruning: OutboxPruning): Promise<number> {
    return this.#call("pruneOutbox", [pruning]) as Promise<number>;
  }

  submissionHistory(
    submissionId: bigint,
    options: SubmissionHistoryOptions,
  ): Promise<SubmissionHistoryEntry[]> {
    return this.#call("submissionHistory", [submissionId, options]) as Promise<
      SubmissionHistoryEntry[]
    >;
  }

  #call(method: StoreMethod, args: unknown[]): Promise<unknown> {
    const worker = this.#worker;
    if (!worker || this.#failure) {
      return Promise.reject(
        new StoreUnavailableError(
          this.#failure
            ? `the SQLite store failed: ${this.#failure.message}`
            : "the SQLite store is not open",
          { cause: this.#failure },
        ),
      );
    }
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      worker.postMessage({ id, method, args });
    });
  }

  #settle(reply: StoreReply): void {
    const pending = this.#pending.get(reply.id);
    if (!pending) return;
    this.#pending.delete(reply.id);
    if (reply.isOk) pending.resolve(reply.value);
    else pending.reject(deserializeError(reply.error));
  }

  /** The worker died: every waiting call fails, and so does every later one. */
  #fail(error: Error): void {
    if (!this.#worker) return;
    this.#failure ??= error;
    for (const [id, pending] of this.#pending) {
      pending.reject(
        new StoreUnavailableError(`the SQLite store failed: ${error.message}`, { cause: error }),
      );
      this.#pending.delete(id);
    }
  }
}

/**
 * The worker's V8 heap. Without limits a worker gets the defaults of a whole process (a young
 * generation of up to 48 MB, an old one sized to the machine's memory), for a thread that holds
 * one batch at a time. The largest it holds is a relay claim or a group-commit batch of
 * scores at the largest request size, well under the old generation's bound.
 */
const WORKER_HEAP_LIMITS = { maxYoungGenerationSizeMb: 8, maxOldGenerationSizeMb: 96 };

/**
 * Starts the worker next to this module: the compiled `.js`, or, when running
 * from TypeScript sources (tests, tsx), the `.ts` through tsx's loader, which
 * Node 20 does not pass on to workers by itself.
 */
function spawnWorker(options: SqliteStoreOptions): Worker {
  if (!import.meta.url.endsWith(".ts")) {
    return new Worker(new URL("./sqlite-worker.js", import.meta.url), {
      workerData: options,
      resourceLimits: WORKER_HEAP_LIMITS,
    });
  }
  const tsxApi = import.meta.resolve("tsx/esm/api");
  const entry = new URL("./sqlite-worker.ts", import.meta.url).href;
  const bootstrap = `import(${JSON.stringify(tsxApi)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(entry)}); });`;
  return new Worker(bootstrap, {
    eval: true,
    workerData: options,
    resourceLimits: WORKER_HEAP_LIMITS,
  });
}
