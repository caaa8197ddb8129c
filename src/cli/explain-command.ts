import { existsSync } from "node:fs";
import { Command, Option } from "commander";
import { validateSubmissionId } from "../contract/index.js";
import {
  type JetStreamView,
  readJetStream,
  storyLines,
  storyToJSON,
  tellSubmissionStory,
} from "../explain/index.js";
import {
  PostgresStore,
  redactUrl,
  SqliteStore,
  type Store,
  type SubmissionHistoryEntry,
} from "../store/index.js";
import { gradecastVersion } from "../version.js";
import { type CommandNatsFlags, connectCommand } from "./command-nats.js";
import { ConfigError, parseInteger } from "./config-values.js";
import {
  addNatsOptions,
  addStoreOptions,
  parseStoreFlags,
  type StoreFlags,
} from "./shared-options.js";

interface ExplainFlags extends StoreFlags, CommandNatsFlags {
  submissionId: string;
  queue?: string;
  json?: boolean;
  stream: string;
  deadLetterStream?: string;
  subjectPrefix: string;
  limit: string;
  maxDeadLetters: string;
  connectTimeout: string;
}

/** Exit codes of `gradecast explain`, as its --help and the README list them. */
export const EXPLAIN_EXIT_CODES = Object.freeze({
  /** The story was told (whatever the verdict). */
  told: 0,
  /** No accepted score of that submission: nothing to explain. */
  noScore: 1,
  /** The store could not be opened, or NATS/JetStream not read (the store's part is printed). */
  partial: 3,
});

/** Most consumers of the stream explain describes. */
const MAX_CONSUMERS = 1_000;
/** How long one read of dead letters may wait for them. */
const DEAD_LETTER_FETCH_TIMEOUT_MS = 10_000;

/**
 * `gradecast explain --submission-id N`: the whole way of one submission's scores, from the
 * store's outbox to every durable consumer of the stream and the dead-letter stream, with a
 * verdict line first. It reads the store like `outbox` (beside a running serve, taking none of
 * its leases) and NATS like `tail` and `dlq`.
 */
export function explainCommand(write: (line: string) => void): Command {
  const command = new Command("explain")
    .description(
      "where is my grade? one submission's accepted scores, their outbox state, each consumer's progress and dead letters, with a verdict first",
    )
    .requiredOption("--submission-id <id>", "edx-submissions id of the submission")
    .option("--queue <name>", "only this queue's submission (default: every queue with that id)")
    .option("--json", "one JSON document instead of text")
    .addOption(
      new Option(
        "--limit <n>",
        "most scores shown per queue, the newest (the latest always)",
      ).default("20"),
    )
    .addOption(
      new Option(
        "--max-dead-letters <n>",
        "most dead letters read per queue, from the oldest score shown on",
      ).default("10000"),
    )
    .addOption(
      new Option("--stream <name>", "the event stream")
        .env("GRADECAST_STREAM")
        .default("GRADECAST_SCORES"),
    )
    .addOption(
      new Option(
        "--dead-letter-stream <name>",
        "the dead-letter stream (default: <stream>_DLQ)",
      ).env("GRADECAST_DEAD_LETTER_STREAM"),
    )
    .addOption(
      new Option("--subject-prefix <prefix>", "subject prefix")
        .env("GRADECAST_SUBJECT_PREFIX")
        .default("gradecast"),
    )
    .addOption(
      new Option("--connect-timeout <ms>", "how long to try reaching NATS").default("5000"),
    )
    .addHelpText(
      "after",
      `
Verdicts, about the latest score of each queue (times in UTC):
  applied by <consumer> at <time>
  published, <consumer> is N events behind
  published, delivered to <consumer>, not acknowledged yet
  dead-lettered by <consumer>: <its error>
  accepted, waiting in the outbox: <last publish error> since <time> (attempts, next try)
  accepted, parked in the outbox: JetStream refused it (<reason>); ...
  published at <time> as stream sequence N, but no durable consumer ... takes <subject>
  published at <time> as stream sequence N, but NATS could not be reached from here ...
Several consumers: the one furthest from done first, then the others, joined by "; ".

Exit codes: 0 the story was told (whatever the verdict); 1 no accepted score of that
submission (refused calls are not stored); 2 bad usage; 3 the store could not be opened,
or NATS/JetStream could not be read (the store's part is printed).`,
    );
  addStoreOptions(command);
  addNatsOptions(command);
  return command.action(async (flags: ExplainFlags) => {
    const submissionId = parseSubmissionId(flags.submissionId);
    const limitPerQueue = parseInteger("--limit", flags.limit, 1, 10_000);
    const maxDeadLetters = parseInteger("--max-dead-letters", flags.maxDeadLetters, 0, 1_000_000);
    const connectTimeoutMs = parseInteger("--connect-timeout", flags.connectTimeout, 1, 600_000);
    const queueName = flags.queue;
    if (queueName === "") throw new ConfigError("--queue", "must not be empty");

    const history = await readHistory(flags, submissionId, { queueName, limitPerQueue });
    if (history === undefined) {
      process.exitCode = EXPLAIN_EXIT_CODES.partial;
      return;
    }
    if (history.length === 0) {
      const where = queueName === undefined ? "" : ` in queue ${queueName}`;
      process.stderr.write(
        `gradecast: no accepted score for submission ${submissionId}${where}: refused calls are not stored; check the grader's log or the status its call got\n`,
      );
      process.exitCode = EXPLAIN_EXIT_CODES.noScore;
      return;
    }

    const jetStream = await readNats(flags, history, { connectTimeoutMs, maxDeadLetters });
    const story = tellSubmissionStory(submissionId, history, jetStream, Date.now());
    if (flags.json) write(JSON.stringify(storyToJSON(story)));
    else for (const line of storyLines(story)) write(line);
    if (!jetStream.isReachable) process.exitCode = EXPLAIN_EXIT_CODES.partial;
  });
}

