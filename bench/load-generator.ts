// The bench side of the load workers: forks them, splits each job between them, starts
// them together and merges what they measured.
import { type ChildProcess, fork } from "node:child_process";
import { benchScriptArgs } from "./child-processes.js";
import type { FromWorker, LoadJob, LoadOutcome, ToWorker } from "./load-job.js";

/** How long a worker may take to connect and build its messages. */
const PREPARE_TIMEOUT_MS = 60_000;
/** Slack past a job's own bound (time limit or duration + call deadline) before giving up. */
const RUN_SLACK_MS = 45_000;

/** A job's share for worker `index` of `count`, and the submission ids it may use. */
function shareOf(job: LoadJob, index: number, count: number): LoadJob {
  const split = (total: number) => Math.floor(total / count) + (index < total % count ? 1 : 0);
  const before = (total: number) => {
    let sum = 0;
    for (let i = 0; i < index; i++) sum += Math.floor(total / count) + (i < total % count ? 1 : 0);
    return sum;
  };
  switch (job.kind) {
    case "closed-loop":
      return {
        ...job,
        connections: Math.max(1, split(job.connections)),
        inFlight: Math.max(1, split(job.inFlight)),
        calls: split(job.calls),
        firstSubmissionId: job.firstSubmissionId + before(job.calls),
      };
    case "open-loop":
      return {
        ...job,
        connections: Math.max(1, split(job.connections)),
        // Each worker offers its share of the calls over the same time.
        ratePerS: (job.ratePerS * split(job.calls)) / job.calls,
        calls: split(job.calls),
        maxInFlight: Math.max(1, split(job.maxInFlight)),
        firstSubmissionId: job.firstSubmissionId + before(job.calls),
      };
    case "jetstream-publish":
      return {
        ...job,
        inFlight: Math.max(1, split(job.inFlight)),
        messages: split(job.messages),
        firstSubmissionId: job.firstSubmissionId + before(job.messages),
      };
  }
}

/** Longest a job may run, whatever happens. */
function runBoundMs(job: LoadJob): number {
  switch (job.kind) {
    case "closed-loop":
    case "jetstream-publish":
      return job.timeLimitMs + RUN_SLACK_MS;
    case "open-loop":
      return (job.calls / job.ratePerS) * 1000 + RUN_SLACK_MS;
  }
}

/** One outcome of the whole job, per-call figures in submission-id order where they matter. */
export interface MergedOutcome extends LoadOutcome {
  /** Submission id of `startedAtEpochMs[0]`. */
  firstSubmissionId: number;
}

class WorkerChannel {
  readonly #child: ChildProcess;
  #waiting: { resolve: (m: FromWorker) => void; reject: (e: Error) => void } | undefined;

  constructor(child: ChildProcess) {
    this.#child = child;
    child.on("message", (message: FromWorker) => {
      const waiting = this.#waiting;
      this.#waiting = undefined;
      if (message.type === "failed") waiting?.reject(new Error(`load worker: ${message.message}`));
      else waiting?.resolve(message);
    });
    child.on("exit", (code, signal) => {
      const waiting = this.#waiting;
      this.#waiting = undefined;
      waiting?.reject(new Error(`load worker exited (${signal ?? `exit code ${code}`})`));
    });
  }

  get child(): ChildProcess {
    return this.#child;
  }

  /** Sends `message` and waits for the worker's answer, at most `timeoutMs`. */
  request(message: ToWorker, timeoutMs: number): Promise<FromWorker> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiting = undefined;
        reject(new Error(`load worker did not answer ${message.type} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#waiting = {
        resolve: (answer) => {
          clearTimeout(timer);
          resolve(answer);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      this.#child.send(message);
    });
  }
}

/** Load worker processes, started once and reused by every scenario. */
export class LoadGenerator {
  readonly #workers: WorkerChannel[];

  private constructor(workers: WorkerChannel[]) {
    this.#workers = workers;
  }

  /** Forks `count` workers running load-worker next to this file. */
  static start(count: number): LoadGenerator {
    const nodeArgs = benchScriptArgs("load-worker");
    const entry = nodeArgs.pop() as string;
    return new LoadGenerator(
      Array.from(
        { length: count },
        () =>
          new WorkerChannel(
            fork(entry, [], {
              execArgv: nodeArgs,
              serialization: "advanced",
              stdio: ["ignore", "inherit", "inherit", "ipc"],
            }),
          ),
      ),
    );
  }

  /** Pids of the workers. */
  get pids(): number[] {
    return this.#workers.map((worker) => worker.child.pid ?? -1);
  }

  /** Splits `job` between the workers, starts them together once all are connected, merges. */
  async run(job: LoadJob): Promise<MergedOutcome> {
    const count = this.#workers.length;
    const shares = this.#workers.map((_, index) => shareOf(job, index, count));
    await Promise.all(
      this.#workers.map((worker, index) =>
        worker.request({ type: "prepare", job: shares[index] as LoadJob }, PREPARE_TIMEOUT_MS),
      ),
    );
    const answers = await Promise.all(
      this.#workers.map((worker) => worker.request({ type: "go" }, runBoundMs(job))),
    );
    const outcomes = answers.map((answer) => {
      if (answer.type !== "done") throw new Error(`load worker answered ${answer.type} to go`);
      return answer.outcome;
    });
    return mergeOutcomes(outcomes, job.firstSubmissionId);
  }

  /** Asks every worker to exit and waits (bounded) until each has. */
  async close(): Promise<void> {
    await Promise.all(
      this.#workers.map(async ({ child }) => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        const exited = new Promise((resolve) => child.once("exit", resolve));
        if (child.connected) child.send({ type: "exit" } satisfies ToWorker);
        else child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
        await exited;
        clearTimeout(timer);
      }),
    );
  }
}

function mergeOutcomes(outcomes: LoadOutcome[], firstSubmissionId: number): MergedOutcome {
  const sum = (pick: (o: LoadOutcome) => number) => outcomes.reduce((t, o) => t + pick(o), 0);
  const concat = (arrays: Float64Array[]) => {
    const merged = new Float64Array(arrays.reduce((t, a) => t + a.length, 0));
    let offset = 0;
    for (const array of arrays) {
      merged.set(array, offset);
      offset += array.length;
    }
    return merged;
  };
  const starts = outcomes.map((o) => o.startedAtEpochMs);
  return {
    requested: sum((o) => o.requested),
    completed: sum((o) => o.completed),
    errors: sum((o) => o.errors),
    shed: sum((o) => o.shed),
    elapsedMs: Math.max(...outcomes.map((o) => o.elapsedMs)),
    latenciesMs: concat(outcomes.map((o) => o.latenciesMs)),
    published: sum((o) => o.published),
    replayed: sum((o) => o.replayed),
    // Shares hold consecutive id ranges in worker order, so concatenation keeps id order.
    startedAtEpochMs: starts.every((s) => s !== undefined) ? concat(starts) : undefined,
    errorSamples: [...new Set(outcomes.flatMap((o) => o.errorSamples))],
    firstSubmissionId,
  };
}
