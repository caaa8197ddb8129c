import { status } from "@grpc/grpc-js";

/**
 * What a failed call says about the connection rather than the call: the server speaks TLS to a
 * plaintext client (`server-requires-tls`), or plaintext to a TLS client (`server-without-tls`),
 * or nothing listens at the address (`nothing-listening`).
 */
export type ConnectionProblem = "server-requires-tls" | "server-without-tls" | "nothing-listening";

/** Details of a connection the TCP handshake reached but HTTP/2 never did (grpc-js 1.x wording). */
const DROPPED_BEFORE_HTTP2 = /Failed to connect|Connection dropped|ECONNRESET|Protocol error/i;
/** A TLS client that got plaintext bytes back (OpenSSL's wording). */
const NOT_TLS = /wrong version number|packet length too long|SSL routines|EPROTO/i;

/**
 * Reads the connection problem out of an `UNAVAILABLE` call error, given whether the client used
 * TLS; undefined when the call failed for another reason. grpc-js says only "No connection
 * established ... Resolution note:", so this is what a person needs to hear instead.
 */
export function connectionProblemOf(
  error: { code: number; details: string },
  isTls: boolean,
): ConnectionProblem | undefined {
  if (error.code !== status.UNAVAILABLE) return undefined;
  if (/ECONNREFUSED/.test(error.details)) return "nothing-listening";
  if (isTls && NOT_TLS.test(error.details)) return "server-without-tls";
  if (!isTls && DROPPED_BEFORE_HTTP2.test(error.details)) return "server-requires-tls";
  return undefined;
}
