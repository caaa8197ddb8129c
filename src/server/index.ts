export type { GrpcTlsConfig, ServeConfig } from "./config.js";
export { GradecastServer } from "./gradecast-server.js";
export { SCORE_SERVICE_HEALTH_NAME, ServingHealth } from "./health.js";
export { ScoreIntake, type ScoreLookup, type SubmitResult } from "./score-intake.js";
export { toServiceError } from "./status.js";
export { serverCredentialsFor } from "./tls.js";
