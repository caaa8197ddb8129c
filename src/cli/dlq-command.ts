import { connect } from "@nats-io/transport-node";
import { Command, Option } from "commander";
import {
  type DeadLetterEntry,
  listDeadLetters,
  redriveDeadLetter,
} from "../subscriber/dead-letter-queue.js";
import { ConfigError, parseNatsServers } from "./config-values.js";

interface DlqFlags {
  natsUrl: string;
  deadLetterStream: string;
}

const natsOption = () =>
  new Option("--nats-url <urls>", "NATS server URL(s)")
    .env("GRADECAST_NATS_URL")
    .default("nats://127.0.0.1:4222");
const streamOption = () =>
  new Option("--dead-letter-stream <name>", "the dead-letter stream")
    .env("GRADECAST_DEAD_LETTER_STREAM")
    .default("GRADECAST_SCORES_DLQ");

/** `gradecast dlq`: list dead-lettered events and re-drive them to their subject. */
export function dlqCommand(write: (line: string) => void): Command {
  const dlq = new Command("dlq").description(
    "list events consumers gave up on, and re-drive them to their original subject",
  );
  dlq
    .command("list")
    .description("list dead letters, oldest first (one JSON line each with --json)")
    .addOption(natsOption())
    .addOption(streamOption())
    .option("--json", "one JSON object per line")
    .action(async (flags: DlqFlags & { json?: boolean }) => {
      const entries = await withNats(flags, (nc) => listDeadLetters(nc, flags.deadLetterStream));
      for (const entry of entries) write(flags.json ? JSON.stringify(summary(entry)) : line(entry));
      if (!flags.json) write(`${entries.length} dead letter(s) in ${flags.deadLetterStream}`);
    });
  dlq
    .command("redrive")
    .description("publish dead letters again on their original subject and remove them")
    .argument("[sequences...]", "dead-letter sequences (from `dlq list`)")
    .option("--all", "every dead letter")
    .addOption(natsOption())
    .addOption(streamOption())
    .action(async (sequences: string[], flags: DlqFlags & { all?: boolean }) => {
      if (!flags.all && sequences.length === 0) {
        throw new ConfigError("redrive", "name the sequences to re-drive, or --all");
      }
      await withNats(flags, async (nc) => {
        const chosen = flags.all
          ? (await listDeadLetters(nc, flags.deadLetterStream)).map((entry) => entry.sequence)
          : sequences.map((value) => parseSequence(value));
        for (const sequence of chosen) {
          const receipt = await redriveDeadLetter(nc, flags.deadLetterStream, sequence);
          write(JSON.stringify(receipt));
        }
      });
    });
  return dlq;
}

async function withNats<T>(
  flags: DlqFlags,
  run: (nc: Awaited<ReturnType<typeof connect>>) => Promise<T>,
): Promise<T> {
  const servers = parseNatsServers("--nats-url", flags.natsUrl).split(",");
  const nc = await connect({ servers, name: "gradecast dlq" });
  try {
    return await run(nc);
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
    reason: entry.reason,
    error: entry.error,
    deliveryCount: entry.deliveryCount,
    originalSubject: entry.originalSubject,
    bytes: entry.data.length,
  };
}

function line(entry: DeadLetterEntry): string {
  return `#${entry.sequence} ${entry.deadLetteredAt.toISOString()} ${entry.reason} after ${entry.deliveryCount} deliveries  ${entry.originalSubject}  event ${entry.eventId ?? "(none)"}  ${entry.error}`;
}
