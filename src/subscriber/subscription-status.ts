import type { ScoreEvent } from "./score-event.js";
import type {
  ConsumerSetupError,
  DeadLetterPublishError,
  DeadLetterReason,
  ScoreHandlerError,
} from "./subscriber-errors.js";

/**
 * What a running subscription reports through `status()`: nothing here stops it, and none of
 * it is lost work (a failed event is retried or dead-lettered), but each one is worth a log
 * line or a metric.
 */
export type SubscriptionStatus =
  /** The handler threw; the event was nak'ed and comes back after `retryInMs`. */
  | {
      readonly type: "handler-failed";
      readonly error: ScoreHandlerError;
      readonly event: ScoreEvent;
      readonly retryInMs: number;
    }
  /** The message is on the dead-letter subject and the original was terminated. */
  | {
      readonly type: "dead-lettered";
      readonly reason: DeadLetterReason;
      /** A `PoisonMessageError`, or for `max-deliver` the last `ScoreHandlerError`. */
      readonly error: Error;
      readonly subject: string;
      readonly streamSequence: number;
      readonly deliveryCount: number;
      readonly deadLetterSubject: string;
    }
  /** The dead-letter publish failed; the original was nak'ed and is tried again. */
  | {
      readonly type: "dead-letter-failed";
      readonly reason: DeadLetterReason;
      readonly error: DeadLetterPublishError;
      readonly streamSequence: number;
      readonly deliveryCount: number;
      readonly retryInMs: number;
    }
  /** An ack, nak, term or working() could not be sent (connection closing): redelivery follows. */
  | {
      readonly type: "settle-failed";
      readonly action: "ack" | "nak" | "term" | "working";
      readonly streamSequence: number;
      readonly error: Error;
    }
  /** Two or more of the server's idle heartbeats in a row did not arrive. */
  | { readonly type: "heartbeats-missed"; readonly count: number }
  /** The server says the consumer is gone; the subscription recreates it. */
  | { readonly type: "consumer-missing"; readonly consumer: string; readonly description: string }
  /** The consumer was created again after it went missing. */
  | { readonly type: "consumer-recreated"; readonly consumer: string }
  /** Creating or updating the consumer failed; it is tried again. */
  | { readonly type: "consumer-setup-failed"; readonly error: ConsumerSetupError }
  /** Message delivery (nats.js `consume()`) was started again, and why. */
  | {
      readonly type: "consume-restarted";
      readonly reason: "heartbeats-missed" | "consumer-recreated" | "consume-failed";
      readonly error?: Error;
    }
  /** JetStream reported a problem the subscription cannot fix; delivery resumes once it is. */
  | {
      readonly type: "jetstream-issue";
      readonly issue: "stream-not-found" | "no-responders" | "exceeded-limits";
      readonly description: string;
    }
  /**
   * `stop()` could not flush the last acks or delete its ephemeral consumer: NATS failed it,
   * or did not answer in time (what is left of `stopTimeoutMs`, at least 1 s).
   */
  | {
      readonly type: "stop-incomplete";
      readonly step: "flush" | "delete-consumer";
      readonly error: Error;
    }
  /** A bug: something the subscription did not expect threw. */
  | { readonly type: "internal-error"; readonly error: Error };
