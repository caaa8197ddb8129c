import { spawn } from "node:child_process";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { status as grpcStatus } from "@grpc/grpc-js";
import { createScoreClient, ScoreCallError } from "../../src/client/index.js";
import {
  describeExit,
  type ExitStatus,
  findFreePort,
  lineSplitter,
  nodeArgsFor,
  OutputTail,
  watchExit,
} from "./child-process.js";
import { canSeeListeningPorts, listeningPortsOf } from "./listening-ports.js";

export { findFreePort };

/** How to run `gradecast serve` as a child process. */
export interface GradecastProcessOptions {
  natsUrl: string;
  /** `--data-dir`: keep it across restarts to reuse the store. */
  dataDir: string;
  /** `--stream`. */
  stream: string;
  /**
   * gRPC port on 127.0.0.1; default: the child binds port 0 and the helper reads back the port
   * it got (a port picked beforehand could be taken by another test in between). Pass the
   * previous instance's port to restart in place.
   */
  port?: number;
  /** `--credentials`: graders must authenticate; without it the child runs `--insecure-no-auth`. */
  credentialsPath?: string;
  /** More `serve` flags, e.g. `["--shutdown-timeout", "5s"]`. */
  extraArgs?: readonly string[];
  /** How long the process may take to answer its first gRPC call. */
  readyTimeoutMs?: number;
}

/** How the process ended. */
export type ProcessExit = ExitStatus;

/** A running `gradecast serve` child. */
export interface GradecastProcess {
  readonly pid: number;
  readonly port: number;
  /**
   * The port of /metrics, /healthz and /readyz, as read back from the running process (Linux);
   * undefined with `--metrics-listen off` or where the helper cannot see the child's sockets.
   */
  readonly metricsPort: number | undefined;
  /** `127.0.0.1:<port>`, for `createScoreClient`. */
  readonly address: string;
  /** Resolves when the process has exited and its output was read. */
  readonly exited: Promise<ProcessExit>;
  /** SIGKILL, like a crash (nothing flushed, no shutdown hooks); resolves once it is gone. */
  kill9(): Promise<ProcessExit>;
  /**
   * SIGTERM, then waits up to `timeoutMs` for the exit. If it is still running then, it is
   * SIGKILLed and this rejects, so a hanging shutdown fails the test instead of passing.
   */
  stop(timeoutMs: number): Promise<ProcessExit>;
  /** The last lines of its stdout and stderr, for failure messages. */
  output(): string;
}

/** The child could not be started, did not become ready, or did not stop in time. */
export class GradecastProcessError extends Error {
  override readonly name = "GradecastProcessError";
}

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const DEFAULT_READY_TIMEOUT_MS = 60_000;
const READY_POLL_INTERVAL_MS = 50;
const READY_CALL_DEADLINE_MS = 1_000;
const OUTPUT_MAX_LINES = 100;
/** A submission id no test uses: GetScore of it answers NOT_FOUND once the server serves. */
const PROBE_SUBMISSION_ID = 9_000_000_000_000_000_001n;

/**
 * Spawns `gradecast serve ...` (the compiled dist/src/cli/run.js, see `nodeArgsFor`) from the
 * repo root and resolves once it answers gRPC calls (GetScore of an unknown submission is
 * NOT_FOUND). Fails with its output if it exits first or is not ready in time.
 */
