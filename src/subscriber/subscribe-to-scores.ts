import { setTimeout as delay } from "node:timers/promises";
import {
  type ConsumerMessages,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
  jetstreamManager,
} from "@nats-io/jetstream";
import { backoffDelayMs } from "./backoff.js";
import { type DeadLetter, publishDeadLetter } from "./dead-letter.js";
import { inHandlerSpan } from "./handler-span.js";
import { ensureScoreConsumer, scoreConsumerName } from "./score-consumer.js";
import { type ReadResult, readScoreEvent, type ScoreEvent } from "./score-event.js";
import { StatusChannel } from "./status-channel.js";
import { SubmissionQueue } from "./submission-queue.js";
import {
  ConsumerSetupError,
  DeadLetterPublishError,
  messageOf,
  ScoreHandlerError,
  SubscriptionClosedError,
  SubscriptionStopTimeoutError,
} from "./subscriber-errors.js";
import {
  makeSubscriberOptions,
  type SubscriberOptions,
  type SubscribeToScoresOptions,
} from "./subscriber-options.js";
import type { SubscriptionStatus } from "./subscription-status.js";

/** What a handler gets besides the event. */
export interface ScoreHandlerContext {
  /** Aborted when `stop()` gives up waiting for this handler (or the connection closed). */
  readonly signal: AbortSignal;
}

/**
 * Processes one event. Resolving acknowledges it; throwing (or rejecting) has it redelivered
 * after a backoff, and dead-lettered after `maxDeliver` deliveries. Delivery is at least
 * once: a handler must be idempotent (keep the highest `submissionSequence` per submission,
 * keyed by queue name and submission id: the same id in two queues is two submissions).
 * It runs in an OpenTelemetry CONSUMER span, child of the event's `traceContext`, when the
 * application registered a tracer provider.
 */
export type ScoreHandler = (
  event: ScoreEvent,
  context: ScoreHandlerContext,
) => Promise<void> | void;

/** A running subscription. */
export interface ScoreSubscription {
  /** The JetStream consumer it reads through (the durable name, or the ephemeral's name). */
  readonly consumerName: string;
  /**
   * Drains: takes no new events, lets running and already-received events finish (acks
   * flushed), then resolves. After `stopTimeoutMs` it stops anyway, aborts the handlers'
   * signal and rejects with {@link SubscriptionStopTimeoutError}; their events are redelivered.
   * The last flush (and an ephemeral consumer's deletion) gets what is left of `stopTimeoutMs`,
   * at least 1 s each; when NATS does not answer, `status()` reports `stop-incomplete`.
   */
  stop(): Promise<void>;
  /** Reports handler failures, dead letters and consumer trouble from now on; ends on stop. */
  status(): AsyncIterable<SubscriptionStatus>;
  /** Resolves when the subscription has ended: undefined after a clean stop, else why. */
  closed(): Promise<Error | undefined>;
}

/**
 * Subscribes `handler` to gradecast's score events through a JetStream pull consumer
 * (created, or updated to these options), and resolves once messages flow. Events of one
 * submission (one id within one queue) are handled one at a time in stream order; different submissions in parallel,
 * up to `concurrency`. Throws {@link SubscriberOptionsError} or {@link ConsumerSetupError}.
 *
 * Order holds for first deliveries; an event retried after a failure can come after a later
 * event of its submission, which `submissionSequence` lets the handler recognise.
 */
export async function subscribeToScores(
  options: SubscribeToScoresOptions,
  handler: ScoreHandler,
): Promise<ScoreSubscription> {
  const settings = makeSubscriberOptions(options);
  const subscription = new JetStreamScoreSubscription(settings, handler);
  await subscription.start();
  return subscription;
}

type LifecycleState = "starting" | "running" | "stopping" | "stopped";

/** A received message and what reading it gave. */
interface HeldMessage {
  readonly msg: JsMsg;
  readonly read: ReadResult;
}

/**
 * nats.js reports missed idle heartbeats from the 2nd in a row on, and then re-checks the
 * consumer and re-pulls by itself; still missing them at the 4th, delivery starts over.
 */
const RESTART_AFTER_MISSED_HEARTBEATS = 4;

/** The least time stop() gives its flush and its consumer deletion, whatever is left of the deadline. */
const LAST_STEP_MIN_MS = 1_000;

/** Waits between attempts to start delivery again after it failed. */
const RESTART_DELAYS_MS = [250, 1_000, 5_000, 15_000] as const;

