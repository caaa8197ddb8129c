// The LMS-side subscriber SDK: typed score events from JetStream, acked after the handler,
// retried with backoff, dead-lettered when they cannot be processed.

export { type Backoff, backoffDelayMs, exponentialBackoffMs } from "./backoff.js";
export {
  DEAD_LETTER_HEADERS,
  MAX_ERROR_HEADER_LENGTH,
  UNROUTABLE_QUEUE_NAME,
} from "./dead-letter.js";
export {
  type DeadLetterEntry,
  listDeadLetters,
  type RedriveReceipt,
  RedriveRefusedError,
  redriveDeadLetter,
} from "./dead-letter-queue.js";
export { type ScoreEvent, type ScoreEventJSON, scoreEventToJSON } from "./score-event.js";
export {
  type ScoreHandler,
  type ScoreHandlerContext,
  type ScoreSubscription,
  subscribeToScores,
} from "./subscribe-to-scores.js";
export {
  ConsumerSetupError,
  DeadLetterPublishError,
  type DeadLetterReason,
  PoisonMessageError,
  type PoisonReason,
  ScoreHandlerError,
  SubscriberOptionsError,
  SubscriptionClosedError,
  SubscriptionStopTimeoutError,
} from "./subscriber-errors.js";
export {
  type DeliverFrom,
  makeSubscriberOptions,
  SUBSCRIBER_DEFAULTS,
  type SubscriberOptions,
  type SubscribeToScoresOptions,
} from "./subscriber-options.js";
export type { SubscriptionStatus } from "./subscription-status.js";
export {
  type ErrorJSON,
  type SubscriptionStatusJSON,
  subscriptionStatusToJSON,
} from "./subscription-status-json.js";
