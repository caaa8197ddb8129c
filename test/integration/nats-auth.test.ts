import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NatsAuth } from "../../src/events/index.js";
import { sampleScoreData } from "../helpers/contract-fixtures.js";
import {
  pollUntil,
  sqlitePath,
  startGradecast,
  storeCounts,
  streamReadyWithin,
  type TestGradecast,
} from "../helpers/gradecast.js";
import { type NatsServerHandle, startNatsServer } from "../helpers/nats-server.js";

const USER = "gradecast";
const PASSWORD = "s3cret-for-tests";
const STREAM_READY_DEADLINE_MS = 10_000;

let nats: NatsServerHandle;
const started: TestGradecast[] = [];

beforeAll(async () => {
  nats = await startNatsServer({ extraArgs: ["--user", USER, "--pass", PASSWORD] });
});

afterAll(async () => {
  for (const gradecast of started) await gradecast.cleanup();
  await nats?.cleanup();
});

async function startWithAuth(auth: NatsAuth, streamName: string): Promise<TestGradecast> {
  const gradecast = await startGradecast(nats.url, {
    nats: { servers: nats.url, reconnectTimeWaitMs: 200, connectTimeoutMs: 1_000, auth },
    stream: {
      name: streamName,
      deadLetterName: `${streamName}_DLQ`,
      subjectPrefix: "gradecast",
      duplicateWindowMs: 120_000,
      maxAgeMs: 0,
      maxBytes: -1,
      replicas: 1,
    },
  });
  started.push(gradecast);
  return gradecast;
}

async function streamMessageCount(streamName: string): Promise<number> {
  const nc = await connect({ servers: nats.url, user: USER, pass: PASSWORD });
  try {
    const info = await (await jetstreamManager(nc)).streams.info(streamName);
    return info.state.messages;
  } finally {
    await nc.close();
  }
}

describe("NATS user and password", () => {
  it("with the right password, sets up the stream and publishes the score", async () => {
    const gradecast = await startWithAuth(
      { kind: "user-password", user: USER, password: PASSWORD },
      "GRADECAST_AUTH_OK",
    );
    expect(await streamReadyWithin(gradecast, STREAM_READY_DEADLINE_MS)).toBe("ready");

    const response = await gradecast.client.submitScore(sampleScoreData({ submissionId: 9101n }));
    expect(response).toMatchObject({ replayed: false, published: true });
    expect(await streamMessageCount("GRADECAST_AUTH_OK")).toBe(1);
    // The published mark reaches the store shortly after the answer.
    const counts = await pollUntil(
      async () => storeCounts(sqlitePath(gradecast.config)),
      (now) => now.pending === 0,
    );
    expect(counts).toMatchObject({ scores: 1, pending: 0 });
  });

  it("with a wrong password, never gets ready and keeps the accepted score in the outbox", async () => {
    const gradecast = await startWithAuth(
      { kind: "user-password", user: USER, password: "wrong" },
      "GRADECAST_AUTH_BAD",
    );
    // nats-server logs each refused login; two mean the link has tried, and tried again.
    const refusedLogins = await pollUntil(
      async () => nats.output().split("authentication error").length - 1,
      (count) => count >= 2,
    );
    expect(refusedLogins).toBeGreaterThanOrEqual(2);
    expect(await streamReadyWithin(gradecast, 0)).toBe("timed-out");
    expect(gradecast.server.health.isServing).toBe(false);

    const response = await gradecast.client.submitScore(sampleScoreData({ submissionId: 9201n }));
    expect(response).toMatchObject({ replayed: false, published: false });
    expect(storeCounts(sqlitePath(gradecast.config))).toMatchObject({ scores: 1, pending: 1 });
    await expect(streamMessageCount("GRADECAST_AUTH_BAD")).rejects.toThrow(/stream not found/);
  });
});
