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

const cases: Array<[string, Codec<never>, unknown]> = [
  ["ExternalGraderScoreData", ExternalGraderScoreData, sampleScoreData()],
  ["EventMetadata", EventMetadata, sampleMetadata()],
  ["ExternalGraderScoreSubmitted", ExternalGraderScoreSubmitted, sampleEvent()],
  ["SubmitScoreRequest", SubmitScoreRequest, { scoreData: sampleScoreData() }],
  [
    "SubmitScoreResponse",
    SubmitScoreResponse,
    {
      eventId: "4b2e2a9c-8f0e-4d55-9b43-3f1c1b5d9a11",
      eventTime: new Date("2026-11-26T16:00:00.123Z"),
      replayed: true,
      published: false,
      submissionSequence: 3,
    },
  ],
  ["GetScoreRequest", GetScoreRequest, { submissionId: BIG_SUBMISSION_ID }],
  ["GetScoreResponse", GetScoreResponse, { event: sampleEvent(), published: true }],
  ["BadRequest", BadRequest, badRequest],
  [
    "Status",
    Status,
    {
      code: 3,
      message: "bad score",
      details: [
        {
          typeUrl: "type.googleapis.com/google.rpc.BadRequest",
          value: Buffer.from(BadRequest.encode(badRequest).finish()),
        },
      ],
    },
  ],
];

describe("every message of the contract round-trips", () => {
  it.each(cases)("%s survives binary encode/decode unchanged", (_name, codec, value) => {
    const bytes = codec.encode(value as never).finish();
    expect(bytes.length).toBeGreaterThan(0);
    expect(codec.decode(bytes)).toEqual(value);
  });

  it.each(cases)("%s survives proto3 JSON unchanged", (_name, codec, value) => {
    const json = JSON.parse(JSON.stringify(codec.toJSON(value as never)));
    expect(codec.fromJSON(json)).toEqual(value);
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
