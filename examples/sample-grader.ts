// A sample external grader: it "grades" a submission, turns the grader's
// fraction into points the way Open edX does (round(score * points_possible)),
// reports the score with SubmitScore and prints what gradecast answered.
//
//   node dist/examples/sample-grader.js --submission-id 7 --score 0.8 --token "$GRADER_TOKEN"
import { parseArgs } from "node:util";
import { createScoreClient, ScoreCallError } from "../src/client/index.js";
import { SubmitScoreResponse } from "../src/contract/index.js";

const { values } = parseArgs({
  options: {
    server: { type: "string", default: process.env.GRADECAST_SERVER ?? "127.0.0.1:50051" },
    "submission-id": { type: "string", default: "1" },
    score: { type: "string", default: "1" },
    "points-possible": { type: "string", default: "10" },
    user: { type: "string", default: "106ecd878f4148a5cabb6bbb0979b730" },
    queue: { type: "string", default: "python-grader" },
    // From `gradecast credentials add`; not needed by a server started with --insecure-no-auth.
    token: { type: "string", default: process.env.GRADECAST_TOKEN },
  },
});

const fraction = Number(values.score);
const pointsPossible = Number(values["points-possible"]);
// What the grader would send back to XQueue: a JSON reply with HTML feedback.
const reply = {
  correct: fraction === 1,
  score: fraction,
  msg: `<p>${Math.round(fraction * 100)}% of the tests passed.</p>`,
};

const client = createScoreClient(
  values.server,
  values.token === undefined ? {} : { token: values.token },
);
try {
  const response = await client.submitScore({
    pointsPossible,
    pointsEarned: Math.round(fraction * pointsPossible),
    courseId: "course-v1:edX+DemoX+Demo_Course",
    scoreMsg: JSON.stringify(reply),
    submissionId: BigInt(values["submission-id"]),
    userId: values.user,
    moduleId: "block-v1:edX+DemoX+Demo_Course+type@problem+block@d2e35c1d294b4ba0b3b1048615605d2a",
    queueKey: `sample-key-${values["submission-id"]}`,
    queueName: values.queue,
  });
  console.log(JSON.stringify(SubmitScoreResponse.toJSON(response)));
} catch (error) {
  if (!(error instanceof ScoreCallError)) throw error;
  console.error(`rejected: ${error.message}`);
  for (const violation of error.violations)
    console.error(`  ${violation.field}: ${violation.description}`);
  process.exitCode = 1;
} finally {
  client.close();
}
