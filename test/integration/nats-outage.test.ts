import { performance } from "node:perf_hooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodeScoreEvent } from "../../src/contract/index.js";
import { sampleScoreData } from "../helpers/contract-fixtures.js";
import {
  duplicatedEventIds,
  pollUntil,
  readStream,
  sqlitePath,
  startGradecast,
  storeCounts,
  type TestGradecast,
} from "../helpers/gradecast.js";
import { type NatsServerHandle, startNatsServer } from "../helpers/nats-server.js";

/** Scores submitted while NATS is down; every tenth is a regrade of the one before it. */
const OUTAGE_SCORES = 100;
/** SubmitScore must answer from the commit, not wait on the dead NATS (the call deadline is 10 s). */
const MAX_CALL_MS = 3_000;
/** From `nats.restart()` until the relay has published the whole backlog. */
const DRAIN_TIMEOUT_MS = 60_000;

let nats: NatsServerHandle;
let gradecast: TestGradecast;

beforeAll(async () => {
  nats = await startNatsServer();
  gradecast = await startGradecast(nats.url);
  await gradecast.server.streamReady;
});

afterAll(async () => {
  await gradecast?.cleanup();
  await nats?.cleanup();
});

interface AcceptedScore {
  eventId: string;
  submissionId: bigint;
  submissionSequence: number;
}

describe("a NATS outage", () => {
  it("scores taken while NATS is down are answered at once and published once each, in submit order, when it is back", async () => {
    const { client, config } = gradecast;
    const beforeOutage = await client.submitScore(sampleScoreData({ submissionId: 1n }));
    expect(beforeOutage.published).toBe(true);

    await nats.stop();

    const accepted: AcceptedScore[] = [];
    const slowCalls: { index: number; tookMs: number }[] = [];
    for (let index = 0; index < OUTAGE_SCORES; index += 1) {
      const isRegrade = index % 10 === 9;
      const submissionId = isRegrade ? 10_000n + BigInt(index - 1) : 10_000n + BigInt(index);
      const startedMs = performance.now();
      const response = await client.submitScore(
        sampleScoreData({ submissionId, pointsEarned: isRegrade ? 9 : 7 }),
      );
      const tookMs = performance.now() - startedMs;
      if (tookMs >= MAX_CALL_MS) slowCalls.push({ index, tookMs });
      expect(response).toMatchObject({
        published: false,
        replayed: false,
        submissionSequence: isRegrade ? 2 : 1,
      });
      accepted.push({
        eventId: response.eventId,
        submissionId,
        submissionSequence: response.submissionSequence,
      });
    }
    expect(slowCalls).toEqual([]);
    expect(new Set(accepted.map((score) => score.eventId)).size).toBe(OUTAGE_SCORES);

    // A grader retrying during the outage gets the first answer back and adds no event.
    const first = accepted[0];
    const retry = await client.submitScore(sampleScoreData({ submissionId: first?.submissionId }));
    expect(retry).toMatchObject({ eventId: first?.eventId, replayed: true, published: false });

    expect(storeCounts(sqlitePath(config))).toEqual({
      scores: OUTAGE_SCORES + 1,
      outbox: OUTAGE_SCORES + 1,
      pending: OUTAGE_SCORES,
    });

    await nats.restart();
    const total = OUTAGE_SCORES + 1;
    const drained = await pollUntil(
      async () => ({
        messages: await readStream(nats.url, config.stream.name),
        pending: storeCounts(sqlitePath(config)).pending,
      }),
      ({ messages, pending }) => messages.length >= total && pending === 0,
      DRAIN_TIMEOUT_MS,
    );
    expect(drained.pending).toBe(0);

    const messages = await readStream(nats.url, config.stream.name);
    expect(duplicatedEventIds(messages)).toEqual([]);
    expect(messages).toHaveLength(total);
    for (const message of messages) {
      expect(message.headers["ce-id"]).toBe(message.headers["Nats-Msg-Id"]);
    }
    const acceptedIds = [beforeOutage.eventId, ...accepted.map((score) => score.eventId)];
    expect(new Set(messages.map((message) => message.headers["Nats-Msg-Id"]))).toEqual(
      new Set(acceptedIds),
    );

    // Submitted one after another, so the relay must publish them in that order.
    const outageIds = new Set(accepted.map((score) => score.eventId));
    const outageMessages = messages.filter((message) =>
      outageIds.has(message.headers["Nats-Msg-Id"] ?? ""),
    );
    expect(outageMessages.map((message) => message.headers["Nats-Msg-Id"])).toEqual(
      accepted.map((score) => score.eventId),
    );
    // Each event carries the submission and sequence it was accepted with.
    expect(
      outageMessages.map((message) => {
        const event = decodeScoreEvent(message.data);
        return { submissionId: event.scoreData?.submissionId, sequence: event.submissionSequence };
      }),
    ).toEqual(
      accepted.map((score) => ({
        submissionId: score.submissionId,
        sequence: score.submissionSequence,
      })),
    );

    const regraded = accepted[accepted.length - 1];
    expect(regraded?.submissionSequence).toBe(2);
    const lookup = await client.getScore(regraded?.submissionId ?? 0n);
    expect(lookup.published).toBe(true);
    expect(lookup.event?.metadata?.id).toBe(regraded?.eventId);
  });
});
