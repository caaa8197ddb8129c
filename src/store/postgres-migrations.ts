/**
 * Schema of the PostgreSQL store, one entry per version. All pending versions
 * are applied in one transaction that first takes `POSTGRES_MIGRATION_LOCK`
 * (a transaction-level advisory lock), so instances starting together migrate
 * once, one after the other. Never edit a released entry: add one.
 */
export const POSTGRES_MIGRATIONS: readonly string[] = [
  // 1: scores and their outbox.
  `
  CREATE TABLE scores (
    event_id            text    PRIMARY KEY,
    submission_id       bigint  NOT NULL,
    submission_sequence integer NOT NULL,
    points_possible     integer NOT NULL,
    points_earned       integer NOT NULL,
    course_id           text    NOT NULL,
    score_msg           text    NOT NULL,
    user_id             text    NOT NULL,
    module_id           text    NOT NULL,
    queue_key           text    NOT NULL,
    queue_name          text    NOT NULL,
    event_time_ms       bigint  NOT NULL,
    -- one score per position in a submission's history, whichever instance wrote it
    UNIQUE (submission_id, submission_sequence)
  );

  CREATE TABLE outbox (
    position        bigint  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id        text    NOT NULL UNIQUE REFERENCES scores (event_id),
    subject         text    NOT NULL,
    payload         bytea   NOT NULL,
    headers         text    NOT NULL,
    created_at_ms   bigint  NOT NULL,
    lease_until_ms  bigint  NOT NULL DEFAULT 0,
    attempts        integer NOT NULL DEFAULT 0,
    published_at_ms bigint,
    stream_sequence bigint
  );

  CREATE INDEX outbox_pending ON outbox (position) WHERE published_at_ms IS NULL;
  `,
  // 2: parked events (JetStream refused them for their content) and each event's last failure.
  `
  ALTER TABLE outbox ADD COLUMN parked_reason text;
  ALTER TABLE outbox ADD COLUMN last_error text;
  `,
  // 3: a submission is identified by its queue and id: the same id in two queues is two
  // submissions with two histories. Rows keep their queue_name; led by submission_id, the new
  // unique index also serves lookups of an id across queues.
  `
  ALTER TABLE scores DROP CONSTRAINT scores_submission_id_submission_sequence_key;
  ALTER TABLE scores ADD CONSTRAINT scores_submission_queue_sequence_key
    UNIQUE (submission_id, queue_name, submission_sequence);
  `,
  // 4: published outbox rows are pruned after a retention (the stream is the history). A score
  // row keeps its event's metadata, so GetScore rebuilds the event once the outbox row is gone;
  // the store fills these columns of existing rows from their outbox payloads in the same
  // transaction. The partial index finds prunable rows by publish time: unpublished rows are
  // not in it, so an insert does not touch it, and a pruning pass never scans the rows it keeps.
  `
  ALTER TABLE scores ADD COLUMN event_source text;
  ALTER TABLE scores ADD COLUMN event_sourcehost text;
  ALTER TABLE scores ADD COLUMN event_sourcelib text;
  ALTER TABLE scores ADD COLUMN event_minor_version integer;

  CREATE INDEX outbox_published ON outbox (published_at_ms) WHERE published_at_ms IS NOT NULL;
  `,
];

/** The schema version whose migration also fills the event metadata of existing score rows. */
export const POSTGRES_EVENT_ORIGIN_VERSION = 4;

/** Advisory lock key of schema migrations ("gradecast" in ASCII, truncated to 63 bits). */
export const POSTGRES_MIGRATION_LOCK = 0x67726164656361n;
