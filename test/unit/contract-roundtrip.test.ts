import { describe, expect, it } from "vitest";
import {
  BadRequest,
  EventMetadata,
  ExternalGraderScoreData,
  ExternalGraderScoreSubmitted,
  GetScoreRequest,
  GetScoreResponse,
  Status,
  SubmitScoreRequest,
  SubmitScoreResponse,
} from "../../src/contract/index.js";
import {
  BIG_SUBMISSION_ID,
  sampleEvent,
  sampleMetadata,
  sampleScoreData,
} from "../helpers/contract-fixtures.js";

// One row per message of the contract: its codec and a value with every field set.
interface Codec<T> {
  encode(message: T): { finish(): Uint8Array };
  decode(bytes: Uint8Array): T;
  toJSON(message: T): unknown;
  fromJSON(json: unknown): T;
}

const badRequest: BadRequest = {
  fieldViolations: [
    { field: "score_data.points_earned", description: "must be <= points_possible (10)" },
    { field: "score_data.queue_name", description: "must match [A-Za-z0-9_-]{1,128}" },
  ],
};

/** A table row that keeps each codec paired with a value of its own type. */
interface RoundTripCase {
  name: string;
  viaBinary(): { decoded: unknown; value: unknown; size: number };
  viaJson(): { decoded: unknown; value: unknown };
}

function roundTrip<T>(name: string, codec: Codec<T>, value: T): RoundTripCase {
  return {
    name,
    viaBinary: () => {
      const bytes = codec.encode(value).finish();
      return { decoded: codec.decode(bytes), value, size: bytes.length };
    },
    viaJson: () => {
      const json: unknown = JSON.parse(JSON.stringify(codec.toJSON(value)));
      return { decoded: codec.fromJSON(json), value };
    },
  };
}

const cases: RoundTripCase[] = [
  roundTrip("ExternalGraderScoreData", ExternalGraderScoreData, sampleScoreData()),
  roundTrip("EventMetadata", EventMetadata, sampleMetadata()),
  roundTrip("ExternalGraderScoreSubmitted", ExternalGraderScoreSubmitted, sampleEvent()),
  roundTrip("SubmitScoreRequest", SubmitScoreRequest, { scoreData: sampleScoreData() }),
  roundTrip("SubmitScoreResponse", SubmitScoreResponse, {
    eventId: "4b2e2a9c-8f0e-4d55-9b43-3f1c1b5d9a11",
    eventTime: new Date("2026-11-26T16:00:00.123Z"),
    replayed: true,
    published: false,
    submissionSequence: 3,
  }),
  roundTrip("GetScoreRequest", GetScoreRequest, {
    submissionId: BIG_SUBMISSION_ID,
    queueName: "MITx-42.01x",
  }),
  roundTrip("GetScoreResponse", GetScoreResponse, { event: sampleEvent(), published: true }),
  roundTrip("BadRequest", BadRequest, badRequest),
  roundTrip("Status", Status, {
    code: 3,
    message: "bad score",
    details: [
      {
        typeUrl: "type.googleapis.com/google.rpc.BadRequest",
        value: Buffer.from(BadRequest.encode(badRequest).finish()),
      },
    ],
  }),
];

describe("every message of the contract round-trips", () => {
  it.each(cases)("$name survives binary encode/decode unchanged", ({ viaBinary }) => {
    const { decoded, value, size } = viaBinary();
    expect(size).toBeGreaterThan(0);
    expect(decoded).toEqual(value);
  });

  it.each(cases)("$name survives proto3 JSON unchanged", ({ viaJson }) => {
    const { decoded, value } = viaJson();
    expect(decoded).toEqual(value);
  });
});

describe("64-bit submission ids", () => {
  it("keep every digit above 2^53 in binary and JSON", () => {
    const data = sampleScoreData();
    const decoded = ExternalGraderScoreData.decode(ExternalGraderScoreData.encode(data).finish());
    expect(decoded.submissionId).toBe(9_007_199_254_740_993n);
    // proto3 JSON writes int64 as a string, so JavaScript readers cannot round it either.
    expect(ExternalGraderScoreData.toJSON(data)).toMatchObject({
      submissionId: "9007199254740993",
    });
  });
});
