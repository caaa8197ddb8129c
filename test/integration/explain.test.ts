import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AckPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { type NatsConnection, nanos } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { ExternalGraderScoreData } from "../../src/contract/index.js";
import { SqliteStore, ThreadedSqliteStore } from "../../src/store/index.js";
import {
  listDeadLetters,
  type ScoreSubscription,
  subscribeToScores,
} from "../../src/subscriber/index.js";
import { findFreePort, runTsxScript, type ScriptRun } from "../helpers/child-process.js";
import { sampleScoreData } from "../helpers/contract-fixtures.js";
import { pollUntil, startGradecast, type TestGradecast } from "../helpers/gradecast.js";
import { getProbe, sampleValue } from "../helpers/http-probes.js";
import { type NatsServerHandle, startNatsServer } from "../helpers/nats-server.js";
import { createTestDatabase, type TestDatabase } from "../helpers/postgres.js";

const STREAM = "GRADECAST_TEST";
const DEAD_LETTER_STREAM = "GRADECAST_TEST_DLQ";

/** What `explain --json` prints, as far as these tests read it. */
interface ExplainJSON {
  submissionId: string;
  queues: Array<{
    queueName: string;
    verdict: { kind: string; text: string };
    scores: Array<{
      submissionSequence: number;
      eventId: string;
      eventSource?: string;
      outbox: { state: string; streamSequence?: number; lastError?: string; attempts?: number };
      consumers: Array<{
        consumer: string;
        isDurable: boolean;
        position: { kind: string; streamSequencesBehind?: number };
      }>;
      deadLetters: Array<{ consumer?: string; error: string; sequence: number }>;
    }>;
  }>;
  jetStream: { isReachable: boolean; problem?: string };
}

function runCli(args: readonly string[]): Promise<ScriptRun> {
  return runTsxScript("src/cli/run.ts", args, { timeoutMs: 60_000, killSignal: "SIGKILL" });
}

/** Runs `explain` against a store and NATS; `--json` when asked. */
function explain(
  store: string,
  natsUrl: string,
  submissionId: bigint,
  more: readonly string[] = [],
): Promise<ScriptRun> {
  return runCli([
    "explain",
    "--submission-id",
    submissionId.toString(),
    "--store",
    store,
    "--nats-url",
    natsUrl,
    "--stream",
    STREAM,
    "--connect-timeout",
    "2000",
    ...more,
  ]);
}

/** The parsed `--json` output of a run that must have exited with `code`. */
function parsed(run: ScriptRun, code = 0): ExplainJSON {
  expect({ code: run.code, stderr: run.stderr }).toEqual({ code, stderr: "" });
  return JSON.parse(run.stdout) as ExplainJSON;
}

function onlyQueue(result: ExplainJSON) {
  expect(result.queues).toHaveLength(1);
  return result.queues[0] as ExplainJSON["queues"][number];
}

