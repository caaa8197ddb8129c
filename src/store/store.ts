import type {
  EventMessage,
  EventOrigin,
  ExternalGraderScoreData,
  GradecastError,
  TraceContext,
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
  /**
   * The checked W3C trace context the event carries on (`ce-traceparent`, `ce-tracestate`).
   * It is stored with the event's headers in the outbox row, so a relayed event carries it
   * too. Absent when the call had none.
   */
  traceContext?: TraceContext;
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

/**
 * What identifies a submission: its id within its queue. The same `submissionId` in two
 * queues is two submissions, each with its own history, sequence and retry/regrade/conflict
 * decisions, so a grader of one queue can neither block nor change another queue's scores.
 */
export interface SubmissionKey {
  queueName: string;
  submissionId: bigint;
}

/**
 * The latest score of a submission: its queue, its record and the event bytes as published
 * (rebuilt from the score's row, byte for byte, once its outbox row has been pruned).
 */
export interface StoredScore {
  queueName: string;
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
  /** Entries the relay will publish (parked ones not counted). */
  pending: number;
  /** Creation time of the oldest of those. */
  oldestCreatedAtMs: number | undefined;
  /** Entries parked: refused by JetStream for their content, waiting for `outbox retry`. */
  parked: number;
}

/** What becomes of a claimed entry whose publish failed. */
export type PublishFailure =
  /** Claimable again from `retryAtMs` (its own backoff); others keep flowing meanwhile. */
  | { eventId: string; kind: "retry"; retryAtMs: number; error: string }
  /** Never claimed again until {@link Store.unparkEvents}: retrying cannot help. */
  | { eventId: string; kind: "park"; error: string };

/** Which outbox rows {@link Store.pruneOutbox} deletes. */
export interface OutboxPruning {
  /** Rows published before this time (ms since the epoch) go; pending and parked rows never do. */
  publishedBeforeMs: number;
  /** Most rows deleted by one call (one short transaction). */
  limit: number;
}

/** Which scores {@link Store.submissionHistory} reads. */
export interface SubmissionHistoryOptions {
  /** Only this queue's submission; every queue that recorded the id when undefined. */
  queueName?: string;
  /** Most scores per queue: the newest ones (the latest is always among them). */
  limitPerQueue: number;
}

/** Where an accepted score's event stands in the outbox. */
export type OutboxState =
  /** Not published yet: claimable from `leaseUntilMs` (0 when free now). */
  | {
      state: "pending";
      createdAtMs: number;
      attempts: number;
      leaseUntilMs: number;
      lastError: string | undefined;
    }
  /** Refused by JetStream for its content; waits for `gradecast outbox retry`. */
  | {
      state: "parked";
      createdAtMs: number;
      attempts: number;
      parkedReason: string;
      lastError: string | undefined;
    }
  /** Acknowledged by the stream at `streamSequence`. */
  | {
      state: "published";
      createdAtMs: number;
      attempts: number;
      publishedAtMs: number;
      streamSequence: number | undefined;
    }
  /** The score has no outbox row (pruned after publishing): its stream position is unknown. */
  | { state: "missing" };

/** One accepted score of a submission and its outbox state, as `gradecast explain` shows it. */
export interface SubmissionHistoryEntry {
  queueName: string;
  submissionId: bigint;
  submissionSequence: number;
  eventId: string;
  eventTime: Date;
  pointsEarned: number;
  pointsPossible: number;
  courseId: string;
  userId: string;
  moduleId: string;
  /** The event's subject; undefined when the outbox row is gone. */
  subject: string | undefined;
  /**
   * The event's `source` (`<origin>/<grader name>` when graders authenticate), from the outbox
   * row's headers or, once that is pruned, the score row.
   */
  eventSource: string | undefined;
  outbox: OutboxState;
}

/** An unpublished outbox entry as `gradecast outbox list` shows it. */
export interface OutboxListing {
  position: number;
  eventId: string;
  subject: string;
  submissionId: bigint;
  createdAtMs: number;
  attempts: number;
  /** Not claimable before this time (a lease, or its backoff after a failure); 0 when free. */
  leaseUntilMs: number;
  /** Set when parked: why JetStream refused it. */
  parkedReason: string | undefined;
  /** The last publish failure, if any. */
  lastError: string | undefined;
}

/**
 * Durable home of scores and their outbox. Every implementation writes a score
 * and its outbox row in one transaction, decides retry / regrade / conflict
 * inside that transaction against the latest score of the same submission
 * ({@link SubmissionKey}: queue and id), and never loses a committed row.
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

  /** The latest accepted score of a submission (an id within a queue), or undefined. */
  latestScore(submission: SubmissionKey): Promise<StoredScore | undefined>;

  /**
   * The latest accepted score of `submissionId` in every queue that recorded that id, in no
   * particular order (empty when none did). The caller picks among them (GetScore without a
   * queue: the newest among the queues its grader may read).
   */
  latestScoresAcrossQueues(submissionId: bigint): Promise<StoredScore[]>;

  /** Leases up to `limit` unpublished, unleased entries, oldest first, until `leaseUntilMs`. */
  claimPending(limit: number, nowMs: number, leaseUntilMs: number): Promise<OutboxEntry[]>;

  /** Marks entries published (idempotent). */
  markPublished(events: readonly PublishedEvent[]): Promise<void>;

  /**
   * Gives leased entries back after a failed publish: each one claimable again
   * from its own retry time, or parked.
   */
  releaseClaims(failures: readonly PublishFailure[]): Promise<void>;

  /** How many entries wait to be published, and since when; how many are parked. */
  outboxBacklog(): Promise<OutboxBacklog>;

  /** Unpublished entries, oldest first: all of them, or only the parked ones. */
  listOutbox(options: { limit: number; parkedOnly: boolean }): Promise<OutboxListing[]>;

  /**
   * Makes parked (and backing-off) entries claimable now: the ones named, or
   * every unpublished one when `eventIds` is undefined. Returns how many changed.
   */
  unparkEvents(eventIds: readonly string[] | undefined): Promise<number>;

  /**
   * Deletes up to `limit` outbox rows published before `publishedBeforeMs` and returns how
   * many it deleted. The stream holds the published event; the score row stays (GetScore,
   * retries and `explain` read it), so only an event's stream sequence is forgotten.
   */
  pruneOutbox(pruning: OutboxPruning): Promise<number>;

  /**
   * The accepted scores of `submissionId` (every queue, or only `queueName`) with the state of
   * their outbox rows, by queue name then sequence: at most `limitPerQueue` per queue, the
   * newest. What `gradecast explain` reads; refused calls were never stored.
   */
  submissionHistory(
    submissionId: bigint,
    options: SubmissionHistoryOptions,
  ): Promise<SubmissionHistoryEntry[]>;
}
