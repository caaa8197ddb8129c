import {
  type EventMetadata,
  type ExternalGraderScoreData,
  type ExternalGraderScoreSubmitted,
  SCORE_SUBMITTED_EVENT_TYPE,
} from "../../src/contract/index.js";

/** A submission id above 2^53: a `number` would round it, so it proves int64 survives. */
export const BIG_SUBMISSION_ID = 9_007_199_254_740_993n;

/** A score with every field set to a realistic, non-default value. */
export function sampleScoreData(
  overrides: Partial<ExternalGraderScoreData> = {},
): ExternalGraderScoreData {
  return {
    pointsPossible: 10,
    pointsEarned: 7,
    courseId: "course-v1:edX+DemoX+Demo_Course",
    scoreMsg: JSON.stringify({
      correct: false,
      score: 0.7,
      msg: "<p>7 of 10 tests passed. — ✓</p>",
    }),
    submissionId: BIG_SUBMISSION_ID,
    userId: "106ecd878f4148a5cabb6bbb0979b730",
    moduleId: "block-v1:edX+DemoX+Demo_Course+type@problem+block@d2e35c1d294b4ba0b3b1048615605d2a",
    queueKey: "ffcd933556c926a307c45e0af5131995",
    queueName: "python-grader",
    ...overrides,
  };
}

export function sampleMetadata(overrides: Partial<EventMetadata> = {}): EventMetadata {
  return {
    id: "4b2e2a9c-8f0e-4d55-9b43-3f1c1b5d9a11",
    eventType: SCORE_SUBMITTED_EVENT_TYPE,
    minorversion: 1,
    source: "openedx/gradecast/grpc",
    sourcehost: "grader-gw-1",
    sourcelib: "0.1.0",
    time: new Date("2026-11-26T16:00:00.123Z"),
    ...overrides,
  };
}

export function sampleEvent(): ExternalGraderScoreSubmitted {
  return { metadata: sampleMetadata(), scoreData: sampleScoreData(), submissionSequence: 2 };
}
