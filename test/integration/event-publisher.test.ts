import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DiscardPolicy, jetstreamManager } from "@nats-io/jetstream";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import type { EventMessage } from "../../src/contract/index.js";
import { EventPublisher, type NatsAuth, NatsLink, PublishError } from "../../src/events/index.js";
import { readStream } from "../helpers/gradecast.js";
import { type NatsServerHandle, startNatsServer } from "../helpers/nats-server.js";

const STREAM = "PUBLISHER_TEST";
/** Small enough that a test of the timeout is quick, big enough for a loaded CI machine. */
const TIMEOUT_MS = 1_500;

let nats: NatsServerHandle;
let link: NatsLink;
const acknowledged: boolean[] = [];
const ackSeconds: number[] = [];
/** Each failed publish as `onFailed` saw it: reason and path. */
const failed: [string, string][] = [];
let publisher: EventPublisher;

beforeAll(async () => {
  nats = await startNatsServer();
  link = linkTo(nats.url, "publisher-test");
  const connection = await link.start();
  const jsm = await jetstreamManager(connection);
  await jsm.streams.add({
    name: STREAM,
    subjects: ["pub.>"],
    duplicate_window: 120_000_000_000,
    max_msg_size: 4_096,
  });
  // Holds one message and refuses the next: a JetStream error that is not about size.
  await jsm.streams.add({
    name: `${STREAM}_FULL`,
    subjects: ["full.>"],
    max_msgs: 1,
    discard: DiscardPolicy.New,
  });
  publisher = new EventPublisher(link, {
    timeoutMs: TIMEOUT_MS,
    onAcknowledged: (durationS, isDuplicate) => {
      acknowledged.push(isDuplicate);
      ackSeconds.push(durationS);
    },
    onFailed: (reason, path) => failed.push([reason, path]),
  });
});

afterAll(async () => {
  await link?.close();
  await nats?.cleanup();
});

/** A quiet link to `url`, not started. */
function linkTo(url: string, name: string, auth?: NatsAuth): NatsLink {
  return new NatsLink(
    {
      servers: url,
      name,
      reconnectTimeWaitMs: 200,
      connectTimeoutMs: 2_000,
      ...(auth === undefined ? {} : { auth }),
    },
    pino({ level: "silent" }),
  );
}

function message(subject: string, payloadBytes = 16): EventMessage {
  return {
    subject,
    payload: new Uint8Array(payloadBytes).fill(7),
    headers: [
      ["ce-specversion", "1.0"],
      ["content-type", "application/protobuf"],
    ],
  };
}

