import { readFileSync } from "node:fs";
import { resolve } from "node:path";
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

const DURATION_UNITS_MS: Record<string, number> = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

/** Parses `500ms`, `30s`, `10m`, `2h`, `30d` (or a bare number of milliseconds). */
export function parseDurationMs(setting: string, value: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(value.trim());
  const amount = match?.[1];
  if (!match || amount === undefined) {
    throw new ConfigError(
      setting,
      `${JSON.stringify(value)} is not a duration like 500ms, 30s, 10m, 2h or 30d`,
    );
  }
  return Math.round(Number(amount) * (DURATION_UNITS_MS[match[2] ?? "ms"] ?? 1));
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
