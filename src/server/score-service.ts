import type { ServerUnaryCall } from "@grpc/grpc-js";
import type { Logger } from "pino";
import type {
  GetScoreRequest,
  GetScoreResponse,
  ScoreServiceServer,
  SubmitScoreRequest,
  SubmitScoreResponse,
} from "../contract/index.js";
import { type CallFacts, loggable } from "./call-log.js";
import type { GraderAuthenticator } from "./grader-auth.js";
import { type CallObserver, instrumentedUnary } from "./instrumented.js";
import type { ScoreIntake } from "./score-intake.js";

/**
 * The gRPC face of {@link ScoreIntake}: authenticate, decode, delegate, encode.
 * With an `authenticator`, every call needs a grader's token and a score is
 * taken only for a queue that grader may report for; without one
 * (`--insecure-no-auth`) anyone may call. Each answered call gets one log line
 * and is reported to `observe` (metrics) when given.
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
    facts: CallFacts,
  ): Promise<string | undefined> => {
    if (!authenticator) return undefined;
    const grader = await authenticator.authenticate(call.metadata, certificateNameOf(call));
    facts.grader = grader.name;
    const scoreData = call.request.scoreData;
    // Without score data there is no queue to check; the intake rejects the request as invalid.
    if (scoreData) authenticator.authorize(grader, scoreData.queueName);
    return grader.name;
  };
  const reporting = { logger, observe };
  return {
    submitScore: instrumentedUnary<SubmitScoreRequest, SubmitScoreResponse>(
      "SubmitScore",
      async (call, facts) => {
        const scoreData = call.request.scoreData;
        if (scoreData) {
          facts.queue = loggable(scoreData.queueName);
          facts.submissionId = scoreData.submissionId.toString();
        }
        const graderName = await graderFor(call, facts);
        const { record, isReplay } = await intake.submitScore(scoreData, { graderName });
        facts.eventId = record.eventId;
        facts.replayed = isReplay;
        facts.published = record.published;
        return {
          eventId: record.eventId,
          eventTime: record.eventTime,
          replayed: isReplay,
          published: record.published,
          submissionSequence: record.submissionSequence,
        };
      },
      reporting,
    ),
    getScore: instrumentedUnary<GetScoreRequest, GetScoreResponse>(
      "GetScore",
      async (call, facts) => {
        facts.submissionId = call.request.submissionId.toString();
        // Any grader may read any score; only a valid token (or grader certificate) is required.
        if (authenticator) {
          const grader = await authenticator.authenticate(call.metadata, certificateNameOf(call));
          facts.grader = grader.name;
        }
        const lookup = await intake.getScore(call.request.submissionId);
        if (lookup.event.scoreData) facts.queue = lookup.event.scoreData.queueName;
        if (lookup.event.metadata) facts.eventId = lookup.event.metadata.id;
        facts.published = lookup.published;
        return lookup;
      },
      reporting,
    ),
  };
}

/**
 * The subject CN of the client certificate, present only under mutual TLS,
 * where the handshake already verified it against `--tls-client-ca`.
 */
function certificateNameOf(call: ServerUnaryCall<unknown, unknown>): string | undefined {
  const commonName = call.getAuthContext().sslPeerCertificate?.subject?.CN;
  return typeof commonName === "string" && commonName !== "" ? commonName : undefined;
}
