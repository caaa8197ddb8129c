import { userInfo } from "node:os";
import pg from "pg";

import { type EventMessage, GradecastError, StoreUnavailableError } from "../contract/index.js";
import { HISTORY_COLUMNS, type HistoryRow, historyEntryOfRow } from "./history-rows.js";
import {
  POSTGRES_EVENT_ORIGIN_VERSION,
  POSTGRES_MIGRATION_LOCK,
  POSTGRES_MIGRATIONS,
} from "./postgres-migrations.js";
import { redactUrl } from "./redact-url.js";
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
  rowOfAccepted,
  type StoredScoreRow,
  storedScoreOfRow,
  storeFailure,
} from "./score-rows.js";
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

/** Options of the PostgreSQL store. */
export interface PostgresStoreOptions {
  /** `postgres://` or `postgresql://` connection URL. */
  url: string;
  /** How event messages are built. */
  encoding: EventEncoding;
  /** Most connections in the pool (default 10). */
  poolSize?: number;
  /** How long a call waits for a free or new connection before failing (default 5 s). */
  connectTimeoutMs?: number;
  /**
   * How often a batch is retried after another transaction (another instance)
   * wrote the same submission first or a deadlock was broken (default 50).
   */
  maxConflictRetries?: number;
  /** Told about errors of idle pooled connections (the pool replaces them). */
  onIdleConnectionError?: (error: Error) => void;
  /**
   * Told when PostgreSQL stops answering (a call failed to connect or lost its
   * connection) and when it answers again (the next call that succeeds), so
   * readiness can follow it.
   */
  onReachableChange?: (isReachable: boolean) => void;
}

/** SQLSTATEs after which the whole transaction can simply run again. */
const RETRYABLE_STATES = new Set(["40001", "40P01"]); // serialization failure, deadlock

/** The batch met a score another transaction committed first: run it again. */
const LOST_RACE = Symbol("lost race");

/**
 * The store of a multi-instance deployment: several gradecast processes share
 * one PostgreSQL database. Nothing here assumes it is the only instance:
 * per-submission (queue and id) sequences are kept by a unique constraint (a batch that loses
 * the race re-reads and runs again), the relay claims outbox rows with
 * `FOR UPDATE SKIP LOCKED` and a lease, and a crashed instance's leases simply
 * expire, so another instance's relay publishes its rows.
 */
export class PostgresStore implements Store {
  readonly #options: PostgresStoreOptions;
  #pool: pg.Pool | undefined;
  #isReachable = true;

  constructor(options: PostgresStoreOptions) {
    this.#options = options;
  }

  async start(): Promise<void> {
    const pool = new pg.Pool({
      connectionString: withDefaultUser(this.#options.url),
      max: this.#options.poolSize ?? 10,
      connectionTimeoutMillis: this.#options.connectTimeoutMs ?? 5_000,
      application_name: "gradecast",
    });
    // Without a listener an idle connection's error (a server restart) would crash the process.
    pool.on("error", (error) => this.#options.onIdleConnectionError?.(error));
    try {
      await migrate(pool);
    } catch (error) {
      await pool.end();
      throw new StoreUnavailableError(
        `cannot open PostgreSQL store at ${redactUrl(this.#options.url)}: ${(error as Error).message}`,
        { cause: error },
      );
    }
    this.#pool = pool;
  }

  async close(): Promise<void> {
    const pool = this.#pool;
    this.#pool = undefined;
    await pool?.end();
  }

  async recordScores(scores: readonly NewScore[], leaseUntilMs: number): Promise<RecordOutcome[]> {
    const maxRetries = this.#options.maxConflictRetries ?? 50;
    for (let attempt = 0; ; attempt += 1) {
      try {
        const outcomes = await this.#transaction((client) =>
          this.#recordBatch(client, scores, leaseUntilMs),
        );
        if (outcomes !== LOST_RACE) return outcomes;
        if (attempt >= maxRetries) {
          throw new StoreUnavailableError(
            `cannot commit scores: other writers of the same submissions won ${attempt + 1} times in a row`,
          );
        }
      } catch (error) {
        if (attempt < maxRetries && RETRYABLE_STATES.has((error as { code?: string }).code ?? "")) {
          continue;
        }
        throw storeFailure("cannot commit scores", error);
      }
    }
  }

  async latestScore(submission: SubmissionKey): Promise<StoredScore | undefined> {
    // The outbox row may be pruned: the score row alone rebuilds the event.
    const result = await this.#query<StoredScoreRow>(
      "cannot read the latest score",
      `SELECT s.*, ${PUBLISHED_AT_COLUMN}, o.payload
         FROM scores s LEFT JOIN outbox o ON o.event_id = s.event_id
        WHERE s.submission_id = $1 AND s.queue_name = $2
        ORDER BY s.submission_sequence DESC LIMIT 1`,
      [submission.submissionId.toString(), submission.queueName],
    );
    const row = result.rows[0];
    return row && storedScoreOfRow(row, submission.submissionId);
  }

