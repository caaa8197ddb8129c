import { Command, Option } from "commander";
import { createScoreClient, ScoreCallError } from "../client/index.js";
import {
  ExternalGraderScoreData,
  GetScoreResponse,
  SubmitScoreResponse,
} from "../contract/index.js";
import { ConfigError, parseInteger } from "./config-values.js";

const serverOption = () =>
  new Option("--server <host:port>", "gradecast gRPC address")
    .env("GRADECAST_SERVER")
    .default("127.0.0.1:50051");

interface SubmitFlags {
  server: string;
  submissionId: string;
  pointsEarned: string;
  pointsPossible: string;
  courseId: string;
  userId: string;
  moduleId: string;
  queueKey: string;
  queueName: string;
  scoreMsg: string;
}

/** `gradecast submit`: what a grader does, from the command line. Prints the response as JSON. */
export function submitCommand(write: (line: string) => void): Command {
  return new Command("submit")
    .description("submit one score (as a grader would) and print the response as JSON")
    .addOption(serverOption())
    .requiredOption("--submission-id <id>", "edx-submissions id of the submission")
    .requiredOption("--points-earned <n>", "points the learner earned")
    .requiredOption("--points-possible <n>", "most points possible")
    .requiredOption("--course-id <key>", "course key, e.g. course-v1:edX+DemoX+Demo_Course")
    .requiredOption("--user-id <id>", "the learner's anonymous student id")
    .requiredOption(
      "--module-id <key>",
      "problem usage key, e.g. block-v1:...+type@problem+block@...",
    )
    .requiredOption("--queue-key <key>", "the submission key the grader received")
    .requiredOption("--queue-name <name>", "the grader queue")
    .option("--score-msg <text>", "the grader's reply (JSON with correct, score, msg)", "")
    .action(async (flags: SubmitFlags) => {
      const scoreData = ExternalGraderScoreData.fromPartial({
        submissionId: parseSubmissionId(flags.submissionId),
        pointsEarned: parseInteger("--points-earned", flags.pointsEarned, -(2 ** 31), 2 ** 31 - 1),
        pointsPossible: parseInteger(
          "--points-possible",
          flags.pointsPossible,
          -(2 ** 31),
          2 ** 31 - 1,
        ),
        courseId: flags.courseId,
        userId: flags.userId,
        moduleId: flags.moduleId,
        queueKey: flags.queueKey,
        queueName: flags.queueName,
        scoreMsg: flags.scoreMsg,
      });
      await call(flags.server, write, async (client) =>
        JSON.stringify(SubmitScoreResponse.toJSON(await client.submitScore(scoreData))),
      );
    });
}

/** `gradecast get-score`: the latest score of a submission as JSON. */
export function getScoreCommand(write: (line: string) => void): Command {
  return new Command("get-score")
    .description("print the latest accepted score of a submission as JSON")
    .addOption(serverOption())
    .requiredOption("--submission-id <id>", "edx-submissions id of the submission")
    .action(async (flags: { server: string; submissionId: string }) => {
      const submissionId = parseSubmissionId(flags.submissionId);
      await call(flags.server, write, async (client) =>
        JSON.stringify(GetScoreResponse.toJSON(await client.getScore(submissionId))),
      );
    });
}

function parseSubmissionId(value: string): bigint {
  if (!/^-?\d+$/.test(value)) {
    throw new ConfigError("--submission-id", `${JSON.stringify(value)} is not a whole number`);
  }
  return BigInt(value);
}

async function call(
  server: string,
  write: (line: string) => void,
  run: (client: ReturnType<typeof createScoreClient>) => Promise<string>,
): Promise<void> {
  const client = createScoreClient(server);
  try {
    write(await run(client));
  } catch (error) {
    if (!(error instanceof ScoreCallError)) throw error;
    process.stderr.write(`gradecast: ${error.message}\n`);
    for (const violation of error.violations) {
      process.stderr.write(`  ${violation.field}: ${violation.description}\n`);
    }
    process.exitCode = 1;
  } finally {
    client.close();
  }
}
