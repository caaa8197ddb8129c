import { status as grpcStatus } from "@grpc/grpc-js";
import { ScoreCallError } from "../../src/client/index.js";
import { sampleScoreData } from "../helpers/contract-fixtures.js";
import { pause } from "./abortable-pause.js";
import type { CallKind, CallOutcome, CallRecord } from "./call-record.js";
import type { GradecastSupervisor } from "./gradecast-supervisor.js";
import type { SeededRandom } from "./seeded-random.js";

/** How much load, and for how long. */
export interface ScoreLoadOptions {
  concurrency: number;
  maxCallsPerS: number;
  maxCalls: number;
  retryShare: number;
  regradeShare: number;
  /** How long one call keeps retrying after UNAVAILABLE and friends. */
  callRetryMs: number;
  /** Asked before each call: once true, no call starts; calls under way finish their attempts. */
  isDone: () => boolean;
  random: SeededRandom;
  signal: AbortSignal;
}

/** What the campaign knows a submission holds: its accepted score and that score's event. */
interface AcceptedScore {
  submissionId: bigint;
  pointsEarned: number;
  scoreMsg: string;
  eventId: string;
  sequence: number;
}

interface PlannedCall {
  kind: CallKind;
  submissionId: bigint;
  pointsEarned: number;
  expectedEventId: string | undefined;
  expectedSequence: number;
}

const POINTS_POSSIBLE = 10;
/** A grader's retry backoff after a failed attempt: doubling from 50 ms up to 1 s. */
const RETRY_BACKOFF_MS = [50, 100, 200, 400, 800, 1_000] as const;
/** Retrying these cannot make a second score: the same request is a retry of the first. */
const RETRYABLE_CODES: ReadonlySet<number> = new Set([
  grpcStatus.UNAVAILABLE,
  grpcStatus.DEADLINE_EXCEEDED,
]);
/** Submissions kept for retries and regrades; a larger pool would only spread them thinner. */
const MAX_IDLE_SUBMISSIONS = 4_096;

/**
 * Drives SubmitScore with at most `concurrency` calls in flight and `maxCallsPerS` started per
 * second: new submissions, plus retries (the accepted score again: the answer must repeat its
 * event id) and regrades (a changed score: a new event, next sequence) of submissions no other
 * call is using, so every answer has one right value. A call that fails because gradecast died
 * or is down is sent again, identical, to the next instance until it gets an answer or its
 * `callRetryMs` runs out.
 */
export async function driveScoreLoad(
  gradecast: GradecastSupervisor,
  options: ScoreLoadOptions,
): Promise<CallRecord[]> {
  const records: CallRecord[] = [];
  const idle: AcceptedScore[] = [];
  const startMs = Date.now();
  let started = 0;
  let nextSubmissionId = 1n;
  const { random, signal } = options;

  const planCall = (): { call: PlannedCall; previous?: AcceptedScore } => {
    const roll = random.next();
    const isReuse = idle.length > 0 && roll < options.retryShare + options.regradeShare;
    if (!isReuse) {
      const submissionId = nextSubmissionId;
      nextSubmissionId += 1n;
      const call: PlannedCall = {
        kind: "first",
        submissionId,
        pointsEarned: random.integer(0, POINTS_POSSIBLE),
        expectedEventId: undefined,
        expectedSequence: 1,
      };
      return { call };
    }
    // Taken out of the pool for the call's lifetime: one call per submission at a time.
    const slot = random.integer(0, idle.length - 1);
    const previous = idle[slot] as AcceptedScore;
    idle[slot] = idle[idle.length - 1] as AcceptedScore;
    idle.pop();
    if (roll < options.retryShare) {
      return {
        previous,
        call: {
          kind: "retry",
          submissionId: previous.submissionId,
          pointsEarned: previous.pointsEarned,
          expectedEventId: previous.eventId,
          expectedSequence: previous.sequence,
        },
      };
    }
    const shift = random.integer(1, POINTS_POSSIBLE);
    return {
      previous,
      call: {
        kind: "regrade",
        submissionId: previous.submissionId,
        pointsEarned: (previous.pointsEarned + shift) % (POINTS_POSSIBLE + 1),
        expectedEventId: undefined,
        expectedSequence: previous.sequence + 1,
      },
    };
  };

  const worker = async () => {
    while (!signal.aborted && started < options.maxCalls) {
      const slotMs = startMs + (started * 1_000) / options.maxCallsPerS;
      started += 1;
      // Pacing to the call rate, not waiting for something to happen.
      if (slotMs > Date.now()) await pause(slotMs - Date.now(), signal);
      if (signal.aborted || options.isDone()) return;
      const { call } = planCall();
      const record = await submitUntilAnswered(gradecast, call, records.length, options);
      records.push(record);
      if (record.outcome.kind === "ok" && idle.length < MAX_IDLE_SUBMISSIONS) {
        idle.push({
          submissionId: call.submissionId,
          pointsEarned: call.pointsEarned,
          scoreMsg: record.scoreMsg,
          eventId: record.outcome.eventId,
          sequence: record.outcome.submissionSequence,
        });
      }
      // A submission whose call got no answer holds something unknown: it is not used again.
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, worker));
  return records;
}

