import {
  Metadata,
  ServerInterceptingCall,
  type ServerInterceptingCallInterface,
  type ServerInterceptor,
  type StatusObject,
  status,
} from "@grpc/grpc-js";
import type { Logger } from "pino";
import { type CallLine, requestIdMetadata, requestIdOf } from "./call-log.js";
import { reportAnswer } from "./instrumented.js";
import { isServerFault, toServiceError } from "./status.js";

/**
 * Decides from a call's headers alone who is calling; rejects (as the service would, e.g. with
 * an UnauthenticatedError) when nobody is. `certificateName` is the verified client
 * certificate's subject CN under mutual TLS.
 */
export type HeaderAuthentication = (
  metadata: Metadata,
  certificateName: string | undefined,
) => Promise<{ readonly name: string }>;

/** Options of {@link callAdmission}. */
export interface CallAdmissionOptions {
  /** Methods (`/package.Service/Method`) whose calls must authenticate before their message is read. */
  authenticatedPaths: ReadonlySet<string>;
  /** How those calls authenticate; undefined when authentication is off (`--insecure-no-auth`). */
  authenticate: HeaderAuthentication | undefined;
  /**
   * Time an admitted call with a single request message has to receive it whole (message and
   * end of stream); 0 is no limit.
   */
  requestArrivalTimeoutMs: number;
  /** Gets one line per call this answers itself, like the service's own answers. */
  logger: Logger;
}

/**
 * A grpc-js server interceptor that admits a call before its request is read. grpc-js reads a
 * call's message only once the handler asks for it, which happens when the call's headers have
 * passed every interceptor; until then the stream stays paused and HTTP/2 flow control holds a
 * sender to one stream window (64 KB). So:
 *
 * - a call to an authenticated method is authenticated from its headers first, and one without
 *   a grader's token is refused there (UNAUTHENTICATED, one log line), its message never
 *   buffered: a stranger's 1 MB message costs what a refusal costs. The service authenticates
 *   again from the same headers (a map lookup, or a remembered legacy answer) and stays the
 *   one place that authorizes.
 * - an admitted call with a single request message has `requestArrivalTimeoutMs` to receive it
 *   whole; a slower sender is cut with DEADLINE_EXCEEDED and one log line, so no peer holds a
 *   call's buffer open by trickling (or never sending) its last bytes. Streaming requests
 *   (reflection) are not timed: waiting between messages is what they do.
 */
export function callAdmission(options: CallAdmissionOptions): ServerInterceptor {
  const { authenticatedPaths, authenticate, requestArrivalTimeoutMs, logger } = options;
  return (methodDescriptor, call) => {
    const path = methodDescriptor.path;
    const method = path.slice(path.lastIndexOf("/") + 1);
    const mustAuthenticate = authenticate !== undefined && authenticatedPaths.has(path);
    const isTimed = requestArrivalTimeoutMs > 0 && !methodDescriptor.requestStream;
    const startedAt = performance.now();
    let arrivalTimer: NodeJS.Timeout | undefined;
    const stopArrivalTimer = () => clearTimeout(arrivalTimer);

    /** Ends the call with `answer` before its handler ran; one log line, as the service's own. */
    const answerHere = (
      requestId: string,
      answer: StatusObject,
      facts: Partial<CallLine> = {},
    ): void => {
      reportAnswer(
        { logger },
        {
          method,
          requestId,
          startedAt,
          codeNumber: answer.code,
          facts: { reason: answer.details, ...facts },
        },
      );
      // The request id goes out as initial metadata, as on the service's own answers.
      intercepting.sendMetadata(requestIdMetadata(requestId));
      intercepting.sendStatus(answer);
    };

    const admit = (
      metadata: Metadata,
      next: (metadata: Metadata) => void,
      graderName?: string,
    ): void => {
      if (isTimed) {
        arrivalTimer = setTimeout(() => {
          answerHere(
            requestIdOf(metadata),
            arrivalTimeoutStatus(requestArrivalTimeoutMs),
            graderName === undefined ? {} : { grader: graderName },
          );
        }, requestArrivalTimeoutMs);
      }
      next(metadata);
    };

    const intercepting = new ServerInterceptingCall(call, {
      start: (next) =>
        next({
          onReceiveMetadata: (metadata, nextMetadata) => {
            if (!mustAuthenticate) {
              admit(metadata, nextMetadata);
              return;
            }
            authenticate(metadata, certificateNameOf(call)).then(
              (grader) => admit(metadata, nextMetadata, grader.name),
              (error: unknown) => {
                const refusal = toServiceError(error);
                answerHere(
                  requestIdOf(metadata),
                  {
                    code: refusal.code ?? status.UNKNOWN,
                    details: refusal.details ?? "",
                    metadata: refusal.metadata ?? new Metadata(),
                  },
                  isServerFault(error) ? { err: error } : {},
                );
              },
            );
          },
          onReceiveHalfClose: (next) => {
            stopArrivalTimer();
            next();
          },
          onCancel: stopArrivalTimer,
        }),
    });
    return intercepting;
  };
}

/** The answer to a call whose request did not arrive whole in time. */
function arrivalTimeoutStatus(timeoutMs: number): StatusObject {
  return {
    code: status.DEADLINE_EXCEEDED,
    details: `the request did not arrive whole within ${timeoutMs} ms of being admitted; the server stopped reading it`,
    metadata: new Metadata(),
  };
}

/**
 * The subject CN of the client certificate, present only under mutual TLS, where the handshake
 * already verified it against `--tls-client-ca`.
 */
function certificateNameOf(call: ServerInterceptingCallInterface): string | undefined {
  const commonName = call.getAuthContext().sslPeerCertificate?.subject?.CN;
  return typeof commonName === "string" && commonName !== "" ? commonName : undefined;
}