  async latestScoresAcrossQueues(submissionId: bigint): Promise<StoredScore[]> {
    const result = await this.#query<StoredScoreRow>(
      "cannot read the latest scores",
      `SELECT DISTINCT ON (s.queue_name) s.*, ${PUBLISHED_AT_COLUMN}, o.payload
         FROM scores s LEFT JOIN outbox o ON o.event_id = s.event_id
        WHERE s.submission_id = $1
        ORDER BY s.queue_name, s.submission_sequence DESC`,
      [submissionId.toString()],
    );
    return result.rows.map((row) => storedScoreOfRow(row, submissionId));
  }

  async claimPending(limit: number, nowMs: number, leaseUntilMs: number): Promise<OutboxEntry[]> {
    // SKIP LOCKED: two relays claiming at once take disjoint rows instead of waiting;
    // the lease keeps a claimed row away from the others until it ends.
    const result = await this.#query<OutboxRow>(
      "cannot claim outbox entries",
      `UPDATE outbox o SET lease_until_ms = $1, attempts = o.attempts + 1
         FROM (SELECT position FROM outbox
                WHERE published_at_ms IS NULL AND lease_until_ms <= $2
                  AND parked_reason IS NULL
                ORDER BY position LIMIT $3
                FOR UPDATE SKIP LOCKED) claimed
        WHERE o.position = claimed.position
       RETURNING o.position, o.event_id, o.subject, o.payload, o.headers, o.attempts, o.created_at_ms`,
      [leaseUntilMs, nowMs, limit],
    );
    return result.rows.map(entryOfRow).sort((a, b) => a.position - b.position);
  }

  async markPublished(events: readonly PublishedEvent[]): Promise<void> {
    if (events.length === 0) return;
    try {
      await this.#transaction(async (client) => {
        // Losing a mark to a database crash only means one more (deduplicated)
        // publish, so these commits do not wait for the WAL flush.
        await client.query("SET LOCAL synchronous_commit = off");
        await client.query(
          `UPDATE outbox o SET published_at_ms = $1, stream_sequence = v.stream_sequence, lease_until_ms = 0
             FROM unnest($2::text[], $3::bigint[]) AS v (event_id, stream_sequence)
            WHERE o.event_id = v.event_id AND o.published_at_ms IS NULL`,
          [
            Date.now(),
            events.map((event) => event.eventId),
            events.map((event) => event.streamSequence),
          ],
        );
      });
    } catch (error) {
      throw storeFailure("cannot mark events published", error);
    }
  }

  async releaseClaims(failures: readonly PublishFailure[]): Promise<void> {
    if (failures.length === 0) return;
    const retries = failures.filter((failure) => failure.kind === "retry");
    const parks = failures.filter((failure) => failure.kind === "park");
    await this.#query(
      "cannot release outbox leases",
      `UPDATE outbox o
          SET lease_until_ms = CASE WHEN v.park THEN 0 ELSE v.retry_at_ms END,
              last_error = v.error,
              parked_reason = CASE WHEN v.park THEN v.error ELSE o.parked_reason END
         FROM unnest($1::text[], $2::bigint[], $3::text[], $4::boolean[])
              AS v (event_id, retry_at_ms, error, park)
        WHERE o.event_id = v.event_id AND o.published_at_ms IS NULL`,
      [
        [...retries, ...parks].map((failure) => failure.eventId),
        [...retries.map((failure) => failure.retryAtMs), ...parks.map(() => 0)],
        [...retries, ...parks].map((failure) => failure.error),
        [...retries.map(() => false), ...parks.map(() => true)],
      ],
    );
  }

  async outboxBacklog(): Promise<OutboxBacklog> {
    const result = await this.#query<{ pending: number; oldest: string | null; parked: number }>(
      "cannot read the outbox backlog",
      `SELECT count(*) FILTER (WHERE parked_reason IS NULL)::integer AS pending,
              min(created_at_ms) FILTER (WHERE parked_reason IS NULL) AS oldest,
              count(*) FILTER (WHERE parked_reason IS NOT NULL)::integer AS parked
         FROM outbox WHERE published_at_ms IS NULL`,
    );
    const row = result.rows[0];
    return {
      pending: row?.pending ?? 0,
      oldestCreatedAtMs: row?.oldest == null ? undefined : Number(row.oldest),
      parked: row?.parked ?? 0,
    };
  }

  /**
   * Safe with several instances pruning at once: SKIP LOCKED gives each DELETE rows no other
   * one holds, so none waits on another or deadlocks, and a row one of them deleted is not
   * there for the next. No other writer touches a published row (claims, marks, parks and
   * unparks all want `published_at_ms IS NULL`), so no lock beyond the rows' own is needed.
   */
  async pruneOutbox(pruning: OutboxPruning): Promise<number> {
    try {
      const deleted = await this.#transaction(async (client) => {
        // Losing a prune to a database crash only means pruning those rows again.
        await client.query("SET LOCAL synchronous_commit = off");
        const result = await client.query(
          `DELETE FROM outbox
            WHERE position IN (SELECT position FROM outbox
                                WHERE published_at_ms < $1
                                ORDER BY published_at_ms LIMIT $2
                                FOR UPDATE SKIP LOCKED)`,
          [pruning.publishedBeforeMs, pruning.limit],
        );
        return result.rowCount ?? 0;
      });
      return deleted as number;
    } catch (error) {
      throw storeFailure("cannot prune the outbox", error);
    }
  }

  async listOutbox(options: { limit: number; parkedOnly: boolean }): Promise<OutboxListing[]> {
    const result = await this.#query<OutboxListingRow>(
      "cannot list the outbox",
      `SELECT o.position, o.event_id, o.subject, s.submission_id, o.created_at_ms, o.attempts,
              o.lease_until_ms, o.parked_reason, o.last_error
         FROM outbox o JOIN scores s ON s.event_id = o.event_id
        WHERE o.published_at_ms IS NULL AND (NOT $1 OR o.parked_reason IS NOT NULL)
        ORDER BY o.position LIMIT $2`,
      [options.parkedOnly, options.limit],
    );
    return result.rows.map(listingOfRow);
  }

  async unparkEvents(eventIds: readonly string[] | undefined): Promise<number> {
    const result = await this.#query(
      "cannot unpark outbox entries",
      `UPDATE outbox SET lease_until_ms = 0, parked_reason = NULL
        WHERE published_at_ms IS NULL AND ($1::text[] IS NULL OR event_id = ANY($1::text[]))`,
      [eventIds ?? null],
    );
    return result.rowCount ?? 0;
  }

  async submissionHistory(
    submissionId: bigint,
    options: SubmissionHistoryOptions,
  ): Promise<SubmissionHistoryEntry[]> {
    // A submission's newest scores per queue with their outbox rows (none once pruned).
    const result = await this.#query<HistoryRow>(
      "cannot read the submission's history",
      `SELECT ${HISTORY_COLUMNS}
         FROM (SELECT *, row_number() OVER (PARTITION BY queue_name
                                            ORDER BY submission_sequence DESC) AS newest
                 FROM scores
                WHERE submission_id = $1 AND ($2::text IS NULL OR queue_name = $2)) s
         LEFT JOIN outbox o ON o.event_id = s.event_id
        WHERE s.newest <= $3
        ORDER BY s.queue_name, s.submission_sequence`,
      [submissionId.toString(), options.queueName ?? null, options.limitPerQueue],
    );
    return result.rows.map(historyEntryOfRow);
  }

  /**
   * Records a batch in the caller's transaction: one read of the latest score
   * of every submission in it, then one insert for the scores and one for the
   * outbox rows, whatever the batch size.
   */
  async #recordBatch(
    client: pg.PoolClient,
    scores: readonly NewScore[],
    leaseUntilMs: number,
  ): Promise<RecordOutcome[] | typeof LOST_RACE> {
    // One key per submission (queue and id), in the batch's order of first appearance.
    const submissions = new Map<string, SubmissionKey>();
    for (const { scoreData } of scores) {
      submissions.set(submissionKeyText(scoreData), {
        queueName: scoreData.queueName,
        submissionId: scoreData.submissionId,
      });
    }
    // One index probe per submission (the unique index, newest sequence first):
    // a DISTINCT ON over `= ANY(...)` made the planner start parallel workers.
    const latestRows = await client.query<LatestScoreRow & { submission_id: string }>(
      `SELECT ids.submission_id::text AS submission_id, latest.*
         FROM unnest($1::bigint[], $2::text[]) AS ids (submission_id, queue_name)
        CROSS JOIN LATERAL (
              SELECT s.event_id, s.submission_sequence, s.points_possible, s.points_earned,
                     s.score_msg, s.course_id, s.user_id, s.module_id, s.queue_key, s.queue_name,
                     s.event_time_ms, ${PUBLISHED_AT_COLUMN}
                FROM scores s LEFT JOIN outbox o ON o.event_id = s.event_id
               WHERE s.submission_id = ids.submission_id AND s.queue_name = ids.queue_name
               ORDER BY s.submission_sequence DESC LIMIT 1) latest`,
      [
        [...submissions.values()].map((key) => key.submissionId.toString()),
        [...submissions.values()].map((key) => key.queueName),
      ],
    );
    const latestBySubmission = new Map<string, LatestScoreRow>(
      latestRows.rows.map((row) => [
        submissionKeyText({ submissionId: BigInt(row.submission_id), queueName: row.queue_name }),
        row,
      ]),
    );

    const accepted: Array<{ score: NewScore; sequence: number; message: EventMessage }> = [];
    const outcomes = scores.map((score): RecordOutcome => {
      const data = score.scoreData;
      const decision = decideRecord(latestBySubmission.get(submissionKeyText(data)), data);
      if (decision.kind !== "accept") return decision;
      const sequence = decision.submissionSequence;
      const message = encodeAcceptedEvent(this.#options.encoding, score, sequence);
      accepted.push({ score, sequence, message });
      // A later score of the same submission in this batch builds on this one.
      latestBySubmission.set(submissionKeyText(data), rowOfAccepted(score, sequence));
      return { kind: "accepted", record: acceptedRecord(score, sequence), message };
    });
    if (accepted.length === 0) return outcomes;

    // Rows in (submission id, queue) order, sequences in acceptance order within, so that two
    // instances writing the same submissions wait on each other in one order instead of deadlocking.
    const rows = [...accepted].sort(
      (a, b) =>
        compareBigint(a.score.scoreData.submissionId, b.score.scoreData.submissionId) ||
        compareText(a.score.scoreData.queueName, b.score.scoreData.queueName),
    );
    const inserted = await client.query(
      `INSERT INTO scores (event_id, submission_id, submission_sequence, points_possible,
         points_earned, course_id, score_msg, user_id, module_id, queue_key, queue_name,
         event_time_ms, event_source, event_sourcehost, event_sourcelib, event_minor_version)
       VALUES ${valuesList(rows.length, 16)}
       ON CONFLICT (submission_id, queue_name, submission_sequence) DO NOTHING`,
      rows.flatMap(({ score, sequence }) => [
        score.eventId,
        score.scoreData.submissionId.toString(),
        sequence,
        score.scoreData.pointsPossible,
        score.scoreData.pointsEarned,
        score.scoreData.courseId,
        score.scoreData.scoreMsg,
        score.scoreData.userId,
        score.scoreData.moduleId,
        score.scoreData.queueKey,
        score.scoreData.queueName,
        score.time.getTime(),
        ...originColumnValues(this.#options.encoding, score),
      ]),
    );
    // Another transaction took one of these (submission, queue, sequence) slots and has
    // committed (the insert waited for it): re-read and decide again.
    if (inserted.rowCount !== rows.length) return LOST_RACE;

    // Outbox rows in acceptance order: positions follow the order scores arrived.
    // One parameter per value (not arrays): the payload goes as binary bytes and
    // no value is escaped into an array literal, which costs this thread CPU.
    await client.query(
      `INSERT INTO outbox (event_id, subject, payload, headers, created_at_ms, lease_until_ms)
       VALUES ${valuesList(accepted.length, 6)}`,
      accepted.flatMap(({ score, message }) => [
        score.eventId,
        message.subject,
        Buffer.from(message.payload.buffer, message.payload.byteOffset, message.payload.byteLength),
        JSON.stringify(message.headers),
        score.time.getTime(),
        leaseUntilMs,
      ]),
    );
    return outcomes;
  }

  /** Runs `work` in one transaction on a pooled connection (see {@link inTransaction}). */
  async #transaction<T>(
    work: (client: pg.PoolClient) => Promise<T | typeof LOST_RACE>,
  ): Promise<T | typeof LOST_RACE> {
    const client = await this.#connect();
    try {
      const result = await inTransaction(client, work);
      this.#setReachable(true);
      return result;
    } catch (error) {
      if (isConnectionFailure(error)) this.#setReachable(false);
      throw error;
    }
  }

  async #query<R extends pg.QueryResultRow>(
    what: string,
    text: string,
    values?: unknown[],
  ): Promise<pg.QueryResult<R>> {
    const pool = this.#open();
    try {
      const result = await pool.query<R>(text, values);
      this.#setReachable(true);
      return result;
    } catch (error) {
      if (isConnectionFailure(error)) this.#setReachable(false);
      throw storeFailure(what, error);
    }
  }

  async #connect(): Promise<pg.PoolClient> {
    try {
      return await this.#open().connect();
    } catch (error) {
      if (isConnectionFailure(error)) this.#setReachable(false);
      throw storeFailure("cannot reach PostgreSQL", error);
    }
  }

  #setReachable(isReachable: boolean): void {
    if (isReachable === this.#isReachable) return;
    this.#isReachable = isReachable;
    this.#options.onReachableChange?.(isReachable);
  }

  #open(): pg.Pool {
    if (!this.#pool) throw new StoreUnavailableError("the PostgreSQL store is not open");
    return this.#pool;
  }
}

