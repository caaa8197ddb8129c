// The LMS of test/integration/npm-packages.test.ts, compiled and run in a scratch project that
// installed only @gradecast/subscriber and @nats-io/transport-node: it reads the stream from
// its start, prints each score event as one JSON line, and stops after `count` events.
//
//   node lms.js <nats url> <stream> <count>
import { type ScoreEvent, subscribeToScores } from "@gradecast/subscriber";
import { connect } from "@nats-io/transport-node";

const [servers = "", stream = "", count = "1"] = process.argv.slice(2);
const connection = await connect({ servers });
let seen = 0;
let allSeen: () => void = () => {};
const done = new Promise<void>((resolve) => {
  allSeen = resolve;
});
const print = (event: ScoreEvent) =>
  JSON.stringify({
    id: event.id,
    subject: event.subject,
    submissionSequence: event.submissionSequence,
    submissionId: event.scoreData.submissionId.toString(),
    pointsEarned: event.scoreData.pointsEarned,
    queueName: event.scoreData.queueName,
  });
const subscription = await subscribeToScores(
  { connection, stream, deliverPolicy: "all" },
  async (event) => {
    console.log(print(event));
    seen += 1;
    if (seen === Number(count)) allSeen();
  },
);
await done;
await subscription.stop();
await connection.drain();
