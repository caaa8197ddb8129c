import { DeliverPolicy, type JsMsg, jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { decodeEventPayload, type EventPayload } from "./event-payload.js";

/** One message of the stream, as the verifier sees it. */
export interface StreamEvent {
  readonly seq: number;
  readonly subject: string;
  /** The `Nats-Msg-Id` header: the event id JetStream deduplicates on. */
  readonly natsMsgId: string | undefined;
  readonly ceId: string | undefined;
  /** When JetStream stored the message (its own clock, ms since the epoch). */
  readonly storedAtMs: number;
  /** The decoded payload, or why it could not be decoded. */
  readonly payload: EventPayload | { readonly error: string };
}

/** Messages per fetch: enough to read a campaign's stream in a few round trips. */
const FETCH_MAX_MESSAGES = 2_000;
const FETCH_EXPIRES_MS = 5_000;

/**
 * Reads a whole JetStream stream with plain nats.js (an ordered consumer from where it stopped
 * last time), keyed by nothing gradecast computes: the verifier's own view of what was
 * published. `readNew()` can be called again and again while the stream still grows.
 */
export class StreamReader {
  readonly #connection: NatsConnection;
  readonly #stream: string;
  readonly #events: StreamEvent[] = [];
  #nextSeq = 1;

  private constructor(connection: NatsConnection, stream: string) {
    this.#connection = connection;
    this.#stream = stream;
  }

  /** Connects to any of `servers` (comma-separated URLs). */
  static async open(servers: string, stream: string): Promise<StreamReader> {
    const connection = await connect({
      servers: servers.split(","),
      name: "gradecast chaos verifier",
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
    });
    return new StreamReader(connection, stream);
  }

  /** Every message read so far, in stream order. */
  get events(): readonly StreamEvent[] {
    return this.#events;
  }

  /**
   * Reads what the stream holds beyond what was read before, up to its last sequence as of
   * now, within `timeoutMs`. Resolves with how many messages were new.
   */
  async readNew(timeoutMs: number): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    const jsm = await jetstreamManager(this.#connection, { timeout: timeoutMs });
    const info = await jsm.streams.info(this.#stream);
    const lastSeq = info.state.last_seq;
    const before = this.#events.length;
    const js = jetstream(this.#connection, { timeout: timeoutMs });
    while (this.#nextSeq <= lastSeq) {
      if (Date.now() >= deadline) {
        throw new Error(
          `stream ${this.#stream}: read up to ${this.#nextSeq - 1} of ${lastSeq} in ${timeoutMs} ms`,
        );
      }
      // A fresh ordered consumer per round: a stalled one from a failed round is not reused.
      const consumer = await js.consumers.get(this.#stream, {
        deliver_policy: DeliverPolicy.StartSequence,
        opt_start_seq: this.#nextSeq,
      });
      const batch = await consumer.fetch({
        max_messages: Math.min(lastSeq - this.#nextSeq + 1, FETCH_MAX_MESSAGES),
        expires: FETCH_EXPIRES_MS,
      });
      for await (const message of batch) {
        this.#events.push(toStreamEvent(message));
        this.#nextSeq = message.seq + 1;
        if (message.seq >= lastSeq) break;
      }
    }
    return this.#events.length - before;
  }

  async close(): Promise<void> {
    await this.#connection.close();
  }
}

function toStreamEvent(message: JsMsg): StreamEvent {
  let payload: StreamEvent["payload"];
  try {
    payload = decodeEventPayload(message.data);
  } catch (error) {
    payload = { error: error instanceof Error ? error.message : String(error) };
  }
  return {
    seq: message.seq,
    subject: message.subject,
    natsMsgId: message.headers?.get("Nats-Msg-Id") || undefined,
    ceId: message.headers?.get("ce-id") || undefined,
    storedAtMs: Number(message.timestampNanos / 1_000_000n),
    payload,
  };
}
