import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createScoreClient, type ScoreClient } from "../../src/client/index.js";
import { sampleScoreData } from "../helpers/contract-fixtures.js";
import {
  duplicatedEventIds,
  messagesPerEventId,
  pollUntil,
  readStream,
  type StreamMessage,
  storeCounts,
  storedEventIds,
} from "../helpers/gradecast.js";
import {
  type GradecastProcess,
  type GradecastProcessOptions,
  startGradecastProcess,
} from "../helpers/gradecast-process.js";
import { type NatsServerHandle, startNatsServer } from "../helpers/nats-server.js";

const STREAM = "GRADECAST_CRASH";
const SHUTDOWN_TIMEOUT_MS = 5_000;
const SERVE_ARGS = ["--shutdown-timeout", `${SHUTDOWN_TIMEOUT_MS / 1_000}s`];
/** Calls are cut short by the kill, so a short deadline only bounds a hang. */
const CALL_DEADLINE_MS = 5_000;
/** From the restart until the relay has published what the killed process left. */
const RECOVERY_TIMEOUT_MS = 60_000;

let nats: NatsServerHandle;
let dataDir: string;
let children: GradecastProcess[];
let clients: ScoreClient[];

beforeEach(async () => {
  nats = await startNatsServer();
  dataDir = await mkdtemp(join(tmpdir(), "gradecast-crash-"));
  children = [];
  clients = [];
});

afterEach(async () => {
  nats.resume();
  for (const client of clients) client.close();
  // Whatever a failed test left running: kill9 of an exited child just returns its status.
  await Promise.all(children.map((child) => child.kill9()));
  await nats?.cleanup();
  await rm(dataDir, { recursive: true, force: true });
});

/** Starts `gradecast serve` on this test's NATS and data dir; killed after the test if still up. */
async function startChild(options: Partial<GradecastProcessOptions> = {}) {
  const child = await startGradecastProcess({
    natsUrl: nats.url,
    dataDir,
    stream: STREAM,
    extraArgs: SERVE_ARGS,
    ...options,
  });
  children.push(child);
  return child;
}

function clientOf(child: GradecastProcess): ScoreClient {
  const client = createScoreClient(child.address, { deadlineMs: CALL_DEADLINE_MS });
  clients.push(client);
  return client;
}

interface Acknowledged {
  eventId: string;
  submissionId: bigint;
  published: boolean;
}

interface LoadOutcome {
  acknowledged: Acknowledged[];
  /** Calls that failed before the kill was sent: there should be none. */
  failedBeforeKill: unknown[];
  failedAfterKill: number;
  /** Calls not yet settled in the client when SIGKILL went out (some answers may be on the wire). */
  inFlightAtKill: number;
}

/**
 * Submits distinct submissions with `concurrency` calls in flight, and SIGKILLs the child from
 * inside the load once `killAfter` calls have returned OK. Stops issuing calls after the kill,
 * or after `maxCalls` if the kill never comes.
 */
async function submitUntilKilled(
  child: GradecastProcess,
  client: ScoreClient,
  load: { killAfter: number; maxCalls: number; concurrency: number; firstSubmissionId: bigint },
): Promise<LoadOutcome> {
  const outcome: LoadOutcome = {
    acknowledged: [],
    failedBeforeKill: [],
    failedAfterKill: 0,
    inFlightAtKill: 0,
  };
  let issued = 0;
  let inFlight = 0;
  let killing: Promise<unknown> | undefined;
  const worker = async () => {
    while (!killing && issued < load.maxCalls) {
      const submissionId = load.firstSubmissionId + BigInt(issued);
      issued += 1;
      inFlight += 1;
      try {
        const response = await client.submitScore(sampleScoreData({ submissionId }));
        outcome.acknowledged.push({
          eventId: response.eventId,
          submissionId,
          published: response.published,
        });
      } catch (error) {
        if (killing) outcome.failedAfterKill += 1;
        else outcome.failedBeforeKill.push(error);
      } finally {
        inFlight -= 1;
      }
      if (!killing && outcome.acknowledged.length >= load.killAfter) {
        outcome.inFlightAtKill = inFlight;
        killing = child.kill9();
      }
    }
  };
  await Promise.all(Array.from({ length: load.concurrency }, worker));
  await killing;
  return outcome;
}

/** Polls the stream until it holds every event id in `eventIds` and the store has none pending. */
async function waitForStream(
  eventIds: readonly string[],
  storePath: string,
): Promise<StreamMessage[]> {
  const settled = await pollUntil(
    async () => ({
      messages: await readStream(nats.url, STREAM),
      pending: storeCounts(storePath).pending,
    }),
    ({ messages, pending }) => {
      const inStream = messagesPerEventId(messages);
      return pending === 0 && eventIds.every((eventId) => inStream.has(eventId));
    },
    RECOVERY_TIMEOUT_MS,
  );
  expect(settled.pending).toBe(0);
  return readStream(nats.url, STREAM);
}

