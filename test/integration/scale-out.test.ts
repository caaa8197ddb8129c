import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createScoreClient, type ScoreClient } from "../../src/client/index.js";
import { decodeScoreEvent, type ExternalGraderScoreData } from "../../src/contract/index.js";
import { sampleScoreData } from "../helpers/contract-fixtures.js";
import {
  duplicatedEventIds,
  messagesPerEventId,
  pollUntil,
  readStream,
  type StreamMessage,
} from "../helpers/gradecast.js";
import { type GradecastProcess, startGradecastProcess } from "../helpers/gradecast-process.js";
import { type NatsServerHandle, startNatsServer } from "../helpers/nats-server.js";
import { createTestDatabase, queryDatabase, type TestDatabase } from "../helpers/postgres.js";

const STREAM = "GRADECAST_SCALE";
const INSTANCES = 3;
const CONCURRENCY = 48;
const CALL_DEADLINE_MS = 30_000;
/** Direct-publish leases last the publish timeout plus 1 s: short, so a dead instance's rows come back soon. */
const SERVE_ARGS = ["--publish-timeout", "2s", "--shutdown-timeout", "5s"];
const SETTLE_TIMEOUT_MS = 30_000;

let nats: NatsServerHandle;
let database: TestDatabase;
let dataDir: string;
let instances: GradecastProcess[];
let clients: ScoreClient[];

beforeEach(async () => {
  nats = await startNatsServer();
  database = await createTestDatabase();
  dataDir = await mkdtemp(join(tmpdir(), "gradecast-scale-"));
  // Started together: the schema migration must run once under its advisory lock.
  instances = await Promise.all(
    Array.from({ length: INSTANCES }, () =>
      startGradecastProcess({
        natsUrl: nats.url,
        dataDir,
        stream: STREAM,
        extraArgs: ["--store", database.url, ...SERVE_ARGS],
        readyTimeoutMs: 30_000,
      }),
    ),
  );
  clients = instances.map((instance) =>
    createScoreClient(instance.address, { deadlineMs: CALL_DEADLINE_MS }),
  );
});

afterEach(async () => {
  for (const client of clients) client.close();
  await Promise.all(instances.map((instance) => instance.kill9()));
  await nats?.cleanup();
  await database?.drop();
  await rm(dataDir, { recursive: true, force: true });
});

interface Call {
  scoreData: ExternalGraderScoreData;
  /** Index of the instance the call goes to first. */
  instance: number;
}

interface Answer {
  call: Call;
  /** The instance that answered. */
  instance: number;
  eventId: string;
  replayed: boolean;
  submissionSequence: number;
}

/**
 * Sends the calls with CONCURRENCY in flight. A call whose instance fails is
 * retried on the next live one, as a grader behind a load balancer would: the
 * retry is idempotent, so a score the dead instance had committed comes back
 * as a replay of the same event.
 */
