// Entry of `npm run bench:parts`: the CPU cost of gradecast's two heavy parts on their own,
// without gRPC or load generators competing for the cores, so a change to one of them shows
// up beyond the run-to-run spread of the full bench.
//   store    the SQLite store (worker thread): 64-score batches, then their publish marks,
//            as group commit and the outbox marks write them
//   publish  EventPublisher against the bench's own nats-server: events in flight on one
//            connection, each waiting for its JetStream ack
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { Command, Option } from "commander";
import pino from "pino";
import { newEventId } from "../src/contract/index.js";
import { EventPublisher, NatsLink } from "../src/events/index.js";
import { ThreadedSqliteStore } from "../src/store/threaded-sqlite-store.js";
import { positiveInteger } from "./bench-options.js";
import { BenchNatsServer } from "./nats-server.js";
import { benchEventMessage, benchScoreData } from "./score-request.js";

interface PartsOptions {
  part: "store" | "publish";
  count: number;
  batchSize: number;
  inFlight: number;
  eventIds: "v7" | "v4";
}

const STREAM = "BENCH_PARTS";
const SUBJECT_PREFIX = "gradecast";

function parseOptions(argv: readonly string[]): PartsOptions {
  const command = new Command("bench:parts")
    .description("CPU cost per score of the SQLite store, or per event of the JetStream publisher")
    .addOption(
      new Option("--part <part>", "what to measure").choices(["store", "publish"]).default("store"),
    )
    .option("--count <n>", "scores stored, or events published", positiveInteger, 19_200)
    .option("--batch-size <n>", "store: scores per transaction", positiveInteger, 64)
    .option("--in-flight <n>", "publish: events awaiting their ack", positiveInteger, 64)
    .addOption(
      new Option("--event-ids <kind>", "store: event ids, v7 as gradecast makes them or random v4")
        .choices(["v7", "v4"])
        .default("v7"),
    )
    .exitOverride();
  command.parse(argv, { from: "user" });
  return command.opts<PartsOptions>();
}

/** Bytes this process (all its threads) caused to be written to storage; Linux only. */
async function writtenBytes(): Promise<number | undefined> {
  const io = await readFile("/proc/self/io", "utf8").catch(() => undefined);
  const match = io === undefined ? null : /^write_bytes: (\d+)$/m.exec(io);
  return match ? Number(match[1]) : undefined;
}

function cpuMicros(since: NodeJS.CpuUsage): { total: number; system: number } {
  const used = process.cpuUsage(since);
  return { total: used.user + used.system, system: used.system };
}

async function measureStore(options: PartsOptions): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "gradecast-bench-parts-"));
  const origin = { source: "openedx/gradecast/bench", sourcehost: "bench", sourcelib: "0.0.0" };
  const store = new ThreadedSqliteStore({
    path: join(dir, "gradecast.sqlite"),
    encoding: { origin, subjectPrefix: SUBJECT_PREFIX },
  });
  await store.start();
  try {
    const makeId = options.eventIds === "v7" ? () => newEventId() : () => crypto.randomUUID();
    const writtenBefore = await writtenBytes();
    const cpuBefore = process.cpuUsage();
    const startedAt = performance.now();
    let stored = 0;
    let marks: { eventId: string; streamSequence: number }[] = [];
    while (stored < options.count) {
      const size = Math.min(options.batchSize, options.count - stored);
      const scores = Array.from({ length: size }, (_, i) => ({
        scoreData: benchScoreData(stored + i + 1),
        eventId: makeId(),
        time: new Date(),
      }));
      // Marks of the previous batch are written while this one commits, as in serve.
      const marking = store.markPublished(marks);
      const outcomes = await store.recordScores(scores, Date.now() + 30_000);
      await marking;
      marks = outcomes.map((outcome, i) => ({
        eventId: outcome.kind === "rejected" ? "" : outcome.record.eventId,
        streamSequence: stored + i + 1,
      }));
      stored += size;
    }
    await store.markPublished(marks);
    const elapsedS = (performance.now() - startedAt) / 1000;
    const cpu = cpuMicros(cpuBefore);
    const writtenAfter = await writtenBytes();
    const written =
      writtenBefore === undefined || writtenAfter === undefined
        ? "n/a"
        : `${((writtenAfter - writtenBefore) / stored / 1024).toFixed(1)} KB`;
    return (
      `store: ${stored} scores in batches of ${options.batchSize}, ${options.eventIds} ids: ` +
      `${Math.round(stored / elapsedS)} scores/s, ${(cpu.total / stored).toFixed(1)} CPU us per score ` +
      `(system ${(cpu.system / stored).toFixed(1)}), ${written} written per score`
    );
  } finally {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
}

async function measurePublish(options: PartsOptions): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "gradecast-bench-parts-"));
  const nats = await BenchNatsServer.start(dir);
  const link = new NatsLink(
    { servers: nats.url, name: "bench-parts", reconnectTimeWaitMs: 500, connectTimeoutMs: 5_000 },
    pino({ level: "silent" }),
  );
  try {
    const connection = await link.start();
    await (await jetstreamManager(connection)).streams.add({
      name: STREAM,
      subjects: [`${SUBJECT_PREFIX}.>`],
    });
    const publisher = new EventPublisher(link, { timeoutMs: 10_000 });
    const messages = Array.from({ length: 256 }, (_, i) =>
      benchEventMessage(i + 1, SUBJECT_PREFIX),
    );
    let started = 0;
    const lane = async () => {
      while (started < options.count) {
        const message = messages[started % messages.length] as (typeof messages)[number];
        started += 1;
        await publisher.publish({ eventId: newEventId(), message });
      }
    };
    const cpuBefore = process.cpuUsage();
    const startedAt = performance.now();
    await Promise.all(Array.from({ length: options.inFlight }, lane));
    const elapsedS = (performance.now() - startedAt) / 1000;
    const cpu = cpuMicros(cpuBefore);
    return (
      `publish: ${options.count} events, ${options.inFlight} in flight: ` +
      `${Math.round(options.count / elapsedS)} events/s, ` +
      `${(cpu.total / options.count).toFixed(1)} CPU us per event in this process`
    );
  } finally {
    await link.close();
    await nats.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

let options: PartsOptions;
try {
  options = parseOptions(process.argv.slice(2));
} catch (error) {
  const exitCode = (error as { exitCode?: number }).exitCode;
  process.exit(exitCode === 0 ? 0 : 2);
}
process.stdout.write(
  `${options.part === "store" ? await measureStore(options) : await measurePublish(options)}\n`,
);