describe("EventPublisher", () => {
  it("publishes the stored subject, bytes and headers, and JetStream drops a re-publish", async () => {
    const entry = { eventId: "event-1", message: message("pub.a") };
    const first = await publisher.publish(entry);
    const again = await publisher.publish(entry);

    expect(again).toEqual(first);
    expect(acknowledged.slice(-2)).toEqual([false, true]);
    // Seconds from publish to ack, not milliseconds or a timestamp.
    for (const seconds of ackSeconds.slice(-2)) {
      expect(seconds).toBeGreaterThan(0);
      expect(seconds).toBeLessThan(TIMEOUT_MS / 1000);
    }
    const stored = await readStream(nats.url, STREAM);
    expect(stored).toHaveLength(1);
    expect(stored[0]?.subject).toBe("pub.a");
    expect(stored[0]?.headers).toMatchObject({
      "ce-specversion": "1.0",
      "content-type": "application/protobuf",
      "Nats-Msg-Id": "event-1",
    });
    expect([...(stored[0]?.data ?? [])]).toEqual(new Array(16).fill(7));
  });

  it("keeps 500 overlapping publishes in order, each with its own sequence", async () => {
    const results = await Promise.all(
      Array.from({ length: 500 }, (_, i) =>
        publisher.publish({ eventId: `burst-${i}`, message: message(`pub.burst.${i}`) }),
      ),
    );
    const sequences = results.map((r) => r.streamSequence);
    expect(new Set(sequences).size).toBe(500);
    expect([...sequences].sort((a, b) => a - b)).toEqual(sequences);
    expect(results.map((r) => r.eventId)).toEqual(results.map((_, i) => `burst-${i}`));
  });

  it("names the subject when no stream captures it", async () => {
    const failure = await publisher
      .publish({ eventId: "nowhere", message: message("elsewhere.x") })
      .catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(PublishError);
    expect((failure as PublishError).eventId).toBe("nowhere");
    expect((failure as Error).message).toMatch(/no JetStream stream captures subject elsewhere\.x/);
    // Retried by the relay like a connection failure: a clustered stream answers so while electing.
    expect((failure as PublishError).reason).toBe("no-stream");
    expect((failure as PublishError).isPermanent).toBe(false);
    expect(failed.at(-1)).toEqual(["no-stream", "direct"]);
  });

  it("passes on JetStream's refusal for size as permanent, naming the path that published", async () => {
    const failure = await publisher
      .publish({ eventId: "too-big", message: message("pub.big", 8_000) }, "relay")
      .catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(PublishError);
    expect((failure as Error).message).toMatch(
      /publish of event too-big to pub\.big failed: .*size/i,
    );
    // Over the stream's max_msg_size: the same bytes can never be stored, so the relay parks it.
    expect((failure as PublishError).reason).toBe("too-large");
    expect((failure as PublishError).isPermanent).toBe(true);
    expect(failed.at(-1)).toEqual(["too-large", "relay"]);
  });

  it("passes on any other JetStream refusal as one to retry", async () => {
    await publisher.publish({ eventId: "full-1", message: message("full.a") });
    const failure = await publisher
      .publish({ eventId: "full-2", message: message("full.b") })
      .catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(PublishError);
    expect((failure as Error).message).toMatch(
      /publish of event full-2 to full\.b failed: .*maximum messages/i,
    );
    expect((failure as PublishError).reason).toBe("refused");
    expect((failure as PublishError).isPermanent).toBe(false);
    expect(failed.at(-1)).toEqual(["refused", "direct"]);
  });

  it("refuses an answer that is not a PubAck from whatever replies on the subject", async () => {
    // Not a stream: a plain NATS service answering on a subject, as a misconfigured deployment might.
    const connection = link.connection;
    if (!connection) throw new Error("the publisher's link is not connected");
    const responder = connection.subscribe("foreign.>", {
      callback: (_error, msg) => {
        msg.respond(msg.subject === "foreign.empty" ? "{}" : "not json");
      },
    });
    try {
      const empty = await publisher
        .publish({ eventId: "foreign-1", message: message("foreign.empty") })
        .catch((error: unknown) => error);
      expect((empty as PublishError).reason).toBe("refused");
      expect((empty as Error).message).toMatch(/failed: ack without a stream sequence$/);
      const unreadable = await publisher
        .publish({ eventId: "foreign-2", message: message("foreign.text") })
        .catch((error: unknown) => error);
      expect((unreadable as PublishError).reason).toBe("refused");
      expect((unreadable as Error).message).toMatch(/failed: unreadable ack$/);
    } finally {
      responder.unsubscribe();
    }
  });

  it("stops its expiry timer once no ack is awaited, and runs one at most", async () => {
    // A timeout of its own gives its expiry timer a period of its own (a tenth: 123 ms), which
    // tells the publisher's intervals from nats.js's.
    const fresh = new EventPublisher(link, { timeoutMs: 1_230 });
    const started: NodeJS.Timeout[] = [];
    const stopped = new Set<unknown>();
    const realSetInterval = globalThis.setInterval;
    const realClearInterval = globalThis.clearInterval;
    const setSpy = vi.spyOn(globalThis, "setInterval").mockImplementation(((
      callback: () => void,
      ms?: number,
    ) => {
      const timer = realSetInterval(callback, ms);
      if (ms === 123) started.push(timer);
      return timer;
    }) as typeof setInterval);
    const clearSpy = vi.spyOn(globalThis, "clearInterval").mockImplementation(((
      timer?: NodeJS.Timeout,
    ) => {
      stopped.add(timer);
      realClearInterval(timer);
    }) as typeof clearInterval);
    try {
      await Promise.all(
        Array.from({ length: 3 }, (_, i) =>
          fresh.publish({ eventId: `timer-${i}`, message: message(`pub.timer.${i}`) }),
        ),
      );
      await fresh.publish({ eventId: "timer-last", message: message("pub.timer.last") });
      expect(started.length).toBeGreaterThanOrEqual(1);
      // The timer stops at its next tick that finds nothing awaited (a tenth of the timeout).
      const deadline = performance.now() + 10_000;
      while (started.some((timer) => !stopped.has(timer)) && performance.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      expect(started.filter((timer) => !stopped.has(timer))).toHaveLength(0);
      // Overlapping publishes share one timer; only a publish after it stopped starts another.
      expect(started.length).toBeLessThanOrEqual(2);
    } finally {
      setSpy.mockRestore();
      clearSpy.mockRestore();
    }
  });

  it("fails at once, as one to retry, a publish nats.js refuses for another reason", async () => {
    // An empty subject never leaves the client: nats.js throws before sending.
    const failure = await publisher
      .publish({ eventId: "no-subject", message: message("") })
      .catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(PublishError);
    expect((failure as PublishError).reason).toBe("refused");
    expect((failure as Error).message).toMatch(/^publish of event no-subject to {2}failed: /);
    expect(failed.at(-1)).toEqual(["refused", "direct"]);
  });

  it("fails at once as not-connected before its link ever connected", async () => {
    const unstarted = linkTo(nats.url, "never-started");
    const early = new EventPublisher(unstarted, { timeoutMs: TIMEOUT_MS });
    const failure = await early
      .publish({ eventId: "too-early", message: message("pub.early") })
      .catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(PublishError);
    expect((failure as PublishError).reason).toBe("not-connected");
    expect((failure as Error).message).toBe("not connected to NATS");
  });

  it("takes its acks on one subscription of its own inbox per connection", async () => {
    const connection = link.connection;
    if (!connection) throw new Error("the publisher's link is not connected");
    const fresh = new EventPublisher(link, { timeoutMs: TIMEOUT_MS });
    const subscribe = vi.spyOn(connection, "subscribe");
    const publish = vi.spyOn(connection, "publish");
    try {
      await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          fresh.publish({ eventId: `inbox-${i}`, message: message(`pub.inbox.${i}`) }),
        ),
      );
      await fresh.publish({ eventId: "inbox-last", message: message("pub.inbox.last") });
      expect(subscribe).toHaveBeenCalledTimes(1);
      const [subject] = subscribe.mock.calls[0] ?? [];
      // A subject of its own (`_INBOX.<unique>.*`), never a wildcard that other traffic matches.
      expect(subject).toMatch(/^_INBOX\.[A-Za-z0-9]+\.\*$/);
      const replies = publish.mock.calls.map(([, , options]) => options?.reply);
      expect(replies).toHaveLength(21);
      expect(new Set(replies).size).toBe(21);
      for (const reply of replies) expect(reply).toMatch(/^_INBOX\.[A-Za-z0-9]+\.\d+$/);
    } finally {
      subscribe.mockRestore();
      publish.mockRestore();
    }
  });

  it("fails publishes at once, naming why, when NATS forbids the ack subscription", async () => {
    const dir = await mkdtemp(join(tmpdir(), "gradecast-publisher-"));
    const config = join(dir, "nats.conf");
    await writeFile(
      config,
      [
        "jetstream: enabled",
        "authorization: {",
        '  users: [{ user: "grader-gw", password: "s3cret-pass",',
        '    permissions: { publish: ">", subscribe: { deny: ["_INBOX.>"] } } }]',
        "}",
        "",
      ].join("\n"),
    );
    const denied = await startNatsServer({ extraArgs: ["-c", config] });
    const deniedLink = linkTo(denied.url, "denied", {
      kind: "user-password",
      user: "grader-gw",
      password: "s3cret-pass",
    });
    try {
      await deniedLink.start();
      const deniedPublisher = new EventPublisher(deniedLink, { timeoutMs: 30_000 });
      const startedAt = performance.now();
      const failure = await deniedPublisher
        .publish({ eventId: "denied", message: message("pub.denied") })
        .catch((error: unknown) => error);
      expect(failure).toBeInstanceOf(PublishError);
      expect((failure as Error).message).toMatch(
        /publish of event denied to pub\.denied failed: the ack subscription failed: .*permission/i,
      );
      // Failed by the server's answer, not by the 30 s timeout.
      expect(performance.now() - startedAt).toBeLessThan(20_000);
    } finally {
      await deniedLink.close();
      await denied.cleanup();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("fails at once a message the server would refuse for its size", async () => {
    const dir = await mkdtemp(join(tmpdir(), "gradecast-publisher-"));
    const config = join(dir, "nats.conf");
    await writeFile(config, "max_payload: 2048\n");
    const small = await startNatsServer({ extraArgs: ["-c", config] });
    const smallLink = linkTo(small.url, "small");
    try {
      await smallLink.start();
      const smallPublisher = new EventPublisher(smallLink, { timeoutMs: TIMEOUT_MS });
      const startedAt = performance.now();
      const failure = await smallPublisher
        .publish({ eventId: "oversized", message: message("pub.big", 4_000) })
        .catch((error: unknown) => error);

      expect(failure).toBeInstanceOf(PublishError);
      expect((failure as Error).message).toMatch(
        /publish of event oversized to pub\.big failed: .*payload/i,
      );
      expect((failure as PublishError).reason).toBe("too-large");
      expect((failure as Error).name).toBe("PublishError");
      // nats.js's own error stays reachable for the logs.
      expect(((failure as Error).cause as Error).message).toMatch(/payload/i);
      expect(performance.now() - startedAt).toBeLessThan(TIMEOUT_MS);
    } finally {
      await smallLink.close();
      await small.cleanup();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("fails a publish whose ack does not come in time, and works again after", async () => {
    nats.pause();
    const startedAt = performance.now();
    const stalled = publisher
      .publish({ eventId: "stalled", message: message("pub.stalled") })
      .catch((error: unknown) => error);
    // A second publish half a timeout later gets its own full timeout, not the first one's.
    await new Promise((resolve) => setTimeout(resolve, TIMEOUT_MS / 2));
    const laterStartedAt = performance.now();
    const later = publisher
      .publish({ eventId: "stalled-later", message: message("pub.stalled") })
      .catch((error: unknown) => error);
    const failure = await stalled;
    const waitedMs = performance.now() - startedAt;
    const laterFailure = await later.finally(() => nats.resume());
    const laterWaitedMs = performance.now() - laterStartedAt;

    expect((failure as Error).message).toMatch(new RegExp(`no ack within ${TIMEOUT_MS} ms`));
    expect((failure as PublishError).reason).toBe("timeout");
    expect(waitedMs).toBeGreaterThanOrEqual(TIMEOUT_MS - 50);
    expect((laterFailure as PublishError).reason).toBe("timeout");
    expect(laterWaitedMs).toBeGreaterThanOrEqual(TIMEOUT_MS - 50);
    const after = await publisher.publish({ eventId: "after", message: message("pub.after") });
    expect(after.streamSequence).toBeGreaterThan(0);
  });

  it("fails the publishes in flight at once when the connection drops", async () => {
    nats.pause();
    const inFlight = Array.from({ length: 5 }, (_, i) =>
      publisher
        .publish({ eventId: `dropped-${i}`, message: message("pub.dropped") })
        .catch((error: unknown) => error),
    );
    const startedAt = performance.now();
    await nats.kill();
    const failures = await Promise.all(inFlight);
    const waitedMs = performance.now() - startedAt;

    for (const failure of failures) {
      expect(failure).toBeInstanceOf(PublishError);
      expect((failure as Error).message).toMatch(
        /disconnected from NATS before JetStream acknowledged/,
      );
      expect((failure as PublishError).reason).toBe("disconnected");
    }
    expect(waitedMs).toBeLessThan(TIMEOUT_MS);
    const whileDown = await publisher
      .publish({ eventId: "while-down", message: message("pub.down") }, "relay")
      .catch((error: unknown) => error);
    expect((whileDown as Error).message).toMatch(/not connected to NATS/);
    expect((whileDown as PublishError).reason).toBe("not-connected");
    expect(failed.at(-1)).toEqual(["not-connected", "relay"]);
  });
});
