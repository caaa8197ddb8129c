import { GradecastError } from "../contract/messages.js";

/** Why an event went to the dead-letter subject. */
export type DeadLetterReason =
  /** The payload is not an `ExternalGraderScoreSubmitted` envelope of this event type. */
  | "decode"
  /** `ce-id` or `ce-type` says something else than the payload's metadata. */
  | "header-mismatch"
  /** The score breaks a rule of the contract (`validateScoreData`). */
  | "validation"
  /** The handler failed on `maxDeliver` deliveries. */
  | "max-deliver";

/** The poison-message subset of {@link DeadLetterReason}: no retry can fix these. */
export type PoisonReason = Exclude<DeadLetterReason, "max-deliver">;

/** An option of `subscribeToScores` that cannot be used; `option` names it. */
export class SubscriberOptionsError extends GradecastError {
  readonly option: string;

  constructor(option: string, problem: string) {
    super("invalid_argument", `subscriber option ${option} ${problem}`);
    this.name = "SubscriberOptionsError";
    this.option = option;
  }
}

/** The JetStream consumer could not be created, updated or looked up. */
export class ConsumerSetupError extends GradecastError {
  readonly stream: string;
  readonly consumer: string;

  constructor(stream: string, consumer: string, message: string, options?: { cause?: unknown }) {
    super("unavailable", `consumer ${consumer} on stream ${stream}: ${message}`, options);
    this.name = "ConsumerSetupError";
    this.stream = stream;
    this.consumer = consumer;
  }
}

/** A message no handler can process: it is dead-lettered at once, never retried. */
export class PoisonMessageError extends GradecastError {
  readonly reason: PoisonReason;
  readonly streamSequence: number;

  constructor(
    reason: PoisonReason,
    streamSequence: number,
    message: string,
    options?: { cause?: unknown },
  ) {
    super("invalid_argument", `message ${streamSequence} (${reason}): ${message}`, options);
    this.name = "PoisonMessageError";
    this.reason = reason;
    this.streamSequence = streamSequence;
  }
}

/** The handler threw (or rejected) for one delivery of an event; `cause` is what it threw. */
export class ScoreHandlerError extends GradecastError {
  readonly eventId: string;
  readonly streamSequence: number;
  readonly deliveryCount: number;

  constructor(
    event: { id: string; streamSequence: number; deliveryCount: number },
    cause: unknown,
  ) {
    super(
      "internal",
      `handler failed on event ${event.id} (stream sequence ${event.streamSequence}, delivery ${event.deliveryCount}): ${messageOf(cause)}`,
      { cause },
    );
    this.name = "ScoreHandlerError";
    this.eventId = event.id;
    this.streamSequence = event.streamSequence;
    this.deliveryCount = event.deliveryCount;
  }
}

/** JetStream did not acknowledge a dead-letter publish; the original is nak'ed, not dropped. */
export class DeadLetterPublishError extends GradecastError {
  readonly subject: string;
  readonly streamSequence: number;

  constructor(subject: string, streamSequence: number, options?: { cause?: unknown }) {
    super(
      "unavailable",
      `dead-letter publish of message ${streamSequence} to ${subject} failed: ${messageOf(options?.cause)}`,
      options,
    );
    this.name = "DeadLetterPublishError";
    this.subject = subject;
    this.streamSequence = streamSequence;
  }
}

/**
 * `stop()` gave up waiting for handlers: the subscription is stopped, and the events of the
 * `abandoned` handlers were never acknowledged, so JetStream redelivers them after `ackWaitMs`.
 */
export class SubscriptionStopTimeoutError extends GradecastError {
  readonly abandoned: number;

  constructor(timeoutMs: number, abandoned: number) {
    super(
      "unavailable",
      `stop gave up after ${timeoutMs} ms with ${abandoned} event(s) unfinished; JetStream will redeliver them`,
    );
    this.name = "SubscriptionStopTimeoutError";
    this.abandoned = abandoned;
  }
}

/** The NATS connection closed under a running subscription; it stopped without draining. */
export class SubscriptionClosedError extends GradecastError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("unavailable", message, options);
    this.name = "SubscriptionClosedError";
  }
}

/** The message of anything thrown, for error messages and dead-letter headers. */
export function messageOf(thrown: unknown): string {
  if (thrown instanceof Error) return thrown.message;
  return String(thrown);
}
