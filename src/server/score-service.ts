import type { ServerUnaryCall } from "@grpc/grpc-js";
import type { Logger } from "pino";
import {
  type GetScoreRequest,
  type GetScoreResponse,
  type ScoreServiceServer,
  type SubmitScoreRequest,
  type SubmitScoreResponse,
  ValidationError,
  validateScoreData,
} from "../contract/index.js";
import { type CallFacts, loggable } from "./call-log.js";
import { inServerSpan, traceContextOfCall } from "./call-tracing.js";
import type { GraderAuthenticator } from "./grader-auth.js";
import { instrumentedUnary } from "./instrumented.js";
import type { ScoreIntake } from "./score-intake.js";

/**
 * The gRPC face of {@link ScoreIntake}: authenticate, decode, delegate, encode.
 * With an `authenticator`, every call needs a grader's token and a score is
 * taken only for a queue that grader may report for; without one
 * (`--insecure-no-auth`) anyone may call. A SubmitScore is authenticated first
 * (a stranger learns nothing about the score's rules), then validated (every
 * field violation, exactly as without tokens), then authorized: a queue name that
 * breaks the contract is INVALID_ARGUMENT with its violation, never PERMISSION_DENIED.
 * Each answered call gets one log line. A SubmitScore runs in an OpenTelemetry server span,
 * child of the caller's `traceparent`, whose context its event carries on.
 */
export function scoreServiceHandlers(
  intake: ScoreIntake,
  logger: Logger,
  authenticator: GraderAuthenticator | undefined,
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
    // The intake validates again: a few checks per field, cheap next to the commit.
    const violations = validateScoreData(scoreData);
    if (violations.length > 0 || !scoreData) throw new ValidationError(violations);
    authenticator.authorize(grader, scoreData.queueName);
    return grader.name;
  };
  const reporting = { logger };
  return {
    submitScore: instrumentedUnary<SubmitScoreRequest, SubmitScoreResponse>(
      "SubmitScore",
      async (call, facts) => {
        // The caller's W3C trace context is a hint: a bad one is dropped, never refused.
        const incoming = traceContextOfCall(call.metadata);
        if (incoming.problem !== undefined) {
          logger.debug({ problem: incoming.problem }, "SubmitScore: dropped the trace context");
        }
        return inServerSpan("SubmitScore", incoming.traceContext, async (traceContext) => {
          const scoreData = call.request.scoreData;
          if (scoreData) {
            facts.queue = loggable(scoreData.queueName);
            facts.submissionId = scoreData.submissionId.toString();
          }
          const graderName = await graderFor(call, facts);
          const { record, isReplay } = await intake.submitScore(scoreData, {
            graderName,
            traceContext,
          });
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
        });
      },
      reporting,
    ),
    getScore: instrumentedUnary<GetScoreRequest, GetScoreResponse>(
      "GetScore",
      async (call, facts) => {
        facts.submissionId = call.request.submissionId.toString();
        const grader = authenticator
          ? await authenticator.authenticate(call.metadata, certificateNameOf(call))
          : undefined;
        if (grader) facts.grader = grader.name;
        // A grader reads only the scores of queues it may report for. Another queue's score is
        // NOT_FOUND like a missing one: PERMISSION_DENIED would tell a prober the id exists.
        const lookup = await intake.getScore(
          call.request.submissionId,
          call.request.queueName === "" ? undefined : call.request.queueName,
          (queueName) => !grader || authenticator?.mayReportFor(grader, queueName) === true,
        );
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
