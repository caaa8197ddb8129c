// One bench run: starts nats-server, gradecast, the echo server and the load workers, runs
// every scenario in order, and stops everything it started (also on failure).
import { mkdtemp, rm } from "node:fs/promises";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import {
  DiscardPolicy,
  type JetStreamManager,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
} from "@nats-io/jetstream";
import { nanos } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { scoreSubjectFilter } from "../src/contract/index.js";
import type { BenchOptions } from "./bench-options.js";
import {
  type BenchReport,
  latencyFigures,
  loadFigures,
  type ScenarioReport,
  serverUsage,
} from "./bench-report.js";
import { BenchChild, benchScriptArgs } from "./child-processes.js";
import { EventArrivals } from "./event-arrivals.js";
import { GradecastProcess } from "./gradecast-process.js";
import { LoadGenerator, type MergedOutcome } from "./load-generator.js";
import type { CallTarget } from "./load-job.js";
import { BenchNatsServer } from "./nats-server.js";
import { preloadStore, storeLocationOf, storeSizeBytes } from "./preload-store.js";
import { measureUsage, readUsage } from "./process-usage.js";
import { SCORE_MSG } from "./score-request.js";

/** gradecast's default stream: the bench runs serve with its defaults. */
const STREAM = "GRADECAST_SCORES";
const SUBMIT_SCORE_METHOD = "/gradecast.v1.ScoreService/SubmitScore";
/** The raw-publish baseline's own stream, created fresh and deleted after. */
const RAW_STREAM = "BENCH_RAW_PUBLISH";
const RAW_SUBJECT_PREFIX = "benchraw";
/** Open-loop calls due while this many are unanswered are shed (counted as errors). */
const OPEN_LOOP_MAX_IN_FLIGHT = 4_096;
const STREAM_POLL_MS = 20;

/** Reports progress, one line at a time (the entry writes it to stderr). */
export type Progress = (line: string) => void;

/**
 * Runs every scenario and returns the figures; throws when the harness itself fails. Aborting
 * `signal` stops every process the run started, which fails the scenario under way.
 */
