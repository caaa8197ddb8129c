// A load-generator process (forked by load-generator.ts): prepares one job at a time
// (connects, builds messages), starts it on "go", and reports what it measured.
import { Client, credentials, Metadata } from "@grpc/grpc-js";
import { type JetStreamClient, jetstream } from "@nats-io/jetstream";
import { headers as natsHeaders } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { type EventMessage, SubmitScoreResponse } from "../src/contract/index.js";
import type {
  CallTarget,
  ClosedLoopJob,
  FromWorker,
  JetStreamPublishJob,
  LoadJob,
  LoadOutcome,
  OpenLoopJob,
  ToWorker,
} from "./load-job.js";
import { benchEventMessage, submitScoreRequestBytes } from "./score-request.js";

/** Every call's deadline: a call never waits longer, so every loop ends. */
const CALL_DEADLINE_MS = 30_000;
const CONNECT_TIMEOUT_MS = 10_000;
const MAX_ERROR_SAMPLES = 5;
/** How often the open loop checks which calls are due. */
const OPEN_LOOP_TICK_MS = 1;

const epochMs = () => performance.timeOrigin + performance.now();

/** Counts answers of one job. */
class Tally {
  readonly latenciesMs: number[] = [];
  readonly errorSamples = new Set<string>();
  errors = 0;
  published = 0;
  replayed = 0;

  fail(message: string): void {
    this.errors += 1;
    if (this.errorSamples.size < MAX_ERROR_SAMPLES) this.errorSamples.add(message);
  }
}

/** Opens `count` gRPC channels to `target` (not shared: each its own TCP connection). */
async function openChannels(target: CallTarget, count: number): Promise<Client[]> {
  const clients = Array.from(
    { length: count },
    () =>
      new Client(target.address, credentials.createInsecure(), {
        "grpc.use_local_subchannel_pool": 1,
      }),
  );
  await Promise.all(
    clients.map(
      (client) =>
        new Promise<void>((resolve, reject) =>
          client.waitForReady(Date.now() + CONNECT_TIMEOUT_MS, (error) =>
            error ? reject(error) : resolve(),
          ),
        ),
    ),
  );
  return clients;
}

const identity = (bytes: Buffer) => bytes;

/** One unary call; resolves (never rejects) once it is answered and counted. */
function callOnce(client: Client, target: CallTarget, bytes: Buffer, tally: Tally): Promise<void> {
  return new Promise((resolve) => {
    const started = performance.now();
    client.makeUnaryRequest(
      target.method,
      identity,
      identity,
      bytes,
      new Metadata(),
      { deadline: Date.now() + CALL_DEADLINE_MS },
      (error, response) => {
        tally.latenciesMs.push(performance.now() - started);
        if (error) tally.fail(`${error.code} ${error.details}`);
        else if (target.answer === "submit-score" && response) {
          const answer = SubmitScoreResponse.decode(response);
          if (answer.published) tally.published += 1;
          if (answer.replayed) tally.replayed += 1;
        }
        resolve();
      },
    );
  });
}

/** One JetStream publish; resolves (never rejects) once it is acknowledged and counted. */
async function publishOnce(
  js: JetStreamClient,
  message: EventMessage,
  tally: Tally,
): Promise<void> {
  const headers = natsHeaders();
  for (const [name, value] of message.headers) headers.set(name, value);
  const publishStarted = performance.now();
  try {
    const ack = await js.publish(message.subject, message.payload, {
      msgID: headers.get("ce-id"),
      headers,
      timeout: CALL_DEADLINE_MS,
    });
    if (ack.duplicate) tally.replayed += 1;
    else tally.published += 1;
  } catch (error) {
    tally.fail((error as Error).message);
  }
  tally.latenciesMs.push(performance.now() - publishStarted);
}

function outcomeOf(
  requested: number,
  tally: Tally,
  elapsedMs: number,
  extra: Partial<LoadOutcome> = {},
): LoadOutcome {
  return {
    requested,
    completed: tally.latenciesMs.length,
    errors: tally.errors,
    shed: 0,
    elapsedMs,
    latenciesMs: Float64Array.from(tally.latenciesMs),
    published: tally.published,
    replayed: tally.replayed,
    startedAtEpochMs: undefined,
    errorSamples: [...tally.errorSamples],
    ...extra,
  };
}

/** A prepared job: `run` starts the clock. */
interface PreparedJob {
  run(): Promise<LoadOutcome>;
  close(): Promise<void>;
}

/**
 * Runs a closed loop: each of `inFlight` lanes issues the next of `total` operations as soon as
 * its previous one is answered, until all are issued or `timeLimitMs` has passed. Resolves with
 * the elapsed time once every lane's last operation is answered.
 */
