import {
  type ChannelCredentials,
  credentials as grpcCredentials,
  Metadata,
  type ServiceError,
  status,
} from "@grpc/grpc-js";
import { context, trace } from "@opentelemetry/api";
import {
  decodeFieldViolations,
  type ExternalGraderScoreData,
  type FieldViolation,
  type GetScoreResponse,
  ScoreServiceClient,
  STATUS_DETAILS_TRAILER,
  type SubmitScoreResponse,
  traceContextOfSpan,
} from "../contract/index.js";

import { isLoopbackAddress } from "./loopback.js";
import {
  type GrpcServiceConfig,
  SCORE_SERVICE_CONFIG,
  serviceConfigJson,
} from "./service-config.js";

/** A failed call: the gRPC status, and every field violation when the request was invalid. */
export class ScoreCallError extends Error {
  readonly code: number;
  readonly details: string;
  readonly violations: readonly FieldViolation[];

  constructor(error: ServiceError) {
    super(`${status[error.code] ?? error.code}: ${error.details}`, { cause: error });
    this.name = "ScoreCallError";
    this.code = error.code;
    this.details = error.details;
    this.violations = fieldViolationsOf(error.metadata);
  }
}

/** Options of {@link createScoreClient}. */
export interface ScoreClientOptions {
  /** Channel credentials; plaintext when omitted. */
  credentials?: ChannelCredentials;
  /** Deadline of each call, its retries included. */
  deadlineMs?: number;
  /**
   * The channel's gRPC service config, which says how calls are retried:
   * {@link SCORE_SERVICE_CONFIG} (SubmitScore retried on UNAVAILABLE, 5 attempts) when omitted,
   * your own to change it, `null` for no retries at all.
   */
  serviceConfig?: GrpcServiceConfig | null;
  /** The grader's token, sent as `authorization: Bearer <token>` on every call. */
  token?: string;
  /**
   * Send `token` without TLS to an address other than loopback. Off by default: anyone
   * on the path could read the token and report scores as this grader.
   */
  allowPlaintextToken?: boolean;
}

/** The client was asked to send a grader token where it could be read on the way. */
export class PlaintextTokenError extends Error {
  override readonly name = "PlaintextTokenError";
}

/** A promise-based client of ScoreService. */
export interface ScoreClient {
  /**
   * Submits a score. Inside an active OpenTelemetry span, the call carries its W3C trace
   * context (`traceparent`, `tracestate`), which the score's event carries on to the LMS.
   */
  submitScore(scoreData: ExternalGraderScoreData): Promise<SubmitScoreResponse>;
  /**
   * The latest score of a submission: `queueName` names its queue (a submission is its id
   * within its queue); without it, the latest among the queues this grader may read.
   */
  getScore(submissionId: bigint, queueName?: string): Promise<GetScoreResponse>;
  close(): void;
}

/** Connects to a gradecast server at `address` (`host:port`). */
export function createScoreClient(address: string, options: ScoreClientOptions = {}): ScoreClient {
  if (
    options.token !== undefined &&
    options.credentials === undefined &&
    options.allowPlaintextToken !== true &&
    !isLoopbackAddress(address)
  ) {
    throw new PlaintextTokenError(
      `refusing to send a grader token without TLS to ${address}: use TLS (channel credentials, or --tls-ca), or allow it explicitly (allowPlaintextToken, --plaintext-token)`,
    );
  }
  const serviceConfig =
    options.serviceConfig === undefined ? SCORE_SERVICE_CONFIG : options.serviceConfig;
  const client = new ScoreServiceClient(
    address,
    options.credentials ?? grpcCredentials.createInsecure(),
    serviceConfig === null
      ? { "grpc.enable_retries": 0 }
      : { "grpc.enable_retries": 1, "grpc.service_config": serviceConfigJson(serviceConfig) },
  );
  const deadlineMs = options.deadlineMs ?? 10_000;
  const callOptions = () => ({ deadline: Date.now() + deadlineMs });
  const { token } = options;
  const metadata = () => {
    const made = new Metadata();
    if (token !== undefined) made.set("authorization", `Bearer ${token}`);
    setTraceContext(made);
    return made;
  };
  return {
    submitScore: (scoreData) =>
      new Promise((resolve, reject) => {
        client.submitScore({ scoreData }, metadata(), callOptions(), (error, response) =>
          error ? reject(new ScoreCallError(error)) : resolve(response),
        );
      }),
    getScore: (submissionId, queueName = "") =>
      new Promise((resolve, reject) => {
        client.getScore(
          { submissionId, queueName },
          metadata(),
          callOptions(),
          (error, response) => (error ? reject(new ScoreCallError(error)) : resolve(response)),
        );
      }),
    close: () => client.close(),
  };
}

/**
 * Sends the active OpenTelemetry span's context as W3C `traceparent`/`tracestate` metadata, so
 * gradecast's span and the score's event join the caller's trace. Written here rather than
 * through the API's propagator (a no-op unless the app registers one): gradecast reads W3C
 * whatever propagator the app chose. Nothing is sent without an active, valid span.
 */
function setTraceContext(metadata: Metadata): void {
  const spanContext = trace.getSpanContext(context.active());
  const traceContext = spanContext === undefined ? undefined : traceContextOfSpan(spanContext);
  if (traceContext === undefined) return;
  metadata.set("traceparent", traceContext.traceparent);
  if (traceContext.tracestate !== undefined) metadata.set("tracestate", traceContext.tracestate);
}

/** The field violations carried in a `grpc-status-details-bin` trailer, if any. */
export function fieldViolationsOf(metadata: Metadata | undefined): FieldViolation[] {
  const raw = metadata?.get(STATUS_DETAILS_TRAILER)[0];
  if (!raw || typeof raw === "string") return [];
  return decodeFieldViolations(raw);
}
