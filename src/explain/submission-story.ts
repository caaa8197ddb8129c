import type { SubmissionHistoryEntry } from "../store/index.js";
import { consumerPosition } from "./consumer-position.js";
import type {
  ConsumerStanding,
  DeadLetterScan,
  DeadLetterSnapshot,
  JetStreamView,
  QueueStory,
  ScoreStory,
  SubmissionStory,
} from "./explanation.js";
import { verdictOf } from "./verdict.js";

/**
 * Puts together what the store and JetStream said about a submission id: per queue, each score
 * with its outbox state, stream check, every consumer's position and its dead letters, and the
 * verdict on the latest one. `history` is ordered by queue, then sequence (as the store reads it).
 */
export function tellSubmissionStory(
  submissionId: bigint,
  history: readonly SubmissionHistoryEntry[],
  jetStream: JetStreamView,
  nowMs: number,
): SubmissionStory {
  const byQueue = new Map<string, SubmissionHistoryEntry[]>();
  for (const score of history) {
    const scores = byQueue.get(score.queueName) ?? [];
    scores.push(score);
    byQueue.set(score.queueName, scores);
  }
  const queues = [...byQueue].map(([queueName, scores]): QueueStory => {
    const deadLetterScan = jetStream.isReachable
      ? jetStream.deadLetters.find((scan) => scan.queueName === queueName)
      : undefined;
    const stories = scores.map((score) => scoreStory(score, jetStream, deadLetterScan));
    const latest = stories[stories.length - 1] as ScoreStory;
    return {
      queueName,
      verdict: verdictOf(latest, jetStream, nowMs),
      scores: stories,
      deadLetterScan,
    };
  });
  return { submissionId, queues, jetStream };
}

function scoreStory(
  score: SubmissionHistoryEntry,
  jetStream: JetStreamView,
  scan: DeadLetterScan | undefined,
): ScoreStory {
  const deadLetters = scan?.isRead ? scan.found.filter((letter) => isOf(letter, score)) : [];
  const outbox = score.outbox;
  if (
    !jetStream.isReachable ||
    outbox.state !== "published" ||
    outbox.streamSequence === undefined ||
    score.subject === undefined
  ) {
    return { score, streamMessage: undefined, consumers: [], deadLetters };
  }
  const streamSequence = outbox.streamSequence;
  const message = jetStream.messages.get(streamSequence) ?? { state: "gone" as const };
  const subject = score.subject;
  const consumers = jetStream.consumers.map(
    (consumer): ConsumerStanding => ({
      consumer: consumer.name,
      isDurable: consumer.isDurable,
      position: consumerPosition(
        consumer,
        { subject, streamSequence, message },
        jetStream.stream,
        deadLetters,
      ),
    }),
  );
  return { score, streamMessage: message, consumers, deadLetters };
}

/** Whether a dead letter of the submission is of this score: its event id, or its sequence. */
function isOf(letter: DeadLetterSnapshot, score: SubmissionHistoryEntry): boolean {
  return (
    letter.eventId === score.eventId ||
    (letter.submissionSequence !== undefined &&
      letter.submissionSequence === score.submissionSequence)
  );
}
