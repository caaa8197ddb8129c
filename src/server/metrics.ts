import { status } from "@grpc/grpc-js";
import type { Logger } from "pino";
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import {
  PUBLISH_FAILURE_REASONS,
  type PublishFailureReason,
  type PublishPath,
} from "../events/index.js";
import type { Store } from "../store/index.js";
import type { GrpcCallRecorder, GrpcMethodLabels } from "./call-metrics.js";

/** What the metrics read on each scrape rather than track on the hot path. */
export interface MetricsSources {
  store: Pick<Store, "outboxBacklog">;
  isNatsConnected: () => boolean;
  /** Readiness: true while the health status is SERVING (what `/readyz` answers 200 to). */
  isReady: () => boolean;
}

/** What `gradecast_build_info` says about this process: a fixed set, one series. */
export interface BuildFacts {
  /** gradecast's version (package.json). */
  version: string;
  storeKind: "sqlite" | "postgres";
}

/**
 * Prometheus's default buckets (the ones go-grpc-prometheus uses) with 1 ms and 2.5 ms added
 * below: an answered SubmitScore takes a few milliseconds, under the default's first bucket.
 */
const LATENCY_BUCKETS_S = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** Every gRPC status name, for counting a method's answers from zero. */
const GRPC_CODE_NAMES = Object.keys(status).filter((key) => Number.isNaN(Number(key)));

type GrpcHandledLabel = keyof GrpcMethodLabels | "grpc_code";

/**
 * One method's series, bound once: prom-client hashes a label set on every `inc` and
 * `observe` given labels, and a call records three of them.
 */
interface GrpcMethodSeries {
  started: { inc(): void };
  handlingSeconds: { observe(value: number): void };
  handledByCode: Map<string, { inc(): void }>;
}

/**
 * The Prometheus series of one gradecast instance, in a registry of its own
 * (never prom-client's global one, so two instances in a process do not mix).
 * Recording is a counter increment and a histogram observation; the outbox
 * gauges query the store only when scraped. The registry also holds prom-client's
 * process and Node.js runtime series (`process_*`, `nodejs_*`).
 */
export class GradecastMetrics implements GrpcCallRecorder {
  readonly registry = new Registry();
  readonly #grpcStarted: Counter<keyof GrpcMethodLabels>;
  readonly #grpcHandled: Counter<GrpcHandledLabel>;
  readonly #grpcHandlingSeconds: Histogram<keyof GrpcMethodLabels>;
  readonly #eventsPublished: Counter;
  readonly #publishDuration: Histogram;
  readonly #publishFailures: Counter<"path" | "reason">;
  readonly #relayRetries: Counter<"reason">;
  readonly #outboxPruned: Counter;
  /** Keyed by the labels object, which {@link callMetrics} keeps one of per method. */
  readonly #grpcSeries = new WeakMap<GrpcMethodLabels, GrpcMethodSeries>();

