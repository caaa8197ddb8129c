import { credentials, Metadata } from "@grpc/grpc-js";
import type { NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import {
  context,
  createTraceState,
  type SpanContext,
  SpanKind,
  SpanStatusCode,
  trace,
} from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import Database from "better-sqlite3";
import { pino } from "pino";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  type ExternalGraderScoreData,
  ScoreServiceClient,
  type SubmitScoreResponse,
} from "../../src/contract/index.js";
import {
  type ScoreEvent,
  type ScoreHandler,
  type ScoreSubscription,
  subscribeToScores,
} from "../../src/subscriber/index.js";
import { sampleScoreData } from "../helpers/contract-fixtures.js";
import {
  pollUntil,
  readStream,
  type StreamMessage,
  sqlitePath,
  startGradecast,
  type TestGradecast,
} from "../helpers/gradecast.js";
import { type NatsServerHandle, startNatsServer } from "../helpers/nats-server.js";
import { createTestDatabase, queryDatabase } from "../helpers/postgres.js";

// One process holds the grader, gradecast and the LMS, so the spans of all three land in this
// exporter. The provider and context manager are registered globally, as an app's SDK would.
const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
const contextManager = new AsyncLocalStorageContextManager();

const SUBMIT_SCORE_SPAN = "gradecast.v1.ScoreService/SubmitScore";
const BOGUS_TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736";
const BOGUS_SPAN_ID = "00f067aa0ba902b7";

let nats: NatsServerHandle;
let gradecast: TestGradecast;
let connection: NatsConnection;
const logged: string[] = [];
/** Started by a test, stopped after it even when it fails. */
const running: ScoreSubscription[] = [];

beforeAll(async () => {
  context.setGlobalContextManager(contextManager.enable());
  trace.setGlobalTracerProvider(provider);
  nats = await startNatsServer();
  gradecast = await startGradecast(nats.url, {
    logger: pino({ level: "debug" }, { write: (line: string) => logged.push(line) }),
  });
  await gradecast.server.streamReady;
  connection = await connect({ servers: nats.url });
});

afterEach(async () => {
  await Promise.allSettled(running.splice(0).map((subscription) => subscription.stop()));
  exporter.reset();
});

afterAll(async () => {
  await connection?.close();
  await gradecast?.cleanup();
  await nats?.cleanup();
  trace.disable();
  context.disable();
  await provider.shutdown();
});

async function subscribe(queueName: string, handler: ScoreHandler): Promise<ScoreSubscription> {
  const subscription = await subscribeToScores(
    {
      connection,
      stream: gradecast.config.stream.name,
      subjectPrefix: gradecast.config.stream.subjectPrefix,
      queueName,
      maxDeliver: 3,
      backoffMs: [50],
    },
    handler,
  );
  running.push(subscription);
  return subscription;
}

/** Submits `scoreData` inside a CLIENT span of the grader, as an instrumented grader would. */
async function submitInGraderSpan(
  client: TestGradecast["client"],
  scoreData: ExternalGraderScoreData,
): Promise<{ response: SubmitScoreResponse; graderSpan: SpanContext }> {
  return trace
    .getTracer("test-grader")
    .startActiveSpan("grader submits a score", { kind: SpanKind.CLIENT }, async (span) => {
      try {
        return { response: await client.submitScore(scoreData), graderSpan: span.spanContext() };
      } finally {
        span.end();
      }
    });
}

/** The stream's message of an event, once it is there. */
async function streamMessageOf(natsUrl: string, eventId: string): Promise<StreamMessage> {
  const messages = await pollUntil(
    () => readStream(natsUrl, gradecast.config.stream.name),
    (found) => found.some((message) => message.headers["Nats-Msg-Id"] === eventId),
  );
  const message = messages.find((candidate) => candidate.headers["Nats-Msg-Id"] === eventId);
  if (!message) throw new Error(`event ${eventId} never reached the stream`);
  return message;
}

