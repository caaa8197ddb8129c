import { setMaxListeners } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { CallRecord } from "./call-record.js";
import {
  type ChaosForm,
  type ChaosOptions,
  type ChaosOptionsInput,
  FAULT_KINDS,
  type FaultKind,
  formName,
  makeChaosOptions,
} from "./chaos-options.js";
import { planFaults } from "./fault-plan.js";
import { type FaultRecord, runFaults } from "./fault-runner.js";
import { GradecastSupervisor } from "./gradecast-supervisor.js";
import { type NatsTopology, startNatsTopology } from "./nats-topology.js";
import { ReadinessWatch } from "./readiness-watch.js";
import { driveScoreLoad } from "./score-load.js";
import { SeededRandom } from "./seeded-random.js";
import { prepareStore } from "./store-target.js";
import { StreamReader } from "./stream-reader.js";
import { waitUntilSettled } from "./stream-settling.js";
import { judgeCampaign, type Verdict } from "./verdict.js";

/** What one campaign did and found. */
export interface CampaignReport {
  readonly form: ChaosForm;
  readonly seed: number;
  /** Wall-clock time of the whole campaign, set-up and clean-up included. */
  readonly elapsedMs: number;
  /** `Date.now()` of the first call; fault times count from here. */
  readonly loadStartedAtMs: number | undefined;
  /** From the first call to the end of the last one (its retries included). */
  readonly loadMs: number | undefined;
  readonly faults: readonly FaultRecord[];
  readonly faultCounts: Readonly<Record<FaultKind, number>>;
  /** Undefined when the campaign failed before it could judge. */
  readonly verdict: Verdict | undefined;
  /** Health said SERVING after the load and the faults, within `servingTimeoutMs`. */
  readonly isServingAtEnd: boolean;
  /** The last health answer when it was not SERVING. */
  readonly lastReadiness: string | undefined;
  /** From the end of the last fault's recovery (or the load's start) to the SERVING that lasted. */
  readonly servingAfterMs: number | undefined;
  /** Spells of anything but SERVING during the campaign (each fault makes some). */
  readonly notServingSpells: number;
  /** From the end of the load until the stream held every OK event and nothing was pending. */
  readonly settledAfterMs: number | undefined;
  /** gradecast deaths the campaign did not cause. */
  readonly unexpectedExits: readonly string[];
  /** Why the campaign could not run to its end (set-up, a victim that did not come back...). */
  readonly failure: string | undefined;
  /** Nothing lost, duplicated, unexplained or misanswered, every call answered, SERVING. */
  readonly isPassed: boolean;
}

const STREAM = "GRADECAST_CHAOS";
const SOURCEHOST = "chaos";
/** gradecast names its NATS connection `gradecast <--sourcehost>`. */
const GRADECAST_CLIENT_NAME = `gradecast ${SOURCEHOST}`;
const READ_TIMEOUT_MS = 15_000;
const NATS_OUTPUT_LINES = 30;
/** The load goes on this long after the last fault is over, to see scores flow again. */
const LOAD_AFTER_FAULTS_MS = 1_000;

/**
 * One campaign on loopback: starts NATS (one server or three), a store and `gradecast serve`,
 * drives SubmitScore for `durationMs` while the fault plan kills and stalls them, waits until
 * the outbox is drained, reads the whole stream with a reader of its own, judges, checks that
 * health says SERVING, and removes everything it started, also on failure or abort.
 * Bounded: every wait has a deadline, and the whole campaign aborts past the sum of them.
 */
