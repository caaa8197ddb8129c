import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  type EventPublisher,
  type NatsLink,
  OutboxRelay,
  PublishError,
  type PublishFailureReason,
} from "../../src/events/index.js";
import {
  type OutboxEntry,
  type PublishedEvent,
  SqliteStore,
  type Store,
} from "../../src/store/index.js";
import { sampleScoreData } from "../helpers/contract-fixtures.js";

// The relay's own decisions (which events wait, how long, which are parked) against a real
// SQLite store; the publisher is a stand-in that fails the events a test names.

const WAIT_MS = 20_000;

/** Publishes instantly, failing with `reason` the events `failing` names; counts calls. */
class StandInPublisher {
  calls = 0;
  failing: (eventId: string) => PublishFailureReason | undefined = () => undefined;
  /** Runs while the publish is in flight, before it succeeds or fails. */
  whilePublishing: (eventId: string) => Promise<void> = async () => undefined;
  #sequence = 0;

  async publish(entry: Pick<OutboxEntry, "eventId">): Promise<PublishedEvent> {
    this.calls += 1;
    await this.whilePublishing(entry.eventId);
    const reason = this.failing(entry.eventId);
    if (reason) throw new PublishError(entry.eventId, reason, `stand-in failure: ${reason}`);
    this.#sequence += 1;
    return { eventId: entry.eventId, streamSequence: this.#sequence };
  }
}

const connectedLink = { isConnected: true } as unknown as NatsLink;

let dir: string;
let store: SqliteStore;
let relay: OutboxRelay | undefined;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), "gradecast-relay-"));
  store = new SqliteStore({
    path: join(dir, "gradecast.sqlite"),
    encoding: {
      origin: { source: "test", sourcehost: "h", sourcelib: "0.1.0" },
      subjectPrefix: "gradecast",
    },
  });
  await store.start();
});

