import { Server } from "@grpc/grpc-js";
import type { Logger } from "pino";
import { EventSizing, ScoreServiceService } from "../contract/index.js";
import {
  EventPublisher,
  NatsLink,
  OutboxMarks,
  OutboxRelay,
  StreamSetup,
} from "../events/index.js";
import {
  GroupCommit,
  OutboxPruner,
  PostgresStore,
  redactUrl,
  type Store,
  ThreadedSqliteStore,
} from "../store/index.js";
import { gradecastVersion } from "../version.js";
import { callAdmission } from "./call-admission.js";
import { callMetrics, grpcMethodLabels } from "./call-metrics.js";
import type { ServeConfig } from "./config.js";
import { warnOfUnsafeCredentialsFile } from "./credentials-file-checks.js";
import { GraderAuthenticator } from "./grader-auth.js";
import { loadGraders } from "./grader-credentials.js";
import { ServingHealth } from "./health.js";
import { type HttpProbes, startHttpProbes } from "./http-probes.js";
import { warnOfLegacyHashes } from "./legacy-migration.js";
import { GradecastMetrics } from "./metrics.js";
import { addReflection } from "./reflection.js";
import { ScoreIntake } from "./score-intake.js";
import { scoreServiceHandlers } from "./score-service.js";
import { serverCredentialsFor } from "./tls.js";
import { grpcTransportOptions } from "./transport-options.js";

type ServerState = "new" | "starting" | "serving" | "stopping" | "stopped";

/**
 * Stream set-up retries while connected: quick at first (a cluster elects a new meta leader in
 * seconds), then no more than one try every 5 s.
 */
const STREAM_SETUP_BACKOFF = { initialBackoffMs: 250, maxBackoffMs: 5_000 } as const;

/**
 * One gradecast instance: store, NATS link, outbox relay and gRPC server,
 * started in dependency order and stopped gracefully in reverse.
 */
export class GradecastServer {
  readonly #config: ServeConfig;
  readonly #logger: Logger;
  #state: ServerState = "new";
  #store: Store | undefined;
  #link: NatsLink | undefined;
  #relay: OutboxRelay | undefined;
  #pruner: OutboxPruner | undefined;
  #marks: OutboxMarks | undefined;
  #intake: ScoreIntake | undefined;
  #authenticator: GraderAuthenticator | undefined;
  #grpc: Server | undefined;
  #probes: HttpProbes | undefined;
  #port = 0;
  #streamReady: Promise<void> | undefined;
  #streamSetup: StreamSetup | undefined;
  /** Set while the connected NATS server's max_payload is below the largest event. */
  #maxPayloadWarning: string | undefined;
  readonly #health = new ServingHealth();

  constructor(config: ServeConfig, logger: Logger) {
    this.#config = config;
    this.#logger = logger;
  }

  /** The bound gRPC port (useful with `listen` port 0). */
  get port(): number {
    return this.#port;
  }

  /** The bound port of the metrics and probes HTTP server; undefined when it is off or not started. */
  get metricsPort(): number | undefined {
    return this.#probes?.port;
  }

  /** The serving status published on grpc.health.v1.Health and /readyz. */
  get health(): ServingHealth {
    return this.#health;
  }

  /** Resolves once the JetStream streams have been set up (found, created or updated) once. */
  get streamReady(): Promise<void> {
    return this.#streamReady ?? Promise.reject(new Error("the server is not started"));
  }

