import { closeSync, constants, mkdirSync, openSync } from "node:fs";
import { dirname } from "node:path";
import Database from "better-sqlite3";

import { StoreUnavailableError } from "../contract/index.js";
import { HISTORY_COLUMNS, type HistoryRow, historyEntryOfRow } from "./history-rows.js";
import {
  acceptedRecord,
  decideRecord,
  encodeAcceptedEvent,
  entryOfRow,
  type LatestScoreRow,
  listingOfRow,
  type OutboxListingRow,
  type OutboxRow,
  originColumnsOfPayload,
  originColumnValues,
  PUBLISHED_AT_COLUMN,
  type StoredScoreRow,
  storedScoreOfRow,
  storeFailure,
} from "./score-rows.js";
import { SQLITE_EVENT_ORIGIN_VERSION, SQLITE_MIGRATIONS } from "./sqlite-migrations.js";
import type {
  EventEncoding,
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

/** Options of the SQLite store. */
export interface SqliteStoreOptions {
  /** Database file; its directory is created when missing. */
  path: string;
  /** How event messages are built. */
  encoding: EventEncoding;
  /** How long a writer waits for the file lock before failing. */
  busyTimeoutMs?: number;
  /**
   * Whether this store owns the file (default true), so it takes back the
   * outbox leases a previous process held; false for a command run beside a
   * serving process, which must leave that process's leases alone.
   */
  isOwner?: boolean;
}

/**
 * What GetScore reads of a latest score besides its sequence; `s` is `scores`, `o` its
 * left-joined outbox row.
 */
const STORED_SCORE_COLUMNS = `s.event_id, s.points_possible,
  s.points_earned, s.score_msg, s.course_id, s.user_id, s.module_id, s.queue_key, s.queue_name,
  s.event_time_ms, s.event_source, s.event_sourcehost, s.event_sourcelib, s.event_minor_version,
  ${PUBLISHED_AT_COLUMN}, o.payload`;

/** Page size of new database files. */
const PAGE_SIZE_BYTES = 8192;

/**
 * The default store: one SQLite file in WAL mode with `synchronous=FULL`, so a
 * committed score survives a process crash and a power cut. One process owns
 * the file: on start it takes back every outbox lease a previous process held.
 */
export class SqliteStore implements Store {
  readonly #options: SqliteStoreOptions;
  #db: Database.Database | undefined;
  #statements: ReturnType<typeof prepareStatements> | undefined;

  constructor(options: SqliteStoreOptions) {
    this.#options = options;
  }

  async start(): Promise<void> {
    createPrivately(this.#options.path);
    const db = new Database(this.#options.path);
    try {
      // Takes effect only while the file is new. A score row (about 2.3 KB with a
      // 2 KB score_msg) and an outbox row (about 3 KB) each filled most of a
      // default 4 KB page, alone; with 8 KB pages a batch packs them and SQLite
      // writes about a third fewer bytes per score.
      db.pragma(`page_size = ${PAGE_SIZE_BYTES}`);
      db.pragma("journal_mode = WAL");
      db.pragma("synchronous = FULL");
      db.pragma(`busy_timeout = ${this.#options.busyTimeoutMs ?? 5000}`);
      migrate(db);
      db.pragma("foreign_keys = ON");
      this.#statements = prepareStatements(db);
      // A previous process may have died holding leases: this one owns the file now.
      if (this.#options.isOwner !== false) this.#statements.releaseAllLeases.run();
    } catch (error) {
      db.close();
      throw new StoreUnavailableError(
        `cannot open SQLite store at ${this.#options.path}: ${(error as Error).message}`,
        {
          cause: error,
        },
      );
    }
    this.#db = db;
  }

  async close(): Promise<void> {
    this.#db?.close();
    this.#db = undefined;
    this.#statements = undefined;
  }

  async recordScores(scores: readonly NewScore[], leaseUntilMs: number): Promise<RecordOutcome[]> {
    const { db, statements } = this.#open();
    const recordAll = db.transaction((): RecordOutcome[] =>
      scores.map((score) => recordOne(statements, score, this.#options.encoding, leaseUntilMs)),
    );
    try {
      // BEGIN IMMEDIATE: this transaction reads then writes; take the write lock first.
      return recordAll.immediate();
    } catch (error) {
      throw storeFailure("cannot commit scores", error);
    }
  }

  async latestScore(submission: SubmissionKey): Promise<StoredScore | undefined> {
    const { statements } = this.#open();
    const row = statements.selectLatestStored.get(submission.submissionId, submission.queueName) as
      | StoredScoreRow
      | undefined;
    return row && storedScoreOfRow(row, submission.submissionId);
  }

  async latestScoresAcrossQueues(submissionId: bigint): Promise<StoredScore[]> {
    const { statements } = this.#open();
    const rows = statements.selectLatestPerQueue.all(submissionId) as StoredScoreRow[];
    return rows.map((row) => storedScoreOfRow(row, submissionId));
  }

  async claimPending(limit: number, nowMs: number, leaseUntilMs: number): Promise<OutboxEntry[]> {
    const { statements } = this.#open();
    try {
      const rows = statements.claim.all(leaseUntilMs, nowMs, limit) as OutboxRow[];
      return rows.map(entryOfRow).sort((a, b) => a.position - b.position);
    } catch (error) {
      throw storeFailure("cannot claim outbox entries", error);
    }
  }

  async markPublished(events: readonly PublishedEvent[]): Promise<void> {
    if (events.length === 0) return;
    const { db, statements } = this.#open();
    const nowMs = Date.now();
    // Losing a mark to a power cut only means one more (deduplicated) publish,
    // so these commits skip the fsync that score commits pay for.
    db.pragma("synchronous = NORMAL");
    try {
      db.transaction(() => {
        for (const event of events) {
          statements.markPublished.run(nowMs, event.streamSequence, event.eventId);
        }
      })();
    } catch (error) {
      throw storeFailure("cannot mark events published", error);
    } finally {
      db.pragma("synchronous = FULL");
    }
  }

  async releaseClaims(failures: readonly PublishFailure[]): Promise<void> {
    if (failures.length === 0) return;
    const { db, statements } = this.#open();
    try {
      db.transaction(() => {
        for (const failure of failures) {
          if (failure.kind === "park")
            statements.park.run(failure.error, failure.error, failure.eventId);
          else statements.release.run(failure.retryAtMs, failure.error, failure.eventId);
        }
      })();
    } catch (error) {
      throw storeFailure("cannot release outbox leases", error);
    }
  }

  async outboxBacklog(): Promise<OutboxBacklog> {
    const { statements } = this.#open();
    const row = statements.backlog.get() as {
      pending: number;
      oldest: number | null;
      parked: number;
    };
    return { pending: row.pending, oldestCreatedAtMs: row.oldest ?? undefined, parked: row.parked };
  }

  async pruneOutbox(pruning: OutboxPruning): Promise<number> {
    const { db, statements } = this.#open();
    // Losing a prune to a power cut only means pruning those rows again.
    db.pragma("synchronous = NORMAL");
    try {
      return statements.prune.run(pruning.publishedBeforeMs, pruning.limit).changes;
    } catch (error) {
      throw storeFailure("cannot prune the outbox", error);
    } finally {
      db.pragma("synchronous = FULL");
    }
  }

  async listOutbox(options: { limit: number; parkedOnly: boolean }): Promise<OutboxListing[]> {
    const { statements } = this.#open();
    const rows = statements.listOutbox.all(
      options.parkedOnly ? 1 : 0,
      options.limit,
    ) as OutboxListingRow[];
    return rows.map(listingOfRow);
  }

  async unparkEvents(eventIds: readonly string[] | undefined): Promise<number> {
    const { db, statements } = this.#open();
    try {
      if (eventIds === undefined) return statements.unparkAll.run().changes;
      return db.transaction(() =>
        eventIds.reduce((changed, eventId) => changed + statements.unpark.run(eventId).changes, 0),
      )();
    } catch (error) {
      throw storeFailure("cannot unpark outbox entries", error);
    }
  }

  async submissionHistory(
    submissionId: bigint,
    options: SubmissionHistoryOptions,
  ): Promise<SubmissionHistoryEntry[]> {
    const { statements } = this.#open();
    try {
      const rows = statements.selectHistory.all({
        submissionId,
        queueName: options.queueName ?? null,
        limitPerQueue: options.limitPerQueue,
      }) as HistoryRow[];
      return rows.map(historyEntryOfRow);
    } catch (error) {
      throw storeFailure("cannot read the submission's history", error);
    }
  }

  #open() {
    if (!this.#db || !this.#statements) {
      throw new StoreUnavailableError("the SQLite store is not open");
    }
    return { db: this.#db, statements: this.#statements };
  }
}

function recordOne(
  statements: ReturnType<typeof prepareStatements>,
  score: NewScore,
  encoding: EventEncoding,
  leaseUntilMs: number,
): RecordOutcome {
  const data = score.scoreData;
  const latest = statements.selectLatest.get(data.submissionId, data.queueName) as
    | LatestScoreRow
    | undefined;
  const decision = decideRecord(latest, data);
  if (decision.kind !== "accept") return decision;
  const sequence = decision.submissionSequence;
  const message = encodeAcceptedEvent(encoding, score, sequence);
  const timeMs = score.time.getTime();
  statements.insertScore.run(
    score.eventId,
    data.submissionId,
    sequence,
    data.pointsPossible,
    data.pointsEarned,
    data.courseId,
    data.scoreMsg,
    data.userId,
    data.moduleId,
    data.queueKey,
    data.queueName,
    timeMs,
    ...originColumnValues(encoding, score),
  );
  statements.insertOutbox.run(
    score.eventId,
    message.subject,
    message.payload,
    JSON.stringify(message.headers),
    timeMs,
    leaseUntilMs,
  );
  return { kind: "accepted", record: acceptedRecord(score, sequence), message };
}

/**
 * Creates the store's directory (0700) and file (0600) when missing, so that learners' scores
 * are not readable by every local user under a usual umask; SQLite gives its `-wal` and `-shm`
 * files the database file's mode. Existing directories and files keep theirs.
 */
function createPrivately(path: string): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  try {
    closeSync(openSync(path, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY, 0o600));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
  }
}

/**
 * Applies the missing migrations, each in its own transaction. Foreign keys are off meanwhile
 * (a rebuilt table is dropped and replaced under its children; SQLite ignores the pragma inside
 * a transaction), and `foreign_key_check` must come back empty before a migration commits.
 */
function migrate(db: Database.Database): void {
  db.exec(
    "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at_ms INTEGER NOT NULL)",
  );
  const current =
    (db.prepare("SELECT max(version) AS v FROM schema_version").get() as { v: number | null }).v ??
    0;
  if (current > SQLITE_MIGRATIONS.length) {
    throw new Error(
      `the database is at schema version ${current}, newer than this gradecast knows (${SQLITE_MIGRATIONS.length})`,
    );
  }
  db.pragma("foreign_keys = OFF");
  SQLITE_MIGRATIONS.slice(current).forEach((sql, index) => {
    const version = current + index + 1;
    db.transaction(() => {
      db.exec(sql);
      if (version === SQLITE_EVENT_ORIGIN_VERSION) fillEventOrigins(db);
      const broken = db.pragma("foreign_key_check") as unknown[];
      if (broken.length > 0) {
        throw new Error(
          `schema migration ${version} would leave ${broken.length} rows without their parent`,
        );
      }
      db.prepare("INSERT INTO schema_version (version, applied_at_ms) VALUES (?, ?)").run(
        version,
        Date.now(),
      );
    }).immediate();
  });
}

/** Rows of a score table filled per statement while migrating. */
const FILL_BATCH_ROWS = 1_000;

/**
 * Copies the event metadata of every score written before schema version 4 from its outbox
 * row's payload into its new columns (see {@link SQLITE_MIGRATIONS} 4), in rowid batches.
 */
function fillEventOrigins(db: Database.Database): void {
  const select = db.prepare(
    `SELECT s.rowid AS row, o.payload FROM scores s JOIN outbox o ON o.event_id = s.event_id
      WHERE s.rowid > ? AND s.event_source IS NULL ORDER BY s.rowid LIMIT ?`,
  );
  const update = db.prepare(
    `UPDATE scores SET event_source = ?, event_sourcehost = ?, event_sourcelib = ?,
            event_minor_version = ? WHERE rowid = ?`,
  );
  for (let after = 0; ; ) {
    const rows = select.all(after, FILL_BATCH_ROWS) as Array<{ row: number; payload: Buffer }>;
    for (const { row, payload } of rows) update.run(...originColumnsOfPayload(payload), row);
    const last = rows.at(-1);
    if (!last) return;
    after = last.row;
  }
}

function prepareStatements(db: Database.Database) {
  return {
    // The latest score of one submission (id and queue): one probe of the unique index. The
    // outbox row may be pruned: retries are decided on the score row alone.
    selectLatest: db.prepare(
      `SELECT s.event_id, s.submission_sequence, s.points_possible, s.points_earned, s.score_msg,
              s.course_id, s.user_id, s.module_id, s.queue_key, s.queue_name, s.event_time_ms,
              ${PUBLISHED_AT_COLUMN}
         FROM scores s LEFT JOIN outbox o ON o.event_id = s.event_id
        WHERE s.submission_id = ? AND s.queue_name = ?
        ORDER BY s.submission_sequence DESC LIMIT 1`,
    ),
    // The same with what GetScore answers from: the payload, or the columns that rebuild it.
    selectLatestStored: db.prepare(
      `SELECT s.submission_sequence, ${STORED_SCORE_COLUMNS}
         FROM scores s LEFT JOIN outbox o ON o.event_id = s.event_id
        WHERE s.submission_id = ? AND s.queue_name = ?
        ORDER BY s.submission_sequence DESC LIMIT 1`,
    ),
    // The latest score of the id in each queue: SQLite takes the other columns of a bare
    // max() aggregate from the row that has the max.
    selectLatestPerQueue: db.prepare(
      `SELECT max(s.submission_sequence) AS submission_sequence, ${STORED_SCORE_COLUMNS}
         FROM scores s LEFT JOIN outbox o ON o.event_id = s.event_id
        WHERE s.submission_id = ?
        GROUP BY s.queue_name`,
    ),
    // A submission's newest scores per queue with their outbox rows (none once pruned).
    selectHistory: db
      .prepare(
        `SELECT ${HISTORY_COLUMNS}
           FROM (SELECT *, row_number() OVER (PARTITION BY queue_name
                                              ORDER BY submission_sequence DESC) AS newest
                   FROM scores
                  WHERE submission_id = @submissionId
                    AND (@queueName IS NULL OR queue_name = @queueName)) s
           LEFT JOIN outbox o ON o.event_id = s.event_id
          WHERE s.newest <= @limitPerQueue
          ORDER BY s.queue_name, s.submission_sequence`,
      )
      .safeIntegers(true), // submission ids may exceed 2^53
    insertScore: db.prepare(
      `INSERT INTO scores (event_id, submission_id, submission_sequence, points_possible,
         points_earned, course_id, score_msg, user_id, module_id, queue_key, queue_name,
         event_time_ms, event_source, event_sourcehost, event_sourcelib, event_minor_version)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    insertOutbox: db.prepare(
      `INSERT INTO outbox (event_id, subject, payload, headers, created_at_ms, lease_until_ms)
       VALUES (?, ?, ?, ?, ?, ?)`,
    ),
    claim: db.prepare(
      `UPDATE outbox SET lease_until_ms = ?, attempts = attempts + 1
        WHERE position IN (SELECT position FROM outbox
                            WHERE published_at_ms IS NULL AND lease_until_ms <= ?
                              AND parked_reason IS NULL
                            ORDER BY position LIMIT ?)
       RETURNING position, event_id, subject, payload, headers, attempts, created_at_ms`,
    ),
    markPublished: db.prepare(
      `UPDATE outbox SET published_at_ms = ?, stream_sequence = ?, lease_until_ms = 0
        WHERE event_id = ? AND published_at_ms IS NULL`,
    ),
    release: db.prepare(
      `UPDATE outbox SET lease_until_ms = ?, last_error = ?
        WHERE event_id = ? AND published_at_ms IS NULL`,
    ),
    park: db.prepare(
      `UPDATE outbox SET lease_until_ms = 0, parked_reason = ?, last_error = ?
        WHERE event_id = ? AND published_at_ms IS NULL`,
    ),
    unpark: db.prepare(
      `UPDATE outbox SET lease_until_ms = 0, parked_reason = NULL
        WHERE event_id = ? AND published_at_ms IS NULL`,
    ),
    // A range of the partial index outbox_published, oldest first: it holds published rows
    // only, so pending and parked rows are never read, let alone deleted.
    prune: db.prepare(
      `DELETE FROM outbox
        WHERE position IN (SELECT position FROM outbox
                            WHERE published_at_ms < ?
                            ORDER BY published_at_ms LIMIT ?)`,
    ),
    unparkAll: db.prepare(
      "UPDATE outbox SET lease_until_ms = 0, parked_reason = NULL WHERE published_at_ms IS NULL",
    ),
    listOutbox: db
      .prepare(
        `SELECT o.position, o.event_id, o.subject, s.submission_id, o.created_at_ms, o.attempts,
              o.lease_until_ms, o.parked_reason, o.last_error
         FROM outbox o JOIN scores s ON s.event_id = o.event_id
        WHERE o.published_at_ms IS NULL AND (? = 0 OR o.parked_reason IS NOT NULL)
        ORDER BY o.position LIMIT ?`,
      )
      .safeIntegers(true), // submission ids may exceed 2^53
    releaseAllLeases: db.prepare(
      "UPDATE outbox SET lease_until_ms = 0 WHERE published_at_ms IS NULL AND lease_until_ms > 0",
    ),
    backlog: db.prepare(
      `SELECT count(*) FILTER (WHERE parked_reason IS NULL) AS pending,
              min(created_at_ms) FILTER (WHERE parked_reason IS NULL) AS oldest,
              count(*) FILTER (WHERE parked_reason IS NOT NULL) AS parked
         FROM outbox WHERE published_at_ms IS NULL`,
    ),
  };
}
