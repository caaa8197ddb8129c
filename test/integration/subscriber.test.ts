import { randomUUID } from "node:crypto";
import { getEventListeners } from "node:events";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import {
  type ConsumerInfo,
  JetStreamApiCodes,
  type JetStreamClient,
  jetstream,
  jetstreamManager,
} from "@nats-io/jetstream";
import { type NatsConnection, headers as natsHeaders } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Gradebook } from "../../examples/sample-lms/gradebook.js";
import {
  ExternalGraderScoreSubmitted,
  encodeScoreEvent,
  SCORE_SUBMITTED_EVENT_TYPE,
} from "../../src/contract/index.js";
import {
  DEAD_LETTER_HEADERS,
  listDeadLetters,
  redriveDeadLetter,
  type ScoreEvent,
  type ScoreHandler,
  type ScoreSubscription,
  type SubscribeToScoresOptions,
  type SubscriptionStatus,
  SubscriptionStopTimeoutError,
  subscribeToScores,
} from "../../src/subscriber/index.js";
import { runScript } from "../helpers/child-process.js";
import { sampleScoreData } from "../helpers/contract-fixtures.js";
import {
  pollUntil,
  readStream,
  type StreamMessage,
  startGradecast,
  type TestGradecast,
} from "../helpers/gradecast.js";
import { type NatsServerHandle, startNatsServer } from "../helpers/nats-server.js";
import { publishScoreEvent } from "../helpers/score-events.js";

const STREAM = "GRADECAST_TEST";
const DEAD_LETTER_STREAM = "GRADECAST_TEST_DLQ";

let nats: NatsServerHandle;
let gradecast: TestGradecast;
let connection: NatsConnection;
let js: JetStreamClient;
/** Every subscription a test starts, stopped after it even when the test fails. */
const running: ScoreSubscription[] = [];

beforeAll(async () => {
  nats = await startNatsServer();
  gradecast = await startGradecast(nats.url);
  await gradecast.server.streamReady;
  connection = await connect({ servers: nats.url });
  js = jetstream(connection);
});

afterEach(async () => {
  await Promise.allSettled(running.splice(0).map((subscription) => subscription.stop()));
});

afterAll(async () => {
  await connection?.close();
  await gradecast?.cleanup();
  await nats?.cleanup();
});

/** Subscribes to the test stream; `options` picks the queue, durable and the rest. */
async function subscribe(
  options: Omit<SubscribeToScoresOptions, "connection">,
  handler: ScoreHandler,
): Promise<ScoreSubscription> {
  const subscription = await subscribeToScores(
    { connection, stream: STREAM, subjectPrefix: "gradecast", ...options },
    handler,
  );
  running.push(subscription);
  return subscription;
}

/** Collects a subscription's statuses in the background, from now until it stops. */
function collectStatuses(subscription: ScoreSubscription): SubscriptionStatus[] {
  const statuses: SubscriptionStatus[] = [];
  const iterable = subscription.status();
  void (async () => {
    for await (const status of iterable) statuses.push(status);
  })();
  return statuses;
}

async function consumerInfo(name: string): Promise<ConsumerInfo> {
  const jsm = await jetstreamManager(connection);
  return jsm.consumers.info(STREAM, name);
}

/** Waits until the consumer has nothing left to deliver and nothing unacknowledged. */
async function waitUntilSettled(name: string): Promise<ConsumerInfo> {
  const info = await pollUntil(
    () => consumerInfo(name),
    (i) => i.num_pending === 0 && i.num_ack_pending === 0,
  );
  expect({ pending: info.num_pending, ackPending: info.num_ack_pending }).toEqual({
    pending: 0,
    ackPending: 0,
  });
  return info;
}

/** The dead letters of one queue, once `count` of them are in the dead-letter stream. */
async function deadLettersOf(queueName: string, count: number): Promise<StreamMessage[]> {
  const subject = `gradecast.dlq.v1.${queueName}`;
  const read = async () =>
    (await readStream(nats.url, DEAD_LETTER_STREAM)).filter((m) => m.subject === subject);
  const letters = await pollUntil(read, (found) => found.length >= count);
  expect(letters).toHaveLength(count);
  return letters;
}

