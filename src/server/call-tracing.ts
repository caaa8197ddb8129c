import type { Metadata } from "@grpc/grpc-js";
import { context, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import {
  readTraceContext,
  spanContextOf,
  type TraceContext,
  type TraceContextReading,
  traceContextOfSpan,
} from "../contract/index.js";
import { isServerFault, toServiceError } from "./status.js";

/** The fully qualified gRPC service, as OpenTelemetry's `rpc.service` names it. */
const SCORE_SERVICE = "gradecast.v1.ScoreService";

/**
 * The W3C trace context a call carries in its `traceparent` and `tracestate` metadata,
 * checked (see {@link readTraceContext}): a bad value is dropped, and `problem` says why.
 */
export function traceContextOfCall(metadata: Metadata): TraceContextReading {
  return readTraceContext(textValues(metadata, "traceparent"), textValues(metadata, "tracestate"));
}

/**
 * Runs a ScoreService method in a SERVER span named `gradecast.v1.ScoreService/<method>`,
 * child of the caller's trace context, and hands `work` the trace context its event carries
 * on: the span's. Without a registered tracer provider the OpenTelemetry API makes no span
 * and that context is the caller's own, unchanged; with neither, it is undefined. The span
 * ends with the call's gRPC status; server faults (INTERNAL, UNAVAILABLE) mark it ERROR.
 */
export async function inServerSpan<Result>(
  method: string,
  incoming: TraceContext | undefined,
  work: (traceContext: TraceContext | undefined) => Promise<Result>,
): Promise<Result> {
  const remote = incoming === undefined ? undefined : spanContextOf(incoming);
  const parent =
    remote === undefined
      ? trace.deleteSpan(context.active())
      : trace.setSpanContext(context.active(), remote);
  const span = trace.getTracer("gradecast").startSpan(
    `${SCORE_SERVICE}/${method}`,
    {
      kind: SpanKind.SERVER,
      attributes: { "rpc.system": "grpc", "rpc.service": SCORE_SERVICE, "rpc.method": method },
    },
    parent,
  );
  const onward = traceContextOfSpan(span.spanContext());
  try {
    const result = await context.with(trace.setSpan(parent, span), () => work(onward));
    span.setAttribute("rpc.grpc.status_code", 0);
    return result;
  } catch (error) {
    span.setAttribute("rpc.grpc.status_code", toServiceError(error).code ?? 2);
    if (isServerFault(error)) {
      span.setStatus({
        code: SpanStatusCode.ERROR,
        message: error instanceof Error ? error.message : String(error),
      });
    }
    throw error;
  } finally {
    span.end();
  }
}

/** The string values of a metadata key (binary `-bin` keys never reach here). */
function textValues(metadata: Metadata, key: string): string[] {
  return metadata.get(key).filter((value): value is string => typeof value === "string");
}
