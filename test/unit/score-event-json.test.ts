import type { JsMsg } from "@nats-io/jetstream";
import { headers as natsHeaders } from "@nats-io/nats-core";
import { describe, expect, it } from "vitest";
import { cloudEventHeaders, ExternalGraderScoreSubmitted } from "../../src/contract/index.js";
import {
  type ScoreEvent,
  ScoreHandlerError,
  type SubscriptionStatus,
  scoreEventToJSON,
  subscriptionStatusToJSON,
} from "../../src/subscriber/index.js";
import { readScoreEvent } from "../../src/subscriber/score-event.js";
import { sampleMetadata, sampleScoreData } from "../helpers/contract-fixtures.js";

/** The largest submission id the contract holds (int64). */
const MAX_SUBMISSION_ID = 2n ** 63n - 1n;

/** An event as the SDK hands it to a handler, read from the bytes and headers gradecast publishes. */
function deliveredEvent(submissionId: bigint): ScoreEvent {
  const envelope = {
    metadata: sampleMetadata(),
    scoreData: sampleScoreData({ submissionId }),
    submissionSequence: 2,
  };
  const headers = natsHeaders();
  for (const [name, value] of cloudEventHeaders(envelope)) headers.set(name, value);
  const msg = {
    subject: "gradecast.scores.v1.python-grader",
    seq: 42,
    data: ExternalGraderScoreSubmitted.encode(envelope).finish(),
    headers,
    info: { deliveryCount: 3 },
  } as unknown as JsMsg;
  const read = readScoreEvent(msg);
  if (!read.ok) throw read.error;
  return read.event;
}

describe("the JSON form of a score event", () => {
  it("is what JSON.stringify writes: the 2^63-1 submission id as a decimal string that reads back exactly", () => {
    const event = deliveredEvent(MAX_SUBMISSION_ID);
    const text = JSON.stringify(event);
    const parsed = JSON.parse(text);
    expect(parsed.scoreData.submissionId).toBe("9223372036854775807");
    expect(BigInt(parsed.scoreData.submissionId)).toBe(MAX_SUBMISSION_ID);
    expect(parsed).toEqual(scoreEventToJSON(event));
    expect(parsed).toEqual({
      id: "4b2e2a9c-8f0e-4d55-9b43-3f1c1b5d9a11",
      type: "org.openedx.content_authoring.external_grader.score.submitted.v1",
      time: "2026-11-26T16:00:00.123Z",
      source: "openedx/gradecast/grpc",
      sourcehost: "grader-gw-1",
      sourcelib: "0.1.0",
      minorversion: 1,
      submissionSequence: 2,
      scoreData: {
        ...sampleScoreData(),
        submissionId: "9223372036854775807",
      },
      subject: "gradecast.scores.v1.python-grader",
      streamSequence: 42,
      deliveryCount: 3,
    });
  });

  it("keeps the fields of a copy made with a spread", () => {
    const event = deliveredEvent(7n);
    const copy = { ...event, deliveryCount: 9 };
    expect(JSON.parse(JSON.stringify(copy)).deliveryCount).toBe(9);
  });
});

describe("the JSON form of a subscription status", () => {
  it("writes a failed handler's event and error without throwing, errors with name, message and code", () => {
    const event = deliveredEvent(MAX_SUBMISSION_ID);
    const status: SubscriptionStatus = {
      type: "handler-failed",
      error: new ScoreHandlerError(event, new Error("gradebook is down")),
      event,
      retryInMs: 500,
    };
    const parsed = JSON.parse(JSON.stringify(subscriptionStatusToJSON(status)));
    expect(parsed).toEqual({
      type: "handler-failed",
      error: {
        name: "ScoreHandlerError",
        message: expect.stringContaining("gradebook is down"),
        code: "internal",
      },
      event: scoreEventToJSON(event),
      retryInMs: 500,
    });
    expect(parsed.event.scoreData.submissionId).toBe("9223372036854775807");
  });

  it("writes a plain Error without a code, and leaves other fields as they are", () => {
    const parsed = subscriptionStatusToJSON({
      type: "settle-failed",
      action: "ack",
      streamSequence: 5,
      error: new TypeError("connection closed"),
    });
    expect(parsed).toEqual({
      type: "settle-failed",
      action: "ack",
      streamSequence: 5,
      error: { name: "TypeError", message: "connection closed" },
    });
  });
});
