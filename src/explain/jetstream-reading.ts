import {
  AckPolicy,
  type ConsumerInfo,
  DeliverPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  type JetStreamManager,
  type JsMsg,
  jetstream,
  jetstreamManager,
} from "@nats-io/jetstream";
import { type NatsConnection, nanos } from "@nats-io/nats-core";
import { deadLetterSubject, decodeScoreEvent } from "../contract/messages.js";
import type { SubmissionHistoryEntry } from "../store/index.js";
import { DEAD_LETTER_HEADERS } from "../subscriber/dead-letter.js";
import type {
  ConsumerSnapshot,
  DeadLetterScan,
  DeadLetterSnapshot,
  JetStreamView,
  StreamMessageCheck,
} from "./explanation.js";

/** The streams explain reads, named as `serve` names them. */
export interface JetStreamNames {
  stream: string;
  deadLetterStream: string;
  subjectPrefix: string;
}

/** Bounds on what explain reads from JetStream. */
export interface JetStreamReadLimits {
  /** Most dead letters read per queue (from the submission's first score on). */
  maxDeadLetters: number;
  /** Most consumers of the stream described. */
  maxConsumers: number;
  /** How long one fetch of dead letters may wait. */
  fetchTimeoutMs: number;
}

/**
 * Dead letters are read from this long before the submission's first score: the dead-letter
 * stream's clock (NATS) and the score's (gradecast) may disagree by a little.
 */
const CLOCK_SKEW_MARGIN_MS = 10 * 60_000;

/**
 * Reads what JetStream knows of a submission's events: the stream's extent, every consumer's
 * progress, what the stream holds at each published event's sequence, and the submission's dead
 * letters. Read-only, except for a short-lived ephemeral consumer per queue that has dead letters
 * (deleted after; inactive ones expire by themselves). A failure is the view's `problem`, not an
 * exception: the store's part of the story stands without it.
 */
export async function readJetStream(
  connection: NatsConnection,
  names: JetStreamNames,
  history: readonly SubmissionHistoryEntry[],
  limits: JetStreamReadLimits,
): Promise<JetStreamView> {
  let jsm: JetStreamManager;
  try {
    jsm = await jetstreamManager(connection);
  } catch (error) {
    return { isReachable: false, problem: `JetStream does not answer: ${messageOf(error)}` };
  }
  try {
    const info = await jsm.streams.info(names.stream);
    const consumers: ConsumerSnapshot[] = [];
    for await (const consumer of jsm.consumers.list(names.stream)) {
      consumers.push(consumerSnapshot(consumer));
      if (consumers.length >= limits.maxConsumers) break;
    }
    consumers.sort((a, b) => (a.name < b.name ? -1 : 1));
    const messages = new Map<number, StreamMessageCheck>();
    for (const score of history) {
      const outbox = score.outbox;
      if (outbox.state !== "published" || outbox.streamSequence === undefined) continue;
      messages.set(
        outbox.streamSequence,
        await checkStreamMessage(jsm, names.stream, outbox.streamSequence, score.eventId),
      );
    }
    const deadLetters: DeadLetterScan[] = [];
    for (const [queueName, firstScoreAt] of firstScoreTimes(history)) {
      deadLetters.push(
        await scanDeadLetters(connection, jsm, names, queueName, history, firstScoreAt, limits),
      );
    }
    return {
      isReachable: true,
      stream: {
        name: names.stream,
        firstSequence: info.state.first_seq,
        lastSequence: info.state.last_seq,
      },
      consumers,
      messages,
      deadLetters,
    };
  } catch (error) {
    if (isApiError(error, JetStreamApiCodes.StreamNotFound)) {
      return {
        isReachable: false,
        problem: `no stream ${JSON.stringify(names.stream)} on this NATS server (--stream)`,
      };
    }
    return { isReachable: false, problem: messageOf(error) };
  }
}

/** A consumer's JetStream info as explain uses it. Times are ISO strings on the wire. */
export function consumerSnapshot(info: ConsumerInfo): ConsumerSnapshot {
  const config = info.config;
  const filters = [
    ...(config.filter_subject ? [config.filter_subject] : []),
    ...(config.filter_subjects ?? []),
  ];
  return {
    name: info.name,
    isDurable: config.durable_name !== undefined && config.durable_name !== "",
    filterSubjects: filters,
    deliverPolicy: String(config.deliver_policy ?? "all"),
    optStartSequence: config.opt_start_seq,
    optStartTime: timeOf(config.opt_start_time),
    createdAt: timeOf(info.created) ?? new Date(0),
    deliveredStreamSequence: info.delivered.stream_seq,
    deliveredAt: timeOf(info.delivered.last_active),
    ackFloorStreamSequence: info.ack_floor.stream_seq,
    ackFloorAt: timeOf(info.ack_floor.last_active),
    numAckPending: info.num_ack_pending,
    numRedelivered: info.num_redelivered,
    numPending: info.num_pending,
  };
}

/**
 * A time JetStream sent: an ISO string (nats.js types `last_active` as nanoseconds, but
 * nats-server sends RFC 3339, and omits it when nothing happened yet).
 */
function timeOf(value: unknown): Date | undefined {
  if (typeof value !== "string" || value === "") return undefined;
  const time = new Date(value);
  return Number.isNaN(time.getTime()) || time.getTime() <= 0 ? undefined : time;
}