/** The finished spans that `isWanted` picks, once there are `count` of them. */
async function finishedSpans(
  isWanted: (span: ReadableSpan) => boolean,
  count: number,
): Promise<ReadableSpan[]> {
  const spans = await pollUntil(
    async () => exporter.getFinishedSpans().filter(isWanted),
    (found) => found.length >= count,
  );
  expect(spans).toHaveLength(count);
  return spans;
}

function traceparentOf(span: SpanContext): string {
  return `00-${span.traceId}-${span.spanId}-${span.traceFlags.toString(16).padStart(2, "0")}`;
}

describe("trace context from the grader to the LMS handler", () => {
  it("the grader's call, gradecast's SubmitScore and the LMS handler share one trace, each span the parent of the next", async () => {
    const queueName = "trace-grader";
    const handled: ScoreEvent[] = [];
    await subscribe(queueName, (event) => {
      // The handler span is active: the LMS's own spans nest under it.
      trace.getTracer("test-lms").startActiveSpan("lms applies the grade", (span) => span.end());
      handled.push(event);
    });

    const { response, graderSpan } = await submitInGraderSpan(
      gradecast.client,
      sampleScoreData({ queueName, submissionId: 1_001n }),
    );
    expect(response).toMatchObject({ published: true, replayed: false });

    const [server] = await finishedSpans((span) => span.name === SUBMIT_SCORE_SPAN, 1);
    const [handler] = await finishedSpans((span) => span.name.startsWith("process "), 1);
    const [applied] = await finishedSpans((span) => span.name === "lms applies the grade", 1);
    if (!server || !handler || !applied) throw new Error("a span is missing");

    expect(server.spanContext().traceId).toBe(graderSpan.traceId);
    expect(server.parentSpanContext?.spanId).toBe(graderSpan.spanId);
    expect(server.kind).toBe(SpanKind.SERVER);
    expect(server.attributes).toMatchObject({
      "rpc.system": "grpc",
      "rpc.service": "gradecast.v1.ScoreService",
      "rpc.method": "SubmitScore",
      "rpc.grpc.status_code": 0,
    });

    expect(handler.spanContext().traceId).toBe(graderSpan.traceId);
    expect(handler.parentSpanContext?.spanId).toBe(server.spanContext().spanId);
    expect(handler.kind).toBe(SpanKind.CONSUMER);
    expect(handler.name).toBe("process gradecast.scores.v1.trace-grader");
    expect(handler.attributes).toMatchObject({
      "messaging.system": "nats",
      "messaging.operation.type": "process",
      "messaging.destination.name": "gradecast.scores.v1.trace-grader",
      "messaging.message.id": response.eventId,
      "cloudevents.event_id": response.eventId,
    });
    expect(handler.status.code).toBe(SpanStatusCode.UNSET);
    expect(applied.parentSpanContext?.spanId).toBe(handler.spanContext().spanId);

    // The event carries gradecast's span as the CloudEvents distributed-tracing extension.
    const message = await streamMessageOf(nats.url, response.eventId);
    const traceparent = traceparentOf(server.spanContext());
    expect(message.headers["ce-traceparent"]).toBe(traceparent);
    expect(message.headers["ce-tracestate"]).toBeUndefined();
    expect(handled.map((event) => event.traceContext)).toEqual([{ traceparent }]);
    expect(JSON.parse(JSON.stringify(handled[0]))).toMatchObject({ traceContext: { traceparent } });
  });

  it("a handler that throws ends its span with status ERROR, and the retry's span is another child of SubmitScore", async () => {
    const queueName = "trace-failing-lms";
    let deliveries = 0;
    await subscribe(queueName, () => {
      deliveries += 1;
      if (deliveries === 1) throw new Error("the gradebook is locked");
    });

    const { graderSpan } = await submitInGraderSpan(
      gradecast.client,
      sampleScoreData({ queueName, submissionId: 1_002n }),
    );
    const [server] = await finishedSpans((span) => span.name === SUBMIT_SCORE_SPAN, 1);
    const handlerSpans = await finishedSpans((span) => span.name.startsWith("process "), 2);
    expect(handlerSpans.map((span) => span.status)).toEqual([
      { code: SpanStatusCode.ERROR, message: "the gradebook is locked" },
      { code: SpanStatusCode.UNSET },
    ]);
    expect(handlerSpans[0]?.events.map((event) => event.name)).toEqual(["exception"]);
    for (const span of handlerSpans) {
      expect(span.spanContext().traceId).toBe(graderSpan.traceId);
      expect(span.parentSpanContext?.spanId).toBe(server?.spanContext().spanId);
    }
  });

  it("a malformed trace context is dropped: the call succeeds and its event does not carry it", async () => {
    const raw = new ScoreServiceClient(gradecast.address, credentials.createInsecure());
    const submitWith = (metadata: Metadata, submissionId: bigint) =>
      new Promise<SubmitScoreResponse>((resolve, reject) => {
        raw.submitScore(
          { scoreData: sampleScoreData({ queueName: "trace-malformed", submissionId }) },
          metadata,
          (error, response) => (error ? reject(error) : resolve(response)),
        );
      });
    const valid = `00-${BOGUS_TRACE_ID}-${BOGUS_SPAN_ID}-01`;
    const cases: Array<[name: string, metadata: Array<[string, string]>]> = [
      ["an all-zero trace id", [["traceparent", `00-${"0".repeat(32)}-${BOGUS_SPAN_ID}-01`]]],
      ["uppercase hex", [["traceparent", valid.toUpperCase()]]],
      ["a value that is no traceparent", [["traceparent", `${valid}; token=hunter2`]]],
      [
        "two traceparents",
        [
          ["traceparent", valid],
          ["traceparent", valid],
        ],
      ],
    ];
    try {
      for (const [index, [name, entries]] of cases.entries()) {
        const metadata = new Metadata();
        for (const [key, value] of entries) metadata.add(key, value);
        metadata.add("tracestate", "rojo=00f067aa0ba902b7");
        logged.length = 0;
        const response = await submitWith(metadata, 2_000n + BigInt(index));
        expect(response.published, name).toBe(true);

        // gradecast traced the call in a trace of its own: its span has no parent, and the
        // event carries that span, not the caller's value (nor its tracestate).
        const message = await streamMessageOf(nats.url, response.eventId);
        const carried = message.headers["ce-traceparent"] ?? "";
        expect(carried, name).not.toContain(BOGUS_TRACE_ID);
        expect(message.headers["ce-tracestate"], name).toBeUndefined();
        const [server] = await finishedSpans(
          (span) => span.name === SUBMIT_SCORE_SPAN && carried.includes(span.spanContext().spanId),
          1,
        );
        expect(server?.parentSpanContext, name).toBeUndefined();

        const dropped = logged
          .map((line) => JSON.parse(line) as { level: number; msg: string; problem?: string })
          .filter((line) => line.msg === "SubmitScore: dropped the trace context");
        expect(dropped, name).toHaveLength(1);
        expect(dropped[0]?.level, name).toBe(20);
        // The log says why, never what the caller sent.
        expect(JSON.stringify(dropped), name).not.toContain("hunter2");
      }
    } finally {
      raw.close();
    }
  });

  it("a valid traceparent with an invalid tracestate keeps the traceparent and drops the tracestate", async () => {
    const raw = new ScoreServiceClient(gradecast.address, credentials.createInsecure());
    const metadata = new Metadata();
    metadata.add("traceparent", `00-${BOGUS_TRACE_ID}-${BOGUS_SPAN_ID}-01`);
    metadata.add("tracestate", `rojo=${"a".repeat(600)}`);
    try {
      const response = await new Promise<SubmitScoreResponse>((resolve, reject) => {
        raw.submitScore(
          { scoreData: sampleScoreData({ queueName: "trace-malformed", submissionId: 2_100n }) },
          metadata,
          (error, answer) => (error ? reject(error) : resolve(answer)),
        );
      });
      const message = await streamMessageOf(nats.url, response.eventId);
      const [server] = await finishedSpans((span) => span.name === SUBMIT_SCORE_SPAN, 1);
      expect(server?.parentSpanContext?.spanId).toBe(BOGUS_SPAN_ID);
      expect(message.headers["ce-traceparent"]).toBe(
        `00-${BOGUS_TRACE_ID}-${server?.spanContext().spanId}-01`,
      );
      expect(message.headers["ce-tracestate"]).toBeUndefined();
    } finally {
      raw.close();
    }
  });

  it.each([["sqlite"], ["postgres"]] as const)(
    "an event the relay publishes after a NATS outage carries the trace context stored with its outbox row (%s)",
    async (storeKind) => {
      const database = storeKind === "postgres" ? await createTestDatabase() : undefined;
      const outage = await startGradecast(
        nats.url,
        database ? { store: { kind: "postgres", url: database.url, poolSize: 2 } } : {},
      );
      try {
        await outage.server.streamReady;
        await nats.stop();
        const { response, graderSpan } = await submitInGraderSpan(
          outage.client,
          sampleScoreData({ queueName: `trace-outage-${storeKind}`, submissionId: 3_000n }),
        );
        expect(response.published).toBe(false);
        const [server] = await finishedSpans((span) => span.name === SUBMIT_SCORE_SPAN, 1);
        expect(server?.parentSpanContext?.spanId).toBe(graderSpan.spanId);
        const traceparent = traceparentOf(server?.spanContext() ?? graderSpan);

        // Committed with the score: the outbox row's headers already hold it.
        const select = "SELECT headers FROM outbox WHERE event_id = $1";
        const [row] = database
          ? await queryDatabase<{ headers: string }>(database.url, select, [response.eventId])
          : readOutboxHeaders(sqlitePath(outage.config), response.eventId);
        expect(JSON.parse(row?.headers ?? "[]")).toContainEqual(["ce-traceparent", traceparent]);

        await nats.restart();
        const message = await streamMessageOf(nats.url, response.eventId);
        expect(message.headers["ce-traceparent"]).toBe(traceparent);
        expect(message.headers["ce-id"]).toBe(response.eventId);
      } finally {
        if (!nats.isRunning) await nats.restart();
        await outage.cleanup();
        await database?.drop();
      }
    },
  );

  it("without a tracer provider gradecast makes no span and the event carries the grader's trace context unchanged", async () => {
    trace.disable();
    try {
      const grader: SpanContext = {
        traceId: BOGUS_TRACE_ID,
        spanId: BOGUS_SPAN_ID,
        traceFlags: 1,
        traceState: createTraceState("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"),
      };
      const response = await context.with(trace.setSpanContext(context.active(), grader), () =>
        gradecast.client.submitScore(
          sampleScoreData({ queueName: "trace-untraced", submissionId: 4_000n }),
        ),
      );
      const message = await streamMessageOf(nats.url, response.eventId);
      expect(message.headers["ce-traceparent"]).toBe(`00-${BOGUS_TRACE_ID}-${BOGUS_SPAN_ID}-01`);
      expect(message.headers["ce-tracestate"]).toBe("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");

      // Outside any span the client sends nothing, and the event carries no trace context.
      const untraced = await gradecast.client.submitScore(
        sampleScoreData({ queueName: "trace-untraced", submissionId: 4_001n }),
      );
      const plain = await streamMessageOf(nats.url, untraced.eventId);
      expect(plain.headers["ce-id"]).toBe(untraced.eventId);
      expect(plain.headers["ce-traceparent"]).toBeUndefined();
      expect(exporter.getFinishedSpans()).toEqual([]);
    } finally {
      trace.setGlobalTracerProvider(provider);
    }
  });
});

function readOutboxHeaders(storePath: string, eventId: string): Array<{ headers: string }> {
  const db = new Database(storePath, { readonly: true, fileMustExist: true });
  try {
    return db.prepare("SELECT headers FROM outbox WHERE event_id = ?").all(eventId) as Array<{
      headers: string;
    }>;
  } finally {
    db.close();
  }
}