/** A small deterministic generator in [0, 1), so a failing interleaving can be replayed. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1_664_525) + 1_013_904_223) >>> 0;
    return state / 2 ** 32;
  };
}

describe("delivery", () => {
  it("delivers gRPC-submitted events with every field, and a durable resumes after stop without loss or repeats", async () => {
    const queueName = "resume-grader";
    const durableName = "lms-resume";
    const received: ScoreEvent[] = [];
    const handler: ScoreHandler = (event) => {
      received.push(event);
    };
    const submitFive = async (firstId: bigint) => {
      const submitted = [];
      for (let i = 0n; i < 5n; i++) {
        const scoreData = sampleScoreData({ submissionId: firstId + i, queueName });
        submitted.push({ scoreData, response: await gradecast.client.submitScore(scoreData) });
      }
      return submitted;
    };

    let subscription = await subscribe({ durableName, queueName }, handler);
    const firstFive = await submitFive(10_001n);
    await pollUntil(
      async () => received.length,
      (n) => n >= 5,
    );
    expect(received.map((event) => event.id)).toEqual(
      firstFive.map(({ response }) => response.eventId),
    );

    const [first] = firstFive;
    const stored = (await readStream(nats.url, STREAM)).find(
      (m) => m.headers["ce-id"] === first?.response.eventId,
    );
    expect(received[0]).toEqual({
      id: first?.response.eventId,
      type: SCORE_SUBMITTED_EVENT_TYPE,
      time: first?.response.eventTime,
      source: "openedx/gradecast/test",
      sourcehost: "test-host",
      sourcelib: "0.1.0",
      minorversion: 0,
      submissionSequence: 1,
      scoreData: first?.scoreData,
      subject: "gradecast.scores.v1.resume-grader",
      streamSequence: stored?.seq,
      deliveryCount: 1,
      toJSON: expect.any(Function),
    });

    await subscription.stop();
    await expect(subscription.closed()).resolves.toBeUndefined();
    const secondFive = await submitFive(10_011n);
    // Restarted with another ack wait: the durable is updated, its position kept.
    subscription = await subscribe({ durableName, queueName, ackWaitMs: 20_000 }, handler);
    await pollUntil(
      async () => received.length,
      (n) => n >= 10,
    );
    await waitUntilSettled(durableName);
    expect(received.slice(5).map((event) => event.id)).toEqual(
      secondFive.map(({ response }) => response.eventId),
    );
    expect(received).toHaveLength(10);
    expect((await consumerInfo(durableName)).config).toMatchObject({
      ack_wait: 20_000_000_000,
      max_deliver: -1,
      filter_subject: "gradecast.scores.v1.resume-grader",
    });
  });

  it("handles 1,000 events over 50 submissions 8 at a time, each submission in order, each event once", async () => {
    const queueName = "bulk-grader";
    const submissions = 50;
    const perSubmission = 20;
    // A seeded random interleaving that keeps each submission's own order: its events sit
    // anywhere from adjacent to far apart. Publishes on one connection are stored in the
    // order they are sent, so each submission's events are stored in sequence order.
    const random = seededRandom(4821);
    const nextSequence = Array.from({ length: submissions }, () => 1);
    const publishes: Array<Promise<{ eventId: string; seq: number }>> = [];
    while (publishes.length < submissions * perSubmission) {
      const s = Math.floor(random() * submissions);
      const sequence = nextSequence[s] ?? perSubmission + 1;
      if (sequence > perSubmission) continue;
      nextSequence[s] = sequence + 1;
      const scoreData = sampleScoreData({
        submissionId: 50_000n + BigInt(s),
        queueName,
        pointsEarned: sequence % 11,
      });
      publishes.push(publishScoreEvent(js, scoreData, sequence));
    }
    await Promise.all(publishes);

    const latest = new Map<bigint, number>();
    const handled = new Map<string, number>();
    const orderViolations: string[] = [];
    // The sample LMS's gradebook, applied by the same handler.
    const gradebookDir = mkdtempSync(join(tmpdir(), "gradecast-bulk-gradebook-"));
    const gradebook = new Gradebook(join(gradebookDir, "gradebook.sqlite"));
    const inFlightSubmissions = new Set<bigint>();
    let overlapsOfOneSubmission = 0;
    let inFlight = 0;
    let maxInFlight = 0;
    await subscribe({ durableName: "lms-bulk", queueName, concurrency: 8 }, async (event) => {
      const submissionId = event.scoreData.submissionId;
      if (inFlightSubmissions.has(submissionId)) overlapsOfOneSubmission++;
      inFlightSubmissions.add(submissionId);
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      const seen = latest.get(submissionId) ?? 0;
      if (event.submissionSequence < seen) {
        orderViolations.push(`${submissionId}: ${event.submissionSequence} after ${seen}`);
      }
      latest.set(submissionId, Math.max(seen, event.submissionSequence));
      handled.set(event.id, (handled.get(event.id) ?? 0) + 1);
      gradebook.apply(event);
      // Uneven handler times, so a later event could overtake an earlier one if allowed to.
      await delay(Number((submissionId + BigInt(event.submissionSequence)) % 4n));
      inFlight--;
      inFlightSubmissions.delete(submissionId);
    });

    await pollUntil(
      async () => handled.size,
      (n) => n >= submissions * perSubmission,
    );
    await waitUntilSettled("lms-bulk");
    expect(orderViolations).toEqual([]);
    expect(overlapsOfOneSubmission).toBe(0);
    expect(maxInFlight).toBeLessThanOrEqual(8);
    expect(maxInFlight).toBeGreaterThan(1);
    expect(handled.size).toBe(1_000);
    expect([...handled.values()].every((count) => count === 1)).toBe(true);
    expect(latest.size).toBe(submissions);
    expect([...latest.values()].every((sequence) => sequence === perSubmission)).toBe(true);
    const rows = gradebook.rows();
    gradebook.close();
    rmSync(gradebookDir, { recursive: true, force: true });
    expect(rows).toHaveLength(submissions);
    expect(rows.every((row) => row.submissionSequence === perSubmission)).toBe(true);
    expect(rows.every((row) => row.pointsEarned === perSubmission % 11)).toBe(true);
  });
});

describe("failures", () => {
  it("a handler that throws twice gets three deliveries with growing delays, then one ack", async () => {
    const queueName = "retry-grader";
    const deliveries: Array<{ atMs: number; deliveryCount: number }> = [];
    const subscription = await subscribe(
      { durableName: "lms-retry", queueName, backoffMs: [100, 300] },
      (event) => {
        deliveries.push({ atMs: performance.now(), deliveryCount: event.deliveryCount });
        if (deliveries.length <= 2) throw new Error(`gradebook busy (${deliveries.length})`);
      },
    );
    const statuses = collectStatuses(subscription);
    await gradecast.client.submitScore(sampleScoreData({ submissionId: 20_001n, queueName }));

    await pollUntil(
      async () => deliveries.length,
      (n) => n >= 3,
    );
    await waitUntilSettled("lms-retry");
    expect(deliveries.map((d) => d.deliveryCount)).toEqual([1, 2, 3]);
    const [first, second, third] = deliveries.map((d) => d.atMs);
    const firstGapMs = (second ?? 0) - (first ?? 0);
    const secondGapMs = (third ?? 0) - (second ?? 0);
    expect(firstGapMs).toBeGreaterThanOrEqual(90);
    expect(secondGapMs).toBeGreaterThanOrEqual(290);
    expect(secondGapMs).toBeGreaterThan(firstGapMs);
    expect(
      statuses.flatMap((s) => (s.type === "handler-failed" ? [[s.retryInMs, s.error.name]] : [])),
    ).toEqual([
      [100, "ScoreHandlerError"],
      [300, "ScoreHandlerError"],
    ]);
  });

  it("a handler that always throws has the event dead-lettered after maxDeliver, and the original terminated", async () => {
    const queueName = "dead-grader";
    let calls = 0;
    const subscription = await subscribe(
      { durableName: "lms-dead", queueName, maxDeliver: 3, backoffMs: [50] },
      () => {
        calls++;
        throw new Error("gradebook rejected the score\r\nsecond line");
      },
    );
    const statuses = collectStatuses(subscription);
    const response = await gradecast.client.submitScore(
      sampleScoreData({ submissionId: 30_001n, queueName }),
    );

    const [letter] = await deadLettersOf(queueName, 1);
    const original = (await readStream(nats.url, STREAM)).find(
      (m) => m.headers["ce-id"] === response.eventId,
    );
    expect(letter?.headers).toMatchObject({
      [DEAD_LETTER_HEADERS.reason]: "max-deliver",
      [DEAD_LETTER_HEADERS.deliveryCount]: "3",
      [DEAD_LETTER_HEADERS.error]: "gradebook rejected the score second line",
      [DEAD_LETTER_HEADERS.originalSubject]: "gradecast.scores.v1.dead-grader",
      [DEAD_LETTER_HEADERS.streamSequence]: String(original?.seq),
      "ce-id": response.eventId,
      "ce-type": SCORE_SUBMITTED_EVENT_TYPE,
      "Nats-Msg-Id": `dlq-${STREAM}-${original?.seq}`,
    });
    expect(Buffer.from(letter?.data ?? [])).toEqual(Buffer.from(original?.data ?? [1]));

    await waitUntilSettled("lms-dead");
    expect(calls).toBe(3);
    expect(statuses.map((s) => s.type)).toEqual([
      "handler-failed",
      "handler-failed",
      "dead-lettered",
    ]);
  });

  it("a backoff function that throws is reported as internal-error and its event nak'ed, then dead-lettered at maxDeliver", async () => {
    const queueName = "backoff-bug-grader";
    let calls = 0;
    const subscription = await subscribe(
      {
        durableName: "lms-backoff-bug",
        queueName,
        maxDeliver: 2,
        backoffMs: () => {
          // Not even an Error: the status still carries one.
          throw "backoff bug";
        },
      },
      () => {
        calls++;
        throw new Error("handler failed");
      },
    );
    const statuses = collectStatuses(subscription);
    await gradecast.client.submitScore(sampleScoreData({ submissionId: 32_001n, queueName }));

    const [letter] = await deadLettersOf(queueName, 1);
    expect(letter?.headers).toMatchObject({
      [DEAD_LETTER_HEADERS.reason]: "max-deliver",
      [DEAD_LETTER_HEADERS.deliveryCount]: "2",
    });
    await waitUntilSettled("lms-backoff-bug");
    expect(calls).toBe(2);
    expect(statuses.map((s) => s.type)).toEqual(["internal-error", "dead-lettered"]);
    const [internal] = statuses;
    expect(internal?.type === "internal-error" && internal.error).toBeInstanceOf(Error);
    expect(internal?.type === "internal-error" && internal.error.message).toBe("backoff bug");
  });

  it("a re-driven dead letter is processed once by a fixed handler, and dead-lettered again if it fails again", async () => {
    const queueName = "redrive-grader";
    const failing = await subscribe(
      { durableName: "lms-redrive", queueName, maxDeliver: 2, backoffMs: [20] },
      () => {
        throw new Error("handler bug");
      },
    );
    const first = await gradecast.client.submitScore(
      sampleScoreData({ submissionId: 31_001n, queueName }),
    );
    const second = await gradecast.client.submitScore(
      sampleScoreData({ submissionId: 31_002n, queueName }),
    );
    await deadLettersOf(queueName, 2);
    await waitUntilSettled("lms-redrive");
    await failing.stop();

    const entries = await listDeadLetters(connection, DEAD_LETTER_STREAM);
    const ofQueue = entries.filter((e) => e.originalSubject.endsWith(`.${queueName}`));
    expect(ofQueue.map((e) => [e.eventId, e.reason, e.deliveryCount])).toEqual([
      [first.eventId, "max-deliver", 2],
      [second.eventId, "max-deliver", 2],
    ]);

    // The fixed handler sees each re-driven event once, with its original event id.
    const handled: string[] = [];
    await subscribe({ durableName: "lms-redrive", queueName }, (event) => {
      handled.push(event.id);
    });
    const [firstEntry, secondEntry] = ofQueue;
    await redriveDeadLetter(connection, DEAD_LETTER_STREAM, firstEntry?.sequence ?? 0);
    await pollUntil(
      async () => handled,
      (ids) => ids.length >= 1,
    );
    await waitUntilSettled("lms-redrive");
    expect(handled).toEqual([first.eventId]);
    const left = await listDeadLetters(connection, DEAD_LETTER_STREAM);
    expect(left.map((e) => e.sequence)).not.toContain(firstEntry?.sequence);
    expect(left.map((e) => e.sequence)).toContain(secondEntry?.sequence);
    for (const subscription of running.splice(0)) await subscription.stop();

    // A re-driven copy that fails again goes back to the dead-letter stream, not lost.
    await subscribe({ durableName: "lms-redrive", queueName, maxDeliver: 1 }, () => {
      throw new Error("still broken");
    });
    await redriveDeadLetter(connection, DEAD_LETTER_STREAM, secondEntry?.sequence ?? 0);
    const again = await pollUntil(
      async () =>
        (await listDeadLetters(connection, DEAD_LETTER_STREAM)).filter(
          (e) => e.eventId === second.eventId,
        ),
      (found) => found.length === 1 && found[0]?.sequence !== secondEntry?.sequence,
    );
    expect(again).toHaveLength(1);
    expect(again[0]?.sequence).not.toBe(secondEntry?.sequence);
    expect(again[0]?.error).toBe("still broken");
  });

  it("an event whose dead letter cannot be stored is nak'ed, not terminated: it comes back and is dead-lettered once it can be", async () => {
    // A stream of its own whose dead-letter subjects no stream captures (yet).
    const stream = "GRADECAST_DLQ_DOWN";
    const deadLetterStream = "GRADECAST_DLQ_DOWN_DLQ";
    const jsm = await jetstreamManager(connection);
    await jsm.streams.add({ name: stream, subjects: ["dlqdown.scores.v1.>"] });
    try {
      const subscription = await subscribe(
        {
          stream,
          subjectPrefix: "dlqdown",
          durableName: "lms-dlq-down",
          queueName: "dlq-down-grader",
          backoffMs: [50],
        },
        () => undefined,
      );
      const statuses = collectStatuses(subscription);
      const garbage = new TextEncoder().encode("not a score event");
      const ack = await js.publish("dlqdown.scores.v1.dlq-down-grader", garbage);

      // Terminated after the first failure, it would never come back: the bound ends the wait.
      const failures = () => statuses.filter((s) => s.type === "dead-letter-failed");
      await pollUntil(
        async () => failures().length,
        (n) => n >= 2,
        30_000,
      );
      expect(failures().slice(0, 2)).toEqual([
        expect.objectContaining({ streamSequence: ack.seq, deliveryCount: 1, retryInMs: 50 }),
        expect.objectContaining({ streamSequence: ack.seq, deliveryCount: 2 }),
      ]);
      expect(statuses.some((s) => s.type === "dead-lettered")).toBe(false);

      await jsm.streams.add({ name: deadLetterStream, subjects: ["dlqdown.dlq.v1.>"] });
      const letters = await pollUntil(
        () => readStream(nats.url, deadLetterStream),
        (found) => found.length >= 1,
        30_000,
      );
      expect(letters).toHaveLength(1);
      expect(letters[0]?.subject).toBe("dlqdown.dlq.v1.dlq-down-grader");
      expect(letters[0]?.headers).toMatchObject({
        [DEAD_LETTER_HEADERS.reason]: "decode",
        [DEAD_LETTER_HEADERS.streamSequence]: String(ack.seq),
      });
      expect(Number(letters[0]?.headers[DEAD_LETTER_HEADERS.deliveryCount])).toBeGreaterThan(2);
      expect(Buffer.from(letters[0]?.data ?? [])).toEqual(Buffer.from(garbage));
      const settled = await pollUntil(
        () => jsm.consumers.info(stream, "lms-dlq-down"),
        (info) => info.num_pending === 0 && info.num_ack_pending === 0,
      );
      expect({ pending: settled.num_pending, ackPending: settled.num_ack_pending }).toEqual({
        pending: 0,
        ackPending: 0,
      });
    } finally {
      for (const subscription of running.splice(0)) await subscription.stop();
      await jsm.streams.delete(stream);
      // Missing when the test failed before it was created.
      await jsm.streams.delete(deadLetterStream).catch(() => false);
    }
  });

  it("a garbage payload is dead-lettered with reason decode, and the next valid event is handled", async () => {
    const queueName = "python-grader";
    const received: ScoreEvent[] = [];
    // JetStream's advisory for each terminated message: the dead letter's original only, never a
    // handled event (terminating one would look the same to delivery, but not to the consumer).
    const terminated: number[] = [];
    const advisories = connection.subscribe(
      `$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.${STREAM}.lms-python`,
      {
        callback: (_error, msg) => {
          terminated.push(msg.json<{ stream_seq: number }>().stream_seq);
        },
      },
    );
    await subscribe({ durableName: "lms-python", queueName }, (event) => {
      received.push(event);
    });
    const garbage = new TextEncoder().encode("this is not a protobuf envelope");
    const garbageAck = await js.publish("gradecast.scores.v1.python-grader", garbage);
    const valid = await gradecast.client.submitScore(
      sampleScoreData({ submissionId: 40_001n, queueName }),
    );

    const [letter] = await deadLettersOf(queueName, 1);
    expect(letter?.headers).toMatchObject({
      [DEAD_LETTER_HEADERS.reason]: "decode",
      [DEAD_LETTER_HEADERS.deliveryCount]: "1",
      [DEAD_LETTER_HEADERS.streamSequence]: String(garbageAck.seq),
      "Nats-Msg-Id": `dlq-${STREAM}-${garbageAck.seq}`,
    });
    expect(Buffer.from(letter?.data ?? [])).toEqual(Buffer.from(garbage));
    await pollUntil(
      async () => received.length,
      (n) => n >= 1,
    );
    await waitUntilSettled("lms-python");
    expect(received.map((event) => event.id)).toEqual([valid.eventId]);
    await pollUntil(
      async () => terminated.length,
      (n) => n >= 1,
    );
    await connection.flush();
    advisories.unsubscribe();
    expect(terminated).toEqual([garbageAck.seq]);
  });

  it.each([
    {
      reason: "header-mismatch",
      queueName: "mismatch-grader",
      tamper: (headers: Map<string, string>) => headers.set("ce-id", randomUUID()),
      scoreData: {},
    },
    {
      reason: "validation",
      queueName: "invalid-grader",
      tamper: () => undefined,
      scoreData: { pointsEarned: 11, pointsPossible: 10 },
    },
  ])("an event with a $reason problem is dead-lettered at its first delivery", async (row) => {
    const received: ScoreEvent[] = [];
    await subscribe({ durableName: `lms-${row.queueName}`, queueName: row.queueName }, (event) => {
      received.push(event);
    });
    const eventId = randomUUID();
    const message = encodeScoreEvent(
      {
        eventId,
        time: new Date(),
        scoreData: sampleScoreData({
          submissionId: 45_001n,
          queueName: row.queueName,
          ...row.scoreData,
        }),
        submissionSequence: 1,
      },
      { source: "openedx/gradecast/test", sourcehost: "test-host", sourcelib: "0.1.0" },
      "gradecast",
    );
    const headerMap = new Map(message.headers);
    row.tamper(headerMap);
    const headers = natsHeaders();
    for (const [name, value] of headerMap) headers.set(name, value);
    await js.publish(message.subject, message.payload, { msgID: eventId, headers });

    const [letter] = await deadLettersOf(row.queueName, 1);
    expect(letter?.headers[DEAD_LETTER_HEADERS.reason]).toBe(row.reason);
    expect(letter?.headers[DEAD_LETTER_HEADERS.deliveryCount]).toBe("1");
    expect(ExternalGraderScoreSubmitted.decode(letter?.data ?? new Uint8Array()).metadata?.id).toBe(
      eventId,
    );
    await waitUntilSettled(`lms-${row.queueName}`);
    expect(received).toEqual([]);
  });
});

describe("ephemeral consumers", () => {
  it("without a durable name, an ephemeral consumer delivers stored events and is deleted on stop", async () => {
    const queueName = "ephemeral-grader";
    const submitted = await gradecast.client.submitScore(
      sampleScoreData({ submissionId: 85_001n, queueName }),
    );
    const received: string[] = [];
    const subscription = await subscribe({ queueName }, (event) => {
      received.push(event.id);
    });
    await pollUntil(
      async () => received.length,
      (n) => n >= 1,
    );
    expect(received).toEqual([submitted.eventId]);
    expect((await consumerInfo(subscription.consumerName)).config.durable_name).toBeUndefined();

    await subscription.stop();
    await expect(consumerInfo(subscription.consumerName)).rejects.toMatchObject({
      code: JetStreamApiCodes.ConsumerNotFound,
    });
  });
});

describe("long handlers", () => {
  it("a handler running past ackWaitMs, and the event queued behind it, are not redelivered", async () => {
    const queueName = "slow-grader";
    const calls: Array<[id: string, deliveryCount: number]> = [];
    await subscribe({ durableName: "lms-slow", queueName, ackWaitMs: 600 }, async (event) => {
      calls.push([event.id, event.deliveryCount]);
      if (calls.length === 1) await delay(1_500);
    });
    const first = await gradecast.client.submitScore(
      sampleScoreData({ submissionId: 90_001n, queueName, pointsEarned: 3 }),
    );
    const regrade = await gradecast.client.submitScore(
      sampleScoreData({ submissionId: 90_001n, queueName, pointsEarned: 4 }),
    );

    await pollUntil(
      async () => calls.length,
      (n) => n >= 2,
    );
    await waitUntilSettled("lms-slow");
    expect(calls).toEqual([
      [first.eventId, 1],
      [regrade.eventId, 1],
    ]);
  });
});

describe("consumer trouble", () => {
  it("a durable deleted under a running subscription is recreated and delivery resumes", async () => {
    const queueName = "recreate-grader";
    const durableName = "lms-recreate";
    const received: ScoreEvent[] = [];
    const subscription = await subscribe(
      { durableName, queueName, deliverPolicy: "new" },
      (event) => {
        received.push(event);
      },
    );
    const statuses = collectStatuses(subscription);
    await gradecast.client.submitScore(sampleScoreData({ submissionId: 80_001n, queueName }));
    await pollUntil(
      async () => received.length,
      (n) => n >= 1,
    );

    await (await jetstreamManager(connection)).consumers.delete(STREAM, durableName);
    await pollUntil(
      async () => statuses.map((s) => s.type),
      (types) => types.includes("consume-restarted"),
    );
    expect(statuses.map((s) => s.type)).toEqual(
      expect.arrayContaining(["consumer-missing", "consumer-recreated", "consume-restarted"]),
    );
    const after = await gradecast.client.submitScore(
      sampleScoreData({ submissionId: 80_002n, queueName }),
    );
    await pollUntil(
      async () => received.length,
      (n) => n >= 2,
    );
    expect(received.map((event) => event.id).slice(1)).toEqual([after.eventId]);
    expect((await consumerInfo(durableName)).config.filter_subject).toBe(
      "gradecast.scores.v1.recreate-grader",
    );
    expect(statuses.find((s) => s.type === "consume-restarted")).toMatchObject({
      reason: "consumer-recreated",
    });
    expect(statuses.find((s) => s.type === "consumer-recreated")).toMatchObject({
      consumer: durableName,
    });

    // And again: each deletion is noticed and repaired, not only the first.
    await (await jetstreamManager(connection)).consumers.delete(STREAM, durableName);
    await pollUntil(
      async () => statuses.filter((s) => s.type === "consume-restarted").length,
      (n) => n >= 2,
    );
    const third = await gradecast.client.submitScore(
      sampleScoreData({ submissionId: 80_003n, queueName }),
    );
    await pollUntil(
      async () => received.length,
      (n) => n >= 3,
    );
    expect(received.map((event) => event.id).slice(2)).toEqual([third.eventId]);
  });
});

describe("setup", () => {
  it("a connection whose account has no JetStream is refused, naming the stream and consumer", async () => {
    const dir = mkdtempSync(join(tmpdir(), "gradecast-subscriber-"));
    const config = join(dir, "nats.conf");
    // With accounts configured, an account has JetStream only when it says so.
    writeFileSync(
      config,
      'accounts: { NOJS: { users: [{ user: "lms", password: "lms-pass" }] } }\n',
    );
    const noJs = await startNatsServer({ extraArgs: ["-c", config] });
    const own = await connect({ servers: noJs.url, user: "lms", pass: "lms-pass" });
    try {
      const refusal = await subscribeToScores(
        { connection: own, stream: STREAM, durableName: "lms-nojs", queueName: "any-grader" },
        () => undefined,
      ).catch((error: unknown) => error);
      expect(refusal).toMatchObject({
        name: "ConsumerSetupError",
        stream: STREAM,
        consumer: "lms-nojs",
        message: `consumer lms-nojs on stream ${STREAM}: JetStream does not answer`,
      });
      expect((refusal as Error).cause).toBeInstanceOf(Error);
    } finally {
      await own.close();
      await noJs.cleanup();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a durable that filters another queue is refused, not changed", async () => {
    await subscribe({ durableName: "lms-refuse", queueName: "first-grader" }, () => undefined);
    await expect(
      subscribeToScores(
        { connection, stream: STREAM, durableName: "lms-refuse", queueName: "second-grader" },
        () => undefined,
      ),
    ).rejects.toMatchObject({
      name: "ConsumerSetupError",
      message: expect.stringMatching(/filters/),
    });
    expect((await consumerInfo("lms-refuse")).config.filter_subject).toBe(
      "gradecast.scores.v1.first-grader",
    );
  });

  it("options that cannot work are refused before anything is created", async () => {
    await expect(
      subscribeToScores(
        { connection, stream: STREAM, concurrency: 4, maxAckPending: 2 },
        () => undefined,
      ),
    ).rejects.toMatchObject({ name: "SubscriberOptionsError", option: "maxAckPending" });
  });
});

describe("stopping", () => {
  it("stop waits for a running handler and acks its event before resolving", async () => {
    const queueName = "drain-grader";
    let release: () => void = () => undefined;
    const handlerMayFinish = new Promise<void>((resolve) => {
      release = resolve;
    });
    let started = 0;
    let finished = 0;
    let signal: AbortSignal | undefined;
    const subscription = await subscribe(
      { durableName: "lms-drain", queueName },
      async (_event, context) => {
        signal = context.signal;
        started++;
        await handlerMayFinish;
        finished++;
      },
    );
    await gradecast.client.submitScore(sampleScoreData({ submissionId: 60_001n, queueName }));
    await pollUntil(
      async () => started,
      (n) => n >= 1,
    );

    let isStopped = false;
    const stopping = subscription.stop().then(() => {
      isStopped = true;
    });
    await delay(50);
    expect(isStopped).toBe(false);
    release();
    await stopping;
    expect(finished).toBe(1);
    // A clean stop gave up on no handler.
    expect(signal?.aborted).toBe(false);
    await expect(subscription.closed()).resolves.toBeUndefined();
    const info = await consumerInfo("lms-drain");
    expect({ pending: info.num_pending, ackPending: info.num_ack_pending }).toEqual({
      pending: 0,
      ackPending: 0,
    });
  });

  it("a connection closed under a running subscription ends it with SubscriptionClosedError, aborting its handlers", async () => {
    const own = await connect({ servers: nats.url });
    let signal: AbortSignal | undefined;
    const subscription = await subscribeToScores(
      { connection: own, stream: STREAM, durableName: "lms-closed", queueName: "closed-grader" },
      (_event, context) => {
        signal = context.signal;
        return new Promise<void>(() => undefined);
      },
    );
    await gradecast.client.submitScore(
      sampleScoreData({ submissionId: 60_101n, queueName: "closed-grader" }),
    );
    await pollUntil(
      async () => signal,
      (s) => s !== undefined,
    );
    await own.close();
    const reason = await subscription.closed();
    expect(reason).toMatchObject({
      name: "SubscriptionClosedError",
      message: "the NATS connection was closed under the subscription",
    });
    // The handler still running learns it: nothing it does can be acked any more.
    expect(signal?.aborted).toBe(true);
    expect(signal?.reason).toBe(reason);
    await expect(subscription.stop()).resolves.toBeUndefined();
  });

  it("an aborted signal stops the subscription, at once when it was aborted before", async () => {
    const controller = new AbortController();
    const handled: string[] = [];
    const subscription = await subscribe(
      { durableName: "lms-signal", queueName: "signal-grader", signal: controller.signal },
      (event) => {
        handled.push(event.id);
      },
    );
    // Running until the signal is aborted, not stopped by merely having one.
    const before = await gradecast.client.submitScore(
      sampleScoreData({ submissionId: 60_200n, queueName: "signal-grader" }),
    );
    await pollUntil(
      async () => handled,
      (ids) => ids.includes(before.eventId),
    );
    expect(handled).toEqual([before.eventId]);
    controller.abort();
    await expect(subscription.closed()).resolves.toBeUndefined();
    // Once ended, the subscription no longer listens to the caller's signal.
    expect(getEventListeners(controller.signal, "abort")).toHaveLength(0);
    const earlySignal = AbortSignal.abort();
    const early = await subscribe(
      { durableName: "lms-signal-early", queueName: "signal-grader", signal: earlySignal },
      () => undefined,
    );
    await expect(early.closed()).resolves.toBeUndefined();
    expect(getEventListeners(earlySignal, "abort")).toHaveLength(0);
    // Stopped means no longer consuming: a new event waits in the durable.
    await gradecast.client.submitScore(
      sampleScoreData({ submissionId: 60_201n, queueName: "signal-grader" }),
    );
    const info = await pollUntil(
      () => consumerInfo("lms-signal"),
      (i) => i.num_pending >= 1,
    );
    expect({ pending: info.num_pending, ackPending: info.num_ack_pending }).toEqual({
      pending: 1,
      ackPending: 0,
    });
  });

  it("leaves nothing running: a process that stopped its subscription and closed its connection ends", async () => {
    const queueName = "exit-grader";
    await gradecast.client.submitScore(sampleScoreData({ submissionId: 60_301n, queueName }));
    const startedAt = performance.now();
    // With a 600 s stopTimeoutMs, a stop that left its own deadline timer running would hold
    // the process for ten minutes; the child gets 60 s.
    const run = await runScript(
      "test/helpers/subscriber-exit.ts",
      [nats.url, STREAM, queueName, "lms-exit"],
      { timeoutMs: 60_000, killSignal: "SIGKILL" },
    );
    expect({ code: run.code, signal: run.signal, stderr: run.stderr }).toEqual({
      code: 0,
      signal: null,
      stderr: "",
    });
    expect(run.stdout.trim()).toBe("stopped after 1 event(s)");
    expect(performance.now() - startedAt).toBeLessThan(60_000);
  });

  it("stop gives up on a stuck handler after stopTimeoutMs, aborts its signal and rejects", async () => {
    const queueName = "stuck-grader";
    let signal: AbortSignal | undefined;
    const subscription = await subscribe(
      { durableName: "lms-stuck", queueName, stopTimeoutMs: 200 },
      (_event, context) => {
        signal = context.signal;
        return new Promise<void>(() => undefined);
      },
    );
    await gradecast.client.submitScore(sampleScoreData({ submissionId: 70_001n, queueName }));
    // A regrade of the same submission, held behind the stuck event and never started.
    const waiting = await gradecast.client.submitScore(
      sampleScoreData({ submissionId: 70_001n, queueName, pointsEarned: 9 }),
    );
    await pollUntil(
      async () => signal,
      (s) => s !== undefined,
    );
    await pollUntil(
      () => consumerInfo("lms-stuck"),
      (i) => i.num_ack_pending === 2,
    );

    await expect(subscription.stop()).rejects.toBeInstanceOf(SubscriptionStopTimeoutError);
    expect(signal?.aborted).toBe(true);
    await expect(subscription.closed()).resolves.toBeInstanceOf(SubscriptionStopTimeoutError);
    // The waiting event was given back at once (nak'ed, never terminated): the next
    // subscription on the durable gets it without waiting out ackWaitMs (30 s).
    const next: string[] = [];
    await subscribe({ durableName: "lms-stuck", queueName }, (event) => {
      next.push(event.id);
    });
    await pollUntil(
      async () => next,
      (ids) => ids.includes(waiting.eventId),
      20_000,
    );
    expect(next).toEqual([waiting.eventId]);
  });
});
