// The score every bench call sends: realistic sizes (a 2 KB HTML score_msg, Open edX ids),
// a distinct submission per call so each one is a first score that is stored and published.
import { randomUUID } from "node:crypto";
import {
  type EventMessage,
  type ExternalGraderScoreData,
  encodeScoreEvent,
  SubmitScoreRequest,
} from "../src/contract/index.js";

/** The grader's feedback: HTML, about 2 KB, as an external grader returns it. */
export const SCORE_MSG = JSON.stringify({
  correct: false,
  score: 0.7,
  msg: `<div class="result"><p>7 of 10 tests passed.</p><pre>${"x".repeat(1900)}</pre></div>`,
});

/** Where the bench's scores go; the subscriber and the stream check use it too. */
export const BENCH_QUEUE_NAME = "python-grader";

/** The score of `submissionId`. */
export function benchScoreData(submissionId: number): ExternalGraderScoreData {
  return {
    pointsPossible: 10,
    pointsEarned: 7,
    courseId: "course-v1:edX+DemoX+Demo_Course",
    scoreMsg: SCORE_MSG,
    submissionId: BigInt(submissionId),
    userId: "106ecd878f4148a5cabb6bbb0979b730",
    moduleId: "block-v1:edX+DemoX+Demo_Course+type@problem+block@d2e35c1d294b4ba0b3b1048615605d2a",
    queueKey: `key-${submissionId}`,
    queueName: BENCH_QUEUE_NAME,
  };
}

/** The SubmitScore request bytes of `submissionId` (also what the echo baseline receives). */
export function submitScoreRequestBytes(submissionId: number): Buffer {
  const bytes = SubmitScoreRequest.encode({ scoreData: benchScoreData(submissionId) }).finish();
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * The event gradecast would publish for `submissionId`: the same subject scheme, payload and
 * CloudEvents headers, so the raw-publish baseline moves exactly the bytes gradecast moves.
 */
export function benchEventMessage(submissionId: number, subjectPrefix: string): EventMessage {
  return encodeScoreEvent(
    {
      eventId: randomUUID(),
      time: new Date(),
      scoreData: benchScoreData(submissionId),
      submissionSequence: 1,
    },
    { source: "openedx/gradecast/bench", sourcehost: "bench", sourcelib: "0.0.0" },
    subjectPrefix,
  );
}
