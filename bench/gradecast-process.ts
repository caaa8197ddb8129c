// The gradecast under test: `node bin/gradecast.js serve` as its own process, so its CPU and
// memory are its own and the load generators do not share its event loop.
import { answersOk, BenchChild, findFreePort, gradecastCommandArgs } from "./child-processes.js";

const READY_TIMEOUT_MS = 30_000;
/** Above serve's own --shutdown-timeout (10 s), so a graceful drain is not cut short. */
const STOP_TIMEOUT_MS = 15_000;

/** How to run `gradecast serve`. */
export interface GradecastProcessOptions {
  natsUrl: string;
  /** `--data-dir`: where the SQLite store goes by default. */
  dataDir: string;
  /** `--store`, passed through when set (another store, e.g. a postgres:// URL). */
  store: string | undefined;
  /** More `serve` flags. */
  serveArgs: readonly string[];
  /** Node flags for the server process, e.g. `--cpu-prof`. */
  nodeArgs: readonly string[];
}

/** A running `gradecast serve`, ready (its /readyz said 200). */
export class GradecastProcess {
  readonly address: string;
  readonly #child: BenchChild;
  readonly #metricsPort: number;

  private constructor(child: BenchChild, address: string, metricsPort: number) {
    this.#child = child;
    this.address = address;
    this.#metricsPort = metricsPort;
  }

  static async start(options: GradecastProcessOptions): Promise<GradecastProcess> {
    const grpcPort = await findFreePort();
    const metricsPort = await findFreePort();
    const child = new BenchChild("gradecast serve", process.execPath, [
      ...options.nodeArgs,
      ...gradecastCommandArgs(),
      "serve",
      // The bench sends no token: it measures the intake path, not grader authentication.
      "--insecure-no-auth",
      "--listen",
      `127.0.0.1:${grpcPort}`,
      "--nats-url",
      options.natsUrl,
      "--data-dir",
      options.dataDir,
      ...(options.store === undefined ? [] : ["--store", options.store]),
      "--metrics-listen",
      `127.0.0.1:${metricsPort}`,
      "--log-level",
      "warn",
      ...options.serveArgs,
    ]);
    const server = new GradecastProcess(child, `127.0.0.1:${grpcPort}`, metricsPort);
    await child.waitUntil(() => server.isReady(), READY_TIMEOUT_MS, "ready (/readyz 200)");
    return server;
  }

  get pid(): number {
    return this.#child.pid;
  }

  /** /readyz: 200 while the store is open, NATS is connected and the stream is set up. */
  isReady(): Promise<boolean> {
    return answersOk(`http://127.0.0.1:${this.#metricsPort}/readyz`);
  }

  /** Waits until /readyz says `isReady`. */
  waitForReadiness(isReady: boolean, timeoutMs: number): Promise<void> {
    return this.#child.waitUntil(
      async () => (await this.isReady()) === isReady,
      timeoutMs,
      isReady ? "ready" : "unready",
    );
  }

  /** SIGTERM: gradecast drains (finishes calls, publishes what it can), then exits. */
  stop(): Promise<void> {
    return this.#child.stop(STOP_TIMEOUT_MS);
  }

  output(): string {
    return this.#child.output();
  }
}
