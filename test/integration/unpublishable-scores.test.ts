import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { status } from "@grpc/grpc-js";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ScoreCallError } from "../../src/client/index.js";
import { findFreePort, runTsxScript, type ScriptRun } from "../helpers/child-process.js";
import { sampleScoreData } from "../helpers/contract-fixtures.js";
import { readStream, startGradecast, type TestGradecast } from "../helpers/gradecast.js";
import { getProbe, sampleValue } from "../helpers/http-probes.js";
import { type NatsServerHandle, startNatsServer } from "../helpers/nats-server.js";

// A server limit that operators often set: every event over 64 KiB is refused by NATS.
const MAX_PAYLOAD = 65_536;
const WAIT_MS = 30_000;

let dir: string;
let smallConfig: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "gradecast-unpublishable-"));
  smallConfig = join(dir, "small.conf");
  await writeFile(smallConfig, `max_payload: ${MAX_PAYLOAD}\n`);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function until<T>(what: string, read: () => Promise<T>, isDone: (value: T) => boolean) {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const value = await read();
    if (isDone(value)) return value;
    if (Date.now() > deadline) throw new Error(`${what}: still ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function runCli(args: readonly string[]): Promise<ScriptRun> {
  return runTsxScript("src/cli/run.ts", args, { timeoutMs: 60_000, killSignal: "SIGKILL" });
}

describe("a NATS server with a small max_payload", () => {
  let nats: NatsServerHandle;
  let gradecast: TestGradecast;

  beforeAll(async () => {
    nats = await startNatsServer({ extraArgs: ["-c", smallConfig] });
    gradecast = await startGradecast(nats.url);
    await gradecast.server.streamReady;
  });

  afterAll(async () => {
    await gradecast?.cleanup();
    await nats?.cleanup();
  });

  it("refuses a score whose event it cannot take, naming score_msg, the size and the limit", async () => {
    const scoreData = sampleScoreData({ submissionId: 9_001n, scoreMsg: "x".repeat(65_536) });
    const error = await gradecast.client.submitScore(scoreData).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(ScoreCallError);
    const refusal = error as ScoreCallError;
    expect(refusal.code).toBe(status.INVALID_ARGUMENT);
    expect(refusal.violations).toHaveLength(1);
    expect(refusal.violations[0]?.field).toBe("score_data.score_msg");
    expect(refusal.violations[0]?.description).toMatch(
      new RegExp(`would be \\d+ bytes, over the ${MAX_PAYLOAD} bytes .*max_payload`),
    );
    // Nothing was stored.
    const lookup = await gradecast.client.getScore(9_001n).catch((e: unknown) => e);
    expect((lookup as ScoreCallError).code).toBe(status.NOT_FOUND);
  });

  it("accepts and publishes a score whose event just fits", async () => {
    // 64 KiB minus the rest of the event: the size check must not be a rough guess.
    const scoreData = sampleScoreData({ submissionId: 9_002n, scoreMsg: "y".repeat(64_000) });
    const answer = await gradecast.client.submitScore(scoreData);
    expect(answer.published).toBe(true);
  });

  it("says in /readyz and once in the log that max_payload is below the largest event", async () => {
    const readyz = await getProbe(gradecast.server.metricsPort, "/readyz");
    expect(readyz.status).toBe(200);
    expect(readyz.body).toMatch(
      /^SERVING\nwarning: NATS server .* max_payload 65536 bytes.*at least \d+/,
    );
  });
});

describe("events that JetStream refuses for their size", () => {
  let nats: NatsServerHandle | undefined;
  let gradecast: TestGradecast;

  afterEach(async () => {
    await gradecast?.cleanup();
    await nats?.cleanup();
  });

  it("are parked without holding back later events, listed, and re-driven by `outbox retry`", async () => {
    // Accepted while no NATS server had told gradecast its limit: the outbox holds them.
    const dataDir = await mkdtemp(join(dir, "data-"));
    const port = await findFreePort();
    const url = `nats://127.0.0.1:${port}`;
    gradecast = await startGradecast(url, { dataDir });
    const bigCount = 300; // more than one relay batch (128 in tests)
    const big = Array.from({ length: bigCount }, (_, i) =>
      sampleScoreData({ submissionId: BigInt(10_000 + i), scoreMsg: "z".repeat(65_536) }),
    );
    for (const scoreData of big) await gradecast.client.submitScore(scoreData);
    const small = Array.from({ length: 5 }, (_, i) =>
      sampleScoreData({ submissionId: BigInt(20_000 + i) }),
    );
    for (const scoreData of small) await gradecast.client.submitScore(scoreData);

    const storeDir = await mkdtemp(join(dir, "nats-"));
    nats = await startNatsServer({ port, storeDir, extraArgs: ["-c", smallConfig] });
    const metricsPort = gradecast.server.metricsPort;
    const metrics = await until(
      "parked events",
      async () => (await getProbe(metricsPort, "/metrics")).body,
      (body) => sampleValue(body, "gradecast_outbox_parked") === bigCount,
    );
    expect(sampleValue(metrics, "gradecast_outbox_pending")).toBe(0);
    expect(
      sampleValue(metrics, 'gradecast_publish_failures_total{path="relay",reason="too-large"}'),
    ).toBe(bigCount);
    const stream = await readStream(nats.url, gradecast.config.stream.name);
    expect(stream.map((message) => message.headers["Nats-Msg-Id"]).sort()).toHaveLength(5);

    const storeArgs = ["--store", join(dataDir, "gradecast.sqlite")];
    const listed = await runCli([
      "outbox",
      "list",
      "--parked",
      "--json",
      "--limit",
      "1000",
      ...storeArgs,
    ]);
    expect(listed.code, listed.stderr).toBe(0);
    const rows = listed.stdout
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line));
    expect(rows).toHaveLength(bigCount);
    expect(rows[0]).toMatchObject({ state: "parked", submissionId: "10000" });
    expect(rows[0].parkedReason).toMatch(/max_payload/);

    // The operator raises the limit, then re-drives the parked events.
    await nats.stop();
    nats = await startNatsServer({ port, storeDir });
    await until(
      "ready again",
      async () => (await getProbe(metricsPort, "/readyz")).status,
      (code) => code === 200,
    );
    const retried = await runCli(["outbox", "retry", "--all", "--nats-url", url, ...storeArgs]);
    expect(retried.code, retried.stdout + retried.stderr).toBe(0);
    expect(retried.stdout).toMatch(/300 event\(s\) made pending again/);
    await until(
      "every event in the stream",
      async () => (await readStream(nats?.url ?? url, gradecast.config.stream.name)).length,
      (count) => count === bigCount + small.length,
    );
    const after = (await getProbe(metricsPort, "/metrics")).body;
    expect(sampleValue(after, "gradecast_outbox_parked")).toBe(0);
  });
});
