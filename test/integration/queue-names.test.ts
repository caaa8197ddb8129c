import { jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { subjectForQueue } from "../../src/contract/index.js";
import { type ScoreEvent, subscribeToScores } from "../../src/subscriber/index.js";
import { runTsxScript } from "../helpers/child-process.js";
import { sampleScoreData } from "../helpers/contract-fixtures.js";
import { pollUntil, readStream, startGradecast, type TestGradecast } from "../helpers/gradecast.js";
import { type NatsServerHandle, startNatsServer } from "../helpers/nats-server.js";

// Queue names as course teams write them, end to end: SubmitScore, the subject, the SDK's
// queue filter, the handler, and `gradecast tail --queue`.

const QUEUES: Array<[queueName: string, subjectToken: string]> = [
  ["MITx-42.01x", "MITx-42%2E01x"],
  ["MITx-42_01x", "MITx-42_01x"],
  ["grader*", "grader%2A"],
  ["grader>", "grader%3E"],
  ["python grader", "python%20grader"],
  ["100%", "100%25"],
  ["Sorbonne-Maths.L1", "Sorbonne-Maths%2EL1"],
  ["北大-计算机.101", "北大-计算机%2E101"],
];

let nats: NatsServerHandle;
let gradecast: TestGradecast;
let connection: NatsConnection;

beforeAll(async () => {
  nats = await startNatsServer();
  gradecast = await startGradecast(nats.url);
  await gradecast.server.streamReady;
  connection = await connect({ servers: nats.url });
  for (const [index, [queueName]] of QUEUES.entries()) {
    const answer = await gradecast.client.submitScore(
      sampleScoreData({ submissionId: BigInt(60_000 + index), queueName }),
    );
    expect(answer.published).toBe(true);
  }
});

afterAll(async () => {
  await connection?.close();
  await gradecast?.cleanup();
  await nats?.cleanup();
});

describe("queue names with dots, wildcards, spaces, % and non-ASCII", () => {
  it("are published on their escaped subject, with the exact name in the payload and a header", async () => {
    const messages = await readStream(nats.url, gradecast.config.stream.name);
    for (const [queueName, token] of QUEUES) {
      const found = messages.filter(
        (message) => message.subject === `gradecast.scores.v1.${token}`,
      );
      expect(found, queueName).toHaveLength(1);
      expect(decodeURIComponent(found[0]?.headers["ce-queuename"] ?? "")).toBe(queueName);
      expect(subjectForQueue("gradecast", queueName)).toBe(`gradecast.scores.v1.${token}`);
    }
  });

  it.each(QUEUES)("%j reaches a subscriber filtering by it, and no other", async (queueName) => {
    const stream = gradecast.config.stream.name;
    const received: ScoreEvent[] = [];
    const subscription = await subscribeToScores(
      { connection, stream, subjectPrefix: "gradecast", queueName },
      async (event) => {
        received.push(event);
      },
    );
    try {
      // Everything the consumer's filter matches is delivered and acked: a wrong filter
      // would have brought another queue's event by then.
      const jsm = await jetstreamManager(connection);
      await pollUntil(
        async () => {
          const info = await jsm.consumers.info(stream, subscription.consumerName);
          return received.length >= 1 && info.num_pending === 0 && info.num_ack_pending === 0;
        },
        (isSettled) => isSettled,
      );
      expect(received.map((event) => event.scoreData.queueName)).toEqual([queueName]);
    } finally {
      await subscription.stop();
    }
  });

  it("`gradecast tail --queue MITx-42.01x` shows only that queue's events", async () => {
    const run = await runTsxScript(
      "src/cli/run.ts",
      [
        "tail",
        "--nats-url",
        nats.url,
        "--stream",
        gradecast.config.stream.name,
        "--queue",
        "MITx-42.01x",
        "--max",
        "1",
      ],
      { timeoutMs: 60_000, killSignal: "SIGKILL" },
    );
    expect(run.code, run.stderr).toBe(0);
    const lines = run.stdout.trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0] ?? "{}")).toMatchObject({
      subject: "gradecast.scores.v1.MITx-42%2E01x",
    });
  });
});
