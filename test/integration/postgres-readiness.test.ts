import { status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sampleScoreData } from "../helpers/contract-fixtures.js";
import { pollUntil, startGradecast, type TestGradecast } from "../helpers/gradecast.js";
import { type NatsServerHandle, startNatsServer } from "../helpers/nats-server.js";
import { createTestDatabase, type TestDatabase } from "../helpers/postgres.js";
import { startTcpProxy, type TcpProxy } from "../helpers/tcp-proxy.js";

let nats: NatsServerHandle;
let database: TestDatabase;
let proxy: TcpProxy;
let gradecast: TestGradecast;

beforeAll(async () => {
  [nats, database] = await Promise.all([startNatsServer(), createTestDatabase()]);
  const direct = new URL(database.url);
  proxy = await startTcpProxy({ host: direct.hostname, port: Number(direct.port || 5432) });
  const viaProxy = new URL(database.url);
  viaProxy.hostname = "127.0.0.1";
  viaProxy.port = String(proxy.port);
  gradecast = await startGradecast(nats.url, {
    store: { kind: "postgres", url: viaProxy.toString(), poolSize: 4 },
    commit: { maxBatch: 256, maxBatchesInFlight: 4 },
  });
  await gradecast.server.streamReady;
});

afterAll(async () => {
  await gradecast?.cleanup();
  await proxy?.close();
  await nats?.cleanup();
  await database?.drop();
});

describe("gradecast on PostgreSQL that stops answering", () => {
  it("answers UNAVAILABLE and turns NOT_SERVING while it is gone, and recovers by itself", async () => {
    expect(gradecast.server.health.isServing).toBe(true);
    const before = await gradecast.client.submitScore(sampleScoreData({ submissionId: 9501n }));
    expect(before).toMatchObject({ replayed: false, submissionSequence: 1 });

    await proxy.cut();
    await expect(
      gradecast.client.submitScore(sampleScoreData({ submissionId: 9502n })),
    ).rejects.toMatchObject({ code: status.UNAVAILABLE, message: /PostgreSQL|connect/ });
    expect(
      await pollUntil(
        async () => gradecast.server.health.isServing,
        (isServing) => !isServing,
      ),
    ).toBe(false);

    await proxy.restore();
    // The relay's next claim reaches the database again; no call is needed for that.
    expect(
      await pollUntil(
        async () => gradecast.server.health.isServing,
        (isServing) => isServing,
        60_000,
      ),
    ).toBe(true);
    const after = await gradecast.client.submitScore(sampleScoreData({ submissionId: 9502n }));
    expect(after).toMatchObject({ replayed: false, submissionSequence: 1 });
  });
});
