import { status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { main } from "../../src/cli/main.js";
import type { SubmitScoreResponse } from "../../src/contract/index.js";
import { sampleScoreData } from "../helpers/contract-fixtures.js";
import { pollUntil, startGradecast, type TestGradecast } from "../helpers/gradecast.js";
import { type NatsServerHandle, startNatsServer } from "../helpers/nats-server.js";

// A submission is its id within its queue (README, "What SubmitScore does"). Without grader
// authentication every queue is readable, so GetScore without a queue picks among all of them.

let nats: NatsServerHandle;
let gradecast: TestGradecast;

beforeAll(async () => {
  nats = await startNatsServer();
  gradecast = await startGradecast(nats.url);
  await gradecast.server.streamReady;
});

afterAll(async () => {
  await gradecast?.cleanup();
  await nats?.cleanup();
});

/** Returns once the clock is past `answer`'s event time, so the next score is strictly newer. */
async function afterEventTimeOf(answer: SubmitScoreResponse): Promise<void> {
  const eventTimeMs = answer.eventTime?.getTime() ?? 0;
  const now = await pollUntil(
    async () => Date.now(),
    (nowMs) => nowMs > eventTimeMs,
    60_000,
    1,
  );
  expect(now).toBeGreaterThan(eventTimeMs);
}

describe("GetScore of an id used in several queues, without grader authentication", () => {
  it("with a queue answers that queue's latest score; without, the one with the latest event time", async () => {
    const { client } = gradecast;
    const inZulu = sampleScoreData({ submissionId: 9501n, queueName: "q-zulu", pointsEarned: 3 });
    const inAlpha = sampleScoreData({
      submissionId: 9501n,
      queueName: "q-alpha",
      userId: "another-learner",
      pointsEarned: 5,
    });
    const zuluFirst = await client.submitScore(inZulu);
    await afterEventTimeOf(zuluFirst);
    const alphaFirst = await client.submitScore(inAlpha);
    expect([zuluFirst.submissionSequence, alphaFirst.submissionSequence]).toEqual([1, 1]);
    expect((await client.getScore(9501n)).event?.metadata?.id).toBe(alphaFirst.eventId);

    await afterEventTimeOf(alphaFirst);
    const zuluRegrade = await client.submitScore({ ...inZulu, pointsEarned: 8 });
    expect(zuluRegrade.submissionSequence).toBe(2);
    const latest = await client.getScore(9501n);
    expect(latest.event?.metadata?.id).toBe(zuluRegrade.eventId);
    expect(latest.event?.scoreData?.queueName).toBe("q-zulu");

    const alpha = await client.getScore(9501n, "q-alpha");
    expect(alpha.event?.metadata?.id).toBe(alphaFirst.eventId);
    expect(alpha.event?.scoreData?.userId).toBe("another-learner");
    await expect(client.getScore(9501n, "q-unused")).rejects.toMatchObject({
      code: status.NOT_FOUND,
    });
  });

  it("refuses a queue_name the contract forbids with INVALID_ARGUMENT naming queue_name", async () => {
    const refused = await gradecast.client
      .getScore(9501n, " q-alpha")
      .catch((error: unknown) => error);
    expect(refused).toMatchObject({
      code: status.INVALID_ARGUMENT,
      violations: [{ field: "queue_name", description: expect.stringMatching(/valid queue name/) }],
    });
  });

  it("gradecast get-score --queue reads that queue's score; without it the latest across queues", async () => {
    const { client } = gradecast;
    const inZulu = sampleScoreData({ submissionId: 9502n, queueName: "q-zulu", pointsEarned: 2 });
    const zulu = await client.submitScore(inZulu);
    await afterEventTimeOf(zulu);
    const alpha = await client.submitScore({ ...inZulu, queueName: "q-alpha", pointsEarned: 9 });

    /** `gradecast get-score` in this process: its exit code, and its output as parsed JSON. */
    const getScore = async (...args: string[]) => {
      let stdout = "";
      let stderr = "";
      const code = await main(
        [
          "node",
          "gradecast",
          "get-score",
          "--server",
          gradecast.address,
          "--submission-id",
          "9502",
          ...args,
        ],
        {
          stdout: (text) => {
            stdout += text;
          },
          stderr: (text) => {
            stderr += text;
          },
        },
      );
      return { code, stderr, answer: stdout === "" ? undefined : JSON.parse(stdout) };
    };
    const ofZulu = await getScore("--queue", "q-zulu");
    expect(ofZulu.code).toBe(0);
    expect(ofZulu.answer?.event?.metadata?.id).toBe(zulu.eventId);
    expect(ofZulu.answer?.event?.scoreData?.pointsEarned).toBe(2);
    const latest = await getScore();
    expect(latest.answer?.event?.metadata?.id).toBe(alpha.eventId);
    const empty = await getScore("--queue", "");
    expect(empty.code).toBe(2);
    expect(empty.stderr).toMatch(/--queue.*empty/);
  });
});