  /**
   * Opens the store, starts connecting to NATS in the background (scores are
   * taken while NATS is down), starts the relay, then serves gRPC.
   */
  async start(): Promise<void> {
    if (this.#state !== "new") throw new Error(`cannot start a server that is ${this.#state}`);
    this.#state = "starting";
    try {
      await this.#startParts();
    } catch (error) {
      // Whatever did start (store, NATS link, relay, listeners) would keep the process alive.
      await this.stop().catch((stopError: unknown) =>
        this.#logger.error({ err: stopError }, "cleanup after a failed start failed"),
      );
      throw error;
    }
  }

  /**
   * Reads the credentials file again and swaps it in (SIGHUP): revoked tokens stop working and
   * remembered verifications are forgotten. Rejects, keeping the old credentials, when the file
   * cannot be read or is malformed.
   */
  async reloadCredentials(): Promise<void> {
    const auth = this.#config.auth;
    if (auth.kind === "none") {
      this.#logger.warn("grader authentication is off (--insecure-no-auth): nothing to reload");
      return;
    }
    if (!this.#authenticator)
      throw new Error(`cannot reload credentials of a ${this.#state} server`);
    const graders = await loadGraders(auth.credentialsPath);
    this.#authenticator.replace(graders);
    this.#logger.info(
      { credentials: auth.credentialsPath, graders: graders.length },
      "grader credentials reloaded",
    );
    warnOfLegacyHashes(this.#logger, auth.credentialsPath, graders);
    await warnOfUnsafeCredentialsFile(this.#logger, auth.credentialsPath);
  }

  async #startParts(): Promise<void> {
    const config = this.#config;
    const logger = this.#logger;

    if (config.auth.kind === "tokens") {
      const graders = await loadGraders(config.auth.credentialsPath);
      this.#authenticator = new GraderAuthenticator(graders);
      logger.info(
        { credentials: config.auth.credentialsPath, graders: graders.length },
        "grader credentials loaded",
      );
      warnOfLegacyHashes(logger, config.auth.credentialsPath, graders);
      await warnOfUnsafeCredentialsFile(logger, config.auth.credentialsPath);
    } else {
      logger.warn(
        "grader authentication is off (--insecure-no-auth): anyone who reaches the port may submit scores for any queue",
      );
    }

    const store = openStore(config, logger, (isReachable) => {
      this.#health.setStoreOpen(isReachable);
      if (isReachable) logger.info("PostgreSQL answers again");
      else logger.warn("PostgreSQL does not answer: calls get UNAVAILABLE until it does");
    });
    await store.start();
    this.#store = store;
    this.#health.setStoreOpen(true);
    logger.info(
      config.store.kind === "sqlite"
        ? { store: "sqlite", path: config.store.path }
        : { store: "postgres", url: redactUrl(config.store.url), poolSize: config.store.poolSize },
      "store open",
    );

    const link = new NatsLink(
      {
        servers: config.nats.servers,
        name: `gradecast ${config.events.sourcehost}`,
        reconnectTimeWaitMs: config.nats.reconnectTimeWaitMs,
        connectTimeoutMs: config.nats.connectTimeoutMs,
        auth: config.nats.auth,
        caPem: config.nats.caPem,
      },
      logger,
    );
    this.#link = link;
    const health = this.#health;
    const metrics = new GradecastMetrics(
      { store, isNatsConnected: () => link.isConnected, isReady: () => health.isServing },
      { version: gradecastVersion(), storeKind: config.store.kind },
      logger,
    );
    // Readiness says whether gradecast can publish now: a stream set-up or a publish JetStream
    // acknowledged proves it; a dropped connection, or publishes that JetStream leaves
    // unanswered for longer than a publish timeout, end it.
    let resolveStreamReady = () => {};
    this.#streamReady = new Promise<void>((resolve) => {
      resolveStreamReady = resolve;
    });
    const streamSetup = new StreamSetup(
      link,
      config.stream,
      {
        ...STREAM_SETUP_BACKOFF,
        onSetUp: () => {
          // The link may have dropped while the stream was being set up.
          health.setNatsReady(link.isConnected);
          resolveStreamReady();
          this.#relay?.wake();
        },
      },
      logger,
    );
    this.#streamSetup = streamSetup;
    link.onDisconnected(() => health.setNatsReady(false));
    const eventSizing = new EventSizing(config.events, config.stream.subjectPrefix);
    link.onConnected(() => this.#checkMaxPayload(link, eventSizing));

    let lastAckAtMs = 0;
    const publisher = new EventPublisher(link, {
      timeoutMs: config.publish.timeoutMs,
      onAcknowledged: (durationS, isDuplicate) => {
        metrics.observePublish(durationS, isDuplicate);
        lastAckAtMs = performance.now();
        if (link.isConnected) health.setNatsReady(true);
        // A relay backing off need not wait: NATS takes events again.
        this.#relay?.notePublishAcknowledged();
      },
      onFailed: (reason, path) => {
        metrics.observePublishFailure(path, reason);
        // Connected, yet JetStream stores nothing (the stream lost its leader or was deleted):
        // this instance cannot publish now. The next ack or stream set-up says it can again.
        const isStreamUnanswering = reason === "timeout" || reason === "no-stream";
        if (isStreamUnanswering && performance.now() - lastAckAtMs > config.publish.timeoutMs) {
          health.setNatsReady(false);
          streamSetup.kick();
        }
      },
    });
    const relay = new OutboxRelay(
      store,
      publisher,
      link,
      {
        ...config.relay,
        // A deleted stream is re-created by the set-up loop; the relay never waits for it.
        beforeRetry: async () => streamSetup.kick(),
        onRetry: (reason) => metrics.observeRelayRetry(reason),
      },
      logger,
    );
    this.#relay = relay;
    const marks = new OutboxMarks(store, logger, () => relay.wake());
    this.#marks = marks;
    const groupCommit = new GroupCommit(store, {
      maxBatch: config.commit.maxBatch,
      maxBatchesInFlight: config.commit.maxBatchesInFlight,
      directLeaseMs: () => (link.isConnected ? config.publish.timeoutMs + 1_000 : 0),
    });
    this.#intake = new ScoreIntake({
      store,
      groupCommit,
      publisher,
      marks,
      isNatsConnected: () => link.isConnected,
      publishWaitMs: config.publish.waitMs,
      eventSizing,
      maxEventBytes: () => link.maxPayloadBytes,
      logger,
    });

