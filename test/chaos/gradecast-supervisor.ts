import { createScoreClient, type ScoreClient } from "../../src/client/index.js";
import { describeExit, findFreePort } from "../helpers/child-process.js";
import { type GradecastProcess, startGradecastProcess } from "../helpers/gradecast-process.js";
import { canSeeListeningPorts } from "../helpers/listening-ports.js";

/** How to run the campaign's `gradecast serve`. */
export interface GradecastSupervisorOptions {
  natsUrls: string;
  /** Kept across restarts: the SQLite store lives here. */
  dataDir: string;
  stream: string;
  /** More `serve` flags (`--store`, `--replicas`, ...). */
  serveArgs: readonly string[];
  /** How long one start may take until gRPC answers. */
  readyTimeoutMs: number;
  /** Deadline of each call made through {@link LiveGradecast.client}. */
  callDeadlineMs: number;
  /** `--sourcehost`; gradecast names its NATS connection `gradecast <sourcehost>`. */
  sourcehost: string;
  log: (line: string) => void;
}

/** The running instance: calls go through its client; `generation` changes with every death. */
export interface LiveGradecast {
  readonly client: ScoreClient;
  readonly generation: number;
}

/** Bounds restarts after deaths the campaign did not cause, so a crash loop ends the run. */
const MAX_UNEXPECTED_RESTARTS = 5;

/**
 * Runs `gradecast serve` as a child on one port, data dir and store, and kills (-9) and restarts
 * it on demand. A new gRPC client per instance, so a call never waits out grpc-js's reconnect
 * backoff to a dead one. A death the campaign did not cause is recorded (it is a finding) and
 * the instance restarted, at most {@link MAX_UNEXPECTED_RESTARTS} times.
 */
export class GradecastSupervisor {
  readonly #options: GradecastSupervisorOptions;
  #child: GradecastProcess | undefined;
  #client: ScoreClient | undefined;
  #generation = 0;
  #port: number | undefined;
  #metricsPort: number | undefined;
  /** Kills and starts run one at a time. */
  #transition: Promise<unknown> = Promise.resolve();
  readonly #liveWaiters = new Set<() => void>();
  /** Deaths the campaign did not cause: exit status and the last output lines. */
  readonly unexpectedExits: string[] = [];

  constructor(options: GradecastSupervisorOptions) {
    this.#options = options;
  }

  /** The running instance, or undefined while it is dead or starting. */
  get live(): LiveGradecast | undefined {
    return this.#client ? { client: this.#client, generation: this.#generation } : undefined;
  }

  /** How many times an instance has died so far (kills and unexpected exits). */
  get generation(): number {
    return this.#generation;
  }

  /** gRPC `host:port`, the same for every instance. */
  get address(): string {
    if (this.#port === undefined) throw new Error("gradecast has not been started");
    return `127.0.0.1:${this.#port}`;
  }

  /** The `/metrics` and `/readyz` port, the same for every instance. */
  get metricsPort(): number {
    if (this.#metricsPort === undefined) throw new Error("gradecast has not been started");
    return this.#metricsPort;
  }

  /** Starts an instance (the first, or again after a kill) and resolves once gRPC answers. */
  start(): Promise<void> {
    return this.#serially(() => this.#start());
  }

  /** SIGKILL, like a crash; resolves once the process is gone. */
  kill9(): Promise<void> {
    return this.#serially(async () => {
      const { child, client } = this.#forget();
      // Killed first, so calls in flight are cut by the death, not by closing their channel.
      await child?.kill9();
      client?.close();
    });
  }

  /** SIGTERM (graceful), SIGKILL if it takes longer than `timeoutMs`. */
  stop(timeoutMs: number): Promise<void> {
    return this.#serially(async () => {
      const { child, client } = this.#forget();
      await child?.stop(timeoutMs).catch((error: unknown) => {
        this.#options.log(`gradecast did not stop gracefully: ${String(error)}`);
      });
      client?.close();
    });
  }

  /** The live instance once there is one, or undefined at `deadlineMs` or on abort. */
  async waitUntilLive(deadlineMs: number, signal: AbortSignal): Promise<LiveGradecast | undefined> {
    for (;;) {
      const live = this.live;
      if (live || signal.aborted) return live;
      const leftMs = deadlineMs - Date.now();
      if (leftMs <= 0) return undefined;
      await new Promise<void>((wake) => {
        const done = () => {
          clearTimeout(timer);
          this.#liveWaiters.delete(done);
          signal.removeEventListener("abort", done);
          wake();
        };
        const timer = setTimeout(done, leftMs);
        this.#liveWaiters.add(done);
        signal.addEventListener("abort", done, { once: true });
      });
    }
  }

  /** The current instance's last output lines, for failure messages. */
  output(): string {
    return this.#child?.output() ?? "";
  }

  #serially<T>(step: () => Promise<T>): Promise<T> {
    const next = this.#transition.then(step, step);
    // The caller gets the failure through `next`; the chain only has to go on.
    this.#transition = next.catch(() => undefined);
    return next;
  }

  async #start(): Promise<void> {
    if (this.#child) return;
    // The first instance binds port 0 for both and the helper reads back what it got; later
    // ones restart on those ports. Without a view of the child's sockets, pick them up front.
    if (!canSeeListeningPorts) {
      this.#port ??= await findFreePort();
      this.#metricsPort ??= await findFreePort();
    }
    const options = this.#options;
    const child = await startGradecastProcess({
      natsUrl: options.natsUrls,
      dataDir: options.dataDir,
      stream: options.stream,
      ...(this.#port === undefined ? {} : { port: this.#port }),
      readyTimeoutMs: options.readyTimeoutMs,
      // commander keeps the last of a repeated flag: this --metrics-listen wins over the helper's.
      extraArgs: [
        ...(this.#metricsPort === undefined
          ? []
          : ["--metrics-listen", `127.0.0.1:${this.#metricsPort}`]),
        "--sourcehost",
        options.sourcehost,
        "--shutdown-timeout",
        "5s",
        ...options.serveArgs,
      ],
    });
    this.#port = child.port;
    this.#metricsPort ??= child.metricsPort;
    if (this.#metricsPort === undefined) {
      await child.kill9();
      throw new Error(`gradecast (pid ${child.pid}) serves no /metrics port the campaign can read`);
    }
    this.#child = child;
    this.#client = createScoreClient(child.address, { deadlineMs: options.callDeadlineMs });
    void child.exited.then((status) => {
      if (this.#child !== child) return;
      this.#forget().client?.close();
      const description = `gradecast (pid ${child.pid}) exited by itself (${describeExit(status)}):\n${child.output()}`;
      this.unexpectedExits.push(description);
      options.log(description);
      if (this.unexpectedExits.length <= MAX_UNEXPECTED_RESTARTS) {
        this.start().catch((error: unknown) => {
          options.log(`gradecast could not be restarted after that: ${String(error)}`);
        });
      }
    });
    for (const wake of this.#liveWaiters) wake();
  }

  /** Drops the current instance from view (new calls wait for the next one) and hands it over. */
  #forget(): { child?: GradecastProcess; client?: ScoreClient } {
    const child = this.#child;
    const client = this.#client;
    if (!child) return {};
    this.#child = undefined;
    this.#client = undefined;
    this.#generation += 1;
    return { child, client };
  }
}
