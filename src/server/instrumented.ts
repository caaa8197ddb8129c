import { type handleUnaryCall, type sendUnaryData, status } from "@grpc/grpc-js";

/** Told of each answered call: method name, status code name (`OK`, `INVALID_ARGUMENT`...), seconds. */
export type CallObserver = (method: string, code: string, durationS: number) => void;

/**
 * Wraps a unary handler so its answer is observed once, when the callback is
 * called: the cost on the call path is a clock read and the observer.
 */
export function instrumentedUnary<Request, Response>(
  method: string,
  handler: handleUnaryCall<Request, Response>,
  observe: CallObserver,
): handleUnaryCall<Request, Response> {
  return (call, callback) => {
    const startedAt = performance.now();
    const observed: sendUnaryData<Response> = (error, value, trailer, flags) => {
      const code = error ? (error.code ?? status.UNKNOWN) : status.OK;
      observe(method, status[code] ?? String(code), (performance.now() - startedAt) / 1000);
      callback(error, value, trailer, flags);
    };
    handler(call, observed);
  };
}
