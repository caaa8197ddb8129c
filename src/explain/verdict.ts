import { printable } from "../subscriber/dead-letter-queue.js";
import type {
  ConsumerPosition,
  ConsumerStanding,
  JetStreamView,
  ScoreStory,
  Verdict,
  VerdictKind,
} from "./explanation.js";

/** Consumer positions from the furthest from done to done, and the verdict kind of each. */
const SEVERITY: ReadonlyArray<[ConsumerPosition["kind"], VerdictKind]> = [
  ["dead-lettered", "dead-lettered"],
  ["dropped", "dropped"],
  ["delivered", "delivered"],
  ["not-reached", "behind"],
  ["starts-after", "never-delivered"],
  ["acknowledged", "applied"],
];

/** Verdicts that the word "published" leads (the event is in the stream and on its way). */
const LED_BY_PUBLISHED: ReadonlySet<VerdictKind> = new Set([
  "delivered",
  "behind",
  "never-delivered",
]);

/**
 * The one-line answer to "where is this score?" for a submission's latest score: where its event
 * is stuck (outbox, NATS, a consumer, the dead-letter stream), or which consumers applied it.
 * Pure: everything it says comes from `latest` and `jetStream`; `nowMs` only tells whether a
 * retry time is still ahead.
 */
export function verdictOf(latest: ScoreStory, jetStream: JetStreamView, nowMs: number): Verdict {
  const { score } = latest;
  const outbox = score.outbox;
  const unreachable = jetStream.isReachable
    ? ""
    : `; NATS could not be reached from here: ${jetStream.problem}`;
  switch (outbox.state) {
    case "parked":
      return {
        kind: "parked",
        text: `accepted, parked in the outbox: JetStream refused it (${outbox.parkedReason}); fix the cause, then run \`gradecast outbox retry ${score.eventId}\``,
      };
    case "pending": {
      const why = outbox.lastError === undefined ? "" : `: ${outbox.lastError}`;
      const tries =
        outbox.attempts === 0
          ? "the relay has not tried it yet"
          : `${count(outbox.attempts)} relay attempt(s)${
              outbox.leaseUntilMs > nowMs ? `, next try ${iso(outbox.leaseUntilMs)}` : ""
            }`;
      return {
        kind: "waiting",
        text: `accepted, waiting in the outbox${why} since ${iso(outbox.createdAtMs)} (${tries})${unreachable}`,
      };
    }
    case "missing":
      return {
        kind: "stream-unknown",
        text: "published (outbox row pruned): its stream sequence is not known here, so neither is any consumer's progress",
      };
    case "published":
      break;
  }
  const published = `published at ${iso(outbox.publishedAtMs)}`;
  if (outbox.streamSequence === undefined) {
    return { kind: "stream-unknown", text: `${published}, with no stream sequence recorded` };
  }
  const at = `${published} as stream sequence ${outbox.streamSequence}`;
  if (!jetStream.isReachable) {
    return {
      kind: "nats-unreachable",
      text: `${at}, but NATS could not be reached from here (${jetStream.problem}): no consumer's progress is known`,
    };
  }
  if (latest.streamMessage?.state === "other") {
    return {
      kind: "stream-unknown",
      text: `${at}, but stream ${jetStream.stream.name} now holds another message there (recreated since?): no consumer's progress can be matched`,
    };
  }
  const standings = latest.consumers.filter(
    (standing) => standing.isDurable && standing.position.kind !== "not-subscribed",
  );
  if (standings.length === 0) {
    return {
      kind: "no-consumer",
      text: `${at}, but no durable consumer of stream ${jetStream.stream.name} takes ${score.subject ?? "its subject"}`,
    };
  }
  const ranked = [...standings].sort(
    (a, b) => rank(a) - rank(b) || (a.consumer < b.consumer ? -1 : 1),
  );
  const worst = ranked[0] as ConsumerStanding;
  const kind = SEVERITY[rank(worst)]?.[1] ?? "applied";
  const text = ranked.map(phrase).join("; ");
  return { kind, text: LED_BY_PUBLISHED.has(kind) ? `published, ${text}` : text };
}

function rank(standing: ConsumerStanding): number {
  return SEVERITY.findIndex(([kind]) => kind === standing.position.kind);
}

/** What one consumer's position says in the verdict. */
function phrase({ consumer, position }: ConsumerStanding): string {
  switch (position.kind) {
    case "dead-lettered":
      return `dead-lettered by ${consumer}: ${printable(position.deadLetter.error)}`;
    case "dropped":
      return `${consumer} never got it: the stream no longer holds it (its first sequence is now ${position.firstSequence})`;
    case "delivered":
      return `delivered to ${consumer}, not acknowledged yet`;
    case "not-reached":
      return `${consumer} is ${count(position.streamSequencesBehind)} ${
        position.streamSequencesBehind === 1 ? "event" : "events"
      } behind`;
    case "starts-after":
      return `${consumer} starts after it (deliver policy ${position.deliverPolicy})`;
    case "acknowledged":
      if (position.ackFloorAt === undefined) return `applied by ${consumer}`;
      return position.isAtFloor
        ? `applied by ${consumer} at ${iso(position.ackFloorAt)}`
        : `applied by ${consumer}, acknowledged at or before ${iso(position.ackFloorAt)}`;
    case "not-subscribed":
      return `${consumer} does not take its subject`;
  }
}

/** A time as the verdict shows it: ISO 8601 in UTC. */
export function iso(time: number | Date): string {
  return new Date(time).toISOString();
}

/** A count with thousands separators, whatever the locale: `3,214`. */
export function count(value: number): string {
  return value.toLocaleString("en-US");
}
