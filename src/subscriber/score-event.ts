import type { JsMsg } from "@nats-io/jetstream";
import {
  decodeHeaderValue,
  decodeScoreEvent,
  type ExternalGraderScoreData,
  type ExternalGraderScoreSubmitted,
  readTraceContext,
  SCORE_SUBMITTED_EVENT_TYPE,
  TRACE_CONTEXT_HEADERS,
  type TraceContext,
  ValidationError,
  validateScoreData,
} from "../contract/messages.js";
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
  /**
   * The W3C trace context the event carries (CloudEvents distributed-tracing extension:
   * `ce-traceparent`, `ce-tracestate`): gradecast's SubmitScore span, child of the grader's
   * call. Undefined when the grader sent none (and gradecast traces nothing), or the header
   * is not a valid `traceparent`.
   */
  readonly traceContext?: TraceContext | undefined;
  /** {@link scoreEventToJSON} of this event, so `JSON.stringify(event)` works despite the bigint. */
  toJSON(): ScoreEventJSON;
}

/**
 * The JSON form of a {@link ScoreEvent}, what `JSON.stringify(event)` writes: the same fields,
 * with `time` as an ISO 8601 string and `scoreData.submissionId` as a decimal string (a 64-bit
 * id; a JSON number loses precision past 2^53, and `JSON.stringify` throws on a bigint). That is
 * how proto3 JSON writes an int64 too, so `scoreData` reads like the contract's JSON of it.
 */
export interface ScoreEventJSON {
  readonly id: string;
  readonly type: string;
  /** ISO 8601, UTC, milliseconds: `2026-11-27T10:30:00.123Z`. */
  readonly time: string;
  readonly source: string;
  readonly sourcehost: string;
  readonly sourcelib: string;
  readonly minorversion: number;
  readonly submissionSequence: number;
  readonly scoreData: Omit<ExternalGraderScoreData, "submissionId"> & {
    /** The submission id in decimal: `BigInt(submissionId)` reads it back exactly. */
    readonly submissionId: string;
  };
  readonly subject: string;
  readonly streamSequence: number;
  readonly deliveryCount: number;
  /** Present when the event carries one. */
  readonly traceContext?: TraceContext;
}

/** The JSON form of an event (see {@link ScoreEventJSON}): safe to `JSON.stringify`, log or send on. */
export function scoreEventToJSON(event: Omit<ScoreEvent, "toJSON">): ScoreEventJSON {
  return {
    id: event.id,
    type: event.type,
    time: event.time.toISOString(),
    source: event.source,
    sourcehost: event.sourcehost,
    sourcelib: event.sourcelib,
    minorversion: event.minorversion,
    submissionSequence: event.submissionSequence,
    scoreData: { ...event.scoreData, submissionId: event.scoreData.submissionId.toString() },
    subject: event.subject,
    streamSequence: event.streamSequence,
    deliveryCount: event.deliveryCount,
    ...(event.traceContext === undefined ? {} : { traceContext: event.traceContext }),
  };
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

  const event: ScoreEvent = {
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
    traceContext: traceContextOf(msg),
    toJSON() {
      return scoreEventToJSON(this);
    },
  };
  return { ok: true, event };
}

/**
 * The event's trace context, checked like any header: a bad one is left out (the event is
 * still handled; its trace context is a hint, not part of the score).
 */
function traceContextOf(msg: JsMsg): TraceContext | undefined {
  const traceparent = headerValue(msg, TRACE_CONTEXT_HEADERS.traceparent);
  if (traceparent === undefined) return undefined;
  const tracestate = headerValue(msg, TRACE_CONTEXT_HEADERS.tracestate);
  return readTraceContext([traceparent], tracestate === undefined ? [] : [tracestate]).traceContext;
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
