import {
  type EventMessage,
  type ExternalGraderScoreData,
  encodeScoreEvent,
  GradecastError,
  type HeaderList,
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
 * SQLite and as decimal text from PostgreSQL.
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
  const { origin, subjectPrefix } = encoding;
  const message = encodeScoreEvent(
    { ...score, submissionSequence },
    score.graderName === undefined
      ? origin
      : { ...origin, source: `${origin.source}/${score.graderName}` },
    subjectPrefix,
  );
  if (score.traceContext === undefined) return message;
  return { ...message, headers: [...message.headers, ...traceContextHeaders(score.traceContext)] };
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

/** A stored score as GetScore reads it: the latest row of a submission and its event bytes. */
export function storedScoreOfRow(row: LatestScoreRow & { payload: Buffer }): StoredScore {
  return {
    queueName: row.queue_name,
    record: recordOfRow(row),
    payload: new Uint8Array(row.payload),
  };
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
