import { JetStreamApiCodes, JetStreamApiError } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { GradecastError } from "../contract/index.js";
import { authenticatorFor } from "../events/index.js";
import { redactUrls } from "../store/redact-url.js";
import { parseNatsServers } from "./config-values.js";
import { type NatsAccessFlags, parseNatsAccess } from "./credential-values.js";

/** The NATS flags of a command that connects: `--nats-url` and the credentials of `serve`. */
export interface CommandNatsFlags extends NatsAccessFlags {
  natsUrl: string;
}

/**
 * Connects a command (`tail`, `dlq`) to NATS the way `serve` does (same URL, credential and TLS
 * settings), trying once: a failure is one line naming the servers (passwords hidden) and why.
 */
export async function connectCommand(
  flags: CommandNatsFlags,
  name: string,
  options: { timeoutMs?: number } = {},
): Promise<NatsConnection> {
  const servers = parseNatsServers("--nats-url", flags.natsUrl);
  const { auth, caPem } = parseNatsAccess(flags);
  try {
    return await connect({
      servers: servers.split(",").map((server) => server.trim()),
      name,
      ...(options.timeoutMs === undefined ? {} : { timeout: options.timeoutMs }),
      ...(auth ? { authenticator: authenticatorFor(auth) } : {}),
      ...(caPem === undefined ? {} : { tls: { ca: caPem } }),
    });
  } catch (error) {
    throw new GradecastError(
      "unavailable",
      `cannot connect to NATS at ${redactUrls(servers)}: ${(error as Error).message}`,
      { cause: error },
    );
  }
}

/** A JetStream "stream not found" as one line naming the stream; other errors unchanged. */
export function streamNotFound(error: unknown, stream: string, setting: string): unknown {
  if (error instanceof JetStreamApiError && error.code === JetStreamApiCodes.StreamNotFound) {
    return new GradecastError(
      "not_found",
      `no stream ${JSON.stringify(stream)} on this NATS server (${setting}): is gradecast serve running against it, with the same stream name?`,
      { cause: error },
    );
  }
  return error;
}
