import { type JetStreamClient, jetstream } from "@nats-io/jetstream";
import { MsgHdrsImpl } from "@nats-io/nats-core";
import { GradecastError } from "../contract/index.js";
import type { OutboxEntry, PublishedEvent } from "../store/index.js";
import type { NatsLink } from "./nats-link.js";

/** A publish JetStream did not acknowledge; the outbox keeps the event for the relay. */
export class PublishError extends GradecastError {
  readonly eventId: string;

  constructor(eventId: string, message: string, options?: { cause?: unknown }) {
    super("unavailable", message, options);
    this.name = "PublishError";
    this.eventId = eventId;
  }
}

/** Told of each acknowledged publish: seconds until the ack, and whether the stream had it already. */
export type PublishObserver = (durationS: number, isDuplicate: boolean) => void;

/** How {@link EventPublisher} publishes. */
export interface EventPublisherOptions {
  /** How long one publish waits for JetStream's ack. */
  timeoutMs: number;
  /** Called after each acknowledged publish (metrics); must be cheap. */
  onAcknowledged?: PublishObserver;
}

/**
 * Publishes outbox entries to JetStream, exactly as stored: same subject,
 * bytes and headers, with `Nats-Msg-Id` = event id so a re-publish inside the
 * stream's duplicate window is dropped. Calls may overlap: many publishes are
 * in flight on one connection, in the order they were started.
 */
export class EventPublisher {
  readonly #link: NatsLink;
  readonly #timeoutMs: number;
  readonly #onAcknowledged: PublishObserver | undefined;
  #client: JetStreamClient | undefined;

  constructor(link: NatsLink, options: EventPublisherOptions) {
    this.#link = link;
    this.#timeoutMs = options.timeoutMs;
    this.#onAcknowledged = options.onAcknowledged;
  }

  /** Publishes one entry and resolves with its stream sequence once JetStream has stored it. */
  async publish(entry: Pick<OutboxEntry, "eventId" | "message">): Promise<PublishedEvent> {
    const client = this.#jetstream(entry.eventId);
    const startedAt = performance.now();
    try {
      const ack = await client.publish(entry.message.subject, entry.message.payload, {
        headers: publishHeaders(entry),
        timeout: this.#timeoutMs,
      });
      this.#onAcknowledged?.((performance.now() - startedAt) / 1000, ack.duplicate);
      return { eventId: entry.eventId, streamSequence: ack.seq };
    } catch (error) {
      throw new PublishError(entry.eventId, describePublishFailure(entry, error), { cause: error });
    }
  }

  #jetstream(eventId: string): JetStreamClient {
    const connection = this.#link.connection;
    if (!connection || connection.isClosed()) {
      throw new PublishError(eventId, "not connected to NATS");
    }
    this.#client ??= jetstream(connection);
    return this.#client;
  }
}

/**
 * The stored header pairs as NATS headers, `Nats-Msg-Id` = event id. Built
 * from a record: `MsgHdrs.set` scans every key twice per header, and with a
 * dozen headers per event that was a fifth of the serving thread's allocations.
 */
function publishHeaders(entry: Pick<OutboxEntry, "eventId" | "message">): MsgHdrsImpl {
  const record: Record<string, string[]> = {};
  for (const [name, value] of entry.message.headers) record[name] = [value];
  record[MSG_ID_HEADER] = [entry.eventId];
  return MsgHdrsImpl.fromRecord(record) as MsgHdrsImpl;
}

const MSG_ID_HEADER = "Nats-Msg-Id";

function describePublishFailure(
  entry: Pick<OutboxEntry, "eventId" | "message">,
  error: unknown,
): string {
  const reason = (error as Error).message ?? String(error);
  // nats.js reports "no responders" on a JetStream subject as "jetstream is not enabled";
  // with JetStream on, it means no stream captures the subject.
  if (/jetstream is not enabled/i.test(reason)) {
    return `no JetStream stream captures subject ${entry.message.subject} (is JetStream enabled and the stream created?)`;
  }
  return `publish of event ${entry.eventId} to ${entry.message.subject} failed: ${reason}`;
}
