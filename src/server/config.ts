import type { EventOrigin } from "../contract/index.js";
import type { StreamSettings } from "../events/index.js";

/**
 * Everything `gradecast serve` needs, parsed and validated once at the edge
 * (src/cli) and passed down; deep code never reads the environment.
 */
export interface ServeConfig {
  /** gRPC listen address, `host:port`. */
  listen: string;
  /** Largest gRPC request accepted, in bytes; larger ones get RESOURCE_EXHAUSTED. */
  maxMessageBytes: number;
  /** SQLite database file. */
  storePath: string;
  nats: {
    servers: string;
    reconnectTimeWaitMs: number;
    connectTimeoutMs: number;
  };
  stream: StreamSettings;
  events: EventOrigin;
  publish: {
    /** How long one publish waits for JetStream's ack. */
    timeoutMs: number;
    /** How long SubmitScore waits for the ack before answering `published = false`. */
    waitMs: number;
  };
  commit: {
    /** Most scores in one store transaction. */
    maxBatch: number;
  };
  relay: {
    batchSize: number;
    leaseMs: number;
    idlePollMs: number;
    initialBackoffMs: number;
    maxBackoffMs: number;
  };
  /** Serve gRPC server reflection (grpc.reflection.v1 and v1alpha). */
  reflection: boolean;
  /** `host:port` of the HTTP server for /metrics, /healthz and /readyz; undefined turns it off. */
  metricsListen: string | undefined;
  /** Bound on graceful shutdown: in-flight calls, relay flush, NATS drain. */
  shutdownTimeoutMs: number;
}
