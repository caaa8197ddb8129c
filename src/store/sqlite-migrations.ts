/**
 * Schema of the SQLite store, one entry per version. Applied in order on
 * start, each in its own transaction with its version row, so a crash mid-way
 * leaves the previous version intact. Foreign keys are off while they run (a
 * table rebuild drops the parent table) and checked before each commit.
 * Never edit a released entry: add one.
 */
export const SQLITE_MIGRATIONS: readonly string[] = [
  // 1: scores and their outbox.
  `
  CREATE TABLE scores (
    event_id            TEXT    PRIMARY KEY,
    submission_id       INTEGER NOT NULL,
    submission_sequence INTEGER NOT NULL,
    points_possible     INTEGER NOT NULL,
    points_earned       INTEGER NOT NULL,
    course_id           TEXT    NOT NULL,
    score_msg           TEXT    NOT NULL,
    user_id             TEXT    NOT NULL,
    module_id           TEXT    NOT NULL,
    queue_key           TEXT    NOT NULL,
    queue_name          TEXT    NOT NULL,
    event_time_ms       INTEGER NOT NULL,
    -- one score per position in a submission's history, whatever the caller does
    UNIQUE (submission_id, submission_sequence)
  );

  CREATE TABLE outbox (
    position        INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id        TEXT    NOT NULL UNIQUE REFERENCES scores (event_id),
    subject         TEXT    NOT NULL,
    payload         BLOB    NOT NULL,
    headers         TEXT    NOT NULL,
    created_at_ms   INTEGER NOT NULL,
    lease_until_ms  INTEGER NOT NULL DEFAULT 0,
    attempts        INTEGER NOT NULL DEFAULT 0,
    published_at_ms INTEGER,
    stream_sequence INTEGER
  );

  CREATE INDEX outbox_pending ON outbox (position) WHERE published_at_ms IS NULL;
  `,
  // 2: parked events (JetStream refused them for their content) and each event's last failure.
  `
  ALTER TABLE outbox ADD COLUMN parked_reason TEXT;
  ALTER TABLE outbox ADD COLUMN last_error TEXT;
  `,
  // 3: a submission is identified by its queue and id: the same id in two queues is two
  // submissions with two histories. SQLite cannot drop a table constraint, so the table is
  // rebuilt (rows kept, each with its queue_name). Led by submission_id, the new unique index
  // also serves lookups of an id across queues.
  `
  CREATE TABLE scores_by_queue (
    event_id            TEXT    PRIMARY KEY,
    submission_id       INTEGER NOT NULL,
    submission_sequence INTEGER NOT NULL,
    points_possible     INTEGER NOT NULL,
    points_earned       INTEGER NOT NULL,
    course_id           TEXT    NOT NULL,
    score_msg           TEXT    NOT NULL,
    user_id             TEXT    NOT NULL,
    module_id           TEXT    NOT NULL,
    queue_key           TEXT    NOT NULL,
    queue_name          TEXT    NOT NULL,
    event_time_ms       INTEGER NOT NULL,
    -- one score per position in a submission's history, whatever the caller does
    UNIQUE (submission_id, queue_name, submission_sequence)
  );

  INSERT INTO scores_by_queue (event_id, submission_id, submission_sequence, points_possible,
      points_earned, course_id, score_msg, user_id, module_id, queue_key, queue_name, event_time_ms)
    SELECT event_id, submission_id, submission_sequence, points_possible, points_earned,
           course_id, score_msg, user_id, module_id, queue_key, queue_name, event_time_ms
      FROM scores;

  DROP TABLE scores;
  ALTER TABLE scores_by_queue RENAME TO scores;
  `,
  // 4: published outbox rows are pruned after a retention (the stream is the history). A score
  // row keeps its event's metadata, so GetScore rebuilds the event once the outbox row is gone;
  // the store fills these columns of existing rows from their outbox payloads in the same
  // transaction. The partial index finds prunable rows by publish time: unpublished rows are
  // not in it, so an insert does not touch it, and a pruning pass never scans the rows it keeps.
  `
  ALTER TABLE scores ADD COLUMN event_source TEXT;
  ALTER TABLE scores ADD COLUMN event_sourcehost TEXT;
  ALTER TABLE scores ADD COLUMN event_sourcelib TEXT;
  ALTER TABLE scores ADD COLUMN event_minor_version INTEGER;

  CREATE INDEX outbox_published ON outbox (published_at_ms) WHERE published_at_ms IS NOT NULL;
  `,
];

/** The schema version whose migration also fills the event metadata of existing score rows. */
export const SQLITE_EVENT_ORIGIN_VERSION = 4;
