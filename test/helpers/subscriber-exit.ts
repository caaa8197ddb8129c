// An LMS process in miniature: subscribes to one queue, handles one event, stops the
// subscription and closes its connection, then returns from its top level. Nothing it started
// may keep the process alive after that (`test/integration/subscriber`, "stopping").
// Arguments: <nats url> <stream> <queue name> <durable name>.
import { connect } from "@nats-io/transport-node";
import { subscribeToScores } from "../../src/subscriber/index.js";

const [servers, stream, queueName, durableName] = process.argv.slice(2);
if (!servers || !stream || !queueName || !durableName) {
  throw new Error("usage: subscriber-exit.ts <nats url> <stream> <queue name> <durable name>");
}
const connection = await connect({ servers });
let handled = 0;
const subscription = await subscribeToScores(
  // A stop that waited this long for a timer of its own would show as a process that lingers.
  {
    connection,
    stream,
    subjectPrefix: "gradecast",
    queueName,
    durableName,
    stopTimeoutMs: 600_000,
  },
  () => {
    handled++;
  },
);
const deadline = Date.now() + 60_000;
while (handled < 1 && Date.now() < deadline)
  await new Promise((resolve) => setTimeout(resolve, 20));
await subscription.stop();
await connection.close();
console.log(`stopped after ${handled} event(s)`);
