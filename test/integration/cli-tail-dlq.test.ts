import { type ConsumerInfo, DeliverPolicy, jetstreamManager } from "@nats-io/jetstream";
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
const CLI_TIMEOUT_MS = 60_000;

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

/** The LMS's durable, as the README's subscriber example names it. */
const LMS_DURABLE = "lms";

/** What a consumer has delivered and had acknowledged, in stream sequences and counts. */
function ackStateOf(info: ConsumerInfo) {
  return {
    delivered: info.delivered.stream_seq,
    ackFloor: info.ack_floor.stream_seq,
    pending: info.num_pending,
    ackPending: info.num_ack_pending,
  };
}

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
// three events submitted here are the first three of the stream. The later tail tests each
// submit to a queue of their own and filter on it.
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
    // The LMS's durable exists before any event and before any tail: whatever a tail acked
    // through it would show in its ack state.
    const lms = await subscribe(LMS_DURABLE, undefined, () => {
      throw new Error("the LMS durable must not be consuming yet");
    });
    await lms.stop();
    running.splice(running.indexOf(lms), 1);
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

  it("acks nothing: the LMS durable's ack state is untouched by a tail, and it then receives every event", async () => {
    const jsm = await jetstreamManager(connection);
    const before = ackStateOf(await jsm.consumers.info(STREAM, LMS_DURABLE));
    expect(before).toEqual({ delivered: 0, ackFloor: 0, pending: 3, ackPending: 0 });

    okLines(await runCli(tailArgs("--max", "3")));
    expect(ackStateOf(await jsm.consumers.info(STREAM, LMS_DURABLE))).toEqual(before);
    const durables = (await jsm.consumers.list(STREAM).next())
      .map((consumer) => consumer.config.durable_name)
      .filter((name) => name !== undefined);
    expect(durables).toEqual([LMS_DURABLE]);

    const received: string[] = [];
    await subscribe(LMS_DURABLE, undefined, (event) => {
      received.push(event.id);
    });
    await pollUntil(
      async () => received.length,
      (n) => n >= 3,
    );
    expect(received.slice(0, 3)).toEqual(responses.map((r) => r.eventId));
  });

  it("--new prints only events published after it started", async () => {
    const queueName = "tail-new";
    const earlier = await gradecast.client.submitScore(
      sampleScoreData({ submissionId: 80_010n, queueName }),
    );
    const jsm = await jetstreamManager(connection);
    const tail = runCli(tailArgs("--new", "--queue", queueName, "--max", "1"));
    // Its consumer starts at the end of the stream: what is published once it exists is new.
    const isListening = await pollUntil(
      async () =>
        (await jsm.consumers.list(STREAM).next()).some(
          (consumer) => consumer.config.deliver_policy === DeliverPolicy.New,
        ),
      (found) => found,
    );
    expect(isListening).toBe(true);
    const later = await gradecast.client.submitScore(
      sampleScoreData({ submissionId: 80_011n, queueName }),
    );
    const lines = okLines(await tail).map((line) => JSON.parse(line) as TailLine);
    expect(lines.map((line) => line.event.metadata.id)).toEqual([later.eventId]);
    expect(later.eventId).not.toBe(earlier.eventId);
  });

  it("--since prints events stored from that time on (an ISO time or a duration back)", async () => {
    const queueName = "tail-since";
    const earlier = await gradecast.client.submitScore(
      sampleScoreData({ submissionId: 80_020n, queueName }),
    );
    expect(earlier.published).toBe(true); // stored in the stream, so before `since`
    const since = new Date(Date.now() + 5);
    await pollUntil(
      async () => Date.now(),
      (now) => now > since.getTime() + 5,
      5_000,
      5,
    );
    const later = await gradecast.client.submitScore(
      sampleScoreData({ submissionId: 80_021n, queueName }),
    );
    const [fromIso, fromDuration] = await Promise.all([
      runCli(tailArgs("--since", since.toISOString(), "--queue", queueName, "--max", "1")),
      runCli(tailArgs("--since", "1h", "--queue", queueName, "--max", "2")),
    ]);
    const idsOf = (run: ScriptRun) =>
      okLines(run).map((line) => (JSON.parse(line) as TailLine).event.metadata.id);
    expect(idsOf(fromIso)).toEqual([later.eventId]);
    expect(idsOf(fromDuration)).toEqual([earlier.eventId, later.eventId]);
  });

  it("--durable reads through that durable: what it printed is acked, and the next run resumes after it", async () => {
    const queueName = "tail-durable";
    const durableArgs = (max: number) =>
      tailArgs("--durable", "tail-reader", "--queue", queueName, "--max", String(max));
    const first = [];
    for (const submissionId of [80_030n, 80_031n]) {
      first.push(await gradecast.client.submitScore(sampleScoreData({ submissionId, queueName })));
    }
    const idsOf = (run: ScriptRun) =>
      okLines(run).map((line) => (JSON.parse(line) as TailLine).event.metadata.id);
    expect(idsOf(await runCli(durableArgs(2)))).toEqual(first.map((r) => r.eventId));
    const jsm = await jetstreamManager(connection);
    expect(ackStateOf(await jsm.consumers.info(STREAM, "tail-reader"))).toMatchObject({
      pending: 0,
      ackPending: 0,
    });

    const third = await gradecast.client.submitScore(
      sampleScoreData({ submissionId: 80_032n, queueName }),
    );
    expect(idsOf(await runCli(durableArgs(1)))).toEqual([third.eventId]);
  });
});