/**
 * Whether an error says PostgreSQL cannot be reached, rather than that one
 * statement failed: no SQLSTATE at all (refused, reset, timed out) or a
 * connection-exception / shutdown one (08..., 57P0x).
 */
function isConnectionFailure(error: unknown): boolean {
  if (error instanceof GradecastError) return false;
  if (!(error instanceof pg.DatabaseError)) return true;
  const state = error.code ?? "";
  return state.startsWith("08") || state.startsWith("57P");
}

/** Applies the missing migrations in one transaction, under the advisory lock. */
async function migrate(pool: pg.Pool): Promise<void> {
  await inTransaction(await pool.connect(), async (client) => {
    await client.query("SELECT pg_advisory_xact_lock($1)", [POSTGRES_MIGRATION_LOCK.toString()]);
    await client.query(
      "CREATE TABLE IF NOT EXISTS schema_version (version integer PRIMARY KEY, applied_at_ms bigint NOT NULL)",
    );
    const current = await client.query<{ v: number | null }>(
      "SELECT max(version) AS v FROM schema_version",
    );
    const version = current.rows[0]?.v ?? 0;
    if (version > POSTGRES_MIGRATIONS.length) {
      throw new Error(
        `the database is at schema version ${version}, newer than this gradecast knows (${POSTGRES_MIGRATIONS.length})`,
      );
    }
    for (const [index, sql] of POSTGRES_MIGRATIONS.slice(version).entries()) {
      await client.query(sql);
      if (version + index + 1 === POSTGRES_EVENT_ORIGIN_VERSION) await fillEventOrigins(client);
      await client.query("INSERT INTO schema_version (version, applied_at_ms) VALUES ($1, $2)", [
        version + index + 1,
        Date.now(),
      ]);
    }
  });
}