/**
 * After a restart: every acknowledged event id is stored and the stream holds it exactly once,
 * no event id is in the stream twice, and every stored score (acknowledged or cut off by the
 * kill after its commit) reached the stream.
 */
async function expectEachEventOnce(acknowledgedIds: readonly string[], storePath: string) {
  const stored = new Set(storedEventIds(storePath));
  expect(acknowledgedIds.filter((eventId) => !stored.has(eventId))).toEqual([]);
  const messages = await waitForStream(acknowledgedIds, storePath);
  const inStream = messagesPerEventId(messages);
  expect(acknowledgedIds.filter((eventId) => inStream.get(eventId) !== 1)).toEqual([]);
  expect(duplicatedEventIds(messages)).toEqual([]);
  expect(new Set(inStream.keys())).toEqual(new Set(storedEventIds(storePath)));
  return messages;
}

describe("kill -9 of gradecast", () => {
  it("every score acknowledged before a kill -9 under load is stored and reaches the stream exactly once", async () => {
    const storePath = join(dataDir, "gradecast.sqlite");
    const first = await startChild();
    const load = await submitUntilKilled(first, clientOf(first), {
      killAfter: 150,
      maxCalls: 2_000,
      concurrency: 16,
      firstSubmissionId: 100_000n,
    });
    expect(load.failedBeforeKill).toEqual([]);
    expect(load.inFlightAtKill).toBeGreaterThan(0);
    expect(load.acknowledged.length).toBeGreaterThanOrEqual(150);
    expect(await first.exited).toEqual({ code: null, signal: "SIGKILL" });

    const acknowledgedIds = load.acknowledged.map((score) => score.eventId);
    const second = await startChild({ port: first.port });
    await expectEachEventOnce(acknowledgedIds, storePath);
    expect(await second.stop(SHUTDOWN_TIMEOUT_MS)).toEqual({ code: 0, signal: null });
  });

  it("scores taken while NATS is down survive a kill -9 and the next process publishes them once each", async () => {
    const storePath = join(dataDir, "gradecast.sqlite");
    const first = await startChild();
    const client = clientOf(first);
    const beforeOutage = await client.submitScore(sampleScoreData({ submissionId: 1n }));
    await waitForStream([beforeOutage.eventId], storePath);

    await nats.stop();
    const accepted: Acknowledged[] = [];
    for (let index = 0; index < 50; index += 1) {
      const submissionId = 200_000n + BigInt(index);
      const response = await client.submitScore(sampleScoreData({ submissionId }));
      expect(response).toMatchObject({ published: false, replayed: false });
      accepted.push({ eventId: response.eventId, submissionId, published: response.published });
    }
    expect(storeCounts(storePath)).toMatchObject({ scores: 51, pending: 50 });

    expect(await first.kill9()).toEqual({ code: null, signal: "SIGKILL" });
    await nats.restart();
    const second = await startChild({ port: first.port });

    const acceptedIds = accepted.map((score) => score.eventId);
    const messages = await expectEachEventOnce(acceptedIds, storePath);
    expect(messages).toHaveLength(51);
    // Submitted one after another, so the relay publishes them in that order.
    expect(
      messages
        .map((message) => message.headers["Nats-Msg-Id"])
        .filter((eventId) => eventId !== beforeOutage.eventId),
    ).toEqual(acceptedIds);

    expect(await second.stop(SHUTDOWN_TIMEOUT_MS)).toEqual({ code: 0, signal: null });
  });

  it("a kill -9 while publishes wait on a stalled NATS loses nothing, and the re-publishes are dropped as duplicates", async () => {
    const storePath = join(dataDir, "gradecast.sqlite");
    const first = await startChild();
    const client = clientOf(first);
    const beforeStall = await client.submitScore(sampleScoreData({ submissionId: 1n }));
    await waitForStream([beforeStall.eventId], storePath);

    // A paused server keeps the connection open: each call commits, publishes, and answers
    // published=false after --publish-wait, leaving its publish unacknowledged (and, once the
    // server resumes, possibly stored) when the kill lands.
    nats.pause();
    const load = await submitUntilKilled(first, client, {
      killAfter: 16,
      maxCalls: 200,
      concurrency: 16,
      firstSubmissionId: 300_000n,
    });
    expect(load.failedBeforeKill).toEqual([]);
    expect(load.inFlightAtKill).toBeGreaterThan(0);
    expect(load.acknowledged.filter((score) => score.published)).toEqual([]);
    expect(storeCounts(storePath).pending).toBeGreaterThanOrEqual(load.acknowledged.length);
    expect(await first.exited).toEqual({ code: null, signal: "SIGKILL" });

    nats.resume();
    const second = await startChild({ port: first.port });
    await expectEachEventOnce(
      load.acknowledged.map((score) => score.eventId),
      storePath,
    );
    expect(await second.stop(SHUTDOWN_TIMEOUT_MS)).toEqual({ code: 0, signal: null });
  });
});
