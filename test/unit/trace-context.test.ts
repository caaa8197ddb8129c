import { createTraceState } from "@opentelemetry/api";
import { describe, expect, it } from "vitest";
import {
  formatTraceparent,
  MAX_TRACESTATE_LENGTH,
  normalizeTracestate,
  parseTraceparent,
  readTraceContext,
  spanContextOf,
  traceContextHeaderBytes,
  traceContextHeaders,
  traceContextOfSpan,
} from "../../src/contract/index.js";

const TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736";
const SPAN_ID = "00f067aa0ba902b7";
const TRACEPARENT = `00-${TRACE_ID}-${SPAN_ID}-01`;

describe("parseTraceparent", () => {
  it("reads the trace id, the parent span id and the flags of a version-00 traceparent", () => {
    expect(parseTraceparent(TRACEPARENT)).toEqual({
      traceId: TRACE_ID,
      spanId: SPAN_ID,
      traceFlags: 1,
    });
    expect(parseTraceparent(`00-${TRACE_ID}-${SPAN_ID}-00`)?.traceFlags).toBe(0);
  });

  it("reads the first four fields of a later version, which may append more", () => {
    expect(parseTraceparent(`cc-${TRACE_ID}-${SPAN_ID}-01-what-comes-next`)).toEqual({
      traceId: TRACE_ID,
      spanId: SPAN_ID,
      traceFlags: 1,
    });
    expect(parseTraceparent(`01-${TRACE_ID}-${SPAN_ID}-01`)?.spanId).toBe(SPAN_ID);
  });

  it.each([
    ["empty", ""],
    ["uppercase hex", `00-${TRACE_ID.toUpperCase()}-${SPAN_ID}-01`],
    ["an all-zero trace id", `00-${"0".repeat(32)}-${SPAN_ID}-01`],
    ["an all-zero span id", `00-${TRACE_ID}-${"0".repeat(16)}-01`],
    ["version ff", `ff-${TRACE_ID}-${SPAN_ID}-01`],
    ["a version-00 value with more after it", `${TRACEPARENT}-extra`],
    ["a later version glued to more without a dash", `01-${TRACE_ID}-${SPAN_ID}-01x`],
    ["a short trace id", `00-${TRACE_ID.slice(1)}-${SPAN_ID}-01`],
    ["a long span id", `00-${TRACE_ID}-${SPAN_ID}0-01`],
    ["a one-digit flags field", `00-${TRACE_ID}-${SPAN_ID}-1`],
    ["non-hex characters", `00-${TRACE_ID.slice(0, 31)}g-${SPAN_ID}-01`],
    ["surrounding spaces", ` ${TRACEPARENT} `],
    ["a newline inside", `00-${TRACE_ID}-${SPAN_ID}-01\n`],
    [
      "a later version longer than 256 characters",
      `01-${TRACE_ID}-${SPAN_ID}-01-${"a".repeat(300)}`,
    ],
  ])("refuses %s", (_name, value) => {
    expect(parseTraceparent(value)).toBeUndefined();
  });
});

describe("formatTraceparent", () => {
  it("writes version 00 with two lowercase hex digits of flags", () => {
    expect(formatTraceparent({ traceId: TRACE_ID, spanId: SPAN_ID, traceFlags: 1 })).toBe(
      TRACEPARENT,
    );
    expect(formatTraceparent({ traceId: TRACE_ID, spanId: SPAN_ID, traceFlags: 0xab })).toBe(
      `00-${TRACE_ID}-${SPAN_ID}-ab`,
    );
  });
});

describe("normalizeTracestate", () => {
  it("trims members and drops empty ones, keeping their order", () => {
    expect(normalizeTracestate(" rojo=00f067aa0ba902b7 ,, congo=t61rcWkgMzE\t")).toBe(
      "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE",
    );
    expect(normalizeTracestate("tenant1@vendor=a b")).toBe("tenant1@vendor=a b");
    expect(normalizeTracestate(" , ")).toBe("");
  });

  it.each([
    ["a member without =", "rojo"],
    ["an uppercase key", "Rojo=1"],
    ["a key starting with a digit (not multi-tenant)", "1rojo=1"],
    ["a value with = inside", "rojo=a=b"],
    ["an empty value", "rojo="],
    ["a key longer than 256 characters", `r${"o".repeat(256)}=1`],
    ["a non-ASCII value", "rojo=é"],
    ["a duplicated key", "rojo=1,congo=2,rojo=3"],
    ["33 members", Array.from({ length: 33 }, (_, index) => `k${index}=v`).join(",")],
    ["more than 512 characters", `rojo=${"a".repeat(MAX_TRACESTATE_LENGTH)}`],
  ])("refuses %s", (_name, value) => {
    expect(normalizeTracestate(value)).toBeUndefined();
  });
});

