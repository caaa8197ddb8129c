import { ServerCredentials } from "@grpc/grpc-js";
import type { ServeConfig } from "./config.js";

/**
 * The gRPC listener's credentials: plaintext without `tls`, TLS with it, and
 * mutual TLS when `tls.clientCaPem` is set (a client without a certificate
 * that chains to that CA fails the handshake, before any call reaches a handler).
 */
export function serverCredentialsFor(config: Pick<ServeConfig, "tls">): ServerCredentials {
  const tls = config.tls;
  if (!tls) return ServerCredentials.createInsecure();
  return ServerCredentials.createSsl(
    tls.clientCaPem ?? null,
    [{ private_key: tls.keyPem, cert_chain: tls.certPem }],
    tls.clientCaPem !== undefined,
  );
}
