import http2 from "node:http2";
import { status as grpcStatus } from "@grpc/grpc-js";

/** The method every flood stream calls. */
export const SUBMIT_SCORE_PATH = "/gradecast.v1.ScoreService/SubmitScore";

/** One connection's worth of gRPC requests that never finish arriving. */
export interface SlowSenderFloodOptions {
  /** `127.0.0.1:<port>`: floods stay on loopback. */
  address: string;
  /** Streams opened on the one connection. */
  streams: number;
  /** Sent as `authorization: Bearer <token>`; no authorization metadata when omitted. */
  token?: string;
  /** Length the 5-byte gRPC message prefix declares. */
  declaredBytes: number;
  /** Bytes of the message actually sent (at most `declaredBytes`); the rest never comes. */
  sentBytes: number;
}

/** What the flood's streams have seen so far. */
export interface FloodOutcomes {
  /** Streams the server answered, by gRPC status name (`UNAUTHENTICATED`, `DEADLINE_EXCEEDED`...). */
  answered: Record<string, number>;
  /** Streams ended without a gRPC status: RST_STREAM, GOAWAY or the connection closing. */
  reset: number;
  /** Streams still open with no answer: the server holds them (or they wait for a slot). */
  waiting: number;
}

/** A running flood; `close()` ends it (the connection and every stream). */
export interface SlowSenderFlood {
  outcomes(): FloodOutcomes;
  /** The SETTINGS the server sent, once they arrived. */
  remoteSettings(): http2.Settings | undefined;
  /** Whether the server sent GOAWAY or the connection closed. */
  isConnectionEnded(): boolean;
  close(): void;
}

/**
 * Opens one HTTP/2 connection and `streams` SubmitScore requests on it, each with HEADERS,
 * then DATA carrying a gRPC message prefix that declares `declaredBytes` and `sentBytes` of
 * the message, then nothing more: the stream stays open. A raw client, so nothing in it
 * finishes, retries or cancels on the attacker's behalf. Every stream writes the same buffer,
 * so the flood costs this process about one message whatever the stream count.
 */
export function startSlowSenderFlood(options: SlowSenderFloodOptions): SlowSenderFlood {
  const message = Buffer.alloc(5 + options.sentBytes);
  message.writeUInt8(0, 0); // not compressed
  message.writeUInt32BE(options.declaredBytes, 1);
  const session = http2.connect(`http://${options.address}`);
  let settings: http2.Settings | undefined;
  let isConnectionEnded = false;
  session.on("remoteSettings", (received) => {
    settings = received;
  });
  session.on("goaway", () => {
    isConnectionEnded = true;
  });
  session.on("close", () => {
    isConnectionEnded = true;
  });
  // The server may end the connection (that is one of the answers under test): not a failure.
  session.on("error", () => {});

  const answered: Record<string, number> = {};
  let reset = 0;
  let waiting = 0;
  const headers: http2.OutgoingHttpHeaders = {
    ":method": "POST",
    ":path": SUBMIT_SCORE_PATH,
    "content-type": "application/grpc",
    te: "trailers",
    ...(options.token === undefined ? {} : { authorization: `Bearer ${options.token}` }),
  };
  for (let index = 0; index < options.streams; index += 1) {
    const stream = session.request(headers, { endStream: false });
    waiting += 1;
    let isSettled = false;
    const settle = (statusCode: string | string[] | undefined) => {
      if (isSettled) return;
      isSettled = true;
      waiting -= 1;
      if (statusCode === undefined) {
        reset += 1;
        return;
      }
      const name = grpcStatus[Number(statusCode)] ?? String(statusCode);
      answered[name] = (answered[name] ?? 0) + 1;
    };
    // A trailers-only answer carries grpc-status in the response headers; otherwise trailers do.
    stream.on("response", (responseHeaders) => {
      if (responseHeaders["grpc-status"] !== undefined) settle(responseHeaders["grpc-status"]);
    });
    stream.on("trailers", (trailers) => settle(trailers["grpc-status"]));
    stream.on("close", () => settle(undefined));
    stream.on("error", () => {});
    // The answer's body (none is expected) must not block the stream's end.
    stream.resume();
    stream.write(message);
  }
  return {
    outcomes: () => ({ answered: { ...answered }, reset, waiting }),
    remoteSettings: () => settings,
    isConnectionEnded: () => isConnectionEnded,
    close: () => session.destroy(),
  };
}