/**
 * The submission's history, or undefined (said on stderr) when the store cannot be opened. A
 * SQLite file that does not exist is not created: a wrong `--store` must not look like a store
 * without that submission.
 */
async function readHistory(
  flags: ExplainFlags,
  submissionId: bigint,
  options: { queueName: string | undefined; limitPerQueue: number },
): Promise<SubmissionHistoryEntry[] | undefined> {
  const config = parseStoreFlags(flags);
  const where = config.kind === "sqlite" ? config.path : redactUrl(config.url);
  if (config.kind === "sqlite" && !existsSync(config.path)) {
    process.stderr.write(`gradecast: no SQLite store at ${where} (--store, --data-dir)\n`);
    return undefined;
  }
  // This command records no score: the encoding is never used.
  const encoding = {
    origin: { source: "", sourcehost: "", sourcelib: gradecastVersion() },
    subjectPrefix: flags.subjectPrefix,
  };
  const store: Store =
    config.kind === "sqlite"
      ? new SqliteStore({ path: config.path, encoding, isOwner: false })
      : new PostgresStore({ url: config.url, poolSize: 1, encoding });
  try {
    await store.start();
  } catch (error) {
    process.stderr.write(`gradecast: cannot open the store at ${where}: ${messageOf(error)}\n`);
    return undefined;
  }
  try {
    return await store.submissionHistory(submissionId, options);
  } catch (error) {
    process.stderr.write(`gradecast: cannot read the store at ${where}: ${messageOf(error)}\n`);
    return undefined;
  } finally {
    await store.close();
  }
}

/** What JetStream says of the history's events; NATS not reached is a view, not a failure. */
async function readNats(
  flags: ExplainFlags,
  history: readonly SubmissionHistoryEntry[],
  options: { connectTimeoutMs: number; maxDeadLetters: number },
): Promise<JetStreamView> {
  let connection: Awaited<ReturnType<typeof connectCommand>>;
  try {
    connection = await connectCommand(flags, "gradecast explain", {
      timeoutMs: options.connectTimeoutMs,
    });
  } catch (error) {
    return { isReachable: false, problem: messageOf(error) };
  }
  try {
    return await readJetStream(
      connection,
      {
        stream: flags.stream,
        deadLetterStream: flags.deadLetterStream ?? `${flags.stream}_DLQ`,
        subjectPrefix: flags.subjectPrefix,
      },
      history,
      {
        maxDeadLetters: options.maxDeadLetters,
        maxConsumers: MAX_CONSUMERS,
        fetchTimeoutMs: DEAD_LETTER_FETCH_TIMEOUT_MS,
      },
    );
  } finally {
    await connection.drain();
  }
}

function parseSubmissionId(value: string): bigint {
  if (!/^\d+$/.test(value.trim())) {
    throw new ConfigError("--submission-id", `${JSON.stringify(value)} is not a whole number`);
  }
  const id = BigInt(value.trim());
  const [problem] = validateSubmissionId(id, "--submission-id");
  if (problem) throw new ConfigError("--submission-id", problem.description);
  return id;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
