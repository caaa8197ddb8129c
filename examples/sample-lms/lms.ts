// A sample LMS: instead of an XQueue HTTP callback, it subscribes to score
// events with the gradecast SDK and keeps a gradebook (SQLite) of the latest
// score per submission. Redelivered, replayed or late events change nothing.
//
//   node dist/examples/sample-lms/lms.js --db .data/lms/gradebook.sqlite
// Runs until SIGINT/SIGTERM, then stops the subscription gracefully and prints the gradebook.
import { parseArgs } from "node:util";
import { connect } from "@nats-io/transport-node";
import { type ScoreEvent, subscribeToScores } from "../../src/subscriber/index.js";
import { Gradebook } from "./gradebook.js";
import { printGradebook } from "./print-gradebook.js";

const { values } = parseArgs({
  options: {
    "nats-url": {
      type: "string",
      default: process.env.GRADECAST_NATS_URL ?? "nats://127.0.0.1:4222",
    },
    stream: { type: "string", default: process.env.GRADECAST_STREAM ?? "GRADECAST_SCORES" },
    "subject-prefix": {
      type: "string",
      default: process.env.GRADECAST_SUBJECT_PREFIX ?? "gradecast",
    },
    durable: { type: "string", default: "sample-lms" },
    queue: { type: "string" },
    db: { type: "string", default: ".data/lms/gradebook.sqlite" },
    // Where a new durable starts; an existing one resumes where it stopped.
    from: { type: "string", default: "all" },
  },
});
if (values.from !== "all" && values.from !== "new") {
  console.error(`--from must be "all" or "new", got ${JSON.stringify(values.from)}`);
  process.exit(2);
}

const gradebook = new Gradebook(values.db);
const nc = await connect({ servers: values["nats-url"].split(","), name: "sample-lms" });

const subscription = await subscribeToScores(
  {
    connection: nc,
    stream: values.stream,
    subjectPrefix: values["subject-prefix"],
    durableName: values.durable,
    queueName: values.queue,
    deliverPolicy: values.from,
    concurrency: 4,
  },
  (event: ScoreEvent) => {
    const result = gradebook.apply(event);
    const data = event.scoreData;
    console.log(
      `[lms] ${result.padEnd(9)} submission ${data.submissionId} seq ${event.submissionSequence}: ${data.pointsEarned}/${data.pointsPossible} for ${data.userId} (event ${event.id})`,
    );
  },
);
console.log(`[lms] subscribed to ${values.stream} as ${subscription.consumerName}`);

void (async () => {
  for await (const status of subscription.status())
    console.log(`[lms] status: ${JSON.stringify(status)}`);
})();

await new Promise<void>((resolve) => {
  process.once("SIGINT", () => resolve());
  process.once("SIGTERM", () => resolve());
});
await subscription.stop();
await nc.drain();
printGradebook(gradebook.rows(), (line) => console.log(line));
gradebook.close();
