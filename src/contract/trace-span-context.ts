import { createTraceState, isSpanContextValid, type SpanContext } from "@opentelemetry/api";
import {
  formatTraceparent,
  normalizeTracestate,
  parseTraceparent,
  type TraceContext,
} from "./trace-context.js";

// Between the wire form of a trace context and OpenTelemetry's SpanContext. gradecast reads
// `traceparent` itself rather than through the API's propagator, which is a no-op unless the
// application registers one: the contract says W3C, whatever propagator an app chose.

/** The remote span context a checked {@link TraceContext} names. */
export function spanContextOf(traceContext: TraceContext): SpanContext | undefined {
  const parent = parseTraceparent(traceContext.traceparent);
  if (parent === undefined) return undefined;
  return {
    traceId: parent.traceId,
    spanId: parent.spanId,
    traceFlags: parent.traceFlags,
    isRemote: true,
    ...(traceContext.tracestate === undefined
      ? {}
      : { traceState: createTraceState(traceContext.tracestate) }),
  };
}

/** The trace context that names `spanContext` as parent; undefined when it is not valid. */
export function traceContextOfSpan(spanContext: SpanContext): TraceContext | undefined {
  if (!isSpanContextValid(spanContext)) return undefined;
  const traceparent = formatTraceparent(spanContext);
  // Checked like a caller's: whatever a tracer put there is published with the event.
  const serialized = spanContext.traceState?.serialize();
  const tracestate = serialized === undefined ? undefined : normalizeTracestate(serialized);
  return tracestate ? { traceparent, tracestate } : { traceparent };
}
