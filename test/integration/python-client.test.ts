import { status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodeScoreEvent, ExternalGraderScoreData } from "../../src/contract/index.js";
import { BIG_SUBMISSION_ID, sampleScoreData } from "../helpers/contract-fixtures.js";
import {
  readStream,
  sqlitePath,
  startGradecast,
  storeCounts,
  type TestGradecast,
} from "../helpers/gradecast.js";
import { type NatsServerHandle, startNatsServer } from "../helpers/nats-server.js";
import { runPythonAsync } from "../helpers/python.js";

/** What python_client.py prints: the SubmitScoreResponse, or the status it was refused with. */
type PythonOutcome =
  | {
      response: {
        event_id: string;
        event_time: string;
        replayed: boolean;
        published: boolean;
        submission_sequence: number;
      };
    }
  | {
      error: {
        code: number;
        code_name: string;
        details: string;
        /** The code inside the google.rpc.Status of the trailer; null without one. */
        status_code: number | null;
        fields: { field: string; description: string }[];
      };
    };

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

/** Has the Python client submit `scoreData` over gRPC, with the generated Python stubs. */
async function submitFromPython(scoreData: ExternalGraderScoreData): Promise<PythonOutcome> {
  const json = JSON.stringify(ExternalGraderScoreData.toJSON(scoreData));
  return JSON.parse(await runPythonAsync("python_client.py", ["submit", gradecast.address], json));
}

describe("a Python grader using the generated stubs", () => {
  it("submits a score that is stored, published and returned by GetScore", async () => {
    // Above 2^53: the id must cross Python, gRPC and TypeScript as an exact int64.
    const scoreData = sampleScoreData({ submissionId: BIG_SUBMISSION_ID });
    const outcome = await submitFromPython(scoreData);
    if (!("response" in outcome)) throw new Error(`refused: ${JSON.stringify(outcome.error)}`);
    const { response } = outcome;
    expect(response.event_id).toMatch(
      /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/,
    );
    expect(response).toMatchObject({ replayed: false, published: true, submission_sequence: 1 });

    const messages = await readStream(nats.url, gradecast.config.stream.name);
    const message = messages.find((m) => m.headers["ce-id"] === response.event_id);
    expect(message?.subject).toBe("gradecast.scores.v1.python-grader");
    const event = decodeScoreEvent(message?.data ?? new Uint8Array());
    expect(event.metadata?.id).toBe(response.event_id);
    expect(event.metadata?.time?.toISOString()).toBe(response.event_time);
    expect(event.scoreData).toEqual(scoreData);

    const found = await gradecast.client.getScore(BIG_SUBMISSION_ID);
    expect(found.published).toBe(true);
    expect(found.event?.metadata?.id).toBe(response.event_id);
    expect(found.event?.scoreData).toEqual(scoreData);
  });

  it("reads every field violation of a refused score from grpc-status-details-bin", async () => {
    const scoreBefore = storeCounts(sqlitePath(gradecast.config)).scores;
    const outcome = await submitFromPython(
      sampleScoreData({
        submissionId: 8001n,
        pointsPossible: 10,
        pointsEarned: 11,
        queueName: " a.b",
      }),
    );
    if (!("error" in outcome)) throw new Error(`accepted: ${JSON.stringify(outcome.response)}`);
    const { error } = outcome;
    expect(error).toMatchObject({
      code: status.INVALID_ARGUMENT,
      code_name: "INVALID_ARGUMENT",
      status_code: status.INVALID_ARGUMENT,
    });
    expect(error.fields.map((v) => v.field)).toEqual([
      "score_data.points_earned",
      "score_data.queue_name",
    ]);
    expect(error.fields[0]?.description).toMatch(/<= points_possible \(10\), got 11/);
    expect(error.fields[1]?.description).toMatch(/must not begin or end with whitespace/);
    expect(error.details).toContain("score_data.queue_name");

    expect(storeCounts(sqlitePath(gradecast.config)).scores).toBe(scoreBefore);
    await expect(gradecast.client.getScore(8001n)).rejects.toMatchObject({
      code: status.NOT_FOUND,
    });
  });
});
