// The LMS side of the end-to-end measurement: a subscriber using the SDK
// (`subscribeToScores`) that notes when each submission's event arrives.
import type { NatsConnection } from "@nats-io/nats-core";
import { type ScoreSubscription, subscribeToScores } from "../src/subscriber/index.js";
import { BENCH_QUEUE_NAME } from "./score-request.js";

/** Arrival times of score events, by submission id. */
export class EventArrivals {
  /** Submission id -> epoch ms (`performance.timeOrigin + performance.now()`) of arrival. */
  readonly #arrivedAtEpochMs: Map<number, number>;
  readonly #subscription: ScoreSubscription;

  private constructor(subscription: ScoreSubscription, arrived: Map<number, number>) {
    this.#subscription = subscription;
    this.#arrivedAtEpochMs = arrived;
  }

  /**
   * Subscribes from now on (an ephemeral consumer, deliver "new") with room for many events
   * at once, so the subscriber does not become the bottleneck it would measure.
   */
  static async start(connection: NatsConnection, stream: string): Promise<EventArrivals> {
    const arrived = new Map<number, number>();
    const subscription = await subscribeToScores(
      {
        connection,
        stream,
        queueName: BENCH_QUEUE_NAME,
        deliverPolicy: "new",
        concurrency: 256,
        maxAckPending: 4096,
      },
      (event) => {
        const submissionId = Number(event.scoreData.submissionId);
        if (!arrived.has(submissionId)) {
          arrived.set(submissionId, performance.timeOrigin + performance.now());
        }
      },
    );
    return new EventArrivals(subscription, arrived);
  }

  /** When the event of `submissionId` arrived, or undefined if it has not (yet). */
  arrivedAt(submissionId: number): number | undefined {
    return this.#arrivedAtEpochMs.get(submissionId);
  }

  /** Waits until every one of `submissionIds` arrived, at most `timeoutMs`; resolves the missing count. */
  async waitForAll(submissionIds: readonly number[], timeoutMs: number): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    let missing = submissionIds.filter((id) => !this.#arrivedAtEpochMs.has(id));
    while (missing.length > 0 && Date.now() < deadline) {
      await new Promise((wake) => setTimeout(wake, 50));
      missing = missing.filter((id) => !this.#arrivedAtEpochMs.has(id));
    }
    return missing.length;
  }

  stop(): Promise<void> {
    return this.#subscription.stop();
  }
}
