import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import Database from "better-sqlite3";

/** What the LMS keeps of a score event. */
export interface GradebookEvent {
  id: string;
  submissionSequence: number;
  scoreData: {
    submissionId: bigint;
    queueName: string;
    userId: string;
    moduleId: string;
    courseId: string;
    pointsEarned: number;
    pointsPossible: number;
  };
}

/** One line of the gradebook: the latest score of a submission (an id within a queue). */
export interface GradebookRow {
  submissionId: bigint;
  queueName: string;
  userId: string;
  moduleId: string;
  pointsEarned: number;
  pointsPossible: number;
  eventId: string;
  submissionSequence: number;
}

/** What applying an event did: a newer score, the same event again, or an older one. */
export type ApplyResult = "applied" | "duplicate" | "stale";

/**
 * The sample LMS's gradebook: one row per submission holding its latest score. A submission is
 * its id within its queue, as gradecast identifies it: the same id in two queues is two rows,
 * each with its own sequence, so one queue's events never hide or replace another's.
 * Applying is idempotent and order-proof: an event whose sequence is not above
 * the row's changes nothing, so redeliveries, replays and late arrivals of an
 * older score are all harmless.
 */
export class Gradebook {
  readonly #db: Database.Database;
  readonly #upsert: Database.Statement;
  readonly #current: Database.Statement;

  constructor(path: string) {
    mkdirSync(dirname(path), { recursive: true });
    this.#db = new Database(path);
    this.#db.pragma("journal_mode = WAL");
    try {
      refuseUnkeyedGradebook(this.#db, path);
    } catch (error) {
      this.#db.close();
      throw error;
    }
    this.#db.exec(`
      CREATE TABLE IF NOT EXISTS gradebook (
        queue_name          TEXT    NOT NULL,
        submission_id       INTEGER NOT NULL,
        user_id             TEXT    NOT NULL,
        module_id           TEXT    NOT NULL,
        course_id           TEXT    NOT NULL,
        points_earned       INTEGER NOT NULL,
        points_possible     INTEGER NOT NULL,
        event_id            TEXT    NOT NULL,
        submission_sequence INTEGER NOT NULL,
        PRIMARY KEY (queue_name, submission_id)
      )`);
    this.#upsert = this.#db.prepare(`
      INSERT INTO gradebook (queue_name, submission_id, user_id, module_id, course_id,
                             points_earned, points_possible, event_id, submission_sequence)
      VALUES (@queueName, @submissionId, @userId, @moduleId, @courseId, @pointsEarned,
              @pointsPossible, @eventId, @submissionSequence)
      ON CONFLICT (queue_name, submission_id) DO UPDATE SET
        points_earned = excluded.points_earned,
        points_possible = excluded.points_possible,
        event_id = excluded.event_id,
        submission_sequence = excluded.submission_sequence
      WHERE excluded.submission_sequence > gradebook.submission_sequence`);
    this.#current = this.#db.prepare(
      "SELECT event_id, submission_sequence FROM gradebook WHERE queue_name = ? AND submission_id = ?",
    );
  }

  /** Applies one event; only a higher sequence than the stored one changes the row. */
  apply(event: GradebookEvent): ApplyResult {
    const data = event.scoreData;
    const changes = this.#upsert.run({
      queueName: data.queueName,
      submissionId: data.submissionId,
      userId: data.userId,
      moduleId: data.moduleId,
      courseId: data.courseId,
      pointsEarned: data.pointsEarned,
      pointsPossible: data.pointsPossible,
      eventId: event.id,
      submissionSequence: event.submissionSequence,
    }).changes;
    if (changes > 0) return "applied";
    const current = this.#current.get(data.queueName, data.submissionId) as
      | { event_id: string; submission_sequence: number }
      | undefined;
    return current?.event_id === event.id ? "duplicate" : "stale";
  }

  /** Every row, by submission id, then queue. */
  rows(): GradebookRow[] {
    const rows = this.#db
      .prepare(
        `SELECT submission_id, queue_name, user_id, module_id, points_earned, points_possible,
                event_id, submission_sequence
           FROM gradebook ORDER BY submission_id, queue_name`,
      )
      .safeIntegers(true)
      .all() as Array<Record<string, bigint | string>>;
    return rows.map((row) => ({
      submissionId: row.submission_id as bigint,
      queueName: row.queue_name as string,
      userId: row.user_id as string,
      moduleId: row.module_id as string,
      pointsEarned: Number(row.points_earned),
      pointsPossible: Number(row.points_possible),
      eventId: row.event_id as string,
      submissionSequence: Number(row.submission_sequence),
    }));
  }

  close(): void {
    this.#db.close();
  }
}

/**
 * A gradebook written before rows were keyed by queue holds one row per submission id, whatever
 * its queue: its rows cannot be told apart now, so it is refused rather than mixed in.
 */
function refuseUnkeyedGradebook(db: Database.Database, path: string): void {
  const columns = db.prepare("SELECT name FROM pragma_table_info('gradebook')").all() as Array<{
    name: string;
  }>;
  if (columns.length > 0 && !columns.some((column) => column.name === "queue_name")) {
    throw new Error(
      `the gradebook at ${path} keys scores by submission id alone (an older sample LMS); move it away and let the LMS rebuild it from the stream with a new --durable`,
    );
  }
}
