import { describe, expect, it } from "vitest";
import {
  ExternalGraderScoreSubmitted,
  SCORE_SUBMITTED_EVENT_TYPE,
} from "../../src/contract/index.js";
import { sampleEvent } from "../helpers/contract-fixtures.js";
import { FROZEN_FIELDS } from "../helpers/frozen-fields.js";
import { runPython } from "../helpers/python.js";

describe("the Python stubs in gen/python speak the same contract", () => {
  it("their descriptors hold exactly the frozen field names, numbers and types", () => {
    const described = JSON.parse(runPython("python_contract.py", ["describe"]));
    expect(described).toEqual(FROZEN_FIELDS);
  });

  it("read the same event type option", () => {
    expect(runPython("python_contract.py", ["event-type"])).toBe(SCORE_SUBMITTED_EVENT_TYPE);
  });

  it("decode bytes written by TypeScript to the same values", () => {
    const hex = Buffer.from(ExternalGraderScoreSubmitted.encode(sampleEvent()).finish()).toString(
      "hex",
    );
    const decoded = JSON.parse(runPython("python_contract.py", ["decode", hex]));
    expect(decoded).toEqual({
      metadata: {
        id: "4b2e2a9c-8f0e-4d55-9b43-3f1c1b5d9a11",
        event_type: "org.openedx.content_authoring.external_grader.score.submitted.v1",
        minorversion: 1,
        source: "openedx/gradecast/grpc",
        sourcehost: "grader-gw-1",
        sourcelib: "0.1.0",
        time: "2026-11-26T16:00:00.123Z",
      },
      score_data: {
        points_possible: 10,
        points_earned: 7,
        course_id: "course-v1:edX+DemoX+Demo_Course",
        score_msg: sampleEvent().scoreData?.scoreMsg,
        submission_id: "9007199254740993",
        user_id: "106ecd878f4148a5cabb6bbb0979b730",
        module_id:
          "block-v1:edX+DemoX+Demo_Course+type@problem+block@d2e35c1d294b4ba0b3b1048615605d2a",
        queue_key: "ffcd933556c926a307c45e0af5131995",
        queue_name: "python-grader",
      },
      submission_sequence: 2,
    });
  });

  it("write bytes that TypeScript decodes to equal values, byte for byte the same", () => {
    const event = sampleEvent();
    const json = JSON.stringify(ExternalGraderScoreSubmitted.toJSON(event));
    const pythonBytes = Buffer.from(runPython("python_contract.py", ["encode"], json), "hex");
    expect(ExternalGraderScoreSubmitted.decode(pythonBytes)).toEqual(event);
    expect(
      pythonBytes.equals(Buffer.from(ExternalGraderScoreSubmitted.encode(event).finish())),
    ).toBe(true);
  });
});
