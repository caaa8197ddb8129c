import { DeliverPolicy, type JsMsg, jetstream } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { Command, Option } from "commander";
import { ExternalGraderScoreSubmitted, scoreSubjectFilter } from "../contract/index.js";
import { type ScoreEvent, subscribeToScores } from "../subscriber/index.js";
import { readScoreEvent } from "../subscriber/score-event.js";
import { type CommandNatsFlags, connectCommand, streamNotFound } from "./command-nats.js";
import { ConfigError, parseDurationMs, parseInteger } from "./config-values.js";
import { addNatsOptions } from "./shared-options.js";

interface TailFlags extends CommandNatsFlags {
  stream: string;
  subjectPrefix: string;
  queue?: string;
  course?: string;
  since?: string;
  new?: boolean;
  durable?: string;
  human?: boolean;
  max?: string;
}

/**
 * `gradecast tail`: prints score events as they are in the stream, one JSON
 * line each (or one readable line with --human). Read-only by default (an
 * ordered consumer that acks nothing); with --durable it is a real subscriber
 * (the SDK: acks, resumes where the durable stopped).
 */
export function tailCommand(write: (line: string) => void): Command {
  return addNatsOptions(
    new Command("tail").description("print score events from the stream, one JSON line each"),
  )
    .addOption(
      new Option("--stream <name>", "the event stream")
        .env("GRADECAST_STREAM")
        .default("GRADECAST_SCORES"),
    )
    .addOption(
      new Option("--subject-prefix <prefix>", "subject prefix")
        .env("GRADECAST_SUBJECT_PREFIX")
        .default("gradecast"),
    )
    .option("--queue <name>", "only this grader queue (a subject filter)")
    .option("--course <course_id>", "only this course")
    .option("--since <when>", "start at a time: an ISO date or a duration back, e.g. 1h")
    .option("--new", "only events published from now on")
    .option("--durable <name>", "read through this durable consumer (acks, resumes later)")
    .option("--human", "one readable line per event (default when stdout is a terminal)")
    .option("--max <n>", "exit after this many events")
    .action(async (flags: TailFlags) => {
      const isHuman = flags.human ?? process.stdout.isTTY === true;
      const max =
        flags.max === undefined
          ? Number.POSITIVE_INFINITY
          : parseInteger("--max", flags.max, 1, 1e9);
      const since = parseSince(flags.since);
      const nc = await connectCommand(flags, "gradecast tail");
      let printed = 0;
      const done = new AbortController();
      const stopOnSignal = () => done.abort();
      process.once("SIGINT", stopOnSignal);
      process.once("SIGTERM", stopOnSignal);
      const print = (event: ScoreEvent) => {
        if (flags.course !== undefined && event.scoreData.courseId !== flags.course) return;
        write(isHuman ? humanLine(event) : jsonLine(event));
        printed += 1;
        if (printed >= max) done.abort();
      };
      try {
        if (flags.durable) {
          const subscription = await subscribeToScores(
            {
              connection: nc,
              stream: flags.stream,
              subjectPrefix: flags.subjectPrefix,
              durableName: flags.durable,
              queueName: flags.queue,
              deliverPolicy: flags.new ? "new" : since ? { startTime: since } : "all",
            },
            print,
          );
          await aborted(done.signal);
          await subscription.stop();
        } else {
          await tailOrdered(nc, flags, since, print, done.signal).catch((error: unknown) => {
            throw streamNotFound(error, flags.stream, "--stream");
          });
        }
      } finally {
        process.off("SIGINT", stopOnSignal);
        process.off("SIGTERM", stopOnSignal);
        await nc.drain();
      }
    });
}

async function tailOrdered(
  nc: NatsConnection,
  flags: TailFlags,
  since: Date | undefined,
  print: (event: ScoreEvent) => void,
  signal: AbortSignal,
): Promise<void> {
  const consumer = await jetstream(nc).consumers.get(flags.stream, {
    filter_subjects: scoreSubjectFilter(flags.subjectPrefix, flags.queue),
    ...(flags.new
      ? { deliver_policy: DeliverPolicy.New }
      : since
        ? { deliver_policy: DeliverPolicy.StartTime, opt_start_time: since.toISOString() }
        : { deliver_policy: DeliverPolicy.All }),
  });
  const messages = await consumer.consume();
  signal.addEventListener("abort", () => void messages.stop(), { once: true });
  for await (const msg of messages) {
    const read = readScoreEvent(msg as JsMsg);
    if (read.ok) print(read.event);
    else
      process.stderr.write(
        `gradecast tail: stream sequence ${msg.seq} is not a score event: ${read.error.message}\n`,
      );
    if (signal.aborted) break;
  }
}

function parseSince(value: string | undefined): Date | undefined {
  if (value === undefined) return undefined;
  if (/^\d+(\.\d+)?(ms|s|m|h|d)$/.test(value)) {
    return new Date(Date.now() - parseDurationMs("--since", value));
  }
  // A bare number would parse as a year ("90" is 1990): ask for a unit or a full date.
  const time = /^\d+$/.test(value) ? new Date(Number.NaN) : new Date(value);
  if (Number.isNaN(time.getTime())) {
    throw new ConfigError(
      "--since",
      `${JSON.stringify(value)} is neither an ISO time nor a duration like 1h`,
    );
  }
  return time;
}

function jsonLine(event: ScoreEvent): string {
  const envelope = ExternalGraderScoreSubmitted.toJSON({
    metadata: {
      id: event.id,
      eventType: event.type,
      minorversion: event.minorversion,
      source: event.source,
      sourcehost: event.sourcehost,
      sourcelib: event.sourcelib,
      time: event.time,
    },
    scoreData: event.scoreData,
    submissionSequence: event.submissionSequence,
  });
  return JSON.stringify({
    subject: event.subject,
    streamSequence: event.streamSequence,
    event: envelope,
  });
}

function humanLine(event: ScoreEvent): string {
  const data = event.scoreData;
  return [
    event.time.toISOString(),
    `#${event.streamSequence}`,
    data.queueName,
    `submission ${data.submissionId} (seq ${event.submissionSequence})`,
    `${data.pointsEarned}/${data.pointsPossible}`,
    `user ${data.userId}`,
    data.courseId,
  ].join("  ");
}

function aborted(signal: AbortSignal): Promise<void> {
  return signal.aborted
    ? Promise.resolve()
    : new Promise((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));
}
