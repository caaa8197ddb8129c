import type { NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ScoreSubscription, subscribeToScores } from "../../src/subscriber/index.js";
import { sampleScoreData } from "../helpers/contract-fixtures.js";
import { pollUntil, startGradecast, type TestGradecast } from "../helpers/gradecast.js";
import { type NatsServerHandle, startNatsServer } from "../helpers/nats-server.js";

// The SDK runs the events of one submission one at a time. A submission is its id within its
// queue: the same id in two queues is two submissions, which must not wait for each other.

let nats: NatsServerHandle;
let gradecast: TestGradecast;
let connection: NatsConnection;
let subscription: ScoreSubscription | undefined;

beforeAll(async () => {
  nats = await startNatsServer();
  gradecast = await startGradecast(nats.url);
  await gradecast.server.streamReady;
  connection = await connect({ servers: nats.url });
});

afterAll(async () => {
  await subscription?.stop();
  await connection?.close();
  await gradecast?.cleanup();
  await nats?.cleanup();
});

describe("the subscriber SDK's order per submission", () => {
  it("runs the same submission id of two queues at once, as two submissions", async () => {
    const started: string[] = [];
    const finished: string[] = [];
    /** Whether queue b's event started while queue a's handler was still running. */
    let didOverlap = false;
    subscription = await subscribeToScores(
      {
        connection,
        stream: gradecast.config.stream.name,
        subjectPrefix: gradecast.config.stream.subjectPrefix,
        durableName: "two-queues",
        concurrency: 2,
      },
      async (event) => {
        const queueName = event.scoreData.queueName;
        started.push(queueName);
        if (queueName === "key-a") {
          // Held until queue b's event of the same id runs; keyed by id alone, it never would.
          const seen = await pollUntil(
            async () => started.includes("key-b"),
            (isStarted) => isStarted,
            60_000,
            10,
          );
          didOverlap = seen && !finished.includes("key-a");
        }
        finished.push(queueName);
      },
    );

    await gradecast.client.submitScore(
      sampleScoreData({ submissionId: 9601n, queueName: "key-a" }),
    );
    await gradecast.client.submitScore(
      sampleScoreData({ submissionId: 9601n, queueName: "key-b", userId: "learner-of-b" }),
    );
    await pollUntil(
      async () => finished.length,
      (count) => count >= 2,
    );
    expect(started).toEqual(["key-a", "key-b"]);
    expect(finished).toEqual(["key-b", "key-a"]);
    expect(didOverlap).toBe(true);
  });
});