  constructor(sources: MetricsSources, build: BuildFacts, logger: Logger) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    new Gauge({
      name: "gradecast_build_info",
      help: "Always 1; its labels say which gradecast runs: version, Node.js version, store kind",
      labelNames: ["version", "nodejs_version", "store"],
      registers,
    }).set({ version: build.version, nodejs_version: process.version, store: build.storeKind }, 1);
    const grpcMethodLabelNames: (keyof GrpcMethodLabels)[] = [
      "grpc_service",
      "grpc_method",
      "grpc_type",
    ];
    this.#grpcStarted = new Counter({
      name: "grpc_server_started_total",
      help: "gRPC calls started on the server (ScoreService, Health, reflection)",
      labelNames: grpcMethodLabelNames,
      registers,
    });
    this.#grpcHandled = new Counter({
      name: "grpc_server_handled_total",
      help: "gRPC calls completed on the server, by the status code the client got",
      labelNames: [...grpcMethodLabelNames, "grpc_code"],
      registers,
    });
    this.#grpcHandlingSeconds = new Histogram({
      name: "grpc_server_handling_seconds",
      help: "Time from a gRPC call's arrival to its status, whatever the code",
      labelNames: grpcMethodLabelNames,
      buckets: LATENCY_BUCKETS_S,
      registers,
    });
    this.#eventsPublished = new Counter({
      name: "gradecast_events_published_total",
      help: "Events JetStream stored (acknowledged, not as a duplicate), direct or by the outbox relay",
      registers,
    });
    this.#publishDuration = new Histogram({
      name: "gradecast_publish_duration_seconds",
      help: "Time from publishing an event to JetStream's acknowledgement",
      buckets: LATENCY_BUCKETS_S,
      registers,
    });
    this.#publishFailures = new Counter({
      name: "gradecast_publish_failures_total",
      help: "Publishes JetStream did not acknowledge, by path (direct, relay) and reason (not-connected, disconnected, timeout, no-stream, too-large, refused)",
      labelNames: ["path", "reason"],
      registers,
    });
    this.#relayRetries = new Counter({
      name: "gradecast_relay_retries_total",
      help: "Outbox events the relay failed to publish and set to try again (parked ones not counted), by reason",
      labelNames: ["reason"],
      registers,
    });
    this.#outboxPruned = new Counter({
      name: "gradecast_outbox_pruned_total",
      help: "Outbox rows of published events deleted after the retention (--outbox-retention)",
      registers,
    });
    // Every label value from zero: a series that appears at 1 shows no increase() to alert on.
    for (const reason of PUBLISH_FAILURE_REASONS) {
      for (const path of ["direct", "relay"] satisfies PublishPath[]) {
        this.#publishFailures.inc({ path, reason }, 0);
      }
      if (reason !== "too-large") this.#relayRetries.inc({ reason }, 0);
    }
    let isBacklogFailureLogged = false;
    const readBacklog = async () => {
      try {
        const backlog = await sources.store.outboxBacklog();
        isBacklogFailureLogged = false;
        return backlog;
      } catch (error) {
        // Logged once per run of failures: a scrape every few seconds must not flood the log.
        if (!isBacklogFailureLogged) {
          logger.warn({ err: error }, "cannot read the outbox backlog for metrics");
          isBacklogFailureLogged = true;
        }
        return undefined;
      }
    };
    new Gauge({
      name: "gradecast_outbox_pending",
      help: "Events committed but not yet acknowledged by JetStream, parked ones not counted",
      registers,
      async collect() {
        const backlog = await readBacklog();
        if (backlog) this.set(backlog.pending);
      },
    });
    new Gauge({
      name: "gradecast_outbox_oldest_pending_created_timestamp_seconds",
      help: "Creation time (Unix seconds) of the oldest event waiting to be published; 0 when none waits. Alert on time() minus this",
      registers,
      async collect() {
        const backlog = await readBacklog();
        if (!backlog) return;
        const oldestMs = backlog.oldestCreatedAtMs;
        this.set(oldestMs === undefined ? 0 : oldestMs / 1000);
      },
    });
    new Gauge({
      name: "gradecast_outbox_parked",
      help: "Events parked because JetStream cannot take them as they are (too large); `gradecast outbox retry` re-drives them",
      registers,
      async collect() {
        const backlog = await readBacklog();
        if (backlog) this.set(backlog.parked);
      },
    });
    new Gauge({
      name: "gradecast_ready",
      help: "1 while the health status is SERVING (/readyz 200: store open, NATS connected, JetStream answering), else 0",
      registers,
      collect() {
        this.set(sources.isReady() ? 1 : 0);
      },
    });
    new Gauge({
      name: "gradecast_nats_connected",
      help: "1 while the NATS connection is up, else 0",
      registers,
      collect() {
        this.set(sources.isNatsConnected() ? 1 : 0);
      },
    });
  }

  /**
   * Counts the methods' calls from zero, every status code included, as go-grpc-prometheus's
   * `InitializeMetrics` does: an error ratio or `increase()` then sees a method's first failure.
   */
  initializeGrpcMethods(methods: readonly GrpcMethodLabels[]): void {
    for (const method of methods) {
      this.#grpcStarted.inc(method, 0);
      this.#grpcHandlingSeconds.zero(method);
      for (const code of GRPC_CODE_NAMES) this.#grpcHandled.inc({ ...method, grpc_code: code }, 0);
    }
  }

  callStarted(method: GrpcMethodLabels): void {
    this.#seriesOf(method).started.inc();
  }

  callHandled(method: GrpcMethodLabels, code: string, durationS: number): void {
    const series = this.#seriesOf(method);
    let handled = series.handledByCode.get(code);
    if (!handled) {
      handled = this.#grpcHandled.labels({ ...method, grpc_code: code });
      series.handledByCode.set(code, handled);
    }
    handled.inc();
    series.handlingSeconds.observe(durationS);
  }

  #seriesOf(method: GrpcMethodLabels): GrpcMethodSeries {
    let series = this.#grpcSeries.get(method);
    if (!series) {
      series = {
        started: this.#grpcStarted.labels(method),
        handlingSeconds: this.#grpcHandlingSeconds.labels(method),
        handledByCode: new Map(),
      };
      this.#grpcSeries.set(method, series);
    }
    return series;
  }

  /** Records one publish JetStream acknowledged. */
  observePublish(durationS: number, isDuplicate: boolean): void {
    this.#publishDuration.observe(durationS);
    if (!isDuplicate) this.#eventsPublished.inc();
  }

  /** Records one publish that failed, by its path and reason. */
  observePublishFailure(path: PublishPath, reason: PublishFailureReason): void {
    this.#publishFailures.inc({ path, reason });
  }

  /** Records one outbox event the relay will try again, by why its publish failed. */
  observeRelayRetry(reason: PublishFailureReason): void {
    this.#relayRetries.inc({ reason });
  }

  /** Records `count` published outbox rows deleted by the pruner. */
  observeOutboxPruned(count: number): void {
    this.#outboxPruned.inc(count);
  }
}