/** Rows of the score table filled per statement while migrating. */
const FILL_BATCH_ROWS = 1_000;

/**
 * Copies the event metadata of every score written before schema version 4 from its outbox
 * row's payload into its new columns (see {@link POSTGRES_MIGRATIONS} 4), in batches. A score
 * without an outbox row keeps nulls and is not read again (the join leaves it out).
 */
async function fillEventOrigins(client: pg.PoolClient): Promise<void> {
  for (;;) {
    const batch = await client.query<{ event_id: string; payload: Buffer }>(
      `SELECT s.event_id, o.payload FROM scores s JOIN outbox o ON o.event_id = s.event_id
        WHERE s.event_source IS NULL LIMIT $1`,
      [FILL_BATCH_ROWS],
    );
    if (batch.rows.length === 0) return;
    const columns = batch.rows.map((row) => originColumnsOfPayload(row.payload));
    await client.query(
      `UPDATE scores s SET event_source = v.source, event_sourcehost = v.sourcehost,
              event_sourcelib = v.sourcelib, event_minor_version = v.minor_version
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::integer[])
              AS v (event_id, source, sourcehost, sourcelib, minor_version)
        WHERE s.event_id = v.event_id`,
      [
        batch.rows.map((row) => row.event_id),
        ...[0, 1, 2, 3].map((column) => columns.map((values) => values[column])),
      ],
    );
  }
}

