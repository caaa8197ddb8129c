import type { ExternalGraderScoreSubmitted } from "../../gen/ts/gradecast/v1/event.js";
import { ExternalGraderScoreSubmitted as EnvelopeCodec } from "../../gen/ts/gradecast/v1/event.js";
import type { ExternalGraderScoreData } from "../../gen/ts/gradecast/v1/score.js";
import { cloudEventHeaders, type HeaderList } from "./cloud-event-headers.js";
import { SCORE_SUBMITTED_EVENT_TYPE } from "./event-type.js";
import { subjectForQueue } from "./subjects.js";

/** Minor version of the event data schema this code writes. */
export const SCORE_EVENT_MINOR_VERSION = 0;

/** Who emits events: the Open edX metadata fields that do not change per event. */
export interface EventOrigin {
  /** Logical source, e.g. `openedx/gradecast/grpc`. */
  source: string;
  /** Host that accepted the score. */
  sourcehost: string;
  /** gradecast's version, dotted. */
  sourcelib: string;
}

/** One accepted score, before it becomes an event. */
export interface AcceptedScore {
  eventId: string;
  time: Date;
  scoreData: ExternalGraderScoreData;
  submissionSequence: number;
}

/** Everything needed to publish an event, exactly: what an outbox row stores. */
export interface EventMessage {
  subject: string;
  payload: Uint8Array;
  headers: HeaderList;
}

/** Builds the envelope of an accepted score. */
export function buildScoreEvent(
  score: AcceptedScore,
  origin: EventOrigin,
): ExternalGraderScoreSubmitted {
  return {
    metadata: {
      id: score.eventId,
      eventType: SCORE_SUBMITTED_EVENT_TYPE,
      minorversion: SCORE_EVENT_MINOR_VERSION,
      source: origin.source,
      sourcehost: origin.sourcehost,
      sourcelib: origin.sourcelib,
      time: score.time,
    },
    scoreData: score.scoreData,
    submissionSequence: score.submissionSequence,
  };
}

/** The subject, protobuf bytes and CloudEvents headers of an accepted score's event. */
export function encodeScoreEvent(
  score: AcceptedScore,
  origin: EventOrigin,
  subjectPrefix: string,
): EventMessage {
  const event = buildScoreEvent(score, origin);
  return {
    subject: subjectForQueue(subjectPrefix, score.scoreData.queueName),
    payload: EnvelopeCodec.encode(event).finish(),
    headers: cloudEventHeaders(event),
  };
}

/** Decodes an event payload (throws on bytes that are not an envelope). */
export function decodeScoreEvent(payload: Uint8Array): ExternalGraderScoreSubmitted {
  return EnvelopeCodec.decode(payload);
}
