import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { credentials, Metadata, status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { addGrader } from "../../src/cli/credentials-command.js";
import { createScoreClient, type ScoreClient } from "../../src/client/index.js";
import { ScoreServiceClient } from "../../src/contract/index.js";
import { sampleScoreData } from "../helpers/contract-fixtures.js";
import { type GradecastProcess, startGradecastProcess } from "../helpers/gradecast-process.js";
import { percentile, TimedGrader } from "../helpers/grader-latency.js";
import { legacyToken } from "../helpers/legacy-credentials.js";
import { type NatsServerHandle, startNatsServer } from "../helpers/nats-server.js";
import { processCpuSeconds } from "../helpers/process-cpu.js";

/** The burst the issue asks for; loopback only, bounded in calls and in time. */
const JUNK_CALLS = 2_000;
/** Flat out: calls in flight at once. */
const JUNK_IN_FLIGHT = 16;
/** The burst a grader's calls run through: 2,000 calls in 2 s (slower on a busy machine). */
const JUNK_CALLS_PER_S = 1_000;
/** The grader's calls that must run under the burst; the burst is longer when they are slow. */
const MIN_LOADED_CALLS = 20;
/** The most junk calls a paced burst sends, however slow the grader is. */
const MAX_JUNK_CALLS = 10_000;
/** No junk call starts after this long: a refusal that got expensive again fails, not hangs. */
const JUNK_BURST_LIMIT_MS = 60_000;
/** Graders in the file: with scrypt per grader, each junk call would cost this many hashes. */
const GRADER_COUNT = 20;
const QUIET_CALLS = 200;
const WARM_UP_CALLS = 30;
/**
 * Generous bounds, for a busy 2-core CI host where this suite shares the CPU with another: the
 * gRPC server's one thread serves the junk calls too, so valid calls may wait behind some.
 */
const MAX_P50_FACTOR = 4;
const MAX_P50_SLACK_MS = 25;
const MAX_P99_FACTOR = 4;
const MAX_P99_SLACK_MS = 250;
/** Far above what a refusal costs the server (a fraction of a millisecond), far below one scrypt. */
const MAX_CPU_PER_REFUSAL_MS = 3;

let nats: NatsServerHandle;
let dir: string;
let child: GradecastProcess;
let valid: ScoreClient;
let timedValid: TimedGrader;

beforeAll(async () => {
  nats = await startNatsServer();
  dir = await mkdtemp(join(tmpdir(), "gradecast-junk-"));
  const credentialsPath = join(dir, "credentials.json");
  let token = "";
  for (let i = 0; i < GRADER_COUNT; i += 1) {
    const added = await addGrader({
      credentialsPath,
      graderName: `grader-${i}`,
      queues: i === 0 ? ["python-grader"] : [`queue-${i}`],
      isReplacing: false,
    });
    if (i === 0) token = added;
  }
  child = await startGradecastProcess({
    natsUrl: nats.url,
    dataDir: join(dir, "data"),
    stream: "GRADECAST_JUNK",
    credentialsPath,
    // Refusals are logged at info, as in production: their log line is part of their cost.
    extraArgs: ["--log-level", "info"],
    readyTimeoutMs: 60_000,
  });
  valid = createScoreClient(child.address, { deadlineMs: 30_000, token });
  timedValid = new TimedGrader(valid, "python-grader", 50_000n);
}, 90_000);

afterAll(async () => {
  valid?.close();
  await child?.stop(15_000);
  await nats?.cleanup();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** A junk token of one of the forms a stranger might send; a new one each call. */
function junkToken(index: number): string {
  switch (index % 3) {
    case 0:
      return `gradecast_${randomBytes(32).toString("base64url")}`; // the right form, no grader's
    case 1:
      return legacyToken(); // the old form, without the prefix
    default:
      return `gradecast_${randomBytes(12).toString("base64url")}`; // the prefix, too short
  }
}

/** One SubmitScore with a junk token (a valid score otherwise); resolves with the status name. */
function sendJunk(client: ScoreServiceClient, index: number): Promise<string> {
  const metadata = new Metadata();
  metadata.set("authorization", `Bearer ${junkToken(index)}`);
  const scoreData = sampleScoreData({ submissionId: 1n, queueName: "python-grader" });
  return new Promise((resolve) => {
    client.submitScore({ scoreData }, metadata, { deadline: Date.now() + 30_000 }, (error) => {
      const code = error ? error.code : status.OK;
      resolve(status[code] ?? String(code));
    });
  });
}

function countAnswers(answers: readonly string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const answer of answers) counts[answer] = (counts[answer] ?? 0) + 1;
  return counts;
}

/**
 * `count` junk calls on one channel, as fast as the server answers them (`JUNK_IN_FLIGHT` at a
 * time): what refusing costs the server. Starts no call after `JUNK_BURST_LIMIT_MS`.
 */
async function junkFlatOut(count: number): Promise<Record<string, number>> {
  const client = new ScoreServiceClient(child.address, credentials.createInsecure());
  const stopAt = Date.now() + JUNK_BURST_LIMIT_MS;
  const answers: string[] = [];
  let started = 0;
  const sendUntilDone = async () => {
    while (started < count && Date.now() < stopAt) {
      started += 1;
      answers.push(await sendJunk(client, started));
    }
  };
  try {
    await Promise.all(Array.from({ length: JUNK_IN_FLIGHT }, sendUntilDone));
  } finally {
    client.close();
  }
  return countAnswers(answers);
}

/**
 * `count` junk calls on one channel, started at `callsPerS` whatever the answers do (a stranger
 * does not wait for them): the burst a grader's calls must get through. Starts no call after
 * `JUNK_BURST_LIMIT_MS`.
 */
async function junkPaced(
  count: number,
  callsPerS: number,
  isStillNeeded: () => boolean,
): Promise<Record<string, number>> {
  const client = new ScoreServiceClient(child.address, credentials.createInsecure());
  const stopAt = Date.now() + JUNK_BURST_LIMIT_MS;
  const startedAt = performance.now();
  const calls: Promise<string>[] = [];
  const isDue = (index: number) =>
    (index < count || isStillNeeded()) && index < MAX_JUNK_CALLS && Date.now() < stopAt;
  try {
    for (let index = 0; isDue(index); index += 1) {
      // Pacing the load, not waiting for a condition: call `index` is due at index / rate.
      const dueInMs = startedAt + (index * 1000) / callsPerS - performance.now();
      if (dueInMs >= 1) await new Promise((resolve) => setTimeout(resolve, dueInMs));
      calls.push(sendJunk(client, index));
    }
    return countAnswers(await Promise.all(calls));
  } finally {
    client.close();
  }
}

describe("2,000 calls with junk tokens", () => {
  it(
    "are refused with UNAUTHENTICATED at a fraction of a millisecond of server CPU each, and barely slow a grader's calls",
    async () => {
      // Junk alone, as fast as it is answered: what refusing costs the server.
      const junkCpuBefore = await processCpuSeconds(child.pid);
      const junkStartedAt = performance.now();
      const junkAnswers = await junkFlatOut(JUNK_CALLS);
      const junkWallMs = performance.now() - junkStartedAt;
      const cpuPerRefusalMs =
        (((await processCpuSeconds(child.pid)) - junkCpuBefore) * 1000) / JUNK_CALLS;
      expect(junkAnswers).toEqual({ UNAUTHENTICATED: JUNK_CALLS });

      // The grader alone, just before the burst: the baseline (and what serving costs).
      await timedValid.timeCalls((done) => done < WARM_UP_CALLS);
      const quietCpuBefore = await processCpuSeconds(child.pid);
      const quiet = await timedValid.timeCalls((done) => done < QUIET_CALLS);
      const cpuPerValidMs =
        (((await processCpuSeconds(child.pid)) - quietCpuBefore) * 1000) / QUIET_CALLS;

      // A burst of junk while a grader reports: what the junk costs the grader.
      // Offered faster than the server can refuse, junk would only queue up (a test of the
      // machine, not of the refusal): on a busy machine the burst runs at half the flat-out
      // rate just measured. And the grader's calls are slow there: the junk goes on (at the
      // same rate) until the grader has made enough calls under it for percentiles to mean much.
      const flatOutCallsPerS = (JUNK_CALLS / junkWallMs) * 1000;
      const burstCallsPerS = Math.min(
        JUNK_CALLS_PER_S,
        Math.max(50, Math.floor(flatOutCallsPerS / 2)),
      );
      let isBurstOver = false;
      let loadedSoFar = 0;
      const burst = junkPaced(
        JUNK_CALLS,
        burstCallsPerS,
        () => loadedSoFar < MIN_LOADED_CALLS,
      ).finally(() => {
        isBurstOver = true;
      });
      const loaded = await timedValid.timeCalls((done) => {
        loadedSoFar = done;
        return !isBurstOver;
      });
      const burstAnswers = await burst;
      expect(Object.keys(burstAnswers)).toEqual(["UNAUTHENTICATED"]);
      expect(burstAnswers.UNAUTHENTICATED).toBeGreaterThanOrEqual(JUNK_CALLS);

      const figures = {
        quietP50Ms: percentile(quiet, 0.5),
        quietP99Ms: percentile(quiet, 0.99),
        loadedP50Ms: percentile(loaded, 0.5),
        loadedP99Ms: percentile(loaded, 0.99),
        loadedCalls: loaded.length,
        cpuPerValidMs,
        cpuPerRefusalMs,
        flatOutJunkCallsPerS: Math.round(flatOutCallsPerS),
        burstJunkCallsPerS: burstCallsPerS,
        burstJunkCalls: burstAnswers.UNAUTHENTICATED,
      };
      console.info(
        `${JUNK_CALLS} junk-token calls, ${GRADER_COUNT} graders: ${JSON.stringify(figures, (_key, value: unknown) => (typeof value === "number" ? Number(value.toFixed(3)) : value))}`,
      );
      expect(cpuPerRefusalMs).toBeLessThan(MAX_CPU_PER_REFUSAL_MS);
      // Enough of the grader's calls ran during the burst for the percentiles to mean something.
      expect(loaded.length).toBeGreaterThanOrEqual(MIN_LOADED_CALLS);
      expect(figures.loadedP50Ms).toBeLessThan(
        MAX_P50_FACTOR * figures.quietP50Ms + MAX_P50_SLACK_MS,
      );
      expect(figures.loadedP99Ms).toBeLessThan(
        MAX_P99_FACTOR * figures.quietP99Ms + MAX_P99_SLACK_MS,
      );
    },
    3 * JUNK_BURST_LIMIT_MS,
  );
});
