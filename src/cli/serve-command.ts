import { hostname } from "node:os";
import { resolve } from "node:path";
import { Command, Option } from "commander";
import type { Logger } from "pino";
import { isLoopbackAddress } from "../client/index.js";
import { subjectPrefixProblem } from "../contract/index.js";
import {
  CredentialsFileError,
  GradecastServer,
  type GraderAuthConfig,
  loadGradersSync,
  type ServeConfig,
} from "../server/index.js";
import { gradecastVersion } from "../version.js";
import {
  ConfigError,
  parseBoolean,
  parseDurationMs,
  parseInteger,
  parseListenAddress,
  parseNatsServers,
} from "./config-values.js";
import {
  type GrpcTlsFlags,
  type NatsAccessFlags,
  parseGrpcTls,
  parseNatsAccess,
} from "./credential-values.js";
import {
  createServeLogger,
  LOG_FORMATS,
  LOG_LEVELS,
  parseLogFormat,
  parseLogLevel,
} from "./serve-logger.js";
import {
  addNatsOptions,
  addStoreOptions,
  envOption,
  parseStoreFlags,
  type StoreFlags,
} from "./shared-options.js";
import {
  addTransportOptions,
  parseTransportFlags,
  type TransportFlags,
} from "./transport-flags.js";

/** Raw option values as commander hands them over (flag, else env, else default). */
export interface ServeFlags extends GrpcTlsFlags, NatsAccessFlags, StoreFlags, TransportFlags {
  listen: string;
  /** The grader credentials file. */
  credentials?: string;
  /** `true` from --insecure-no-auth, else the GRADECAST_INSECURE_NO_AUTH text; unset when neither. */
  insecureNoAuth?: string | boolean;
  /** Likewise for --insecure-no-auth-on-network. */
  insecureNoAuthOnNetwork?: string | boolean;
  natsUrl: string;
  stream: string;
  deadLetterStream?: string;
  subjectPrefix: string;
  source: string;
  sourcehost: string;
  duplicateWindow: string;
  maxAge: string;
  maxBytes: string;
  replicas: string;
  publishTimeout: string;
  publishWait: string;
  commitMaxBatch: string;
  /** Unset: 2 for SQLite, 4 for PostgreSQL. */
  commitBatchesInFlight?: string;
  relayBatch: string;
  relayMaxBackoff: string;
  outboxRetention: string;
  maxMessageBytes: string;
  shutdownTimeout: string;
  /** `false` from --no-reflection, else the --reflection / GRADECAST_REFLECTION text. */
  reflection: string | boolean;
  metricsListen: string;
  logLevel: string;
  /** `json`, `pretty` or `auto` (pretty on a terminal); unset reads as `auto`. */
  logFormat?: string;
}