describe("gradecast explain against a running gradecast (SQLite)", () => {
  let nats: NatsServerHandle;
  let gradecast: TestGradecast;
  let connection: NatsConnection;
  let store: string;
  const running: ScoreSubscription[] = [];

  beforeAll(async () => {
    nats = await startNatsServer();
    gradecast = await startGradecast(nats.url);
    await gradecast.server.streamReady;
    connection = await connect({ servers: nats.url });
    const config = gradecast.config.store;
    if (config.kind !== "sqlite") throw new Error("the test gradecast uses SQLite");
    store = config.path;
  });

  afterEach(async () => {
    await Promise.allSettled(running.splice(0).map((subscription) => subscription.stop()));
  });

  afterAll(async () => {
    await connection?.close();
    await gradecast?.cleanup();
    await nats?.cleanup();
  });

  async function submit(scoreData: ExternalGraderScoreData) {
    const answer = await gradecast.client.submitScore(scoreData);
    expect(answer.published).toBe(true);
    return answer;
  }

  /** Waits until the durable's ack floor reaches `streamSequence`. */
  async function ackedUpTo(durable: string, streamSequence: number) {
    const jsm = await jetstreamManager(connection);
    await pollUntil(
      () => jsm.consumers.info(STREAM, durable),
      (info) => info.ack_floor.stream_seq >= streamSequence,
    );
  }

  it("says applied by the consumer that acknowledged it, at the time it did", async () => {
    const queueName = "explain-applied";
    const subscription = await subscribeToScores(
      { connection, stream: STREAM, durableName: "lms-gradebook", queueName },
      () => undefined,
    );
    running.push(subscription);
    const answer = await submit(sampleScoreData({ submissionId: 70_001n, queueName }));

    const first = parsed(await explain(store, nats.url, 70_001n, ["--json"]));
    const streamSequence = onlyQueue(first).scores[0]?.outbox.streamSequence ?? 0;
    await ackedUpTo("lms-gradebook", streamSequence);

    const result = parsed(await explain(store, nats.url, 70_001n, ["--json"]));
    const queue = onlyQueue(result);
    expect(queue.verdict.kind).toBe("applied");
    expect(queue.verdict.text).toMatch(/^applied by lms-gradebook at \d{4}-\d\d-\d\dT[\d:.]+Z$/);
    expect(queue.scores).toHaveLength(1);
    expect(queue.scores[0]).toMatchObject({
      submissionSequence: 1,
      eventId: answer.eventId,
      eventSource: "openedx/gradecast/test",
      outbox: { state: "published", streamSequence },
    });
    expect(
      queue.scores[0]?.consumers.find((standing) => standing.consumer === "lms-gradebook"),
    ).toMatchObject({ isDurable: true, position: { kind: "acknowledged" } });

    // The text form leads with the same verdict and ends with the note on refused calls.
    const text = await explain(store, nats.url, 70_001n);
    expect(text.code, text.stderr).toBe(0);
    const lines = text.stdout.trimEnd().split("\n");
    expect(lines[0]).toBe(`submission 70001 in queue ${queueName}: ${queue.verdict.text}`);
    expect(text.stdout).toContain(`event ${answer.eventId}`);
    expect(lines.at(-1)).toMatch(/^refused calls are not stored/);
  });

  it("says how many events behind a durable is that has not reached the event", async () => {
    const queueName = "explain-behind";
    const jsm = await jetstreamManager(connection);
    await jsm.consumers.add(STREAM, {
      durable_name: "lms-behind",
      filter_subject: `gradecast.scores.v1.${queueName}`,
      ack_policy: AckPolicy.Explicit,
    });
    for (const submissionId of [70_011n, 70_012n, 70_013n]) {
      await submit(sampleScoreData({ submissionId, queueName }));
    }

    const queue = onlyQueue(parsed(await explain(store, nats.url, 70_013n, ["--json"])));
    const streamSequence = queue.scores[0]?.outbox.streamSequence ?? 0;
    // Nothing was delivered to it: every stream sequence up to the event is still ahead.
    expect(queue.verdict).toEqual({
      kind: "behind",
      text: `published, lms-behind is ${streamSequence.toLocaleString("en-US")} events behind`,
    });
    const standing = queue.scores[0]?.consumers.find((c) => c.consumer === "lms-behind");
    expect(standing?.position).toMatchObject({
      kind: "not-reached",
      streamSequencesBehind: streamSequence,
    });
    // The applied test's durable takes another queue: it is listed, not in the verdict.
    expect(queue.scores[0]?.consumers.find((c) => c.consumer === "lms-gradebook")).toMatchObject({
      position: { kind: "not-subscribed" },
    });
  });

  it("says delivered, not acknowledged for an event a durable fetched and holds", async () => {
    const queueName = "explain-held";
    const jsm = await jetstreamManager(connection);
    await jsm.consumers.add(STREAM, {
      durable_name: "lms-holding",
      filter_subject: `gradecast.scores.v1.${queueName}`,
      ack_policy: AckPolicy.Explicit,
      ack_wait: nanos(120_000),
    });
    await submit(sampleScoreData({ submissionId: 70_021n, queueName }));
    const consumer = await jetstream(connection).consumers.get(STREAM, "lms-holding");
    const held = await consumer.next({ expires: 10_000 });
    expect(held?.subject).toBe(`gradecast.scores.v1.${queueName}`);

    const queue = onlyQueue(parsed(await explain(store, nats.url, 70_021n, ["--json"])));
    expect(queue.verdict).toEqual({
      kind: "delivered",
      text: "published, delivered to lms-holding, not acknowledged yet",
    });
    held?.ack();
  });

  it("says dead-lettered by the consumer that gave up, with its error, and lists the dead letter", async () => {
    const queueName = "explain-dlq";
    const subscription = await subscribeToScores(
      {
        connection,
        stream: STREAM,
        durableName: "lms-dlq",
        queueName,
        maxDeliver: 2,
        backoffMs: [10],
      },
      () => {
        throw new Error("gradebook refused submission 70031: no such learner");
      },
    );
    running.push(subscription);
    const answer = await submit(sampleScoreData({ submissionId: 70_031n, queueName }));
    await pollUntil(
      () => listDeadLetters(connection, DEAD_LETTER_STREAM),
      (entries) => entries.some((entry) => entry.eventId === answer.eventId),
    );

    const queue = onlyQueue(parsed(await explain(store, nats.url, 70_031n, ["--json"])));
    expect(queue.verdict).toEqual({
      kind: "dead-lettered",
      text: 'dead-lettered by lms-dlq: "gradebook refused submission 70031: no such learner"',
    });
    expect(queue.scores[0]?.deadLetters).toEqual([
      expect.objectContaining({
        consumer: "lms-dlq",
        error: "gradebook refused submission 70031: no such learner",
      }),
    ]);
  });

  it("shows every queue that recorded the id, and only one with --queue", async () => {
    await submit(sampleScoreData({ submissionId: 70_041n, queueName: "explain-one" }));
    await submit(sampleScoreData({ submissionId: 70_041n, queueName: "explain-two" }));
    await submit(
      sampleScoreData({ submissionId: 70_041n, queueName: "explain-two", pointsEarned: 9 }),
    );

    const both = parsed(await explain(store, nats.url, 70_041n, ["--json"]));
    expect(both.queues.map((queue) => [queue.queueName, queue.scores.length])).toEqual([
      ["explain-one", 1],
      ["explain-two", 2],
    ]);
    // No durable takes these queues.
    expect(both.queues.map((queue) => queue.verdict.kind)).toEqual(["no-consumer", "no-consumer"]);

    const two = parsed(
      await explain(store, nats.url, 70_041n, ["--json", "--queue", "explain-two", "--limit", "1"]),
    );
    expect(onlyQueue(two).queueName).toBe("explain-two");
    expect(onlyQueue(two).scores.map((score) => score.submissionSequence)).toEqual([2]);
  });

  it("reads the same history through the worker-thread SQLite store as through the direct one", async () => {
    const encoding = {
      origin: { source: "", sourcehost: "", sourcelib: "0.0.0" },
      subjectPrefix: "gradecast",
    };
    const direct = new SqliteStore({ path: store, encoding, isOwner: false });
    const threaded = new ThreadedSqliteStore({ path: store, encoding, isOwner: false });
    await direct.start();
    await threaded.start();
    try {
      const options = { limitPerQueue: 10 };
      const expected = await direct.submissionHistory(70_041n, options);
      expect(expected.map((entry) => [entry.queueName, entry.submissionSequence])).toEqual([
        ["explain-one", 1],
        ["explain-two", 1],
        ["explain-two", 2],
      ]);
      expect(expected[0]).toMatchObject({
        submissionId: 70_041n,
        outbox: { state: "published" },
        eventSource: "openedx/gradecast/test",
      });
      expect(await threaded.submissionHistory(70_041n, options)).toEqual(expected);
      expect(
        await threaded.submissionHistory(70_041n, { queueName: "explain-one", limitPerQueue: 10 }),
      ).toEqual(expected.slice(0, 1));
    } finally {
      await threaded.close();
      await direct.close();
    }
  });

  it("exits 1 for a submission with no accepted score, saying refused calls are not stored", async () => {
    const run = await explain(store, nats.url, 79_999n);
    expect(run.code).toBe(1);
    expect(run.stdout).toBe("");
    expect(run.stderr).toBe(
      "gradecast: no accepted score for submission 79999: refused calls are not stored; check the grader's log or the status its call got\n",
    );
  });

  it("exits 2 for a submission id that is not one, and 3 for a store that does not exist", async () => {
    const bad = await runCli(["explain", "--submission-id", "-4", "--store", store]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/invalid --submission-id/);
    const missing = join(tmpdir(), "gradecast-explain-missing", "nothing.sqlite");
    const noStore = await explain(missing, nats.url, 70_001n);
    expect(noStore.code).toBe(3);
    expect(noStore.stderr).toBe(`gradecast: no SQLite store at ${missing} (--store, --data-dir)\n`);
  });
});

