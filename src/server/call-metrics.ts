import {
  type Deadline,
  ServerInterceptingCall,
  type ServerInterceptor,
  type ServerMethodDefinition,
  status,
} from "@grpc/grpc-js";

/** The kind of a gRPC method, as go-grpc-prometheus's `grpc_type` label names it. */
export type GrpcType = "unary" | "client_stream" | "server_stream" | "bidi_stream";

/** The labels that name a method in the standard gRPC server metrics. */
export interface GrpcMethodLabels {
  /** Fully qualified service name, e.g. `gradecast.v1.ScoreService`. */
  grpc_service: string;
  /** Method name, e.g. `SubmitScore`. */
  grpc_method: string;
  grpc_type: GrpcType;
}

/** Where {@link callMetrics} reports: one `started`, then one `handled`, per call. */
export interface GrpcCallRecorder {
  callStarted(method: GrpcMethodLabels): void;
  /** `code` is the status name the client got, e.g. `OK`, `UNAUTHENTICATED`. */
  callHandled(method: GrpcMethodLabels, code: string, durationS: number): void;
}

/** The labels of a method from its path (`/package.Service/Method`) and streaming sides. */
export function grpcMethodLabels(
  method: Pick<
    ServerMethodDefinition<unknown, unknown>,
    "path" | "requestStream" | "responseStream"
  >,
): GrpcMethodLabels {
  const slash = method.path.lastIndexOf("/");
  return {
    grpc_service: method.path.slice(1, slash),
    grpc_method: method.path.slice(slash + 1),
    grpc_type: grpcTypeOf(method.requestStream, method.responseStream),
  };
}

/**
 * A grpc-js server interceptor that counts every call the server routes to a registered method
 * (ScoreService, Health, reflection) the way go-grpc-prometheus does: started when its headers
 * arrive, handled with the status code the client gets, timed from arrival to that status.
 * It must be the first interceptor, the one nearest the transport, so it sees the answers the
 * others give before a handler runs (call admission's refusals).
 *
 * grpc-js ends some calls itself, below every interceptor: a request over
 * `grpc.max_receive_message_length`, one it cannot decode, an expired client deadline, a
 * client's cancel. No status passes here then, only the cancel notice; such a call counts as
 * `DEADLINE_EXCEEDED` when its deadline has passed, else as `CANCELLED`.
 * Unknown methods never reach interceptors and are not counted.
 */
export function callMetrics(recorder: GrpcCallRecorder): ServerInterceptor {
  // One entry per registered method: grpc-js answers unknown paths before interceptors run.
  const labelsByPath = new Map<string, GrpcMethodLabels>();
  return (methodDescriptor, call) => {
    let method = labelsByPath.get(methodDescriptor.path);
    if (!method) {
      method = grpcMethodLabels(methodDescriptor);
      labelsByPath.set(methodDescriptor.path, method);
    }
    const labels = method;
    const startedAt = performance.now();
    recorder.callStarted(labels);
    let isHandled = false;
    const handled = (code: number) => {
      if (isHandled) return;
      isHandled = true;
      const durationS = (performance.now() - startedAt) / 1000;
      recorder.callHandled(labels, status[code] ?? String(code), durationS);
    };
    return new ServerInterceptingCall(call, {
      start: (next) =>
        next({
          // Also called after every status sent, when `handled` has already run.
          onCancel: () =>
            handled(isPast(call.getDeadline()) ? status.DEADLINE_EXCEEDED : status.CANCELLED),
        }),
      sendStatus: (answer, next) => {
        handled(answer.code);
        next(answer);
      },
    });
  };
}

function grpcTypeOf(requestStream: boolean, responseStream: boolean): GrpcType {
  if (requestStream) return responseStream ? "bidi_stream" : "client_stream";
  return responseStream ? "server_stream" : "unary";
}

function isPast(deadline: Deadline): boolean {
  const deadlineMs = deadline instanceof Date ? deadline.getTime() : deadline;
  return deadlineMs <= Date.now();
}
