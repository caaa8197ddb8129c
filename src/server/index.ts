export type { GraderAuthConfig, GrpcTlsConfig, ServeConfig, StoreConfig } from "./config.js";
export { GradecastServer } from "./gradecast-server.js";
export { GraderAuthenticator } from "./grader-auth.js";
export {
  type CredentialsFile,
  CredentialsFileError,
  GRADER_NAME_PATTERN,
  type Grader,
  isQueuePattern,
  loadGraders,
  loadGradersSync,
  parseTokenHash,
  queueMatches,
  readCredentialsFile,
  type TokenHash,
  writeCredentialsFile,
} from "./grader-credentials.js";
export { generateToken, hashToken } from "./grader-tokens.js";
export { SCORE_SERVICE_HEALTH_NAME, ServingHealth } from "./health.js";
export { legacyGradersOf, rotationCommand } from "./legacy-migration.js";
export { ScoreIntake, type ScoreLookup, type SubmitResult } from "./score-intake.js";
export { toServiceError } from "./status.js";
export { serverCredentialsFor } from "./tls.js";
