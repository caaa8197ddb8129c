import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { type Logger, pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { authenticatorFor, type NatsAuth } from "../../src/events/index.js";
import { sampleScoreData } from "../helpers/contract-fixtures.js";
import {
  pollUntil,
  sqlitePath,
  startGradecast,
  storeCounts,
  streamReadyWithin,
  type TestGradecast,
} from "../helpers/gradecast.js";
import { writeOperatorModeFiles } from "../helpers/nats-jwt.js";
import { type NatsServerHandle, startNatsServer } from "../helpers/nats-server.js";

const STREAM_READY_DEADLINE_MS = 60_000;

/** A nats-server that requires one auth mode, with credentials it accepts and some it refuses. */
interface AuthModeServer {
  nats: NatsServerHandle;
  rightAuth: NatsAuth;
  wrongAuth: NatsAuth;
  /** Stops the server and removes whatever its mode wrote (configs, `.creds` files). */
  cleanup(): Promise<void>;
}

interface AuthMode {
  /** How the mode reads in test names. */
  name: string;
  /** Suffix that keeps each mode's stream names apart in failure output. */
  streamSuffix: string;
  /** `onOutputLine` goes to {@link startNatsServer}, for a {@link RefusedLoginCounter}. */
  startServer(onOutputLine: (line: string) => void): Promise<AuthModeServer>;
}

const AUTH_MODES: readonly AuthMode[] = [
  {
    name: "user and password",
    streamSuffix: "USER",
    startServer: async (onOutputLine) => {
      const nats = await startNatsServer({
        extraArgs: ["--user", "gradecast", "--pass", "s3cret-for-tests"],
        onOutputLine,
      });
      return {
        nats,
        rightAuth: { kind: "user-password", user: "gradecast", password: "s3cret-for-tests" },
        wrongAuth: { kind: "user-password", user: "gradecast", password: "wrong" },
        cleanup: () => nats.cleanup(),
      };
    },
  },
  {
    name: "token",
    streamSuffix: "TOKEN",
    startServer: async (onOutputLine) => {
      const nats = await startNatsServer({
        extraArgs: ["--auth", "token-for-tests"],
        onOutputLine,
      });
      return {
        nats,
        rightAuth: { kind: "token", token: "token-for-tests" },
        wrongAuth: { kind: "token", token: "wrong-token" },
        cleanup: () => nats.cleanup(),
      };
    },
  },
  {
    // Operator mode: the server trusts an operator JWT and knows accounts only from its resolver.
    name: ".creds file",
    streamSuffix: "CREDS",
    startServer: async (onOutputLine) => {
      const files = await writeOperatorModeFiles();
      try {
        const nats = await startNatsServer({
          extraArgs: ["-c", files.serverConfigPath],
          onOutputLine,
        });
        return {
          nats,
          rightAuth: { kind: "creds", creds: await readFile(files.userCredsPath) },
          // A well-formed, correctly signed user whose account this operator never issued.
          wrongAuth: { kind: "creds", creds: await readFile(files.strangerCredsPath) },
          cleanup: async () => {
            await nats.cleanup();
            await files.cleanup();
          },
        };
      } catch (error) {
        await files.cleanup();
        throw error;
      }
    },
  },
];

const started: TestGradecast[] = [];

afterAll(async () => {
  for (const gradecast of started) await gradecast.cleanup();
});

async function startWithAuth(
  nats: NatsServerHandle,
  auth: NatsAuth,
  streamName: string,
  logger?: Logger,
): Promise<TestGradecast> {
  const gradecast = await startGradecast(nats.url, {
    ...(logger ? { logger } : {}),
    nats: { servers: nats.url, reconnectTimeWaitMs: 200, connectTimeoutMs: 1_000, auth },
    stream: {
      name: streamName,
      deadLetterName: `${streamName}_DLQ`,
      // Streams on one server may not share subjects: each test gets its own.
      subjectPrefix: streamName.toLowerCase(),
      duplicateWindowMs: 120_000,
      maxAgeMs: 0,
      maxBytes: -1,
      replicas: 1,
    },
  });
  started.push(gradecast);
  return gradecast;
}

async function streamMessageCount(
  nats: NatsServerHandle,
  auth: NatsAuth,
  streamName: string,
): Promise<number> {
  const nc = await connect({ servers: nats.url, authenticator: authenticatorFor(auth) });
  try {
    const info = await (await jetstreamManager(nc)).streams.info(streamName);
    return info.state.messages;
  } finally {
    await nc.close();
  }
}

/**
 * Counts the logins a nats-server refuses, from its log (one line each), over all its runs:
 * unlike `output()`, which keeps only the last lines, it never loses one.
 */
class RefusedLoginCounter {
  #count = 0;
  readonly onOutputLine = (line: string): void => {
    if (line.includes("authentication error")) this.#count += 1;
  };
  get count(): number {
    return this.#count;
  }

  /**
   * Waits until at least `atLeast` more logins were refused since the count read `before`, and
   * fails the test if that does not happen within `pollUntil`'s deadline.
   */
  async expectRefusedSince(before: number, atLeast: number): Promise<void> {
    const refused = await pollUntil(
      async () => this.#count - before,
      (count) => count >= atLeast,
    );
    expect(refused).toBeGreaterThanOrEqual(atLeast);
  }
}

describe.each(AUTH_MODES)("NATS auth by $name", (mode) => {
  let server: AuthModeServer;
  const refusedLogins = new RefusedLoginCounter();

  beforeAll(async () => {
    server = await mode.startServer(refusedLogins.onOutputLine);
  });

  afterAll(async () => {
    await server?.cleanup();
  });

  it("with the right credentials, sets up the stream and publishes the score", async () => {
    const streamName = `GRADECAST_AUTH_${mode.streamSuffix}_OK`;
    const gradecast = await startWithAuth(server.nats, server.rightAuth, streamName);
    expect(await streamReadyWithin(gradecast, STREAM_READY_DEADLINE_MS)).toBe("ready");

    const response = await gradecast.client.submitScore(sampleScoreData({ submissionId: 9101n }));
    expect(response).toMatchObject({ replayed: false, published: true });
    expect(await streamMessageCount(server.nats, server.rightAuth, streamName)).toBe(1);
    // The published mark reaches the store shortly after the answer.
    const counts = await pollUntil(
      async () => storeCounts(sqlitePath(gradecast.config)),
      (now) => now.pending === 0,
    );
    expect(counts).toMatchObject({ scores: 1, pending: 0 });
  });

  it("with wrong credentials, never gets ready and keeps the accepted score in the outbox", async () => {
    const streamName = `GRADECAST_AUTH_${mode.streamSuffix}_BAD`;
    const refusedBefore = refusedLogins.count;
    const gradecast = await startWithAuth(server.nats, server.wrongAuth, streamName);
    // Two refused logins mean the link has tried, and tried again.
    await refusedLogins.expectRefusedSince(refusedBefore, 2);
    expect(await streamReadyWithin(gradecast, 0)).toBe("timed-out");
    expect(gradecast.server.health.isServing).toBe(false);

    const response = await gradecast.client.submitScore(sampleScoreData({ submissionId: 9201n }));
    expect(response).toMatchObject({ replayed: false, published: false });
    expect(storeCounts(sqlitePath(gradecast.config))).toMatchObject({ scores: 1, pending: 1 });
    await expect(streamMessageCount(server.nats, server.rightAuth, streamName)).rejects.toThrow(
      /stream not found/,
    );
  });
});

/** A nats-server config that accepts exactly one token; a restart picks up a rewritten one. */
function tokenServerConfig(token: string): string {
  return `authorization {\n  token: ${JSON.stringify(token)}\n}\n`;
}

describe("NATS refusing gradecast's token for a while", () => {
  const acceptedToken = "token-before-rotation";
  const rotatedToken = "token-after-rotation";
  let configDir: string;
  let configPath: string;
  let nats: NatsServerHandle;
  const refusedLogins = new RefusedLoginCounter();

  beforeAll(async () => {
    configDir = await mkdtemp(join(tmpdir(), "gradecast-nats-conf-"));
    configPath = join(configDir, "nats-server.conf");
    await writeFile(configPath, tokenServerConfig(acceptedToken));
    nats = await startNatsServer({
      extraArgs: ["-c", configPath],
      onOutputLine: refusedLogins.onOutputLine,
    });
  });

  afterAll(async () => {
    await nats?.cleanup();
    if (configDir) await rm(configDir, { recursive: true, force: true });
  });

  /** Restarts nats-server so that from now on it accepts `token` and refuses every other. */
  async function acceptOnly(token: string): Promise<void> {
    await writeFile(configPath, tokenServerConfig(token));
    await nats.restart();
  }

  it("refused from the start, keeps trying and gets ready once NATS accepts the token", async () => {
    await acceptOnly(acceptedToken);
    const streamName = "GRADECAST_AUTH_LATE";
    const refusedBefore = refusedLogins.count;
    const gradecast = await startWithAuth(nats, { kind: "token", token: rotatedToken }, streamName);
    await refusedLogins.expectRefusedSince(refusedBefore, 2);
    const response = await gradecast.client.submitScore(sampleScoreData({ submissionId: 9301n }));
    expect(response).toMatchObject({ replayed: false, published: false });
    expect(await streamReadyWithin(gradecast, 0)).toBe("timed-out");

    await acceptOnly(rotatedToken);

    expect(await streamReadyWithin(gradecast, STREAM_READY_DEADLINE_MS)).toBe("ready");
    // The relay publishes the score the outbox held.
    const counts = await pollUntil(
      async () => storeCounts(sqlitePath(gradecast.config)),
      (now) => now.pending === 0,
    );
    expect(counts).toMatchObject({ scores: 1, pending: 0 });
    const auth: NatsAuth = { kind: "token", token: rotatedToken };
    expect(await streamMessageCount(nats, auth, streamName)).toBe(1);
    expect(gradecast.server.health.isServing).toBe(true);
    // Once the token rotates back it would be refused again, and its refusals counted next.
    await gradecast.stop();
  });

  it("refused on reconnect, does not give up after two refusals and publishes once accepted again", async () => {
    await acceptOnly(acceptedToken);
    const streamName = "GRADECAST_AUTH_REVOKED";
    const auth: NatsAuth = { kind: "token", token: acceptedToken };
    const logLines: string[] = [];
    const logger = pino({ level: "info" }, { write: (line: string) => logLines.push(line) });
    const gradecast = await startWithAuth(nats, auth, streamName, logger);
    expect(await streamReadyWithin(gradecast, STREAM_READY_DEADLINE_MS)).toBe("ready");
    const first = await gradecast.client.submitScore(sampleScoreData({ submissionId: 9401n }));
    expect(first).toMatchObject({ published: true });

    const refusedBefore = refusedLogins.count;
    await acceptOnly(rotatedToken);
    // nats.js closes a connection for good after two refused reconnects unless told not to;
    // a third refusal shows the link is still trying.
    await refusedLogins.expectRefusedSince(refusedBefore, 3);
    const held = await gradecast.client.submitScore(sampleScoreData({ submissionId: 9402n }));
    expect(held).toMatchObject({ replayed: false, published: false });
    expect(storeCounts(sqlitePath(gradecast.config))).toMatchObject({ scores: 2, pending: 1 });

    await acceptOnly(acceptedToken);

    const counts = await pollUntil(
      async () => storeCounts(sqlitePath(gradecast.config)),
      (now) => now.pending === 0,
    );
    expect(counts).toMatchObject({ scores: 2, pending: 0 });
    expect(await streamMessageCount(nats, auth, streamName)).toBe(2);
    // One outage, however many refused attempts: one warning, one stream set-up on recovery.
    const messages = logLines.map((line) => (JSON.parse(line) as { msg: string }).msg);
    expect(messages.filter((msg) => msg.startsWith("disconnected from NATS"))).toHaveLength(1);
    expect(messages.filter((msg) => msg === "stream ready")).toHaveLength(2);
  });
});
