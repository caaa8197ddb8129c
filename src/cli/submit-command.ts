import { Command, Option } from "commander";
import { type ConnectionProblem, connectionProblemOf } from "../client/connection-hints.js";
import { createScoreClient, PlaintextTokenError, ScoreCallError } from "../client/index.js";
import {
  ExternalGraderScoreData,
  GetScoreResponse,
  SubmitScoreResponse,
} from "../contract/index.js";
import { ConfigError, parseInteger } from "./config-values.js";
import { type ClientTlsFlags, parseClientTls } from "./credential-values.js";

const serverOption = () =>
  new Option("--server <host:port>", "gradecast gRPC address")
    .env("GRADECAST_SERVER")
    .default("127.0.0.1:50051");

// Client env names differ from serve's GRADECAST_TLS_CERT/KEY, which hold the server's own pair.
const tlsOptions = () => [
  new Option("--tls-ca <file>", "use TLS, trusting this PEM CA").env("GRADECAST_CLIENT_TLS_CA"),
  new Option("--tls-cert <file>", "use TLS with this client certificate (mTLS)").env(
    "GRADECAST_CLIENT_TLS_CERT",
  ),
  new Option("--tls-key <file>", "PEM private key of --tls-cert").env("GRADECAST_CLIENT_TLS_KEY"),
];

/** The connection flags both client commands take. */
interface ConnectionFlags extends ClientTlsFlags {
  server: string;
  token?: string;
  plaintextToken?: boolean;
}

function withConnectionOptions(command: Command): Command {
  command.addOption(serverOption());
  command.addOption(
    new Option("--token <token>", "the grader's token (from `gradecast credentials add`)").env(
      "GRADECAST_TOKEN",
    ),
  );
  for (const option of tlsOptions()) command.addOption(option);
  command.option(
    "--plaintext-token",
    "send --token without TLS to a server that is not on this machine (readable on the way)",
  );
  return command;
}

interface SubmitFlags extends ConnectionFlags {
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
  return withConnectionOptions(
    new Command("submit").description(
      "submit one score (as a grader would) and print the response as JSON",
    ),
  )
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
      await call(flags, write, async (client) =>
        JSON.stringify(SubmitScoreResponse.toJSON(await client.submitScore(scoreData))),
      );
    });
}

/** `gradecast get-score`: the latest score of a submission as JSON. */
export function getScoreCommand(write: (line: string) => void): Command {
  return withConnectionOptions(
    new Command("get-score").description("print the latest accepted score of a submission as JSON"),
  )
    .requiredOption("--submission-id <id>", "edx-submissions id of the submission")
    .option(
      "--queue <name>",
      "the submission's queue (a submission id is unique within its queue); without it, the latest score among the queues that recorded the id",
    )
    .action(async (flags: ConnectionFlags & { submissionId: string; queue?: string }) => {
      const submissionId = parseSubmissionId(flags.submissionId);
      if (flags.queue === "") throw new ConfigError("--queue", "is empty");
      await call(flags, write, async (client) =>
        JSON.stringify(GetScoreResponse.toJSON(await client.getScore(submissionId, flags.queue))),
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
  flags: ConnectionFlags,
  write: (line: string) => void,
  run: (client: ReturnType<typeof createScoreClient>) => Promise<string>,
): Promise<void> {
  if (flags.token === "") throw new ConfigError("--token", "is empty");
  const credentials = parseClientTls(flags);
  const options = {
    ...(credentials === undefined ? {} : { credentials }),
    ...(flags.token === undefined ? {} : { token: flags.token }),
    allowPlaintextToken: flags.plaintextToken === true,
  };
  let client: ReturnType<typeof createScoreClient>;
  try {
    client = createScoreClient(flags.server, options);
  } catch (error) {
    if (error instanceof PlaintextTokenError) throw new ConfigError("--token", error.message);
    throw error;
  }
  try {
    write(await run(client));
  } catch (error) {
    if (!(error instanceof ScoreCallError)) throw error;
    // grpc-js details can span lines (an OpenSSL error ends in a newline): keep it one line.
    process.stderr.write(`gradecast: ${error.message.replace(/\s*\n\s*/g, " ")}\n`);
    const problem = connectionProblemOf(error, credentials !== undefined);
    if (problem) process.stderr.write(`  hint: ${connectionHint(problem, flags.server)}\n`);
    for (const violation of error.violations) {
      process.stderr.write(`  ${violation.field}: ${violation.description}\n`);
    }
    process.exitCode = 1;
  } finally {
    client.close();
  }
}

/** What to change on the command line for a connection problem, naming the flags. */
function connectionHint(problem: ConnectionProblem, server: string): string {
  switch (problem) {
    case "server-requires-tls":
      return `the server at ${server} may require TLS: add --tls-ca <file> (the CA that signed its certificate; env GRADECAST_CLIENT_TLS_CA), and with mutual TLS --tls-cert <file> --tls-key <file>`;
    case "server-without-tls":
      return `the server at ${server} may not use TLS: leave out --tls-ca, --tls-cert and --tls-key (and their GRADECAST_CLIENT_TLS_* variables)`;
    case "nothing-listening":
      return `nothing listens at ${server}: is gradecast serve running there, and is --server (env GRADECAST_SERVER) right?`;
  }
}
