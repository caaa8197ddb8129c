import { ExternalGraderScoreSubmitted, SCORE_SUBMITTED_EVENT_TYPE } from "../contract/index.js";

/** Prints what the contract says: the event type and an example event as proto3 JSON. */
export function printContractSummary(write: (line: string) => void): void {
  const example = ExternalGraderScoreSubmitted.fromPartial({
    metadata: {
      id: "4b2e2a9c-8f0e-4d55-9b43-3f1c1b5d9a11",
      eventType: SCORE_SUBMITTED_EVENT_TYPE,
      minorversion: 0,
      source: "openedx/gradecast/grpc",
      sourcehost: "grader-gw-1",
      sourcelib: "0.1.0",
      time: new Date("2026-11-26T16:00:00.000Z"),
    },
    scoreData: {
      pointsPossible: 10,
      pointsEarned: 7,
      courseId: "course-v1:edX+DemoX+Demo_Course",
      scoreMsg: '{"correct": false, "score": 0.7, "msg": "<p>7 of 10 tests passed</p>"}',
      submissionId: 4821n,
      userId: "106ecd878f4148a5cabb6bbb0979b730",
      moduleId:
        "block-v1:edX+DemoX+Demo_Course+type@problem+block@d2e35c1d294b4ba0b3b1048615605d2a",
      queueKey: "ffcd933556c926a307c45e0af5131995",
      queueName: "python-grader",
    },
    submissionSequence: 1,
  });
  write(`event type: ${SCORE_SUBMITTED_EVENT_TYPE}`);
  write("gRPC: gradecast.v1.ScoreService/SubmitScore, gradecast.v1.ScoreService/GetScore");
  write("example event (proto3 JSON of gradecast.v1.ExternalGraderScoreSubmitted):");
  write(JSON.stringify(ExternalGraderScoreSubmitted.toJSON(example), null, 2));
}
