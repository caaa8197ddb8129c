import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sampleScoreData } from "../helpers/contract-fixtures.js";
import {
  pollUntil,
  sqlitePath,
  startGradecast,
  storeCounts,
  type TestGradecast,
} from "../helpers/gradecast.js";
import { HealthClient } from "../helpers/health-client.js";
import { getProbe } from "../helpers/http-probes.js";
import { type NatsServerHandle, startNatsServer } from "../helpers/nats-server.js";

const SCORE_SERVICE = "gradecast.v1.ScoreService";

let nats: NatsServerHandle;
let gradecast: TestGradecast;
let health: HealthClient;

beforeAll(async () => {
  nats = await startNatsServer();
  gradecast = await startGradecast(nats.url);
  await gradecast.server.streamReady;
  health = new HealthClient(gradecast.address);
});

afterAll(async () => {
  health?.close();
  nats?.resume();
  await gradecast?.cleanup();
  await nats?.cleanup();
});

const readyz = () => getProbe(gradecast.server.metricsPort, "/readyz");

/** Both health names, then /readyz, as one comparable value. */
async function observed() {
  return {
    server: await health.check(""),
    scoreService: await health.check(SCORE_SERVICE),
    readyz: (await readyz()).status,
  };
}

const serving = { server: "SERVING", scoreService: "SERVING", readyz: 200 };
const notServing = { server: "NOT_SERVING", scoreService: "NOT_SERVING", readyz: 503 };

describe("health, readiness and liveness", () => {
  it("is SERVING once the store is open and the stream is set up; /healthz is 200", async () => {
    expect(await pollUntil(observed, (now) => now.server === "SERVING")).toEqual(serving);
    expect(await getProbe(gradecast.server.metricsPort, "/healthz")).toEqual({
      status: 200,
      body: "ok\n",
    });
  });

  it("answers NOT_FOUND for a service it does not know", async () => {
    await expect(health.check("gradecast.v1.Nope")).rejects.toMatchObject({ code: 5 });
  });

  it("turns NOT_SERVING when NATS goes away and SERVING again once it is back", async () => {
    const watch = health.watch(SCORE_SERVICE);
    await watch.waitFor("SERVING");

    await nats.stop();
    await watch.waitFor("NOT_SERVING");
    expect(await observed()).toEqual(notServing);
    // Still alive: scores are taken into the outbox meanwhile.
    expect((await getProbe(gradecast.server.metricsPort, "/healthz")).status).toBe(200);

    await nats.restart();
    // The three are read one after another, so poll until one reading sees them all agree.
    const back = await pollUntil(
      observed,
      (now) => JSON.stringify(now) === JSON.stringify(serving),
    );
    expect(back).toEqual(serving);
    expect(watch.statuses).toEqual(["SERVING", "NOT_SERVING", "SERVING"]);
    watch.cancel();
  });

  it("turns NOT_SERVING while connected NATS leaves publishes unanswered, and back on the next ack", async () => {
    expect(await pollUntil(observed, (now) => now.server === "SERVING")).toEqual(serving);
    // A stalled server keeps the connection open: only unanswered publishes show it.
    nats.pause();
    try {
      const answer = await gradecast.client.submitScore(sampleScoreData({ submissionId: 7_301n }));
      expect(answer.published).toBe(false);
      expect(await pollUntil(observed, (now) => now.server === "NOT_SERVING")).toEqual(notServing);
    } finally {
      nats.resume();
    }
    // The relay's re-publish is acknowledged: that proves NATS takes events again.
    expect(
      await pollUntil(observed, (now) => JSON.stringify(now) === JSON.stringify(serving)),
    ).toEqual(serving);
  });

  it("turns NOT_SERVING as soon as stop() begins, while an in-flight call still runs", async () => {
    const watch = health.watch("");
    await watch.waitFor("SERVING");
    // A paused NATS keeps the link "connected" but acks nothing: SubmitScore waits
    // publish.waitMs for the ack, which holds the graceful gRPC shutdown open.
    const before = storeCounts(sqlitePath(gradecast.config)).scores;
    nats.pause();
    let isAnswered = false;
    const inFlight = gradecast.client
      .submitScore(sampleScoreData({ submissionId: 7001n }))
      .finally(() => {
        isAnswered = true;
      });
    // Committed means the call reached the server and now waits for the ack.
    const counts = await pollUntil(
      async () => storeCounts(sqlitePath(gradecast.config)),
      (now) => now.scores === before + 1,
    );
    expect(counts.scores).toBe(before + 1);

    const stopping = gradecast.server.stop();
    expect(gradecast.server.health.status).toBe("NOT_SERVING");
    expect(await readyz()).toEqual({ status: 503, body: "NOT_SERVING\n" });
    expect((await getProbe(gradecast.server.metricsPort, "/healthz")).status).toBe(200);
    await watch.waitFor("NOT_SERVING");
    expect(isAnswered).toBe(false);

    nats.resume();
    const response = await inFlight;
    expect(response.eventId).toMatch(/^[0-9a-f-]{36}$/);
    await watch.ended;
    await stopping;
    await expect(readyz()).rejects.toThrow();
  });
});
