import { randomUUID } from "node:crypto";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { ExternalGraderScoreData } from "../../src/contract/index.js";
import {
  type EventEncoding,
  type NewScore,
  PostgresStore,
  type RecordOutcome,
} from "../../src/store/index.js";
import {
  POSTGRES_MIGRATION_LOCK,
  POSTGRES_MIGRATIONS,
} from "../../src/store/postgres-migrations.js";
import { sampleScoreData } from "../helpers/contract-fixtures.js";
import { pollUntil } from "../helpers/gradecast.js";
import {
  connectToDatabase,
  createTestDatabase,
  queryDatabase,
  type TestDatabase,
} from "../helpers/postgres.js";

const encoding: EventEncoding = {
  origin: { source: "test", sourcehost: "h", sourcelib: "0.1.0" },
  subjectPrefix: "gradecast",
};

function newScore(overrides: Partial<ExternalGraderScoreData> = {}): NewScore {
  return { scoreData: sampleScoreData(overrides), eventId: randomUUID(), time: new Date() };
}

async function recordOne(store: PostgresStore, score: NewScore): Promise<RecordOutcome> {
  const [outcome] = await store.recordScores([score], 0);
  if (!outcome) throw new Error("no outcome");
  return outcome;
}

// Several gradecast instances on one database: each store here stands for one instance.
describe("PostgresStore shared by several instances", () => {
  let database: TestDatabase;
  let stores: PostgresStore[] = [];

  async function startInstances(count: number): Promise<PostgresStore[]> {
    const started = Array.from(
      { length: count },
      () => new PostgresStore({ url: database.url, encoding, poolSize: 4 }),
    );
    stores.push(...started);
    await Promise.all(started.map((store) => store.start()));
    return started;
  }

  beforeEach(async () => {
    database = await createTestDatabase();
  });

  afterEach(async () => {
    await Promise.all(stores.map((store) => store.close()));
    stores = [];
    await database.drop();
  });

  it("instances starting together queue on the migration lock, then each version is applied once", async () => {
    // Holding the lock the migrations take: an instance that did not take it would go ahead now.
    const holder = await connectToDatabase(database.url);
    let startedCount = 0;
    try {
      await holder.query("BEGIN");
      await holder.query("SELECT pg_advisory_xact_lock($1)", [POSTGRES_MIGRATION_LOCK.toString()]);
      const starting = Array.from(
        { length: 4 },
        () => new PostgresStore({ url: database.url, encoding, poolSize: 4 }),
      );
      stores.push(...starting);
      const allStarted = Promise.all(
        starting.map((store) =>
          store.start().then(() => {
            startedCount += 1;
          }),
        ),
      );
      allStarted.catch(() => undefined); // awaited below; a failure fails the test there
      const waiting = await pollUntil(
        () =>
          queryDatabase<{ n: number }>(
            database.url,
            `SELECT count(*)::integer AS n FROM pg_locks
              WHERE locktype = 'advisory' AND NOT granted
                AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
          ),
        (rows) => rows[0]?.n === 4,
        30_000,
      );
      expect(waiting).toEqual([{ n: 4 }]);
      expect(startedCount).toBe(0);
      expect(await queryDatabase(database.url, "SELECT to_regclass('scores') AS t")).toEqual([
        { t: null },
      ]);
      await holder.query("COMMIT");
      await allStarted;
    } finally {
      await holder.end();
    }
    expect(startedCount).toBe(4);
    const versions = await queryDatabase(
      database.url,
      "SELECT version FROM schema_version ORDER BY version",
    );
    expect(versions).toEqual(POSTGRES_MIGRATIONS.map((_, index) => ({ version: index + 1 })));
  });

  it("relays claiming at the same moment take disjoint rows, and together all of them", async () => {
    const [a, b] = await startInstances(2);
    if (!a || !b) throw new Error("two instances");
    const scores = Array.from({ length: 100 }, (_, i) => newScore({ submissionId: BigInt(i + 1) }));
    await a.recordScores(scores, 0);
    const now = Date.now();
    const [claimedByA, claimedByB] = await Promise.all([
      a.claimPending(60, now, now + 60_000),
      b.claimPending(60, now, now + 60_000),
    ]);
    const idsA = claimedByA.map((entry) => entry.eventId);
    const idsB = claimedByB.map((entry) => entry.eventId);
    expect(idsA.filter((id) => idsB.includes(id))).toEqual([]);
    expect(new Set([...idsA, ...idsB])).toEqual(new Set(scores.map((score) => score.eventId)));
  });

  it("a crashed instance's claimed rows go to another instance once the lease ends", async () => {
    const [crashed, survivor] = await startInstances(2);
    if (!crashed || !survivor) throw new Error("two instances");
    await crashed.recordScores([newScore({ submissionId: 5n }), newScore({ submissionId: 6n })], 0);
    const now = Date.now();
    expect(await crashed.claimPending(10, now, now + 2_000)).toHaveLength(2);
    // It never marks nor releases them: its process is gone.
    expect(await survivor.claimPending(10, now + 1_999, now + 5_000)).toEqual([]);
    const taken = await survivor.claimPending(10, now + 2_000, now + 5_000);
    expect(taken.map((entry) => entry.attempts)).toEqual([2, 2]);
  });

  it("regrades of one submission arriving at two instances at once get sequences 1..n", async () => {
    const [a, b] = await startInstances(2);
    if (!a || !b) throw new Error("two instances");
    // Same points, only score_msg differs: a store that took a change of score_msg for a retry
    // would replay all but the first, whatever order the commits land in.
    const regrades = Array.from({ length: 30 }, (_, i) =>
      newScore({ submissionId: 77n, scoreMsg: `regrade ${i}` }),
    );
    const outcomes = await Promise.all(
      regrades.map((score, i) => recordOne(i % 2 === 0 ? a : b, score)),
    );
    expect(outcomes.map((outcome) => outcome.kind)).toEqual(regrades.map(() => "accepted"));
    const sequences = outcomes.map((o) =>
      o.kind === "accepted" ? o.record.submissionSequence : 0,
    );
    expect(sequences.sort((x, y) => x - y)).toEqual(regrades.map((_, i) => i + 1));
    const rows = await queryDatabase<{ n: number }>(
      database.url,
      "SELECT count(*)::integer AS n FROM outbox",
    );
    expect(rows).toEqual([{ n: 30 }]);
  });

  it("the same retry reaching two instances at once is accepted once and replayed once", async () => {
    const [a, b] = await startInstances(2);
    if (!a || !b) throw new Error("two instances");
    const first = newScore({ submissionId: 88n });
    const retry = { ...first, eventId: randomUUID() };
    const outcomes = await Promise.all([recordOne(a, first), recordOne(b, retry)]);
    const kinds = outcomes.map((outcome) => outcome.kind).sort();
    expect(kinds).toEqual(["accepted", "replayed"]);
    const ids = outcomes.map((outcome) => outcome.kind !== "rejected" && outcome.record.eventId);
    expect(ids[0]).toBe(ids[1]);
    expect(
      (await a.latestScore({ queueName: first.scoreData.queueName, submissionId: 88n }))?.record
        .submissionSequence,
    ).toBe(1);
  });
});
