import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type ExternalGraderScoreData, SubmissionConflictError } from "../../src/contract/index.js";
import {
  type EventEncoding,
  GroupCommit,
  type NewScore,
  PostgresStore,
  type RecordOutcome,
  SqliteStore,
  type Store,
  ThreadedSqliteStore,
} from "../../src/store/index.js";
import { sampleScoreData } from "../helpers/contract-fixtures.js";
import { createTestDatabase, queryDatabase } from "../helpers/postgres.js";

const encoding: EventEncoding = {
  origin: { source: "test", sourcehost: "h", sourcelib: "0.1.0" },
  subjectPrefix: "gradecast",
};

/** Where one test's store lives: `makeStore` opens another handle on the same data. */
interface StoreHome {
  location: string;
  makeStore(): Store;
  remove(): Promise<void>;
}

async function sqliteHome(makeStore: (path: string) => Store): Promise<StoreHome> {
  const dir = mkdtempSync(join(tmpdir(), "gradecast-store-"));
  const path = join(dir, "nested", "gradecast.sqlite");
  return {
    location: path,
    makeStore: () => makeStore(path),
    remove: async () => rmSync(dir, { recursive: true, force: true }),
  };
}

async function postgresHome(): Promise<StoreHome> {
  const database = await createTestDatabase();
  return {
    location: database.url,
    makeStore: () => new PostgresStore({ url: database.url, encoding, poolSize: 4 }),
    remove: () => database.drop(),
  };
}

// One contract, three stores: SQLite in this thread, SQLite in a worker thread, PostgreSQL.
const implementations: Array<[string, () => Promise<StoreHome>]> = [
  ["SqliteStore", () => sqliteHome((path) => new SqliteStore({ path, encoding }))],
  ["ThreadedSqliteStore", () => sqliteHome((path) => new ThreadedSqliteStore({ path, encoding }))],
  ["PostgresStore", postgresHome],
];