describe("gradecast explain while NATS is down, then refusing an event", () => {
  let dir: string;
  let nats: NatsServerHandle | undefined;
  let gradecast: TestGradecast;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "gradecast-explain-"));
  });

  afterAll(async () => {
    await gradecast?.cleanup();
    await nats?.cleanup();
    await rm(dir, { recursive: true, force: true });
  });

  it("says waiting in the outbox with NATS out of reach (exit 3), then parked once JetStream refuses it", async () => {
    const port = await findFreePort();
    const natsUrl = `nats://127.0.0.1:${port}`;
    const dataDir = join(dir, "data");
    gradecast = await startGradecast(natsUrl, { dataDir });
    const store = join(dataDir, "gradecast.sqlite");
    const waiting = await gradecast.client.submitScore(
      sampleScoreData({ submissionId: 71_001n, queueName: "explain-outage" }),
    );
    expect(waiting.published).toBe(false);
    // Too large for the server that comes up next: it will be parked.
    await gradecast.client.submitScore(
      sampleScoreData({
        submissionId: 71_002n,
        queueName: "explain-outage",
        scoreMsg: "z".repeat(65_536),
      }),
    );

    const down = await explain(store, natsUrl, 71_001n, ["--json"]);
    const result = parsed(down, 3);
    const queue = onlyQueue(result);
    expect(queue.verdict.kind).toBe("waiting");
    expect(queue.verdict.text).toMatch(
      new RegExp(
        `^accepted, waiting in the outbox(: .+)? since \\S+Z \\(.+\\); NATS could not be reached from here: cannot connect to NATS at ${natsUrl}`,
      ),
    );
    expect(queue.scores[0]?.outbox.state).toBe("pending");
    expect(result.jetStream.isReachable).toBe(false);

    const smallConfig = join(dir, "small.conf");
    await writeFile(smallConfig, "max_payload: 65536\n");
    nats = await startNatsServer({ port, extraArgs: ["-c", smallConfig] });
    const metricsPort = gradecast.server.metricsPort;
    await pollUntil(
      async () => (await getProbe(metricsPort, "/metrics")).body,
      (body) =>
        sampleValue(body, "gradecast_outbox_parked") === 1 &&
        sampleValue(body, "gradecast_outbox_pending") === 0,
    );

    const parkedQueue = onlyQueue(parsed(await explain(store, natsUrl, 71_002n, ["--json"])));
    expect(parkedQueue.verdict.kind).toBe("parked");
    expect(parkedQueue.verdict.text).toMatch(
      /^accepted, parked in the outbox: JetStream refused it \(.*max_payload.*\); fix the cause, then run `gradecast outbox retry [0-9a-f-]+`$/,
    );
    // The first score reached the stream once NATS was up; no durable takes its queue.
    const published = onlyQueue(parsed(await explain(store, natsUrl, 71_001n, ["--json"])));
    expect(published.verdict.kind).toBe("no-consumer");
    expect(published.scores[0]?.outbox.state).toBe("published");
  });
});

