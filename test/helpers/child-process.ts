import { type ChildProcess, spawn } from "node:child_process";
import { createServer } from "node:net";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

/** How a child process ended. */
export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/**
 * Resolves when the child is gone and its output read. While it runs, an exit of the test
 * process SIGKILLs it, so a crashed test worker leaves no child holding a port.
 */
export function watchExit(child: ChildProcess, output: OutputTail): Promise<ExitStatus> {
  const killOnExit = () => child.kill("SIGKILL");
  process.on("exit", killOnExit);
  return new Promise((resolve) => {
    const settle = (status: ExitStatus) => {
      process.off("exit", killOnExit);
      resolve(status);
    };
    child.once("close", (code, signal) => settle({ code, signal }));
    child.on("error", (error) => {
      output.push(`--- ${error.message}`);
      // Without a pid the spawn itself failed and no "close" follows; else a signal was lost.
      if (child.pid === undefined) settle({ code: null, signal: null });
    });
  });
}

/** How a {@link runScript} child ended and everything it printed. */
export interface ScriptRun extends ExitStatus {
  stdout: string;
  stderr: string;
}

export interface RunScriptOptions {
  /** The child's whole environment; without it the child inherits this process's. */
  env?: NodeJS.ProcessEnv;
  /** After this long the child gets `killSignal`, so a child that never ends fails its test. */
  timeoutMs: number;
  /** SIGKILL for a child with nothing to clean up; SIGTERM lets one stop what it started. */
  killSignal: NodeJS.Signals;
}

/** @deprecated The old name of {@link RunScriptOptions}. */
export type RunTsxScriptOptions = RunScriptOptions;

/** The folders tsconfig.build.json compiles into dist/ (test/global-setup/build-dist.ts). */
const COMPILED_FOLDERS = ["src/", "examples/", "bench/", "gen/ts/"];

/**
 * Node arguments that run the repo's TypeScript file `script` (relative to the repo root, e.g.
 * `src/cli/run.ts`): its compiled copy in dist/ when the build has one (vitest's globalSetup
 * keeps dist/ current, and it starts in a fraction of tsx's time), else the source under tsx.
 */
export function nodeArgsFor(script: string): string[] {
  const relative = script.replace(/^\.\//, "");
  if (relative.endsWith(".ts") && COMPILED_FOLDERS.some((folder) => relative.startsWith(folder))) {
    return [resolve(REPO_ROOT, "dist", relative.replace(/\.ts$/, ".js"))];
  }
  return ["--import", "tsx", script];
}

/**
 * Runs the TypeScript file `script` (see {@link nodeArgsFor}: its dist/ copy) with `args` from
 * the repo root without blocking this event loop, and resolves once it has ended with all of
 * its stdout and stderr. Rejects only when the child cannot be spawned.
 */
export function runScript(
  script: string,
  args: readonly string[],
  { env, timeoutMs, killSignal }: RunScriptOptions,
): Promise<ScriptRun> {
  return new Promise((settle, fail) => {
    const child = spawn(process.execPath, [...nodeArgsFor(script), ...args], {
      cwd: REPO_ROOT,
      env,
      stdio: ["ignore", "pipe", "pipe"],
      timeout: timeoutMs,
      killSignal,
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

/**
 * @deprecated The old name of {@link runScript}, kept for the suites that still call it: it
 * no longer runs tsx, but the compiled copy in dist/ like {@link runScript}.
 */
export const runTsxScript = runScript;

export function describeExit(status: ExitStatus): string {
  return status.signal ? `signal ${status.signal}` : `exit code ${status.code}`;
}

/**
 * A port nothing listens on right now on 127.0.0.1; another process may still take it before
 * the caller binds it. Prefer letting the server bind port 0 and reading back its port; use
 * this only where the port must be known before anything listens (e.g. a peer's address).
 */
export function findFreePort(): Promise<number> {
  const server = createServer();
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const bound = server.address();
      server.close(() => {
        if (bound === null || typeof bound === "string") {
          reject(new Error(`expected a TCP address, got ${String(bound)}`));
        } else resolve(bound.port);
      });
    });
  });
}

/** Feeds complete lines to `onLine`, holding a partial last line until its newline arrives. */
export function lineSplitter(onLine: (line: string) => void): (chunk: string) => void {
  let partial = "";
  return (chunk) => {
    const lines = (partial + chunk).split("\n");
    partial = lines.pop() ?? "";
    for (const line of lines) onLine(line);
  };
}

/** The last `maxLines` lines, so a chatty child cannot grow the test process without bound. */
export class OutputTail {
  readonly #lines: string[] = [];
  readonly #maxLines: number;

  constructor(maxLines: number) {
    this.#maxLines = maxLines;
  }

  push(line: string): void {
    this.#lines.push(line);
    if (this.#lines.length > this.#maxLines) this.#lines.shift();
  }

  text(): string {
    return this.#lines.join("\n");
  }
}