afterEach(async () => {
  await relay?.stop(0);
  relay = undefined;
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

async function recordScores(count: number, firstSubmission: number): Promise<string[]> {
  const scores = Array.from({ length: count }, (_, i) => ({
    scoreData: sampleScoreData({ submissionId: BigInt(firstSubmission + i) }),
    eventId: randomUUID(),
    time: new Date(),
  }));
  await store.recordScores(scores, 0);
  return scores.map((score) => score.eventId);
}

function startRelay(
  publisher: StandInPublisher,
  backoff: { initialBackoffMs: number; maxBackoffMs: number },
  relayStore: Store = store,
): OutboxRelay {
  relay = new OutboxRelay(
    relayStore,
    publisher as unknown as EventPublisher,
    connectedLink,
    { batchSize: 128, leaseMs: 60_000, idlePollMs: 20, ...backoff },
    pino({ level: "silent" }),
  );
  relay.start();
  return relay;
}

async function until(what: string, isDone: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (!(await isDone())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe("OutboxRelay", () => {
  it("gives failing events their own backoff while later events keep flowing", async () => {
    // 200 failing events fill more than a whole batch at the head of the outbox.
    const failing = new Set(await recordScores(200, 1_000));
    const good = await recordScores(100, 5_000);
    const publisher = new StandInPublisher();
    publisher.failing = (eventId) => (failing.has(eventId) ? "timeout" : undefined);
    startRelay(publisher, { initialBackoffMs: 60_000, maxBackoffMs: 60_000 });

    await until("the good events published", async () => {
      const backlog = await store.outboxBacklog();
      return backlog.pending === failing.size;
    });
    const waiting = await store.listOutbox({ limit: 1_000, parkedOnly: false });
    expect(new Set(waiting.map((entry) => entry.eventId))).toEqual(failing);
    for (const entry of waiting) {
      expect(entry.lastError).toMatch(/stand-in failure: timeout/);
      expect(entry.leaseUntilMs).toBeGreaterThan(Date.now());
    }
    expect(good).toHaveLength(100);
  });

  it("marks an event published only once JetStream acknowledged it: pending while in flight, pending after a failure", async () => {
    const ids = await recordScores(3, 1_000);
    const [failingOnce] = ids;
    const publisher = new StandInPublisher();
    /** Per publish: was its event still unpublished in the store while the publish ran? */
    const pendingWhilePublishing: [string, boolean][] = [];
    publisher.whilePublishing = async (eventId) => {
      const unpublished = await store.listOutbox({ limit: 100, parkedOnly: false });
      pendingWhilePublishing.push([eventId, unpublished.some((e) => e.eventId === eventId)]);
    };
    let hasFailed = false;
    publisher.failing = (eventId) => {
      if (eventId !== failingOnce || hasFailed) return undefined;
      hasFailed = true;
      return "timeout";
    };
    // A long own backoff: the failed event must still be pending (not lost) after its round.
    startRelay(publisher, { initialBackoffMs: 60_000, maxBackoffMs: 60_000 });

    await until("the first round", async () => pendingWhilePublishing.length >= 3);
    expect(pendingWhilePublishing).toEqual(ids.map((id) => [id, true]));
    await until("the others published", async () => (await store.outboxBacklog()).pending === 1);
    const [left] = await store.listOutbox({ limit: 10, parkedOnly: false });
    expect(left).toMatchObject({ eventId: failingOnce, lastError: /stand-in failure: timeout/ });
    const latest = await store.latestScore({ queueName: "python-grader", submissionId: 1_000n });
    expect(latest?.record.published).toBe(false);
  });

  it("parks an event JetStream can never take, never retries it, and goes on", async () => {
    const [tooLarge] = await recordScores(1, 1_000);
    const later = await recordScores(3, 2_000);
    const publisher = new StandInPublisher();
    publisher.failing = (eventId) => (eventId === tooLarge ? "too-large" : undefined);
    startRelay(publisher, { initialBackoffMs: 10, maxBackoffMs: 20 });

    await until("the others published", async () => (await store.outboxBacklog()).pending === 0);
    expect(await store.outboxBacklog()).toMatchObject({ pending: 0, parked: 1 });
    const callsWhenSettled = publisher.calls;
    expect(callsWhenSettled).toBe(1 + later.length);
    // Parked: never handed to the publisher again, however long the relay runs.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(publisher.calls).toBe(callsWhenSettled);
  });

  it("retries events held back in a failed round as soon as a publish succeeds again", async () => {
    const held = new Set(await recordScores(3, 1_000));
    const publisher = new StandInPublisher();
    publisher.failing = () => "timeout"; // a leader election: no publish gets an ack
    const relay = startRelay(publisher, { initialBackoffMs: 60_000, maxBackoffMs: 60_000 });
    await until("the first round failed", async () => publisher.calls >= held.size);
    const waiting = await store.listOutbox({ limit: 10, parkedOnly: false });
    expect(waiting.every((entry) => entry.leaseUntilMs > Date.now() + 30_000)).toBe(true);

    publisher.failing = () => undefined;
    relay.notePublishAcknowledged(); // a direct publish got its ack
    await until(
      "the held-back events published",
      async () => (await store.outboxBacklog()).pending === 0,
    );
  });

  it("keeps going when the store fails, and publishes what waits once it answers again", async () => {
    await recordScores(3, 1_000);
    let failuresLeft = 5;
    // The store as PostgreSQL is while it is gone: every claim fails, then it is back.
    const flaky = new Proxy(store, {
      get(target, property) {
        if (property === "claimPending" && failuresLeft > 0) {
          return async () => {
            failuresLeft -= 1;
            throw new Error("cannot claim outbox entries: connection refused");
          };
        }
        const value: unknown = Reflect.get(target, property, target);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    startRelay(new StandInPublisher(), { initialBackoffMs: 10, maxBackoffMs: 20 }, flaky);
    await until("the store answered again and the events went out", async () => {
      return failuresLeft === 0 && (await store.outboxBacklog()).pending === 0;
    });
    expect(failuresLeft).toBe(0);
  });

  it("caps its backoff while NATS refuses everything (--relay-max-backoff)", async () => {
    await recordScores(1, 1_000);
    const publisher = new StandInPublisher();
    publisher.failing = () => "disconnected";
    // Uncapped, 10 ms doubling needs 10 * 2^20 ms for 20 rounds; capped at 20 ms, about 0.4 s.
    startRelay(publisher, { initialBackoffMs: 10, maxBackoffMs: 20 });
    await until("20 rounds", async () => publisher.calls >= 20);
    // And it does back off: over a second, no more rounds than 10 ms waits allow.
    const before = publisher.calls;
    const startedAt = performance.now();
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const rounds = publisher.calls - before;
    expect(rounds).toBeLessThanOrEqual((performance.now() - startedAt) / 10 + 5);
  });
});
