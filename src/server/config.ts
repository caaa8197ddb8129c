import type { EventOrigin } from "../contract/index.js";
import type { NatsAuth, StreamSettings } from "../events/index.js";

/** PEM material of gRPC TLS, read from the files at the edge. */
export interface GrpcTlsConfig {
  /** The server's certificate chain. */
  certPem: Buffer;
  /** The private key of `certPem`. */
  keyPem: Buffer;
  /** CA(s) that client certificates must chain to; set, every client must present one (mTLS). */
  clientCaPem?: Buffer;
}

/**
 * How graders prove who they are: `none` (`--insecure-no-auth`, local development only)
 * or per-grader tokens whose hashes and queues are in the credentials file.
 */
export type GraderAuthConfig = { kind: "none" } | { kind: "tokens"; credentialsPath: string };

/**
 * The store: one SQLite file owned by this process (the default), or a
 * PostgreSQL database that several gradecast instances share.
 */
export type StoreConfig =
  | { kind: "sqlite"; path: string }
  | {
      kind: "postgres";
      /** `postgres://` URL; may hold a password, so never log it unredacted. */
      url: string;
      /** Most connections of this instance's pool. */
      poolSize: number;
    };

/**
 * Bounds on what one HTTP/2 connection can make the server hold: streams, session memory, a
 * request that never finishes arriving, and the connection itself. Each is a `serve` setting;
 * a duration of 0 turns that limit off.
 */
export interface TransportLimits {
  /** Streams (calls) one connection may have open at once; announced in SETTINGS. */
  maxConcurrentStreams: number;
  /**
   * Memory one connection's HTTP/2 session may use (header tables, data queued to send,
   * unacknowledged PINGs), in MB; over it, the connection's new streams are refused.
   */
  maxSessionMemoryMb: number;
  /** Time an admitted call's request (message and end of stream) has to arrive whole. */
  requestArrivalTimeoutMs: number;
  /** Age (±10% jitter) after which a connection is asked to go away (GOAWAY). */
  maxConnectionAgeMs: number;
  /** How long calls may still finish after that GOAWAY before the connection is closed. */
  maxConnectionAgeGraceMs: number;
  /** Time without a call after which a connection is asked to go away. */
  maxConnectionIdleMs: number;
  /** Interval of the server's keepalive PINGs. */
  keepaliveTimeMs: number;
  /** A connection whose peer does not answer a keepalive PING within this is closed. */
  keepaliveTimeoutMs: number;
}

/**
 * Everything `gradecast serve` needs, parsed and validated once at the edge
 * (src/cli) and passed down; deep code never reads the environment.
 */
export interface ServeConfig {
  /** gRPC listen address, `host:port`. */
  listen: string;
  /** Serve gRPC over TLS (mTLS with `clientCaPem`); plaintext when omitted. */
  tls?: GrpcTlsConfig;
  /** Grader authentication of every ScoreService call. */
  auth: GraderAuthConfig;
  /** Largest gRPC request accepted, in bytes; larger ones get RESOURCE_EXHAUSTED. */
  maxMessageBytes: number;
  /** Bounds on connections, streams and slow requests (HTTP/2 floods). */
  transport: TransportLimits;
  /** Where scores and their outbox live. */
  store: StoreConfig;
  nats: {
    servers: string;
    reconnectTimeWaitMs: number;
    connectTimeoutMs: number;
    /** Credentials of the service's NATS connection; none when omitted. */
    auth?: NatsAuth;
    /** CA (PEM) of the NATS server's certificate; set, the connection uses TLS. */
    caPem?: string;
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
    /** Transactions of group commit in flight at once (more only helps PostgreSQL). */
    maxBatchesInFlight: number;
  };
  relay: {
    batchSize: number;
    leaseMs: number;
    idlePollMs: number;
    initialBackoffMs: number;
    maxBackoffMs: number;
  };
  /**
   * Deleting outbox rows of events published longer ago than `retentionMs`
   * (`--outbox-retention`); undefined keeps them forever.
   */
  outboxPruning?: {
    retentionMs: number;
    /** Time between pruning rounds (±10% jitter). */
    intervalMs: number;
    /** Most rows deleted per store call. */
    batchSize: number;
  };
  /** Serve gRPC server reflection (grpc.reflection.v1 and v1alpha). */
  reflection: boolean;
  /** `host:port` of the HTTP server for /metrics, /healthz and /readyz; undefined turns it off. */
  metricsListen: string | undefined;
  /** Bound on graceful shutdown: in-flight calls, relay flush, NATS drain. */
  shutdownTimeoutMs: number;
}
