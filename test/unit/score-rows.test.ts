import { describe, expect, it } from "vitest";
import {
  decodeScoreEvent,
  ExternalGraderScoreSubmitted,
  type GradecastError,
  SCORE_EVENT_MINOR_VERSION,
  StoreUnavailableError,
  SubmissionConflictError,
  type TraceContext,
} from "../../src/contract/index.js";
import {
  decideRecord,
  encodeAcceptedEvent,
  type LatestScoreRow,
  originColumnsOfPayload,
  rowOfAccepted,
  type StoredScoreRow,
  storedScoreOfRow,
  storeFailure,
} from "../../src/store/score-rows.js";
import type { EventEncoding, NewScore } from "../../src/store/store.js";
import { sampleScoreData } from "../helpers/contract-fixtures.js";

const encoding: EventEncoding = {
  origin: { source: "openedx/gradecast/grpc", sourcehost: "grader-gw-1", sourcelib: "0.1.0" },
  subjectPrefix: "gradecast",
};

const TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

function newScore(overrides: Partial<NewScore> = {}): NewScore {
  return {
    scoreData: sampleScoreData(),
    eventId: "5f0c6a4e-9d7b-4c1e-8a55-2b8f1f0e7d21",
    time: new Date("2026-11-26T16:00:00.123Z"),
    ...overrides,
  };
}

/** The value of header `name`, undefined when the message has none. */
function headerOf(headers: ReadonlyArray<readonly [string, string]>, name: string) {
  return headers.find(([header]) => header === name)?.[1];
}

describe("encodeAcceptedEvent", () => {
  it.each([
    ["without a grader name (authentication off)", undefined, "openedx/gradecast/grpc"],
    ["of grader python-1", "python-1", "openedx/gradecast/grpc/python-1"],
  ])(
    "gives the event of a score %s the source %s, the rest of the origin unchanged",
    (_case, graderName, source) => {
      const message = encodeAcceptedEvent(
        encoding,
        newScore(graderName === undefined ? {} : { graderName }),
        3,
      );
      expect(decodeScoreEvent(message.payload).metadata).toMatchObject({
        source,
        sourcehost: "grader-gw-1",
        sourcelib: "0.1.0",
      });
      expect(headerOf(message.headers, "ce-source")).toBe(source);
      expect(headerOf(message.headers, "ce-sourcehost")).toBe("grader-gw-1");
    },
  );

  it.each<[string, TraceContext | undefined, Array<[string, string]>]>([
    ["no trace context", undefined, []],
    ["a traceparent", { traceparent: TRACEPARENT }, [["ce-traceparent", TRACEPARENT]]],
    [
      "a traceparent and a tracestate",
      { traceparent: TRACEPARENT, tracestate: "vendor=abc" },
      [
        ["ce-traceparent", TRACEPARENT],
        ["ce-tracestate", "vendor=abc"],
      ],
    ],
  ])(
    "appends to the CloudEvents headers the trace headers of %s",
    (_case, traceContext, traceHeaders) => {
      const score = newScore(traceContext === undefined ? {} : { traceContext });
      const message = encodeAcceptedEvent(encoding, score, 1);
      const names = message.headers.map(([name]) => name);
      expect(names.slice(0, names.length - traceHeaders.length)).toEqual([
        "ce-specversion",
        "ce-id",
        "ce-type",
        "ce-source",
        "ce-time",
        "ce-datacontenttype",
        "ce-dataschema",
        "ce-minorversion",
        "ce-sourcehost",
        "ce-sourcelib",
        "ce-queuename",
        "content-type",
        "Nats-Msg-Id",
      ]);
      expect(message.headers.slice(names.length - traceHeaders.length)).toEqual(traceHeaders);
      // The outbox row stores these headers, so the relay's deduplication id is the event id.
      expect(headerOf(message.headers, "Nats-Msg-Id")).toBe(score.eventId);
      expect(message.subject).toBe("gradecast.scores.v1.python-grader");
      expect(decodeScoreEvent(message.payload).submissionSequence).toBe(1);
    },
  );
});

describe("decideRecord", () => {
  const latestRow = (publishedAtMs: LatestScoreRow["published_at_ms"]): LatestScoreRow => ({
    ...rowOfAccepted(newScore(), 4),
    published_at_ms: publishedAtMs,
  });

  it.each<[string, LatestScoreRow["published_at_ms"], boolean]>([
    ["still in the outbox", null, false],
    ["published (SQLite's number)", 1_764_172_800_500, true],
    ["published (PostgreSQL's decimal text)", "1764172800500", true],
    ["published, its outbox row pruned", 0, true],
  ])("replays a retry of a score %s with published %s", (_case, publishedAtMs, published) => {
    const decision = decideRecord(latestRow(publishedAtMs), sampleScoreData());
    expect(decision).toEqual({
      kind: "replayed",
      record: {
        eventId: "5f0c6a4e-9d7b-4c1e-8a55-2b8f1f0e7d21",
        eventTime: new Date("2026-11-26T16:00:00.123Z"),
        submissionSequence: 4,
        published,
      },
    });
  });

  it("accepts a regrade as the next sequence and refuses another learner's reuse of the id", () => {
    expect(decideRecord(latestRow(null), sampleScoreData({ pointsEarned: 9 }))).toEqual({
      kind: "accept",
      submissionSequence: 5,
    });
    const conflict = decideRecord(latestRow(null), sampleScoreData({ userId: "another" }));
    expect(conflict.kind === "rejected" && conflict.error).toBeInstanceOf(SubmissionConflictError);
    expect(decideRecord(undefined, sampleScoreData())).toEqual({
      kind: "accept",
      submissionSequence: 1,
    });
  });
});

