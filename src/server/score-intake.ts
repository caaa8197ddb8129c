import type { Logger } from "pino";
import {
  decodeScoreEvent,
  type EventSizing,
  type ExternalGraderScoreData,
  type ExternalGraderScoreSubmitted,
  newEventId,
  ScoreNotFoundError,
  ShuttingDownError,
  ValidationError,
  validateScoreData,
  validateSubmissionId,
} from "../contract/index.js";
import type { EventPublisher, OutboxMarks } from "../events/index.js";
import type { GroupCommit, ScoreRecord, Store } from "../store/index.js";

/** What SubmitScore answers. */
export interface SubmitResult {
  record: ScoreRecord;
  isReplay: boolean;
}

/** What GetScore answers. */
export interface ScoreLookup {
  event: ExternalGraderScoreSubmitted;
  published: boolean;
}

export interface ScoreIntakeParts {
  store: Store;
  groupCommit: GroupCommit;
  publisher: EventPublisher;
  marks: OutboxMarks;
  isNatsConnected: () => boolean;
  /** How long SubmitScore waits for the publish ack before answering `published = false`. */
  publishWaitMs: number;
  /** Sizes of events before they are built. */
  eventSizing: EventSizing;
  /** The largest message the NATS server takes (its `max_payload`); undefined before it is known. */
  maxEventBytes: () => number | undefined;
  logger: Logger;
}

/**
 * The path of a score, free of any transport: validate, commit (score and
 * outbox row in one transaction, retry/regrade decided there), then publish
 * directly. The answer goes out once the commit is done; the publish only
 * decides whether it says `published`.
 */
export class ScoreIntake {
  readonly #parts: ScoreIntakeParts;
  readonly #inFlight = new Set<Promise<unknown>>();
  #isClosed = false;

  constructor(parts: ScoreIntakeParts) {
    this.#parts = parts;
  }

  /**
   * Validates, records and publishes one score. Throws a GradecastError on expected failures.
   * `graderName` (the authenticated grader, when authentication is on) goes into the event's source.
   */
  async submitScore(
    scoreData: ExternalGraderScoreData | undefined,
    reporter: { graderName?: string | undefined } = {},
  ): Promise<SubmitResult> {
    if (this.#isClosed) throw new ShuttingDownError();
    const violations = validateScoreData(scoreData);
    if (violations.length > 0 || !scoreData) throw new ValidationError(violations);
    this.#refuseUnpublishable(scoreData, reporter.graderName);

    const outcome = await this.#track(
      this.#parts.groupCommit.record({
        scoreData,
        eventId: newEventId(),
        time: new Date(),
        ...(reporter.graderName === undefined ? {} : { graderName: reporter.graderName }),
      }),
    );
    switch (outcome.kind) {
      case "rejected":
        throw outcome.error;
      case "replayed": {
        // The store's row may not carry the publish mark yet (marks are written in
        // batches): answer what is known, like the first answer did.
        const { record } = outcome;
        const published = record.published || this.#parts.marks.isAcknowledged(record.eventId);
        return { record: { ...record, published }, isReplay: true };
      }
      case "accepted": {
        // Committed: from here on no failure can lose the score.
        const published = await this.#publishDirect(outcome.record.eventId, outcome.message);
        return { record: { ...outcome.record, published }, isReplay: false };
      }
    }
  }

  /**
   * Refuses a score whose event the NATS server would never take: accepted, it
   * would sit in the outbox forever while its grader believes it delivered.
   */
  #refuseUnpublishable(scoreData: ExternalGraderScoreData, graderName: string | undefined): void {
    const limitBytes = this.#parts.maxEventBytes();
    const { eventSizing } = this.#parts;
    if (limitBytes === undefined || eventSizing.upperBound(scoreData) <= limitBytes) return;
    const eventBytes = eventSizing.exactBytes(scoreData, graderName);
    if (eventBytes <= limitBytes) return;
    throw new ValidationError([
      {
        field: "score_data.score_msg",
        description: `the event of this score would be ${eventBytes} bytes, over the ${limitBytes} bytes the NATS server takes (its max_payload): shorten score_msg by at least ${eventBytes - limitBytes} bytes`,
      },
    ]);
  }

  /** The latest score of a submission. */
  async getScore(submissionId: bigint): Promise<ScoreLookup> {
    const violations = validateSubmissionId(submissionId);
    if (violations.length > 0) throw new ValidationError(violations);
    const stored = await this.#parts.store.latestScore(submissionId);
    if (!stored) throw new ScoreNotFoundError(submissionId);
    const published =
      stored.record.published || this.#parts.marks.isAcknowledged(stored.record.eventId);
    return { event: decodeScoreEvent(stored.payload), published };
  }

  /** Refuses new scores and waits for in-flight commits and direct publishes to settle. */
  async close(): Promise<void> {
    this.#isClosed = true;
    await Promise.allSettled([...this.#inFlight]);
  }

  async #publishDirect(
    eventId: string,
    message: Parameters<EventPublisher["publish"]>[0]["message"],
  ): Promise<boolean> {
    const { publisher, marks, isNatsConnected, publishWaitMs } = this.#parts;
    if (!isNatsConnected()) {
      // NATS may have dropped after the commit leased the row to this call: hand
      // it back so the relay publishes it in commit order with whatever follows.
      marks.failed(eventId);
      return false;
    }
    const publish = this.#track(
      publisher.publish({ eventId, message }).then(
        (event) => {
          marks.published(event);
          return true;
        },
        (error: unknown) => {
          marks.failed(eventId, error);
          return false;
        },
      ),
    );
    let timer: NodeJS.Timeout | undefined;
    const waited = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), publishWaitMs);
    });
    try {
      return await Promise.race([publish, waited]);
    } finally {
      clearTimeout(timer);
    }
  }

  #track<T>(promise: Promise<T>): Promise<T> {
    this.#inFlight.add(promise);
    void promise.finally(() => this.#inFlight.delete(promise)).catch(() => undefined);
    return promise;
  }
}
