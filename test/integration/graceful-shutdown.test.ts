import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { status } from "@grpc/grpc-js";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createScoreClient, type ScoreClient } from "../../src/client/index.js";
import type { ServeConfig } from "../../src/server/index.js";
import { PostgresStore } from "../../src/store/index.js";
import { sampleScoreData } from "../helpers/contract-fixtures.js";
import {
  pollUntil,
  readStream,
  sqlitePath,
  startGradecast,
  storeCounts,
  type TestGradecast,
} from "../helpers/gradecast.js";
import { type GradecastProcess, startGradecastProcess } from "../helpers/gradecast-process.js";
import { type NatsServerHandle, startNatsServer } from "../helpers/nats-server.js";
import { createTestDatabase, type TestDatabase } from "../helpers/postgres.js";

// What SIGTERM and SIGINT promise (README, "Shutdown"): in-flight calls finish, forced after half
// of --shutdown-timeout; the relay gets the rest to publish what is pending; what it cannot
// publish stays in the outbox; a second signal exits at once with code 1.

/** Bounds the exit of a child once nothing holds its shutdown any more. */
const EXIT_TIMEOUT_MS = 60_000;

let nats: NatsServerHandle;
let dir: string;
const children: GradecastProcess[] = [];
const clients: ScoreClient[] = [];
const servers: TestGradecast[] = [];

beforeAll(async () => {
  nats = await startNatsServer();
  dir = await mkdtemp(join(tmpdir(), "gradecast-shutdown-"));
});

afterEach(async () => {
  nats.resume();
  for (const client of clients.splice(0)) client.close();
  // Whatever a failed test left running: kill9 of an exited child just returns its status.
  await Promise.all(children.splice(0).map((child) => child.kill9()));
  for (const server of servers.splice(0)) await server.cleanup();
});

afterAll(async () => {
  await nats?.cleanup();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** A stream of its own per test: they share one nats-server. */
function streamNamed(name: string): ServeConfig["stream"] {
  return {
    name,
    deadLetterName: `${name}_DLQ`,
    subjectPrefix: name.toLowerCase(),
    duplicateWindowMs: 120_000,
    maxAgeMs: 0,
    maxBytes: -1,
    replicas: 1,
  };
}

async function startChild(stream: string, extraArgs: readonly string[]) {
  const dataDir = join(dir, stream);
  const child = await startGradecastProcess({
    natsUrl: nats.url,
    dataDir,
    stream,
    // info: the test reads "signal received" from the log.
    extraArgs: [...extraArgs, "--log-level", "info"],
  });
  children.push(child);
  const client = createScoreClient(child.address, { deadlineMs: 300_000 });
  clients.push(client);
  return { child, client, storePath: join(dataDir, "gradecast.sqlite") };
}

/**
 * Pauses NATS and starts a SubmitScore that then waits for its publish ack (up to
 * --publish-wait); resolves once the score is committed, i.e. the call is in the server.
 */
async function startCallWaitingOnNats(client: ScoreClient, storePath: string) {
  nats.pause();
  const call = client.submitScore(sampleScoreData({ submissionId: 5_001n })).then(
    (response) => ({ response, endedAtMs: performance.now() }),
    (error: { code?: number }) => ({ error, endedAtMs: performance.now() }),
  );
  const committed = await pollUntil(
    async () => storeCounts(storePath).scores,
    (scores) => scores === 1,
  );
  expect(committed).toBe(1);
  // Wrapped: an async function returning the promise itself would wait for the call.
  return { call };
}

/** Waits until the child has logged that it took `signal`. */
async function signalTaken(child: GradecastProcess, signal: NodeJS.Signals): Promise<void> {
  const logged = await pollUntil(
    async () => child.output(),
    (output) => output.includes(`"signal":"${signal}","msg":"signal received"`),
  );
  expect(logged).toContain(`"signal":"${signal}","msg":"signal received"`);
}

/** Resolves with the exit, or rejects when the child has not exited within `timeoutMs`. */
async function exitWithin(child: GradecastProcess, timeoutMs: number) {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`no exit within ${timeoutMs} ms:\n${child.output()}`)),
      timeoutMs,
    );
  });
  try {
    return await Promise.race([child.exited, timedOut]);
  } finally {
    clearTimeout(timer);
  }
}