/** The `serve` subcommand: every option has a flag and an environment variable. */
export function serveCommand(): Command {
  const option = envOption;
  const command = new Command("serve").description(
    "serve ScoreService over gRPC and publish accepted scores to JetStream",
  );
  addNatsOptions(command);
  addStoreOptions(command);
  addTransportOptions(command);
  return (
    command
      .addOption(
        option(
          "--listen <host:port>",
          "gRPC listen address",
          "GRADECAST_LISTEN",
          "127.0.0.1:50051",
        ),
      )
      .addOption(
        option(
          "--credentials <file>",
          "grader credentials (JSON: token hashes and queues); SIGHUP reloads it",
          "GRADECAST_CREDENTIALS",
        ),
      )
      // An optional value, so GRADECAST_INSECURE_NO_AUTH=false reads as false (a plain flag's
      // env would count as set whatever its value).
      .addOption(
        option(
          "--insecure-no-auth [true|false]",
          "serve without grader authentication (local development only; loopback --listen only)",
          "GRADECAST_INSECURE_NO_AUTH",
        ),
      )
      .addOption(
        option(
          "--insecure-no-auth-on-network [true|false]",
          "with --insecure-no-auth, allow a --listen address other machines can reach",
          "GRADECAST_INSECURE_NO_AUTH_ON_NETWORK",
        ),
      )
      .addOption(
        option(
          "--tls-cert <file>",
          "serve gRPC over TLS with this PEM certificate (chain); needs --tls-key",
          "GRADECAST_TLS_CERT",
        ),
      )
      .addOption(option("--tls-key <file>", "PEM private key of --tls-cert", "GRADECAST_TLS_KEY"))
      .addOption(
        option(
          "--tls-client-ca <file>",
          "require client certificates signed by this PEM CA (mutual TLS)",
          "GRADECAST_TLS_CLIENT_CA",
        ),
      )
      .addOption(
        option("--stream <name>", "JetStream stream name", "GRADECAST_STREAM", "GRADECAST_SCORES"),
      )
      .addOption(
        option(
          "--dead-letter-stream <name>",
          "JetStream stream of <prefix>.dlq.v1.* (events consumers gave up on) (default: <stream>_DLQ)",
          "GRADECAST_DEAD_LETTER_STREAM",
        ),
      )
      .addOption(
        option(
          "--subject-prefix <prefix>",
          "subjects are <prefix>.scores.v1.<queue_name>",
          "GRADECAST_SUBJECT_PREFIX",
          "gradecast",
        ),
      )
      .addOption(
        option(
          "--source <source>",
          "event metadata source",
          "GRADECAST_SOURCE",
          "openedx/gradecast/grpc",
        ),
      )
      .addOption(
        option(
          "--sourcehost <host>",
          "event metadata sourcehost",
          "GRADECAST_SOURCEHOST",
          hostname(),
        ),
      )
      .addOption(
        option(
          "--duplicate-window <duration>",
          "stream duplicate window (drops re-published event ids)",
          "GRADECAST_DUPLICATE_WINDOW",
          "10m",
        ),
      )
      .addOption(
        option(
          "--max-age <duration>",
          "stream max age; 0 keeps events forever",
          "GRADECAST_MAX_AGE",
          "30d",
        ),
      )
      .addOption(
        option(
          "--max-bytes <bytes>",
          "stream max bytes; -1 for no limit",
          "GRADECAST_MAX_BYTES",
          "-1",
        ),
      )
      .addOption(
        option(
          "--replicas <n>",
          "stream replicas (3 in a JetStream cluster)",
          "GRADECAST_REPLICAS",
          "1",
        ),
      )
      .addOption(
        option(
          "--publish-timeout <duration>",
          "how long one publish waits for its ack",
          "GRADECAST_PUBLISH_TIMEOUT",
          "5s",
        ),
      )
      .addOption(
        option(
          "--publish-wait <duration>",
          "how long SubmitScore waits for the ack before answering published=false",
          "GRADECAST_PUBLISH_WAIT",
          "1s",
        ),
      )
      .addOption(
        option(
          "--commit-max-batch <n>",
          "most scores per store transaction (group commit)",
          "GRADECAST_COMMIT_MAX_BATCH",
          "512",
        ),
      )
      .addOption(
        option(
          "--commit-batches-in-flight <n>",
          "group-commit transactions in flight at once (default: 2 for SQLite, 4 for PostgreSQL)",
          "GRADECAST_COMMIT_BATCHES_IN_FLIGHT",
        ),
      )
      .addOption(
        option(
          "--relay-batch <n>",
          "most outbox events the relay publishes per round",
          "GRADECAST_RELAY_BATCH",
          "256",
        ),
      )
      .addOption(
        option(
          "--relay-max-backoff <duration>",
          "longest wait between relay retries while NATS is down, and of one event that failed on its own",
          "GRADECAST_RELAY_MAX_BACKOFF",
          "10s",
        ),
      )
      .addOption(
        option(
          "--outbox-retention <duration>",
          "how long the outbox keeps a published event's row (the stream is the history; scores stay); 0 keeps them forever",
          "GRADECAST_OUTBOX_RETENTION",
          "24h",
        ),
      )
      .addOption(
        option(
          "--max-message-bytes <bytes>",
          "largest gRPC request accepted",
          "GRADECAST_MAX_MESSAGE_BYTES",
          "1048576",
        ),
      )
      .addOption(
        option(
          "--shutdown-timeout <duration>",
          "bound on graceful shutdown",
          "GRADECAST_SHUTDOWN_TIMEOUT",
          "10s",
        ),
      )
      .addOption(
        option(
          "--metrics-listen <host:port|off>",
          "HTTP address of /metrics, /healthz and /readyz; off disables it",
          "GRADECAST_METRICS_LISTEN",
          "127.0.0.1:9464",
        ),
      )
      // --no-reflection turns reflection off; GRADECAST_REFLECTION=false does the same through
      // the hidden --reflection <bool> (commander would take any value of a plain flag's env as set).
      .addOption(
        option(
          "--reflection <true|false>",
          "serve gRPC server reflection",
          "GRADECAST_REFLECTION",
          "true",
        ).hideHelp(),
      )
      .addOption(
        new Option(
          "--no-reflection",
          "do not serve gRPC server reflection (env: GRADECAST_REFLECTION=false)",
        ),
      )
      .addOption(
        option(
          "--log-level <level>",
          `log level (${LOG_LEVELS.join(", ")}; warning reads as warn)`,
          "GRADECAST_LOG_LEVEL",
          "info",
        ),
      )
      .addOption(
        option(
          "--log-format <format>",
          `log output (${LOG_FORMATS.join(", ")}); auto is pretty on a terminal, JSON lines otherwise`,
          "GRADECAST_LOG_FORMAT",
          "auto",
        ),
      )
      .action(async (flags: ServeFlags) => {
        const config = parseServeConfig(flags);
        // Every setting is checked before anything is said: a bad one is the only line.
        const logFormat = parseLogFormat(flags.logFormat ?? "auto");
        if (config.auth.kind === "tokens" && !config.tls && !isLoopbackAddress(config.listen)) {
          process.stderr.write(
            `gradecast: WARNING: grader tokens travel in plaintext to ${config.listen}: anyone on the path can read them; serve with --tls-cert and --tls-key\n`,
          );
        }
        if (config.auth.kind === "none") {
          // On stderr whatever the log level: `--log-level error` must not hide it.
          process.stderr.write(
            `gradecast: WARNING: grader authentication is off (--insecure-no-auth): anyone who reaches ${config.listen} may submit scores for any queue\n`,
          );
        }
        const logger = createServeLogger({
          level: parseLogLevel(flags.logLevel),
          format: logFormat,
          isTerminal: process.stdout.isTTY === true,
        });
        await runUntilSignal(new GradecastServer(config, logger), logger);
      })
  );
}

