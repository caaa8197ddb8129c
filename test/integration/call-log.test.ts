import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  type CallOptions,
  type ClientUnaryCall,
  credentials,
  Metadata,
  type ServiceError,
  status,
} from "@grpc/grpc-js";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { addGrader } from "../../src/cli/credentials-command.js";
import { type ExternalGraderScoreData, ScoreServiceClient } from "../../src/contract/index.js";
import { sampleScoreData } from "../helpers/contract-fixtures.js";
import { startGradecast, type TestGradecast } from "../helpers/gradecast.js";
import { type NatsServerHandle, startNatsServer } from "../helpers/nats-server.js";

/** Everything the server logged, one JSON line each, at every level down to debug. */
const logged: string[] = [];
let nats: NatsServerHandle;
let gradecast: TestGradecast;
let dir: string;
let token: string;
/** A score message no log line may contain. */
const SECRET_SCORE_MSG = JSON.stringify({
  correct: true,
  score: 1,
  msg: `<p>secret-feedback-${randomUUID()}</p>`,
});
/** A well-formed token that no grader holds; it must not be logged either. */
const UNKNOWN_TOKEN = `unknown${randomUUID().replaceAll("-", "")}`;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "gradecast-call-log-"));
  const credentialsPath = join(dir, "credentials.json");
  token = await addGrader({
    credentialsPath,
    graderName: "python-grader-1",
    queues: ["python-grader"],
    isReplacing: false,
  });
  nats = await startNatsServer();
  const logger = pino({ level: "debug" }, { write: (line: string) => logged.push(line) });
  gradecast = await startGradecast(nats.url, { auth: { kind: "tokens", credentialsPath }, logger });
  await gradecast.server.streamReady;
});

