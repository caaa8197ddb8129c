import {
  JetStreamApiCodes,
  JetStreamApiError,
  type JetStreamManager,
  jetstream,
  jetstreamManager,
} from "@nats-io/jetstream";
import { type NatsConnection, headers as natsHeaders } from "@nats-io/nats-core";
import { DEAD_LETTER_HEADERS } from "./dead-letter.js";

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
  /** Subject to re-drive to. */
  originalSubject: string;
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
  if (!entry) throw new Error(`no dead letter ${sequence} in stream ${deadLetterStream}`);
  const headers = natsHeaders();
  for (const [name, value] of entry.headers) {
    if (name.startsWith("gradecast-dlq-") || name.toLowerCase() === "nats-msg-id") continue;
    headers.append(name, value);
  }
  const ack = await jetstream(connection).publish(entry.originalSubject, entry.data, {
    msgID: `redrive-${deadLetterStream}-${sequence}`,
    headers,
  });
  await jsm.streams.deleteMessage(deadLetterStream, sequence);
  return {
    sequence,
    eventId: entry.eventId,
    subject: entry.originalSubject,
    streamSequence: ack.seq,
  };
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
    originalSubject: header(DEAD_LETTER_HEADERS.originalSubject) ?? stored.subject,
    data: stored.data,
    headers,
  };
}
