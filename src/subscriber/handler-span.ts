import { context, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import { spanContextOf } from "../contract/messages.js";
import type { ScoreEvent } from "./score-event.js";

/**
 * Runs a handler on `event` in an OpenTelemetry CONSUMER span, `process <subject>`, child of
 * the event's trace context (gradecast's SubmitScore span) when it carries one. The span is
 * active while the handler runs, so the handler's own spans nest under it; it ends with the
 * handler, ERROR when the handler throws. Without a registered tracer provider the
 * OpenTelemetry API makes no span and this only calls `run`.
 */
export async function inHandlerSpan(
  event: ScoreEvent,
  consumerName: string,
  run: () => Promise<void> | void,
): Promise<void> {
  const remote = event.traceContext === undefined ? undefined : spanContextOf(event.traceContext);
  const parent =
    remote === undefined
      ? trace.deleteSpan(context.active())
      : trace.setSpanContext(context.active(), remote);
  const span = trace.getTracer("gradecast").startSpan(
    `process ${event.subject}`,
    {
      kind: SpanKind.CONSUMER,
      // OpenTelemetry's messaging and CloudEvents conventions.
      attributes: {
        "messaging.system": "nats",
        "messaging.operation.name": "process",
        "messaging.operation.type": "process",
        "messaging.destination.name": event.subject,
        "messaging.consumer.group.name": consumerName,
        "messaging.message.id": event.id,
        "cloudevents.event_id": event.id,
        "cloudevents.event_source": event.source,
        "cloudevents.event_type": event.type,
        "cloudevents.event_spec_version": "1.0",
      },
    },
    parent,
  );
  try {
    await context.with(trace.setSpan(parent, span), run);
  } catch (error) {
    if (error instanceof Error) span.recordException(error);
    span.setStatus({
      code: SpanStatusCode.ERROR,
      message: error instanceof Error ? error.message : String(error),
    });
    throw error;
  } finally {
    span.end();
  }
}