describe("storeFailure", () => {
  it.each<[string, GradecastError]>([
    ["a StoreUnavailableError", new StoreUnavailableError("database is locked")],
    ["a SubmissionConflictError", new SubmissionConflictError(7n, "python-grader")],
  ])("passes %s on as it is", (_case, error) => {
    expect(storeFailure("record scores", error)).toBe(error);
  });

  it("turns any other failure into a StoreUnavailableError that says what failed and keeps the cause", () => {
    const cause = new Error("SQLITE_IOERR: disk I/O error");
    const failure = storeFailure("record scores", cause);
    expect(failure).toBeInstanceOf(StoreUnavailableError);
    expect(failure).toMatchObject({
      code: "store_unavailable",
      message: "record scores: SQLITE_IOERR: disk I/O error",
      cause,
    });
  });
});

describe("storedScoreOfRow", () => {
  const score = newScore({ graderName: "python-1" });
  /** The row of `score` as GetScore reads it once its outbox row is pruned. */
  function prunedRow(origin: Partial<StoredScoreRow> = {}): StoredScoreRow {
    return {
      ...rowOfAccepted(score, 2),
      published_at_ms: 0,
      event_source: "openedx/gradecast/grpc/python-1",
      event_sourcehost: "grader-gw-1",
      event_sourcelib: "0.1.0",
      event_minor_version: SCORE_EVENT_MINOR_VERSION,
      payload: null,
      ...origin,
    };
  }

  it("answers the outbox row's bytes while the row is there", () => {
    const published = encodeAcceptedEvent(encoding, score, 2).payload;
    const stored = storedScoreOfRow(
      prunedRow({ payload: Buffer.from(published) }),
      score.scoreData.submissionId,
    );
    expect(stored.payload).toEqual(new Uint8Array(published));
    expect(stored.queueName).toBe(score.scoreData.queueName);
  });

  it("rebuilds a pruned event byte for byte from the score row", () => {
    const published = encodeAcceptedEvent(encoding, score, 2).payload;
    const stored = storedScoreOfRow(prunedRow(), score.scoreData.submissionId);
    expect(stored.payload).toEqual(published);
    expect(stored.record).toEqual({
      eventId: score.eventId,
      eventTime: score.time,
      submissionSequence: 2,
      published: true,
    });
  });

  it("rebuilds the minor version the row recorded, not today's", () => {
    const stored = storedScoreOfRow(
      prunedRow({ event_minor_version: SCORE_EVENT_MINOR_VERSION + 1 }),
      score.scoreData.submissionId,
    );
    expect(decodeScoreEvent(stored.payload).metadata?.minorversion).toBe(
      SCORE_EVENT_MINOR_VERSION + 1,
    );
  });

  it("rebuilds a row whose metadata was never recorded with empty origin and today's minor version", () => {
    const stored = storedScoreOfRow(
      prunedRow({
        event_source: null,
        event_sourcehost: null,
        event_sourcelib: null,
        event_minor_version: null,
      }),
      score.scoreData.submissionId,
    );
    const metadata = decodeScoreEvent(stored.payload).metadata;
    expect(metadata).toMatchObject({
      id: score.eventId,
      source: "",
      sourcehost: "",
      sourcelib: "",
      minorversion: SCORE_EVENT_MINOR_VERSION,
    });
    expect(decodeScoreEvent(stored.payload).scoreData?.submissionId).toBe(
      score.scoreData.submissionId,
    );
  });
});

describe("originColumnsOfPayload", () => {
  it("reads the source, host, library and minor version of the event's metadata", () => {
    const event = decodeScoreEvent(encodeAcceptedEvent(encoding, newScore(), 1).payload);
    const payload = ExternalGraderScoreSubmitted.encode({
      ...event,
      metadata: event.metadata && { ...event.metadata, minorversion: 3 },
    }).finish();
    expect(originColumnsOfPayload(payload)).toEqual([
      "openedx/gradecast/grpc",
      "grader-gw-1",
      "0.1.0",
      3,
    ]);
  });

  it("gives empty strings and today's minor version for an event without metadata", () => {
    const event = decodeScoreEvent(encodeAcceptedEvent(encoding, newScore(), 1).payload);
    const payload = ExternalGraderScoreSubmitted.encode({ ...event, metadata: undefined }).finish();
    expect(originColumnsOfPayload(payload)).toEqual(["", "", "", SCORE_EVENT_MINOR_VERSION]);
  });
});