async function submitAll(
  calls: readonly Call[],
  isDead: (index: number) => boolean = () => false,
  onAnswer: (answer: Answer) => void = () => {},
): Promise<Answer[]> {
  const answers: Answer[] = [];
  let next = 0;
  const worker = async () => {
    while (next < calls.length) {
      const call = calls[next++] as Call;
      for (let attempt = 0; ; attempt += 1) {
        const index = (call.instance + attempt) % INSTANCES;
        if (isDead(index)) continue;
        try {
          const response = await (clients[index] as ScoreClient).submitScore(call.scoreData);
          const answer = {
            call,
            instance: index,
            eventId: response.eventId,
            replayed: response.replayed,
            submissionSequence: response.submissionSequence,
          };
          answers.push(answer);
          onAnswer(answer);
          break;
        } catch (error) {
          if (attempt >= INSTANCES * 2) throw error;
        }
      }
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  return answers;
}

/** Waits until the stream holds every id and the database has nothing pending. */
async function settledStream(eventIds: readonly string[]): Promise<StreamMessage[]> {
  const settled = await pollUntil(
    async () => ({
      messages: await readStream(nats.url, STREAM),
      pending: (
        await queryDatabase<{ n: number }>(
          database.url,
          "SELECT count(*)::integer AS n FROM outbox WHERE published_at_ms IS NULL",
        )
      )[0]?.n,
    }),
    ({ messages, pending }) => {
      const inStream = messagesPerEventId(messages);
      return pending === 0 && eventIds.every((eventId) => inStream.has(eventId));
    },
    SETTLE_TIMEOUT_MS,
  );
  expect(settled.pending).toBe(0);
  return settled.messages;
}

/** Sequences per submission, from the events in the stream. */
function sequencesBySubmission(messages: readonly StreamMessage[]): Map<bigint, number[]> {
  const sequences = new Map<bigint, number[]>();
  for (const message of messages) {
    const event = decodeScoreEvent(message.data);
    const submissionId = event.scoreData?.submissionId ?? -1n;
    sequences.set(submissionId, [...(sequences.get(submissionId) ?? []), event.submissionSequence]);
  }
  return sequences;
}

describe("three gradecast instances on one PostgreSQL database", () => {
  it("3,000 scores round-robin with retries: one message per accepted score, sequences 1..n", async () => {
    const submissions = 1_000;
    const ids = Array.from({ length: submissions }, (_, i) => 5_000_000n + BigInt(i));
    const first = (id: bigint) => sampleScoreData({ submissionId: id, pointsEarned: 3 });
    const regrade = (id: bigint) => sampleScoreData({ submissionId: id, pointsEarned: 7 });
    const roundRobin = (scores: ExternalGraderScoreData[], offset: number): Call[] =>
      scores.map((scoreData, i) => ({ scoreData, instance: (i + offset) % INSTANCES }));

    // 1,000 first scores; 500 retries of them on another instance; 1,000 regrades,
    // 500 of which reach two instances at the same moment.
    const firsts = await submitAll(roundRobin(ids.map(first), 0));
    const retries = await submitAll(roundRobin(ids.filter((_, i) => i % 2 === 0).map(first), 1));
    const doubled = ids.flatMap((id, i) => (i % 2 === 0 ? [regrade(id), regrade(id)] : []));
    const regrades = await submitAll([
      ...roundRobin(doubled, 2),
      ...roundRobin(ids.filter((_, i) => i % 2 === 1).map(regrade), 2),
    ]);
    expect(firsts.length + retries.length + regrades.length).toBe(3_000);

    const firstIds = new Map(firsts.map((a) => [a.call.scoreData.submissionId, a.eventId]));
    expect(firsts.every((a) => !a.replayed && a.submissionSequence === 1)).toBe(true);
    expect(retries.every((a) => a.replayed)).toBe(true);
    expect(
      retries.filter((a) => firstIds.get(a.call.scoreData.submissionId) !== a.eventId),
    ).toEqual([]);
    const acceptedRegrades = regrades.filter((a) => !a.replayed);
    expect(acceptedRegrades).toHaveLength(submissions);
    expect(acceptedRegrades.every((a) => a.submissionSequence === 2)).toBe(true);

    const accepted = [...firsts, ...acceptedRegrades].map((a) => a.eventId);
    const messages = await settledStream(accepted);
    expect(messages).toHaveLength(2 * submissions);
    expect(duplicatedEventIds(messages)).toEqual([]);
    expect(new Set(messagesPerEventId(messages).keys())).toEqual(new Set(accepted));
    const gaps = [...sequencesBySubmission(messages)].filter(
      ([, sequences]) => sequences.sort().join() !== "1,2",
    );
    expect(gaps).toEqual([]);
  }, 120_000);

  it("kill -9 of one instance mid-load loses nothing it acknowledged", async () => {
    const calls: Call[] = Array.from({ length: 1_500 }, (_, i) => ({
      scoreData: sampleScoreData({ submissionId: 6_000_000n + BigInt(i) }),
      instance: i % INSTANCES,
    }));
    let isKilled = false;
    const victim = instances[0] as GradecastProcess;
    const victimAnswers: string[] = [];
    // Kill the victim once it alone has acknowledged 200 calls, while the load goes on.
    const killing = pollUntil(
      async () => victimAnswers.length,
      (count) => count >= 200,
      60_000,
    ).then(async () => {
      await victim.kill9();
      isKilled = true;
    });
    const answers = await submitAll(
      calls,
      (index) => index === 0 && isKilled,
      (answer) => {
        if (answer.instance === 0 && !isKilled) victimAnswers.push(answer.eventId);
      },
    );
    await killing;
    expect(isKilled).toBe(true);
    expect(answers).toHaveLength(calls.length);

    const acknowledged = answers.map((a) => a.eventId);
    const messages = await settledStream(acknowledged);
    const inStream = messagesPerEventId(messages);
    expect(acknowledged.filter((eventId) => inStream.get(eventId) !== 1)).toEqual([]);
    expect(victimAnswers.filter((eventId) => inStream.get(eventId) !== 1)).toEqual([]);
    expect(duplicatedEventIds(messages)).toEqual([]);
    // Every stored score reached the stream, including any the victim committed
    // but never answered (its retry on another instance replayed the same event).
    const stored = await queryDatabase<{ event_id: string }>(
      database.url,
      "SELECT event_id FROM scores",
    );
    expect(new Set(inStream.keys())).toEqual(new Set(stored.map((row) => row.event_id)));
    expect(stored).toHaveLength(calls.length);
  }, 120_000);

  it("the others publish a killed instance's pending outbox once its leases end", async () => {
    // Every instance is connected and the stream exists before NATS stalls.
    const warmUp = await submitAll(
      Array.from({ length: INSTANCES }, (_, i) => ({
        scoreData: sampleScoreData({ submissionId: 7_000_000n + BigInt(i) }),
        instance: i,
      })),
    );
    await settledStream(warmUp.map((a) => a.eventId));

    // A paused nats-server keeps connections open: the victim commits each score,
    // its publish hangs, and it answers published=false with the row leased to it.
    nats.pause();
    const victim = instances[0] as GradecastProcess;
    const victimClient = clients[0] as ScoreClient;
    const pending = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        victimClient.submitScore(sampleScoreData({ submissionId: 7_100_000n + BigInt(i) })),
      ),
    );
    expect(pending.filter((response) => response.published)).toEqual([]);
    await victim.kill9();
    nats.resume();

    const eventIds = pending.map((response) => response.eventId);
    const messages = await settledStream(eventIds);
    const inStream = messagesPerEventId(messages);
    expect(eventIds.filter((eventId) => inStream.get(eventId) !== 1)).toEqual([]);
    expect(duplicatedEventIds(messages)).toEqual([]);
    // The victim never came back: a survivor's relay claimed (attempts) and marked each row.
    const rows = await queryDatabase<{ attempts: number; published: boolean }>(
      database.url,
      "SELECT attempts, published_at_ms IS NOT NULL AS published FROM outbox WHERE event_id = ANY($1)",
      [eventIds],
    );
    expect(rows).toHaveLength(eventIds.length);
    expect(rows.filter((row) => row.attempts < 1 || !row.published)).toEqual([]);
    // Two stream settles (30 s each) and the victim's calls (30 s deadline) fit inside it.
  }, 120_000);
});
