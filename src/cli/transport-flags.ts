import type { Command } from "commander";
import type { ServeConfig } from "../server/index.js";
import { ConfigError, parseDurationMs, parseInteger } from "./config-values.js";
import { envOption } from "./shared-options.js";

/** The HTTP/2 limits of `serve` as given (flag, else env, else default). */
export interface TransportFlags {
  maxConcurrentStreams: string;
  maxSessionMemoryMb: string;
  requestArrivalTimeout: string;
  maxConnectionAge: string;
  maxConnectionAgeGrace: string;
  maxConnectionIdle: string;
  keepaliveTime: string;
  keepaliveTimeout: string;
}

/** Node's timers fire at once past this (about 24.8 days), so no duration setting may exceed it. */
const MAX_TIMER_MS = 2_147_483_647;

/**
 * The bounds on what one HTTP/2 connection can make `serve` hold. The defaults keep a 2-core
 * instance serving under the floods in the README (one connection: 100 streams, 1 MB each).
 */
export function addTransportOptions(command: Command): Command {
  return command
    .addOption(
      envOption(
        "--max-concurrent-streams <n>",
        "calls one connection may have open at once (HTTP/2 SETTINGS); more are refused",
        "GRADECAST_MAX_CONCURRENT_STREAMS",
        "100",
      ),
    )
    .addOption(
      envOption(
        "--max-session-memory-mb <n>",
        "memory one connection's HTTP/2 session may use (header tables, queued output, unanswered pings); over it its new calls are refused",
        "GRADECAST_MAX_SESSION_MEMORY_MB",
        "10",
      ),
    )
    .addOption(
      envOption(
        "--request-arrival-timeout <duration>",
        "time an admitted call's request has to arrive whole, else DEADLINE_EXCEEDED; 0 turns it off",
        "GRADECAST_REQUEST_ARRIVAL_TIMEOUT",
        "10s",
      ),
    )
    .addOption(
      envOption(
        "--max-connection-age <duration>",
        "a connection older than this (±10%) is asked to go away (GOAWAY); 0 turns it off",
        "GRADECAST_MAX_CONNECTION_AGE",
        "30m",
      ),
    )
    .addOption(
      envOption(
        "--max-connection-age-grace <duration>",
        "time calls may still finish after that GOAWAY before the connection is closed",
        "GRADECAST_MAX_CONNECTION_AGE_GRACE",
        "30s",
      ),
    )
    .addOption(
      envOption(
        "--max-connection-idle <duration>",
        "a connection without calls for this long is asked to go away; 0 turns it off",
        "GRADECAST_MAX_CONNECTION_IDLE",
        "5m",
      ),
    )
    .addOption(
      envOption(
        "--keepalive-time <duration>",
        "interval of the server's keepalive pings on each connection; 0 turns them off",
        "GRADECAST_KEEPALIVE_TIME",
        "1m",
      ),
    )
    .addOption(
      envOption(
        "--keepalive-timeout <duration>",
        "a connection whose peer leaves a keepalive ping unanswered this long is closed",
        "GRADECAST_KEEPALIVE_TIMEOUT",
        "20s",
      ),
    );
}

/** Checks the HTTP/2 limits; throws ConfigError naming the setting. */
export function parseTransportFlags(flags: TransportFlags): ServeConfig["transport"] {
  return {
    maxConcurrentStreams: parseInteger(
      "--max-concurrent-streams",
      flags.maxConcurrentStreams,
      1,
      100_000,
    ),
    maxSessionMemoryMb: parseInteger("--max-session-memory-mb", flags.maxSessionMemoryMb, 1, 4_096),
    requestArrivalTimeoutMs: parseTimerMs(
      "--request-arrival-timeout",
      flags.requestArrivalTimeout,
      0,
    ),
    maxConnectionAgeMs: parseTimerMs("--max-connection-age", flags.maxConnectionAge, 0),
    maxConnectionAgeGraceMs: parseTimerMs(
      "--max-connection-age-grace",
      flags.maxConnectionAgeGrace,
      0,
    ),
    maxConnectionIdleMs: parseTimerMs("--max-connection-idle", flags.maxConnectionIdle, 0),
    keepaliveTimeMs: parseTimerMs("--keepalive-time", flags.keepaliveTime, 0),
    keepaliveTimeoutMs: parseTimerMs("--keepalive-timeout", flags.keepaliveTimeout, 1),
  };
}

/** A duration that a Node timer can hold, at least `minMs`. */
function parseTimerMs(setting: string, value: string, minMs: number): number {
  const durationMs = parseDurationMs(setting, value);
  if (durationMs < minMs || durationMs > MAX_TIMER_MS) {
    throw new ConfigError(
      setting,
      `${JSON.stringify(value)} must be from ${minMs === 0 ? "0" : `${minMs}ms`} to 24d`,
    );
  }
  return durationMs;
}
