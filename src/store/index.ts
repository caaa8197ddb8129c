export { GroupCommit, type GroupCommitOptions } from "./group-commit.js";
export { PostgresStore, type PostgresStoreOptions, redactUrl } from "./postgres-store.js";
export { SqliteStore, type SqliteStoreOptions } from "./sqlite-store.js";
export type {
  EventEncoding,
  NewScore,
  OutboxBacklog,
  OutboxEntry,
  PublishedEvent,
  RecordOutcome,
  ScoreRecord,
  Store,
  StoredScore,
} from "./store.js";
export { ThreadedSqliteStore } from "./threaded-sqlite-store.js";
