import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createScoreClient, type ScoreClient } from "../../src/client/index.js";
import { sampleScoreData } from "../helpers/contract-fixtures.js";
import {
  duplicatedEventIds,
  messagesPerEventId,
  pollUntil,
  readStream,
} from "../helpers/gradecast.js";
import { type GradecastProcess, startGradecastProcess } from "../helpers/gradecast-process.js";
import { HealthClient } from "../helpers/health-client.js";
import { getProbe, sampleValue } from "../helpers/http-probes.js";
import { type NatsClusterHandle, startNatsCluster } from "../helpers/nats-cluster.js";
import type { NatsServerHandle } from "../helpers/nats-server.js";

const STREAM = "GRADECAST_CLUSTER";
/** `--sourcehost`: gradecast names its NATS connection `gradecast <sourcehost>`. */
const SOURCEHOST = "cluster-readiness";
const NATS_CLIENT_NAME = `gradecast ${SOURCEHOST}`;
/**
 * From a kill until gradecast says SERVING again. A meta leader election alone takes about 5 s
 * on nats-server 2.9; the rest is room for a busy 2-core CI machine.
 */
const READY_BOUND_MS = 30_000;
/** From the end of the load until the outbox holds nothing pending. */
const DRAIN_BOUND_MS = 30_000;
/** Step-downs to move the meta leader where a kill needs it: each lands right with odds 1/2. */
const MAX_STEP_DOWNS = 20;
/** The load: a few graders calling one after another, well below what one instance takes. */
const GRADERS = 4;
const CALL_GAP_MS = 40;
const MAX_CALLS = 20_000;

let cluster: NatsClusterHandle;
let dataDir: string;
let gradecast: GradecastProcess;
let metricsPort: number;
let health: HealthClient;

beforeAll(async () => {
  cluster = await startNatsCluster();
  dataDir = await mkdtemp(join(tmpdir(), "gradecast-cluster-"));
  gradecast = await startGradecastProcess({
    natsUrl: cluster.urls,
    dataDir,
    stream: STREAM,
    extraArgs: ["--replicas", "3", "--sourcehost", SOURCEHOST],
  });
  // Read back from the child (it binds port 0): this test reads /readyz and the outbox metrics.
  if (gradecast.metricsPort === undefined) {
    throw new Error(`no /metrics port found for gradecast:\n${gradecast.output()}`);
  }
  metricsPort = gradecast.metricsPort;
  health = new HealthClient(gradecast.address);
  // The cluster (30 s) and gradecast (60 s) may each take their whole start bound.
}, 120_000);

