// A sample LMS: instead of an XQueue HTTP callback, it subscribes to score
// events with the gradecast SDK and keeps a gradebook (SQLite) of the latest
// score per submission. Redelivered, replayed or late events change nothing.
//
//   node dist/examples/sample-lms/lms.js --db .data/lms/gradebook.sqlite
// Runs until SIGINT/SIGTERM, then stops the subscription gracefully and prints the gradebook.
// `--fail-submission 103` makes its handler throw for submission 103: after --max-deliver
// deliveries the event is dead-lettered, and `gradecast dlq list` shows it with this consumer.
import { connect } from "@nats-io/transport-node";
import { Command, InvalidArgumentError, Option } from "commander";
import {
  type ScoreEvent,
  subscribeToScores,
  subscriptionStatusToJSON,
} from "../../src/subscriber/index.js";
import { Gradebook } from "./gradebook.js";
import { printGradebook } from "./print-gradebook.js";

interface LmsFlags {
  natsUrl: string;
  stream: string;
  subjectPrefix: string;
  durable: string;
  queue?: string;
  db: string;
  from: "all" | "new";
  failSubmission: bigint[];
  maxDeliver: number;
}

const program = new Command()
  .name("sample-lms")
  .description("subscribe to score events and keep a gradebook of the latest score per submission")
  .addOption(
    new Option("--nats-url <urls>", "NATS server URL(s), comma-separated")
      .env("GRADECAST_NATS_URL")
      .default("nats://127.0.0.1:4222"),
  )
  .addOption(
    new Option("--stream <name>", "the event stream")
      .env("GRADECAST_STREAM")
      .default("GRADECAST_SCORES"),
  )
  .addOption(
    new Option("--subject-prefix <prefix>", "subject prefix")
      .env("GRADECAST_SUBJECT_PREFIX")
      .default("gradecast"),
  )
  .option("--durable <name>", "durable consumer name (resumes where it stopped)", "sample-lms")
  .option("--queue <name>", "only this grader queue")
  .option("--db <file>", "the gradebook's SQLite file", ".data/lms/gradebook.sqlite")
  .addOption(
    new Option("--from <where>", "where a new durable starts (an existing one resumes)")
      .choices(["all", "new"])
      .default("all"),
  )
  .option(
    "--fail-submission <id>",
    "throw in the handler for this submission id, to see a retry and a dead letter (repeatable)",
    (value: string, ids: bigint[]) => [...ids, parseSubmissionId(value)],
    [] as bigint[],
  )
  .option(
    "--max-deliver <n>",
    "deliveries of a failing event before it is dead-lettered",
    parsePositiveInteger,
    5,
  )
  .parse();
const flags = program.opts<LmsFlags>();

const gradebook = new Gradebook(flags.db);
const nc = await connect({ servers: flags.natsUrl.split(","), name: "sample-lms" });

const subscription = await subscribeToScores(
  {
    connection: nc,
    stream: flags.stream,
    subjectPrefix: flags.subjectPrefix,
    durableName: flags.durable,
    queueName: flags.queue,
    deliverPolicy: flags.from,
    maxDeliver: flags.maxDeliver,
    concurrency: 4,
  },
  (event: ScoreEvent) => {
    const data = event.scoreData;
    if (flags.failSubmission.includes(data.submissionId)) {
      throw new Error(
        `--fail-submission ${data.submissionId}: the sample LMS refuses it on purpose (delivery ${event.deliveryCount})`,
      );
    }
    const result = gradebook.apply(event);
    console.log(
      `[lms] ${result.padEnd(9)} submission ${data.submissionId} seq ${event.submissionSequence}: ${data.pointsEarned}/${data.pointsPossible} for ${data.userId} (event ${event.id})`,
    );
  },
);
console.log(`[lms] subscribed to ${flags.stream} as ${subscription.consumerName}`);

void (async () => {
  for await (const status of subscription.status())
    console.log(`[lms] status: ${JSON.stringify(subscriptionStatusToJSON(status))}`);
})();

await new Promise<void>((resolve) => {
  process.once("SIGINT", () => resolve());
  process.once("SIGTERM", () => resolve());
});
await subscription.stop();
await nc.drain();
printGradebook(gradebook.rows(), (line) => console.log(line));
gradebook.close();

function parseSubmissionId(value: string): bigint {
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError("not a submission id");
  return BigInt(value);
}

function parsePositiveInteger(value: string): number {
  const parsed = Number(value);
  if (!Number.isSafeInteger(parsed) || parsed < 1) {
    throw new InvalidArgumentError("not a whole number of at least 1");
  }
  return parsed;
}
