// What a grader imports: the entry point of the `@gradecast/client` package (packages/client)
// and part of `gradecast`'s. It reaches src/client/ and src/contract/ only, so the package
// needs gRPC and the contract's codecs, none of the service's dependencies.

export {
  createScoreClient,
  fieldViolationsOf,
  type GrpcServiceConfig,
  PlaintextTokenError,
  SCORE_SERVICE_CONFIG,
  ScoreCallError,
  type ScoreClient,
  type ScoreClientOptions,
  serviceConfigJson,
} from "./client/index.js";
export type { FieldViolation } from "./contract/index.js";
export {
  BadRequest,
  decodeFieldViolations,
  ExternalGraderScoreData,
  GetScoreRequest,
  GetScoreResponse,
  ScoreServiceClient,
  ScoreServiceService,
  SubmitScoreRequest,
  SubmitScoreResponse,
  validateScoreData,
} from "./contract/index.js";
