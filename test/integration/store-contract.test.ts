import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  decodeScoreEvent,
  type ExternalGraderScoreData,
  SubmissionConflictError,
} from "../../src/contract/index.js";
import {
  type EventEncoding,
  GroupCommit,
  type NewScore,
  PostgresStore,
  type RecordOutcome,
  SqliteStore,
  type Store,
  type SubmissionKey,
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
  /** Runs one SQL statement (the same text on SQLite and PostgreSQL) beside the store. */
  query(sql: string): Promise<Record<string, unknown>[]>;
  remove(): Promise<void>;
}

async function sqliteHome(makeStore: (path: string) => Store): Promise<StoreHome> {
  const dir = mkdtempSync(join(tmpdir(), "gradecast-store-"));
  const path = join(dir, "nested", "gradecast.sqlite");
  return {
    location: path,
    makeStore: () => makeStore(path),
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
  };
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

/**
 * What makes a stored submission (an id within a queue) someone else's: each column differs on
 * its own. The queue is not among them: another queue is another submission.
 */
const IDENTITY_CHANGES: Array<[string, Partial<ExternalGraderScoreData>]> = [
  ["course_id", { courseId: "course-v1:edX+OtherX+2026" }],
  ["user_id", { userId: "another-learner" }],
  ["module_id", { moduleId: "block-v1:edX+DemoX+Demo_Course+type@problem+block@other" }],
  ["queue_key", { queueKey: "another-queue-key" }],
];

/** What makes a score a regrade rather than a retry: each field differs on its own. */
const REGRADE_CHANGES: Array<[string, Partial<ExternalGraderScoreData>]> = [
  ["points_earned", { pointsEarned: 9 }],
  ["points_possible", { pointsPossible: 12 }],
  ["score_msg", { scoreMsg: '{"correct": true, "score": 0.7, "msg": "<p>regraded</p>"}' }],
];

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

  /** The submission `submissionId` of `queueName` (by default the queue sampleScoreData uses). */
  function inQueue(submissionId: bigint, queueName = "python-grader"): SubmissionKey {
    return { queueName, submissionId };
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
        expect(rows).toEqual([{ version: 1 }, { version: 2 }, { version: 3 }, { version: 4 }]);
      } else {
        const db = new Database(home.location, { readonly: true });
        expect(db.pragma("journal_mode", { simple: true })).toBe("wal");
        expect(db.pragma("page_size", { simple: true })).toBe(8192);
        expect(db.prepare("SELECT max(version) AS v FROM schema_version").get()).toEqual({ v: 4 });
        db.close();
      }
    });

    it("reopens its data with everything committed and migrates nothing twice", async () => {
      await recordOne(newScore({ submissionId: 15n }));
      await store.close();
      store = home.makeStore();
      await store.start();
      expect((await store.latestScore(inQueue(15n)))?.record.submissionSequence).toBe(1);
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
      const latest = await store.latestScore(inQueue(10n));
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
      expect((await store.latestScore(inQueue(20n)))?.record.submissionSequence).toBe(2);
    });

    it("rejects a submission id reused in its queue by another learner, naming no field", async () => {
      await recordOne(newScore({ submissionId: 30n, userId: "learner-a" }));
      const outcome = await recordOne(
        newScore({ submissionId: 30n, userId: "learner-b", moduleId: "block-v1:x+y+z" }),
      );
      expect(outcome.kind).toBe("rejected");
      const error = outcome.kind === "rejected" ? outcome.error : undefined;
      expect(error).toBeInstanceOf(SubmissionConflictError);
      expect(error?.message).toBe(
        'submission 30 in queue "python-grader" is recorded for another learner or problem; within a queue, a submission id belongs to one course, learner, problem and queue key',
      );
      // Nothing of the stored score, not even which fields differ.
      for (const revealing of ["learner-a", "user_id", "module_id", "course_id", "queue_key"]) {
        expect(error?.message).not.toContain(revealing);
      }
    });

    it.each(IDENTITY_CHANGES)(
      "refuses a submission id reused in its queue whose %s alone differs, with the same message, and stores nothing",
      async (_column, change) => {
        const first = newScore({ submissionId: 32n });
        await recordOne(first);
        const outcome = await recordOne(newScore({ submissionId: 32n, ...change }));
        const error = outcome.kind === "rejected" ? outcome.error : undefined;
        expect(error).toBeInstanceOf(SubmissionConflictError);
        expect(error?.message).toMatch(
          /^submission 32 in queue "python-grader" is recorded for another learner or problem;/,
        );
        const latest = await store.latestScore(inQueue(32n));
        expect(latest?.record).toMatchObject({ eventId: first.eventId, submissionSequence: 1 });
        expect(await store.outboxBacklog()).toMatchObject({ pending: 1 });
      },
    );

    it("keeps the same submission id in two queues as two independent histories, even within one transaction", async () => {
      const inPython = newScore({ submissionId: 34n, queueName: "python-grader", pointsEarned: 5 });
      // Another learner and problem: in one queue, a conflict; in another, another submission.
      const inJava = newScore({
        submissionId: 34n,
        queueName: "java-grader",
        userId: "another-learner",
        moduleId: "block-v1:edX+DemoX+Demo_Course+type@problem+block@other",
        pointsEarned: 2,
      });
      const pythonRegrade = newScore({
        submissionId: 34n,
        queueName: "python-grader",
        pointsEarned: 8,
      });
      const javaRetry = newScore({
        submissionId: 34n,
        queueName: "java-grader",
        userId: "another-learner",
        moduleId: "block-v1:edX+DemoX+Demo_Course+type@problem+block@other",
        pointsEarned: 2,
      });
      const outcomes = await store.recordScores([inPython, inJava, pythonRegrade, javaRetry], 0);
      expect(
        outcomes.map((o) => [o.kind, o.kind === "rejected" ? 0 : o.record.submissionSequence]),
      ).toEqual([
        ["accepted", 1],
        ["accepted", 1],
        ["accepted", 2],
        ["replayed", 1],
      ]);
      expect(outcomes[3]?.kind === "replayed" && outcomes[3].record.eventId).toBe(inJava.eventId);

      // A later regrade in one queue moves only that queue's history.
      const javaRegrade = newScore({ ...inJava.scoreData, pointsEarned: 3 });
      const regraded = await recordOne(javaRegrade);
      expect(regraded.kind === "accepted" && regraded.record.submissionSequence).toBe(2);

      const python = await store.latestScore(inQueue(34n, "python-grader"));
      const java = await store.latestScore(inQueue(34n, "java-grader"));
      expect(python?.record.eventId).toBe(pythonRegrade.eventId);
      expect(java?.record.eventId).toBe(javaRegrade.eventId);
      expect(decodeScoreEvent(java?.payload ?? new Uint8Array()).scoreData?.userId).toBe(
        "another-learner",
      );
      expect(await store.latestScore(inQueue(34n, "ruby-grader"))).toBeUndefined();
      const across = await store.latestScoresAcrossQueues(34n);
      expect(across.map((stored) => [stored.queueName, stored.record.eventId]).sort()).toEqual(
        [
          ["java-grader", javaRegrade.eventId],
          ["python-grader", pythonRegrade.eventId],
        ].sort(),
      );
      expect(await store.latestScoresAcrossQueues(35n)).toEqual([]);
      expect(await store.outboxBacklog()).toMatchObject({ pending: 4 });
    });

    it.each(REGRADE_CHANGES)(
      "takes a score whose %s alone differs as a regrade: sequence 2 with its own event",
      async (_column, change) => {
        const first = newScore({ submissionId: 33n });
        await recordOne(first);
        const regrade = newScore({ submissionId: 33n, ...change });
        const outcome = await recordOne(regrade);
        expect(outcome.kind).toBe("accepted");
        expect(outcome.kind === "accepted" && outcome.record).toMatchObject({
          eventId: regrade.eventId,
          submissionSequence: 2,
        });
        const latest = await store.latestScore(inQueue(33n));
        expect(latest?.record.eventId).toBe(regrade.eventId);
        expect(decodeScoreEvent(latest?.payload ?? new Uint8Array()).scoreData).toEqual(
          regrade.scoreData,
        );
        expect(await store.outboxBacklog()).toMatchObject({ pending: 2 });
        // The same regrade again is its retry: the regrade's event, nothing new.
        const again = await recordOne(newScore({ submissionId: 33n, ...change }));
        expect(again.kind === "replayed" && again.record.eventId).toBe(regrade.eventId);
        expect(await store.outboxBacklog()).toMatchObject({ pending: 2 });
      },
    );

    it("keeps a 64-bit submission id exact: two ids one apart near 2^63 stay two submissions", async () => {
      // Both round to the same double (2^63): a store that loses precision anywhere mixes them up.
      const highest = 9_223_372_036_854_775_807n;
      const below = highest - 1n;
      const outcomes = [
        await recordOne(newScore({ submissionId: highest, pointsEarned: 1 })),
        await recordOne(newScore({ submissionId: below, pointsEarned: 2 })),
      ];
      expect(outcomes.map((o) => o.kind === "accepted" && o.record.submissionSequence)).toEqual([
        1, 1,
      ]);
      for (const [submissionId, pointsEarned] of [
        [highest, 1],
        [below, 2],
      ] as const) {
        const latest = await store.latestScore(inQueue(submissionId));
        const stored = decodeScoreEvent(latest?.payload ?? new Uint8Array()).scoreData;
        expect({ id: stored?.submissionId, points: stored?.pointsEarned }).toEqual({
          id: submissionId,
          points: pointsEarned,
        });
      }
      const columns = await home.query(
        "SELECT CAST(submission_id AS TEXT) AS id FROM scores ORDER BY submission_id",
      );
      expect(columns.map((row) => row.id)).toEqual([String(below), String(highest)]);
      expect(await store.latestScore(inQueue(highest - 2n))).toBeUndefined();
    });

    it("refuses to open data whose schema is newer than it knows, and changes nothing", async () => {
      await recordOne(newScore({ submissionId: 17n }));
      await store.close();
      await home.query("INSERT INTO schema_version (version, applied_at_ms) VALUES (99, 0)");
      store = home.makeStore();
      await expect(store.start()).rejects.toThrow(
        /schema version 99, newer than this gradecast knows/,
      );
      expect(await home.query("SELECT max(version) AS v FROM schema_version")).toEqual([{ v: 99 }]);
      expect(await home.query("SELECT CAST(count(*) AS INTEGER) AS n FROM scores")).toEqual([
        { n: 1 },
      ]);
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
      await store.releaseClaims([
        { eventId: scores[2]?.eventId ?? "", kind: "retry", retryAtMs: 0, error: "test" },
      ]);
      expect(await store.outboxBacklog()).toMatchObject({ pending: 1 });
      const again = await store.claimPending(10, Date.now(), Date.now() + 60_000);
      expect(again.map((entry) => entry.eventId)).toEqual([scores[2]?.eventId]);
      expect(again[0]?.attempts).toBe(2);
      expect((await store.latestScore(inQueue(40n)))?.record.published).toBe(true);
    });

    it("stores a grader's score with its name in the event's source and its trace context in the headers the relay publishes", async () => {
      const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
      const graded: NewScore = {
        ...newScore({ submissionId: 46n }),
        graderName: "python-1",
        traceContext: { traceparent, tracestate: "vendor=abc" },
      };
      const anonymous = newScore({ submissionId: 47n });
      await store.recordScores([graded, anonymous], 0);
      const claimed = await store.claimPending(10, Date.now(), Date.now() + 60_000);
      const messageOf = (score: NewScore) => {
        const entry = claimed.find((each) => each.eventId === score.eventId);
        if (!entry) throw new Error(`event ${score.eventId} was not claimed`);
        return entry.message;
      };
      const header = (score: NewScore, name: string) =>
        messageOf(score).headers.find(([each]) => each === name)?.[1];

      expect(decodeScoreEvent(messageOf(graded).payload).metadata?.source).toBe("test/python-1");
      expect(header(graded, "ce-source")).toBe("test/python-1");
      expect(header(graded, "Nats-Msg-Id")).toBe(graded.eventId);
      expect(messageOf(graded).headers.slice(-2)).toEqual([
        ["ce-traceparent", traceparent],
        ["ce-tracestate", "vendor=abc"],
      ]);
      expect(decodeScoreEvent(messageOf(anonymous).payload).metadata?.source).toBe("test");
      expect(header(anonymous, "ce-source")).toBe("test");
      expect(header(anonymous, "ce-traceparent")).toBeUndefined();
    });

    it("replays a retry as unpublished while its event waits in the outbox, and as published after", async () => {
      const first = newScore({ submissionId: 48n });
      const retryOf = () => ({ ...first, eventId: randomUUID() });
      const inOneTransaction = await store.recordScores([first, retryOf()], 0);
      expect(inOneTransaction[1]).toMatchObject({
        kind: "replayed",
        record: { eventId: first.eventId, published: false },
      });
      expect(await recordOne(retryOf())).toMatchObject({
        kind: "replayed",
        record: { eventId: first.eventId, published: false },
      });
      const claimed = await store.claimPending(10, Date.now(), Date.now() + 60_000);
      await store.markPublished(
        claimed.map((entry) => ({ eventId: entry.eventId, streamSequence: 1 })),
      );
      expect(await recordOne(retryOf())).toMatchObject({
        kind: "replayed",
        record: { eventId: first.eventId, published: true },
      });
    });

    it("holds a failed entry back until its own retry time while later ones are claimed", async () => {
      const scores = [60n, 61n].map((submissionId) => newScore({ submissionId }));
      for (const score of scores) await recordOne(score);
      const now = Date.now();
      const [first] = await store.claimPending(1, now, now + 60_000);
      await store.releaseClaims([
        { eventId: first?.eventId ?? "", kind: "retry", retryAtMs: now + 30_000, error: "timeout" },
      ]);
      const next = await store.claimPending(10, now, now + 60_000);
      expect(next.map((entry) => entry.eventId)).toEqual([scores[1]?.eventId]);
      const [listed] = await store.listOutbox({ limit: 10, parkedOnly: false });
      expect(listed).toMatchObject({
        eventId: scores[0]?.eventId,
        submissionId: 60n,
        leaseUntilMs: now + 30_000,
        lastError: "timeout",
        parkedReason: undefined,
      });
      const due = await store.claimPending(10, now + 30_000, now + 90_000);
      expect(due.map((entry) => entry.eventId)).toEqual([scores[0]?.eventId]);
    });

    it("never hands out a parked entry until it is unparked, and counts it apart", async () => {
      const scores = [70n, 71n, 72n].map((submissionId) => newScore({ submissionId }));
      for (const score of scores) await recordOne(score);
      const now = Date.now();
      const claimed = await store.claimPending(2, now, now + 60_000);
      await store.releaseClaims(
        claimed.map((entry) => ({
          eventId: entry.eventId,
          kind: "park" as const,
          error: "too large",
        })),
      );
      expect(await store.outboxBacklog()).toMatchObject({ pending: 1, parked: 2 });
      const later = Date.now() + 3_600_000;
      const next = await store.claimPending(10, later, later + 60_000);
      expect(next.map((entry) => entry.eventId)).toEqual([scores[2]?.eventId]);
      const parked = await store.listOutbox({ limit: 10, parkedOnly: true });
      expect(parked.map((entry) => [entry.eventId, entry.parkedReason])).toEqual([
        [scores[0]?.eventId, "too large"],
        [scores[1]?.eventId, "too large"],
      ]);

      expect(await store.unparkEvents([scores[1]?.eventId ?? ""])).toBe(1);
      expect(await store.outboxBacklog()).toMatchObject({ parked: 1 });
      const unparked = await store.claimPending(10, Date.now(), Date.now() + 60_000);
      expect(unparked.map((entry) => entry.eventId)).toEqual([scores[1]?.eventId]);
      expect(await store.unparkEvents(undefined)).toBeGreaterThanOrEqual(1);
      expect(await store.outboxBacklog()).toMatchObject({ parked: 0 });
    });

    it("keeps a 64-bit submission id exact in an outbox listing", async () => {
      const submissionId = 2n ** 62n + 7n;
      await recordOne(newScore({ submissionId }));
      const [listed] = await store.listOutbox({ limit: 1, parkedOnly: false });
      expect(listed?.submissionId).toBe(submissionId);
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

describe.each(implementations.slice(0, 2))("%s files", (_, makeHome) => {
  it("creates its directory and files readable by their owner only", async () => {
    const home = await makeHome();
    const store = home.makeStore();
    try {
      await store.start();
      await store.recordScores(
        [
          {
            scoreData: sampleScoreData({ submissionId: 16n }),
            eventId: randomUUID(),
            time: new Date(),
          },
        ],
        0,
      );
      expect(statSync(dirname(home.location)).mode & 0o777).toBe(0o700);
      expect(statSync(home.location).mode & 0o777).toBe(0o600);
      expect(statSync(`${home.location}-wal`).mode & 0o777).toBe(0o600);
    } finally {
      await store.close();
      await home.remove();
    }
  });
});
