import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { EventMessage } from "../../src/contract/index.js";
import { EventPublisher, NatsLink, PublishError } from "../../src/events/index.js";
import { readStream } from "../helpers/gradecast.js";
import { type NatsServerHandle, startNatsServer } from "../helpers/nats-server.js";

const STREAM = "PUBLISHER_TEST";
/** Small enough that a test of the timeout is quick, big enough for a loaded CI machine. */
const TIMEOUT_MS = 1_500;

let nats: NatsServerHandle;
let link: NatsLink;
const acknowledged: boolean[] = [];
let publisher: EventPublisher;

beforeAll(async () => {
  nats = await startNatsServer();
  link = new NatsLink(
    {
      servers: nats.url,
      name: "publisher-test",
      reconnectTimeWaitMs: 200,
      connectTimeoutMs: 2_000,
    },
    pino({ level: "silent" }),
  );
  const connection = await link.start();
  const jsm = await jetstreamManager(connection);
  await jsm.streams.add({
    name: STREAM,
    subjects: ["pub.>"],
    duplicate_window: 120_000_000_000,
    max_msg_size: 4_096,
  });
  publisher = new EventPublisher(link, {
    timeoutMs: TIMEOUT_MS,
    onAcknowledged: (_durationS, isDuplicate) => acknowledged.push(isDuplicate),
  });
});

afterAll(async () => {
  await link?.close();
  await nats?.cleanup();
});

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
  });

  it("passes on JetStream's refusal", async () => {
    const failure = await publisher
      .publish({ eventId: "too-big", message: message("pub.big", 8_000) })
      .catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(PublishError);
    expect((failure as Error).message).toMatch(
      /publish of event too-big to pub\.big failed: .*size/i,
    );
  });

  it("fails at once a message the server would refuse for its size", async () => {
    const dir = await mkdtemp(join(tmpdir(), "gradecast-publisher-"));
    const config = join(dir, "nats.conf");
    await writeFile(config, "max_payload: 2048\n");
    const small = await startNatsServer({ extraArgs: ["-c", config] });
    const smallLink = new NatsLink(
      { servers: small.url, name: "small", reconnectTimeWaitMs: 200, connectTimeoutMs: 2_000 },
      pino({ level: "silent" }),
    );
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
    const failure = await publisher
      .publish({ eventId: "stalled", message: message("pub.stalled") })
      .catch((error: unknown) => error)
      .finally(() => nats.resume());
    const waitedMs = performance.now() - startedAt;

    expect((failure as Error).message).toMatch(new RegExp(`no ack within ${TIMEOUT_MS} ms`));
    expect(waitedMs).toBeGreaterThanOrEqual(TIMEOUT_MS - 50);
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
      expect((failure as Error).message).toMatch(/disconnected from NATS|no ack within/);
    }
    expect(waitedMs).toBeLessThan(TIMEOUT_MS);
    await expect(
      publisher.publish({ eventId: "while-down", message: message("pub.down") }),
    ).rejects.toThrow(/not connected to NATS/);
  });
});
