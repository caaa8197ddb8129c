import type {
  EventMessage,
  EventOrigin,
  ExternalGraderScoreData,
  GradecastError,
} from "../contract/index.js";

/** A validated score with the id and time its event gets if it is accepted. */
export interface NewScore {
  scoreData: ExternalGraderScoreData;
  eventId: string;
  time: Date;
  /**
   * The authenticated grader that reported it; its event's `source` becomes
   * `<origin source>/<graderName>`. Absent when authentication is off.
   */
  graderName?: string;
}

/**
 * How a store builds the exact event message of a score once its sequence is
 * known (inside the transaction). Plain data, so a store may live in a worker.
 */
export interface EventEncoding {
  origin: EventOrigin;
  subjectPrefix: string;
}

/** A score the store holds, with its event's identity and publish state. */
export interface ScoreRecord {
  eventId: string;
  eventTime: Date;
  submissionSequence: number;
  published: boolean;
}

/** What recording one score did. */
export type RecordOutcome =
  | { kind: "accepted"; record: ScoreRecord; message: EventMessage }
  | { kind: "replayed"; record: ScoreRecord }
  | { kind: "rejected"; error: GradecastError };

/** The latest score of a submission: its record and the event bytes as published. */
export interface StoredScore {
  record: ScoreRecord;
  payload: Uint8Array;
}

/** An event waiting in (or claimed from) the outbox. */
export interface OutboxEntry {
  /** Publish order: increases with commit order. */
  position: number;
  eventId: string;
  message: EventMessage;
  attempts: number;
  createdAtMs: number;
}

/** A publish the stream acknowledged. */
export interface PublishedEvent {
  eventId: string;
  streamSequence: number;
}

/** Size and age of what still waits to be published. */
export interface OutboxBacklog {
  pending: number;
  oldestCreatedAtMs: number | undefined;
}

/**
 * Durable home of scores and their outbox. Every implementation writes a score
 * and its outbox row in one transaction, decides retry / regrade / conflict
 * inside that transaction, and never loses a committed row.
 */
export interface Store {
  /** Opens the store and migrates its schema. */
  start(): Promise<void>;
  /** Closes it; calls after close reject. */
  close(): Promise<void>;

  /**
   * Records scores in one transaction, in order, each with its own outcome.
   * New outbox rows are leased to the caller until `leaseUntilMs`, so the
   * relay leaves them to the direct publish that follows.
   */
  recordScores(scores: readonly NewScore[], leaseUntilMs: number): Promise<RecordOutcome[]>;

  /** The latest accepted score of a submission, or undefined. */
  latestScore(submissionId: bigint): Promise<StoredScore | undefined>;

  /** Leases up to `limit` unpublished, unleased entries, oldest first, until `leaseUntilMs`. */
  claimPending(limit: number, nowMs: number, leaseUntilMs: number): Promise<OutboxEntry[]>;

  /** Marks entries published (idempotent). */
  markPublished(events: readonly PublishedEvent[]): Promise<void>;

  /** Gives leased entries back to the relay at once (their publish failed). */
  releaseClaims(eventIds: readonly string[]): Promise<void>;

  /** How many entries wait to be published, and since when. */
  outboxBacklog(): Promise<OutboxBacklog>;
}
