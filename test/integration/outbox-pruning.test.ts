import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  type ExternalGraderScoreData,
  ExternalGraderScoreSubmitted,
  newEventId,
  type SubmitScoreResponse,
} from "../../src/contract/index.js";
import type { ServeConfig } from "../../src/server/index.js";
import {
  type EventEncoding,
  type NewScore,
  OutboxPruner,
  PostgresStore,
  type Store,
  ThreadedSqliteStore,
} from "../../src/store/index.js";
import { runScript, type ScriptRun } from "../helpers/child-process.js";
import { sampleScoreData } from "../helpers/contract-fixtures.js";
import {
  pollUntil,
  readStream,
  startGradecast,
  type TestGradecast,
  testLogger,
} from "../helpers/gradecast.js";
import { getProbe, sampleValue } from "../helpers/http-probes.js";
import { type NatsServerHandle, startNatsServer } from "../helpers/nats-server.js";
import { createTestDatabase, queryDatabase } from "../helpers/postgres.js";

const encoding: EventEncoding = {
  origin: { source: "openedx/gradecast/test", sourcehost: "test-host", sourcelib: "0.1.0" },
  subjectPrefix: "gradecast",
};
const QUEUE = "prune-queue";

/** Where one test's data lives, and a way to run SQL beside the store (same text on both). */
interface StoreHome {
  /** A `--store` value. */
  location: string;
  makeStore(): Store;
  query(sql: string): Promise<Record<string, unknown>[]>;
  remove(): Promise<void>;
}

function sqliteHome(): Promise<StoreHome> {
  const dir = mkdtempSync(join(tmpdir(), "gradecast-prune-"));
  const path = join(dir, "gradecast.sqlite");
  return Promise.resolve({
    location: path,
    makeStore: () => new ThreadedSqliteStore({ path, encoding }),
    query: async (sql) => {
      const db = new Database(path, { fileMustExist: true });
      try {
        const statement = db.prepare(sql);
        if (!statement.reader) {
          statement.run();
          return [];
        }
        return statement.all() as Record<string, unknown>[];
      } finally {
        db.close();
      }
    },
    remove: async () => rmSync(dir, { recursive: true, force: true }),
  });
}

async function postgresHome(): Promise<StoreHome> {
  const database = await createTestDatabase();
  return {
    location: database.url,
    makeStore: () => new PostgresStore({ url: database.url, encoding, poolSize: 4 }),
    query: (sql) => queryDatabase(database.url, sql),
    remove: () => database.drop(),
  };
}

const HOMES: Array<[string, () => Promise<StoreHome>]> = [
  ["SQLite (worker thread)", sqliteHome],
  ["PostgreSQL", postgresHome],
];

/** A new score of submission `submissionId` in the test queue. */
function newScore(
  submissionId: number,
  overrides: Partial<ExternalGraderScoreData> = {},
  graderName?: string,
): NewScore {
  return {
    scoreData: sampleScoreData({
      submissionId: BigInt(submissionId),
      queueName: QUEUE,
      ...overrides,
    }),
    eventId: newEventId(),
    time: new Date(),
    ...(graderName === undefined ? {} : { graderName }),
  };
}

