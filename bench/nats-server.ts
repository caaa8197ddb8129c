// The bench's own nats-server: JetStream with file storage in a temp dir, on a free port,
// restartable on the same port and store (the outbox-drain scenario stops and restarts it).
import { constants } from "node:fs";
import { access } from "node:fs/promises";
import { delimiter, join } from "node:path";
import { answersOk, BenchChild, findFreePort } from "./child-processes.js";

const READY_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 10_000;
const DEBIAN_BINARY_PATH = "/usr/sbin/nats-server";

/** A nats-server that keeps its port and store dir across stop/start. */
export class BenchNatsServer {
  readonly port: number;
  readonly storeDir: string;
  readonly #binaryPath: string;
  #running: BenchChild | undefined;

  private constructor(binaryPath: string, port: number, storeDir: string) {
    this.#binaryPath = binaryPath;
    this.port = port;
    this.storeDir = storeDir;
  }

  /** Finds the binary and a free port, and starts the server in `storeDir`. */
  static async start(storeDir: string): Promise<BenchNatsServer> {
    const server = new BenchNatsServer(await findBinary(), await findFreePort(), storeDir);
    await server.startAgain();
    return server;
  }

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  get pid(): number {
    return this.#running?.pid ?? -1;
  }

  /** Starts the server (again) and resolves once /healthz says JetStream is up. */
  async startAgain(): Promise<void> {
    if (this.#running) throw new Error("nats-server is already running");
    const monitorPort = await findFreePort();
    const child = new BenchChild("nats-server", this.#binaryPath, [
      "--jetstream",
      "--addr",
      "127.0.0.1",
      "--port",
      String(this.port),
      "--http_port",
      String(monitorPort),
      "--store_dir",
      this.storeDir,
    ]);
    this.#running = child;
    try {
      await child.waitUntil(
        () => answersOk(`http://127.0.0.1:${monitorPort}/healthz`),
        READY_TIMEOUT_MS,
        "healthy",
      );
    } catch (error) {
      this.#running = undefined;
      await child.stop(STOP_TIMEOUT_MS);
      throw error;
    }
  }

  /** SIGTERM (JetStream flushes its store), SIGKILL if it takes too long. */
  async stop(): Promise<void> {
    const child = this.#running;
    this.#running = undefined;
    await child?.stop(STOP_TIMEOUT_MS);
  }
}

/** NATS_SERVER_BIN when set, else nats-server on PATH, else Debian's /usr/sbin/nats-server. */
async function findBinary(): Promise<string> {
  const explicit = process.env.NATS_SERVER_BIN;
  const candidates = explicit
    ? [explicit]
    : [
        ...(process.env.PATH ?? "")
          .split(delimiter)
          .filter(Boolean)
          .map((dir) => join(dir, "nats-server")),
        DEBIAN_BINARY_PATH,
      ];
  for (const candidate of candidates) {
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      // Not there or not executable: try the next place.
      if (code !== "ENOENT" && code !== "EACCES" && code !== "ENOTDIR") throw error;
    }
  }
  throw new Error(
    explicit
      ? `NATS_SERVER_BIN is ${explicit}, which is not executable`
      : `nats-server not found on PATH or at ${DEBIAN_BINARY_PATH}: install nats-server 2.9+ or set NATS_SERVER_BIN`,
  );
}
