import type { NatsConnection } from "@nats-io/nats-core";
import { describe, expect, it } from "vitest";
import {
  type Backoff,
  backoffDelayMs,
  exponentialBackoffMs,
  makeSubscriberOptions,
  SUBSCRIBER_DEFAULTS,
  SubscriberOptionsError,
  type SubscribeToScoresOptions,
} from "../../src/subscriber/index.js";

/**
 * Option checks only ask the connection whether it is closed, so a stand-in with `isClosed()`
 * is enough here; subscriptions over a real connection are in test/integration.
 */
function fakeConnection(isClosed = false): NatsConnection {
  return { isClosed: () => isClosed } as unknown as NatsConnection;
}

const connection = fakeConnection();

describe("makeSubscriberOptions", () => {
  it.each<[string, Omit<SubscribeToScoresOptions, "connection">, number, number]>([
    ["the defaults", {}, 10_000, 4],
    ["a 9 s ack wait", { ackWaitMs: 9_000 }, 3_000, 4],
    ["a 10 ms ack wait (rounded down)", { ackWaitMs: 10 }, 3, 4],
    ["a 2 ms ack wait (at least 1 ms)", { ackWaitMs: 2 }, 1, 4],
    ["8 handlers", { concurrency: 8 }, 10_000, 32],
    [
      "explicit values",
      { ackWaitMs: 5_000, workingIntervalMs: 4_000, concurrency: 2, maxAckPending: 2 },
      4_000,
      2,
    ],
  ])("with %s derives workingIntervalMs %i and maxAckPending %i", (_, given, interval, pending) => {
    const options = makeSubscriberOptions({ connection, ...given });
    expect(options.workingIntervalMs).toBe(interval);
    expect(options.maxAckPending).toBe(pending);
  });

  it("fills in every default, treats undefined as unset, and returns a frozen object", () => {
    const options = makeSubscriberOptions({ connection, stream: undefined, maxDeliver: undefined });
    expect(options).toEqual({
      ...SUBSCRIBER_DEFAULTS,
      connection,
      workingIntervalMs: 10_000,
      maxAckPending: 4,
    });
    expect(options.backoffMs).toBe(exponentialBackoffMs);
    expect(Object.isFrozen(options)).toBe(true);
  });

  it("keeps the defaults frozen and unchanged by overrides", () => {
    const before = { ...SUBSCRIBER_DEFAULTS };
    makeSubscriberOptions({ connection, stream: "OTHER", concurrency: 3, ackWaitMs: 1_000 });
    expect(Object.isFrozen(SUBSCRIBER_DEFAULTS)).toBe(true);
    expect({ ...SUBSCRIBER_DEFAULTS }).toEqual(before);
    expect(SUBSCRIBER_DEFAULTS).toMatchObject({
      stream: "GRADECAST_SCORES",
      subjectPrefix: "gradecast",
      ackWaitMs: 30_000,
      maxDeliver: 5,
      concurrency: 1,
      idleHeartbeatMs: 15_000,
    });
  });

  it.each([500, 30_000])("accepts an idle heartbeat of %i ms, the ends of its range", (ms) => {
    expect(makeSubscriberOptions({ connection, idleHeartbeatMs: ms }).idleHeartbeatMs).toBe(ms);
  });

  it.each<[string, Partial<SubscribeToScoresOptions>, string, RegExp]>([
    ["a closed connection", { connection: fakeConnection(true) }, "connection", /is closed/],
    ["a stream name with '.'", { stream: "bad.name" }, "stream", /stream name/],
    ["a stream name with a space", { stream: "BAD NAME" }, "stream", /stream name/],
    ["a wildcard subject prefix", { subjectPrefix: "a.*" }, "subjectPrefix", /wildcards/],
    ["a durable name with '>'", { durableName: "lms>" }, "durableName", /consumer name/],
    ["a durable name with '.'", { durableName: "lms.main" }, "durableName", /consumer name/],
    [
      "a queue name with a leading space",
      { queueName: " python" },
      "queueName",
      /not a queue name/,
    ],
    ["an empty queue name", { queueName: "" }, "queueName", /not a queue name/],
    [
      "a deliver policy that is no Date",
      { deliverPolicy: { startTime: new Date("never") } },
      "deliverPolicy",
      /startTime/,
    ],
    ["an ack wait of 0", { ackWaitMs: 0 }, "ackWaitMs", />= 1, got 0/],
    ["a maxDeliver of 0", { maxDeliver: 0 }, "maxDeliver", />= 1, got 0/],
    ["an empty backoff list", { backoffMs: [] }, "backoffMs", /non-empty/],
    ["a negative backoff entry", { backoffMs: [100, -1] }, "backoffMs", /got -1/],
    ["a concurrency of 0", { concurrency: 0 }, "concurrency", />= 1, got 0/],
    ["a fractional concurrency", { concurrency: 1.5 }, "concurrency", /whole number/],
    [
      "a working interval equal to the ack wait",
      { ackWaitMs: 1_000, workingIntervalMs: 1_000 },
      "workingIntervalMs",
      /below ackWaitMs \(1000\)/,
    ],
    [
      "a working interval above the ack wait",
      { ackWaitMs: 1_000, workingIntervalMs: 5_000 },
      "workingIntervalMs",
      /below ackWaitMs/,
    ],
    [
      "maxAckPending below concurrency",
      { concurrency: 4, maxAckPending: 3 },
      "maxAckPending",
      />= 4, got 3/,
    ],
    ["a negative stop timeout", { stopTimeoutMs: -1 }, "stopTimeoutMs", />= 0, got -1/],
    [
      "an idle heartbeat below 500 ms",
      { idleHeartbeatMs: 499 },
      "idleHeartbeatMs",
      />= 500, got 499/,
    ],
    [
      "an idle heartbeat above 30 s",
      { idleHeartbeatMs: 30_001 },
      "idleHeartbeatMs",
      /at most 30000, got 30001/,
    ],
  ])("rejects %s, naming %s", (_, bad, option, problem) => {
    let caught: unknown;
    try {
      makeSubscriberOptions({ connection, ...bad });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(SubscriberOptionsError);
    const error = caught as SubscriberOptionsError;
    expect(error.option).toBe(option);
    expect(error.code).toBe("invalid_argument");
    expect(error.message).toContain(`subscriber option ${option} `);
    expect(error.message).toMatch(problem);
  });

  it("rejects a missing connection", () => {
    expect(() => makeSubscriberOptions({} as unknown as SubscribeToScoresOptions)).toThrowError(
      expect.objectContaining({ option: "connection" }),
    );
  });
});

describe("backoffDelayMs", () => {
  it.each<[Backoff, number, number]>([
    [[100, 300, 900], 1, 100],
    [[100, 300, 900], 2, 300],
    [[100, 300, 900], 3, 900],
    [[100, 300, 900], 4, 900],
    [[100, 300, 900], 50, 900],
    [[100, 300, 900], 0, 100],
    [[250], 7, 250],
    [[12.6], 1, 13],
  ])("reads %j at delivery %i as %i ms (the last entry repeats)", (list, delivery, ms) => {
    expect(backoffDelayMs(list, delivery)).toBe(ms);
  });

  it.each<[number, number]>([
    [0, 1_000],
    [1, 1_000],
    [2, 2_000],
    [3, 4_000],
    [4, 8_000],
    [5, 16_000],
    [6, 32_000],
    [7, 60_000],
    [8, 60_000],
    [1_000, 60_000],
  ])("by default waits %i -> %i ms: 1 s doubling, capped at 60 s", (delivery, ms) => {
    expect(exponentialBackoffMs(delivery)).toBe(ms);
    expect(backoffDelayMs(SUBSCRIBER_DEFAULTS.backoffMs, delivery)).toBe(ms);
  });

  it.each<[string, Backoff, number]>([
    ["a negative delay", () => -5, 0],
    ["NaN", () => Number.NaN, 0],
    ["Infinity", () => Number.POSITIVE_INFINITY, 0],
    ["a fraction", () => 99.5, 100],
  ])("turns %s from a backoff function into whole ms >= 0", (_, backoff, ms) => {
    expect(backoffDelayMs(backoff, 1)).toBe(ms);
  });
});