async function runClosedLoop(
  { inFlight, total, timeLimitMs }: { inFlight: number; total: number; timeLimitMs: number },
  issue: (index: number, lane: number) => Promise<void>,
): Promise<number> {
  let issued = 0;
  const started = performance.now();
  const stopAt = started + timeLimitMs;
  await Promise.all(
    Array.from({ length: inFlight }, async (_, lane) => {
      while (issued < total && performance.now() < stopAt) {
        const index = issued;
        issued += 1;
        await issue(index, lane);
      }
    }),
  );
  return performance.now() - started;
}

async function prepareClosedLoop(job: ClosedLoopJob): Promise<PreparedJob> {
  const clients = await openChannels(job.target, job.connections);
  return {
    run: async () => {
      const tally = new Tally();
      const elapsedMs = await runClosedLoop(
        { inFlight: job.inFlight, total: job.calls, timeLimitMs: job.timeLimitMs },
        (index, lane) => {
          const client = clients[lane % clients.length] as Client;
          const bytes = submitScoreRequestBytes(job.firstSubmissionId + index);
          return callOnce(client, job.target, bytes, tally);
        },
      );
      return outcomeOf(job.calls, tally, elapsedMs);
    },
    close: async () => {
      for (const client of clients) client.close();
    },
  };
}

async function prepareOpenLoop(job: OpenLoopJob): Promise<PreparedJob> {
  const clients = await openChannels(job.target, job.connections);
  const total = job.calls;
  return {
    run: async () => {
      const tally = new Tally();
      const startedAtEpochMs = new Float64Array(total).fill(Number.NaN);
      const pending = new Set<Promise<void>>();
      let issued = 0;
      let shed = 0;
      const started = performance.now();
      await new Promise<void>((resolve) => {
        const timer = setInterval(() => {
          const elapsedS = (performance.now() - started) / 1000;
          const due = Math.min(total, Math.floor(elapsedS * job.ratePerS));
          while (issued < due) {
            const index = issued;
            issued += 1;
            if (pending.size >= job.maxInFlight) {
              shed += 1;
              tally.fail(`shed: ${job.maxInFlight} calls already in flight`);
              continue;
            }
            const client = clients[index % clients.length] as Client;
            const bytes = submitScoreRequestBytes(job.firstSubmissionId + index);
            startedAtEpochMs[index] = epochMs();
            const call = callOnce(client, job.target, bytes, tally);
            pending.add(call);
            void call.then(() => pending.delete(call));
          }
          if (issued >= total) {
            clearInterval(timer);
            resolve();
          }
        }, OPEN_LOOP_TICK_MS);
      });
      await Promise.all(pending);
      return outcomeOf(total, tally, performance.now() - started, { shed, startedAtEpochMs });
    },
    close: async () => {
      for (const client of clients) client.close();
    },
  };
}

async function prepareJetStreamPublish(job: JetStreamPublishJob): Promise<PreparedJob> {
  const nc = await connect({ servers: job.natsUrl, name: "gradecast bench publisher" });
  const js = jetstream(nc);
  // Built before the clock starts: gradecast's relay also publishes stored, encoded events.
  const messages = Array.from({ length: job.messages }, (_, i) =>
    benchEventMessage(job.firstSubmissionId + i, job.subjectPrefix),
  );
  return {
    run: async () => {
      const tally = new Tally();
      const elapsedMs = await runClosedLoop(
        { inFlight: job.inFlight, total: messages.length, timeLimitMs: job.timeLimitMs },
        (index) => publishOnce(js, messages[index] as EventMessage, tally),
      );
      return outcomeOf(job.messages, tally, elapsedMs);
    },
    close: () => nc.drain(),
  };
}

function prepare(job: LoadJob): Promise<PreparedJob> {
  switch (job.kind) {
    case "closed-loop":
      return prepareClosedLoop(job);
    case "open-loop":
      return prepareOpenLoop(job);
    case "jetstream-publish":
      return prepareJetStreamPublish(job);
  }
}

function send(message: FromWorker): void {
  process.send?.(message);
}

let prepared: PreparedJob | undefined;

async function handle(message: ToWorker): Promise<void> {
  switch (message.type) {
    case "prepare":
      prepared = await prepare(message.job);
      send({ type: "ready" });
      return;
    case "go": {
      const job = prepared;
      prepared = undefined;
      if (!job) throw new Error("go before prepare");
      let outcome: LoadOutcome;
      try {
        outcome = await job.run();
      } finally {
        // Closed before answering: once the bench has the answer it may stop nats-server, and
        // a drain still running would then fail and arrive as the answer to its next request.
        await job.close().catch(() => undefined);
      }
      send({ type: "done", outcome });
      return;
    }
    case "exit":
      process.disconnect();
      // grpc-js and nats may keep timers alive; the work is reported, so leave.
      process.exit(0);
  }
}

if (!process.send) {
  process.stderr.write("load-worker.js runs as a child of the bench (child_process.fork)\n");
  process.exit(2);
}
process.on("message", (message: ToWorker) => {
  handle(message).catch((error: unknown) =>
    send({ type: "failed", message: (error as Error).stack ?? String(error) }),
  );
});
// The bench process went away: nothing left to report to.
process.on("disconnect", () => process.exit(0));
