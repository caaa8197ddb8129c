import {
  type handleUnaryCall,
  type ServerUnaryCall,
  type ServiceError,
  status,
} from "@grpc/grpc-js";
import type { Logger } from "pino";
import {
  type CallFacts,
  type CallLine,
  logCall,
  requestIdMetadata,
  requestIdOf,
} from "./call-log.js";
import { isServerFault, toServiceError } from "./status.js";

/**
 * A unary method's work: resolves with the response or rejects with the failure, and notes in
 * `facts` what the call's log line should tell (grader, queue, submission, event).
 */
export type UnaryWork<Request, Response> = (
  call: ServerUnaryCall<Request, Response>,
  facts: CallFacts,
) => Promise<Response>;

/**
 * Where answered calls are reported: the log, one line each. (The metrics count calls in
 * the `callMetrics` interceptor, which sees every service's answers.)
 */
export interface CallReporting {
  logger: Logger;
}

/**
 * The gRPC edge of one unary method: gives the call its request id (echoed to the client as
 * `x-request-id` initial metadata), maps a failure to its status in the one place that does it
 * ({@link toServiceError}), then reports the answer once: one log line. The cost on
 * the call path is a clock read, the request id and whatever the enabled log level writes.
 */
export function instrumentedUnary<Request, Response>(
  method: string,
  work: UnaryWork<Request, Response>,
  reporting: CallReporting,
): handleUnaryCall<Request, Response> {
  return (call, callback) => {
    const startedAt = performance.now();
    const requestId = requestIdOf(call.metadata);
    const facts: CallFacts = {};
    const answer = (error: Partial<ServiceError> | null, value?: Response, fault?: unknown) => {
      reportAnswer(reporting, {
        method,
        requestId,
        startedAt,
        codeNumber: error ? (error.code ?? status.UNKNOWN) : status.OK,
        facts: {
          ...facts,
          ...(error?.details === undefined ? {} : { reason: error.details }),
          ...(fault === undefined ? {} : { err: fault }),
        },
      });
      // Initial metadata goes out with the answer, not ahead of it: one write per call instead of two.
      call.sendMetadata(requestIdMetadata(requestId));
      callback(error, value);
    };
    work(call, facts).then(
      (value) => answer(null, value),
      (error: unknown) =>
        answer(toServiceError(error), undefined, isServerFault(error) ? error : undefined),
    );
  };
}

/**
 * Reports one answered call, wherever it was answered (the method, or call admission before
 * it): the call's one log line.
 */
export function reportAnswer(
  reporting: CallReporting,
  answer: {
    method: string;
    requestId: string;
    /** `performance.now()` when the call arrived. */
    startedAt: number;
    codeNumber: number;
    facts: Partial<CallLine>;
  },
): void {
  const durationMs = performance.now() - answer.startedAt;
  const code = status[answer.codeNumber] ?? String(answer.codeNumber);
  logCall(reporting.logger, {
    requestId: answer.requestId,
    method: answer.method,
    code,
    durationMs: Math.round(durationMs * 1000) / 1000,
    ...answer.facts,
  });
}
