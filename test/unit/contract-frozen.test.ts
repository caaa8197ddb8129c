import { BinaryReader } from "@bufbuild/protobuf/wire";
import { describe, expect, it } from "vitest";
import {
  EventMetadata,
  ExternalGraderScoreData,
  ExternalGraderScoreSubmitted,
  SCORE_SUBMITTED_EVENT_TYPE,
} from "../../src/contract/index.js";
import { sampleEvent, sampleMetadata, sampleScoreData } from "../helpers/contract-fixtures.js";
import { FROZEN_FIELDS } from "../helpers/frozen-fields.js";

/** Field numbers present in encoded bytes, read straight off the wire tags. */
function wireFieldNumbers(bytes: Uint8Array): number[] {
  const reader = new BinaryReader(bytes);
  const numbers: number[] = [];
  while (reader.pos < reader.len) {
    const [fieldNo, wireType] = reader.tag();
    numbers.push(fieldNo);
    reader.skip(wireType);
  }
  return numbers;
}

function frozenNumbers(messageName: string): number[] {
  const fields = FROZEN_FIELDS[messageName];
  if (!fields) throw new Error(`no frozen fields for ${messageName}`);
  return fields.map((field) => field.number);
}

describe("the generated TypeScript writes the frozen field numbers", () => {
  it("ExternalGraderScoreData writes fields 1..9 in order", () => {
    const bytes = ExternalGraderScoreData.encode(sampleScoreData()).finish();
    expect(wireFieldNumbers(bytes)).toEqual(frozenNumbers("gradecast.v1.ExternalGraderScoreData"));
  });

  it("EventMetadata writes fields 1..7 in order", () => {
    const bytes = EventMetadata.encode(sampleMetadata()).finish();
    expect(wireFieldNumbers(bytes)).toEqual(frozenNumbers("gradecast.v1.EventMetadata"));
  });

  it("ExternalGraderScoreSubmitted writes metadata, score_data, submission_sequence", () => {
    const bytes = ExternalGraderScoreSubmitted.encode(sampleEvent()).finish();
    expect(wireFieldNumbers(bytes)).toEqual(
      frozenNumbers("gradecast.v1.ExternalGraderScoreSubmitted"),
    );
  });

  it("a single field lands on its frozen number (points_earned = 2, queue_name = 9)", () => {
    const only = (overrides: Partial<ExternalGraderScoreData>) =>
      wireFieldNumbers(
        ExternalGraderScoreData.encode(ExternalGraderScoreData.fromPartial(overrides)).finish(),
      );
    expect(only({ pointsEarned: 3 })).toEqual([2]);
    expect(only({ queueName: "q" })).toEqual([9]);
    expect(only({ submissionId: 1n })).toEqual([5]);
  });

  it("JSON names are the proto3 JSON names of the frozen fields", () => {
    const json = ExternalGraderScoreData.toJSON(sampleScoreData()) as Record<string, unknown>;
    const expected = (FROZEN_FIELDS["gradecast.v1.ExternalGraderScoreData"] ?? []).map((f) =>
      f.name.replace(/_([a-z])/g, (_m, c: string) => c.toUpperCase()),
    );
    expect(Object.keys(json)).toEqual(expected);
  });
});

describe("the event type", () => {
  it("is the ADR's type, read from the contract's option", () => {
    expect(SCORE_SUBMITTED_EVENT_TYPE).toBe(
      "org.openedx.content_authoring.external_grader.score.submitted.v1",
    );
  });
});