    streamSetup.start();
    link.start().catch((error: unknown) => logger.debug({ err: error }, "NATS link closed"));
    relay.start();
    if (config.outboxPruning) {
      this.#pruner = new OutboxPruner(
        store,
        { ...config.outboxPruning, onPruned: (count) => metrics.observeOutboxPruned(count) },
        logger,
      );
      this.#pruner.start();
    }

    // Probes first: a metrics port that cannot be bound fails the start before gRPC serves.
    if (config.metricsListen !== undefined) {
      this.#probes = await startHttpProbes({
        listen: config.metricsListen,
        registry: metrics.registry,
        isReady: () => health.isServing,
        readinessNotes: () =>
          this.#maxPayloadWarning === undefined ? [] : [this.#maxPayloadWarning],
        logger,
      });
      logger.info(
        { listen: config.metricsListen, port: this.#probes.port },
        "serving /metrics, /healthz and /readyz",
      );
    }
    // Every bound a stranger meets before a call runs: streams, session memory and connection
    // lifetime per connection, and (callAdmission) a token at the headers and a request that
    // arrives whole in time.
    const authenticator = this.#authenticator;
    const grpc = new Server({
      ...grpcTransportOptions(config.transport),
      "grpc.max_receive_message_length": config.maxMessageBytes,
      // Channelz stays on (grpc-js's default) though nothing reads it: grpc-js 1.14 tracks
      // sessions for forceShutdown only in its channelz handler, so with it off a forced
      // shutdown leaves in-flight calls running (test/integration/graceful-shutdown).
      // callMetrics first, nearest the transport: it counts the answers callAdmission gives too.
      interceptors: [
        callMetrics(metrics),
        callAdmission({
          authenticatedPaths: new Set(
            Object.values(ScoreServiceService).map((definition) => definition.path),
          ),
          authenticate: authenticator
            ? (metadata, certificateName) => authenticator.authenticate(metadata, certificateName)
            : undefined,
          requestArrivalTimeoutMs: config.transport.requestArrivalTimeoutMs,
          logger,
        }),
      ],
    });
    grpc.addService(
      ScoreServiceService,
      scoreServiceHandlers(this.#intake, logger, this.#authenticator),
    );
    metrics.initializeGrpcMethods(Object.values(ScoreServiceService).map(grpcMethodLabels));
    health.addToServer(grpc);
    if (config.reflection) await addReflection(grpc);
    this.#port = await new Promise<number>((resolve, reject) => {
      grpc.bindAsync(config.listen, serverCredentialsFor(config), (error, port) =>
        error
          ? reject(new Error(`cannot listen on ${config.listen}: ${error.message}`))
          : resolve(port),
      );
    });
    this.#grpc = grpc;
    this.#state = "serving";
    logger.info(
      {
        listen: config.listen,
        port: this.#port,
        reflection: config.reflection,
        auth: config.auth.kind,
        tls: config.tls ? (config.tls.clientCaPem ? "mtls" : "tls") : "off",
      },
      "gradecast is serving",
    );
  }

  /**
   * Says once per server, in one line, when the connected NATS server takes
   * smaller messages than the contract allows: such scores are refused at
   * SubmitScore (nothing is lost), and /readyz shows the same line.
   */
  #checkMaxPayload(link: NatsLink, eventSizing: EventSizing): void {
    const maxPayloadBytes = link.maxPayloadBytes;
    const neededBytes = eventSizing.largestEventBytes;
    if (maxPayloadBytes === undefined || maxPayloadBytes >= neededBytes) {
      this.#maxPayloadWarning = undefined;
      return;
    }
    const server = link.connection?.getServer();
    const warning = `NATS server ${server} has max_payload ${maxPayloadBytes} bytes, below the ${neededBytes} bytes of the largest event the contract allows: scores whose event is larger are refused at SubmitScore; raise max_payload to at least ${neededBytes}`;
    if (warning !== this.#maxPayloadWarning)
      this.#logger.warn({ server, maxPayloadBytes, neededBytes }, warning);
    this.#maxPayloadWarning = warning;
  }

  /**
   * Stops taking calls, lets in-flight ones finish, gives the relay a bounded
   * time to publish what is pending, drains NATS and closes the store. What is
   * not published by then stays in the outbox for the next start.
   */
  async stop(): Promise<void> {
    if (this.#state === "stopping" || this.#state === "stopped") return;
    this.#state = "stopping";
    // First, before any await: health checks and /readyz say NOT_SERVING for the whole drain.
    this.#health.startDraining();
    const deadlineMs = Date.now() + this.#config.shutdownTimeoutMs;
    const remainingMs = () => Math.max(0, deadlineMs - Date.now());
    this.#logger.info({ timeoutMs: this.#config.shutdownTimeoutMs }, "stopping gracefully");

    if (this.#grpc) await shutdownGrpc(this.#grpc, remainingMs() / 2);
    await this.#intake?.close();
    await this.#marks?.flush();
    await this.#relay?.stop(remainingMs());
    await this.#pruner?.close();
    this.#streamSetup?.close();
    await this.#link?.close();
    // Probes answer (readyz 503) until here; the store they read the backlog from closes next.
    await this.#probes?.close();
    this.#health.setStoreOpen(false);
    await this.#store?.close();
    this.#state = "stopped";
    this.#logger.info("stopped");
  }
}

/** Graceful gRPC shutdown (in-flight calls finish), forced after `timeoutMs`. */
function shutdownGrpc(server: Server, timeoutMs: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, timeoutMs);
    server.tryShutdown(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/**
 * The store the config names; SQLite commits on its own thread. A PostgreSQL
 * store tells `onReachableChange` when the database stops or resumes answering.
 */
function openStore(
  config: ServeConfig,
  logger: Logger,
  onReachableChange: (isReachable: boolean) => void,
): Store {
  const encoding = { origin: config.events, subjectPrefix: config.stream.subjectPrefix };
  if (config.store.kind === "sqlite") {
    return new ThreadedSqliteStore({ path: config.store.path, encoding });
  }
  return new PostgresStore({
    url: config.store.url,
    poolSize: config.store.poolSize,
    encoding,
    onIdleConnectionError: (error) =>
      logger.warn({ err: error }, "an idle PostgreSQL connection failed; the pool replaces it"),
    onReachableChange,
  });
}
