import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { addGrader } from "../../src/cli/credentials-command.js";
import { createScoreClient, type ScoreClient } from "../../src/client/index.js";
import { findFreePort } from "../helpers/child-process.js";
import { sampleScoreData } from "../helpers/contract-fixtures.js";
import { pollUntil, startGradecast, type TestGradecast } from "../helpers/gradecast.js";
import { HealthClient } from "../helpers/health-client.js";
import { getProbe } from "../helpers/http-probes.js";
import { type NatsServerHandle, startNatsServer } from "../helpers/nats-server.js";
import {
  type Exposition,
  parsePrometheusText,
  sampleOf,
  samplesMatching,
} from "../helpers/prometheus-text.js";

const SCORE_SERVICE = "gradecast.v1.ScoreService";
const GRPC_CODES = [
  "OK",
  "CANCELLED",
  "UNKNOWN",
  "INVALID_ARGUMENT",
  "DEADLINE_EXCEEDED",
  "NOT_FOUND",
  "ALREADY_EXISTS",
  "PERMISSION_DENIED",
  "RESOURCE_EXHAUSTED",
  "FAILED_PRECONDITION",
  "ABORTED",
  "OUT_OF_RANGE",
  "UNIMPLEMENTED",
  "INTERNAL",
  "UNAVAILABLE",
  "DATA_LOSS",
  "UNAUTHENTICATED",
];

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "gradecast-metrics-"));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Scrapes and parses `/metrics`; the parser throws on any malformed or repeated line. */
async function scrape(gradecast: TestGradecast): Promise<Exposition> {
  const answer = await getProbe(gradecast.server.metricsPort, "/metrics");
  expect(answer.status).toBe(200);
  return parsePrometheusText(answer.body);
}

function method(grpcService: string, grpcMethod: string, grpcType = "unary") {
  return { grpc_service: grpcService, grpc_method: grpcMethod, grpc_type: grpcType };
}

/** Every handled count of a method, by code, leaving out the codes at 0. */
function handledCodes(exposition: Exposition, labels: Record<string, string>) {
  const counts: Record<string, number> = {};
  for (const sample of samplesMatching(exposition, "grpc_server_handled_total", labels)) {
    if (sample.value !== 0) counts[sample.labels.grpc_code ?? "?"] = sample.value;
  }
  return counts;
}

