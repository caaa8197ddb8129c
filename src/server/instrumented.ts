import {
  type handleUnaryCall,
  type ServerUnaryCall,
  type ServiceError,
  status,
} from "@grpc/grpc-js";
import type { Logger } from "pino";
import { type CallFacts, logCall, requestIdMetadata, requestIdOf } from "./call-log.js";
import { isServerFault, toServiceError } from "./status.js";

/** Told of each answered call: method name, status code name (`OK`, `INVALID_ARGUMENT`...), seconds. */
export type CallObserver = (method: string, code: string, durationS: number) => void;

/**
 * A unary method's work: resolves with the response or rejects with the failure, and notes in
 * `facts` what the call's log line should tell (grader, queue, submission, event).
 */
export type UnaryWork<Request, Response> = (
  call: ServerUnaryCall<Request, Response>,
  facts: CallFacts,
) => Promise<Response>;

/** Where answered calls are reported: the log (one line each) and, when given, the metrics. */
export interface CallReporting {
  logger: Logger;
  observe?: CallObserver | undefined;
}

/**
 * The gRPC edge of one unary method: gives the call its request id (echoed to the client as
 * `x-request-id` initial metadata), maps a failure to its status in the one place that does it
 * ({@link toServiceError}), then reports the answer once: metrics and one log line. The cost on
 * the call path is a clock read, the request id and whatever the enabled log level writes.
 */
export function instrumentedUnary<Request, Response>(
  method: string,
  work: UnaryWork<Request, Response>,
  reporting: CallReporting,
): handleUnaryCall<Request, Response> {
  const { logger, observe } = reporting;
  return (call, callback) => {
    const startedAt = performance.now();
    const requestId = requestIdOf(call.metadata);
    const facts: CallFacts = {};
    const answer = (error: Partial<ServiceError> | null, value?: Response, fault?: unknown) => {
      const durationMs = performance.now() - startedAt;
      const codeNumber = error ? (error.code ?? status.UNKNOWN) : status.OK;
      const code = status[codeNumber] ?? String(codeNumber);
      observe?.(method, code, durationMs / 1000);
      logCall(logger, {
        requestId,
        method,
        code,
        durationMs: Math.round(durationMs * 1000) / 1000,
        ...facts,
        ...(error?.details === undefined ? {} : { reason: error.details }),
        ...(fault === undefined ? {} : { err: fault }),
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
