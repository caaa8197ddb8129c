import {
  buildScoreEvent,
  decodeScoreEvent,
  type EventMessage,
  type EventOrigin,
  type ExternalGraderScoreData,
  ExternalGraderScoreSubmitted,
  encodeScoreEvent,
  GradecastError,
  type HeaderList,
  SCORE_EVENT_MINOR_VERSION,
  StoreUnavailableError,
  SubmissionConflictError,
  traceContextHeaders,
} from "../contract/index.js";
import type {
  EventEncoding,
  NewScore,
  OutboxEntry,
  OutboxListing,
  RecordOutcome,
  ScoreRecord,
  StoredScore,
} from "./store.js";

/**
 * A submission's latest score as both SQL stores read it: its `scores` row and
 * its outbox row's publish time. 64-bit columns come back as numbers from
 * SQLite and as decimal text from PostgreSQL. `published_at_ms` is null while the
 * event waits in the outbox, and 0 once its outbox row was pruned (published, when unknown).
 */
export interface LatestScoreRow {
  event_id: string;
  submission_sequence: number;
  points_possible: number;
  points_earned: number;
  score_msg: string;
  course_id: string;
  user_id: string;
  module_id: string;
  queue_key: string;
  queue_name: string;
  event_time_ms: number | string;
  published_at_ms: number | string | null;
}

/**
 * The event metadata a `scores` row keeps (schema version 4), so that its event can be
 * rebuilt byte for byte once the outbox row is pruned. Null only in rows whose outbox row
 * was gone before the migration could copy them (none that gradecast pruned).
 */
export interface ScoreOriginColumns {
  event_source: string | null;
  event_sourcehost: string | null;
  event_sourcelib: string | null;
  event_minor_version: number | null;
}

/** A latest score with what GetScore answers from: the outbox payload, null once pruned. */
export type StoredScoreRow = LatestScoreRow & ScoreOriginColumns & { payload: Buffer | null };

/**
 * The SQL expression of a latest score's `published_at_ms`, with `o` its left-joined outbox row:
 * an outbox row is only ever pruned after its event was published.
 */
export const PUBLISHED_AT_COLUMN =
  "CASE WHEN o.event_id IS NULL THEN 0 ELSE o.published_at_ms END AS published_at_ms";

/** An `outbox` row as a claim returns it. */
export interface OutboxRow {
  position: number | string;
  event_id: string;
  subject: string;
  payload: Buffer;
  headers: string;
  attempts: number;
  created_at_ms: number | string;
}

/** An unpublished `outbox` row joined with its score's submission, as listings read it. */
export interface OutboxListingRow {
  position: number | bigint | string;
  event_id: string;
  subject: string;
  submission_id: number | bigint | string;
  created_at_ms: number | bigint | string;
  attempts: number | bigint;
  lease_until_ms: number | bigint | string;
  parked_reason: string | null;
  last_error: string | null;
}

/** What recording a score does, decided from its submission's latest stored score. */
export type RecordDecision =
  | Exclude<RecordOutcome, { kind: "accepted" }>
  | { kind: "accept"; submissionSequence: number };

/**
 * Columns that tie a submission to one learner and problem within its queue. The queue itself
 * is not among them: a submission is identified by (queue_name, submission_id), so the same id
 * in another queue is another submission, with its own history, and never a conflict.
 */
const IDENTITY_COLUMNS = [
  ["course_id", "courseId"],
  ["user_id", "userId"],
  ["module_id", "moduleId"],
  ["queue_key", "queueKey"],
] as const;

/**
 * The idempotency rule, the same in every store, applied to the latest score of the same
 * (queue_name, submission_id): another course, learner, problem or queue key is a conflict; the
 * same points and message as the latest score is a retry (its event again); anything else is a
 * regrade. The conflict says nothing of which fields differ: that would describe the stored
 * score to whoever sent the new one.
 */
export function decideRecord(
  latest: LatestScoreRow | undefined,
  data: ExternalGraderScoreData,
): RecordDecision {
  if (!latest) return { kind: "accept", submissionSequence: 1 };
  const isSameSubmission = IDENTITY_COLUMNS.every(([column, key]) => latest[column] === data[key]);
  if (!isSameSubmission) {
    return {
      kind: "rejected",
      error: new SubmissionConflictError(data.submissionId, data.queueName),
    };
  }
  const isRetry =
    latest.points_possible === data.pointsPossible &&
    latest.points_earned === data.pointsEarned &&
    latest.score_msg === data.scoreMsg;
  if (isRetry) return { kind: "replayed", record: recordOfRow(latest) };
  return { kind: "accept", submissionSequence: latest.submission_sequence + 1 };
}

/**
 * The event of an accepted score; a grader's name extends the event's `source`, and its
 * call's trace context adds the distributed-tracing headers. The headers are part of the
 * outbox row, so the relay publishes exactly what a direct publish would.
 */
export function encodeAcceptedEvent(
  encoding: EventEncoding,
  score: NewScore,
  submissionSequence: number,
): EventMessage {
  const message = encodeScoreEvent(
    { ...score, submissionSequence },
    eventOriginOf(encoding, score),
    encoding.subjectPrefix,
  );
  if (score.traceContext === undefined) return message;
  return { ...message, headers: [...message.headers, ...traceContextHeaders(score.traceContext)] };
}

