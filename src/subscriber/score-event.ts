import type { JsMsg } from "@nats-io/jetstream";
import {
  decodeHeaderValue,
  decodeScoreEvent,
  type ExternalGraderScoreData,
  type ExternalGraderScoreSubmitted,
  SCORE_SUBMITTED_EVENT_TYPE,
  ValidationError,
  validateScoreData,
} from "../contract/index.js";
import { messageOf, PoisonMessageError } from "./subscriber-errors.js";

/** One `EXTERNAL_GRADER_SCORE_SUBMITTED` event as a handler receives it: decoded and checked. */
export interface ScoreEvent {
  /** Event id (UUID); also `ce-id` and `Nats-Msg-Id`. The same on every redelivery. */
  readonly id: string;
  /** Open edX event type, always {@link SCORE_SUBMITTED_EVENT_TYPE}. */
  readonly type: string;
  /** When gradecast accepted the score. */
  readonly time: Date;
  readonly source: string;
  readonly sourcehost: string;
  readonly sourcelib: string;
  readonly minorversion: number;
  /** 1 for a submission's first score, +1 per regrade: keep the highest per submission. */
  readonly submissionSequence: number;
  /** The score, valid by the contract's rules. */
  readonly scoreData: ExternalGraderScoreData;
  /** NATS subject the event was published on, `<prefix>.scores.v1.<queue token>`. */
  readonly subject: string;
  /** Position of the event in the stream. */
  readonly streamSequence: number;
  /** 1 on the first delivery, then +1 per redelivery. */
  readonly deliveryCount: number;
}

/** A message read as an event, or the reason it is poison. */
export type ReadResult =
  | { readonly ok: true; readonly event: ScoreEvent }
  | {
      readonly ok: false;
      readonly error: PoisonMessageError;
      /** The event id, when headers and payload agree on it (else it cannot be trusted). */
      readonly eventId: string | undefined;
    };

/**
 * Decodes a delivered message and checks it is a valid score event whose CloudEvents
 * headers (`ce-id`, `ce-type`) agree with its payload. Never throws: anything else is
 * a poison message that no retry can fix.
 */
export function readScoreEvent(msg: JsMsg): ReadResult {
  const seq = msg.seq;
  const poison = (
    reason: PoisonMessageError["reason"],
    message: string,
    cause?: unknown,
    eventId?: string,
  ): ReadResult => ({
    ok: false,
    error: new PoisonMessageError(reason, seq, message, { cause }),
    eventId,
  });

  let envelope: ExternalGraderScoreSubmitted;
  try {
    envelope = decodeScoreEvent(msg.data);
  } catch (error) {
    return poison("decode", `payload is not protobuf: ${messageOf(error)}`, error);
  }
  // Protobuf decodes many byte strings without error; an envelope without these is not one.
  const { metadata, scoreData } = envelope;
  if (!metadata?.time || !scoreData || metadata.id === "") {
    return poison("decode", "payload is not an event envelope (no metadata, time or score_data)");
  }
  if (metadata.eventType !== SCORE_SUBMITTED_EVENT_TYPE) {
    return poison("decode", `payload is a ${JSON.stringify(metadata.eventType)} event`);
  }

  for (const [header, fromPayload] of [
    ["ce-id", metadata.id],
    ["ce-type", metadata.eventType],
  ] as const) {
    const fromHeader = headerValue(msg, header);
    if (fromHeader !== fromPayload) {
      return poison(
        "header-mismatch",
        `header ${header} is ${JSON.stringify(fromHeader ?? null)}, the payload says ${JSON.stringify(fromPayload)}`,
      );
    }
  }

  const violations = validateScoreData(scoreData);
  if (envelope.submissionSequence < 1) {
    violations.push({ field: "submission_sequence", description: "must be >= 1, got 0" });
  }
  if (violations.length > 0) {
    const error = new ValidationError(violations);
    return poison("validation", error.message, error, metadata.id);
  }

  return {
    ok: true,
    event: {
      id: metadata.id,
      type: metadata.eventType,
      time: metadata.time,
      source: metadata.source,
      sourcehost: metadata.sourcehost,
      sourcelib: metadata.sourcelib,
      minorversion: metadata.minorversion,
      submissionSequence: envelope.submissionSequence,
      scoreData,
      subject: msg.subject,
      streamSequence: seq,
      deliveryCount: msg.info.deliveryCount,
    },
  };
}

/** A header's value, percent-decoded as CloudEvents headers are written; undefined when absent. */
function headerValue(msg: JsMsg, name: string): string | undefined {
  const raw = msg.headers?.has(name) ? msg.headers.get(name) : undefined;
  if (raw === undefined) return undefined;
  try {
    return decodeHeaderValue(raw);
  } catch {
    // Not valid percent-encoding: compare it raw, so it is reported as a mismatch.
    return raw;
  }
}