class JetStreamScoreSubscription implements ScoreSubscription {
  readonly consumerName: string;
  readonly #options: Readonly<SubscriberOptions>;
  readonly #handler: ScoreHandler;
  readonly #statuses = new StatusChannel<SubscriptionStatus>();
  readonly #queue: SubmissionQueue<HeldMessage>;
  /** Received and not yet acked, nak'ed or terminated: their ack timers are kept running. */
  readonly #held = new Set<JsMsg>();
  /** Aborted when handlers are given up on; handed to every handler. */
  readonly #abandon = new AbortController();
  /** Aborted when stopping starts, to cut restart waits short. */
  readonly #stopping = new AbortController();
  readonly #closed: Promise<Error | undefined>;
  #resolveClosed: (reason: Error | undefined) => void = () => undefined;
  #state: LifecycleState = "starting";
  #jsm: JetStreamManager | undefined;
  #js: JetStreamClient | undefined;
  #messages: ConsumerMessages | undefined;
  #restartReason: "heartbeats-missed" | "consumer-recreated" | undefined;
  #recreating: Promise<void> | undefined;
  #workingTimer: NodeJS.Timeout | undefined;
  #delivery: Promise<void> = Promise.resolve();
  #stop: Promise<void> | undefined;
  #forgetSignal: () => void = () => undefined;

