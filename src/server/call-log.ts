import { randomUUID } from "node:crypto";
import { Metadata } from "@grpc/grpc-js";
import type { Level, Logger } from "pino";

/** Metadata key of the request id: read from the call, echoed in the response's initial metadata. */
export const REQUEST_ID_METADATA = "x-request-id";

/** Longest request id kept from a client; longer ones are cut. */
export const REQUEST_ID_MAX_LENGTH = 128;

/** Longest string taken from a request into a log line (a queue name may be invalid and long). */
const REQUEST_FIELD_MAX_LENGTH = 256;

/** Characters kept from a client's request id; any other one is dropped, so a line stays one line. */
const REQUEST_ID_DISALLOWED = /[^A-Za-z0-9._~:/+=@-]/g;

/**
 * What one ScoreService call's log line tells besides method, code and duration; the handler
 * notes each fact as soon as it knows it. Never the token nor the score message.
 */
export interface CallFacts {
  /** The authenticated grader. */
  grader?: string;
  queue?: string;
  /** Decimal: a submission id may exceed 2^53. */
  submissionId?: string;
  eventId?: string;
  /** SubmitScore: the score repeated the latest one, so nothing new was published. */
  replayed?: boolean;
  /** Whether the event is acknowledged by JetStream. */
  published?: boolean;
}

/** One answered call, as its log line states it. */
export interface CallLine extends CallFacts {
  requestId: string;
  method: string;
  /** gRPC status code name: `OK`, `INVALID_ARGUMENT`... */
  code: string;
  durationMs: number;
  /** Why a call was not answered OK (the status message). */
  reason?: string;
  /** An unexpected error, logged in full (with its stack) once, here. */
  err?: unknown;
}

/**
 * The level of a call's line. Answered calls are `debug`: at thousands of calls a second a line
 * each would cost more than the call, and the metrics count them. A client's mistake or a refusal
 * is `info`, the server unable to serve is `warn`, an unexpected failure `error`.
 */
export function callLogLevel(code: string): Level {
  switch (code) {
    case "OK":
    case "NOT_FOUND":
      return "debug";
    case "INVALID_ARGUMENT":
    case "FAILED_PRECONDITION":
    case "UNAUTHENTICATED":
    case "PERMISSION_DENIED":
    case "RESOURCE_EXHAUSTED":
    case "CANCELLED":
      return "info";
    case "UNAVAILABLE":
    case "DEADLINE_EXCEEDED":
      return "warn";
    default:
      return "error";
  }
}

/** The message of a call's line, by level: answered, refused (the client's doing), or failed (ours). */
const CALL_MESSAGES: Record<Level, string> = {
  trace: "call answered",
  debug: "call answered",
  info: "call refused",
  warn: "call failed",
  error: "call failed",
  fatal: "call failed",
};

/** Writes the line of one answered call, at {@link callLogLevel}; nothing is built when that level is off. */
export function logCall(logger: Logger, line: CallLine): void {
  const level = callLogLevel(line.code);
  if (!logger.isLevelEnabled(level)) return;
  logger[level](line, CALL_MESSAGES[level]);
}

/**
 * The call's request id: the client's `x-request-id` when it sent one, keeping only URL-safe
 * characters and at most {@link REQUEST_ID_MAX_LENGTH} of them, else a new UUID.
 */
export function requestIdOf(metadata: Metadata): string {
  const sent = metadata.get(REQUEST_ID_METADATA)[0];
  if (typeof sent !== "string") return randomUUID();
  const kept = sent.replace(REQUEST_ID_DISALLOWED, "").slice(0, REQUEST_ID_MAX_LENGTH);
  return kept === "" ? randomUUID() : kept;
}

/** Initial metadata that hands the request id back to the client. */
export function requestIdMetadata(requestId: string): Metadata {
  const metadata = new Metadata();
  metadata.set(REQUEST_ID_METADATA, requestId);
  return metadata;
}

/** A string from a request, short enough for a log line. */
export function loggable(value: string): string {
  return value.length > REQUEST_FIELD_MAX_LENGTH
    ? `${value.slice(0, REQUEST_FIELD_MAX_LENGTH)}…`
    : value;
}
