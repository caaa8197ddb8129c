// The one module through which the rest of gradecast sees the generated code.
// Nothing outside src/contract/ imports gen/ or depends on ts-proto's options.
// index.ts is messages.ts plus the ScoreService stubs, which need @grpc/grpc-js.

export type { ScoreServiceServer } from "../../gen/ts/gradecast/v1/score_service.js";
export {
  GetScoreRequest,
  GetScoreResponse,
  ScoreServiceClient,
  ScoreServiceService,
  SubmitScoreRequest,
  SubmitScoreResponse,
} from "../../gen/ts/gradecast/v1/score_service.js";
export * from "./messages.js";
