import type { SubmissionHistoryEntry } from "../store/index.js";

/** A consumer of the event stream as JetStream describes it, reduced to what explain needs. */
export interface ConsumerSnapshot {
  name: string;
  /** False for an ephemeral consumer (a `tail`, a subscriber without a durable name). */
  isDurable: boolean;
  /** Its subject filters; empty when it takes every subject of the stream. */
  filterSubjects: readonly string[];
  /** JetStream's deliver policy: `all`, `new`, `last`, `by_start_sequence`, `by_start_time`, ... */
  deliverPolicy: string;
  optStartSequence: number | undefined;
  optStartTime: Date | undefined;
  createdAt: Date;
  /** Stream sequence of the last message delivered to it. */
  deliveredStreamSequence: number;
  deliveredAt: Date | undefined;
  /** Every message up to this stream sequence is acknowledged (or terminated). */
  ackFloorStreamSequence: number;
  /** When the ack floor last moved. */
  ackFloorAt: Date | undefined;
  /** Messages delivered and not acknowledged yet. */
  numAckPending: number;
  /** Messages it has had redelivered, in all (JetStream keeps no per-message count). */
  numRedelivered: number;
  /** Messages it has not been delivered yet, in all. */
  numPending: number;
}

/** The event stream's extent. */
export interface StreamSnapshot {
  name: string;
  /** Lowest sequence it still holds (limits and purges remove the oldest). */
  firstSequence: number;
  lastSequence: number;
}

/** What the stream holds at the sequence the outbox recorded for an event. */
export type StreamMessageCheck =
  /** The event itself, stored at `storedAt`. */
  | { state: "present"; storedAt: Date }
  /** Nothing: removed by the stream's limits, a purge or a delete. */
  | { state: "gone" }
  /** Another message (the stream was recreated since): consumer progress cannot be matched. */
  | { state: "other"; messageId: string | undefined };

/** A dead letter of the submission, as the dead-letter stream holds it (headers untrusted). */
export interface DeadLetterSnapshot {
  /** Its sequence in the dead-letter stream (what `dlq redrive` takes). */
  sequence: number;
  deadLetteredAt: Date;
  /** The consumer that gave up on it (`gradecast-dlq-consumer`). */
  consumer: string | undefined;
  reason: string;
  error: string;
  deliveryCount: number;
  /** The event id its payload carries (else its `ce-id` header). */
  eventId: string | undefined;
  /** The submission sequence its payload carries; undefined when the payload does not decode. */
  submissionSequence: number | undefined;
}

/** The bounded read of one queue's dead letters since the submission's first score. */
export type DeadLetterScan =
  | {
      isRead: true;
      queueName: string;
      /** Dead letters were read from this time on (the first score's time, less a margin). */
      since: Date;
      /** Dead letters of the queue since then, and how many of them were read. */
      total: number;
      scanned: number;
      /** The ones of this submission. */
      found: DeadLetterSnapshot[];
    }
  | { isRead: false; queueName: string; problem: string };

/** What explain read from JetStream, or why it could not. */
export type JetStreamView =
  | {
      isReachable: true;
      stream: StreamSnapshot;
      consumers: ConsumerSnapshot[];
      /** By stream sequence: what the stream holds there (published events only). */
      messages: ReadonlyMap<number, StreamMessageCheck>;
      deadLetters: DeadLetterScan[];
    }
  | { isReachable: false; problem: string };

/** Where one event stands for one consumer. */
export type ConsumerPosition =
  /** Its filter does not take the event's subject. */
  | { kind: "not-subscribed" }
  /** Its deliver policy starts after the event: it will never get it. */
  | { kind: "starts-after"; deliverPolicy: string }
  /** It gave up on the event and put it in the dead-letter stream. */
  | { kind: "dead-lettered"; deadLetter: DeadLetterSnapshot }
  /** At or below its ack floor: acknowledged (or terminated) at `ackFloorAt` or before. */
  | {
      kind: "acknowledged";
      ackFloorStreamSequence: number;
      ackFloorAt: Date | undefined;
      /** The floor is this very event, so `ackFloorAt` is when it was acknowledged. */
      isAtFloor: boolean;
    }
  /**
   * Delivered and above its ack floor: not acknowledged yet, or acknowledged out of order while
   * an earlier event is still pending (JetStream reports only the floor).
   */
  | {
      kind: "delivered";
      deliveredStreamSequence: number;
      deliveredAt: Date | undefined;
      ackFloorStreamSequence: number;
      numAckPending: number;
      numRedelivered: number;
    }
  /** Not delivered yet: `streamSequencesBehind` sequences until it reaches the event. */
  | {
      kind: "not-reached";
      streamSequencesBehind: number;
      deliveredStreamSequence: number;
      numPending: number;
    }
  /** Not delivered, and the stream no longer holds the event: it never will be. */
  | { kind: "dropped"; firstSequence: number };

/** One consumer's position for one event. */
export interface ConsumerStanding {
  consumer: string;
  isDurable: boolean;
  position: ConsumerPosition;
}

/** One accepted score and everything known of its way to the consumers. */
export interface ScoreStory {
  score: SubmissionHistoryEntry;
  /** What the stream holds at its sequence; undefined when unpublished or unknown. */
  streamMessage: StreamMessageCheck | undefined;
  /** Every consumer of the stream (ephemeral ones included, marked); empty when unknown. */
  consumers: ConsumerStanding[];
  deadLetters: DeadLetterSnapshot[];
}

/** The one-line answer for a submission (its latest score). */
export interface Verdict {
  kind: VerdictKind;
  text: string;
}

/**
 * Verdict kinds, from the latest score: where it is stuck, or that it arrived. Several
 * consumers give the kind of the one furthest from done (a dead letter first, applied last).
 */
export type VerdictKind =
  | "applied"
  | "delivered"
  | "behind"
  | "dead-lettered"
  | "dropped"
  | "never-delivered"
  | "no-consumer"
  | "waiting"
  | "parked"
  | "stream-unknown"
  | "nats-unreachable";

/** The story of one submission (an id in one queue). */
export interface QueueStory {
  queueName: string;
  verdict: Verdict;
  /** Oldest first; the last one is the latest score. */
  scores: ScoreStory[];
  deadLetterScan: DeadLetterScan | undefined;
}

/** Everything `gradecast explain` says about a submission id. */
export interface SubmissionStory {
  submissionId: bigint;
  /** One per queue that accepted a score of this id, by queue name. */
  queues: QueueStory[];
  jetStream: JetStreamView;
}
