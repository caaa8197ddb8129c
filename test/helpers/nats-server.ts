import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { constants, readdirSync, readFileSync } from "node:fs";
import { access, mkdtemp, rm, stat } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import {
  describeExit,
  type ExitStatus,
  lineSplitter,
  OutputTail,
  watchExit,
} from "./child-process.js";

/** Where to run the server; anything left out is chosen fresh for this server. */
export interface NatsServerOptions {
  /**
   * Client port on 127.0.0.1; default: nats-server picks one (`--port -1`) and the harness reads
   * it from its log, so no other test can take it between a pick and the bind. Restarts keep it.
   */
  port?: number;
  /** JetStream store dir; default: a new `gradecast-nats-*` temp dir that `cleanup()` removes. */
  storeDir?: string;
  /** More nats-server arguments, e.g. `["--user", "u", "--pass", "p"]` to require credentials. */
  extraArgs?: readonly string[];
  /** Called with every output line (stdout and stderr) of every run, e.g. to count log events. */
  onOutputLine?: (line: string) => void;
  /** HTTP monitoring port on 127.0.0.1, kept across restarts; default: picked like `port`. */
  monitorPort?: number;
  /**
   * How long the server may take to say it is healthy, per start and restart. A cluster node is
   * healthy only once it knows a JetStream meta leader, which takes longer than a lone server.
   */
  readyTimeoutMs?: number;
}

/** A running `nats-server -js` that keeps its port and store dir across `restart()`. */
export interface NatsServerHandle {
  readonly port: number;
  /** `nats://127.0.0.1:<port>`, for `connect({ servers: url })`. */
  readonly url: string;
  /** `--server_name`, as monitoring and JetStream (e.g. the meta leader) name this server. */
  readonly serverName: string;
  /** `http://127.0.0.1:<monitor port>`: `/healthz`, `/jsz`, `/connz`, ... */
  readonly monitorUrl: string;
  /** False after `stop()`/`kill()` until `restart()`. */
  readonly isRunning: boolean;
  /** The `-sd` dir; nats-server keeps its streams in its `jetstream/` subdir. */
  readonly storeDir: string;
  /** SIGTERM so JetStream flushes and shuts down cleanly; SIGKILL if it has not exited in time. */
  stop(): Promise<void>;
  /** SIGKILL, like a crash: no graceful JetStream shutdown, only what already reached the OS. */
  kill(): Promise<void>;
  /** SIGSTOP: the server keeps its connections open but answers nothing, like a stalled host. */
  pause(): void;
  /** SIGCONT after {@link pause}. */
  resume(): void;
  /** Stops the server if it runs, then starts it again on the same port and store dir. */
  restart(): Promise<void>;
  /** Stops the server and removes the store dir if the harness created it. */
  cleanup(): Promise<void>;
  /** The server's last output lines (stdout and stderr interleaved), for failure messages. */
  output(): string;
}

/** Why the harness could not find, start or stop nats-server; the message carries its output. */
export class NatsServerHarnessError extends Error {
  override readonly name = "NatsServerHarnessError";
}

const DEFAULT_READY_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 5_000;
const POLL_INTERVAL_MS = 25;
const HEALTH_REQUEST_TIMEOUT_MS = 1_000;
const OUTPUT_MAX_LINES = 200;
const DEFAULT_BINARY_PATH = "/usr/sbin/nats-server";

/**
 * Starts `nats-server -js` on 127.0.0.1 and resolves once its `/healthz` says it accepts clients
 * with JetStream on and every stored stream recovered.
 */