describe.each(implementations)("%s", (name, makeHome) => {
  let home: StoreHome;
  let store: Store;

  beforeEach(async () => {
    home = await makeHome();
    store = home.makeStore();
    await store.start();
  });

  afterEach(async () => {
    await store.close();
    await home.remove();
  });

  function newScore(overrides: Partial<ExternalGraderScoreData> = {}): NewScore {
    return { scoreData: sampleScoreData(overrides), eventId: randomUUID(), time: new Date() };
  }

  async function recordOne(score: NewScore, leaseUntilMs = 0): Promise<RecordOutcome> {
    const [outcome] = await store.recordScores([score], leaseUntilMs);
    if (!outcome) throw new Error("no outcome");
    return outcome;
  }

  describe("store contract", () => {
    it("records the schema version it migrated to", async () => {
      if (name === "PostgresStore") {
        const rows = await queryDatabase(home.location, "SELECT version FROM schema_version");
        expect(rows).toEqual([{ version: 1 }]);
      } else {
        const db = new Database(home.location, { readonly: true });
        expect(db.pragma("journal_mode", { simple: true })).toBe("wal");
        expect(db.pragma("page_size", { simple: true })).toBe(8192);
        expect(db.prepare("SELECT max(version) AS v FROM schema_version").get()).toEqual({ v: 1 });
        db.close();
      }
    });

    it("reopens its data with everything committed and migrates nothing twice", async () => {
      await recordOne(newScore({ submissionId: 15n }));
      await store.close();
      store = home.makeStore();
      await store.start();
      expect((await store.latestScore(15n))?.record.submissionSequence).toBe(1);
      expect(await store.outboxBacklog()).toMatchObject({ pending: 1 });
    });

    it("accepts a first score as sequence 1 with its outbox row pending", async () => {
      const score = newScore({ submissionId: 10n });
      const outcome = await recordOne(score);
      expect(outcome.kind).toBe("accepted");
      expect(outcome.kind === "accepted" && outcome.record).toMatchObject({
        eventId: score.eventId,
        submissionSequence: 1,
        published: false,
      });
      expect(await store.outboxBacklog()).toMatchObject({ pending: 1 });
      const latest = await store.latestScore(10n);
      expect(latest?.record.eventId).toBe(score.eventId);
    });

    it("replays an identical score and regrades a different one, even within one transaction", async () => {
      const first = newScore({ submissionId: 20n, pointsEarned: 5 });
      const retry = { ...newScore({ submissionId: 20n, pointsEarned: 5 }) };
      const regrade = newScore({ submissionId: 20n, pointsEarned: 8 });
      const outcomes = await store.recordScores([first, retry, regrade], 0);
      expect(outcomes.map((o) => o.kind)).toEqual(["accepted", "replayed", "accepted"]);
      expect(outcomes[1]?.kind === "replayed" && outcomes[1].record.eventId).toBe(first.eventId);
      expect(outcomes[2]?.kind === "accepted" && outcomes[2].record.submissionSequence).toBe(2);
      expect((await store.latestScore(20n))?.record.submissionSequence).toBe(2);
    });

    it("rejects a submission id reused by another learner, naming the fields", async () => {
      await recordOne(newScore({ submissionId: 30n }));
      const outcome = await recordOne(
        newScore({ submissionId: 30n, userId: "x", queueName: "other" }),
      );
      expect(outcome.kind).toBe("rejected");
      const error = outcome.kind === "rejected" ? outcome.error : undefined;
      expect(error).toBeInstanceOf(SubmissionConflictError);
      expect((error as SubmissionConflictError).fields).toEqual(["user_id", "queue_name"]);
    });

    it("keeps a 64-bit submission id exact", async () => {
      const id = 9_223_372_036_854_775_807n;
      await recordOne(newScore({ submissionId: id }));
      const latest = await store.latestScore(id);
      expect(latest).toBeDefined();
      expect(await store.latestScore(id - 1n)).toBeUndefined();
    });

    it("claims pending entries oldest first, leases them, and marks them published", async () => {
      const scores = [40n, 41n, 42n].map((submissionId) => newScore({ submissionId }));
      for (const score of scores) await recordOne(score);
      const now = Date.now();
      const claimed = await store.claimPending(2, now, now + 60_000);
      expect(claimed.map((entry) => entry.eventId)).toEqual([
        scores[0]?.eventId,
        scores[1]?.eventId,
      ]);
      expect(claimed[0]?.message.subject).toBe("gradecast.scores.v1.python-grader");
      expect(claimed[0]?.attempts).toBe(1);
      // Leased entries are not claimed again; the third one is.
      const next = await store.claimPending(10, now, now + 60_000);
      expect(next.map((entry) => entry.eventId)).toEqual([scores[2]?.eventId]);

      await store.markPublished(
        claimed.map((entry, i) => ({ eventId: entry.eventId, streamSequence: i + 1 })),
      );
      await store.releaseClaims([scores[2]?.eventId ?? ""]);
      expect(await store.outboxBacklog()).toMatchObject({ pending: 1 });
      const again = await store.claimPending(10, Date.now(), Date.now() + 60_000);
      expect(again.map((entry) => entry.eventId)).toEqual([scores[2]?.eventId]);
      expect(again[0]?.attempts).toBe(2);
      expect((await store.latestScore(40n))?.record.published).toBe(true);
    });

    it("does not hand out rows leased to a direct publish until the lease ends", async () => {
      const score = newScore({ submissionId: 50n });
      const now = Date.now();
      await recordOne(score, now + 60_000);
      expect(await store.claimPending(10, now, now + 1_000)).toEqual([]);
      expect(await store.claimPending(10, now + 61_000, now + 62_000)).toHaveLength(1);
    });

    // SQLite: one process owns the file, so a reopening store takes back the
    // leases of the one before it. PostgreSQL is shared: other instances' leases
    // stay until they expire.
    it("on reopen, takes back old leases only when it owns its data alone", async () => {
      const ownsItsData = name !== "PostgresStore";
      const now = Date.now();
      await recordOne(newScore({ submissionId: 60n }), now + 60_000);
      await store.close();
      store = home.makeStore();
      await store.start();
      expect(await store.claimPending(10, now, now + 1_000)).toHaveLength(ownsItsData ? 1 : 0);
      if (!ownsItsData) {
        expect(await store.claimPending(10, now + 60_000, now + 62_000)).toHaveLength(1);
      }
    });
  });

  describe("GroupCommit", () => {
    /** A real store that counts its transactions. */
    function countingStore(inner: Store): Store & { transactions: number[] } {
      const transactions: number[] = [];
      return Object.assign(Object.create(inner) as Store, {
        transactions,
        recordScores: (scores: readonly NewScore[], lease: number) => {
          transactions.push(scores.length);
          return inner.recordScores(scores, lease);
        },
      });
    }

    it("commits concurrent scores in shared transactions, each with its own outcome", async () => {
      const counted = countingStore(store);
      const groupCommit = new GroupCommit(counted, { maxBatch: 64, directLeaseMs: () => 0 });
      const scores = Array.from({ length: 200 }, (_, i) =>
        newScore({ submissionId: BigInt(1000 + i) }),
      );
      const outcomes = await Promise.all(scores.map((score) => groupCommit.record(score)));
      expect(outcomes.every((o) => o.kind === "accepted")).toBe(true);
      expect(outcomes.map((o) => o.kind === "accepted" && o.record.eventId)).toEqual(
        scores.map((s) => s.eventId),
      );
      expect(counted.transactions.reduce((a, b) => a + b, 0)).toBe(200);
      expect(Math.max(...counted.transactions)).toBeLessThanOrEqual(64);
      expect(counted.transactions.length).toBeLessThanOrEqual(8);
      expect(await store.outboxBacklog()).toMatchObject({ pending: 200 });
    });

    it("rejects every score of a batch whose transaction fails", async () => {
      await store.close();
      const groupCommit = new GroupCommit(store, { maxBatch: 64, directLeaseMs: () => 0 });
      await expect(groupCommit.record(newScore())).rejects.toThrow(/not open/);
      store = home.makeStore();
      await store.start();
    });
  });
});
