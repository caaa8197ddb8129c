import type { OutboxState } from "../store/index.js";
import { printable } from "../subscriber/dead-letter-queue.js";
import type {
  ConsumerStanding,
  DeadLetterScan,
  DeadLetterSnapshot,
  QueueStory,
  ScoreStory,
  StreamMessageCheck,
  SubmissionStory,
} from "./explanation.js";
import { count, iso } from "./verdict.js";

/** What explain says about refused calls, whatever it found. */
export const REFUSED_CALLS_NOTE =
  "refused calls are not stored: a score the grader reported but not listed here was refused (the grader's log or the call's status says why)";

/**
 * The story as text for a person: the verdict of each queue's submission first (one line each),
 * then every score with its outbox state, each consumer's position and its dead letters.
 * Values that come from dead-letter headers are quoted and escaped (they are untrusted).
 */
export function storyLines(story: SubmissionStory): string[] {
  const lines = story.queues.map(
    (queue) =>
      `submission ${story.submissionId} in queue ${queue.queueName}: ${queue.verdict.text}`,
  );
  for (const queue of story.queues) lines.push("", ...queueLines(story, queue));
  lines.push("", jetStreamLine(story), REFUSED_CALLS_NOTE);
  return lines;
}

function queueLines(story: SubmissionStory, queue: QueueStory): string[] {
  const latest = queue.scores[queue.scores.length - 1]?.score;
  const lines = [
    `queue ${queue.queueName}, submission ${story.submissionId}` +
      (latest
        ? `: course ${escaped(latest.courseId)}, user ${escaped(latest.userId)}, module ${escaped(latest.moduleId)}`
        : ""),
  ];
  const first = queue.scores[0]?.score.submissionSequence ?? 1;
  if (first > 1) lines.push(`  (scores 1 to ${first - 1} not shown: --limit)`);
  for (const score of queue.scores) lines.push(...scoreLines(score));
  lines.push(`  ${deadLetterScanLine(queue.deadLetterScan)}`);
  return lines;
}

function scoreLines(story: ScoreStory): string[] {
  const { score } = story;
  const lines = [
    `  score ${score.submissionSequence}  event ${score.eventId}  accepted ${iso(score.eventTime)}  ${score.pointsEarned}/${score.pointsPossible}  source ${score.eventSource === undefined ? "(unknown)" : escaped(score.eventSource)}`,
    `    outbox: ${outboxText(score.outbox)}`,
  ];
  if (story.streamMessage) lines.push(`    stream: ${streamText(story.streamMessage)}`);
  for (const standing of story.consumers) lines.push(`    ${standingText(standing)}`);
  for (const letter of story.deadLetters) lines.push(`    ${deadLetterText(letter)}`);
  return lines;
}

/** The outbox state of one score, on one line. */
export function outboxText(outbox: OutboxState): string {
  switch (outbox.state) {
    case "published":
      return `published ${iso(outbox.publishedAtMs)}${
        outbox.streamSequence === undefined ? "" : ` as stream sequence ${outbox.streamSequence}`
      } (${
        outbox.attempts === 0
          ? "by the call that accepted it"
          : `by the relay, after ${count(outbox.attempts)} attempt(s)`
      })`;
    case "pending":
      return `pending since ${iso(outbox.createdAtMs)}, ${count(outbox.attempts)} relay attempt(s)${
        outbox.leaseUntilMs > 0 ? `, not claimable before ${iso(outbox.leaseUntilMs)}` : ""
      }${outbox.lastError === undefined ? "" : `, last error: ${escaped(outbox.lastError)}`}`;
    case "parked":
      return `parked since ${iso(outbox.createdAtMs)} after ${count(outbox.attempts)} attempt(s): ${escaped(outbox.parkedReason)}`;
    case "missing":
      return "no outbox row (pruned after publishing): stream sequence unknown";
  }
}

function streamText(message: StreamMessageCheck): string {
  switch (message.state) {
    case "present":
      return `holds it, stored ${iso(message.storedAt)}`;
    case "gone":
      return "no longer holds it (removed by the stream's limits, a purge or a delete)";
    case "other":
      return `holds another message at that sequence (${message.messageId === undefined ? "no Nats-Msg-Id" : printable(message.messageId)}): the stream was recreated since?`;
  }
}

/** One consumer's position for one event, with the figures JetStream gives. */
export function standingText({ consumer, isDurable, position }: ConsumerStanding): string {
  const name = isDurable ? consumer : `${consumer} (ephemeral, not in the verdict)`;
  switch (position.kind) {
    case "not-subscribed":
      return `${name}: does not take this queue's subject`;
    case "starts-after":
      return `${name}: will not get it, it starts after it (deliver policy ${position.deliverPolicy})`;
    case "dead-lettered":
      return `${name}: gave up on it, dead letter #${position.deadLetter.sequence}`;
    case "acknowledged":
      return `${name}: acknowledged (its ack floor is stream sequence ${position.ackFloorStreamSequence}${
        position.ackFloorAt === undefined ? "" : `, reached ${iso(position.ackFloorAt)}`
      })`;
    case "delivered":
      return `${name}: delivered (up to stream sequence ${position.deliveredStreamSequence}${
        position.deliveredAt === undefined ? "" : `, last delivery ${iso(position.deliveredAt)}`
      }), above its ack floor ${position.ackFloorStreamSequence}: not acknowledged yet, or acknowledged out of order; ${count(position.numAckPending)} event(s) await its ack, ${count(position.numRedelivered)} redelivered in all (JetStream keeps no delivery count per event)`;
    case "not-reached":
      return `${name}: not reached yet, ${count(position.streamSequencesBehind)} stream sequence(s) to go (delivered up to ${position.deliveredStreamSequence}; ${count(position.numPending)} event(s) pending for it in all)`;
    case "dropped":
      return `${name}: never delivered, and the stream no longer holds it (first sequence now ${position.firstSequence})`;
  }
}

function deadLetterText(letter: DeadLetterSnapshot): string {
  const consumer = letter.consumer === undefined ? "(unknown)" : printable(letter.consumer);
  return `dead letter #${letter.sequence} ${iso(letter.deadLetteredAt)}: ${consumer} gave up: ${printable(letter.reason)} after ${letter.deliveryCount} deliveries: ${printable(letter.error)}`;
}

function deadLetterScanLine(scan: DeadLetterScan | undefined): string {
  if (scan === undefined) return "dead letters: not read (NATS not reached)";
  if (!scan.isRead) return `dead letters: not read: ${scan.problem}`;
  if (scan.total === 0) return `dead letters: none in the queue since ${iso(scan.since)}`;
  const read =
    scan.scanned < scan.total
      ? `read ${count(scan.scanned)} of the queue's ${count(scan.total)} since ${iso(scan.since)} (stopped at --max-dead-letters)`
      : `read all ${count(scan.total)} of the queue's since ${iso(scan.since)}`;
  return `dead letters: ${read}; ${count(scan.found.length)} of this submission`;
}

function jetStreamLine(story: SubmissionStory): string {
  const view = story.jetStream;
  if (!view.isReachable) return `JetStream: not read: ${view.problem}`;
  const durable = view.consumers.filter((consumer) => consumer.isDurable).length;
  const ephemeral = view.consumers.length - durable;
  return `JetStream: stream ${view.stream.name} holds sequences ${view.stream.firstSequence} to ${view.stream.lastSequence}; ${durable} durable and ${ephemeral} ephemeral consumer(s)`;
}

/** A stored text on one line: control characters escaped, as JSON writes them. */
function escaped(text: string): string {
  return JSON.stringify(text).slice(1, -1);
}
