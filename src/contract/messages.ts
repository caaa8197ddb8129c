// The contract without its gRPC service: messages and their codecs, CloudEvents headers,
// subjects, validation and errors. Nothing here loads @grpc/grpc-js, so the subscriber SDK
// imports this module rather than index.ts, and an LMS installs no gRPC runtime.

export { Any } from "../../gen/ts/google/protobuf/any.js";

export {
  BadRequest,
  BadRequest_FieldViolation as FieldViolation,
} from "../../gen/ts/google/rpc/error_details.js";
export { Status } from "../../gen/ts/google/rpc/status.js";
export { EventMetadata, ExternalGraderScoreSubmitted } from "../../gen/ts/gradecast/v1/event.js";
export { ExternalGraderScoreData } from "../../gen/ts/gradecast/v1/score.js";
export {
  cloudEventHeaders,
  decodeHeaderValue,
  encodeHeaderValue,
  type HeaderList,
  PROTOBUF_CONTENT_TYPE,
  SCORE_EVENT_DATASCHEMA,
  TRACE_CONTEXT_HEADERS,
  traceContextHeaderBytes,
  traceContextHeaders,
} from "./cloud-event-headers.js";
export {
  GradecastError,
  type GradecastErrorCode,
  PermissionDeniedError,
  ScoreNotFoundError,
  ShuttingDownError,
  StoreUnavailableError,
  SubmissionConflictError,
  UnauthenticatedError,
  ValidationError,
} from "./errors.js";
export { newEventId } from "./event-id.js";
export { EventSizing, publishedEventBytes } from "./event-size.js";
export { SCORE_SUBMITTED_EVENT_TYPE } from "./event-type.js";
export {
  type AcceptedScore,
  buildScoreEvent,
  decodeScoreEvent,
  type EventMessage,
  type EventOrigin,
  encodeScoreEvent,
  SCORE_EVENT_MINOR_VERSION,
} from "./score-event.js";
export {
  BAD_REQUEST_TYPE_URL,
  decodeFieldViolations,
  encodeBadRequestStatus,
  STATUS_DETAILS_TRAILER,
} from "./status-details.js";
export {
  deadLetterSubject,
  deadLetterSubjectFilter,
  queueNameOfSubject,
  queueNameOfToken,
  queueToken,
  scoreSubjectFilter,
  scoreSubjectOfDeadLetter,
  subjectForQueue,
  subjectPrefixProblem,
} from "./subjects.js";
export {
  formatTraceparent,
  MAX_TRACESTATE_LENGTH,
  MAX_TRACESTATE_MEMBERS,
  normalizeTracestate,
  parseTraceparent,
  readTraceContext,
  type TraceContext,
  type TraceContextReading,
  type TraceParent,
} from "./trace-context.js";
export { spanContextOf, traceContextOfSpan } from "./trace-span-context.js";
export {
  isValidQueueName,
  SCORE_LIMITS,
  validateScoreData,
  validateSubmissionId,
} from "./validation.js";