describe("gRPC server metrics under the standard names", () => {
  let nats: NatsServerHandle;
  let gradecast: TestGradecast;
  let grader: ScoreClient;
  let stranger: ScoreClient;

  beforeAll(async () => {
    const credentialsPath = join(dir, "credentials.json");
    const token = await addGrader({
      credentialsPath,
      graderName: "metrics-grader",
      queues: ["python-grader"],
      isReplacing: false,
    });
    nats = await startNatsServer();
    gradecast = await startGradecast(nats.url, { auth: { kind: "tokens", credentialsPath } });
    await gradecast.server.streamReady;
    grader = createScoreClient(gradecast.address, { token });
    stranger = gradecast.client;
  });

  afterAll(async () => {
    grader?.close();
    await gradecast?.cleanup();
    await nats?.cleanup();
  });

  it("counts ScoreService's methods from zero, every code, before any call", async () => {
    const metrics = await scrape(gradecast);
    for (const name of ["SubmitScore", "GetScore"]) {
      const labels = method(SCORE_SERVICE, name);
      expect(sampleOf(metrics, "grpc_server_started_total", labels)).toBe(0);
      const codes = samplesMatching(metrics, "grpc_server_handled_total", labels);
      expect(codes.map((sample) => sample.labels.grpc_code).sort()).toEqual([...GRPC_CODES].sort());
      expect(codes.every((sample) => sample.value === 0)).toBe(true);
      expect(sampleOf(metrics, "grpc_server_handling_seconds_count", labels)).toBe(0);
    }
    expect(metrics.families.get("grpc_server_handling_seconds")?.type).toBe("histogram");
  });

  it("counts accepted calls and the refusals before and in the handler, with their codes", async () => {
    await grader.submitScore(sampleScoreData({ submissionId: 8101n }));
    await grader.submitScore(sampleScoreData({ submissionId: 8102n }));
    // Refused by the handler's validation, after authentication.
    await expect(
      grader.submitScore(sampleScoreData({ submissionId: 8103n, courseId: "" })),
    ).rejects.toMatchObject({ code: status.INVALID_ARGUMENT });
    // Refused by call admission, before any handler runs.
    await expect(
      stranger.submitScore(sampleScoreData({ submissionId: 8104n })),
    ).rejects.toMatchObject({ code: status.UNAUTHENTICATED });
    await grader.getScore(8101n, "python-grader");
    const health = new HealthClient(gradecast.address);
    try {
      expect(await health.check("")).toBe("SERVING");
    } finally {
      health.close();
    }

    const metrics = await scrape(gradecast);
    const submitScore = method(SCORE_SERVICE, "SubmitScore");
    expect(sampleOf(metrics, "grpc_server_started_total", submitScore)).toBe(4);
    expect(handledCodes(metrics, submitScore)).toEqual({
      OK: 2,
      INVALID_ARGUMENT: 1,
      UNAUTHENTICATED: 1,
    });
    expect(sampleOf(metrics, "grpc_server_handling_seconds_count", submitScore)).toBe(4);
    expect(
      sampleOf(metrics, "grpc_server_handling_seconds_bucket", { ...submitScore, le: "+Inf" }),
    ).toBe(4);
    expect(sampleOf(metrics, "grpc_server_handling_seconds_sum", submitScore)).toBeGreaterThan(0);

    const getScore = method(SCORE_SERVICE, "GetScore");
    expect(sampleOf(metrics, "grpc_server_started_total", getScore)).toBe(1);
    expect(handledCodes(metrics, getScore)).toEqual({ OK: 1 });

    // The Health service passes the same interceptor: counted too, from its first call.
    const check = method("grpc.health.v1.Health", "Check");
    expect(sampleOf(metrics, "grpc_server_started_total", check)).toBe(1);
    expect(handledCodes(metrics, check)).toEqual({ OK: 1 });
    expect(sampleOf(metrics, "grpc_server_handling_seconds_count", check)).toBe(1);
  });

  it("counts a stream the client cancels as started, then handled as CANCELLED", async () => {
    const watch = method("grpc.health.v1.Health", "Watch", "server_stream");
    const health = new HealthClient(gradecast.address);
    try {
      const stream = health.watch("");
      await stream.waitFor("SERVING");
      const open = await scrape(gradecast);
      expect(sampleOf(open, "grpc_server_started_total", watch)).toBe(1);
      expect(handledCodes(open, watch)).toEqual({});

      stream.cancel();
      const closed = await pollUntil(
        () => scrape(gradecast),
        (now) =>
          sampleOf(now, "grpc_server_handled_total", { ...watch, grpc_code: "CANCELLED" }) === 1,
      );
      expect(handledCodes(closed, watch)).toEqual({ CANCELLED: 1 });
    } finally {
      health.close();
    }
  });

  it("has the process and Node.js runtime series and one build_info series", async () => {
    const metrics = await scrape(gradecast);
    for (const [name, type] of [
      ["process_cpu_seconds_total", "counter"],
      ["process_start_time_seconds", "gauge"],
      ["process_resident_memory_bytes", "gauge"],
      ["process_open_fds", "gauge"],
      ["nodejs_heap_size_used_bytes", "gauge"],
      ["nodejs_eventloop_lag_seconds", "gauge"],
      ["nodejs_gc_duration_seconds", "histogram"],
      ["nodejs_version_info", "gauge"],
    ] as const) {
      expect(metrics.families.get(name)?.type, name).toBe(type);
    }
    const startS = sampleOf(metrics, "process_start_time_seconds") ?? 0;
    expect(Math.abs(startS - (Date.now() - process.uptime() * 1000) / 1000)).toBeLessThan(5);

    const packageJson = JSON.parse(await readFile("package.json", "utf8")) as { version: string };
    expect(samplesMatching(metrics, "gradecast_build_info")).toEqual([
      {
        name: "gradecast_build_info",
        labels: { version: packageJson.version, nodejs_version: process.version, store: "sqlite" },
        value: 1,
      },
    ]);
  });
});

