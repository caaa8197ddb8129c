// What a running subscription does when JetStream misbehaves under it: a stalled server, a
// stream deleted and created again, a durable lost while the connection was down, a durable
// whose limits refuse the subscriber's pulls. Each test has its own stream (and subject
// prefix) on a nats-server of this file's own, which the stall test pauses.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  AckPolicy,
  type JetStreamClient,
  type JetStreamManager,
  jetstream,
  jetstreamManager,
} from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  type ScoreEvent,
  type ScoreSubscription,
  type SubscribeToScoresOptions,
  type SubscriptionStatus,
  subscribeToScores,
} from "../../src/subscriber/index.js";
import { sampleScoreData } from "../helpers/contract-fixtures.js";
import { pollUntil } from "../helpers/gradecast.js";
import { type NatsServerHandle, startNatsServer } from "../helpers/nats-server.js";
import { publishScoreEvent } from "../helpers/score-events.js";
import { startTcpProxy, type TcpProxy } from "../helpers/tcp-proxy.js";

/**
 * Short enough that missed heartbeats add up within seconds (nats.js reports from the 2nd
 * missed one on, the subscriber starts delivery over at the 4th), long enough that a busy
 * machine does not miss one by itself.
 */
const IDLE_HEARTBEAT_MS = 1_000;

let nats: NatsServerHandle;
let connection: NatsConnection;
let js: JetStreamClient;
let jsm: JetStreamManager;
/** Stopped after each test, even a failed one: subscriptions first, then their connections. */
const subscriptions: ScoreSubscription[] = [];
const connections: NatsConnection[] = [];
const proxies: TcpProxy[] = [];

beforeAll(async () => {
  nats = await startNatsServer();
  connection = await connect({ servers: nats.url });
  js = jetstream(connection);
  jsm = await jetstreamManager(connection);
});

afterEach(async () => {
  nats.resume();
  await Promise.allSettled(subscriptions.splice(0).map((subscription) => subscription.stop()));
  await Promise.allSettled(connections.splice(0).map((other) => other.close()));
  await Promise.allSettled(proxies.splice(0).map((proxy) => proxy.close()));
});

afterAll(async () => {
  await connection?.close();
  await nats?.cleanup();
});

/** A stream of its own for one test: `TROUBLE_<PREFIX>` holding `<prefix>.scores.v1.>`. */
async function addScoreStream(subjectPrefix: string): Promise<string> {
  const stream = `TROUBLE_${subjectPrefix.toUpperCase()}`;
  await jsm.streams.add({ name: stream, subjects: [`${subjectPrefix}.scores.v1.>`] });
  return stream;
}

/** A status and when it arrived. */
interface Arrived {
  readonly status: SubscriptionStatus;
  readonly atMs: number;
}

/** A subscription that keeps every event its handler got and every status it reported. */
interface Watched {
  readonly subscription: ScoreSubscription;
  readonly received: ScoreEvent[];
  readonly arrived: Arrived[];
  /** Resolves once status() has ended (the subscription stopped): every status is in. */
  readonly statusesEnded: Promise<void>;
}

async function subscribe(options: SubscribeToScoresOptions): Promise<Watched> {
  const received: ScoreEvent[] = [];
  const subscription = await subscribeToScores(options, (event) => {
    received.push(event);
  });
  subscriptions.push(subscription);
  const arrived: Arrived[] = [];
  const statuses = subscription.status();
  const statusesEnded = (async () => {
    for await (const status of statuses) arrived.push({ status, atMs: Date.now() });
  })();
  return { subscription, received, arrived, statusesEnded };
}

/**
 * A stream of its own for one test, named after `name` (also its subject prefix), and a
 * subscription to it: durable `lms-<name>`, `idleHeartbeatMs` 1 s, unless `overrides` say else.
 */
async function subscribeOwn(
  name: string,
  overrides: Partial<SubscribeToScoresOptions> = {},
): Promise<Watched & { stream: string; subjectPrefix: string }> {
  const stream = await addScoreStream(name);
  const watched = await subscribe({
    connection,
    stream,
    subjectPrefix: name,
    durableName: `lms-${name}`,
    idleHeartbeatMs: IDLE_HEARTBEAT_MS,
    ...overrides,
  });
  return { ...watched, stream, subjectPrefix: name };
}

function statusesOf(watched: Watched): SubscriptionStatus[] {
  return watched.arrived.map((arrival) => arrival.status);
}

/** Waits until `isDone` holds for the statuses so far, and returns them. */
function statusesUntil(
  watched: Watched,
  isDone: (statuses: SubscriptionStatus[]) => boolean,
): Promise<SubscriptionStatus[]> {
  return pollUntil(async () => statusesOf(watched), isDone, 60_000, 25);
}

