// Starting and stopping the bench's child processes (nats-server, gradecast, echo server):
// each is awaited until ready, stopped gracefully with a bounded wait, and its last output
// lines kept for the error message when something fails.
import { type ChildProcess, spawn } from "node:child_process";
import { createServer } from "node:net";
import { join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";

const OUTPUT_MAX_LINES = 100;
const POLL_INTERVAL_MS = 25;

/** A child process of the bench; `stop()` is graceful, then forced. */
export class BenchChild {
  readonly name: string;
  readonly #child: ChildProcess;
  readonly #lines: string[] = [];
  readonly #exited: Promise<void>;
  #onLine: ((line: string) => void) | undefined;

  constructor(name: string, command: string, args: readonly string[]) {
    this.name = name;
    this.#child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] });
    const collect = () => {
      let partial = "";
      return (chunk: string) => {
        const lines = (partial + chunk).split("\n");
        partial = lines.pop() ?? "";
        for (const line of lines) {
          this.#lines.push(line);
          if (this.#lines.length > OUTPUT_MAX_LINES) this.#lines.shift();
          this.#onLine?.(line);
        }
      };
    };
    this.#child.stdout?.setEncoding("utf8").on("data", collect());
    this.#child.stderr?.setEncoding("utf8").on("data", collect());
    // A bench that dies must not leave a server holding a port.
    const killOnExit = () => this.#child.kill("SIGKILL");
    process.on("exit", killOnExit);
    this.#exited = new Promise((resolve) => {
      this.#child.once("close", () => {
        process.off("exit", killOnExit);
        resolve();
      });
      this.#child.once("error", (error) => {
        this.#lines.push(`--- ${error.message}`);
        if (this.#child.pid === undefined) resolve();
      });
    });
  }

  get pid(): number {
    return this.#child.pid ?? -1;
  }

  get hasExited(): boolean {
    return this.#child.exitCode !== null || this.#child.signalCode !== null;
  }

  /** The last output lines, for error messages. */
  output(): string {
    return this.#lines.join("\n");
  }

  /** Resolves with the first output line matching `pattern`, within `timeoutMs`. */
  waitForLine(pattern: RegExp, timeoutMs: number): Promise<string> {
    const seen = this.#lines.find((line) => pattern.test(line));
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#onLine = undefined;
        reject(this.failure(`printed no line matching ${pattern} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#onLine = (line) => {
        if (!pattern.test(line)) return;
        clearTimeout(timer);
        this.#onLine = undefined;
        resolve(line);
      };
    });
  }

  /** Polls `isReady` until it says yes; fails if the process exits or the deadline passes. */
  async waitUntil(isReady: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.hasExited) throw this.failure(`exited before it was ${what}`);
      if (await isReady()) return;
      await delay(POLL_INTERVAL_MS);
    }
    throw this.failure(`was not ${what} within ${timeoutMs} ms`);
  }

  /** SIGTERM, then SIGKILL if it has not exited within `timeoutMs`. */
  async stop(timeoutMs: number): Promise<void> {
    if (this.hasExited) return;
    this.#child.kill("SIGTERM");
    const timedOut = await Promise.race([
      this.#exited.then(() => false),
      delay(timeoutMs, true, { ref: false }),
    ]);
    if (timedOut) {
      this.#child.kill("SIGKILL");
      await this.#exited;
    }
  }

  failure(problem: string): Error {
    return new Error(`${this.name} (pid ${this.pid}) ${problem}:\n${this.output()}`);
  }
}

/** A port nothing listens on right now on 127.0.0.1. */
export function findFreePort(): Promise<number> {
  const server = createServer();
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const bound = server.address();
      server.close(() =>
        bound !== null && typeof bound === "object"
          ? resolve(bound.port)
          : reject(new Error(`expected a TCP address, got ${String(bound)}`)),
      );
    });
  });
}

/** True when an HTTP GET of `url` answers 200 within a second. */
export async function answersOk(url: string): Promise<boolean> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(1_000) });
    await response.arrayBuffer();
    return response.ok;
  } catch {
    // Refused while the server starts or after it stopped: that is the answer "no".
    return false;
  }
}

/**
 * True when the bench runs from its TypeScript sources (`node --import tsx bench/bench.ts`, as
 * the quick test does), false from dist/ (`npm run bench`); its child processes follow suit.
 */
const isFromSource = import.meta.url.endsWith(".ts");

/** Node arguments that run the bench's own script `name` (e.g. `echo-server`) in a child. */
export function benchScriptArgs(name: string): string[] {
  const script = join(import.meta.dirname, `${name}${isFromSource ? ".ts" : ".js"}`);
  return isFromSource ? ["--import", "tsx", script] : [script];
}

/** Node arguments that run the `gradecast` command: bin/gradecast.js, or its source under tsx. */
export function gradecastCommandArgs(): string[] {
  return isFromSource
    ? ["--import", "tsx", join(import.meta.dirname, "../src/cli/run.ts")]
    : [join(import.meta.dirname, "../../bin/gradecast.js")];
}
