import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ChannelCredentials } from "@grpc/grpc-js";
import { type JsMsg, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import Database from "better-sqlite3";
import { type Logger, pino } from "pino";
import { createScoreClient, type ScoreClient } from "../../src/client/index.js";
import { GradecastServer, type ServeConfig } from "../../src/server/index.js";

/** Test logs stay quiet unless GRADECAST_TEST_LOG names a level. */
export const testLogger = () => pino({ level: process.env.GRADECAST_TEST_LOG ?? "silent" });

/**
 * A ServeConfig for tests: port 0 (gRPC and metrics), a store in `dataDir`, fast relay retries,
 * no grader authentication (override `auth` to test it).
 */
export function testServeConfig(
  natsUrl: string,
  dataDir: string,
  overrides: Partial<ServeConfig> = {},
): ServeConfig {
  return {
    listen: "127.0.0.1:0",
    auth: { kind: "none" },
    maxMessageBytes: 1024 * 1024,
    // `serve`'s defaults.
    transport: {
      maxConcurrentStreams: 100,
      maxSessionMemoryMb: 10,
      requestArrivalTimeoutMs: 10_000,
      maxConnectionAgeMs: 30 * 60_000,
      maxConnectionAgeGraceMs: 30_000,
      maxConnectionIdleMs: 5 * 60_000,
      keepaliveTimeMs: 60_000,
      keepaliveTimeoutMs: 20_000,
    },
    store: { kind: "sqlite", path: join(dataDir, "gradecast.sqlite") },
    nats: { servers: natsUrl, reconnectTimeWaitMs: 200, connectTimeoutMs: 1_000 },
    stream: {
      name: "GRADECAST_TEST",
      deadLetterName: "GRADECAST_TEST_DLQ",
      subjectPrefix: "gradecast",
      duplicateWindowMs: 120_000,
      maxAgeMs: 0,
      maxBytes: -1,
      replicas: 1,
    },
    events: { source: "openedx/gradecast/test", sourcehost: "test-host", sourcelib: "0.1.0" },
    publish: { timeoutMs: 2_000, waitMs: 1_000 },
    commit: { maxBatch: 256, maxBatchesInFlight: 2 },
    relay: {
      batchSize: 128,
      leaseMs: 3_000,
      idlePollMs: 200,
      initialBackoffMs: 50,
      maxBackoffMs: 500,
    },
    reflection: true,
    metricsListen: "127.0.0.1:0",
    shutdownTimeoutMs: 5_000,
    ...overrides,
  };
}

/** An in-process gradecast with its own temp store, a client, and a way to stop both. */
export interface TestGradecast {
  server: GradecastServer;
  config: ServeConfig;
  address: string;
  client: ScoreClient;
  /** Stops client and server; keeps the data dir (for restarts). */
  stop(): Promise<void>;
  /** Stops, then removes the data dir. */
  cleanup(): Promise<void>;
}

/**
 * Starts gradecast against `natsUrl` (without waiting for its stream: await `server.streamReady`).
 * `clientCredentials` are the test client's, e.g. `credentials.createSsl(ca)` for a `tls` config;
 * `logger` replaces the quiet test logger, e.g. to read what the server logs.
 */
export async function startGradecast(
  natsUrl: string,
  overrides: Partial<ServeConfig> & {
    dataDir?: string;
    clientCredentials?: ChannelCredentials;
    logger?: Logger;
  } = {},
): Promise<TestGradecast> {
  const { dataDir: givenDir, clientCredentials, logger, ...configOverrides } = overrides;
  const dataDir = givenDir ?? (await mkdtemp(join(tmpdir(), "gradecast-data-")));
  const config = testServeConfig(natsUrl, dataDir, configOverrides);
  const server = new GradecastServer(config, logger ?? testLogger());
  await server.start();
  const address = `127.0.0.1:${server.port}`;
  const client = createScoreClient(address, { credentials: clientCredentials });
  let isStopped = false;
  const stop = async () => {
    if (isStopped) return;
    isStopped = true;
    client.close();
    await server.stop();
  };
  return {
    server,
    config,
    address,
    client,
    stop,
    cleanup: async () => {
      await stop();
      if (!givenDir) await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** Whether the server's stream got set up within `timeoutMs` (0: whether it already is). */
export function streamReadyWithin(
  gradecast: TestGradecast,
  timeoutMs: number,
): Promise<"ready" | "timed-out"> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<"timed-out">((resolve) => {
    timer = setTimeout(() => resolve("timed-out"), timeoutMs);
  });
  return Promise.race([gradecast.server.streamReady.then(() => "ready" as const), timeout]).finally(
    () => clearTimeout(timer),
  );
}

/** One message of a stream, as stored. */
export interface StreamMessage {
  seq: number;
  subject: string;
  headers: Record<string, string>;
  data: Uint8Array;
}

/** Every message a stream holds, in stream order (an empty list if the stream is missing). */
export async function readStream(natsUrl: string, streamName: string): Promise<StreamMessage[]> {
  const nc = await connect({ servers: natsUrl });
  try {
    const jsm = await jetstreamManager(nc);
    const info = await jsm.streams.info(streamName).catch(() => undefined);
    const count = info?.state.messages ?? 0;
    if (count === 0) return [];
    const consumer = await jetstream(nc).consumers.get(streamName);
    const messages: StreamMessage[] = [];
    const batch = await consumer.fetch({ max_messages: count, expires: 5_000 });
    for await (const msg of batch) {
      messages.push(toStreamMessage(msg));
      if (messages.length === count) break;
    }
    return messages;
  } finally {
    await nc.close();
  }
}

function toStreamMessage(msg: JsMsg): StreamMessage {
  const headers: Record<string, string> = {};
  for (const [name, values] of msg.headers ?? []) headers[name] = values[0] ?? "";
  return { seq: msg.seq, subject: msg.subject, headers, data: msg.data };
}

/** Polls `read` until `isDone` holds or the deadline passes; returns the last value read. */
export async function pollUntil<T>(
  read: () => Promise<T>,
  isDone: (value: T) => boolean,
  timeoutMs = 60_000,
  intervalMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (isDone(value) || Date.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** The SQLite file of a config (the tests' default store). */
export function sqlitePath(config: ServeConfig): string {
  if (config.store.kind !== "sqlite") throw new Error("this test needs the SQLite store");
  return config.store.path;
}

/** Counts of what the SQLite store holds, read through a separate read-only connection. */
export function storeCounts(storePath: string): {
  scores: number;
  pending: number;
  outbox: number;
} {
  const db = new Database(storePath, { readonly: true, fileMustExist: true });
  try {
    const scores = (db.prepare("SELECT count(*) AS n FROM scores").get() as { n: number }).n;
    const outbox = (db.prepare("SELECT count(*) AS n FROM outbox").get() as { n: number }).n;
    const pending = (
      db.prepare("SELECT count(*) AS n FROM outbox WHERE published_at_ms IS NULL").get() as {
        n: number;
      }
    ).n;
    return { scores, pending, outbox };
  } finally {
    db.close();
  }
}

/** Event ids the SQLite store holds. */
export function storedEventIds(storePath: string): string[] {
  const db = new Database(storePath, { readonly: true, fileMustExist: true });
  try {
    return (db.prepare("SELECT event_id FROM scores").all() as { event_id: string }[]).map(
      (row) => row.event_id,
    );
  } finally {
    db.close();
  }
}

/** How many stream messages carry each `Nats-Msg-Id`; a count above 1 is a duplicate. */
export function messagesPerEventId(messages: readonly StreamMessage[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const message of messages) {
    const eventId = message.headers["Nats-Msg-Id"] ?? "";
    counts.set(eventId, (counts.get(eventId) ?? 0) + 1);
  }
  return counts;
}

/** Event ids that appear in more than one stream message. */
export function duplicatedEventIds(messages: readonly StreamMessage[]): string[] {
  return [...messagesPerEventId(messages)]
    .filter(([, count]) => count > 1)
    .map(([eventId]) => eventId);
}
