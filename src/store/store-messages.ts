import {
  GradecastError,
  type GradecastErrorCode,
  StoreUnavailableError,
  SubmissionConflictError,
} from "../contract/index.js";
import type { RecordOutcome } from "./store.js";

/**
 * What crosses the thread boundary between {@link ThreadedSqliteStore} and its
 * worker. Structured clone keeps bigints, Dates and byte arrays but not error
 * classes, so errors and rejected outcomes travel as plain data.
 */
export type StoreMethod =
  | "recordScores"
  | "latestScore"
  | "latestScoresAcrossQueues"
  | "claimPending"
  | "markPublished"
  | "releaseClaims"
  | "outboxBacklog"
  | "listOutbox"
  | "unparkEvents"
  | "pruneOutbox"
  | "submissionHistory"
  | "close";

export interface StoreRequest {
  id: number;
  method: StoreMethod;
  args: unknown[];
}

export interface SerializedError {
  code: GradecastErrorCode | undefined;
  message: string;
  conflict?: { submissionId: bigint; queueName: string };
}

export type StoreReply =
  | { id: number; isOk: true; value: unknown }
  | { id: number; isOk: false; error: SerializedError };

/** A rejected outcome as data. */
export type WireOutcome =
  | Exclude<RecordOutcome, { kind: "rejected" }>
  | { kind: "rejected"; error: SerializedError };

export function serializeError(error: unknown): SerializedError {
  if (error instanceof SubmissionConflictError) {
    return {
      code: error.code,
      message: error.message,
      conflict: { submissionId: error.submissionId, queueName: error.queueName },
    };
  }
  if (error instanceof GradecastError) return { code: error.code, message: error.message };
  return { code: undefined, message: (error as Error)?.message ?? String(error) };
}

export function deserializeError(error: SerializedError): GradecastError {
  if (error.conflict) {
    return new SubmissionConflictError(error.conflict.submissionId, error.conflict.queueName);
  }
  if (error.code && error.code !== "store_unavailable") {
    return new GradecastError(error.code, error.message);
  }
  return new StoreUnavailableError(error.message);
}

export function toWireOutcome(outcome: RecordOutcome): WireOutcome {
  return outcome.kind === "rejected"
    ? { kind: "rejected", error: serializeError(outcome.error) }
    : outcome;
}

export function fromWireOutcome(outcome: WireOutcome): RecordOutcome {
  return outcome.kind === "rejected"
    ? { kind: "rejected", error: deserializeError(outcome.error) }
    : outcome;
}
