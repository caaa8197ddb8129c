import { mkdtemp, rm } from "node:fs/promises";
import http2 from "node:http2";
import { connect as connectTcp, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { status } from "@grpc/grpc-js";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { addGrader } from "../../src/cli/credentials-command.js";
import { createScoreClient } from "../../src/client/index.js";
import type { ServeConfig } from "../../src/server/index.js";
import { sampleScoreData } from "../helpers/contract-fixtures.js";
import {
  pollUntil,
  startGradecast,
  type TestGradecast,
  testServeConfig,
} from "../helpers/gradecast.js";
import { type SlowSenderFlood, startSlowSenderFlood } from "../helpers/http2-flood.js";
import { type NatsServerHandle, startNatsServer } from "../helpers/nats-server.js";

/** Outer bound of every wait here: far above the limits under test (well under a second). */
const WAIT_MS = 15_000;
const ARRIVAL_TIMEOUT_MS = 400;

let nats: NatsServerHandle;
let dir: string;
let credentialsPath: string;
let token: string;
const started: TestGradecast[] = [];
const floods: SlowSenderFlood[] = [];

beforeAll(async () => {
  nats = await startNatsServer();
  dir = await mkdtemp(join(tmpdir(), "gradecast-transport-"));
  credentialsPath = join(dir, "credentials.json");
  token = await addGrader({
    credentialsPath,
    graderName: "python-grader-1",
    queues: ["python-grader"],
    isReplacing: false,
  });
}, 60_000);

afterAll(async () => {
  for (const flood of floods) flood.close();
  for (const gradecast of started) await gradecast.cleanup();
  await nats?.cleanup();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** A gradecast with grader tokens, these transport limits over the defaults, and its log lines. */
async function startWithLimits(
  limits: Partial<ServeConfig["transport"]>,
): Promise<{ gradecast: TestGradecast; logged: string[] }> {
  const logged: string[] = [];
  const base = testServeConfig(nats.url, dir).transport;
  const gradecast = await startGradecast(nats.url, {
    auth: { kind: "tokens", credentialsPath },
    transport: { ...base, ...limits },
    logger: pino({ level: "info" }, { write: (line: string) => logged.push(line) }),
  });
  started.push(gradecast);
  return { gradecast, logged };
}

function flood(...args: Parameters<typeof startSlowSenderFlood>): SlowSenderFlood {
  const started = startSlowSenderFlood(...args);
  floods.push(started);
  return started;
}

/** The log lines of calls answered `code`, parsed. */
function callLines(logged: readonly string[], code: string): Record<string, unknown>[] {
  return logged
    .map((line) => JSON.parse(line) as Record<string, unknown>)
    .filter((line) => line.code === code);
}

/** Resolves with how long `emitter` took to emit `event`; rejects after `timeoutMs`. */
function timeUntil(
  emitter: NodeJS.EventEmitter,
  event: string,
  timeoutMs = WAIT_MS,
): Promise<number> {
  const startedAt = performance.now();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`no ${event} within ${timeoutMs} ms`)),
      timeoutMs,
    );
    emitter.once(event, () => {
      clearTimeout(timer);
      resolve(performance.now() - startedAt);
    });
  });
}

describe("per-connection limits", () => {
  it("announces --max-concurrent-streams in the server's SETTINGS", async () => {
    const { gradecast } = await startWithLimits({ maxConcurrentStreams: 7 });
    const session = http2.connect(`http://${gradecast.address}`);
    try {
      const settings = await new Promise<http2.Settings>((resolve) =>
        session.once("remoteSettings", resolve),
      );
      expect(settings.maxConcurrentStreams).toBe(7);
    } finally {
      session.destroy();
    }
  });

  it("asks a connection without calls to go away after --max-connection-idle", async () => {
    const { gradecast } = await startWithLimits({ maxConnectionIdleMs: 300 });
    const session = http2.connect(`http://${gradecast.address}`);
    session.on("error", () => {});
    try {
      const idleMs = await timeUntil(session, "goaway");
      expect(idleMs).toBeGreaterThanOrEqual(250);
    } finally {
      session.destroy();
    }
  });

  it("ends a connection after --max-connection-age plus its grace, whatever its calls still hold", async () => {
    const { gradecast } = await startWithLimits({
      maxConnectionAgeMs: 500,
      maxConnectionAgeGraceMs: 300,
    });
    // One call that never finishes arriving, held open past the age (the arrival timeout is 10 s).
    const held = flood({
      address: gradecast.address,
      streams: 1,
      token,
      declaredBytes: 10_000,
      sentBytes: 1_000,
    });
    const isEnded = await pollUntil(
      async () => held.isConnectionEnded() && held.outcomes().waiting === 0,
      (ended) => ended,
      WAIT_MS,
      20,
    );
    expect(isEnded).toBe(true);
  });

  it("closes a connection whose peer leaves a keepalive PING unanswered, and keeps one that answers", async () => {
    const { gradecast } = await startWithLimits({ keepaliveTimeMs: 200, keepaliveTimeoutMs: 200 });
    const silent = silentHttp2Peer(gradecast.server.port);
    const answering = http2.connect(`http://${gradecast.address}`);
    answering.on("error", () => {});
    let pingsAnswered = 0;
    answering.on("ping", () => {
      pingsAnswered += 1;
    });
    try {
      await silent.closed;
      expect(silent.frameTypes).toContain(PING_FRAME);
      // Node answers every PING itself: three keepalive rounds later, that connection is still up.
      await pollUntil(
        async () => pingsAnswered,
        (count) => count >= 3,
        WAIT_MS,
        20,
      );
      expect(pingsAnswered).toBeGreaterThanOrEqual(3);
      expect(answering.closed || answering.destroyed).toBe(false);
    } finally {
      silent.socket.destroy();
      answering.destroy();
    }
  });
});

