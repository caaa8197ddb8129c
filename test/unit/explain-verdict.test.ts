import { describe, expect, it } from "vitest";
import {
  type ConsumerSnapshot,
  consumerPosition,
  type DeadLetterSnapshot,
  type JetStreamView,
  subjectMatchesFilter,
  tellSubmissionStory,
  type VerdictKind,
} from "../../src/explain/index.js";
import type { OutboxState, SubmissionHistoryEntry } from "../../src/store/index.js";

const NOW_MS = Date.parse("2026-12-07T10:10:00.000Z");
const SUBJECT = "gradecast.scores.v1.python-grader";

function score(
  outbox: OutboxState,
  more: Partial<SubmissionHistoryEntry> = {},
): SubmissionHistoryEntry {
  return {
    queueName: "python-grader",
    submissionId: 4821n,
    submissionSequence: 1,
    eventId: "01a23531-0583-77ae-8a9d-f64e62af78ac",
    eventTime: new Date("2026-12-07T10:00:00.000Z"),
    pointsEarned: 7,
    pointsPossible: 10,
    courseId: "course-v1:edX+DemoX+Demo_Course",
    userId: "42",
    moduleId: "block-v1:edX+DemoX+Demo_Course+type@problem+block@p1",
    subject: SUBJECT,
    eventSource: "openedx/gradecast/grpc/python-grader-1",
    outbox,
    ...more,
  };
}

const published = (streamSequence: number): OutboxState => ({
  state: "published",
  createdAtMs: Date.parse("2026-12-07T10:00:00.000Z"),
  attempts: 0,
  publishedAtMs: Date.parse("2026-12-07T10:00:00.020Z"),
  streamSequence,
});

function consumer(name: string, more: Partial<ConsumerSnapshot> = {}): ConsumerSnapshot {
  return {
    name,
    isDurable: true,
    filterSubjects: ["gradecast.scores.v1.*"],
    deliverPolicy: "all",
    optStartSequence: undefined,
    optStartTime: undefined,
    createdAt: new Date("2026-12-01T00:00:00.000Z"),
    deliveredStreamSequence: 0,
    deliveredAt: undefined,
    ackFloorStreamSequence: 0,
    ackFloorAt: undefined,
    numAckPending: 0,
    numRedelivered: 0,
    numPending: 0,
    ...more,
  };
}

function deadLetter(more: Partial<DeadLetterSnapshot> = {}): DeadLetterSnapshot {
  return {
    sequence: 3,
    deadLetteredAt: new Date("2026-12-07T10:01:00.000Z"),
    consumer: "lms-gradebook",
    reason: "max-deliver",
    error: "gradebook refused: no such user",
    deliveryCount: 2,
    eventId: "01a23531-0583-77ae-8a9d-f64e62af78ac",
    submissionSequence: 1,
    ...more,
  };
}

function view(
  consumers: ConsumerSnapshot[],
  more: { found?: DeadLetterSnapshot[]; firstSequence?: number; gone?: boolean } = {},
): Extract<JetStreamView, { isReachable: true }> {
  return {
    isReachable: true,
    stream: {
      name: "GRADECAST_SCORES",
      firstSequence: more.firstSequence ?? 1,
      lastSequence: 9000,
    },
    consumers,
    messages: new Map([
      [
        12,
        more.gone
          ? { state: "gone" as const }
          : { state: "present" as const, storedAt: new Date("2026-12-07T10:00:00.010Z") },
      ],
    ]),
    deadLetters: [
      {
        isRead: true,
        queueName: "python-grader",
        since: new Date("2026-12-07T09:50:00.000Z"),
        total: more.found?.length ?? 0,
        scanned: more.found?.length ?? 0,
        found: more.found ?? [],
      },
    ],
  };
}

const acked = (at: string, floor = 12) =>
  consumer("lms-gradebook", {
    deliveredStreamSequence: floor,
    ackFloorStreamSequence: floor,
    ackFloorAt: new Date(at),
  });

interface VerdictCase {
  name: string;
  scores: SubmissionHistoryEntry[];
  jetStream: JetStreamView;
  kind: VerdictKind;
  text: string;
}