export async function startGradecastProcess(
  options: GradecastProcessOptions,
): Promise<GradecastProcess> {
  const givenPort = options.port ?? (canSeeListeningPorts ? undefined : await findFreePort());
  const listen = `127.0.0.1:${givenPort ?? 0}`;
  // Where the helper cannot read the child's ports back, it picks the metrics port up front.
  const pickedMetricsPort = canSeeListeningPorts ? undefined : await findFreePort();
  const args = [
    ...nodeArgsFor("src/cli/run.ts"),
    "serve",
    "--listen",
    listen,
    "--nats-url",
    options.natsUrl,
    "--data-dir",
    options.dataDir,
    "--stream",
    options.stream,
    "--log-level",
    "warn",
    // A free port: children of parallel suites must not contend for the default 9464.
    "--metrics-listen",
    `127.0.0.1:${pickedMetricsPort ?? 0}`,
    ...(options.credentialsPath === undefined
      ? ["--insecure-no-auth"]
      : ["--credentials", options.credentialsPath]),
    ...(options.extraArgs ?? []),
  ];
  const output = new OutputTail(OUTPUT_MAX_LINES);
  const child = spawn(process.execPath, args, {
    cwd: REPO_ROOT,
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stdout?.setEncoding("utf8").on(
    "data",
    lineSplitter((line) => output.push(line)),
  );
  child.stderr?.setEncoding("utf8").on(
    "data",
    lineSplitter((line) => output.push(line)),
  );
  const exited = watchExit(child, output);
  let exit: ProcessExit | undefined;
  void exited.then((status) => {
    exit = status;
  });

  let port: number | undefined;
  const describe = () =>
    `gradecast serve on ${port === undefined ? listen : `127.0.0.1:${port}`} (pid ${child.pid ?? "none"})`;
  const readyTimeoutMs = options.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS;
  const deadline = Date.now() + readyTimeoutMs;
  let lastError: unknown;
  for (;;) {
    if (exit) {
      throw new GradecastProcessError(
        `${describe()} exited before it was ready (${describeExit(exit)}):\n${output.text()}`,
      );
    }
    // On port 0 the gRPC port is whichever of the child's listening ports answers gRPC (the
    // other one is /metrics); gRPC binds last, once the rest of the server has started.
    const candidates =
      givenPort !== undefined ? [givenPort] : await listeningPortsOf(child.pid ?? -1);
    lastError = new Error("the gRPC port is not listening yet");
    for (const candidate of candidates) {
      const error = await probe(`127.0.0.1:${candidate}`);
      if (error === undefined) {
        port = candidate;
        break;
      }
      lastError = error;
    }
    if (port !== undefined) break;
    if (Date.now() >= deadline) {
      child.kill("SIGKILL");
      await exited;
      throw new GradecastProcessError(
        `${describe()} was not ready within ${readyTimeoutMs} ms (last: ${String(lastError)}):\n${output.text()}`,
        { cause: lastError },
      );
    }
    await new Promise((wake) => setTimeout(wake, READY_POLL_INTERVAL_MS));
  }

  const pid = child.pid ?? -1;
  const readyPort = port;
  const isMetricsPortOverridden = (options.extraArgs ?? []).includes("--metrics-listen");
  const metricsPorts = canSeeListeningPorts
    ? (await listeningPortsOf(pid)).filter((candidate) => candidate !== readyPort)
    : pickedMetricsPort === undefined || isMetricsPortOverridden
      ? []
      : [pickedMetricsPort];
  const address = `127.0.0.1:${port}`;
  return {
    pid,
    port,
    metricsPort: metricsPorts.length === 1 ? metricsPorts[0] : undefined,
    address,
    exited,
    output: () => output.text(),
    kill9: async () => {
      child.kill("SIGKILL");
      return exited;
    },
    stop: async (timeoutMs) => {
      child.kill("SIGTERM");
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<"timed-out">((wake) => {
        timer = setTimeout(() => wake("timed-out"), timeoutMs);
      });
      const outcome = await Promise.race([exited, timedOut]);
      clearTimeout(timer);
      if (outcome !== "timed-out") return outcome;
      child.kill("SIGKILL");
      await exited;
      throw new GradecastProcessError(
        `${describe()} did not exit within ${timeoutMs} ms of SIGTERM:\n${output.text()}`,
      );
    },
  };
}

/**
 * One readiness probe on a fresh channel (a reused one would sit in grpc-js's reconnect
 * backoff while the child starts): undefined once the server answers NOT_FOUND (or, with grader
 * authentication on, UNAUTHENTICATED: the probe has no token), else the error.
 */
async function probe(address: string): Promise<unknown> {
  const client = createScoreClient(address, { deadlineMs: READY_CALL_DEADLINE_MS });
  try {
    await client.getScore(PROBE_SUBMISSION_ID);
    return new Error(`GetScore(${PROBE_SUBMISSION_ID}) unexpectedly found a score`);
  } catch (error) {
    if (
      error instanceof ScoreCallError &&
      (error.code === grpcStatus.NOT_FOUND || error.code === grpcStatus.UNAUTHENTICATED)
    ) {
      return undefined;
    }
    return error;
  } finally {
    client.close();
  }
}
