import { Buffer } from "node:buffer";
import { ExternalGraderScoreData } from "../../gen/ts/gradecast/v1/score.js";
import type { HeaderList } from "./cloud-event-headers.js";
import { type EventMessage, type EventOrigin, encodeScoreEvent } from "./score-event.js";
import { SCORE_LIMITS } from "./validation.js";

/**
 * What NATS counts against a server's `max_payload` for one event: the payload
 * plus the headers as nats.js encodes them (`NATS/1.0`, then `\r\n<name>: <value>`
 * per header, then `\r\n\r\n`). Header values are ASCII (percent-encoded).
 */
export function publishedEventBytes(message: Pick<EventMessage, "payload" | "headers">): number {
  return message.payload.length + headerBytes(message.headers);
}

function headerBytes(headers: HeaderList): number {
  let bytes = "NATS/1.0".length + "\r\n\r\n".length;
  for (const [name, value] of headers) bytes += 2 + name.length + 2 + value.length;
  return bytes;
}

/** Longest grader name the credentials file allows; it becomes part of the event `source`. */
const MAX_GRADER_NAME_LENGTH = 64;
/** Largest submission sequence (uint32) and a time whose encoding is as long as any. */
const LARGEST_SEQUENCE = 2 ** 32 - 1;
const LONGEST_TIME = new Date(2 ** 41 + 999);
/** Per field of the score data: a tag byte and a length of at most 3 bytes (strings up to 2 MiB). */
const FIELD_OVERHEAD_BYTES = 4;
/** The three integer fields as varints, with their tags: 11 bytes each at most. */
const INTEGER_FIELDS_BYTES = 3 * 11;

/**
 * Sizes of a score's event before it exists. The event's bytes are only known
 * inside the store transaction (with its submission sequence); SubmitScore must
 * refuse a score whose event a NATS server would refuse before storing it.
 * {@link upperBound} costs a few byte-length reads (it runs on every call);
 * {@link exactBytes} encodes, and runs only when the bound is over a limit.
 */
export class EventSizing {
  readonly #origin: EventOrigin;
  readonly #subjectPrefix: string;
  /** Bytes of an event whose score data is empty, with the longest grader name, id and time. */
  readonly #envelopeBytes: number;

  constructor(origin: EventOrigin, subjectPrefix: string) {
    this.#origin = origin;
    this.#subjectPrefix = subjectPrefix;
    // The subject needs a queue token; one byte more in the bound.
    const empty = ExternalGraderScoreData.fromPartial({ queueName: "q" });
    this.#envelopeBytes = this.exactBytes(empty, "x".repeat(MAX_GRADER_NAME_LENGTH));
  }

  /** At least the bytes of the event of `data`, whoever reports it; a few dozen bytes over. */
  upperBound(data: ExternalGraderScoreData): number {
    const stringBytes =
      Buffer.byteLength(data.courseId) +
      Buffer.byteLength(data.scoreMsg) +
      Buffer.byteLength(data.userId) +
      Buffer.byteLength(data.moduleId) +
      Buffer.byteLength(data.queueKey);
    // The queue name is in the payload and, percent-encoded (at most 3 characters per
    // byte), in the `ce-queuename` header.
    const queueNameBytes = 4 * Buffer.byteLength(data.queueName);
    // The score data's own tag and length inside the envelope may grow by up to 3 bytes.
    return (
      this.#envelopeBytes +
      stringBytes +
      queueNameBytes +
      6 * FIELD_OVERHEAD_BYTES +
      INTEGER_FIELDS_BYTES +
      3
    );
  }

  /** The bytes of the event of `data` as `graderName` would report it, at the largest sequence. */
  exactBytes(data: ExternalGraderScoreData, graderName?: string): number {
    const origin =
      graderName === undefined
        ? this.#origin
        : { ...this.#origin, source: `${this.#origin.source}/${graderName}` };
    const message = encodeScoreEvent(
      {
        eventId: "00000000-0000-7000-8000-000000000000",
        time: LONGEST_TIME,
        scoreData: data,
        submissionSequence: LARGEST_SEQUENCE,
      },
      origin,
      this.#subjectPrefix,
    );
    return publishedEventBytes(message);
  }

  /** The largest event the contract allows: every string at its longest, in UTF-8 bytes. */
  get largestEventBytes(): number {
    const id = "x".repeat(SCORE_LIMITS.maxIdBytes);
    return this.upperBound(
      ExternalGraderScoreData.fromPartial({
        courseId: id,
        scoreMsg: "x".repeat(SCORE_LIMITS.maxScoreMsgBytes),
        userId: id,
        moduleId: id,
        queueKey: id,
        queueName: "x".repeat(SCORE_LIMITS.maxQueueNameBytes),
      }),
    );
  }
}
