import type { BadRequest_FieldViolation } from "../../gen/ts/google/rpc/error_details.js";

/**
 * Stable codes of the failures gradecast expects. The gRPC edge
 * (src/server/status.ts) maps each to a status code; nothing else does.
 */
export type GradecastErrorCode =
  | "invalid_argument"
  | "submission_conflict"
  | "not_found"
  | "unauthenticated"
  | "permission_denied"
  | "store_unavailable"
  | "unavailable"
  | "internal";

/** Base of every expected failure: a stable `code`, a message for humans, the `cause` kept. */
export class GradecastError extends Error {
  readonly code: GradecastErrorCode;

  constructor(code: GradecastErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "GradecastError";
    this.code = code;
  }
}

/** A request broke one or more rules of the contract; `violations` lists every one. */
export class ValidationError extends GradecastError {
  readonly violations: readonly BadRequest_FieldViolation[];

  constructor(violations: readonly BadRequest_FieldViolation[]) {
    super(
      "invalid_argument",
      `invalid request: ${violations.map((v) => `${v.field} ${v.description}`).join("; ")}`,
    );
    this.name = "ValidationError";
    this.violations = violations;
  }
}

/**
 * A submission id already recorded in the same queue for another course, learner, problem or
 * queue key. The message says no more than the caller sent: not which fields differ, nor what
 * is stored (the same id in another queue is another submission and never conflicts).
 */
export class SubmissionConflictError extends GradecastError {
  readonly submissionId: bigint;
  readonly queueName: string;

  constructor(submissionId: bigint, queueName: string) {
    super(
      "submission_conflict",
      `submission ${submissionId} in queue ${JSON.stringify(queueName)} is recorded for another learner or problem; within a queue, a submission id belongs to one course, learner, problem and queue key`,
    );
    this.name = "SubmissionConflictError";
    this.submissionId = submissionId;
    this.queueName = queueName;
  }
}

/** No score is recorded for the submission asked for. */
export class ScoreNotFoundError extends GradecastError {
  constructor(submissionId: bigint) {
    super("not_found", `no score is recorded for submission ${submissionId}`);
    this.name = "ScoreNotFoundError";
  }
}

/** The store could not commit: nothing was accepted, the caller may retry. */
export class StoreUnavailableError extends GradecastError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("store_unavailable", message, options);
    this.name = "StoreUnavailableError";
  }
}

/** The service is stopping and takes no new work. */
export class ShuttingDownError extends GradecastError {
  constructor() {
    super("unavailable", "gradecast is shutting down; retry on another instance or later");
    this.name = "ShuttingDownError";
  }
}

/** The call carries no valid grader token: none, malformed, or one no grader holds. */
export class UnauthenticatedError extends GradecastError {
  constructor(message: string) {
    super("unauthenticated", message);
    this.name = "UnauthenticatedError";
  }
}

/** An authenticated grader reported a score for a queue its credentials do not allow. */
export class PermissionDeniedError extends GradecastError {
  readonly graderName: string;
  readonly queueName: string;

  constructor(graderName: string, queueName: string) {
    super(
      "permission_denied",
      `grader ${JSON.stringify(graderName)} may not report scores for queue ${JSON.stringify(queueName)}`,
    );
    this.name = "PermissionDeniedError";
    this.graderName = graderName;
    this.queueName = queueName;
  }
}