describe("gradecast serve on a signal", () => {
  it.each<NodeJS.Signals>(["SIGTERM", "SIGINT"])(
    "on %s, lets an in-flight call finish, takes no new call, and exits 0",
    async (signal) => {
      const { child, client, storePath } = await startChild(`GRACEFUL_${signal}`, [
        "--shutdown-timeout",
        "120s",
        // Long enough for the signal to land while the call still waits, even on a busy box.
        "--publish-wait",
        "5s",
      ]);
      const { call: inFlight } = await startCallWaitingOnNats(client, storePath);

      const signalledAtMs = performance.now();
      process.kill(child.pid, signal);
      await signalTaken(child, signal);
      const fresh = createScoreClient(child.address, { deadlineMs: 5_000 });
      clients.push(fresh);
      await expect(
        fresh.submitScore(sampleScoreData({ submissionId: 5_002n })),
      ).rejects.toMatchObject({ code: status.UNAVAILABLE });

      const answer = await inFlight;
      expect(answer).toMatchObject({ response: { published: false, replayed: false } });
      expect(answer.endedAtMs).toBeGreaterThan(signalledAtMs);
      nats.resume();
      expect(await exitWithin(child, EXIT_TIMEOUT_MS)).toEqual({ code: 0, signal: null });
      expect(storeCounts(storePath).scores).toBe(1);
    },
  );

  it("cuts off an in-flight call after half of --shutdown-timeout, then exits 0", async () => {
    const { child, client, storePath } = await startChild("GRACEFUL_FORCED", [
      "--shutdown-timeout",
      "6s",
      // The call would wait a minute for its ack: only the shutdown can end it sooner.
      "--publish-wait",
      "60s",
      "--publish-timeout",
      "60s",
      "--duplicate-window",
      "5m",
    ]);
    const { call: inFlight } = await startCallWaitingOnNats(client, storePath);

    const signalledAtMs = performance.now();
    process.kill(child.pid, "SIGTERM");
    const answer = await inFlight;
    const cutOffAfterMs = answer.endedAtMs - signalledAtMs;
    expect(answer).toMatchObject({
      error: {
        code: expect.toSatisfy((code) =>
          [status.CANCELLED, status.UNAVAILABLE].includes(code as number),
        ),
      },
    });
    // Half of 6 s; the upper bound only says it was not the call's own minute.
    expect(cutOffAfterMs).toBeGreaterThanOrEqual(2_900);
    expect(cutOffAfterMs).toBeLessThan(30_000);
    nats.resume();
    expect(await exitWithin(child, EXIT_TIMEOUT_MS)).toEqual({ code: 0, signal: null });
    // Committed before the cut: the score stays, its event with it.
    expect(storeCounts(storePath)).toMatchObject({ scores: 1, outbox: 1 });
  });

  it("exits at once with code 1 on a second signal while the first shutdown still waits", async () => {
    const { child, client, storePath } = await startChild("GRACEFUL_TWICE", [
      "--shutdown-timeout",
      "240s",
      "--publish-wait",
      "200s",
      "--publish-timeout",
      "200s",
      "--duplicate-window",
      "20m",
    ]);
    const { call: inFlight } = await startCallWaitingOnNats(client, storePath);

    process.kill(child.pid, "SIGTERM");
    await signalTaken(child, "SIGTERM");
    const secondAtMs = performance.now();
    process.kill(child.pid, "SIGINT");
    // The first shutdown would hold the call for 120 s (half the timeout) before anything else.
    expect(await exitWithin(child, 30_000)).toEqual({ code: 1, signal: null });
    expect(performance.now() - secondAtMs).toBeLessThan(30_000);
    expect(child.output()).toContain("second signal: exiting without finishing the shutdown");
    expect(await inFlight).toMatchObject({ error: { code: status.UNAVAILABLE } });
  });
});

