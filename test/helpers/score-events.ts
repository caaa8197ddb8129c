import { randomUUID } from "node:crypto";
import type { JetStreamClient } from "@nats-io/jetstream";
import { headers as natsHeaders } from "@nats-io/nats-core";
import { type ExternalGraderScoreData, encodeScoreEvent } from "../../src/contract/index.js";

/**
 * Publishes a score event straight to the stream holding `<subjectPrefix>.scores.v1.>`, as
 * gradecast would, without the service.
 */
export async function publishScoreEvent(
  js: JetStreamClient,
  scoreData: ExternalGraderScoreData,
  submissionSequence: number,
  subjectPrefix = "gradecast",
): Promise<{ eventId: string; seq: number }> {
  const eventId = randomUUID();
  const message = encodeScoreEvent(
    { eventId, time: new Date(), scoreData, submissionSequence },
    { source: "openedx/gradecast/test", sourcehost: "test-host", sourcelib: "0.1.0" },
    subjectPrefix,
  );
  const headers = natsHeaders();
  for (const [name, value] of message.headers) headers.set(name, value);
  const ack = await js.publish(message.subject, message.payload, { msgID: eventId, headers });
  return { eventId, seq: ack.seq };
}
