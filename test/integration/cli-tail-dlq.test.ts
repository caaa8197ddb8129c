import { jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  type ExternalGraderScoreData,
  SCORE_SUBMITTED_EVENT_TYPE,
  type SubmitScoreResponse,
} from "../../src/contract/index.js";
import {
  listDeadLetters,
  type ScoreEvent,
  type ScoreSubscription,
  subscribeToScores,
} from "../../src/subscriber/index.js";
import { runTsxScript, type ScriptRun } from "../helpers/child-process.js";
import { sampleScoreData } from "../helpers/contract-fixtures.js";
import { pollUntil, startGradecast, type TestGradecast } from "../helpers/gradecast.js";
import { type NatsServerHandle, startNatsServer } from "../helpers/nats-server.js";

const STREAM = "GRADECAST_TEST";
const DEAD_LETTER_STREAM = "GRADECAST_TEST_DLQ";
/** A CLI run that takes longer than this is killed and fails its test (a tail that never ends). */
const CLI_TIMEOUT_MS = 15_000;

let nats: NatsServerHandle;
let gradecast: TestGradecast;
let connection: NatsConnection;
/** Every subscription a test starts, stopped after it even when the test fails. */
const running: ScoreSubscription[] = [];

beforeAll(async () => {
  nats = await startNatsServer();
  gradecast = await startGradecast(nats.url);
  await gradecast.server.streamReady;
  connection = await connect({ servers: nats.url });
});

afterEach(async () => {
  await Promise.allSettled(running.splice(0).map((subscription) => subscription.stop()));
});

afterAll(async () => {
  await connection?.close();
  await gradecast?.cleanup();
  await nats?.cleanup();
});

/**
 * Runs `gradecast <args>` as a child process without blocking this event loop (the in-process
 * gRPC server answers from it). SIGKILLed after {@link CLI_TIMEOUT_MS}.
 */
function runCli(args: readonly string[]): Promise<ScriptRun> {
  return runTsxScript("src/cli/run.ts", args, {
    timeoutMs: CLI_TIMEOUT_MS,
    killSignal: "SIGKILL",
  });
}

/** The non-empty lines of an output. */
function linesOf(output: string): string[] {
  return output.split("\n").filter((line) => line !== "");
}

/** Asserts a clean exit (showing the output when not) and returns stdout's lines. */
function okLines(result: ScriptRun): string[] {
  expect({ code: result.code, signal: result.signal, stderr: result.stderr }).toEqual({
    code: 0,
    signal: null,
    stderr: "",
  });
  return linesOf(result.stdout);
}

/** What `tail` prints per event without --human. */
interface TailLine {
  subject: string;
  streamSequence: number;
  event: {
    metadata: { id: string; eventType: string; time: string };
    scoreData: { submissionId: string; queueName: string; courseId: string };
    submissionSequence: number;
  };
}

const tailArgs = (...more: string[]) => [
  "tail",
  "--stream",
  STREAM,
  "--nats-url",
  nats.url,
  ...more,
];

/** Subscribes a durable to the test stream, stopped after the test. */
async function subscribe(
  durableName: string,
  queueName: string | undefined,
  handler: (event: ScoreEvent) => void,
  more: { maxDeliver?: number } = {},
): Promise<ScoreSubscription> {
  const subscription = await subscribeToScores(
    { connection, stream: STREAM, subjectPrefix: "gradecast", durableName, queueName, ...more },
    handler,
  );
  running.push(subscription);
  return subscription;
}