describe("the relay during a graceful stop", () => {
  let database: TestDatabase | undefined;

  afterEach(async () => {
    await database?.drop();
    database = undefined;
  });

  it("gets the rest of the shutdown timeout to publish what is pending", async () => {
    database = await createTestDatabase();
    const stream = streamNamed("GRACEFUL_FLUSH");
    // An idle relay looks at the outbox only every 10 minutes unless something wakes it.
    const gradecast = await startGradecast(nats.url, {
      store: { kind: "postgres", url: database.url, poolSize: 2 },
      stream,
      relay: {
        batchSize: 8,
        leaseMs: 3_000,
        idlePollMs: 600_000,
        initialBackoffMs: 50,
        maxBackoffMs: 500,
      },
      shutdownTimeoutMs: 60_000,
    });
    servers.push(gradecast);
    await gradecast.server.streamReady;

    // Another instance committed 20 scores and was gone before publishing them: its rows are
    // leased to it for a moment, then free for anyone. Nothing tells this instance's relay.
    const other = new PostgresStore({
      url: database.url,
      poolSize: 1,
      encoding: { origin: gradecast.config.events, subjectPrefix: stream.subjectPrefix },
    });
    await other.start();
    try {
      const scores = Array.from({ length: 20 }, (_, i) => ({
        scoreData: sampleScoreData({ submissionId: BigInt(6_000 + i) }),
        eventId: randomUUID(),
        time: new Date(),
      }));
      const leaseUntilMs = Date.now() + 1_000;
      await other.recordScores(scores, leaseUntilMs);
      await pollUntil(
        async () => Date.now(),
        (now) => now > leaseUntilMs + 200,
        10_000,
        50,
      );
      expect(await other.outboxBacklog()).toMatchObject({ pending: 20 });

      const stopStartedMs = performance.now();
      await gradecast.stop();
      // Done once published: the stop does not wait out its bound.
      expect(performance.now() - stopStartedMs).toBeLessThan(30_000);
      expect(await other.outboxBacklog()).toMatchObject({ pending: 0 });
      const messages = await readStream(nats.url, stream.name);
      expect(messages.map((message) => message.headers["Nats-Msg-Id"])).toEqual(
        scores.map((score) => score.eventId),
      );
    } finally {
      await other.close();
    }
  });

  it("leaves what it cannot publish (NATS down) in the outbox, and the next start publishes it", async () => {
    const stream = streamNamed("GRACEFUL_PENDING");
    const dataDir = join(dir, "pending");
    const first = await startGradecast(nats.url, { dataDir, stream, shutdownTimeoutMs: 60_000 });
    servers.push(first);
    await first.server.streamReady;

    await nats.stop();
    const accepted: string[] = [];
    for (let i = 0; i < 5; i += 1) {
      const response = await first.client.submitScore(
        sampleScoreData({ submissionId: BigInt(7_000 + i) }),
      );
      expect(response.published).toBe(false);
      accepted.push(response.eventId);
    }
    const stopStartedMs = performance.now();
    await first.stop();
    // Nothing can be published without NATS: the stop does not wait out its minute.
    expect(performance.now() - stopStartedMs).toBeLessThan(30_000);
    expect(storeCounts(sqlitePath(first.config))).toEqual({ scores: 5, outbox: 5, pending: 5 });

    await nats.restart();
    const second = await startGradecast(nats.url, { dataDir, stream });
    servers.push(second);
    const published = await pollUntil(
      () => readStream(nats.url, stream.name),
      (messages) => messages.length >= accepted.length,
    );
    expect(published.map((message) => message.headers["Nats-Msg-Id"])).toEqual(accepted);
    const drained = await pollUntil(
      async () => storeCounts(sqlitePath(second.config)).pending,
      (pending) => pending === 0,
    );
    expect(drained).toBe(0);
  });
});
