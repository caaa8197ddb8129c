// A sample external grader: it "grades" a submission, turns the grader's
// fraction into points the way Open edX does (round(score * points_possible)),
// reports the score with SubmitScore and prints what gradecast answered.
//
//   node dist/examples/sample-grader.js --submission-id 7 --score 0.8 --token "$GRADER_TOKEN"
import { Command, InvalidArgumentError, Option } from "commander";
import { createScoreClient, ScoreCallError } from "../src/client/index.js";
import { SubmitScoreResponse } from "../src/contract/index.js";

interface GraderFlags {
  server: string;
  submissionId: bigint;
  score: number;
  pointsPossible: number;
  user: string;
  queue: string;
  token?: string;
}

const program = new Command()
  .name("sample-grader")
  .description("grade one submission and report its score to gradecast with SubmitScore")
  .addOption(
    new Option("--server <host:port>", "gradecast gRPC address")
      .env("GRADECAST_SERVER")
      .default("127.0.0.1:50051"),
  )
  .addOption(
    new Option("--submission-id <id>", "edx-submissions id of the submission")
      .argParser(parseSubmissionId)
      // A bigint default needs its text: help writes defaults with JSON.stringify.
      .default(1n, "1"),
  )
  .option("--score <fraction>", "the grader's score, from 0 to 1", parseFraction, 1)
  .option("--points-possible <n>", "points of the problem", parsePoints, 10)
  .option("--user <id>", "the learner's anonymous student id", "106ecd878f4148a5cabb6bbb0979b730")
  .option("--queue <name>", "the grader queue", "python-grader")
  // From `gradecast credentials add`; not needed by a server started with --insecure-no-auth.
  .addOption(
    new Option("--token <token>", "the grader's token (from `gradecast credentials add`)").env(
      "GRADECAST_TOKEN",
    ),
  )
  .parse();
const flags = program.opts<GraderFlags>();

// What the grader would send back to XQueue: a JSON reply with HTML feedback.
const reply = {
  correct: flags.score === 1,
  score: flags.score,
  msg: `<p>${Math.round(flags.score * 100)}% of the tests passed.</p>`,
};

const client = createScoreClient(
  flags.server,
  flags.token === undefined ? {} : { token: flags.token },
);
try {
  const response = await client.submitScore({
    pointsPossible: flags.pointsPossible,
    pointsEarned: Math.round(flags.score * flags.pointsPossible),
    courseId: "course-v1:edX+DemoX+Demo_Course",
    scoreMsg: JSON.stringify(reply),
    submissionId: flags.submissionId,
    userId: flags.user,
    moduleId: "block-v1:edX+DemoX+Demo_Course+type@problem+block@d2e35c1d294b4ba0b3b1048615605d2a",
    queueKey: `sample-key-${flags.submissionId}`,
    queueName: flags.queue,
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

function parseSubmissionId(value: string): bigint {
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError("not a whole number");
  return BigInt(value);
}

function parseFraction(value: string): number {
  const fraction = Number(value);
  if (value.trim() === "" || !(fraction >= 0 && fraction <= 1)) {
    throw new InvalidArgumentError("not a number from 0 to 1");
  }
  return fraction;
}

function parsePoints(value: string): number {
  const points = Number(value);
  if (!Number.isSafeInteger(points) || points < 0) {
    throw new InvalidArgumentError("not a whole number of points");
  }
  return points;
}
