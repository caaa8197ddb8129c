// What the bench process asks a load worker to do, and what the worker reports back.
// Both sides import these types; the messages cross a child_process IPC channel.

/** A gRPC unary method to drive, and how to read its answers. */
export interface CallTarget {
  /** `host:port`. */
  address: string;
  /** Full method path, e.g. `/gradecast.v1.ScoreService/SubmitScore`. */
  method: string;
  /** `submit-score` decodes each answer (published / replayed); `none` ignores the bytes. */
  answer: "submit-score" | "none";
}

/** Calls with a fixed number in flight: a new one starts when one ends. */
export interface ClosedLoopJob {
  kind: "closed-loop";
  target: CallTarget;
  /** gRPC channels (TCP connections) this worker opens. */
  connections: number;
  inFlight: number;
  calls: number;
  /** Stops starting calls after this long even if `calls` are not done. */
  timeLimitMs: number;
  /** Submission ids are `firstSubmissionId`, +1, ... (each call a new submission). */
  firstSubmissionId: number;
}

/** Calls started at a fixed rate whatever the answers do. */
export interface OpenLoopJob {
  kind: "open-loop";
  target: CallTarget;
  connections: number;
  ratePerS: number;
  /** Calls to start, `ratePerS` a second (so the job offers load for calls / ratePerS s). */
  calls: number;
  /** A call due while this many are unanswered is not sent and counts as shed (an error). */
  maxInFlight: number;
  firstSubmissionId: number;
}

/** Pipelined JetStream publishes with `msgID`: the broker's own limit, without gradecast. */
export interface JetStreamPublishJob {
  kind: "jetstream-publish";
  natsUrl: string;
  /** Events go to `<subjectPrefix>.scores.v1.<queue>`; a stream must capture them. */
  subjectPrefix: string;
  inFlight: number;
  messages: number;
  timeLimitMs: number;
  firstSubmissionId: number;
}

export type LoadJob = ClosedLoopJob | OpenLoopJob | JetStreamPublishJob;

/** What one worker measured for one job. */
export interface LoadOutcome {
  /** Calls (or publishes) the job asked for. */
  requested: number;
  /** Answered, successfully or not. */
  completed: number;
  /** Failed answers plus shed calls. */
  errors: number;
  /** Open loop only: due calls not sent because too many were in flight (counted in errors). */
  shed: number;
  /** From the go signal until the last answer. */
  elapsedMs: number;
  /** Latency of each answered call, in completion order. */
  latenciesMs: Float64Array;
  /** SubmitScore answers saying JetStream acknowledged the event. */
  published: number;
  /** SubmitScore answers saying the score repeated one already accepted. */
  replayed: number;
  /**
   * Open loop only: when call `i` (submission `firstSubmissionId + i`) started, as epoch ms
   * (`performance.timeOrigin + performance.now()`, comparable across processes); NaN if shed.
   */
  startedAtEpochMs: Float64Array | undefined;
  /** The first few distinct error messages, to say what went wrong. */
  errorSamples: string[];
}

export type ToWorker = { type: "prepare"; job: LoadJob } | { type: "go" } | { type: "exit" };

export type FromWorker =
  | { type: "ready" }
  | { type: "done"; outcome: LoadOutcome }
  | { type: "failed"; message: string };
