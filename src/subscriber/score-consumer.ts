import {
  AckPolicy,
  type ConsumerConfig,
  type ConsumerInfo,
  DeliverPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  type JetStreamManager,
  ReplayPolicy,
} from "@nats-io/jetstream";
import { nanos, nuid } from "@nats-io/nats-core";
import { scoreSubjectFilter } from "../contract/messages.js";
import { ConsumerSetupError } from "./subscriber-errors.js";
import type { SubscriberOptions } from "./subscriber-options.js";

/**
 * An ephemeral consumer outlives a lost subscriber (crash, long disconnect) by this much
 * before the server deletes it. Pull requests keep it active while the subscriber runs.
 */
const EPHEMERAL_INACTIVE_THRESHOLD_MS = 5 * 60_000;

/** The consumer name of a subscription: its durable name, or a fresh ephemeral one. */
export function scoreConsumerName(options: Pick<SubscriberOptions, "durableName">): string {
  return options.durableName ?? `gradecast-${nuid.next()}`;
}

/**
 * The pull consumer a subscription reads through. `max_deliver` is unlimited on purpose: the
 * SDK counts deliveries itself and dead-letters at `maxDeliver`; a server-side limit would
 * stop redelivering silently, before the SDK could dead-letter (or when a dead-letter
 * publish failed and the event was nak'ed to try again).
 */
export function scoreConsumerConfig(options: SubscriberOptions, name: string): ConsumerConfig {
  const isDurable = options.durableName !== undefined;
  return {
    ...(isDurable ? { durable_name: name } : { name }),
    description: "gradecast subscriber: EXTERNAL_GRADER_SCORE_SUBMITTED events",
    ack_policy: AckPolicy.Explicit,
    ...deliverPolicyOf(options.deliverPolicy),
    replay_policy: ReplayPolicy.Instant,
    filter_subject: scoreSubjectFilter(options.subjectPrefix, options.queueName),
    ack_wait: nanos(options.ackWaitMs),
    max_deliver: -1,
    max_ack_pending: options.maxAckPending,
    ...(isDurable ? {} : { inactive_threshold: nanos(EPHEMERAL_INACTIVE_THRESHOLD_MS) }),
  };
}

/** What {@link ensureScoreConsumer} found and did. */
export interface EnsuredConsumer {
  info: ConsumerInfo;
  action: "created" | "updated" | "unchanged";
}

/**
 * Creates the consumer, or brings an existing durable to these settings (ack wait, max
 * deliver, max ack pending). An existing durable keeps its position and deliver policy; one
 * that filters another subject or does not ack explicitly is refused, not changed under the
 * other subscribers using it. Throws {@link ConsumerSetupError}.
 */
export async function ensureScoreConsumer(
  jsm: JetStreamManager,
  options: SubscriberOptions,
  name: string,
): Promise<EnsuredConsumer> {
  const wanted = scoreConsumerConfig(options, name);
  const setupError = (message: string, cause?: unknown) =>
    new ConsumerSetupError(options.stream, name, message, { cause });
  try {
    let existing = await consumerInfo(jsm, options.stream, name);
    if (existing === undefined) {
      try {
        return { info: await jsm.consumers.add(options.stream, wanted), action: "created" };
      } catch (error) {
        // Another subscriber may have created it first: reconcile with theirs.
        existing = await consumerInfo(jsm, options.stream, name);
        if (existing === undefined) throw error;
      }
    }
    const problem = incompatibility(existing.config, wanted);
    if (problem !== undefined) throw setupError(problem);
    const changes = changedSettings(existing.config, wanted);
    if (changes === undefined) return { info: existing, action: "unchanged" };
    return { info: await jsm.consumers.update(options.stream, name, changes), action: "updated" };
  } catch (error) {
    if (error instanceof ConsumerSetupError) throw error;
    throw setupError(describeApiFailure(error, options.stream), error);
  }
}

function deliverPolicyOf(
  from: SubscriberOptions["deliverPolicy"],
): Pick<ConsumerConfig, "deliver_policy" | "opt_start_time"> {
  if (from === "all") return { deliver_policy: DeliverPolicy.All };
  if (from === "new") return { deliver_policy: DeliverPolicy.New };
  return { deliver_policy: DeliverPolicy.StartTime, opt_start_time: from.startTime.toISOString() };
}

async function consumerInfo(
  jsm: JetStreamManager,
  stream: string,
  name: string,
): Promise<ConsumerInfo | undefined> {
  try {
    return await jsm.consumers.info(stream, name);
  } catch (error) {
    if (error instanceof JetStreamApiError && error.code === JetStreamApiCodes.ConsumerNotFound) {
      return undefined;
    }
    throw error;
  }
}

function incompatibility(have: ConsumerConfig, wanted: ConsumerConfig): string | undefined {
  const haveFilter = have.filter_subject ?? have.filter_subjects?.join(",") ?? "";
  if (haveFilter !== wanted.filter_subject) {
    return `it filters ${JSON.stringify(haveFilter)}, this subscription wants ${JSON.stringify(wanted.filter_subject)}; use another durable name or delete the consumer`;
  }
  if (have.ack_policy !== AckPolicy.Explicit) {
    return `its ack policy is ${have.ack_policy}, the subscriber needs explicit acks`;
  }
  if (have.deliver_subject) return "it is a push consumer; the subscriber needs a pull consumer";
  return undefined;
}

function changedSettings(
  have: ConsumerConfig,
  wanted: ConsumerConfig,
): Pick<ConsumerConfig, "ack_wait" | "max_deliver" | "max_ack_pending"> | undefined {
  const isSame =
    have.ack_wait === wanted.ack_wait &&
    have.max_deliver === wanted.max_deliver &&
    have.max_ack_pending === wanted.max_ack_pending;
  if (isSame) return undefined;
  return {
    ack_wait: wanted.ack_wait,
    max_deliver: wanted.max_deliver,
    max_ack_pending: wanted.max_ack_pending,
  };
}

function describeApiFailure(error: unknown, stream: string): string {
  if (error instanceof JetStreamApiError && error.code === JetStreamApiCodes.StreamNotFound) {
    return `stream ${stream} does not exist (gradecast creates it when it starts)`;
  }
  const reason = error instanceof Error ? error.message : String(error);
  if (/jetstream is not enabled|no responders/i.test(reason)) {
    return "JetStream does not answer (is it enabled on the server?)";
  }
  return reason;
}
