import { MsgHdrsImpl } from "@nats-io/nats-core";
import { describe, expect, it } from "vitest";
import { EventSizing, encodeScoreEvent, publishedEventBytes } from "../../src/contract/index.js";
import { sampleScoreData } from "../helpers/contract-fixtures.js";

const origin = { source: "openedx/gradecast/grpc", sourcehost: "host-1", sourcelib: "0.1.0" };
const sizing = new EventSizing(origin, "gradecast");

describe("EventSizing", () => {
  it.each([
    ["a typical score", sampleScoreData()],
    ["a long ASCII score_msg", sampleScoreData({ scoreMsg: "x".repeat(60_000) })],
    ["non-ASCII fields", sampleScoreData({ scoreMsg: "é北".repeat(5_000), userId: "ユーザー" })],
    ["the largest ids", sampleScoreData({ courseId: `course-v1:${"c".repeat(200)}` })],
  ])("bounds %s from above, by less than 100 bytes, for any grader", (_, data) => {
    const graderName = "g".repeat(64);
    const exact = sizing.exactBytes(data, graderName);
    const bound = sizing.upperBound(data);
    expect(bound).toBeGreaterThanOrEqual(exact);
    expect(bound - exact).toBeLessThan(100);
    expect(sizing.exactBytes(data)).toBeLessThanOrEqual(exact);
  });

  it("counts what nats.js counts against max_payload: payload plus encoded headers", () => {
    const message = encodeScoreEvent(
      {
        eventId: "0190a8c4-1f6e-7c3a-9a8b-123456789abc",
        time: new Date(),
        scoreData: sampleScoreData(),
        submissionSequence: 3,
      },
      origin,
      "gradecast",
    );
    const record = Object.fromEntries(message.headers.map(([name, value]) => [name, [value]]));
    const encodedHeaders = (MsgHdrsImpl.fromRecord(record) as MsgHdrsImpl).encode();
    expect(publishedEventBytes(message)).toBe(message.payload.length + encodedHeaders.length);
  });

  it("knows the largest event the contract allows: over 64 KiB, so a 64 KiB max_payload is too small", () => {
    expect(sizing.largestEventBytes).toBeGreaterThan(65_536);
    expect(sizing.largestEventBytes).toBeLessThan(70_000);
  });
});