/** Validates the raw flags into a ServeConfig; throws ConfigError naming the setting. */
export function parseServeConfig(flags: ServeFlags): ServeConfig {
  parseLogLevel(flags.logLevel);
  const prefixProblem = subjectPrefixProblem(flags.subjectPrefix);
  if (prefixProblem) throw new ConfigError("--subject-prefix", prefixProblem);
  const deadLetterStream = flags.deadLetterStream ?? `${flags.stream}_DLQ`;
  for (const [setting, name] of [
    ["--stream", flags.stream],
    ["--dead-letter-stream", deadLetterStream],
  ] as const) {
    if (!/^[A-Za-z0-9_-]+$/.test(name)) {
      throw new ConfigError(setting, "a stream name is 1+ characters of A-Z a-z 0-9 _ -");
    }
  }
  if (flags.stream === deadLetterStream) {
    throw new ConfigError("--dead-letter-stream", "must differ from --stream");
  }
  const publishTimeoutMs = parseDurationMs("--publish-timeout", flags.publishTimeout);
  const relayMaxBackoffMs = parseDurationMs("--relay-max-backoff", flags.relayMaxBackoff);
  const duplicateWindowMs = parseDurationMs("--duplicate-window", flags.duplicateWindow);
  const leaseMs = publishTimeoutMs + 5_000;
  // A re-publish happens at most a lease plus a backoff after the attempt it repeats;
  // JetStream only drops it as a duplicate if that is inside the window.
  const slowestRepublishMs = leaseMs + relayMaxBackoffMs + publishTimeoutMs;
  if (duplicateWindowMs < 2 * slowestRepublishMs) {
    throw new ConfigError(
      "--duplicate-window",
      `must be at least ${Math.ceil((2 * slowestRepublishMs) / 1000)}s (twice publish timeout + lease + relay max backoff) so re-publishes are deduplicated`,
    );
  }
  const outboxRetentionMs = parseDurationMs("--outbox-retention", flags.outboxRetention);
  const tls = parseGrpcTls(flags);
  const store = parseStoreFlags(flags);
  const natsAccess = parseNatsAccess(flags);
  const auth = parseGraderAuth(flags);
  const listen = parseListenAddress("--listen", flags.listen);
  const isOnNetwork =
    flags.insecureNoAuthOnNetwork !== undefined &&
    parseBoolean("--insecure-no-auth-on-network", flags.insecureNoAuthOnNetwork);
  if (auth.kind === "none" && !isLoopbackAddress(listen) && !isOnNetwork) {
    throw new ConfigError(
      "--insecure-no-auth",
      `would let anyone who reaches ${listen} submit scores for any queue: listen on 127.0.0.1, set --credentials, or add --insecure-no-auth-on-network if you really mean it`,
    );
  }
  return {
    listen,
    auth,
    ...(tls ? { tls } : {}),
    maxMessageBytes: parseInteger(
      "--max-message-bytes",
      flags.maxMessageBytes,
      4096,
      64 * 1024 * 1024,
    ),
    transport: parseTransportFlags(flags),
    store,
    nats: {
      servers: parseNatsServers("--nats-url", flags.natsUrl),
      reconnectTimeWaitMs: 1_000,
      connectTimeoutMs: 2_000,
      ...natsAccess,
    },
    stream: {
      name: flags.stream,
      deadLetterName: deadLetterStream,
      subjectPrefix: flags.subjectPrefix,
      duplicateWindowMs,
      maxAgeMs: parseDurationMs("--max-age", flags.maxAge),
      maxBytes: parseInteger("--max-bytes", flags.maxBytes, -1, Number.MAX_SAFE_INTEGER),
      replicas: parseInteger("--replicas", flags.replicas, 1, 5),
    },
    events: {
      source: flags.source,
      sourcehost: flags.sourcehost,
      sourcelib: gradecastVersion(),
    },
    publish: {
      timeoutMs: publishTimeoutMs,
      waitMs: parseDurationMs("--publish-wait", flags.publishWait),
    },
    commit: {
      maxBatch: parseInteger("--commit-max-batch", flags.commitMaxBatch, 1, 10_000),
      maxBatchesInFlight:
        flags.commitBatchesInFlight === undefined
          ? store.kind === "postgres"
            ? 4
            : 2
          : parseInteger("--commit-batches-in-flight", flags.commitBatchesInFlight, 1, 64),
    },
    relay: {
      batchSize: parseInteger("--relay-batch", flags.relayBatch, 1, 10_000),
      leaseMs,
      idlePollMs: 1_000,
      initialBackoffMs: 100,
      maxBackoffMs: relayMaxBackoffMs,
    },
    ...(outboxRetentionMs > 0 ? { outboxPruning: outboxPruningOf(outboxRetentionMs) } : {}),
    reflection: parseReflection(flags.reflection),
    metricsListen:
      flags.metricsListen.trim() === "off"
        ? undefined
        : parseListenAddress("--metrics-listen", flags.metricsListen),
    shutdownTimeoutMs: parseDurationMs("--shutdown-timeout", flags.shutdownTimeout),
  };
}

