import { expect } from "vitest";
import type { ScoreClient } from "../../src/client/index.js";
import { sampleScoreData } from "./contract-fixtures.js";

/**
 * A grader that times its SubmitScores one after another, each a new submission of
 * `queueName`: what a flood or a junk burst costs a real grader.
 */
export class TimedGrader {
  readonly #client: ScoreClient;
  readonly #queueName: string;
  #nextSubmissionId: bigint;

  constructor(client: ScoreClient, queueName: string, firstSubmissionId: bigint) {
    this.#client = client;
    this.#queueName = queueName;
    this.#nextSubmissionId = firstSubmissionId;
  }

  /** Sequential calls while `isGoing(callsDone)`; the latency of each, ms. */
  async timeCalls(isGoing: (done: number) => boolean): Promise<number[]> {
    const latenciesMs: number[] = [];
    while (isGoing(latenciesMs.length)) {
      this.#nextSubmissionId += 1n;
      const startedAt = performance.now();
      const response = await this.#client.submitScore(
        sampleScoreData({ submissionId: this.#nextSubmissionId, queueName: this.#queueName }),
      );
      latenciesMs.push(performance.now() - startedAt);
      expect(response.replayed).toBe(false);
    }
    return latenciesMs;
  }
}

/** The `fraction` percentile (nearest rank) of `values`; NaN when there are none. */
export function percentile(values: readonly number[], fraction: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(fraction * sorted.length) - 1)] ?? NaN;
}
