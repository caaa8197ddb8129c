import type { OutboxState } from "../store/index.js";
import type {
  ConsumerPosition,
  DeadLetterScan,
  DeadLetterSnapshot,
  QueueStory,
  ScoreStory,
  SubmissionStory,
} from "./explanation.js";
import { REFUSED_CALLS_NOTE } from "./story-text.js";

/**
 * The story as plain JSON data: times as ISO 8601 strings, the submission id as a decimal string
 * (a 64-bit id; JSON numbers lose precision past 2^53).
 */
export function storyToJSON(story: SubmissionStory) {
  const view = story.jetStream;
  return {
    submissionId: story.submissionId.toString(),
    queues: story.queues.map(queueToJSON),
    jetStream: view.isReachable
      ? {
          isReachable: true,
          stream: view.stream,
          consumers: view.consumers.map((consumer) => ({
            name: consumer.name,
            isDurable: consumer.isDurable,
            filterSubjects: consumer.filterSubjects,
            deliveredStreamSequence: consumer.deliveredStreamSequence,
            ackFloorStreamSequence: consumer.ackFloorStreamSequence,
            numAckPending: consumer.numAckPending,
            numPending: consumer.numPending,
          })),
        }
      : { isReachable: false, problem: view.problem },
    note: REFUSED_CALLS_NOTE,
  };
}

function queueToJSON(queue: QueueStory) {
  return {
    queueName: queue.queueName,
    verdict: queue.verdict,
    scores: queue.scores.map(scoreToJSON),
    deadLetterScan: queue.deadLetterScan && scanToJSON(queue.deadLetterScan),
  };
}

function scoreToJSON(story: ScoreStory) {
  const { score } = story;
  return {
    submissionSequence: score.submissionSequence,
    eventId: score.eventId,
    eventTime: score.eventTime.toISOString(),
    eventSource: score.eventSource,
    pointsEarned: score.pointsEarned,
    pointsPossible: score.pointsPossible,
    courseId: score.courseId,
    userId: score.userId,
    moduleId: score.moduleId,
    subject: score.subject,
    outbox: outboxToJSON(score.outbox),
    streamMessage:
      story.streamMessage?.state === "present"
        ? { state: "present", storedAt: story.streamMessage.storedAt.toISOString() }
        : story.streamMessage,
    consumers: story.consumers.map((standing) => ({
      consumer: standing.consumer,
      isDurable: standing.isDurable,
      position: positionToJSON(standing.position),
    })),
    deadLetters: story.deadLetters.map(deadLetterToJSON),
  };
}

function outboxToJSON(outbox: OutboxState) {
  switch (outbox.state) {
    case "missing":
      return outbox;
    case "published":
      return {
        ...outbox,
        createdAt: new Date(outbox.createdAtMs).toISOString(),
        publishedAt: new Date(outbox.publishedAtMs).toISOString(),
      };
    case "pending":
      return {
        ...outbox,
        createdAt: new Date(outbox.createdAtMs).toISOString(),
        notClaimableBefore:
          outbox.leaseUntilMs > 0 ? new Date(outbox.leaseUntilMs).toISOString() : undefined,
      };
    case "parked":
      return { ...outbox, createdAt: new Date(outbox.createdAtMs).toISOString() };
  }
}

function positionToJSON(position: ConsumerPosition) {
  switch (position.kind) {
    case "dead-lettered":
      return { kind: position.kind, deadLetter: deadLetterToJSON(position.deadLetter) };
    case "acknowledged":
      return { ...position, ackFloorAt: position.ackFloorAt?.toISOString() };
    case "delivered":
      return { ...position, deliveredAt: position.deliveredAt?.toISOString() };
    default:
      return position;
  }
}

function deadLetterToJSON(letter: DeadLetterSnapshot) {
  return { ...letter, deadLetteredAt: letter.deadLetteredAt.toISOString() };
}

function scanToJSON(scan: DeadLetterScan) {
  if (!scan.isRead) return scan;
  return {
    ...scan,
    since: scan.since.toISOString(),
    found: scan.found.map(deadLetterToJSON),
  };
}