export async function startNatsServer(options: NatsServerOptions = {}): Promise<NatsServerHandle> {
  const binaryPath = await resolveServerBinary();
  let port = options.port;
  let monitorPort = options.monitorPort;
  // Named before the port is known; an explicit port keeps the name it always had.
  const serverName = `gradecast-nats-${port ?? randomBytes(4).toString("hex")}`;
  const isStoreDirOwned = options.storeDir === undefined;
  const storeDir = options.storeDir ?? (await mkdtemp(join(tmpdir(), "gradecast-nats-")));
  const output = new OutputTail(OUTPUT_MAX_LINES);
  const extraArgs = options.extraArgs ?? [];
  const onOutputLine = options.onOutputLine;
  const readyTimeoutMs = options.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS;
  const launch = () =>
    launchUntilReady({
      binaryPath,
      port,
      monitorPort,
      serverName,
      storeDir,
      extraArgs,
      output,
      onOutputLine,
      readyTimeoutMs,
    });

  let running: RunningServer | undefined;
  try {
    running = await launch();
  } catch (error) {
    if (isStoreDirOwned) await rm(storeDir, { recursive: true, force: true });
    throw error;
  }
  // Restarts come back on the ports this first run bound (the tests that restart need that).
  port = running.port;
  monitorPort = running.monitorPort;

  let isPaused = false;
  const resume = () => {
    if (isPaused) running?.child.kill("SIGCONT");
    isPaused = false;
  };
  const stop = async () => {
    resume();
    const current = running;
    running = undefined;
    if (current) await stopGracefully(current, output);
  };

  return {
    port: running.port,
    url: `nats://127.0.0.1:${running.port}`,
    serverName,
    monitorUrl: `http://127.0.0.1:${running.monitorPort}`,
    get isRunning() {
      return running !== undefined;
    },
    storeDir,
    stop,
    pause: () => {
      if (!running) throw new NatsServerHarnessError("cannot pause: nats-server is not running");
      running.child.kill("SIGSTOP");
      isPaused = true;
      waitUntilStopped(running.child);
    },
    resume,
    kill: async () => {
      resume();
      const current = running;
      running = undefined;
      if (current) await killAndWait(current);
    },
    restart: async () => {
      await stop();
      running = await launch();
    },
    cleanup: async () => {
      await stop();
      if (isStoreDirOwned) await rm(storeDir, { recursive: true, force: true });
    },
    output: () => output.text(),
  };
}

interface LaunchConfig {
  binaryPath: string;
  /** Undefined: nats-server picks one (`-1`) and says which in its log. */
  port: number | undefined;
  monitorPort: number | undefined;
  serverName: string;
  storeDir: string;
  extraArgs: readonly string[];
  output: OutputTail;
  onOutputLine: ((line: string) => void) | undefined;
  readyTimeoutMs: number;
}

interface RunningServer {
  child: ChildProcess;
  exited: Promise<ExitStatus>;
  port: number;
  monitorPort: number;
}

/** The lines nats-server logs (at its default level) once it has bound each port. */
const CLIENT_PORT_LINE = /Listening for client connections on [^\s]+:(\d+)/;
const MONITOR_PORT_LINE = /Starting http monitor on [^\s]+:(\d+)/;

/**
 * Spawns the server once its client port can be bound (after a restart the old process may hold
 * it a moment longer) and waits until it is ready. A run that still loses a port race is retried
 * until the deadline; any other early exit fails at once.
 */
