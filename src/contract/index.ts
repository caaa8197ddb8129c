// The one module through which the rest of gradecast sees the generated code.
// Nothing outside src/contract/ imports gen/ or depends on ts-proto's options.

export { Any } from "../../gen/ts/google/protobuf/any.js";

export {
  BadRequest,
  BadRequest_FieldViolation as FieldViolation,
} from "../../gen/ts/google/rpc/error_details.js";
export { Status } from "../../gen/ts/google/rpc/status.js";
export { EventMetadata, ExternalGraderScoreSubmitted } from "../../gen/ts/gradecast/v1/event.js";
export { ExternalGraderScoreData } from "../../gen/ts/gradecast/v1/score.js";
export type { ScoreServiceServer } from "../../gen/ts/gradecast/v1/score_service.js";
export {
  GetScoreRequest,
  GetScoreResponse,
  ScoreServiceClient,
  ScoreServiceService,
  SubmitScoreRequest,
  SubmitScoreResponse,
} from "../../gen/ts/gradecast/v1/score_service.js";
export {
  cloudEventHeaders,
  decodeHeaderValue,
  encodeHeaderValue,
  type HeaderList,
  PROTOBUF_CONTENT_TYPE,
  SCORE_EVENT_DATASCHEMA,
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
  isValidQueueName,
  SCORE_LIMITS,
  validateScoreData,
  validateSubmissionId,
} from "./validation.js";