afterAll(async () => {
  health?.close();
  await gradecast?.kill9();
  await cluster?.cleanup();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

/** Both readiness signals together: gRPC health of the whole server, and /readyz. */
async function readiness(): Promise<{ grpc: string | undefined; readyz: number }> {
  return {
    grpc: await health.check(""),
    readyz: (await getProbe(metricsPort, "/readyz")).status,
  };
}

const SERVING = { grpc: "SERVING", readyz: 200 };

/** Polls readiness until both say SERVING; returns how long that took, or throws with both. */
async function msUntilServing(sinceMs: number, after: string): Promise<number> {
  const seen = await pollUntil(
    readiness,
    (now) => now.grpc === "SERVING" && now.readyz === 200,
    READY_BOUND_MS,
  );
  if (seen.grpc !== "SERVING" || seen.readyz !== 200) {
    throw new Error(
      `still not ready ${READY_BOUND_MS} ms after the kill of the ${after}: ${JSON.stringify(seen)}\n` +
        `gradecast:\n${gradecast.output()}`,
    );
  }
  return Date.now() - sinceMs;
}

async function outboxPending(): Promise<number> {
  const answer = await getProbe(metricsPort, "/metrics");
  return sampleValue(answer.body, "gradecast_outbox_pending");
}

/**
 * Graders calling SubmitScore one call after another, each call a new submission, until
 * stopped or `MAX_CALLS`. Remembers the event id of every OK answer.
 */
class ScoreLoad {
  readonly okEventIds: string[] = [];
  failedCalls = 0;
  readonly #client: ScoreClient;
  #calls = 0;
  #isRunning = true;
  readonly #graders: Promise<void>[];

  constructor(address: string) {
    this.#client = createScoreClient(address, { deadlineMs: 10_000 });
    this.#graders = Array.from({ length: GRADERS }, () => this.#grade());
  }

  /** Lets calls in flight finish, then stops. */
  async stop(): Promise<void> {
    this.#isRunning = false;
    await Promise.all(this.#graders);
    this.#client.close();
  }

  async #grade(): Promise<void> {
    while (this.#isRunning && this.#calls < MAX_CALLS) {
      this.#calls += 1;
      const submissionId = 5_000_000n + BigInt(this.#calls);
      try {
        const answer = await this.#client.submitScore(sampleScoreData({ submissionId }));
        this.okEventIds.push(answer.eventId);
      } catch {
        // Not OK: the grader would retry. Its score may or may not be stored; counted so the
        // stream check can tell such events from unexplained ones.
        this.failedCalls += 1;
      }
      await delay(CALL_GAP_MS);
    }
  }
}

/**
 * SIGKILLs `node` under load and measures how long gradecast takes to be SERVING again, then
 * restarts the node and waits until the cluster is whole (so the next kill keeps a quorum).
 */
async function killAndRecover(
  node: NatsServerHandle,
  role: KilledRole,
): Promise<{ role: KilledRole; readyAfterMs: number }> {
  const killedAtMs = Date.now();
  await node.kill();
  // Once gradecast holds a connection to another node, it has seen the disconnect (and said
  // NOT_SERVING): only SERVING after that counts.
  if (role !== "meta leader") await cluster.connectedNode(NATS_CLIENT_NAME, READY_BOUND_MS);
  const readyAfterMs = await msUntilServing(killedAtMs, role);
  await node.restart();
  await cluster.waitUntilHealthy();
  return { role, readyAfterMs };
}

type KilledRole = "meta leader" | "connected node" | "connected node and meta leader";

/** Steps the meta leader down until `isWanted(leader)`; returns that leader. */
async function metaLeaderWhere(
  isWanted: (leader: NatsServerHandle) => boolean,
): Promise<NatsServerHandle> {
  let leader = await cluster.metaLeader();
  for (let stepDowns = 0; !isWanted(leader); stepDowns += 1) {
    if (stepDowns === MAX_STEP_DOWNS) {
      throw new Error(
        `the meta leader is not where this test needs it after ${stepDowns} step-downs`,
      );
    }
    leader = await cluster.stepDownMetaLeader();
  }
  return leader;
}

describe("readiness in a 3-node JetStream cluster", () => {
  it("is SERVING within seconds after kill -9 of the meta leader and of gradecast's node, " +
    "and every OK score reaches the stream exactly once", async () => {
    expect(await pollUntil(readiness, (now) => now.grpc === "SERVING", READY_BOUND_MS)).toEqual(
      SERVING,
    );
    const load = new ScoreLoad(gradecast.address);
    const kills: { role: KilledRole; readyAfterMs: number }[] = [];
    try {
      const okBeforeKills = await pollUntil(
        async () => load.okEventIds.length,
        (ok) => ok >= 20,
      );
      expect(okBeforeKills, gradecast.output()).toBeGreaterThanOrEqual(20);

      // The meta leader dies, gradecast's connection does not.
      let connected = await cluster.connectedNode(NATS_CLIENT_NAME);
      kills.push(
        await killAndRecover(
          await metaLeaderWhere((leader) => leader !== connected),
          "meta leader",
        ),
      );
      // The node gradecast is connected to dies while it is the meta leader: the stream
      // set-up after the reconnect needs a meta leader that is still being elected.
      connected = await cluster.connectedNode(NATS_CLIENT_NAME);
      await metaLeaderWhere((leader) => leader === connected);
      kills.push(await killAndRecover(connected, "connected node and meta leader"));
      // The node gradecast is connected to dies, the meta leader lives on.
      connected = await cluster.connectedNode(NATS_CLIENT_NAME);
      await metaLeaderWhere((leader) => leader !== connected);
      kills.push(await killAndRecover(connected, "connected node"));
    } finally {
      await load.stop();
    }

    const drainStartMs = Date.now();
    const pending = await pollUntil(outboxPending, (count) => count === 0, DRAIN_BOUND_MS);
    const drainMs = Date.now() - drainStartMs;
    console.info(
      `cluster readiness: ${load.okEventIds.length} OK, ${load.failedCalls} failed calls; ` +
        `kills: ${kills.map((kill) => `${kill.role} ready after ${kill.readyAfterMs} ms`).join(", ")}; ` +
        `outbox drained ${drainMs} ms after the load`,
    );
    expect(pending, gradecast.output()).toBe(0);

    const messages = await readStream(cluster.urls, STREAM);
    const perEventId = messagesPerEventId(messages);
    const missing = load.okEventIds.filter((eventId) => !perEventId.has(eventId));
    expect(missing).toEqual([]);
    expect(duplicatedEventIds(messages)).toEqual([]);
    // Any other message is the event of a call that did not answer OK (committed, then cut off).
    expect(messages.length - load.okEventIds.length).toBeLessThanOrEqual(load.failedCalls);
    expect(await readiness()).toEqual(SERVING);
  }, 240_000);
});
