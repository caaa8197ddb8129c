import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import parseDuration from "parse-duration";
import { redactUrl } from "../store/redact-url.js";

/** A setting that cannot be used; the CLI prints `message` on one line and exits 2. */
export class ConfigError extends Error {
  readonly setting: string;

  constructor(setting: string, problem: string) {
    super(`invalid ${setting}: ${problem}`);
    this.name = "ConfigError";
    this.setting = setting;
  }
}

/**
 * Parses a duration with parse-duration: `500ms`, `30s`, `10m`, `2h`, `30d`, combinations
 * such as `1h30m`, or a bare number of milliseconds. Negative and unparseable values are refused.
 */
export function parseDurationMs(setting: string, value: string): number {
  const parsed = parseDuration(value.trim());
  if (parsed === null || !Number.isFinite(parsed) || parsed < 0) {
    throw new ConfigError(
      setting,
      `${JSON.stringify(value)} is not a duration like 500ms, 30s, 10m, 2h or 30d`,
    );
  }
  return Math.round(parsed);
}

/** The spellings of a boolean setting, as environment variables usually carry them. */
const BOOLEAN_WORDS: ReadonlyMap<string, boolean> = new Map([
  ["true", true],
  ["1", true],
  ["yes", true],
  ["on", true],
  ["false", false],
  ["0", false],
  ["no", false],
  ["off", false],
]);

/**
 * Parses a boolean setting: `true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off`, in any case
 * (a flag given without a value arrives as `true` already).
 */
export function parseBoolean(setting: string, value: string | boolean): boolean {
  if (typeof value === "boolean") return value;
  const parsed = BOOLEAN_WORDS.get(value.trim().toLowerCase());
  if (parsed === undefined) {
    throw new ConfigError(
      setting,
      `${JSON.stringify(value)} is not a boolean: use true/false, 1/0, yes/no or on/off`,
    );
  }
  return parsed;
}

/** Parses a whole number within [min, max]. */
export function parseInteger(setting: string, value: string, min: number, max: number): number {
  const parsed = Number(value);
  if (
    !/^-?\d+$/.test(value.trim()) ||
    !Number.isSafeInteger(parsed) ||
    parsed < min ||
    parsed > max
  ) {
    throw new ConfigError(
      setting,
      `${JSON.stringify(value)} is not a whole number from ${min} to ${max}`,
    );
  }
  return parsed;
}

/** Checks a `host:port` listen address. */
export function parseListenAddress(setting: string, value: string): string {
  const match = /^(.+):(\d+)$/.exec(value.trim());
  const port = Number(match?.[2]);
  if (!match || !(port >= 0 && port <= 65_535)) {
    throw new ConfigError(
      setting,
      `${JSON.stringify(value)} is not host:port (e.g. 0.0.0.0:50051)`,
    );
  }
  return value.trim();
}

/** Checks a comma-separated list of nats:// (or tls://) URLs. */
export function parseNatsServers(setting: string, value: string): string {
  for (const server of value.split(",")) {
    let url: URL;
    try {
      url = new URL(server.trim());
    } catch {
      throw new ConfigError(
        setting,
        `${JSON.stringify(redactUrl(server.trim()))} is not a URL like nats://127.0.0.1:4222`,
      );
    }
    if (!["nats:", "tls:"].includes(url.protocol) || url.hostname === "") {
      throw new ConfigError(
        setting,
        `${JSON.stringify(redactUrl(server.trim()))} must be nats://host:port or tls://host:port`,
      );
    }
  }
  return value;
}

/**
 * The store a `--store` value names: a `postgres://` (or `postgresql://`) URL,
 * else the path of a SQLite file.
 */
export function parseStoreLocation(
  setting: string,
  value: string,
): { kind: "sqlite"; path: string } | { kind: "postgres"; url: string } {
  if (!/^postgres(ql)?:/i.test(value)) return { kind: "sqlite", path: resolve(value) };
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError(setting, "is not a URL like postgres://user@host:5432/database");
  }
  if (url.hostname === "" && !url.searchParams.has("host")) {
    throw new ConfigError(setting, "a postgres:// URL must name a host");
  }
  return { kind: "postgres", url: value };
}

/** Reads a file a setting names; a missing or unreadable file is a ConfigError naming the setting. */
export function readSettingFile(setting: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    const reason = error instanceof Error && "code" in error ? String(error.code) : String(error);
    throw new ConfigError(setting, `cannot read ${JSON.stringify(path)} (${reason})`);
  }
}
