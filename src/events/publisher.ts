import { createInbox, type Msg, MsgHdrsImpl, type NatsConnection } from "@nats-io/nats-core";
import { GradecastError } from "../contract/index.js";
import type { OutboxEntry, PublishedEvent } from "../store/index.js";
import type { NatsLink } from "./nats-link.js";

/**
 * Why a publish failed, as metrics and the relay tell them apart:
 * - `not-connected`, `disconnected`, `timeout`: NATS could not be asked or did not answer;
 * - `no-stream`: no stream captures the subject ("no responders"), also seen while a
 *   clustered stream elects a leader, so it is retried like the above;
 * - `too-large`: over the server's `max_payload` or the stream's `max_msg_size`: the
 *   event can never be stored as it is, so retrying cannot help;
 * - `refused`: any other JetStream error answer (e.g. out of storage), retried with backoff.
 */
export type PublishFailureReason = (typeof PUBLISH_FAILURE_REASONS)[number];

/** Every {@link PublishFailureReason}: a fixed set, so metrics labelled by it stay bounded. */
export const PUBLISH_FAILURE_REASONS = [
  "not-connected",
  "disconnected",
  "timeout",
  "no-stream",
  "too-large",
  "refused",
] as const;

/** Which path published: `direct` right after the commit, or `relay` from the outbox. */
export type PublishPath = "direct" | "relay";

/** A publish JetStream did not acknowledge; the outbox keeps the event for the relay. */
export class PublishError extends GradecastError {
  readonly eventId: string;
  readonly reason: PublishFailureReason;

  constructor(
    eventId: string,
    reason: PublishFailureReason,
    message: string,
    options?: { cause?: unknown },
  ) {
    super("unavailable", message, options);
    this.name = "PublishError";
    this.eventId = eventId;
    this.reason = reason;
  }

  /** Whether retrying the same bytes can never succeed (the relay parks such events). */
  get isPermanent(): boolean {
    return this.reason === "too-large";
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
  /** Called after each failed publish with its reason and path (metrics); must be cheap. */
  onFailed?: (reason: PublishFailureReason, path: PublishPath) => void;
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
  error?: { code?: number; err_code?: number; description?: string };
}

/** JetStream's error code for a message over the stream's `max_msg_size`. */
const MESSAGE_SIZE_EXCEEDED_ERR_CODE = 10054;

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
  readonly #onFailed: EventPublisherOptions["onFailed"];
  readonly #awaited = new Map<number, AwaitedAck>();
  #inbox: { connection: NatsConnection; prefix: string } | undefined;
  #lastToken = 0;
  #expiryTimer: NodeJS.Timeout | undefined;

  constructor(link: NatsLink, options: EventPublisherOptions) {
    this.#link = link;
    this.#timeoutMs = options.timeoutMs;
    this.#onAcknowledged = options.onAcknowledged;
    this.#onFailed = options.onFailed;
    // JetStream will not answer what it did not get: nats.js fails requests on a
    // disconnect, and so does this.
    link.onDisconnected(() =>
      this.#failAll("disconnected", "disconnected from NATS before JetStream acknowledged"),
    );
  }

  /**
   * Publishes one entry and resolves with its stream sequence once JetStream has stored it;
   * `path` only labels a failure for `onFailed`.
   */
  publish(entry: PublishedEntry, path: PublishPath = "direct"): Promise<PublishedEvent> {
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
      const failure = error instanceof PublishError ? error : publishErrorOf(entry, error);
      this.#onFailed?.(failure.reason, path);
      throw failure;
    });
  }

  /** The reply subscription on the current connection, made on first use. */
  #ackInbox(eventId: string): { connection: NatsConnection; prefix: string } {
    const connection = this.#link.connection;
    if (!connection || connection.isClosed() || !this.#link.isConnected) {
      throw new PublishError(eventId, "not-connected", "not connected to NATS");
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
      this.#failAll("disconnected", `the ack subscription failed: ${error.message}`);
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
          "no-stream",
          `no JetStream stream captures subject ${entry.message.subject} (is JetStream enabled and the stream created?)`,
        ),
      );
      return;
    }
    let reply: PubAckReply;
    try {
      reply = msg.json<PubAckReply>();
    } catch {
      awaited.reject(
        new PublishError(entry.eventId, "refused", describeFailure(entry, "unreadable ack")),
      );
      return;
    }
    if (reply.error || typeof reply.seq !== "number") {
      const description = reply.error?.description ?? "ack without a stream sequence";
      const reason =
        reply.error?.err_code === MESSAGE_SIZE_EXCEEDED_ERR_CODE ? "too-large" : "refused";
      awaited.reject(new PublishError(entry.eventId, reason, describeFailure(entry, description)));
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
          "timeout",
          describeFailure(awaited.entry, `no ack within ${this.#timeoutMs} ms`),
        ),
      );
    }
    this.#stopTimerWhenIdle();
  }

  #failAll(reason: PublishFailureReason, description: string): void {
    const awaited = [...this.#awaited.values()];
    this.#awaited.clear();
    for (const { entry, reject } of awaited) {
      reject(new PublishError(entry.eventId, reason, describeFailure(entry, description)));
    }
    this.#stopTimerWhenIdle();
  }

  #stopTimerWhenIdle(): void {
    if (this.#awaited.size > 0 || !this.#expiryTimer) return;
    clearInterval(this.#expiryTimer);
    this.#expiryTimer = undefined;
  }
}

/** An error nats.js threw before the message left, e.g. over the server's max_payload. */
function publishErrorOf(entry: PublishedEntry, error: unknown): PublishError {
  const message = error instanceof Error ? error.message : String(error);
  return new PublishError(
    entry.eventId,
    message.includes("max_payload") ? "too-large" : "refused",
    describeFailure(entry, message),
    { cause: error },
  );
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
