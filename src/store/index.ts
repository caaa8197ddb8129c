export { GroupCommit, type GroupCommitOptions } from "./group-commit.js";
export { SqliteStore, type SqliteStoreOptions } from "./sqlite-store.js";
export type {
  EventEncoder,
  NewScore,
  OutboxBacklog,
  OutboxEntry,
  PublishedEvent,
  RecordOutcome,
  ScoreRecord,
  Store,
  StoredScore,
} from "./store.js";