describe("gradecast dlq", () => {
  it("lists a dead letter with the consumer that gave up (filtered by --consumer), re-drives it, and a fixed handler then gets the same event", async () => {
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
        consumer: durableName,
        reason: "max-deliver",
        error: "gradebook rejected the score",
        deliveryCount: 1,
        originalSubject: `gradecast.scores.v1.${queueName}`,
        bytes: expect.any(Number),
      },
    ]);
    const [ofThisConsumer, ofAnother] = await Promise.all([
      runCli(["dlq", "list", "--consumer", durableName, ...dlqArgs]),
      runCli(["dlq", "list", "--consumer", "another-lms", ...dlqArgs]),
    ]);
    expect(okLines(ofThisConsumer)).toEqual([
      expect.stringMatching(
        new RegExp(
          `^#${sequence} \\S+ "${durableName}" gave up: "max-deliver" after 1 deliveries .*"gradebook rejected the score"$`,
        ),
      ),
      `1 dead letter(s) from consumer "${durableName}" in ${DEAD_LETTER_STREAM}`,
    ]);
    expect(okLines(ofAnother)).toEqual([
      `0 dead letter(s) from consumer "another-lms" in ${DEAD_LETTER_STREAM}`,
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

describe("gradecast submit", () => {
  const submitArgs = (scoreData: ExternalGraderScoreData) => [
    "submit",
    "--server",
    gradecast.address,
    "--submission-id",
    String(scoreData.submissionId),
    "--points-earned",
    String(scoreData.pointsEarned),
    "--points-possible",
    String(scoreData.pointsPossible),
    "--course-id",
    scoreData.courseId,
    "--user-id",
    scoreData.userId,
    "--module-id",
    scoreData.moduleId,
    "--queue-key",
    scoreData.queueKey,
    "--queue-name",
    scoreData.queueName,
    "--score-msg",
    scoreData.scoreMsg,
  ];

  it("prints the response as JSON; a refused score exits 1 with its status and every field violation, and stores nothing", async () => {
    const valid = sampleScoreData({ submissionId: 82_001n });
    const invalid = sampleScoreData({
      submissionId: 82_002n,
      pointsEarned: 11,
      courseId: "course v1",
    });
    const [accepted, refused] = await Promise.all([
      runCli(submitArgs(valid)),
      runCli(submitArgs(invalid)),
    ]);

    const [answer, ...moreAnswers] = okLines(accepted).map(
      (line) => JSON.parse(line) as { eventId: string; submissionSequence: number },
    );
    expect(moreAnswers).toEqual([]);
    expect(answer?.submissionSequence).toBe(1);
    const stored = await gradecast.client.getScore(82_001n);
    expect(stored.event?.metadata?.id).toBe(answer?.eventId);

    expect({ code: refused.code, stdout: refused.stdout }).toEqual({ code: 1, stdout: "" });
    const [statusLine, ...violationLines] = linesOf(refused.stderr);
    expect(statusLine).toMatch(/^gradecast: INVALID_ARGUMENT\b/);
    expect(violationLines).toEqual([
      "  score_data.points_earned: must be <= points_possible (10), got 11",
      expect.stringMatching(/^ {2}score_data\.course_id: must be an Open edX course key /),
    ]);
    await expect(gradecast.client.getScore(82_002n)).rejects.toMatchObject({ code: 5 });
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