/** Publishes one event of `queueName` and waits until the subscription handled it. */
async function deliverOne(
  watched: Watched,
  subjectPrefix: string,
  queueName: string,
  submissionId: bigint,
): Promise<string> {
  const { eventId } = await publishScoreEvent(
    js,
    sampleScoreData({ submissionId, queueName }),
    1,
    subjectPrefix,
  );
  await pollUntil(
    async () => watched.received.map((event) => event.id),
    (ids) => ids.includes(eventId),
  );
  expect(watched.received.map((event) => event.id)).toContain(eventId);
  return eventId;
}

const ofType =
  <T extends SubscriptionStatus["type"]>(type: T) =>
  (status: SubscriptionStatus): status is Extract<SubscriptionStatus, { type: T }> =>
    status.type === type;

/** The missed heartbeat after which the subscriber starts delivery over. */
const isFourthMissedHeartbeat = (status: SubscriptionStatus): boolean =>
  status.type === "heartbeats-missed" && status.count === 4;

describe("JetStream trouble under a running subscription", () => {
  it("a stalled server is noticed by its missed heartbeats, and delivery starts over once it answers", async () => {
    const watched = await subscribeOwn("stall");
    const { subjectPrefix } = watched;
    await deliverOne(watched, subjectPrefix, "stall-grader", 1n);

    nats.pause();
    await statusesUntil(watched, (statuses) => statuses.some(isFourthMissedHeartbeat));
    nats.resume();
    await statusesUntil(watched, (statuses) => statuses.some(ofType("consume-restarted")));

    const statuses = statusesOf(watched);
    const restartedAt = statuses.findIndex(ofType("consume-restarted"));
    // Counted from the 2nd missed heartbeat on; the 4th starts delivery over, so no 5th.
    const countsBefore = statuses
      .slice(0, restartedAt)
      .filter(ofType("heartbeats-missed"))
      .map((status) => status.count);
    expect(countsBefore.slice(-3)).toEqual([2, 3, 4]);
    expect(statuses[restartedAt]).toStrictEqual({
      type: "consume-restarted",
      reason: "heartbeats-missed",
    });
    const afterStall = await deliverOne(watched, subjectPrefix, "stall-grader", 2n);
    expect(watched.received.map((event) => event.id).slice(1)).toEqual([afterStall]);
  });

  it("stop() while delivery is starting over against a stalled server ends without starting it", async () => {
    const watched = await subscribeOwn("stallstop", { stopTimeoutMs: 10_000 });
    nats.pause();
    await statusesUntil(watched, (statuses) => statuses.some(isFourthMissedHeartbeat));
    // Delivery is starting over now, its consumer check waiting on the paused server; the
    // server answers once stop() has begun, and the new delivery must be closed, not run.
    const stopping = watched.subscription.stop();
    nats.resume();

    await expect(stopping).resolves.toBeUndefined();
    await expect(watched.subscription.closed()).resolves.toBeUndefined();
    expect(statusesOf(watched).some(ofType("consume-restarted"))).toBe(false);
  });

  it("a stream deleted under a subscription is reported; restarts wait longer each time and deliver again once it is back", async () => {
    const watched = await subscribeOwn("gone");
    const { stream, subjectPrefix } = watched;
    await deliverOne(watched, subjectPrefix, "gone-grader", 1n);

    await jsm.streams.delete(stream);
    // Delivery starts over after the 4th missed heartbeat; each attempt fails while the
    // stream is away. Two of them, then the stream comes back.
    const restartFailures = () => {
      const lastMissed = watched.arrived.findIndex(({ status }) => isFourthMissedHeartbeat(status));
      if (lastMissed === -1) return [];
      return watched.arrived
        .slice(lastMissed)
        .filter(({ status }) => status.type === "consumer-setup-failed");
    };
    await pollUntil(
      async () => restartFailures(),
      (failures) => failures.length >= 2,
      60_000,
      25,
    );
    await addScoreStream(subjectPrefix);
    await statusesUntil(watched, (statuses) => statuses.some(ofType("consume-restarted")));

    const statuses = statusesOf(watched);
    const notFound = `stream ${stream} does not exist (gradecast creates it when it starts)`;
    // The server's "consumer deleted" on the open pulls, and the attempts to recreate it, all
    // before the first missed heartbeat; then nats.js's own check of the consumer.
    const beforeHeartbeats = statuses.slice(0, statuses.findIndex(ofType("heartbeats-missed")));
    expect(beforeHeartbeats.filter(ofType("consumer-missing"))).toContainEqual({
      type: "consumer-missing",
      consumer: "lms-gone",
      description: "consumer deleted",
    });
    const recreateFailures = beforeHeartbeats.filter(ofType("consumer-setup-failed"));
    expect(recreateFailures.length).toBeGreaterThanOrEqual(1);
    for (const failure of recreateFailures) {
      expect(failure.error.message).toBe(`consumer lms-gone on stream ${stream}: ${notFound}`);
    }
    expect(statuses).toContainEqual({
      type: "jetstream-issue",
      issue: "stream-not-found",
      description: `stream ${stream} not found`,
    });
    const failures = restartFailures();
    for (const { status } of failures) {
      expect(status.type === "consumer-setup-failed" && status.error.message).toBe(
        `consumer lms-gone on stream ${stream}: ${notFound}`,
      );
    }
    // Waits of 250 ms, then 1 s, between attempts (timers never fire early).
    const restarted = watched.arrived.find(({ status }) => status.type === "consume-restarted");
    const [first, second] = failures;
    expect((second?.atMs ?? 0) - (first?.atMs ?? 0)).toBeGreaterThanOrEqual(250);
    expect((restarted?.atMs ?? 0) - (second?.atMs ?? 0)).toBeGreaterThanOrEqual(1_000);
    expect(restarted?.status).toEqual({ type: "consume-restarted", reason: "heartbeats-missed" });

    const afterReturn = await deliverOne(watched, subjectPrefix, "gone-grader", 2n);
    expect(watched.received.map((event) => event.id).slice(1)).toEqual([afterReturn]);
  });

  it("stop() while delivery waits to start over ends at once, without starting it", async () => {
    // Below the 5 s wait before the 4th attempt: a stop that waited it out would time out.
    const watched = await subscribeOwn("gonestop", { stopTimeoutMs: 2_000 });
    await jsm.streams.delete(watched.stream);
    await statusesUntil(
      watched,
      (statuses) => statuses.filter(ofType("consumer-setup-failed")).length >= 4,
    );

    await expect(watched.subscription.stop()).resolves.toBeUndefined();
    await expect(watched.subscription.closed()).resolves.toBeUndefined();
    expect(statusesOf(watched).some(ofType("consume-restarted"))).toBe(false);
  });

  it("a durable lost while the connection was down is recreated after the reconnect", async () => {
    const proxy = await startTcpProxy({ host: "127.0.0.1", port: nats.port });
    proxies.push(proxy);
    const viaProxy = await connect({
      servers: `nats://127.0.0.1:${proxy.port}`,
      reconnectTimeWait: 100,
      maxReconnectAttempts: -1,
    });
    connections.push(viaProxy);
    const watched = await subscribeOwn("vanish", {
      connection: viaProxy,
      idleHeartbeatMs: undefined,
    });
    const { stream, subjectPrefix } = watched;
    const first = await deliverOne(watched, subjectPrefix, "vanish-grader", 1n);

    await proxy.cut();
    await jsm.consumers.delete(stream, "lms-vanish");
    await proxy.restore();
    await statusesUntil(watched, (statuses) => statuses.some(ofType("consume-restarted")));

    expect(statusesOf(watched)).toEqual([
      {
        type: "consumer-missing",
        consumer: "lms-vanish",
        description: "consumer not found (attempt 1)",
      },
      { type: "consumer-recreated", consumer: "lms-vanish" },
      { type: "consume-restarted", reason: "consumer-recreated" },
    ]);
    const afterReconnect = await deliverOne(watched, subjectPrefix, "vanish-grader", 2n);
    // The new durable starts where its deliver policy says (all): the first event comes again.
    expect(watched.received.map((event) => event.id)).toEqual([first, first, afterReconnect]);
    // A clean stop: the flush is answered, nothing more to report.
    await watched.subscription.stop();
    await watched.statusesEnded;
    expect(statusesOf(watched)).toHaveLength(3);
  });

  it("a durable whose limits refuse the subscriber's pulls is reported as exceeded-limits", async () => {
    const subjectPrefix = "limited";
    const stream = await addScoreStream(subjectPrefix);
    // An operator's durable that allows one message per pull; the subscriber asks for 4.
    await jsm.consumers.add(stream, {
      durable_name: "lms-limited",
      ack_policy: AckPolicy.Explicit,
      filter_subject: `${subjectPrefix}.scores.v1.*`,
      max_batch: 1,
    });
    const watched = await subscribe({
      connection,
      stream,
      subjectPrefix,
      durableName: "lms-limited",
    });
    await statusesUntil(watched, (statuses) => statuses.some(ofType("jetstream-issue")));

    expect(statusesOf(watched)).toEqual([
      {
        type: "jetstream-issue",
        issue: "exceeded-limits",
        description: expect.stringMatching(/^Exceeded MaxRequestBatch of 1$/i),
      },
    ]);
  });

  it("a pull inbox the server forbids fails delivery each time: each restart says why, and the waits grow", async () => {
    const dir = mkdtempSync(join(tmpdir(), "gradecast-guarded-"));
    const config = join(dir, "nats.conf");
    // nats.js names a pull's inbox `_INBOX.<id>.<n>`, n counting the consume()s of one
    // consumer object: 1 for each of the subscriber's, which gets the consumer afresh each
    // time. The JetStream API answers on `_INBOX.<id>.<random token>`, still allowed.
    writeFileSync(
      config,
      [
        "jetstream: enabled",
        "authorization: {",
        '  users: [{ user: "lms", password: "lms-pass",',
        '    permissions: { publish: ">", subscribe: { deny: ["_INBOX.*.1"] } } }]',
        "}",
        "",
      ].join("\n"),
    );
    const guarded = await startNatsServer({ extraArgs: ["-c", config] });
    try {
      const lms = await connect({ servers: guarded.url, user: "lms", pass: "lms-pass" });
      connections.push(lms);
      const stream = "TROUBLE_GUARDED";
      await (await jetstreamManager(lms)).streams.add({
        name: stream,
        subjects: ["guarded.scores.v1.>"],
      });
      const startedAtMs = Date.now();
      const watched = await subscribe({
        connection: lms,
        stream,
        subjectPrefix: "guarded",
        durableName: "lms-guarded",
      });
      await statusesUntil(
        watched,
        (statuses) => statuses.filter(ofType("consume-restarted")).length >= 2,
      );

      const restarts = watched.arrived.filter(({ status }) => status.type === "consume-restarted");
      for (const { status } of restarts) {
        expect(status).toMatchObject({
          type: "consume-restarted",
          reason: "consume-failed",
          error: expect.objectContaining({
            message: expect.stringMatching(/permissions violation for subscription/i),
          }),
        });
      }
      // 250 ms before the first attempt, 1 s before the second (timers never fire early).
      const [first, second] = restarts;
      expect((first?.atMs ?? 0) - startedAtMs).toBeGreaterThanOrEqual(250);
      expect((second?.atMs ?? 0) - (first?.atMs ?? 0)).toBeGreaterThanOrEqual(1_000);
      await watched.subscription.stop();
    } finally {
      await guarded.cleanup();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("stop() with NATS down reports the flush and the ephemeral consumer's deletion it could not do", async () => {
    // A server of its own, stopped for good.
    const doomed = await startNatsServer();
    try {
      const lms = await connect({
        servers: doomed.url,
        reconnectTimeWait: 100,
        maxReconnectAttempts: -1,
      });
      connections.push(lms);
      const subjectPrefix = "down";
      await (await jetstreamManager(lms)).streams.add({
        name: "TROUBLE_DOWN",
        subjects: [`${subjectPrefix}.scores.v1.>`],
      });
      const watched = await subscribe({ connection: lms, stream: "TROUBLE_DOWN", subjectPrefix });
      await doomed.stop();

      await expect(watched.subscription.stop()).resolves.toBeUndefined();
      expect(statusesOf(watched)).toEqual([
        { type: "stop-incomplete", step: "flush", error: expect.any(Error) },
        { type: "stop-incomplete", step: "delete-consumer", error: expect.any(Error) },
      ]);
      await expect(watched.subscription.closed()).resolves.toBeUndefined();
    } finally {
      await doomed.cleanup();
    }
  });

  it("stop() against a stalled server ends anyway, reporting the flush and deletion NATS did not answer", async () => {
    const watched = await subscribeOwn("stalledstop", {
      durableName: undefined,
      idleHeartbeatMs: undefined,
      stopTimeoutMs: 500,
    });
    nats.pause();

    // Each step gets at least 1 s; without a bound, the flush waits for the client to give
    // up on the server's pings, minutes later.
    await expect(watched.subscription.stop()).resolves.toBeUndefined();
    const noAnswer = expect.objectContaining({ message: "NATS did not answer within 1000 ms" });
    expect(statusesOf(watched)).toEqual([
      { type: "stop-incomplete", step: "flush", error: noAnswer },
      { type: "stop-incomplete", step: "delete-consumer", error: noAnswer },
    ]);
  });
});