describe.each(HOMES)("%s: pruneOutbox", (_name, makeHome) => {
  let home: StoreHome;
  let store: Store;

  beforeEach(async () => {
    home = await makeHome();
    store = home.makeStore();
    await store.start();
  });

  afterEach(async () => {
    await store?.close();
    await home?.remove();
  });

  /** Records one first score per id; returns their event ids. */
  async function record(submissionIds: readonly number[]): Promise<string[]> {
    const scores = submissionIds.map((id) => newScore(id));
    const outcomes = await store.recordScores(scores, 0);
    expect(outcomes.map((outcome) => outcome.kind)).toEqual(scores.map(() => "accepted"));
    return scores.map((score) => score.eventId);
  }

  async function publishAt(eventIds: readonly string[], publishedAtMs: number): Promise<void> {
    await store.markPublished(
      eventIds.map((eventId, index) => ({ eventId, streamSequence: index + 1 })),
    );
    const list = eventIds.map((eventId) => `'${eventId}'`).join(", ");
    await home.query(
      `UPDATE outbox SET published_at_ms = ${publishedAtMs} WHERE event_id IN (${list})`,
    );
  }

  async function outboxEventIds(): Promise<string[]> {
    const rows = await home.query("SELECT event_id FROM outbox ORDER BY position");
    return rows.map((row) => String(row.event_id));
  }

  async function scoreCount(): Promise<number> {
    const rows = await home.query("SELECT count(*) AS n FROM scores");
    return Number(rows[0]?.n);
  }

  it("deletes rows published before the cutoff, never newer, pending or parked ones", async () => {
    const [old1, old2, recent, pending, parked] = (await record([1, 2, 3, 4, 5])) as [
      string,
      string,
      string,
      string,
      string,
    ];
    await publishAt([old1], 1_000);
    await publishAt([old2], 2_000);
    await publishAt([recent], 3_000);
    const claimed = await store.claimPending(10, Date.now(), Date.now() + 60_000);
    expect(claimed.map((entry) => entry.eventId)).toEqual([pending, parked]);
    await store.releaseClaims([
      { eventId: pending, kind: "retry", retryAtMs: 0, error: "publish timed out" },
      { eventId: parked, kind: "park", error: "maximum payload exceeded" },
    ]);

    expect(await store.pruneOutbox({ publishedBeforeMs: 3_000, limit: 100 })).toBe(2);
    expect(await outboxEventIds()).toEqual([recent, pending, parked]);
    // Far in the future: only the published row goes; pending and parked rows stay.
    expect(
      await store.pruneOutbox({ publishedBeforeMs: Date.now() + 86_400_000, limit: 100 }),
    ).toBe(1);
    expect(await outboxEventIds()).toEqual([pending, parked]);
    expect(await store.outboxBacklog()).toMatchObject({ pending: 1, parked: 1 });
    expect(await scoreCount()).toBe(5);
  });

  it("deletes at most `limit` rows per call, oldest publish first", async () => {
    const eventIds = await record([11, 12, 13, 14, 15]);
    for (const [index, eventId] of eventIds.entries()) await publishAt([eventId], 10_000 - index);
    const deleted: number[] = [];
    for (let round = 0; round < 4; round += 1) {
      deleted.push(await store.pruneOutbox({ publishedBeforeMs: 20_000, limit: 2 }));
    }
    expect(deleted).toEqual([2, 2, 1, 0]);
    expect(await outboxEventIds()).toEqual([]);
  });

  it("an OutboxPruner round deletes every row past the retention in batches", async () => {
    const eventIds = await record([21, 22, 23, 24, 25, 26, 27]);
    await publishAt(eventIds.slice(0, 5), Date.now() - 60_000);
    await publishAt(eventIds.slice(5), Date.now());
    const batches: number[] = [];
    const pruner = new OutboxPruner(
      store,
      { retentionMs: 30_000, intervalMs: 60_000, batchSize: 2, onPruned: (n) => batches.push(n) },
      testLogger(),
    );
    expect(await pruner.pruneOnce()).toBe(5);
    expect(batches).toEqual([2, 2, 1]);
    expect(await outboxEventIds()).toEqual(eventIds.slice(5));
    await pruner.close();
  });

  it("keeps GetScore's event byte for byte, and retries replaying the first event id, once the row is gone", async () => {
    const first = newScore(31, {}, "grader-7");
    const regrade = newScore(32, {}, "grader-7");
    const regradeAgain = { ...newScore(32, { pointsEarned: 9 }, "grader-7") };
    await store.recordScores([first, regrade], 0);
    await store.recordScores([regradeAgain], 0);
    const before = await store.latestScore({ queueName: QUEUE, submissionId: 31n });
    const beforeRegraded = await store.latestScore({ queueName: QUEUE, submissionId: 32n });
    await publishAt([first.eventId, regrade.eventId, regradeAgain.eventId], 1_000);
    expect(await store.pruneOutbox({ publishedBeforeMs: 2_000, limit: 100 })).toBe(3);
    expect(await outboxEventIds()).toEqual([]);

    const after = await store.latestScore({ queueName: QUEUE, submissionId: 31n });
    expect(Buffer.from(after?.payload ?? [])).toEqual(Buffer.from(before?.payload ?? []));
    expect(after?.record).toMatchObject({
      eventId: first.eventId,
      submissionSequence: 1,
      published: true,
    });
    const event = ExternalGraderScoreSubmitted.decode(after?.payload ?? new Uint8Array());
    expect(event.metadata?.source).toBe("openedx/gradecast/test/grader-7");
    const across = await store.latestScoresAcrossQueues(32n);
    expect(across).toHaveLength(1);
    expect(Buffer.from(across[0]?.payload ?? [])).toEqual(
      Buffer.from(beforeRegraded?.payload ?? []),
    );
    expect(across[0]?.record).toMatchObject({
      eventId: regradeAgain.eventId,
      submissionSequence: 2,
    });

    // The same score again: a retry, decided on the score row alone.
    const [replay] = await store.recordScores([{ ...first, eventId: newEventId() }], 0);
    expect(replay).toMatchObject({
      kind: "replayed",
      record: { eventId: first.eventId, published: true },
    });
    // Another score: a regrade that continues the submission's sequence.
    const [next] = await store.recordScores([newScore(31, { pointsEarned: 3 })], 0);
    expect(next).toMatchObject({ kind: "accepted", record: { submissionSequence: 2 } });
    expect(await scoreCount()).toBe(4);
  });

  it("fills the event metadata of scores written before schema version 4, so their events survive pruning", async () => {
    const graded = newScore(41, {}, "grader-9");
    const plain = newScore(42);
    await store.recordScores([graded, plain], 0);
    const before = await store.latestScore({ queueName: QUEUE, submissionId: 41n });
    await store.close();
    // Back to version 3, as an older gradecast left the store.
    for (const sql of [
      "DROP INDEX outbox_published",
      "ALTER TABLE scores DROP COLUMN event_source",
      "ALTER TABLE scores DROP COLUMN event_sourcehost",
      "ALTER TABLE scores DROP COLUMN event_sourcelib",
      "ALTER TABLE scores DROP COLUMN event_minor_version",
      "DELETE FROM schema_version WHERE version = 4",
    ]) {
      await home.query(sql);
    }

    store = home.makeStore();
    await store.start();
    const rows = await home.query(
      "SELECT event_source, event_sourcehost, event_sourcelib, event_minor_version FROM scores ORDER BY submission_id",
    );
    expect(
      rows.map((row) => ({ ...row, event_minor_version: Number(row.event_minor_version) })),
    ).toEqual([
      {
        event_source: "openedx/gradecast/test/grader-9",
        event_sourcehost: "test-host",
        event_sourcelib: "0.1.0",
        event_minor_version: 0,
      },
      {
        event_source: "openedx/gradecast/test",
        event_sourcehost: "test-host",
        event_sourcelib: "0.1.0",
        event_minor_version: 0,
      },
    ]);
    await publishAt([graded.eventId, plain.eventId], 1_000);
    expect(await store.pruneOutbox({ publishedBeforeMs: 2_000, limit: 100 })).toBe(2);
    const after = await store.latestScore({ queueName: QUEUE, submissionId: 41n });
    expect(Buffer.from(after?.payload ?? [])).toEqual(Buffer.from(before?.payload ?? []));
  });
});

