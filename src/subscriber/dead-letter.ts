import type { JetStreamClient, JsMsg } from "@nats-io/jetstream";
import { headers as natsHeaders } from "@nats-io/nats-core";
import { deadLetterSubject, queueNameOfSubject } from "../contract/messages.js";
import { DeadLetterPublishError, type DeadLetterReason } from "./subscriber-errors.js";

/** Headers a dead letter carries on top of the original message's own. */
export const DEAD_LETTER_HEADERS = Object.freeze({
  /** A {@link DeadLetterReason}. */
  reason: "gradecast-dlq-reason",
  /** What went wrong, on one line, at most {@link MAX_ERROR_HEADER_LENGTH} characters. */
  error: "gradecast-dlq-error",
  /** Deliveries of the original when it was given up on. */
  deliveryCount: "gradecast-dlq-delivery-count",
  /** Subject the original was published on. */
  originalSubject: "gradecast-dlq-original-subject",
  /** Sequence of the original in its stream. */
  streamSequence: "gradecast-dlq-stream-sequence",
  /** The consumer (durable name) that gave up on it; the Python bridge writes the same header. */
  consumer: "gradecast-dlq-consumer",
});

/** Longest `gradecast-dlq-error` value; a handler's stack or HTML page must not bloat the DLQ. */
export const MAX_ERROR_HEADER_LENGTH = 512;

/**
 * Queue token of the dead-letter subject when neither the message's subject nor the
 * subscription names a valid queue (a last token outside `A-Za-z0-9_-`, which only a
 * publisher going around gradecast can produce). The leading `_` keeps it apart from the
 * queue names graders use.
 */
export const UNROUTABLE_QUEUE_NAME = "_unroutable";

/** Why and how an event is given up on. */
export interface DeadLetter {
  reason: DeadLetterReason;
  /** The message for `gradecast-dlq-error`. */
  errorMessage: string;
  /** The event's id when it can be trusted; the dedup id falls back to the stream sequence. */
  eventId: string | undefined;
}

/** Where a dead letter went, once JetStream stored it. */
export interface DeadLetterReceipt {
  subject: string;
  /** Sequence in the dead-letter stream. */
  sequence: number;
  /** True when the stream already held this dead letter (an earlier attempt's term was lost). */
  isDuplicate: boolean;
}

/**
 * Publishes the original message to its queue's dead-letter subject: same bytes, original
 * headers plus the `gradecast-dlq-*` ones, and `Nats-Msg-Id` = `dlq-<stream>-<stream
 * sequence>` so a second attempt for the same message is dropped by the stream. Resolves only
 * once JetStream stored it; the caller terminates the original only then.
 * Throws {@link DeadLetterPublishError}.
 */
export async function publishDeadLetter(
  js: JetStreamClient,
  msg: JsMsg,
  letter: DeadLetter,
  route: { subjectPrefix: string; queueName: string | undefined },
): Promise<DeadLetterReceipt> {
  const queueName =
    queueNameOfSubject(route.subjectPrefix, msg.subject) ??
    route.queueName ??
    UNROUTABLE_QUEUE_NAME;
  const subject = deadLetterSubject(route.subjectPrefix, queueName);
  const headers = natsHeaders();
  for (const [name, values] of msg.headers ?? []) {
    for (const value of values) headers.append(name, value);
  }
  headers.set(DEAD_LETTER_HEADERS.reason, letter.reason);
  headers.set(DEAD_LETTER_HEADERS.error, oneLine(letter.errorMessage, MAX_ERROR_HEADER_LENGTH));
  headers.set(DEAD_LETTER_HEADERS.deliveryCount, String(msg.info.deliveryCount));
  headers.set(DEAD_LETTER_HEADERS.originalSubject, msg.subject);
  headers.set(DEAD_LETTER_HEADERS.streamSequence, String(msg.seq));
  headers.set(DEAD_LETTER_HEADERS.consumer, msg.info.consumer);
  // Keyed by the stored message, not only the event: a second attempt for the same
  // delivery is dropped, but a re-driven copy (new stream sequence) that fails again
  // must reach the dead-letter stream again, or terminating it would lose the event.
  const msgID = `dlq-${msg.info.stream}-${msg.seq}`;
  try {
    const ack = await js.publish(subject, msg.data, { msgID, headers });
    return { subject, sequence: ack.seq, isDuplicate: ack.duplicate };
  } catch (error) {
    throw new DeadLetterPublishError(subject, msg.seq, { cause: error });
  }
}

/** `text` without control characters (a header value is one line), cut to `maxLength`. */
function oneLine(text: string, maxLength: number): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: removing them is the point.
  const flat = text.replace(/[\u0000-\u001f\u007f]+/g, " ").trim();
  const characters = [...flat];
  if (characters.length <= maxLength) return flat;
  return `${characters.slice(0, maxLength - 1).join("")}…`;
}
