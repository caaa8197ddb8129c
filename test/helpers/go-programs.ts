import { execFile, spawn } from "node:child_process";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import {
  describeExit,
  type ExitStatus,
  lineSplitter,
  OutputTail,
  type ScriptRun,
  watchExit,
} from "./child-process.js";

const REPO_ROOT = resolve(fileURLToPath(new URL("../..", import.meta.url)));
const GO_BIN = resolve(REPO_ROOT, ".data/go-bin");

/** The Go examples, as scripts/go-build.sh names their binaries in .data/go-bin/. */
export type GoProgram = "go-grader" | "go-lms";

/**
 * Builds both Go examples with scripts/go-build.sh (GOPATH mode against Debian's Go sources).
 * Rejects with the script's output when the build fails, e.g. when `go` is not installed.
 */
export async function buildGoPrograms(): Promise<void> {
  try {
    await promisify(execFile)("bash", ["scripts/go-build.sh"], {
      cwd: REPO_ROOT,
      timeout: 600_000,
    });
  } catch (error) {
    const { stdout, stderr } = error as { stdout?: string; stderr?: string };
    throw new Error(`scripts/go-build.sh failed:\n${stdout ?? ""}${stderr ?? ""}`, {
      cause: error,
    });
  }
}

/**
 * Runs a Go example to its end and resolves with its exit status and all it printed. `env` is
 * added to this process's environment.
 */
export function runGoProgram(
  program: GoProgram,
  args: readonly string[],
  { env = {}, timeoutMs = 60_000 }: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<ScriptRun> {
  return new Promise((settle, fail) => {
    const child = spawn(resolve(GO_BIN, program), args, {
      cwd: REPO_ROOT,
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
      timeout: timeoutMs,
      killSignal: "SIGKILL",
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      stderr += chunk;
    });
    child.once("error", fail);
    child.once("close", (code, signal) => settle({ code, signal, stdout, stderr }));
  });
}

/** A Go example left running, whose output lines a test can wait for. */
export interface RunningGoProgram {
  /** Every stdout line so far, in order. */
  readonly lines: readonly string[];
  /** Every stderr line (the program's log) so far, in order. */
  readonly logLines: readonly string[];
  /**
   * Resolves with the first line so far of stdout (or of stderr, with `from: "stderr"`) that
   * `matches`; rejects when the program ends first or after `timeoutMs`.
   */
  waitForLine(
    matches: (line: string) => boolean,
    options?: { from?: "stdout" | "stderr"; timeoutMs?: number },
  ): Promise<string>;
  /** Resolves once the program has ended by itself. */
  exited(): Promise<ExitStatus>;
  /** SIGTERM, then the exit status once it has stopped (SIGKILL after 10 s). */
  stop(): Promise<ExitStatus>;
}

/** Starts a Go example and keeps it running, e.g. the Go LMS consumer. */
export function startGoProgram(program: GoProgram, args: readonly string[]): RunningGoProgram {
  const child = spawn(resolve(GO_BIN, program), args, {
    cwd: REPO_ROOT,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const lines: string[] = [];
  const logLines: string[] = [];
  const waiters = new Set<() => void>();
  const wakeWaiters = () => {
    for (const wake of waiters) wake();
  };
  const keep = (into: string[]) =>
    lineSplitter((line) => {
      into.push(line);
      wakeWaiters();
    });
  child.stdout.setEncoding("utf8").on("data", keep(lines));
  child.stderr.setEncoding("utf8").on("data", keep(logLines));
  // Spawn errors land here; the lines above are what a failure message shows.
  const spawnErrors = new OutputTail(10);
  const exited = watchExit(child, spawnErrors);
  let exitStatus: ExitStatus | undefined;
  void exited.then((status) => {
    exitStatus = status;
    wakeWaiters();
  });
  const report = () =>
    `stdout:\n${lines.join("\n")}\nstderr:\n${logLines.join("\n")}\n${spawnErrors.text()}`;

  const waitForLine: RunningGoProgram["waitForLine"] = (matches, options = {}) =>
    new Promise<string>((settle, fail) => {
      const searched = options.from === "stderr" ? logLines : lines;
      const timeoutMs = options.timeoutMs ?? 60_000;
      const done = () => {
        clearTimeout(timer);
        waiters.delete(check);
      };
      const check = () => {
        const found = searched.find(matches);
        if (found !== undefined) {
          done();
          settle(found);
        } else if (exitStatus) {
          done();
          fail(new Error(`${program} ended (${describeExit(exitStatus)}):\n${report()}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        fail(new Error(`no matching line from ${program} in ${timeoutMs} ms:\n${report()}`));
      }, timeoutMs);
      waiters.add(check);
      check();
    });

  return {
    lines,
    logLines,
    waitForLine,
    exited: () => exited,
    stop: async () => {
      if (!exitStatus) {
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
        await exited;
        clearTimeout(timer);
      }
      return exitStatus ?? (await exited);
    },
  };
}
