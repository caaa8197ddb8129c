import type { NatsConnection } from "@nats-io/nats-core";
import { Command, Option } from "commander";
import {
  type DeadLetterEntry,
  listDeadLetters,
  printable,
  RedriveRefusedError,
  redriveDeadLetter,
} from "../subscriber/dead-letter-queue.js";
import { type CommandNatsFlags, connectCommand, streamNotFound } from "./command-nats.js";
import { ConfigError } from "./config-values.js";
import { addNatsOptions } from "./shared-options.js";

interface DlqFlags extends CommandNatsFlags {
  stream: string;
  deadLetterStream?: string;
}

/** `--stream`, and `--dead-letter-stream` defaulting to `<stream>_DLQ`, as `serve` has them. */
function withStreamOptions(command: Command): Command {
  return addNatsOptions(command)
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
    );
}

function deadLetterStreamOf(flags: DlqFlags): string {
  return flags.deadLetterStream ?? `${flags.stream}_DLQ`;
}

/** `gradecast dlq`: list dead-lettered events and re-drive them to their subject. */
export function dlqCommand(write: (line: string) => void): Command {
  const dlq = new Command("dlq").description(
    "list events consumers gave up on, and re-drive them to their original subject",
  );
  withStreamOptions(
    dlq
      .command("list")
      .description(
        "list dead letters, oldest first, with the consumer that gave up, its deliveries and last error (one JSON line each with --json)",
      )
      .option("--consumer <name>", "only the dead letters this consumer (durable name) gave up on")
      .option("--json", "one JSON object per line"),
  ).action(async (flags: DlqFlags & { json?: boolean; consumer?: string }) => {
    const stream = deadLetterStreamOf(flags);
    const all = await withNats(flags, (nc) => listDeadLetters(nc, stream));
    const entries =
      flags.consumer === undefined ? all : all.filter((entry) => entry.consumer === flags.consumer);
    for (const entry of entries) write(flags.json ? JSON.stringify(summary(entry)) : line(entry));
    if (!flags.json) {
      const by = flags.consumer === undefined ? "" : ` from consumer ${printable(flags.consumer)}`;
      write(`${entries.length} dead letter(s)${by} in ${stream}`);
    }
  });
  withStreamOptions(
    dlq
      .command("redrive")
      .description("publish dead letters again on their original subject and remove them")
      .argument("[sequences...]", "dead-letter sequences (from `dlq list`)")
      .option("--all", "every dead letter"),
  ).action(async (sequences: string[], flags: DlqFlags & { all?: boolean }) => {
    if (!flags.all && sequences.length === 0) {
      throw new ConfigError("redrive", "name the sequences to re-drive, or --all");
    }
    const stream = deadLetterStreamOf(flags);
    await withNats(flags, async (nc) => {
      const chosen = flags.all
        ? (await listDeadLetters(nc, stream)).map((entry) => entry.sequence)
        : sequences.map((value) => parseSequence(value));
      for (const sequence of chosen) {
        try {
          const receipt = await redriveDeadLetter(nc, stream, sequence);
          write(JSON.stringify(receipt));
        } catch (error) {
          // One refused dead letter (a forged subject) must not stop the others.
          if (!(error instanceof RedriveRefusedError)) throw error;
          process.stderr.write(`gradecast: ${error.message}\n`);
          process.exitCode = 1;
        }
      }
    });
  });
  return dlq;
}

async function withNats<T>(flags: DlqFlags, run: (nc: NatsConnection) => Promise<T>): Promise<T> {
  const nc = await connectCommand(flags, "gradecast dlq");
  try {
    return await run(nc);
  } catch (error) {
    throw streamNotFound(error, deadLetterStreamOf(flags), "--dead-letter-stream");
  } finally {
    await nc.drain();
  }
}

function parseSequence(value: string): number {
  const sequence = Number(value);
  if (!Number.isSafeInteger(sequence) || sequence <= 0) {
    throw new ConfigError("redrive", `${JSON.stringify(value)} is not a dead-letter sequence`);
  }
  return sequence;
}

function summary(entry: DeadLetterEntry) {
  return {
    sequence: entry.sequence,
    deadLetteredAt: entry.deadLetteredAt.toISOString(),
    eventId: entry.eventId,
    consumer: entry.consumer,
    reason: entry.reason,
    error: entry.error,
    deliveryCount: entry.deliveryCount,
    originalSubject: entry.originalSubject,
    bytes: entry.data.length,
  };
}

/** One line per dead letter; every value from its headers is escaped (they are untrusted). */
function line(entry: DeadLetterEntry): string {
  const eventId = entry.eventId === undefined ? "(none)" : printable(entry.eventId);
  const consumer = entry.consumer === undefined ? "(unknown)" : printable(entry.consumer);
  return `#${entry.sequence} ${entry.deadLetteredAt.toISOString()} ${consumer} gave up: ${printable(entry.reason)} after ${entry.deliveryCount} deliveries  ${printable(entry.originalSubject)}  event ${eventId}  ${printable(entry.error)}`;
}
