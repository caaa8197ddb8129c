import type { ServerUnaryCall, sendUnaryData } from "@grpc/grpc-js";
import type { Logger } from "pino";
import type {
  GetScoreRequest,
  GetScoreResponse,
  ScoreServiceServer,
  SubmitScoreRequest,
  SubmitScoreResponse,
} from "../contract/index.js";
import { type CallObserver, instrumentedUnary } from "./instrumented.js";
import type { ScoreIntake } from "./score-intake.js";
import { toServiceError } from "./status.js";

/**
 * The gRPC face of {@link ScoreIntake}: decode, delegate, encode, map errors.
 * Each answered call is reported to `observe` (metrics) when given.
 */
export function scoreServiceHandlers(
  intake: ScoreIntake,
  logger: Logger,
  observe?: CallObserver,
): ScoreServiceServer {
  const handlers: ScoreServiceServer = {
    submitScore(
      call: ServerUnaryCall<SubmitScoreRequest, SubmitScoreResponse>,
      callback: sendUnaryData<SubmitScoreResponse>,
    ) {
      intake.submitScore(call.request.scoreData).then(
        ({ record, isReplay }) =>
          callback(null, {
            eventId: record.eventId,
            eventTime: record.eventTime,
            replayed: isReplay,
            published: record.published,
            submissionSequence: record.submissionSequence,
          }),
        (error: unknown) => callback(toServiceError(error, logger, "SubmitScore")),
      );
    },
    getScore(
      call: ServerUnaryCall<GetScoreRequest, GetScoreResponse>,
      callback: sendUnaryData<GetScoreResponse>,
    ) {
      intake.getScore(call.request.submissionId).then(
        (lookup) => callback(null, lookup),
        (error: unknown) => callback(toServiceError(error, logger, "GetScore")),
      );
    },
  };
  if (!observe) return handlers;
  return {
    submitScore: instrumentedUnary("SubmitScore", handlers.submitScore, observe),
    getScore: instrumentedUnary("GetScore", handlers.getScore, observe),
  };
}
