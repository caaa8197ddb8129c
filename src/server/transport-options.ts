import type { ServerOptions } from "@grpc/grpc-js";
import type { TransportLimits } from "./config.js";

/**
 * The grpc-js server options that enforce `limits` (all but the request arrival timeout, which
 * {@link callAdmission} enforces). grpc-js leaves every one of them unbounded by default, and
 * even lifts Node's own 10 MB cap on session memory; a limit of 0 is left out, which is off.
 */
export function grpcTransportOptions(limits: TransportLimits): ServerOptions {
  const options: ServerOptions = {
    // Sent in SETTINGS; Node refuses streams beyond it (RST_STREAM) without handing them to grpc-js.
    "grpc.max_concurrent_streams": limits.maxConcurrentStreams,
    "grpc-node.max_session_memory": limits.maxSessionMemoryMb,
  };
  if (limits.maxConnectionAgeMs > 0) {
    options["grpc.max_connection_age_ms"] = limits.maxConnectionAgeMs;
    // After the age's GOAWAY, the connection is destroyed once the grace is over, whatever a
    // peer that ignores the GOAWAY still holds open on it.
    options["grpc.max_connection_age_grace_ms"] = limits.maxConnectionAgeGraceMs;
  }
  if (limits.maxConnectionIdleMs > 0) {
    options["grpc.max_connection_idle_ms"] = limits.maxConnectionIdleMs;
  }
  if (limits.keepaliveTimeMs > 0) {
    // A peer that stops answering (gone, or a half-open TCP connection) is closed after
    // keepalive time + timeout, with everything its streams held.
    options["grpc.keepalive_time_ms"] = limits.keepaliveTimeMs;
    options["grpc.keepalive_timeout_ms"] = limits.keepaliveTimeoutMs;
  }
  return options;
}
