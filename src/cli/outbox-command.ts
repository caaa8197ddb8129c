import { Command, Option } from "commander";
import { type Logger, pino } from "pino";
import { EventPublisher, NatsLink } from "../events/index.js";
import {
  type OutboxListing,
  PostgresStore,
  type PublishFailure,
  redactUrl,
  SqliteStore,
  type Store,
} from "../store/index.js";
import { gradecastVersion } from "../version.js";
import { ConfigError, parseInteger, parseNatsServers } from "./config-values.js";
import { type NatsAccessFlags, parseNatsAccess } from "./credential-values.js";
import {
  addNatsOptions,
  addStoreOptions,
  parseStoreFlags,
  type StoreFlags,
} from "./shared-options.js";

interface OutboxFlags extends StoreFlags {
  json?: boolean;
}

interface RetryFlags extends StoreFlags, NatsAccessFlags {
  natsUrl: string;
  all?: boolean;
  connectTimeout: string;
}

/** How long `outbox retry` publishes at most before it leaves the rest to `serve`. */
const RETRY_PUBLISH_TIMEOUT_MS = 5_000;
/** Events published per round by `outbox retry`. */
const RETRY_BATCH = 256;
/** The longest lease `outbox retry` holds on events it publishes. */
const RETRY_LEASE_MS = 30_000;

/**
 * `gradecast outbox`: what waits in the outbox (pending, backing off, parked)
 * and re-driving parked events once their cause is fixed. It opens the store
 * like `serve` (same flags), beside a running `serve` if need be: it never
 * takes over that process's leases.
 */
export function outboxCommand(write: (line: string) => void): Command {
  const outbox = new Command("outbox").description(
    "list the events waiting in the outbox (pending or parked) and re-drive parked ones",
  );
  addStoreOptions(
    outbox
      .command("list")
      .description("unpublished events, oldest first, with their attempts and last error")
      .option("--parked", "only parked events (JetStream refused them for their content)")
      .addOption(new Option("--limit <n>", "most events listed").default("100"))
      .option("--json", "one JSON object per line"),
  ).action(async (flags: OutboxFlags & { parked?: boolean; limit: string }) => {
    const limit = parseInteger("--limit", flags.limit, 1, 1_000_000);
    await withStore(flags, async (store) => {
      const entries = await store.listOutbox({ limit, parkedOnly: flags.parked === true });
      const backlog = await store.outboxBacklog();
      for (const entry of entries) write(flags.json ? JSON.stringify(summary(entry)) : line(entry));
      if (!flags.json) {
        write(`${backlog.pending} pending, ${backlog.parked} parked`);
      }
    });
  });
  addNatsOptions(
    addStoreOptions(
      outbox
        .command("retry")
        .description(
          "make parked events (the ones named, or --all) pending again and publish what is pending now",
        )
        .argument("[event-ids...]", "event ids (from `outbox list`)")
        .option("--all", "every parked or backing-off event")
        .addOption(
          new Option("--connect-timeout <ms>", "how long to try reaching NATS").default("5000"),
        ),
    ),
  ).action(async (eventIds: string[], flags: RetryFlags) => {
    if (!flags.all && eventIds.length === 0) {
      throw new ConfigError("retry", "name the event ids to re-drive, or --all");
    }
    const connectTimeoutMs = parseInteger("--connect-timeout", flags.connectTimeout, 1, 600_000);
    const servers = parseNatsServers("--nats-url", flags.natsUrl);
    const natsAccess = parseNatsAccess(flags);
    await withStore(flags, async (store) => {
      const unparked = await store.unparkEvents(flags.all ? undefined : eventIds);
      write(`${unparked} event(s) made pending again`);
      // Warnings go to stderr as JSON lines; stdout is the command's answer.
      const logger = pino({ level: "warn" }, pino.destination(2));
      const link = new NatsLink(
        {
          servers,
          name: "gradecast outbox retry",
          reconnectTimeWaitMs: 500,
          connectTimeoutMs: Math.min(connectTimeoutMs, 2_000),
          ...natsAccess,
        },
        logger,
      );
      try {
        if (!(await connectWithin(link, connectTimeoutMs))) {
          write(
            `NATS did not answer at ${servers} within ${connectTimeoutMs} ms: the events stay pending, and a running gradecast serve publishes them`,
          );
          process.exitCode = 1;
          return;
        }
        const outcome = await publishPending(store, link, logger);
        write(
          `${outcome.published} published, ${outcome.parked} parked again, ${outcome.failed} still pending`,
        );
        if (outcome.parked > 0 || outcome.failed > 0) process.exitCode = 1;
      } finally {
        await link.close();
      }
    });
  });
  return outbox;
}

