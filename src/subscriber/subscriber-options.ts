import type { NatsConnection } from "@nats-io/nats-core";
import { isValidQueueName, subjectPrefixProblem } from "../contract/messages.js";
import { type Backoff, exponentialBackoffMs } from "./backoff.js";
import { SubscriberOptionsError } from "./subscriber-errors.js";

/** Where a new consumer starts: every stored event, only new ones, or those since a time. */
export type DeliverFrom = "all" | "new" | { startTime: Date };

/** Every setting of a score subscription, as used once defaults are merged in. */
export interface SubscriberOptions {
  /**
   * The caller's connection; the subscription never closes it. Stop the subscription before
   * draining or closing it, or held events are redelivered after `ackWaitMs`.
   */
  connection: NatsConnection;
  /** JetStream stream holding the events (gradecast's `--stream`). */
  stream: string;
  /** Subject prefix gradecast publishes under (`<prefix>.scores.v1.<queue_name>`). */
  subjectPrefix: string;
  /**
   * Durable consumer name: a later subscription with the same name resumes where this one
   * stopped, and subscriptions sharing it split the events. Undefined: an ephemeral consumer,
   * deleted on `stop()`.
   */
  durableName: string | undefined;
  /** Only events of this grader queue; undefined: every queue. */
  queueName: string | undefined;
  /** Where a newly created consumer starts; an existing durable keeps its position. */
  deliverPolicy: DeliverFrom;
  /** How long JetStream waits for an ack before redelivering. */
  ackWaitMs: number;
  /** Deliveries of one event before it is dead-lettered with reason `max-deliver`. */
  maxDeliver: number;
  /** Redelivery delay after a failed delivery (see {@link Backoff}). */
  backoffMs: Backoff;
  /** Most handlers running at once; events of one submission always run one at a time. */
  concurrency: number;
  /** How often every held event's ack timer is reset (`working()`); below `ackWaitMs`. */
  workingIntervalMs: number;
  /**
   * Most events delivered and not yet acknowledged, the consumer's `max_ack_pending`
   * (at least `concurrency`). It bounds what one subscriber holds in memory; on a durable it
   * is shared by every subscription using the name.
   */
  maxAckPending: number;
  /** How long `stop()` waits for running handlers before giving up on them. */
  stopTimeoutMs: number;
  /**
   * How often JetStream sends an idle heartbeat on an open pull request that has nothing to
   * deliver; each pull request lasts twice this long. After two heartbeats missed in a row
   * `status()` reports `heartbeats-missed` and nats.js re-checks the consumer; after four,
   * delivery starts over. Lower finds a stalled server or a lost stream sooner, at the cost of
   * more pull requests. 500 ms to 30 s; the default is nats.js's own.
   */
  idleHeartbeatMs: number;
  /** Aborting it stops the subscription, as `stop()` does. */
  signal: AbortSignal | undefined;
}

/** What `subscribeToScores` takes: the connection, and any settings that differ from defaults. */
export type SubscribeToScoresOptions = Pick<SubscriberOptions, "connection"> &
  Partial<Omit<SubscriberOptions, "connection">>;

/** Defaults of the settings that do not derive from others. */
export const SUBSCRIBER_DEFAULTS = Object.freeze({
  stream: "GRADECAST_SCORES",
  subjectPrefix: "gradecast",
  durableName: undefined,
  queueName: undefined,
  deliverPolicy: "all",
  ackWaitMs: 30_000,
  maxDeliver: 5,
  backoffMs: exponentialBackoffMs,
  concurrency: 1,
  stopTimeoutMs: 30_000,
  idleHeartbeatMs: 15_000,
  signal: undefined,
} satisfies Omit<SubscriberOptions, "connection" | "workingIntervalMs" | "maxAckPending">);

/** How many events a subscription may hold per handler slot when `maxAckPending` is not set. */
const HELD_PER_HANDLER = 4;

/** nats.js clamps a pull's idle heartbeat to this range; the subscriber refuses values outside it. */
const MIN_IDLE_HEARTBEAT_MS = 500;
const MAX_IDLE_HEARTBEAT_MS = 30_000;

/** JetStream stream and consumer names: no whitespace, `.`, `*`, `>`, `/` or `\`. */
const JETSTREAM_NAME = /^[^\s.*>/\\]+$/;

