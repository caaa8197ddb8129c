import type { ExternalGraderScoreSubmitted } from "../../gen/ts/gradecast/v1/event.js";
import type { TraceContext } from "./trace-context.js";

/** Media type of the payload: the binary protobuf encoding of the envelope. */
export const PROTOBUF_CONTENT_TYPE = "application/protobuf";

/** `ce-dataschema`: the envelope's protobuf type, in Any type-URL form. */
export const SCORE_EVENT_DATASCHEMA =
  "type.googleapis.com/gradecast.v1.ExternalGraderScoreSubmitted";

/** Header pairs in a fixed order, so an outbox row's headers are byte-for-byte reproducible. */
export type HeaderList = ReadonlyArray<readonly [name: string, value: string]>;

/**
 * CloudEvents binary-mode headers (NATS protocol binding) of an event, plus
 * `content-type` and `Nats-Msg-Id`. Routers and tools read these without
 * decoding the payload; the Open edX extras match what its Kafka bus sends.
 */
export function cloudEventHeaders(event: ExternalGraderScoreSubmitted): HeaderList {
  const metadata = event.metadata;
  if (!metadata?.time) throw new Error("an event needs metadata with a time");
  const raw: Array<[string, string]> = [
    ["ce-specversion", "1.0"],
    ["ce-id", metadata.id],
    ["ce-type", metadata.eventType],
    ["ce-source", metadata.source],
    ["ce-time", metadata.time.toISOString()],
    ["ce-datacontenttype", PROTOBUF_CONTENT_TYPE],
    ["ce-dataschema", SCORE_EVENT_DATASCHEMA],
    ["ce-minorversion", String(metadata.minorversion)],
    ["ce-sourcehost", metadata.sourcehost],
    ["ce-sourcelib", metadata.sourcelib],
    // The exact queue name, so routers need not decode the subject's queue token.
    ["ce-queuename", event.scoreData?.queueName ?? ""],
    ["content-type", PROTOBUF_CONTENT_TYPE],
    ["Nats-Msg-Id", metadata.id],
  ];
  return raw.map(([name, value]) => [name, encodeHeaderValue(value)] as const);
}

/**
 * Headers of the CloudEvents distributed-tracing extension: its `traceparent` and
 * `tracestate` attributes, `ce-` prefixed like every attribute in binary mode.
 */
export const TRACE_CONTEXT_HEADERS = {
  traceparent: "ce-traceparent",
  tracestate: "ce-tracestate",
} as const;

/**
 * The distributed-tracing extension headers of an event whose score came with `traceContext`
 * (checked by the caller), after the other headers of {@link cloudEventHeaders}.
 */
export function traceContextHeaders(traceContext: TraceContext | undefined): HeaderList {
  if (traceContext === undefined) return [];
  const headers: Array<readonly [string, string]> = [
    [TRACE_CONTEXT_HEADERS.traceparent, encodeHeaderValue(traceContext.traceparent)],
  ];
  if (traceContext.tracestate !== undefined) {
    headers.push([TRACE_CONTEXT_HEADERS.tracestate, encodeHeaderValue(traceContext.tracestate)]);
  }
  return headers;
}

/**
 * What the headers of `traceContext` add to an event's size against NATS `max_payload`,
 * counted as `publishedEventBytes` counts each header (`\r\n<name>: <value>`).
 */
export function traceContextHeaderBytes(traceContext: TraceContext | undefined): number {
  let bytes = 0;
  for (const [name, value] of traceContextHeaders(traceContext)) {
    bytes += 2 + name.length + 2 + value.length;
  }
  return bytes;
}

/**
 * Percent-encodes what CloudEvents bindings do not allow raw in a header:
 * space, `"`, `%` and anything outside printable ASCII (as UTF-8 bytes).
 */
export function encodeHeaderValue(value: string): string {
  let out = "";
  for (const char of value) {
    const code = char.codePointAt(0) ?? 0;
    if (code > 0x20 && code < 0x7f && char !== '"' && char !== "%") {
      out += char;
    } else {
      for (const byte of Buffer.from(char, "utf8")) {
        out += `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
      }
    }
  }
  return out;
}

/** Inverse of {@link encodeHeaderValue}. */
export function decodeHeaderValue(value: string): string {
  return decodeURIComponent(value);
}
