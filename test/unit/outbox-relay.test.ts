import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Logger, pino } from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  type EventPublisher,
  type NatsLink,
  OutboxRelay,
  type OutboxRelayOptions,
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
import { storeWith } from "../helpers/store-view.js";

// The relay's own decisions (which events wait, how long, which are parked) against a real
// SQLite store; the publisher is a stand-in that fails the events a test names.

const WAIT_MS = 20_000;

/** Publishes instantly, failing with `reason` the events `failing` names; counts calls. */
class StandInPublisher {
  calls = 0;
  /** The event of each publish, in call order. */
  attempted: string[] = [];
  failing: (eventId: string) => PublishFailureReason | undefined = () => undefined;
  /** What a publish rejects with instead, when it returns something (any error, not only PublishError). */
  throwing: (eventId: string) => unknown = () => undefined;
  /** Runs while the publish is in flight, before it succeeds or fails. */
  whilePublishing: (eventId: string) => Promise<void> = async () => undefined;
  #sequence = 0;

  async publish(entry: Pick<OutboxEntry, "eventId">): Promise<PublishedEvent> {
    this.calls += 1;
    this.attempted.push(entry.eventId);
    await this.whilePublishing(entry.eventId);
    const thrown = this.throwing(entry.eventId);
    if (thrown !== undefined) throw thrown;
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
  options: Pick<OutboxRelayOptions, "initialBackoffMs" | "maxBackoffMs"> &
    Partial<OutboxRelayOptions>,
  relayStore: Store = store,
  {
    link = connectedLink,
    logger = pino({ level: "silent" }),
  }: { link?: NatsLink; logger?: Logger } = {},
): OutboxRelay {
  relay = new OutboxRelay(
    relayStore,
    publisher as unknown as EventPublisher,
    link,
    { batchSize: 128, leaseMs: 60_000, idlePollMs: 20, ...options },
    logger,
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
    const flaky = storeWith(store, {
      claimPending: async (...args) => {
        if (failuresLeft === 0) return store.claimPending(...args);
        failuresLeft -= 1;
        throw new Error("cannot claim outbox entries: connection refused");
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

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** `promise`, or a rejection once `ms` passed without it settling. */
async function within<T>(ms: number, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`not settled within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

interface LogLine {
  level: number;
  msg: string;
  [field: string]: unknown;
}

/** A real pino logger whose lines the test reads back. */
function capturingLogger(): { logger: Logger; find: (msg: RegExp) => LogLine[] } {
  const lines: LogLine[] = [];
  const logger = pino(
    { level: "debug" },
    { write: (line: string) => lines.push(JSON.parse(line)) },
  );
  return { logger, find: (msg) => lines.filter((line) => msg.test(line.msg)) };
}

const WARN = 40;
const ERROR = 50;

/**
 * The test's store, counting claims; `attempts` makes the relay see the named events as
 * claimed that many times, and `beforeClaim` runs as a claim starts.
 */
function watchStore(watched: { attempts?: Map<string, number>; beforeClaim?: () => void } = {}): {
  store: Store;
  claims: () => number;
} {
  let claims = 0;
  const proxy = storeWith(store, {
    claimPending: async (...args) => {
      claims += 1;
      watched.beforeClaim?.();
      const entries = await store.claimPending(...args);
      return entries.map((entry) => ({
        ...entry,
        attempts: watched.attempts?.get(entry.eventId) ?? entry.attempts,
      }));
    },
  });
  return { store: proxy, claims: () => claims };
}

async function outboxById(): Promise<
  Map<string, Awaited<ReturnType<Store["listOutbox"]>>[number]>
> {
  const entries = await store.listOutbox({ limit: 1_000, parkedOnly: false });
  return new Map(entries.map((entry) => [entry.eventId, entry]));
}

function attemptsOf(publisher: StandInPublisher, eventId: string | undefined): number {
  return publisher.attempted.filter((id) => id === eventId).length;
}

/**
 * A relay on a watched store whose idle poll and backoff outlast the test, started and past
 * its first look at the (empty) outbox: from here on only a wake-up makes it look again.
 */
async function startIdleRelay() {
  const watched = watchStore();
  const publisher = new StandInPublisher();
  const relay = startRelay(
    publisher,
    { initialBackoffMs: 60_000, maxBackoffMs: 60_000, idlePollMs: 60_000 },
    watched.store,
  );
  await until("the first look", async () => watched.claims() >= 1);
  return { watched, publisher, relay };
}

describe("OutboxRelay waking, backoff and stopping", () => {
  it("looks at the outbox only on its idle poll, or at once when woken", async () => {
    const { watched, publisher, relay } = await startIdleRelay();
    await recordScores(2, 1_000);
    await sleep(300);
    expect(watched.claims()).toBe(1);
    // Not backing off, nothing held back: an ack elsewhere is no reason to look.
    relay.notePublishAcknowledged();
    await sleep(300);
    expect(watched.claims()).toBe(1);
    expect(publisher.calls).toBe(0);

    relay.wake(); // a direct publish failed
    await until("both published", async () => (await store.outboxBacklog()).pending === 0);
    // One round published both, the next found nothing: back to the (long) idle poll.
    await until("the round that finds nothing", async () => watched.claims() >= 3);
    expect(watched.claims()).toBe(3);
    expect(relay.publishedTotal).toBe(2);
  });

  it("does not lose a wake-up that arrives while a round runs", async () => {
    let wakeError: unknown;
    const watched = watchStore({
      beforeClaim: () => {
        if (watched.claims() !== 1) return;
        try {
          relay?.wake();
        } catch (error) {
          wakeError = error;
        }
      },
    });
    startRelay(
      new StandInPublisher(),
      { initialBackoffMs: 60_000, maxBackoffMs: 60_000, idlePollMs: 60_000 },
      watched.store,
    );
    await until("the second look", async () => watched.claims() >= 2);
    expect(wakeError).toBeUndefined();
  });

  it("ends its backoff when a publish elsewhere is acknowledged, and retries held-back events then only", async () => {
    const { logger, find } = capturingLogger();
    const [first] = await recordScores(1, 1_000);
    const publisher = new StandInPublisher();
    publisher.failing = () => "disconnected";
    const relay = startRelay(publisher, { initialBackoffMs: 60_000, maxBackoffMs: 60_000 }, store, {
      logger,
    });
    await until("the relay backing off", async () => find(/could not publish/).length === 1);
    expect(find(/could not publish; retrying with backoff/)[0]).toMatchObject({
      level: WARN,
      failed: 1,
      err: { message: "stand-in failure: disconnected" },
    });

    // NATS answers, but this event fails on its own: it gets its own backoff and is held back.
    publisher.failing = () => "timeout";
    relay.notePublishAcknowledged();
    await until("the event's own failure", async () => find(/some outbox events/).length === 1);
    expect(find(/some outbox events could not be published/)[0]).toMatchObject({
      level: WARN,
      failed: 1,
      published: 0,
      err: { message: "stand-in failure: timeout" },
    });
    expect(find(/publishing again/)).toHaveLength(0);
    expect((await outboxById()).get(first ?? "")?.leaseUntilMs).toBeGreaterThan(
      Date.now() + 30_000,
    );

    // The next ack releases it at once, and the relay says it publishes again.
    publisher.failing = () => undefined;
    relay.notePublishAcknowledged();
    await until(
      "the held-back event published",
      async () => (await store.outboxBacklog()).pending === 0,
    );
    expect(find(/outbox relay is publishing again/)).toEqual([
      expect.objectContaining({ published: 1 }),
    ]);
    expect(find(/could not publish; retrying with backoff/)).toHaveLength(1);
    expect(find(/some outbox events could not be published/)).toHaveLength(1);

    // Held back again: retried on the next ack, not before.
    const [second] = await recordScores(1, 2_000);
    publisher.failing = (eventId) => (eventId === second ? "timeout" : undefined);
    relay.wake();
    await until("its failure", async () => find(/some outbox events/).length === 2);
    await sleep(300);
    expect(attemptsOf(publisher, second)).toBe(1);
    expect((await store.outboxBacklog()).pending).toBe(1);
  });

  it("doubles its backoff per failed round while NATS refuses everything, and says so once", async () => {
    const { logger, find } = capturingLogger();
    await recordScores(1, 1_000);
    const publisher = new StandInPublisher();
    publisher.failing = () => "not-connected";
    startRelay(publisher, { initialBackoffMs: 50, maxBackoffMs: 60_000 }, store, { logger });
    await until("the first round", async () => publisher.calls >= 1);
    const startedAt = performance.now();
    await sleep(1_500);
    // Rounds at about 0, 50, 150, 350, 750, 1550 ms; without doubling, one each 50 ms.
    expect(publisher.calls).toBeLessThanOrEqual(8);
    expect(performance.now() - startedAt).toBeGreaterThanOrEqual(1_500);
    expect(find(/could not publish; retrying with backoff/)).toHaveLength(1);
  });

  it("gives a failing event its own capped exponential backoff, and retries early only a few attempts", async () => {
    const onRetry: PublishFailureReason[] = [];
    const [once, thrice, fifth, sixth] = await recordScores(4, 1_000);
    const [tooLarge] = await recordScores(1, 2_000);
    const attempts = new Map([
      [once ?? "", 1],
      [thrice ?? "", 3],
      [fifth ?? "", 5],
      [sixth ?? "", 6],
    ]);
    const publisher = new StandInPublisher();
    publisher.failing = (eventId) => (eventId === tooLarge ? "too-large" : "timeout");
    const before = Date.now();
    const relay = startRelay(
      publisher,
      { initialBackoffMs: 1_000, maxBackoffMs: 10_000, onRetry: (reason) => onRetry.push(reason) },
      watchStore({ attempts }).store,
    );
    await until("every failure stored", async () => {
      const byId = await outboxById();
      return [...attempts.keys()].every((eventId) => byId.get(eventId)?.lastError !== undefined);
    });
    const after = Date.now();
    const byId = await outboxById();
    const backoffOf = (eventId: string | undefined) => byId.get(eventId ?? "")?.leaseUntilMs ?? 0;
    for (const [eventId, backoffMs] of [
      [once, 1_000],
      [thrice, 4_000],
      [fifth, 10_000], // 16 s, capped
      [sixth, 10_000],
    ] as const) {
      expect(backoffOf(eventId)).toBeGreaterThanOrEqual(before + backoffMs);
      expect(backoffOf(eventId)).toBeLessThanOrEqual(after + backoffMs);
    }
    expect(onRetry).toEqual(["timeout", "timeout", "timeout", "timeout"]);
    expect(await store.outboxBacklog()).toMatchObject({ parked: 1 });

    // An ack: the events with at most 5 attempts go at once; the 6th waits; parked stays parked.
    publisher.failing = () => undefined;
    relay.notePublishAcknowledged();
    await until("the early retries", async () => (await store.outboxBacklog()).pending === 1);
    await sleep(300);
    expect([...(await outboxById()).keys()]).toEqual([sixth, tooLarge]);
    expect(await store.outboxBacklog()).toMatchObject({ pending: 1, parked: 1 });
    expect(attemptsOf(publisher, tooLarge)).toBe(1);
  });

  it("parks, retries and publishes events of one round, counting and reporting each", async () => {
    const { logger, find } = capturingLogger();
    const onRetry: PublishFailureReason[] = [];
    let preparedRetries = 0;
    const [tooLarge, timingOut] = await recordScores(2, 1_000);
    await recordScores(2, 2_000);
    const publisher = new StandInPublisher();
    publisher.failing = (eventId) =>
      eventId === tooLarge ? "too-large" : eventId === timingOut ? "timeout" : undefined;
    const relay = startRelay(
      publisher,
      {
        initialBackoffMs: 60_000,
        maxBackoffMs: 60_000,
        onRetry: (reason) => onRetry.push(reason),
        beforeRetry: async () => {
          preparedRetries += 1;
        },
      },
      store,
      { logger },
    );
    await until("the round settled", async () => {
      const backlog = await store.outboxBacklog();
      return backlog.pending === 1 && backlog.parked === 1;
    });
    expect(relay.publishedTotal).toBe(2);
    expect(relay.parkedTotal).toBe(1);
    expect(onRetry).toEqual(["timeout"]);
    expect(find(/outbox event parked/)).toEqual([
      expect.objectContaining({
        level: ERROR,
        eventId: tooLarge,
        subject: expect.stringMatching(/^gradecast\./),
        reason: "stand-in failure: too-large",
        msg: expect.stringMatching(/fix the cause, then run `gradecast outbox retry`/),
      }),
    ]);
    expect(find(/some outbox events could not be published/)).toEqual([
      expect.objectContaining({
        failed: 1,
        published: 2,
        err: expect.objectContaining({ message: "stand-in failure: too-large" }),
      }),
    ]);
    expect(find(/could not publish; retrying|publishing again/)).toHaveLength(0);

    // Something went through in that round: the failed event waits out its own backoff.
    relay.notePublishAcknowledged();
    await sleep(300);
    expect(attemptsOf(publisher, timingOut)).toBe(1);
    expect(attemptsOf(publisher, tooLarge)).toBe(1);
    expect(preparedRetries).toBe(0);
  });

  it("re-prepares the stream once after a publish found none, waits for that, and goes on when it fails", async () => {
    const { logger, find } = capturingLogger();
    const onRetry: PublishFailureReason[] = [];
    const [noStream] = await recordScores(1, 1_000);
    const publisher = new StandInPublisher();
    publisher.failing = () => "no-stream";
    let preparedRetries = 0;
    let openGate: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      openGate = resolve;
    });
    const watched = watchStore();
    startRelay(
      publisher,
      {
        initialBackoffMs: 60_000,
        maxBackoffMs: 60_000,
        onRetry: (reason) => onRetry.push(reason),
        beforeRetry: async () => {
          preparedRetries += 1;
          await gate;
          throw new Error("cannot create the stream");
        },
      },
      watched.store,
      { logger },
    );
    await until("the stream re-prepared", async () => preparedRetries === 1);
    const claimsWhilePreparing = watched.claims();
    await sleep(300);
    expect(watched.claims()).toBe(claimsWhilePreparing);

    openGate();
    await until("the relay going on", async () => watched.claims() > claimsWhilePreparing + 2);
    expect(find(/preparing the outbox relay retry failed/)).toEqual([
      expect.objectContaining({
        level: WARN,
        err: expect.objectContaining({ message: "cannot create the stream" }),
      }),
    ]);
    expect(preparedRetries).toBe(1);
    expect(onRetry).toEqual(["no-stream"]);
    expect((await outboxById()).get(noStream ?? "")?.leaseUntilMs).toBeGreaterThan(Date.now());
  });

  it("backs off the whole relay for connection failures and unknown errors, not for an event's own", async () => {
    const onRetry: PublishFailureReason[] = [];
    const ids = await recordScores(4, 1_000);
    const [refused, notConnected, disconnected, timeout] = ids;
    const publisher = new StandInPublisher();
    publisher.throwing = (eventId) =>
      eventId === refused ? new Error("socket hang up") : undefined;
    publisher.failing = (eventId) =>
      eventId === notConnected
        ? "not-connected"
        : eventId === disconnected
          ? "disconnected"
          : "timeout";
    startRelay(publisher, {
      initialBackoffMs: 60_000,
      maxBackoffMs: 60_000,
      onRetry: (reason) => onRetry.push(reason),
    });
    await until("every failure stored", async () =>
      [...(await outboxById()).values()].every((entry) => entry.lastError !== undefined),
    );
    const byId = await outboxById();
    for (const dueNow of [refused, notConnected, disconnected]) {
      expect(byId.get(dueNow ?? "")?.leaseUntilMs).toBeLessThanOrEqual(Date.now());
    }
    expect(byId.get(timeout ?? "")?.leaseUntilMs).toBeGreaterThan(Date.now() + 30_000);
    expect(byId.get(refused ?? "")?.lastError).toBe("socket hang up");
    expect(onRetry).toEqual(["refused", "not-connected", "disconnected", "timeout"]);
  });

  it("keeps at most 500 characters of a failure with the event", async () => {
    const [long, exact] = await recordScores(2, 1_000);
    const publisher = new StandInPublisher();
    publisher.throwing = (eventId) =>
      new PublishError(
        eventId,
        "timeout",
        (eventId === long ? "y" : "x").repeat(eventId === long ? 501 : 500),
      );
    startRelay(publisher, { initialBackoffMs: 60_000, maxBackoffMs: 60_000 });
    await until("both failures stored", async () =>
      [...(await outboxById()).values()].every((entry) => entry.lastError !== undefined),
    );
    const byId = await outboxById();
    expect(byId.get(long ?? "")?.lastError).toBe(`${"y".repeat(500)}…`);
    expect(byId.get(exact ?? "")?.lastError).toBe("x".repeat(500));
  });

  it("says once per run of store failures that it cannot reach the store", async () => {
    const { logger, find } = capturingLogger();
    await recordScores(1, 1_000);
    // Claims fail 3 times, work once, fail twice, then work.
    const outcomes = [false, false, false, true, false, false];
    const flaky = storeWith(store, {
      claimPending: async (...args) => {
        if (outcomes.length === 0 || outcomes.shift()) return store.claimPending(...args);
        throw new Error("cannot claim outbox entries: connection refused");
      },
    });
    const startedAt = performance.now();
    startRelay(new StandInPublisher(), { initialBackoffMs: 100, maxBackoffMs: 100 }, flaky, {
      logger,
    });
    await until("the store back for good", async () => {
      return outcomes.length === 0 && (await store.outboxBacklog()).pending === 0;
    });
    // It backed off after each failure: 4 backoffs before the 6th claim, the last to fail.
    expect(performance.now() - startedAt).toBeGreaterThanOrEqual(4 * 100 - 20);
    expect(find(/outbox relay cannot reach the store; retrying with backoff/)).toEqual([
      expect.objectContaining({
        level: WARN,
        err: expect.objectContaining({ message: expect.stringMatching(/connection refused/) }),
      }),
      expect.objectContaining({ level: WARN }),
    ]);
  });

  it("holds its lease on an event while the event's publish is in flight", async () => {
    const [eventId] = await recordScores(1, 1_000);
    const publisher = new StandInPublisher();
    const leasesInFlight: number[] = [];
    publisher.whilePublishing = async (id) => {
      const lease = (await outboxById()).get(id)?.leaseUntilMs;
      if (lease !== undefined) leasesInFlight.push(lease - Date.now());
    };
    startRelay(publisher, { initialBackoffMs: 10, maxBackoffMs: 20, leaseMs: 60_000 });
    await until("the event published", async () => (await store.outboxBacklog()).pending === 0);
    expect(eventId).toBeDefined();
    expect(leasesInFlight).toHaveLength(1);
    // leaseMs ahead of the claim, less the moments since.
    expect(leasesInFlight[0]).toBeGreaterThan(50_000);
  });

  it("goes on at once with the events behind a round that had a failure", async () => {
    const [failing] = await recordScores(4, 1_000);
    const publisher = new StandInPublisher();
    publisher.failing = (eventId) => (eventId === failing ? "timeout" : undefined);
    // Batches of two, and an idle poll far beyond the test: only going on at once publishes all.
    startRelay(publisher, {
      initialBackoffMs: 60_000,
      maxBackoffMs: 60_000,
      batchSize: 2,
      idlePollMs: 60_000,
    });
    await until("the others published", async () => (await store.outboxBacklog()).pending === 1);
    expect([...(await outboxById()).keys()]).toEqual([failing]);
  });

  it("goes on at once after a round that published everything, never backing off", async () => {
    await recordScores(6, 1_100);
    const publisher = new StandInPublisher();
    const { logger, find } = capturingLogger();
    // Batches of two, and a backoff and idle poll far beyond the test: only rounds that follow
    // each other at once publish all six.
    startRelay(
      publisher,
      { initialBackoffMs: 60_000, maxBackoffMs: 60_000, batchSize: 2, idlePollMs: 60_000 },
      store,
      { logger },
    );
    await until("all six published", async () => (await store.outboxBacklog()).pending === 0);
    expect(publisher.calls).toBe(6);
    expect(find(/could not publish/)).toEqual([]);
  });

  it("stopped before it started, it never starts", async () => {
    await recordScores(1, 1_000);
    const publisher = new StandInPublisher();
    relay = new OutboxRelay(
      store,
      publisher as unknown as EventPublisher,
      connectedLink,
      { batchSize: 128, leaseMs: 60_000, idlePollMs: 20, initialBackoffMs: 10, maxBackoffMs: 20 },
      pino({ level: "silent" }),
    );
    await relay.stop(1_000);
    relay.start();
    await sleep(300);
    expect(publisher.calls).toBe(0);
  });

  it("on stop publishes what is pending, returning as soon as the outbox is empty", async () => {
    const { publisher, relay } = await startIdleRelay();
    await recordScores(2, 1_000);
    await within(10_000, relay.stop(30_000));
    expect(await store.outboxBacklog()).toMatchObject({ pending: 0 });
    relay.start(); // stopped for good
    await recordScores(1, 2_000);
    await sleep(200);
    expect(publisher.calls).toBe(2);
  });

  it("on stop gives up at its flush timeout while NATS refuses everything", async () => {
    await recordScores(1, 1_000);
    const publisher = new StandInPublisher();
    publisher.failing = () => "disconnected";
    const relay = startRelay(publisher, { initialBackoffMs: 60_000, maxBackoffMs: 60_000 });
    await until("the first round", async () => publisher.calls >= 1);
    await within(10_000, relay.stop(300));
    expect(await store.outboxBacklog()).toMatchObject({ pending: 1 });
  });

  it("publishes nothing while NATS is not connected, and stops at once then", async () => {
    await recordScores(1, 1_000);
    const publisher = new StandInPublisher();
    const link = { isConnected: false } as unknown as NatsLink;
    const relay = startRelay(publisher, { initialBackoffMs: 10, maxBackoffMs: 20 }, store, {
      link,
    });
    await sleep(300);
    expect(publisher.calls).toBe(0);
    await within(10_000, relay.stop(60_000));
    expect(await store.outboxBacklog()).toMatchObject({ pending: 1 });
  });

  it("logs an unexpected error that ends its loop", async () => {
    const { logger, find } = capturingLogger();
    const link = {
      get isConnected(): boolean {
        throw new Error("link state unreadable");
      },
    } as unknown as NatsLink;
    const relay = startRelay(
      new StandInPublisher(),
      { initialBackoffMs: 10, maxBackoffMs: 20 },
      store,
      {
        link,
        logger,
      },
    );
    await within(10_000, relay.stop(0));
    expect(find(/outbox relay stopped on an unexpected error/)).toEqual([
      expect.objectContaining({
        level: ERROR,
        err: expect.objectContaining({ message: "link state unreadable" }),
      }),
    ]);
  });
});
