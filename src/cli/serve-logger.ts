import { type Logger, pino } from "pino";
import { build as prettyStream } from "pino-pretty";
import { ConfigError } from "./config-values.js";

/** How `serve` writes its log: JSON lines, readable lines, or readable only on a terminal. */
export type LogFormat = "json" | "pretty" | "auto";

export const LOG_FORMATS: readonly LogFormat[] = ["json", "pretty", "auto"];

/** The levels `--log-level` takes, most to least severe, and `silent`. */
export const LOG_LEVELS: readonly string[] = [
  "fatal",
  "error",
  "warn",
  "info",
  "debug",
  "trace",
  "silent",
];

/** Other names operators use for a level (syslog's and Python's `warning`). */
const LOG_LEVEL_ALIASES: ReadonlyMap<string, string> = new Map([["warning", "warn"]]);

/**
 * Checks the `--log-level` value, in any case, `warning` read as `warn`; throws ConfigError
 * listing the levels.
 */
export function parseLogLevel(value: string): string {
  const lowered = value.trim().toLowerCase();
  const level = LOG_LEVEL_ALIASES.get(lowered) ?? lowered;
  if (!LOG_LEVELS.includes(level)) {
    throw new ConfigError(
      "--log-level",
      `${JSON.stringify(value)} is not one of ${LOG_LEVELS.join(", ")} (or warning, read as warn)`,
    );
  }
  return level;
}

/** Checks the `--log-format` value; throws ConfigError naming the setting. */
export function parseLogFormat(value: string): LogFormat {
  const format = LOG_FORMATS.find((known) => known === value.trim().toLowerCase());
  if (!format) {
    throw new ConfigError(
      "--log-format",
      `${JSON.stringify(value)} is not one of ${LOG_FORMATS.join(", ")}`,
    );
  }
  return format;
}

/**
 * The logger of `serve`, on stdout. `auto` is pretty when stdout is a terminal (a person reads
 * it; still one line per entry) and JSON otherwise (a collector parses it). Pretty lines are
 * written synchronously, so none is lost when a second signal exits at once; JSON goes through
 * pino's own fast path.
 */
export function createServeLogger(options: {
  level: string;
  format: LogFormat;
  isTerminal: boolean;
}): Logger {
  const settings = { level: options.level, base: { service: "gradecast" } };
  const isPretty = options.format === "pretty" || (options.format === "auto" && options.isTerminal);
  if (!isPretty) return pino(settings);
  return pino(
    settings,
    prettyStream({
      sync: true,
      singleLine: true,
      colorize: options.isTerminal,
      translateTime: "SYS:yyyy-mm-dd HH:MM:ss.l",
      ignore: "pid,hostname,service",
    }),
  );
}
