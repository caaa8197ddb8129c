import type { Logger } from "pino";
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { Store } from "../store/index.js";

/** What the metrics read on each scrape rather than track on the hot path. */
export interface MetricsSources {
  store: Pick<Store, "outboxBacklog">;
  isNatsConnected: () => boolean;
}

const LATENCY_BUCKETS_S = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/**
 * The Prometheus series of one gradecast instance, in a registry of its own
 * (never prom-client's global one, so two instances in a process do not mix).
 * Recording is a counter increment and a histogram observation; the outbox
 * gauges query the store only when scraped.
 */
export class GradecastMetrics {
  readonly registry = new Registry();
  readonly #grpcRequests: Counter<"method" | "code">;
  readonly #grpcDuration: Histogram<"method" | "code">;
  readonly #eventsPublished: Counter;
  readonly #publishDuration: Histogram;
  readonly #publishFailures: Counter<"reason">;

  constructor(sources: MetricsSources, logger: Logger) {
    const registers = [this.registry];
    this.#grpcRequests = new Counter({
      name: "gradecast_grpc_requests_total",
      help: "gRPC calls to ScoreService answered, by method and status code",
      labelNames: ["method", "code"],
      registers,
    });
    this.#grpcDuration = new Histogram({
      name: "gradecast_grpc_request_duration_seconds",
      help: "Time from a ScoreService call's arrival to its answer, by method and status code",
      labelNames: ["method", "code"],
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
      help: "Publishes JetStream did not acknowledge, direct or by the outbox relay, by reason (not-connected, disconnected, timeout, no-stream, too-large, refused)",
      labelNames: ["reason"],
      registers,
    });
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
      name: "gradecast_outbox_oldest_pending_age_seconds",
      help: "Age of the oldest event waiting to be published; 0 when none waits",
      registers,
      async collect() {
        const backlog = await readBacklog();
        if (!backlog) return;
        const oldestMs = backlog.oldestCreatedAtMs;
        this.set(oldestMs === undefined ? 0 : Math.max(0, Date.now() - oldestMs) / 1000);
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
      name: "gradecast_nats_connected",
      help: "1 while the NATS connection is up, else 0",
      registers,
      collect() {
        this.set(sources.isNatsConnected() ? 1 : 0);
      },
    });
  }

  /** Records one answered gRPC call; `code` is the status name, e.g. `OK`. */
  observeGrpcCall(method: string, code: string, durationS: number): void {
    this.#grpcRequests.inc({ method, code });
    this.#grpcDuration.observe({ method, code }, durationS);
  }

  /** Records one publish JetStream acknowledged. */
  observePublish(durationS: number, isDuplicate: boolean): void {
    this.#publishDuration.observe(durationS);
    if (!isDuplicate) this.#eventsPublished.inc();
  }

  /** Records one publish that failed, by its reason. */
  observePublishFailure(reason: string): void {
    this.#publishFailures.inc({ reason });
  }
}
