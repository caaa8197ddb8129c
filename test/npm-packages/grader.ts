// The grader of test/integration/npm-packages.test.ts, compiled and run in a scratch project
// that installed only @gradecast/client: it submits a score, then one that breaks the
// contract's rules, and prints what gradecast answered to each as one JSON line.
//
//   node grader.js <address> <submission id>
import { createScoreClient, type ExternalGraderScoreData, ScoreCallError } from "@gradecast/client";

const [address = "", submissionId = ""] = process.argv.slice(2);
const client = createScoreClient(address);
const score: ExternalGraderScoreData = {
  pointsPossible: 10,
  pointsEarned: 7,
  courseId: "course-v1:edX+DemoX+Demo_Course",
  scoreMsg: JSON.stringify({ correct: false, score: 0.7, msg: "<p>7 of 10 tests passed.</p>" }),
  submissionId: BigInt(submissionId),
  userId: "106ecd878f4148a5cabb6bbb0979b730",
  moduleId: "block-v1:edX+DemoX+Demo_Course+type@problem+block@d2e35c1d294b4ba0b3b1048615605d2a",
  queueKey: "ffcd933556c926a307c45e0af5131995",
  queueName: "python-grader",
};
try {
  const accepted = await client.submitScore(score);
  console.log(
    JSON.stringify({ accepted: { eventId: accepted.eventId, replayed: accepted.replayed } }),
  );
  try {
    await client.submitScore({ ...score, submissionId: score.submissionId + 1n, pointsEarned: 11 });
    console.log(JSON.stringify({ refused: null }));
  } catch (error) {
    // The class of the installed package: a refusal must be recognisable without gradecast.
    if (!(error instanceof ScoreCallError)) throw error;
    const fields = error.violations.map((violation) => violation.field);
    console.log(JSON.stringify({ refused: { code: error.code, fields } }));
  }
} finally {
  client.close();
}