async function launchUntilReady(config: LaunchConfig): Promise<RunningServer> {
  const deadline = Date.now() + config.readyTimeoutMs;
  for (;;) {
    if (config.port !== undefined) await waitUntilPortFree(config.port, deadline);
    if (config.monitorPort !== undefined) await waitUntilPortFree(config.monitorPort, deadline);
    const args = [
      "--jetstream",
      "--server_name",
      config.serverName,
      "--addr",
      "127.0.0.1",
      "--port",
      String(config.port ?? -1),
      "--http_port",
      String(config.monitorPort ?? -1),
      "--store_dir",
      config.storeDir,
      ...config.extraArgs,
    ];
    const command = `${config.binaryPath} ${args.join(" ")}`;
    const child = spawn(config.binaryPath, args, { stdio: ["ignore", "pipe", "pipe"] });
    let isPortBusy = false;
    let port = config.port;
    let monitorPort = config.monitorPort;
    const onLine = (line: string) => {
      config.output.push(line);
      config.onOutputLine?.(line);
      if (line.includes("address already in use")) isPortBusy = true;
      port ??= portIn(CLIENT_PORT_LINE, line);
      monitorPort ??= portIn(MONITOR_PORT_LINE, line);
    };
    config.output.push(`--- ${command}`);
    child.stdout?.setEncoding("utf8").on("data", lineSplitter(onLine));
    child.stderr?.setEncoding("utf8").on("data", lineSplitter(onLine));
    const started = { child, exited: watchExit(child, config.output) };

    // Healthy only once both ports are known: the client port is logged just before "ready".
    const readiness = await waitUntilHealthy(
      () => (port === undefined ? undefined : monitorPort),
      started,
      deadline,
    );
    if (readiness.kind === "ready") {
      // waitUntilHealthy polls only once both are known.
      if (port === undefined || monitorPort === undefined) {
        throw new NatsServerHarnessError("nats-server was healthy before it logged its ports");
      }
      return { ...started, port, monitorPort };
    }
    if (readiness.kind === "exited") {
      if (isPortBusy && Date.now() < deadline) {
        await delay(POLL_INTERVAL_MS);
        continue;
      }
      throw new NatsServerHarnessError(
        `nats-server exited before it was ready (${describeExit(readiness.status)}): ${command}\n` +
          config.output.text(),
      );
    }
    await killAndWait(started);
    throw new NatsServerHarnessError(
      `nats-server was not ready within ${config.readyTimeoutMs} ms: ${command}\n${config.output.text()}`,
      { cause: readiness.lastError },
    );
  }
}

function portIn(pattern: RegExp, line: string): number | undefined {
  const match = pattern.exec(line);
  return match?.[1] === undefined ? undefined : Number(match[1]);
}

type Readiness =
  | { kind: "ready" }
  | { kind: "exited"; status: ExitStatus }
  | { kind: "timed-out"; lastError: unknown };

/**
 * Polls `/healthz` (2.9.10 has it) until it answers 200, the process exits, or the deadline;
 * `monitorPort()` is undefined until the server has said which ports it bound.
 */
async function waitUntilHealthy(
  monitorPort: () => number | undefined,
  running: Pick<RunningServer, "exited">,
  deadline: number,
): Promise<Readiness> {
  let exitStatus: ExitStatus | undefined;
  void running.exited.then((status) => {
    exitStatus = status;
  });
  let lastError: unknown = new Error("no health check answered yet");
  while (Date.now() < deadline) {
    if (exitStatus) return { kind: "exited", status: exitStatus };
    const port = monitorPort();
    if (port === undefined) {
      lastError = new Error("nats-server has not logged its client and monitoring ports yet");
      await delay(POLL_INTERVAL_MS);
      continue;
    }
    try {
      const response = await fetch(`http://127.0.0.1:${port}/healthz`, {
        signal: AbortSignal.timeout(HEALTH_REQUEST_TIMEOUT_MS),
      });
      const body = await response.text();
      if (response.ok) return { kind: "ready" };
      lastError = new Error(`/healthz answered ${response.status}: ${body}`);
    } catch (error) {
      // Refused until the monitor listens: expected while starting, kept for the timeout message.
      lastError = error;
    }
    await delay(POLL_INTERVAL_MS);
  }
  return exitStatus ? { kind: "exited", status: exitStatus } : { kind: "timed-out", lastError };
}

async function stopGracefully(
  running: Pick<RunningServer, "child" | "exited">,
  output: OutputTail,
): Promise<void> {
  running.child.kill("SIGTERM");
  const timeout = delay(STOP_TIMEOUT_MS, "timed-out" as const, { ref: false });
  if ((await Promise.race([running.exited, timeout])) === "timed-out") {
    output.push(`--- no exit ${STOP_TIMEOUT_MS} ms after SIGTERM, sending SIGKILL`);
    await killAndWait(running);
  }
}

