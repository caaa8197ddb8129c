import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  EventSizing,
  type ExternalGraderScoreData,
  ShuttingDownError,
  type TraceContext,
  traceContextHeaderBytes,
  ValidationError,
} from "../../src/contract/index.js";
import { type EventPublisher, OutboxMarks } from "../../src/events/index.js";
import { ScoreIntake } from "../../src/server/score-intake.js";
import {
  GroupCommit,
  type PublishedEvent,
  SqliteStore,
  type Store,
} from "../../src/store/index.js";
import { sampleScoreData } from "../helpers/contract-fixtures.js";
import { storeWith } from "../helpers/store-view.js";

// The intake's own decisions (what it refuses before storing, which score GetScore answers,
// what `published` says, what close() waits for) against a real SQLite store and the real
// group commit and publish marks; the publisher is a stand-in the test answers by hand.

const ORIGIN = { source: "test", sourcehost: "h", sourcelib: "0.1.0" };
const SUBJECT_PREFIX = "gradecast";
const WAIT_MS = 20_000;
const TRACE: TraceContext = {
  traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
  tracestate: "vendor=value",
};

/** A publish the test settles by hand; `message` is what the intake handed over. */
interface PendingPublish {
  eventId: string;
  message: {
    subject: string;
    payload: Uint8Array;
    headers: ReadonlyArray<readonly [string, string]>;
  };
  ack: () => void;
  fail: (error: Error) => void;
}

/** Acknowledges at once unless `isHolding`; then each publish waits in `pending`. */
class StandInPublisher {
  readonly pending: PendingPublish[] = [];
  readonly received: PendingPublish["message"][] = [];
  isHolding = false;
  #sequence = 0;

  publish(entry: { eventId: string; message: PendingPublish["message"] }): Promise<PublishedEvent> {
    this.received.push(entry.message);
    return new Promise((resolve, reject) => {
      const ack = () => {
        this.#sequence += 1;
        resolve({ eventId: entry.eventId, streamSequence: this.#sequence });
      };
      if (!this.isHolding) return ack();
      this.pending.push({ eventId: entry.eventId, message: entry.message, ack, fail: reject });
    });
  }
}

/** Holds the store's publish marks back until `release()`: a mark written in a later batch. */
function holdingMarks(store: Store): { store: Store; release: () => void } {
  let release: () => void = () => undefined;
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  const held = storeWith(store, {
    markPublished: async (events) => {
      await released;
      return store.markPublished(events);
    },
  });
  return { store: held, release };
}

let dir: string;
let store: SqliteStore;
let publisher: StandInPublisher;
const eventSizing = new EventSizing(ORIGIN, SUBJECT_PREFIX);

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), "gradecast-intake-"));
  store = new SqliteStore({
    path: join(dir, "gradecast.sqlite"),
    encoding: { origin: ORIGIN, subjectPrefix: SUBJECT_PREFIX },
  });
  await store.start();
  publisher = new StandInPublisher();
});

afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

interface IntakeSetup {
  /** What the intake reads scores through; the real store unless a test reorders its answers. */
  readStore?: Store;
  marks?: OutboxMarks;
  isNatsConnected?: boolean;
  publishWaitMs?: number;
  maxEventBytes?: number;
}

function newIntake(setup: IntakeSetup = {}): { intake: ScoreIntake; marks: OutboxMarks } {
  const logger = pino({ level: "silent" });
  const marks = setup.marks ?? new OutboxMarks(store, logger, () => undefined);
  const intake = new ScoreIntake({
    store: setup.readStore ?? store,
    groupCommit: new GroupCommit(store, { maxBatch: 64, directLeaseMs: () => 60_000 }),
    publisher: publisher as unknown as EventPublisher,
    marks,
    isNatsConnected: () => setup.isNatsConnected ?? true,
    publishWaitMs: setup.publishWaitMs ?? WAIT_MS,
    eventSizing,
    maxEventBytes: () => setup.maxEventBytes,
    logger,
  });
  return { intake, marks };
}