/**
 * Runs `work` between BEGIN and COMMIT on `client`, then gives the client back
 * to its pool. Rolls back when `work` throws or loses a race (the caller runs
 * it again).
 */
async function inTransaction<T>(
  client: pg.PoolClient,
  work: (client: pg.PoolClient) => Promise<T | typeof LOST_RACE>,
): Promise<T | typeof LOST_RACE> {
  let broken: Error | undefined;
  // A checked-out client whose connection drops between statements emits
  // "error"; unheard, that would crash the process. The statement in flight
  // fails anyway, and the pool must then discard the client.
  const onLost = (error: Error) => {
    broken = error;
  };
  client.on("error", onLost);
  try {
    await client.query("BEGIN");
    const result = await work(client);
    await client.query(result === LOST_RACE ? "ROLLBACK" : "COMMIT");
    return result;
  } catch (error) {
    // A failed statement leaves the transaction aborted; a failed ROLLBACK means
    // the connection itself is gone, and the pool must not hand it out again.
    await client.query("ROLLBACK").catch((rollbackError: Error) => {
      broken = rollbackError;
    });
    throw error;
  } finally {
    client.off("error", onLost);
    client.release(broken);
  }
}

/** `($1, $2, ...), ($n+1, ...)`: placeholders of `rowCount` rows of `columnCount` values. */
function valuesList(rowCount: number, columnCount: number): string {
  const rows: string[] = [];
  for (let row = 0; row < rowCount; row += 1) {
    const first = row * columnCount + 1;
    const columns = Array.from({ length: columnCount }, (_, column) => `$${first + column}`);
    rows.push(`(${columns.join(", ")})`);
  }
  return rows.join(", ");
}

function compareBigint(a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Code-unit order: any fixed order will do, as long as every instance uses the same. */
function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** A map key of one submission: its id and queue (a queue name holds no control characters). */
function submissionKeyText(key: SubmissionKey): string {
  return `${key.submissionId}\u0000${key.queueName}`;
}

/**
 * The URL with the operating-system user filled in when it names none, as
 * libpq (psql) does; node-postgres would otherwise send no user at all.
 */
function withDefaultUser(url: string): string {
  const parsed = new URL(url);
  if (parsed.username) return url;
  parsed.username = userInfo().username;
  return parsed.toString();
}