/** Rows one pruning call deletes: a few milliseconds of the SQLite thread per batch. */
const OUTBOX_PRUNE_BATCH_ROWS = 256;

/**
 * Pruning with a retention: a round every tenth of the retention, from once a second to once a
 * minute, so each round deletes about a minute's events at most instead of a day's at once.
 */
function outboxPruningOf(retentionMs: number): NonNullable<ServeConfig["outboxPruning"]> {
  return {
    retentionMs,
    intervalMs: Math.min(60_000, Math.max(1_000, Math.round(retentionMs / 10))),
    batchSize: OUTBOX_PRUNE_BATCH_ROWS,
  };
}

function parseReflection(value: string | boolean): boolean {
  return parseBoolean("GRADECAST_REFLECTION", value);
}

/**
 * Grader authentication is on unless explicitly turned off: `--credentials` names the file
 * (checked here, so a bad one stops `serve` with one line), `--insecure-no-auth` opts out.
 */
function parseGraderAuth(flags: ServeFlags): GraderAuthConfig {
  const isInsecure =
    flags.insecureNoAuth !== undefined && parseBoolean("--insecure-no-auth", flags.insecureNoAuth);
  if (flags.credentials !== undefined) {
    if (isInsecure) {
      throw new ConfigError("--insecure-no-auth", "cannot be combined with --credentials");
    }
    const credentialsPath = resolve(flags.credentials);
    try {
      loadGradersSync(credentialsPath);
    } catch (error) {
      if (error instanceof CredentialsFileError) {
        throw new ConfigError("--credentials", error.message);
      }
      throw error;
    }
    return { kind: "tokens", credentialsPath };
  }
  if (isInsecure) return { kind: "none" };
  throw new ConfigError(
    "--credentials",
    "graders must authenticate: set --credentials or, for local development, --insecure-no-auth",
  );
}

/**
 * Serves until SIGTERM or SIGINT, then stops gracefully; a second signal exits at once.
 * SIGHUP reloads the grader credentials; a failed reload keeps the old ones.
 */
async function runUntilSignal(server: GradecastServer, logger: Logger): Promise<void> {
  await server.start();
  await new Promise<void>((resolveStopped) => {
    let isStopping = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (isStopping) {
        logger.warn({ signal }, "second signal: exiting without finishing the shutdown");
        process.exit(1);
      }
      isStopping = true;
      logger.info({ signal }, "signal received");
      server.stop().then(resolveStopped, (error: unknown) => {
        logger.error({ err: error }, "shutdown failed");
        process.exitCode = 1;
        resolveStopped();
      });
    };
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
    process.on("SIGHUP", () => {
      logger.info({ signal: "SIGHUP" }, "reloading grader credentials");
      server
        .reloadCredentials()
        .catch((error: unknown) =>
          logger.error({ err: error }, "credentials reload failed; the previous credentials stay"),
        );
    });
  });
}
