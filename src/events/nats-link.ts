import {
  type Authenticator,
  AuthorizationError,
  credsAuthenticator,
  type NatsConnection,
  tokenAuthenticator,
  usernamePasswordAuthenticator,
} from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import type { Logger } from "pino";
import { redactUrls } from "../store/redact-url.js";

/** How the service proves who it is to NATS; at most one mode, as nats-server expects. */
export type NatsAuth =
  | { kind: "user-password"; user: string; password: string }
  | { kind: "token"; token: string }
  /** The contents of a `.creds` file (user JWT and NKey seed). */
  | { kind: "creds"; creds: Uint8Array };

/** How to reach NATS. */
export interface NatsLinkOptions {
  /** Comma-separated server URLs, e.g. `nats://127.0.0.1:4222`. */
  servers: string;
  /** Client name shown in the server's monitoring. */
  name: string;
  /** Wait between reconnect attempts. */
  reconnectTimeWaitMs: number;
  /** How long a connection attempt may take. */
  connectTimeoutMs: number;
  /** Credentials; none when omitted. */
  auth?: NatsAuth;
  /** PEM of the CA that signed the NATS server's certificate; set, the connection must use TLS. */
  caPem?: string;
}

/**
 * The service's NATS connection. It connects in the background and reconnects
 * forever (nats.js gives up after 10 attempts by default; a service must not),
 * so gradecast starts and takes scores while NATS is down: the outbox holds
 * them. `isConnected` tells the publish path whether trying now makes sense.
 */
export class NatsLink {
  readonly #options: NatsLinkOptions;
  readonly #logger: Logger;
  readonly #abort = new AbortController();
  #connection: NatsConnection | undefined;
  #isConnected = false;
  #lastMaxPayloadBytes: number | undefined;
  #connecting: Promise<NatsConnection> | undefined;
  readonly #connectedListeners = new Set<() => void>();
  readonly #disconnectedListeners = new Set<() => void>();

  constructor(options: NatsLinkOptions, logger: Logger) {
    this.#options = options;
    this.#logger = logger;
  }

  /** Starts connecting; resolves with the first connection (never rejects before `close`). */
  start(): Promise<NatsConnection> {
    this.#connecting ??= this.#connectUntilUp();
    return this.#connecting;
  }

  /** True while a connection is up. */
  get isConnected(): boolean {
    return this.#isConnected;
  }

  /** The connection once established (it stays the same object across reconnects). */
  get connection(): NatsConnection | undefined {
    return this.#connection;
  }

  /**
   * The largest message (payload and headers) the NATS server takes: its INFO `max_payload`,
   * read again at every reconnect, which may be to another server with another limit. While
   * reconnecting, the last server's; undefined before the first connection.
   */
  get maxPayloadBytes(): number | undefined {
    return this.#connection?.info?.max_payload ?? this.#lastMaxPayloadBytes;
  }

  /** Calls `listener` each time the connection comes up (first connect and every recovery), once. */
  onConnected(listener: () => void): () => void {
    this.#connectedListeners.add(listener);
    return () => this.#connectedListeners.delete(listener);
  }

  /** Calls `listener` each time an established connection goes down (disconnect or close). */
  onDisconnected(listener: () => void): () => void {
    this.#disconnectedListeners.add(listener);
    return () => this.#disconnectedListeners.delete(listener);
  }

  /** Drains the connection (flushes what was published) or stops connecting. */
  async close(): Promise<void> {
    this.#abort.abort();
    const connection = this.#connection;
    if (connection && !connection.isClosed()) {
      // Draining needs the server; while disconnected there is nothing to flush.
      if (!this.#isConnected) {
        await connection.close();
        this.#setConnected(false);
        return;
      }
      await connection.drain().catch((error: unknown) => {
        this.#logger.warn({ err: error }, "NATS drain failed; closing");
        return connection.close();
      });
    }
    this.#setConnected(false);
  }

  async #connectUntilUp(): Promise<NatsConnection> {
    let attempt = 0;
    while (!this.#abort.signal.aborted) {
      try {
        const connection = await connect({
          servers: this.#options.servers.split(",").map((server) => server.trim()),
          name: this.#options.name,
          maxReconnectAttempts: -1,
          // nats.js otherwise closes for good after two refused logins in a row; credentials
          // fixed on the server side (rotation, a revoked user restored) must bring it back.
          ignoreAuthErrorAbort: true,
          // Otherwise every publish builds two Error objects (stack traces) for a timeout or
          // failure that almost never comes: measurable at thousands of publishes a second.
          noAsyncTraces: true,
          reconnectTimeWait: this.#options.reconnectTimeWaitMs,
          timeout: this.#options.connectTimeoutMs,
          ...(this.#options.auth ? { authenticator: authenticatorFor(this.#options.auth) } : {}),
          ...(this.#options.caPem === undefined ? {} : { tls: { ca: this.#options.caPem } }),
        });
        this.#connection = connection;
        this.#setConnected(true);
        this.#logger.info({ server: connection.getServer() }, "connected to NATS");
        void this.#watch(connection);
        return connection;
      } catch (error) {
        attempt += 1;
        if (attempt === 1 || attempt % 30 === 0) {
          this.#logger.warn(
            { err: error, attempt, servers: redactUrls(this.#options.servers) },
            error instanceof AuthorizationError
              ? "NATS refused gradecast's credentials; scores are kept in the outbox until it accepts them"
              : "NATS is not reachable yet; scores are kept in the outbox until it is",
          );
        }
        await sleep(this.#options.reconnectTimeWaitMs, this.#abort.signal);
      }
    }
    throw new Error("NATS link closed before it connected");
  }

  async #watch(connection: NatsConnection): Promise<void> {
    for await (const status of connection.status()) {
      // nats.js repeats "disconnect" for each refused reconnect attempt and may
      // report several "reconnect"s for one recovery: only a change of state counts.
      if (status.type === "disconnect" && this.#isConnected) {
        this.#setConnected(false);
        this.#logger.warn({ server: status.server }, "disconnected from NATS; reconnecting");
      } else if (status.type === "reconnect" && !this.#isConnected) {
        this.#setConnected(true);
        this.#logger.info({ server: status.server }, "reconnected to NATS");
      }
    }
    this.#setConnected(false);
  }

  #setConnected(isConnected: boolean): void {
    const wasConnected = this.#isConnected;
    this.#isConnected = isConnected;
    if (isConnected && !wasConnected) {
      // nats.js forgets the INFO while it reconnects: keep the limit known until the next one.
      this.#lastMaxPayloadBytes = this.#connection?.info?.max_payload ?? this.#lastMaxPayloadBytes;
      for (const listener of this.#connectedListeners) listener();
    } else if (!isConnected && wasConnected) {
      for (const listener of this.#disconnectedListeners) listener();
    }
  }
}

/** The nats.js authenticator of a credential, for the link and any other connection made with it. */
export function authenticatorFor(auth: NatsAuth): Authenticator {
  switch (auth.kind) {
    case "user-password":
      return usernamePasswordAuthenticator(auth.user, auth.password);
    case "token":
      return tokenAuthenticator(auth.token);
    case "creds":
      return credsAuthenticator(auth.creds);
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    // Removed when the timer fires: a link retrying refused credentials sleeps forever, and a
    // listener left behind per attempt would pile up on the signal.
    const onAbort = () => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}
