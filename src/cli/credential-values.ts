import { createPrivateKey, X509Certificate } from "node:crypto";
import { type ChannelCredentials, credentials } from "@grpc/grpc-js";
import type { NatsAuth } from "../events/index.js";
import type { GrpcTlsConfig } from "../server/index.js";
import { ConfigError, readSettingFile } from "./config-values.js";

/** The file names of gRPC TLS as given (flag, else env). */
export interface GrpcTlsFlags {
  tlsCert?: string;
  tlsKey?: string;
  tlsClientCa?: string;
}

/**
 * Reads and checks the gRPC TLS files: certificate and key together or neither, each a PEM that
 * parses, and the key the certificate's. Undefined when TLS is off.
 */
export function parseGrpcTls(flags: GrpcTlsFlags): GrpcTlsConfig | undefined {
  if (flags.tlsCert === undefined && flags.tlsKey === undefined) {
    if (flags.tlsClientCa !== undefined) {
      throw new ConfigError("--tls-client-ca", "needs --tls-cert and --tls-key");
    }
    return undefined;
  }
  if (flags.tlsKey === undefined) throw new ConfigError("--tls-key", "is required with --tls-cert");
  if (flags.tlsCert === undefined)
    throw new ConfigError("--tls-cert", "is required with --tls-key");
  const certPem = readSettingFile("--tls-cert", flags.tlsCert);
  const keyPem = readSettingFile("--tls-key", flags.tlsKey);
  const certificate = parseCertificate("--tls-cert", certPem);
  let key: ReturnType<typeof createPrivateKey>;
  try {
    key = createPrivateKey(keyPem);
  } catch {
    throw new ConfigError("--tls-key", `${JSON.stringify(flags.tlsKey)} is not a PEM private key`);
  }
  if (!certificate.checkPrivateKey(key)) {
    throw new ConfigError("--tls-key", "is not the private key of --tls-cert");
  }
  if (flags.tlsClientCa === undefined) return { certPem, keyPem };
  const clientCaPem = readSettingFile("--tls-client-ca", flags.tlsClientCa);
  parseCertificate("--tls-client-ca", clientCaPem);
  return { certPem, keyPem, clientCaPem };
}

/** The client side of gRPC TLS as given to `submit` and `get-score`. */
export interface ClientTlsFlags {
  tlsCa?: string;
  tlsCert?: string;
  tlsKey?: string;
}

/**
 * Channel credentials for `submit` and `get-score`: TLS when any TLS flag is given (trusting
 * `--tls-ca`, else the system's CAs), with a client certificate for mTLS; undefined for plaintext.
 */
export function parseClientTls(flags: ClientTlsFlags): ChannelCredentials | undefined {
  if (flags.tlsCa === undefined && flags.tlsCert === undefined && flags.tlsKey === undefined) {
    return undefined;
  }
  if (flags.tlsCert !== undefined && flags.tlsKey === undefined) {
    throw new ConfigError("--tls-key", "is required with --tls-cert");
  }
  if (flags.tlsKey !== undefined && flags.tlsCert === undefined) {
    throw new ConfigError("--tls-cert", "is required with --tls-key");
  }
  const caPem = flags.tlsCa === undefined ? null : readSettingFile("--tls-ca", flags.tlsCa);
  if (caPem) parseCertificate("--tls-ca", caPem);
  const certPem = flags.tlsCert === undefined ? null : readSettingFile("--tls-cert", flags.tlsCert);
  const keyPem = flags.tlsKey === undefined ? null : readSettingFile("--tls-key", flags.tlsKey);
  return credentials.createSsl(caPem, keyPem, certPem);
}

/** The NATS credential settings as given (flag, else env). */
export interface NatsAccessFlags {
  natsUser?: string;
  natsPassword?: string;
  natsToken?: string;
  natsCreds?: string;
  natsCa?: string;
}

/** Reads the NATS credentials (at most one mode) and the NATS CA file. */
export function parseNatsAccess(flags: NatsAccessFlags): { auth?: NatsAuth; caPem?: string } {
  const modes = [
    flags.natsUser !== undefined || flags.natsPassword !== undefined
      ? "--nats-user/--nats-password"
      : undefined,
    flags.natsToken !== undefined ? "--nats-token" : undefined,
    flags.natsCreds !== undefined ? "--nats-creds" : undefined,
  ].filter((mode) => mode !== undefined);
  const second = modes[1];
  if (second !== undefined) {
    throw new ConfigError(
      second,
      `only one NATS credential may be given, but ${modes.join(" and ")} are set`,
    );
  }
  const caPem =
    flags.natsCa === undefined
      ? undefined
      : parsePemText("--nats-ca", readSettingFile("--nats-ca", flags.natsCa));
  return { auth: parseNatsAuth(flags), caPem };
}

function parseNatsAuth(flags: NatsAccessFlags): NatsAuth | undefined {
  if (flags.natsUser !== undefined || flags.natsPassword !== undefined) {
    if (!flags.natsUser) throw new ConfigError("--nats-user", "is required with --nats-password");
    if (!flags.natsPassword) {
      throw new ConfigError("--nats-password", "is required with --nats-user");
    }
    return { kind: "user-password", user: flags.natsUser, password: flags.natsPassword };
  }
  if (flags.natsToken !== undefined) {
    if (flags.natsToken === "") throw new ConfigError("--nats-token", "is empty");
    return { kind: "token", token: flags.natsToken };
  }
  if (flags.natsCreds !== undefined) {
    const creds = readSettingFile("--nats-creds", flags.natsCreds);
    if (!creds.toString("utf8").includes("-----BEGIN NATS USER JWT-----")) {
      throw new ConfigError(
        "--nats-creds",
        `${JSON.stringify(flags.natsCreds)} is not a .creds file`,
      );
    }
    return { kind: "creds", creds: new Uint8Array(creds) };
  }
  return undefined;
}

function parseCertificate(setting: string, pem: Buffer): X509Certificate {
  try {
    return new X509Certificate(pem);
  } catch {
    throw new ConfigError(setting, "is not a PEM certificate");
  }
}

function parsePemText(setting: string, pem: Buffer): string {
  parseCertificate(setting, pem);
  return pem.toString("utf8");
}
