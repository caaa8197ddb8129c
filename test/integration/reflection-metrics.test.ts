import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ScoreCallError } from "../../src/client/index.js";
import { sampleScoreData } from "../helpers/contract-fixtures.js";
import { pollUntil, startGradecast, type TestGradecast } from "../helpers/gradecast.js";
import { getProbe, sampleValue } from "../helpers/http-probes.js";
import { type NatsServerHandle, startNatsServer } from "../helpers/nats-server.js";
import { askReflection } from "../helpers/reflection-client.js";

const UNIMPLEMENTED = 12;

let nats: NatsServerHandle;
let gradecast: TestGradecast;

beforeAll(async () => {
  nats = await startNatsServer();
  gradecast = await startGradecast(nats.url);
  await gradecast.server.streamReady;
});

afterAll(async () => {
  await gradecast?.cleanup();
  await nats?.cleanup();
});

describe("server reflection", () => {
  it.each(["v1", "v1alpha"] as const)(
    "%s lists ScoreService and the Health service",
    async (version) => {
      const answer = await askReflection(gradecast.address, version, { listServices: "*" });
      const names = answer.listServicesResponse?.service?.map((service) => service.name);
      expect(names).toEqual(
        expect.arrayContaining(["gradecast.v1.ScoreService", "grpc.health.v1.Health"]),
      );
    },
  );

  it("describes ScoreService's methods", async () => {
    const answer = await askReflection(gradecast.address, "v1alpha", {
      fileContainingSymbol: "gradecast.v1.ScoreService",
    });
    const files = (answer.fileDescriptorResponse?.fileDescriptorProto ?? []).map((bytes) =>
      fromBinary(FileDescriptorProtoSchema, bytes),
    );
    const service = files
      .flatMap((file) => file.service.map((s) => ({ file, service: s })))
      .find(({ file, service: s }) => file.package === "gradecast.v1" && s.name === "ScoreService");
    expect(service?.service.method.map((method) => method.name).sort()).toEqual([
      "GetScore",
      "SubmitScore",
    ]);
    // The request type resolves to a message the same answer (or its imports) describes.
    const messages = files.flatMap((file) =>
      file.messageType.map((message) => `${file.package}.${message.name}`),
    );
    expect(messages).toContain("gradecast.v1.SubmitScoreRequest");
  });

  it("is UNIMPLEMENTED when turned off", async () => {
    const off = await startGradecast(nats.url, { reflection: false, metricsListen: undefined });
    try {
      expect(off.server.metricsPort).toBeUndefined();
      await expect(
        askReflection(off.address, "v1alpha", { listServices: "*" }),
      ).rejects.toMatchObject({ code: UNIMPLEMENTED });
    } finally {
      await off.cleanup();
    }
  });
});

describe("metrics", () => {
  const scrape = async () => {
    const answer = await getProbe(gradecast.server.metricsPort, "/metrics");
    expect(answer.status).toBe(200);
    return answer.body;
  };

  it("exposes every gradecast series", async () => {
    await gradecast.client.submitScore(sampleScoreData({ submissionId: 8000n }));
    // The published mark reaches the store in the background, moments after the answer.
    const body = await pollUntil(
      scrape,
      (now) => sampleValue(now, "gradecast_outbox_pending") === 0,
    );
    for (const name of [
      "grpc_server_started_total",
      "grpc_server_handled_total",
      "grpc_server_handling_seconds",
      "gradecast_build_info",
      "gradecast_events_published_total",
      "gradecast_publish_duration_seconds",
      "gradecast_publish_failures_total",
      "gradecast_relay_retries_total",
      "gradecast_outbox_pending",
      "gradecast_outbox_oldest_pending_created_timestamp_seconds",
      "gradecast_outbox_parked",
      "gradecast_ready",
      "gradecast_nats_connected",
      "process_cpu_seconds_total",
      "nodejs_heap_size_used_bytes",
    ]) {
      expect(body).toContain(`# TYPE ${name} `);
    }
    expect(sampleValue(body, "gradecast_nats_connected")).toBe(1);
    expect(sampleValue(body, "gradecast_outbox_pending")).toBe(0);
    expect(sampleValue(body, "gradecast_outbox_oldest_pending_created_timestamp_seconds")).toBe(0);
  });

  it("counts an accepted and a rejected SubmitScore by status code, and the published event", async () => {
    const submitScore =
      'grpc_service="gradecast.v1.ScoreService",grpc_method="SubmitScore",grpc_type="unary"';
    const ok = `grpc_server_handled_total{${submitScore},grpc_code="OK"}`;
    const invalid = `grpc_server_handled_total{${submitScore},grpc_code="INVALID_ARGUMENT"}`;
    const durations = `grpc_server_handling_seconds_count{${submitScore}}`;
    const before = await scrape();

    const accepted = await gradecast.client.submitScore(sampleScoreData({ submissionId: 8001n }));
    expect(accepted.published).toBe(true);
    await expect(
      gradecast.client.submitScore(sampleScoreData({ submissionId: 8002n, courseId: "" })),
    ).rejects.toBeInstanceOf(ScoreCallError);

    const after = await scrape();
    expect(sampleValue(after, ok) - sampleValue(before, ok)).toBe(1);
    expect(sampleValue(after, invalid) - sampleValue(before, invalid)).toBe(1);
    expect(sampleValue(after, durations) - sampleValue(before, durations)).toBe(2);
    const published = "gradecast_events_published_total";
    expect(sampleValue(after, published) - sampleValue(before, published)).toBe(1);
    const publishes = "gradecast_publish_duration_seconds_count";
    expect(sampleValue(after, publishes) - sampleValue(before, publishes)).toBe(1);
  });

  it("shows the outbox backlog and the NATS connection while NATS is down", async () => {
    // Earlier scores' published marks are written moments after their answers: wait for them,
    // or one can still count as pending when NATS stops quickly.
    await pollUntil(scrape, (now) => sampleValue(now, "gradecast_outbox_pending") === 0);
    await nats.stop();
    try {
      const pending = await gradecast.client.submitScore(sampleScoreData({ submissionId: 8003n }));
      expect(pending.published).toBe(false);
      const body = await scrape();
      expect(sampleValue(body, "gradecast_nats_connected")).toBe(0);
      expect(sampleValue(body, "gradecast_outbox_pending")).toBe(1);
      expect(
        sampleValue(body, "gradecast_outbox_oldest_pending_created_timestamp_seconds"),
      ).toBeGreaterThan(0);
    } finally {
      await nats.restart();
    }
  });

  it("refuses to start when the metrics address is taken", async () => {
    const dataDir = await mkdtemp(join(tmpdir(), "gradecast-data-"));
    try {
      await expect(
        startGradecast(nats.url, {
          dataDir,
          metricsListen: `127.0.0.1:${gradecast.server.metricsPort}`,
        }),
      ).rejects.toThrow(/cannot listen on 127\.0\.0\.1:\d+/);
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  it("answers 404 for other paths", async () => {
    expect((await getProbe(gradecast.server.metricsPort, "/nope")).status).toBe(404);
  });
});
