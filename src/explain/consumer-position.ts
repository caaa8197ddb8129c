import type {
  ConsumerPosition,
  ConsumerSnapshot,
  DeadLetterSnapshot,
  StreamMessageCheck,
  StreamSnapshot,
} from "./explanation.js";
import { consumerTakesSubject } from "./subject-filter.js";

/** A published event as the position rules need it. */
export interface PublishedEventRef {
  subject: string;
  streamSequence: number;
  message: StreamMessageCheck;
}

/**
 * Where a published event stands for a consumer. A dead letter from that consumer comes first:
 * the SDK terminates what it dead-letters, which moves the ack floor past it as an ack would.
 */
export function consumerPosition(
  consumer: ConsumerSnapshot,
  event: PublishedEventRef,
  stream: StreamSnapshot,
  deadLetters: readonly DeadLetterSnapshot[],
): ConsumerPosition {
  if (!consumerTakesSubject(consumer.filterSubjects, event.subject)) {
    return { kind: "not-subscribed" };
  }
  const deadLetter = deadLetters
    .filter((letter) => letter.consumer === consumer.name)
    .reduce<DeadLetterSnapshot | undefined>(
      (latest, letter) =>
        latest === undefined || letter.sequence > latest.sequence ? letter : latest,
      undefined,
    );
  if (deadLetter) return { kind: "dead-lettered", deadLetter };
  const seq = event.streamSequence;
  if (startsAfter(consumer, event)) {
    return { kind: "starts-after", deliverPolicy: consumer.deliverPolicy };
  }
  if (seq <= consumer.ackFloorStreamSequence) {
    return {
      kind: "acknowledged",
      ackFloorStreamSequence: consumer.ackFloorStreamSequence,
      ackFloorAt: consumer.ackFloorAt,
      isAtFloor: seq === consumer.ackFloorStreamSequence,
    };
  }
  if (seq <= consumer.deliveredStreamSequence) {
    return {
      kind: "delivered",
      deliveredStreamSequence: consumer.deliveredStreamSequence,
      deliveredAt: consumer.deliveredAt,
      ackFloorStreamSequence: consumer.ackFloorStreamSequence,
      numAckPending: consumer.numAckPending,
      numRedelivered: consumer.numRedelivered,
    };
  }
  if (event.message.state !== "present") {
    return { kind: "dropped", firstSequence: stream.firstSequence };
  }
  return {
    kind: "not-reached",
    streamSequencesBehind: seq - consumer.deliveredStreamSequence,
    deliveredStreamSequence: consumer.deliveredStreamSequence,
    numPending: consumer.numPending,
  };
}

/**
 * Whether the consumer's deliver policy starts after the event, so it never delivers it: a
 * start sequence above it, a start time after it was stored, or `new` created after it was.
 */
function startsAfter(consumer: ConsumerSnapshot, event: PublishedEventRef): boolean {
  const storedAt = event.message.state === "present" ? event.message.storedAt : undefined;
  switch (consumer.deliverPolicy) {
    case "by_start_sequence":
      return (consumer.optStartSequence ?? 0) > event.streamSequence;
    case "by_start_time":
      return (
        storedAt !== undefined &&
        consumer.optStartTime !== undefined &&
        consumer.optStartTime > storedAt
      );
    case "new":
      return storedAt !== undefined && consumer.createdAt > storedAt;
    default:
      return false;
  }
}
