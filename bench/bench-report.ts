// The figures of one bench run: what the table prints and the JSON holds.
import type { MergedOutcome } from "./load-generator.js";
import type { UsageDelta } from "./process-usage.js";

/** Latency percentiles of a set of samples, in ms. */
export interface LatencyFigures {
  samples: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
}

/** What a load generator measured in one scenario. */
export interface LoadFigures {
  requested: number;
  completed: number;
  /** Failed calls, plus open-loop calls shed because too many were in flight. */
  errors: number;
  callsPerS: number;
  latency: LatencyFigures;
  /** The first few distinct error messages. */
  errorSamples: string[];
}

/** What the gradecast process used during a scenario. */
export interface ServerUsage {
  cpuS: number;
  cpuSPer1000Calls: number;
  /** Peak RSS during the scenario (or since start, if the kernel refused to reset the peak). */
  peakRssMb: number;
}

/** Scenario ids, stable: the JSON and the quick test name them. */
export type ScenarioId =
  | "echo-baseline"
  | "closed-loop"
  | `open-loop-${number}`
  | "jetstream-publish-baseline"
  | "outbox-drain";

/** One scenario's figures. */
export interface ScenarioReport {
  id: ScenarioId;
  /** What it measures, in a line. */
  title: string;
  /** Errors of every kind; zero in a good run. */
  errors: number;
  /** What went wrong besides failed calls (missing events, calls not made in time, ...). */
  problems: string[];
  load: LoadFigures;
  /** Open loops: call start -> subscriber (the SDK) received the event. */
  endToEnd?: LatencyFigures & { missing: number };
  /** Scenarios that drive gradecast: its CPU and memory. */
  server?: ServerUsage;
  /** Outbox drain: how the outbox emptied once NATS was back. */
  drain?: DrainFigures;
}

/** The outbox-drain scenario, after NATS came back. */
export interface DrainFigures {
  events: number;
  /** NATS healthy -> first drained event in the stream (gradecast's reconnect). */
  reconnectS: number;
  /** First drained event -> the stream holds them all. */
  drainS: number;
  /** Drain rate over `drainS`. */
  eventsPerS: number;
  /** What the drain cost gradecast (accepting the scores is in `server`). */
  server: ServerUsage;
}

/** The store under test: what was preloaded, and its size on disk. */
export interface StoreFigures {
  kind: "sqlite" | "postgres";
  /** Scores stored before serve started (`--preload`), with their published outbox rows. */
  preloadedScores: number;
  /** How long preloading took. */
  preloadS: number;
  /** Bytes on disk when serve started (SQLite file and WAL; PostgreSQL tables). */
  sizeBeforeBytes: number;
  /** Bytes on disk after the last scenario. */
  sizeAfterBytes: number;
}

/** The whole run. */
export interface BenchReport {
  startedAt: string;
  machine: {
    cpus: number;
    cpuModel: string;
    node: string;
    platform: string;
    loadAverage: number[];
  };
  settings: Record<string, unknown>;
  store: StoreFigures;
  scenarios: ScenarioReport[];
  /** Peak RSS of the gradecast process over the run. */
  serverPeakRssMb: number;
  ratios: {
    /** Closed-loop SubmitScore calls/s over echo calls/s. */
    submitScoreOverEcho: number;
    /** Outbox drain events/s over raw JetStream publishes/s. */
    drainOverRawPublish: number;
  };
}

/** Percentiles by nearest rank. */
export function latencyFigures(samples: Float64Array): LatencyFigures {
  const sorted = Float64Array.from(samples).sort();
  const at = (q: number) =>
    sorted.length === 0
      ? 0
      : (sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? 0);
  return {
    samples: sorted.length,
    p50Ms: round2(at(0.5)),
    p90Ms: round2(at(0.9)),
    p99Ms: round2(at(0.99)),
    maxMs: round2(sorted[sorted.length - 1] ?? 0),
  };
}

/** A load generator's outcome as figures (calls/s over the time until the last answer). */
export function loadFigures(outcome: MergedOutcome): LoadFigures {
  return {
    requested: outcome.requested,
    completed: outcome.completed,
    errors: outcome.errors,
    callsPerS: Math.round(outcome.completed / (outcome.elapsedMs / 1000)),
    latency: latencyFigures(outcome.latenciesMs),
    errorSamples: outcome.errorSamples,
  };
}

/** Server usage figures for `calls` calls. */
export function serverUsage(usage: UsageDelta, calls: number): ServerUsage {
  return {
    cpuS: round2(usage.cpuS),
    cpuSPer1000Calls: round3(calls === 0 ? 0 : (usage.cpuS * 1000) / calls),
    peakRssMb: Math.round(usage.peakRssBytes / 1e5) / 10,
  };
}

export function round2(value: number): number {
  return Math.round(value * 100) / 100;
}

function round3(value: number): number {
  return Math.round(value * 1000) / 1000;
}