async function submitUntilAnswered(
  gradecast: GradecastSupervisor,
  call: PlannedCall,
  index: number,
  options: ScoreLoadOptions,
): Promise<CallRecord> {
  const scoreMsg = JSON.stringify({
    score: call.pointsEarned / POINTS_POSSIBLE,
    msg: `chaos: ${call.pointsEarned} of ${POINTS_POSSIBLE} for submission ${call.submissionId}`,
  });
  const request = sampleScoreData({
    submissionId: call.submissionId,
    pointsPossible: POINTS_POSSIBLE,
    pointsEarned: call.pointsEarned,
    scoreMsg,
  });
  const retryUntilMs = Date.now() + options.callRetryMs;
  let attempts = 0;
  let cutByDeath = 0;
  let lastError = "no live gradecast to call";
  const record = (outcome: CallOutcome): CallRecord => ({
    index,
    kind: call.kind,
    submissionId: call.submissionId,
    pointsEarned: call.pointsEarned,
    scoreMsg,
    expectedEventId: call.expectedEventId,
    expectedSequence: call.expectedSequence,
    attempts,
    cutByDeath,
    outcome,
  });

  while (!options.signal.aborted) {
    const live = await gradecast.waitUntilLive(retryUntilMs, options.signal);
    if (!live) break;
    attempts += 1;
    try {
      const response = await live.client.submitScore(request);
      return record({
        kind: "ok",
        eventId: response.eventId,
        answeredAtMs: Date.now(),
        isReplayed: response.replayed,
        isPublished: response.published,
        submissionSequence: response.submissionSequence,
      });
    } catch (error) {
      const code = error instanceof ScoreCallError ? error.code : -1;
      const message = error instanceof Error ? error.message : String(error);
      // Whatever a dying instance answered (UNAVAILABLE, INTERNAL from a reset stream...) is
      // retried: the identical request either replays the score it committed or commits it now.
      const hasDied = gradecast.generation !== live.generation;
      if (hasDied) cutByDeath += 1;
      if (!hasDied && !RETRYABLE_CODES.has(code)) return record({ kind: "error", code, message });
      lastError = message;
      if (Date.now() >= retryUntilMs) break;
      const backoffMs = RETRY_BACKOFF_MS[Math.min(attempts, RETRY_BACKOFF_MS.length) - 1] ?? 1_000;
      await pause(backoffMs, options.signal);
    }
  }
  return record({
    kind: "unanswered",
    lastError: options.signal.aborted ? "the campaign was aborted" : lastError,
  });
}