const CASES: VerdictCase[] = [
  {
    name: "a consumer whose ack floor is the event applied it then",
    scores: [score(published(12))],
    jetStream: view([acked("2026-12-07T10:04:12.000Z")]),
    kind: "applied",
    text: "applied by lms-gradebook at 2026-12-07T10:04:12.000Z",
  },
  {
    name: "a consumer whose ack floor is past the event applied it by the floor's time",
    scores: [score(published(12))],
    jetStream: view([acked("2026-12-07T10:05:00.000Z", 40)]),
    kind: "applied",
    text: "applied by lms-gradebook, acknowledged at or before 2026-12-07T10:05:00.000Z",
  },
  {
    name: "a consumer that has not reached the event is that many sequences behind",
    scores: [score(published(3226))],
    jetStream: {
      ...view([consumer("lms-gradebook", { deliveredStreamSequence: 12, numPending: 8000 })]),
      messages: new Map([[3226, { state: "present", storedAt: new Date(NOW_MS) }]]),
    },
    kind: "behind",
    text: "published, lms-gradebook is 3,214 events behind",
  },
  {
    name: "a consumer that got the event and has not acked it holds it",
    scores: [score(published(12))],
    jetStream: view([
      consumer("lms-gradebook", {
        deliveredStreamSequence: 15,
        ackFloorStreamSequence: 11,
        numAckPending: 4,
      }),
    ]),
    kind: "delivered",
    text: "published, delivered to lms-gradebook, not acknowledged yet",
  },
  {
    name: "a dead letter wins over the ack floor that its termination moved",
    scores: [score(published(12))],
    jetStream: view([acked("2026-12-07T10:01:00.000Z", 20)], { found: [deadLetter()] }),
    kind: "dead-lettered",
    text: 'dead-lettered by lms-gradebook: "gradebook refused: no such user"',
  },
  {
    name: "a pending event waits in the outbox with its last error and next try",
    scores: [
      score({
        state: "pending",
        createdAtMs: Date.parse("2026-12-07T10:01:00.000Z"),
        attempts: 3,
        leaseUntilMs: NOW_MS + 5_000,
        lastError: "not connected to NATS",
      }),
    ],
    jetStream: { isReachable: false, problem: "cannot connect to NATS at nats://127.0.0.1:4222" },
    kind: "waiting",
    text: "accepted, waiting in the outbox: not connected to NATS since 2026-12-07T10:01:00.000Z (3 relay attempt(s), next try 2026-12-07T10:10:05.000Z); NATS could not be reached from here: cannot connect to NATS at nats://127.0.0.1:4222",
  },
  {
    name: "a parked event names its reason and the command that re-drives it",
    scores: [
      score({
        state: "parked",
        createdAtMs: Date.parse("2026-12-07T10:01:00.000Z"),
        attempts: 1,
        parkedReason: "'payload' max_payload size exceeded",
        lastError: "'payload' max_payload size exceeded",
      }),
    ],
    jetStream: view([]),
    kind: "parked",
    text: "accepted, parked in the outbox: JetStream refused it ('payload' max_payload size exceeded); fix the cause, then run `gradecast outbox retry 01a23531-0583-77ae-8a9d-f64e62af78ac`",
  },
  {
    name: "a published event with NATS out of reach says the consumers are unknown",
    scores: [score(published(12))],
    jetStream: { isReachable: false, problem: "cannot connect to NATS" },
    kind: "nats-unreachable",
    text: "published at 2026-12-07T10:00:00.020Z as stream sequence 12, but NATS could not be reached from here (cannot connect to NATS): no consumer's progress is known",
  },
  {
    name: "no durable consumer taking the queue's subject is said so, ephemeral ones ignored",
    scores: [score(published(12))],
    jetStream: view([
      consumer("other-queue", { filterSubjects: ["gradecast.scores.v1.java-grader"] }),
      consumer("tail", { isDurable: false, deliveredStreamSequence: 99 }),
    ]),
    kind: "no-consumer",
    text: "published at 2026-12-07T10:00:00.020Z as stream sequence 12, but no durable consumer of stream GRADECAST_SCORES takes gradecast.scores.v1.python-grader",
  },
  {
    name: "an event the stream dropped before a consumer got it is never delivered",
    scores: [score(published(12))],
    jetStream: view([consumer("lms-gradebook", { deliveredStreamSequence: 5 })], {
      firstSequence: 100,
      gone: true,
    }),
    kind: "dropped",
    text: "lms-gradebook never got it: the stream no longer holds it (its first sequence is now 100)",
  },
  {
    name: "an outbox row pruned after publishing leaves the stream position unknown",
    scores: [score({ state: "missing" }, { subject: undefined, eventSource: undefined })],
    jetStream: view([acked("2026-12-07T10:04:12.000Z")]),
    kind: "stream-unknown",
    text: "published (outbox row pruned): its stream sequence is not known here, so neither is any consumer's progress",
  },
  {
    name: "several consumers: the one furthest from done leads, the others follow",
    scores: [score(published(12))],
    jetStream: view([
      acked("2026-12-07T10:04:12.000Z"),
      consumer("analytics", { deliveredStreamSequence: 9 }),
    ]),
    kind: "behind",
    text: "published, analytics is 3 events behind; applied by lms-gradebook at 2026-12-07T10:04:12.000Z",
  },
  {
    name: "the verdict is about the latest score; an earlier dead letter does not decide it",
    scores: [
      score(published(12)),
      score(published(13), {
        submissionSequence: 2,
        eventId: "01a23531-0cee-72e7-ab74-f60cc0ce3376",
      }),
    ],
    jetStream: {
      ...view([acked("2026-12-07T10:04:12.000Z", 13)], { found: [deadLetter()] }),
      messages: new Map([
        [12, { state: "present", storedAt: new Date(NOW_MS) }],
        [13, { state: "present", storedAt: new Date(NOW_MS) }],
      ]),
    },
    kind: "applied",
    text: "applied by lms-gradebook at 2026-12-07T10:04:12.000Z",
  },
];

