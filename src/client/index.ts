export { isLoopbackAddress } from "./loopback.js";
export {
  createScoreClient,
  fieldViolationsOf,
  PlaintextTokenError,
  ScoreCallError,
  type ScoreClient,
  type ScoreClientOptions,
} from "./score-client.js";
export {
  type GrpcServiceConfig,
  SCORE_SERVICE_CONFIG,
  serviceConfigJson,
} from "./service-config.js";