describe("call admission", () => {
  it.each<[string, Record<string, string>]>([
    ["no authorization metadata", {}],
    ["a malformed authorization", { authorization: "Basic abc" }],
    ["a gradecast_ token no grader holds", { authorization: `Bearer gradecast_${"A".repeat(43)}` }],
    ["a token without the prefix and no legacy graders", { authorization: "Bearer legacyform" }],
  ])(
    "refuses a call with %s at its headers, before any of its message arrives",
    async (_, headers) => {
      const { gradecast, logged } = await startWithLimits({});
      const session = http2.connect(`http://${gradecast.address}`);
      session.on("error", () => {});
      try {
        // Headers only: a server that waited for the message would never answer.
        const stream = session.request(
          {
            ":method": "POST",
            ":path": "/gradecast.v1.ScoreService/SubmitScore",
            "content-type": "application/grpc",
            te: "trailers",
            ...headers,
          },
          { endStream: false },
        );
        stream.on("error", () => {});
        const trailers = await new Promise<http2.IncomingHttpHeaders>((resolve, reject) => {
          const timer = setTimeout(
            () => reject(new Error(`no answer within ${WAIT_MS} ms`)),
            WAIT_MS,
          );
          const answer = (received: http2.IncomingHttpHeaders) => {
            clearTimeout(timer);
            resolve(received);
          };
          stream.on("trailers", answer);
          stream.on("response", (response) => {
            if (response["grpc-status"] !== undefined) answer(response);
          });
          stream.resume();
        });
        expect(Number(trailers["grpc-status"])).toBe(status.UNAUTHENTICATED);
        expect(callLines(logged, "UNAUTHENTICATED")).toEqual([
          expect.objectContaining({ method: "SubmitScore", msg: "call refused" }),
        ]);
      } finally {
        session.destroy();
      }
    },
  );

  it.each<[string, { declaredBytes: number; sentBytes: number }]>([
    ["most of its message", { declaredBytes: 10_000, sentBytes: 9_000 }],
    ["its whole message but no end of stream", { declaredBytes: 10_000, sentBytes: 10_000 }],
  ])(
    "cuts an authenticated call that sent %s with DEADLINE_EXCEEDED after --request-arrival-timeout, with one log line",
    async (_, sizes) => {
      const { gradecast, logged } = await startWithLimits({
        requestArrivalTimeoutMs: ARRIVAL_TIMEOUT_MS,
      });
      const startedAt = performance.now();
      const slow = flood({ address: gradecast.address, streams: 1, token, ...sizes });
      const outcomes = await pollUntil(
        async () => slow.outcomes(),
        (seen) => seen.waiting === 0,
        WAIT_MS,
        20,
      );
      expect(performance.now() - startedAt).toBeGreaterThanOrEqual(ARRIVAL_TIMEOUT_MS);
      expect(outcomes.answered).toEqual({ DEADLINE_EXCEEDED: 1 });
      expect(callLines(logged, "DEADLINE_EXCEEDED")).toEqual([
        expect.objectContaining({
          level: 40,
          method: "SubmitScore",
          grader: "python-grader-1",
          reason: expect.stringContaining(`did not arrive whole within ${ARRIVAL_TIMEOUT_MS} ms`),
        }),
      ]);
    },
  );

  it("lets a grader's whole call through, and its timer never cuts it later", async () => {
    const { gradecast, logged } = await startWithLimits({
      requestArrivalTimeoutMs: ARRIVAL_TIMEOUT_MS,
    });
    const client = createScoreClient(gradecast.address, { token });
    try {
      await gradecast.server.streamReady;
      const response = await client.submitScore(sampleScoreData({ submissionId: 8101n }));
      expect(response.replayed).toBe(false);
      // A slow call started after it is cut after it: had the whole call's timer been left
      // running, its line would be there first.
      const slow = flood({
        address: gradecast.address,
        streams: 1,
        token,
        declaredBytes: 10_000,
        sentBytes: 10,
      });
      await pollUntil(
        async () => slow.outcomes().waiting,
        (waiting) => waiting === 0,
        WAIT_MS,
        20,
      );
      expect(callLines(logged, "DEADLINE_EXCEEDED")).toHaveLength(1);
      expect(callLines(logged, "OK")).toEqual([]);
    } finally {
      client.close();
    }
  });
});

const PING_FRAME = 6;
const CLIENT_PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
/** An empty SETTINGS frame: length 0, type 4, no flags, stream 0. */
const EMPTY_SETTINGS = Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]);

/**
 * A TCP peer that opens an HTTP/2 connection (preface and an empty SETTINGS) and then answers
 * nothing, as a peer that is gone does: it only records the type of each frame the server sends.
 */
function silentHttp2Peer(port: number): {
  socket: Socket;
  frameTypes: number[];
  closed: Promise<void>;
} {
  const socket = connectTcp(port, "127.0.0.1");
  const frameTypes: number[] = [];
  let pending = Buffer.alloc(0);
  socket.on("connect", () => socket.write(Buffer.concat([CLIENT_PREFACE, EMPTY_SETTINGS])));
  socket.on("data", (chunk: Buffer) => {
    pending = Buffer.concat([pending, chunk]);
    while (pending.length >= 9) {
      const length = pending.readUIntBE(0, 3);
      if (pending.length < 9 + length) break;
      frameTypes.push(pending[3] ?? -1);
      pending = pending.subarray(9 + length);
    }
  });
  socket.on("error", () => {});
  const closed = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`still open after ${WAIT_MS} ms`)), WAIT_MS);
    socket.once("close", () => {
      clearTimeout(timer);
      resolve();
    });
  });
  return { socket, frameTypes, closed };
}