export async function runBench(
  options: BenchOptions,
  progress: Progress,
  signal: AbortSignal,
): Promise<BenchReport> {
  const dir = await mkdtemp(join(tmpdir(), "gradecast-bench-"));
  // Each stop is safe to call twice: once on abort, again when the run unwinds.
  const cleanups: Array<() => Promise<void>> = [];
  const stopAll = async () => {
    for (const cleanup of [...cleanups].reverse()) {
      await cleanup().catch((error: unknown) =>
        progress(`cleanup failed: ${(error as Error).message}`),
      );
    }
  };
  const onAbort = () => {
    progress("interrupted: stopping everything the bench started");
    void stopAll();
  };
  signal.addEventListener("abort", onAbort, { once: true });
  try {
    const startedAt = new Date().toISOString();
    progress(`temp dir ${dir}; starting nats-server`);
    const nats = await BenchNatsServer.start(join(dir, "nats"));
    cleanups.push(() => nats.stop());
    // serve's default store: <data-dir>/gradecast.sqlite.
    const dataDir = join(dir, "data");
    const storeLocation = storeLocationOf(options.store ?? join(dataDir, "gradecast.sqlite"));
    const preloaded =
      options.preload > 0
        ? await preloadStore(storeLocation, options.preload, progress)
        : { scores: 0, submissions: 0, durationS: 0 };
    const sizeBeforeBytes = await storeSizeBytes(storeLocation);
    progress(
      `store holds ${preloaded.scores} preloaded scores, ${megabytes(sizeBeforeBytes)} MB; starting gradecast serve`,
    );
    const gradecast = await GradecastProcess.start({
      natsUrl: nats.url,
      dataDir,
      store: options.store,
      serveArgs: options.serveArgs,
      nodeArgs: options.serverNodeArgs,
    });
    cleanups.push(() => gradecast.stop());
    const echo = new BenchChild("echo server", process.execPath, benchScriptArgs("echo-server"));
    cleanups.push(() => echo.stop(5_000));
    const echoTarget = await echoTargetOf(echo);
    const load = LoadGenerator.start(options.workers);
    cleanups.push(() => load.close());
    // Reconnects for as long as the drain scenario keeps NATS down.
    const nc = await connect({
      servers: nats.url,
      name: "gradecast bench",
      maxReconnectAttempts: -1,
      reconnectTimeWait: 100,
    });
    cleanups.push(() => nc.close());
    const jsm = await jetstreamManager(nc);
    progress(
      `gradecast (pid ${gradecast.pid}) on ${gradecast.address}, echo on ${echoTarget.address}, ` +
        `${options.workers} load workers (pids ${load.pids.join(", ")})`,
    );

    const bench = new Scenarios(options, progress, load, gradecast, nats, jsm, echoTarget);
    const scenarios: ScenarioReport[] = [];
    await bench.warmUp();
    scenarios.push(await bench.echoBaseline());
    scenarios.push(await bench.closedLoop());
    const arrivals = await EventArrivals.start(nc, STREAM);
    try {
      for (const rate of options.openLoopRatesPerS) {
        scenarios.push(await bench.openLoop(rate, arrivals));
      }
    } finally {
      await arrivals.stop();
    }
    scenarios.push(await bench.jetStreamPublishBaseline());
    scenarios.push(await bench.outboxDrain());
    const sizeAfterBytes = await storeSizeBytes(storeLocation);

    const callsPerS = (id: string) =>
      scenarios.find((scenario) => scenario.id === id)?.load.callsPerS ?? Number.NaN;
    const drainPerS =
      scenarios.find((scenario) => scenario.id === "outbox-drain")?.drain?.eventsPerS ?? Number.NaN;
    const cpu = cpus();
    return {
      startedAt,
      machine: {
        cpus: cpu.length,
        cpuModel: cpu[0]?.model ?? "unknown",
        node: process.version,
        platform: `${process.platform} ${process.arch}`,
        loadAverage: loadavg().map((value) => Math.round(value * 100) / 100),
      },
      settings: {
        ...options,
        scoreMsgBytes: SCORE_MSG.length,
        openLoopMaxInFlight: OPEN_LOOP_MAX_IN_FLIGHT,
      },
      store: {
        kind: storeLocation.kind,
        preloadedScores: preloaded.scores,
        preloadS: preloaded.durationS,
        sizeBeforeBytes,
        sizeAfterBytes,
      },
      scenarios,
      serverPeakRssMb: Math.max(
        readUsage(gradecast.pid).peakRssBytes / 1e6,
        ...scenarios.map((scenario) => scenario.server?.peakRssMb ?? 0),
      ),
      ratios: {
        submitScoreOverEcho: ratio(callsPerS("closed-loop"), callsPerS("echo-baseline")),
        drainOverRawPublish: ratio(drainPerS, callsPerS("jetstream-publish-baseline")),
      },
    };
  } finally {
    signal.removeEventListener("abort", onAbort);
    progress("stopping");
    await stopAll();
    await rm(dir, { recursive: true, force: true });
  }
}

function megabytes(bytes: number): number {
  return Math.round(bytes / 1e5) / 10;
}

function ratio(numerator: number, denominator: number): number {
  return Math.round((numerator / denominator) * 100) / 100;
}

async function echoTargetOf(echo: BenchChild): Promise<CallTarget> {
  const line = await echo.waitForLine(/"port"/, 15_000);
  const { port, method } = JSON.parse(line) as { port: number; method: string };
  return { address: `127.0.0.1:${port}`, method, answer: "none" };
}

/** The scenarios, in the order a run takes them; they share one gradecast and one stream. */
class Scenarios {
  readonly #options: BenchOptions;
  readonly #progress: Progress;
  readonly #load: LoadGenerator;
  readonly #gradecast: GradecastProcess;
  readonly #nats: BenchNatsServer;
  readonly #jsm: JetStreamManager;
  readonly #echo: CallTarget;
  readonly #submitScore: CallTarget;
  /** Each call a new submission; a run's ids do not repeat those of an earlier run on the store. */
  #nextSubmissionId = Date.now() * 1_000;
  /** Events gradecast has accepted so far: the stream must end up holding this many. */
  #acceptedEvents = 0;