describe("readTraceContext", () => {
  it("takes a valid traceparent and tracestate, repeated tracestate headers joined", () => {
    expect(readTraceContext([TRACEPARENT], ["rojo=1", "congo=2"])).toEqual({
      traceContext: { traceparent: TRACEPARENT, tracestate: "rojo=1,congo=2" },
      problem: undefined,
    });
  });

  it("has nothing to say when the caller sent no traceparent", () => {
    expect(readTraceContext([], ["rojo=1"])).toEqual({
      traceContext: undefined,
      problem: undefined,
    });
  });

  it("drops both values when the traceparent is invalid, and says why without repeating it", () => {
    const secret = `00-${TRACE_ID}-${SPAN_ID}-01 token=hunter2`;
    const reading = readTraceContext([secret], ["rojo=1"]);
    expect(reading.traceContext).toBeUndefined();
    expect(reading.problem).toBe("traceparent is not a valid W3C traceparent");
  });

  it("drops a repeated traceparent, which W3C makes invalid", () => {
    expect(readTraceContext([TRACEPARENT, TRACEPARENT], [])).toEqual({
      traceContext: undefined,
      problem: "traceparent is repeated (2 values)",
    });
  });

  it("keeps the traceparent and drops only an invalid tracestate", () => {
    const reading = readTraceContext([TRACEPARENT], ["Bad Key=1"]);
    expect(reading.traceContext).toEqual({ traceparent: TRACEPARENT });
    expect(reading.problem).toMatch(/^tracestate is not a valid W3C tracestate/);
  });

  it("writes a later version's traceparent back as version 00", () => {
    expect(readTraceContext([`01-${TRACE_ID}-${SPAN_ID}-01-more`], []).traceContext).toEqual({
      traceparent: TRACEPARENT,
    });
  });
});

describe("trace context headers", () => {
  it("are the CloudEvents distributed-tracing attributes, percent-encoded like every ce- header", () => {
    expect(traceContextHeaders({ traceparent: TRACEPARENT, tracestate: "rojo=a b%" })).toEqual([
      ["ce-traceparent", TRACEPARENT],
      ["ce-tracestate", "rojo=a%20b%25"],
    ]);
    expect(traceContextHeaders({ traceparent: TRACEPARENT })).toEqual([
      ["ce-traceparent", TRACEPARENT],
    ]);
    expect(traceContextHeaders(undefined)).toEqual([]);
  });

  it("count their bytes as NATS does: CRLF, name, colon and space, value", () => {
    expect(traceContextHeaderBytes(undefined)).toBe(0);
    expect(traceContextHeaderBytes({ traceparent: TRACEPARENT })).toBe(
      2 + "ce-traceparent".length + 2 + 55,
    );
    expect(traceContextHeaderBytes({ traceparent: TRACEPARENT, tracestate: "a=b c" })).toBe(
      2 + "ce-traceparent".length + 2 + 55 + 2 + "ce-tracestate".length + 2 + "a=b%20c".length,
    );
  });
});

describe("span contexts", () => {
  it("a trace context names a remote span context, tracestate included, and back", () => {
    const spanContext = spanContextOf({ traceparent: TRACEPARENT, tracestate: "rojo=1,congo=2" });
    expect(spanContext).toMatchObject({
      traceId: TRACE_ID,
      spanId: SPAN_ID,
      traceFlags: 1,
      isRemote: true,
    });
    expect(spanContext?.traceState?.get("congo")).toBe("2");
    expect(spanContext && traceContextOfSpan(spanContext)).toEqual({
      traceparent: TRACEPARENT,
      tracestate: "rojo=1,congo=2",
    });
  });

  it("an invalid span context has no trace context", () => {
    expect(
      traceContextOfSpan({ traceId: "0".repeat(32), spanId: SPAN_ID, traceFlags: 1 }),
    ).toBeUndefined();
  });

  it("a span's trace state is checked like a caller's before it is published", () => {
    const traceState = createTraceState("rojo=1").set("congo", "2");
    expect(
      traceContextOfSpan({ traceId: TRACE_ID, spanId: SPAN_ID, traceFlags: 0, traceState }),
    ).toEqual({ traceparent: `00-${TRACE_ID}-${SPAN_ID}-00`, tracestate: "congo=2,rojo=1" });
  });
});