describe("publish metrics", () => {
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

  const pending = (metrics: Exposition) => sampleOf(metrics, "gradecast_outbox_pending");
  const oldestS = (metrics: Exposition) =>
    sampleOf(metrics, "gradecast_outbox_oldest_pending_created_timestamp_seconds");

  it("exports the oldest pending event's creation time and not-ready while NATS is down, and 0 and ready once it is published", async () => {
    await pollUntil(
      () => scrape(gradecast),
      (now) => pending(now) === 0,
    );
    expect(oldestS(await scrape(gradecast))).toBe(0);
    await nats.stop();
    try {
      const beforeMs = Date.now();
      const answer = await gradecast.client.submitScore(sampleScoreData({ submissionId: 8201n }));
      const afterMs = Date.now();
      expect(answer.published).toBe(false);
      // A second, later score: the gauge keeps the first one's time.
      await gradecast.client.submitScore(sampleScoreData({ submissionId: 8202n }));

      const down = await scrape(gradecast);
      expect(sampleOf(down, "gradecast_nats_connected")).toBe(0);
      expect(sampleOf(down, "gradecast_ready")).toBe(0);
      expect(pending(down)).toBe(2);
      const createdMs = (oldestS(down) ?? 0) * 1000;
      expect(createdMs).toBeGreaterThanOrEqual(beforeMs);
      expect(createdMs).toBeLessThanOrEqual(afterMs);
    } finally {
      await nats.restart();
    }
    const back = await pollUntil(
      () => scrape(gradecast),
      (now) => pending(now) === 0 && sampleOf(now, "gradecast_ready") === 1,
    );
    expect(oldestS(back)).toBe(0);
    expect(sampleOf(back, "gradecast_nats_connected")).toBe(1);
    expect(sampleOf(back, "gradecast_ready")).toBe(1);
  });

  it("counts a publish JetStream leaves unanswered as a direct timeout, and the relay's retries", async () => {
    const failures = (metrics: Exposition, path: string, reason: string) =>
      sampleOf(metrics, "gradecast_publish_failures_total", { path, reason });
    const retries = (metrics: Exposition, reason: string) =>
      sampleOf(metrics, "gradecast_relay_retries_total", { reason });
    const before = await scrape(gradecast);
    const directTimeoutsBefore = failures(before, "direct", "timeout") ?? 0;
    const retriesBefore = retries(before, "timeout") ?? 0;

    // A stalled server keeps the connection open and answers nothing: publishes time out.
    nats.pause();
    try {
      const answer = await gradecast.client.submitScore(sampleScoreData({ submissionId: 8203n }));
      expect(answer.published).toBe(false);
      // The direct publish times out (2 s), then the relay claims the event and times out too.
      const stalled = await pollUntil(
        () => scrape(gradecast),
        (now) => (retries(now, "timeout") ?? 0) > retriesBefore,
      );
      expect(failures(stalled, "direct", "timeout")).toBe(directTimeoutsBefore + 1);
      expect(retries(stalled, "timeout")).toBeGreaterThan(retriesBefore);
    } finally {
      nats.resume();
    }
    const after = await pollUntil(
      () => scrape(gradecast),
      (now) => pending(now) === 0,
    );
    expect(failures(after, "direct", "timeout")).toBe(directTimeoutsBefore + 1);
    // Every relay publish that timed out was set to try again: none was parked.
    expect(retries(after, "timeout")).toBe(failures(after, "relay", "timeout"));
    expect(sampleOf(after, "gradecast_outbox_parked")).toBe(0);
    expect(oldestS(after)).toBe(0);
  });
});

describe("publish metrics of an event JetStream refuses for its size", () => {
  let nats: NatsServerHandle;
  let gradecast: TestGradecast;

  afterAll(async () => {
    await gradecast?.cleanup();
    await nats?.cleanup();
  });

  it("counts one relay too-large failure, parks the event and never retries it", async () => {
    // Accepted while no NATS server had told gradecast its max_payload: the outbox holds both.
    const port = await findFreePort();
    gradecast = await startGradecast(`nats://127.0.0.1:${port}`);
    await gradecast.client.submitScore(
      sampleScoreData({ submissionId: 8301n, scoreMsg: "z".repeat(65_536) }),
    );
    await gradecast.client.submitScore(sampleScoreData({ submissionId: 8302n }));
    expect(sampleOf(await scrape(gradecast), "gradecast_outbox_pending")).toBe(2);

    const config = join(dir, "small.conf");
    await writeFile(config, "max_payload: 65536\n");
    nats = await startNatsServer({ port, extraArgs: ["-c", config] });
    const metrics = await pollUntil(
      () => scrape(gradecast),
      (now) =>
        sampleOf(now, "gradecast_outbox_parked") === 1 &&
        sampleOf(now, "gradecast_outbox_pending") === 0,
    );
    expect(sampleOf(metrics, "gradecast_outbox_parked")).toBe(1);
    expect(
      sampleOf(metrics, "gradecast_publish_failures_total", { path: "relay", reason: "too-large" }),
    ).toBe(1);
    expect(
      sampleOf(metrics, "gradecast_publish_failures_total", {
        path: "direct",
        reason: "too-large",
      }),
    ).toBe(0);
    // A parked event is never retried; every other relay failure is (e.g. a `no-stream` while
    // the stream was being created after NATS came up).
    const retried = samplesMatching(metrics, "gradecast_relay_retries_total");
    expect(retried.map((sample) => sample.labels.reason).sort()).toEqual([
      "disconnected",
      "no-stream",
      "not-connected",
      "refused",
      "timeout",
    ]);
    for (const { labels, value } of retried) {
      const relayFailures = sampleOf(metrics, "gradecast_publish_failures_total", {
        path: "relay",
        reason: labels.reason ?? "",
      });
      expect(value, labels.reason).toBe(relayFailures);
    }
    // Parked is not pending: the oldest-pending time is back to 0.
    expect(sampleOf(metrics, "gradecast_outbox_oldest_pending_created_timestamp_seconds")).toBe(0);
  });
});
