import { describe, expect, it } from "vitest";
import type { ServeConfig } from "../../src/server/index.js";
import { grpcTransportOptions } from "../../src/server/transport-options.js";

const limits: ServeConfig["transport"] = {
  maxConcurrentStreams: 100,
  maxSessionMemoryMb: 10,
  requestArrivalTimeoutMs: 10_000,
  maxConnectionAgeMs: 1_800_000,
  maxConnectionAgeGraceMs: 30_000,
  maxConnectionIdleMs: 300_000,
  keepaliveTimeMs: 60_000,
  keepaliveTimeoutMs: 20_000,
};

describe("grpc-js options of the transport limits", () => {
  it("gives grpc-js every limit it enforces, each under its own option", () => {
    expect(grpcTransportOptions(limits)).toEqual({
      "grpc.max_concurrent_streams": 100,
      "grpc-node.max_session_memory": 10,
      "grpc.max_connection_age_ms": 1_800_000,
      "grpc.max_connection_age_grace_ms": 30_000,
      "grpc.max_connection_idle_ms": 300_000,
      "grpc.keepalive_time_ms": 60_000,
      "grpc.keepalive_timeout_ms": 20_000,
    });
  });

  it("leaves out a limit set to 0, which grpc-js reads as none (its own 0 would mean at once)", () => {
    expect(
      grpcTransportOptions({
        ...limits,
        maxConnectionAgeMs: 0,
        maxConnectionIdleMs: 0,
        keepaliveTimeMs: 0,
      }),
    ).toEqual({ "grpc.max_concurrent_streams": 100, "grpc-node.max_session_memory": 10 });
  });
});
