import type { ServiceConfig } from "@grpc/grpc-js";

/**
 * A gRPC service config (https://github.com/grpc/grpc/blob/master/doc/service_config.md) as
 * JSON-ready data: per-method retry policies, timeouts, load balancing.
 */
export type GrpcServiceConfig = Partial<ServiceConfig>;

/**
 * The service config every gradecast client uses, in any language: SubmitScore is retried on
 * UNAVAILABLE, up to 5 attempts, waiting about 0.1 s, 0.2 s, 0.4 s and 0.8 s between them (each
 * wait jittered, at most 2 s). Retrying is safe because SubmitScore is idempotent: the identical score
 * sent again is answered with the first event id and publishes nothing. One call's deadline
 * covers all its attempts. The Python client (gradecast_client.SCORE_SERVICE_CONFIG) and the Go
 * example carry the same config.
 */
export const SCORE_SERVICE_CONFIG: GrpcServiceConfig = {
  methodConfig: [
    {
      name: [{ service: "gradecast.v1.ScoreService", method: "SubmitScore" }],
      retryPolicy: {
        maxAttempts: 5,
        initialBackoff: "0.1s",
        maxBackoff: "2s",
        backoffMultiplier: 2,
        retryableStatusCodes: ["UNAVAILABLE"],
      },
    },
  ],
};

/** `config` as the JSON text the `grpc.service_config` channel option takes. */
export function serviceConfigJson(config: GrpcServiceConfig = SCORE_SERVICE_CONFIG): string {
  return JSON.stringify(config);
}
