import { subscribeToScores, subscriptionStatusToJSON } from "@gradecast/subscriber";
import { connect } from "@nats-io/transport-node";

const nc = await connect({ servers: "nats://127.0.0.1:4222" });
const subscription = await subscribeToScores(
  {
    connection: nc,
    durableName: "lms", // resume where the last run stopped
    queueName: "python-grader", // only this grader queue (omit for all)
    maxDeliver: 5, // then the event goes to gradecast.dlq.v1.<queue>
    concurrency: 8, // events of one submission still run one at a time
  },
  async (event) => {
    // Resolve to ack; throw to have it redelivered with a growing delay.
    // Delivery is at least once: keep the highest submissionSequence per submission.
    // submissionId is a bigint (int64): a template prints 4821; JSON.stringify(event) writes "4821".
    const { submissionId, userId, pointsEarned, pointsPossible } = event.scoreData;
    console.log(`${event.id} ${submissionId} ${userId} ${pointsEarned}/${pointsPossible}`);
  },
);
// Drain on SIGTERM: no new events, running handlers finish and are acked.
process.once("SIGTERM", () => void subscription.stop().then(() => nc.drain()));
// Handler failures, dead letters and consumer trouble, as typed values, until stop().
for await (const status of subscription.status()) {
  console.warn(JSON.stringify(subscriptionStatusToJSON(status)));
}
