import { Metadata, type ServiceError, status } from "@grpc/grpc-js";
import type { Logger } from "pino";
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
 * Anything unexpected is logged in full here, once, and answered generically.
 */
export function toServiceError(
  error: unknown,
  logger: Logger,
  method: string,
): Partial<ServiceError> {
  if (!(error instanceof GradecastError)) {
    logger.error({ err: error, method }, "unexpected error while serving a call");
    return { code: status.INTERNAL, details: "internal error; the server log has the details" };
  }
  const code = GRPC_CODES[error.code];
  const metadata = new Metadata();
  if (error instanceof ValidationError) {
    const details = encodeBadRequestStatus(code, error.message, error.violations);
    metadata.set(STATUS_DETAILS_TRAILER, Buffer.from(details));
  }
  if (code === status.UNAVAILABLE || code === status.INTERNAL) {
    logger.warn({ err: error, method }, "call failed");
  } else if (code === status.UNAUTHENTICATED || code === status.PERMISSION_DENIED) {
    // Never the token: the message names at most the grader and the queue.
    logger.info({ method, code: error.code, reason: error.message }, "call refused");
  }
  return { code, details: error.message, metadata };
}
