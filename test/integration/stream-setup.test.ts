import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureStream, NatsLink, type StreamSettings } from "../../src/events/index.js";
import {
  pollUntil,
  startGradecast,
  streamReadyWithin,
  testServeConfig,
} from "../helpers/gradecast.js";
import { type NatsServerHandle, startNatsServer } from "../helpers/nats-server.js";

/** Generous for a busy 2-core machine; the set-up retries every few seconds at most. */
const READY_BOUND_MS = 20_000;

describe("ensureStream", () => {
  let nats: NatsServerHandle;

  beforeAll(async () => {
    nats = await startNatsServer();
  });

  afterAll(async () => {
    await nats?.cleanup();
  });

  it("creates both streams, then only reads them, and updates just what differs", async () => {
    const settings: StreamSettings = {
      ...testServeConfig(nats.url, "/unused").stream,
      name: "ENSURE_TEST",
      deadLetterName: "ENSURE_TEST_DLQ",
      subjectPrefix: "ensure",
    };
    const connection = await connect({ servers: nats.url });
    try {
      const created = await ensureStream(connection, settings);
      expect(created.changes.map(({ stream, action }) => ({ stream, action }))).toEqual([
        { stream: "ENSURE_TEST_DLQ", action: "created" },
        { stream: "ENSURE_TEST", action: "created" },
      ]);
      expect(created.config.subjects).toEqual(["ensure.scores.v1.*"]);

      // What a reconnect does: the settings are in place, so nothing needs the meta leader.
      const again = await ensureStream(connection, settings);
      expect(again.changes).toEqual([]);
      expect(again.config.num_replicas).toBe(1);

      const updated = await ensureStream(connection, { ...settings, maxAgeMs: 3_600_000 });
      expect(updated.changes).toEqual([
        { stream: "ENSURE_TEST_DLQ", action: "updated", fields: ["max_age"] },
        { stream: "ENSURE_TEST", action: "updated", fields: ["max_age"] },
      ]);
      expect(updated.config.max_age).toBe(3_600_000 * 1_000_000);
    } finally {
      await connection.close();
    }
  });
});

describe("stream set-up while connected", () => {
  let nats: NatsServerHandle;

  beforeAll(async () => {
    nats = await startNatsServer();
  });

  afterAll(async () => {
    await nats?.cleanup();
  });

  it("keeps retrying a failed set-up and turns SERVING once it succeeds, without a reconnect", async () => {
    // Another stream holds gradecast's subjects: creating gradecast's stream fails until it goes.
    const connection = await connect({ servers: nats.url });
    const jsm = await jetstreamManager(connection);
    await jsm.streams.add({ name: "SQUATTER", subjects: ["gradecast.scores.v1.*"] });
    const logLines: string[] = [];
    const gradecast = await startGradecast(nats.url, {
      logger: pino({ level: "warn" }, { write: (line: string) => logLines.push(line) }),
    });
    try {
      const hasFailed = () =>
        logLines.some((line) => line.includes('"msg":"cannot set up the stream'));
      expect(await pollUntil(async () => hasFailed(), Boolean, READY_BOUND_MS)).toBe(true);
      expect(gradecast.server.health.isServing).toBe(false);

      await jsm.streams.delete("SQUATTER");

      expect(await streamReadyWithin(gradecast, READY_BOUND_MS)).toBe("ready");
      expect(gradecast.server.health.isServing).toBe(true);
      const info = await jsm.streams.info(gradecast.config.stream.name);
      expect(info.config.subjects).toEqual(["gradecast.scores.v1.*"]);
    } finally {
      await gradecast.cleanup();
      await connection.close();
    }
  });
});

describe("NatsLink.maxPayloadBytes", () => {
  let configDir: string;
  let configPath: string;
  let nats: NatsServerHandle;

  const writeMaxPayload = (bytes: number) =>
    writeFile(configPath, `max_payload: ${bytes}\n`, "utf8");

  beforeAll(async () => {
    configDir = await mkdtemp(join(tmpdir(), "gradecast-nats-conf-"));
    configPath = join(configDir, "nats-server.conf");
    await writeMaxPayload(65_536);
    nats = await startNatsServer({ extraArgs: ["-c", configPath] });
  });

  afterAll(async () => {
    await nats?.cleanup();
    if (configDir) await rm(configDir, { recursive: true, force: true });
  });

  it("is the connected server's max_payload, kept while reconnecting and read again after", async () => {
    const link = new NatsLink(
      {
        servers: nats.url,
        name: "max-payload-test",
        reconnectTimeWaitMs: 100,
        connectTimeoutMs: 2_000,
      },
      pino({ level: "silent" }),
    );
    expect(link.maxPayloadBytes).toBeUndefined();
    try {
      await link.start();
      expect(link.maxPayloadBytes).toBe(65_536);

      const seenOnConnect: (number | undefined)[] = [];
      link.onConnected(() => seenOnConnect.push(link.maxPayloadBytes));
      await nats.stop();
      await pollUntil(
        async () => link.isConnected,
        (isConnected) => !isConnected,
      );
      expect(link.maxPayloadBytes).toBe(65_536);

      await writeMaxPayload(131_072);
      await nats.restart();
      await pollUntil(async () => link.isConnected, Boolean, READY_BOUND_MS);
      expect(link.maxPayloadBytes).toBe(131_072);
      // Listeners told of the reconnect already see the new server's limit.
      expect(seenOnConnect).toEqual([131_072]);
    } finally {
      await link.close();
    }
  });
});