// These tests share one stream and run in file order; the tail tests come first, so the
// three events submitted here are the first three of the stream.
describe("gradecast tail", () => {
  const courseA = "course-v1:edX+TailX+A";
  const courseB = "course-v1:edX+TailX+B";
  const scores: ExternalGraderScoreData[] = [
    sampleScoreData({ submissionId: 80_001n, queueName: "tail-alpha", courseId: courseA }),
    sampleScoreData({ submissionId: 80_002n, queueName: "tail-alpha", courseId: courseB }),
    sampleScoreData({ submissionId: 80_003n, queueName: "tail-beta", courseId: courseA }),
  ];
  let responses: SubmitScoreResponse[] = [];

  beforeAll(async () => {
    responses = [];
    for (const score of scores) responses.push(await gradecast.client.submitScore(score));
  });

  it("prints each event as one JSON line, filters by queue and course, and prints --human lines", async () => {
    const [all, beta, courseOnly, human] = await Promise.all([
      runCli(tailArgs("--max", "3")),
      runCli(tailArgs("--queue", "tail-beta", "--max", "1")),
      runCli(tailArgs("--course", courseB, "--max", "1")),
      runCli(tailArgs("--human", "--max", "1")),
    ]);

    const lines = okLines(all).map((line) => JSON.parse(line) as TailLine);
    expect(lines).toHaveLength(3);
    expect(lines.map((line) => line.event.metadata.id)).toEqual(responses.map((r) => r.eventId));
    expect(lines.map((line) => line.subject)).toEqual([
      "gradecast.scores.v1.tail-alpha",
      "gradecast.scores.v1.tail-alpha",
      "gradecast.scores.v1.tail-beta",
    ]);
    expect(lines.map((line) => line.streamSequence)).toEqual([1, 2, 3]);
    for (const [i, line] of lines.entries()) {
      // proto3 JSON: int64 as a string, the timestamp as RFC 3339.
      expect(line.event.scoreData).toMatchObject({
        submissionId: String(scores[i]?.submissionId),
        queueName: scores[i]?.queueName,
        courseId: scores[i]?.courseId,
      });
      expect(line.event.submissionSequence).toBe(1);
      expect(line.event.metadata.eventType).toBe(SCORE_SUBMITTED_EVENT_TYPE);
      expect(line.event.metadata.time).toBe(responses[i]?.eventTime?.toISOString());
    }

    const [betaLine, ...moreBeta] = okLines(beta).map((line) => JSON.parse(line) as TailLine);
    expect(moreBeta).toEqual([]);
    expect(betaLine?.event.metadata.id).toBe(responses[2]?.eventId);
    expect(betaLine?.subject).toBe("gradecast.scores.v1.tail-beta");

    const [courseLine, ...moreCourse] = okLines(courseOnly).map(
      (line) => JSON.parse(line) as TailLine,
    );
    expect(moreCourse).toEqual([]);
    expect(courseLine?.event.metadata.id).toBe(responses[1]?.eventId);
    expect(courseLine?.event.scoreData.courseId).toBe(courseB);

    const humanLines = okLines(human);
    expect(humanLines).toHaveLength(1);
    const [humanLine = ""] = humanLines;
    expect(() => JSON.parse(humanLine)).toThrow();
    expect(humanLine).toContain("submission 80001 ");
    expect(humanLine).toContain("7/10");
    expect(humanLine).toContain("tail-alpha");
  });

  it("acks nothing: after a tail, a durable subscription still receives every event", async () => {
    okLines(await runCli(tailArgs("--max", "3")));
    const jsm = await jetstreamManager(connection);
    const durables = (await jsm.consumers.list(STREAM).next()).filter(
      (consumer) => consumer.config.durable_name !== undefined,
    );
    expect(durables).toEqual([]);
    expect((await jsm.streams.info(STREAM)).state.messages).toBe(3);

    const received: string[] = [];
    await subscribe("lms-after-tail", undefined, (event) => {
      received.push(event.id);
    });
    await pollUntil(
      async () => received.length,
      (n) => n >= 3,
    );
    expect(received.slice(0, 3)).toEqual(responses.map((r) => r.eventId));
  });
});

describe("gradecast dlq", () => {
  it("lists a dead letter as JSON, re-drives it, and a fixed handler then gets the same event", async () => {
    const queueName = "cli-dlq-grader";
    const durableName = "lms-cli-dlq";
    const failing = await subscribe(
      durableName,
      queueName,
      () => {
        throw new Error("gradebook rejected the score");
      },
      { maxDeliver: 1 },
    );
    const submitted = await gradecast.client.submitScore(
      sampleScoreData({ submissionId: 81_001n, queueName }),
    );
    const letters = await pollUntil(
      () => listDeadLetters(connection, DEAD_LETTER_STREAM),
      (entries) => entries.length >= 1,
    );
    expect(letters.map((entry) => entry.eventId)).toEqual([submitted.eventId]);
    await failing.stop();

    const dlqArgs = ["--dead-letter-stream", DEAD_LETTER_STREAM, "--nats-url", nats.url];
    const listed = okLines(await runCli(["dlq", "list", "--json", ...dlqArgs])).map(
      (line) => JSON.parse(line) as Record<string, unknown>,
    );
    const sequence = letters[0]?.sequence;
    expect(listed).toEqual([
      {
        sequence,
        deadLetteredAt: expect.any(String),
        eventId: submitted.eventId,
        reason: "max-deliver",
        error: "gradebook rejected the score",
        deliveryCount: 1,
        originalSubject: `gradecast.scores.v1.${queueName}`,
        bytes: expect.any(Number),
      },
    ]);

    const redriven = okLines(await runCli(["dlq", "redrive", String(sequence), ...dlqArgs]));
    expect(redriven.map((line) => JSON.parse(line))).toEqual([
      {
        sequence,
        eventId: submitted.eventId,
        subject: `gradecast.scores.v1.${queueName}`,
        streamSequence: expect.any(Number),
      },
    ]);
    expect(await listDeadLetters(connection, DEAD_LETTER_STREAM)).toEqual([]);

    const handled: ScoreEvent[] = [];
    await subscribe(durableName, queueName, (event) => {
      handled.push(event);
    });
    await pollUntil(
      async () => handled.length,
      (n) => n >= 1,
    );
    const receipt = JSON.parse(redriven[0] ?? "{}") as { streamSequence: number };
    expect(handled.map((event) => [event.id, event.streamSequence])).toEqual([
      [submitted.eventId, receipt.streamSequence],
    ]);
  });
});

describe("usage errors", () => {
  it("exit 2 with one line on stderr naming the problem", async () => {
    const [redrive, since] = await Promise.all([
      runCli([
        "dlq",
        "redrive",
        "--dead-letter-stream",
        DEAD_LETTER_STREAM,
        "--nats-url",
        nats.url,
      ]),
      runCli(tailArgs("--since", "yesterday-ish-garbage")),
    ]);

    expect(redrive.code).toBe(2);
    expect(redrive.stdout).toBe("");
    expect(linesOf(redrive.stderr)).toEqual([
      "gradecast: invalid redrive: name the sequences to re-drive, or --all",
    ]);

    expect(since.code).toBe(2);
    expect(since.stdout).toBe("");
    const sinceLines = linesOf(since.stderr);
    expect(sinceLines).toHaveLength(1);
    expect(sinceLines[0]).toMatch(/^gradecast: invalid --since: "yesterday-ish-garbage"/);
  });
});
