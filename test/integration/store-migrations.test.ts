import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import {
  decodeScoreEvent,
  type EventMessage,
  type ExternalGraderScoreData,
  encodeScoreEvent,
  SubmissionConflictError,
} from "../../src/contract/index.js";
import {
  type EventEncoding,
  type NewScore,
  PostgresStore,
  type RecordOutcome,
  SqliteStore,
  type Store,
  ThreadedSqliteStore,
} from "../../src/store/index.js";
import { POSTGRES_MIGRATIONS } from "../../src/store/postgres-migrations.js";
import { SQLITE_MIGRATIONS } from "../../src/store/sqlite-migrations.js";
import { sampleScoreData } from "../helpers/contract-fixtures.js";
import { createTestDatabase, queryDatabase, type TestDatabase } from "../helpers/postgres.js";

// Schema version 3 made a submission's identity (queue_name, submission_id). A store written by
// a gradecast at version 2 must open with every row, outbox state and history it had, and then
// follow the new rule.

const encoding: EventEncoding = {
  origin: { source: "test", sourcehost: "h", sourcelib: "0.1.0" },
  subjectPrefix: "gradecast",
};

/** A score row of a version-2 store and its outbox row, as that version wrote them. */
interface OldRow {
  score: NewScore;
  sequence: number;
  message: EventMessage;
  publishedAtMs: number | null;
}

function oldRow(
  overrides: Partial<ExternalGraderScoreData>,
  sequence: number,
  publishedAtMs: number | null,
): OldRow {
  const score: NewScore = {
    scoreData: sampleScoreData(overrides),
    eventId: randomUUID(),
    time: new Date(1_767_000_000_000 + sequence * 1_000),
  };
  const message = encodeScoreEvent(
    { ...score, submissionSequence: sequence },
    encoding.origin,
    encoding.subjectPrefix,
  );
  return { score, sequence, message, publishedAtMs };
}

/** Submission 40 of python-grader: its first score (published) and a regrade (pending). */
function oldRows(): OldRow[] {
  return [
    oldRow({ submissionId: 40n, pointsEarned: 4 }, 1, 1_767_000_005_000),
    oldRow({ submissionId: 40n, pointsEarned: 6 }, 2, null),
    oldRow({ submissionId: 41n, queueName: "java-grader" }, 1, null),
  ];
}

/** Column values of a row's `scores` and `outbox` inserts, in the order the SQL below names them. */
function valuesOf(row: OldRow) {
  const data = row.score.scoreData;
  const timeMs = row.score.time.getTime();
  return {
    score: [
      row.score.eventId,
      data.submissionId.toString(),
      row.sequence,
      data.pointsPossible,
      data.pointsEarned,
      data.courseId,
      data.scoreMsg,
      data.userId,
      data.moduleId,
      data.queueKey,
      data.queueName,
      timeMs,
    ],
    outbox: [
      row.score.eventId,
      row.message.subject,
      Buffer.from(row.message.payload),
      JSON.stringify(row.message.headers),
      timeMs,
      row.publishedAtMs,
    ],
  };
}

const INSERT_SCORE_COLUMNS = `(event_id, submission_id, submission_sequence, points_possible,
  points_earned, course_id, score_msg, user_id, module_id, queue_key, queue_name, event_time_ms)`;
const INSERT_OUTBOX_COLUMNS =
  "(event_id, subject, payload, headers, created_at_ms, published_at_ms)";

/** One store written at version 2, and how to open and inspect it. */
interface OldStore {
  /** What version 2 held. */
  rows: OldRow[];
  open(): Store;
  query(sql: string): Promise<Record<string, unknown>[]>;
  remove(): Promise<void>;
}

