export {
  createScoreClient,
  fieldViolationsOf,
  ScoreCallError,
  type ScoreClient,
  type ScoreClientOptions,
} from "./score-client.js";
