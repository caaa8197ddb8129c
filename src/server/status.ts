import { Metadata, type ServiceError, status } from "@grpc/grpc-js";
import {
  encodeBadRequestStatus,
  GradecastError,
  type GradecastErrorCode,
  STATUS_DETAILS_TRAILER,
  ValidationError,
} from "../contract/index.js";

/** The one mapping from gradecast's error codes to gRPC status codes. */
const GRPC_CODES: Record<GradecastErrorCode, status> = {
  invalid_argument: status.INVALID_ARGUMENT,
  submission_conflict: status.FAILED_PRECONDITION,
  not_found: status.NOT_FOUND,
  unauthenticated: status.UNAUTHENTICATED,
  permission_denied: status.PERMISSION_DENIED,
  store_unavailable: status.UNAVAILABLE,
  unavailable: status.UNAVAILABLE,
  internal: status.INTERNAL,
};

/**
 * Turns any error thrown while serving a call into the gRPC status sent back.
 * Expected failures keep their message; a validation failure also carries a
 * `google.rpc.BadRequest` in the standard `grpc-status-details-bin` trailer.
 * Anything unexpected is answered generically: the call's log line has it in
 * full (see {@link isServerFault}).
 */
export function toServiceError(error: unknown): Partial<ServiceError> {
  if (!(error instanceof GradecastError)) {
    return { code: status.INTERNAL, details: "internal error; the server log has the details" };
  }
  const code = GRPC_CODES[error.code];
  const metadata = new Metadata();
  if (error instanceof ValidationError) {
    const details = encodeBadRequestStatus(code, error.message, error.violations);
    metadata.set(STATUS_DETAILS_TRAILER, Buffer.from(details));
  }
  return { code, details: error.message, metadata };
}

/**
 * Whether a failure is the server's (unexpected, internal, or a store or NATS that cannot serve),
 * so its log line carries the error in full, stack and cause. A client's mistake or a refusal
 * does not: its status message says it all, and names at most the grader and queue, never a token.
 */
export function isServerFault(error: unknown): boolean {
  if (!(error instanceof GradecastError)) return true;
  const code = GRPC_CODES[error.code];
  return code === status.UNAVAILABLE || code === status.INTERNAL;
}
