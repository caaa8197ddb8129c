// The gradecast package: what graders and the LMS import. Values and types are
// exported apart, as the generated contract types double as codecs.

export {
  createScoreClient,
  fieldViolationsOf,
  ScoreCallError,
  type ScoreClient,
  type ScoreClientOptions,
} from "./client/index.js";
export type { FieldViolation, GradecastErrorCode, ScoreServiceServer } from "./contract/index.js";
export {
  BadRequest,
  cloudEventHeaders,
  deadLetterSubject,
  deadLetterSubjectFilter,
  decodeFieldViolations,
  decodeScoreEvent,
  EventMetadata,
  ExternalGraderScoreData,
  ExternalGraderScoreSubmitted,
  GetScoreRequest,
  GetScoreResponse,
  GradecastError,
  SCORE_SUBMITTED_EVENT_TYPE,
  ScoreServiceClient,
  ScoreServiceService,
  SubmitScoreRequest,
  SubmitScoreResponse,
  scoreSubject,
  scoreSubjectFilter,
  validateScoreData,
} from "./contract/index.js";
export {
  type Backoff,
  ConsumerSetupError,
  DEAD_LETTER_HEADERS,
  DeadLetterPublishError,
  type DeadLetterReason,
  type DeliverFrom,
  PoisonMessageError,
  type PoisonReason,
  type ScoreEvent,
  type ScoreHandler,
  type ScoreHandlerContext,
  ScoreHandlerError,
  type ScoreSubscription,
  SubscriberOptionsError,
  type SubscribeToScoresOptions,
  SubscriptionClosedError,
  type SubscriptionStatus,
  SubscriptionStopTimeoutError,
  subscribeToScores,
} from "./subscriber/index.js";
