import type { CallRecord } from "./call-record.js";
import type { StreamEvent } from "./stream-reader.js";

/** What the stream and the answers say together. Every list holds one line per finding. */
export interface Verdict {
  readonly calls: number;
  readonly ok: number;
  /** Calls refused with a status retrying cannot change: none is expected. */
  readonly errors: readonly string[];
  /** Calls still failing for want of a live gradecast when their retry time ran out. */
  readonly unanswered: readonly string[];
  /** Attempts cut by a death of gradecast, each retried. */
  readonly attemptsCutByDeath: number;
  /**
   * Calls cut by a death whose retry was answered as a replay: the dead instance had committed
   * the score but not answered, the window "nothing lost" is about.
   */
  readonly committedBeforeCut: number;
  /** OK answers that said the event was not published yet (the relay's work). */
  readonly answeredUnpublished: number;
  readonly streamMessages: number;
  /** Event ids answered OK that the stream does not hold. */
  readonly lost: readonly string[];
  /** An event id stored twice, or one score stored as two events. */
  readonly duplicated: readonly string[];
  /** Stream messages no call was answered with and no unanswered call can account for. */
  readonly unexplained: readonly string[];
  /** Stream messages not answered OK but matching a call cut short without an answer. */
  readonly attributedToUnanswered: number;
  /** Answers or messages that contradict the request (sequence, payload, headers). */
  readonly misanswered: readonly string[];
  /** Largest time from an OK answer to JetStream storing its event; 0 when it came first. */
  readonly worstDelayMs: number;
  readonly worstDelayEventId: string | undefined;
  /** `Date.now()` of the OK answer of that event. */
  readonly worstDelayAnsweredAtMs: number | undefined;
}

/**
 * Judges a campaign from the calls' answers and the stream alone: every event id answered OK is
 * in the stream exactly once, with the payload its request asked for; no score is stored as two
 * events; and every message in the stream is an answered event or a score of a call that got no
 * answer.
 */
