import type { ServerUnaryCall, sendUnaryData } from "@grpc/grpc-js";
import type { Logger } from "pino";
import type {
  GetScoreRequest,
  GetScoreResponse,
  ScoreServiceServer,
  SubmitScoreRequest,
  SubmitScoreResponse,
} from "../contract/index.js";
import type { GraderAuthenticator } from "./grader-auth.js";
import { type CallObserver, instrumentedUnary } from "./instrumented.js";
import type { ScoreIntake } from "./score-intake.js";
import { toServiceError } from "./status.js";

/**
 * The gRPC face of {@link ScoreIntake}: authenticate, decode, delegate, encode,
 * map errors. With an `authenticator`, every call needs a grader's token and a
 * score is taken only for a queue that grader may report for; without one
 * (`--insecure-no-auth`) anyone may call. Each answered call is reported to
 * `observe` (metrics) when given.
 */
export function scoreServiceHandlers(
  intake: ScoreIntake,
  logger: Logger,
  authenticator: GraderAuthenticator | undefined,
  observe?: CallObserver,
): ScoreServiceServer {
  /** The name of the grader allowed to report this score; undefined when auth is off. */
  const graderFor = async (
    call: ServerUnaryCall<SubmitScoreRequest, SubmitScoreResponse>,
  ): Promise<string | undefined> => {
    if (!authenticator) return undefined;
    const grader = await authenticator.authenticate(call.metadata);
    const scoreData = call.request.scoreData;
    // Without score data there is no queue to check; the intake rejects the request as invalid.
    if (scoreData) authenticator.authorize(grader, scoreData.queueName);
    return grader.name;
  };
  const handlers: ScoreServiceServer = {
    submitScore(
      call: ServerUnaryCall<SubmitScoreRequest, SubmitScoreResponse>,
      callback: sendUnaryData<SubmitScoreResponse>,
    ) {
      graderFor(call)
        .then((graderName) => intake.submitScore(call.request.scoreData, { graderName }))
        .then(
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
      // Any grader may read any score; only a valid token is required.
      (authenticator ? authenticator.authenticate(call.metadata) : Promise.resolve())
        .then(() => intake.getScore(call.request.submissionId))
        .then(
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
