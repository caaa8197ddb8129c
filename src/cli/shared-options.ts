import { join } from "node:path";
import { type Command, Option } from "commander";
import type { StoreConfig } from "../server/index.js";
import { parseInteger, parseStoreLocation } from "./config-values.js";

/** An option with its environment variable and, when given, its default. */
export function envOption(
  flags: string,
  description: string,
  env: string,
  defaultValue?: string,
): Option {
  const made = new Option(flags, description).env(env);
  return defaultValue === undefined ? made : made.default(defaultValue);
}

/** The store settings as given (flag, else env, else default). */
export interface StoreFlags {
  dataDir: string;
  store?: string;
  pgPoolSize: string;
}

/** `--data-dir`, `--store`, `--pg-pool-size`: the same for `serve` and every command that opens its store. */
export function addStoreOptions(command: Command): Command {
  return command
    .addOption(
      envOption("--data-dir <dir>", "directory of the SQLite store", "GRADECAST_DATA_DIR", ".data"),
    )
    .addOption(
      envOption(
        "--store <path|url>",
        "SQLite database file, or the postgres:// URL of a database several instances share (default: <data-dir>/gradecast.sqlite)",
        "GRADECAST_STORE",
      ),
    )
    .addOption(
      envOption(
        "--pg-pool-size <n>",
        "most PostgreSQL connections of this instance",
        "GRADECAST_PG_POOL_SIZE",
        "10",
      ),
    );
}

/** Checks the store settings; throws ConfigError naming the setting. */
export function parseStoreFlags(flags: StoreFlags): StoreConfig {
  const location = parseStoreLocation(
    "--store",
    flags.store ?? join(flags.dataDir, "gradecast.sqlite"),
  );
  return location.kind === "sqlite"
    ? location
    : { ...location, poolSize: parseInteger("--pg-pool-size", flags.pgPoolSize, 1, 1_000) };
}

/** `--nats-url` and NATS credentials and TLS: the same for `serve` and every command that publishes. */
export function addNatsOptions(command: Command): Command {
  return command
    .addOption(
      envOption(
        "--nats-url <urls>",
        "NATS server URL(s), comma-separated",
        "GRADECAST_NATS_URL",
        "nats://127.0.0.1:4222",
      ),
    )
    .addOption(
      envOption("--nats-user <user>", "NATS user (with --nats-password)", "GRADECAST_NATS_USER"),
    )
    .addOption(envOption("--nats-password <password>", "NATS password", "GRADECAST_NATS_PASSWORD"))
    .addOption(envOption("--nats-token <token>", "NATS auth token", "GRADECAST_NATS_TOKEN"))
    .addOption(
      envOption(
        "--nats-creds <file>",
        "NATS .creds file (user JWT and NKey seed)",
        "GRADECAST_NATS_CREDS",
      ),
    )
    .addOption(
      envOption(
        "--nats-ca <file>",
        "connect to NATS over TLS, trusting this PEM CA",
        "GRADECAST_NATS_CA",
      ),
    );
}