function sqliteAtVersion2(makeStore: (path: string) => Store): () => Promise<OldStore> {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), "gradecast-migration-"));
    const path = join(dir, "gradecast.sqlite");
    const db = new Database(path);
    db.pragma("foreign_keys = ON");
    db.exec(
      "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at_ms INTEGER NOT NULL)",
    );
    SQLITE_MIGRATIONS.slice(0, 2).forEach((sql, index) => {
      db.exec(sql);
      db.prepare("INSERT INTO schema_version VALUES (?, 0)").run(index + 1);
    });
    const insertScore = db.prepare(
      `INSERT INTO scores ${INSERT_SCORE_COLUMNS} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    const insertOutbox = db.prepare(
      `INSERT INTO outbox ${INSERT_OUTBOX_COLUMNS} VALUES (?, ?, ?, ?, ?, ?)`,
    );
    const rows = oldRows();
    for (const row of rows) {
      const values = valuesOf(row);
      insertScore.run(...values.score.map((v, i) => (i === 1 ? BigInt(v as string) : v)));
      insertOutbox.run(...values.outbox);
    }
    db.close();
    return {
      rows,
      open: () => makeStore(path),
      query: async (sql) => {
        const reader = new Database(path, { readonly: true });
        try {
          return reader.prepare(sql).all() as Record<string, unknown>[];
        } finally {
          reader.close();
        }
      },
      remove: async () => rmSync(dir, { recursive: true, force: true }),
    };
  };
}

async function postgresAtVersion2(): Promise<OldStore> {
  const database: TestDatabase = await createTestDatabase();
  const statements = [
    "CREATE TABLE schema_version (version integer PRIMARY KEY, applied_at_ms bigint NOT NULL)",
    ...POSTGRES_MIGRATIONS.slice(0, 2),
    "INSERT INTO schema_version VALUES (1, 0), (2, 0)",
  ];
  for (const sql of statements) await queryDatabase(database.url, sql);
  const rows = oldRows();
  for (const row of rows) {
    const values = valuesOf(row);
    await queryDatabase(
      database.url,
      `INSERT INTO scores ${INSERT_SCORE_COLUMNS}
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
      values.score,
    );
    await queryDatabase(
      database.url,
      `INSERT INTO outbox ${INSERT_OUTBOX_COLUMNS} VALUES ($1, $2, $3, $4, $5, $6)`,
      values.outbox,
    );
  }
  return {
    rows,
    open: () => new PostgresStore({ url: database.url, encoding, poolSize: 2 }),
    query: (sql) => queryDatabase(database.url, sql),
    remove: () => database.drop(),
  };
}

const implementations: Array<[string, () => Promise<OldStore>]> = [
  ["SqliteStore", sqliteAtVersion2((path) => new SqliteStore({ path, encoding }))],
  ["ThreadedSqliteStore", sqliteAtVersion2((path) => new ThreadedSqliteStore({ path, encoding }))],
  ["PostgresStore", postgresAtVersion2],
];