/** What the stream holds at `seq`: this event (its `Nats-Msg-Id`), another message, or nothing. */
async function checkStreamMessage(
  jsm: JetStreamManager,
  stream: string,
  seq: number,
  eventId: string,
): Promise<StreamMessageCheck> {
  try {
    const stored = await jsm.streams.getMessage(stream, { seq });
    if (!stored) return { state: "gone" };
    const messageId = stored.header?.get("Nats-Msg-Id") || undefined;
    return messageId === eventId
      ? { state: "present", storedAt: stored.time }
      : { state: "other", messageId };
  } catch (error) {
    if (isApiError(error, JetStreamApiCodes.NoMessageFound)) return { state: "gone" };
    throw error;
  }
}

/** Each queue of the history, with the time of its first (oldest listed) score. */
function firstScoreTimes(history: readonly SubmissionHistoryEntry[]): Map<string, Date> {
  const times = new Map<string, Date>();
  for (const score of history) {
    const first = times.get(score.queueName);
    if (!first || score.eventTime < first) times.set(score.queueName, score.eventTime);
  }
  return times;
}

/**
 * The submission's dead letters in one queue: those on the queue's dead-letter subject since its
 * first score, at most `maxDeadLetters` of them read (oldest first) through a short-lived
 * ephemeral consumer that acks nothing, each decoded and kept when it is this submission's.
 */
async function scanDeadLetters(
  connection: NatsConnection,
  jsm: JetStreamManager,
  names: JetStreamNames,
  queueName: string,
  history: readonly SubmissionHistoryEntry[],
  firstScoreAt: Date,
  limits: JetStreamReadLimits,
): Promise<DeadLetterScan> {
  const subject = deadLetterSubject(names.subjectPrefix, queueName);
  const since = new Date(firstScoreAt.getTime() - CLOCK_SKEW_MARGIN_MS);
  let held: number;
  try {
    const info = await jsm.streams.info(names.deadLetterStream, { subjects_filter: subject });
    held = info.state.subjects?.[subject] ?? 0;
  } catch (error) {
    if (!isApiError(error, JetStreamApiCodes.StreamNotFound)) throw error;
    return {
      isRead: false,
      queueName,
      problem: `no dead-letter stream ${JSON.stringify(names.deadLetterStream)} (--dead-letter-stream)`,
    };
  }
  if (held === 0) return { isRead: true, queueName, since, total: 0, scanned: 0, found: [] };

  const consumer = await jsm.consumers.add(names.deadLetterStream, {
    filter_subject: subject,
    deliver_policy: DeliverPolicy.StartTime,
    opt_start_time: since.toISOString(),
    ack_policy: AckPolicy.None,
    inactive_threshold: nanos(60_000),
    mem_storage: true,
  });
  const total = consumer.num_pending;
  const wanted = Math.min(total, limits.maxDeadLetters);
  const eventIds = new Set(
    history.filter((score) => score.queueName === queueName).map((score) => score.eventId),
  );
  const submissionId = history.find((score) => score.queueName === queueName)?.submissionId;
  const found: DeadLetterSnapshot[] = [];
  let scanned = 0;
  try {
    if (wanted > 0) {
      const reader = await jetstream(connection).consumers.get(
        names.deadLetterStream,
        consumer.name,
      );
      const batch = await reader.fetch({ max_messages: wanted, expires: limits.fetchTimeoutMs });
      for await (const msg of batch) {
        scanned += 1;
        const letter = deadLetterOf(msg, queueName, submissionId, eventIds);
        if (letter) found.push(letter);
        if (scanned >= wanted) break;
      }
    }
  } finally {
    await jsm.consumers.delete(names.deadLetterStream, consumer.name);
  }
  return { isRead: true, queueName, since, total, scanned, found };
}

/**
 * The dead letter a message is when it belongs to the submission: its payload (the original
 * event's bytes) names this submission id and queue, or, when the payload does not decode, its
 * `ce-id` header names one of the submission's events. Header values stay untrusted data.
 */
function deadLetterOf(
  msg: JsMsg,
  queueName: string,
  submissionId: bigint | undefined,
  eventIds: ReadonlySet<string>,
): DeadLetterSnapshot | undefined {
  const header = (name: string) => msg.headers?.get(name) || undefined;
  const decoded = decodeEvent(msg.data);
  const isOfSubmission = decoded
    ? decoded.scoreData?.submissionId === submissionId && decoded.scoreData?.queueName === queueName
    : eventIds.has(header("ce-id") ?? "");
  if (!isOfSubmission) return undefined;
  return {
    sequence: msg.seq,
    deadLetteredAt: msg.time,
    consumer: header(DEAD_LETTER_HEADERS.consumer),
    reason: header(DEAD_LETTER_HEADERS.reason) ?? "unknown",
    error: header(DEAD_LETTER_HEADERS.error) ?? "",
    deliveryCount: Number(header(DEAD_LETTER_HEADERS.deliveryCount) ?? 0),
    eventId: decoded?.metadata?.id ?? header("ce-id"),
    submissionSequence: decoded?.submissionSequence,
  };
}

/** The event in a dead letter's bytes, or undefined when they are not an event envelope. */
function decodeEvent(data: Uint8Array): ReturnType<typeof decodeScoreEvent> | undefined {
  try {
    return decodeScoreEvent(data);
  } catch {
    // Not an envelope (a publisher going around gradecast): the ce-id header is all there is.
    return undefined;
  }
}

function isApiError(error: unknown, code: JetStreamApiCodes): boolean {
  return error instanceof JetStreamApiError && error.code === code;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