/**
 * Merges `options` over the defaults once, derives `workingIntervalMs` (ackWaitMs / 3) and
 * `maxAckPending` (4 per handler) when not given, and checks every setting.
 * Throws {@link SubscriberOptionsError} naming the first unusable one.
 */
export function makeSubscriberOptions(
  options: SubscribeToScoresOptions,
): Readonly<SubscriberOptions> {
  const given = Object.fromEntries(
    Object.entries(options).filter(([, value]) => value !== undefined),
  ) as SubscribeToScoresOptions;
  const merged = { ...SUBSCRIBER_DEFAULTS, ...given };
  const resolved: SubscriberOptions = {
    ...merged,
    workingIntervalMs: given.workingIntervalMs ?? Math.max(1, Math.floor(merged.ackWaitMs / 3)),
    maxAckPending: given.maxAckPending ?? merged.concurrency * HELD_PER_HANDLER,
  };
  checkSubscriberOptions(resolved);
  return Object.freeze(resolved);
}

function checkSubscriberOptions(options: SubscriberOptions): void {
  const fail = (option: string, problem: string): never => {
    throw new SubscriberOptionsError(option, problem);
  };
  if (typeof options.connection?.isClosed !== "function") fail("connection", "is required");
  if (options.connection.isClosed()) fail("connection", "is closed");
  if (!JETSTREAM_NAME.test(options.stream)) {
    fail("stream", `${JSON.stringify(options.stream)} is not a JetStream stream name`);
  }
  const prefixProblem = subjectPrefixProblem(options.subjectPrefix);
  if (prefixProblem !== undefined) fail("subjectPrefix", prefixProblem);
  if (options.durableName !== undefined && !JETSTREAM_NAME.test(options.durableName)) {
    fail("durableName", `${JSON.stringify(options.durableName)} is not a JetStream consumer name`);
  }
  if (options.queueName !== undefined && !isValidQueueName(options.queueName)) {
    fail(
      "queueName",
      `${JSON.stringify(options.queueName)} is not a queue name (1-128 bytes of printable UTF-8, no whitespace at either end)`,
    );
  }
  checkDeliverFrom(options.deliverPolicy, fail);
  checkWholeNumber("ackWaitMs", options.ackWaitMs, 1, fail);
  checkWholeNumber("maxDeliver", options.maxDeliver, 1, fail);
  checkBackoff(options.backoffMs, fail);
  checkWholeNumber("concurrency", options.concurrency, 1, fail);
  checkWholeNumber("workingIntervalMs", options.workingIntervalMs, 1, fail);
  if (options.workingIntervalMs >= options.ackWaitMs) {
    fail("workingIntervalMs", `must be below ackWaitMs (${options.ackWaitMs})`);
  }
  checkWholeNumber("maxAckPending", options.maxAckPending, options.concurrency, fail);
  checkWholeNumber("stopTimeoutMs", options.stopTimeoutMs, 0, fail);
  checkWholeNumber("idleHeartbeatMs", options.idleHeartbeatMs, MIN_IDLE_HEARTBEAT_MS, fail);
  if (options.idleHeartbeatMs > MAX_IDLE_HEARTBEAT_MS) {
    fail(
      "idleHeartbeatMs",
      `must be at most ${MAX_IDLE_HEARTBEAT_MS}, got ${options.idleHeartbeatMs}`,
    );
  }
}

type Fail = (option: string, problem: string) => never;

function checkWholeNumber(option: string, value: number, min: number, fail: Fail): void {
  if (!Number.isSafeInteger(value) || value < min) {
    fail(option, `must be a whole number >= ${min}, got ${value}`);
  }
}

function checkDeliverFrom(value: DeliverFrom, fail: Fail): void {
  if (value === "all" || value === "new") return;
  const startTime = typeof value === "object" && value !== null ? value.startTime : undefined;
  if (!(startTime instanceof Date) || Number.isNaN(startTime.getTime())) {
    fail("deliverPolicy", `must be "all", "new" or { startTime: Date }, got ${String(value)}`);
  }
}

function checkBackoff(value: Backoff, fail: Fail): void {
  if (typeof value === "function") return;
  if (!Array.isArray(value) || value.length === 0) {
    fail("backoffMs", "must be a function of the delivery count or a non-empty list of ms");
  }
  const bad = value.find((ms) => !Number.isFinite(ms) || ms < 0);
  if (bad !== undefined) fail("backoffMs", `entries must be finite ms >= 0, got ${bad}`);
}