export function judgeCampaign(
  calls: readonly CallRecord[],
  events: readonly StreamEvent[],
): Verdict {
  const errors: string[] = [];
  const unanswered: string[] = [];
  const duplicated: string[] = [];
  const misanswered: string[] = [];
  const answeredAtMs = new Map<string, number>();
  const callOf = new Map<string, CallRecord>();
  let attemptsCutByDeath = 0;
  let committedBeforeCut = 0;
  let answeredUnpublished = 0;

  for (const call of calls) {
    attemptsCutByDeath += call.cutByDeath;
    const outcome = call.outcome;
    const what = `${call.kind} of submission ${call.submissionId}`;
    if (outcome.kind === "error") {
      errors.push(`${what}: ${outcome.message}`);
      continue;
    }
    if (outcome.kind === "unanswered") {
      unanswered.push(`${what} after ${call.attempts} attempts: ${outcome.lastError}`);
      continue;
    }
    if (!outcome.isPublished) answeredUnpublished += 1;
    if (call.cutByDeath > 0 && call.kind !== "retry" && outcome.isReplayed) committedBeforeCut += 1;
    const first = answeredAtMs.get(outcome.eventId);
    if (first === undefined || outcome.answeredAtMs < first) {
      answeredAtMs.set(outcome.eventId, outcome.answeredAtMs);
    }
    if (call.kind !== "retry") callOf.set(outcome.eventId, call);
    if (call.expectedEventId !== undefined && outcome.eventId !== call.expectedEventId) {
      duplicated.push(
        `${what} answered event ${outcome.eventId}; the score was accepted as ${call.expectedEventId}`,
      );
    }
    if (outcome.submissionSequence !== call.expectedSequence) {
      misanswered.push(
        `${what} answered sequence ${outcome.submissionSequence}, expected ${call.expectedSequence}`,
      );
    }
  }

  const byEventId = new Map<string, StreamEvent[]>();
  const eventIdsOfScore = new Map<string, Set<string>>();
  const unexplained: string[] = [];
  let attributedToUnanswered = 0;
  const unansweredScores = new Set(
    calls
      .filter((call) => call.outcome.kind !== "ok")
      .map((call) => scoreKey(call.submissionId, call.pointsEarned, call.scoreMsg)),
  );

  for (const event of events) {
    const eventId = event.natsMsgId;
    if (eventId === undefined) {
      unexplained.push(`message ${event.seq} (${event.subject}) has no Nats-Msg-Id`);
      continue;
    }
    const copies = byEventId.get(eventId) ?? [];
    copies.push(event);
    byEventId.set(eventId, copies);
    const payload = event.payload;
    if ("error" in payload) {
      misanswered.push(`message ${event.seq} (${eventId}) does not decode: ${payload.error}`);
      continue;
    }
    if (event.ceId !== eventId || payload.eventId !== eventId) {
      misanswered.push(
        `message ${event.seq}: Nats-Msg-Id ${eventId}, ce-id ${event.ceId}, metadata.id ${payload.eventId}`,
      );
    }
    const place = `${payload.submissionId}#${payload.submissionSequence}`;
    const idsAtPlace = eventIdsOfScore.get(place) ?? new Set<string>();
    idsAtPlace.add(eventId);
    eventIdsOfScore.set(place, idsAtPlace);

    const call = callOf.get(eventId);
    if (call) {
      if (
        payload.submissionId !== call.submissionId ||
        payload.pointsEarned !== call.pointsEarned ||
        payload.scoreMsg !== call.scoreMsg
      ) {
        misanswered.push(`message ${event.seq} (${eventId}) does not hold the score its call sent`);
      }
    } else if (!answeredAtMs.has(eventId) && copies.length === 1) {
      const key = scoreKey(payload.submissionId, payload.pointsEarned, payload.scoreMsg);
      if (unansweredScores.has(key)) attributedToUnanswered += 1;
      else {
        unexplained.push(
          `message ${event.seq} (${eventId}): submission ${payload.submissionId} sequence ${payload.submissionSequence}, answered to no call`,
        );
      }
    }
  }

  for (const [eventId, copies] of byEventId) {
    if (copies.length > 1) {
      duplicated.push(
        `event ${eventId} stored ${copies.length} times (${copies.map((copy) => copy.seq).join(", ")})`,
      );
    }
  }
  for (const [place, eventIds] of eventIdsOfScore) {
    if (eventIds.size > 1) {
      duplicated.push(
        `submission#sequence ${place} has ${eventIds.size} events: ${[...eventIds].join(", ")}`,
      );
    }
  }

  const lost: string[] = [];
  let worstDelayMs = 0;
  let worstDelayEventId: string | undefined;
  let worstDelayAnsweredAtMs: number | undefined;
  for (const [eventId, atMs] of answeredAtMs) {
    const stored = byEventId.get(eventId)?.[0];
    if (!stored) {
      const call = callOf.get(eventId);
      lost.push(`event ${eventId} (submission ${call?.submissionId ?? "?"}), answered OK`);
      continue;
    }
    const delayMs = stored.storedAtMs - atMs;
    if (delayMs > worstDelayMs) {
      worstDelayMs = delayMs;
      worstDelayEventId = eventId;
      worstDelayAnsweredAtMs = atMs;
    }
  }

  return {
    calls: calls.length,
    ok: calls.filter((call) => call.outcome.kind === "ok").length,
    errors,
    unanswered,
    attemptsCutByDeath,
    committedBeforeCut,
    answeredUnpublished,
    streamMessages: events.length,
    lost,
    duplicated,
    unexplained,
    attributedToUnanswered,
    misanswered,
    worstDelayMs,
    worstDelayEventId,
    worstDelayAnsweredAtMs,
  };
}

function scoreKey(submissionId: bigint, pointsEarned: number, scoreMsg: string): string {
  return `${submissionId}\u0000${pointsEarned}\u0000${scoreMsg}`;
}
