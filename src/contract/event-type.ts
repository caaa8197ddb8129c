import { protoMetadata } from "../../gen/ts/gradecast/v1/event.js";

/**
 * The Open edX event type of `ExternalGraderScoreSubmitted`, read from the
 * envelope's `(gradecast.v1.event_type)` option so the contract stays the only
 * place it is spelled out.
 */
export const SCORE_SUBMITTED_EVENT_TYPE: string = eventTypeOption("ExternalGraderScoreSubmitted");

function eventTypeOption(messageName: string): string {
  const value = protoMetadata.options?.messages?.[messageName]?.options?.event_type;
  if (typeof value !== "string" || value === "") {
    throw new Error(`the contract gives ${messageName} no (gradecast.v1.event_type) option`);
  }
  return value;
}