describe("gradecast explain on PostgreSQL", () => {
  let nats: NatsServerHandle;
  let database: TestDatabase;
  let gradecast: TestGradecast;
  let connection: NatsConnection;
  let subscription: ScoreSubscription | undefined;

  beforeAll(async () => {
    nats = await startNatsServer();
    database = await createTestDatabase();
    gradecast = await startGradecast(nats.url, {
      store: { kind: "postgres", url: database.url, poolSize: 2 },
    });
    await gradecast.server.streamReady;
    connection = await connect({ servers: nats.url });
  });

  afterAll(async () => {
    await subscription?.stop();
    await connection?.close();
    await gradecast?.cleanup();
    await database?.drop();
    await nats?.cleanup();
  });

  it("reads the history from PostgreSQL and says applied by the consumer", async () => {
    const queueName = "explain-pg";
    subscription = await subscribeToScores(
      { connection, stream: STREAM, durableName: "lms-pg", queueName },
      () => undefined,
    );
    await gradecast.client.submitScore(sampleScoreData({ submissionId: 72_001n, queueName }));
    await gradecast.client.submitScore(
      sampleScoreData({ submissionId: 72_001n, queueName, pointsEarned: 10 }),
    );
    const jsm = await jetstreamManager(connection);
    await pollUntil(
      () => jsm.consumers.info(STREAM, "lms-pg"),
      (info) => info.ack_floor.stream_seq >= 2,
    );

    const queue = onlyQueue(parsed(await explain(database.url, nats.url, 72_001n, ["--json"])));
    expect(queue.scores.map((score) => [score.submissionSequence, score.outbox.state])).toEqual([
      [1, "published"],
      [2, "published"],
    ]);
    expect(queue.verdict.kind).toBe("applied");
    expect(queue.verdict.text).toMatch(/^applied by lms-pg at \S+Z$/);
  });
});