describe("explain's verdict", () => {
  it.each(CASES)("$name", ({ scores, jetStream, kind, text }) => {
    const story = tellSubmissionStory(4821n, scores, jetStream, NOW_MS);
    expect(story.queues).toHaveLength(1);
    expect(story.queues[0]?.verdict).toEqual({ kind, text });
  });

  it("gives each queue that recorded the id its own verdict", () => {
    const story = tellSubmissionStory(
      4821n,
      [
        score(published(12)),
        score(
          {
            state: "pending",
            createdAtMs: NOW_MS,
            attempts: 0,
            leaseUntilMs: 0,
            lastError: undefined,
          },
          { queueName: "zeta", subject: "gradecast.scores.v1.zeta", eventId: "e-zeta" },
        ),
      ],
      view([acked("2026-12-07T10:04:12.000Z")]),
      NOW_MS,
    );
    expect(story.queues.map((queue) => [queue.queueName, queue.verdict.kind])).toEqual([
      ["python-grader", "applied"],
      ["zeta", "waiting"],
    ]);
    expect(story.queues[1]?.verdict.text).toBe(
      `accepted, waiting in the outbox since ${new Date(NOW_MS).toISOString()} (the relay has not tried it yet)`,
    );
  });
});

describe("a consumer's position for an event", () => {
  const event = {
    subject: SUBJECT,
    streamSequence: 12,
    message: { state: "present" as const, storedAt: new Date("2026-12-07T10:00:00.000Z") },
  };
  const stream = { name: "S", firstSequence: 1, lastSequence: 20 };

  it("is not-subscribed when its filter takes another queue", () => {
    const other = consumer("c", { filterSubjects: ["gradecast.scores.v1.java"] });
    expect(consumerPosition(other, event, stream, []).kind).toBe("not-subscribed");
  });

  it("is starts-after for a `new` consumer created after the event was stored", () => {
    const late = consumer("c", {
      deliverPolicy: "new",
      createdAt: new Date("2026-12-07T11:00:00.000Z"),
      ackFloorStreamSequence: 20,
      deliveredStreamSequence: 20,
    });
    expect(consumerPosition(late, event, stream, [])).toEqual({
      kind: "starts-after",
      deliverPolicy: "new",
    });
  });

  it("is starts-after for a start sequence above the event", () => {
    const late = consumer("c", { deliverPolicy: "by_start_sequence", optStartSequence: 13 });
    expect(consumerPosition(late, event, stream, []).kind).toBe("starts-after");
  });

  it("counts the sequences to go from its last delivered one", () => {
    expect(
      consumerPosition(
        consumer("c", { deliveredStreamSequence: 2, numPending: 18 }),
        event,
        stream,
        [],
      ),
    ).toEqual({
      kind: "not-reached",
      streamSequencesBehind: 10,
      deliveredStreamSequence: 2,
      numPending: 18,
    });
  });

  it("ignores another consumer's dead letter of the event", () => {
    const position = consumerPosition(
      consumer("analytics", { deliveredStreamSequence: 12, ackFloorStreamSequence: 12 }),
      event,
      stream,
      [deadLetter({ consumer: "lms-gradebook" })],
    );
    expect(position.kind).toBe("acknowledged");
  });
});

describe("subject filters", () => {
  it.each([
    ["gradecast.scores.v1.q", "gradecast.scores.v1.q", true],
    ["gradecast.scores.v1.q", "gradecast.scores.v1.*", true],
    ["gradecast.scores.v1.q", "gradecast.>", true],
    ["gradecast.scores.v1.q", "gradecast.scores.v1.other", false],
    ["gradecast.scores.v1.q", "gradecast.scores.*", false],
    ["gradecast.scores.v1.q", "gradecast.scores.v1.q.>", false],
    ["gradecast.scores.v1.q", ">", true],
  ])("%s against %s matches: %s", (subject, filter, matches) => {
    expect(subjectMatchesFilter(subject, filter)).toBe(matches);
  });
});