  constructor(
    options: BenchOptions,
    progress: Progress,
    load: LoadGenerator,
    gradecast: GradecastProcess,
    nats: BenchNatsServer,
    jsm: JetStreamManager,
    echo: CallTarget,
  ) {
    this.#options = options;
    this.#progress = progress;
    this.#load = load;
    this.#gradecast = gradecast;
    this.#nats = nats;
    this.#jsm = jsm;
    this.#echo = echo;
    this.#submitScore = {
      address: gradecast.address,
      method: SUBMIT_SCORE_METHOD,
      answer: "submit-score",
    };
  }

  get #timeLimitMs(): number {
    return this.#options.scenarioTimeLimitS * 1000;
  }

  #submissionIds(count: number): number {
    const first = this.#nextSubmissionId;
    this.#nextSubmissionId += count;
    return first;
  }

  async #closedLoop(target: CallTarget, calls: number): Promise<MergedOutcome> {
    const outcome = await this.#load.run({
      kind: "closed-loop",
      target,
      connections: this.#options.connections,
      inFlight: this.#options.inFlight,
      calls,
      timeLimitMs: this.#timeLimitMs,
      firstSubmissionId: this.#submissionIds(calls),
    });
    if (target.answer === "submit-score")
      this.#acceptedEvents += outcome.completed - outcome.errors;
    return outcome;
  }

  /** JIT, connections and store pages warm before anything is measured. */
  async warmUp(): Promise<void> {
    const calls = this.#options.warmupCalls;
    this.#progress(`warm-up: ${calls} calls to echo and to SubmitScore`);
    await this.#closedLoop(this.#echo, calls);
    const warm = await this.#closedLoop(this.#submitScore, calls);
    if (warm.errors > 0)
      this.#progress(`warm-up: ${warm.errors} errors: ${warm.errorSamples.join("; ")}`);
  }

  async echoBaseline(): Promise<ScenarioReport> {
    const { closedLoopCalls: calls, inFlight } = this.#options;
    this.#progress(`echo baseline: ${calls} calls, ${inFlight} in flight`);
    const outcome = await this.#closedLoop(this.#echo, calls);
    return this.#report(
      "echo-baseline",
      `grpc-js echo, closed loop, ${inFlight} in flight`,
      outcome,
    );
  }

  async closedLoop(): Promise<ScenarioReport> {
    const { closedLoopCalls: calls, inFlight } = this.#options;
    this.#progress(`closed loop: ${calls} SubmitScore calls, ${inFlight} in flight`);
    const { result, usage } = await measureUsage(this.#gradecast.pid, () =>
      this.#closedLoop(this.#submitScore, calls),
    );
    const report = this.#report(
      "closed-loop",
      `SubmitScore, closed loop, ${inFlight} in flight`,
      result,
    );
    report.server = serverUsage(usage, result.completed);
    return report;
  }

  async openLoop(ratePerS: number, arrivals: EventArrivals): Promise<ScenarioReport> {
    const { openLoopDurationS: durationS } = this.#options;
    const calls = Math.round(ratePerS * durationS);
    // Earlier scenarios' events published first, so they do not load this one.
    await this.#streamSettles(this.#acceptedEvents);
    this.#progress(`open loop: ${ratePerS} SubmitScore calls/s for ${durationS} s`);
    const firstSubmissionId = this.#submissionIds(calls);
    const { result, usage } = await measureUsage(this.#gradecast.pid, () =>
      this.#load.run({
        kind: "open-loop",
        target: this.#submitScore,
        connections: this.#options.connections,
        ratePerS,
        calls,
        maxInFlight: OPEN_LOOP_MAX_IN_FLIGHT,
        firstSubmissionId,
      }),
    );
    this.#acceptedEvents += result.completed - (result.errors - result.shed);
    const report = this.#report(
      `open-loop-${ratePerS}`,
      `SubmitScore, open loop at ${ratePerS}/s for ${durationS} s`,
      result,
    );
    report.server = serverUsage(usage, result.completed);
    // Every call that started: its event must reach the subscriber (a failed call's may too).
    const started = result.startedAtEpochMs ?? new Float64Array();
    const ids: number[] = [];
    started.forEach((at, index) => {
      if (!Number.isNaN(at)) ids.push(firstSubmissionId + index);
    });
    const missing = await arrivals.waitForAll(ids, this.#timeLimitMs);
    const endToEndMs: number[] = [];
    for (const id of ids) {
      const arrivedAt = arrivals.arrivedAt(id);
      const startedAt = started[id - firstSubmissionId];
      if (arrivedAt !== undefined && startedAt !== undefined)
        endToEndMs.push(arrivedAt - startedAt);
    }
    report.endToEnd = { ...latencyFigures(Float64Array.from(endToEndMs)), missing };
    if (missing > 0) {
      report.problems.push(`${missing} events did not reach the subscriber within the time limit`);
      report.errors += missing;
    }
    return report;
  }

  async jetStreamPublishBaseline(): Promise<ScenarioReport> {
    const { publishMessages: messages, publishInFlight: inFlight } = this.#options;
    this.#progress(`raw JetStream publish: ${messages} messages, ${inFlight} in flight`);
    await this.#jsm.streams.add({
      name: RAW_STREAM,
      subjects: [scoreSubjectFilter(RAW_SUBJECT_PREFIX)],
      // As gradecast creates its stream (src/events/stream.ts), with its default window.
      storage: StorageType.File,
      retention: RetentionPolicy.Limits,
      discard: DiscardPolicy.Old,
      duplicate_window: nanos(10 * 60_000),
      num_replicas: 1,
    });
    try {
      const outcome = await this.#load.run({
        kind: "jetstream-publish",
        natsUrl: this.#nats.url,
        subjectPrefix: RAW_SUBJECT_PREFIX,
        inFlight,
        messages,
        timeLimitMs: this.#timeLimitMs,
        firstSubmissionId: this.#submissionIds(messages),
      });
      const report = this.#report(
        "jetstream-publish-baseline",
        `raw JetStream publish with msgID, ${inFlight} in flight, one Node process`,
        outcome,
      );
      const stored = (await this.#jsm.streams.info(RAW_STREAM)).state.messages;
      if (stored !== messages) {
        report.problems.push(`the stream holds ${stored} of ${messages} messages`);
        report.errors += Math.abs(messages - stored);
      }
      return report;
    } finally {
      await this.#jsm.streams.delete(RAW_STREAM);
    }
  }

  /**
   * NATS down: every score is accepted (committed, `published=false`) into the outbox.
   * NATS back on the same port and store: the relay publishes the backlog; events/s until the
   * stream holds every event.
   */
  async outboxDrain(): Promise<ScenarioReport> {
    const calls = this.#options.drainCalls;
    const before = await this.#streamSettles(this.#acceptedEvents);
    this.#progress(`outbox drain: stream holds ${before} events; stopping nats-server`);
    await this.#nats.stop();
    await this.#gradecast.waitForReadiness(false, this.#timeLimitMs);
    this.#progress(`outbox drain: ${calls} SubmitScore calls while NATS is down`);
    const accepted = await measureUsage(this.#gradecast.pid, () =>
      this.#closedLoop(this.#submitScore, calls),
    );
    const report = this.#report(
      "outbox-drain",
      `${calls} scores accepted with NATS down, then drained to JetStream`,
      accepted.result,
    );
    report.server = serverUsage(accepted.usage, accepted.result.completed);
    if (accepted.result.published > 0) {
      report.problems.push(
        `${accepted.result.published} answers said published=true with NATS down`,
      );
      report.errors += accepted.result.published;
    }
    const target = before + accepted.result.completed - accepted.result.errors;

    this.#progress("outbox drain: starting nats-server again");
    const drained = await measureUsage(this.#gradecast.pid, async () => {
      await this.#nats.startAgain();
      return this.#watchDrain(before, target);
    });
    const { reconnectS, drainS, eventsPerS, stored } = drained.result;
    report.drain = {
      events: target - before,
      reconnectS,
      drainS,
      eventsPerS,
      server: serverUsage(drained.usage, target - before),
    };
    if (stored < target) {
      report.problems.push(
        `the stream holds ${stored - before} of ${target - before} drained events`,
      );
      report.errors += target - stored;
    }
    return report;
  }

  /** Waits (bounded) until the stream holds `expected` events; resolves what it holds. */
  async #streamSettles(expected: number): Promise<number> {
    const deadline = Date.now() + this.#timeLimitMs;
    let stored = await this.#storedEvents();
    while (stored < expected && Date.now() < deadline) {
      await new Promise((wake) => setTimeout(wake, STREAM_POLL_MS));
      stored = await this.#storedEvents();
    }
    if (stored < expected) {
      this.#progress(`warning: the stream holds ${stored} events, ${expected} were accepted`);
    }
    return stored;
  }

  async #storedEvents(jsm = this.#jsm): Promise<number> {
    return (await jsm.streams.info(STREAM)).state.messages;
  }

  /**
   * Polls the stream from NATS's restart until it holds `target` events (or the time limit),
   * on a fresh connection (the bench's own would first sit out its reconnect wait). The rate
   * is taken from the first poll that saw drained events to the last, so gradecast's
   * reconnect wait is reported apart, not averaged in.
   */
  async #watchDrain(before: number, target: number) {
    const natsBackAt = performance.now();
    const deadline = natsBackAt + this.#timeLimitMs;
    const nc = await connect({ servers: this.#nats.url, name: "gradecast bench drain watch" });
    try {
      const jsm = await jetstreamManager(nc);
      let first: { at: number; stored: number } | undefined;
      let stored = await this.#storedEvents(jsm);
      while (stored < target && performance.now() < deadline) {
        if (first === undefined && stored > before) first = { at: performance.now(), stored };
        await new Promise((wake) => setTimeout(wake, STREAM_POLL_MS));
        stored = await this.#storedEvents(jsm);
      }
      const doneAt = performance.now();
      const firstAt = first?.at ?? doneAt;
      // Drained between two polls (a tiny backlog): fall back to the time since NATS came back.
      const eventsPerS =
        first !== undefined && doneAt > first.at
          ? (stored - first.stored) / ((doneAt - first.at) / 1000)
          : (stored - before) / ((doneAt - natsBackAt) / 1000);
      return {
        stored,
        reconnectS: Math.round(firstAt - natsBackAt) / 1000,
        drainS: Math.round(doneAt - firstAt) / 1000,
        eventsPerS: Math.round(eventsPerS),
      };
    } finally {
      await nc.close();
    }
  }

  #report(id: ScenarioReport["id"], title: string, outcome: MergedOutcome): ScenarioReport {
    const problems: string[] = [];
    let errors = outcome.errors;
    const unanswered = outcome.requested - outcome.completed - outcome.shed;
    if (unanswered > 0) {
      problems.push(`${unanswered} of ${outcome.requested} calls not made within the time limit`);
      errors += unanswered;
    }
    if (outcome.replayed > 0) {
      problems.push(`${outcome.replayed} answers were replays of earlier scores`);
      errors += outcome.replayed;
    }
    if (outcome.errorSamples.length > 0)
      problems.push(`errors: ${outcome.errorSamples.join("; ")}`);
    const report: ScenarioReport = { id, title, errors, problems, load: loadFigures(outcome) };
    this.#progress(
      `  ${id}: ${report.load.callsPerS}/s, p99 ${report.load.latency.p99Ms} ms, ${errors} errors`,
    );
    return report;
  }
}