describe.each(implementations)("%s opening a store written at schema version 2", (_name, make) => {
  let old: OldStore | undefined;
  let store: Store | undefined;

  afterEach(async () => {
    await store?.close();
    await old?.remove();
    store = undefined;
    old = undefined;
  });

  async function recordOne(overrides: Partial<ExternalGraderScoreData>): Promise<RecordOutcome> {
    const score = {
      scoreData: sampleScoreData(overrides),
      eventId: randomUUID(),
      time: new Date(),
    };
    const [outcome] = (await store?.recordScores([score], 0)) ?? [];
    if (!outcome) throw new Error("no outcome");
    return outcome;
  }

  it("migrates to version 3 keeping every score, its event bytes, history and outbox state", async () => {
    old = await make();
    store = old.open();
    await store.start();

    const versions = await old.query("SELECT version FROM schema_version ORDER BY version");
    expect(versions.map((row) => Number(row.version))).toEqual([1, 2, 3, 4]);
    const counts = await old.query(
      "SELECT (SELECT count(*) FROM scores) AS scores, (SELECT count(*) FROM outbox) AS outbox",
    );
    expect(counts.map((row) => [Number(row.scores), Number(row.outbox)])).toEqual([[3, 3]]);

    const [first, regrade, java] = old.rows;
    const latest = await store.latestScore({ queueName: "python-grader", submissionId: 40n });
    expect(latest?.record).toMatchObject({ submissionSequence: 2, published: false });
    const latestData = decodeScoreEvent(latest?.payload ?? new Uint8Array()).scoreData;
    expect(latestData).toEqual(regrade?.score.scoreData);
    const javaLatest = await store.latestScore({ queueName: "java-grader", submissionId: 41n });
    expect(javaLatest?.record).toMatchObject({ submissionSequence: 1, published: false });
    expect(decodeScoreEvent(javaLatest?.payload ?? new Uint8Array()).scoreData).toEqual(
      java?.score.scoreData,
    );
    // The published score stays published; the two others are still the relay's to publish.
    expect(await store.outboxBacklog()).toMatchObject({ pending: 2, parked: 0 });
    const claimed = await store.claimPending(10, Date.now(), Date.now() + 60_000);
    expect(claimed.map((entry) => entry.eventId).sort()).toEqual(
      [regrade?.score.eventId, java?.score.eventId].sort(),
    );
    const published = await old.query(
      "SELECT event_id, published_at_ms FROM outbox WHERE published_at_ms IS NOT NULL",
    );
    expect(published.map((row) => [row.event_id, Number(row.published_at_ms)])).toEqual([
      [first?.score.eventId, first?.publishedAtMs],
    ]);
  });

  it("after migrating, continues each old history and takes the same id in another queue apart", async () => {
    old = await make();
    store = old.open();
    await store.start();

    // Submission 40 of python-grader: its regrade (6 points) again is a retry, 9 points the third score.
    const retry = await recordOne({ submissionId: 40n, pointsEarned: 6 });
    expect(retry.kind === "replayed" && retry.record.eventId).toBe(old.rows[1]?.score.eventId);
    const third = await recordOne({ submissionId: 40n, pointsEarned: 9 });
    expect(third.kind === "accepted" && third.record.submissionSequence).toBe(3);
    // Another learner under that id in the same queue is still a conflict.
    const conflict = await recordOne({ submissionId: 40n, userId: "someone-else" });
    expect(conflict.kind === "rejected" && conflict.error).toBeInstanceOf(SubmissionConflictError);
    // The same id in another queue, for another learner, is another submission: sequence 1.
    const elsewhere = await recordOne({
      submissionId: 40n,
      queueName: "java-grader",
      userId: "someone-else",
    });
    expect(elsewhere.kind === "accepted" && elsewhere.record.submissionSequence).toBe(1);
  });

  it("opens a migrated store again without migrating twice", async () => {
    old = await make();
    store = old.open();
    await store.start();
    await store.close();
    store = old.open();
    await store.start();
    const versions = await old.query("SELECT version FROM schema_version ORDER BY version");
    expect(versions.map((row) => Number(row.version))).toEqual([1, 2, 3, 4]);
    expect(
      (await store.latestScore({ queueName: "python-grader", submissionId: 40n }))?.record
        .submissionSequence,
    ).toBe(2);
  });
});

describe("SqliteStore schema version 3", () => {
  it("keeps the outbox's foreign key to the rebuilt scores table", async () => {
    const old = await sqliteAtVersion2((path) => new SqliteStore({ path, encoding }))();
    const store = old.open();
    try {
      await store.start();
      const keys = await old.query(
        'SELECT "table", "from", "to" FROM pragma_foreign_key_list(\'outbox\')',
      );
      expect(keys).toEqual([{ table: "scores", from: "event_id", to: "event_id" }]);
      const check = await old.query("SELECT * FROM pragma_foreign_key_check");
      expect(check).toEqual([]);
    } finally {
      await store.close();
      await old.remove();
    }
  });
});
