import type { Logger } from "pino";
import {
  decodeScoreEvent,
  type EventSizing,
  type ExternalGraderScoreData,
  type ExternalGraderScoreSubmitted,
  isValidQueueName,
  newEventId,
  ScoreNotFoundError,
  ShuttingDownError,
  type TraceContext,
  traceContextHeaderBytes,
  ValidationError,
  validateScoreData,
  validateSubmissionId,
} from "../contract/index.js";
import type { EventPublisher, OutboxMarks } from "../events/index.js";
import type { GroupCommit, ScoreRecord, Store, StoredScore } from "../store/index.js";

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
   * `graderName` (the authenticated grader, when authentication is on) goes into the event's
   * source; `traceContext` (checked) into its distributed-tracing headers. A retry answers the
   * first event, which keeps the trace context of the call that made it.
   */
  async submitScore(
    scoreData: ExternalGraderScoreData | undefined,
    reporter: {
      graderName?: string | undefined;
      traceContext?: TraceContext | undefined;
    } = {},
  ): Promise<SubmitResult> {
    if (this.#isClosed) throw new ShuttingDownError();
    const violations = validateScoreData(scoreData);
    if (violations.length > 0 || !scoreData) throw new ValidationError(violations);
    const { graderName, traceContext } = reporter;
    this.#refuseUnpublishable(scoreData, graderName, traceContext);

    const outcome = await this.#track(
      this.#parts.groupCommit.record({
        scoreData,
        eventId: newEventId(),
        time: new Date(),
        ...(graderName === undefined ? {} : { graderName }),
        ...(traceContext === undefined ? {} : { traceContext }),
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
  #refuseUnpublishable(
    scoreData: ExternalGraderScoreData,
    graderName: string | undefined,
    traceContext: TraceContext | undefined,
  ): void {
    const limitBytes = this.#parts.maxEventBytes();
    const { eventSizing } = this.#parts;
    // The trace headers are bounded (W3C lengths, checked on the way in) and exact here.
    const traceBytes = traceContextHeaderBytes(traceContext);
    if (limitBytes === undefined || eventSizing.upperBound(scoreData) + traceBytes <= limitBytes) {
      return;
    }
    const eventBytes = eventSizing.exactBytes(scoreData, graderName) + traceBytes;
    if (eventBytes <= limitBytes) return;
    throw new ValidationError([
      {
        field: "score_data.score_msg",
        description: `the event of this score would be ${eventBytes} bytes, over the ${limitBytes} bytes the NATS server takes (its max_payload): shorten score_msg by at least ${eventBytes - limitBytes} bytes`,
      },
    ]);
  }

  /**
   * The latest score of a submission that the caller may read (`mayRead` its queue). With
   * `queueName`, the submission is that id in that queue; without, the score with the latest
   * event time among the queues that recorded the id and the caller may read. Anything the
   * caller may not read is NOT_FOUND, the same error as for an id nobody used.
   */
  async getScore(
    submissionId: bigint,
    queueName: string | undefined,
    mayRead: (queueName: string) => boolean,
  ): Promise<ScoreLookup> {
    const violations = validateSubmissionId(submissionId);
    if (queueName !== undefined && !isValidQueueName(queueName)) {
      violations.push({
        field: "queue_name",
        description:
          "must be empty or a valid queue name (1 to 128 bytes of UTF-8, no control characters, no U+FFFD, no whitespace at either end)",
      });
    }
    if (violations.length > 0) throw new ValidationError(violations);
    const stored = await this.#readableLatest(submissionId, queueName, mayRead);
    if (!stored) throw new ScoreNotFoundError(submissionId);
    const published =
      stored.record.published || this.#parts.marks.isAcknowledged(stored.record.eventId);
    return { event: decodeScoreEvent(stored.payload), published };
  }

  async #readableLatest(
    submissionId: bigint,
    queueName: string | undefined,
    mayRead: (queueName: string) => boolean,
  ): Promise<StoredScore | undefined> {
    const { store } = this.#parts;
    if (queueName !== undefined) {
      // Not even read when the caller may not: its answer could not depend on what is stored.
      if (!mayRead(queueName)) return undefined;
      return store.latestScore({ queueName, submissionId });
    }
    const readable = (await store.latestScoresAcrossQueues(submissionId)).filter((stored) =>
      mayRead(stored.queueName),
    );
    // Latest event time first; equal times (one millisecond) fall back to the queue name, so
    // the same request always gets the same answer.
    return readable.sort(
      (a, b) =>
        b.record.eventTime.getTime() - a.record.eventTime.getTime() ||
        (a.queueName < b.queueName ? -1 : a.queueName > b.queueName ? 1 : 0),
    )[0];
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
