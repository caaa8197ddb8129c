import type { HeaderList } from "../contract/index.js";
import type { OutboxState, SubmissionHistoryEntry } from "./store.js";

/**
 * A `scores` row left-joined with its `outbox` row, as both SQL stores read a submission's
 * history. 64-bit columns come back as numbers or bigints from SQLite and as decimal text from
 * PostgreSQL; outbox columns are null when the score has no outbox row.
 */
export interface HistoryRow {
  event_id: string;
  submission_id: number | bigint | string;
  submission_sequence: number | bigint;
  points_possible: number | bigint;
  points_earned: number | bigint;
  course_id: string;
  user_id: string;
  module_id: string;
  queue_name: string;
  event_time_ms: number | bigint | string;
  /** The event's `source` as the score row keeps it (schema version 4). */
  event_source: string | null;
  subject: string | null;
  headers: string | null;
  created_at_ms: number | bigint | string | null;
  attempts: number | bigint | null;
  lease_until_ms: number | bigint | string | null;
  published_at_ms: number | bigint | string | null;
  stream_sequence: number | bigint | string | null;
  parked_reason: string | null;
  last_error: string | null;
}

/**
 * Columns of a history row; `s` is `scores`, `o` its left-joined `outbox`. The payload is not
 * read: the event's source is in its CloudEvents headers.
 */
export const HISTORY_COLUMNS = `s.event_id, s.submission_id, s.submission_sequence, s.points_possible,
  s.points_earned, s.course_id, s.user_id, s.module_id, s.queue_name, s.event_time_ms,
  s.event_source, o.subject, o.headers, o.created_at_ms, o.attempts, o.lease_until_ms, o.published_at_ms,
  o.stream_sequence, o.parked_reason, o.last_error`;

/** The history entry of a row: one rule for both stores. */
export function historyEntryOfRow(row: HistoryRow): SubmissionHistoryEntry {
  return {
    queueName: row.queue_name,
    submissionId: BigInt(row.submission_id),
    submissionSequence: Number(row.submission_sequence),
    eventId: row.event_id,
    eventTime: new Date(Number(row.event_time_ms)),
    pointsEarned: Number(row.points_earned),
    pointsPossible: Number(row.points_possible),
    courseId: row.course_id,
    userId: row.user_id,
    moduleId: row.module_id,
    subject: row.subject ?? undefined,
    eventSource: row.headers === null ? (row.event_source ?? undefined) : ceSourceOf(row.headers),
    outbox: outboxStateOfRow(row),
  };
}

function outboxStateOfRow(row: HistoryRow): OutboxState {
  if (row.created_at_ms === null) return { state: "missing" };
  const createdAtMs = Number(row.created_at_ms);
  const attempts = Number(row.attempts ?? 0);
  if (row.published_at_ms !== null) {
    return {
      state: "published",
      createdAtMs,
      attempts,
      publishedAtMs: Number(row.published_at_ms),
      streamSequence: row.stream_sequence === null ? undefined : Number(row.stream_sequence),
    };
  }
  const lastError = row.last_error ?? undefined;
  if (row.parked_reason !== null) {
    return { state: "parked", createdAtMs, attempts, parkedReason: row.parked_reason, lastError };
  }
  return {
    state: "pending",
    createdAtMs,
    attempts,
    leaseUntilMs: Number(row.lease_until_ms ?? 0),
    lastError,
  };
}

/** The `ce-source` of an outbox row's headers (JSON the store itself wrote). */
function ceSourceOf(headers: string): string | undefined {
  const list = JSON.parse(headers) as HeaderList;
  return list.find(([name]) => name === "ce-source")?.[1];
}