/** What `explain --json` prints, as far as this test reads it. */
interface ExplainJSON {
  queues: Array<{
    verdict: { kind: string; text: string };
    scores: Array<{ eventId: string; eventSource?: string; outbox: { state: string } }>;
  }>;
}

describe.each(HOMES)("%s: a serving gradecast with --outbox-retention", (_name, makeHome) => {
  const RETENTION_MS = 500;
  let nats: NatsServerHandle;
  let home: StoreHome;
  let gradecast: TestGradecast;

  beforeAll(async () => {
    nats = await startNatsServer();
    home = await makeHome();
    const store: ServeConfig["store"] = home.location.startsWith("postgres")
      ? { kind: "postgres", url: home.location, poolSize: 4 }
      : { kind: "sqlite", path: home.location };
    gradecast = await startGradecast(nats.url, {
      store,
      outboxPruning: { retentionMs: RETENTION_MS, intervalMs: 200, batchSize: 16 },
    });
    await gradecast.server.streamReady;
  });

  afterAll(async () => {
    await gradecast?.cleanup();
    await home?.remove();
    await nats?.cleanup();
  });

  async function outboxRowsOf(eventIds: readonly string[]): Promise<number> {
    const list = eventIds.map((eventId) => `'${eventId}'`).join(", ");
    const rows = await home.query(`SELECT count(*) AS n FROM outbox WHERE event_id IN (${list})`);
    return Number(rows[0]?.n);
  }

  it("prunes published rows on schedule while scores keep flowing, and loses nothing", async () => {
    const { client } = gradecast;
    const score = (id: number, overrides: Partial<ExternalGraderScoreData> = {}) =>
      sampleScoreData({ submissionId: BigInt(id), queueName: QUEUE, ...overrides });
    const accepted: string[] = [];
    const submit = async (data: ExternalGraderScoreData) => {
      const answer = await client.submitScore(data);
      expect(answer.replayed).toBe(false);
      accepted.push(answer.eventId);
      return answer;
    };

    // A first wave: 40 submissions, then a regrade of the first 10.
    const firsts = await Promise.all(
      Array.from({ length: 40 }, (_, index) => submit(score(100 + index))),
    );
    const regrades: SubmitScoreResponse[] = [];
    for (let index = 0; index < 10; index += 1) {
      regrades.push(await submit(score(100 + index, { pointsEarned: 9 })));
    }
    const firstWave = [...firsts, ...regrades].map((answer) => answer.eventId);

    // More scores keep coming while the pruner works.
    let isFlowing = true;
    let nextId = 1_000;
    const flow = (async () => {
      while (isFlowing) await submit(score(nextId++));
    })();
    const left = await pollUntil(
      () => outboxRowsOf(firstWave),
      (count) => count === 0,
    );
    isFlowing = false;
    await flow;
    expect(left).toBe(0);
    expect(nextId).toBeGreaterThan(1_000);

    // Retries after pruning: the first event id again, nothing published.
    const retried = await client.submitScore(score(120));
    expect(retried).toMatchObject({
      replayed: true,
      eventId: firsts[20]?.eventId,
      published: true,
    });
    const retriedRegrade = await client.submitScore(score(105, { pointsEarned: 9 }));
    expect(retriedRegrade).toMatchObject({ replayed: true, eventId: regrades[5]?.eventId });

    // Every accepted event is on the stream, once, each submission's in order.
    const stream = await pollUntil(
      () => readStream(nats.url, "GRADECAST_TEST"),
      (messages) => messages.length >= accepted.length,
    );
    expect(stream.map((message) => message.headers["Nats-Msg-Id"]).sort()).toEqual(
      [...accepted].sort(),
    );
    const order = stream.map((message) => message.headers["Nats-Msg-Id"]);
    expect(order.indexOf(regrades[5]?.eventId)).toBeGreaterThan(order.indexOf(firsts[5]?.eventId));

    // GetScore answers the latest score, exactly the event the stream holds.
    const latest = await client.getScore(105n, QUEUE);
    expect(latest.published).toBe(true);
    expect(latest.event?.metadata?.id).toBe(regrades[5]?.eventId);
    expect(latest.event?.scoreData?.pointsEarned).toBe(9);
    const published = stream.find(
      (message) => message.headers["Nats-Msg-Id"] === regrades[5]?.eventId,
    );
    expect(
      Buffer.from(
        ExternalGraderScoreSubmitted.encode(latest.event as ExternalGraderScoreSubmitted).finish(),
      ),
    ).toEqual(Buffer.from(published?.data ?? []));

    const metrics = await getProbe(gradecast.server.metricsPort, "/metrics");
    expect(sampleValue(metrics.body, "gradecast_outbox_pruned_total")).toBeGreaterThanOrEqual(
      firstWave.length,
    );
  });

  it("explain tells a pruned event's story: published, stream sequence unknown", async () => {
    await gradecast.client.submitScore(sampleScoreData({ submissionId: 7_001n, queueName: QUEUE }));
    const answer = await gradecast.client.getScore(7_001n, QUEUE);
    const eventId = answer.event?.metadata?.id ?? "";
    await pollUntil(
      () => outboxRowsOf([eventId]),
      (count) => count === 0,
    );
    const run: ScriptRun = await runScript(
      "src/cli/run.ts",
      [
        "explain",
        "--submission-id",
        "7001",
        "--store",
        home.location,
        "--nats-url",
        nats.url,
        "--stream",
        "GRADECAST_TEST",
        "--json",
      ],
      { timeoutMs: 60_000, killSignal: "SIGKILL" },
    );
    expect({ code: run.code, stderr: run.stderr }).toEqual({ code: 0, stderr: "" });
    const story = JSON.parse(run.stdout) as ExplainJSON;
    expect(story.queues).toHaveLength(1);
    expect(story.queues[0]?.verdict).toMatchObject({
      kind: "stream-unknown",
      text: expect.stringMatching(/^published \(outbox row pruned\)/),
    });
    expect(story.queues[0]?.scores).toMatchObject([
      { eventId, eventSource: "openedx/gradecast/test", outbox: { state: "missing" } },
    ]);
  });
});