async function killAndWait(running: Pick<RunningServer, "child" | "exited">): Promise<void> {
  running.child.kill("SIGKILL");
  await running.exited;
}

/**
 * `NATS_SERVER_BIN` when set (and then only that), else `nats-server` on PATH, else
 * /usr/sbin/nats-server, where Debian's package puts it outside a normal user's PATH.
 */
async function resolveServerBinary(): Promise<string> {
  const explicit = process.env.NATS_SERVER_BIN;
  if (explicit) {
    if (await isExecutableFile(explicit)) return explicit;
    throw new NatsServerHarnessError(
      `NATS_SERVER_BIN is ${explicit}, which is not an executable file`,
    );
  }
  const onPath = (process.env.PATH ?? "")
    .split(delimiter)
    .filter((dir) => dir !== "")
    .map((dir) => join(dir, "nats-server"));
  for (const candidate of [...onPath, DEFAULT_BINARY_PATH]) {
    if (await isExecutableFile(candidate)) return candidate;
  }
  throw new NatsServerHarnessError(
    "nats-server not found: NATS_SERVER_BIN is unset, no nats-server on PATH " +
      `(${process.env.PATH ?? ""}), and none at ${DEFAULT_BINARY_PATH}. ` +
      "Install nats-server 2.9+ or set NATS_SERVER_BIN.",
  );
}

async function isExecutableFile(path: string): Promise<boolean> {
  try {
    await access(path, constants.X_OK);
    return (await stat(path)).isFile();
  } catch (error) {
    if (isMissingOrForbidden(error)) return false;
    throw error;
  }
}

function isMissingOrForbidden(error: unknown): boolean {
  const code = error instanceof Error && "code" in error ? error.code : undefined;
  return code === "ENOENT" || code === "EACCES" || code === "ENOTDIR";
}

async function waitUntilPortFree(port: number, deadline: number): Promise<void> {
  for (;;) {
    try {
      await closeServer(await listenOn(port));
      return;
    } catch (error) {
      if (!(error instanceof Error && "code" in error && error.code === "EADDRINUSE")) throw error;
      if (Date.now() >= deadline) {
        throw new NatsServerHarnessError(
          `port ${port} on 127.0.0.1 is still in use at the start deadline`,
          { cause: error },
        );
      }
    }
    await delay(POLL_INTERVAL_MS);
  }
}

function listenOn(port: number): Promise<Server> {
  const server = createServer();
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => resolve(server));
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve, reject) => {
    server.close((error) => (error ? reject(error) : resolve()));
  });
}

/**
 * SIGSTOP takes effect once every thread of the process has stopped, which lags behind
 * `kill()` on a busy machine (measured here: up to 6 ms, and most of the time not yet
 * at the first look): wait until the kernel reports every thread stopped, so nothing
 * sent after `pause()` is answered.
 */
function waitUntilStopped(child: ChildProcess, timeoutMs = 2_000): void {
  const deadline = Date.now() + timeoutMs;
  const tick = new Int32Array(new SharedArrayBuffer(4));
  while (Date.now() < deadline) {
    const states = threadStates(child.pid);
    if (states === undefined || states.every((state) => state === "T")) return;
    Atomics.wait(tick, 0, 0, 1);
  }
  throw new NatsServerHarnessError(
    `nats-server (pid ${child.pid}) did not stop within ${timeoutMs} ms of SIGSTOP`,
  );
}

/** The state letter of each thread of `pid`; undefined where /proc cannot tell (not Linux, gone). */
function threadStates(pid: number | undefined): string[] | undefined {
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return undefined;
  }
  // A thread that exits between the listing and the read has no state to wait for.
  return tasks.flatMap((task) => {
    const status = readFileSafely(`/proc/${pid}/task/${task}/status`);
    const state = status === undefined ? undefined : /^State:\s+(\S)/m.exec(status)?.[1];
    return state === undefined ? [] : [state];
  });
}

function readFileSafely(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}