/** Who emits the event of `score`: the store's origin, its `source` extended by the grader's name. */
export function eventOriginOf(encoding: EventEncoding, score: NewScore): EventOrigin {
  const { origin } = encoding;
  return score.graderName === undefined
    ? origin
    : { ...origin, source: `${origin.source}/${score.graderName}` };
}

/**
 * The `scores` columns of an accepted score's event metadata, in the order `event_source,
 * event_sourcehost, event_sourcelib, event_minor_version`.
 */
export function originColumnValues(
  encoding: EventEncoding,
  score: NewScore,
): [string, string, string, number] {
  const origin = eventOriginOf(encoding, score);
  return [origin.source, origin.sourcehost, origin.sourcelib, SCORE_EVENT_MINOR_VERSION];
}

/**
 * The event metadata columns of a score written before schema version 4, read from its
 * outbox row's payload (the bytes that were, or will be, published).
 */
export function originColumnsOfPayload(payload: Uint8Array): [string, string, string, number] {
  const metadata = decodeScoreEvent(payload).metadata;
  return [
    metadata?.source ?? "",
    metadata?.sourcehost ?? "",
    metadata?.sourcelib ?? "",
    metadata?.minorversion ?? SCORE_EVENT_MINOR_VERSION,
  ];
}

/** The record of a score just accepted (not yet published). */
export function acceptedRecord(score: NewScore, submissionSequence: number): ScoreRecord {
  return { eventId: score.eventId, eventTime: score.time, submissionSequence, published: false };
}

/** The latest-score row a score just accepted in this transaction stands for. */
export function rowOfAccepted(score: NewScore, submissionSequence: number): LatestScoreRow {
  const data = score.scoreData;
  return {
    event_id: score.eventId,
    submission_sequence: submissionSequence,
    points_possible: data.pointsPossible,
    points_earned: data.pointsEarned,
    score_msg: data.scoreMsg,
    course_id: data.courseId,
    user_id: data.userId,
    module_id: data.moduleId,
    queue_key: data.queueKey,
    queue_name: data.queueName,
    event_time_ms: score.time.getTime(),
    published_at_ms: null,
  };
}

/**
 * A stored score as GetScore reads it: the latest row of a submission (`submissionId`) and its
 * event bytes, from the outbox row or, once that is pruned, rebuilt from the score row.
 */
export function storedScoreOfRow(row: StoredScoreRow, submissionId: bigint): StoredScore {
  return {
    queueName: row.queue_name,
    record: recordOfRow(row),
    payload: row.payload === null ? rebuiltPayload(row, submissionId) : new Uint8Array(row.payload),
  };
}

/**
 * The event bytes of a score whose outbox row is gone: the same envelope, built by the same
 * code from the same values (the score row keeps its event's id, time, sequence and metadata),
 * encodes to the bytes that were published.
 */
function rebuiltPayload(row: StoredScoreRow, submissionId: bigint): Uint8Array {
  const event = buildScoreEvent(
    {
      eventId: row.event_id,
      time: new Date(Number(row.event_time_ms)),
      submissionSequence: Number(row.submission_sequence),
      scoreData: {
        pointsPossible: Number(row.points_possible),
        pointsEarned: Number(row.points_earned),
        courseId: row.course_id,
        scoreMsg: row.score_msg,
        submissionId,
        userId: row.user_id,
        moduleId: row.module_id,
        queueKey: row.queue_key,
        queueName: row.queue_name,
      },
    },
    {
      source: row.event_source ?? "",
      sourcehost: row.event_sourcehost ?? "",
      sourcelib: row.event_sourcelib ?? "",
    },
  );
  const metadata = event.metadata && {
    ...event.metadata,
    minorversion: Number(row.event_minor_version ?? SCORE_EVENT_MINOR_VERSION),
  };
  return ExternalGraderScoreSubmitted.encode({ ...event, metadata }).finish();
}

export function recordOfRow(row: LatestScoreRow): ScoreRecord {
  return {
    eventId: row.event_id,
    eventTime: new Date(Number(row.event_time_ms)),
    submissionSequence: row.submission_sequence,
    published: row.published_at_ms !== null,
  };
}

export function entryOfRow(row: OutboxRow): OutboxEntry {
  return {
    position: Number(row.position),
    eventId: row.event_id,
    message: {
      subject: row.subject,
      payload: new Uint8Array(row.payload),
      headers: JSON.parse(row.headers) as HeaderList,
    },
    attempts: row.attempts,
    createdAtMs: Number(row.created_at_ms),
  };
}

export function listingOfRow(row: OutboxListingRow): OutboxListing {
  return {
    position: Number(row.position),
    eventId: row.event_id,
    subject: row.subject,
    submissionId: BigInt(row.submission_id),
    createdAtMs: Number(row.created_at_ms),
    attempts: Number(row.attempts),
    leaseUntilMs: Number(row.lease_until_ms),
    parkedReason: row.parked_reason ?? undefined,
    lastError: row.last_error ?? undefined,
  };
}

/** A store's failure as the GradecastError the server maps to UNAVAILABLE, cause kept. */
export function storeFailure(what: string, error: unknown): GradecastError {
  if (error instanceof GradecastError) return error;
  return new StoreUnavailableError(`${what}: ${(error as Error).message}`, { cause: error });
}
