// W3C Trace Context (https://www.w3.org/TR/trace-context/) as gradecast reads and writes it:
// a grader's call may carry `traceparent`/`tracestate`, and the score's event carries them on.
// Both are client input: they are checked here against the grammar and bounded before they
// are stored or published; what fails is dropped, never an error of the call.

/** The trace context a score's event carries: checked, in canonical form. */
export interface TraceContext {
  /** `00-<trace id: 32 hex>-<parent span id: 16 hex>-<trace flags: 2 hex>`, lowercase. */
  readonly traceparent: string;
  /** Vendor entries (`key=value`, comma-separated), when there are any. */
  readonly tracestate?: string;
}

/** The fields of a `traceparent`. */
export interface TraceParent {
  /** 32 lowercase hex digits, not all zero. */
  readonly traceId: string;
  /** 16 lowercase hex digits, not all zero: the caller's span. */
  readonly spanId: string;
  /** The flags byte; bit 0 is `sampled`. */
  readonly traceFlags: number;
}

/**
 * Longest `tracestate` kept. W3C asks vendors to pass on at least 512 characters; a longer
 * one is dropped whole rather than cut (cutting could split what a vendor wrote).
 */
export const MAX_TRACESTATE_LENGTH = 512;

/** Most list members a `tracestate` may have (W3C). */
export const MAX_TRACESTATE_MEMBERS = 32;

/** Length of a version-00 `traceparent`. */
const TRACEPARENT_LENGTH = 55;
/** Longest `traceparent` read: a later version may append fields, but not without bound. */
const MAX_TRACEPARENT_LENGTH = 256;

const TRACEPARENT_PATTERN = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;
const KEY_CHARACTERS = "[_0-9a-z*/-]";
const TRACESTATE_KEY = new RegExp(
  `^(?:[a-z]${KEY_CHARACTERS}{0,255}|[a-z0-9]${KEY_CHARACTERS}{0,240}@[a-z]${KEY_CHARACTERS}{0,13})$`,
);
/** Printable ASCII except `,` and `=`, at most 256, not ending in a space. */
const TRACESTATE_VALUE = /^[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]$/;

/**
 * Parses a `traceparent` strictly: lowercase hex, version not `ff`, trace and span ids not
 * all zero. Version 00 is exactly 55 characters; a later version is read for its first four
 * fields, as W3C asks (and written back as version 00). Undefined when it does not parse.
 */
export function parseTraceparent(value: string): TraceParent | undefined {
  if (value.length < TRACEPARENT_LENGTH || value.length > MAX_TRACEPARENT_LENGTH) return undefined;
  const match = TRACEPARENT_PATTERN.exec(value);
  if (!match) return undefined;
  const [, version, traceId, spanId, flags, rest] = match;
  if (version === undefined || traceId === undefined || spanId === undefined) return undefined;
  if (flags === undefined || version === "ff") return undefined;
  if (version === "00" && rest !== undefined) return undefined;
  if (/^0+$/.test(traceId) || /^0+$/.test(spanId)) return undefined;
  return { traceId, spanId, traceFlags: Number.parseInt(flags, 16) };
}

/** The version-00 `traceparent` of `parent`. */
export function formatTraceparent(parent: TraceParent): string {
  const flags = (parent.traceFlags & 0xff).toString(16).padStart(2, "0");
  return `00-${parent.traceId}-${parent.spanId}-${flags}`;
}

/**
 * A `tracestate` checked against the W3C grammar and bounds, in canonical form (members
 * trimmed, empty ones dropped, so `""` when it has none); undefined when it breaks any rule:
 * a bad key or value, a duplicated key, more than {@link MAX_TRACESTATE_MEMBERS} members,
 * or longer than {@link MAX_TRACESTATE_LENGTH} characters.
 */
export function normalizeTracestate(value: string): string | undefined {
  if (value.length > MAX_TRACESTATE_LENGTH) return undefined;
  const members: string[] = [];
  const keys = new Set<string>();
  for (const raw of value.split(",")) {
    const member = raw.replace(/^[ \t]+|[ \t]+$/g, "");
    if (member === "") continue;
    const equals = member.indexOf("=");
    if (equals < 1) return undefined;
    const key = member.slice(0, equals);
    if (!TRACESTATE_KEY.test(key) || !TRACESTATE_VALUE.test(member.slice(equals + 1))) {
      return undefined;
    }
    if (keys.has(key)) return undefined;
    keys.add(key);
    members.push(member);
  }
  if (members.length > MAX_TRACESTATE_MEMBERS) return undefined;
  return members.join(",");
}

/** What reading a caller's trace context gave: the context, and why part of it was dropped. */
export interface TraceContextReading {
  /** Undefined when there was none, or its `traceparent` was invalid. */
  readonly traceContext: TraceContext | undefined;
  /** Why a value was dropped (it never holds the value itself); undefined when none was. */
  readonly problem: string | undefined;
}

/**
 * Reads the trace context of a call or message from its `traceparent` and `tracestate`
 * values (one entry per header; W3C joins repeated `tracestate` headers with commas, and
 * makes repeated `traceparent` headers invalid). An invalid `traceparent` drops both; an
 * invalid `tracestate` drops only itself.
 */
export function readTraceContext(
  traceparents: readonly string[],
  tracestates: readonly string[],
): TraceContextReading {
  if (traceparents.length === 0) {
    return { traceContext: undefined, problem: undefined };
  }
  const parent = traceparents.length === 1 ? parseTraceparent(traceparents[0] ?? "") : undefined;
  if (parent === undefined) {
    const problem =
      traceparents.length === 1
        ? "traceparent is not a valid W3C traceparent"
        : `traceparent is repeated (${traceparents.length} values)`;
    return { traceContext: undefined, problem };
  }
  const traceparent = formatTraceparent(parent);
  if (tracestates.length === 0) return { traceContext: { traceparent }, problem: undefined };
  const tracestate = normalizeTracestate(tracestates.join(","));
  if (tracestate === undefined) {
    return {
      traceContext: { traceparent },
      problem: `tracestate is not a valid W3C tracestate of at most ${MAX_TRACESTATE_LENGTH} characters and ${MAX_TRACESTATE_MEMBERS} members`,
    };
  }
  if (tracestate === "") return { traceContext: { traceparent }, problem: undefined };
  return { traceContext: { traceparent, tracestate }, problem: undefined };
}
