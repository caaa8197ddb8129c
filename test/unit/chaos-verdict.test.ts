import { describe, expect, it } from "vitest";
import type { CallOutcome, CallRecord } from "../chaos/call-record.js";
import type { StreamEvent } from "../chaos/stream-reader.js";
import { judgeCampaign } from "../chaos/verdict.js";

/** The verifier must be able to fail: each finding it exists for, from made-up answers and messages. */

function call(
  index: number,
  outcome: CallOutcome,
  overrides: Partial<CallRecord> = {},
): CallRecord {
  return {
    index,
    kind: "first",
    submissionId: BigInt(index),
    pointsEarned: 7,
    scoreMsg: `msg ${index}`,
    expectedEventId: undefined,
    expectedSequence: 1,
    attempts: 1,
    cutByDeath: 0,
    outcome,
    ...overrides,
  };
}

function ok(eventId: string, answeredAtMs = 1_000, submissionSequence = 1): CallOutcome {
  return {
    kind: "ok",
    eventId,
    answeredAtMs,
    isReplayed: false,
    isPublished: true,
    submissionSequence,
  };
}

function message(
  seq: number,
  eventId: string,
  submissionId: number,
  overrides: { pointsEarned?: number; scoreMsg?: string; sequence?: number; atMs?: number } = {},
): StreamEvent {
  return {
    seq,
    subject: "gradecast.scores.v1.python-grader",
    natsMsgId: eventId,
    ceId: eventId,
    storedAtMs: overrides.atMs ?? 1_000,
    payload: {
      eventId,
      submissionId: BigInt(submissionId),
      pointsEarned: overrides.pointsEarned ?? 7,
      scoreMsg: overrides.scoreMsg ?? `msg ${submissionId}`,
      submissionSequence: overrides.sequence ?? 1,
    },
  };
}

describe("judgeCampaign", () => {
  it("finds nothing when every OK event is in the stream once with its score", () => {
    const verdict = judgeCampaign(
      [call(1, ok("a")), call(2, ok("b"))],
      [message(1, "a", 1), message(2, "b", 2)],
    );
    expect(verdict).toMatchObject({
      calls: 2,
      ok: 2,
      lost: [],
      duplicated: [],
      unexplained: [],
      misanswered: [],
    });
  });

  it("counts an OK event missing from the stream as lost", () => {
    const verdict = judgeCampaign([call(1, ok("a")), call(2, ok("b"))], [message(1, "a", 1)]);
    expect(verdict.lost).toEqual([expect.stringContaining("event b (submission 2)")]);
  });

  it("counts an event id stored twice, and one score stored as two events, as duplicated", () => {
    const twice = judgeCampaign([call(1, ok("a"))], [message(1, "a", 1), message(2, "a", 1)]);
    expect(twice.duplicated).toEqual([expect.stringContaining("event a stored 2 times (1, 2)")]);

    const twoEvents = judgeCampaign(
      [call(1, ok("a")), call(2, ok("b"), { submissionId: 1n, scoreMsg: "msg 1" })],
      [message(1, "a", 1), message(2, "b", 1)],
    );
    expect(twoEvents.duplicated).toEqual([expect.stringContaining("1#1 has 2 events")]);
  });

  it("counts a retry answered with a new event id as duplicated", () => {
    const verdict = judgeCampaign(
      [
        call(1, ok("a")),
        call(2, ok("b"), {
          kind: "retry",
          submissionId: 1n,
          expectedEventId: "a",
          scoreMsg: "msg 1",
        }),
      ],
      [message(1, "a", 1), message(2, "b", 1, { sequence: 2 })],
    );
    expect(verdict.duplicated).toEqual([expect.stringContaining("accepted as a")]);
  });

  it("explains a message by a call that got no answer, and calls any other unexplained", () => {
    const verdict = judgeCampaign(
      [call(1, ok("a")), call(2, { kind: "unanswered", lastError: "UNAVAILABLE" })],
      [message(1, "a", 1), message(2, "x", 2), message(3, "y", 3)],
    );
    expect(verdict.attributedToUnanswered).toBe(1);
    expect(verdict.unexplained).toEqual([expect.stringContaining("message 3 (y): submission 3")]);
    expect(verdict.unanswered).toHaveLength(1);
  });

  it("flags a message whose payload, headers or sequence disagree with the call", () => {
    const verdict = judgeCampaign(
      [call(1, ok("a")), call(2, ok("b", 1_000, 2))],
      [message(1, "a", 1, { pointsEarned: 3 }), { ...message(2, "b", 2), ceId: "not-b" }],
    );
    expect(verdict.misanswered).toEqual([
      "first of submission 2 answered sequence 2, expected 1",
      expect.stringContaining("message 1 (a) does not hold the score its call sent"),
      expect.stringContaining("message 2: Nats-Msg-Id b, ce-id not-b"),
    ]);
  });

  it("measures the worst time from an OK answer to JetStream storing the event", () => {
    const verdict = judgeCampaign(
      [call(1, ok("a", 1_000)), call(2, ok("b", 2_000))],
      [message(1, "a", 1, { atMs: 900 }), message(2, "b", 2, { atMs: 5_500 })],
    );
    expect(verdict).toMatchObject({ worstDelayMs: 3_500, worstDelayEventId: "b" });
  });
});