  constructor(options: Readonly<SubscriberOptions>, handler: ScoreHandler) {
    this.#options = options;
    this.#handler = handler;
    this.consumerName = scoreConsumerName(options);
    this.#queue = new SubmissionQueue<HeldMessage>(
      options.concurrency,
      (held) => this.#process(held),
      (error, held) => {
        this.#emit({ type: "internal-error", error: asError(error) });
        this.#settle(held.msg, "nak");
      },
    );
    this.#closed = new Promise((resolve) => {
      this.#resolveClosed = resolve;
    });
  }

  async start(): Promise<void> {
    const { connection, stream, signal } = this.#options;
    try {
      this.#jsm = await jetstreamManager(connection);
    } catch (error) {
      throw new ConsumerSetupError(stream, this.consumerName, "JetStream does not answer", {
        cause: error,
      });
    }
    this.#js = this.#jsm.jetstream();
    await ensureScoreConsumer(this.#jsm, this.#options, this.consumerName);
    const messages = await this.#consume();
    this.#state = "running";
    this.#workingTimer = setInterval(() => this.#extendHeld(), this.#options.workingIntervalMs);
    this.#workingTimer.unref();
    this.#delivery = this.#deliver(messages);
    if (signal !== undefined) {
      // A failed stop is reported by closed(), which the caller of an aborted subscription reads.
      const stopOnAbort = () => void this.stop().catch(() => undefined);
      if (signal.aborted) stopOnAbort();
      signal.addEventListener("abort", stopOnAbort, { once: true });
      this.#forgetSignal = () => signal.removeEventListener("abort", stopOnAbort);
    }
  }

  stop(): Promise<void> {
    this.#stop ??= this.#drain();
    return this.#stop;
  }

  status(): AsyncIterable<SubscriptionStatus> {
    return this.#statuses.subscribe();
  }

  closed(): Promise<Error | undefined> {
    return this.#closed;
  }

  async #consume(): Promise<ConsumerMessages> {
    const js = this.#jetstream();
    try {
      const consumer = await js.consumers.get(this.#options.stream, this.consumerName);
      const { maxAckPending, idleHeartbeatMs } = this.#options;
      const messages = await consumer.consume({
        max_messages: maxAckPending,
        idle_heartbeat: idleHeartbeatMs,
        expires: 2 * idleHeartbeatMs,
      });
      this.#messages = messages;
      void this.#watch(messages);
      return messages;
    } catch (error) {
      throw new ConsumerSetupError(this.#options.stream, this.consumerName, messageOf(error), {
        cause: error,
      });
    }
  }

  /**
   * Hands every message to the submission queue as soon as it arrives: consume() pulls only
   * while it is iterated, and held messages get `working()` here, not in nats.js's buffer.
   * When delivery ends without a stop, it starts again.
   */
  async #deliver(first: ConsumerMessages): Promise<void> {
    try {
      await this.#deliverUntilStopped(first);
    } catch (error) {
      this.#emit({ type: "internal-error", error: asError(error) });
      this.#end(asError(error));
    }
  }

  async #deliverUntilStopped(first: ConsumerMessages): Promise<void> {
    let messages: ConsumerMessages | undefined = first;
    let failures = 0;
    while (messages !== undefined) {
      let failure: Error | undefined;
      try {
        for await (const msg of messages) this.#accept(msg);
      } catch (error) {
        failure = asError(error);
      }
      if (this.#state !== "running") return;
      if (this.#endIfConnectionGone(failure)) return;
      const reason = this.#restartReason ?? "consume-failed";
      this.#restartReason = undefined;
      failures = reason === "consume-failed" ? failures + 1 : 0;
      messages = await this.#restartDelivery(failures);
      if (messages !== undefined) {
        this.#emit({ type: "consume-restarted", reason, ...(failure ? { error: failure } : {}) });
      }
    }
  }

  /** Ensures the consumer and consumes again, retrying with a growing wait; undefined once stopping. */
  async #restartDelivery(failures: number): Promise<ConsumerMessages | undefined> {
    for (let attempt = failures; ; attempt++) {
      if (attempt > 0) {
        const index = Math.min(attempt, RESTART_DELAYS_MS.length) - 1;
        await this.#pause(RESTART_DELAYS_MS[index] ?? 0);
      }
      if (this.#state !== "running" || this.#endIfConnectionGone()) return undefined;
      try {
        await ensureScoreConsumer(this.#jetstreamManager(), this.#options, this.consumerName);
        const messages = await this.#consume();
        if (this.#state === "running") return messages;
        // Stopped meanwhile. close() unsubscribes at once, but its promise settles only when
        // the messages are read, and these never are: awaiting it would hold stop() forever.
        void messages.close();
        return undefined;
      } catch (error) {
        this.#emit({ type: "consumer-setup-failed", error: this.#asSetupError(error) });
      }
    }
  }

  /**
   * Ends the subscription when its connection is closed or draining (the caller closed it
   * without stopping the subscription first): nothing can be acked or pulled any more.
   */
  #endIfConnectionGone(cause?: Error): boolean {
    const { connection } = this.#options;
    if (!connection.isClosed() && !connection.isDraining()) return false;
    this.#end(
      new SubscriptionClosedError("the NATS connection was closed under the subscription", {
        cause,
      }),
    );
    return true;
  }

  /** Turns nats.js's consumer notifications into statuses, and acts on the ones that need it. */
  async #watch(messages: ConsumerMessages): Promise<void> {
    try {
      for await (const notification of messages.status()) {
        switch (notification.type) {
          case "heartbeats_missed":
            this.#emit({ type: "heartbeats-missed", count: notification.count });
            if (notification.count >= RESTART_AFTER_MISSED_HEARTBEATS) {
              this.#restart(messages, "heartbeats-missed");
            }
            break;
          case "consumer_not_found":
            this.#emit({
              type: "consumer-missing",
              consumer: notification.name,
              description: `consumer not found (attempt ${notification.count})`,
            });
            this.#recreateConsumer(messages);
            break;
          case "consumer_deleted":
            this.#emit({
              type: "consumer-missing",
              consumer: this.consumerName,
              description: notification.description,
            });
            this.#recreateConsumer(messages);
            break;
          case "stream_not_found":
            this.#emit({
              type: "jetstream-issue",
              issue: "stream-not-found",
              description: `stream ${notification.name} not found`,
            });
            break;
          case "no_responders":
            this.#emit({
              type: "jetstream-issue",
              issue: "no-responders",
              description: `JetStream did not answer a pull request (${notification.code})`,
            });
            break;
          case "exceeded_limits":
            this.#emit({
              type: "jetstream-issue",
              issue: "exceeded-limits",
              description: notification.description,
            });
            break;
          default:
            // Pull requests, heartbeats received, discards and debug codes: routine.
            break;
        }
      }
    } catch (error) {
      this.#emit({ type: "internal-error", error: asError(error) });
    }
  }

  /** Closes `messages` so #deliver starts delivery over (unless it was already replaced). */
  #restart(messages: ConsumerMessages, reason: "heartbeats-missed" | "consumer-recreated"): void {
    if (this.#state !== "running" || messages !== this.#messages) return;
    this.#restartReason = reason;
    void messages.close();
  }

  /** Creates the consumer again (at most one attempt at a time), then restarts delivery on it. */
  #recreateConsumer(messages: ConsumerMessages): void {
    if (this.#recreating !== undefined || this.#state !== "running") return;
    this.#recreating = (async () => {
      try {
        const ensured = await ensureScoreConsumer(
          this.#jetstreamManager(),
          this.#options,
          this.consumerName,
        );
        if (ensured.action === "created") {
          this.#emit({ type: "consumer-recreated", consumer: this.consumerName });
          this.#restart(messages, "consumer-recreated");
        }
      } catch (error) {
        this.#emit({ type: "consumer-setup-failed", error: this.#asSetupError(error) });
      } finally {
        this.#recreating = undefined;
      }
    })();
  }

  #accept(msg: JsMsg): void {
    this.#held.add(msg);
    const read = readScoreEvent(msg);
    // A submission is its id within its queue (the id has no ":", so keys cannot collide).
    // Poison messages have no trustworthy submission: each goes on its own.
    const key = read.ok
      ? `submission:${read.event.scoreData.submissionId}:${read.event.scoreData.queueName}`
      : `message:${msg.seq}`;
    this.#queue.push(key, { msg, read });
  }

  async #process({ msg, read }: HeldMessage): Promise<void> {
    if (!read.ok) {
      await this.#deadLetter(msg, read.error, {
        reason: read.error.reason,
        errorMessage: read.error.message,
        eventId: read.eventId,
      });
      return;
    }
    const event = read.event;
    try {
      await inHandlerSpan(event, this.consumerName, () =>
        this.#handler(event, { signal: this.#abandon.signal }),
      );
    } catch (thrown) {
      const error = new ScoreHandlerError(event, thrown);
      if (event.deliveryCount >= this.#options.maxDeliver) {
        await this.#deadLetter(msg, error, {
          reason: "max-deliver",
          errorMessage: messageOf(thrown),
          eventId: event.id,
        });
      } else {
        const retryInMs = backoffDelayMs(this.#options.backoffMs, event.deliveryCount);
        this.#settle(msg, "nak", retryInMs);
        this.#emit({ type: "handler-failed", error, event, retryInMs });
      }
      return;
    }
    this.#settle(msg, "ack");
  }

  /**
   * Terminates `msg` only once its dead letter is stored; if that publish fails, nak's it
   * with backoff so it comes back and is tried again (the consumer's `max_deliver` is
   * unlimited, so the server never drops it meanwhile).
   */
  async #deadLetter(msg: JsMsg, error: Error, letter: DeadLetter): Promise<void> {
    const deliveryCount = msg.info.deliveryCount;
    try {
      const receipt = await publishDeadLetter(this.#jetstream(), msg, letter, {
        subjectPrefix: this.#options.subjectPrefix,
        queueName: this.#options.queueName,
      });
      this.#settle(msg, "term");
      this.#emit({
        type: "dead-lettered",
        reason: letter.reason,
        error,
        subject: msg.subject,
        streamSequence: msg.seq,
        deliveryCount,
        deadLetterSubject: receipt.subject,
      });
    } catch (publishFailure) {
      const retryInMs = backoffDelayMs(this.#options.backoffMs, deliveryCount);
      this.#settle(msg, "nak", retryInMs);
      this.#emit({
        type: "dead-letter-failed",
        reason: letter.reason,
        error:
          publishFailure instanceof DeadLetterPublishError
            ? publishFailure
            : new DeadLetterPublishError("(unknown)", msg.seq, { cause: publishFailure }),
        streamSequence: msg.seq,
        deliveryCount,
        retryInMs,
      });
    }
  }

  #settle(msg: JsMsg, action: "ack" | "nak" | "term", nakDelayMs = 0): void {
    this.#held.delete(msg);
    try {
      if (action === "ack") msg.ack();
      else if (action === "nak") msg.nak(nakDelayMs);
      else msg.term();
    } catch (error) {
      this.#emit({ type: "settle-failed", action, streamSequence: msg.seq, error: asError(error) });
    }
  }

  /** Resets the ack timer of every held event, running or waiting for its submission's turn. */
  #extendHeld(): void {
    for (const msg of this.#held) {
      try {
        msg.working();
      } catch (error) {
        this.#emit({
          type: "settle-failed",
          action: "working",
          streamSequence: msg.seq,
          error: asError(error),
        });
      }
    }
  }

  async #drain(): Promise<void> {
    if (this.#state === "stopped") return;
    this.#state = "stopping";
    this.#stopping.abort();
    const { connection, stopTimeoutMs } = this.#options;
    const deadline = Date.now() + stopTimeoutMs;

    // Closing the iterator unsubscribes its inbox: no new deliveries. What nats.js had
    // already buffered is still handed to #accept before the loop ends, and processed below.
    await this.#messages?.close();
    const isDrained =
      (await finishesWithin(this.#delivery, deadline)) &&
      (await finishesWithin(this.#queue.onIdle(), deadline));
    let timeout: SubscriptionStopTimeoutError | undefined;
    if (!isDrained) {
      // Never started: give them back at once instead of after ackWaitMs.
      for (const { msg } of this.#queue.takeWaiting()) this.#settle(msg, "nak");
      timeout = new SubscriptionStopTimeoutError(stopTimeoutMs, this.#queue.runningCount);
      this.#abandon.abort(timeout);
    }
    clearInterval(this.#workingTimer);

    if (!connection.isClosed()) {
      // Acks are fire-and-forget publishes: make sure the server has them before the
      // caller closes the connection or another subscription starts on the durable.
      await this.#lastStep("flush", connection.flush(), deadline);
      if (this.#options.durableName === undefined) {
        // If this fails, the server deletes it anyway once it is inactive for a while.
        const { stream } = this.#options;
        const deletion = this.#jetstreamManager().consumers.delete(stream, this.consumerName);
        await this.#lastStep("delete-consumer", deletion, deadline);
      }
    }
    this.#end(timeout);
    if (timeout !== undefined) throw timeout;
  }

  /**
   * Waits for one of stop()'s exchanges with NATS until `deadline`, or for at least
   * {@link LAST_STEP_MIN_MS} when the handlers used the time up: a stalled server never
   * answers, and the client notices that only minutes later. A failure or no answer is
   * reported as `stop-incomplete`; unflushed acks mean redelivery, never a lost event.
   */
  async #lastStep(
    step: "flush" | "delete-consumer",
    work: Promise<unknown>,
    deadline: number,
  ): Promise<void> {
    const waitMs = Math.max(deadline - Date.now(), LAST_STEP_MIN_MS);
    let failure: Error | undefined;
    const settled = work.then(
      () => undefined,
      (error: unknown) => {
        failure = asError(error);
      },
    );
    if (!(await finishesWithin(settled, Date.now() + waitMs))) {
      failure = new Error(`NATS did not answer within ${waitMs} ms`);
    }
    if (failure !== undefined) this.#emit({ type: "stop-incomplete", step, error: failure });
  }

  /** Final state: no more statuses, closed() resolves with `reason`. */
  #end(reason: Error | undefined): void {
    this.#state = "stopped";
    clearInterval(this.#workingTimer);
    this.#forgetSignal();
    if (reason !== undefined && !this.#abandon.signal.aborted) this.#abandon.abort(reason);
    this.#statuses.close();
    this.#resolveClosed(reason);
  }

  async #pause(ms: number): Promise<void> {
    try {
      await delay(ms, undefined, { signal: this.#stopping.signal });
    } catch (error) {
      // Aborted by stop(): the caller re-checks the state; anything else is unexpected.
      if (!this.#stopping.signal.aborted) throw error;
    }
  }

  #asSetupError(thrown: unknown): ConsumerSetupError {
    if (thrown instanceof ConsumerSetupError) return thrown;
    return new ConsumerSetupError(this.#options.stream, this.consumerName, messageOf(thrown), {
      cause: thrown,
    });
  }

  #emit(status: SubscriptionStatus): void {
    this.#statuses.publish(status);
  }

  #jetstream(): JetStreamClient {
    if (this.#js === undefined) throw new Error("subscription not started");
    return this.#js;
  }

  #jetstreamManager(): JetStreamManager {
    if (this.#jsm === undefined) throw new Error("subscription not started");
    return this.#jsm;
  }
}

/** True when `work` (which never rejects) resolves before `deadline` (epoch ms). */
async function finishesWithin(work: Promise<void>, deadline: number): Promise<boolean> {
  const remainingMs = Math.max(0, deadline - Date.now());
  const abort = new AbortController();
  try {
    return await Promise.race([
      work.then(() => true),
      delay(remainingMs, false, { signal: abort.signal }),
    ]);
  } finally {
    abort.abort();
  }
}

function asError(thrown: unknown): Error {
  return thrown instanceof Error ? thrown : new Error(String(thrown));
}
