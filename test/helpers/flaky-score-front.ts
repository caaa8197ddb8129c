import {
  credentials,
  Metadata,
  Server,
  ServerCredentials,
  type ServiceError,
  status,
} from "@grpc/grpc-js";
import {
  ScoreServiceClient,
  type ScoreServiceServer,
  ScoreServiceService,
} from "../../src/contract/index.js";

/**
 * What the front does with one SubmitScore attempt before its script runs out (then it forwards):
 * `unavailable` answers UNAVAILABLE without forwarding (gradecast never saw it); `lose-answer`
 * forwards, lets gradecast store the score, then answers UNAVAILABLE as if the answer were lost.
 */
export type FrontStep = "unavailable" | "lose-answer";

/** One SubmitScore attempt the front received. */
export interface FrontAttempt {
  /** The `grpc-previous-rpc-attempts` header: how many attempts gRPC's retry made before this one. */
  previousAttempts: string | undefined;
  /** The status the front answered with (0 for OK). */
  code: number;
}

/** A ScoreService in front of a real gradecast that fails the first SubmitScore attempts on cue. */
export interface FlakyScoreFront {
  readonly address: string;
  readonly attempts: readonly FrontAttempt[];
  close(): Promise<void>;
}

/** Starts the front on a free loopback port, forwarding to gradecast at `target`. */
export async function startFlakyScoreFront(
  target: string,
  script: readonly FrontStep[],
): Promise<FlakyScoreFront> {
  const steps = [...script];
  const attempts: FrontAttempt[] = [];
  // Retries off: the front forwards each attempt once, so every retry is the client's own.
  const upstream = new ScoreServiceClient(target, credentials.createInsecure(), {
    "grpc.enable_retries": 0,
  });
  const implementation: ScoreServiceServer = {
    submitScore: (call, callback) => {
      const previous = call.metadata.get("grpc-previous-rpc-attempts")[0];
      const attempt: FrontAttempt = {
        previousAttempts: previous === undefined ? undefined : String(previous),
        code: status.OK,
      };
      attempts.push(attempt);
      const step = steps.shift();
      const unavailable = (details: string) => {
        attempt.code = status.UNAVAILABLE;
        callback({ code: status.UNAVAILABLE, details, metadata: new Metadata() });
      };
      if (step === "unavailable") return unavailable("front: scripted UNAVAILABLE");
      upstream.submitScore(call.request, (error: ServiceError | null, response) => {
        if (step === "lose-answer" && !error) return unavailable("front: answer lost");
        attempt.code = error?.code ?? status.OK;
        callback(error, response);
      });
    },
    getScore: (call, callback) => upstream.getScore(call.request, callback),
  };
  const server = new Server();
  server.addService(ScoreServiceService, implementation);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (error, bound) =>
      error ? reject(error) : resolve(bound),
    ),
  );
  return {
    address: `127.0.0.1:${port}`,
    attempts,
    close: async () => {
      upstream.close();
      await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
    },
  };
}
