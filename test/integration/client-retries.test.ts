import { status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createScoreClient,
  ScoreCallError,
  type ScoreClientOptions,
} from "../../src/client/index.js";
import { sampleScoreData } from "../helpers/contract-fixtures.js";
import { type FrontStep, startFlakyScoreFront } from "../helpers/flaky-score-front.js";
import {
  messagesPerEventId,
  pollUntil,
  readStream,
  startGradecast,
  type TestGradecast,
} from "../helpers/gradecast.js";
import { type NatsServerHandle, startNatsServer } from "../helpers/nats-server.js";

let nats: NatsServerHandle;
let gradecast: TestGradecast;
let nextSubmissionId = 9100n;

beforeAll(async () => {
  nats = await startNatsServer();
  gradecast = await startGradecast(nats.url);
  await gradecast.server.streamReady;
});

afterAll(async () => {
  await gradecast?.cleanup();
  await nats?.cleanup();
});

/** Submits a new score through a front that follows `script`; what the client and front saw. */
async function submitThroughFront(script: FrontStep[], options: ScoreClientOptions = {}) {
  const front = await startFlakyScoreFront(gradecast.address, script);
  const client = createScoreClient(front.address, options);
  const scoreData = sampleScoreData({ submissionId: nextSubmissionId++ });
  try {
    const outcome = await client.submitScore(scoreData).then(
      (response) => ({ response, error: undefined }),
      (error: unknown) => ({ response: undefined, error }),
    );
    return { ...outcome, scoreData, attempts: front.attempts };
  } finally {
    client.close();
    await front.close();
  }
}

/** How many stream messages carry `eventId`, once the relay has had the time to publish it. */
async function publishedCopies(eventId: string): Promise<number> {
  const messages = await pollUntil(
    () => readStream(nats.url, gradecast.config.stream.name),
    (read) => messagesPerEventId(read).has(eventId),
  );
  return messagesPerEventId(messages).get(eventId) ?? 0;
}

describe("the client's retry policy (SCORE_SERVICE_CONFIG)", () => {
  it("retries SubmitScore after UNAVAILABLE and succeeds on the third attempt; the score is stored once", async () => {
    const { response, attempts, scoreData } = await submitThroughFront([
      "unavailable",
      "unavailable",
    ]);

    expect(attempts.map((attempt) => [attempt.previousAttempts, attempt.code])).toEqual([
      [undefined, status.UNAVAILABLE],
      ["1", status.UNAVAILABLE],
      ["2", status.OK],
    ]);
    expect(response).toMatchObject({ replayed: false, submissionSequence: 1 });
    const stored = await gradecast.client.getScore(scoreData.submissionId);
    expect(stored.event?.metadata?.id).toBe(response?.eventId);
    expect(await publishedCopies(response?.eventId ?? "")).toBe(1);
  });

  it("retries an answer lost after the score was stored and gets the first event id back", async () => {
    const { response, attempts, scoreData } = await submitThroughFront(["lose-answer"]);

    expect(attempts.map((attempt) => attempt.code)).toEqual([status.UNAVAILABLE, status.OK]);
    // The retry reached gradecast with the identical score: a replay, not a second event.
    expect(response).toMatchObject({ replayed: true, submissionSequence: 1 });
    const stored = await gradecast.client.getScore(scoreData.submissionId);
    expect(stored.event?.metadata?.id).toBe(response?.eventId);
    expect(await publishedCopies(response?.eventId ?? "")).toBe(1);
  });

  it("gives up after maxAttempts and answers the last UNAVAILABLE", async () => {
    const { error, attempts } = await submitThroughFront(Array(6).fill("unavailable"));

    expect(error).toBeInstanceOf(ScoreCallError);
    expect((error as ScoreCallError).code).toBe(status.UNAVAILABLE);
    expect(attempts).toHaveLength(5);
  });

  it("does not retry a refused score", async () => {
    const front = await startFlakyScoreFront(gradecast.address, []);
    const client = createScoreClient(front.address);
    try {
      const refused = client.submitScore(sampleScoreData({ submissionId: 9199n, courseId: "" }));
      await expect(refused).rejects.toMatchObject({ code: status.INVALID_ARGUMENT });
      expect(front.attempts).toHaveLength(1);
    } finally {
      client.close();
      await front.close();
    }
  });

  it.each([
    { case: "serviceConfig: null", serviceConfig: null, attempts: 1 },
    {
      case: "a config of 2 attempts",
      serviceConfig: {
        methodConfig: [
          {
            name: [{ service: "gradecast.v1.ScoreService", method: "SubmitScore" }],
            retryPolicy: {
              maxAttempts: 2,
              initialBackoff: "0.01s",
              maxBackoff: "0.01s",
              backoffMultiplier: 1,
              retryableStatusCodes: ["UNAVAILABLE"],
            },
          },
        ],
      },
      attempts: 2,
    },
  ])("follows the caller's $case", async ({ serviceConfig, attempts: expected }) => {
    const { error, attempts } = await submitThroughFront(Array(3).fill("unavailable"), {
      serviceConfig,
    });

    expect((error as ScoreCallError | undefined)?.code).toBe(status.UNAVAILABLE);
    expect(attempts).toHaveLength(expected);
  });
});
