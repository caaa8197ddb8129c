import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  decodeScoreEvent,
  ExternalGraderScoreSubmitted,
  SCORE_SUBMITTED_EVENT_TYPE,
} from "../../src/contract/index.js";
import { sampleScoreData } from "../helpers/contract-fixtures.js";
import {
  pollUntil,
  readStream,
  sqlitePath,
  startGradecast,
  storeCounts,
  type TestGradecast,
} from "../helpers/gradecast.js";
import { type NatsServerHandle, startNatsServer } from "../helpers/nats-server.js";

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

/** The rows the SQLite store holds for one submission: its scores and their outbox entries. */
function storedRowsOf(storePath: string, submissionId: bigint): { scores: number; outbox: number } {
  const db = new Database(storePath, { readonly: true, fileMustExist: true });
  try {
    return db
      .prepare(
        `SELECT count(*) AS scores, count(o.event_id) AS outbox
           FROM scores s LEFT JOIN outbox o ON o.event_id = s.event_id
          WHERE s.submission_id = ?`,
      )
      .get(submissionId) as { scores: number; outbox: number };
  } finally {
    db.close();
  }
}

describe("SubmitScore happy path", () => {
  it("stores the score and publishes one event with its subject, headers and bytes", async () => {
    const scoreData = sampleScoreData({ submissionId: 1001n });
    const response = await gradecast.client.submitScore(scoreData);
    expect(response.replayed).toBe(false);
    expect(response.published).toBe(true);
    expect(response.submissionSequence).toBe(1);
    // A version 7 UUID: time-ordered, so the stores' event id indexes grow at one end.
    expect(response.eventId).toMatch(
      /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
    );

    const messages = await readStream(nats.url, gradecast.config.stream.name);
    const message = messages.find((m) => m.headers["ce-id"] === response.eventId);
    expect(message?.subject).toBe("gradecast.scores.v1.python-grader");
    expect(message?.headers).toMatchObject({
      "ce-specversion": "1.0",
      "ce-id": response.eventId,
      "ce-type": SCORE_SUBMITTED_EVENT_TYPE,
      "ce-source": "openedx/gradecast/test",
      "ce-time": response.eventTime?.toISOString(),
      "ce-datacontenttype": "application/protobuf",
      "ce-dataschema": "type.googleapis.com/gradecast.v1.ExternalGraderScoreSubmitted",
      "ce-minorversion": "0",
      "ce-sourcehost": "test-host",
      "ce-sourcelib": "0.1.0",
      "ce-queuename": "python-grader",
      "content-type": "application/protobuf",
      "Nats-Msg-Id": response.eventId,
    });

    const event = decodeScoreEvent(message?.data ?? new Uint8Array());
    expect(event.scoreData).toEqual(scoreData);
    expect(event.submissionSequence).toBe(1);
    expect(event.metadata?.id).toBe(response.eventId);
    expect(event.metadata?.eventType).toBe(SCORE_SUBMITTED_EVENT_TYPE);
  });

  it("GetScore returns the recorded event, published", async () => {
    const scoreData = sampleScoreData({ submissionId: 1002n, pointsEarned: 3 });
    const submitted = await gradecast.client.submitScore(scoreData);
    const found = await gradecast.client.getScore(1002n);
    expect(found.published).toBe(true);
    expect(found.event?.metadata?.id).toBe(submitted.eventId);
    expect(found.event?.scoreData).toEqual(scoreData);
    // The stored bytes are exactly the published ones.
    const messages = await readStream(nats.url, gradecast.config.stream.name);
    const published = messages.find((m) => m.headers["ce-id"] === submitted.eventId);
    const foundEvent = found.event ?? ExternalGraderScoreSubmitted.fromPartial({});
    expect(Buffer.from(ExternalGraderScoreSubmitted.encode(foundEvent).finish())).toEqual(
      Buffer.from(published?.data ?? []),
    );
  });
});

