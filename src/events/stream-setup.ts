import type { StreamConfig } from "@nats-io/jetstream";
import type { Logger } from "pino";
import type { NatsLink } from "./nats-link.js";
import { type EnsuredStreams, ensureStream, type StreamSettings } from "./stream.js";

/** How {@link StreamSetup} retries, and whom it tells. */
export interface StreamSetupOptions {
  /** Wait after the first failed attempt; doubles per failure up to `maxBackoffMs`. */
  initialBackoffMs: number;
  maxBackoffMs: number;
  /** Called after every successful set-up with what the server holds for the event stream. */
  onSetUp: (config: StreamConfig) => void;
}

/** Failures in a row after which another warning is logged (the first one always is). */
const WARN_EVERY_ATTEMPTS = 20;

/**
 * Keeps gradecast's streams set up: runs {@link ensureStream} at every
 * (re)connect, and retries it with capped exponential backoff for as long as
 * the link stays up, until it succeeds.
 *
 * One failed try must not be the last: in a JetStream cluster, the set-up
 * right after a reconnect may need a meta leader that is still being elected,
 * and readiness would wait forever for a set-up nobody tries again.
 */
export class StreamSetup {
  readonly #link: NatsLink;
  readonly #settings: StreamSettings;
  readonly #options: StreamSetupOptions;
  readonly #logger: Logger;
  /** Counts connections: a run that began on an earlier one runs once more. */
  #connectionCount = 0;
  /** The connection whose set-up was last reported at info level: once per connection is news. */
  #reportedConnectionCount = 0;
  #running: Promise<void> | undefined;
  #wakeUp: (() => void) | undefined;
  #isClosed = false;
  readonly #unsubscribes: (() => void)[] = [];

  constructor(
    link: NatsLink,
    settings: StreamSettings,
    options: StreamSetupOptions,
    logger: Logger,
  ) {
    this.#link = link;
    this.#settings = settings;
    this.#options = options;
    this.#logger = logger;
  }

  /** Sets up on every connection from now on (and now, if connected). */
  start(): void {
    this.#unsubscribes.push(
      this.#link.onConnected(() => {
        this.#connectionCount += 1;
        // A run waiting out its backoff tries the new connection (maybe another server) now.
        this.#wakeUp?.();
        this.kick();
      }),
      // A backoff wait ends with the connection: the next connection starts afresh.
      this.#link.onDisconnected(() => this.#wakeUp?.()),
    );
    if (this.#link.isConnected) {
      this.#connectionCount += 1;
      this.kick();
    }
  }

  /**
   * Checks the streams now (e.g. the relay failed: the stream may have been
   * deleted), unless a set-up is already under way. Never waits for it:
   * stream administration may take seconds in a cluster, publishing need not.
   */
  kick(): void {
    if (this.#isClosed || this.#running || !this.#link.isConnected) return;
    this.#running = this.#run()
      .catch((error: unknown) => {
        this.#logger.error({ err: error, stream: this.#settings.name }, "stream set-up stopped");
      })
      .finally(() => {
        this.#running = undefined;
      });
  }

  /** Stops retrying; a set-up request in flight ends with the connection. */
  close(): void {
    this.#isClosed = true;
    for (const unsubscribe of this.#unsubscribes.splice(0)) unsubscribe();
    this.#wakeUp?.();
  }

  async #run(): Promise<void> {
    let failures = 0;
    let backoffMs = 0;
    let connectionCount = -1;
    while (!this.#isClosed && this.#link.isConnected) {
      const connection = this.#link.connection;
      if (!connection) return;
      if (connectionCount !== this.#connectionCount) {
        connectionCount = this.#connectionCount;
        failures = 0;
        backoffMs = 0;
      }
      let ensured: EnsuredStreams | undefined;
      try {
        ensured = await ensureStream(connection, this.#settings);
      } catch (error) {
        failures += 1;
        backoffMs = Math.min(
          this.#options.maxBackoffMs,
          Math.max(this.#options.initialBackoffMs, backoffMs * 2),
        );
        if (failures === 1 || failures % WARN_EVERY_ATTEMPTS === 0) {
          this.#logger.warn(
            { err: error, stream: this.#settings.name, failures, retryInMs: backoffMs },
            "cannot set up the stream yet; retrying while connected",
          );
        }
      }
      if (ensured) {
        this.#report(ensured, failures, connectionCount);
        // Set up on a connection that has since been replaced: the new server deserves a look.
        if (connectionCount === this.#connectionCount) return;
        continue;
      }
      // Disconnected: the next connection starts a run of its own.
      if (!this.#link.isConnected) return;
      await this.#pause(backoffMs);
    }
  }

  #report(ensured: EnsuredStreams, failures: number, connectionCount: number): void {
    for (const change of ensured.changes) {
      this.#logger.info(change, `stream ${change.action}`);
    }
    // A check the relay asked for that found everything in place is not news.
    const isNews =
      connectionCount !== this.#reportedConnectionCount ||
      failures > 0 ||
      ensured.changes.length > 0;
    this.#reportedConnectionCount = connectionCount;
    this.#logger[isNews ? "info" : "debug"](
      {
        stream: this.#settings.name,
        subjects: ensured.config.subjects,
        ...(failures > 0 ? { failedAttempts: failures } : {}),
      },
      "stream ready",
    );
    this.#options.onSetUp(ensured.config);
  }

  #pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      this.#wakeUp = done;
      const self = this;
      function done() {
        clearTimeout(timer);
        self.#wakeUp = undefined;
        resolve();
      }
    });
  }
}