export async function runChaosCampaign(
  input: ChaosOptionsInput,
  signal: AbortSignal = new AbortController().signal,
): Promise<CampaignReport> {
  const options = makeChaosOptions(input);
  const startedMs = Date.now();
  const name = formName(options.form);
  const log = (line: string) => options.log(`[${name}] ${line}`);
  const bound = AbortSignal.any([signal, AbortSignal.timeout(campaignBoundMs(options))]);
  const random = new SeededRandom(options.seed);
  const plan = planFaults(options.durationMs, options.faults, options.form.nats, random);
  const cleanups: (() => Promise<void>)[] = [];

  let faults: FaultRecord[] = [];
  let verdict: Verdict | undefined;
  let readiness: ServingCheck = {
    isServing: false,
    last: "not checked",
    afterMs: undefined,
    notServingSpells: 0,
  };
  let settledAfterMs: number | undefined;
  let loadMs: number | undefined;
  let loadStartedAtMs: number | undefined;
  let failure: string | undefined;
  let gradecast: GradecastSupervisor | undefined;
  try {
    log(`starting: NATS ${options.form.nats}, store ${options.form.store}, seed ${options.seed}`);
    const nats = await startNatsTopology(options.form.nats, options.startTimeoutMs);
    cleanups.push(() => nats.cleanup());
    const store = await prepareStore(options.form.store);
    cleanups.push(() => store.drop());
    const dataDir = await mkdtemp(join(tmpdir(), "gradecast-chaos-"));
    cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
    const supervisor = new GradecastSupervisor({
      natsUrls: nats.urls,
      dataDir,
      stream: STREAM,
      serveArgs: [...store.serveArgs, "--replicas", String(nats.replicas)],
      readyTimeoutMs: options.startTimeoutMs,
      callDeadlineMs: options.callDeadlineMs,
      sourcehost: SOURCEHOST,
      log,
    });
    gradecast = supervisor;
    cleanups.push(() => supervisor.stop(10_000));
    await supervisor.start();
    const watch = new ReadinessWatch(supervisor.address);
    cleanups.push(() => watch.stop());
    watch.start();
    if (!(await watch.waitUntilServing(options.startTimeoutMs, bound))) {
      throw new Error(`gradecast never said SERVING: ${watch.current?.status ?? "no answer"}`);
    }

    log(`load for ${options.durationMs / 1_000} s with ${plan.length} faults planned`);
    const loadStartMs = Date.now();
    loadStartedAtMs = loadStartMs;
    const stopLoad = new AbortController();
    const loadSignal = AbortSignal.any([bound, stopLoad.signal]);
    // The load lasts durationMs, and longer when recoveries put the fault plan behind, so every
    // planned fault lands under load.
    let faultsOverAtMs: number | undefined;
    const isLoadDone = () =>
      Date.now() >= loadStartMs + options.durationMs &&
      faultsOverAtMs !== undefined &&
      Date.now() >= faultsOverAtMs + LOAD_AFTER_FAULTS_MS;
    // Every worker's pacing and backoff listens on these: not a leak.
    setMaxListeners(options.concurrency * 2 + 16, bound, loadSignal);
    const [load, faulting] = await Promise.allSettled([
      driveScoreLoad(supervisor, {
        concurrency: options.concurrency,
        maxCallsPerS: options.maxCallsPerS,
        maxCalls: options.maxCalls,
        retryShare: options.retryShare,
        regradeShare: options.regradeShare,
        callRetryMs: options.callRetryMs,
        isDone: isLoadDone,
        random: new SeededRandom(options.seed + 1),
        signal: loadSignal,
      }),
      runFaults(plan, {
        gradecast: supervisor,
        nats,
        gradecastClientName: GRADECAST_CLIENT_NAME,
        loadStartMs,
        recoveryTimeoutMs: options.startTimeoutMs,
        signal: bound,
        log,
      }).then(
        (records) => {
          faultsOverAtMs = Date.now();
          return records;
        },
        (error: unknown) => {
          // A victim that did not come back: no point loading a system that is half gone.
          stopLoad.abort();
          throw error;
        },
      ),
    ]);
    if (faulting.status === "rejected") throw faulting.reason;
    if (load.status === "rejected") throw load.reason;
    faults = faulting.value;
    const calls: CallRecord[] = load.value;
    bound.throwIfAborted();
    const loadEndMs = Date.now();
    loadMs = loadEndMs - loadStartMs;
    const lastRecoveryMs = Math.max(
      loadStartMs,
      ...faults.map((f) => loadStartMs + f.recoveredAtMs),
    );

    log(`${calls.length} calls done; waiting for the outbox to drain`);
    const reader = await StreamReader.open(nats.urls, STREAM);
    cleanups.push(() => reader.close());
    const okEventIds = new Set(
      calls.flatMap((call) => (call.outcome.kind === "ok" ? [call.outcome.eventId] : [])),
    );
    const [settledAtMs, isServing] = await Promise.all([
      waitUntilSettled(supervisor, reader, okEventIds, options.settleTimeoutMs, bound, log),
      watch.waitUntilServing(options.servingTimeoutMs, bound),
    ]);
    settledAfterMs = settledAtMs === undefined ? undefined : settledAtMs - loadEndMs;
    const servingSince = isServing ? watch.current : undefined;
    readiness = {
      isServing,
      last: watch.current?.status ?? "no answer",
      afterMs: servingSince && Math.max(0, servingSince.atMs - lastRecoveryMs),
      notServingSpells: watch.changes.filter((change) => change.status !== "SERVING").length,
    };
    await reader.readNew(READ_TIMEOUT_MS);
    verdict = judgeCampaign(calls, reader.events);
    if (!readiness.isServing)
      log(`not SERVING at the end: ${readiness.last}\n${output(supervisor, nats)}`);
  } catch (error) {
    if (signal.aborted) failure = "interrupted";
    else {
      const stack = error instanceof Error && error.stack ? `\n${error.stack}` : "";
      const bounded = bound.aborted
        ? `the campaign's bound of ${campaignBoundMs(options) / 1_000} s passed: `
        : "";
      failure = `${bounded}${String(error)}${stack}`;
    }
    log(`failed: ${failure}`);
  } finally {
    for (const cleanup of cleanups.reverse()) {
      await cleanup().catch((error: unknown) => log(`clean-up failed: ${String(error)}`));
    }
  }

  const faultCounts = Object.fromEntries(FAULT_KINDS.map((kind) => [kind, 0])) as Record<
    FaultKind,
    number
  >;
  for (const fault of faults) faultCounts[fault.kind] += 1;
  const unexpectedExits = gradecast?.unexpectedExits ?? [];
  const isPassed =
    failure === undefined &&
    verdict !== undefined &&
    readiness.isServing &&
    unexpectedExits.length === 0 &&
    [
      verdict.lost,
      verdict.duplicated,
      verdict.unexplained,
      verdict.misanswered,
      verdict.errors,
      verdict.unanswered,
    ].every((findings) => findings.length === 0);
  return {
    form: options.form,
    seed: options.seed,
    elapsedMs: Date.now() - startedMs,
    loadStartedAtMs,
    loadMs,
    faults,
    faultCounts,
    verdict,
    isServingAtEnd: readiness.isServing,
    lastReadiness: readiness.isServing ? undefined : readiness.last,
    servingAfterMs: readiness.afterMs,
    notServingSpells: readiness.notServingSpells,
    settledAfterMs,
    unexpectedExits,
    failure,
    isPassed,
  };
}

interface ServingCheck {
  isServing: boolean;
  last: string;
  /** From the last fault's recovery to the answer SERVING that lasted. */
  afterMs: number | undefined;
  /** Times health said something other than SERVING during the campaign. */
  notServingSpells: number;
}

/**
 * Start-ups, the load (three times its duration: recoveries may put the fault plan behind),
 * a call's retries, settling, readiness and clean-up: past this the campaign is stuck.
 */
function campaignBoundMs(options: ChaosOptions): number {
  return (
    options.startTimeoutMs * 3 +
    options.durationMs * 3 +
    options.callRetryMs +
    options.settleTimeoutMs +
    options.servingTimeoutMs +
    60_000
  );
}

/** gradecast's last output lines, and the last few of NATS (a cluster's are long). */
function output(gradecast: GradecastSupervisor, nats: NatsTopology): string {
  const natsTail = nats.output().split("\n").slice(-NATS_OUTPUT_LINES).join("\n");
  return `--- gradecast:\n${gradecast.output()}\n--- NATS (last ${NATS_OUTPUT_LINES} lines):\n${natsTail}`;
}