/** Publishes pending events in rounds until none is left or a round publishes nothing. */
async function publishPending(
  store: Store,
  link: NatsLink,
  logger: Logger,
): Promise<{ published: number; parked: number; failed: number }> {
  const publisher = new EventPublisher(link, { timeoutMs: RETRY_PUBLISH_TIMEOUT_MS });
  const totals = { published: 0, parked: 0, failed: 0 };
  for (;;) {
    const nowMs = Date.now();
    const entries = await store.claimPending(RETRY_BATCH, nowMs, nowMs + RETRY_LEASE_MS);
    if (entries.length === 0) return totals;
    const results = await Promise.allSettled(entries.map((entry) => publisher.publish(entry)));
    const published = results.flatMap((result) =>
      result.status === "fulfilled" ? [result.value] : [],
    );
    const failures: PublishFailure[] = results.flatMap((result, index) => {
      const entry = entries[index];
      if (result.status === "fulfilled" || !entry) return [];
      const error = result.reason instanceof Error ? result.reason.message : String(result.reason);
      const isPermanent = (result.reason as { isPermanent?: boolean }).isPermanent === true;
      logger.warn(
        { eventId: entry.eventId, subject: entry.message.subject, error },
        "publish failed",
      );
      // Not retried by this command: a running serve's relay takes them at once.
      return [
        isPermanent
          ? { eventId: entry.eventId, kind: "park" as const, error }
          : {
              eventId: entry.eventId,
              kind: "retry" as const,
              retryAtMs: 0,
              error,
            },
      ];
    });
    await store.markPublished(published);
    await store.releaseClaims(failures);
    totals.published += published.length;
    totals.parked += failures.filter((failure) => failure.kind === "park").length;
    totals.failed += failures.filter((failure) => failure.kind === "retry").length;
    if (published.length === 0) return totals;
  }
}

function connectWithin(link: NatsLink, timeoutMs: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    link.start().then(() => true),
    new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** Opens the store the flags name without taking over a serving process's leases. */
async function withStore<T>(flags: StoreFlags, run: (store: Store) => Promise<T>): Promise<T> {
  const config = parseStoreFlags(flags);
  // This command records no score: the encoding is never used.
  const encoding = {
    origin: { source: "", sourcehost: "", sourcelib: gradecastVersion() },
    subjectPrefix: "gradecast",
  };
  const store =
    config.kind === "sqlite"
      ? new SqliteStore({ path: config.path, encoding, isOwner: false })
      : new PostgresStore({ url: config.url, poolSize: 2, encoding });
  try {
    await store.start();
  } catch (error) {
    const where = config.kind === "sqlite" ? config.path : redactUrl(config.url);
    throw new ConfigError("--store", `cannot open ${where}: ${(error as Error).message}`);
  }
  try {
    return await run(store);
  } finally {
    await store.close();
  }
}

function summary(entry: OutboxListing) {
  return {
    eventId: entry.eventId,
    submissionId: entry.submissionId.toString(),
    subject: entry.subject,
    state: stateOf(entry),
    createdAt: new Date(entry.createdAtMs).toISOString(),
    attempts: entry.attempts,
    nextAttemptAt:
      entry.parkedReason === undefined && entry.leaseUntilMs > Date.now()
        ? new Date(entry.leaseUntilMs).toISOString()
        : undefined,
    parkedReason: entry.parkedReason,
    lastError: entry.lastError,
  };
}

function stateOf(entry: OutboxListing): "parked" | "backing-off" | "pending" {
  if (entry.parkedReason !== undefined) return "parked";
  return entry.leaseUntilMs > Date.now() ? "backing-off" : "pending";
}

function line(entry: OutboxListing): string {
  const parts = [
    `#${entry.position}`,
    stateOf(entry),
    new Date(entry.createdAtMs).toISOString(),
    `submission ${entry.submissionId}`,
    `event ${entry.eventId}`,
    entry.subject,
    `attempts ${entry.attempts}`,
  ];
  if (entry.lastError !== undefined) parts.push(JSON.stringify(entry.lastError));
  return parts.join("  ");
}
