export { GroupCommit, type GroupCommitOptions } from "./group-commit.js";
export { OutboxPruner, type OutboxPrunerOptions } from "./outbox-pruner.js";
export { PostgresStore, type PostgresStoreOptions } from "./postgres-store.js";
export { redactUrl, redactUrls } from "./redact-url.js";
export { SqliteStore, type SqliteStoreOptions } from "./sqlite-store.js";
export type {
  EventEncoding,
  NewScore,
  OutboxBacklog,
  OutboxEntry,
  OutboxListing,
  OutboxPruning,
  OutboxState,
  PublishedEvent,
  PublishFailure,
  RecordOutcome,
  ScoreRecord,
  Store,
  StoredScore,
  SubmissionHistoryEntry,
  SubmissionHistoryOptions,
  SubmissionKey,
} from "./store.js";
export { ThreadedSqliteStore } from "./threaded-sqlite-store.js";