async function until(what: string, isDone: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (!(await isDone())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** The refusal of a score over the limit, or undefined when the intake takes it. */
async function refusalOf(
  intake: ScoreIntake,
  scoreData: ExternalGraderScoreData,
  reporter: { graderName?: string; traceContext?: TraceContext } = {},
): Promise<ValidationError | undefined> {
  try {
    await intake.submitScore(scoreData, reporter);
    return undefined;
  } catch (error) {
    if (error instanceof ValidationError) return error;
    throw error;
  }
}

describe("ScoreIntake: the max_payload refusal", () => {
  const scoreData = sampleScoreData({ submissionId: 11n });

  it("takes an event of exactly max_payload bytes and refuses one byte more, saying by how much", async () => {
    const eventBytes = eventSizing.exactBytes(scoreData);
    // The cheap bound is over the exact size, so both limits below take the exact check.
    expect(eventSizing.upperBound(scoreData)).toBeGreaterThan(eventBytes);

    const atLimit = newIntake({ maxEventBytes: eventBytes }).intake;
    expect(await refusalOf(atLimit, scoreData)).toBeUndefined();

    const underLimit = newIntake({ maxEventBytes: eventBytes - 1 }).intake;
    const refusal = await refusalOf(underLimit, { ...scoreData, submissionId: 12n });
    expect(refusal?.violations).toEqual([
      {
        field: "score_data.score_msg",
        description: `the event of this score would be ${eventBytes} bytes, over the ${eventBytes - 1} bytes the NATS server takes (its max_payload): shorten score_msg by at least 1 bytes`,
      },
    ]);
    expect(await store.latestScore({ queueName: scoreData.queueName, submissionId: 12n })).toBe(
      undefined,
    );
  });

  it("counts the grader's name in the event source and the trace headers against the limit", async () => {
    const withName = eventSizing.exactBytes(scoreData, "grader-one");
    expect(withName).toBeGreaterThan(eventSizing.exactBytes(scoreData));
    const named = newIntake({ maxEventBytes: withName - 1 }).intake;
    expect(
      (await refusalOf(named, scoreData, { graderName: "grader-one" }))?.violations[0]?.description,
    ).toContain(`would be ${withName} bytes, over the ${withName - 1} bytes`);

    const traceBytes = traceContextHeaderBytes(TRACE);
    expect(traceBytes).toBeGreaterThan(0);
    const eventBytes = eventSizing.exactBytes(scoreData) + traceBytes;
    // Over the cheap bound without the trace headers, so only counting them refuses it.
    const traced = newIntake({ maxEventBytes: eventBytes - 1 }).intake;
    expect(eventSizing.upperBound(scoreData)).toBeLessThanOrEqual(eventBytes - 1 + traceBytes);
    expect(
      (await refusalOf(traced, scoreData, { traceContext: TRACE }))?.violations[0]?.description,
    ).toContain(`would be ${eventBytes} bytes, over the ${eventBytes - 1} bytes`);
    const fits = newIntake({ maxEventBytes: eventBytes }).intake;
    expect(await refusalOf(fits, scoreData, { traceContext: TRACE })).toBeUndefined();
  });

  it("refuses nothing for size before the server's max_payload is known", async () => {
    const { intake } = newIntake();
    const large = sampleScoreData({ submissionId: 14n, scoreMsg: "x".repeat(65_536) });
    expect(await refusalOf(intake, large, { traceContext: TRACE })).toBeUndefined();
  });
});

describe("ScoreIntake: GetScore without a queue", () => {
  async function recordIn(queues: readonly string[], submissionId: bigint, time: Date) {
    for (const queueName of queues) {
      await store.recordScores(
        [
          {
            scoreData: sampleScoreData({ submissionId, queueName, scoreMsg: `from ${queueName}` }),
            eventId: randomUUID(),
            time,
          },
        ],
        0,
      );
    }
  }

  it("answers the same queue whatever order the store lists the queues in when their event times are equal", async () => {
    // Both stores happen to list queues by name; the Store contract promises no order, so the
    // intake breaks ties itself. A view of the real store lists them in each order in turn.
    let order: readonly string[] = [];
    const readStore = storeWith(store, {
      latestScoresAcrossQueues: async (submissionId) => {
        const scores = await store.latestScoresAcrossQueues(submissionId);
        return order.flatMap((queueName) => scores.filter((s) => s.queueName === queueName));
      },
    });
    const { intake } = newIntake({ readStore });
    await recordIn(["queue-b", "queue-a", "queue-c"], 100n, new Date("2026-12-07T12:00:00.123Z"));
    const orders = [
      ["queue-a", "queue-b", "queue-c"],
      ["queue-a", "queue-c", "queue-b"],
      ["queue-b", "queue-a", "queue-c"],
      ["queue-b", "queue-c", "queue-a"],
      ["queue-c", "queue-a", "queue-b"],
      ["queue-c", "queue-b", "queue-a"],
    ];
    for (const listed of orders) {
      order = listed;
      const answer = await intake.getScore(100n, undefined, () => true);
      expect(answer.event.scoreData?.queueName, listed.join(",")).toBe("queue-a");
      // The first queue the caller may read, by name.
      const withoutA = await intake.getScore(100n, undefined, (q) => q !== "queue-a");
      expect(withoutA.event.scoreData?.queueName, listed.join(",")).toBe("queue-b");
      const onlyC = await intake.getScore(100n, undefined, (q) => q === "queue-c");
      expect(onlyC.event.scoreData?.queueName).toBe("queue-c");
    }
  });

  it("answers the latest event time first, whatever the queue names", async () => {
    const { intake } = newIntake();
    await recordIn(["queue-a"], 200n, new Date("2026-12-07T12:00:00.100Z"));
    await recordIn(["queue-z"], 200n, new Date("2026-12-07T12:00:00.101Z"));
    await recordIn(["queue-m"], 200n, new Date("2026-12-07T12:00:00.099Z"));
    const answer = await intake.getScore(200n, undefined, () => true);
    expect(answer.event.scoreData?.queueName).toBe("queue-z");
    expect(answer.event.scoreData?.scoreMsg).toBe("from queue-z");

    await recordIn(["queue-z"], 201n, new Date("2026-12-07T12:00:00.099Z"));
    await recordIn(["queue-a"], 201n, new Date("2026-12-07T12:00:00.101Z"));
    expect((await intake.getScore(201n, undefined, () => true)).event.scoreData?.queueName).toBe(
      "queue-a",
    );
  });
});

describe("ScoreIntake: publishing and what `published` says", () => {
  it("leaves the publish to the relay when NATS is down: no direct publish, the row released at once", async () => {
    const { intake, marks } = newIntake({ isNatsConnected: false });
    const result = await intake.submitScore(sampleScoreData({ submissionId: 300n }));
    expect(result.record.published).toBe(false);
    expect(publisher.received).toHaveLength(0);
    await marks.flush();
    // Leased to this call for a minute by the commit; handed back, the relay may claim it now.
    const claimed = await store.claimPending(10, Date.now(), Date.now() + 60_000);
    expect(claimed.map((entry) => entry.eventId)).toEqual([result.record.eventId]);
  });

  it("answers published = false when the direct publish fails, and hands the row to the relay at once", async () => {
    publisher.isHolding = true;
    const { intake, marks } = newIntake();
    const submitting = intake.submitScore(sampleScoreData({ submissionId: 303n }));
    await until("the direct publish", () => publisher.pending.length === 1);
    publisher.pending[0]?.fail(new Error("stand-in: JetStream refused"));
    const result = await submitting;
    expect(result.record.published).toBe(false);
    await marks.flush();
    const claimed = await store.claimPending(10, Date.now(), Date.now() + 60_000);
    expect(claimed.map((entry) => entry.eventId)).toEqual([result.record.eventId]);
    expect((await intake.getScore(303n, undefined, () => true)).published).toBe(false);
  });

  it("publishes the grader's name and trace context the call brought", async () => {
    const { intake } = newIntake();
    const result = await intake.submitScore(sampleScoreData({ submissionId: 301n }), {
      graderName: "grader-one",
      traceContext: TRACE,
    });
    expect(result.record.published).toBe(true);
    const [message] = publisher.received;
    expect(new Map(message?.headers).get("ce-traceparent")).toBe(TRACE.traceparent);
    const stored = await intake.getScore(301n, "python-grader", () => true);
    expect(stored.event.metadata?.source).toBe("test/grader-one");
  });

  it("answers published = false after --publish-wait while the ack is late, and true once it came", async () => {
    publisher.isHolding = true;
    const { intake, marks } = newIntake({ publishWaitMs: 50 });
    const result = await intake.submitScore(sampleScoreData({ submissionId: 302n }));
    expect(result.record.published).toBe(false);
    expect(publisher.pending).toHaveLength(1);
    publisher.pending[0]?.ack();
    await until("the late ack to count", async () => {
      const lookup = await intake.getScore(302n, "python-grader", () => true);
      return lookup.published;
    });
    await marks.flush();
    expect(
      (await store.latestScore({ queueName: "python-grader", submissionId: 302n }))?.record,
    ).toMatchObject({ published: true });
  });

  it("leaves no --publish-wait timer behind an answered call", async () => {
    const { intake, marks } = newIntake({ publishWaitMs: 600_000 });
    const timers = () =>
      process.getActiveResourcesInfo().filter((resource) => resource === "Timeout").length;
    const before = timers();
    for (let i = 0; i < 20; i += 1) {
      const result = await intake.submitScore(sampleScoreData({ submissionId: BigInt(400 + i) }));
      expect(result.record.published).toBe(true);
    }
    await marks.flush();
    // At most the marks' own write timer is left, never one ten-minute timer per call.
    expect(timers() - before).toBeLessThan(5);
  });

  it("close() refuses new scores and waits for a direct publish still in flight", async () => {
    publisher.isHolding = true;
    const { intake } = newIntake({ publishWaitMs: 20 });
    const result = await intake.submitScore(sampleScoreData({ submissionId: 500n }));
    expect(result.record.published).toBe(false);
    let isClosed = false;
    const closing = intake.close().then(() => {
      isClosed = true;
    });
    await expect(intake.submitScore(sampleScoreData({ submissionId: 501n }))).rejects.toThrow(
      ShuttingDownError,
    );
    // Several turns of the event loop: close() must still be waiting for the publish.
    for (let i = 0; i < 10; i += 1) await new Promise((resolve) => setImmediate(resolve));
    expect(isClosed).toBe(false);
    publisher.pending[0]?.ack();
    await closing;
    expect(isClosed).toBe(true);
  });

  it("close() waits for a commit still in flight", async () => {
    const { intake } = newIntake();
    const submitting = intake.submitScore(sampleScoreData({ submissionId: 502n }));
    await intake.close();
    // The commit and its publish settled before close() returned.
    expect(publisher.received).toHaveLength(1);
    await expect(submitting).resolves.toMatchObject({ record: { published: true } });
  });

  it("answers a retry published = true from the ack while the store's mark is not written yet", async () => {
    const held = holdingMarks(store);
    const marks = new OutboxMarks(held.store, pino({ level: "silent" }), () => undefined);
    const { intake } = newIntake({ marks });
    const scoreData = sampleScoreData({ submissionId: 600n });
    expect((await intake.submitScore(scoreData)).record.published).toBe(true);

    const retry = await intake.submitScore(scoreData);
    expect(retry.isReplay).toBe(true);
    expect(retry.record.published).toBe(true);
    const lookup = await intake.getScore(600n, "python-grader", () => true);
    expect(lookup.published).toBe(true);
    // The row itself is not marked: the answers came from the ack.
    expect(
      (await store.latestScore({ queueName: "python-grader", submissionId: 600n }))?.record,
    ).toMatchObject({ published: false });
    held.release();
    await marks.flush();
  });

  it("answers a retry published = true from the store after a restart forgot the acks", async () => {
    const first = newIntake();
    const scoreData = sampleScoreData({ submissionId: 601n });
    expect((await first.intake.submitScore(scoreData)).record.published).toBe(true);
    await first.marks.flush();
    await first.intake.close();

    const restarted = newIntake();
    const retry = await restarted.intake.submitScore(scoreData);
    expect(retry).toMatchObject({ isReplay: true, record: { published: true } });
    expect((await restarted.intake.getScore(601n, undefined, () => true)).published).toBe(true);
    // And unpublished stays unpublished: nothing acknowledged this one.
    publisher.isHolding = true;
    const late = newIntake({ publishWaitMs: 20 });
    const unacked = sampleScoreData({ submissionId: 602n });
    expect((await late.intake.submitScore(unacked)).record.published).toBe(false);
    expect((await late.intake.submitScore(unacked)).record.published).toBe(false);
    expect((await late.intake.getScore(602n, undefined, () => true)).published).toBe(false);
    publisher.pending[0]?.fail(new Error("stand-in: never acknowledged"));
    await late.intake.close();
  });
});