describe("idempotency and regrades", () => {
  it("a retried score returns the first event id and publishes nothing", async () => {
    const scoreData = sampleScoreData({ submissionId: 2001n });
    const first = await gradecast.client.submitScore(scoreData);
    const retry = await gradecast.client.submitScore(scoreData);
    expect(retry.eventId).toBe(first.eventId);
    expect(retry.replayed).toBe(true);
    expect(retry.submissionSequence).toBe(1);
    expect(retry.eventTime).toEqual(first.eventTime);

    // Read once nothing waits in the outbox: a second event would be in the stream by then.
    const storePath = sqlitePath(gradecast.config);
    await pollUntil(
      async () => storeCounts(storePath).pending,
      (pending) => pending === 0,
    );
    expect(storedRowsOf(storePath, 2001n)).toEqual({ scores: 1, outbox: 1 });
    const messages = await readStream(nats.url, gradecast.config.stream.name);
    const forSubmission = messages.filter(
      (m) => decodeScoreEvent(m.data).scoreData?.submissionId === 2001n,
    );
    expect(forSubmission.map((m) => m.headers["Nats-Msg-Id"])).toEqual([first.eventId]);
  });

  it("a retry sent right after a published answer says published too", async () => {
    // The publish mark is written in batches after the answer; a replay must not read
    // "not published" from the row in between. Ten tries, as in the report.
    for (let i = 0; i < 10; i += 1) {
      const scoreData = sampleScoreData({ submissionId: BigInt(2_100 + i) });
      const first = await gradecast.client.submitScore(scoreData);
      expect(first.published).toBe(true);
      const retry = await gradecast.client.submitScore(scoreData);
      expect({ replayed: retry.replayed, published: retry.published }).toEqual({
        replayed: true,
        published: true,
      });
    }
  });

  it("concurrent retries of one score commit it once: one answer, one stored score, one stream message", async () => {
    const scoreData = sampleScoreData({ submissionId: 2002n });
    const answers = await Promise.all(
      Array.from({ length: 8 }, () => gradecast.client.submitScore(scoreData)),
    );
    expect(new Set(answers.map((a) => a.eventId)).size).toBe(1);
    expect(answers.filter((a) => !a.replayed)).toHaveLength(1);

    const storePath = sqlitePath(gradecast.config);
    // Once nothing waits in the outbox, whatever was stored for it has reached the stream.
    const drained = await pollUntil(
      async () => storeCounts(storePath).pending,
      (pending) => pending === 0,
    );
    expect(drained).toBe(0);
    expect(storedRowsOf(storePath, 2002n)).toEqual({ scores: 1, outbox: 1 });
    const messages = (await readStream(nats.url, gradecast.config.stream.name)).filter(
      (m) => decodeScoreEvent(m.data).scoreData?.submissionId === 2002n,
    );
    expect(messages.map((m) => m.headers["Nats-Msg-Id"])).toEqual([answers[0]?.eventId]);
  });

  it("a regrade publishes a second event with sequence 2, after the first", async () => {
    const first = await gradecast.client.submitScore(
      sampleScoreData({ submissionId: 3001n, pointsEarned: 4 }),
    );
    const regrade = await gradecast.client.submitScore(
      sampleScoreData({ submissionId: 3001n, pointsEarned: 9 }),
    );
    expect(regrade.eventId).not.toBe(first.eventId);
    expect(regrade.replayed).toBe(false);
    expect([first.submissionSequence, regrade.submissionSequence]).toEqual([1, 2]);

    const messages = await readStream(nats.url, gradecast.config.stream.name);
    const events = messages
      .map((m) => ({ seq: m.seq, event: decodeScoreEvent(m.data) }))
      .filter(({ event }) => event.scoreData?.submissionId === 3001n);
    expect(events.map(({ event }) => event.submissionSequence)).toEqual([1, 2]);
    expect(events.map(({ event }) => event.scoreData?.pointsEarned)).toEqual([4, 9]);
    expect((await gradecast.client.getScore(3001n)).event?.submissionSequence).toBe(2);
  });

  it("a submission id reused for another learner is refused with FAILED_PRECONDITION", async () => {
    await gradecast.client.submitScore(sampleScoreData({ submissionId: 4001n }));
    const before = storeCounts(sqlitePath(gradecast.config)).scores;
    await expect(
      gradecast.client.submitScore(
        sampleScoreData({ submissionId: 4001n, userId: "someone-else" }),
      ),
    ).rejects.toMatchObject({
      code: 9,
      details: expect.stringMatching(/^submission 4001 in queue "python-grader" is recorded for/),
    });
    expect(storeCounts(sqlitePath(gradecast.config)).scores).toBe(before);
  });

  it("GetScore of an unknown submission is NOT_FOUND", async () => {
    await expect(gradecast.client.getScore(999_999n)).rejects.toMatchObject({ code: 5 });
  });
});
