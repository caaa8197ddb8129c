import {
  JetStreamApiCodes,
  JetStreamApiError,
  type JetStreamManager,
  jetstream,
  jetstreamManager,
} from "@nats-io/jetstream";
import { type NatsConnection, headers as natsHeaders } from "@nats-io/nats-core";
import { scoreSubjectOfDeadLetter } from "../contract/messages.js";
import { DEAD_LETTER_HEADERS } from "./dead-letter.js";

/** A dead letter that cannot be re-driven: missing, or pointing somewhere it may not go. */
export class RedriveRefusedError extends Error {
  override readonly name = "RedriveRefusedError";
}

/** A dead-lettered event as the dead-letter stream holds it. */
export interface DeadLetterEntry {
  /** Sequence in the dead-letter stream: what `redriveDeadLetter` takes. */
  sequence: number;
  deadLetteredAt: Date;
  /** `ce-id` of the original, when it had one. */
  eventId: string | undefined;
  reason: string;
  error: string;
  deliveryCount: number;
  /**
   * The consumer that gave up on it (`gradecast-dlq-consumer`; untrusted: written by a
   * consumer); undefined for dead letters written before the header existed.
   */
  consumer: string | undefined;
  /** Subject its `gradecast-dlq-original-subject` header names (untrusted: written by a consumer). */
  originalSubject: string;
  /** The dead-letter subject the stream stored it under. */
  subject: string;
  data: Uint8Array;
  headers: Array<[string, string]>;
}

/** Where a re-driven event went. */
export interface RedriveReceipt {
  sequence: number;
  eventId: string | undefined;
  subject: string;
  /** Sequence of the re-driven copy in the event stream. */
  streamSequence: number;
}

/** Every entry of the dead-letter stream, oldest first. */
export async function listDeadLetters(
  connection: NatsConnection,
  deadLetterStream: string,
): Promise<DeadLetterEntry[]> {
  const jsm = await jetstreamManager(connection);
  const info = await jsm.streams.info(deadLetterStream);
  const entries: DeadLetterEntry[] = [];
  if (info.state.messages === 0) return entries;
  for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq += 1) {
    const entry = await readEntry(jsm, deadLetterStream, seq);
    if (entry) entries.push(entry);
  }
  return entries;
}

/**
 * Publishes a dead letter back on its original subject: the same bytes and
 * event headers (same `ce-id`, so an idempotent consumer applies it at most
 * once), minus the `gradecast-dlq-*` ones, then deletes it from the
 * dead-letter stream. The re-drive's `Nats-Msg-Id` names the dead-letter entry,
 * so re-driving one entry twice publishes it once, and it does not collide with
 * the original's id (which the duplicate window may still hold).
 */
export async function redriveDeadLetter(
  connection: NatsConnection,
  deadLetterStream: string,
  sequence: number,
): Promise<RedriveReceipt> {
  const jsm = await jetstreamManager(connection);
  const entry = await readEntry(jsm, deadLetterStream, sequence);
  if (!entry) {
    throw new RedriveRefusedError(`no dead letter ${sequence} in stream ${deadLetterStream}`);
  }
  const target = redriveSubjectOf(entry);
  const headers = natsHeaders();
  for (const [name, value] of entry.headers) {
    // `Nats-*` headers steer JetStream (ids, expectations, rollups): none may come from a dead letter.
    const lowered = name.toLowerCase();
    if (lowered.startsWith("gradecast-dlq-") || lowered.startsWith("nats-")) continue;
    headers.append(name, value);
  }
  const ack = await jetstream(connection).publish(target, entry.data, {
    msgID: `redrive-${deadLetterStream}-${sequence}`,
    headers,
  });
  await jsm.streams.deleteMessage(deadLetterStream, sequence);
  return { sequence, eventId: entry.eventId, subject: target, streamSequence: ack.seq };
}

/**
 * Where a dead letter may go back to: the score subject of its own queue, derived from the
 * subject the dead-letter stream holds it under. Its original-subject header must agree;
 * anything else (another queue, a JetStream API subject) is refused, not published.
 */
function redriveSubjectOf(entry: DeadLetterEntry): string {
  const target = scoreSubjectOfDeadLetter(entry.subject);
  if (target === undefined) {
    throw new RedriveRefusedError(
      `dead letter ${entry.sequence} is stored under ${printable(entry.subject)}, not a <prefix>.dlq.v1.<queue> subject: not re-driven`,
    );
  }
  if (entry.originalSubject !== target) {
    throw new RedriveRefusedError(
      `dead letter ${entry.sequence} names ${printable(entry.originalSubject)} as its original subject, but a dead letter of ${printable(entry.subject)} can only go back to ${target}: not re-driven`,
    );
  }
  return target;
}

/** Longest header value shown in a message or a listing. */
const MAX_SHOWN_CHARS = 300;

/**
 * A header value as it may be shown on a terminal or in a log: control and other
 * non-printing characters escaped (`\u001b`), quoted, cut to a bounded length.
 */
export function printable(value: string): string {
  const cut = value.length > MAX_SHOWN_CHARS ? `${value.slice(0, MAX_SHOWN_CHARS)}…` : value;
  // JSON escapes C0 controls and quotes; C1 controls, bidi and line/paragraph separators too.
  return JSON.stringify(cut).replace(
    /[\u007f-\u009f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]/g,
    (char) => `\\u${(char.codePointAt(0) ?? 0).toString(16).padStart(4, "0")}`,
  );
}

async function readEntry(
  jsm: JetStreamManager,
  stream: string,
  seq: number,
): Promise<DeadLetterEntry | undefined> {
  // A deleted sequence (an entry already re-driven) reads as "no message found".
  const stored = await jsm.streams.getMessage(stream, { seq }).catch((error: unknown) => {
    if (error instanceof JetStreamApiError && error.code === JetStreamApiCodes.NoMessageFound) {
      return null;
    }
    throw error;
  });
  if (!stored) return undefined;
  const headers: Array<[string, string]> = [];
  for (const [name, values] of stored.header ?? []) {
    for (const value of values) headers.push([name, value]);
  }
  const header = (name: string) => stored.header?.get(name) || undefined;
  return {
    sequence: stored.seq,
    deadLetteredAt: stored.time,
    eventId: header("ce-id"),
    reason: header(DEAD_LETTER_HEADERS.reason) ?? "unknown",
    error: header(DEAD_LETTER_HEADERS.error) ?? "",
    deliveryCount: Number(header(DEAD_LETTER_HEADERS.deliveryCount) ?? 0),
    consumer: header(DEAD_LETTER_HEADERS.consumer),
    originalSubject:
      header(DEAD_LETTER_HEADERS.originalSubject) ??
      scoreSubjectOfDeadLetter(stored.subject) ??
      stored.subject,
    subject: stored.subject,
    data: stored.data,
    headers,
  };
}
