import { createInbox, type Msg, MsgHdrsImpl, type NatsConnection } from "@nats-io/nats-core";
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

type PublishedEntry = Pick<OutboxEntry, "eventId" | "message">;

interface AwaitedAck {
  entry: PublishedEntry;
  startedAtMs: number;
  resolve(event: PublishedEvent): void;
  reject(error: PublishError): void;
}

/** What JetStream answers a publish: a PubAck, or an API error. */
interface PubAckReply {
  stream?: string;
  seq?: number;
  duplicate?: boolean;
  error?: { code?: number; description?: string };
}

/**
 * Publishes outbox entries to JetStream, exactly as stored: same subject,
 * bytes and headers, with `Nats-Msg-Id` = event id so a re-publish inside the
 * stream's duplicate window is dropped. Calls may overlap: many publishes are
 * in flight on one connection, in the order they were started.
 *
 * A JetStream publish is a NATS publish with a reply subject, answered by a
 * PubAck. nats.js's `js.publish` makes each one a full request (its own timer,
 * promise chain and an Error built with a stack trace on every completion);
 * here every ack comes back to one subscription, `<inbox>.<n>`, and one timer
 * expires the late ones. Same messages on the wire, about half the CPU per publish.
 */
export class EventPublisher {
  readonly #link: NatsLink;
  readonly #timeoutMs: number;
  readonly #onAcknowledged: PublishObserver | undefined;
  readonly #awaited = new Map<number, AwaitedAck>();
  #inbox: { connection: NatsConnection; prefix: string } | undefined;
  #lastToken = 0;
  #expiryTimer: NodeJS.Timeout | undefined;

  constructor(link: NatsLink, options: EventPublisherOptions) {
    this.#link = link;
    this.#timeoutMs = options.timeoutMs;
    this.#onAcknowledged = options.onAcknowledged;
    // JetStream will not answer what it did not get: nats.js fails requests on a
    // disconnect, and so does this.
    link.onDisconnected(() =>
      this.#failAll("disconnected from NATS before JetStream acknowledged"),
    );
  }

  /** Publishes one entry and resolves with its stream sequence once JetStream has stored it. */
  publish(entry: PublishedEntry): Promise<PublishedEvent> {
    return new Promise<PublishedEvent>((resolve, reject) => {
      const { connection, prefix } = this.#ackInbox(entry.eventId);
      const token = ++this.#lastToken;
      this.#awaited.set(token, { entry, startedAtMs: performance.now(), resolve, reject });
      try {
        connection.publish(entry.message.subject, entry.message.payload, {
          reply: `${prefix}${token}`,
          headers: publishHeaders(entry),
        });
      } catch (error) {
        // Refused before it left (e.g. over the server's max_payload): nothing to wait for.
        this.#awaited.delete(token);
        throw error;
      }
      this.#expiryTimer ??= setInterval(() => this.#expire(), expiryCheckMs(this.#timeoutMs));
    }).catch((error: unknown) => {
      throw error instanceof PublishError
        ? error
        : new PublishError(entry.eventId, describeFailure(entry, (error as Error).message), {
            cause: error,
          });
    });
  }

  /** The reply subscription on the current connection, made on first use. */
  #ackInbox(eventId: string): { connection: NatsConnection; prefix: string } {
    const connection = this.#link.connection;
    if (!connection || connection.isClosed() || !this.#link.isConnected) {
      throw new PublishError(eventId, "not connected to NATS");
    }
    if (this.#inbox?.connection !== connection) {
      const prefix = `${createInbox()}.`;
      connection.subscribe(`${prefix}*`, {
        callback: (error, msg) => this.#onReply(prefix, error, msg),
      });
      this.#inbox = { connection, prefix };
    }
    return this.#inbox;
  }

  #onReply(prefix: string, error: Error | null, msg: Msg): void {
    if (error) {
      this.#failAll(`the ack subscription failed: ${error.message}`);
      return;
    }
    const token = Number(msg.subject.slice(prefix.length));
    const awaited = this.#awaited.get(token);
    if (!awaited) return; // expired or failed already
    this.#awaited.delete(token);
    const { entry } = awaited;
    if (msg.headers?.code === 503) {
      // "No responders": with JetStream on, no stream captures the subject.
      awaited.reject(
        new PublishError(
          entry.eventId,
          `no JetStream stream captures subject ${entry.message.subject} (is JetStream enabled and the stream created?)`,
        ),
      );
      return;
    }
    let reply: PubAckReply;
    try {
      reply = msg.json<PubAckReply>();
    } catch {
      awaited.reject(new PublishError(entry.eventId, describeFailure(entry, "unreadable ack")));
      return;
    }
    if (reply.error || typeof reply.seq !== "number") {
      const reason = reply.error?.description ?? "ack without a stream sequence";
      awaited.reject(new PublishError(entry.eventId, describeFailure(entry, reason)));
      return;
    }
    this.#onAcknowledged?.(
      (performance.now() - awaited.startedAtMs) / 1000,
      reply.duplicate === true,
    );
    awaited.resolve({ eventId: entry.eventId, streamSequence: reply.seq });
  }

  /** Fails the publishes whose ack is overdue; all share one timeout, so they expire in order. */
  #expire(): void {
    const overdueBeforeMs = performance.now() - this.#timeoutMs;
    for (const [token, awaited] of this.#awaited) {
      if (awaited.startedAtMs > overdueBeforeMs) break;
      this.#awaited.delete(token);
      awaited.reject(
        new PublishError(
          awaited.entry.eventId,
          describeFailure(awaited.entry, `no ack within ${this.#timeoutMs} ms`),
        ),
      );
    }
    this.#stopTimerWhenIdle();
  }

  #failAll(reason: string): void {
    const awaited = [...this.#awaited.values()];
    this.#awaited.clear();
    for (const { entry, reject } of awaited) {
      reject(new PublishError(entry.eventId, describeFailure(entry, reason)));
    }
    this.#stopTimerWhenIdle();
  }

  #stopTimerWhenIdle(): void {
    if (this.#awaited.size > 0 || !this.#expiryTimer) return;
    clearInterval(this.#expiryTimer);
    this.#expiryTimer = undefined;
  }
}

/** How often overdue acks are looked for: a tenth of the timeout, within 10 ms to 1 s. */
function expiryCheckMs(timeoutMs: number): number {
  return Math.min(1000, Math.max(10, Math.round(timeoutMs / 10)));
}

/**
 * The stored header pairs as NATS headers, `Nats-Msg-Id` = event id. Built
 * from a record: `MsgHdrs.set` scans every key twice per header, and with a
 * dozen headers per event that was a fifth of the serving thread's allocations.
 */
function publishHeaders(entry: PublishedEntry): MsgHdrsImpl {
  const record: Record<string, string[]> = {};
  for (const [name, value] of entry.message.headers) record[name] = [value];
  record[MSG_ID_HEADER] = [entry.eventId];
  return MsgHdrsImpl.fromRecord(record) as MsgHdrsImpl;
}

const MSG_ID_HEADER = "Nats-Msg-Id";

function describeFailure(entry: PublishedEntry, reason: string): string {
  return `publish of event ${entry.eventId} to ${entry.message.subject} failed: ${reason}`;
}