afterAll(async () => {
  await gradecast?.cleanup();
  await nats?.cleanup();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** What a raw call got back: its status code and the `x-request-id` of its initial metadata. */
interface Answer {
  code: number;
  echoedRequestId: string | undefined;
}

function metadataWith(headers: Record<string, string>): Metadata {
  const metadata = new Metadata();
  for (const [key, value] of Object.entries(headers)) metadata.set(key, value);
  return metadata;
}

/** How a test starts one call on `client`: which method, with which request. */
type StartCall = (
  client: ScoreServiceClient,
  metadata: Metadata,
  options: Partial<CallOptions>,
  onAnswer: (error: ServiceError | null) => void,
) => ClientUnaryCall;

/** Makes one call on a fresh client and resolves (never rejects) with what it got back. */
function answerOf(headers: Record<string, string>, start: StartCall): Promise<Answer> {
  const client = new ScoreServiceClient(gradecast.address, credentials.createInsecure());
  return new Promise<Answer>((resolve) => {
    let echoedRequestId: string | undefined;
    const call = start(client, metadataWith(headers), { deadline: Date.now() + 5_000 }, (error) => {
      client.close();
      resolve({ code: error ? error.code : status.OK, echoedRequestId });
    });
    call.on("metadata", (metadata: Metadata) => {
      echoedRequestId = metadata.get("x-request-id")[0]?.toString();
    });
  });
}

function submit(scoreData: ExternalGraderScoreData, headers: Record<string, string>) {
  return answerOf(headers, (client, metadata, options, onAnswer) =>
    client.submitScore({ scoreData }, metadata, options, onAnswer),
  );
}

function getScore(submissionId: bigint, headers: Record<string, string>) {
  return answerOf(headers, (client, metadata, options, onAnswer) =>
    client.getScore({ submissionId, queueName: "" }, metadata, options, onAnswer),
  );
}

/** The call lines logged for one request id (written before the answer, so no waiting). */
function callLinesOf(requestId: string): Record<string, unknown>[] {
  return logged
    .map((line) => JSON.parse(line) as Record<string, unknown>)
    .filter((line) => line.requestId === requestId);
}

const bearer = () => ({ authorization: `Bearer ${token}` });
const DEBUG = 20;
const INFO = 30;

describe("one log line per ScoreService call", () => {
  it("an accepted score logs its request id, grader, queue, submission and event at debug", async () => {
    const requestId = `req-${randomUUID()}`;
    const scoreData = sampleScoreData({ submissionId: 7101n, scoreMsg: SECRET_SCORE_MSG });
    const answer = await submit(scoreData, { ...bearer(), "x-request-id": requestId });
    expect(answer).toEqual({ code: status.OK, echoedRequestId: requestId });
    const lines = callLinesOf(requestId);
    expect(lines).toEqual([
      expect.objectContaining({
        level: DEBUG,
        msg: "call answered",
        requestId,
        method: "SubmitScore",
        code: "OK",
        durationMs: expect.any(Number),
        grader: "python-grader-1",
        queue: "python-grader",
        submissionId: "7101",
        eventId: expect.stringMatching(/^[0-9a-f-]{36}$/),
        replayed: false,
        published: true,
      }),
    ]);

    const retryId = `retry-${randomUUID()}`;
    await submit(scoreData, { ...bearer(), "x-request-id": retryId });
    expect(callLinesOf(retryId)).toEqual([
      expect.objectContaining({ replayed: true, eventId: lines[0]?.eventId }),
    ]);

    const readId = `read-${randomUUID()}`;
    expect(await getScore(7101n, { ...bearer(), "x-request-id": readId })).toEqual({
      code: status.OK,
      echoedRequestId: readId,
    });
    expect(callLinesOf(readId)).toEqual([
      expect.objectContaining({
        level: DEBUG,
        method: "GetScore",
        code: "OK",
        grader: "python-grader-1",
        queue: "python-grader",
        submissionId: "7101",
        eventId: lines[0]?.eventId,
        published: true,
      }),
    ]);
  });

  it("a call without x-request-id gets a new one, echoed to the client", async () => {
    const answer = await getScore(7199n, bearer());
    expect(answer.code).toBe(status.NOT_FOUND);
    expect(answer.echoedRequestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(callLinesOf(answer.echoedRequestId ?? "")).toEqual([
      expect.objectContaining({ level: DEBUG, method: "GetScore", code: "NOT_FOUND" }),
    ]);
  });

  it("a client's request id keeps only safe characters and at most 128 of them", async () => {
    const sent = `ab c"d\\e{}<>${"x".repeat(300)}`;
    const expected = `abcde${"x".repeat(123)}`;
    const answer = await getScore(7198n, { ...bearer(), "x-request-id": sent });
    expect(answer.echoedRequestId).toBe(expected);
    expect(callLinesOf(expected)).toHaveLength(1);
  });

  it.each<[string, () => Record<string, string>, ExternalGraderScoreData, string, object]>([
    [
      "a token no grader holds",
      () => ({ authorization: `Bearer ${UNKNOWN_TOKEN}` }),
      sampleScoreData({ submissionId: 7102n, scoreMsg: SECRET_SCORE_MSG }),
      "UNAUTHENTICATED",
      // Refused at its headers: its message is never read, so neither is its queue.
      {},
    ],
    [
      "a queue the grader may not report for",
      bearer,
      sampleScoreData({ submissionId: 7103n, scoreMsg: SECRET_SCORE_MSG, queueName: "java-8" }),
      "PERMISSION_DENIED",
      { grader: "python-grader-1", queue: "java-8", submissionId: "7103" },
    ],
    [
      "an invalid score",
      bearer,
      sampleScoreData({ submissionId: 7104n, scoreMsg: SECRET_SCORE_MSG, pointsEarned: 11 }),
      "INVALID_ARGUMENT",
      { grader: "python-grader-1", submissionId: "7104" },
    ],
  ])(
    "a refused call (%s) is logged at info with its code and reason",
    async (_, headers, scoreData, code, facts) => {
      const requestId = `refused-${randomUUID()}`;
      const answer = await submit(scoreData, { ...headers(), "x-request-id": requestId });
      expect(status[answer.code]).toBe(code);
      expect(answer.echoedRequestId).toBe(requestId);
      const lines = callLinesOf(requestId);
      expect(lines).toEqual([
        expect.objectContaining({
          level: INFO,
          msg: "call refused",
          method: "SubmitScore",
          code,
          reason: expect.any(String),
          ...facts,
        }),
      ]);
      expect(lines[0]).not.toHaveProperty("eventId");
    },
  );

  it("bounds what a client sends before it reaches a log line or a status message", async () => {
    // About 900 KB of queue name (the review's reproduction), under the 1 MiB message limit.
    const requestId = `huge-queue-${randomUUID()}`;
    const client = new ScoreServiceClient(gradecast.address, credentials.createInsecure());
    const details = await new Promise<string>((resolve) => {
      client.submitScore(
        { scoreData: sampleScoreData({ submissionId: 7105n, queueName: "q".repeat(900_000) }) },
        metadataWith({ ...bearer(), "x-request-id": requestId }),
        { deadline: Date.now() + 30_000 },
        (error) => {
          client.close();
          resolve(error ? `${status[error.code]}: ${error.details}` : "OK");
        },
      );
    });
    expect(details).toMatch(/^INVALID_ARGUMENT: .*queue_name/);
    expect(details.length).toBeLessThan(2_000);
    const line = logged.find((text) => text.includes(requestId)) ?? "";
    expect(line).toContain("call refused");
    expect(line.length).toBeLessThan(4_000);
  });

  it("never logs a token or a score message", () => {
    const text = logged.join("");
    expect(text).toContain("call answered");
    expect(text).toContain("PERMISSION_DENIED");
    expect(text).not.toContain(token);
    expect(text).not.toContain(UNKNOWN_TOKEN);
    expect(text).not.toContain("secret-feedback");
    expect(text).not.toMatch(/authorization|Bearer|scoreMsg|score_msg/i);
  });
});
